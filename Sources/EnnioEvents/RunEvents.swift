/// The status of a workflow run (snake_case in JSON): `running` from `RunStarted`, then what
/// `RunCompleted` says.
public enum RunStatus: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case running
    case succeeded
    case failed
    case cancelled

    /// The statuses `RunCompleted` may report.
    public static let completions: [RunStatus] = [.succeeded, .failed, .cancelled]

    public var description: String { rawValue }
}

/// Why a run resumes where it does: what its last recorded step was.
public enum ResumeReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// No state entered yet: the manifest's first state, from the initial snapshot.
    case start
    /// An attempt is open (the kernel stopped during it): that state again, from its base.
    case interrupted
    /// The last attempt failed: that state again, from its base, never its failure snapshot.
    case retry
    /// The last attempt completed: the next state, from its context snapshot.
    case `continue`

    public var summary: String {
        switch self {
        case .start: "no state entered yet: the manifest's first state, from `initial_snapshot_id`"
        case .interrupted: "an attempt is open (the kernel stopped during it): re-enter that state, next attempt, from the open attempt's `base_snapshot_id`"
        case .retry: "the last attempt failed: re-enter that state, next attempt, from the failed attempt's `base_snapshot_id` — never its failure snapshot"
        case .continue: "the last attempt completed: the state after it (per the manifest), from its `context_snapshot_id`"
        }
    }

    public var description: String { rawValue }
}

extension EventFamily {
    /// Workflow runs: a kernel runs a manifest's states one after another, each attempt from a
    /// snapshot, and must resume correctly after a crash.
    public static let runs = EventFamily(
        name: "runs", title: "Workflow runs", projectRole: "project", sessionRole: "the run's `op_id`",
        documentation: runDocumentation)

    @Sendable private static func runDocumentation() -> [String] {
        var lines = [
            "#### Run rules",
            "",
            "The coordinator's reducer keeps, for every run, its status (\(RunStatus.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", "))),",
            "its attempts per state and its resume point (`ennio runs`, `ennio run resume-point`, `ennio.query.runs`).",
            "",
            "- `RunStarted` starts a run (`running`); any other event of an `op_id` not started is a rule violation.",
            "- `StateEntered` opens an attempt. A state's attempt numbers go up: a lower or repeated number is",
            "  a violation. Entering a state while another state's attempt is open is a violation; an open",
            "  attempt at the same state becomes `interrupted` (the kernel stopped and resumed).",
            "- `StateCompleted` and `StateFailed` close the state's open attempt (with `attempt`, that attempt",
            "  exactly); without an open attempt — a `StateCompleted` without `StateEntered` — they are violations.",
            "- Snapshots: the initial, base and context snapshots are resume boundaries; a failure snapshot is",
            "  diagnostic only. An event that would make a failure snapshot a boundary, or a boundary a failure",
            "  snapshot, is a violation, so a resume point never names a failure snapshot.",
            "- `RunCompleted` ends the run; every later event of it is a violation.",
            "",
        ]
        lines += TopicsDocument.table(["Last step of a running run", "Resume point (`reason`)"], ResumeReason.allCases.map { ["`\($0.rawValue)`", $0.summary] })
        lines += [
            "",
            "A completed run has no resume point.",
        ]
        return lines
    }
}

extension EventDataField {
    static let opId = EventDataField("op_id", .identifier, mirrors: .sessionId, "the run; the same as `session_id`")
    static let manifestId = EventDataField("manifest_id", .identifier, "the workflow manifest it runs")
    static let initialSnapshotId = EventDataField("initial_snapshot_id", .identifier, "the snapshot the run starts from")
    static let stateId = EventDataField("state_id", .identifier, "the state of the manifest")
    static let attempt = EventDataField("attempt", .integer(1...Int64.max), "the attempt's number; a state's attempts go up from 1")
    static let optionalAttempt = EventDataField("attempt", .integer(1...Int64.max), required: false, "the attempt it closes; when given, it must be the open one")
    static let baseSnapshotId = EventDataField("base_snapshot_id", .identifier, "the snapshot the attempt starts from: the resume and retry boundary")
    static let contextSnapshotId = EventDataField("context_snapshot_id", .identifier, "the snapshot the next state starts from")
    static let error = EventDataField("error", .text, "what went wrong")
    static let failureSnapshotId = EventDataField("failure_snapshot_id", .identifier, required: false, "a snapshot for diagnosis only, never a resume boundary")
    static let runStatus = EventDataField("status", .choice(RunStatus.completions.map(\.rawValue)), "how the run ended")
    static let finalSnapshotId = EventDataField("final_snapshot_id", .identifier, required: false, "the run's last snapshot")
}
