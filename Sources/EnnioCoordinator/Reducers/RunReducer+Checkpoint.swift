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
        guard let valueBytes = row.value else { return }
        let context = "the \(row.table) row \(row.key.debugDescription)"
        let value = try CheckpointFields(parsing: valueBytes, context)
        switch row.table {
        case Self.runsTable:
            let run = try Self.run(from: value, state: try CheckpointFields(parsing: row.state, context))
            runs[run.opId] = run
        case FamilyReducers.totalsTable:
            (statistics, orphans) = try FamilyReducers.totals(from: value)
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

    static func run(from value: CheckpointFields, state: CheckpointFields) throws -> RunRecord {
        var run = RunRecord(
            opId: try value.string("op_id"), projectId: try value.string("project_id"), manifestId: try value.string("manifest_id"),
            initialSnapshotId: try value.string("initial_snapshot_id"), at: try value.instant("started_at_ns"))
        run.status = try value.choice("status", RunStatus.self)
        run.finalSnapshotId = try value.optionalString("final_snapshot_id")
        run.openState = try value.optionalString("open_state")
        let step = try value.fields("last_step")
        switch try step.string("step") {
        case "started": run.lastStep = .started
        case "entered": run.lastStep = .entered(state: try step.string("state_id"), attempt: try step.integer("attempt"))
        case "completed": run.lastStep = .completed(state: try step.string("state_id"), attempt: try step.integer("attempt"))
        case "failed": run.lastStep = .failed(state: try step.string("state_id"), attempt: try step.integer("attempt"))
        default: throw step.invalid("step")
        }
        run.updatedAt = try value.instant("updated_at_ns")
        run.eventCount = try value.count("event_count")
        run.violations = try value.violations("violations")
        for entry in try value.list("states") {
            let stateId = try entry.string("state_id")
            guard run.states[stateId] == nil else { throw entry.invalid("state_id") }
            run.stateOrder.append(stateId)
            run.states[stateId] = try entry.list("attempts").map { fields in
                var attempt = StateAttempt(number: try fields.integer("attempt"), baseSnapshotId: try fields.string("base_snapshot_id"), enteredBy: try fields.string("entered_by"))
                switch try fields.string("outcome") {
                case "open": attempt.outcome = .open
                case "interrupted": attempt.outcome = .interrupted
                case "completed": attempt.outcome = .completed(contextSnapshotId: try fields.string("context_snapshot_id"))
                case "failed": attempt.outcome = .failed(error: try fields.string("error"), failureSnapshotId: try fields.optionalString("failure_snapshot_id"))
                default: throw fields.invalid("outcome")
                }
                attempt.closedBy = try fields.optionalString("closed_by")
                return attempt
            }
        }
        run.boundaries = Set(try state.strings("boundaries"))
        run.failureSnapshots = Set(try state.strings("failure_snapshots"))
        return run
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
