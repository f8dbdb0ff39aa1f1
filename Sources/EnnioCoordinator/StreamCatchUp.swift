import EnnioEvents

/// Whether a coordinator has caught up with the event stream, and until when it knows it had
/// read everything: a pure state machine, told what the consumer and the store did (with the
/// time as an input) and answering with what to do.
///
/// A coordinator that reads the stream (JetStream mode) is *caught up* once, after it starts,
/// it has committed everything the stream held for its durable consumer: the `pending` count
/// of the last message of a committed batch is zero (the count the server puts in each
/// message's reply subject: messages still to deliver after it), or a fetch expires with
/// nothing to deliver. When the consumer held messages delivered to an earlier run and never
/// acknowledged (that run stopped between a delivery and its commit), the server delivers them
/// again only after the ack wait; so the coordinator also waits until the consumer's ack floor
/// has passed the last of them (``needsConsumerInfo``: it asks for the consumer's state).
/// Caught up stays true for the life of the process. In core NATS there is no stream: it is
/// caught up from the start.
///
/// *Current as of* is the last moment it knew it had read everything the stream held (the
/// last time it found the end). Node silences are judged at that moment, not later: while a
/// coordinator cannot read the stream (a leader election, a lost server) or falls behind, it
/// does not take its own blindness for a node's silence — and two coordinators judging the
/// same stream at their "current" moments see the same last event of a silent node, so they
/// report the silence with the same derived event.
struct StreamCatchUp: Sendable, Hashable {
    /// What the coordinator should do next.
    enum Action: Sendable, Hashable {
        case none
        /// Caught up just now: answer queries, release held events, judge nodes.
        case caughtUp
    }

    private enum Source: Sendable, Hashable {
        /// Core NATS: every event arrives as it is published, or not at all.
        case subscription
        /// JetStream, through a durable consumer.
        case stream
    }

    private var source = Source.subscription
    private(set) var caughtUp = true
    private(set) var currentAsOf: EventTimestamp?
    /// The last stream sequence delivered to an earlier run and not acknowledged when this
    /// one started (0: none): caught up only once the ack floor reaches it.
    private(set) var unacknowledgedThrough: UInt64 = 0
    /// The end was found while `unacknowledgedThrough` still stood: ask for the consumer's
    /// state to see whether its ack floor has passed it.
    private(set) var needsConsumerInfo = false

    init() {}

    /// Starts following the stream, with the consumer as the server described it when the
    /// coordinator created (or found) it.
    mutating func startedReading(numPending: UInt64, numAckPending: Int, deliveredThrough: UInt64, ackFloor: UInt64, now: EventTimestamp) -> Action {
        source = .stream
        caughtUp = false
        currentAsOf = nil
        unacknowledgedThrough = numAckPending > 0 && deliveredThrough > ackFloor ? deliveredThrough : 0
        needsConsumerInfo = false
        guard numPending == 0 else { return .none }
        return foundTheEnd(now: now)
    }

    /// A batch was committed (and acknowledged); `pending` is what the server still had for
    /// the consumer after its last message.
    mutating func committed(pending: UInt64, now: EventTimestamp) -> Action {
        guard source == .stream, pending == 0 else { return .none }
        return foundTheEnd(now: now)
    }

    /// A fetch ended with nothing to deliver (it expired, or the server said there was
    /// nothing), after every earlier batch was committed.
    mutating func foundNothing(now: EventTimestamp) -> Action {
        guard source == .stream else { return .none }
        return foundTheEnd(now: now)
    }

    /// The consumer's state arrived, asked for because of ``needsConsumerInfo``.
    mutating func consumerInfoArrived(numPending: UInt64, ackFloor: UInt64, now: EventTimestamp) -> Action {
        needsConsumerInfo = false
        guard source == .stream, !caughtUp else { return .none }
        // Not yet: asked again at the next end found.
        guard ackFloor >= unacknowledgedThrough else { return .none }
        unacknowledgedThrough = 0
        guard numPending == 0 else { return .none }
        return foundTheEnd(now: now)
    }

    /// The moment node silences are judged at, for a check made at `now`: `now` when events
    /// come by subscription; with a stream, the last moment everything in it had been read
    /// (never later than `now`), and none before the coordinator has caught up.
    func judgingTime(now: EventTimestamp) -> EventTimestamp? {
        switch source {
        case .subscription: return now
        case .stream:
            guard caughtUp, let currentAsOf else { return nil }
            return min(now, currentAsOf)
        }
    }

    private mutating func foundTheEnd(now: EventTimestamp) -> Action {
        currentAsOf = max(currentAsOf ?? now, now)
        guard !caughtUp else { return .none }
        guard unacknowledgedThrough == 0 else {
            needsConsumerInfo = true
            return .none
        }
        caughtUp = true
        return .caughtUp
    }
}
