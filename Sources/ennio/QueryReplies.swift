import EnnioEvents

/// The coordinator's replies to `ennio sessions` and `ennio nodes`, read defensively.
///
/// Anyone who can subscribe to `ennio.query.*` can answer: every member is checked for its
/// type and range, and a reply that does not fit is a ``QueryReplyError`` naming the member,
/// never a crash (a `seconds_since_last_seen` of `1e300` cannot become an `Int`).
enum QueryReplies {
    struct Session {
        var projectId: String
        var sessionId: String
        var status: String?
        var activity: String?
        var lastEventType: String
        var lastEventAt: String
        var terminal: Bool
        var eventCount: Int64
    }

    struct Node {
        var host: String
        var connected: Bool
        /// Whole seconds since the coordinator last heard from the node.
        var secondsSinceLastSeen: Int64?
        var load: [Double]
    }

    /// The most seconds a node can have been silent: a century.
    static let maximumSilence = 100.0 * 365 * 86_400

    /// The JSON object of a reply; an error reply (`{"error":{…}}`) is thrown, its description
    /// escaped and bounded.
    static func document(_ bytes: [UInt8]) throws -> JSONValue {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw QueryReplyError("the reply is not JSON: \(error.detail) at byte \(error.offset)")
        }
        if let failure = value["error"] {
            let code = failure["code"]?.intValue.map(String.init) ?? "?"
            throw QueryReplyError("the coordinator answered error \(code): \(LogText(failure["description"]?.stringValue ?? "no description"))")
        }
        guard value.objectValue != nil else { throw QueryReplyError("the reply is not a JSON object") }
        return value
    }


    /// One row of a sessions reply; `path` names it in errors.
    static func session(_ row: JSONValue, at path: String) throws(QueryReplyError) -> Session {
        guard row.objectValue != nil else { throw QueryReplyError("\(path) is not an object") }
        let member = Member(row: row, path: path)
        return Session(
            projectId: try member.string("project_id"), sessionId: try member.string("session_id"),
            status: try member.optionalString("status"), activity: try member.optionalString("activity"),
            lastEventType: try member.string("last_event_type"), lastEventAt: try member.string("last_event_at"),
            terminal: try member.bool("terminal"), eventCount: try member.integer("event_count"))
    }


    /// One row of a nodes reply; `path` names it in errors.
    static func node(_ row: JSONValue, at path: String) throws(QueryReplyError) -> Node {
        guard row.objectValue != nil else { throw QueryReplyError("\(path) is not an object") }
        let member = Member(row: row, path: path)
        var silence: Int64?
        if let seconds = try member.optionalNumber("seconds_since_last_seen") {
            guard seconds >= 0, seconds <= maximumSilence else {
                throw QueryReplyError("\(path).seconds_since_last_seen is \(seconds), not a number of seconds from 0 to \(Int64(maximumSilence))")
            }
            silence = Int64(seconds)
        }
        var load: [Double] = []
        if let health = row["health"], case .object = health, let values = health["load"], !values.isNull {
            guard let numbers = values.arrayValue?.compactMap(\.doubleValue), numbers.count == values.arrayValue?.count,
                numbers.allSatisfy(\.isFinite)
            else {
                throw QueryReplyError("\(path).health.load is not a list of numbers")
            }
            load = numbers
        }
        return Node(host: try member.string("host"), connected: try member.bool("connected"), secondsSinceLastSeen: silence, load: load)
    }

    static func list(_ key: String, in reply: JSONValue) throws(QueryReplyError) -> [JSONValue] {
        guard let rows = reply[key]?.arrayValue else { throw QueryReplyError("the reply has no list \"\(key)\"") }
        for (index, row) in rows.enumerated() where row.objectValue == nil {
            throw QueryReplyError("\(key)[\(index)] is not an object")
        }
        return rows
    }

    /// The members of one row, each read as the kind it must be.
    private struct Member {
        let row: JSONValue
        let path: String

        func string(_ key: String) throws(QueryReplyError) -> String {
            guard let text = row[key]?.stringValue else { throw wrong(key, "a string") }
            return text
        }

        func optionalString(_ key: String) throws(QueryReplyError) -> String? {
            guard let value = row[key], !value.isNull else { return nil }
            guard let text = value.stringValue else { throw wrong(key, "a string or null") }
            return text
        }

        func bool(_ key: String) throws(QueryReplyError) -> Bool {
            guard let flag = row[key]?.boolValue else { throw wrong(key, "true or false") }
            return flag
        }

        func integer(_ key: String) throws(QueryReplyError) -> Int64 {
            guard let number = row[key]?.intValue, number >= 0 else { throw wrong(key, "a whole number") }
            return number
        }

        func optionalNumber(_ key: String) throws(QueryReplyError) -> Double? {
            guard let value = row[key], !value.isNull else { return nil }
            guard let number = value.doubleValue, number.isFinite else { throw wrong(key, "a number") }
            return number
        }

        private func wrong(_ key: String, _ kind: String) -> QueryReplyError {
            QueryReplyError("\(path).\(key) is not \(kind)")
        }
    }
}

/// A reply to a query that is not what the coordinator sends.
struct QueryReplyError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
