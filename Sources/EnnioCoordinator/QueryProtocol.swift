public import EnnioEvents

/// The coordinator's query API over NATS request/reply: subjects, requests and replies as JSON.
///
/// - `ennio.query.history`: body `{"project_id","session_id","event_type","category",
///   "min_priority","since","until","after","limit","offset"}`, every key optional; reply
///   `{"events":[…],"count":n,"next_offset":n|null,"next":"<cursor>"|null}`.
/// - `ennio.query.sessions`: reply `{"sessions":[…]}`.
/// - `ennio.query.nodes`: reply `{"nodes":[…]}`.
///
/// A bad request gets `{"error":{"code":400,"description":"…"}}`; a failure of the store
/// `{"error":{"code":500,…}}`.
public enum QueryProtocol {
    public static let historySubject = "ennio.query.history"
    public static let sessionsSubject = "ennio.query.sessions"
    public static let nodesSubject = "ennio.query.nodes"

    static let historyKeys: Set<String> = [
        "project_id", "session_id", "event_type", "category", "min_priority", "since", "until", "after", "limit", "offset",
    ]

    /// Reads a history request. An empty body means "the first page of everything".
    public static func historyQuery(from body: [UInt8]) throws(HistoryQueryError) -> HistoryQuery {
        guard body.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else { return HistoryQuery() }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: body)
        } catch {
            throw HistoryQueryError("the request is not valid JSON: \(error.detail)")
        }
        guard let object = value.objectValue else { throw HistoryQueryError("the request must be a JSON object") }
        return try historyQuery(from: object)
    }

    /// Reads a history request's members (the NATS body's, or the HTTP API's parameters).
    public static func historyQuery(from object: [String: JSONValue]) throws(HistoryQueryError) -> HistoryQuery {
        var query = HistoryQuery()
        if let unknown = object.keys.sorted().first(where: { !historyKeys.contains($0) }) {
            throw HistoryQueryError("unknown key \(unknown.debugDescription); known keys: \(historyKeys.sorted().joined(separator: ", "))")
        }
        func string(_ key: String) throws(HistoryQueryError) -> String? {
            guard let member = object[key], !member.isNull else { return nil }
            guard let text = member.stringValue else { throw HistoryQueryError("\(key) must be a string") }
            return text
        }
        func integer(_ key: String) throws(HistoryQueryError) -> Int? {
            guard let member = object[key], !member.isNull else { return nil }
            guard let number = member.intValue else { throw HistoryQueryError("\(key) must be an integer") }
            return Int(number)
        }
        func timestamp(_ key: String) throws(HistoryQueryError) -> EventTimestamp? {
            guard let text = try string(key) else { return nil }
            do {
                return try EventTimestamp(rfc3339: text)
            } catch {
                throw HistoryQueryError("\(key) must be an RFC 3339 timestamp: \(error.detail)")
            }
        }
        query.projectId = try string("project_id")
        query.sessionId = try string("session_id")
        if let name = try string("event_type") {
            guard let type = EventType(named: name) else { throw HistoryQueryError("unknown event_type \(name.debugDescription)") }
            query.eventType = type
        }
        if let name = try string("category") {
            guard let category = EventCategory(rawValue: name) else { throw HistoryQueryError("unknown category \(name.debugDescription)") }
            query.category = category
        }
        if let name = try string("min_priority") {
            guard let priority = EventPriority(rawValue: name) else { throw HistoryQueryError("unknown min_priority \(name.debugDescription)") }
            query.minimumPriority = priority
        }
        query.since = try timestamp("since")
        query.until = try timestamp("until")
        if let limit = try integer("limit") { query.limit = limit }
        if let offset = try integer("offset") { query.offset = offset }
        if let text = try string("after") {
            guard let cursor = HistoryCursor(text) else {
                throw HistoryQueryError("after must be a cursor <timestamp_ns>:<id> (the next of a reply), not \(text.debugDescription)")
            }
            query.after = cursor
        }
        try query.validate()
        return query
    }

    /// The JSON of a history request (what `ennio history` sends).
    public static func body(for query: HistoryQuery) -> [UInt8] {
        var object: [String: JSONValue] = ["limit": .int(Int64(query.limit)), "offset": .int(Int64(query.offset))]
        if let value = query.projectId { object["project_id"] = .string(value) }
        if let value = query.sessionId { object["session_id"] = .string(value) }
        if let value = query.eventType { object["event_type"] = .string(value.rawValue) }
        if let value = query.category { object["category"] = .string(value.rawValue) }
        if let value = query.minimumPriority { object["min_priority"] = .string(value.rawValue) }
        if let value = query.since { object["since"] = .string(value.rfc3339) }
        if let value = query.until { object["until"] = .string(value.rfc3339) }
        if let value = query.after { object["after"] = .string(value.description) }
        return Array(JSONValue.object(object).jsonString.utf8)
    }

    public static func reply(for page: HistoryPage) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("events")
        writer.beginArray()
        for event in page.events {
            EventCodec.write(event, to: &writer)
        }
        writer.endArray()
        writer.key("count")
        writer.int(Int64(page.events.count))
        writer.key("next_offset")
        if let next = page.nextOffset { writer.int(Int64(next)) } else { writer.null() }
        writer.key("next")
        if let next = page.next { writer.string(next.description) } else { writer.null() }
        writer.endObject()
        return writer.bytes
    }

    /// Reads a history reply (what `ennio history` receives).
    public static func page(from reply: [UInt8]) throws -> HistoryPage {
        let value = try JSONValue(parsing: reply)
        try throwIfError(value)
        guard let events = value["events"]?.arrayValue else { throw HistoryQueryError("the reply has no events") }
        let decoded = try events.map { try EventCodec.decode($0.jsonString) }
        return HistoryPage(
            events: decoded, nextOffset: value["next_offset"]?.intValue.map { Int($0) },
            next: value["next"]?.stringValue.flatMap(HistoryCursor.init))
    }

    public static func reply(for sessions: [SessionRecord]) -> [UInt8] {
        let list: [JSONValue] = sessions.map { record in
            .object([
                "project_id": .string(record.projectId),
                "session_id": .string(record.sessionId),
                "status": record.status.map(JSONValue.string) ?? .null,
                "activity": record.activity.map(JSONValue.string) ?? .null,
                "last_event_type": .string(record.lastEventType.rawValue),
                "last_event_at": .string(record.lastEventAt.rfc3339),
                "terminal": .bool(record.terminal),
                "event_count": .int(Int64(record.eventCount)),
            ])
        }
        return Array(JSONValue.object(["sessions": .array(list)]).jsonString.utf8)
    }

    public static func reply(for nodes: [NodeRecord], now: Duration) -> [UInt8] {
        let list: [JSONValue] = nodes.map { record in
            let silence = now - record.lastSeen
            return .object([
                "host": .string(record.host),
                "connected": .bool(record.connected),
                "seconds_since_last_seen": .double((Double(silence.components.seconds) + Double(silence.components.attoseconds) / 1e18).rounded(toPlaces: 3)),
                "last_health_check": record.lastHealthCheck.map { .string($0.rfc3339) } ?? .null,
                "health_interval_seconds": .double(Double(record.healthInterval.components.seconds) + Double(record.healthInterval.components.attoseconds) / 1e18),
                "health": record.health,
            ])
        }
        return Array(JSONValue.object(["nodes": .array(list)]).jsonString.utf8)
    }

    public static func errorReply(code: Int, description: String) -> [UInt8] {
        Array(JSONValue.object(["error": ["code": .int(Int64(code)), "description": .string(description)]]).jsonString.utf8)
    }

    /// Throws the error a reply carries, if it carries one.
    public static func throwIfError(_ reply: JSONValue) throws {
        if let error = reply["error"] {
            throw QueryFailure(code: Int(error["code"]?.intValue ?? 0), description: error["description"]?.stringValue ?? "unknown error")
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
