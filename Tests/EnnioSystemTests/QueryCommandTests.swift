import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// `ennio history`, `sessions`, `replay` and `coordinator --rebuild` as a user runs them, against
/// replies that do not fit one message and events of other publishers.
@Suite struct QueryCommandTests {
    static func folder() throws -> String {
        let folder = NSTemporaryDirectory() + "ennio-query-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    static func jsonLines(_ output: String) throws -> [Event] {
        try output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try Event(json: String($0)) }
    }

    @Test func historyFollowsCursorsAcrossRepliesAndReadsAnEventOfMaxPayloadBack() async throws {
        let maxPayload = 8192
        let server = try TestServer(arguments: ["-c", try TestServer.writeConfig("max_payload: \(maxPayload)\n")])
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let environment = ["NATS_URL": server.url]
        let coordinator = try EnnioProcess(["coordinator", "--db", folder + "/h.sqlite", "--mode", "core"], environment: environment)
        try await coordinator.waitForOutput("subscribed to ennio.>")

        let client = try await NATSConnection.connect(to: server)
        var events: [Event] = []
        for index in 0..<30 {
            var message = "event \(index) "
            // Every third event fills most of a reply, the last one all of a message.
            if index % 3 == 0 { message += String(repeating: "ü\"", count: 1500) }
            events.append(Event(
                type: .ciFailing, sessionId: "s\(index % 4)", projectId: "big",
                timestamp: EventTimestamp(nanosecondsSinceEpoch: 1_800_000_000_000_000_000 + Int64(index) * 1000), message: message))
        }
        var last = events.removeLast()
        while last.jsonBytes.count < maxPayload { last.message += "x" }
        last.message.removeLast(last.jsonBytes.count - maxPayload)
        #expect(last.jsonBytes.count == maxPayload)
        events.append(last)
        for event in events { try client.publish(event.jsonBytes, to: try EventSubject.subject(for: event)) }
        try await client.flush()
        try await eventually("every event in the history") {
            try await EnnioProcess.run(["history", "--limit", "1000", "--json"], environment: environment).output.split(separator: "\n").filter { $0.hasPrefix("{") }.count == events.count
        }

        let all = try await EnnioProcess.run(["history", "--limit", "1000", "--json"], environment: environment)
        #expect(all.status == 0, "\(all.output)")
        #expect(try Self.jsonLines(all.output) == events)

        // --limit counts events over pages; the rest follows with --after.
        let first = try await EnnioProcess.run(["history", "--limit", "10"], environment: environment)
        #expect(first.output.contains("10 events; more with --after '"), "\(first.output)")
        let cursor = try #require(first.output.split(separator: "'").dropFirst().first.map(String.init))
        let rest = try await EnnioProcess.run(["history", "--limit", "1000", "--after", cursor, "--json"], environment: environment)
        #expect(try Self.jsonLines(rest.output) == Array(events[10...]))
        let newest = try await EnnioProcess.run(["history", "--newest-first", "--limit", "2", "--json"], environment: environment)
        #expect(try Self.jsonLines(newest.output) == [events[29], events[28]])
        let bad = try await EnnioProcess.run(["history", "--after", "yesterday"], environment: environment)
        #expect(bad.status == 2 && bad.output.contains("--after"))

        let sessions = try await EnnioProcess.run(["sessions", "--json", "--project", "big"], environment: environment)
        let table = try jsonDocument(in: sessions.output, named: "sessions")
        #expect(table["sessions"]?.arrayValue?.compactMap { $0["session_id"]?.stringValue } == ["s0", "s1", "s2", "s3"])
        #expect(try await coordinator.terminate() == 0)
        await client.close()
    }

    /// The Rust implementation's node events: shown by history, re-published by replay on the
    /// subject they came on (replay used to stop at the first one), and kept across
    /// `coordinator --rebuild` without making a node.
    @Test func replayRepublishesRustShapedNodeEventsAndRebuildKeepsThemOutOfTheNodes() async throws {
        let server = try TestServer()
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let environment = ["NATS_URL": server.url]
        let database = folder + "/h.sqlite"
        let coordinator = try EnnioProcess(["coordinator", "--db", database, "--mode", "core"], environment: environment)
        try await coordinator.waitForOutput("subscribed to ennio.>")
        let client = try await NATSConnection.connect(to: server)
        let rust = Event(type: .nodeHealthCheck, sessionId: "6a1f0c2e-1d2b-4c3d-8e4f-5a6b7c8d9e0f", projectId: "my-app", message: "health", data: .null)
        let ours = Event(type: .nodeHealthCheck, sessionId: "", projectId: "", message: "ok", data: ["host": "build-1", "interval_seconds": 60])
        try client.publish(rust.jsonBytes, to: "ennio.node.my-app.health_check")
        try EventPublisher(connection: client, host: "build-1").publish(ours)
        try await client.flush()
        try await eventually("both node events stored") {
            try await EnnioProcess.run(["history", "--category", "node", "--json"], environment: environment).output.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 2
        }
        let nodes = try await EnnioProcess.run(["nodes", "--json"], environment: environment)
        #expect(try jsonDocument(in: nodes.output, named: "nodes")["nodes"]?.arrayValue?.compactMap { $0["host"]?.stringValue } == ["build-1"])

        let watcher = try client.subscribe(to: "ennio.node.>")
        try await client.flush()
        let replay = try await EnnioProcess.run(["replay", "--category", "node", "--republish"], environment: environment)
        #expect(replay.status == 0, "\(replay.output)")
        #expect(replay.output.contains("re-published 2 events"))
        let seen = try await watcher.take(2)
        #expect(Set(seen.map(\.subject)) == ["ennio.node.my-app.health_check", "ennio.node.build-1.health_check"])
        #expect(try await coordinator.terminate() == 0)

        let rebuilt = try EnnioProcess(["coordinator", "--db", database, "--mode", "core", "--rebuild"], environment: environment)
        try await rebuilt.waitForOutput("subscribed to ennio.>")
        #expect(rebuilt.output.contains("rebuilt lifecycle, families from the history"), "\(rebuilt.output)")
        let after = try await EnnioProcess.run(["nodes", "--json"], environment: environment)
        #expect(try jsonDocument(in: after.output, named: "nodes")["nodes"]?.arrayValue?.compactMap { $0["host"]?.stringValue } == ["build-1"])
        #expect(try await rebuilt.terminate() == 0)
        await client.close()
    }
}
