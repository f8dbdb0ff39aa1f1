import CSQLite

/// Tells SQLite to copy bound text before `sqlite3_bind_*` returns (the C macro
/// `SQLITE_TRANSIENT`, which Swift does not import).
nonisolated(unsafe) let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A value to bind to a statement parameter.
enum SQLiteValue: Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case null
}

/// One prepared statement.
///
/// Parameters are numbered from 1, result columns from 0, as in SQLite. The statement is
/// finalized when it is deinitialised or its database is closed, whichever comes first; using
/// it after that throws `SQLITE_MISUSE` rather than touching freed memory.
///
/// Not thread-safe: whoever owns the database serialises access to it and its statements.
final class SQLiteStatement {
    let sql: String
    private var handle: OpaquePointer?

    /// Compiles `sql`, which must be exactly one statement.
    init(database: OpaquePointer, sql: String, persistent: Bool) throws(SQLiteError) {
        self.sql = sql
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sql.withCString { text in
            sqlite3_prepare_v3(database, text, -1, flags, &statement, &tail)
        }
        guard code == SQLITE_OK else {
            sqlite3_finalize(statement)
            throw SQLiteError(code: code, database: database, sql: sql)
        }
        guard let statement else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "the SQL contains no statement", sql: sql)
        }
        // Only whitespace, or nothing, may follow the statement: a second statement would be
        // silently ignored otherwise.
        if let tail, tail.pointee != 0 {
            let rest = String(cString: tail)
            if rest.contains(where: { !$0.isWhitespace && $0 != ";" }) {
                sqlite3_finalize(statement)
                throw SQLiteError(code: SQLITE_MISUSE, message: "prepare takes one statement; use exec for several", sql: sql)
            }
        }
        handle = statement
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// Frees the statement; later calls throw `SQLITE_MISUSE`. Idempotent.
    func finalize() {
        sqlite3_finalize(handle)
        handle = nil
    }

    var isFinalized: Bool { handle == nil }

    private func live() throws(SQLiteError) -> OpaquePointer {
        guard let handle else { throw SQLiteError.closed("statement", sql: sql) }
        return handle
    }

    private func check(_ code: Int32, _ statement: OpaquePointer) throws(SQLiteError) {
        guard code == SQLITE_OK else {
            throw SQLiteError(code: code, database: sqlite3_db_handle(statement), sql: sql)
        }
    }

    private func parameter(_ index: Int) throws(SQLiteError) -> Int32 {
        guard let value = Int32(exactly: index) else {
            throw SQLiteError(code: SQLITE_RANGE, message: "parameter index \(index) out of range", sql: sql)
        }
        return value
    }

    // MARK: - Binding

    /// The number of parameters (`?`, `?NNN`, `:name`, …) in the statement.
    var parameterCount: Int {
        handle.map { Int(sqlite3_bind_parameter_count($0)) } ?? 0
    }

    func bind(_ value: Int64, at index: Int) throws(SQLiteError) {
        let statement = try live()
        try check(sqlite3_bind_int64(statement, try parameter(index), value), statement)
    }

    func bind(_ value: Int, at index: Int) throws(SQLiteError) {
        try bind(Int64(value), at: index)
    }

    func bind(_ value: Double, at index: Int) throws(SQLiteError) {
        let statement = try live()
        try check(sqlite3_bind_double(statement, try parameter(index), value), statement)
    }

    /// Binds the text, copied (`SQLITE_TRANSIENT`), with its exact UTF-8 length, so embedded NUL
    /// characters are kept.
    func bind(_ value: String, at index: Int) throws(SQLiteError) {
        let statement = try live()
        let position = try parameter(index)
        var text = value
        let code = text.withUTF8 { utf8 -> Int32 in
            // A null pointer would bind SQL NULL; an empty string must stay an empty string.
            guard let base = utf8.baseAddress, utf8.count > 0 else {
                return sqlite3_bind_text(statement, position, "", 0, SQLITE_TRANSIENT)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) { pointer in
                sqlite3_bind_text64(statement, position, pointer, sqlite3_uint64(utf8.count), SQLITE_TRANSIENT, UInt8(SQLITE_UTF8))
            }
        }
        try check(code, statement)
    }

    /// Binds UTF-8 bytes as text; the caller guarantees valid UTF-8. Copied (`SQLITE_TRANSIENT`)
    /// unless `copying` is false (`SQLITE_STATIC`): then the bytes must stay where they are
    /// until the statement has been stepped and then rebound or `clearBindings()` lets go.
    func bindText(utf8: UnsafeBufferPointer<UInt8>, at index: Int, copying: Bool = true) throws(SQLiteError) {
        let statement = try live()
        let position = try parameter(index)
        let code: Int32
        if let base = utf8.baseAddress, utf8.count > 0 {
            code = base.withMemoryRebound(to: CChar.self, capacity: utf8.count) { pointer in
                sqlite3_bind_text64(statement, position, pointer, sqlite3_uint64(utf8.count), copying ? SQLITE_TRANSIENT : nil, UInt8(SQLITE_UTF8))
            }
        } else {
            code = sqlite3_bind_text(statement, position, "", 0, SQLITE_TRANSIENT)
        }
        try check(code, statement)
    }

    func bindNull(at index: Int) throws(SQLiteError) {
        let statement = try live()
        try check(sqlite3_bind_null(statement, try parameter(index)), statement)
    }

    func bind(_ value: SQLiteValue, at index: Int) throws(SQLiteError) {
        switch value {
        case .integer(let number): try bind(number, at: index)
        case .real(let number): try bind(number, at: index)
        case .text(let text): try bind(text, at: index)
        case .null: try bindNull(at: index)
        }
    }

    /// Binds `values` to parameters 1, 2, …; their number must match the statement's.
    func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        guard values.count == parameterCount else {
            throw SQLiteError(
                code: SQLITE_RANGE,
                message: "\(values.count) values for \(parameterCount) parameters",
                sql: sql
            )
        }
        for (offset, value) in values.enumerated() {
            try bind(value, at: offset + 1)
        }
    }

    /// Sets every parameter back to NULL.
    func clearBindings() {
        if let handle { sqlite3_clear_bindings(handle) }
    }

    // MARK: - Running

    /// Runs the statement to its next row: true when a row is ready to read, false when it is
    /// done.
    @discardableResult
    func step() throws(SQLiteError) -> Bool {
        let statement = try live()
        let code = sqlite3_step(statement)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw SQLiteError(code: code, database: sqlite3_db_handle(statement), sql: sql)
        }
    }

    /// Rewinds the statement so it can run again (the bindings stay). Ends any read the
    /// statement had open.
    func reset() {
        // The code repeats the last step's error, which was already reported.
        if let handle { sqlite3_reset(handle) }
    }

    // MARK: - Columns

    var columnCount: Int {
        handle.map { Int(sqlite3_column_count($0)) } ?? 0
    }

    func columnName(at index: Int) -> String? {
        guard let handle, let index = Int32(exactly: index), let name = sqlite3_column_name(handle, index) else { return nil }
        return String(cString: name)
    }

    func isNull(at index: Int) -> Bool {
        guard let handle, let index = Int32(exactly: index) else { return true }
        return sqlite3_column_type(handle, index) == SQLITE_NULL
    }

    /// The column as an integer (0 for NULL, SQLite's conversion for other types).
    func int64(at index: Int) -> Int64 {
        guard let handle, let index = Int32(exactly: index) else { return 0 }
        return sqlite3_column_int64(handle, index)
    }

    func int(at index: Int) -> Int {
        Int(int64(at: index))
    }

    /// The column as a floating-point number (0 for NULL).
    func double(at index: Int) -> Double {
        guard let handle, let index = Int32(exactly: index) else { return 0 }
        return sqlite3_column_double(handle, index)
    }

    /// The column as text, `nil` for NULL. Reads the exact byte length, so embedded NULs are kept.
    func string(at index: Int) -> String? {
        guard let handle, let index = Int32(exactly: index) else { return nil }
        guard sqlite3_column_type(handle, index) != SQLITE_NULL else { return nil }
        // `column_text` first, then `column_bytes`, as the documentation requires.
        guard let text = sqlite3_column_text(handle, index) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// Hands the column's text to `body` as UTF-8 bytes, without copying them: the buffer is
    /// valid only during the call (until the statement steps again). Empty for NULL.
    func withText<T>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        guard let handle, let index = Int32(exactly: index), let text = sqlite3_column_text(handle, index) else {
            return try body(UnsafeBufferPointer(start: nil, count: 0))
        }
        let count = Int(sqlite3_column_bytes(handle, index))
        return try body(UnsafeBufferPointer(start: text, count: count))
    }
}
