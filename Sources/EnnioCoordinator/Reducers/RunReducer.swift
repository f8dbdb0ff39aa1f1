public import EnnioEvents

/// The workflow run reducer: run events in, each run's status, attempts per state and resume
/// point out. Pure and deterministic, like ``RolloutReducer``; it emits nothing.
///
/// The rules are those of `topics.md` (the runs family). The one the rest serve: a resume point
/// names a resume boundary (initial, base or context snapshot), never a failure snapshot —
/// an event that would make the two meet is refused.
public struct RunReducer: Sendable {
    public internal(set) var runs: [String: RunRecord] = [:]
    /// Violations of events that name no run the reducer knows.
    public internal(set) var orphans = ViolationLog()
    public internal(set) var statistics = ReducerStatistics()
    /// What changed since the coordinator's last commit, for its checkpoint
    /// (`RunReducer+Checkpoint.swift`).
    var changes = Changes()

    public init() {}

    /// The runs, by op id.
    public var runList: [RunRecord] {
        runs.values.sorted { $0.opId < $1.opId }
    }

    /// Applies one event; returns what became of it.
    public mutating func apply(_ event: Event) -> ReducerOutcome {
        noteTotals()
        let outcome = reduce(event)
        statistics.count(outcome)
        if case .violation(let violation) = outcome.verdict {
            if runs[event.sessionId] != nil {
                changes.runs.note(event.sessionId, was: runs[event.sessionId])
                runs[event.sessionId]?.violations.add(violation)
            } else {
                orphans.add(violation)
            }
        }
        return outcome
    }

    private mutating func reduce(_ event: Event) -> ReducerOutcome {
        guard event.eventType.category == .run else { return ReducerOutcome(.ignored) }
        let data: Members
        do {
            data = Members(try event.eventType.checkedData(of: event), event)
        } catch {
            return .violation(.invalidData, event, error.detail)
        }
        if event.eventType == .runStarted { return started(event, data) }
        guard let index = runs.index(forKey: event.sessionId) else {
            return .violation(.unknownRun, event, "no run \(event.sessionId.debugDescription) was started")
        }
        guard runs.values[index].projectId == event.projectId else {
            return .violation(.wrongScope, event, "run \(event.sessionId.debugDescription) belongs to project \(runs.values[index].projectId.debugDescription), not \(event.projectId.debugDescription)")
        }
        let noted = !changes.runs.contains(event.sessionId) && changes.runs.note(event.sessionId, was: runs.values[index])
        let outcome: ReducerOutcome
        switch event.eventType {
        case .stateEntered: outcome = Self.entered(event, data, &runs.values[index])
        case .stateCompleted, .stateFailed: outcome = Self.closed(event, data, &runs.values[index])
        case .runCompleted: outcome = Self.completed(event, data, &runs.values[index])
        default: outcome = ReducerOutcome(.ignored)
        }
        if noted, outcome.verdict == .duplicate || outcome.verdict == .ignored { changes.runs.forget(event.sessionId) }
        return outcome
    }

    private mutating func started(_ event: Event, _ data: Members) -> ReducerOutcome {
        let manifest = data.string("manifest_id") ?? ""
        let initial = data.string("initial_snapshot_id") ?? ""
        if let existing = runs[event.sessionId] {
            if existing.projectId == event.projectId, existing.manifestId == manifest, existing.initialSnapshotId == initial {
                return ReducerOutcome(.duplicate)
            }
            return .violation(.runExists, event, "run \(event.sessionId.debugDescription) was started already")
        }
        changes.runs.note(event.sessionId, was: nil)
        runs[event.sessionId] = RunRecord(opId: event.sessionId, projectId: event.projectId, manifestId: manifest, initialSnapshotId: initial, at: event.timestamp)
        return ReducerOutcome(.applied)
    }

    private static func entered(_ event: Event, _ data: Members, _ run: inout RunRecord) -> ReducerOutcome {
        let state = data.string("state_id") ?? ""
        let number = data.integer("attempt")
        let base = data.string("base_snapshot_id") ?? ""
        // Read in a scope of their own, so that the array is not shared when it is changed below.
        let lastNumber: Int64?
        do {
            let attempts = run.states[state] ?? []
            if attempts.contains(where: { $0.number == number && $0.baseSnapshotId == base }) { return ReducerOutcome(.duplicate) }
            lastNumber = attempts.last?.number
        }
        guard run.status == .running else { return finished(event, run) }
        guard !run.failureSnapshots.contains(base) else {
            return .violation(.failureSnapshotAsBoundary, event, "base_snapshot_id \(base.debugDescription) is a failure snapshot; an attempt never starts from one")
        }
        if let open = run.openState, open != state {
            return .violation(.anotherStateOpen, event, "an attempt at state \(open.debugDescription) is still open")
        }
        if let lastNumber, number <= lastNumber {
            return .violation(
                number < lastNumber ? .attemptWentBackwards : .attemptRepeated, event,
                "state \(state.debugDescription) had attempt \(lastNumber) already; attempt \(number) must be later")
        }
        let attempt = StateAttempt(number: number, baseSnapshotId: base, enteredBy: event.id)
        if let index = run.states.index(forKey: state) {
            if run.openState == state, let last = run.states.values[index].indices.last {
                run.states.values[index][last].outcome = .interrupted
            }
            run.states.values[index].append(attempt)
        } else {
            run.stateOrder.append(state)
            run.states[state] = [attempt]
        }
        run.boundaries.insert(base)
        run.openState = state
        run.lastStep = .entered(state: state, attempt: number)
        run.touch(event.timestamp)
        return ReducerOutcome(.applied)
    }

    /// `StateCompleted` or `StateFailed`: closes the state's open attempt.
    private static func closed(_ event: Event, _ data: Members, _ run: inout RunRecord) -> ReducerOutcome {
        let state = data.string("state_id") ?? ""
        let named = data.optionalInteger("attempt")
        let outcome: StateAttempt.Outcome
        if event.eventType == .stateCompleted {
            outcome = .completed(contextSnapshotId: data.string("context_snapshot_id") ?? "")
        } else {
            outcome = .failed(error: data.string("error") ?? "", failureSnapshotId: data.string("failure_snapshot_id"))
        }
        let last: StateAttempt?
        do {
            let attempts = run.states[state] ?? []
            // The same event again, or the same outcome of the same attempt sent again.
            if attempts.contains(where: { $0.closedBy == event.id }) { return ReducerOutcome(.duplicate) }
            let open = attempts.last.flatMap { $0.outcome == .open ? $0 : nil }
            if open == nil || (named != nil && named != open?.number),
                attempts.contains(where: { $0.outcome == outcome && (named == nil || $0.number == named) })
            {
                return ReducerOutcome(.duplicate)
            }
            last = attempts.last
        }
        guard run.status == .running else { return finished(event, run) }
        guard let last, let index = run.states.index(forKey: state) else {
            return .violation(.notEntered, event, "state \(state.debugDescription) was never entered")
        }
        guard last.outcome == .open, named == nil || named == last.number else {
            let which = named.map { "attempt \($0)" } ?? "an open attempt"
            return .violation(.attemptNotOpen, event, "state \(state.debugDescription) has no \(which) (its last attempt, \(last.number), is \(last.outcome.name))")
        }
        switch outcome {
        case .completed(let context):
            guard !run.failureSnapshots.contains(context) else {
                return .violation(.failureSnapshotAsBoundary, event, "context_snapshot_id \(context.debugDescription) is a failure snapshot; the next state never starts from one")
            }
            run.boundaries.insert(context)
            run.lastStep = .completed(state: state, attempt: last.number)
        case .failed(_, let snapshot):
            if let snapshot {
                guard !run.boundaries.contains(snapshot) else {
                    return .violation(.boundaryAsFailureSnapshot, event, "failure_snapshot_id \(snapshot.debugDescription) is a resume boundary of this run")
                }
                run.failureSnapshots.insert(snapshot)
            }
            run.lastStep = .failed(state: state, attempt: last.number)
        case .open, .interrupted:
            break
        }
        let lastIndex = run.states.values[index].count - 1
        run.states.values[index][lastIndex].outcome = outcome
        run.states.values[index][lastIndex].closedBy = event.id
        run.openState = nil
        run.touch(event.timestamp)
        return ReducerOutcome(.applied)
    }

    private static func completed(_ event: Event, _ data: Members, _ run: inout RunRecord) -> ReducerOutcome {
        let status = RunStatus(rawValue: data.string("status") ?? "") ?? .failed
        let final = data.string("final_snapshot_id")
        if run.status == status, run.finalSnapshotId == final { return ReducerOutcome(.duplicate) }
        guard run.status == .running else { return finished(event, run) }
        run.status = status
        run.finalSnapshotId = final
        run.touch(event.timestamp)
        return ReducerOutcome(.applied)
    }

    private static func finished(_ event: Event, _ run: RunRecord) -> ReducerOutcome {
        .violation(.runFinished, event, "run \(run.opId.debugDescription) completed (\(run.status))")
    }
}
