/// Writes compact JSON into a byte buffer, the way serde_json does: no spaces, `/` and
/// non-ASCII text written as is, only `"`, `\` and control characters escaped.
///
/// Separators are automatic: inside an array or object, every value and every key is preceded
/// by a `,` unless it is the first one (or a key's value). The writer decides by looking at the
/// last byte written, so text appended to `bytes` directly (say, a pre-formatted string value)
/// counts as a value too. The caller is responsible for pairing `begin…`/`end…` and for calling
/// `key(_:)` before each object member.
public struct JSONWriter: Sendable {
    /// Everything written so far.
    public var bytes: [UInt8]
    /// Open arrays and objects; at depth 0 nothing is separated, so a writer can append one
    /// value to a buffer that already holds something else.
    private var depth = 0

    public init() {
        bytes = []
    }

    /// A writer that appends to `bytes`.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public init(reservingCapacity capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // MARK: - Structure

    public mutating func beginObject() {
        separate()
        bytes.append(Self.openBrace)
        depth += 1
    }

    public mutating func endObject() {
        bytes.append(Self.closeBrace)
        depth -= 1
    }

    public mutating func beginArray() {
        separate()
        bytes.append(Self.openBracket)
        depth += 1
    }

    public mutating func endArray() {
        bytes.append(Self.closeBracket)
        depth -= 1
    }

    /// Writes an object key and the `:` after it (and a `,` before it if needed).
    public mutating func key(_ name: String) {
        separate()
        appendString(name)
        bytes.append(Self.colon)
    }

    // MARK: - Values

    public mutating func string(_ value: String) {
        separate()
        appendString(value)
    }

    public mutating func int(_ value: Int64) {
        separate()
        appendUnsafe(exactly: UnsafeJSONOutput.maximumIntLength) { $0.writeInt(value) }
    }

    /// Writes the shortest text that reads back as the same `Double` (always with a `.` or an
    /// exponent, so `1.0` stays `1.0`). JSON has no infinities or NaN: those are written `null`.
    public mutating func double(_ value: Double) {
        separate()
        appendUnsafe(exactly: UnsafeJSONOutput.maximumDoubleLength) { $0.writeDouble(value) }
    }

    /// Writes a number read from JSON as the text it was read as.
    public mutating func number(_ value: JSONNumber) {
        separate()
        appendUnsafe(exactly: value.text.utf8.count) { $0.writeNumber(value) }
    }

    public mutating func bool(_ value: Bool) {
        separate()
        appendLiteral(value ? "true" : "false")
    }

    public mutating func null() {
        separate()
        appendLiteral("null")
    }

    /// Writes any value; object members in the order of their keys' UTF-8 bytes.
    public mutating func value(_ value: JSONValue) {
        // Usually in one piece, through a pointer.
        if let reserved = UnsafeJSONOutput.reservedLength(of: value, exact: false, upTo: Self.pieceLimit) {
            appendUnsafeValue(reserving: reserved, exactly: Self.exactLength, value) { $0.writeValue($1) }
            return
        }
        // Too long for that: containers member by member (each in one piece if it can be).
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .int(let number): int(number)
        case .double(let number): double(number)
        case .number(let number): self.number(number)
        case .string(let text): string(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members):
            beginObject()
            for (name, member) in members.sorted(by: { UnsafeJSONOutput.utf8Precedes($0.key, $1.key) }) {
                key(name)
                self.value(member)
            }
            endObject()
        }
    }

    // MARK: - Implementation

    /// The most bytes written through a pointer at once (temporary memory, usually on the stack).
    private static var pieceLimit: Int { 16 * 1024 }

    @inline(__always)
    private mutating func separate() {
        guard depth > 0, let last = bytes.last else { return }
        switch last {
        case Self.openBrace, Self.openBracket, Self.colon, Self.comma: return
        default: bytes.append(Self.comma)
        }
    }

    private mutating func appendLiteral(_ literal: StaticString) {
        literal.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func appendString(_ value: String) {
        let reserved = UnsafeJSONOutput.reservedLength(of: value, exact: false)
        if reserved <= Self.pieceLimit {
            appendUnsafe(reserving: reserved, exactly: Self.exactLength, value) { $0.writeString($1) }
            return
        }
        // A long string in pieces: escaping works byte by byte, so any split will do.
        withUTF8Bytes(of: value) { utf8 in
            bytes.append(Self.quote)
            let pieceLength = Self.pieceLimit / 6
            var start = 0
            while start < utf8.count {
                let piece = UnsafeBufferPointer(rebasing: utf8[start..<min(start + pieceLength, utf8.count)])
                appendUnsafe(exactly: 6 * piece.count) { $0.writeStringContents(piece) }
                start += piece.count
            }
            bytes.append(Self.quote)
        }
    }

    private static func exactLength(_ text: String) -> Int {
        UnsafeJSONOutput.reservedLength(of: text, exact: true)
    }

    private static func exactLength(_ value: JSONValue) -> Int {
        UnsafeJSONOutput.reservedLength(of: value, exact: true, upTo: .max).unsafelyUnwrapped
    }

    // MARK: - Writing through a pointer

    /// Room beyond an optimistic reservation, for escapes (see `UnsafeJSONOutput`).
    static var spareRoom: Int { 128 }
    /// Temporary memory up to this size is on the stack.
    static var stackLimit: Int { 1024 }

    /// A value (after a separator if one is needed) written by `body` from `source`: see
    /// `appendUnsafe(reserving:exactly:_:_:)`.
    @inline(__always)
    mutating func appendUnsafeValue<Source>(
        reserving reserved: Int, exactly exact: (Source) -> Int, _ source: Source,
        _ body: (inout UnsafeJSONOutput, Source) -> Void
    ) {
        separate()
        appendUnsafe(reserving: reserved, exactly: exact, source, body)
    }

    /// Appends what `body` writes from `source` through a pointer (no separator, no checks):
    /// first with `reserved` bytes reserved optimistically (see `UnsafeJSONOutput`), and if
    /// that turns out too little, again with `exact(source)` bytes. `source` is passed rather
    /// than captured, which can cost a copy.
    @inline(__always)
    mutating func appendUnsafe<Source>(
        reserving reserved: Int, exactly exact: (Source) -> Int, _ source: Source,
        _ body: (inout UnsafeJSONOutput, Source) -> Void
    ) {
        if appendUnsafe(capacity: reserved &+ Self.spareRoom, spare: Self.spareRoom, source, body) { return }
        let written = appendUnsafe(capacity: exact(source), spare: .max, source, body)
        assert(written, "an exact reservation was too small")
    }

    /// Appends what `body` writes, with `capacity` bytes reserved exactly.
    mutating func appendUnsafe(exactly capacity: Int, _ body: (inout UnsafeJSONOutput) -> Void) {
        let written = appendUnsafe(capacity: capacity, spare: .max, ()) { output, _ in body(&output) }
        assert(written, "an exact reservation was too small")
    }

    /// Lets `body` write into `capacity` bytes of temporary memory, `spare` of them beyond the
    /// reservations, and appends what it wrote unless the output overflowed; returns whether
    /// it did.
    @inline(__always)
    private mutating func appendUnsafe<Source>(
        capacity: Int, spare: Int, _ source: Source, _ body: (inout UnsafeJSONOutput, Source) -> Void
    ) -> Bool {
        let capacity = max(capacity, 1)
        guard capacity <= Self.stackLimit else {
            let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            defer { scratch.deallocate() }
            return append(from: scratch, capacity: capacity, spare: spare, source, body)
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { scratch in
            append(from: scratch.baseAddress.unsafelyUnwrapped, capacity: capacity, spare: spare, source, body)
        }
    }

    @inline(__always)
    private mutating func append<Source>(
        from scratch: UnsafeMutablePointer<UInt8>, capacity: Int, spare: Int, _ source: Source,
        _ body: (inout UnsafeJSONOutput, Source) -> Void
    ) -> Bool {
        var output = UnsafeJSONOutput(start: scratch, capacity: capacity, spare: spare)
        body(&output, source)
        guard !output.overflowed else { return false }
        assert(output.count <= capacity, "wrote more than the room reserved")
        bytes.append(contentsOf: UnsafeBufferPointer(start: scratch, count: output.count))
        return true
    }

    private static var openBrace: UInt8 { 0x7B }
    private static var closeBrace: UInt8 { 0x7D }
    private static var openBracket: UInt8 { 0x5B }
    private static var closeBracket: UInt8 { 0x5D }
    private static var colon: UInt8 { 0x3A }
    private static var comma: UInt8 { 0x2C }
    private static var quote: UInt8 { 0x22 }
}
