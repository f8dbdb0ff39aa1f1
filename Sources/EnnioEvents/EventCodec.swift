/// Why bytes could not be read as an event.
public struct EventDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case malformedJSON, notAnObject, missingField, wrongType, unknownEventType, unknownPriority, invalidTimestamp
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Not JSON at all (or truncated, or with trailing bytes).
        public static let malformedJSON = Code(.malformedJSON)
        /// JSON, but not an object.
        public static let notAnObject = Code(.notAnObject)
        /// A required key is absent.
        public static let missingField = Code(.missingField)
        /// A key holds the wrong kind of value (a number where a string belongs, `null`, …).
        public static let wrongType = Code(.wrongType)
        /// `event_type` names no known type.
        public static let unknownEventType = Code(.unknownEventType)
        /// `priority` is not `info`, `action`, `urgent` or `critical`.
        public static let unknownPriority = Code(.unknownPriority)
        /// `timestamp` is not RFC 3339.
        public static let invalidTimestamp = Code(.invalidTimestamp)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// The key concerned, if one is.
    public let field: String?
    public let detail: String

    public init(_ code: Code, field: String? = nil, detail: String) {
        self.code = code
        self.field = field
        self.detail = detail
    }

    public var description: String {
        if let field { return "cannot decode event (\(code), field \(field)): \(detail)" }
        return "cannot decode event (\(code)): \(detail)"
    }
}

/// Event ⇄ JSON, in the Rust implementation's format, without Foundation.
///
/// Encoding writes the keys in the Rust struct's order: `id`, `event_type`, `priority`,
/// `session_id`, `project_id`, `timestamp`, `message`, `data`. Decoding needs all eight keys,
/// ignores unknown ones, and accepts any number of fractional second digits.
public enum EventCodec {
    /// The event as JSON bytes.
    public static func encode(_ event: Event) -> [UInt8] {
        // One allocation for the usual event: the fixed keys and values take about 200 bytes.
        var writer = JSONWriter(reservingCapacity: 256 + event.message.utf8.count)
        write(event, to: &writer)
        return writer.bytes
    }

    /// Appends the event's JSON to `buffer`.
    public static func encode(_ event: Event, into buffer: inout [UInt8]) {
        var writer = JSONWriter()
        swap(&writer.bytes, &buffer)
        write(event, to: &writer)
        swap(&writer.bytes, &buffer)
    }

    /// Writes the event as one JSON object into `writer` (inside an array, for example).
    public static func write(_ event: Event, to writer: inout JSONWriter) {
        // The keys are fixed and need no escaping: written as literals with their separators
        // (the same bytes `key(_:)` would write).
        writer.beginObject()
        writer.appendRaw("\"id\":")
        writer.string(event.id)
        writer.appendRaw(",\"event_type\":")
        writer.string(event.eventType.rawValue)
        writer.appendRaw(",\"priority\":")
        writer.string(event.priority.rawValue)
        writer.appendRaw(",\"session_id\":")
        writer.string(event.sessionId)
        writer.appendRaw(",\"project_id\":")
        writer.string(event.projectId)
        writer.appendRaw(",\"timestamp\":\"")
        event.timestamp.write(into: &writer.bytes)
        writer.appendRaw("\",\"message\":")
        writer.string(event.message)
        writer.appendRaw(",\"data\":")
        writer.value(event.data)
        writer.endObject()
    }

    /// Reads one event from JSON bytes.
    public static func decode(_ bytes: some Collection<UInt8>) throws(EventDecodingError) -> Event {
        let result: Result<Event, EventDecodingError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(EventDecodingError) in try decode(buffer: buffer) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer in
            Result { () throws(EventDecodingError) in try decode(buffer: buffer) }
        }.get()
    }

    /// Reads one event from a JSON string.
    public static func decode(_ text: String) throws(EventDecodingError) -> Event {
        try decode(Array(text.utf8))
    }

    /// The keys of an event object.
    private enum Field: Sendable {
        case id, eventType, priority, sessionId, projectId, timestamp, message, data

        var name: String {
            switch self {
            case .id: "id"
            case .eventType: "event_type"
            case .priority: "priority"
            case .sessionId: "session_id"
            case .projectId: "project_id"
            case .timestamp: "timestamp"
            case .message: "message"
            case .data: "data"
            }
        }

        static let all: [Field] = [.id, .eventType, .priority, .sessionId, .projectId, .timestamp, .message, .data]
        /// Keys are matched on their (unescaped) bytes.
        static let byKeyBytes = ByteKeyedTable(all.map { (name: $0.name, value: $0) })
    }

    private static func decode(buffer: UnsafeBufferPointer<UInt8>) throws(EventDecodingError) -> Event {
        var id: String?
        var sessionId: String?
        var projectId: String?
        var message: String?
        var data: JSONValue?
        // Looked up or parsed as they are read (straight from the bytes); a failure is kept and
        // reported after the check for missing keys. A repeated key: the last value wins.
        var eventType: Result<EventType, EventDecodingError>?
        var priority: Result<EventPriority, EventDecodingError>?
        var timestamp: Result<EventTimestamp, EventDecodingError>?
        var currentField: Field?

        var reader = JSONReader(bytes: buffer)
        do {
            try reader.readObjectWithKeyBytes { key, reader throws(JSONError) in
                // Unknown keys: the value is skipped (and validated) by the reader.
                guard let field = Field.byKeyBytes.value(for: key) else { return }
                currentField = field
                switch field {
                case .id: id = try reader.readString()
                case .eventType: eventType = try reader.readStringBytes(lookUpEventType)
                case .priority: priority = try reader.readStringBytes(lookUpPriority)
                case .sessionId: sessionId = try reader.readString()
                case .projectId: projectId = try reader.readString()
                case .timestamp: timestamp = try reader.readStringBytes(parseTimestamp)
                case .message: message = try reader.readString()
                case .data: data = try reader.readValue()
                }
                currentField = nil
            }
            try reader.expectEnd()
        } catch {
            if error.code == .typeMismatch {
                if let currentField {
                    throw EventDecodingError(.wrongType, field: currentField.name, detail: error.detail)
                }
                throw EventDecodingError(.notAnObject, detail: "an event is a JSON object")
            }
            throw EventDecodingError(.malformedJSON, detail: error.description)
        }

        guard let id else { throw missing("id") }
        guard let eventType else { throw missing("event_type") }
        guard let priority else { throw missing("priority") }
        guard let sessionId else { throw missing("session_id") }
        guard let projectId else { throw missing("project_id") }
        guard let timestamp else { throw missing("timestamp") }
        guard let message else { throw missing("message") }
        guard let data else { throw missing("data") }

        return Event(
            id: id, type: try eventType.get(), priority: try priority.get(), sessionId: sessionId, projectId: projectId,
            timestamp: try timestamp.get(), message: message, data: data
        )
    }

    private static func lookUpEventType(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<EventType, EventDecodingError> {
        if let type = EventType(wireNameBytes: bytes) { return .success(type) }
        let text = String(decoding: bytes, as: UTF8.self)
        return .failure(EventDecodingError(.unknownEventType, field: "event_type", detail: "unknown event type \(text.debugDescription)"))
    }

    private static func lookUpPriority(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<EventPriority, EventDecodingError> {
        if let priority = EventPriority(wireNameBytes: bytes) { return .success(priority) }
        let text = String(decoding: bytes, as: UTF8.self)
        return .failure(EventDecodingError(.unknownPriority, field: "priority", detail: "unknown priority \(text.debugDescription)"))
    }

    private static func parseTimestamp(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<EventTimestamp, EventDecodingError> {
        do {
            return .success(try EventTimestamp(rfc3339UTF8: bytes))
        } catch {
            return .failure(EventDecodingError(.invalidTimestamp, field: "timestamp", detail: error.detail))
        }
    }

    private static func missing(_ field: String) -> EventDecodingError {
        EventDecodingError(.missingField, field: field, detail: "the key \"\(field)\" is required")
    }
}

extension Event {
    /// The event as JSON bytes, as published.
    public var jsonBytes: [UInt8] { EventCodec.encode(self) }

    /// The event as a JSON string.
    public var jsonString: String { String(decoding: EventCodec.encode(self), as: UTF8.self) }

    /// Reads an event from JSON.
    public init(json text: String) throws(EventDecodingError) {
        self = try EventCodec.decode(text)
    }
}
