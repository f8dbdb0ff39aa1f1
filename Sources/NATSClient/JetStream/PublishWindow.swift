import NATSProtocol

/// Publishes to streams with a bounded number of acknowledgements outstanding: each
/// ``publish(_:to:headers:)`` goes out at once unless `maxPending` wait for their
/// acknowledgement, in which case it first waits for the oldest. ``finish()`` waits for the rest.
///
/// Acknowledgements come to one private inbox subscription (`<inbox>.*`), read in the caller's
/// task: nothing runs in the background, and at most `maxPending` messages are in flight — the
/// memory a large upload takes is bounded by them.
///
/// Use it from one task at a time.
struct PublishWindow: ~Copyable {
    let jetStream: JetStream
    let maxPending: Int
    private let subscription: NATSSubscription
    private let inbox: String
    private var sent = 0
    private var acknowledged = 0

    init(jetStream: JetStream, maxPending: Int) throws(NATSError) {
        self.jetStream = jetStream
        self.maxPending = max(1, maxPending)
        let connection = jetStream.connection
        inbox = "\(connection.options.inboxPrefix).\(Nuid.next())"
        subscription = try connection.subscribe(to: inbox + ".*")
    }

    deinit {
        try? subscription.unsubscribe()
    }

    /// Publishes once fewer than `maxPending` acknowledgements are outstanding.
    /// - Throws: the first failed acknowledgement (``JetStreamError``), ``NATSError``
    ///   `.timeout` when one does not come within the JetStream timeout.
    mutating func publish(_ payload: [UInt8], to subject: String, headers: NATSHeaders? = nil) async throws {
        while sent - acknowledged >= maxPending { try await awaitAcknowledgement() }
        try jetStream.connection.publish(payload, to: subject, replyTo: "\(inbox).\(sent)", headers: headers)
        sent += 1
    }

    /// Waits for every outstanding acknowledgement.
    mutating func finish() async throws {
        while acknowledged < sent { try await awaitAcknowledgement() }
    }

    private mutating func awaitAcknowledgement() async throws {
        switch await subscription.next(within: jetStream.timeout) {
        case .message(let reply):
            acknowledged += 1
            if reply.status == 503, reply.payload.isEmpty {
                throw NATSError(.noResponders, "no stream took the message")
            }
            _ = try JetStream.decodeAck(reply)
        case .timedOut:
            throw NATSError(.timeout, "no acknowledgement within \(jetStream.timeout)")
        case .ended:
            try Task.checkCancellation()
            throw NATSError.closed()
        }
    }
}
