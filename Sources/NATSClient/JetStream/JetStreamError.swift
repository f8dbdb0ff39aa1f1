/// An error reply from the JetStream API: `{"error":{"code":404,"err_code":10059,"description":"stream not found"}}`.
public struct JetStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP-like status code (400, 404, 503, …).
    public let code: Int
    /// JetStream's own, more precise error code (10059 "stream not found", 10071 "wrong last sequence", …).
    public let errorCode: Int
    public let errorDescription: String

    public init(code: Int, errorCode: Int, description: String) {
        self.code = code
        self.errorCode = errorCode
        self.errorDescription = description
    }

    public static let streamNotFound = 10059
    public static let consumerNotFound = 10014
    public static let streamNameInUse = 10058
    public static let wrongLastSequence = 10071
    public static let wrongExpectedStream = 10060
    /// "no suitable peers for placement": too few servers for the replicas asked for — or, on
    /// a cluster just started, too few that have joined yet.
    public static let noSuitablePeers = 10005

    /// The server's text is escaped: it comes from the wire.
    public var description: String { "JetStream error \(code)/\(errorCode): \(errorDescription.debugDescription)" }
}
