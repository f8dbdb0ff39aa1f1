import EnnioEvents
import Foundation
import Glibc
import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct SessionCommandTests {
    @Test func sessionHelpDescribesEveryVerb() async throws {
        for arguments in [["session", "--help"], ["session", "list", "--help"], ["session", "start", "--help"]] {
            let result = try await EnnioProcess.run(arguments)
            #expect(result.status == 0)
            for verb in ["start", "list", "show", "kill"] { #expect(result.output.contains("  \(verb) "), "\(result.output)") }
        }
        let top = try await EnnioProcess.run(["--help"])
        #expect(top.output.contains("  session "))
        let agent = try await EnnioProcess.run(["agent", "--help"])
        for option in ["--sessions-dir", "--poll", "--idle-after", "ennio.commands.kill"] { #expect(agent.output.contains(option)) }
    }

    @Test(arguments: [
        (["session"], "usage: ennio session"),
        (["session", "bogus"], "unknown session command"),
        (["session", "start", "--session", "s", "--", "true"], "--project is required"),
        (["session", "start", "--project", "p", "--", "true"], "--session is required"),
        (["session", "start", "--project", "p", "--session", "s"], "give the command to run after --"),
        (["session", "start", "--project", "a b", "--session", "s", "--", "true"], "not a valid project id"),
        (["session", "start", "--project", "p", "--session", "s.1", "--", "true"], "not a valid session id"),
        (["session", "show"], "missing the session id"),
        (["session", "kill", "a", "b"], "unexpected argument \"b\""),
        (["session", "kill", "s", "--grace", "5"], "--grace must be a duration with a unit"),
        (["agent", "--host", "h", "--poll", "5"], "--poll must be a duration with a unit, such as 500ms, 2s"),
        (["agent", "--host", "h", "--poll", "0s"], "--poll must be from 10ms to 1h"),
        (["agent", "--host", "h", "--poll", "2d"], "--poll must be from 10ms to 1h"),
        (["agent", "--host", "h", "--poll", "2w"], "--poll must be a duration"),
        (["agent", "--host", "h", "--idle-after", "-1s"], "--idle-after must be a duration"),
        (["agent", "--host", "h", "--idle-after", "1.s"], "--idle-after must be a duration"),
    ] as [([String], String)])
    func badArgumentsExitWithTwoAndSayWhy(arguments: [String], message: String) async throws {
        let scratch = try TemporaryDirectory("ennio-sessions")
        let result = try await EnnioProcess.run(arguments + (arguments.first == "session" && arguments.count > 1 ? ["--sessions-dir", scratch.path] : []))
        #expect(result.status == 2, "ennio \(arguments) → \(result.status): \(result.output)")
        #expect(result.output.contains(message), "ennio \(arguments) printed: \(result.output)")
    }

    @Test func unknownSessionsAndProgramsFailWithOne() async throws {
        let scratch = try TemporaryDirectory("ennio-sessions")
        let directory = ["--sessions-dir", scratch.path]
        let show = try await EnnioProcess.run(["session", "show", "nobody"] + directory)
        #expect(show.status == 1)
        #expect(show.output.contains("no session \"nobody\""))
        let kill = try await EnnioProcess.run(["session", "kill", "nobody"] + directory)
        #expect(kill.status == 1)
        let missing = try await EnnioProcess.run(["session", "start", "--project", "p", "--session", "s"] + directory + ["--", "/no/such/program"])
        #expect(missing.status == 1)
        #expect(missing.output.contains("cannot start \"/no/such/program\""), "\(missing.output)")
        let list = try await EnnioProcess.run(["session", "list"] + directory)
        #expect(list.status == 0)
        #expect(list.output.split(separator: "\n").count == 1, "only the header: \(list.output)")
    }

    /// The whole path as users run it: `ennio agent` and `ennio session …` as separate
    /// processes, the events seen by a plain subscriber. The sessions are not the agent's
    /// children, so it learns of their end from `kill(pid, 0)` and `/proc` alone.
    @Test func theAgentObservesSessionsStartedAndKilledByOtherProcesses() async throws {
        let server = try TestServer()
        let scratch = try TemporaryDirectory("ennio-sessions")
        let directory = ["--sessions-dir", scratch.path]
        let observer = try await NATSConnection.connect(to: server.url)
        let sessions = try EventSubscription(connection: observer, pattern: try .category(.sessions, scope: "p1"))
        try await observer.flush()
        let agent = try EnnioProcess(["agent", "--host", "cli-host", "--poll", "100ms", "--idle-after", "1m", "--server", server.url] + directory)
        try await agent.waitForOutput("observing 0 sessions")

        // It runs until the test lets it end, so the agent certainly sees it running.
        let release = scratch.path + "/release-short"
        let started = try await EnnioProcess.run(
            ["session", "start", "--project", "p1", "--session", "short"] + directory
                + ["--", "sh", "-c", "echo hi; while [ ! -e \"$1\" ]; do sleep 0.02; done", "sh", release])
        #expect(started.status == 0, "\(started.output)")
        #expect(started.output.contains("session short of p1 started: pid "))
        func take(until last: EventType) async throws -> [Event] {
            try await within(.seconds(30), "the short session's \(last)") { () -> [Event] in
                var events: [Event] = []
                var iterator = sessions.makeAsyncIterator()
                while events.last?.eventType != last, let delivery = await iterator.next() {
                    if let event = delivery.event { events.append(event) }
                }
                return events
            }
        }
        var short = try await take(until: .activityChanged)
        #expect(FileManager.default.createFile(atPath: release, contents: nil))
        short += try await take(until: .sessionExited)
        #expect(short.map(\.eventType) == [.sessionSpawned, .statusChanged, .activityChanged, .activityChanged, .sessionExited], "\(short.map(\.eventType))")
        #expect(short.allSatisfy { $0.sessionId == "short" && $0.data["host"]?.stringValue == "cli-host" })
        #expect(short.last?.data["exit_status"] == nil, "not the agent's child: the status is unknown")
        #expect(try String(contentsOfFile: scratch.path + "/p1.short.log", encoding: .utf8) == "hi\n")

        _ = try await EnnioProcess.run(["session", "start", "--project", "p1", "--session", "long"] + directory + ["--", "sleep", "60"])
        let working = try await within(.seconds(30), "the long session to be working") { () -> Bool in
            var iterator = sessions.makeAsyncIterator()
            while let delivery = await iterator.next() {
                if delivery.event?.sessionId == "long", delivery.event?.eventType == .statusChanged { return true }
            }
            return false
        }
        #expect(working)
        let list = try await EnnioProcess.run(["session", "list"] + directory)
        #expect(list.output.contains("long"), "\(list.output)")
        #expect(list.output.split(separator: "\n").contains { $0.hasPrefix("long ") && $0.contains("working") && $0.contains("alive") }, "\(list.output)")
        #expect(list.output.split(separator: "\n").contains { $0.hasPrefix("short ") && $0.contains("exited") && $0.contains("gone") }, "\(list.output)")

        let kill = try await EnnioProcess.run(["session", "kill", "long"] + directory)
        #expect(kill.status == 0, "\(kill.output)")
        #expect(kill.output.contains("session long killed (SIGTERM)"))
        let end = try await within(.seconds(30), "the long session's end") { () -> [Event] in
            var events: [Event] = []
            var iterator = sessions.makeAsyncIterator()
            while !(events.last?.eventType.isTerminalForSession ?? false), let delivery = await iterator.next() {
                if let event = delivery.event, event.sessionId == "long" { events.append(event) }
            }
            return events
        }
        #expect(end.last?.eventType == .sessionKilled)
        #expect(end.dropLast().last?.data["next"]?.stringValue == "exited")
        #expect(!end.contains { $0.eventType == .sessionExited })
        try await eventually("the record to say killed") {
            let show = try await EnnioProcess.run(["session", "show", "long"] + directory)
            return show.output.contains(#""status":"killed""#)
        }

        #expect(try await agent.terminate() == 0)
        #expect(agent.output.contains("lifecycle loop:"), "\(agent.output)")
        await observer.close()
    }
}
