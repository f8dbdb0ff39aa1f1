import EnnioSync
public import EnnioEvents

/// The coordinator's state kept beside its history: the lifecycle's session and node tables
/// and the rollout and run reducers' (any ``CheckpointedReducer``) in memory for the rules, and
/// in the same SQLite database for restarts and queries, written in the same transaction as
/// each batch of events.
///
/// A restart loads the tables and applies only the events stored after their checkpoint
/// (normally none), in the order they were stored, so its cost does not grow with the history.
/// A reducer without a checkpoint (a database from before version 4, or from before the
/// reducer was checkpointed, a new format), or every reducer when asked to rebuild, is rebuilt
/// from the history alone: one walk, page by page, by key or (for reducers whose rules follow
/// the order of events) by `seq`.
///
/// Thread-safe. Writes hold the store's writing connection; the in-memory state has a lock of
/// its own, held to apply a batch (no SQLite work) and to read a snapshot.
public final class CheckpointedState: Sendable {
    public let store: EventStore
    private let log: @Sendable (String) -> Void

    private struct Reducers: Sendable {
        var lifecycle: LifecycleState
        var others: [any CheckpointedReducer]
    }

    private let reducers: Locked<Reducers>
    /// The names and versions of the reducers besides the lifecycle.
    private let otherCheckpoints: [(name: String, version: Int)]

    /// Events per page when a reducer is rebuilt or catches up.
    static let walkPage = 1000

    /// What loading found and did.
    public struct LoadReport: Sendable, Hashable {
        /// Reducers rebuilt from the whole history.
        public var rebuilt: [String] = []
        /// Events read from the history (for a rebuild or to catch up with a checkpoint).
        public var eventsRead = 0
        /// Rows loaded from checkpoints.
        public var rowsLoaded = 0
    }

    public let loadReport: LoadReport

    /// Loads the state from the store's checkpoint, or rebuilds it from the history.
    ///
    /// - Parameters:
    ///   - lifecycle: the rules' configuration, with no state.
    ///   - families: the rollout and run reducers, with no state, to keep them too (as the
    ///     coordinator does); `nil` for the lifecycle alone.
    ///   - rebuild: ignore every checkpoint and rebuild from the history.
    public convenience init(
        store: EventStore, lifecycle: LifecycleState, families: FamilyReducers? = nil, rebuild: Bool = false,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        try self.init(store: store, lifecycle: lifecycle, others: families.map { [$0] } ?? [], rebuild: rebuild, log: log)
    }

    init(store: EventStore, lifecycle: LifecycleState, others: [any CheckpointedReducer], rebuild: Bool, log: @escaping @Sendable (String) -> Void) throws {
        self.store = store
        self.log = log
        var state = Reducers(lifecycle: lifecycle, others: others)
        loadReport = try store.withDatabase { connection in
            try connection.transaction { try Self.load(&state, rebuild: rebuild, from: store, in: connection, log: log) }
        }
        state.lifecycle.committed()
        for index in state.others.indices { state.others[index].committed() }
        reducers = Locked(state)
        otherCheckpoints = others.map { (type(of: $0).name, type(of: $0).version) }
    }

    // MARK: - Loading

    private static func load(
        _ state: inout Reducers, rebuild: Bool, from store: EventStore, in connection: SQLiteDatabase, log: (String) -> Void
    ) throws -> LoadReport {
        var report = LoadReport()
        let last = try store.lastSequence(in: connection)
        // Per reducer (lifecycle first): loaded to this seq, or nil to rebuild.
        var applied: [Int64?] = []
        func restore<R: CheckpointedReducer>(_ reducer: inout R) throws -> Int64? {
            guard !rebuild else { return nil }
            guard let checkpoint = try store.checkpoint(of: R.name, in: connection) else {
                if last > 0 {
                    log("coordinator: the database has no \(R.name) checkpoint (a program that kept none wrote it): rebuilding the \(R.name) tables from the history")
                }
                return nil
            }
            guard checkpoint.version == R.version else {
                log("coordinator: the \(R.name) checkpoint has format \(checkpoint.version), this program writes \(R.version): rebuilding it from the history")
                return nil
            }
            guard checkpoint.appliedSequence <= last else {
                log("coordinator: the \(R.name) checkpoint is ahead of the history (event \(checkpoint.appliedSequence) of \(last)): rebuilding it")
                return nil
            }
            var failure: (any Error)?
            for table in R.tables {
                try store.walkRows(of: table, in: connection) { row in
                    do {
                        try reducer.load(row.row(of: table))
                        report.rowsLoaded += 1
                        return true
                    } catch {
                        failure = error
                        return false
                    }
                }
                if failure != nil { break }
            }
            if let failure {
                log("coordinator: the \(R.name) checkpoint cannot be read (\(failure)): rebuilding it from the history")
                reducer.reset()
                return nil
            }
            return checkpoint.appliedSequence
        }
        applied.append(try restore(&state.lifecycle))
        for index in state.others.indices {
            applied.append(try restore(&state.others[index]))
        }

        // Rebuild those without a usable checkpoint, in one walk of the history.
        if applied.contains(where: { $0 == nil }) {
            func rebuilding(_ index: Int) -> Bool { applied[index] == nil }
            if rebuilding(0) { state.lifecycle.reset() }
            for index in state.others.indices where rebuilding(index + 1) { state.others[index].reset() }
            let kinds: [any CheckpointedReducer.Type] = [LifecycleState.self] + state.others.map { type(of: $0) }
            let rebuilt = kinds.indices.filter(rebuilding)
            report.rebuilt = rebuilt.map { kinds[$0].name }
            func apply(_ stored: StoredEvent) {
                if rebuilding(0) { _ = state.lifecycle.apply(stored) }
                for index in state.others.indices where rebuilding(index + 1) { _ = state.others[index].apply(stored) }
            }
            if rebuilt.contains(where: { kinds[$0].dependsOnStoredOrder }) {
                // In the order of storing, as live ingest applied them (right for the others
                // too, whose state does not depend on the order). Only the events they read.
                let wanted = rebuilt.map { kinds[$0].categories }
                let categories: Set<EventCategory>? = wanted.contains { $0 == nil } ? nil : wanted.reduce(into: []) { $0.formUnion($1 ?? []) }
                var from: Int64 = 0
                while true {
                    var read = 0
                    from = try store.walk(afterSequence: from, limit: walkPage, categories: categories, in: connection) { row in
                        read += 1
                        apply(try row.stored())
                        return true
                    }
                    report.eventsRead += read
                    if read < walkPage { break }
                }
            } else {
                var query = HistoryQuery(limit: walkPage)
                while true {
                    var read = 0
                    var lastRow: HistoryCursor?
                    try store.walk(query, in: connection) { row in
                        guard read < walkPage else { return false }
                        read += 1
                        lastRow = row.cursor
                        apply(try row.stored())
                        return true
                    }
                    report.eventsRead += read
                    guard read == walkPage, let lastRow else { break }
                    query.after = lastRow
                }
            }
            for index in applied.indices where applied[index] == nil { applied[index] = last }
        }

        // Catch up, in the order of storing, with what was stored after a checkpoint.
        var from = applied.compactMap { $0 }.min() ?? last
        while from < last {
            var read = 0
            from = try store.walk(afterSequence: from, limit: walkPage, in: connection) { row in
                read += 1
                let stored = try row.stored()
                if let done = applied[0], stored.seq > done { _ = state.lifecycle.apply(stored) }
                for index in state.others.indices {
                    if let done = applied[index + 1], stored.seq > done { _ = state.others[index].apply(stored) }
                }
                return true
            }
            report.eventsRead += read
            if read == 0 { break }
        }

        // Write what changed, and every checkpoint.
        if report.eventsRead > 0 || applied.contains(where: { $0 != last }) || !report.rebuilt.isEmpty {
            for name in report.rebuilt {
                let tables = name == LifecycleState.name ? LifecycleState.tables : state.others.first { type(of: $0).name == name }.map { type(of: $0).tables } ?? []
                try store.clear(reducer: name, tables: tables, in: connection)
            }
            try store.write(state.lifecycle.changedRows(), in: connection)
            try store.saveCheckpoint(of: LifecycleState.name, version: LifecycleState.version, appliedSequence: last, in: connection)
            for reducer in state.others {
                try store.write(reducer.changedRows(), in: connection)
                try store.saveCheckpoint(of: type(of: reducer).name, version: type(of: reducer).version, appliedSequence: last, in: connection)
            }
        }
        return report
    }

    // MARK: - Storing

    /// What a batch did.
    public struct Commit: Sendable {
        /// Per event of the batch: whether it was new (stored now).
        public var inserted: [Bool]
        /// The events stored now, in order.
        public var stored: [StoredEvent]
        /// What the rules ask for.
        public var actions: [LifecycleAction]
        /// The session and node rows the batch changed, as written with it (for the state
        /// buckets, ``StateBucketWriter``).
        var lifecycleRows: [CheckpointRow] = []
    }

    /// Stores `rows` (made from `events`) and applies the new events to every reducer, writing
    /// their changed rows and checkpoints, in one transaction. Either all of it is committed or,
    /// when it throws, none of it (the in-memory state is rolled back as well).
    public func commit(_ rows: EventStore.Rows, of events: [(event: Event, subject: String)]) throws -> Commit {
        try commit(rows, of: events, during: {})
    }

    /// ``commit(_:of:)``, calling `during` inside the transaction, before it commits (for tests
    /// that hold a batch there).
    func commit(_ rows: EventStore.Rows, of events: [(event: Event, subject: String)], during: () -> Void) throws -> Commit {
        precondition(rows.count == events.count, "rows and events must match")
        guard !events.isEmpty else { return Commit(inserted: [], stored: [], actions: []) }
        let storedAt = EventTimestamp.now()
        return try store.withDatabase { connection in
            var applied = false
            do {
                let result = try connection.transaction {
                    let sequences = try store.insert(rows, storedAt: storedAt, in: connection)
                    var stored: [StoredEvent] = []
                    stored.reserveCapacity(events.count)
                    for (item, seq) in zip(events, sequences) {
                        if let seq { stored.append(StoredEvent(event: item.event, subject: item.subject, seq: seq, storedAt: storedAt)) }
                    }
                    applied = true
                    let (actions, changes) = reducers.withLock { state in
                        var actions: [LifecycleAction] = []
                        for event in stored {
                            actions += state.lifecycle.apply(event)
                            for index in state.others.indices { actions += state.others[index].apply(event) }
                        }
                        return (actions, [state.lifecycle.changedRows()] + state.others.map { $0.changedRows() })
                    }
                    if let last = stored.last?.seq {
                        for rows in changes { try store.write(rows, in: connection) }
                        try store.saveCheckpoint(of: LifecycleState.name, version: LifecycleState.version, appliedSequence: last, in: connection)
                        for (name, version) in otherCheckpoints {
                            try store.saveCheckpoint(of: name, version: version, appliedSequence: last, in: connection)
                        }
                    }
                    during()
                    return Commit(inserted: sequences.map { $0 != nil }, stored: stored, actions: actions, lifecycleRows: changes[0])
                }
                reducers.withLock { state in
                    state.lifecycle.committed()
                    for index in state.others.indices { state.others[index].committed() }
                }
                return result
            } catch {
                if applied {
                    reducers.withLock { state in
                        state.lifecycle.rollBack()
                        for index in state.others.indices { state.others[index].rollBack() }
                    }
                }
                throw error
            }
        }
    }

    /// ``commit(_:of:)`` for events not yet made into rows.
    public func commit(_ events: [(event: Event, subject: String)]) throws -> Commit {
        try commit(EventStore.Rows(events), of: events)
    }

    // MARK: - Reading and time

    /// The node timeout rule at `now`: what to publish for nodes found silent.
    public func tick(now: EventTimestamp) -> [LifecycleAction] {
        reducers.withLock { $0.lifecycle.tick(now: now) }
    }

    /// A copy of the reducers besides the lifecycle (copied under the lock, cheaply).
    var others: [any CheckpointedReducer] { reducers.withLock { $0.others } }

    /// A copy of the rollout and run reducers' state, if kept (copied under the lock, cheaply:
    /// their tables are shared until the next change).
    public var families: FamilyReducers? {
        reducers.withLock { $0.others.lazy.compactMap { $0 as? FamilyReducers }.first }
    }

    /// A copy of the lifecycle's state (copied under the lock, cheaply: its tables are shared
    /// until the next change).
    public var lifecycle: LifecycleState { reducers.withLock { $0.lifecycle } }
}
