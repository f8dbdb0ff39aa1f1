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
    /// The durable consumer the coordinator reads the event stream through.
    public var consumerName = "ennio-coordinator"
    /// Most events stored in one transaction (and fetched per pull in JetStream mode). Under
    /// load, big transactions are what keeps SQLite fast: random event ids put inserts all over
    /// the id index, and each commit writes every page it touched to the WAL once (measured:
    /// 2,000 per commit ~47k events/s, 8,000 ~80k/s). At low rates batches are as small as
    /// what has arrived.
    public var batchSize = 8000

    public enum Mode: String, Sendable, Hashable {
        case automatic, core, jetStream = "jetstream"
    }

    public init() {}
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
    /// Events stored, per category.
    public var storedByCategory: [EventCategory: UInt64] = [:]
    /// How long SQLite took to store each batch (one transaction).
    public var storeBatchTimes = DurationHistogram.storeBatches
    /// For the last batch stored: when it was committed (wall clock) and how far that was
    /// behind the newest event in it (commit time minus its timestamp, on the publisher's clock).
    public var lastCommit: EventTimestamp?
    public var lastCommitLag: Duration?
    /// Whether the last attempt to store a batch failed.
    public var storeFailing = false
}

/// The central lifecycle coordinator: subscribes to every event category with wildcard
/// patterns, stores every event once in SQLite, keeps session and node state, applies the
/// lifecycle rules, and answers history and state queries over request/reply.
public final class Coordinator: Sendable {
    public let connection: NATSConnection
    public let store: EventStore
    public let options: CoordinatorOptions
    private let log: @Sendable (String) -> Void

    private struct Mutable {
        var lifecycle: LifecycleState
        /// The rollout and run reducers (the families beyond the orchestrator's).
        var families = FamilyReducers()
        var statistics = CoordinatorStatistics()
    }

    private let state: Locked<Mutable>
    /// Held while a delivery or batch is stored and applied, so that ingestion stays in order
    /// without holding `state` across SQLite work.
    private let ingestion = Locked(())
    private let clockOrigin = ContinuousClock.now
    /// Told of the events each batch newly stored, once it is committed.
    private let commitObservers = Locked<[@Sendable ([Event]) -> Void]>([])

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

    /// Creates a coordinator and rebuilds its session and node state from the stored history,
    /// so a restart keeps what it knew.
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
        var lifecycle = LifecycleState(defaultHealthInterval: options.defaultHealthInterval, missedHealthChecks: options.missedHealthChecks)
        var families = FamilyReducers()
        var query = HistoryQuery(limit: 1000)
        while true {
            let page = try store.query(query)
            for event in page.events {
                let host = event.eventType.category == .node ? event.data["host"]?.stringValue : nil
                _ = lifecycle.apply(event, host: host, now: .zero)
                _ = families.apply(event)
            }
            guard let next = page.nextOffset else { break }
            query.offset = next
        }
        self.state = Locked(Mutable(lifecycle: lifecycle, families: families))
    }

    /// The coordinator's clock (node records' `lastSeen` is on it).
    public var now: Duration { ContinuousClock.now - clockOrigin }

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
    private func announce(_ events: [Event]) {
        guard !events.isEmpty else { return }
        for observer in commitObservers.withLock({ $0 }) { observer(events) }
    }

    /// Counts a batch's commit: its time in SQLite and its lag behind the newest event in it.
    private static func countCommit(of events: some Sequence<Event>, took time: Duration, in statistics: inout CoordinatorStatistics) {
        let committed = EventTimestamp.now()
        statistics.storeBatchTimes.record(time)
        statistics.storeFailing = false
        statistics.lastCommit = committed
        if let newest = events.map(\.timestamp).max() { statistics.lastCommitLag = committed - newest }
    }

    public var statistics: CoordinatorStatistics { state.withLock { $0.statistics } }
    public var sessions: [SessionRecord] { state.withLock { $0.lifecycle.sessionList } }
    public var nodes: [NodeRecord] { state.withLock { $0.lifecycle.nodeList } }
    /// A copy of the rollout and run reducers' state (queries use `ennio.query.rollouts|runs`).
    public var families: FamilyReducers { state.withLock { $0.families } }

    /// The mode `run` uses on this connection.
    public var effectiveMode: CoordinatorOptions.Mode {
        switch options.mode {
        case .automatic: connection.serverInfo?.jetStream == true ? .jetStream : .core
        case let mode: mode
        }
    }

    /// Subscribes and works until the calling task is cancelled or the connection closes.
    /// `ready` is called once every subscription is in place on the server.
    public func run(ready: (@Sendable () -> Void)? = nil) async throws {
        let mode = effectiveMode
        var events: NATSSubscription?
        var pull: PullConsumer?
        if mode == .jetStream {
            let jetStream = JetStream(connection: connection)
            try await EventStream.ensure(jetStream)
            var consumer = ConsumerConfig(durableName: options.consumerName, ackWait: .seconds(30))
            consumer.maxAckPending = max(options.batchSize * 4, 1000)
            _ = try await jetStream.createConsumer(stream: EventStream.name, config: consumer)
            pull = jetStream.pullConsumer(stream: EventStream.name, consumer: options.consumerName)
        } else {
            events = try connection.subscribe(to: Self.eventPattern.subject)
        }
        let queries = try ([QueryProtocol.historySubject, QueryProtocol.sessionsSubject, QueryProtocol.nodesSubject] + QueryProtocol.familySubjects).map {
            try connection.subscribe(to: $0, queueGroup: "ennio-coordinator")
        }
        try await connection.flush()
        if mode == .jetStream {
            log("coordinator: reading stream \(EventStream.name) through durable consumer \(options.consumerName)")
        } else {
            log("coordinator: subscribed to \(Self.eventPattern.subject) (core NATS: events published while it is down are not seen)")
        }
        ready?()
        // SQLite writes run on a thread of their own, in order; the actions each batch calls
        // for are performed, in the same order, by a task of their own as soon as it is stored.
        let writer = SerialWorker(name: "ennio-store")
        defer { writer.stop() }
        let (actionBatches, actionSink) = AsyncStream<[LifecycleAction]>.makeStream()
        // Derived events the history does not have yet (a crash before they were published).
        actionSink.yield(state.withLock { $0.families.pendingEmissions }.map { .publish($0, host: nil) })
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await actions in actionBatches { await self.perform(actions) }
            }
            if let events {
                group.addTask {
                    // Whatever has queued up while the previous batch was stored is stored
                    // next in one transaction (in order), instead of one commit per event.
                    // Two stages: the next batch is received, decoded and encoded into rows
                    // while the previous one is written, and at most one batch waits for the
                    // writer. Each batch comes back from the writer to be freed here, so that
                    // the writer's thread does SQLite's work and little else.
                    var storing: SerialWorker.Pending<PreparedBatch>?
                    while true {
                        let messages = await events.nextBatch(maximum: self.options.batchSize)
                        if messages.isEmpty { break }
                        let deliveries = messages.compactMap { message in
                            Self.carriesEvents(message.subject) ? EventSubscription.decode(message) : nil
                        }
                        guard !deliveries.isEmpty else { continue }
                        let batch = self.prepare(deliveries)
                        _ = await storing?.value
                        storing = writer.submit {
                            actionSink.yield(self.ingest(batch, storeSeparatelyOnFailure: true).0)
                            return batch
                        }
                    }
                    _ = await storing?.value
                }
            }
            if let pull {
                group.addTask { await self.consume(pull, writer: writer, actions: actionSink) }
            }
            for subscription in queries {
                group.addTask {
                    for await request in subscription { self.answer(request) }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.options.tickInterval)
                    await self.checkNodes()
                }
            }
            await group.next()
            group.cancelAll()
        }
        try? events?.unsubscribe()
        for subscription in queries { try? subscription.unsubscribe() }
    }

    /// Pulls from the event stream until cancelled: each batch is stored in one transaction,
    /// then acknowledged — so an event is acknowledged only once it is committed, and a crash
    /// before that means redelivery, which the store de-duplicates (same id and timestamp).
    private func consume(_ pull: PullConsumer, writer: SerialWorker, actions: AsyncStream<[LifecycleAction]>.Continuation) async {
        // As in core mode, the next batch is fetched and decoded while the previous one is
        // written (the consumer allows four batches unacknowledged, so the server keeps
        // delivering), and at most one batch waits for the writer.
        // Everything a job used comes back with it, to be freed here rather than on the writer.
        var storing: SerialWorker.Pending<([JetStreamMessage], PreparedBatch, [EventDelivery])>?
        while !Task.isCancelled {
            let batch: PullConsumer.Batch
            do {
                // A pull returns when its batch is full or, at the latest, when it expires: the
                // expiry bounds how long the tail of a burst waits to be stored (and costs an
                // idle coordinator five requests a second).
                batch = try await pull.fetch(batch: options.batchSize, expires: .milliseconds(200))
            } catch {
                if Task.isCancelled || connection.status == .closed { break }
                log("coordinator: fetching from the stream failed: \(LogText(error)); trying again")
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            guard !batch.messages.isEmpty else { continue }
            let messages = batch.messages
            let deliveries = messages.map { EventSubscription.decode($0.message) }
            let prepared = prepare(deliveries)
            _ = await storing?.value
            storing = writer.submit {
                actions.yield(self.store(messages, prepared, deliveries))
                return (messages, prepared, deliveries)
            }
        }
        _ = await storing?.value
    }

    /// Stores one fetched batch, then acknowledges it: acked after the commit, terminated if
    /// not an event, asked again for later if the commit failed. Returns the actions to perform.
    private func store(_ messages: [JetStreamMessage], _ batch: PreparedBatch, _ deliveries: [EventDelivery]) -> [LifecycleAction] {
        let (actions, committed) = ingest(batch)
        guard committed else {
            // Not stored: leave them unacknowledged so the stream delivers them again.
            for message in messages { try? message.nak(delay: .seconds(1)) }
            return []
        }
        for (message, delivery) in zip(messages, deliveries) {
            switch delivery {
            case .event: try? message.ack()
            case .malformed, .mismatched: try? message.term()
            }
        }
        return actions
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

    /// Stores a prepared batch in one transaction and applies the rules to the new events.
    /// Returns the actions, and whether the batch was committed.
    ///
    /// With `storeSeparatelyOnFailure` (core NATS, where nothing is redelivered), a batch whose
    /// transaction fails is stored event by event instead, so that one failure costs only the
    /// events that cannot be stored — as when every event had its own transaction.
    func ingest(_ batch: PreparedBatch, storeSeparatelyOnFailure: Bool = false) -> ([LifecycleAction], Bool) {
        // One ingestion at a time (store, then rules, in order); the state lock is held only
        // for counting and applying, so statistics and state queries never wait for SQLite.
        // A batch is counted in one go, once its outcome is known: every snapshot of the
        // statistics adds up (received = stored + duplicates + malformed + mismatched +
        // storeFailures).
        ingestion.withLock { _ in
            func countReceived(_ statistics: inout CoordinatorStatistics) {
                statistics.received += UInt64(batch.received)
                statistics.malformed += batch.malformed
                statistics.mismatched += batch.mismatched
            }
            let valid = batch.valid
            var inserted: [Bool?]
            let started = ContinuousClock.now
            do {
                inserted = try store.insert(batch.rows)
            } catch {
                guard storeSeparatelyOnFailure else {
                    state.withLock { state in
                        countReceived(&state.statistics)
                        state.statistics.storeFailures += UInt64(valid.count)
                        state.statistics.storeFailing = true
                    }
                    log("coordinator: could not store a batch of \(valid.count) events: \(LogText(error))")
                    return ([], false)
                }
                inserted = valid.map { item in
                    do {
                        return try store.insert(item.event, subject: item.subject)
                    } catch {
                        log("coordinator: could not store event \(LogText(item.event.id)): \(LogText(error))")
                        return nil
                    }
                }
            }
            let took = ContinuousClock.now - started
            let now = self.now
            let announcing = !commitObservers.withLock { $0.isEmpty }
            let (actions, stored) = state.withLock { state in
                countReceived(&state.statistics)
                var actions: [LifecycleAction] = []
                var stored: [Event] = []
                for (item, isNew) in zip(valid, inserted) {
                    guard let isNew else {
                        state.statistics.storeFailures += 1
                        continue
                    }
                    guard isNew else {
                        state.statistics.duplicates += 1
                        continue
                    }
                    state.statistics.stored += 1
                    state.statistics.storedByCategory[item.event.eventType.category, default: 0] += 1
                    if announcing { stored.append(item.event) }
                    let host = item.event.eventType.category == .node ? EventSubject.parse(item.subject)?.scope : nil
                    actions += state.lifecycle.apply(item.event, host: host, now: now)
                    actions += state.families.apply(item.event).emitted.map { .publish($0, host: nil) }
                }
                if inserted.contains(where: { $0 != nil }) {
                    Self.countCommit(of: valid.lazy.map(\.event), took: took, in: &state.statistics)
                }
                return (actions, stored)
            }
            announce(stored)
            return (actions, true)
        }
    }

    /// Handles one delivery: store it if new, then apply the lifecycle rules; returns what the
    /// rules ask to publish.
    public func ingest(_ delivery: EventDelivery) -> [LifecycleAction] {
        ingestion.withLock { _ in
            switch delivery {
            case .malformed(let subject, _, let error):
                state.withLock {
                    $0.statistics.received += 1
                    $0.statistics.malformed += 1
                }
                log("coordinator: ignored a malformed event on \(LogText(subject)): \(LogText(error))")
                return []
            case .mismatched(let event, let subject):
                state.withLock {
                    $0.statistics.received += 1
                    $0.statistics.mismatched += 1
                }
                log("coordinator: ignored event \(LogText(event.id)) (\(event.eventType)) on the wrong subject \(LogText(subject))")
                return []
            case .event(let event, let subject):
                let isNew: Bool
                let started = ContinuousClock.now
                do {
                    isNew = try store.insert(event, subject: subject)
                } catch {
                    state.withLock {
                        $0.statistics.received += 1
                        $0.statistics.storeFailures += 1
                        $0.statistics.storeFailing = true
                    }
                    log("coordinator: could not store event \(LogText(event.id)): \(LogText(error))")
                    return []
                }
                let took = ContinuousClock.now - started
                let now = self.now
                let actions = state.withLock { state -> [LifecycleAction] in
                    state.statistics.received += 1
                    Self.countCommit(of: [event], took: took, in: &state.statistics)
                    guard isNew else {
                        state.statistics.duplicates += 1
                        return []
                    }
                    state.statistics.stored += 1
                    state.statistics.storedByCategory[event.eventType.category, default: 0] += 1
                    let host = event.eventType.category == .node ? EventSubject.parse(subject)?.scope : nil
                    return state.lifecycle.apply(event, host: host, now: now)
                        + state.families.apply(event).emitted.map { .publish($0, host: nil) }
                }
                if isNew { announce([event]) }
                return actions
            }
        }
    }

    /// Applies the node timeout rule now.
    public func checkNodes() async {
        let actions = state.withLock { $0.lifecycle.tick(now: now) }
        await perform(actions)
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
                    state.withLock { $0.statistics.published += 1 }
                    log("coordinator: published \(event.eventType) on \(LogText(subject)): \(LogText(event.message))")
                } catch {
                    state.withLock { $0.statistics.publishFailures += 1 }
                    log("coordinator: could not publish \(event.eventType): \(LogText(error))")
                }
            }
        }
    }

    private func answer(_ request: NATSMessage) {
        guard let replyTo = request.replyTo else { return }
        let (reply, _) = answer(query: request.subject, body: request.payload)
        do {
            try connection.publish(reply, to: replyTo)
        } catch {
            log("coordinator: could not answer a query: \(LogText(error))")
        }
    }

    /// Answers one query of the query API (``QueryProtocol``), over NATS or HTTP alike: the
    /// reply's JSON and its status — 200, or the error's code (400 a bad request, 404 an
    /// unknown query, 500 the history could not be read). Counted in the statistics.
    public func answer(query subject: String, body: [UInt8]) -> (reply: [UInt8], status: Int) {
        let reply: [UInt8]
        var status = 200
        switch subject {
        case QueryProtocol.historySubject:
            do {
                let query = try QueryProtocol.historyQuery(from: body)
                reply = QueryProtocol.reply(for: try store.query(query))
            } catch let error as HistoryQueryError {
                status = 400
                reply = QueryProtocol.errorReply(code: 400, description: error.message)
            } catch {
                status = 500
                reply = QueryProtocol.errorReply(code: 500, description: "the history could not be read: \(error)")
            }
        case QueryProtocol.sessionsSubject:
            reply = QueryProtocol.reply(for: sessions)
        case QueryProtocol.nodesSubject:
            reply = QueryProtocol.reply(for: nodes, now: now)
        case QueryProtocol.rolloutsSubject, QueryProtocol.runsSubject:
            (reply, status) = state.withLock { QueryProtocol.answer(subject, body: body, from: $0.families) }
        default:
            status = 404
            reply = QueryProtocol.errorReply(code: 404, description: "unknown query \(LogText(subject))")
        }
        state.withLock {
            $0.statistics.queries += 1
            if status != 200 { $0.statistics.badQueries += 1 }
        }
        return (reply, status)
    }
}
