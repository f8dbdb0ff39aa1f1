/// The headers of a NATS message: an ordered, multi-valued list of name/value fields, plus
/// the optional status line of the `NATS/1.0` block (for example `503` for "no responders").
///
/// Names are matched exactly (case-sensitive), as nats.go does; order and repeated names are
/// kept as received. A dictionary literal may repeat a name to give it several values:
/// `["Tag": "a", "Tag": "b"]`.
public struct NATSHeaders: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    /// One `Name: value` line.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// All fields in order; a name appears once per value.
    public private(set) var fields: [Field]
    /// The status code of the block's first line (`NATS/1.0 503`), if any.
    public var status: Int?
    /// The text after the status code (`No Responders`), if any.
    public var statusDescription: String?

    public init() {
        fields = []
    }

    public init(_ pairs: [(String, String)]) {
        fields = pairs.map { Field(name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// True when there are neither fields nor a status.
    public var isEmpty: Bool { fields.isEmpty && status == nil }

    /// The first value for `name`; setting replaces every value (`nil` removes the name).
    public subscript(name: String) -> String? {
        get { fields.first { $0.name == name }?.value }
        set {
            removeAll(named: name)
            if let newValue { append(newValue, for: name) }
        }
    }

    /// Every value for `name`, in order.
    public func values(for name: String) -> [String] {
        fields.compactMap { $0.name == name ? $0.value : nil }
    }

    /// Adds one more value for `name`, keeping the existing ones.
    public mutating func append(_ value: String, for name: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Removes every value for `name`.
    public mutating func removeAll(named name: String) {
        fields.removeAll { $0.name == name }
    }

    /// The first field whose name or value cannot be sent on the wire, if any.
    ///
    /// A name must be non-empty printable ASCII without `:`; a value must not contain CR or LF.
    public var firstInvalidField: Field? {
        fields.first { field in
            field.name.isEmpty
                || field.name.utf8.contains { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: ":") }
                || field.value.utf8.contains { $0 == 0x0D || $0 == 0x0A }
        }
    }
}

extension NATSHeaders {
    static let versionLine: [UInt8] = Array("NATS/1.0".utf8)

    /// The number of bytes `encode(into:)` writes.
    public var encodedCount: Int {
        var count = Self.versionLine.count + 2 + 2
        if let status {
            count += 1 + String(status).utf8.count
            if let statusDescription { count += 1 + statusDescription.utf8.count }
        }
        for field in fields { count += field.name.utf8.count + 2 + field.value.utf8.count + 2 }
        return count
    }

    /// Writes the header block, `NATS/1.0` line to the empty line that ends it.
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: Self.versionLine)
        if let status {
            buffer.append(UInt8(ascii: " "))
            buffer.append(contentsOf: String(status).utf8)
            if let statusDescription {
                buffer.append(UInt8(ascii: " "))
                buffer.append(contentsOf: statusDescription.utf8)
            }
        }
        buffer.append(contentsOf: crlf)
        for field in fields {
            buffer.append(contentsOf: field.name.utf8)
            buffer.append(UInt8(ascii: ":"))
            buffer.append(UInt8(ascii: " "))
            buffer.append(contentsOf: field.value.utf8)
            buffer.append(contentsOf: crlf)
        }
        buffer.append(contentsOf: crlf)
    }

    /// Parses a complete header block as it arrives in an `HMSG`.
    ///
    /// - Throws: ``ProtocolError/Code/malformedHeaders`` when the block does not start with
    ///   `NATS/1.0`, a line has no `:`, or the block is not terminated by an empty line.
    public static func parse(_ block: ArraySlice<UInt8>) throws(ProtocolError) -> NATSHeaders {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = block.startIndex
        var index = block.startIndex
        var terminated = false
        while index < block.endIndex {
            if block[index] == 0x0A, index > lineStart, block[index - 1] == 0x0D {
                let line = block[lineStart..<(index - 1)]
                if line.isEmpty {
                    terminated = index + 1 == block.endIndex
                    break
                }
                lines.append(line)
                lineStart = index + 1
            }
            index += 1
        }
        guard terminated, let first = lines.first, first.starts(with: versionLine) else {
            throw ProtocolError(.malformedHeaders, context: block)
        }

        var headers = NATSHeaders()
        let statusPart = first.dropFirst(versionLine.count)
        if !statusPart.isEmpty {
            guard statusPart.first == UInt8(ascii: " ") || statusPart.first == UInt8(ascii: "\t") else {
                throw ProtocolError(.malformedHeaders, context: block)
            }
            let trimmed = statusPart.trimmingSpaces()
            if !trimmed.isEmpty {
                let codeEnd = trimmed.firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") } ?? trimmed.endIndex
                guard let code = parseDecimal(trimmed[trimmed.startIndex..<codeEnd]), code <= 999 else {
                    throw ProtocolError(.malformedHeaders, context: block)
                }
                headers.status = code
                let description = trimmed[codeEnd...].trimmingSpaces()
                if !description.isEmpty {
                    headers.statusDescription = String(decoding: description, as: UTF8.self)
                }
            }
        }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw ProtocolError(.malformedHeaders, context: block)
            }
            let name = line[line.startIndex..<colon].trimmingSpaces()
            guard !name.isEmpty else { throw ProtocolError(.malformedHeaders, context: block) }
            let value = line[(colon + 1)...].trimmingSpaces()
            headers.append(String(decoding: value, as: UTF8.self), for: String(decoding: name, as: UTF8.self))
        }
        return headers
    }
}

let crlf: [UInt8] = [0x0D, 0x0A]

extension ArraySlice<UInt8> {
    func trimmingSpaces() -> ArraySlice<UInt8> {
        var slice = self
        while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
        while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
        return slice
    }
}

/// Parses an unsigned decimal number of at most 18 digits; `nil` for anything else.
func parseDecimal(_ digits: ArraySlice<UInt8>) -> Int? {
    guard !digits.isEmpty, digits.count <= 18 else { return nil }
    var value = 0
    for byte in digits {
        guard byte >= 0x30, byte <= 0x39 else { return nil }
        value = value * 10 + Int(byte - 0x30)
    }
    return value
}
