import Foundation

/// What a server tells about itself in `INFO`. Unknown fields are ignored.
public struct ServerInfo: Sendable, Hashable, Decodable {
    public var serverID: String
    public var serverName: String?
    public var version: String
    public var proto: Int?
    public var host: String?
    public var port: Int?
    public var headers: Bool?
    public var maxPayload: Int
    public var authRequired: Bool?
    public var tlsRequired: Bool?
    /// The server accepts TLS without requiring it (`allow_non_tls`).
    public var tlsAvailable: Bool?
    /// The server asks for a client certificate (mutual TLS).
    public var tlsVerify: Bool?
    /// What the client signs to prove it holds an NKEY (NKEY and JWT authentication).
    public var nonce: String?
    public var connectURLs: [String]?
    public var lameDuckMode: Bool?
    public var jetStream: Bool?
    public var clientID: UInt64?
    public var clientIP: String?
    public var cluster: String?

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id"
        case serverName = "server_name"
        case version, proto, host, port, headers
        case maxPayload = "max_payload"
        case authRequired = "auth_required"
        case tlsRequired = "tls_required"
        case tlsAvailable = "tls_available"
        case tlsVerify = "tls_verify"
        case nonce
        case connectURLs = "connect_urls"
        case lameDuckMode = "ldm"
        case jetStream = "jetstream"
        case clientID = "client_id"
        case clientIP = "client_ip"
        case cluster
    }

    /// Decodes the JSON that follows `INFO `.
    public init(json: String) throws(NATSError) {
        do {
            self = try JSONDecoder().decode(ServerInfo.self, from: Data(json.utf8))
        } catch {
            throw NATSError(.protocolViolation, "the server's INFO is not valid JSON", underlying: error)
        }
    }
}
