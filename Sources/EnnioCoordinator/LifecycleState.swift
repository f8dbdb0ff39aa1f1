public import EnnioEvents

/// What the coordinator knows of one session.
public struct SessionRecord: Sendable, Hashable {
    public var projectId: String
    public var sessionId: String
    /// The last status (`working`, `pr_open`, `ci_failed`, `merged`, …), as the Rust
    /// implementation names them; at most ``LifecycleState/maximumTextBytes`` bytes.
    public var status: String?
    public var activity: String?
    /// The event with the latest timestamp (of two at the same instant, the one stored last).
    public var lastEventType: EventType
    public var lastEventAt: EventTimestamp
    /// Reached a terminal state (exited, killed, cleaned, merged, done) and was not spawned or
    /// restored since.
    public var terminal: Bool
    public var eventCount: Int
    /// The `seq` of the event each field comes from (0: none yet), so that the latest one wins
    /// whatever order the events are applied in.
    var versions = Versions()

    struct Versions: Sendable, Hashable {
        var last: Int64 = 0
        var status: Int64 = 0
        var activity: Int64 = 0
        /// The latest terminal event, and the latest spawn or restore: terminal when the first
        /// is later.
        var terminal: Int64 = 0
        var restart: Int64 = 0
    }
}

/// What the coordinator knows of one of its nodes: a host whose agent publishes node events
/// with `data.host` (see ``LifecycleState/nodeHost(of:)``).
public struct NodeRecord: Sendable, Hashable {
    public var host: String
    /// When the coordinator last stored an event from the node (other than `node_disconnected`),
    /// on its own clock.
    public var lastSeen: EventTimestamp
    public var lastHealthCheck: EventTimestamp?
    /// The node's health-check interval (from `data.interval_seconds`, else the default).
    public var healthInterval: Duration
    /// The `data` of the last health check (``LifecycleState/omittedHealth(bytes:)`` when its
    /// JSON is over ``LifecycleState/maximumHealthBytes``: the event in the history has it all).
    public var health: JSONValue
    /// Its latest event is a `node_disconnected` (its agent's goodbye, or the coordinator's).
    public var disconnected: Bool
    /// The coordinator found it silent for too long and published `node_disconnected` for it
    /// (known to this process only: the published event, once stored, says the same).
    public var silenceReported = false
    /// The id and timestamp of its latest event other than `node_disconnected` (by the order of
    /// storing): a silence after it is reported with an event derived from it (see
    /// ``LifecycleState/silenceReport(of:)``), the same on every coordinator.
    public var lastEventId = ""
    public var lastEventTimestamp: EventTimestamp?
    var versions = Versions()

    struct Versions: Sendable, Hashable {
        var latest: Int64 = 0
        var seen: Int64 = 0
        var interval: Int64 = 0
        var health: Int64 = 0
    }

    /// Neither disconnected nor reported silent.
    public var connected: Bool { !disconnected && !silenceReported }
    /// A `node_disconnected` was stored or published for it.
    public var disconnectReported: Bool { disconnected || silenceReported }

    /// Whether the node counts as connected at `now`: not disconnected, and heard from within
    /// `missedHealthChecks` intervals — counted from `watchingSince` at the earliest, so that
    /// a coordinator that just started gives every node a full timeout to report.
    public func isConnected(at now: EventTimestamp, missedHealthChecks: Int, watchingSince: EventTimestamp) -> Bool {
        !disconnected && now - Swift.max(lastSeen, watchingSince) <= healthInterval * missedHealthChecks
    }
}

/// Something the lifecycle rules ask the coordinator to do.
public enum LifecycleAction: Sendable, Hashable {
    /// Publish this event (to the node `host`'s subject for node events).
    case publish(Event, host: String?)
}

/// The coordinator's lifecycle rules as a pure state machine: stored events and time in, state
/// and actions out. No NATS, no clock of its own — tests drive it directly.
///
/// - Status changes whose `from` equals `to` change nothing.
/// - When every session of a project is terminal, `all_complete` is published for it — once,
///   until a session of it is spawned or restored and everything ends again. Each project's
///   session and terminal counts are kept as events arrive, so this costs the same whatever
///   the number of sessions.
/// - A node whose health checks stop for `missedHealthChecks` intervals is reported with
///   `NodeDisconnected`, once.
///
/// Its tables depend only on the set of stored events (each field follows the event with the
/// largest `seq`, or for "last event" the latest timestamp), so applying a history in any order
/// — live as it arrives, or rebuilt by key — gives the same state.
public struct LifecycleState: Sendable {
    /// By ``key(_:_:)``.
    public private(set) var sessions: [String: SessionRecord] = [:]
    /// By host.
    public private(set) var nodes: [String: NodeRecord] = [:]
    private var projects: [String: ProjectCounts] = [:]
    /// Terminal transitions seen by this value (once per session and end; not kept across a
    /// restart).
    public private(set) var terminalCount = 0
    /// Status changes ignored because `from` equalled `to` (not kept across a restart).
    public private(set) var ignoredStatusChanges = 0

    public let defaultHealthInterval: Duration
    public let missedHealthChecks: Int
    /// No node is found silent before it had a full timeout after this instant: when the
    /// coordinator started watching.
    public var watchingSince: EventTimestamp

    /// The longest status or activity kept, in bytes (longer ones are cut, at a character).
    public static let maximumTextBytes = 1024
    /// The largest health `data` kept with a node, in bytes of JSON.
    public static let maximumHealthBytes = 16 * 1024

    static let terminalStatuses: Set<String> = ["merged", "done", "exited", "killed", "cleaned"]

    struct ProjectCounts: Sendable, Hashable {
        var sessions = 0
        var terminal = 0
        var complete: Bool { sessions > 0 && terminal == sessions }
    }

    /// What changed since the last ``committed()``, and what it was before (`nil`: absent).
    private var changedSessions: [String: SessionRecord?] = [:]
    private var changedNodes: [String: NodeRecord?] = [:]
    private var changedProjects: [String: ProjectCounts?] = [:]
    private var countersBefore: (terminal: Int, ignored: Int)?

    public init(defaultHealthInterval: Duration = .seconds(10), missedHealthChecks: Int = 3, watchingSince: EventTimestamp = .now()) {
        self.defaultHealthInterval = defaultHealthInterval
        self.missedHealthChecks = missedHealthChecks
        self.watchingSince = watchingSince
    }

    /// A session's key: its project, a space (which no project id contains, and which sorts
    /// before every character one may contain), its id. Keys sort by project, then session.
    public static func key(_ projectId: String, _ sessionId: String) -> String {
        projectId + " " + sessionId
    }

    /// The sessions, sorted by project then session.
    public var sessionList: [SessionRecord] {
        sessions.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map(\.value)
    }

    /// The nodes, sorted by host.
    public var nodeList: [NodeRecord] {
        nodes.values.sorted { $0.host < $1.host }
    }

    /// Projects whose every session is terminal.
    public var completedProjects: Set<String> {
        Set(projects.filter { $0.value.complete }.map(\.key))
    }

    /// The node an event describes, by the one rule live ingest, restarts and rebuilds share:
    /// a node event whose `data.host` is a valid host name (a subject segment) is about that
    /// host — as every event of our agents and the coordinator's `node_disconnected` are, and
    /// the subject then names the same host. A node event without it (such as the Rust
    /// implementation's `node_health_check`, published once per session on
    /// `ennio.node.<project_id>.health_check` with `data: null`) describes no node of ours: it
    /// is stored and shown in the history, and makes no node and no alarm.
    public static func nodeHost(of event: Event) -> String? {
        guard event.eventType.category == .node, let host = event.data["host"]?.stringValue, SubjectSegment.isValid(host) else { return nil }
        return host
    }

    /// Applies one newly stored event (stored events only: a duplicate is not applied again).
    public mutating func apply(_ stored: StoredEvent) -> [LifecycleAction] {
        switch stored.event.eventType.category {
        case .node:
            applyNode(stored)
            return []
        case .lifecycle, .rollout, .run:
            // Rollouts and runs have reducers of their own (`FamilyReducers`).
            return []
        case .sessions, .pr, .ci, .review, .merge, .reactions:
            return applySession(stored)
        }
    }

    private mutating func applySession(_ stored: StoredEvent) -> [LifecycleAction] {
        let event = stored.event
        let seq = stored.seq
        guard !event.sessionId.isEmpty else { return [] }
        let key = Self.key(event.projectId, event.sessionId)
        let before = sessions[key]
        var record = before ?? SessionRecord(
            projectId: event.projectId, sessionId: event.sessionId, status: nil, activity: nil,
            lastEventType: event.eventType, lastEventAt: event.timestamp, terminal: false, eventCount: 0)
        record.eventCount += 1
        if before == nil || (event.timestamp, seq) > (record.lastEventAt, record.versions.last) {
            record.lastEventType = event.eventType
            record.lastEventAt = event.timestamp
            record.versions.last = seq
        }

        var newStatus: String?
        switch event.eventType {
        case .statusChanged:
            let from = event.data["from"]?.stringValue
            let to = event.data["to"]?.stringValue
            if let to, to != from {
                newStatus = to
            } else {
                touchCounters()
                ignoredStatusChanges += 1
            }
        case .activityChanged:
            // Node agents write `data.prev`/`data.next`; older producers `data.activity`.
            if let activity = event.data["next"]?.stringValue ?? event.data["activity"]?.stringValue, seq > record.versions.activity {
                record.activity = Self.cut(activity)
                record.versions.activity = seq
            }
        default:
            newStatus = Self.status(after: event.eventType)
        }
        if let newStatus {
            if seq > record.versions.status {
                record.status = Self.cut(newStatus)
                record.versions.status = seq
            }
            if Self.terminalStatuses.contains(newStatus) {
                record.versions.terminal = Swift.max(record.versions.terminal, seq)
            }
            if event.eventType == .sessionRestored || event.eventType == .sessionSpawned {
                // A session that comes back (or a new one) makes its project incomplete again.
                record.versions.restart = Swift.max(record.versions.restart, seq)
            }
        }
        record.terminal = record.versions.terminal > record.versions.restart
        setSession(key, record)

        let wasTerminal = before?.terminal ?? false
        guard before == nil || wasTerminal != record.terminal else { return [] }
        var counts = projects[event.projectId] ?? ProjectCounts()
        let wasComplete = counts.complete
        if before == nil { counts.sessions += 1 }
        if record.terminal != wasTerminal {
            counts.terminal += record.terminal ? 1 : -1
        }
        if record.terminal, !wasTerminal {
            touchCounters()
            terminalCount += 1
        }
        setProject(event.projectId, counts)
        guard counts.complete, !wasComplete else { return [] }
        return [.publish(Self.completion(of: event.projectId, sessions: counts.sessions, after: event), host: nil)]
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

    /// `text`, cut to ``maximumTextBytes`` at a character boundary.
    static func cut(_ text: String) -> String {
        guard text.utf8.count > maximumTextBytes else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: maximumTextBytes)
        while end > text.startIndex, text.utf8[end] & 0xC0 == 0x80 { end = text.utf8.index(before: end) }
        return String(text[..<end])
    }

    /// What a node keeps in place of health `data` over ``maximumHealthBytes``.
    public static func omittedHealth(bytes: Int) -> JSONValue {
        ["omitted_bytes": .int(Int64(bytes))]
    }

    private mutating func applyNode(_ stored: StoredEvent) {
        guard let host = Self.nodeHost(of: stored.event) else { return }
        let event = stored.event
        let seq = stored.seq
        var record = nodes[host] ?? NodeRecord(
            host: host, lastSeen: stored.storedAt, lastHealthCheck: nil, healthInterval: defaultHealthInterval,
            health: .null, disconnected: false)
        if seq > record.versions.latest {
            record.versions.latest = seq
            record.disconnected = event.eventType == .nodeDisconnected
            // Heard from again (or gone for good): a silence reported before is over.
            record.silenceReported = false
        }
        if event.eventType != .nodeDisconnected {
            if seq > record.versions.seen {
                record.versions.seen = seq
                record.lastSeen = stored.storedAt
                record.lastEventId = event.id
                record.lastEventTimestamp = event.timestamp
            }
            if let seconds = event.data["interval_seconds"]?.doubleValue, seconds > 0, seconds < 86_400, seq > record.versions.interval {
                record.versions.interval = seq
                record.healthInterval = .milliseconds(Int64(seconds * 1000))
            }
            if event.eventType == .nodeHealthCheck, seq > record.versions.health {
                record.versions.health = seq
                record.lastHealthCheck = event.timestamp
                let size = event.data.jsonString.utf8.count
                record.health = size > Self.maximumHealthBytes ? Self.omittedHealth(bytes: size) : event.data
            }
        }
        setNode(host, record)
    }

    /// Checks node health at `now`: a node silent for too long is reported once, with a
    /// `NodeDisconnected` event to publish (``silenceReport(of:)``).
    public mutating func tick(now: EventTimestamp) -> [LifecycleAction] {
        var actions: [LifecycleAction] = []
        for (host, record) in nodes where !record.disconnectReported {
            guard !record.isConnected(at: now, missedHealthChecks: missedHealthChecks, watchingSince: watchingSince) else { continue }
            nodes[host]?.silenceReported = true
            actions.append(.publish(silenceReport(of: record), host: host))
        }
        return actions
    }

    /// The `node_disconnected` that reports `node` silent: derived from its last event (its id
    /// and timestamp, ``NodeRecord/lastEventId``) and from nothing local, so that every
    /// coordinator that finds the same silence publishes the same event — one `Nats-Msg-Id`,
    /// which the stream keeps once, and one key, which the history keeps once. Its id is
    /// ``EventID/derived(kind:name:)`` of the host and that event's id, its timestamp that
    /// event's plus the timeout (`missedHealthChecks` intervals): when the node, by its own
    /// clock, should have been heard from at the latest.
    public func silenceReport(of node: NodeRecord) -> Event {
        let timeout = node.healthInterval * missedHealthChecks
        let cause = node.lastEventId.isEmpty ? "seen-\(node.lastSeen.nanosecondsSinceEpoch)" : node.lastEventId
        var data: [String: JSONValue] = ["host": .string(node.host), "reason": "health_checks_stopped"]
        if !node.lastEventId.isEmpty { data["last_event_id"] = .string(node.lastEventId) }
        return Event(
            id: EventID.derived(kind: EventType.nodeDisconnected.rawValue, name: Self.key(node.host, cause)),
            type: .nodeDisconnected, priority: .urgent, sessionId: "", projectId: "",
            timestamp: (node.lastEventTimestamp ?? node.lastSeen) + timeout,
            message: "no health check from \(node.host) for \(missedHealthChecks) intervals",
            data: .object(data))
    }

    /// The `all_complete` that `cause` (the event that made the last of the project's sessions
    /// terminal) calls for: its id is ``EventID/derived(kind:name:)`` of the project and the
    /// cause's id, its timestamp the cause's, so that every coordinator that applies the same
    /// history publishes the same event, stored once however many do. A project that completes
    /// again later (after a session came back) has another cause, so another event.
    static func completion(of projectId: String, sessions count: Int, after cause: Event) -> Event {
        let message = count == 1
            ? "the one session of \(projectId) reached a terminal state"
            : "all \(count) sessions of \(projectId) reached a terminal state"
        return Event(
            id: EventID.derived(kind: EventType.allComplete.rawValue, name: key(projectId, cause.id)),
            type: .allComplete, priority: .action, sessionId: "", projectId: projectId, timestamp: cause.timestamp,
            message: message, data: ["sessions": .int(Int64(count))])
    }

    // MARK: - Changes, for the checkpoint

    private mutating func setSession(_ key: String, _ record: SessionRecord) {
        if changedSessions.index(forKey: key) == nil { changedSessions[key] = .some(sessions[key]) }
        sessions[key] = record
    }

    private mutating func setNode(_ host: String, _ record: NodeRecord) {
        if changedNodes.index(forKey: host) == nil { changedNodes[host] = .some(nodes[host]) }
        nodes[host] = record
    }

    private mutating func setProject(_ project: String, _ counts: ProjectCounts) {
        if changedProjects.index(forKey: project) == nil { changedProjects[project] = .some(projects[project]) }
        projects[project] = counts
    }

    private mutating func touchCounters() {
        if countersBefore == nil { countersBefore = (terminalCount, ignoredStatusChanges) }
    }

    /// Whether anything changed since the last ``committed()``.
    var hasChanges: Bool { !changedSessions.isEmpty || !changedNodes.isEmpty }
}

// MARK: - The checkpoint

extension LifecycleState: CheckpointedReducer {
    static let name = "lifecycle"
    /// 2: nodes keep their last event's id and timestamp (what a silence report derives from).
    static let version = 2
    static let sessionsTable = "sessions"
    static let nodesTable = "nodes"
    static let tables = [sessionsTable, nodesTable]

    func changedRows() -> [CheckpointRow] {
        var rows: [CheckpointRow] = []
        rows.reserveCapacity(changedSessions.count + changedNodes.count)
        for key in changedSessions.keys {
            guard let record = sessions[key] else { continue }
            rows.append(CheckpointRow(table: Self.sessionsTable, key: key, value: Self.value(of: record), state: Self.state(of: record)))
        }
        for host in changedNodes.keys {
            guard let record = nodes[host] else { continue }
            rows.append(CheckpointRow(table: Self.nodesTable, key: host, value: Self.value(of: record), state: Self.state(of: record)))
        }
        return rows
    }

    mutating func committed() {
        changedSessions.removeAll(keepingCapacity: true)
        changedNodes.removeAll(keepingCapacity: true)
        changedProjects.removeAll(keepingCapacity: true)
        countersBefore = nil
    }

    mutating func rollBack() {
        for (key, before) in changedSessions { sessions[key] = before }
        for (host, before) in changedNodes { nodes[host] = before }
        for (project, before) in changedProjects { projects[project] = before }
        if let countersBefore { (terminalCount, ignoredStatusChanges) = countersBefore }
        committed()
    }

    mutating func reset() {
        sessions.removeAll()
        nodes.removeAll()
        projects.removeAll()
        terminalCount = 0
        ignoredStatusChanges = 0
        committed()
    }

    mutating func load(_ row: CheckpointRow) throws {
        guard let valueBytes = row.value else { return }
        let value: JSONValue
        let state: JSONValue
        do {
            value = try JSONValue(parsing: valueBytes)
            state = try JSONValue(parsing: row.state)
        } catch {
            throw CheckpointError("the \(row.table) row \(row.key.debugDescription) is not valid JSON: \(error)")
        }
        func fail(_ what: String) -> CheckpointError {
            CheckpointError("the \(row.table) row \(row.key.debugDescription) has no valid \(what)")
        }
        func timestamp(_ json: JSONValue?) -> EventTimestamp? {
            json?.stringValue.flatMap { try? EventTimestamp(rfc3339: $0) }
        }
        func seq(_ name: String) -> Int64 { state[name]?.intValue ?? 0 }
        switch row.table {
        case Self.sessionsTable:
            guard let project = value["project_id"]?.stringValue, let session = value["session_id"]?.stringValue else { throw fail("ids") }
            guard let typeName = value["last_event_type"]?.stringValue, let type = EventType(named: typeName) else { throw fail("last_event_type") }
            guard let lastAt = timestamp(value["last_event_at"]) else { throw fail("last_event_at") }
            var record = SessionRecord(
                projectId: project, sessionId: session, status: value["status"]?.stringValue,
                activity: value["activity"]?.stringValue, lastEventType: type, lastEventAt: lastAt,
                terminal: value["terminal"]?.boolValue ?? false, eventCount: Int(value["event_count"]?.intValue ?? 0))
            record.versions = SessionRecord.Versions(
                last: seq("last"), status: seq("status"), activity: seq("activity"), terminal: seq("terminal"), restart: seq("restart"))
            let key = Self.key(project, session)
            sessions[key] = record
            projects[project, default: ProjectCounts()].sessions += 1
            if record.terminal { projects[project, default: ProjectCounts()].terminal += 1 }
        case Self.nodesTable:
            guard let host = value["host"]?.stringValue else { throw fail("host") }
            guard let seen = state["seen_ns"]?.intValue, let interval = state["interval_ms"]?.intValue else { throw fail("state") }
            var record = NodeRecord(
                host: host, lastSeen: EventTimestamp(nanosecondsSinceEpoch: seen), lastHealthCheck: timestamp(value["last_health_check"]),
                healthInterval: .milliseconds(interval), health: value["health"] ?? .null, disconnected: state["down"]?.boolValue ?? false)
            record.versions = NodeRecord.Versions(latest: seq("latest"), seen: seq("seen"), interval: seq("interval"), health: seq("health"))
            record.lastEventId = state["last_id"]?.stringValue ?? ""
            record.lastEventTimestamp = state["last_ns"]?.intValue.map(EventTimestamp.init(nanosecondsSinceEpoch:))
            nodes[host] = record
        default:
            throw CheckpointError("the lifecycle has no table \(row.table.debugDescription)")
        }
    }

    /// A session as queries return it.
    static func value(of record: SessionRecord) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        writer.key("project_id")
        writer.string(record.projectId)
        writer.key("session_id")
        writer.string(record.sessionId)
        writer.key("status")
        if let status = record.status { writer.string(status) } else { writer.null() }
        writer.key("activity")
        if let activity = record.activity { writer.string(activity) } else { writer.null() }
        writer.key("last_event_type")
        writer.string(record.lastEventType.rawValue)
        writer.key("last_event_at")
        writer.string(record.lastEventAt.rfc3339)
        writer.key("terminal")
        writer.bool(record.terminal)
        writer.key("event_count")
        writer.int(Int64(record.eventCount))
        writer.endObject()
        return writer.bytes
    }

    static func state(of record: SessionRecord) -> [UInt8] {
        let versions = record.versions
        var writer = JSONWriter(reservingCapacity: 96)
        writer.beginObject()
        for (name, seq) in [("last", versions.last), ("status", versions.status), ("activity", versions.activity), ("terminal", versions.terminal), ("restart", versions.restart)] {
            writer.key(name)
            writer.int(seq)
        }
        writer.endObject()
        return writer.bytes
    }

    /// A node as queries return it, without what depends on the time of the query
    /// (`connected`, `seconds_since_last_seen`, which the reply adds).
    static func value(of record: NodeRecord) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        writer.key("host")
        writer.string(record.host)
        writer.key("last_seen")
        writer.string(record.lastSeen.rfc3339)
        writer.key("last_health_check")
        if let check = record.lastHealthCheck { writer.string(check.rfc3339) } else { writer.null() }
        writer.key("health_interval_seconds")
        writer.double(seconds(record.healthInterval))
        writer.key("health")
        writer.value(record.health)
        writer.endObject()
        return writer.bytes
    }

    static func state(of record: NodeRecord) -> [UInt8] {
        let versions = record.versions
        var writer = JSONWriter(reservingCapacity: 128)
        writer.beginObject()
        writer.key("down")
        writer.bool(record.disconnected)
        writer.key("seen_ns")
        writer.int(record.lastSeen.nanosecondsSinceEpoch)
        writer.key("interval_ms")
        let (whole, attoseconds) = record.healthInterval.components
        writer.int(whole * 1000 + attoseconds / 1_000_000_000_000_000)
        for (name, seq) in [("latest", versions.latest), ("seen", versions.seen), ("interval", versions.interval), ("health", versions.health)] {
            writer.key(name)
            writer.int(seq)
        }
        writer.key("last_id")
        writer.string(record.lastEventId)
        if let timestamp = record.lastEventTimestamp {
            writer.key("last_ns")
            writer.int(timestamp.nanosecondsSinceEpoch)
        }
        writer.endObject()
        return writer.bytes
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
