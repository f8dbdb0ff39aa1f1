/// Every kind of event, with its category and subject action.
///
/// The raw value is the wire name: the type's name in snake_case, as the Rust implementation
/// writes it (`session_spawned`, `ci_fix_sent`, `node_health_check`). The action is the name
/// without its category word (`spawned`, `fix_sent`, `health_check`). ``EventType/entry`` is
/// the one table all of this — subjects, JSON, the typed fields of `data` and `topics.md` — is
/// generated from. A type belongs to the family of its category (``EventFamily``): the
/// orchestrator's sessions, pull requests, CI, …, then fleet rollouts and workflow runs.
public enum EventType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case sessionSpawned = "session_spawned"
    case sessionWorking = "session_working"
    case sessionExited = "session_exited"
    case sessionKilled = "session_killed"
    case sessionRestored = "session_restored"
    case sessionCleaned = "session_cleaned"
    case statusChanged = "status_changed"
    case activityChanged = "activity_changed"
    case tickError = "tick_error"
    case prCreated = "pr_created"
    case prUpdated = "pr_updated"
    case prMerged = "pr_merged"
    case prClosed = "pr_closed"
    case ciPassing = "ci_passing"
    case ciFailing = "ci_failing"
    case ciFixSent = "ci_fix_sent"
    case ciFixFailed = "ci_fix_failed"
    case reviewPending = "review_pending"
    case reviewApproved = "review_approved"
    case reviewChangesRequested = "review_changes_requested"
    case reviewCommentsSent = "review_comments_sent"
    case mergeReady = "merge_ready"
    case mergeConflicts = "merge_conflicts"
    case mergeCompleted = "merge_completed"
    case reactionTriggered = "reaction_triggered"
    case reactionEscalated = "reaction_escalated"
    case allComplete = "all_complete"
    case nodeConnected = "node_connected"
    case nodeDisconnected = "node_disconnected"
    case nodeLaunched = "node_launched"
    case nodeHealthCheck = "node_health_check"
    // Fleet rollouts (the `rollouts` family).
    case rolloutOpened = "rollout_opened"
    case hostJoined = "host_joined"
    case hostStateChanged = "host_state_changed"
    case waveAdvanced = "wave_advanced"
    case rolloutTerminal = "rollout_terminal"
    case successorOpened = "successor_opened"
    case retentionExpired = "retention_expired"
    case operatorClearance = "operator_clearance"
    // Workflow runs (the `runs` family).
    case runStarted = "run_started"
    case stateEntered = "state_entered"
    case stateCompleted = "state_completed"
    case stateFailed = "state_failed"
    case runCompleted = "run_completed"

    /// One row of the table.
    public struct Entry: Sendable, Hashable {
        /// The type's name as written in code and in the Rust enum (`CiFixSent`).
        public let name: String
        public let category: EventCategory
        /// The last token of the subject (`fix_sent`).
        public let action: String
        /// What the event means, for `topics.md` and `ennio topics`.
        public let summary: String
        /// Not one of the Rust implementation's 30 types: an extension of this project, marked
        /// as such in `topics.md`.
        public var isExtension = false
        /// The members `data` must have (none: `data` is free, as for every orchestrator type).
        /// Made when asked (``EventType/fields`` keeps them), so that a row costs no more to
        /// read for its category or action than it did before types had members.
        public var fields: [EventDataField] { makeFields() }
        private let makeFields: @Sendable () -> [EventDataField]

        public init(
            name: String, category: EventCategory, action: String, summary: String, isExtension: Bool = false,
            fields: @autoclosure @escaping @Sendable () -> [EventDataField] = []
        ) {
            self.name = name
            self.category = category
            self.action = action
            self.summary = summary
            self.isExtension = isExtension
            self.makeFields = fields
        }

        public static func == (lhs: Entry, rhs: Entry) -> Bool {
            lhs.name == rhs.name && lhs.category == rhs.category && lhs.action == rhs.action && lhs.summary == rhs.summary
                && lhs.isExtension == rhs.isExtension && lhs.fields == rhs.fields
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(category)
            hasher.combine(action)
        }
    }

    /// The table.
    public var entry: Entry {
        switch self {
        case .sessionSpawned: Entry(name: "SessionSpawned", category: .sessions, action: "spawned", summary: "A session was started.")
        case .sessionWorking: Entry(name: "SessionWorking", category: .sessions, action: "working", summary: "A session is working on its task.")
        case .sessionExited: Entry(name: "SessionExited", category: .sessions, action: "exited", summary: "A session's process exited (terminal).")
        case .sessionKilled: Entry(name: "SessionKilled", category: .sessions, action: "killed", summary: "A session was killed (terminal).")
        case .sessionRestored: Entry(name: "SessionRestored", category: .sessions, action: "restored", summary: "An exited session was restored.")
        case .sessionCleaned: Entry(name: "SessionCleaned", category: .sessions, action: "cleaned", summary: "A session's workspace was cleaned up (terminal).")
        case .statusChanged: Entry(name: "StatusChanged", category: .sessions, action: "status_changed", summary: "A session's status changed; `data.from` and `data.to` hold the statuses.")
        case .activityChanged: Entry(name: "ActivityChanged", category: .sessions, action: "activity_changed", summary: "A session's activity changed; `data.prev` (null on the first probe) and `data.next` hold it (older producers: `data.activity`).")
        case .tickError: Entry(name: "TickError", category: .sessions, action: "tick_error", summary: "A node agent's lifecycle loop could not read a session's record or probe its process; `data.error` says why. The loop goes on.", isExtension: true)
        case .prCreated: Entry(name: "PrCreated", category: .pr, action: "created", summary: "A pull request was opened.")
        case .prUpdated: Entry(name: "PrUpdated", category: .pr, action: "updated", summary: "A pull request was updated.")
        case .prMerged: Entry(name: "PrMerged", category: .pr, action: "merged", summary: "A pull request was merged.")
        case .prClosed: Entry(name: "PrClosed", category: .pr, action: "closed", summary: "A pull request was closed without merging.")
        case .ciPassing: Entry(name: "CiPassing", category: .ci, action: "passing", summary: "CI passes.")
        case .ciFailing: Entry(name: "CiFailing", category: .ci, action: "failing", summary: "CI fails.")
        case .ciFixSent: Entry(name: "CiFixSent", category: .ci, action: "fix_sent", summary: "A fix for failing CI was sent to the agent.")
        case .ciFixFailed: Entry(name: "CiFixFailed", category: .ci, action: "fix_failed", summary: "The CI fix did not make CI pass.")
        case .reviewPending: Entry(name: "ReviewPending", category: .review, action: "pending", summary: "A review was requested.")
        case .reviewApproved: Entry(name: "ReviewApproved", category: .review, action: "approved", summary: "A reviewer approved.")
        case .reviewChangesRequested: Entry(name: "ReviewChangesRequested", category: .review, action: "changes_requested", summary: "A reviewer asked for changes.")
        case .reviewCommentsSent: Entry(name: "ReviewCommentsSent", category: .review, action: "comments_sent", summary: "Review comments were sent to the agent.")
        case .mergeReady: Entry(name: "MergeReady", category: .merge, action: "ready", summary: "The change is ready to merge.")
        case .mergeConflicts: Entry(name: "MergeConflicts", category: .merge, action: "conflicts", summary: "The change has merge conflicts.")
        case .mergeCompleted: Entry(name: "MergeCompleted", category: .merge, action: "completed", summary: "The change was merged.")
        case .reactionTriggered: Entry(name: "ReactionTriggered", category: .reactions, action: "triggered", summary: "An automatic reaction ran.")
        case .reactionEscalated: Entry(name: "ReactionEscalated", category: .reactions, action: "escalated", summary: "A reaction was escalated to a person.")
        case .allComplete: Entry(name: "AllComplete", category: .lifecycle, action: "all_complete", summary: "Every session of the project in `project_id` reached a terminal state.")
        case .nodeConnected: Entry(name: "NodeConnected", category: .node, action: "connected", summary: "A node agent (re)connected to NATS.")
        case .nodeDisconnected: Entry(name: "NodeDisconnected", category: .node, action: "disconnected", summary: "A node agent stopped, or the coordinator lost its health checks.")
        case .nodeLaunched: Entry(name: "NodeLaunched", category: .node, action: "launched", summary: "A node agent started.")
        case .nodeHealthCheck: Entry(name: "NodeHealthCheck", category: .node, action: "health_check", summary: "A node agent's periodic health report (load, uptime).")
        case .rolloutOpened: Entry(name: "RolloutOpened", category: .rollout, action: "opened", summary: "A rollout of `target_ref` to the channel was opened (its first event): Opening.", fields: [.rolloutId, .channel, .targetRef, .at])
        case .hostJoined: Entry(name: "HostJoined", category: .rollout, action: "host_joined", summary: "A host joined a wave of the rollout, `dispatched`; the first one makes it Active.", fields: [.rolloutId, .hostId, .wave, .at])
        case .hostStateChanged: Entry(name: "HostStateChanged", category: .rollout, action: "host_state_changed", summary: "A host of the rollout moved from one host state to another.", fields: [.rolloutId, .hostId, .hostState("from"), .hostState("to"), .at])
        case .waveAdvanced: Entry(name: "WaveAdvanced", category: .rollout, action: "wave_advanced", summary: "Every host of the current wave soaked; the next wave starts: Converging → Active.", fields: [.rolloutId, .wave("from_wave"), .wave("to_wave"), .at])
        case .rolloutTerminal: Entry(name: "RolloutTerminal", category: .rollout, action: "terminal", summary: "Every host of every wave converged: Converging → Terminal. Published once by the coordinator's reducer, never by anyone else.", fields: [.rolloutId, .at])
        case .successorOpened: Entry(name: "SuccessorOpened", category: .rollout, action: "successor_opened", summary: "A successor (`session_id`) replaces a live rollout of the channel: the predecessor becomes Superseded as the successor opens.", fields: [.supersededRolloutId, .successorRolloutId, .optionalTargetRef, .at])
        case .retentionExpired: Entry(name: "RetentionExpired", category: .rollout, action: "retention_expired", summary: "A Terminal, Superseded, Failed or Reverted rollout passed its retention: → Pruned.", fields: [.rolloutId, .at])
        case .operatorClearance: Entry(name: "OperatorClearance", category: .rollout, action: "operator_clearance", summary: "An operator cleared a Failed rollout: it resumes, and the hosts failed or reverted by then no longer hold it back.", fields: [.rolloutId, .operatorName, .reason, .at])
        case .runStarted: Entry(name: "RunStarted", category: .run, action: "started", summary: "A workflow run started from its initial snapshot.", fields: [.opId, .manifestId, .initialSnapshotId])
        case .stateEntered: Entry(name: "StateEntered", category: .run, action: "state_entered", summary: "An attempt at a state started from `base_snapshot_id`: the boundary a resume or retry starts from.", fields: [.stateId, .attempt, .baseSnapshotId])
        case .stateCompleted: Entry(name: "StateCompleted", category: .run, action: "state_completed", summary: "The open attempt at a state completed; the next state starts from `context_snapshot_id`.", fields: [.stateId, .contextSnapshotId, .optionalAttempt])
        case .stateFailed: Entry(name: "StateFailed", category: .run, action: "state_failed", summary: "The open attempt at a state failed; its failure snapshot is diagnostic only, never a resume boundary.", fields: [.stateId, .error, .failureSnapshotId, .optionalAttempt])
        case .runCompleted: Entry(name: "RunCompleted", category: .run, action: "completed", summary: "The run ended: `succeeded`, `failed` or `cancelled`.", fields: [.runStatus, .finalSnapshotId])
        }
    }

    public var category: EventCategory { entry.category }
    /// The family the type belongs to (that of its category).
    public var family: EventFamily { category.family }
    public var action: String { entry.action }
    /// The type's name as written in code (`CiFixSent`).
    public var name: String { entry.name }

    /// The wire name (`ci_fix_sent`).
    public var wireName: String { rawValue }

    /// Looks a type up by its wire name (`ci_fix_sent`) or its name (`CiFixSent`).
    public init?(named text: String) {
        if let type = EventType(rawValue: text) {
            self = type
        } else if let type = EventType.allCases.first(where: { $0.name == text }) {
            self = type
        } else {
            return nil
        }
    }

    /// The type whose subject is `ennio.<category>.….<action>`.
    public init?(category: EventCategory, action: String) {
        guard let type = EventType.allCases.first(where: { $0.category == category && $0.action == action }) else { return nil }
        self = type
    }

    /// Whether this event ends a session (counted once by the coordinator).
    public var isTerminalForSession: Bool {
        switch self {
        case .sessionExited, .sessionKilled, .sessionCleaned: true
        default: false
        }
    }

    public var description: String { rawValue }
}

extension EventType {
    private static let byWireNameBytes = ByteKeyedTable(allCases.map { (name: $0.rawValue, value: $0) })

    /// `EventType(rawValue:)` from the wire name's UTF-8 bytes, without making a `String`.
    init?(wireNameBytes bytes: UnsafeBufferPointer<UInt8>) {
        guard let type = Self.byWireNameBytes.value(for: bytes) else { return nil }
        self = type
    }
}
