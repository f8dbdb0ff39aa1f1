import EnnioSync
public import EnnioEvents
public import NATSClient
import Synchronization

/// How the coordinator runs.
public struct CoordinatorOptions: Sendable {
    /// A node's health-check interval when its events do not say (`data.interval_seconds`).
    public var defaultHealthInterval: Duration = .seconds(10)
    /// Intervals without a health check after which a node is disconnected.
    public var missedHealthChecks = 3
    /// How often node health is checked.
    public var tickInterval: Duration = .milliseconds(500)
    /// Where events come from: JetStream (nothing lost while the coordinator is down) or core
    /// NATS (at most once). `.automatic` uses JetStream when the server offers it.
    public var mode: Mode = .automatic
    /// The durable consumer the coordinator reads the event stream through: one per
    /// coordinator (``consumerName(for:)``), so that each has the whole history. Two
    /// coordinators on one consumer would split the events between them.
    public var consumerName = "ennio-coordinator"
    /// Copies the event stream keeps when this coordinator creates it, or the copies it
    /// changes an existing stream to (3 on a cluster: losing any one server loses nothing);
    /// `nil` creates it with one and leaves an existing one as it is.
    public var replicas: Int?
    /// How long `run` goes on trying to create the stream and its consumer while the servers
    /// do not answer for them yet (a cluster electing its leaders, a server restarting).
    public var setupPatience: Duration = .seconds(60)
    /// The event stream's limits, set when the coordinator creates the stream or starts.
    public var streamLimits = EventStream.Limits()
    /// Most events stored in one transaction (and fetched per pull in JetStream mode). Under
    /// load, big transactions are what keeps SQLite fast: random event ids put inserts all over
    /// the id index, and each commit writes every page it touched to the WAL once (measured:
    /// 2,000 per commit ~47k events/s, 8,000 ~80k/s). At low rates batches are as small as
    /// what has arrived.
    public var batchSize = 8000
    /// Batches of actions (events to publish) waiting for the publisher at most; when full,
    /// storing waits for room.
    public var actionQueueLimit = 16
    /// Ignore the checkpointed tables and rebuild them from the history at start.
    public var rebuildFromHistory = false
    /// Keep the session and node tables in the Key-Value buckets `ENNIO_SESSIONS` and
    /// `ENNIO_NODES` (JetStream mode only; see ``StateBucketWriter``).
    public var stateBuckets = true
    /// Changed rows waiting for the state buckets at most; past that they are compared with
    /// the tables whole instead (see ``StateBucketQueue``).
    public var stateBucketPendingLimit = 50_000
    /// How long the history keeps an event (by its timestamp); `nil`, the default, keeps every
    /// event. See ``EventStore/deleteEvents(before:limit:)`` for the events kept regardless.
    public var retention: Duration?
    /// How often the coordinator looks for events past the retention (and once at start).
    public var retentionInterval: Duration = .seconds(60)
    /// Most events deleted in one transaction: the store thread takes a batch of events to
    /// store between two of them.
    public var retentionBatch = 2000

    public enum Mode: String, Sendable, Hashable {
        case automatic, core, jetStream = "jetstream"
    }

    public init() {}

    /// The durable consumer of the coordinator called `name` (`ennio coordinator --name`):
    /// `ennio-coordinator-<name>`; without a name, `ennio-coordinator`.
    public static func consumerName(for name: String?) -> String {
        name.map { "ennio-coordinator-\($0)" } ?? "ennio-coordinator"
    }

    /// The connection's limits for subscribers that fall behind, sized for the coordinator's
    /// pipeline: in core NATS, while one batch is stored and the next prepared, the server
    /// goes on sending, and the subscription must hold several batches of events of any size
    /// before it drops (which is counted and logged; JetStream mode loses nothing). At least
    /// eight batches, and 256 MiB.
    public func configure(_ connection: inout NATSOptions) {
        connection.pendingMessageLimit = max(connection.pendingMessageLimit, 8 * batchSize)
        connection.pendingByteLimit = max(connection.pendingByteLimit, 256 * 1024 * 1024)
    }
}

/// Counts of what the coordinator did.
public struct CoordinatorStatistics: Sendable, Hashable {
    /// Messages received on event subjects, counted once their outcome is: received = stored +
    /// duplicates + malformed + mismatched + storeFailures in every snapshot.
    public var received: UInt64 = 0
    /// Events stored (new events).
    public var stored: UInt64 = 0
    /// Events already stored (the same id and timestamp): not stored or applied again.
    public var duplicates: UInt64 = 0
    /// Payloads that were not valid events.
    public var malformed: UInt64 = 0
    /// Valid events on a subject they do not belong to.
    public var mismatched: UInt64 = 0
    /// Events the coordinator published itself (all_complete, node_disconnected).
    public var published: UInt64 = 0
    /// Queries answered, and those answered with an error.
    public var queries: UInt64 = 0
    public var badQueries: UInt64 = 0
    /// Events that could not be stored (a database failure).
    public var storeFailures: UInt64 = 0
    /// Events the coordinator failed to publish (reported in the log).
    public var publishFailures: UInt64 = 0
    /// Events that never arrived: dropped by the coordinator's subscription because it fell
    /// behind the server (core NATS only; a slow consumer). Not part of `received`.
    public var dropped: UInt64 = 0
    /// Query requests dropped the same way.
    public var droppedQueries: UInt64 = 0
    /// Events stored, per category.
    public var storedByCategory: [EventCategory: UInt64] = [:]
    /// How long SQLite took to store each batch (one transaction, with the state it changes).
    public var storeBatchTimes = DurationHistogram.storeBatches
    /// For the last batch stored: when it was committed (wall clock) and how far that was
    /// behind the newest event in it (commit time minus its timestamp, on the publisher's clock).
    public var lastCommit: EventTimestamp?
    public var lastCommitLag: Duration?
    /// Whether the last attempt to store a batch failed.
    public var storeFailing = false
    /// Whether the coordinator has caught up with the event stream since it started (see
    /// ``StreamCatchUp``): only then does it answer queries over NATS, publish what it derives
    /// and judge nodes silent. Always true in core NATS once it runs.
    public var caughtUp = false
    /// How long catching up took, from the start of `run`.
    public var catchUpTime: Duration?
    /// Derived events held back while catching up (see ``HeldEmissions``).
    public var heldEmissions = 0
    /// Events deleted from the history because they were older than the retention.
    public var expired: UInt64 = 0
}

/// The central lifecycle coordinator: subscribes to every event category with wildcard
/// patterns, stores every event once in SQLite, keeps session and node state, applies the
/// lifecycle rules, and answers history and state queries over request/reply.
///
/// Threads: SQLite writes (a batch of events and the state it changes, in one transaction)
/// run on the store thread, in order; queries on the query thread, through the store's
/// reading connection, so that they never wait behind a batch; the tasks only receive,
/// decode, publish and wait. The actions a batch calls for go to the publisher through a
/// bounded queue.
public final class Coordinator: Sendable {
    public let connection: NATSConnection
    public let store: EventStore
    public let options: CoordinatorOptions
    /// The session, node, rollout and run tables, in memory and checkpointed beside the history.
    public let state: CheckpointedState
    private let log: @Sendable (String) -> Void

    private let statisticsLock = Locked(CoordinatorStatistics())
    /// When this coordinator started watching nodes: none is found silent before a full
    /// timeout after it.
    let watchingSince: EventTimestamp
    /// Queries are answered here, one at a time.
    private let queryWorker = SerialWorker(name: "ennio-query")
    /// The actions of stored batches, on their way to the publisher.
    let actions: BoundedQueue<[LifecycleAction]>
    /// Places where tests stop the coordinator, to see what waits for what.
    let hooks = Locked(CoordinatorHooks())
    /// Held while a batch is stored and announced, so that ``betweenCommits(_:)`` sees the
    /// history exactly as the observers have been told of it. Queries never take it.
    private let ingestion = Locked(())
    /// Told of the events each batch newly stored, once it is committed.
    private let commitObservers = Locked<[@Sendable ([Event]) -> Void]>([])
    /// Whether the coordinator has caught up with the stream, and until when it knows it had
    /// read all of it. Changed on the store thread.
    private let catchUp = Locked(StreamCatchUp())
    /// Derived events held while catching up.
    private let held = Locked(HeldEmissions())
    /// Fulfilled once the coordinator has read the whole stream (``becameCaughtUp(quietly:)``):
    /// the service may start.
    private let streamRead = Promise<StreamRead, CancellationError>()
    /// Fulfilled once caught up and answering queries (``startedAnswering(_:)``).
    private let caughtUpPromise = Promise<Void, CancellationError>()
    /// When `run` started (for ``CoordinatorStatistics/catchUpTime``).
    private let runStarted = Locked<ContinuousClock.Instant?>(nil)
    /// Keeps the session and node tables in Key-Value buckets, in JetStream mode.
    public let stateBuckets: StateBucketWriter
    private let runningService = Locked<Service?>(nil)

    /// Drop and failure episodes, logged once each.
    private struct Episodes {
        var droppedSeen: UInt64 = 0
        var droppedQueriesSeen: UInt64 = 0
        var dropping = false
        var storing = FailureEpisode()
    }

    private let episodes = Locked(Episodes())

    /// The coordinator subscribes to every event with one wildcard pattern, so that it sees
    /// events in the order the server delivers them, across categories.
    public static let eventPattern = EventPattern.all

    /// Subject families under `ennio.` that carry no events: skipped without complaint.
    static let nonEventFamilies: Set<Substring> = ["commands", "query", "metrics", "dashboard"]

    /// Whether a subject under `ennio.>` is meant to carry an event.
    static func carriesEvents(_ subject: String) -> Bool {
        let parts = subject.split(separator: ".", maxSplits: 2)
        return parts.count < 2 || !nonEventFamilies.contains(parts[1])
    }

    /// Creates a coordinator and loads its session, node, rollout and run tables from the store's
    /// checkpoint (or rebuilds them from the history, see ``CheckpointedState``), so a restart
    /// keeps what it knew.
    public init(
        connection: NATSConnection,
        store: EventStore,
        options: CoordinatorOptions = CoordinatorOptions(),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.connection = connection
        self.store = store
        self.options = options
        self.log = log
        let now = EventTimestamp.now()
        watchingSince = now
        actions = BoundedQueue(capacity: max(1, options.actionQueueLimit))
        let lifecycle = LifecycleState(
            defaultHealthInterval: options.defaultHealthInterval, missedHealthChecks: options.missedHealthChecks, watchingSince: now)
        state = try CheckpointedState(
            store: store, lifecycle: lifecycle, families: FamilyReducers(), rebuild: options.rebuildFromHistory, log: log)
        stateBuckets = StateBucketWriter(
            jetStream: JetStream(connection: connection), pendingLimit: options.stateBucketPendingLimit,
            missedHealthChecks: options.missedHealthChecks, watchingSince: now, tickInterval: options.tickInterval, log: log)
        let report = state.loadReport
        if !report.rebuilt.isEmpty {
            log("coordinator: rebuilt \(report.rebuilt.joined(separator: ", ")) from the history (\(report.eventsRead) events)")
        } else if report.eventsRead > 0 {
            log("coordinator: loaded the checkpoint (\(report.rowsLoaded) rows) and \(report.eventsRead) events stored after it")
        }
    }

    deinit {
        queryWorker.stop()
    }

    public var statistics: CoordinatorStatistics {
        var statistics = statisticsLock.withLock { $0 }
        statistics.heldEmissions = held.withLock { $0.count }
        return statistics
    }
    /// The service answering the queries (``CoordinatorService``) while ``run(ready:)`` runs.
    public var service: Service? { runningService.withLock { $0 } }
    public var sessions: [SessionRecord] { state.lifecycle.sessionList }
    public var nodes: [NodeRecord] { state.lifecycle.nodeList }
    /// A copy of the rollout and run reducers' state (queries use `ennio.query.rollouts|runs`).
    public var families: FamilyReducers { state.families ?? FamilyReducers() }

    /// Calls `observer` with the events each batch newly stored (duplicates left out), right
    /// after the batch is committed to SQLite, batch after batch in the order they were
    /// stored, on the thread that stored them. It must return at once: hand the events on,
    /// never wait (ingest waits for it).
    public func observeCommits(_ observer: @escaping @Sendable ([Event]) -> Void) {
        commitObservers.withLock { $0.append(observer) }
    }

    /// Runs `body` between two batches: while it runs no batch is stored or announced to the
    /// observers, so what `body` reads of the history is exactly what they have been told of
    /// so far. Keep it short: ingest waits for it.
    public func betweenCommits<T>(_ body: () throws -> T) rethrows -> T {
        try ingestion.withLock { _ in try body() }
    }

    /// Tells the observers of events just committed (called holding `ingestion`).
    private func announce(_ events: [StoredEvent]) {
        guard !events.isEmpty else { return }
        let observers = commitObservers.withLock { $0 }
        guard !observers.isEmpty else { return }
        let plain = events.map(\.event)
        for observer in observers { observer(plain) }
    }

    /// Counts a batch's commit: its time in SQLite and its lag behind the newest event in it.
    private static func countCommit(of events: [StoredEvent], took time: Duration, in statistics: inout CoordinatorStatistics) {
        let committed = EventTimestamp.now()
        statistics.storeBatchTimes.record(time)
        statistics.storeFailing = false
        statistics.lastCommit = committed
        if let newest = events.map(\.event.timestamp).max() { statistics.lastCommitLag = committed - newest }
        for event in events { statistics.storedByCategory[event.event.eventType.category, default: 0] += 1 }
    }

    /// The mode `run` uses on this connection.
    public var effectiveMode: CoordinatorOptions.Mode {
        switch options.mode {
        case .automatic: connection.serverInfo?.jetStream == true ? .jetStream : .core
        case let mode: mode
        }
    }

    /// Subscribes and works until the calling task is cancelled or the connection closes.
    /// `ready` is called once the events' subscription or consumer is in place on the server.
    ///
    /// In JetStream mode the coordinator first catches up with the stream (``StreamCatchUp``):
    /// until it has, it answers no query over NATS (the other coordinators of the queue group
    /// do), publishes none of the events it derives (``HeldEmissions``) and judges no node
    /// silent. ``CoordinatorStatistics/caughtUp`` and `/healthz` say when it has.
    public func run(ready: (@Sendable () -> Void)? = nil) async throws {
        let mode = effectiveMode
        runStarted.withLock { $0 = .now }
        var events: NATSSubscription?
        var pull: PullConsumer?
        var resumeAt: UInt64?
        if mode == .jetStream {
            let jetStream = JetStream(connection: connection)
            let consumer = try await setUpStream(jetStream)
            pull = jetStream.pullConsumer(stream: EventStream.name, consumer: options.consumerName)
            if consumer.numAckPending > 0, consumer.delivered.streamSequence > consumer.ackFloor.streamSequence {
                // Delivered to an earlier run and not acknowledged (it stopped between a
                // delivery and its commit): the server would deliver them again after the ack
                // wait, behind newer ones. Read again from the first of them instead, in order.
                resumeAt = consumer.ackFloor.streamSequence + 1
            }
            held.withLock { $0.hold() }
            noteCatchUp {
                $0.startedReading(
                    numPending: consumer.numPending, numAckPending: consumer.numAckPending,
                    deliveredThrough: consumer.delivered.streamSequence, ackFloor: consumer.ackFloor.streamSequence, now: .now())
            }
        } else {
            events = try connection.subscribe(to: Self.eventPattern.subject)
            var wanted = NATSOptions(servers: [])
            options.configure(&wanted)
            if connection.options.pendingMessageLimit < wanted.pendingMessageLimit || connection.options.pendingByteLimit < wanted.pendingByteLimit {
                log("coordinator: the connection keeps \(connection.options.pendingMessageLimit) messages / \(connection.options.pendingByteLimit) bytes for a subscriber that falls behind; a burst past that is dropped (counted). CoordinatorOptions.configure sizes them for batches of \(options.batchSize)")
            }
            becameCaughtUp(quietly: true)
        }
        // The queries: the service `ennio-coordinator` (ADR-32), answering in its queue group.
        let service = try CoordinatorService.make(for: self, mode: mode)
        runningService.withLock { $0 = service }
        defer { runningService.withLock { $0 = nil } }
        // SQLite writes run on a thread of their own, in order; the actions each batch calls
        // for are performed, in the same order, by a task of their own as soon as it is stored.
        let writer = SerialWorker(name: "ennio-store")
        defer { writer.stop() }
        let writesBuckets = mode == .jetStream && options.stateBuckets
        let failure = await withTaskGroup(of: Void.self) { group -> (any Error)? in
            let serviceFailure = Locked<(any Error)?>(nil)
            // The service starts once the coordinator has caught up (until then the other
            // coordinators of the queue group answer); so does the writer of the state
            // buckets, which would otherwise write tables older than theirs.
            let (serviceReady, signal) = AsyncStream<Void>.makeStream()
            group.addTask {
                do {
                    let read = try await self.streamRead.value { CancellationError() }
                    let subscribed = Promise<Void, any Error>()
                    try await withThrowingTaskGroup(of: Void.self) { running in
                        running.addTask {
                            do {
                                try await service.run { subscribed.fulfil(.success(())) }
                            } catch {
                                subscribed.fulfil(.failure(error))
                                throw error
                            }
                        }
                        try await subscribed.value { CancellationError() }
                        // Seen by the server (not only sent): a request finds this coordinator.
                        try await self.connection.flush()
                        self.startedAnswering(read)
                        signal.finish()
                        try await running.next()
                    }
                } catch {
                    // Not when stopping: whatever the service says then is no failure.
                    if !Task.isCancelled { serviceFailure.withLock { $0 = error } }
                }
                signal.finish()
            }
            // Caught up already (core NATS, or a stream with nothing new): queries are
            // answered from the start.
            if streamRead.isFulfilled {
                for await _ in serviceReady {}
            }
            do {
                if let error = serviceFailure.withLock({ $0 }) { throw error }
                try await connection.flush()
            } catch {
                group.cancelAll()
                return error
            }
            if mode == .jetStream {
                log("coordinator: reading stream \(EventStream.name) through durable consumer \(options.consumerName)")
            } else {
                log("coordinator: subscribed to \(Self.eventPattern.subject) (core NATS: events published while it is down are not seen)")
            }
            if options.stateBuckets, !writesBuckets {
                log("coordinator: core NATS: the session and node tables are not kept in the buckets \(StateBucket.sessions) and \(StateBucket.nodes), which need JetStream")
            }
            ready?()
            // Derived events the history does not have yet (a crash before they were published),
            // held like any other while catching up. The queue is empty here: this hands them over
            // without waiting.
            hand(held.withLock { $0.committed(actions: families.pendingEmissions.map { .publish($0, host: nil) }, stored: []) })
            group.addTask {
                while let batch = await self.actions.next() {
                    if let performing = self.hooks.withLock({ $0.performing }) { await performing() }
                    await self.perform(batch)
                }
            }
            if let events {
                group.addTask { await self.receive(events, writer: writer) }
            }
            if let pull {
                group.addTask { [resumeAt] in await self.consume(pull, writer: writer, restartingAt: resumeAt) }
            }
            if writesBuckets {
                group.addTask {
                    guard (try? await self.caughtUpPromise.value { CancellationError() }) != nil else { return }
                    await self.stateBuckets.run { atTheSameInstant in
                        self.betweenCommits {
                            atTheSameInstant()
                            return self.state.lifecycle
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.options.tickInterval)
                    await self.checkNodes()
                    self.noteDroppedQueries(total: service.droppedMessages)
                }
            }
            if let retention = options.retention {
                group.addTask { await self.expire(olderThan: retention, writer: writer) }
            }
            await group.next()
            group.cancelAll()
            // The service failing once it ran ends the coordinator's run with its error.
            return serviceFailure.withLock { $0 }
        }
        try? events?.unsubscribe()
        if let failure { throw failure }
    }

    /// Creates the event stream (or brings its subjects, limits and copies up to date) and this
    /// coordinator's durable consumer, and returns the consumer's state. Tries again, for
    /// ``CoordinatorOptions/setupPatience``, while the servers cannot answer for them yet — a
    /// cluster that is electing its leaders, a server that is restarting.
    private func setUpStream(_ jetStream: JetStream) async throws -> ConsumerInfo {
        let deadline = ContinuousClock.now + options.setupPatience
        var pause: Duration = .milliseconds(250)
        var complained = false
        while true {
            do {
                try await EventStream.ensure(jetStream, limits: options.streamLimits, replicas: options.replicas)
                let info: ConsumerInfo
                do {
                    // As it is: it may have been made again from some sequence (see `consume`).
                    info = try await jetStream.consumerInfo(stream: EventStream.name, consumer: options.consumerName)
                } catch let error as JetStreamError where error.errorCode == JetStreamError.consumerNotFound {
                    info = try await jetStream.createConsumer(stream: EventStream.name, config: consumerConfig())
                }
                if complained { log("coordinator: the stream \(EventStream.name) answers again") }
                return info
            } catch where Self.isTransient(error) && ContinuousClock.now + pause < deadline {
                if !complained {
                    log("coordinator: the stream \(EventStream.name) cannot be set up yet (\(LogText(error))); trying again for \(options.setupPatience)")
                    complained = true
                }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    /// Whether a JetStream call may succeed if tried again: no answer in time, nobody
    /// answering yet, the cluster saying it cannot serve it right now (503), or no room for the
    /// replicas yet (a cluster whose servers have not all joined; if they never do, the setup
    /// gives up after its patience with that error).
    public static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? NATSError {
            return error.code == .timeout || error.code == .noResponders || error.code == .disconnected
        }
        if let error = error as? JetStreamError { return error.code == 503 || error.errorCode == JetStreamError.noSuitablePeers }
        return false
    }

    /// Applies `change` to the catch-up state; acts on what it says.
    private func noteCatchUp(_ change: (inout StreamCatchUp) -> StreamCatchUp.Action) {
        switch catchUp.withLock({ change(&$0) }) {
        case .none: break
        case .caughtUp: becameCaughtUp(quietly: false)
        }
    }

    /// What ``becameCaughtUp(quietly:)`` tells the service's start.
    private struct StreamRead: Sendable {
        var took: Duration?
        var released: Int
        var quietly: Bool
    }

    /// Read the whole stream: publishes what was held, and lets the service start.
    private func becameCaughtUp(quietly: Bool) {
        let released = held.withLock { $0.caughtUp() }
        let took = runStarted.withLock { $0 }.map { ContinuousClock.now - $0 }
        hand(released)
        streamRead.fulfil(.success(StreamRead(took: took, released: released.count, quietly: quietly)))
    }

    /// The service's subscriptions have reached the server: from now on a query finds this
    /// coordinator, so it counts itself caught up (statistics, `/healthz`, ``waitUntilCaughtUp()``).
    private func startedAnswering(_ read: StreamRead) {
        let stored = statisticsLock.withLock { statistics -> UInt64 in
            statistics.caughtUp = true
            statistics.catchUpTime = read.took
            return statistics.stored
        }
        if !read.quietly {
            let seconds = read.took.map { String(format: "%.1f", Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18) } ?? "?"
            log("coordinator: caught up with the stream (\(Counted(Int(stored), "event")) stored in \(seconds) s, \(Counted(read.released, "derived event")) to publish); answering queries")
        }
        caughtUpPromise.fulfil(.success(()))
    }

    /// Returns once the coordinator has caught up with the stream and answers queries (in core
    /// NATS, as soon as `run` has started).
    public func waitUntilCaughtUp() async throws {
        try await caughtUpPromise.value { CancellationError() }
    }

    /// Core NATS: stores what arrives, batch after batch, until the subscription ends.
    private func receive(_ events: NATSSubscription, writer: SerialWorker) async {
        // Whatever has queued up while the previous batch was stored is stored next in one
        // transaction (in order), instead of one commit per event. Two stages: the next batch
        // is received, decoded and encoded into rows while the previous one is written, and at
        // most one batch waits for the writer. Each batch comes back from the writer to be
        // freed here, so that the writer's thread does SQLite's work and little else.
        var storing: SerialWorker.Pending<PreparedBatch>?
        while true {
            let messages = await events.nextBatch(maximum: options.batchSize)
            noteDropped(total: events.droppedCount)
            if messages.isEmpty { break }
            let deliveries = messages.compactMap { message in
                Self.carriesEvents(message.subject) ? EventSubscription.decode(message) : nil
            }
            guard !deliveries.isEmpty else { continue }
            let batch = prepare(deliveries)
            _ = await storing?.value
            storing = writer.submit {
                self.hand(self.ingest(batch, storeSeparatelyOnFailure: true).actions)
                return batch
            }
        }
        _ = await storing?.value
    }

    /// Pulls from the event stream until cancelled: each batch is stored in one transaction,
    /// then acknowledged — so an event is acknowledged only once it is committed, and a crash
    /// before that means redelivery, which the store de-duplicates (same id and timestamp).
    /// Messages are stored in the stream's order (``DeliveryOrder``): when some are missing,
    /// or a batch could not be committed, the consumer starts again from the first one not
    /// stored.
    private func consume(_ pull: PullConsumer, writer: SerialWorker, restartingAt resumeAt: UInt64?) async {
        // As in core mode, the next batch is fetched and decoded while the previous one is
        // written (the consumer allows four batches unacknowledged, so the server keeps
        // delivering), and at most one batch waits for the writer.
        // Everything a job used comes back with it, to be freed here rather than on the writer.
        var storing: SerialWorker.Pending<StoringJob>?
        var order = DeliveryOrder()
        var inOrder = true
        var restartAt = resumeAt
        var failures = 0
        /// Waits for the batch being stored; when it was not committed, the consumer must
        /// start again from its first message. Returns whether it was committed.
        @discardableResult
        func finishStoring() async -> Bool {
            guard let job = await storing?.value else { return true }
            storing = nil
            if !job.committed, let first = job.messages.first?.metadata.streamSequence {
                restartAt = min(restartAt ?? first, first)
            }
            return job.committed
        }
        while !Task.isCancelled {
            if let sequence = restartAt {
                await finishStoring()
                switch await restartConsumer(pull, at: restartAt ?? sequence) {
                case .restarted:
                    order.restarted()
                    restartAt = nil
                case .tryAgain:
                    try? await Task.sleep(for: .milliseconds(500))
                    continue
                case .refused:
                    // Read on as it comes, from now on: what is missing comes again after the
                    // ack wait.
                    restartAt = nil
                    inOrder = false
                }
            }
            if catchUp.withLock({ $0.needsConsumerInfo }) {
                // Whether the deliveries of an earlier run are all acknowledged now: asked once
                // every batch fetched so far is committed.
                await finishStoring()
                if let info = try? await pull.jetStream.consumerInfo(stream: pull.stream, consumer: pull.consumer) {
                    await writer.submit {
                        self.noteCatchUp { $0.consumerInfoArrived(numPending: info.numPending, ackFloor: info.ackFloor.streamSequence, now: .now()) }
                    }.value
                }
            }
            let batch: PullConsumer.Batch
            do {
                // A pull returns when its batch is full or, at the latest, when it expires: the
                // expiry bounds how long the tail of a burst waits to be stored (and costs an
                // idle coordinator five requests a second).
                batch = try await pull.fetch(batch: options.batchSize, expires: .milliseconds(200))
            } catch {
                if Task.isCancelled || connection.status == .closed { break }
                // Once per episode: a lost server or a leader election makes a few seconds of these.
                if failures == 0 { log("coordinator: fetching from the stream failed: \(LogText(error)); trying again") }
                failures += 1
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            if failures > 0 {
                log("coordinator: fetching from the stream works again, after \(Counted(failures, "failed fetch"))")
                failures = 0
            }
            guard !batch.messages.isEmpty else {
                if batch.endReason == .expired || batch.endReason == .noMessages {
                    // Nothing to deliver: once the batch before is committed, the coordinator
                    // has everything the stream had for it.
                    await finishStoring()
                    if restartAt == nil {
                        await writer.submit { self.noteCatchUp { $0.foundNothing(now: .now()) } }.value
                    }
                }
                continue
            }
            let (take, gap) = inOrder ? order.arrived(batch.messages.lazy.map(\.metadata.streamSequence)) : (batch.messages.count, nil)
            if let gap {
                log("coordinator: the stream delivered event \(batch.messages[take].metadata.streamSequence) before \(gap): reading it again from \(gap), in order")
                restartAt = gap
            }
            guard take > 0 else { continue }
            let messages = Array(batch.messages.prefix(take))
            let deliveries = messages.map { EventSubscription.decode($0.message) }
            let prepared = prepare(deliveries)
            // The batch before failed: this one waits for it, from the consumer started again.
            guard await finishStoring() else { continue }
            storing = writer.submit {
                let (actions, committed) = self.store(messages, prepared, deliveries)
                self.hand(actions)
                if committed, let pending = messages.last?.metadata.pending {
                    self.noteCatchUp { $0.committed(pending: pending, now: .now()) }
                }
                return StoringJob(messages: messages, prepared: prepared, deliveries: deliveries, committed: committed)
            }
        }
        await finishStoring()
    }

    /// A batch on its way through the writer, and whether it was committed.
    private struct StoringJob: Sendable {
        var messages: [JetStreamMessage]
        var prepared: PreparedBatch
        var deliveries: [EventDelivery]
        var committed: Bool
    }

    /// The consumer's configuration; starting at `sequence` when given (else at the stream's
    /// first message).
    private func consumerConfig(startingAt sequence: UInt64? = nil) -> ConsumerConfig {
        var consumer = ConsumerConfig(durableName: options.consumerName, ackWait: .seconds(30))
        consumer.maxAckPending = max(options.batchSize * 4, 1000)
        if let sequence {
            consumer.deliverPolicy = .byStartSequence
            consumer.optStartSequence = sequence
        }
        return consumer
    }

    private enum Restart {
        case restarted, tryAgain
        /// Not permitted, or not possible: read on with the consumer as it is.
        case refused
    }

    /// Deletes the durable consumer and makes it again, delivering from `sequence` on: what is
    /// stored already comes again as duplicates, what was missing comes in order. Safe to try
    /// again after any failure (a consumer already deleted is made again from `sequence`).
    private func restartConsumer(_ pull: PullConsumer, at sequence: UInt64) async -> Restart {
        do {
            do {
                try await pull.jetStream.deleteConsumer(stream: pull.stream, consumer: pull.consumer)
            } catch let error as JetStreamError where error.errorCode == JetStreamError.consumerNotFound {
                // Gone already (an earlier attempt deleted it).
            }
            let info = try await pull.jetStream.createConsumer(stream: pull.stream, config: consumerConfig(startingAt: sequence))
            log("coordinator: consumer \(options.consumerName) reads the stream again from event \(sequence), in order (\(info.numPending) to read)")
            return .restarted
        } catch where Self.isTransient(error) {
            log("coordinator: could not start consumer \(options.consumerName) again at event \(sequence) (\(LogText(error))); trying again")
            return .tryAgain
        } catch {
            log("coordinator: cannot start consumer \(options.consumerName) again at event \(sequence) (\(LogText(error))); reading on: the events missing come again after the ack wait, later than those after them")
            return .refused
        }
    }

    /// Deletes the events older than `retention` now and every ``CoordinatorOptions/retentionInterval``,
    /// until cancelled: a bounded number per job on the store thread, each job submitted once
    /// the one before is done, so that batches of events being stored take turns with them
    /// (ingest waits for one deletion at most).
    private func expire(olderThan retention: Duration, writer: SerialWorker) async {
        while !Task.isCancelled {
            let cutoff = EventTimestamp.now() - retention
            var deleted = 0
            while !Task.isCancelled {
                let outcome = await writer.submit { () -> Result<Int, any Error> in
                    self.ingestion.withLock { _ in Result { try self.store.deleteEvents(before: cutoff, limit: self.options.retentionBatch) } }
                }.value
                switch outcome {
                case .success(let count):
                    deleted += count
                    statisticsLock.withLock { $0.expired += UInt64(count) }
                    if count == options.retentionBatch { continue }
                case .failure(let error):
                    log("coordinator: could not delete events older than \(cutoff.rfc3339): \(LogText(error)); trying again in \(options.retentionInterval)")
                }
                break
            }
            if deleted > 0 {
                log("coordinator: deleted \(Counted(deleted, "event")) older than \(cutoff.rfc3339) from the history (retention)")
            }
            try? await Task.sleep(for: options.retentionInterval)
        }
    }

    /// Hands a batch's actions to the publisher, waiting for room (on the store thread: the
    /// back-pressure that keeps actions from piling up).
    private func hand(_ batch: [LifecycleAction]) {
        guard !batch.isEmpty else { return }
        if !actions.send(batch) {
            statisticsLock.withLock { $0.publishFailures += UInt64(batch.count) }
            log("coordinator: stopping; \(batch.count) events to publish were not published")
        }
    }

    /// Stores one fetched batch, then acknowledges it: acked after the commit, terminated if
    /// not an event, asked again for later if the commit failed. Returns the actions to
    /// perform, and whether the batch was committed.
    private func store(_ messages: [JetStreamMessage], _ batch: PreparedBatch, _ deliveries: [EventDelivery]) -> (actions: [LifecycleAction], committed: Bool) {
        let (actions, committed) = ingest(batch)
        guard committed else {
            // Not stored: leave them unacknowledged so the stream delivers them again.
            for message in messages { try? message.nak(delay: .seconds(1)) }
            return ([], false)
        }
        for (message, delivery) in zip(messages, deliveries) {
            switch delivery {
            case .event: try? message.ack()
            case .malformed, .mismatched: try? message.term()
            }
        }
        return (actions, true)
    }

    /// A batch of deliveries made ready to store, on the task that decoded it: the valid events
    /// with their rows encoded, and counts of what was wrong with the rest (already logged).
    struct PreparedBatch: Sendable {
        var received: Int
        var valid: [(event: Event, subject: String)]
        var rows: EventStore.Rows
        var malformed: UInt64
        var mismatched: UInt64
    }

    /// Sorts a batch of deliveries, logs the ones that are not valid events, and encodes the
    /// rows of the rest.
    func prepare(_ deliveries: [EventDelivery]) -> PreparedBatch {
        var valid: [(event: Event, subject: String)] = []
        valid.reserveCapacity(deliveries.count)
        var malformed: UInt64 = 0
        var mismatched: UInt64 = 0
        for delivery in deliveries {
            switch delivery {
            case .event(let event, let subject): valid.append((event, subject))
            case .malformed(let subject, _, let error):
                malformed += 1
                log("coordinator: ignored a malformed event on \(LogText(subject)): \(LogText(error))")
            case .mismatched(let event, let subject):
                mismatched += 1
                log("coordinator: ignored event \(LogText(event.id)) (\(event.eventType)) on the wrong subject \(LogText(subject))")
            }
        }
        return PreparedBatch(received: deliveries.count, valid: valid, rows: EventStore.Rows(valid), malformed: malformed, mismatched: mismatched)
    }

    /// Stores a prepared batch and the state it changes in one transaction (the new events
    /// applied to the rules). Returns the actions, and whether the batch was committed.
    ///
    /// With `storeSeparatelyOnFailure` (core NATS, where nothing is redelivered), a batch whose
    /// transaction fails is stored event by event instead, so that one failure costs only the
    /// events that cannot be stored — as when every event had its own transaction.
    func ingest(_ batch: PreparedBatch, storeSeparatelyOnFailure: Bool = false) -> (actions: [LifecycleAction], committed: Bool) {
        // A batch is counted in one go, once its outcome is known: every snapshot of the
        // statistics adds up (received = stored + duplicates + malformed + mismatched +
        // storeFailures).
        func count(stored: Int, duplicates: Int, failures: Int) {
            statisticsLock.withLock { statistics in
                statistics.received += UInt64(batch.received)
                statistics.malformed += batch.malformed
                statistics.mismatched += batch.mismatched
                statistics.stored += UInt64(stored)
                statistics.duplicates += UInt64(duplicates)
                statistics.storeFailures += UInt64(failures)
            }
        }
        let valid = batch.valid
        return ingestion.withLock { _ -> (actions: [LifecycleAction], committed: Bool) in
            let started = ContinuousClock.now
            do {
                let commit = try state.commit(batch.rows, of: valid, during: { self.hooks.withLock { $0.duringBatch }?() })
                let took = ContinuousClock.now - started
                count(stored: commit.stored.count, duplicates: valid.count - commit.stored.count, failures: 0)
                if !commit.stored.isEmpty { statisticsLock.withLock { Self.countCommit(of: commit.stored, took: took, in: &$0) } }
                noteStoreWorks()
                announce(commit.stored)
                stateBuckets.rowsCommitted(commit.lifecycleRows)
                return (hold(commit.actions, stored: commit.stored), true)
            } catch {
                guard storeSeparatelyOnFailure, valid.count > 1 else {
                    count(stored: 0, duplicates: 0, failures: valid.count)
                    noteStoreFailure(valid.count, error)
                    return ([], false)
                }
            }
            var actions: [LifecycleAction] = []
            var stored: [StoredEvent] = []
            var rows: [CheckpointRow] = []
            var duplicates = 0
            var failures = 0
            for item in valid {
                do {
                    let commit = try state.commit([item])
                    stored += commit.stored
                    duplicates += 1 - commit.stored.count
                    actions += commit.actions
                    rows += commit.lifecycleRows
                } catch {
                    failures += 1
                    noteStoreFailure(1, error)
                }
            }
            count(stored: stored.count, duplicates: duplicates, failures: failures)
            if !stored.isEmpty { statisticsLock.withLock { Self.countCommit(of: stored, took: ContinuousClock.now - started, in: &$0) } }
            if stored.count + duplicates > 0 { noteStoreWorks() }
            announce(stored)
            stateBuckets.rowsCommitted(rows)
            return (hold(actions, stored: stored), true)
        }
    }

    /// What of `actions` to perform now: derived events are held while catching up, and those
    /// held are forgotten when the stream brings them (``HeldEmissions``).
    private func hold(_ actions: [LifecycleAction], stored: [StoredEvent]) -> [LifecycleAction] {
        held.withLock { $0.committed(actions: actions, stored: stored.lazy.map(\.event.id)) }
    }

    /// Handles one delivery: store it if new, then apply the lifecycle rules; returns what the
    /// rules ask to publish.
    public func ingest(_ delivery: EventDelivery) -> [LifecycleAction] {
        ingest(prepare([delivery])).actions
    }

    // MARK: - Drops and failures, once per episode

    /// Counts what the event subscription dropped (its running total is `total`), and logs the
    /// start of an episode of drops once.
    private func noteDropped(total: UInt64) {
        let (new, starts) = episodes.withLock { episodes -> (UInt64, Bool) in
            let new = total &- episodes.droppedSeen
            episodes.droppedSeen = total
            defer { episodes.dropping = new > 0 }
            return (new, new > 0 && !episodes.dropping)
        }
        guard new > 0 else { return }
        statisticsLock.withLock { $0.dropped += new }
        if starts {
            log("coordinator: events are dropped (\(new) so far): the server sends them faster than they are stored and the subscription's queue is full (a slow consumer). In core NATS they are lost; run with --mode jetstream on a server with JetStream (-js) to lose none. Counted in the statistics as dropped.")
        }
    }

    /// Counts the query requests the service dropped (its running total is `total`).
    private func noteDroppedQueries(total: UInt64) {
        let new = episodes.withLock { episodes -> UInt64 in
            defer { episodes.droppedQueriesSeen = total }
            return total > episodes.droppedQueriesSeen ? total - episodes.droppedQueriesSeen : 0
        }
        if new > 0 {
            statisticsLock.withLock { $0.droppedQueries += new }
            log("coordinator: \(new) queries dropped: they arrive faster than they are answered")
        }
    }

    private func noteStoreFailure(_ events: Int, _ error: any Error) {
        statisticsLock.withLock { $0.storeFailing = true }
        if episodes.withLock({ $0.storing.failed(UInt64(events)) }) {
            let what = effectiveMode == .jetStream
                ? "they stay in the stream and are delivered again"
                : "in core NATS they are lost; JetStream mode (--mode jetstream) would deliver them again"
            log("coordinator: could not store \(events) events (\(LogText(error))); \(what). Counted in the statistics as storeFailures; logged again when storing works again.")
        }
    }

    private func noteStoreWorks() {
        if let failed = episodes.withLock({ $0.storing.worked() }) { log("coordinator: storing works again, after \(failed) events could not be stored") }
    }

    // MARK: - Time and actions

    /// Applies the node timeout rule: now in core NATS; with a stream, as of the last moment
    /// the coordinator had read all of it (``StreamCatchUp/judgingTime(now:)``), and not at
    /// all before it has caught up.
    public func checkNodes() async {
        guard let now = catchUp.withLock({ $0.judgingTime(now: .now()) }) else { return }
        await perform(state.tick(now: now))
    }

    /// Publishes what the rules asked for: with JetStream acknowledgement in JetStream mode.
    func perform(_ actions: [LifecycleAction]) async {
        for action in actions {
            switch action {
            case .publish(let event, let host):
                do {
                    let publisher = try EventPublisher(connection: connection, host: host)
                    let subject = try EventSubject.subject(for: event, host: host)
                    if effectiveMode == .jetStream {
                        try await publisher.publishDurably(event)
                    } else {
                        try publisher.publish(event)
                    }
                    statisticsLock.withLock { $0.published += 1 }
                    log("coordinator: published \(event.eventType) on \(LogText(subject)): \(LogText(event.message))")
                } catch {
                    statisticsLock.withLock { $0.publishFailures += 1 }
                    log("coordinator: could not publish \(event.eventType): \(LogText(error))")
                }
            }
        }
    }

    // MARK: - Queries

    /// Logs a reply to a query that could not be sent.
    func logQueryFailure(_ error: any Error) {
        log("coordinator: could not answer a query: \(LogText(error))")
    }

    /// The reply to a query on `subject` with `body` (see ``QueryProtocol``), at most
    /// `byteLimit` bytes; built on the coordinator's query thread, from what is committed.
    /// Returns it and its status (see ``answer(query:body:byteLimit:)``).
    public func reply(to subject: String, body: [UInt8], byteLimit: Int) async -> (reply: [UInt8], status: Int) {
        await queryWorker.submit { self.answer(query: subject, body: body, byteLimit: byteLimit) }.value
    }

    /// Answers one query of the query API (``QueryProtocol``), over NATS or HTTP alike: the
    /// reply's JSON, at most `byteLimit` bytes (by default room for any event the server takes,
    /// whole), and its status — 200, or the error's code (400 a bad request, 404 an unknown
    /// query, 500 the history could not be read). Counted in the statistics. Reads SQLite on
    /// the calling thread, from the last commit: call it from a thread of your own (NATS
    /// queries are answered on the coordinator's query thread), never the cooperative pool.
    public func answer(query subject: String, body: [UInt8], byteLimit: Int? = nil) -> (reply: [UInt8], status: Int) {
        let limit = max(byteLimit ?? 2 * connection.maxPayload + 64 * 1024, HistoryQuery.minimumBytes)
        hooks.withLock { $0.answeringQuery }?()
        var result: (reply: [UInt8], status: Int)
        do {
            switch subject {
            case QueryProtocol.historySubject:
                result = (try QueryReplies.history(try QueryProtocol.historyQuery(from: body), byteLimit: limit, store: store), 200)
            case QueryProtocol.sessionsSubject:
                result = (try QueryReplies.sessions(try QueryProtocol.tableQuery(from: body), byteLimit: limit, store: store), 200)
            case QueryProtocol.nodesSubject:
                let query = try QueryProtocol.tableQuery(from: body)
                guard query.projectId == nil else { throw HistoryQueryError("nodes have no project_id") }
                result = (try QueryReplies.nodes(
                    query, byteLimit: limit, store: store, now: .now(), missedHealthChecks: options.missedHealthChecks,
                    watchingSince: watchingSince), 200)
            case QueryProtocol.rolloutsSubject, QueryProtocol.runsSubject:
                result = QueryProtocol.answer(subject, body: body, from: families)
            default:
                result = (QueryProtocol.errorReply(code: 404, description: "unknown query \(LogText(subject))"), 404)
            }
        } catch let error as HistoryQueryError {
            result = (QueryProtocol.errorReply(code: 400, description: error.message), 400)
        } catch let error as QueryFailure {
            result = (QueryProtocol.errorReply(code: error.code, description: error.description), error.code)
        } catch {
            result = (QueryProtocol.errorReply(code: 500, description: "the history could not be read: \(LogText(error))"), 500)
        }
        let failed = result.status != 200
        statisticsLock.withLock {
            $0.queries += 1
            if failed { $0.badQueries += 1 }
        }
        return result
    }
}

/// Places where tests stop the coordinator, to see what waits for what.
struct CoordinatorHooks: Sendable {
    /// Runs while a batch is applied: inside its transaction, which queries must never wait for.
    var duringBatch: (@Sendable () -> Void)?
    /// Runs where a query is answered, on the thread that answers it.
    var answeringQuery: (@Sendable () -> Void)?
    /// Runs before each batch of actions is performed.
    var performing: (@Sendable () async -> Void)?
}
