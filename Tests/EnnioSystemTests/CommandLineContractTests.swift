import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// What a new user meets at the command line (issue 15): the usage is what the commands do,
/// nothing typed is ignored, patterns that match nothing are refused, a server that is down is
/// said so at once, and replies from whoever answers cannot crash a command. Every test runs the
/// real `ennio` binary.
@Suite struct CommandLineContractTests {
    // MARK: - Item 4: arguments

    @Test(arguments: [
        ["sessions", "extra"], ["nodes", "extra"], ["history", "extra"], ["replay", "extra"],
        ["coordinator", "extra"], ["demo", "extra"], ["pub", "CiFailing", "extra", "--project", "p"],
        ["sub", "ennio.>", "extra"], ["bench", "pub", "extra"], ["topics", "check", "a", "b"],
        ["agent", "--host", "h", "extra"],
    ])
    func everyCommandRefusesArgumentsItDoesNotTake(arguments: [String]) async throws {
        let result = try await EnnioProcess.run(arguments + ["--server", "nats://127.0.0.1:\(try TestServer.freePort())"])
        #expect(result.status == 2, "ennio \(arguments) → \(result.status): \(result.output)")
        #expect(result.output.contains("unexpected argument") || result.output.contains("exactly one subject"), "\(result.output)")
    }

    @Test func pubsUsageSaysWhatIsOptional() async throws {
        let help = try await EnnioProcess.run(["pub", "--help"])
        for text in ["[--project P]", "[--session S]", "[--message M]", "[--id UUID]", "@FILE", "@-", "except for node events"] {
            #expect(help.output.contains(text), "pub --help lacks \(text):\n\(help.output)")
        }
    }

    @Test(arguments: [
        (["pub", "CiFailing", "--project", "p", "--id", "not-a-uuid"], "--id must be a UUID"),
        (["pub", "CiFailing", "--project", "p", "--id", "5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f6"], "--id must be a UUID"),
        (["pub", "CiFailing", "--project", "p", "--host", "h"], "--host is for node events only"),
        (["pub", "CiFailing", "--project", "p", "--data", "@/no/such/file"], "--data @/no/such/file"),
        (["pub", "CiFailing", "--project", "p", "--data", "[1,"], "--data is not valid JSON"),
        (["pub"], "missing event type"),
    ] as [([String], String)])
    func pubRefusesWhatTheContractDoesNotAllow(arguments: [String], message: String) async throws {
        let result = try await EnnioProcess.run(arguments)
        #expect(result.status == 2, "ennio \(arguments) → \(result.status): \(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
    }

    @Test func nodeEventsNeedNoProjectAndDataComesFromAFileOrStandardInput() async throws {
        let server = try TestServer()
        let environment = ["NATS_URL": server.url]
        let subscriber = try EnnioProcess(["sub", "ennio.>", "--count", "3", "--json"], environment: environment)
        try await subscriber.waitForOutput("listening on ennio.>")

        let node = try await EnnioProcess.run(["pub", "NodeHealthCheck", "--host", "h1", "--message", "fine"], environment: environment)
        #expect(node.status == 0, "\(node.output)")

        // 300 KB of data: more than one command-line argument may hold (128 KiB on Linux).
        let folder = NSTemporaryDirectory() + "ennio-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let large = JSONValue.object(["log": .string(String(repeating: "x", count: 300_000)), "n": 1])
        try large.jsonString.write(toFile: folder + "/data.json", atomically: true, encoding: .utf8)
        let fromFile = try await EnnioProcess.run(["pub", "CiFailing", "--project", "p", "--data", "@" + folder + "/data.json"], environment: environment)
        #expect(fromFile.status == 0, "\(fromFile.output)")

        try #"{"from":"stdin"}"#.write(toFile: folder + "/small.json", atomically: true, encoding: .utf8)
        let shell = try ChildProcess(
            executable: "/bin/sh",
            arguments: ["-c", #"exec "$0" pub CiPassing --project p --server "$1" --data @- < "$2""#, RepositoryScript.ennioBinary(), server.url, folder + "/small.json"],
            outputPath: folder + "/stdin.log")
        let status = try await within(.seconds(60)) { () -> Int32 in
            while true {
                if let status = shell.exitStatus() { return status }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(status == 0, "\((try? String(contentsOfFile: folder + "/stdin.log", encoding: .utf8)) ?? "")")

        #expect(try await subscriber.finish() == 0)
        let events = try subscriber.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try Event(json: String($0)) }
        #expect(events.map(\.eventType) == [.nodeHealthCheck, .ciFailing, .ciPassing])
        #expect(events[0].projectId == "")
        #expect(events[0].data["host"] == "h1")
        #expect(events[1].data == large)
        #expect(events[2].data == ["from": "stdin"])
    }

    // MARK: - Item 2: queries and commands are not events

    @Test func subShowsQueriesAndCommandsAsWhatTheyAre() async throws {
        let server = try TestServer()
        let environment = ["NATS_URL": server.url]
        let readable = try EnnioProcess(["sub", "ennio.>", "--count", "1"], environment: environment)
        let json = try EnnioProcess(["sub", "ennio.>", "--count", "1", "--json"], environment: environment)
        try await readable.waitForOutput("listening on ennio.>")
        try await json.waitForOutput("listening on ennio.>")

        let connection = try await NATSConnection.connect(to: server.url)
        try connection.publish(#"{"project_id":"my-app"}"#, to: "ennio.query.history")
        try connection.publish([], to: "ennio.query.sessions")
        try connection.publish(#"{"host":"h1"}"#, to: "ennio.commands.shutdown")
        try connection.publish([0x7B, 0xFF, 0x0A, 0x1B, 0x7D], to: "ennio.commands.health_check")
        try connection.publish("not an event", to: "ennio.ci.p.failing")
        try await connection.flush()
        let published = try await EnnioProcess.run(["pub", "CiFailing", "--project", "p", "--message", "the event"], environment: environment)
        #expect(published.status == 0, "\(published.output)")

        #expect(try await readable.finish() == 0)
        #expect(try await json.finish() == 0)
        await connection.close()
        let shown = readable.output
        #expect(shown.contains(#"query    ennio.query.history  {"project_id":"my-app"}"#), "\(shown)")
        #expect(shown.contains("query    ennio.query.sessions  (no body)"), "\(shown)")
        #expect(shown.contains(#"command  ennio.commands.shutdown  {"host":"h1"}"#), "\(shown)")
        // A body that is not text is shown byte by byte, never raw.
        #expect(shown.contains(#"command  ennio.commands.health_check  {\xFF\n\u{1B}}"#), "\(shown)")
        #expect(!shown.contains("\u{1B}"))
        #expect(shown.contains("the event"))
        // A bad payload on an event subject is still reported; queries and commands never are.
        #expect(shown.split(separator: "\n").filter { $0.contains("malformed") }.count == 1, "\(shown)")
        #expect(shown.contains("malformed event on ennio.ci.p.failing"))
        // With --json, standard output holds events only.
        let jsonLines = json.output.split(separator: "\n").filter { !$0.hasPrefix("listening") && !$0.contains("malformed") }
        #expect(jsonLines.count == 1, "\(json.output)")
        #expect(try Event(json: String(jsonLines[0])).message == "the event")
    }

    // MARK: - Item 3: patterns that match nothing

    @Test(arguments: [
        ("ennio.ci.*", "ci subjects have 4 tokens"),
        ("ennio.foo.>", "event categories are"),
        ("ennio.ci.>.failing", "can only be the last token"),
        ("ennio.ci.my.app.failing", "\"my.app\""),
        ("ennio.ci.*.fooo", "ci has no event type with this action"),
        ("ennio.commands.*", "commands to node agents, not events"),
    ])
    func patternsThatMatchNoEventAreRefused(pattern: String, reason: String) async throws {
        let sub = try await EnnioProcess.run(["sub", pattern, "--server", "nats://127.0.0.1:\(try TestServer.freePort())"])
        #expect(sub.status == 2, "\(sub.output)")
        #expect(sub.output.contains(reason), "\(sub.output)")
        let check = try await EnnioProcess.run(["topics", "check", pattern])
        if pattern.hasPrefix("ennio.commands") {
            #expect(check.status == 0)
            #expect(check.output.contains("not events"))
        } else {
            #expect(check.status == 1, "\(check.output)")
            #expect(check.output.contains(reason), "\(check.output)")
        }
    }

    // MARK: - Item 5: a server that is down

    @Test(arguments: [["sub", "ennio.>"], ["pub", "CiFailing", "--project", "p"], ["sessions"], ["history"], ["replay"], ["coordinator", "--db", "/nonexistent/never.sqlite"]])
    func everyCommandFailsAtOnceWhenNoServerAnswers(arguments: [String]) async throws {
        let url = "nats://127.0.0.1:\(try TestServer.freePort())"
        let result = try await EnnioProcess.run(arguments + ["--server", url])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("no NATS server answers at \(url)"), "\(result.output)")
        #expect(result.output.split(separator: "\n").count <= 2, "it tried more than once:\n\(result.output)")
    }

    @Test func subReconnectsOnceItWasConnected() async throws {
        let help = try await EnnioProcess.run(["sub", "--help"])
        #expect(help.output.contains("Fails at once when no server answers"))
        #expect(help.output.contains("reconnects"))

        let port = try TestServer.freePort()
        var server: TestServer? = try TestServer(port: port)
        let environment = ["NATS_URL": "nats://127.0.0.1:\(port)"]
        let subscriber = try EnnioProcess(["sub", "ennio.ci.*.*", "--count", "1"], environment: environment)
        try await subscriber.waitForOutput("listening on")
        server?.stop()
        server = nil
        try await subscriber.waitForOutput("disconnected")
        server = try TestServer(port: port)
        try await subscriber.waitForOutput("reconnected", within: .seconds(60))
        let published = try await EnnioProcess.run(["pub", "CiPassing", "--project", "p", "--message", "after the restart"], environment: environment)
        #expect(published.status == 0, "\(published.output)")
        #expect(try await subscriber.finish() == 0)
        #expect(subscriber.output.contains("after the restart"))
        withExtendedLifetime(server) {}
    }

    // MARK: - Item 7: replies from whoever answers

    /// Answers every request on `subject` with `reply`, as anyone allowed to subscribe can.
    static func rogueAnswerer(on server: TestServer, subject: String, reply: String) async throws -> (NATSConnection, Task<Void, Never>) {
        let connection = try await NATSConnection.connect(to: server.url)
        let requests = try connection.subscribe(to: subject)
        try await connection.flush()
        let task = Task {
            for await request in requests {
                if let inbox = request.replyTo { try? connection.publish(reply, to: inbox) }
            }
        }
        return (connection, task)
    }

    @Test(arguments: [
        ("ennio.query.nodes", ["nodes"], #"{"nodes":[{"host":"h","connected":true,"seconds_since_last_seen":1e300,"health":null}]}"#, "seconds_since_last_seen is 1e+300"),
        ("ennio.query.nodes", ["nodes"], #"{"nodes":[{"host":"h","connected":true,"seconds_since_last_seen":-5}]}"#, "seconds_since_last_seen is -5.0"),
        ("ennio.query.nodes", ["nodes"], #"{"nodes":[{"host":7,"connected":true}]}"#, "nodes[0].host is not a string"),
        ("ennio.query.nodes", ["nodes"], #"{"nodes":[{"host":"h","connected":true,"health":{"load":[1,"x"]}}]}"#, "health.load is not a list of numbers"),
        ("ennio.query.nodes", ["nodes", "--json"], #"{"nodes":"#, "the reply is not JSON"),
        ("ennio.query.sessions", ["sessions"], #"{"sessions":[{"project_id":"p"}]}"#, "sessions[0].session_id is not a string"),
        ("ennio.query.sessions", ["sessions"], #"{"sessions":{}}"#, "the reply has no list \"sessions\""),
        ("ennio.query.sessions", ["sessions", "--json"], #"[1,2]"#, "not a JSON object"),
        ("ennio.query.sessions", ["sessions"], #"{"error":{"code":500,"description":"bad\nline \u001b[2J"}}"#, #"bad\nline \u{1B}[2J"#),
        ("ennio.query.history", ["history"], #"{"events":[{"id":1}],"count":1,"next_offset":null}"#, "cannot decode event"),
        ("ennio.query.history", ["replay"], #"{"events":[],"subjects":[],"count":0,"next":"5:x"}"#, "does not move on from 5:x"),
        ("ennio.query.history", ["history"], #"{"events":[],"subjects":[],"count":0,"next":"not a cursor"}"#, "not a cursor"),
    ] as [(String, [String], String, String)])
    func aRogueReplyIsAnErrorNotACrash(subject: String, arguments: [String], reply: String, message: String) async throws {
        let server = try TestServer()
        let (connection, answering) = try await Self.rogueAnswerer(on: server, subject: subject, reply: reply)
        defer { answering.cancel() }
        let result = try await EnnioProcess.run(arguments, environment: ["NATS_URL": server.url])
        #expect(result.status == 1, "ennio \(arguments) → \(result.status): \(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
        #expect(!result.output.contains("\u{1B}"))
        await connection.close()
    }

    @Test func aStrangeButValidReplyIsShownEscapedAndItsJSONExact() async throws {
        let server = try TestServer()
        let reply = "{\"nodes\":[{\"host\":\"evil\\u001b[2J\\nforged line\",\"connected\":true,\"seconds_since_last_seen\":1e2,\"health\":{\"load\":[0.5]}}]}\n\n"
        let (connection, answering) = try await Self.rogueAnswerer(on: server, subject: "ennio.query.nodes", reply: reply)
        defer { answering.cancel() }
        let table = try await EnnioProcess.run(["nodes"], environment: ["NATS_URL": server.url])
        #expect(table.status == 0, "\(table.output)")
        #expect(table.output.contains(#"evil\u{1B}[2J\nforged line"#), "\(table.output)")
        #expect(table.output.contains("100s ago"))
        #expect(!table.output.contains("\u{1B}"))
        #expect(!table.output.split(separator: "\n").contains { $0.hasPrefix("forged") })
        let json = try await EnnioProcess.run(["nodes", "--json"], environment: ["NATS_URL": server.url])
        #expect(json.status == 0)
        // Exact JSON on one line: the same value, numbers as they were written.
        let lines = json.output.split(separator: "\n")
        #expect(lines.count == 1, "\(json.output)")
        #expect(try JSONValue(parsing: String(lines[0])) == JSONValue(parsing: reply))
        #expect(lines[0].contains(#""seconds_since_last_seen":1e2"#))
        await connection.close()
    }

    // MARK: - Items 8 and 10: numbers as written, counts, the database file

    @Test func numbersAreStoredAndShownAsWrittenAndCountsReadWell() async throws {
        let server = try TestServer()
        let folder = NSTemporaryDirectory() + "ennio-numbers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let environment = ["NATS_URL": server.url]
        let coordinator = try EnnioProcess(["coordinator", "--db", folder + "/history.sqlite"], environment: environment)
        try await coordinator.waitForOutput("subscribed to ennio.>")
        #expect(coordinator.output.contains("(0 events)"))
        let data = #"{"big":123456789012345678901234567890,"ratio":2.50,"size":1e14,"zero":-0}"#
        let published = try await EnnioProcess.run(["pub", "CiFailing", "--project", "nums", "--session", "s", "--data", data], environment: environment)
        #expect(published.status == 0, "\(published.output)")
        try await eventually("the event stored") {
            try await EnnioProcess.run(["history", "--project", "nums", "--json"], environment: environment).output.contains(#""event_type""#)
        }
        let json = try await EnnioProcess.run(["history", "--project", "nums", "--json"], environment: environment)
        #expect(json.output.contains(#""data":"# + data), "\(json.output)")
        let readable = try await EnnioProcess.run(["history", "--project", "nums"], environment: environment)
        #expect(readable.output.contains("1 event\n"), "\(readable.output)")
        let replay = try await EnnioProcess.run(["replay", "--project", "nums"], environment: environment)
        #expect(replay.output.contains("replayed 1 event\n"), "\(replay.output)")
        let sessions = try await EnnioProcess.run(["sessions"], environment: environment)
        #expect(sessions.output.contains("1 session\n"), "\(sessions.output)")
        #expect(try await coordinator.terminate() == 0)
        let restarted = try EnnioProcess(["coordinator", "--db", folder + "/history.sqlite"], environment: environment)
        try await restarted.waitForOutput("subscribed to ennio.>")
        #expect(restarted.output.contains("(1 event)"), "\(restarted.output)")
        #expect(try await restarted.terminate() == 0)
    }

    @Test func aCoordinatorThatCannotRunLeavesNoDatabaseFile() async throws {
        let server = try TestServer()  // no JetStream
        let folder = NSTemporaryDirectory() + "ennio-nojs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let database = folder + "/history.sqlite"
        let result = try await EnnioProcess.run(["coordinator", "--mode", "jetstream", "--db", database, "--server", server.url])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("has no JetStream"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: database))
        let unreachable = try await EnnioProcess.run(["coordinator", "--db", database, "--server", "nats://127.0.0.1:\(try TestServer.freePort())"])
        #expect(unreachable.status == 1)
        #expect(!FileManager.default.fileExists(atPath: database))
    }
}
