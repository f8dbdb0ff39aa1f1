public import NATSProtocol

/// A message received on a subscription.
public struct NATSMessage: Sendable, Hashable {
    /// The subject it was published to.
    public var subject: String
    /// Where to send a reply, if the publisher asked for one.
    public var replyTo: String?
    /// Its headers, if it was published with any (or carries a status).
    public var headers: NATSHeaders?
    /// Its payload bytes.
    public var payload: [UInt8]

    public init(subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8]) {
        self.subject = subject
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }

    /// The payload decoded as UTF-8.
    public var string: String { String(decoding: payload, as: UTF8.self) }

    /// The status code of the header block (`503` for "no responders"), if any.
    public var status: Int? { headers?.status }

    /// Bytes this message occupies for pending limits: payload plus headers.
    var size: Int { payload.count + (headers?.encodedCount ?? 0) }
}
