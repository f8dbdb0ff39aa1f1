import EnnioCoordinator
import EnnioEvents
import Foundation

/// `ennio rollouts`, `ennio rollout show`, `ennio runs`, `ennio run resume-point|show`: the
/// coordinator's rollout and run reducers, over `ennio.query.rollouts` and `ennio.query.runs`.
enum FamilyCommands {
    static let rolloutsHelp = """
        usage: ennio rollouts [--channel C] [--state S] [--limit N] [--offset N] [--json] [--server URLS]
               ennio rollout show ID [--json] [--server URLS]

        The coordinator's rollouts, by id: state, current wave, hosts converged of all, target.
        `rollout show` prints one rollout with its hosts, clearances and flagged events.
        States: \(RolloutState.allCases.map(\.rawValue).joined(separator: ", ")).
        """
    static let runsHelp = """
        usage: ennio runs [--project P] [--status S] [--limit N] [--offset N] [--json] [--server URLS]
               ennio run resume-point OP_ID [--json] [--server URLS]
               ennio run show OP_ID [--json] [--server URLS]

        The coordinator's workflow runs, by op id: status, attempts per state, resume point.
        `run resume-point` says which state to enter and from which snapshot after a crash
        (never a failure snapshot); `run show` prints every attempt.
        Statuses: \(RunStatus.allCases.map(\.rawValue).joined(separator: ", ")).
        """

    // MARK: - Rollouts

    static func rollouts(_ raw: [String]) async throws -> Int32 {
        let reply = try await list(raw, help: rolloutsHelp, filters: ["channel", "state"], subject: QueryProtocol.rolloutsSubject) { arguments in
            var query = RolloutQuery(channel: arguments.value("channel"), state: try choice(arguments, "state", of: RolloutState.self))
            query.page = try page(arguments)
            return query.body
        }
        guard let value = reply else { return 0 }
        print(row([("ROLLOUT", 24), ("CHANNEL", 14), ("STATE", 11), ("WAVE", 5), ("HOSTS", 8), ("TARGET", 16)]) + " UPDATED")
        let rollouts = value["rollouts"]?.arrayValue ?? []
        for rollout in rollouts {
            let hosts = "\(rollout["host_states"]?["converged"]?.intValue ?? 0)/\(rollout["host_count"]?.intValue ?? 0)"
            print(row([
                (text(rollout["rollout_id"]), 24), (text(rollout["channel"]), 14), (text(rollout["state"]), 11),
                (text(rollout["current_wave"]), 5), (hosts, 8), (text(rollout["target_ref"]), 16),
            ]) + " " + text(rollout["updated_at"]))
        }
        summarize(value, count: rollouts.count, noun: "rollout")
        return 0
    }

    static func rollout(_ raw: [String]) async throws -> Int32 {
        if raw.isEmpty || raw.contains("--help") || raw.contains("-h") {
            print(rolloutsHelp)
            return raw.isEmpty ? 2 : 0
        }
        let arguments = try Arguments(raw, options: ["server", "timeout"], flags: ["json"], positionals: ["show", "ID"], connecting: true)
        guard arguments.positionals[0] == "show" else {
            throw UsageError("use `ennio rollout show ID`")
        }
        let query = RolloutQuery(rolloutId: arguments.positionals[1])
        let reply = try await QueryCommands.ask(QueryProtocol.rolloutsSubject, body: query.body, arguments: arguments)
        if arguments.flag("json") { return printJSON(reply, failingOnError: true) }
        let value = try JSONValue(parsing: reply)
        try QueryProtocol.throwIfError(value)
        guard let rollout = value["rollouts"]?[0] else { throw CommandFailure("the reply has no rollout") }
        print("rollout \(text(rollout["rollout_id"])) on \(text(rollout["channel"])): \(text(rollout["state"]))")
        print("  target          \(text(rollout["target_ref"]))")
        print("  current wave    \(text(rollout["current_wave"]))")
        print("  opened          \(text(rollout["opened_at"]))   updated \(text(rollout["updated_at"]))")
        print("  supersedes      \(text(rollout["supersedes"]))   superseded by \(text(rollout["superseded_by"]))")
        print("  terminal event  \(text(rollout["terminal_event_id"]))")
        let states = RolloutHostState.allCases.compactMap { state -> String? in
            guard let count = rollout["host_states"]?[state.rawValue]?.intValue, count > 0 else { return nil }
            return "\(state.rawValue) \(count)"
        }
        print("  hosts           \(text(rollout["host_count"]))\(states.isEmpty ? "" : ": " + states.joined(separator: ", "))")
        print("  events          \(text(rollout["event_count"])) applied, \(text(rollout["violation_count"])) flagged")
        let hosts = rollout["hosts"]?.arrayValue ?? []
        if !hosts.isEmpty {
            print("")
            print(row([("HOST", 24), ("WAVE", 5), ("STATE", 11), ("EXCUSED", 8), ("MOVES", 6)]) + " CHANGED")
            for host in hosts {
                print(row([
                    (text(host["host_id"]), 24), (text(host["wave"]), 5), (text(host["state"]), 11),
                    ((host["excused"]?.boolValue ?? false) ? "yes" : "no", 8), (text(host["moves"]), 6),
                ]) + " " + text(host["changed_at"]))
            }
        }
        let clearances = rollout["clearances"]?.arrayValue ?? []
        if !clearances.isEmpty {
            print("")
            print("clearances:")
            for clearance in clearances {
                let excused = clearance["excused"]?.arrayValue?.map(text).joined(separator: ", ") ?? ""
                print("  \(text(clearance["at"])) \(text(clearance["operator"])): \(text(clearance["reason"]))\(excused.isEmpty ? "" : " (excused \(excused))")")
            }
        }
        printViolations(rollout["violations"]?.arrayValue ?? [], total: rollout["violation_count"]?.intValue ?? 0)
        return 0
    }

    // MARK: - Runs

    static func runs(_ raw: [String]) async throws -> Int32 {
        let reply = try await list(raw, help: runsHelp, filters: ["project", "status"], subject: QueryProtocol.runsSubject) { arguments in
            var query = RunQuery(projectId: arguments.value("project"), status: try choice(arguments, "status", of: RunStatus.self))
            query.page = try page(arguments)
            return query.body
        }
        guard let value = reply else { return 0 }
        print(row([("OP", 24), ("PROJECT", 14), ("STATUS", 10), ("ATTEMPTS", 20)]) + " RESUME")
        let runs = value["runs"]?.arrayValue ?? []
        for run in runs {
            let attempts = (run["attempts"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\(TerminalText($0.key)):\($0.value.intValue ?? 0)" }.joined(separator: " ")
            print(row([(text(run["op_id"]), 24), (text(run["project_id"]), 14), (text(run["status"]), 10), (attempts.isEmpty ? "-" : attempts, 20)])
                + " " + resumeText(run["resume_point"], short: true))
        }
        summarize(value, count: runs.count, noun: "run")
        return 0
    }

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.isEmpty || raw.contains("--help") || raw.contains("-h") {
            print(runsHelp)
            return raw.isEmpty ? 2 : 0
        }
        let arguments = try Arguments(raw, options: ["server", "timeout"], flags: ["json"], positionals: ["resume-point|show", "OP_ID"], connecting: true)
        guard ["resume-point", "show"].contains(arguments.positionals[0]) else {
            throw UsageError("use `ennio run resume-point OP_ID` or `ennio run show OP_ID`")
        }
        let opId = arguments.positionals[1]
        let reply = try await QueryCommands.ask(QueryProtocol.runsSubject, body: RunQuery(opId: opId).body, arguments: arguments)
        let value = try JSONValue(parsing: reply)
        if arguments.flag("json"), arguments.positionals[0] == "show" { return printJSON(reply, failingOnError: true) }
        try QueryProtocol.throwIfError(value)
        guard let run = value["runs"]?[0] else { throw CommandFailure("the reply has no run") }
        if arguments.positionals[0] == "resume-point" {
            if arguments.flag("json") {
                let answer: JSONValue = ["op_id": run["op_id"] ?? .null, "status": run["status"] ?? .null, "resume_point": run["resume_point"] ?? .null]
                print(answer.jsonString)
            } else {
                print("run \(text(run["op_id"])) (\(text(run["status"]))): \(resumeText(run["resume_point"], short: false))")
            }
            return 0
        }
        print("run \(text(run["op_id"])) of \(text(run["project_id"])): \(text(run["status"]))")
        print("  manifest        \(text(run["manifest_id"]))")
        print("  initial         \(text(run["initial_snapshot_id"]))   final \(text(run["final_snapshot_id"]))")
        print("  started         \(text(run["started_at"]))   updated \(text(run["updated_at"]))")
        print("  resume          \(resumeText(run["resume_point"], short: false))")
        print("  events          \(text(run["event_count"])) applied, \(text(run["violation_count"])) flagged")
        print("")
        print(row([("STATE", 20), ("ATTEMPT", 8), ("OUTCOME", 12), ("BASE", 20)]) + " RESULT")
        for state in run["states"]?.arrayValue ?? [] {
            for attempt in state["attempts"]?.arrayValue ?? [] {
                let result: String
                switch attempt["outcome"]?.stringValue {
                case "completed": result = "context " + text(attempt["context_snapshot_id"])
                case "failed": result = text(attempt["error"]) + (attempt["failure_snapshot_id"]?.isNull == false ? " (failure snapshot \(text(attempt["failure_snapshot_id"])))" : "")
                default: result = ""
                }
                print(row([(text(state["state_id"]), 20), (text(attempt["attempt"]), 8), (text(attempt["outcome"]), 12), (text(attempt["base_snapshot_id"]), 20)]) + " " + result)
            }
        }
        printViolations(run["violations"]?.arrayValue ?? [], total: run["violation_count"]?.intValue ?? 0)
        return 0
    }

    /// The resume point as a sentence (or, `short`, a few words for a table).
    static func resumeText(_ point: JSONValue?, short: Bool) -> String {
        guard let point, !point.isNull else { return short ? "-" : "completed: nothing to resume" }
        let snapshot = text(point["snapshot_id"])
        let attempt = point["next_attempt"]?.intValue.map { " (attempt \($0))" } ?? ""
        switch point["reason"]?.stringValue {
        case "start": return short ? "start from \(snapshot)" : "start the manifest's first state from snapshot \(snapshot) (no state entered yet)"
        case "continue": return short ? "after \(text(point["after_state_id"])) from \(snapshot)" : "enter the state after \(text(point["after_state_id"])) from snapshot \(snapshot) (it completed)"
        case "retry": return short ? "retry \(text(point["state_id"]))\(attempt) from \(snapshot)" : "re-enter state \(text(point["state_id"]))\(attempt) from snapshot \(snapshot) (its last attempt failed)"
        default: return short ? "re-enter \(text(point["state_id"]))\(attempt) from \(snapshot)" : "re-enter state \(text(point["state_id"]))\(attempt) from snapshot \(snapshot) (its last attempt did not finish)"
        }
    }

    // MARK: - Shared

    /// What `rollouts` and `runs` share: help, options, the request, the reply checked for an
    /// error — or `nil` once the help or the JSON is printed.
    private static func list(
        _ raw: [String], help: String, filters: Set<String>, subject: String, body: (Arguments) throws -> [UInt8]
    ) async throws -> JSONValue? {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return nil
        }
        let arguments = try Arguments(raw, options: filters.union(["limit", "offset", "server", "timeout"]), flags: ["json"], connecting: true)
        let reply = try await QueryCommands.ask(subject, body: try body(arguments), arguments: arguments)
        if arguments.flag("json") {
            _ = printJSON(reply)
            return nil
        }
        let value = try JSONValue(parsing: reply)
        try QueryProtocol.throwIfError(value)
        return value
    }

    /// `--name` as one of `Choice`'s wire names.
    private static func choice<Choice: RawRepresentable & CaseIterable>(_ arguments: Arguments, _ name: String, of _: Choice.Type) throws -> Choice?
    where Choice.RawValue == String {
        guard let text = arguments.value(name) else { return nil }
        guard let value = Choice(rawValue: text) else {
            throw UsageError("unknown \(name) \(text.debugDescription); known: \(Choice.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    private static func page(_ arguments: Arguments) throws -> QueryPage {
        QueryPage(limit: try arguments.integer("limit", range: 1...QueryPage.maximumLimit) ?? QueryPage.maximumLimit, offset: try arguments.integer("offset") ?? 0)
    }

    /// Prints the reply as it came; with `failingOnError`, an error reply fails the command.
    private static func printJSON(_ reply: [UInt8], failingOnError: Bool = false) -> Int32 {
        print(String(decoding: reply, as: UTF8.self))
        if failingOnError, let value = try? JSONValue(parsing: reply), value["error"] != nil { return 1 }
        return 0
    }

    private static func summarize(_ value: JSONValue, count: Int, noun: String) {
        var line = "\(count) \(noun)\(count == 1 ? "" : "s")"
        if let next = value["next_offset"]?.intValue { line += "; more with --offset \(next)" }
        let violations = value["statistics"]?["violations"]?.intValue ?? 0
        if violations > 0 { line += "; \(violations) event\(violations == 1 ? "" : "s") flagged as breaking the rules" }
        printError(line)
        for violation in value["orphan_violations"]?.arrayValue ?? [] {
            printError("  \(violationText(violation))")
        }
    }

    private static func printViolations(_ violations: [JSONValue], total: Int64) {
        guard total > 0 else { return }
        print("")
        print("flagged events (\(total)\(violations.count < total ? ", the last \(violations.count) shown" : "")):")
        for violation in violations { print("  \(violationText(violation))") }
    }

    private static func violationText(_ violation: JSONValue) -> String {
        "\(text(violation["timestamp"])) \(text(violation["event_type"])) \(text(violation["event_id"])): \(text(violation["code"])): \(text(violation["detail"]))"
    }

    private static func row(_ columns: [(String, Int)]) -> String {
        columns.map { $0.0.padding(toLength: max($0.1, $0.0.count), withPad: " ", startingAt: 0) }.joined(separator: " ")
    }

    /// A value of a reply as text for the terminal: `-` for null or absent, escaped (``TerminalText``).
    private static func text(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: "-"
        case .string(let text)?: TerminalText(text).description
        case let other?: TerminalText(other.jsonString).description
        }
    }
}
