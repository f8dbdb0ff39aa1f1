import EnnioEvents

/// The run reducer's state as rows of the coordinator's checkpoint (``FamilyReducers``): a row
/// per run (the record, its attempts and the ids that recognise their events again, and in
/// `state` its resume boundaries and failure snapshots), and its totals. A batch writes the rows
/// of the runs it changed; a failed batch is undone from the records as they were. Loaded back,
/// the rows give the reducer exactly as it was.
extension RunReducer {
    static let runsTable = "runs"
    /// The key of its totals in ``FamilyReducers/totalsTable``.
    static let totalsKey = "runs"

    struct Totals: Sendable {
        var orphans: ViolationLog
        var statistics: ReducerStatistics
    }

    /// What changed since the last commit, with what it was.
    struct Changes: Sendable {
        var runs = ChangedEntries<String, RunRecord>()
        var totals: Totals?
    }

    mutating func noteTotals() {
        if changes.totals == nil { changes.totals = Totals(orphans: orphans, statistics: statistics) }
    }

    func changedRows() -> [CheckpointRow] {
        var rows: [CheckpointRow] = []
        rows.reserveCapacity(changes.runs.before.count + 1)
        for opId in changes.runs.keys {
            if let run = runs[opId] {
                rows.append(Self.row(of: run))
            } else {
                rows.append(.deletion(table: Self.runsTable, key: opId))
            }
        }
        if changes.totals != nil { rows.append(FamilyReducers.totalsRow(Self.totalsKey, statistics: statistics, orphans: orphans)) }
        return rows
    }

    mutating func committed() {
        changes.runs.removeAll()
        changes.totals = nil
    }

    mutating func rollBack() {
        if let totals = changes.totals {
            orphans = totals.orphans
            statistics = totals.statistics
        }
        changes.runs.restore(&runs)
        committed()
    }

    mutating func load(_ row: CheckpointRow) throws {
        guard let value = row.value else { return }
        switch row.table {
        case Self.runsTable:
            var run = try CheckpointDecoder.decode(value, of: row, Self.run)
            try CheckpointDecoder.decode(row.state, of: row) { reader, decoder throws(JSONError) -> Void? in
                var boundaries: [String]?, failures: [String]?
                try reader.readObject { key, reader throws(JSONError) in
                    switch key {
                    case "boundaries": boundaries = try reader.readStrings()
                    case "failure_snapshots": failures = try reader.readStrings()
                    default: try reader.skipValue()
                    }
                }
                guard let boundaries = decoder.required(boundaries, "boundaries"), let failures = decoder.required(failures, "failure_snapshots") else { return nil }
                run.boundaries = Set(boundaries)
                run.failureSnapshots = Set(failures)
                return ()
            }
            runs[run.opId] = run
        case FamilyReducers.totalsTable:
            (statistics, orphans) = try FamilyReducers.totals(from: value, of: row)
        default:
            throw CheckpointError("the run reducer has no table \(row.table.debugDescription)")
        }
    }

    // MARK: - A run's row

    static func row(of run: RunRecord) -> CheckpointRow {
        var value = JSONWriter(reservingCapacity: 512)
        value.beginObject()
        value.member("op_id", run.opId)
        value.member("project_id", run.projectId)
        value.member("manifest_id", run.manifestId)
        value.member("initial_snapshot_id", run.initialSnapshotId)
        value.member("status", run.status.rawValue)
        value.member("final_snapshot_id", run.finalSnapshotId)
        value.member("open_state", run.openState)
        value.key("last_step")
        value.beginObject()
        switch run.lastStep {
        case .started:
            value.member("step", "started")
        case .entered(let state, let attempt), .completed(let state, let attempt), .failed(let state, let attempt):
            value.member("step", run.lastStep.name)
            value.member("state_id", state)
            value.member("attempt", attempt)
        }
        value.endObject()
        value.member("started_at_ns", run.startedAt)
        value.member("updated_at_ns", run.updatedAt)
        value.member("event_count", count: run.eventCount)
        value.member("violations", run.violations)
        value.key("states")
        value.beginArray()
        for stateId in run.stateOrder {
            value.beginObject()
            value.member("state_id", stateId)
            value.key("attempts")
            value.beginArray()
            for attempt in run.states[stateId] ?? [] {
                value.beginObject()
                value.member("attempt", attempt.number)
                value.member("base_snapshot_id", attempt.baseSnapshotId)
                value.member("outcome", attempt.outcome.name)
                switch attempt.outcome {
                case .completed(let context):
                    value.member("context_snapshot_id", context)
                case .failed(let error, let snapshot):
                    value.member("error", error)
                    value.member("failure_snapshot_id", snapshot)
                case .open, .interrupted:
                    break
                }
                value.member("entered_by", attempt.enteredBy)
                value.member("closed_by", attempt.closedBy)
                value.endObject()
            }
            value.endArray()
            value.endObject()
        }
        value.endArray()
        value.endObject()

        var state = JSONWriter(reservingCapacity: 128)
        state.beginObject()
        state.member("boundaries", strings: run.boundaries.sorted())
        state.member("failure_snapshots", strings: run.failureSnapshots.sorted())
        state.endObject()
        return CheckpointRow(table: runsTable, key: run.opId, value: value.bytes, state: state.bytes)
    }

    /// Reads a run's `value` (the record but its boundaries and failure snapshots).
    static func run(_ reader: inout JSONReader, _ decoder: inout CheckpointDecoder) throws(JSONError) -> RunRecord? {
        var opId: String?, project: String?, manifest: String?, initial: String?, status: String?, final: String?, open: String?
        var step: RunRecord.Step?, started: EventTimestamp?, updated: EventTimestamp?, eventCount: Int?, violations = ViolationLog()
        var order: [String] = [], states: [String: [StateAttempt]] = [:]
        try reader.readObject { key, reader throws(JSONError) in
            switch key {
            case "op_id": opId = try reader.readString()
            case "project_id": project = try reader.readString()
            case "manifest_id": manifest = try reader.readString()
            case "initial_snapshot_id": initial = try reader.readString()
            case "status": status = try reader.readString()
            case "final_snapshot_id": final = try reader.readOptionalString()
            case "open_state": open = try reader.readOptionalString()
            case "last_step":
                var name: String?, state: String?, attempt: Int64?
                try reader.readObject { key, reader throws(JSONError) in
                    switch key {
                    case "step": name = try reader.readString()
                    case "state_id": state = try reader.readString()
                    case "attempt": attempt = try reader.readInt()
                    default: try reader.skipValue()
                    }
                }
                step = switch (name, state, attempt) {
                case ("started", _, _): .started
                case ("entered", let state?, let attempt?): .entered(state: state, attempt: attempt)
                case ("completed", let state?, let attempt?): .completed(state: state, attempt: attempt)
                case ("failed", let state?, let attempt?): .failed(state: state, attempt: attempt)
                default: nil
                }
            case "started_at_ns": started = try reader.readInstant()
            case "updated_at_ns": updated = try reader.readInstant()
            case "event_count": eventCount = try reader.readCount()
            case "violations": violations = try decoder.violations(&reader)
            case "states":
                try reader.readArray { reader throws(JSONError) in
                    var stateId: String?, attempts: [StateAttempt] = []
                    try reader.readObject { key, reader throws(JSONError) in
                        switch key {
                        case "state_id": stateId = try reader.readString()
                        case "attempts":
                            try reader.readArray { reader throws(JSONError) in
                                if let attempt = try Self.attempt(&reader, &decoder) { attempts.append(attempt) }
                            }
                        default: try reader.skipValue()
                        }
                    }
                    guard let stateId, states[stateId] == nil else { return decoder.invalid("state_id") }
                    order.append(stateId)
                    states[stateId] = attempts
                }
            default: try reader.skipValue()
            }
        }
        guard let opId = decoder.required(opId, "op_id"), let project = decoder.required(project, "project_id"),
            let manifest = decoder.required(manifest, "manifest_id"), let initial = decoder.required(initial, "initial_snapshot_id"),
            let status = decoder.choice(status, RunStatus.self, "status"), let step = decoder.required(step, "last_step"),
            let started = decoder.required(started, "started_at_ns"), let updated = decoder.required(updated, "updated_at_ns"),
            let eventCount = decoder.required(eventCount, "event_count")
        else { return nil }
        var run = RunRecord(opId: opId, projectId: project, manifestId: manifest, initialSnapshotId: initial, at: started)
        run.status = status
        run.finalSnapshotId = final
        run.openState = open
        run.lastStep = step
        run.updatedAt = updated
        run.eventCount = eventCount
        run.violations = violations
        run.stateOrder = order
        run.states = states
        return run
    }

    /// Reads one attempt at a state.
    private static func attempt(_ reader: inout JSONReader, _ decoder: inout CheckpointDecoder) throws(JSONError) -> StateAttempt? {
        var number: Int64?, base: String?, outcome: String?, context: String?, error: String?, failure: String?, enteredBy: String?, closedBy: String?
        try reader.readObject { key, reader throws(JSONError) in
            switch key {
            case "attempt": number = try reader.readInt()
            case "base_snapshot_id": base = try reader.readString()
            case "outcome": outcome = try reader.readString()
            case "context_snapshot_id": context = try reader.readString()
            case "error": error = try reader.readString()
            case "failure_snapshot_id": failure = try reader.readOptionalString()
            case "entered_by": enteredBy = try reader.readString()
            case "closed_by": closedBy = try reader.readOptionalString()
            default: try reader.skipValue()
            }
        }
        let result: StateAttempt.Outcome? = switch (outcome, context, error) {
        case ("open", _, _): .open
        case ("interrupted", _, _): .interrupted
        case ("completed", let context?, _): .completed(contextSnapshotId: context)
        case ("failed", _, let error?): .failed(error: error, failureSnapshotId: failure)
        default: nil
        }
        guard let number, let base, let enteredBy, let result else {
            decoder.invalid("attempt")
            return nil
        }
        var attempt = StateAttempt(number: number, baseSnapshotId: base, enteredBy: enteredBy)
        attempt.outcome = result
        attempt.closedBy = closedBy
        return attempt
    }
}

extension RunRecord.Step {
    /// The step's name in a checkpoint row.
    var name: String {
        switch self {
        case .started: "started"
        case .entered: "entered"
        case .completed: "completed"
        case .failed: "failed"
        }
    }
}
