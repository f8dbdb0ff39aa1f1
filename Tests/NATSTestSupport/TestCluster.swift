import EnnioSync
import Foundation

/// A cluster of real nats-server processes joined by routes on loopback. Nodes start when
/// asked, so a test can connect to one before the others exist; a node stopped or killed can
/// be started again (on the same ports and, with JetStream, the same store).
///
/// With `jetStream`, every node runs JetStream in a store of its own and is named
/// `<name>-<index>` (JetStream clusters need names; ``index(of:)`` maps one back), so that
/// streams can have replicas on several nodes.
final class TestCluster: Sendable {
    let clientPorts: [Int]
    let routePorts: [Int]
    let jetStream: Bool
    /// The cluster's name, and the prefix of its nodes' names.
    let name: String
    private let storeRoot: String?
    private let started = Locked<[Int: TestServer]>([:])

    init(size: Int, startAll: Bool = true, jetStream: Bool = false) throws {
        clientPorts = try (0..<size).map { _ in try TestServer.freePort() }
        routePorts = try (0..<size).map { _ in try TestServer.freePort() }
        self.jetStream = jetStream
        name = "ennio-test-\(UUID().uuidString.prefix(8).lowercased())"
        if jetStream {
            let root = NSTemporaryDirectory() + "ennio-cluster-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            storeRoot = root
        } else {
            storeRoot = nil
        }
        if startAll {
            for index in 0..<size { _ = try start(index) }
        }
    }

    deinit {
        let servers = started.withLock { $0 }
        for server in servers.values { server.stop() }
        if let storeRoot { try? FileManager.default.removeItem(atPath: storeRoot) }
    }

    /// The client URLs of every node, for a connection that may use any of them.
    var urls: [String] { clientPorts.map { "nats://127.0.0.1:\($0)" } }

    /// The name node `index` runs under.
    func serverName(_ index: Int) -> String { "\(name)-\(index)" }

    /// The index of the node called `serverName`, if it is one of ours.
    func index(of serverName: String) -> Int? {
        clientPorts.indices.first { self.serverName($0) == serverName }
    }

    @discardableResult
    func start(_ index: Int) throws -> TestServer {
        let routes = routePorts.enumerated().filter { $0.offset != index }.map { "nats://127.0.0.1:\($0.element)" }
        var arguments = [
            "--cluster_name", name, "--cluster", "nats://127.0.0.1:\(routePorts[index])",
            "--routes", routes.joined(separator: ","),
        ]
        if let storeRoot {
            arguments += ["--name", serverName(index), "-js", "-sd", "\(storeRoot)/\(index)"]
        }
        let server = try TestServer(arguments: arguments, port: clientPorts[index])
        started.withLock { $0[index] = server }
        return server
    }

    func node(_ index: Int) -> TestServer {
        started.withLock { $0[index]! }
    }

    /// Kills node `index` (SIGKILL: no goodbye to its peers or clients).
    func kill(_ index: Int) {
        let server = started.withLock { $0.removeValue(forKey: index) }
        server?.kill()
        server?.stop()
    }
}
