import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// Output that cannot be forged (issue 14): ids, sessions, messages and subjects chosen by any
/// publisher are shown escaped by `sub`, `history`, `sessions` and the coordinator's log, while
/// `--json` stays exact JSON; a log line quotes at most a bounded prefix of what it complains
/// about.
@Suite struct HostileTextTests {
    static let session = "s\n[forged] coordinator: stopping"
    /// (A NUL cannot be in a command-line argument: only the raw event carries one.)
    static let message = "\u{1B}[2J\u{1B}[31mcleared\u{7}\u{9B}\u{202E}"

    /// No terminal control and no line break that the publisher chose.
    static func expectHarmless(_ output: String, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!output.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{0}" || $0 == "\u{7}" || $0 == "\u{9B}" || $0 == "\u{202E}" }, "\(context): \(output.debugDescription)", sourceLocation: sourceLocation)
        #expect(!output.split(separator: "\n").contains { $0.hasPrefix("[forged]") }, "\(context): \(output)", sourceLocation: sourceLocation)
    }

    @Test func hostileFieldsAreShownEscapedAndJSONStaysExact() async throws {
        let server = try TestServer()
        let folder = NSTemporaryDirectory() + "ennio-hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let environment = ["NATS_URL": server.url]
        let coordinator = try EnnioProcess(["coordinator", "--db", folder + "/history.sqlite"], environment: environment)
        try await coordinator.waitForOutput("subscribed to ennio.>")
        let readable = try EnnioProcess(["sub", "ennio.>", "--count", "2"], environment: environment)
        let json = try EnnioProcess(["sub", "ennio.>", "--count", "2", "--json"], environment: environment)
        try await readable.waitForOutput("listening on")
        try await json.waitForOutput("listening on")

        let connection = try await NATSConnection.connect(to: server.url)
        // Through the command line, and raw, with an id of the publisher's choosing.
        let published = try await EnnioProcess.run(["pub", "CiFailing", "--project", "p", "--session", Self.session, "--message", Self.message], environment: environment)
        #expect(published.status == 0, "\(published.output)")
        let raw = Event(id: "id\n[forged] id", type: .ciPassing, sessionId: Self.session, projectId: "p", message: Self.message + "\u{0}")
        // (Raw: an id with a line break cannot be a Nats-Msg-Id header, which EventPublisher sets.)
        try connection.publish(raw.jsonBytes, to: "ennio.ci.p.passing")
        // The wrong subject and a huge number: the coordinator complains, briefly.
        let misplaced = Event(id: "wrong\n[forged] place", type: .ciPassing, sessionId: "s", projectId: "other", message: "m")
        try connection.publish(misplaced.jsonBytes, to: "ennio.ci.p.passing")
        let digits = String(repeating: "7", count: 500_000)
        try connection.publish(#"{"id":"x","event_type":"ci_failing","priority":"info","session_id":"s","project_id":"p","timestamp":"2026-01-01T00:00:00Z","message":"m","data":"# + digits + "e9}", to: "ennio.ci.p.failing")
        try await connection.flush()

        #expect(try await readable.finish() == 0)
        #expect(try await json.finish() == 0)
        Self.expectHarmless(readable.output, "ennio sub")
        #expect(readable.output.contains(#"session=s\n[forged] coordinator: stopping"#), "\(readable.output)")
        #expect(readable.output.contains(#"\u{1B}[2J\u{1B}[31mcleared\u{7}\u{9B}\u{202E}\u{0}"#), "\(readable.output)")

        // --json: every event line is exact JSON that reads back as the event sent.
        let lines = json.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 2)
        let received = try lines.map { try Event(json: String($0)) }
        #expect(received.map(\.sessionId) == [Self.session, Self.session])
        #expect(received.map(\.message) == [Self.message, Self.message + "\u{0}"])
        #expect(received[1] == raw)

        try await eventually("both events stored") {
            try await EnnioProcess.run(["history", "--project", "p", "--json"], environment: environment).output.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 2
        }
        let history = try await EnnioProcess.run(["history", "--project", "p"], environment: environment)
        Self.expectHarmless(history.output, "ennio history")
        #expect(history.output.contains(#"\u{1B}[2J"#))
        let sessions = try await EnnioProcess.run(["sessions"], environment: environment)
        Self.expectHarmless(sessions.output, "ennio sessions")
        #expect(sessions.output.contains(#"s\n[forged]"#), "\(sessions.output)")

        try await coordinator.waitForOutput("wrong subject")
        try await coordinator.waitForOutput("malformed event")
        #expect(try await coordinator.terminate() == 0)
        let log = coordinator.output
        Self.expectHarmless(log, "the coordinator's log")
        #expect(log.contains(#"ignored event wrong\n[forged] place"#), "\(log)")
        let longest = log.split(separator: "\n").map(\.utf8.count).max() ?? 0
        #expect(longest < 2 * LogText.limit + 300, "a log line of \(longest) bytes")
        await connection.close()
    }

    /// Invalid UTF-8 and NUL, in events, commands and lines an agent reads, and a hostile
    /// health check answering `ennio command`: every text output shows them escaped.
    @Test func invalidUTF8CommandsAgentLinesAndHealthChecksAreShownEscaped() async throws {
        let server = try await onThread { try TestServer() }
        let folder = try TemporaryDirectory("ennio-hostile")
        let environment = ["NATS_URL": server.url]
        let coordinator = try EnnioProcess(["coordinator", "--db", folder.path + "/history.sqlite"], environment: environment)
        try await coordinator.waitForOutput("subscribed to ennio.>")
        let lines = folder.path + "/lines.jsonl"
        // Not UTF-8, a NUL, an escape sequence and a forged line, as lines an agent relays.
        let hostileLine: [UInt8] = Array(#"{"event_type":"ci_failing","priority":"info","session_id":"s\#u{1B}[2J","#.utf8)
            + [0xFF, 0xFE, 0x00, 0x0A] + Array("[forged] agent h: stopped \u{1B}[2J\n".utf8)
        try Data(hostileLine).write(to: URL(fileURLWithPath: lines))
        let agent = try EnnioProcess(["agent", "--host", "a", "--events-from", lines, "--sessions-dir", folder.path + "/sessions", "--health-interval", "3600"], environment: environment)
        try await agent.waitForOutput("rejected an input line")
        try await agent.waitForOutput("running")
        // Ends after one event: the health check below, which comes after everything else.
        let sub = try EnnioProcess(["sub", "ennio.>", "--count", "1"], environment: environment)
        try await sub.waitForOutput("listening on")

        let connection = try await NATSConnection.connect(to: server.url)
        // A command whose body is not UTF-8, and an event that is not either.
        try connection.publish([0xFF, 0x0A] + Array("[forged] x".utf8) + [0x1B, 0x00], to: "ennio.commands.hostile")
        try connection.publish(Array(#"{"id":"a"#.utf8) + [0xFF, 0x0A, 0x1B] + Array(#"","event_type":"ci_failing"}"#.utf8), to: "ennio.ci.p.failing")
        // Whoever may publish health checks answers `ennio command health-check` with its own text.
        let commands = try connection.subscribe(to: "ennio.commands.health_check")
        try await connection.flush()
        let answering = Task {
            for await _ in commands {
                let check = Event(type: .nodeHealthCheck, sessionId: "", projectId: "", message: "h \u{1B}[2J\n[forged] healthy\u{0}", data: ["host": "h"])
                try? connection.publish(check.jsonBytes, to: "ennio.node.h.health_check")
            }
        }
        defer { answering.cancel() }
        let asked = try await EnnioProcess.run(["command", "health-check", "--host", "h", "--wait", "30s"], environment: environment)
        #expect(asked.status == 0, "\(asked.output)")
        Self.expectHarmless(asked.output, "ennio command health-check")
        #expect(asked.output.contains(#"h \u{1B}[2J\n[forged] healthy\u{0}"#), "\(asked.output)")

        #expect(try await sub.finish() == 0)
        Self.expectHarmless(sub.output, "ennio sub")
        #expect(sub.output.contains(#"ennio.commands.hostile  \xFF\n[forged] x\u{1B}\u{0}"#), "\(sub.output)")
        #expect(sub.output.contains("malformed event on ennio.ci.p.failing"), "\(sub.output)")

        try await coordinator.waitForOutput("malformed event")
        #expect(try await coordinator.terminate() == 0)
        Self.expectHarmless(coordinator.output, "the coordinator's log")
        #expect(try await agent.terminate() == 0)
        Self.expectHarmless(agent.output, "the agent's log")
        #expect(agent.output.contains("rejected an input line"), "\(agent.output)")
        await connection.close()
    }
}
