import NATSProtocol

/// An error from the NATS client: a typed code plus whatever context explains it.
///
/// Codes are static members rather than enum cases so that new ones can be added without
/// breaking callers that switch over them.
public struct NATSError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidURL, noServers, connectionFailed, connectionClosed, timeout
            case authorizationViolation, serverError, protocolViolation
            case invalidSubject, invalidHeaders, maxPayloadExceeded, headersNotSupported
            case noResponders, cancelled, invalidArgument, reconnectBufferFull, staleConnection, disconnected
            case tlsHandshakeFailed, tlsCertificateNotTrusted, tlsHostnameMismatch, tlsRequiredByServer, tlsUnavailable
            case invalidTLSConfiguration, invalidCredentials
            case authenticationExpired, authenticationRevoked, accountAuthenticationExpired
            case outboundBufferFull, connectionDraining, permissionViolation
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A server URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// The options name no server.
        public static let noServers = Code(.noServers)
        /// No server of the pool could be reached (see `underlying`).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection is closed; nothing more can be sent or received.
        public static let connectionClosed = Code(.connectionClosed)
        /// A flush, request or handshake did not complete in time.
        public static let timeout = Code(.timeout)
        /// The server refused the credentials (`-ERR 'Authorization Violation'`): a wrong
        /// password, token or seed, an unknown, expired or revoked user, a missing nonce.
        public static let authorizationViolation = Code(.authorizationViolation)
        /// Any other `-ERR` from the server; `message` holds its text.
        public static let serverError = Code(.serverError)
        /// The server sent bytes that break the protocol.
        public static let protocolViolation = Code(.protocolViolation)
        /// A subject, pattern or queue group is not valid.
        public static let invalidSubject = Code(.invalidSubject)
        /// A header name or value cannot be sent.
        public static let invalidHeaders = Code(.invalidHeaders)
        /// The message is larger than the server's `max_payload`.
        public static let maxPayloadExceeded = Code(.maxPayloadExceeded)
        /// Headers were given but the server does not support them.
        public static let headersNotSupported = Code(.headersNotSupported)
        /// A request found no subscriber (status 503).
        public static let noResponders = Code(.noResponders)
        /// The TLS handshake failed: the server refused it (a client certificate it wanted, a
        /// TLS version or cipher it does not accept) or answered with something that is not TLS.
        public static let tlsHandshakeFailed = Code(.tlsHandshakeFailed)
        /// The server's certificate does not chain to a trusted authority (the CA file, or the
        /// system's trust store), has expired or is not valid yet; `message` names its subject.
        public static let tlsCertificateNotTrusted = Code(.tlsCertificateNotTrusted)
        /// The server's certificate is trusted but names another host than the one connected to
        /// (or ``TLSOptions/serverName``).
        public static let tlsHostnameMismatch = Code(.tlsHostnameMismatch)
        /// The server requires TLS and the options say not to use it (``TLSOptions/Mode/disabled``).
        public static let tlsRequiredByServer = Code(.tlsRequiredByServer)
        /// TLS was asked for (a `tls://` URL, TLS options) and the server does not offer it.
        public static let tlsUnavailable = Code(.tlsUnavailable)
        /// A CA file, client certificate or key cannot be read or used (they do not match, the
        /// key is encrypted, …).
        public static let invalidTLSConfiguration = Code(.invalidTLSConfiguration)
        /// An NKEY seed, `.creds` file or JWT cannot be read or used; the seed never appears in
        /// the message.
        public static let invalidCredentials = Code(.invalidCredentials)
        /// The server ended the connection because the user's JWT expired
        /// (`-ERR 'User Authentication Expired'`).
        public static let authenticationExpired = Code(.authenticationExpired)
        /// The server ended the connection because the user's JWT was revoked
        /// (`-ERR 'User Authentication Revoked'`).
        public static let authenticationRevoked = Code(.authenticationRevoked)
        /// The server ended the connection because the account's JWT expired
        /// (`-ERR 'Account Authentication Expired'`).
        public static let accountAuthenticationExpired = Code(.accountAuthenticationExpired)
        /// The waiting task was cancelled.
        public static let cancelled = Code(.cancelled)
        /// An argument is out of range.
        public static let invalidArgument = Code(.invalidArgument)

        /// Disconnected, and the publish does not fit in the reconnect buffer.
        public static let reconnectBufferFull = Code(.reconnectBufferFull)
        /// The server stopped answering keep-alive `PING`s.
        public static let staleConnection = Code(.staleConnection)

        /// The connection broke while waiting; it is reconnecting.
        public static let disconnected = Code(.disconnected)

        /// Connected, but more bytes wait for the server than ``NATSOptions/writeBufferLimit``:
        /// the publisher is faster than the network or the server. The message was not
        /// buffered. `publishWaitingForRoom` waits instead.
        public static let outboundBufferFull = Code(.outboundBufferFull)
        /// The connection is draining: it takes no new subscriptions.
        public static let connectionDraining = Code(.connectionDraining)
        /// The server refused an operation this user may not do (`-ERR 'Permissions
        /// Violation …'`); the connection stays up.
        public static let permissionViolation = Code(.permissionViolation)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// A human-readable explanation.
    public let message: String
    /// The lower-level error, described, if one caused this one.
    public let underlying: String?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying.map { String(describing: $0) }
    }

    public var description: String {
        var text = "NATS error (\(code)): \(message)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    static func closed() -> NATSError {
        NATSError(.connectionClosed, "the connection is closed")
    }

    static func subject(_ error: SubjectError) -> NATSError {
        // The subject error's description is the whole story: not repeated as "underlying".
        NATSError(.invalidSubject, error.description)
    }
}
