public import EnnioEvents

/// The coordinator's query API over NATS request/reply: subjects, requests and replies as JSON.
///
/// Every reply is one page, below the server's `max_payload` (and the request's `max_bytes`),
/// with a cursor, `next`, to pass back as `after` for the following page (`null` after the
/// last). A page of history holds at most `limit` events; an event too large to fit in a reply
/// by itself comes in parts, one per reply, which the reader joins (see ``HistoryReply``).
///
/// - `ennio.query.history`: body `{"project_id","session_id","event_type","category",
///   "min_priority","since","until","after","order","limit","max_bytes"}`, every key optional;
///   reply `{"events":[…],"subjects":[…],"count":n,"next":"<cursor>"|null}`, or for a part of
///   an oversized event `{"events":[],"subjects":[],"count":0,"part":{"key","subject","size",
///   "offset","data"},"next":…}`.
/// - `ennio.query.sessions`: body empty or `{"project_id","after","limit","max_bytes"}`; reply
///   `{"sessions":[…],"count":n,"next":"<key>"|null}`.
/// - `ennio.query.nodes`: body empty or `{"after","limit","max_bytes"}`; reply
///   `{"nodes":[…],"count":n,"next":"<host>"|null}`.
///
/// A bad request gets `{"error":{"code":400,"description":"…"}}`; a failure of the store
/// `{"error":{"code":500,…}}`.
public enum QueryProtocol {
    public static let historySubject = "ennio.query.history"
    public static let sessionsSubject = "ennio.query.sessions"
    public static let nodesSubject = "ennio.query.nodes"

    static let historyKeys: Set<String> = [
        "project_id", "session_id", "event_type", "category", "min_priority", "since", "until", "after", "order", "limit", "max_bytes",
    ]
    static let tableKeys: Set<String> = ["project_id", "after", "limit", "max_bytes"]

    /// Reads a request body: `nil` for an empty one, else its members, every key known.
    static func members(of body: [UInt8], known: Set<String>, refusing refused: [String: String] = [:]) throws(HistoryQueryError) -> [String: JSONValue]? {
        guard body.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else { return nil }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: body)
        } catch {
            throw HistoryQueryError("the request is not valid JSON: \(error.detail)")
        }
        guard let object = value.objectValue else { throw HistoryQueryError("the request must be a JSON object") }
        for key in object.keys.sorted() where !known.contains(key) {
            if let reason = refused[key] { throw HistoryQueryError(reason) }
            throw HistoryQueryError("unknown key \(key.debugDescription); known keys: \(known.sorted().joined(separator: ", "))")
        }
        return object
    }

    /// Typed access to a request's members, with errors that name the key.
    struct Members {
        let object: [String: JSONValue]

        func string(_ key: String) throws(HistoryQueryError) -> String? {
            guard let member = object[key], !member.isNull else { return nil }
            guard let text = member.stringValue else { throw HistoryQueryError("\(key) must be a string") }
            return text
        }

        func integer(_ key: String) throws(HistoryQueryError) -> Int? {
            guard let member = object[key], !member.isNull else { return nil }
            guard let number = member.intValue, let value = Int(exactly: number) else { throw HistoryQueryError("\(key) must be an integer") }
            return value
        }

        func timestamp(_ key: String) throws(HistoryQueryError) -> EventTimestamp? {
            guard let text = try string(key) else { return nil }
            do {
                return try EventTimestamp(rfc3339: text)
            } catch {
                throw HistoryQueryError("\(key) must be an RFC 3339 timestamp: \(error.detail)")
            }
        }
    }

    /// Reads a history request. An empty body means "the first page of everything".
    public static func historyQuery(from body: [UInt8]) throws(HistoryQueryError) -> HistoryQuery {
        guard let object = try members(of: body, known: historyKeys, refusing: refusedHistoryKeys) else { return HistoryQuery() }
        return try historyQuery(checked: object)
    }

    static let refusedHistoryKeys = [
        "offset": "offset is not supported: page with after, the next of the previous reply (a cursor, so that a page costs the same anywhere in the history)",
    ]

    /// Reads a history request's members (the NATS body's, or the HTTP API's parameters).
    public static func historyQuery(from object: [String: JSONValue]) throws(HistoryQueryError) -> HistoryQuery {
        for key in object.keys.sorted() where !historyKeys.contains(key) {
            if let reason = refusedHistoryKeys[key] { throw HistoryQueryError(reason) }
            throw HistoryQueryError("unknown key \(key.debugDescription); known keys: \(historyKeys.sorted().joined(separator: ", "))")
        }
        return try historyQuery(checked: object)
    }

    private static func historyQuery(checked object: [String: JSONValue]) throws(HistoryQueryError) -> HistoryQuery {
        var query = HistoryQuery()
        let members = Members(object: object)
        query.projectId = try members.string("project_id")
        query.sessionId = try members.string("session_id")
        if let name = try members.string("event_type") {
            guard let type = EventType(named: name) else { throw HistoryQueryError("unknown event_type \(name.debugDescription)") }
            query.eventType = type
        }
        if let name = try members.string("category") {
            guard let category = EventCategory(rawValue: name) else { throw HistoryQueryError("unknown category \(name.debugDescription)") }
            query.category = category
        }
        if let name = try members.string("min_priority") {
            guard let priority = EventPriority(rawValue: name) else { throw HistoryQueryError("unknown min_priority \(name.debugDescription)") }
            query.minimumPriority = priority
        }
        query.since = try members.timestamp("since")
        query.until = try members.timestamp("until")
        if let text = try members.string("after") {
            guard let cursor = HistoryCursor(text) else {
                throw HistoryQueryError("after must be a cursor, <timestamp_ns>:<id> (the next of a reply), not \(text.debugDescription)")
            }
            query.after = cursor
        }
        if let name = try members.string("order") {
            guard let order = HistoryOrder(rawValue: name) else {
                throw HistoryQueryError("order must be \(HistoryOrder.allCases.map(\.rawValue).joined(separator: " or ")), not \(name.debugDescription)")
            }
            query.order = order
        }
        if let limit = try members.integer("limit") { query.limit = limit }
        query.maxBytes = try members.integer("max_bytes")
        try query.validate()
        return query
    }

    /// The JSON of a history request (what `ennio history` sends).
    public static func body(for query: HistoryQuery) -> [UInt8] {
        var object: [String: JSONValue] = ["limit": .int(Int64(query.limit))]
        if let value = query.projectId { object["project_id"] = .string(value) }
        if let value = query.sessionId { object["session_id"] = .string(value) }
        if let value = query.eventType { object["event_type"] = .string(value.rawValue) }
        if let value = query.category { object["category"] = .string(value.rawValue) }
        if let value = query.minimumPriority { object["min_priority"] = .string(value.rawValue) }
        if let value = query.since { object["since"] = .string(value.rfc3339) }
        if let value = query.until { object["until"] = .string(value.rfc3339) }
        if let value = query.after { object["after"] = .string(value.description) }
        if query.order != .oldestFirst { object["order"] = .string(query.order.rawValue) }
        if let value = query.maxBytes { object["max_bytes"] = .int(Int64(value)) }
        return Array(JSONValue.object(object).jsonString.utf8)
    }

    /// Reads a sessions or nodes request. An empty body means "the first page".
    public static func tableQuery(from body: [UInt8]) throws(HistoryQueryError) -> TableQuery {
        var query = TableQuery()
        guard let object = try members(of: body, known: tableKeys) else { return query }
        let members = Members(object: object)
        query.projectId = try members.string("project_id")
        query.after = try members.string("after")
        if let limit = try members.integer("limit") { query.limit = limit }
        query.maxBytes = try members.integer("max_bytes")
        try query.validate()
        return query
    }

    /// The JSON of a sessions or nodes request.
    public static func body(for query: TableQuery) -> [UInt8] {
        var object: [String: JSONValue] = ["limit": .int(Int64(query.limit))]
        if let value = query.projectId { object["project_id"] = .string(value) }
        if let value = query.after { object["after"] = .string(value) }
        if let value = query.maxBytes { object["max_bytes"] = .int(Int64(value)) }
        return Array(JSONValue.object(object).jsonString.utf8)
    }

    public static func errorReply(code: Int, description: String) -> [UInt8] {
        Array(JSONValue.object(["error": ["code": .int(Int64(code)), "description": .string(description)]]).jsonString.utf8)
    }

    /// Throws the error a reply carries, if it carries one.
    public static func throwIfError(_ reply: JSONValue) throws(QueryFailure) {
        if let error = reply["error"] {
            throw QueryFailure(code: Int(clamping: error["code"]?.intValue ?? 0), description: error["description"]?.stringValue ?? "unknown error")
        }
    }
}

/// Which page of the sessions or nodes table to return.
public struct TableQuery: Sendable, Hashable {
    public static let defaultLimit = 1000
    public static let maximumLimit = 10_000

    /// Sessions of this project only (not for nodes).
    public var projectId: String?
    /// The `next` of the previous page: the key of its last row (`<project_id> <session_id>`
    /// for sessions, the host for nodes).
    public var after: String?
    /// Rows per page, 1...10000.
    public var limit: Int
    /// The most bytes per reply (at least ``HistoryQuery/minimumBytes``); replies are also
    /// below the server's `max_payload`.
    public var maxBytes: Int?

    public init(projectId: String? = nil, after: String? = nil, limit: Int = TableQuery.defaultLimit, maxBytes: Int? = nil) {
        self.projectId = projectId
        self.after = after
        self.limit = limit
        self.maxBytes = maxBytes
    }

    public func validate() throws(HistoryQueryError) {
        try HistoryQuery.validatePage(limit: limit, maximum: Self.maximumLimit, maxBytes: maxBytes)
    }
}

/// One history reply, read: whole events, or one part of an event too large for a reply.
public struct HistoryReply: Sendable, Hashable {
    public var events: [Event]
    /// The subject each event was received on (empty strings from a coordinator that does not
    /// say).
    public var subjects: [String]
    public var part: Part?
    public var next: HistoryCursor?

    /// A piece of an oversized event's JSON: bytes `offset..<offset + data.count` of `size`.
    public struct Part: Sendable, Hashable {
        public var key: HistoryCursor
        public var subject: String
        public var size: Int
        public var offset: Int
        public var data: [UInt8]
    }

    /// Reads a reply (what `ennio history` receives); throws ``QueryFailure`` for an error reply.
    public init(parsing reply: [UInt8]) throws {
        let value = try JSONValue(parsing: reply)
        try QueryProtocol.throwIfError(value)
        guard let list = value["events"]?.arrayValue else { throw HistoryQueryError("the reply has no events") }
        events = try list.map { try EventCodec.decode($0.jsonString) }
        let subjectList = value["subjects"]?.arrayValue ?? []
        subjects = events.indices.map { index in index < subjectList.count ? subjectList[index].stringValue ?? "" : "" }
        if let text = value["next"]?.stringValue {
            guard let cursor = HistoryCursor(text) else { throw HistoryQueryError("the reply's next is not a cursor: \(text.debugDescription)") }
            next = cursor
        }
        if let part = value["part"], !part.isNull {
            guard let keyText = part["key"]?.stringValue, let key = HistoryCursor(keyText),
                  let size = part["size"]?.intValue.flatMap({ Int(exactly: $0) }), size > 0,
                  let offset = part["offset"]?.intValue.flatMap({ Int(exactly: $0) }), offset >= 0,
                  let data = part["data"]?.stringValue
            else { throw HistoryQueryError("the reply's part is incomplete") }
            self.part = Part(key: key, subject: part["subject"]?.stringValue ?? "", size: size, offset: offset, data: Array(data.utf8))
        }
    }
}

/// An error reply from the coordinator.
public struct QueryFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Int
    public let description: String
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (self * scale).rounded() / scale
    }
}
