import CSQLite

/// One connection to an SQLite database.
///
/// Prepared statements are cached by their SQL text, so the few statements a program runs over
/// and over are compiled once. Everything is finalized and the connection closed by `close()`
/// or on deinitialisation.
///
/// Not thread-safe (the connection is opened with `SQLITE_OPEN_NOMUTEX`): the owner serialises
/// access, as `EventStore` does with a mutex.
final class SQLiteDatabase {
    let path: String
    private var handle: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens (creating if missing) the database at `path`; ":memory:" opens a private in-memory
    /// database.
    init(
        path: String,
        flags: Int32 = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
    ) throws(SQLiteError) {
        self.path = path
        var connection: OpaquePointer?
        let code = sqlite3_open_v2(path, &connection, flags, nil)
        guard code == SQLITE_OK, let connection else {
            // A handle is returned even on most failures, carrying the message; it must be closed.
            let error = SQLiteError(code: code == SQLITE_OK ? SQLITE_CANTOPEN : code, database: connection)
            sqlite3_close_v2(connection)
            throw SQLiteError(code: error.code, message: "cannot open \(path.debugDescription): \(error.message)")
        }
        handle = connection
    }

    deinit {
        close()
    }

    /// Finalizes every cached statement and closes the connection. Idempotent; later calls
    /// throw `SQLITE_MISUSE`.
    func close() {
        for statement in statements.values {
            statement.finalize()
        }
        statements.removeAll()
        if let handle {
            // `close_v2` defers the close until any statement still alive is finalized.
            sqlite3_close_v2(handle)
            self.handle = nil
        }
    }

    var isOpen: Bool { handle != nil }

    private func live() throws(SQLiteError) -> OpaquePointer {
        guard let handle else { throw SQLiteError.closed("database") }
        return handle
    }

    /// Runs one or more statements separated by semicolons, discarding any rows.
    func exec(_ sql: String) throws(SQLiteError) {
        let database = try live()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(database, sql, nil, nil, &errorMessage)
        defer { sqlite3_free(errorMessage) }
        guard code == SQLITE_OK else {
            if let errorMessage {
                throw SQLiteError(code: code, message: String(cString: errorMessage), sql: sql)
            }
            throw SQLiteError(code: code, database: database, sql: sql)
        }
    }

    /// The statement for `sql`, ready to bind and step: from the cache (reset, bindings cleared)
    /// if it was prepared before, else compiled now and cached when `cache` is true.
    ///
    /// A cached statement is shared: finish with it (or `reset()` it) before preparing the
    /// same SQL again.
    func prepare(_ sql: String, cache: Bool = true) throws(SQLiteError) -> SQLiteStatement {
        let database = try live()
        if cache, let statement = statements[sql] {
            statement.reset()
            statement.clearBindings()
            return statement
        }
        let statement = try SQLiteStatement(database: database, sql: sql, persistent: cache)
        if cache { statements[sql] = statement }
        return statement
    }

    /// Prepares `sql`, binds `values`, hands the statement to `body`, and resets it afterwards
    /// so no read stays open.
    func withStatement<T>(
        _ sql: String,
        binding values: [SQLiteValue] = [],
        _ body: (SQLiteStatement) throws -> T
    ) throws -> T {
        let statement = try prepare(sql)
        defer {
            statement.reset()
            statement.clearBindings()
        }
        try statement.bind(values)
        return try body(statement)
    }

    /// Runs a statement that returns no rows (INSERT, UPDATE, DDL, …); returns the number of
    /// rows it changed.
    @discardableResult
    func run(_ sql: String, binding values: [SQLiteValue] = []) throws -> Int {
        try withStatement(sql, binding: values) { statement in
            while try statement.step() {}
            return changes
        }
    }

    /// The rows of a query, each read by `row`.
    func rows<T>(_ sql: String, binding values: [SQLiteValue] = [], _ row: (SQLiteStatement) throws -> T) throws -> [T] {
        try withStatement(sql, binding: values) { statement in
            var result: [T] = []
            while try statement.step() {
                result.append(try row(statement))
            }
            return result
        }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE (`sqlite3_changes`).
    var changes: Int {
        handle.map { Int(sqlite3_changes($0)) } ?? 0
    }

    var lastInsertRowID: Int64 {
        handle.map { sqlite3_last_insert_rowid($0) } ?? 0
    }

    /// Whether no transaction is open.
    var isAutocommit: Bool {
        handle.map { sqlite3_get_autocommit($0) != 0 } ?? true
    }

    /// How long a statement waits for another connection's lock before failing with
    /// `SQLITE_BUSY`.
    func setBusyTimeout(milliseconds: Int32) throws(SQLiteError) {
        let database = try live()
        let code = sqlite3_busy_timeout(database, milliseconds)
        guard code == SQLITE_OK else { throw SQLiteError(code: code, database: database) }
    }

    // MARK: - Transactions

    private var savepointDepth = 0

    /// Runs `body` in a transaction: `BEGIN IMMEDIATE`, then `COMMIT` if it returns, `ROLLBACK`
    /// if it throws (the error is rethrown). Nested calls use savepoints, so an inner failure
    /// undoes only the inner work.
    @discardableResult
    func transaction<T>(_ body: () throws -> T) throws -> T {
        if !isAutocommit {
            return try savepoint(body)
        }
        try exec("BEGIN IMMEDIATE")
        let result: T
        do {
            result = try body()
        } catch {
            rollback()
            throw error
        }
        do {
            try exec("COMMIT")
        } catch {
            rollback()
            throw error
        }
        return result
    }

    private func savepoint<T>(_ body: () throws -> T) throws -> T {
        savepointDepth += 1
        defer { savepointDepth -= 1 }
        let name = "ennio_savepoint_\(savepointDepth)"
        try exec("SAVEPOINT \(name)")
        do {
            let result = try body()
            try exec("RELEASE \(name)")
            return result
        } catch {
            if !isAutocommit {
                try? exec("ROLLBACK TO \(name)")
                try? exec("RELEASE \(name)")
            }
            throw error
        }
    }

    private func rollback() {
        // Some errors (SQLITE_FULL, SQLITE_IOERR, …) roll the transaction back on their own.
        if !isAutocommit {
            try? exec("ROLLBACK")
        }
    }
}
