/// Keeps a coordinator's reading of the event stream in the stream's order: a pure value, told
/// the stream sequence of each message its consumer delivers, answering which to take and where
/// to restart the consumer when one came early.
///
/// The consumer delivers every message of the stream (it has no filter), so stream sequences
/// come one after another. One that comes early means messages before it were delivered and
/// never arrived — lost with a server that died holding them, or delivered to an earlier run
/// of this coordinator that stopped before it committed them — and the server would deliver
/// them again only after the ack wait, behind newer ones. Applied in that order they would
/// change what the rules derive (an `all_complete` caused by another event than on the other
/// coordinators). So the coordinator takes the messages up to the gap, and starts its consumer
/// again at the first one missing (``Coordinator`` deletes and creates it at that sequence);
/// the first message of a consumer just made is taken whatever its sequence (the messages
/// before it may have aged out of the stream). A message from before the expected one is a
/// redelivery of one already taken: taken again, and stored once.
struct DeliveryOrder: Sendable, Hashable {
    /// The stream sequence the next message should have; `nil`: the next one sets it.
    private(set) var expected: UInt64?

    init(expected: UInt64? = nil) {
        self.expected = expected
    }

    /// A fetched batch arrived, with these stream sequences in the order delivered. Returns how
    /// many of them to take (the first ones), and the sequence to start the consumer again at
    /// when the rest must wait for the ones missing.
    mutating func arrived(_ sequences: some Sequence<UInt64>) -> (take: Int, restartAt: UInt64?) {
        var taken = 0
        for sequence in sequences {
            if let expected, sequence > expected { return (taken, expected) }
            if expected.map({ sequence == $0 }) ?? true { expected = sequence &+ 1 }
            taken += 1
        }
        return (taken, nil)
    }

    /// The consumer was made again, from wherever the coordinator asked: the next message sets
    /// the order.
    mutating func restarted() {
        expected = nil
    }
}
