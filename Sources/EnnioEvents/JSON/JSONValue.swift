/// Any JSON value (the `data` field of an event).
///
/// Numbers keep the distinction JSON text makes visible: a number written without a fraction or
/// an exponent that fits in `Int64` is read as `.int`; every other number is read as `.number`,
/// which keeps its text, so that writing it again gives the bytes that arrived (`1e14` stays
/// `1e14`, `-0` stays `-0`, a 30-digit integer keeps every digit). Code that builds values uses
/// `.int` and `.double`; `.double` is written as the shortest text that reads back as the same
/// `Double`.
///
/// Equality: `.double` and `.number` are equal when their `Double` values are (`1e2`, `100.0`
/// and `.double(100)` are the same value); an `.int` equals only the same `.int`, as before.
///
/// Objects are Swift dictionaries, so two keys that are canonically equivalent Unicode strings
/// (say, a precomposed and a decomposed "é") are the same key; the last one read wins.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number without fraction or exponent that fits in `Int64`.
    case int(Int64)
    /// A number made in code. The writer turns infinities and NaN, which JSON cannot express,
    /// into `null`.
    case double(Double)
    /// A number read from JSON text that is not an `Int64` integer, with its text.
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue {
    /// The `Double` of a number that is not an `.int`: what `.double` and `.number` compare by.
    private var fractionalValue: Double? {
        switch self {
        case .double(let value): value
        case .number(let number): number.doubleValue
        default: nil
        }
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let left), .bool(let right)): return left == right
        case (.int(let left), .int(let right)): return left == right
        case (.string(let left), .string(let right)): return left == right
        case (.array(let left), .array(let right)): return left == right
        case (.object(let left), .object(let right)): return left == right
        case (.number(let left), .number(let right)): return left == right
        default:
            guard let left = lhs.fractionalValue, let right = rhs.fractionalValue else { return false }
            return left == right
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .bool(let value):
            hasher.combine(1 as UInt8)
            hasher.combine(value)
        case .int(let value):
            hasher.combine(2 as UInt8)
            hasher.combine(value)
        case .double, .number:
            hasher.combine(3 as UInt8)
            hasher.combine(fractionalValue.unsafelyUnwrapped)
        case .string(let value):
            hasher.combine(4 as UInt8)
            hasher.combine(value)
        case .array(let value):
            hasher.combine(5 as UInt8)
            hasher.combine(value)
        case .object(let value):
            hasher.combine(6 as UInt8)
            hasher.combine(value)
        }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    /// Repeated keys: the last one wins, as when parsing.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

// MARK: - Access

extension JSONValue {
    /// The member named `key` if this is an object that has one; `nil` otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The element at `index` if this is an array that long; `nil` otherwise.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let elements) = self, elements.indices.contains(index) { return elements[index] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// The number as a `Double`, whether it is an `.int`, a `.double` or a `.number`.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        case .number(let number): return number.doubleValue
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

// MARK: - Parsing and encoding

extension JSONValue {
    /// Parses one complete JSON text (RFC 8259): one value, optionally surrounded by whitespace.
    /// Anything else after the value is `.trailingData`.
    public init(parsing bytes: some Collection<UInt8>) throws(JSONError) {
        let result: Result<JSONValue, JSONError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONError) in try JSONValue.parseDocument(buffer) }
        }
        if let result {
            self = try result.get()
            return
        }
        let copy = Array(bytes)
        self = try copy.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONError) in try JSONValue.parseDocument(buffer) }
        }.get()
    }

    /// Parses one complete JSON text held in a string.
    public init(parsing text: String) throws(JSONError) {
        var text = text
        self = try text.withUTF8 { buffer in
            Result { () throws(JSONError) in try JSONValue.parseDocument(buffer) }
        }.get()
    }

    private static func parseDocument(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONError) -> JSONValue {
        var reader = JSONReader(bytes: buffer)
        let value = try reader.readValue()
        try reader.expectEnd()
        return value
    }

    /// Compact JSON: no spaces, object keys sorted by their UTF-8 bytes (like serde_json's default
    /// map), strings escaped as serde_json does.
    public var jsonString: String {
        var buffer: [UInt8] = []
        encode(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Appends the compact JSON text of this value to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        var writer = JSONWriter()
        swap(&writer.bytes, &buffer)
        writer.value(self)
        swap(&writer.bytes, &buffer)
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text.
    public var description: String { jsonString }
}

// MARK: - Errors

/// Why bytes are not the JSON that was expected.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong. New codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case unexpectedEnd
            case unexpectedCharacter
            case invalidNumber
            case invalidString
            case tooDeep
            case trailingData
            case typeMismatch
            case missingField
            case invalidTimestamp
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input ends in the middle of a value.
        public static let unexpectedEnd = Code(.unexpectedEnd)
        /// A byte that cannot appear here (not a value, a missing `,` `:` `]` `}`, a bad literal).
        public static let unexpectedCharacter = Code(.unexpectedCharacter)
        /// A number outside the RFC 8259 grammar (leading zero, `+`, bare `.`, …) or too large
        /// for a `Double`.
        public static let invalidNumber = Code(.invalidNumber)
        /// A bad escape, a raw control character, invalid UTF-8 or a lone surrogate in a string.
        public static let invalidString = Code(.invalidString)
        /// Arrays and objects nested deeper than `JSONReader.maximumDepth`.
        public static let tooDeep = Code(.tooDeep)
        /// Something other than whitespace after a complete value.
        public static let trailingData = Code(.trailingData)
        /// A valid value, but not of the kind asked for (a number where a string is read, …).
        public static let typeMismatch = Code(.typeMismatch)
        /// A required object member is absent.
        public static let missingField = Code(.missingField)
        /// A string that is not an RFC 3339 timestamp in the supported range.
        public static let invalidTimestamp = Code(.invalidTimestamp)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Byte offset where the problem was found (0 when not applicable).
    public let offset: Int
    /// Human-readable explanation.
    public let detail: String

    public init(_ code: Code, offset: Int, detail: String) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        "JSON error (\(code)) at byte \(offset): \(detail)"
    }
}
