import EnnioEvents
import Foundation
@testable import NATSTestSupport
import Testing

@Suite struct CommandLineUsageTests {
    @Test(arguments: ["demo", "pub", "sub", "history", "sessions", "nodes", "coordinator", "agent", "command", "topics", "bench"])
    func everySubcommandHasHelp(command: String) async throws {
        let result = try await EnnioProcess.run([command, "--help"])
        #expect(result.status == 0)
        #expect(result.output.contains("usage: ennio \(command)"), "\(result.output)")
    }

    @Test func topLevelHelpListsTheCommands() async throws {
        let result = try await EnnioProcess.run(["--help"])
        #expect(result.status == 0)
        for command in ["demo", "pub", "sub", "history", "sessions", "nodes", "coordinator", "agent", "command", "topics", "bench"] {
            #expect(result.output.contains("  \(command)"))
        }
    }

    @Test(arguments: [
        ([], "usage: ennio"),
        (["bogus"], "unknown command"),
        (["pub", "NoSuchType", "--project", "p"], "unknown event type"),
        (["pub", "CiFailing"], "--project is required"),
        (["pub", "CiFailing", "--project", "a.b"], "project_id"),
        (["pub", "NodeConnected", "--project", "p"], "node events need --host"),
        (["pub", "CiFailing", "--project", "p", "--priority", "huge"], "unknown priority"),
        (["pub", "CiFailing", "--project", "p", "--data", "{nope"], "--data is not valid JSON"),
        (["pub", "CiFailing", "--project", "p", "--unknown"], "unknown option --unknown"),
        (["sub", "foo.>"], "event subjects start with \"ennio.\""),
        (["sub", "ennio.>", "--count", "0"], "--count"),
        (["sub"], "missing pattern"),
        (["history", "--limit", "0"], "--limit"),
        (["history", "--type", "nope"], "unknown event type"),
        (["history", "--since", "yesterday"], "--since"),
        (["agent"], "--host is required"),
        (["agent", "--host", "bad host"], "host"),
        (["agent", "--host", "h", "--events-from", "/no/such/file"], "no such file"),
        (["coordinator", "--health-interval", "-1"], "--health-interval"),
        (["coordinator", "--http-token", "/tmp/token"], "need --http"),
        (["coordinator", "--http", "nope"], "--http must be PORT or HOST:PORT"),
        (["coordinator", "--http", ":8080"], "--http needs a host"),
        (["coordinator", "--http", "8080", "--http-token", "/no/such/token"], "--http-token: cannot read"),
        (["bench", "pub", "--clients", "3"], "--clients does not apply"),
        (["coordinator", "--stream-max-age", "7"], "--stream-max-age must be a duration with a unit"),
        (["coordinator", "--stream-max-age", "30s"], "--stream-max-age must be from 1m to 3650d"),
        (["coordinator", "--stream-max-bytes", "1.5GB"], "--stream-max-bytes must be a number of bytes"),
        (["coordinator", "--stream-max-bytes", "1KiB"], "--stream-max-bytes must be from 1048576"),
        (["coordinator", "--stream-max-bytes", "99999999999TB"], "--stream-max-bytes must be a number of bytes"),
        (["coordinator", "--retain", "30s"], "--retain must be from 1m"),
        (["command"], "missing command"),
        (["command", "reboot"], "unknown command \"reboot\""),
        (["command", "kill", "--host", "h"], "kill needs --session"),
        (["command", "shutdown", "--session", "s"], "--session is for kill only"),
        (["command", "shutdown", "--wait", "1s"], "--wait is for health-check only"),
        (["command", "shutdown", "--host", "a.b"], "host"),
        (["coordinator", "--retain", "forever"], "--retain must be a duration with a unit"),
        (["topics", "check"], "exactly one subject"),
        (["bench"], "usage: ennio bench"),
        (["bench", "nope"], "unknown benchmark"),
        (["bench", "pub", "--count", "0"], "--count"),
        (["bench", "pub", "--subject", "a.*"], "--subject"),
        (["bench", "pub", "--mode", "core"], "--mode does not apply"),
        (["bench", "ingest", "--mode", "sometimes"], "--mode must be"),
        (["bench", "ingest", "--store-only", "--server", "nats://127.0.0.1:1"], "--server does not apply"),
        (["bench", "kv", "--subject", "x"], "--subject does not apply"),
    ] as [([String], String)])
    func badArgumentsExitWithTwoAndSayWhy(arguments: [String], message: String) async throws {
        let result = try await EnnioProcess.run(arguments)
        #expect(result.status == 2, "ennio \(arguments) → \(result.status): \(result.output)")
        #expect(result.output.contains(message), "ennio \(arguments) printed: \(result.output)")
    }

    @Test func topicsCheckValidatesSubjects() async throws {
        #expect(try await EnnioProcess.run(["topics", "check", "ennio.ci.my-app.fix_sent"]).status == 0)
        #expect(try await EnnioProcess.run(["topics", "check", "ennio.node.build-server.health_check"]).status == 0)
        #expect(try await EnnioProcess.run(["topics", "check", "ennio.*.p1.*"]).status == 0)
        #expect(try await EnnioProcess.run(["topics", "check", "ennio.commands.shutdown"]).status == 0)
        let bad = try await EnnioProcess.run(["topics", "check", "ennio.ci.my app.failing"])
        #expect(bad.status == 1)
        #expect(bad.output.contains("invalid"))
        #expect(try await EnnioProcess.run(["topics", "check", "ennio.ci.p.nonsense"]).status == 1)
        let table = try await EnnioProcess.run(["topics"])
        #expect(table.status == 0)
        #expect(table.output.contains("ennio.ci.<project_id>.fix_sent"))
        let markdown = try await EnnioProcess.run(["topics", "--markdown"])
        #expect(markdown.output == TopicsDocument.markdown)
    }

    @Test func queriesWithoutACoordinatorFailClearly() async throws {
        let server = try TestServer()
        let result = try await EnnioProcess.run(["history", "--server", server.url])
        #expect(result.status == 1)
        #expect(result.output.contains("no coordinator is running"))
        let unreachable = try await EnnioProcess.run(["sessions", "--server", "nats://127.0.0.1:\(try TestServer.freePort())"])
        #expect(unreachable.status == 1)
    }
}

@Suite struct CommandLineSystemTests {
    @Test func publishedEventsReachASubscriberProcess() async throws {
        let server = try TestServer()
        let subscriber = try EnnioProcess(["sub", "ennio.ci.p1.*", "--count", "2", "--json"], environment: ["NATS_URL": server.url])
        try await subscriber.waitForOutput("listening on ennio.ci.p1.*")
        for arguments in [
            ["pub", "CiFailing", "--project", "p1", "--session", "s1", "--message", "unit tests fail", "--priority", "urgent", "--data", #"{"checks":["unit"]}"#],
            ["pub", "PrCreated", "--project", "p1", "--session", "s1", "--message", "not CI"],
            ["pub", "ci_passing", "--project", "p2", "--session", "s2", "--message", "other project"],
            ["pub", "ci_passing", "--project", "p1", "--session", "s1", "--message", "green", "--id", "5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60"],
        ] {
            let result = try await EnnioProcess.run(arguments + ["--server", server.url])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("published"))
        }
        #expect(try await subscriber.finish() == 0)
        let events = try subscriber.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try Event(json: String($0)) }
        #expect(events.map(\.eventType) == [.ciFailing, .ciPassing])
        #expect(events[0].priority == .urgent)
        #expect(events[0].message == "unit tests fail")
        #expect(events[0].data == ["checks": ["unit"]])
        #expect(events[1].id == "5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60")
    }

    @Test func coordinatorAndAgentProcessesAnswerQueriesAndSurviveARestart() async throws {
        let server = try TestServer()
        let folder = NSTemporaryDirectory() + "ennio-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let database = folder + "/history.sqlite"
        let input = folder + "/events.jsonl"
        let script = [
            Event(type: .sessionSpawned, sessionId: "s-a", projectId: "proj", message: "spawned"),
            Event(type: .ciFailing, priority: .urgent, sessionId: "s-a", projectId: "proj", message: "ci failing"),
        ]
        try (script.map(\.jsonString).joined(separator: "\n") + "\nnot an event\n").write(toFile: input, atomically: true, encoding: .utf8)
        let environment = ["NATS_URL": server.url]

        let coordinator = try EnnioProcess(["coordinator", "--db", database], environment: environment)
        try await coordinator.waitForOutput("subscribed to ennio.>")
        let agent = try EnnioProcess(["agent", "--host", "cli-host", "--health-interval", "0.2", "--events-from", input], environment: environment)
        try await agent.waitForOutput("running")

        try await eventually("the relayed events in the history") {
            let history = try await EnnioProcess.run(["history", "--project", "proj", "--json"], environment: environment)
            return history.output.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 2
        }
        let history = try await EnnioProcess.run(["history", "--project", "proj", "--json"], environment: environment)
        let stored = try history.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try Event(json: String($0)) }
        #expect(stored == script)
        let readable = try await EnnioProcess.run(["history", "--project", "proj"], environment: environment)
        #expect(readable.output.contains("ci_failing"))
        #expect(readable.output.contains("2 events"))

        let sessions = try await EnnioProcess.run(["sessions", "--json"], environment: environment)
        let sessionList = try jsonDocument(in: sessions.output, named: "sessions")
        #expect(sessionList["sessions"]?[0]?["session_id"]?.stringValue == "s-a")
        #expect(sessionList["sessions"]?[0]?["status"]?.stringValue == "ci_failed")

        let nodes = try await EnnioProcess.run(["nodes"], environment: environment)
        #expect(nodes.output.contains("cli-host"))
        #expect(nodes.output.contains("yes"))

        // A clean stop says goodbye; the coordinator marks the node disconnected at once.
        #expect(try await agent.terminate() == 0)
        #expect(agent.output.contains("rejected 1"))
        try await eventually("the node to be disconnected") {
            let nodes = try await EnnioProcess.run(["nodes", "--json"], environment: environment)
            return nodes.output.contains(#""connected":false"#)
        }

        #expect(try await coordinator.terminate() == 0)
        let restarted = try EnnioProcess(["coordinator", "--db", database], environment: environment)
        try await restarted.waitForOutput("subscribed to ennio.>")
        #expect(restarted.output.contains("events)"))
        let again = try await EnnioProcess.run(["history", "--project", "proj", "--json"], environment: environment)
        #expect(again.output.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 2)
        #expect(try await restarted.terminate() == 0)
    }

    /// The README's main command runs this, after building.
    @Test func theDemoRunsAWholeSystemAndExitsCleanly() async throws {
        let result = try await EnnioProcess.run(["demo", "--pace", "5"], environment: ["NATS_URL": ""])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("started nats-server"))
        #expect(result.output.contains("all 2 sessions of shop reached a terminal state"))
        #expect(result.output.contains("the one session of blog reached a terminal state"))
        #expect(result.output.contains("demo: done"))
    }
}

/// The rows of a table that `ennio sessions --json` or `nodes --json` printed, one reply a line,
/// among the other lines of `output`, as one document `{"<name>":[…]}`.
func jsonDocument(in output: String, named name: String) throws -> JSONValue {
    var rows: [JSONValue] = []
    for line in output.split(separator: "\n") where line.hasPrefix("{") {
        guard let page = try JSONValue(parsing: String(line))[name]?.arrayValue else { continue }
        rows += page
    }
    return [name: .array(rows)]
}
