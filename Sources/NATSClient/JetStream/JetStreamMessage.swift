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
        // Read on the bytes (this runs for every message a consumer receives): the dots'
        // positions first, then the numbers in place; only names become strings.
        var subject = replySubject
        guard let parsed = subject.withUTF8({ Self.parse($0) }) else { return nil }
        self = parsed
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> JetStreamMetadata? {
        // Token boundaries: token i is bytes[starts[i]..<ends[i]]; at most 12 are looked at.
        var starts: [12 of Int] = .init(repeating: 0)
        var ends: [12 of Int] = .init(repeating: 0)
        var count = 0
        var start = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == UInt8(ascii: ".") {
            if count < 12 {
                starts[count] = start
                ends[count] = index
            }
            count += 1
            start = index + 1
        }
        func token(_ number: Int) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: bytes[starts[number]..<ends[number]])
        }
        func number(_ index: Int) -> UInt64? {
            let digits = token(index)
            guard !digits.isEmpty, digits.count <= 19 else { return nil }
            var value: UInt64 = 0
            for byte in digits {
                let digit = byte &- 0x30
                guard digit <= 9 else { return nil }
                value = value &* 10 &+ UInt64(digit)
            }
            return value
        }
        func text(_ index: Int) -> String { String(decoding: token(index), as: UTF8.self) }
        guard count >= 9, token(0).elementsEqual("$JS".utf8), token(1).elementsEqual("ACK".utf8) else { return nil }
        let first: Int
        var domain: String?
        if count == 9 {
            first = 2
        } else if count >= 11 {
            let name = text(2)
            domain = name == "_" ? nil : name
            first = 4
        } else {
            return nil
        }
        guard let delivered = number(first + 2), let streamSequence = number(first + 3),
            let consumerSequence = number(first + 4), let time = number(first + 5), time <= UInt64(Int64.max),
            let pending = number(first + 6)
        else { return nil }
        return JetStreamMetadata(
            domain: domain, stream: text(first), consumer: text(first + 1), delivered: delivered,
            streamSequence: streamSequence, consumerSequence: consumerSequence, timestamp: Int64(time), pending: pending
        )
    }

    public init(
        domain: String?,
        stream: String,
        consumer: String,
        delivered: UInt64,
        streamSequence: UInt64,
        consumerSequence: UInt64,
        timestamp: Int64,
        pending: UInt64
    ) {
        self.domain = domain
        self.stream = stream
        self.consumer = consumer
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
        self.init(message: message, metadata: metadata, connection: connection)
    }

    /// A message whose reply subject has already been read.
    init(message: NATSMessage, metadata: JetStreamMetadata, connection: NATSConnection) {
        self.message = message
        self.metadata = metadata
        self.connection = connection
    }

    private func send(_ body: String) throws(NATSError) {
        try send(Array(body.utf8))
    }

    private func send(_ body: [UInt8]) throws(NATSError) {
        guard let reply = message.replyTo else { return }
        try connection.publish(body, to: reply)
    }

    /// The body of an acknowledgement, made once.
    private static let ackBody = Array("+ACK".utf8)

    /// Done with it: the server will not deliver it again.
    public func ack() throws(NATSError) { try send(Self.ackBody) }

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

