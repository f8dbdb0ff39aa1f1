import Synchronization

/// Counts of what went through a connection.
public struct NATSStatistics: Sendable, Hashable {
    public var inMessages: UInt64
    public var outMessages: UInt64
    public var inBytes: UInt64
    public var outBytes: UInt64
    public var reconnects: UInt64
    /// Messages lost because the socket broke while they were being written: the part not
    /// written is never sent to the next server (it would be a protocol error there).
    public var droppedOutboundMessages: UInt64 = 0
}

/// Lock-free counters behind ``NATSStatistics``.
final class StatisticsCounters: Sendable {
    let inMessages = Atomic<UInt64>(0)
    let outMessages = Atomic<UInt64>(0)
    let inBytes = Atomic<UInt64>(0)
    let outBytes = Atomic<UInt64>(0)
    let reconnects = Atomic<UInt64>(0)

    func received(bytes: Int) {
        inMessages.add(1, ordering: .relaxed)
        inBytes.add(UInt64(bytes), ordering: .relaxed)
    }

    func sent(bytes: Int) {
        outMessages.add(1, ordering: .relaxed)
        outBytes.add(UInt64(bytes), ordering: .relaxed)
    }

    var snapshot: NATSStatistics {
        NATSStatistics(
            inMessages: inMessages.load(ordering: .relaxed),
            outMessages: outMessages.load(ordering: .relaxed),
            inBytes: inBytes.load(ordering: .relaxed),
            outBytes: outBytes.load(ordering: .relaxed),
            reconnects: reconnects.load(ordering: .relaxed)
        )
    }
}
