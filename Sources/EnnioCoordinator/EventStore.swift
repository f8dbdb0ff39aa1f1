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
/// Thread-safe: every operation holds a mutex around the one connection. An event's row keeps
/// its JSON exactly as `EventCodec.encode` wrote it, plus the columns the history queries
/// filter and sort on.
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
    static let schemaVersion: Int64 = 3

    /// The page size of new databases (SQLite's default is 4 KiB): fewer, larger pages for
    /// the indexes that every insert updates (measured: about 1.3x the insert rate). Existing
    /// databases keep theirs.
    static let pageSize = 16384

    /// The WAL size, in bytes, at which a commit copies it back into the database.
    static let checkpointBytes: Int64 = 32 * 1024 * 1024

    static let columns = "id, event_type, category, priority, session_id, project_id, timestamp_ns, subject, json, stored_at_ns"

    static func createTable(named name: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS \(name) (
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
        CREATE INDEX IF NOT EXISTS events_project ON events (project_id, timestamp_ns);
        CREATE INDEX IF NOT EXISTS events_session ON events (session_id, timestamp_ns);
        """

    static let schema = createTable(named: "events") + "\n" + indexes

    /// From version 1 or 2: the rows move to a table without the primary key on `id` (SQLite
    /// cannot drop a primary key in place), in their order; the old table's indexes go with it.
    /// Rows that version 2 kept apart (distinct ids) stay apart under the new key.
    static let migrateToVersion3 = createTable(named: "events_v3") + """

        INSERT INTO events_v3 (\(columns)) SELECT \(columns) FROM events ORDER BY rowid;
        DROP TABLE events;
        ALTER TABLE events_v3 RENAME TO events;
        """ + "\n" + indexes

    static let insertSQL = "INSERT OR IGNORE INTO events (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    /// The connection; `nil` once closed.
    private let database: Locked<SQLiteDatabase?>

    /// Opens or creates the database at `path` (":memory:" for a private in-memory one);
    /// creates the schema if missing, or brings an older one to the current version; WAL
    /// journal (checkpointed every 32 MiB), synchronous=NORMAL, busy_timeout 5000, a 16 MiB
    /// page cache, 16 KiB pages in a new database.
    public init(path: String) throws {
        let connection = try SQLiteDatabase(path: path)
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
                } else if version < Self.schemaVersion {
                    try connection.exec(Self.migrateToVersion3)
                }
                if version < Self.schemaVersion {
                    try connection.exec("PRAGMA user_version = \(Self.schemaVersion)")
                }
            }
        } catch {
            connection.close()
            throw error
        }
        database = Locked(connection)
    }

    /// Closes the database. Later calls throw an `SQLiteError` (`SQLITE_MISUSE`). Idempotent.
    public func close() {
        database.withLock { connection in
            connection?.close()
            connection = nil
        }
    }

    /// Runs `body` with the open connection, holding the lock.
    func withDatabase<T: Sendable>(_ body: (SQLiteDatabase) throws -> T) throws -> T {
        try database.withLock { connection throws -> T in
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
    @discardableResult
    public func insert(_ rows: Rows) throws -> [Bool] {
        guard rows.count > 0 else { return [] }
        let storedAt = EventTimestamp.now().nanosecondsSinceEpoch
        return try withDatabase { connection in
            try connection.transaction {
                let statement = try connection.prepare(Self.insertSQL)
                // The bindings point into `rows`: let go of them before returning.
                defer {
                    statement.reset()
                    statement.clearBindings()
                }
                var inserted: [Bool] = []
                inserted.reserveCapacity(rows.count)
                try rows.text.withUnsafeBufferPointer { text in
                    for row in 0..<rows.count {
                        try Self.insert(row: row, of: rows, text: text, storedAt: storedAt, with: statement)
                        inserted.append(connection.changes == 1)
                    }
                }
                return inserted
            }
        }
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
        try withDatabase { connection in
            try !connection.rows("SELECT 1 FROM events WHERE id = ? LIMIT 1", binding: [.text(id)]) { _ in true }.isEmpty
        }
    }

    public func count() throws -> Int {
        try withDatabase { connection in
            try connection.rows("SELECT count(*) FROM events") { $0.int(at: 0) }.first ?? 0
        }
    }

    /// One page of the stored events that match every filter set in `query`, ordered by
    /// timestamp, then id.
    public func query(_ query: HistoryQuery) throws -> HistoryPage {
        try query.validate()
        let (sql, values) = Self.select(for: query)
        let rows = try withDatabase { connection in
            try connection.rows(sql, binding: values) { $0.string(at: 0) ?? "" }
        }
        var events = try rows.map { try EventCodec.decode($0) }
        var nextOffset: Int?
        var next: HistoryCursor?
        if events.count > query.limit {
            events.removeLast(events.count - query.limit)
            nextOffset = query.offset + query.limit
            next = events.last.map(HistoryCursor.init(after:))
        }
        return HistoryPage(events: events, nextOffset: nextOffset, next: next)
    }

    /// The SELECT for a query, with its parameters: one more row than the limit, to learn
    /// whether another page follows.
    static func select(for query: HistoryQuery) -> (sql: String, values: [SQLiteValue]) {
        var (conditions, values) = Self.conditions(for: query)
        if let after = query.after {
            // A row value: SQLite walks the key's index from there.
            conditions.append("(timestamp_ns, id) > (?, ?)")
            values.append(.integer(after.timestampNanoseconds))
            values.append(.text(after.id))
        }
        var sql = "SELECT json FROM events"
        if !conditions.isEmpty {
            sql += " WHERE " + conditions.joined(separator: " AND ")
        }
        sql += " ORDER BY timestamp_ns ASC, id ASC LIMIT ? OFFSET ?"
        values.append(.integer(Int64(query.limit) + 1))
        values.append(.integer(Int64(query.offset)))
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
}

/// Which stored events to return, and which page of them. Every filter that is set must match.
public struct HistoryQuery: Sendable, Hashable {
    public static let defaultLimit = 100
    public static let maximumLimit = 1000

    public var projectId: String?
    public var sessionId: String?
    public var eventType: EventType?
    public var category: EventCategory?
    /// Events of this priority or higher.
    public var minimumPriority: EventPriority?
    /// Events at or after this instant (inclusive).
    public var since: EventTimestamp?
    /// Events before this instant (exclusive).
    public var until: EventTimestamp?
    /// Where the page starts: after this event (`nil`: at the start). Unlike an offset, a
    /// cursor costs the same however far into the history it points.
    public var after: HistoryCursor?
    /// Events per page, 1...1000.
    public var limit: Int
    /// Events to skip, 0 or more (after `after`, if both are set).
    public var offset: Int

    public init(
        projectId: String? = nil,
        sessionId: String? = nil,
        eventType: EventType? = nil,
        category: EventCategory? = nil,
        minimumPriority: EventPriority? = nil,
        since: EventTimestamp? = nil,
        until: EventTimestamp? = nil,
        after: HistoryCursor? = nil,
        limit: Int = HistoryQuery.defaultLimit,
        offset: Int = 0
    ) {
        self.projectId = projectId
        self.sessionId = sessionId
        self.eventType = eventType
        self.category = category
        self.minimumPriority = minimumPriority
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
        self.offset = offset
    }

    /// Throws if the limit is not in 1...1000 or the offset is negative.
    public func validate() throws(HistoryQueryError) {
        guard (1...Self.maximumLimit).contains(limit) else {
            throw HistoryQueryError("limit must be between 1 and \(Self.maximumLimit), not \(limit)")
        }
        guard offset >= 0 else {
            throw HistoryQueryError("offset must not be negative, not \(offset)")
        }
    }
}

/// A history query that cannot be run as asked.
public struct HistoryQueryError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// One page of history.
public struct HistoryPage: Sendable, Hashable {
    /// Ordered by timestamp ascending, then id.
    public var events: [Event]
    /// The offset of the next page; `nil` when this was the last.
    public var nextOffset: Int?
    /// Where the next page starts (pass it as ``HistoryQuery/after``); `nil` when this was the last.
    public var next: HistoryCursor?

    public init(events: [Event], nextOffset: Int?, next: HistoryCursor? = nil) {
        self.events = events
        self.nextOffset = nextOffset
        self.next = next
    }
}
