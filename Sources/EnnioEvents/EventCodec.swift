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
        // One allocation of the right size for the usual event: it is appended in one piece.
        var writer = JSONWriter()
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
        // Written through a pointer, usually in one piece with room reserved as if no string
        // needed escaping (see `UnsafeJSONOutput`); a very long `data` follows separately.
        let fields = fieldsLength(event, exact: false)
        // A small container (the usual `data`) goes into the rest of a stack-sized piece
        // without working out its length first; if it turns out too long, the event is written
        // again with exact room.
        let rest = JSONWriter.stackLimit - JSONWriter.spareRoom - fields - 2
        if rest >= 256, Self.isSmallContainer(event.data) {
            writer.appendUnsafeValue(reserving: fields + 2 + rest, exactly: exactLength, event) { output, event in
                output.write(UInt8(ascii: "{"))
                writeFields(of: event, to: &output)
                output.writeValue(event.data, keepingFree: 1)
                output.write(UInt8(ascii: "}"))
            }
        } else if let data = UnsafeJSONOutput.reservedLength(of: event.data, exact: false, upTo: dataInOnePiece) {
            writer.appendUnsafeValue(reserving: fields + data + 2, exactly: exactLength, event) { output, event in
                output.write(UInt8(ascii: "{"))
                writeFields(of: event, to: &output)
                output.writeValue(event.data)
                output.write(UInt8(ascii: "}"))
            }
        } else {
            writer.beginObject()
            writer.appendUnsafe(reserving: fields, exactly: { fieldsLength($0, exact: true) }, event) { output, event in
                writeFields(of: event, to: &output)
            }
            writer.value(event.data)
            writer.endObject()
        }
    }

    /// Writes the members before the value of `data`, from `"id":` to `"data":`. The keys are
    /// fixed and need no escaping: written as literals with their separators (the same bytes
    /// `key(_:)` and the separators of `JSONWriter` would write). Neither do the wire names of
    /// types and priorities (ASCII letters and `_`, as a test checks).
    @inline(__always)
    private static func writeFields(of event: Event, to output: inout UnsafeJSONOutput) {
        output.write(Self.idKey)
        output.writeString(event.id)
        output.write(Self.eventTypeKey)
        output.writeUnescapedString(event.eventType.rawValue)
        output.write(Self.priorityKey)
        output.writeUnescapedString(event.priority.rawValue)
        output.write(Self.sessionIdKey)
        output.writeString(event.sessionId)
        output.write(Self.projectIdKey)
        output.writeString(event.projectId)
        output.write(Self.timestampKey)
        output.write(UInt8(ascii: "\""))
        output.write(maximumCount: EventTimestamp.maximumTextLength) { event.timestamp.format(into: $0) }
        output.write(UInt8(ascii: "\""))
        output.write(Self.messageKey)
        output.writeString(event.message)
        output.write(Self.dataKey)
    }

    /// The room `writeFields` needs (see `UnsafeJSONOutput.reservedLength`).
    @inline(__always)
    private static func fieldsLength(_ event: Event, exact: Bool) -> Int {
        maximumFixedLength
            + UnsafeJSONOutput.reservedLength(of: event.id, exact: exact)
            + UnsafeJSONOutput.reservedLength(of: event.eventType.rawValue, exact: exact)
            + UnsafeJSONOutput.reservedLength(of: event.priority.rawValue, exact: exact)
            + UnsafeJSONOutput.reservedLength(of: event.sessionId, exact: exact)
            + UnsafeJSONOutput.reservedLength(of: event.projectId, exact: exact)
            + UnsafeJSONOutput.reservedLength(of: event.message, exact: exact)
    }

    /// The room the whole event needs, reserved exactly.
    private static func exactLength(_ event: Event) -> Int {
        fieldsLength(event, exact: true) + UnsafeJSONOutput.reservedLength(of: event.data, exact: true, upTo: .max).unsafelyUnwrapped + 2
    }

    /// An object or array of a few members or elements.
    @inline(__always)
    private static func isSmallContainer(_ value: JSONValue) -> Bool {
        switch value {
        case .object(let members): members.count <= 8
        case .array(let elements): elements.count <= 8
        default: false
        }
    }

    /// Longer `data` is written separately, in pieces.
    private static var dataInOnePiece: Int { 8 * 1024 }

    private static var idKey: StaticString { "\"id\":" }
    private static var eventTypeKey: StaticString { ",\"event_type\":" }
    private static var priorityKey: StaticString { ",\"priority\":" }
    private static var sessionIdKey: StaticString { ",\"session_id\":" }
    private static var projectIdKey: StaticString { ",\"project_id\":" }
    private static var timestampKey: StaticString { ",\"timestamp\":" }
    private static var messageKey: StaticString { ",\"message\":" }
    private static var dataKey: StaticString { ",\"data\":" }

    /// The bytes `writeFields` writes besides the strings: keys, the quoted timestamp. (Not a
    /// stored global, which would cost a call per use.)
    private static var maximumFixedLength: Int {
        idKey.utf8CodeUnitCount + eventTypeKey.utf8CodeUnitCount + priorityKey.utf8CodeUnitCount
            + sessionIdKey.utf8CodeUnitCount + projectIdKey.utf8CodeUnitCount + timestampKey.utf8CodeUnitCount
            + messageKey.utf8CodeUnitCount + dataKey.utf8CodeUnitCount + 2 + EventTimestamp.maximumTextLength
    }

    /// Keys a reader may let the producer leave out, and fills in itself.
    public struct FilledFields: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// A missing `id` becomes a new random UUID (``EventID/random()``).
        public static let id = FilledFields(rawValue: 1)
        /// A missing `timestamp` becomes the time of reading.
        public static let timestamp = FilledFields(rawValue: 2)
    }

    /// Reads one event from JSON bytes.
    ///
    /// - Parameter filling: keys that may be absent and are then filled in (the node agent
    ///   fills in `id` and `timestamp` for the lines it relays); every other key is required.
    public static func decode(_ bytes: some Collection<UInt8>, filling: FilledFields = []) throws(EventDecodingError) -> Event {
        let result: Result<Event, EventDecodingError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(EventDecodingError) in try decode(buffer: buffer, filling: filling) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer in
            Result { () throws(EventDecodingError) in try decode(buffer: buffer, filling: filling) }
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

        /// The field whose key is exactly these (unescaped) bytes. Keys are made of ASCII letters
        /// and '_', so comparing bytes is comparing Strings (see `ByteKeyedTable`). No table:
        /// this runs for every key, and a global would be one more call each time.
        @inline(__always)
        init?(key: UnsafeBufferPointer<UInt8>) {
            @inline(__always) func matches(_ name: StaticString) -> Bool {
                name.withUTF8Buffer { name in
                    var index = 0
                    while index < name.count {
                        if key[index] != name[index] { return false }
                        index &+= 1
                    }
                    return true
                }
            }
            switch key.count {
            case 2 where matches("id"): self = .id
            case 4 where matches("data"): self = .data
            case 7 where matches("message"): self = .message
            case 8 where matches("priority"): self = .priority
            case 9 where matches("timestamp"): self = .timestamp
            case 10 where matches("event_type"): self = .eventType
            case 10 where matches("session_id"): self = .sessionId
            case 10 where matches("project_id"): self = .projectId
            default: return nil
            }
        }
    }

    private static func decode(buffer: UnsafeBufferPointer<UInt8>, filling: FilledFields) throws(EventDecodingError) -> Event {
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
                guard let field = Field(key: key) else { return }
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

        if id == nil, filling.contains(.id) { id = EventID.random() }
        if timestamp == nil, filling.contains(.timestamp) { timestamp = .success(.now()) }
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
