public import EnnioEvents

/// What the coordinator knows of one session.
public struct SessionRecord: Sendable, Hashable {
    public var projectId: String
    public var sessionId: String
    /// The last status (`working`, `pr_open`, `ci_failed`, `merged`, …), as the Rust
    /// implementation names them.
    public var status: String?
    public var activity: String?
    public var lastEventType: EventType
    public var lastEventAt: EventTimestamp
    /// Reached a terminal state (exited, killed, cleaned, merged, done).
    public var terminal: Bool
    public var eventCount: Int
}

/// What the coordinator knows of one node.
public struct NodeRecord: Sendable, Hashable {
    public var host: String
    public var connected: Bool
    /// When the last event from the node arrived, on the coordinator's clock.
    public var lastSeen: Duration
    public var lastHealthCheck: EventTimestamp?
    /// The node's health-check interval (from `data.interval_seconds`, else the default).
    public var healthInterval: Duration
    /// The `data` of the last health check.
    public var health: JSONValue
    /// A `NodeDisconnected` for this node was already published or received.
    public var disconnectReported: Bool
}

/// Something the lifecycle rules ask the coordinator to do.
public enum LifecycleAction: Sendable, Hashable {
    /// Publish this event (to the node `host`'s subject for node events).
    case publish(Event, host: String?)
}

/// The coordinator's lifecycle rules as a pure state machine: events and time in, state and
/// actions out. No NATS, no clock of its own — tests drive it directly.
///
/// - Status changes whose `from` equals `to` change nothing.
/// - A session's terminal event is counted once, however often it is repeated.
/// - When every session of a project is terminal, `all_complete` is published once for that
///   project (again only after a new session of it starts and everything ends again).
/// - A node whose health checks stop for `missedHealthChecks` intervals is marked disconnected
///   and `NodeDisconnected` is published for it once.
public struct LifecycleState: Sendable {
    public private(set) var sessions: [String: SessionRecord] = [:]
    public private(set) var nodes: [String: NodeRecord] = [:]
    public private(set) var completedProjects: Set<String> = []
    /// Terminal transitions counted (once per session).
    public private(set) var terminalCount = 0
    /// Status changes ignored because `from` equalled `to`.
    public private(set) var ignoredStatusChanges = 0

    public let defaultHealthInterval: Duration
    public let missedHealthChecks: Int

    static let terminalStatuses: Set<String> = ["merged", "done", "exited", "killed", "cleaned"]

    public init(defaultHealthInterval: Duration = .seconds(10), missedHealthChecks: Int = 3) {
        self.defaultHealthInterval = defaultHealthInterval
        self.missedHealthChecks = missedHealthChecks
    }

    static func key(_ projectId: String, _ sessionId: String) -> String {
        projectId + "\u{0}" + sessionId
    }

    /// The sessions, sorted by project then session.
    public var sessionList: [SessionRecord] {
        sessions.values.sorted { ($0.projectId, $0.sessionId) < ($1.projectId, $1.sessionId) }
    }

    /// The nodes, sorted by host.
    public var nodeList: [NodeRecord] {
        nodes.values.sorted { $0.host < $1.host }
    }

    /// Applies one (new, stored) event received at `now`. `host` is the node of a node event,
    /// from its subject.
    public mutating func apply(_ event: Event, host: String? = nil, now: Duration) -> [LifecycleAction] {
        switch event.eventType.category {
        case .node:
            applyNode(event, host: host ?? event.data["host"]?.stringValue, now: now)
            return []
        case .lifecycle, .rollout, .run:
            // Rollouts and runs have reducers of their own (`FamilyReducers`).
            return []
        case .sessions, .pr, .ci, .review, .merge, .reactions:
            return applySession(event)
        }
    }

    private mutating func applySession(_ event: Event) -> [LifecycleAction] {
        guard !event.sessionId.isEmpty else { return [] }
        let key = Self.key(event.projectId, event.sessionId)
        var record = sessions[key] ?? SessionRecord(
            projectId: event.projectId, sessionId: event.sessionId, status: nil, activity: nil,
            lastEventType: event.eventType, lastEventAt: event.timestamp, terminal: false, eventCount: 0)
        record.eventCount += 1
        if event.timestamp >= record.lastEventAt || record.eventCount == 1 {
            record.lastEventType = event.eventType
            record.lastEventAt = event.timestamp
        }

        var newStatus: String?
        switch event.eventType {
        case .statusChanged:
            let from = event.data["from"]?.stringValue
            let to = event.data["to"]?.stringValue
            if let to, to != from {
                newStatus = to
            } else {
                ignoredStatusChanges += 1
            }
        case .activityChanged:
            // Node agents write `data.prev`/`data.next`; older producers `data.activity`.
            if let activity = event.data["next"]?.stringValue ?? event.data["activity"]?.stringValue { record.activity = activity }
        default:
            newStatus = Self.status(after: event.eventType)
        }

        var actions: [LifecycleAction] = []
        if let newStatus {
            if event.eventType == .sessionRestored || event.eventType == .sessionSpawned {
                // A session that comes back (or a new one) makes its project incomplete again.
                record.terminal = false
                completedProjects.remove(event.projectId)
            }
            record.status = newStatus
            if Self.terminalStatuses.contains(newStatus), !record.terminal {
                record.terminal = true
                terminalCount += 1
                sessions[key] = record
                actions += completionCheck(project: event.projectId, at: event.timestamp)
                return actions
            }
        }
        sessions[key] = record
        return actions
    }

    /// The session status an event implies, in the Rust implementation's names.
    static func status(after type: EventType) -> String? {
        switch type {
        case .sessionSpawned: "spawning"
        case .sessionWorking, .sessionRestored: "working"
        case .sessionExited: "exited"
        case .sessionKilled: "killed"
        case .sessionCleaned: "cleaned"
        case .prCreated, .prUpdated: "pr_open"
        case .ciPassing: "ci_passing"
        case .ciFailing: "ci_failed"
        case .ciFixSent: "ci_fix_sent"
        case .ciFixFailed: "ci_fix_failed"
        case .reviewPending: "review_pending"
        case .reviewChangesRequested: "changes_requested"
        case .reviewApproved, .mergeReady: "approved"
        case .mergeConflicts: "merge_conflicts"
        case .prMerged, .mergeCompleted: "merged"
        default: nil
        }
    }

    private mutating func completionCheck(project: String, at timestamp: EventTimestamp) -> [LifecycleAction] {
        guard !completedProjects.contains(project) else { return [] }
        let projectSessions = sessions.values.filter { $0.projectId == project }
        guard !projectSessions.isEmpty, projectSessions.allSatisfy(\.terminal) else { return [] }
        completedProjects.insert(project)
        let event = Event(
            type: .allComplete, priority: .action, sessionId: "", projectId: project,
            message: projectSessions.count == 1
                ? "the one session of \(project) reached a terminal state"
                : "all \(projectSessions.count) sessions of \(project) reached a terminal state",
            data: ["sessions": .int(Int64(projectSessions.count))])
        return [.publish(event, host: nil)]
    }

    private mutating func applyNode(_ event: Event, host: String?, now: Duration) {
        guard let host, !host.isEmpty else { return }
        var record = nodes[host] ?? NodeRecord(
            host: host, connected: false, lastSeen: now, lastHealthCheck: nil,
            healthInterval: defaultHealthInterval, health: .null, disconnectReported: false)
        switch event.eventType {
        case .nodeDisconnected:
            record.connected = false
            record.disconnectReported = true
        default:
            record.connected = true
            record.disconnectReported = false
            record.lastSeen = now
            if let seconds = event.data["interval_seconds"]?.doubleValue, seconds > 0, seconds < 86_400 {
                record.healthInterval = .milliseconds(Int64(seconds * 1000))
            }
            if event.eventType == .nodeHealthCheck {
                record.lastHealthCheck = event.timestamp
                record.health = event.data
            }
        }
        nodes[host] = record
    }

    /// Checks node health at `now`: nodes silent for too long are marked disconnected, and a
    /// `NodeDisconnected` event is returned for each, once.
    public mutating func tick(now: Duration) -> [LifecycleAction] {
        var actions: [LifecycleAction] = []
        for (host, record) in nodes where record.connected && !record.disconnectReported {
            let silence = now - record.lastSeen
            guard silence > record.healthInterval * missedHealthChecks else { continue }
            var updated = record
            updated.connected = false
            updated.disconnectReported = true
            nodes[host] = updated
            let event = Event(
                type: .nodeDisconnected, priority: .urgent, sessionId: "", projectId: "",
                message: "no health check from \(host) for \(missedHealthChecks) intervals",
                data: ["host": .string(host), "reason": "health_checks_stopped"])
            actions.append(.publish(event, host: host))
        }
        return actions
    }
}
