import EnnioSync
import CSQLite
public import EnnioEvents
import Synchronization

/// Every event the coordinator received, one row per event, in SQLite.
///
/// An event is identified by its id together with its timestamp: a redelivery, a retry or a
/// replay of an event carries both unchanged and is stored once; two events that share an id
/// but not an instant are both kept (see ``schemaVersion`` for why).
///
/// Thread-safe: writes hold a lock around the writing connection; reads, on a database file,
/// use a second connection with a lock of its own, and see the last commit without waiting for
/// a transaction in progress (WAL). Every call blocks for SQLite's work: call it from a thread
/// of your own, not from the cooperative pool (the coordinator has a store thread and a query
/// thread). An event's row keeps its JSON exactly as `EventCodec.encode` wrote it, plus the
/// columns the history queries filter and sort on, and the order it was stored in (`seq`).
public final class EventStore: Sendable {
    /// The schema this code writes, kept in `PRAGMA user_version`.
    ///
    /// - Version 2 dropped the indexes on `event_type` and `category` that version 1 had:
    ///   every index costs each insert a B-tree update, and those filters are served well
    ///   enough by walking the events in time order (since version 3, the key), since a page
    ///   of history is ordered by time anyway.
    /// - Version 3 makes `(timestamp_ns, id)` the unique key, in place of the primary key on
    ///   `id` and the index on `timestamp_ns`. Ids are random (version 4 UUIDs), so a unique
    ///   index on them alone puts every insert on a random page: once that index outgrows the
    ///   page cache, each event costs a page read and a page written to the WAL, and ingest
    ///   fell with the size of the history (measured, the same SQL in C: 176k rows/s into an
    ///   empty table, 55k/s while it grew to a million; with this key and 16 KiB pages, 285k
    ///   and 210k). Timestamps are close to "now", so the new key appends. The same key orders
    ///   history pages.
    /// - Version 4 numbers the events in the order they were stored (`seq`, an `INTEGER
    ///   PRIMARY KEY`, so that `VACUUM` keeps it), ends the project and session indexes with
    ///   the id (a page of one project or session continues after a key, `(timestamp_ns, id)`,
    ///   straight from the index), and adds the checkpointed state beside the history:
    ///   `checkpoint_rows` (the reducers' tables: sessions, nodes, …) and `checkpoints` (per
    ///   reducer, the format version and the last event it reflects), both written in the same
    ///   transaction as each batch of events, so that a restart reads them instead of the
    ///   history.
    /// - Version 5 drops the partial index `events_families` (the rollout and run events, by
    ///   `seq`), through which version 4 replayed those reducers at every start: they are
    ///   checkpointed like the others now, and no other read needs it (each index costs every
    ///   insert of its events a B-tree update).
    static let schemaVersion: Int64 = 5

    /// The page size of new databases (SQLite's default is 4 KiB): fewer, larger pages for
    /// the indexes that every insert updates (measured: about 1.3x the insert rate). Existing
    /// databases keep theirs.
    static let pageSize = 16384

    /// The WAL size, in bytes, at which a commit copies it back into the database.
    static let checkpointBytes: Int64 = 32 * 1024 * 1024

    static let columns = "id, event_type, category, priority, session_id, project_id, timestamp_ns, subject, json, stored_at_ns"

    static func createEventsTable(named name: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS \(name) (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            category TEXT NOT NULL,
            priority INTEGER NOT NULL,
            session_id TEXT NOT NULL,
            project_id TEXT NOT NULL,
            timestamp_ns INTEGER NOT NULL,
            subject TEXT NOT NULL,
            json TEXT NOT NULL,
            stored_at_ns INTEGER NOT NULL
        );
        """
    }

    static let indexes = """
        CREATE UNIQUE INDEX IF NOT EXISTS events_key ON events (timestamp_ns, id);
        CREATE INDEX IF NOT EXISTS events_project ON events (project_id, timestamp_ns, id);
        CREATE INDEX IF NOT EXISTS events_session ON events (session_id, timestamp_ns, id);
        """

    /// The reducers' tables and their checkpoints (see ``CheckpointedReducer``).
    static let checkpointTables = """
        CREATE TABLE IF NOT EXISTS checkpoint_rows (
            table_name TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (table_name, key)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS checkpoints (
            reducer TEXT PRIMARY KEY NOT NULL,
            version INTEGER NOT NULL,
            applied_seq INTEGER NOT NULL
        ) WITHOUT ROWID;
        """

    static let schema = createEventsTable(named: "events") + "\n" + indexes + "\n" + checkpointTables

    /// From versions 1 to 3: the rows move to a table with `seq`, numbered in the order they
    /// were stored (SQLite cannot add a primary key in place); the old table's indexes go with
    /// it. Rows that version 2 kept apart (distinct ids) stay apart under the key of version 3.
    /// No checkpoint exists yet: the coordinator rebuilds one from the history once.
    static let migrateToVersion4 = createEventsTable(named: "events_v4") + """

        INSERT INTO events_v4 (seq, \(columns)) SELECT rowid, \(columns) FROM events ORDER BY rowid;
        DROP TABLE events;
        ALTER TABLE events_v4 RENAME TO events;
        """ + "\n" + indexes + "\n" + checkpointTables

    /// From version 4: the rollout and run reducers' partial index goes (their checkpoint has
    /// no rows yet: the coordinator rebuilds it from the history once, and says so).
    static let migrateToVersion5 = "DROP INDEX IF EXISTS events_families;"

    static let insertSQL = "INSERT OR IGNORE INTO events (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    /// The columns a read returns, in ``StoredRow``'s order.
    static let rowColumns = "seq, timestamp_ns, id, subject, json, stored_at_ns"

    /// The connection that writes (and, for an in-memory database, reads); `nil` once closed.
    private let database: Locked<SQLiteDatabase?>
    /// A second connection for reads, on a database file: with WAL, its queries see the last
    /// commit and neither wait for a transaction in progress nor hold it up. `nil` for an
    /// in-memory database (which another connection cannot open), whose reads share the writer.
    private let reader: Locked<SQLiteDatabase?>
    /// Whether reads have a connection of their own (a database file), so that they never wait
    /// for a write.
    public let readsConcurrently: Bool

    /// Opens or creates the database at `path` (":memory:" for a private in-memory one);
    /// creates the schema if missing, or brings an older one to the current version; WAL
    /// journal (checkpointed every 32 MiB), synchronous=NORMAL, busy_timeout 5000, a 16 MiB
    /// page cache, 16 KiB pages in a new database. A database file gets a second connection
    /// for reads (see ``query(_:)``).
    public init(path: String) throws {
        let connection = try SQLiteDatabase(path: path)
        var reading: SQLiteDatabase?
        do {
            try connection.setBusyTimeout(milliseconds: 5000)
            // Applies only to a database that has no table yet, and only before WAL is on.
            try connection.exec("PRAGMA page_size = \(Self.pageSize)")
            // Returns the resulting mode as a row; an in-memory database stays "memory".
            try connection.exec("PRAGMA journal_mode = WAL")
            try connection.exec("PRAGMA synchronous = NORMAL")
            // A 16 MiB page cache (SQLite's default is 2 MiB): the indexes of a growing history
            // stay in memory while batches are inserted.
            try connection.exec("PRAGMA cache_size = -16384")
            // Checkpoint the WAL every 32 MiB rather than SQLite's 1000 pages: the hot index
            // pages a stream of inserts keeps rewriting are copied back, and the file synced,
            // less often (measured: about 1.2x the insert rate).
            let pageSize = try connection.rows("PRAGMA page_size") { $0.int64(at: 0) }.first ?? 4096
            try connection.exec("PRAGMA wal_autocheckpoint = \(Self.checkpointBytes / max(pageSize, 512))")
            try connection.transaction {
                let version = try connection.rows("PRAGMA user_version") { $0.int64(at: 0) }.first ?? 0
                guard version <= Self.schemaVersion else {
                    throw SQLiteError(
                        code: SQLITE_ERROR,
                        message: "the database \(path.debugDescription) has schema version \(version); this program knows versions up to \(Self.schemaVersion)"
                    )
                }
                if version == 0 {
                    try connection.exec(Self.schema)
                } else if version < 4 {
                    try connection.exec(Self.migrateToVersion4)
                } else if version < Self.schemaVersion {
                    try connection.exec(Self.migrateToVersion5)
                }
                if version < Self.schemaVersion {
                    try connection.exec("PRAGMA user_version = \(Self.schemaVersion)")
                }
            }
            if !Self.isInMemory(path) {
                let second = try SQLiteDatabase(path: path)
                reading = second
                try second.setBusyTimeout(milliseconds: 5000)
                try second.exec("PRAGMA query_only = 1")
                try second.exec("PRAGMA cache_size = -8192")
            }
        } catch {
            reading?.close()
            connection.close()
            throw error
        }
        database = Locked(connection)
        readsConcurrently = reading != nil
        reader = Locked(reading)
    }

    static func isInMemory(_ path: String) -> Bool {
        path == ":memory:" || path.isEmpty || path.contains("mode=memory")
    }

    /// Closes the database. Later calls throw an `SQLiteError` (`SQLITE_MISUSE`). Idempotent.
    public func close() {
        reader.withLock { connection in
            connection?.close()
            connection = nil
        }
        database.withLock { connection in
            connection?.close()
            connection = nil
        }
    }

    /// Runs `body` with the writing connection, holding its lock.
    func withDatabase<T: Sendable>(_ body: (SQLiteDatabase) throws -> T) throws -> T {
        try database.withLock { connection throws -> T in
            guard let connection else { throw SQLiteError.closed("event store") }
            return try body(connection)
        }
    }

    /// Runs `body` with the reading connection (the writing one for an in-memory database),
    /// holding its lock: on a database file, never behind a transaction in progress.
    func withReader<T: Sendable>(_ body: (SQLiteDatabase) throws -> T) throws -> T {
        guard readsConcurrently else { return try withDatabase(body) }
        return try reader.withLock { connection throws -> T in
            guard let connection else { throw SQLiteError.closed("event store") }
            return try body(connection)
        }
    }

    // MARK: - Writing

    /// Stores the event; returns false (and stores nothing) if an event with the same id and
    /// timestamp is already stored.
    @discardableResult
    public func insert(_ event: Event, subject: String) throws -> Bool {
        try insert([(event, subject)])[0]
    }

    /// Stores many events in one transaction; returns, per event, whether it was new. Either
    /// all of them are stored or, on an error, none.
    @discardableResult
    public func insert(_ batch: [(event: Event, subject: String)]) throws -> [Bool] {
        try insert(Rows(batch))
    }

    /// Stores prepared rows in one transaction; returns, per row, whether its event was new.
    /// Either all of them are stored or, on an error, none. Only SQLite's work is left to do
    /// here: the JSON was encoded when the rows were made, on the caller's thread.
    ///
    /// This stores history alone; the coordinator stores through ``CheckpointedState``, which
    /// keeps its tables in the same transaction.
    @discardableResult
    public func insert(_ rows: Rows) throws -> [Bool] {
        guard rows.count > 0 else { return [] }
        let storedAt = EventTimestamp.now()
        return try withDatabase { connection in
            try connection.transaction { try insert(rows, storedAt: storedAt, in: connection).map { $0 != nil } }
        }
    }

    /// Inserts the rows in the transaction open on `connection`; returns, per row, the new
    /// event's `seq`, or `nil` for an event already stored.
    func insert(_ rows: Rows, storedAt: EventTimestamp, in connection: SQLiteDatabase) throws -> [Int64?] {
        let statement = try connection.prepare(Self.insertSQL)
        // The bindings point into `rows`: let go of them before returning.
        defer {
            statement.reset()
            statement.clearBindings()
        }
        var inserted: [Int64?] = []
        inserted.reserveCapacity(rows.count)
        try rows.text.withUnsafeBufferPointer { text in
            for row in 0..<rows.count {
                try Self.insert(row: row, of: rows, text: text, storedAt: storedAt.nanosecondsSinceEpoch, with: statement)
                inserted.append(connection.changes == 1 ? connection.lastInsertRowID : nil)
            }
        }
        return inserted
    }

    /// Events made ready to store: every text column of every row encoded once, one after the
    /// other in a single buffer, so that binding copies nothing and allocates nothing. Make
    /// them where the events are decoded; `insert(_:)` then does only SQLite's work.
    public struct Rows: Sendable {
        /// The text columns of a row, in this order: json, id, event_type, category,
        /// session_id, project_id, subject.
        static let textColumns = 7
        fileprivate var text: [UInt8] = []
        /// Where each text column ends in `text`, `textColumns` per row.
        fileprivate var ends: [Int] = []
        fileprivate var priorities: [Int64] = []
        fileprivate var timestamps: [Int64] = []

        public var count: Int { priorities.count }

        public init(_ batch: [(event: Event, subject: String)]) {
            text.reserveCapacity(batch.count * 512)
            ends.reserveCapacity(batch.count * Self.textColumns)
            priorities.reserveCapacity(batch.count)
            timestamps.reserveCapacity(batch.count)
            for (event, subject) in batch {
                EventCodec.encode(event, into: &text)
                ends.append(text.count)
                append(event.id)
                append(event.eventType.rawValue)
                append(event.eventType.category.rawValue)
                append(event.sessionId)
                append(event.projectId)
                append(subject)
                priorities.append(priorityRank(event.priority))
                timestamps.append(event.timestamp.nanosecondsSinceEpoch)
            }
        }

        private mutating func append(_ column: String) {
            text.append(contentsOf: column.utf8)
            ends.append(text.count)
        }
    }

    /// Binds row `row` of `rows` and runs the INSERT.
    private static func insert(row: Int, of rows: Rows, text: UnsafeBufferPointer<UInt8>, storedAt: Int64, with statement: SQLiteStatement) throws {
        let first = row * Rows.textColumns
        func column(_ number: Int) -> UnsafeBufferPointer<UInt8> {
            let index = first + number
            return UnsafeBufferPointer(rebasing: text[(index == 0 ? 0 : rows.ends[index - 1])..<rows.ends[index]])
        }
        try statement.bindText(utf8: column(1), at: 1, copying: false)
        try statement.bindText(utf8: column(2), at: 2, copying: false)
        try statement.bindText(utf8: column(3), at: 3, copying: false)
        try statement.bind(rows.priorities[row], at: 4)
        try statement.bindText(utf8: column(4), at: 5, copying: false)
        try statement.bindText(utf8: column(5), at: 6, copying: false)
        try statement.bind(rows.timestamps[row], at: 7)
        try statement.bindText(utf8: column(6), at: 8, copying: false)
        try statement.bindText(utf8: column(0), at: 9, copying: false)
        try statement.bind(storedAt, at: 10)
        // SQLite reads the bound bytes during the step, while `text` is still valid.
        while try statement.step() {}
        statement.reset()
    }

    /// The priority column: 0 info, 1 action, 2 urgent, 3 critical.
    static func priorityRank(_ priority: EventPriority) -> Int64 {
        switch priority {
        case .info: 0
        case .action: 1
        case .urgent: 2
        case .critical: 3
        }
    }

    // MARK: - Reading

    /// Whether an event with this id is stored, at any instant. Walks the table (ids alone are
    /// not indexed, see ``schemaVersion``): for diagnostics and tests, not for every event.
    public func contains(id: String) throws -> Bool {
        try withReader { connection in
            try !connection.rows("SELECT 1 FROM events WHERE id = ? LIMIT 1", binding: [.text(id)]) { _ in true }.isEmpty
        }
    }

    /// The number of stored events. Counts them (a walk of the smallest index): for
    /// diagnostics and tests, not for every query.
    public func count() throws -> Int {
        try withReader { connection in
            try connection.rows("SELECT count(*) FROM events") { $0.int(at: 0) }.first ?? 0
        }
    }

    /// The number of the last event stored (``StoredEvent/seq``), 0 when there is none: as many
    /// as were ever stored (unless retention deleted the newest). Read from the end of the table's B-tree,
    /// so it costs the same whatever the size of the history (unlike ``count()``).
    public func lastSequence() throws -> Int64 {
        try withReader { try lastSequence(in: $0) }
    }

    /// ``lastSequence()`` on `connection`, inside whatever transaction it has open.
    func lastSequence(in connection: SQLiteDatabase) throws -> Int64 {
        try connection.rows("SELECT max(seq) FROM events") { $0.int64(at: 0) }.first ?? 0
    }

    /// One page of the stored events that match every filter set in `query`, in its order
    /// (by timestamp, then id), starting after `query.after`: at most `query.limit` events and,
    /// past the first, at most `query.maxBytes` bytes of JSON. Read on the store's reading
    /// connection, one row at a time: the page is all the memory it takes.
    public func query(_ query: HistoryQuery) throws -> HistoryPage {
        try query.validate()
        let budget = query.maxBytes ?? Int.max
        var events: [Event] = []
        var subjects: [String] = []
        var bytes = 0
        var full = false
        var next: HistoryCursor?
        try withReader { connection in
            try walk(query, in: connection) { row in
                let size = row.jsonByteCount
                guard !full, events.isEmpty || bytes + size <= budget else {
                    // Another event follows what fits: the page ends before it.
                    next = events.last.map(HistoryCursor.init(after:))
                    return false
                }
                events.append(try row.event())
                subjects.append(row.subject)
                bytes += size
                full = events.count == query.limit
                return true
            }
        }
        return HistoryPage(events: events, subjects: subjects, next: next)
    }

    /// Steps through the events `query` selects, in its order, one row at a time, until `body`
    /// returns false; at most `query.limit + 1` rows (one more than a page, to learn whether
    /// another follows). A cursor with a part offset starts with the event it names.
    func walk(_ query: HistoryQuery, in connection: SQLiteDatabase, _ body: (StoredRow) throws -> Bool) throws {
        let (sql, values) = Self.select(for: query)
        try connection.withStatement(sql, binding: values) { statement in
            let row = StoredRow(statement: statement)
            while try statement.step() {
                guard try body(row) else { return }
            }
        }
    }

    /// Steps through the events stored after `seq`, in the order they were stored, at most
    /// `limit` (of `categories` only, if given: the others are skipped by SQLite, never decoded),
    /// until `body` returns false. Returns the `seq` of the last row read (`seq` if none).
    @discardableResult
    func walk(
        afterSequence seq: Int64, limit: Int, categories: Set<EventCategory>? = nil, in connection: SQLiteDatabase,
        _ body: (StoredRow) throws -> Bool
    ) throws -> Int64 {
        var last = seq
        var sql = "SELECT \(Self.rowColumns) FROM events WHERE seq > ?"
        var values: [SQLiteValue] = [.integer(seq)]
        if let categories {
            let names = categories.map(\.rawValue).sorted()
            sql += names.isEmpty ? " AND 0" : " AND category IN (\(names.map { _ in "?" }.joined(separator: ", ")))"
            values += names.map { .text($0) }
        }
        values.append(.integer(Int64(limit)))
        try connection.withStatement(sql + " ORDER BY seq LIMIT ?", binding: values) { statement in
            let row = StoredRow(statement: statement)
            while try statement.step() {
                last = row.seq
                guard try body(row) else { return }
            }
        }
        return last
    }

    /// The SELECT for a query, with its parameters: one more row than the limit, to learn
    /// whether another page follows.
    static func select(for query: HistoryQuery) -> (sql: String, values: [SQLiteValue]) {
        var (conditions, values) = Self.conditions(for: query)
        let ascending = query.order == .oldestFirst
        if let after = query.after {
            // A row value: SQLite walks the key's index from there (for one project or session,
            // that index, which ends with the same two columns).
            let comparison = after.partOffset != nil ? (ascending ? ">=" : "<=") : (ascending ? ">" : "<")
            conditions.append("(timestamp_ns, id) \(comparison) (?, ?)")
            values.append(.integer(after.timestampNanoseconds))
            values.append(.text(after.id))
        }
        var sql = "SELECT \(rowColumns) FROM events"
        if !conditions.isEmpty {
            sql += " WHERE " + conditions.joined(separator: " AND ")
        }
        sql += ascending ? " ORDER BY timestamp_ns ASC, id ASC LIMIT ?" : " ORDER BY timestamp_ns DESC, id DESC LIMIT ?"
        values.append(.integer(Int64(query.limit) + 1))
        return (sql, values)
    }

    /// The WHERE conditions of a query's filters (not its cursor or page), with their parameters.
    static func conditions(for query: HistoryQuery) -> (conditions: [String], values: [SQLiteValue]) {
        var conditions: [String] = []
        var values: [SQLiteValue] = []
        if let projectId = query.projectId {
            conditions.append("project_id = ?")
            values.append(.text(projectId))
        }
        if let sessionId = query.sessionId {
            conditions.append("session_id = ?")
            values.append(.text(sessionId))
        }
        if let eventType = query.eventType {
            conditions.append("event_type = ?")
            values.append(.text(eventType.rawValue))
        }
        if let category = query.category {
            conditions.append("category = ?")
            values.append(.text(category.rawValue))
        }
        if let priority = query.minimumPriority {
            conditions.append("priority >= ?")
            values.append(.integer(priorityRank(priority)))
        }
        if let since = query.since {
            conditions.append("timestamp_ns >= ?")
            values.append(.integer(since.nanosecondsSinceEpoch))
        }
        if let until = query.until {
            conditions.append("timestamp_ns < ?")
            values.append(.integer(until.nanosecondsSinceEpoch))
        }
        return (conditions, values)
    }

    // MARK: - Checkpointed tables

    /// The checkpoint of `reducer`: its format version and the `seq` of the last event its
    /// rows reflect; `nil` if it has none.
    func checkpoint(of reducer: String, in connection: SQLiteDatabase) throws -> (version: Int, appliedSequence: Int64)? {
        try connection.rows("SELECT version, applied_seq FROM checkpoints WHERE reducer = ?", binding: [.text(reducer)]) {
            ($0.int(at: 0), $0.int64(at: 1))
        }.first
    }

    /// Records the checkpoint of `reducer` (in the transaction open on `connection`).
    func saveCheckpoint(of reducer: String, version: Int, appliedSequence: Int64, in connection: SQLiteDatabase) throws {
        try connection.run(
            """
            INSERT INTO checkpoints (reducer, version, applied_seq) VALUES (?, ?, ?)
            ON CONFLICT (reducer) DO UPDATE SET version = excluded.version, applied_seq = excluded.applied_seq
            """,
            binding: [.text(reducer), .integer(Int64(version)), .integer(appliedSequence)])
    }

    /// Writes (or, for a row without a value, deletes) checkpoint rows, in the transaction open
    /// on `connection`.
    func write(_ rows: [CheckpointRow], in connection: SQLiteDatabase) throws {
        guard !rows.isEmpty else { return }
        let upsert = try connection.prepare(
            """
            INSERT INTO checkpoint_rows (table_name, key, value, state) VALUES (?, ?, ?, ?)
            ON CONFLICT (table_name, key) DO UPDATE SET value = excluded.value, state = excluded.state
            """)
        defer {
            upsert.reset()
            upsert.clearBindings()
        }
        for row in rows {
            guard let value = row.value else {
                try connection.run("DELETE FROM checkpoint_rows WHERE table_name = ? AND key = ?", binding: [.text(row.table), .text(row.key)])
                continue
            }
            try upsert.bind(row.table, at: 1)
            try upsert.bind(row.key, at: 2)
            try value.withUnsafeBufferPointer { try upsert.bindText(utf8: $0, at: 3, copying: false) }
            try row.state.withUnsafeBufferPointer { try upsert.bindText(utf8: $0, at: 4, copying: false) }
            while try upsert.step() {}
            upsert.reset()
        }
    }

    /// Deletes every row of these tables and the checkpoint of `reducer` (before a rebuild).
    func clear(reducer: String, tables: [String], in connection: SQLiteDatabase) throws {
        for table in tables {
            try connection.run("DELETE FROM checkpoint_rows WHERE table_name = ?", binding: [.text(table)])
        }
        try connection.run("DELETE FROM checkpoints WHERE reducer = ?", binding: [.text(reducer)])
    }

    /// Steps through the rows of `table` in key order: after `key` (from the start if `nil`),
    /// those whose key starts with `prefix` (if given), at most `limit`, until `body` returns false.
    func walkRows(
        of table: String, after key: String? = nil, prefix: String? = nil, limit: Int = Int(Int32.max),
        in connection: SQLiteDatabase, _ body: (CheckpointRowView) throws -> Bool
    ) throws {
        var sql = "SELECT key, value, state FROM checkpoint_rows WHERE table_name = ?"
        var values: [SQLiteValue] = [.text(table)]
        if let key {
            sql += " AND key > ?"
            values.append(.text(key))
        }
        if let prefix, !prefix.isEmpty {
            // Keys that start with the prefix: from it (inclusive) to the prefix with its last
            // byte raised (exclusive), a range of the primary key. SQLite compares text bytewise.
            sql += " AND key >= ? AND key < ?"
            values.append(.text(prefix))
            values.append(.text(Self.prefixEnd(prefix)))
        }
        sql += " ORDER BY key LIMIT ?"
        values.append(.integer(Int64(limit)))
        try connection.withStatement(sql, binding: values) { statement in
            let row = CheckpointRowView(statement: statement)
            while try statement.step() {
                guard try body(row) else { return }
            }
        }
    }

    /// The smallest text greater than every text starting with `prefix`, when the prefix ends
    /// in an ASCII character (as the coordinator's keys do, whose prefixes end with a separator).
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last, last >= 0x7F { bytes.removeLast() }
        guard let last = bytes.popLast() else { return "\u{10FFFF}" }
        bytes.append(last + 1)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One row of the history during a walk: valid only inside the walk's callback.
struct StoredRow {
    let statement: SQLiteStatement

    /// The order the event was stored in.
    var seq: Int64 { statement.int64(at: 0) }
    var timestampNanoseconds: Int64 { statement.int64(at: 1) }
    var id: String { statement.string(at: 2) ?? "" }
    var subject: String { statement.string(at: 3) ?? "" }
    /// When the coordinator stored it, on its clock.
    var storedAt: EventTimestamp { EventTimestamp(nanosecondsSinceEpoch: statement.int64(at: 5)) }
    var cursor: HistoryCursor { HistoryCursor(timestampNanoseconds: timestampNanoseconds, id: id) }

    var jsonByteCount: Int { statement.withText(at: 4) { $0.count } }

    /// The event's JSON as stored (what `EventCodec.encode` wrote), valid during the call.
    func withJSON<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        try statement.withText(at: 4, body)
    }

    func event() throws -> Event {
        try withJSON { try EventCodec.decode($0) }
    }

    func stored() throws -> StoredEvent {
        StoredEvent(event: try event(), subject: subject, seq: seq, storedAt: storedAt)
    }
}

/// One checkpoint row during a walk: valid only inside the walk's callback.
struct CheckpointRowView {
    let statement: SQLiteStatement

    var key: String { statement.string(at: 0) ?? "" }
    /// The row as queries return it, JSON, valid during the call.
    func withValue<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        try statement.withText(at: 1, body)
    }
    /// The whole row, copied, as a row of `table`.
    func row(of table: String) -> CheckpointRow {
        CheckpointRow(
            table: table, key: key, value: statement.withText(at: 1) { Array($0) }, state: statement.withText(at: 2) { Array($0) })
    }
}
