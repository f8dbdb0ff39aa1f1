import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// `ennio coordinator` as a user runs it keeps the rows `ennio sessions --json` and `ennio nodes
/// --json` print in the buckets ENNIO_SESSIONS and ENNIO_NODES, one row a key.
@Suite struct StateBucketCommandTests {
    /// A bucket's values by key, read with a watch up to its initial-values marker.
    static func contents(of bucket: String, on connection: NATSConnection) async throws -> [String: JSONValue] {
        try await JetStream(connection: connection).keyValue(bucket).currentValues().mapValues { try JSONValue(parsing: $0) }
    }

    /// A node row without `seconds_since_last_seen`, which changes with every instant.
    static func withoutAge(_ row: JSONValue) -> JSONValue {
        guard case .object(var members) = row else { return row }
        members["seconds_since_last_seen"] = nil
        return .object(members)
    }

    @Test func theBucketsHoldTheRowsThatSessionsAndNodesPrintWithJSON() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = ["NATS_URL": server.url]
        let coordinator = try EnnioProcess(["coordinator", "--db", directory + "/history.sqlite"], environment: environment)
        try await coordinator.waitForOutput("reading stream ENNIO_EVENTS")
        let published: [[String]] = [
            ["SessionSpawned", "--project", "my-app", "--session", "s-1"],
            ["CiFailing", "--project", "my-app", "--session", "s-1", "--message", "unit tests fail"],
            // A session id no subject could carry: its key is escaped.
            ["SessionSpawned", "--project", "my-app", "--session", "build #7"],
            ["SessionExited", "--project", "other", "--session", "s-9"],
            ["NodeHealthCheck", "--host", "build-server", "--data", #"{"host":"build-server","interval_seconds":60,"load":[0.25]}"#],
        ]
        for arguments in published {
            let result = try await EnnioProcess.run(["pub"] + arguments, environment: environment)
            #expect(result.status == 0, "\(result.output)")
        }
        let client = try await NATSConnection.connect(to: server)
        func printed(_ command: String) async throws -> [JSONValue] {
            let result = try await EnnioProcess.run([command, "--json"], environment: environment)
            #expect(result.status == 0, "\(result.output)")
            return try jsonDocument(in: result.output, named: command)[command]?.arrayValue ?? []
        }
        try await eventually("the buckets to hold what sessions --json and nodes --json print", within: .seconds(60)) {
            let sessions = try await printed("sessions")
            let nodes = try await printed("nodes")
            guard sessions.count == 3, nodes.count == 1 else { return false }
            var expected: [String: JSONValue] = [:]
            for row in sessions {
                guard let key = StateBucket.sessionKey(projectId: row["project_id"]?.stringValue ?? "", sessionId: row["session_id"]?.stringValue ?? "") else { return false }
                expected[key] = row
            }
            let buckets = try await (Self.contents(of: StateBucket.sessions, on: client), Self.contents(of: StateBucket.nodes, on: client))
            return buckets.0 == expected
                && buckets.1.mapValues(Self.withoutAge) == Dictionary(uniqueKeysWithValues: nodes.map { ($0["host"]?.stringValue ?? "", Self.withoutAge($0)) })
        }
        let keys = try await Self.contents(of: StateBucket.sessions, on: client).keys.sorted()
        #expect(keys == ["my-app.build=20=237", "my-app.s-1", "other.s-9"])
        #expect(try await coordinator.terminate() == 0)
        await client.close()
        await stopOffThePool(server)
    }
}
