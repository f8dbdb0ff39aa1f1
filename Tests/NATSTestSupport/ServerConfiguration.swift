/// A nats-server configuration file for a test server: TLS, users, operator mode, cluster,
/// JetStream. The listen address and port stay on the command line (``TestServer``), so one
/// configuration serves any port.
struct ServerConfiguration: Sendable {
    /// The `tls { … }` block.
    struct TLS: Sendable {
        var certificateFile: String
        var keyFile: String
        /// Trusted authorities for client certificates (needed with `verify`).
        var caFile: String?
        /// Require and check a client certificate (mutual TLS).
        var verify = false
        /// The TLS handshake comes before `INFO`.
        var handshakeFirst = false
        /// Accept plain clients too (`INFO` then says `tls_available`, not `tls_required`).
        var allowNonTLS = false

        /// The server's certificate made by ``TestCertificates``, trusting its CA for clients.
        static func standard(_ certificates: TestCertificates, verify: Bool = false, handshakeFirst: Bool = false) -> TLS {
            TLS(
                certificateFile: certificates.serverCertificate,
                keyFile: certificates.serverKey,
                caFile: certificates.caFile,
                verify: verify,
                handshakeFirst: handshakeFirst
            )
        }
    }

    /// One entry of `authorization { users = [...] }`.
    enum User: Sendable {
        case password(user: String, password: String)
        /// An NKEY user, known by its public key (`U…`).
        case nkey(String)
    }

    /// Decentralised (JWT) authentication: the operator's JWT and the accounts' JWTs, served
    /// by the built-in memory resolver.
    struct OperatorMode: Sendable {
        var operatorJWT: String
        /// Account public key → account JWT.
        var accounts: [String: String]
        var systemAccount: String?
    }

    /// A `cluster { … }` block.
    struct Cluster: Sendable {
        var name: String
        var port: Int
        var routes: [String]
    }

    var tls: TLS?
    var users: [User] = []
    var token: String?
    var operatorMode: OperatorMode?
    var cluster: Cluster?
    /// Enables JetStream, storing in this directory.
    var jetStreamDirectory: String?
    /// Any further lines, verbatim.
    var extra: [String] = []

    init() {}

    /// The configuration file's text.
    var text: String {
        var lines: [String] = []
        if let tls {
            lines.append("tls {")
            lines.append("  cert_file: \(quoted(tls.certificateFile))")
            lines.append("  key_file: \(quoted(tls.keyFile))")
            if let ca = tls.caFile { lines.append("  ca_file: \(quoted(ca))") }
            if tls.verify { lines.append("  verify: true") }
            if tls.handshakeFirst { lines.append("  handshake_first: true") }
            lines.append("  timeout: 5")
            lines.append("}")
            if tls.allowNonTLS { lines.append("allow_non_tls: true") }
        }
        if !users.isEmpty || token != nil {
            lines.append("authorization {")
            if let token { lines.append("  token: \(quoted(token))") }
            if !users.isEmpty {
                lines.append("  users = [")
                for user in users {
                    switch user {
                    case .password(let name, let password):
                        lines.append("    { user: \(quoted(name)), password: \(quoted(password)) }")
                    case .nkey(let key):
                        lines.append("    { nkey: \(quoted(key)) }")
                    }
                }
                lines.append("  ]")
            }
            lines.append("}")
        }
        if let operatorMode {
            lines.append("operator: \(quoted(operatorMode.operatorJWT))")
            if let system = operatorMode.systemAccount { lines.append("system_account: \(quoted(system))") }
            lines.append("resolver: MEMORY")
            lines.append("resolver_preload: {")
            for (account, jwt) in operatorMode.accounts.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(quoted(account)): \(quoted(jwt))")
            }
            lines.append("}")
        }
        if let cluster {
            lines.append("cluster {")
            lines.append("  name: \(quoted(cluster.name))")
            lines.append("  listen: \(quoted("127.0.0.1:\(cluster.port)"))")
            lines.append("  routes: [\(cluster.routes.map(quoted).joined(separator: ", "))]")
            lines.append("}")
        }
        if let directory = jetStreamDirectory {
            lines.append("jetstream { store_dir: \(quoted(directory)) }")
        }
        lines += extra
        return lines.joined(separator: "\n") + "\n"
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
