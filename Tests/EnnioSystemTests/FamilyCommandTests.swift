import EnnioEvents
import Foundation
@testable import NATSTestSupport
import Testing

/// `ennio pub` with rollout and run events, and `ennio rollouts|rollout show|runs|run`, as
/// processes against a coordinator process.
@Suite struct FamilyCommandTests {
    @Test(arguments: [["rollouts", "--help"], ["rollout", "--help"], ["runs", "--help"], ["run", "--help"]])
    func helpNamesTheCommands(arguments: [String]) async throws {
        let result = try await EnnioProcess.run(arguments)
        #expect(result.status == 0)
        #expect(result.output.contains("usage: ennio \(arguments[0] == "rollout" || arguments[0] == "rollouts" ? "rollouts" : "runs")"))
    }

    @Test(arguments: [
        (["rollouts", "--state", "done"], "unknown state"),
        (["runs", "--status", "later"], "unknown status"),
        (["rollout", "list", "r1"], "rollout show ID"),
        (["rollout", "show"], "missing ID"),
        (["run", "resume", "op"], "run resume-point OP_ID"),
        (["rollouts", "--limit", "0"], "--limit"),
        (["pub", "HostJoined", "--project", "stable", "--data", #"{"rollout_id":"r","host_id":"h","at":"2026-03-05T10:00:00Z"}"#], "wave"),
        (["pub", "HostJoined", "--project", "stable", "--data", #"{"rollout_id":"r","host_id":"h","wave":"one","at":"2026-03-05T10:00:00Z"}"#], "whole number"),
        (["pub", "RolloutOpened", "--project", "beta", "--data", #"{"rollout_id":"r","channel":"stable","target_ref":"v","at":"2026-03-05T10:00:00Z"}"#], "project_id"),
        (["pub", "StateEntered", "--project", "billing", "--session", "op", "--data", #"{"state_id":"a","attempt":0,"base_snapshot_id":"s"}"#], "attempt"),
    ])
    func badArgumentsAndDataAreRefusedBeforeAnythingIsSent(arguments: [String], message: String) async throws {
        let result = try await EnnioProcess.run(arguments, environment: ["NATS_URL": "nats://127.0.0.1:1"])
        #expect(result.status == 2, "\(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
    }

    /// The figure is measured, not asserted: this checks that the benchmark runs and reports.
    @Test func theReducerBenchmarkRunsWithoutAServer() async throws {
        let result = try await EnnioProcess.run(["bench", "reducers", "--count", "3000"], environment: ["NATS_URL": "nats://127.0.0.1:1"])
        #expect(result.status == 0, "\(result.output)")
        for figure in ["reducers_rollouts", "reducers_runs", "reducers_both"] {
            #expect(result.output.contains("RESULT \(figure) events_per_sec="), "\(result.output)")
        }
        let refused = try await EnnioProcess.run(["bench", "reducers", "--server", "nats://127.0.0.1:1"])
        #expect(refused.status == 2)
    }

    @Test func rolloutAndRunEventsPublishedWithPubAreReducedAndShown() async throws {
        let server = try TestServer()
        let folder = NSTemporaryDirectory() + "ennio-families-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let environment = ["NATS_URL": server.url]
        let coordinator = try EnnioProcess(["coordinator", "--db", folder + "/history.sqlite"], environment: environment)
        try await coordinator.waitForOutput("subscribed to ennio.>")

        func pub(_ type: String, _ project: String, _ data: String, session: String? = nil) async throws {
            var arguments = ["pub", type, "--project", project, "--data", data]
            if let session { arguments += ["--session", session] }
            let result = try await EnnioProcess.run(arguments, environment: environment)
            #expect(result.status == 0, "\(arguments): \(result.output)")
        }
        // --session comes from rollout_id (or op_id) when not given.
        try await pub("RolloutOpened", "stable", #"{"rollout_id":"r-cli","channel":"stable","target_ref":"v3","at":"2026-03-05T10:00:00Z"}"#)
        try await pub("host_joined", "stable", #"{"rollout_id":"r-cli","host_id":"web-1","wave":0,"at":"2026-03-05T10:00:01Z"}"#)
        for (seconds, from, to) in [(2, "dispatched", "soaking"), (3, "soaking", "soaked"), (4, "soaked", "converged")] {
            try await pub("HostStateChanged", "stable", #"{"rollout_id":"r-cli","host_id":"web-1","from":"\#(from)","to":"\#(to)","at":"2026-03-05T10:00:0\#(seconds)Z"}"#)
        }
        // A rollout that fails, and a clearance whose reason would recolour the terminal.
        try await pub("RolloutOpened", "beta", #"{"rollout_id":"r-esc","channel":"beta","target_ref":"v4","at":"2026-03-05T10:01:00Z"}"#)
        try await pub("HostJoined", "beta", #"{"rollout_id":"r-esc","host_id":"db-1","wave":0,"at":"2026-03-05T10:01:01Z"}"#)
        try await pub("HostJoined", "beta", #"{"rollout_id":"r-esc","host_id":"db-2","wave":0,"at":"2026-03-05T10:01:02Z"}"#)
        try await pub("HostStateChanged", "beta", #"{"rollout_id":"r-esc","host_id":"db-1","from":"dispatched","to":"failed","at":"2026-03-05T10:01:03Z"}"#)
        try await pub("OperatorClearance", "beta", #"{"rollout_id":"r-esc","operator":"bob","reason":"\u001b[31mred","at":"2026-03-05T10:01:04Z"}"#)
        try await pub("RunStarted", "billing", #"{"op_id":"op-cli","manifest_id":"m-2","initial_snapshot_id":"snap-0"}"#)
        try await pub("StateEntered", "billing", #"{"state_id":"charge","attempt":1,"base_snapshot_id":"snap-0"}"#, session: "op-cli")
        try await pub("StateFailed", "billing", #"{"state_id":"charge","error":"declined","failure_snapshot_id":"dump-1"}"#, session: "op-cli")

        try await eventually("the rollout to end") {
            let result = try await EnnioProcess.run(["rollouts", "--channel", "stable"], environment: environment)
            return result.output.contains("terminal")
        }
        try await eventually("the run's failure") {
            try await EnnioProcess.run(["run", "resume-point", "op-cli"], environment: environment).output.contains("its last attempt failed")
        }
        let rollouts = try await EnnioProcess.run(["rollouts"], environment: environment)
        #expect(rollouts.status == 0)
        #expect(rollouts.output.contains("r-cli"))
        #expect(rollouts.output.contains("1/1"))
        #expect(rollouts.output.contains("r-esc"))
        #expect(rollouts.output.contains("2 rollouts"))
        let json = try await EnnioProcess.run(["rollouts", "--json", "--channel", "stable"], environment: environment)
        let reply = try JSONValue(parsing: String(try #require(json.output.split(separator: "\n").first { $0.hasPrefix("{") })))
        #expect(reply["rollouts"]?[0]?["state"] == "terminal")
        #expect(reply["rollouts"]?[0]?["terminal_event_id"] == .string(EventID.derived(kind: "rollout_terminal", name: "r-cli")))

        let shown = try await EnnioProcess.run(["rollout", "show", "r-cli"], environment: environment)
        #expect(shown.output.contains("rollout r-cli on stable: terminal"))
        #expect(shown.output.contains("web-1"))
        #expect(shown.output.contains("converged"))
        let cleared = try await EnnioProcess.run(["rollout", "show", "r-esc"], environment: environment)
        #expect(cleared.output.contains("bob: \\u{1B}[31mred (excused db-1)"), "\(cleared.output)")
        #expect(!cleared.output.contains("\u{1b}"), "text from the wire is escaped")
        let missing = try await EnnioProcess.run(["rollout", "show", "nope"], environment: environment)
        #expect(missing.status == 1)
        #expect(missing.output.contains("no rollout"))

        let resume = try await EnnioProcess.run(["run", "resume-point", "op-cli"], environment: environment)
        #expect(resume.output.contains("re-enter state charge (attempt 2) from snapshot snap-0"), "\(resume.output)")
        let resumeJSON = try await EnnioProcess.run(["run", "resume-point", "op-cli", "--json"], environment: environment)
        let point = try JSONValue(parsing: String(try #require(resumeJSON.output.split(separator: "\n").first { $0.hasPrefix("{") })))
        #expect(point["resume_point"]?["snapshot_id"] == "snap-0")
        #expect(point["resume_point"]?["reason"] == "retry")
        let runs = try await EnnioProcess.run(["runs", "--project", "billing"], environment: environment)
        #expect(runs.output.contains("op-cli"))
        #expect(runs.output.contains("charge:1"))
        let show = try await EnnioProcess.run(["run", "show", "op-cli"], environment: environment)
        #expect(show.output.contains("declined (failure snapshot dump-1)"), "\(show.output)")

        #expect(try await coordinator.terminate() == 0)
    }
}
