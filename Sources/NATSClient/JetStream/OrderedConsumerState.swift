/// The rules of an ordered consumer (ADR-17), without I/O: which message to hand over, which
/// flow-control request to answer, and when the consumer must be made again — after a gap in
/// the consumer sequence, a heartbeat that reports messages we never saw, or two heartbeat
/// intervals of silence (a deleted consumer, a restarted server).
///
/// Every message is handed over once, in stream order: a new consumer starts at the stream
/// sequence after the last one handed over.
struct OrderedConsumerState: Sendable {
    let idleHeartbeat: Duration

    /// The current consumer's name, once made.
    private(set) var consumerName: String?
    /// The last message handed over, in the stream and in the current consumer.
    private(set) var streamSequence: UInt64 = 0
    private(set) var consumerSequence: UInt64 = 0
    /// Where a new consumer starts: `nil` while the consumer's own start policy still applies
    /// (nothing handed over yet, and a `last`/`last_per_subject` start that a sequence cannot
    /// express).
    private(set) var resumeSequence: UInt64?
    /// Consumers made after the first.
    private(set) var recreations = 0
    /// Flow-control requests answered (directly or through a stalled heartbeat).
    private(set) var answers = 0
    private var lastActivity: ContinuousClock.Instant

    init(idleHeartbeat: Duration, now: ContinuousClock.Instant) {
        self.idleHeartbeat = idleHeartbeat
        self.lastActivity = now
    }

    /// What arrived on the consumer's delivery subject.
    enum Incoming: Equatable {
        case message(JetStreamMetadata)
        /// Status 100 without a reply subject; its `Nats-Last-Consumer` and, when the server
        /// is waiting for a flow-control answer, `Nats-Consumer-Stalled` headers.
        case heartbeat(lastConsumerSequence: UInt64?, stalledReply: String?)
        /// Status 100 with a reply subject: answer it to let the server send more.
        case flowControl(reply: String)
        /// Any other status (409 consumer deleted, …).
        case status(Int)
        /// Not a JetStream delivery at all.
        case unknown
    }

    /// Sorts a message from the delivery subject.
    static func classify(_ message: NATSMessage) -> Incoming {
        if let status = message.status, message.payload.isEmpty || status != 200 {
            guard status == 100 else { return .status(status) }
            if let reply = message.replyTo, !reply.isEmpty { return .flowControl(reply: reply) }
            let last = message.headers?["Nats-Last-Consumer"].flatMap { UInt64($0) }
            return .heartbeat(lastConsumerSequence: last, stalledReply: message.headers?["Nats-Consumer-Stalled"])
        }
        guard let reply = message.replyTo, let metadata = JetStreamMetadata(replySubject: reply) else { return .unknown }
        return .message(metadata)
    }

    enum Action: Equatable {
        /// Hand the message over.
        case deliver
        /// Publish an empty message to this subject (a flow-control answer).
        case answer(String)
        /// Delete this consumer and make a new one from ``resumeSequence``.
        case recreate
        case ignore
    }

    /// A consumer was made; `deliveredStreamSequence` is its `delivered.stream_seq`, the
    /// stream sequence just before its first message.
    mutating func consumerCreated(name: String, deliveredStreamSequence: UInt64, startsAtPolicy: Bool, now: ContinuousClock.Instant) {
        if consumerName != nil { recreations += 1 }
        consumerName = name
        consumerSequence = 0
        lastActivity = now
        // Nothing handed over yet and the start is a position: later consumers start there too.
        if resumeSequence == nil, !startsAtPolicy { resumeSequence = deliveredStreamSequence + 1 }
    }

    mutating func received(_ incoming: Incoming, now: ContinuousClock.Instant) -> Action {
        lastActivity = now
        switch incoming {
        case .message(let metadata):
            guard metadata.consumer == consumerName else { return .ignore }
            guard metadata.consumerSequence == consumerSequence + 1 else { return .recreate }
            consumerSequence = metadata.consumerSequence
            streamSequence = metadata.streamSequence
            resumeSequence = metadata.streamSequence + 1
            return .deliver
        case .heartbeat(let last, let stalled):
            if let last, last != consumerSequence { return .recreate }
            guard let stalled else { return .ignore }
            answers += 1
            return .answer(stalled)
        case .flowControl(let reply):
            answers += 1
            return .answer(reply)
        case .status:
            return .recreate
        case .unknown:
            return .ignore
        }
    }

    /// How long to wait for the next message before the silence means the consumer is lost.
    func waitLimit(now: ContinuousClock.Instant) -> Duration {
        max(.zero, lastActivity + idleHeartbeat * 2 - now)
    }

    /// The wait returned nothing: true when two heartbeat intervals have passed in silence.
    func silenceMeansLost(now: ContinuousClock.Instant) -> Bool {
        now - lastActivity >= idleHeartbeat * 2
    }
}
