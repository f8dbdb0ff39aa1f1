import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// `ennio coordinator --retain`: events older than the limit leave the history, and the
/// coordinator says how many.
@Suite struct RetentionCommandTests {
    @Test func aCoordinatorStartedWithARetentionDeletesTheEventsOlderThanIt() async throws {
        let server = try await onThread { try TestServer() }
        let folder = try TemporaryDirectory("ennio-retain")
        let environment = ["NATS_URL": server.url]
        let database = folder.path + "/history.sqlite"
        // First without a retention: every event is kept.
        let keeping = try EnnioProcess(["coordinator", "--db", database], environment: environment)
        try await keeping.waitForOutput("subscribed to ennio.>")
        let connection = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: connection)
        let longAgo = EventTimestamp.now() - .seconds(31 * 86_400)
        for index in 0..<3 {
            try publisher.publish(Event(type: .ciPassing, sessionId: "s", projectId: "kept-or-not", timestamp: longAgo + .seconds(index), message: "old"))
        }
        let recent = Event(type: .ciPassing, sessionId: "s", projectId: "kept-or-not", message: "recent")
        try publisher.publish(recent)
        try await connection.flush()
        func stored() async throws -> [String] {
            let history = try await EnnioProcess.run(["history", "--project", "kept-or-not", "--json"], environment: environment)
            return history.output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap { try? Event(json: String($0)).id }
        }
        try await eventually("the four events stored") { try await stored().count == 4 }
        #expect(try await keeping.terminate() == 0)

        // Then with 30 days: at start, the three older ones go.
        let retaining = try EnnioProcess(["coordinator", "--retain", "30d", "--db", database], environment: environment)
        try await retaining.waitForOutput("deleted 3 events older than")
        #expect(try await stored() == [recent.id])
        #expect(try await retaining.terminate() == 0)
        #expect(retaining.output.contains("expired 3"), "\(retaining.output)")
        await connection.close()
    }
}
