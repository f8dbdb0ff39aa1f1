/// One member that the `data` of an event type must (or may) have, with the kind of JSON value
/// it holds: declared in the type's row of ``EventType/entry``, checked by
/// ``EventType/validate(_:)``, listed in `topics.md`.
public struct EventDataField: Sendable, Hashable {
    /// What a member holds.
    public enum Kind: Sendable, Hashable {
        /// A string of 1 to ``EventDataField/maximumIdentifierLength`` bytes without control
        /// characters (ids, refs, names).
        case identifier
        /// Any string (an error message, a reason).
        case text
        /// A whole number in this range.
        case integer(ClosedRange<Int64>)
        /// An RFC 3339 instant, as `timestamp` is written.
        case timestamp
        /// One of these strings.
        case choice([String])
    }

    /// The envelope key a member repeats: its value must be the envelope's.
    public enum Mirror: Sendable, Hashable {
        case sessionId, projectId

        public var key: String {
            switch self {
            case .sessionId: "session_id"
            case .projectId: "project_id"
            }
        }
    }

    public static let maximumIdentifierLength = 1024

    /// The key in `data` (snake_case).
    public let name: String
    public let kind: Kind
    /// Whether the member must be present (an optional one may also be `null`).
    public let isRequired: Bool
    /// The envelope key whose value this member must equal, if any.
    public let mirrors: Mirror?
    /// What the member means, for `topics.md`.
    public let summary: String

    public init(_ name: String, _ kind: Kind, required: Bool = true, mirrors: Mirror? = nil, _ summary: String) {
        self.name = name
        self.kind = kind
        self.isRequired = required
        self.mirrors = mirrors
        self.summary = summary
    }

    /// The kind as `topics.md` names it.
    public var kindDescription: String {
        switch kind {
        case .identifier: "string (id)"
        case .text: "string"
        case .integer(let range) where range.upperBound == .max: "integer ≥ \(range.lowerBound)"
        case .integer(let range): "integer \(range.lowerBound)–\(range.upperBound)"
        case .timestamp: "string (RFC 3339)"
        case .choice(let values): values.map { "`\($0)`" }.joined(separator: ", ")
        }
    }

    /// Checks one member's value (`nil` when absent); returns the instant a timestamp member holds.
    func check(_ value: JSONValue?, of event: Event) throws(EventDataError) -> EventTimestamp? {
        guard let value, !value.isNull else {
            guard isRequired else { return nil }
            throw EventDataError(.missingField, type: event.eventType, field: name, detail: "the key \"\(name)\" is required")
        }
        var instant: EventTimestamp?
        switch kind {
        case .identifier:
            let text = try string(value, event)
            guard !text.utf8.isEmpty, text.utf8.count <= Self.maximumIdentifierLength else {
                throw invalid(event, "must be 1 to \(Self.maximumIdentifierLength) bytes long, not \(text.utf8.count)")
            }
            guard !Self.hasControlCharacter(text) else {
                throw invalid(event, "must not contain control characters")
            }
        case .text:
            _ = try string(value, event)
        case .integer(let range):
            guard let number = value.intValue else { throw wrongType(event, "a whole number", value) }
            guard range.contains(number) else { throw invalid(event, "must be \(kindDescription), not \(number)") }
        case .timestamp:
            let text = try string(value, event)
            do {
                instant = try EventTimestamp(rfc3339: text)
            } catch {
                throw invalid(event, "must be an RFC 3339 time: \(error.detail)")
            }
        case .choice(let values):
            let text = try string(value, event)
            guard values.contains(text) else {
                throw invalid(event, "must be one of \(values.joined(separator: ", ")), not \(text.debugDescription)")
            }
        }
        if let mirrors {
            let envelope = mirrors == .sessionId ? event.sessionId : event.projectId
            guard value.stringValue == envelope else {
                throw EventDataError(
                    .disagreesWithEnvelope, type: event.eventType, field: name,
                    detail: "\(name) is \(value.jsonString) but the event's \(mirrors.key) is \(envelope.debugDescription); they must be the same")
            }
        }
        return instant
    }

    /// Whether `text` has a C0 or C1 control character (U+0000–U+001F, U+007F–U+009F), read
    /// from its UTF-8: the C1 ones are 0xC2 0x80–0x9F there.
    static func hasControlCharacter(_ text: String) -> Bool {
        var afterC2 = false
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F || (afterC2 && byte < 0xA0) { return true }
            afterC2 = byte == 0xC2
        }
        return false
    }

    private func string(_ value: JSONValue, _ event: Event) throws(EventDataError) -> String {
        guard let text = value.stringValue else { throw wrongType(event, "a string", value) }
        return text
    }

    private func wrongType(_ event: Event, _ expected: String, _ value: JSONValue) -> EventDataError {
        let shown = value.jsonString
        let found = shown.utf8.count > 40 ? String(shown.prefix(40)) + "…" : shown
        return EventDataError(.wrongType, type: event.eventType, field: name, detail: "\(name) must be \(expected), not \(found)")
    }

    private func invalid(_ event: Event, _ detail: String) -> EventDataError {
        EventDataError(.invalidValue, type: event.eventType, field: name, detail: "\(name) \(detail)")
    }
}

/// Why an event's `data` does not have the members its type declares. The envelope itself was
/// valid: such an event is still stored, and flagged by the reducer that reads it.
public struct EventDataError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case notAnObject, missingField, wrongType, invalidValue, disagreesWithEnvelope
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// `data` is not a JSON object, though the type declares members.
        public static let notAnObject = Code(.notAnObject)
        /// A required member is absent or `null`.
        public static let missingField = Code(.missingField)
        /// A member holds the wrong kind of JSON value.
        public static let wrongType = Code(.wrongType)
        /// A member's value is out of range, not one of the allowed values, not a time, ….
        public static let invalidValue = Code(.invalidValue)
        /// A member that repeats `session_id` or `project_id` says something else.
        public static let disagreesWithEnvelope = Code(.disagreesWithEnvelope)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let type: EventType
    /// The member concerned, if one is.
    public let field: String?
    public let detail: String

    public init(_ code: Code, type: EventType, field: String? = nil, detail: String) {
        self.code = code
        self.type = type
        self.field = field
        self.detail = detail
    }

    public var description: String { "invalid data for \(type.rawValue): \(detail)" }
}

/// An event's `data` once checked against its type's members: their values, and the member
/// `at` read as an instant when the type declares it.
public struct CheckedData: Sendable {
    private let fields: [EventDataField]
    /// The value of each of `fields`, in their order (`nil` when absent).
    private let values: [JSONValue?]
    public let at: EventTimestamp?

    fileprivate init(fields: [EventDataField], values: [JSONValue?], at: EventTimestamp?) {
        self.fields = fields
        self.values = values
        self.at = at
    }

    /// The value of the declared member `name` (`nil` when absent, `null`, or not declared).
    public subscript(name: String) -> JSONValue? {
        for index in fields.indices where fields[index].name == name {
            guard let value = values[index], !value.isNull else { return nil }
            return value
        }
        return nil
    }
}

extension EventType {
    /// Checks `event`'s `data` against the members this type declares; extra members are
    /// allowed. Types without declared members (the orchestrator's) accept any `data`.
    public func validate(_ event: Event) throws(EventDataError) {
        _ = try checkedData(of: event)
    }

    /// ``validate(_:)``, returning the declared members' values as it read them.
    public func checkedData(of event: Event) throws(EventDataError) -> CheckedData {
        let fields = self.fields
        guard !fields.isEmpty else { return CheckedData(fields: [], values: [], at: nil) }
        guard case .object(let members) = event.data else {
            throw EventDataError(.notAnObject, type: self, detail: "data must be a JSON object with \(fields.map(\.name).joined(separator: ", "))")
        }
        var at: EventTimestamp?
        var values: [JSONValue?] = []
        values.reserveCapacity(fields.count)
        for field in fields {
            let value = members[field.name]
            let instant = try field.check(value, of: event)
            if field.name == "at" { at = instant }
            values.append(value)
        }
        return CheckedData(fields: fields, values: values, at: at)
    }

    /// The members `data` must have, from the table (made once per type, not for every event).
    public var fields: [EventDataField] { Self.fieldsByType[self] ?? [] }

    private static let fieldsByType: [EventType: [EventDataField]] = Dictionary(
        uniqueKeysWithValues: allCases.compactMap { type in type.entry.fields.isEmpty ? nil : (type, type.entry.fields) })

    /// The member of `data` that repeats `session_id`, if the type has one.
    public var sessionField: String? { fields.first { $0.mirrors == .sessionId }?.name }
}

extension Event {
    /// Checks `data` against the members the event's type declares (``EventType/validate(_:)``).
    public func validateData() throws(EventDataError) {
        try eventType.validate(self)
    }
}
