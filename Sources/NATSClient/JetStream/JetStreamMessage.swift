public import NATSProtocol

/// Where a message sits in its stream and consumer, read from its `$JS.ACK.…` reply subject.
public struct JetStreamMetadata: Sendable, Hashable {
    public var domain: String?
    public var stream: String
    public var consumer: String
    /// How many times this message has been delivered (1 the first time).
    public var delivered: UInt64
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// When the stream stored it, in nanoseconds since 1970.
    public var timestamp: Int64
    /// Messages still pending for the consumer after this one.
    public var pending: UInt64

    /// Parses both forms of the reply subject:
    /// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>` and
    /// `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>[.<token>…]`.
    public init?(replySubject: String) {
        let tokens = replySubject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.count >= 9, tokens[0] == "$JS", tokens[1] == "ACK" else { return nil }
        let fields: ArraySlice<String>
        if tokens.count == 9 {
            domain = nil
            fields = tokens[2...]
        } else if tokens.count >= 11 {
            domain = tokens[2] == "_" ? nil : tokens[2]
            fields = tokens[4..<11]
        } else {
            return nil
        }
        let values = Array(fields)
        guard let delivered = UInt64(values[2]), let streamSequence = UInt64(values[3]),
            let consumerSequence = UInt64(values[4]), let timestamp = Int64(values[5]), let pending = UInt64(values[6])
        else { return nil }
        self.stream = values[0]
        self.consumer = values[1]
        self.delivered = delivered
        self.streamSequence = streamSequence
        self.consumerSequence = consumerSequence
        self.timestamp = timestamp
        self.pending = pending
    }
}

/// A message from a JetStream consumer, with the ways to acknowledge it.
public struct JetStreamMessage: Sendable {
    public let message: NATSMessage
    public let metadata: JetStreamMetadata
    let connection: NATSConnection

    public var subject: String { message.subject }
    public var payload: [UInt8] { message.payload }
    public var headers: NATSHeaders? { message.headers }

    init?(message: NATSMessage, connection: NATSConnection) {
        guard let reply = message.replyTo, let metadata = JetStreamMetadata(replySubject: reply) else { return nil }
        self.message = message
        self.metadata = metadata
        self.connection = connection
    }

    private func send(_ body: String) throws(NATSError) {
        guard let reply = message.replyTo else { return }
        try connection.publish(body, to: reply)
    }

    /// Done with it: the server will not deliver it again.
    public func ack() throws(NATSError) { try send("+ACK") }

    /// Acknowledges and waits until the server confirms it recorded the acknowledgement.
    public func ackSync(timeout: Duration = .seconds(5)) async throws {
        guard let reply = message.replyTo else { return }
        _ = try await connection.request("+ACK", to: reply, timeout: timeout)
    }

    /// Not processed: deliver it again, now or after `delay`.
    public func nak(delay: Duration? = nil) throws(NATSError) {
        if let delay {
            try send("-NAK {\"delay\":\(nanosecondsOf(delay))}")
        } else {
            try send("-NAK")
        }
    }

    /// Still working on it: restart the ack-wait timer.
    public func inProgress() throws(NATSError) { try send("+WPI") }

    /// Never deliver it again, even though it was not processed.
    public func term() throws(NATSError) { try send("+TERM") }
}

