public import EnnioEvents

/// What the run reducer knows of one workflow run.
public struct RunRecord: Sendable, Hashable {
    public let opId: String
    public let projectId: String
    public let manifestId: String
    public let initialSnapshotId: String
    public internal(set) var status: RunStatus = .running
    public internal(set) var finalSnapshotId: String?
    /// The attempts at each state, by state id, oldest first.
    public internal(set) var states: [String: [StateAttempt]] = [:]
    /// The states in the order they were first entered.
    public internal(set) var stateOrder: [String] = []
    /// The state whose last attempt is open, if one is.
    public internal(set) var openState: String?
    /// What the run did last; the resume point follows from it.
    public internal(set) var lastStep: Step = .started
    /// The timestamps of the first event and of the latest event applied.
    public internal(set) var startedAt: EventTimestamp
    public internal(set) var updatedAt: EventTimestamp
    /// Events applied to it (not duplicates or violations).
    public internal(set) var eventCount = 1
    public internal(set) var violations = ViolationLog()

    /// Snapshots a run may resume from (initial, base and context snapshots), and the
    /// failure snapshots, which it never may. The two never share an id.
    var boundaries: Set<String>
    var failureSnapshots: Set<String> = []

    public enum Step: Sendable, Hashable {
        case started
        case entered(state: String, attempt: Int64)
        case completed(state: String, attempt: Int64)
        case failed(state: String, attempt: Int64)
    }

    init(opId: String, projectId: String, manifestId: String, initialSnapshotId: String, at: EventTimestamp) {
        self.opId = opId
        self.projectId = projectId
        self.manifestId = manifestId
        self.initialSnapshotId = initialSnapshotId
        self.startedAt = at
        self.updatedAt = at
        self.boundaries = [initialSnapshotId]
    }

    /// Where the run resumes after a crash: which state to enter (or the one after which) and
    /// from which snapshot. `nil` once the run completed. Never a failure snapshot.
    public var resumePoint: ResumePoint? {
        guard status == .running else { return nil }
        switch lastStep {
        case .started:
            return ResumePoint(reason: .start, stateId: nil, afterStateId: nil, snapshotId: initialSnapshotId, nextAttempt: nil)
        case .entered(let state, let attempt):
            return ResumePoint(reason: .interrupted, stateId: state, afterStateId: nil, snapshotId: attemptRecord(state, attempt)?.baseSnapshotId ?? initialSnapshotId, nextAttempt: attempt + 1)
        case .failed(let state, let attempt):
            return ResumePoint(reason: .retry, stateId: state, afterStateId: nil, snapshotId: attemptRecord(state, attempt)?.baseSnapshotId ?? initialSnapshotId, nextAttempt: attempt + 1)
        case .completed(let state, let attempt):
            let context: String? = if case .completed(let snapshot) = attemptRecord(state, attempt)?.outcome { snapshot } else { nil }
            return ResumePoint(reason: .continue, stateId: nil, afterStateId: state, snapshotId: context ?? initialSnapshotId, nextAttempt: nil)
        }
    }

    /// Attempts per state.
    public var attemptCounts: [String: Int] { states.mapValues(\.count) }

    func attemptRecord(_ state: String, _ number: Int64) -> StateAttempt? {
        states[state]?.last { $0.number == number }
    }

    mutating func touch(_ at: EventTimestamp) {
        eventCount += 1
        if at > updatedAt { updatedAt = at }
    }
}

/// One attempt at a state of a run.
public struct StateAttempt: Sendable, Hashable {
    public let number: Int64
    /// The snapshot the attempt started from: the boundary a retry or resume starts from.
    public let baseSnapshotId: String
    public internal(set) var outcome: Outcome = .open
    /// The ids of the events that opened and closed it, to know them again.
    let enteredBy: String
    var closedBy: String?

    public enum Outcome: Sendable, Hashable {
        case open
        /// Another attempt at the state started while this one was open.
        case interrupted
        case completed(contextSnapshotId: String)
        case failed(error: String, failureSnapshotId: String?)

        /// The name used in JSON.
        public var name: String {
            switch self {
            case .open: "open"
            case .interrupted: "interrupted"
            case .completed: "completed"
            case .failed: "failed"
            }
        }
    }

    init(number: Int64, baseSnapshotId: String, enteredBy: String) {
        self.number = number
        self.baseSnapshotId = baseSnapshotId
        self.enteredBy = enteredBy
    }
}

/// Where a run resumes: enter ``stateId`` (attempt ``nextAttempt``) from ``snapshotId``, or,
/// when the last attempt completed, the state after ``afterStateId`` from its context snapshot.
public struct ResumePoint: Sendable, Hashable {
    public let reason: ResumeReason
    /// The state to re-enter (`interrupted`, `retry`); `nil` when the manifest decides (`start`,
    /// `continue`).
    public let stateId: String?
    /// The state that completed last (`continue`).
    public let afterStateId: String?
    /// The snapshot to start from: an initial, base or context snapshot, never a failure one.
    public let snapshotId: String
    public let nextAttempt: Int64?
}
