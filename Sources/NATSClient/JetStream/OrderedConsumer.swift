import EnnioSync
public import Foundation

/// How an ordered consumer reads its stream.
public struct OrderedConsumerConfig: Sendable, Hashable {
    /// Only messages on these subjects (wildcards allowed); every message when empty.
    public var filterSubjects: [String] = []
    /// Where the first consumer starts; later ones start after the last message handed over.
    public var deliverPolicy: DeliverPolicy = .all
    /// The first stream sequence, with ``DeliverPolicy/byStartSequence``.
    public var startSequence: UInt64?
    /// The first time, with ``DeliverPolicy/byStartTime``.
    public var startTime: Date?
    /// Headers only (with `Nats-Msg-Size`), no payloads.
    public var headersOnly = false
    /// How often the server says it is alive when it has nothing to send; two silent intervals
    /// and the consumer is made again.
    public var idleHeartbeat: Duration = .seconds(5)
    /// The server removes a consumer that nobody listens to after this long.
    public var inactiveThreshold: Duration = .seconds(300)
    /// How the messages come: pushed, with flow control, or pulled.
    public var delivery: Delivery = .push
    /// What the push subscription may hold for the reader before it drops (and the consumer is
    /// recreated from the next sequence). The server's flow-control window can reach 32 MiB,
    /// so the default holds that much; `nil` uses the connection's subscription limits.
    public var pendingLimits: PendingLimits? = PendingLimits(messages: 1 << 20, bytes: 96 << 20)

    public enum Delivery: Sendable, Hashable {
        /// A push consumer: the server sends ahead as far as its flow-control window allows
        /// (2 MiB at first, growing up to 32 MiB while the reader keeps up).
        case push
        /// A pull consumer: at most `buffer` messages are asked for ahead of the reader, which
        /// bounds the memory exactly (an object store's reader uses this).
        case pull(buffer: Int)
    }

    public init(filterSubjects: [String] = [], deliverPolicy: DeliverPolicy = .all, startSequence: UInt64? = nil, headersOnly: Bool = false) {
        self.filterSubjects = filterSubjects
        self.deliverPolicy = deliverPolicy
        self.startSequence = startSequence
        self.headersOnly = headersOnly
    }
}

/// An ordered consumer (ADR-17): every message of a stream (or of some of its subjects) once
/// and in order, read through ephemeral push consumers that it makes, watches and replaces.
///
/// Each consumer delivers to a private inbox with flow control and idle heartbeats. A gap in
/// the consumer sequence, a heartbeat reporting messages that never arrived, a status such as
/// "consumer deleted", or two heartbeat intervals of silence (a deleted consumer, a server
/// restart) make it delete that consumer and create a new one starting at the stream sequence
/// after the last message handed over — retrying while the server is away.
///
/// Back-pressure: flow-control requests are answered when the reader reaches them, so the
/// server sends ahead of the reader only as much as its flow-control window allows.
/// The work happens in the reader's task, inside `next()`; iterate once, from one task. The
/// sequence ends when the calling task is cancelled, ``stop()`` is called or the connection
/// closes, and with an error when the stream is gone.
public final class OrderedConsumer: AsyncSequence, Sendable {
    public typealias Element = JetStreamMessage
    public typealias Failure = any Error

    public let jetStream: JetStream
    public let stream: String
    public let config: OrderedConsumerConfig
    /// Messages the first consumer had to deliver when it was made (its `num_pending`).
    public let initialPending: UInt64

    private struct Run {
        var state: OrderedConsumerState
        var subscription: NATSSubscription?
        /// The bookkeeping of the pull requests, for ``OrderedConsumerConfig/Delivery/pull(buffer:)``;
        /// started afresh with each consumer.
        var pull: PullConsumeState?
        var stopped = false
    }

    private let run: Locked<Run>

    /// Consumers made after the first one.
    public var recreations: Int { run.withLock { $0.state.recreations } }
    /// The current consumer's name.
    public var consumerName: String? { run.withLock { $0.state.consumerName } }
    /// Messages and bytes received from the server and not yet taken by the reader, and
    /// messages the current subscription dropped because its queue was full.
    var buffered: (messages: Int, bytes: Int, dropped: UInt64) {
        guard let subscription = run.withLock({ $0.subscription }) else { return (0, 0, 0) }
        return (subscription.pendingCount, subscription.pendingBytes, subscription.droppedCount)
    }
    /// Flow-control requests answered.
    var flowControlAnswers: Int { run.withLock { $0.state.answers } }
    /// The stream sequence of the last message handed over (0 before the first).
    public var lastStreamSequence: UInt64 { run.withLock { $0.state.streamSequence } }

    private init(jetStream: JetStream, stream: String, config: OrderedConsumerConfig, run: Run, initialPending: UInt64) {
        self.jetStream = jetStream
        self.stream = stream
        self.config = config
        self.run = Locked(run)
        self.initialPending = initialPending
    }

    deinit {
        let (subscription, name) = run.withLock { ($0.subscription, $0.state.consumerName) }
        try? subscription?.unsubscribe()
        if let name { deleteQuietly(name) }
    }

    /// Makes the first consumer.
    /// - Throws: ``JetStreamError`` (no such stream, a configuration the server refuses),
    ///   ``NATSError``.
    static func start(jetStream: JetStream, stream: String, config: OrderedConsumerConfig) async throws -> OrderedConsumer {
        if config.deliverPolicy == .byStartSequence, config.startSequence == nil {
            throw NATSError(.invalidArgument, "deliver policy by_start_sequence needs a start sequence")
        }
        if config.deliverPolicy == .byStartTime, config.startTime == nil {
            throw NATSError(.invalidArgument, "deliver policy by_start_time needs a start time")
        }
        if case .pull(let buffer) = config.delivery, buffer < 1 {
            throw NATSError(.invalidArgument, "a pulled ordered consumer needs a buffer of at least one message")
        }
        var state = OrderedConsumerState(idleHeartbeat: config.idleHeartbeat, now: .now)
        let (subscription, info) = try await makeConsumer(jetStream: jetStream, stream: stream, config: config, resumeSequence: nil)
        state.consumerCreated(name: info.name, deliveredStreamSequence: info.delivered.streamSequence, startsAtPolicy: startsAtPolicy(config), now: .now)
        return OrderedConsumer(
            jetStream: jetStream, stream: stream, config: config,
            run: Run(state: state, subscription: subscription, pull: pullState(config)), initialPending: info.numPending
        )
    }

    /// Fresh pull bookkeeping for a new consumer, when pulling.
    private static func pullState(_ config: OrderedConsumerConfig) -> PullConsumeState? {
        guard case .pull(let buffer) = config.delivery else { return nil }
        return PullConsumeState(maxMessages: buffer, expires: .seconds(30), idleHeartbeat: config.idleHeartbeat)
    }

    /// Whether the start cannot be written as a stream sequence before the first message.
    private static func startsAtPolicy(_ config: OrderedConsumerConfig) -> Bool {
        config.deliverPolicy == .last || config.deliverPolicy == .lastPerSubject
    }

    /// Subscribes to a new inbox and creates a consumer delivering to it.
    private static func makeConsumer(
        jetStream: JetStream,
        stream: String,
        config: OrderedConsumerConfig,
        resumeSequence: UInt64?
    ) async throws -> (NATSSubscription, ConsumerInfo) {
        let connection = jetStream.connection
        // A push consumer's flow-control window can reach 32 MiB: hold it without dropping
        // (a drop means recreating the consumer and reading again), within a bound.
        let limits = config.delivery == .push ? config.pendingLimits ?? PendingLimits(connection.options) : PendingLimits(connection.options)
        let subscription = try connection.subscribe(to: "\(connection.options.inboxPrefix).\(Nuid.next())", pendingLimits: limits)
        var consumer = ConsumerConfig(ackPolicy: .none, ackWait: .seconds(22 * 3600))
        consumer.name = Nuid.next()
        if config.delivery == .push {
            consumer.deliverSubject = subscription.subject
            consumer.flowControl = true
            consumer.idleHeartbeat = nanosecondsOf(config.idleHeartbeat)
        }
        if let resumeSequence {
            consumer.deliverPolicy = .byStartSequence
            consumer.optStartSequence = resumeSequence
        } else {
            consumer.deliverPolicy = config.deliverPolicy
            consumer.optStartSequence = config.startSequence
            consumer.optStartTime = config.startTime.map { RFC3339Time.format(nanoseconds: Int64($0.timeIntervalSince1970 * 1e9)) }
        }
        if config.filterSubjects.count == 1 {
            consumer.filterSubject = config.filterSubjects[0]
        } else if !config.filterSubjects.isEmpty {
            consumer.filterSubjects = config.filterSubjects
        }
        consumer.maxDeliver = 1
        consumer.headersOnly = config.headersOnly ? true : nil
        consumer.memoryStorage = true
        consumer.replicas = 1
        consumer.inactiveThreshold = nanosecondsOf(config.inactiveThreshold)
        do {
            return (subscription, try await jetStream.createConsumer(stream: stream, config: consumer))
        } catch {
            try? subscription.unsubscribe()
            throw error
        }
    }

    /// Ends the sequence and deletes the current consumer (without waiting for the server).
    public func stop() {
        let (subscription, name) = run.withLock { run -> (NATSSubscription?, String?) in
            guard !run.stopped else { return (nil, nil) }
            run.stopped = true
            return (run.subscription, run.state.consumerName)
        }
        try? subscription?.unsubscribe()
        if let name { deleteQuietly(name) }
    }

    /// Asks the server to delete a consumer and does not wait for its answer.
    private func deleteQuietly(_ name: String) {
        let connection = jetStream.connection
        try? connection.publish(
            [UInt8](),
            to: "\(jetStream.prefix).CONSUMER.DELETE.\(stream).\(name)",
            replyTo: "\(connection.options.inboxPrefix).\(Nuid.next())"
        )
    }

    public func makeAsyncIterator() -> Iterator { Iterator(consumer: self) }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let consumer: OrderedConsumer

        public mutating func next() async throws -> JetStreamMessage? {
            try await consumer.next()
        }
    }

    func next() async throws -> JetStreamMessage? {
        let connection = jetStream.connection
        while true {
            guard !Task.isCancelled, let (subscription, name, wait) = run.withLock({ run -> (NATSSubscription, String, PullConsumeState.ReaderAction)? in
                guard !run.stopped, let subscription = run.subscription, let name = run.state.consumerName else { return nil }
                let wait = run.pull?.readerWaiting(now: .now) ?? .wait(run.state.waitLimit(now: .now))
                return (subscription, name, wait)
            }) else { return nil }
            let limit: Duration
            switch wait {
            case .pull(let batch):
                let body = PullConsumer.requestBody(batch: batch, expires: .seconds(30), idleHeartbeat: config.idleHeartbeat)
                try connection.publish(body, to: "\(jetStream.prefix).CONSUMER.MSG.NEXT.\(stream).\(name)", replyTo: subscription.subject)
                continue
            case .wait(let duration):
                limit = duration
            }
            if subscription.droppedCount > 0, subscription.pendingCount == 0 {
                // Its queue overflowed (a reader slower than the server's flow-control
                // window): what is left has been read, and the gap is certain.
                try await recreate()
                continue
            }
            switch await subscription.next(within: limit) {
            case .message(let message):
                if let pulled = try pullStatus(message) {
                    if pulled == .recreate { try await recreate() }
                    continue
                }
                let incoming = OrderedConsumerState.classify(message)
                switch run.withLock({ run in
                    if case .message = incoming { run.pull?.messageReceived(now: .now) }
                    return run.state.received(incoming, now: .now)
                }) {
                case .deliver:
                    if case .message(let metadata) = incoming {
                        return JetStreamMessage(message: message, metadata: metadata, connection: connection)
                    }
                case .answer(let reply):
                    try? connection.publish([UInt8](), to: reply)
                case .recreate:
                    try await recreate()
                case .ignore:
                    continue
                }
            case .timedOut:
                let lost = run.withLock { run -> Bool in
                    if run.pull != nil { return run.pull?.waitTimedOut(now: .now) ?? true }
                    return run.state.silenceMeansLost(now: .now)
                }
                if lost { try await recreate() }
            case .ended:
                // Unsubscribed by stop(), the task cancelled, or the connection closed.
                return nil
            }
        }
    }

    /// What a status message means when pulling: `nil` when not pulling or not a status
    /// (the message goes on to the ordering rules), `.recreate` when the consumer is gone or
    /// JetStream does not answer, `.ignore` otherwise.
    /// - Throws: ``JetStreamError`` for a status that no new consumer would fix (a bad request).
    private func pullStatus(_ message: NATSMessage) throws -> OrderedConsumerState.Action? {
        guard let status = message.status, message.payload.isEmpty || status != 200, run.withLock({ $0.pull != nil }) else { return nil }
        if status == 100 {
            run.withLock { $0.pull?.heartbeatReceived(now: .now) }
            return .ignore
        }
        let description = message.headers?.statusDescription ?? ""
        if status == 503 || (status == 409 && description.lowercased().contains("consumer deleted")) { return .recreate }
        let pending = message.headers?[JetStream.Header.pendingMessages].flatMap { Int($0) }
        if case .fail(let error)? = run.withLock({ $0.pull?.statusReceived(code: status, description: description, pendingMessages: pending, now: .now) }) {
            throw error
        }
        return .ignore
    }

    /// Replaces the current consumer by one starting after the last message handed over,
    /// trying again (up to 2 s apart) while the server cannot make it.
    private func recreate() async throws {
        let (old, name, resume) = run.withLock { run in
            defer { run.subscription = nil }
            return (run.subscription, run.state.consumerName, run.state.resumeSequence)
        }
        try? old?.unsubscribe()
        if let name { deleteQuietly(name) }
        var delay = Duration.milliseconds(100)
        while true {
            if Task.isCancelled || jetStream.connection.status == .closed || run.withLock({ $0.stopped }) { return }
            do {
                let (subscription, info) = try await Self.makeConsumer(jetStream: jetStream, stream: stream, config: config, resumeSequence: resume)
                let kept = run.withLock { run -> Bool in
                    guard !run.stopped else { return false }
                    run.subscription = subscription
                    run.pull = Self.pullState(config)
                    run.state.consumerCreated(
                        name: info.name, deliveredStreamSequence: info.delivered.streamSequence,
                        startsAtPolicy: resume == nil && Self.startsAtPolicy(config), now: .now
                    )
                    return true
                }
                if !kept {
                    try? subscription.unsubscribe()
                    deleteQuietly(info.name)
                }
                return
            } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFound {
                throw error
            } catch let error as NATSError where error.code == .connectionClosed {
                return
            } catch {
                // The server is away or busy (a restart, a reconnect, a leader election).
                try? await Task.sleep(for: delay)
                delay = Swift.min(delay * 2, .seconds(2))
            }
        }
    }
}

extension JetStream {
    /// An ordered consumer on `stream`: every message (of `config.filterSubjects`) once and in
    /// order, surviving the loss of its consumer and server restarts.
    /// - Throws: ``JetStreamError`` when the first consumer cannot be made (no such stream, …).
    public func orderedConsumer(stream: String, config: OrderedConsumerConfig = OrderedConsumerConfig()) async throws -> OrderedConsumer {
        try await OrderedConsumer.start(jetStream: self, stream: stream, config: config)
    }
}
