import CSQLite

/// A failure reported by SQLite (or by the wrapper around it, for misuse such as a closed
/// database).
public struct SQLiteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// SQLite's primary result code (`SQLITE_ERROR`, `SQLITE_CANTOPEN`, `SQLITE_BUSY`, …).
    public let code: Int32
    /// What went wrong: `sqlite3_errmsg` of the connection when SQLite reported it.
    public let message: String
    /// The statement being prepared or run, if there was one.
    public let sql: String?

    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// The error `code` on the connection `database`, with its `sqlite3_errmsg`.
    init(code: Int32, database: OpaquePointer?, sql: String? = nil) {
        let text: String
        if let database, let pointer = sqlite3_errmsg(database) {
            text = String(cString: pointer)
        } else if let pointer = sqlite3_errstr(code) {
            text = String(cString: pointer)
        } else {
            text = "unknown error"
        }
        self.init(code: code, message: text, sql: sql)
    }

    /// Using a database or statement that was already closed or finalized.
    static func closed(_ what: String, sql: String? = nil) -> SQLiteError {
        SQLiteError(code: SQLITE_MISUSE, message: "the \(what) is closed", sql: sql)
    }

    /// SQLite's name for the code (`SQLITE_BUSY` reads "database is locked").
    public var codeDescription: String {
        guard let pointer = sqlite3_errstr(code) else { return "unknown error" }
        return String(cString: pointer)
    }

    public var description: String {
        var text = "SQLite error \(code) (\(codeDescription)): \(message)"
        if let sql { text += " [in \(sql.debugDescription)]" }
        return text
    }
}
