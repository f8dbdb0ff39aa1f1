/// One operation sent by a NATS server, as decoded by ``ProtocolParser``.
public enum ServerOperation: Sendable, Hashable {
    /// `INFO {json}`: the server's description of itself; the JSON is left undecoded.
    case info(String)
    /// `MSG` or `HMSG`: a message for one of the client's subscriptions.
    case message(InboundMessage)
    /// `PING`: the server checks the client is alive; answer with `PONG`.
    case ping
    /// `PONG`: the answer to a client `PING`.
    case pong
    /// `+OK`: acknowledgement in verbose mode.
    case ok
    /// `-ERR '<text>'`: the server's error text, without the quotes.
    case error(String)
}

/// A message delivered to a subscription (`MSG` or `HMSG`).
public struct InboundMessage: Sendable, Hashable {
    /// The subject the message was published to.
    public var subject: String
    /// The subscription id the server delivers it for.
    public var sid: UInt64
    /// The subject to reply to, if the publisher asked for a reply.
    public var replyTo: String?
    /// The header block of an `HMSG`; `nil` for a plain `MSG`.
    public var headers: NATSHeaders?
    /// The payload bytes.
    public var payload: [UInt8]

    public init(subject: String, sid: UInt64, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8]) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }
}
