public import EnnioEvents
import EnnioSync
import Foundation
import Glibc

/// How a node agent's lifecycle loop runs.
public struct SessionLoopOptions: Sendable {
    /// The sessions directory: one record per session.
    public var directory: SessionDirectory
    /// How often every session is probed.
    public var pollInterval: Duration = .seconds(10)
    /// A session whose log gains no output for this long is idle.
    public var idleAfter: Duration = .seconds(60)
    /// How long a session being killed has after `SIGTERM` before it gets `SIGKILL`.
    public var killGrace: Duration = .seconds(10)
    /// How often sessions being killed are probed between ticks, so their end is reported soon.
    public var killCheckInterval: Duration = .milliseconds(50)

    public init(directory: SessionDirectory) {
        self.directory = directory
    }
}

/// Counts of what a lifecycle loop did.
public struct SessionLoopStatistics: Sendable, Hashable {
    /// Full ticks (every record listed and probed).
    public var ticks: UInt64 = 0
    /// Sessions not yet terminal at the last tick.
    public var liveSessions = 0
    /// Events published (acknowledged, with JetStream).
    public var published: UInt64 = 0
    /// `tick_error` events produced.
    public var tickErrors: UInt64 = 0
    /// Ticks that could not list the directory or take its lock (each distinct failure is
    /// also logged).
    public var listErrors: UInt64 = 0
    /// Records that could not be written (each is logged and published as a tick error).
    public var persistFailures: UInt64 = 0
    /// Events dropped because a session's outbox or the loop's error queue was full.
    public var droppedEvents: UInt64 = 0
    /// Kills sent on command (`ennio.commands.kill`).
    public var kills: UInt64 = 0
}

/// The lifecycle loop of one node agent: every poll interval it lists the sessions directory,
/// probes each live session's process and log, applies ``SessionObserver``'s transition,
/// writes the record and then publishes the events.
///
/// All file and process work runs on one thread of its own (`ennio-session-loop`): a tick of
/// a thousand sessions is a few thousand system calls, which must not hold a thread of the
/// cooperative pool. Publishing runs in the task that called ``run(publish:)``; at most one
/// batch of events is with it at a time, and the thread removes events from the records'
/// outboxes only after they were published. Commands (a kill) reach the thread through a
/// bounded inbox (1,000 requests; more are refused and logged).
public final class SessionLoop: Sendable {
    public let options: SessionLoopOptions
    public let host: String
    private let log: @Sendable (String) -> Void
    private let condition = ConditionLock()
    private let inbox = Locked(Inbox())
    private let counters = Locked(SessionLoopStatistics())

    static let inboxLimit = 1000

    /// Events for the publisher: a record's outbox (`file` names it) or loose tick errors
    /// (`file` empty).
    fileprivate struct Outgoing: Sendable {
        var file: String
        var events: [Event]
    }

    private struct Inbox {
        var stopped = false
        var kills: [(session: String, targeted: Bool)] = []
        var published: [(file: String, ids: Set<String>)]?
    }

    public init(host: String, options: SessionLoopOptions, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.host = host
        self.options = options
        self.log = log
    }

    public var statistics: SessionLoopStatistics { counters.withLock { $0 } }

    /// Runs the loop until `stop()` or cancellation, publishing its events with `publish`
    /// (which returns whether the event was published).
    ///
    /// - Parameter startedAt: when the agent started; sessions created before it and found on
    ///   the first tick are restored, not spawned.
    public func run(startedAt: EventTimestamp = .now(), publish: @escaping @Sendable (Event) async -> Bool) async {
        let (batches, handOff) = AsyncStream<[Outgoing]>.makeStream(bufferingPolicy: .bufferingOldest(1))
        let thread = Thread { [self] in
            var driver = Driver(loop: self, startedAt: startedAt) { handOff.yield($0) }
            driver.run()
            handOff.finish()
        }
        thread.name = "ennio-session-loop"
        thread.start()
        await withTaskCancellationHandler {
            for await batch in batches {
                var results: [(file: String, ids: Set<String>)] = []
                for outgoing in batch {
                    var done = Set<String>()
                    for event in outgoing.events {
                        guard await publish(event) else { break }
                        done.insert(event.id)
                    }
                    results.append((outgoing.file, done))
                    counters.withLock { $0.published += UInt64(done.count) }
                }
                condition.withLock { inbox.withLock { $0.published = results } }
                condition.signal()
            }
        } onCancel: {
            stop()
        }
    }

    /// Ends the loop's thread (and so `run`) after the work in hand.
    public func stop() {
        condition.withLock { inbox.withLock { $0.stopped = true } }
        condition.signal()
    }

    /// Asks the loop to kill `session`'s process. `targeted`: the command named this host
    /// (then a session that is not here is logged). Returns false if the inbox is full.
    @discardableResult
    public func requestKill(session: String, targeted: Bool) -> Bool {
        let accepted = condition.withLock {
            inbox.withLock { inbox -> Bool in
                guard inbox.kills.count < Self.inboxLimit else { return false }
                inbox.kills.append((session, targeted))
                return true
            }
        }
        if accepted {
            condition.signal()
        } else {
            log("agent \(host): kill of session \(session.debugDescription) refused: \(Self.inboxLimit) kill requests are waiting")
        }
        return accepted
    }

    /// Waits on the thread for work or `deadline` (monotonic); returns the inbox's contents.
    fileprivate func waitForWork(until deadline: ContinuousClock.Instant) -> (stopped: Bool, kills: [(session: String, targeted: Bool)], published: [(file: String, ids: Set<String>)]?) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let taken = inbox.withLock { inbox in
                defer {
                    inbox.kills.removeAll()
                    inbox.published = nil
                }
                return (inbox.stopped, inbox.kills, inbox.published)
            }
            if taken.0 || !taken.1.isEmpty || taken.2 != nil { return taken }
            let now = ContinuousClock.now
            guard now < deadline else { return taken }
            let wait = (deadline - now).components
            condition.wait(nanoseconds: Int(min(wait.seconds, 3600)) * 1_000_000_000 + Int(wait.attoseconds / 1_000_000_000))
        }
    }

    fileprivate func count(_ update: (inout SessionLoopStatistics) -> Void) {
        counters.withLock { update(&$0) }
    }

    fileprivate func write(log line: String) { log(line) }
}

/// The loop's state on its thread: the records as last read, the observer, and what is being
/// killed or published. Not shared with any other thread.
private struct Driver {
    struct Entry {
        var stamp: SessionDirectory.FileStamp
        var record: LocalSession
    }

    let loop: SessionLoop
    let directory: SessionDirectory
    let handOff: ([SessionLoop.Outgoing]) -> Void
    var observer: SessionObserver
    /// The records as last read or written, by file name.
    var cache: [String: Entry] = [:]
    /// Records (file names) with a kill in progress: probed every `killCheckInterval`.
    var killing: Set<String> = []
    /// Records whose outbox gained events since it was last handed to the publisher.
    var fresh: Set<String> = []
    /// The records whose outboxes the publisher has now; nil when it has nothing.
    var inFlight: Set<String>?
    /// Tick errors that belong to no outbox (unusable records, failed writes), to publish.
    var looseEvents: [Event] = []
    var lastListError: String?
    var ignoredNames: Set<String> = []
    var reportedLive = -1
    /// The open lock file while this loop holds the directory's lock, else -1.
    var lockDescriptor: Int32 = -1
    var lockProblem: String?

    static let looseEventLimit = 1000

    init(loop: SessionLoop, startedAt: EventTimestamp, handOff: @escaping ([SessionLoop.Outgoing]) -> Void) {
        self.loop = loop
        self.directory = loop.options.directory
        self.handOff = handOff
        self.observer = SessionObserver(host: loop.host, startedAt: startedAt, idleAfter: loop.options.idleAfter, killGrace: loop.options.killGrace)
    }

    mutating func run() {
        defer { if lockDescriptor >= 0 { close(lockDescriptor) } }
        var nextTick = ContinuousClock.now
        var nextKillCheck = ContinuousClock.now
        while true {
            let deadline = killing.isEmpty ? nextTick : min(nextTick, nextKillCheck)
            let work = loop.waitForWork(until: deadline)
            if work.stopped { return }
            if let published = work.published { confirm(published) }
            for kill in work.kills { startKill(kill.session, targeted: kill.targeted) }
            let now = ContinuousClock.now
            if now >= nextTick {
                if acquireLock() { tick() }
                nextTick += loop.options.pollInterval
                if nextTick <= now { nextTick = now + loop.options.pollInterval }
                dispatch(everything: true)
            } else {
                if !killing.isEmpty, now >= nextKillCheck {
                    let wall = EventTimestamp.now()
                    for name in killing.sorted() { process(name, killRequested: true, now: wall) }
                    nextKillCheck = now + loop.options.killCheckInterval
                }
                dispatch(everything: false)
            }
        }
    }

    /// Takes the directory's lock (`.lock`, `flock`) if it does not hold it yet: one loop per
    /// directory, or two agents would announce every session twice and overwrite each other's
    /// records. An agent that finds it taken logs so once and tries again every tick.
    mutating func acquireLock() -> Bool {
        guard lockDescriptor < 0 else { return true }
        var problem: String
        do {
            try directory.create()
            let descriptor = open(directory.file(".lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if descriptor >= 0, flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
                lockDescriptor = descriptor
                if lockProblem != nil { loop.write(log: "agent \(loop.host): now observing \(directory.path)") }
                lockProblem = nil
                return true
            }
            let number = errno
            if descriptor >= 0 { close(descriptor) }
            problem = number == EWOULDBLOCK
                ? "another agent's lifecycle loop observes \(directory.path); this one waits until it stops"
                : "cannot lock \(directory.file(".lock")): \(SystemError(number))"
        } catch {
            problem = "sessions directory: \(error)"
        }
        loop.count { $0.listErrors += 1 }
        if lockProblem != problem {
            lockProblem = problem
            loop.write(log: "agent \(loop.host): \(problem)")
        }
        return false
    }

    // MARK: - Ticks

    mutating func tick() {
        let now = EventTimestamp.now()
        let names: [String]
        do {
            names = try directory.names()
        } catch {
            loop.count { $0.listErrors += 1 }
            if lastListError != error.description {
                lastListError = error.description
                loop.write(log: "agent \(loop.host): \(error); trying again next tick")
            }
            return
        }
        if lastListError != nil {
            lastListError = nil
            loop.write(log: "agent \(loop.host): listing \(directory.path) works again")
        }
        var present = Set<String>()
        var killRequests = Set<String>()
        for name in names where name.hasSuffix(".kill") && !name.hasPrefix(".") {
            killRequests.insert(String(name.dropLast(5)) + ".json")
        }
        for name in names where name.hasSuffix(".json") && !name.hasPrefix(".") {
            guard LocalSession.parseFileName(name) != nil else {
                if ignoredNames.insert(name).inserted {
                    loop.write(log: "agent \(loop.host): ignoring \(directory.file(name).debugDescription): not named <project>.<session>.json")
                }
                continue
            }
            present.insert(name)
            process(name, killRequested: killRequests.contains(name) || killing.contains(name), now: now)
        }
        for name in cache.keys where !present.contains(name) {
            if let record = cache.removeValue(forKey: name)?.record { observer.recordRemoved(file: name, session: record.id) }
            killing.remove(name)
        }
        observer.tickFinished()
        let live = cache.values.count { !$0.record.status.isTerminal }
        loop.count {
            $0.ticks += 1
            $0.liveSessions = live
        }
        if live != reportedLive {
            reportedLive = live
            loop.write(log: "agent \(loop.host): observing \(live) sessions in \(directory.path)")
        }
    }

    /// Reads (if changed), probes and updates one record.
    mutating func process(_ name: String, killRequested: Bool, now: EventTimestamp) {
        guard let record = load(name, now: now) else {
            killing.remove(name)
            return
        }
        guard !record.status.isTerminal else {
            killing.remove(name)
            return
        }
        let process = SessionProcess.probe(record)
        var probe = SessionProbe(process: process)
        switch process {
        case .alive:
            if killRequested { probe.killRequestedAt = directory.killRequestTime(record) }
            switch SessionProcess.modificationTime(of: record.logFile) {
            case .success(let time): probe.logModifiedAt = time
            case .failure(let error): probe.problem = "log file \(record.logFile.debugDescription): \(error)"
            }
        case .gone:
            // Looked for only now, after the process was found gone: a kill request written
            // before the signal that ended it is always seen.
            probe.killRequestedAt = directory.killRequestTime(record)
        }
        let transition = observer.probed(record, probe, now: now)
        if transition.signal == .forceKill {
            loop.write(log: "agent \(loop.host): session \(record.id) outlived \(loop.options.killGrace) after SIGTERM; sending SIGKILL")
            SessionProcess.send(SIGKILL, to: record)
        }
        if case .alive = process, probe.killRequestedAt != nil { killing.insert(name) } else { killing.remove(name) }
        guard !transition.events.isEmpty else { return }
        loop.count { $0.tickErrors += UInt64(transition.events.count { $0.eventType == .tickError }) }
        do {
            let stamp = try directory.write(transition.record, durable: true)
            cache[name] = Entry(stamp: stamp, record: transition.record)
            fresh.insert(name)
        } catch {
            loop.count { $0.persistFailures += 1 }
            loop.write(log: "agent \(loop.host): \(error)")
            if let event = observer.persistFailed(transition, error: error.description, now: now) { addLoose(event) }
        }
    }

    /// The record `name`, read again only if the file changed; `nil` if it is gone or unusable
    /// (which is reported once as a tick error).
    mutating func load(_ name: String, now: EventTimestamp) -> LocalSession? {
        guard let stamp = directory.stamp(name) else {
            cache[name] = nil
            return nil
        }
        if let entry = cache[name], entry.stamp == stamp { return entry.record }
        do {
            let (record, stamp) = try directory.read(name)
            cache[name] = Entry(stamp: stamp, record: record)
            return record
        } catch {
            cache[name] = nil
            guard error.code != .notFound, let parts = LocalSession.parseFileName(name) else { return nil }
            if let event = observer.recordUnusable(file: name, project: parts.project, session: parts.session, error: error.description, now: now) {
                loop.write(log: "agent \(loop.host): \(event.message)")
                addLoose(event)
            }
            return nil
        }
    }

    mutating func addLoose(_ event: Event) {
        loop.count { $0.tickErrors += 1 }
        looseEvents.append(event)
        if looseEvents.count > Self.looseEventLimit {
            looseEvents.removeFirst()
            loop.count { $0.droppedEvents += 1 }
        }
    }

    // MARK: - Kills

    mutating func startKill(_ session: String, targeted: Bool) {
        let record: LocalSession
        if let entry = cache.first(where: { $0.value.record.id == session }) {
            record = entry.value.record
        } else {
            do {
                record = try directory.find(session: session)
            } catch {
                if targeted || error.code != .notFound { loop.write(log: "agent \(loop.host): cannot kill session \(session.debugDescription): \(error)") }
                return
            }
        }
        do {
            try directory.requestKill(record, by: "ennio.commands.kill on \(loop.host)")
            killing.insert(record.fileName)
            loop.count { $0.kills += 1 }
            loop.write(log: "agent \(loop.host): killing session \(record.id) (pid \(record.pid)): SIGTERM, SIGKILL after \(loop.options.killGrace)")
        } catch {
            loop.write(log: "agent \(loop.host): cannot kill session \(record.id): \(error)")
        }
    }

    // MARK: - Publishing

    /// Hands the outboxes to the publisher unless it still has the last batch: on a full tick
    /// every outbox that is not empty (so failed publishes are retried once per tick), else
    /// those that gained events.
    mutating func dispatch(everything: Bool) {
        guard inFlight == nil else { return }
        let files = everything ? cache.filter { !$0.value.record.outbox.isEmpty }.map(\.key) : Array(fresh)
        fresh.removeAll()
        var batch = files.sorted().compactMap { file -> SessionLoop.Outgoing? in
            guard let outbox = cache[file]?.record.outbox, !outbox.isEmpty else { return nil }
            return SessionLoop.Outgoing(file: file, events: outbox)
        }
        let handed = Set(batch.map(\.file))
        if !looseEvents.isEmpty {
            batch.append(SessionLoop.Outgoing(file: "", events: looseEvents))
            looseEvents.removeAll()
        }
        guard !batch.isEmpty else { return }
        inFlight = handed
        handOff(batch)
    }

    /// The publisher finished a batch: removes what it published from the outboxes.
    mutating func confirm(_ results: [(file: String, ids: Set<String>)]) {
        inFlight = nil
        let now = EventTimestamp.now()
        for result in results where !result.file.isEmpty && !result.ids.isEmpty {
            guard let record = load(result.file, now: now) else { continue }
            let next = observer.published(result.ids, from: record)
            guard next.outbox.count != record.outbox.count else { continue }
            do {
                // Not flushed: if this write is lost, the events go out again with the same
                // ids, which JetStream and the coordinator store once.
                let stamp = try directory.write(next, durable: false)
                cache[result.file] = Entry(stamp: stamp, record: next)
            } catch {
                loop.write(log: "agent \(loop.host): \(error) (its published events will be sent again)")
            }
            if next.status.isTerminal, next.outbox.isEmpty { directory.removeKillRequest(next) }
        }
    }
}
