public import EnnioEvents

/// What one look at a session's process and log found.
public struct SessionProbe: Sendable, Hashable {
    public enum Process: Sendable, Hashable {
        case alive
        /// The session's process is gone (or its pid now belongs to another process). The exit
        /// status is known only when this process reaped it.
        case gone(LocalSession.ExitStatus?)
    }

    public var process: Process
    /// When output last appeared in the log (its modification time); `nil` when the log could
    /// not be examined.
    public var logModifiedAt: EventTimestamp?
    /// When a kill was asked for (the kill request's time), `nil` if none was.
    public var killRequestedAt: EventTimestamp?
    /// What could not be examined (say, a missing log file), for a `tick_error`.
    public var problem: String?

    public init(process: Process, logModifiedAt: EventTimestamp? = nil, killRequestedAt: EventTimestamp? = nil, problem: String? = nil) {
        self.process = process
        self.logModifiedAt = logModifiedAt
        self.killRequestedAt = killRequestedAt
        self.problem = problem
    }
}

/// The lifecycle loop's rules as a pure state machine: a session record, what a probe found
/// and the time go in; the new record and the events to publish come out. No files, processes
/// or clocks of its own — the loop (``SessionLoop``) reads, probes, persists and publishes.
///
/// - A session first seen on the first tick whose `created_at` is before the loop started is
///   `session_restored` (its status in `data.status`); any other first sighting is
///   `session_spawned`. Once per session per loop.
/// - `status_changed` (`data.from`, `data.to`) only when the status really changes.
/// - `activity_changed` (`data.prev`, null the first time, and `data.next`) when the activity
///   judged from the log (active, idle after `idleAfter` without output, exited) changes.
/// - A session whose process is gone ends once: `session_killed` if a kill was requested,
///   otherwise `session_exited` (with the exit status when known). A terminal record produces
///   nothing more, in this loop or a later one.
/// - Unusable records, probes that could not examine everything and records that cannot be
///   written are `tick_error`s, each reported once until it changes or clears.
public struct SessionObserver: Sendable {
    /// Asks the loop to signal a session's processes.
    public enum Signal: Sendable, Hashable {
        /// The grace period after a kill request has passed and the process is still alive.
        case forceKill
    }

    /// The outcome of one probe.
    public struct Transition: Sendable, Hashable {
        /// The record after the probe, the new events appended to its outbox.
        public var record: LocalSession
        /// The events this probe produced, in order (also in `record.outbox`).
        public var events: [Event]
        public var signal: Signal?
    }

    public let host: String
    public let idleAfter: Duration
    public let killGrace: Duration
    /// Most events kept unpublished per session; past that the oldest activity change or tick
    /// error is dropped (and counted in `droppedEvents`).
    public let outboxLimit: Int
    /// When the loop started: sessions created before it and found on the first tick are
    /// restored, not spawned.
    public let startedAt: EventTimestamp
    public private(set) var isFirstTick = true
    /// Sessions seen by this loop.
    public private(set) var seen: Set<String> = []
    /// Sessions already sent `SIGKILL` after their grace period.
    private var forceKilled: Set<String> = []
    /// The error last reported per record file, so that a lasting problem is reported once.
    private var reportedErrors: [String: String] = [:]
    public private(set) var droppedEvents = 0

    public init(host: String, startedAt: EventTimestamp, idleAfter: Duration = .seconds(60), killGrace: Duration = .seconds(10), outboxLimit: Int = 64) {
        self.host = host
        self.startedAt = startedAt
        self.idleAfter = idleAfter
        self.killGrace = killGrace
        self.outboxLimit = max(outboxLimit, 1)
    }

    /// A full tick (every session listed and probed) ended: later sightings are spawns.
    public mutating func tickFinished() {
        isFirstTick = false
    }

    /// The loop probed `record`'s session at `now` and found `probe`.
    public mutating func probed(_ record: LocalSession, _ probe: SessionProbe, now: EventTimestamp) -> Transition {
        guard !record.status.isTerminal else { return Transition(record: record, events: [], signal: nil) }
        var next = record
        var events: [Event] = []
        func event(_ type: EventType, _ message: String, _ data: [String: JSONValue], priority: EventPriority = .info) {
            var data = data
            data["host"] = .string(host)
            // A nanosecond apart, so that readers ordering by time see them in this order.
            let timestamp = now + .nanoseconds(events.count)
            events.append(Event(type: type, priority: priority, sessionId: record.id, projectId: record.project, timestamp: timestamp, message: message, data: .object(data)))
        }
        func changeActivity(to activity: LocalSession.Activity) {
            guard activity != next.activity else { return }
            event(.activityChanged, "session \(record.id): \(next.activity?.rawValue ?? "unknown") → \(activity.rawValue)",
                  ["prev": next.activity.map { .string($0.rawValue) } ?? .null, "next": .string(activity.rawValue)])
            next.activity = activity
        }

        if !seen.contains(record.id) {
            seen.insert(record.id)
            if isFirstTick && record.createdAt < startedAt {
                event(.sessionRestored, "session \(record.id) restored on \(host) (pid \(record.pid))",
                      ["pid": .int(Int64(record.pid)), "status": .string(record.status.rawValue)])
            } else {
                event(.sessionSpawned, "session \(record.id) spawned on \(host) (pid \(record.pid))",
                      ["pid": .int(Int64(record.pid)), "log_file": .string(record.logFile)])
            }
        }

        if let problem = probe.problem {
            if reportedErrors[record.fileName] != problem {
                reportedErrors[record.fileName] = problem
                event(.tickError, "probing session \(record.id) on \(host): \(problem)", ["file": .string(record.fileName), "error": .string(problem)], priority: .action)
            }
        } else {
            reportedErrors[record.fileName] = nil
        }

        var signal: Signal?
        switch probe.process {
        case .alive:
            if record.status == .spawning {
                next.status = .working
                event(.statusChanged, "session \(record.id): spawning → working", ["from": "spawning", "to": "working"])
            }
            if let modified = probe.logModifiedAt {
                let activity: LocalSession.Activity = now - modified < idleAfter ? .active : .idle
                changeActivity(to: activity)
            }
            if let requested = probe.killRequestedAt, now - requested >= killGrace, !forceKilled.contains(record.id) {
                forceKilled.insert(record.id)
                signal = .forceKill
            }
        case .gone(let exitStatus):
            changeActivity(to: .exited)
            next.exitStatus = exitStatus ?? record.exitStatus
            var data: [String: JSONValue] = ["pid": .int(Int64(record.pid))]
            var how = ""
            switch next.exitStatus {
            case .code(let code)?:
                data["exit_status"] = .int(Int64(code))
                how = " with status \(code)"
            case .signal(let number)?:
                data["exit_signal"] = .int(Int64(number))
                how = " by signal \(number)"
            case nil:
                break
            }
            forceKilled.remove(record.id)
            if probe.killRequestedAt != nil {
                next.status = .killed
                event(.sessionKilled, "session \(record.id) killed on \(host)", data, priority: .action)
            } else {
                next.status = .exited
                let failed = next.exitStatus.map { $0 != .code(0) } ?? false
                event(.sessionExited, "session \(record.id) exited on \(host)\(how)", data, priority: failed ? .action : .info)
            }
        }

        if !events.isEmpty {
            next.outbox += events
            next.updatedAt = now
            trimOutbox(&next)
        }
        return Transition(record: next, events: events, signal: signal)
    }

    /// Some of a record's outbox was published: the record without those events.
    public func published(_ ids: Set<String>, from record: LocalSession) -> LocalSession {
        var next = record
        next.outbox.removeAll { ids.contains($0.id) }
        return next
    }

    /// The record in `file` (of `session` in `project`, from the file's name) could not be read
    /// or used. Returns the `tick_error` to publish, or `nil` if this error was already reported.
    public mutating func recordUnusable(file: String, project: String, session: String, error: String, now: EventTimestamp) -> Event? {
        report(file: file, project: project, session: session, problem: "record \(file) is unusable: \(error)", now: now)
    }

    /// Writing the record of a transition failed: nothing of it is published, and the session
    /// counts as not yet seen, so the next tick decides again. Returns the `tick_error`, or
    /// `nil` if this error was already reported.
    public mutating func persistFailed(_ transition: Transition, error: String, now: EventTimestamp) -> Event? {
        let record = transition.record
        if transition.events.contains(where: { $0.eventType == .sessionSpawned || $0.eventType == .sessionRestored }) {
            seen.remove(record.id)
        }
        if transition.signal == .forceKill { forceKilled.remove(record.id) }
        return report(file: record.fileName, project: record.project, session: record.id, problem: "writing record \(record.fileName) failed: \(error)", now: now)
    }

    /// A record file disappeared: forget the session (should it come back, it is spawned again).
    public mutating func recordRemoved(file: String, session: String) {
        reportedErrors[file] = nil
        forceKilled.remove(session)
        seen.remove(session)
    }

    private mutating func report(file: String, project: String, session: String, problem: String, now: EventTimestamp) -> Event? {
        guard reportedErrors[file] != problem else { return nil }
        reportedErrors[file] = problem
        return Event(
            type: .tickError, priority: .action, sessionId: session, projectId: project, timestamp: now, message: problem,
            data: ["host": .string(host), "file": .string(file), "error": .string(problem)])
    }

    /// Drops the oldest activity changes and tick errors past the limit; announcements, status
    /// changes and the end (one of each at most) are always kept.
    private mutating func trimOutbox(_ record: inout LocalSession) {
        while record.outbox.count > outboxLimit {
            guard let index = record.outbox.firstIndex(where: { $0.eventType == .activityChanged || $0.eventType == .tickError }) else { return }
            record.outbox.remove(at: index)
            droppedEvents += 1
        }
    }
}
