/// How a connection uses TLS (the system's OpenSSL 3).
///
/// By default (``Mode/automatic``) TLS is used when a URL says `tls://`, when any of the
/// files below or ``handshakeFirst`` is set, or when the server requires it (as nats.go
/// does); the server's certificate is checked against the system's trust store, or against
/// ``caFile`` alone when one is given, and must name the host connected to (or ``serverName``).
public struct TLSOptions: Sendable, Hashable {
    /// When to use TLS.
    public struct Mode: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable { case automatic, required, disabled }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// TLS when a URL, an option or the server asks for it.
        public static let automatic = Mode(.automatic)
        /// TLS with every server, `nats://` URLs included; a server that does not offer it
        /// fails with ``NATSError/Code/tlsUnavailable``.
        public static let required = Mode(.required)
        /// Never TLS; a server that requires it fails with ``NATSError/Code/tlsRequiredByServer``.
        public static let disabled = Mode(.disabled)

        public var description: String { base.rawValue }
    }

    /// The oldest TLS version accepted.
    public struct Version: Sendable, Hashable, CustomStringConvertible {
        let protocolNumber: Int32
        public let description: String

        /// TLS 1.2, the oldest this client ever speaks.
        public static let tls12 = Version(protocolNumber: 0x0303, description: "TLS 1.2")
        /// TLS 1.3 only.
        public static let tls13 = Version(protocolNumber: 0x0304, description: "TLS 1.3")
    }

    public var mode: Mode = .automatic
    /// PEM file of the certificate authorities to trust instead of the system's trust store.
    public var caFile: String?
    /// PEM file of the client's certificate (with its chain), for servers that verify clients
    /// (`verify: true`, mutual TLS).
    public var certificateFile: String?
    /// PEM file of the client certificate's private key (not encrypted).
    public var keyFile: String?
    /// The name the server's certificate must carry and that is sent as SNI, when it differs
    /// from the URL's host (e.g. connecting by IP address to a server whose certificate names
    /// it by DNS name).
    public var serverName: String?
    public var minimumVersion: Version = .tls12
    /// Start TLS before the server's `INFO` (the server's `handshake_first`), saving a round
    /// trip and hiding even `INFO` from the network. Implies TLS.
    public var handshakeFirst = false
    /// Accept any certificate, from anyone, for any name. Anyone on the network path can then
    /// read and change everything, credentials included: for a test bench only, never in
    /// production.
    public var dangerouslySkipCertificateVerification = false

    public init() {}

    /// Whether these options ask for TLS whatever the URL says.
    var asksForTLS: Bool {
        mode == .required || handshakeFirst || caFile != nil || certificateFile != nil || keyFile != nil
    }
}
