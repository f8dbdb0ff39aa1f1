@testable import EnnioCoordinator
import EnnioSync
import Foundation
import NATSClient
@testable import NATSTestSupport

/// A JetStream server with a store of its own, a client of it, and the log of the coordinators
/// started on it; the store is removed with the scene.
final class JetStreamScene: Sendable {
    let server: TestServer
    let directory: String
    let client: NATSConnection
    private let lines = Locked<[String]>([])

    init() async throws {
        (server, directory) = try await onThread { try jetStreamServer() }
        client = try await NATSConnection.connect(to: server)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Every line the coordinators logged so far.
    var log: [String] { lines.withLock { $0 } }

    /// A coordinator reading the stream (JetStream mode unless `options` say otherwise), ticking
    /// every 100 ms, logging into ``log``.
    func coordinator(
        database: String = ":memory:", _ configure: (inout CoordinatorOptions) -> Void = { _ in }
    ) async throws -> RunningCoordinator {
        var options = CoordinatorOptions()
        options.mode = .jetStream
        options.tickInterval = .milliseconds(100)
        configure(&options)
        let running = try await RunningCoordinator(server: server, databasePath: database, options: options) { [self] line in
            lines.withLock { $0.append(line) }
        }
        // Queries are answered once it has caught up with the stream (a restart: with what was
        // published while it was down).
        try await within(.seconds(60), "the coordinator caught up with the stream") { try await running.coordinator.waitUntilCaughtUp() }
        return running
    }

    /// Stops the coordinators, the client and the server.
    func finish(_ coordinators: RunningCoordinator...) async {
        await client.close()
        for running in coordinators { await running.stop() }
        await stopOffThePool(server)
    }
}
