import EnnioSync
import Foundation
import NATSClient
@testable import NATSTestSupport

/// A deployment as `deploy/` makes it, in a temporary folder: the users' credentials made by
/// `deploy/make-credentials.sh` (with the `ennio` under test), a CA and the server's certificate
/// by `deploy/make-certs.sh`, and a nats-server running `deploy/nats-server.conf` with them.
///
/// The configuration takes its paths from the environment (`$ENNIO_NATS_STORE_DIR`, …); a test
/// server inherits this process's environment, so the copy it runs has them written in
/// instead, and nothing else changed.
final class Deployment: Sendable {
    let folder: TemporaryDirectory
    let secrets: String
    let storeDirectory: String
    private let configuration: String
    private let running: Locked<TestServer>

    var server: TestServer { running.withLock { $0 } }
    var url: String { "tls://127.0.0.1:\(server.port)" }

    /// - Parameter hosts: the agents' hosts, a user each (`agent-<host>`).
    init(hosts: [String]) async throws {
        folder = try TemporaryDirectory("ennio-deployment")
        secrets = folder.path + "/secrets"
        storeDirectory = folder.path + "/store"
        let ennio = ["ENNIO": RepositoryScript.ennioBinary()]
        for (script, arguments) in [("deploy/make-credentials.sh", ["--out", secrets] + hosts), ("deploy/make-certs.sh", ["--out", secrets + "/tls", "localhost"])] {
            let made = try await RepositoryScript(script).run(arguments, environment: ennio, limit: .seconds(120))
            guard made.status == 0 else { throw TestSupportError(description: "\(script) failed (\(made.status)):\n\(made.output)") }
        }
        guard let root = repositoryRoot() else { throw TestSupportError(description: "no repository root") }
        var text = try String(contentsOfFile: root + "/deploy/nats-server.conf", encoding: .utf8)
        for (variable, value) in [
            ("ENNIO_NATS_STORE_DIR", storeDirectory),
            ("ENNIO_NATS_CERT_FILE", secrets + "/tls/server-cert.pem"),
            ("ENNIO_NATS_KEY_FILE", secrets + "/tls/server-key.pem"),
        ] {
            text = text.replacingOccurrences(of: "$" + variable, with: "\"\(value)\"")
        }
        configuration = secrets + "/nats-server.conf"
        try text.write(toFile: configuration, atomically: true, encoding: .utf8)
        let path = configuration
        running = Locked(try await onThread { try TestServer(arguments: ["-c", path]) })
    }

    /// Kills the server (SIGKILL: no clean shutdown) and starts it again on the same port with
    /// the same store.
    func restartServer() async throws {
        let (old, path) = (server, configuration)
        let restarted = try await onThread {
            old.kill()
            return try TestServer(arguments: ["-c", path], port: old.port)
        }
        running.withLock { $0 = restarted }
    }

    /// Connection options for `user`, as the deployment's programs connect.
    func options(_ user: String) -> NATSOptions {
        var options = NATSOptions(servers: [url])
        options.credentials = .nkeySeedFile("\(secrets)/\(user).nk")
        options.tls.caFile = secrets + "/tls/ca.pem"
        options.inboxPrefix = "_INBOX.\(user)"
        options.name = user
        return options
    }

    func connect(_ user: String, configure: (inout NATSOptions) -> Void = { _ in }) async throws -> NATSConnection {
        var options = options(user)
        configure(&options)
        return try await NATSConnection.connect(options)
    }

    /// The environment an `ennio` process connects as `user` with.
    func environment(_ user: String) -> [String: String] {
        [
            "NATS_URL": url, "NATS_CA": secrets + "/tls/ca.pem", "NATS_NKEY": "\(secrets)/\(user).nk",
            "NATS_INBOX_PREFIX": "_INBOX.\(user)",
        ]
    }
}
