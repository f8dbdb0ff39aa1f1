import EnnioEvents

/// The changed session and node rows on their way from the store thread to the state buckets'
/// writer, as a pure state machine: rows and outcomes in, what to do out; no NATS, no clock.
///
/// Rows are coalesced per key: a row changed by many batches before the writer comes back is
/// written once, with its latest value, so the writes follow what the writer can do and not
/// the rate of events. At most ``limit`` rows wait. Past that the rows waiting are dropped and
/// the writer compares the buckets with the whole tables instead (a *resync*), which is also
/// what it does first and after a failed write: memory stays bounded, ingest never waits, and
/// the buckets still converge to the tables.
struct StateBucketQueue: Sendable {
    /// A row's place: its table and its key there.
    struct Key: Sendable, Hashable {
        var table: String
        var key: String
    }

    /// The rows waiting, the latest of each key.
    private(set) var pending: [Key: CheckpointRow] = [:]
    /// Rows waiting at most.
    let limit: Int
    /// The buckets must be compared with the whole tables (at the start, after a failed write,
    /// after an overflow); rows committed meanwhile need not wait, the resync reads them.
    private(set) var needsResync = true
    /// An overflow was reported and no resync has finished since.
    private(set) var overflowing = false

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// What the store thread does after handing rows over.
    enum CommitAction: Sendable, Hashable {
        case none
        /// Wake the writer: there is work.
        case wakeWriter
        /// Wake the writer, and count that `dropped` rows were dropped for a resync; log it
        /// when it is the first overflow since a resync finished.
        case wakeWriterAfterOverflow(dropped: Int, firstOfEpisode: Bool)
    }

    /// A batch committed these rows (any table: only sessions and nodes are kept).
    mutating func rowsCommitted(_ rows: [CheckpointRow]) -> CommitAction {
        guard !needsResync else { return .none }
        var added = false
        for row in rows where row.table == LifecycleState.sessionsTable || row.table == LifecycleState.nodesTable {
            pending[Key(table: row.table, key: row.key)] = row
            added = true
            if pending.count > limit {
                // The rest of the batch is in the resync's snapshot too.
                let dropped = pending.count
                pending = [:]
                needsResync = true
                let first = !overflowing
                overflowing = true
                return .wakeWriterAfterOverflow(dropped: dropped, firstOfEpisode: first)
            }
        }
        return added ? .wakeWriter : .none
    }

    /// What the writer does next.
    enum Work: Sendable, Hashable {
        /// Nothing waits: wait to be woken.
        case idle
        /// Compare the buckets with the tables: take a snapshot of the tables and call
        /// ``resyncStarted()`` at the same instant, between two commits.
        case resync
        /// Write these rows.
        case write([CheckpointRow])
    }

    /// Takes what waits.
    mutating func take() -> Work {
        if needsResync { return .resync }
        guard !pending.isEmpty else { return .idle }
        defer { pending = [:] }
        return .write(Array(pending.values))
    }

    /// The writer took a snapshot of the tables: what waited is in it.
    mutating func resyncStarted() {
        pending = [:]
        needsResync = false
    }

    /// A resync wrote everything: an overflow episode is over.
    mutating func resyncFinished() {
        overflowing = false
    }

    /// A write failed: the buckets may hold anything of what was being written, so compare
    /// them with the tables again (rows waiting now are in the next snapshot).
    mutating func writeFailed() {
        pending = [:]
        needsResync = true
    }
}

/// What the writer last wrote of each node: a node's `connected` changes with time alone (its
/// health checks stop), so the writer looks again at every tick and writes the nodes whose
/// `connected` is no longer what the bucket says.
struct NodeLiveness: Sendable {
    struct Written: Sendable, Hashable {
        var row: CheckpointRow
        var record: NodeRecord
        var connected: Bool
    }

    private(set) var nodes: [String: Written] = [:]

    mutating func wrote(_ row: CheckpointRow, record: NodeRecord, connected: Bool) {
        nodes[row.key] = Written(row: row, record: record, connected: connected)
    }

    mutating func removed(_ host: String) {
        nodes[host] = nil
    }

    mutating func reset() {
        nodes = [:]
    }

    /// The rows of the nodes whose `connected` at `now` differs from the one written.
    func due(now: EventTimestamp, missedHealthChecks: Int, watchingSince: EventTimestamp) -> [CheckpointRow] {
        nodes.values.filter {
            $0.record.isConnected(at: now, missedHealthChecks: missedHealthChecks, watchingSince: watchingSince) != $0.connected
        }.map(\.row)
    }
}
