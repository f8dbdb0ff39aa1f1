import EnnioEvents
import EnnioSync
public import NATSClient

/// Counts of what the state buckets' writer did.
public struct StateBucketStatistics: Sendable, Hashable {
    /// Values written and keys deleted, acknowledged by the buckets' streams.
    public var puts: UInt64 = 0
    public var deletes: UInt64 = 0
    /// Comparisons of the buckets with the whole tables that finished (the first at the start).
    public var resyncs: UInt64 = 0
    /// Times more rows waited than the limit, so that they were dropped for a resync, and how
    /// many rows that was.
    public var overflows: UInt64 = 0
    public var overflowedRows: UInt64 = 0
    /// Attempts that failed: a bucket that could not be made, a write not acknowledged.
    public var failures: UInt64 = 0
    /// Whether the last attempt failed.
    public var failing = false
    /// Rows not written because their key would be longer than
    /// ``StateBucket/maximumKeyBytes`` (counted at every change of such a row).
    public var skippedRows: UInt64 = 0
}

/// Keeps the coordinator's session and node tables in the Key-Value buckets `ENNIO_SESSIONS`
/// (key `<project_id>.<session_id>`) and `ENNIO_NODES` (key `<host>`), each value a row as
/// `ennio.query.sessions` / `ennio.query.nodes` return it — so that anyone can take a
/// consistent snapshot of the tables and then every change with a KV watch.
///
/// The store thread hands over the rows each batch changed (``rowsCommitted(_:)``, which never
/// waits); ``run()`` writes them on its own, the latest value of each key once however often
/// it changed meanwhile (see ``StateBucketQueue``). First, after a failed write and after an
/// overflow it *resyncs*: it takes a snapshot of the tables between two commits, reads the
/// buckets and writes only what differs — rows missing or changed are put, keys no row has
/// are deleted — so a restarted coordinator's buckets converge to its checkpointed tables.
/// A node's `connected` also changes with time alone; it is written again when it does.
///
/// The buckets keep one value per key (history 1), in files, with as many replicas as the
/// event stream. They exist only with JetStream: in core mode nothing is written.
public final class StateBucketWriter: Sendable {
    public let jetStream: JetStream
    /// Rows waiting at most (see ``StateBucketQueue``).
    public let pendingLimit: Int
    private let queue: Locked<StateBucketQueue>
    private let wake = Locked<AsyncStream<Void>.Continuation?>(nil)
    private let statisticsLock = Locked(StateBucketStatistics())
    private let missedHealthChecks: Int
    private let watchingSince: EventTimestamp
    private let tickInterval: Duration
    private let log: @Sendable (String) -> Void
    /// Places where tests stop the writer.
    let hooks = Locked(StateBucketHooks())

    private struct Episodes {
        var writing = FailureEpisode()
        var skippedLogged = false
        var running = false
    }

    private let episodes = Locked(Episodes())

    /// Values published per call to the stream, with at most 256 acknowledgements outstanding.
    static let writeChunk = 1000

    init(
        jetStream: JetStream, pendingLimit: Int, missedHealthChecks: Int, watchingSince: EventTimestamp, tickInterval: Duration,
        log: @escaping @Sendable (String) -> Void
    ) {
        self.jetStream = jetStream
        self.pendingLimit = pendingLimit
        queue = Locked(StateBucketQueue(limit: pendingLimit))
        self.missedHealthChecks = missedHealthChecks
        self.watchingSince = watchingSince
        self.tickInterval = tickInterval
        self.log = log
    }

    public var statistics: StateBucketStatistics { statisticsLock.withLock { $0 } }

    /// The configuration of the bucket `name`: one value per key, in files, `replicas` copies.
    public static func config(_ name: String, replicas: Int) -> KeyValueConfig {
        var config = KeyValueConfig(bucket: name, history: 1, storage: .file)
        config.replicas = max(1, replicas)
        config.description = name == StateBucket.sessions
            ? "Ennio coordinator: the session table, key <project_id>.<session_id>"
            : "Ennio coordinator: the node table, key <host>"
        return config
    }

    // MARK: - From the store thread

    /// A batch committed these rows (on the store thread, holding the ingestion lock): queued
    /// for the writer, never waiting. Before ``run()`` starts, and while a resync is due,
    /// nothing needs to be kept: the resync's snapshot has them.
    func rowsCommitted(_ rows: [CheckpointRow]) {
        guard !rows.isEmpty else { return }
        switch queue.withLock({ $0.rowsCommitted(rows) }) {
        case .none:
            return
        case .wakeWriter:
            break
        case .wakeWriterAfterOverflow(let dropped, let first):
            statisticsLock.withLock {
                $0.overflows += 1
                $0.overflowedRows += UInt64(dropped)
            }
            if first {
                log("coordinator: the state buckets fall behind (more than \(pendingLimit) changed rows wait); they are compared with the tables whole instead, and converge. Counted as overflows.")
            }
        }
        _ = wake.withLock { $0 }?.yield()
    }

    // MARK: - The writer

    /// A snapshot of the tables, taken between two commits while the closure it is given runs
    /// (it may wait for a batch being stored: it is called on a thread of the writer's own).
    public typealias Tables = @Sendable (_ atTheSameInstant: @Sendable () -> Void) -> LifecycleState

    /// Writes until the calling task is cancelled: a resync first, then every change. Failures
    /// are logged once per episode and retried (after 1 s, doubling up to 30 s), each retry a
    /// resync. One run at a time: a second returns at once.
    public func run(tables: @escaping Tables) async {
        let starts = episodes.withLock { episodes -> Bool in
            defer { episodes.running = true }
            return !episodes.running
        }
        guard starts else { return }
        defer { episodes.withLock { $0.running = false } }
        let (wakes, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        wake.withLock { $0 = continuation }
        defer {
            wake.withLock { $0 = nil }
            continuation.finish()
        }
        // The snapshot waits for a batch being stored: on a thread of its own, never the pool.
        let worker = SerialWorker(name: "ennio-state-buckets")
        defer { worker.stop() }
        queue.withLock { $0.writeFailed() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.tickInterval)
                    continuation.yield()
                }
            }
            group.addTask { await self.write(wakes: wakes, worker: worker, tables: tables) }
            await group.next()
            group.cancelAll()
        }
    }

    private struct Buckets {
        var sessions: KeyValue
        var nodes: KeyValue

        func bucket(for table: String) -> KeyValue { table == LifecycleState.nodesTable ? nodes : sessions }
    }

    private func write(wakes: AsyncStream<Void>, worker: SerialWorker, tables: @escaping Tables) async {
        var liveness = NodeLiveness()
        var buckets: Buckets?
        var backoff = Duration.seconds(1)
        var wakeups = wakes.makeAsyncIterator()
        while !Task.isCancelled {
            if let hold = hooks.withLock({ $0.beforeWriting }) { await hold() }
            let work = queue.withLock { $0.take() }
            do {
                switch work {
                case .idle:
                    let due = liveness.due(now: .now(), missedHealthChecks: missedHealthChecks, watchingSince: watchingSince)
                    if let buckets, !due.isEmpty {
                        try await write(due, to: buckets, liveness: &liveness)
                    } else {
                        guard await wakeups.next() != nil else { return }
                        continue
                    }
                case .resync:
                    let ensured = try await ensureBuckets()
                    buckets = ensured
                    try await resync(ensured, liveness: &liveness, worker: worker, tables: tables)
                case .write(let rows):
                    guard let buckets else {
                        queue.withLock { $0.writeFailed() }
                        continue
                    }
                    try await write(rows, to: buckets, liveness: &liveness)
                }
                noteWorks()
                backoff = .seconds(1)
            } catch {
                if Task.isCancelled { return }
                queue.withLock { $0.writeFailed() }
                noteFailure(error)
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }

    /// Makes both buckets, or brings their configuration to ours (history 1, file storage, the
    /// event stream's replicas). A bucket the server will not change (its storage, say) is
    /// used as it is, and that is logged.
    private func ensureBuckets() async throws -> Buckets {
        let replicas = try await jetStream.streamInfo(EventStream.name).config.replicas
        var made: [KeyValue] = []
        for name in [StateBucket.sessions, StateBucket.nodes] {
            let config = Self.config(name, replicas: replicas)
            do {
                made.append(try await jetStream.createOrUpdateKeyValue(config))
            } catch let error as JetStreamError {
                let existing = try await jetStream.keyValue(name)
                log("coordinator: the bucket \(name) keeps its own configuration (the server refused ours, history 1, file, \(replicas) replicas: \(LogText(error)))")
                made.append(existing)
            }
        }
        return Buckets(sessions: made[0], nodes: made[1])
    }

    // MARK: - Writing rows

    /// What to write for one row: its bucket key and value (`nil`: delete the key), or `nil`
    /// when its key would be too long; for a node, the record its value was made from.
    private func entry(for row: CheckpointRow, now: EventTimestamp) throws -> (key: String, value: [UInt8]?, node: NodeRecord?)? {
        switch row.table {
        case LifecycleState.nodesTable:
            guard let key = StateBucket.nodeKey(host: row.key) else { return nil }
            guard row.value != nil else { return (key, nil, nil) }
            let (value, record) = try QueryReplies.nodeRow(row, now: now, missedHealthChecks: missedHealthChecks, watchingSince: watchingSince)
            return (key, value, record)
        default:
            guard let space = row.key.firstIndex(of: " "),
                let key = StateBucket.sessionKey(projectId: String(row.key[..<space]), sessionId: String(row.key[row.key.index(after: space)...]))
            else { return nil }
            return (key, row.value, nil)
        }
    }

    /// Writes rows, puts through one window of acknowledgements per bucket, deletes one by one.
    private func write(_ rows: [CheckpointRow], to buckets: Buckets, liveness: inout NodeLiveness) async throws {
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + Self.writeChunk)]
            start = chunk.endIndex
            let now = EventTimestamp.now()
            var puts: [(subject: String, payload: [UInt8], messageID: String?)] = []
            var deletes: [(bucket: KeyValue, key: String)] = []
            var nodes: [(row: CheckpointRow, record: NodeRecord, connected: Bool)] = []
            var skipped = 0
            for row in chunk {
                guard let entry = try entry(for: row, now: now) else {
                    skipped += 1
                    continue
                }
                let bucket = buckets.bucket(for: row.table)
                if let value = entry.value {
                    puts.append(("$KV.\(bucket.bucket).\(entry.key)", value, nil))
                } else {
                    deletes.append((bucket, entry.key))
                }
                if let record = entry.node {
                    nodes.append((row, record, record.isConnected(at: now, missedHealthChecks: missedHealthChecks, watchingSince: watchingSince)))
                } else if row.table == LifecycleState.nodesTable {
                    liveness.removed(row.key)
                }
            }
            noteSkipped(skipped)
            if !puts.isEmpty {
                _ = try await jetStream.publishAll(puts)
                statisticsLock.withLock { $0.puts += UInt64(puts.count) }
            }
            for (bucket, key) in deletes {
                try await bucket.delete(key)
                statisticsLock.withLock { $0.deletes += 1 }
            }
            for node in nodes { liveness.wrote(node.row, record: node.record, connected: node.connected) }
        }
    }

    // MARK: - Resync

    /// Compares both buckets with a snapshot of the tables and writes what differs.
    private func resync(_ buckets: Buckets, liveness: inout NodeLiveness, worker: SerialWorker, tables: @escaping Tables) async throws {
        let snapshot = await worker.submit {
            tables { self.queue.withLock { $0.resyncStarted() } }
        }.value
        liveness.reset()
        func sessionRow(_ key: String) -> CheckpointRow? {
            guard let ids = StateBucket.sessionIds(ofKey: key) else { return nil }
            return snapshot.sessions[LifecycleState.key(ids.projectId, ids.sessionId)].map(Self.row(of:))
        }
        func nodeRow(_ key: String) -> CheckpointRow? {
            StateBucket.host(ofKey: key).flatMap { snapshot.nodes[$0] }.map(Self.row(of:))
        }
        let sessions = try await differences(in: buckets.sessions, table: LifecycleState.sessionsTable, row: sessionRow) {
            snapshot.sessions.values.lazy.map { StateBucket.sessionKey(projectId: $0.projectId, sessionId: $0.sessionId) }
        }
        let nodes = try await differences(in: buckets.nodes, table: LifecycleState.nodesTable, row: nodeRow) {
            snapshot.nodes.values.lazy.map { StateBucket.nodeKey(host: $0.host) }
        }
        // Each row is made from the snapshot as its chunk is written: a first resync with 10⁵
        // sessions holds their keys, not 10⁵ values.
        var start = 0
        while start < sessions.puts.count {
            let chunk = sessions.puts[start..<min(sessions.puts.count, start + Self.writeChunk)]
            start = chunk.endIndex
            try await write(chunk.compactMap(sessionRow), to: buckets, liveness: &liveness)
        }
        try await write(nodes.puts.compactMap(nodeRow), to: buckets, liveness: &liveness)
        for key in sessions.deletes {
            try await buckets.sessions.delete(key)
            statisticsLock.withLock { $0.deletes += 1 }
        }
        for key in nodes.deletes {
            try await buckets.nodes.delete(key)
            statisticsLock.withLock { $0.deletes += 1 }
        }
        // Nodes whose values were equal: their `connected` is watched from now on as well.
        let now = EventTimestamp.now()
        for record in snapshot.nodes.values where liveness.nodes[record.host] == nil {
            let row = Self.row(of: record)
            liveness.wrote(row, record: record, connected: record.isConnected(at: now, missedHealthChecks: missedHealthChecks, watchingSince: watchingSince))
        }
        queue.withLock { $0.resyncFinished() }
        statisticsLock.withLock { $0.resyncs += 1 }
    }

    /// Reads a bucket's values and tells which keys to put (missing or different from the
    /// table) and which to delete (no row has them). `row` finds the row of a key in the
    /// snapshot; `allKeys` lists the keys of every row (`nil` for one too long for a key).
    private func differences(
        in bucket: KeyValue, table: String, row: (String) -> CheckpointRow?, allKeys: () -> some Sequence<String?>
    ) async throws -> (puts: [String], deletes: [String]) {
        var puts: [String] = []
        var deletes: [String] = []
        var seen = Set<String>()
        let now = EventTimestamp.now()
        var options = KeyValueWatchOptions()
        options.ignoreDeletes = true
        let watcher = try await bucket.watch([">"], options: options)
        defer { watcher.stop() }
        watching: for try await update in watcher {
            switch update {
            case .initialValuesDone:
                break watching
            case .entry(let stored):
                guard let expected = row(stored.key) else {
                    deletes.append(stored.key)
                    continue
                }
                seen.insert(stored.key)
                guard let entry = try entry(for: expected, now: now), let value = entry.value else { continue }
                if !Self.same(value, stored.value, table: table) { puts.append(stored.key) }
            }
        }
        var skipped = 0
        for key in allKeys() {
            guard let key else {
                skipped += 1
                continue
            }
            if !seen.contains(key) { puts.append(key) }
        }
        noteSkipped(skipped)
        return (puts, deletes)
    }

    /// Whether a bucket already holds `value`: the same bytes, or for a node the same row but
    /// for `seconds_since_last_seen`, which changes with every instant.
    static func same(_ value: [UInt8], _ stored: [UInt8], table: String) -> Bool {
        if value == stored { return true }
        guard table == LifecycleState.nodesTable,
            case .object(var mine)? = try? JSONValue(parsing: value), case .object(var theirs)? = try? JSONValue(parsing: stored)
        else { return false }
        mine["seconds_since_last_seen"] = nil
        theirs["seconds_since_last_seen"] = nil
        return mine == theirs
    }

    static func row(of record: SessionRecord) -> CheckpointRow {
        CheckpointRow(
            table: LifecycleState.sessionsTable, key: LifecycleState.key(record.projectId, record.sessionId),
            value: LifecycleState.value(of: record), state: LifecycleState.state(of: record))
    }

    static func row(of record: NodeRecord) -> CheckpointRow {
        CheckpointRow(table: LifecycleState.nodesTable, key: record.host, value: LifecycleState.value(of: record), state: LifecycleState.state(of: record))
    }

    // MARK: - Episodes

    private func noteSkipped(_ count: Int) {
        guard count > 0 else { return }
        statisticsLock.withLock { $0.skippedRows += UInt64(count) }
        let first = episodes.withLock { episodes -> Bool in
            defer { episodes.skippedLogged = true }
            return !episodes.skippedLogged
        }
        if first {
            log("coordinator: rows whose key would be longer than \(StateBucket.maximumKeyBytes) bytes (a session id that long) are not kept in the state buckets; ennio.query.sessions has them. Counted as skippedRows.")
        }
    }

    private func noteFailure(_ error: any Error) {
        statisticsLock.withLock {
            $0.failures += 1
            $0.failing = true
        }
        if episodes.withLock({ $0.writing.failed() }) {
            log("coordinator: could not write the state buckets \(StateBucket.sessions) and \(StateBucket.nodes) (\(LogText(error))); storing events goes on, and the buckets are compared with the tables again when writing works. Counted as failures; logged again when it works.")
        }
    }

    private func noteWorks() {
        let failed = episodes.withLock { $0.writing.worked() }
        statisticsLock.withLock { $0.failing = false }
        if let failed { log("coordinator: writing the state buckets works again, after \(failed) failed attempts") }
    }
}

/// Places where tests stop the state buckets' writer.
struct StateBucketHooks: Sendable {
    /// Runs before the writer takes what waits, every time.
    var beforeWriting: (@Sendable () async -> Void)?
}
