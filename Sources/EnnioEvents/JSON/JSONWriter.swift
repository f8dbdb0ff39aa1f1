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
        appendInt(value)
    }

    /// Writes the shortest text that reads back as the same `Double` (always with a `.` or an
    /// exponent, so `1.0` stays `1.0`). JSON has no infinities or NaN: those are written `null`.
    public mutating func double(_ value: Double) {
        separate()
        appendDouble(value)
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
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .int(let number): int(number)
        case .double(let number): double(number)
        case .string(let text): string(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members):
            beginObject()
            if members.count == 1, let only = members.first {
                key(only.key)
                self.value(only.value)
            } else if !members.isEmpty {
                for (name, member) in members.sorted(by: { Self.utf8Precedes($0.key, $1.key) }) {
                    key(name)
                    self.value(member)
                }
            }
            endObject()
        }
    }

    // MARK: - Implementation

    @inline(__always)
    private mutating func separate() {
        guard depth > 0, let last = bytes.last else { return }
        switch last {
        case Self.openBrace, Self.openBracket, Self.colon, Self.comma: return
        default: bytes.append(Self.comma)
        }
    }

    /// Appends bytes as they are (no separator, no escaping): for pre-formatted JSON.
    @inline(__always)
    mutating func appendRaw(_ literal: StaticString) {
        literal.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func appendLiteral(_ literal: StaticString) {
        literal.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func appendString(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in Self.appendEscaped(utf8, to: &bytes) }
    }

    /// Appends `utf8` as a quoted JSON string. Runs of bytes that need no escaping are copied in
    /// bulk, found eight bytes at a time.
    private static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to buffer: inout [UInt8]) {
        let count = utf8.count
        buffer.reserveCapacity(buffer.count + count + 2)
        buffer.append(quote)
        var runStart = 0
        var index = 0
        while true {
            while index &+ 8 <= count {
                let word = UnsafeRawPointer(utf8.baseAddress.unsafelyUnwrapped + index).loadUnaligned(as: UInt64.self)
                if needsEscaping(word) { break }
                index &+= 8
            }
            guard index < count else { break }
            let byte = utf8[index]
            if byte >= 0x20 && byte != quote && byte != backslash {
                index &+= 1
                continue
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            buffer.append(backslash)
            switch byte {
            case quote: buffer.append(quote)
            case backslash: buffer.append(backslash)
            case 0x0A: buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(UInt8(ascii: "r"))
            case 0x09: buffer.append(UInt8(ascii: "t"))
            case 0x08: buffer.append(UInt8(ascii: "b"))
            case 0x0C: buffer.append(UInt8(ascii: "f"))
            default:
                buffer.append(UInt8(ascii: "u"))
                buffer.append(UInt8(ascii: "0"))
                buffer.append(UInt8(ascii: "0"))
                buffer.append(hexDigit(byte >> 4))
                buffer.append(hexDigit(byte & 0x0F))
            }
            index &+= 1
            runStart = index
        }
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<count]))
        buffer.append(quote)
    }

    /// True if any of the eight bytes is `"`, `\` or below 0x20.
    @inline(__always)
    private static func needsEscaping(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* UInt64(quote))
        let backslashes = word ^ (ones &* UInt64(backslash))
        let hasQuote = (quotes &- ones) & ~quotes
        let hasBackslash = (backslashes &- ones) & ~backslashes
        let hasControl = (word &- ones &* 0x20) & ~word
        return (hasQuote | hasBackslash | hasControl) & highs != 0
    }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    private mutating func appendInt(_ value: Int64) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var magnitude = value.magnitude
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            if value < 0 {
                start -= 1
                digits[start] = UInt8(ascii: "-")
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start..<20]))
        }
    }

    private mutating func appendDouble(_ value: Double) {
        guard value.isFinite else {
            appendLiteral("null")
            return
        }
        // Whole numbers below 10^15 are printed by `description` as digits and ".0"; do that
        // without building a String.
        if value.magnitude < 1e15, value.rounded(.towardZero) == value {
            if value == 0 {
                appendLiteral(value.sign == .minus ? "-0.0" : "0.0")
            } else {
                appendInt(Int64(value))
                appendLiteral(".0")
            }
            return
        }
        // `description` is the shortest text that round-trips. Its exponent is written like
        // "e+16" or "e-07"; serde_json writes "e16" and "e-7", which is also what is written here.
        var text = value.description
        text.withUTF8 { utf8 in
            guard let marker = utf8.firstIndex(of: UInt8(ascii: "e")) else {
                bytes.append(contentsOf: utf8)
                if !utf8.contains(UInt8(ascii: ".")) { appendLiteral(".0") }
                return
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[...marker]))
            var index = marker + 1
            if index < utf8.count, utf8[index] == UInt8(ascii: "+") || utf8[index] == UInt8(ascii: "-") {
                if utf8[index] == UInt8(ascii: "-") { bytes.append(UInt8(ascii: "-")) }
                index += 1
            }
            while index < utf8.count - 1, utf8[index] == UInt8(ascii: "0") { index += 1 }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[index...]))
        }
    }

    /// Orders strings by their UTF-8 bytes (which is also Unicode scalar order), as serde_json's
    /// default map does; Swift's `<` compares canonical equivalents instead.
    private static func utf8Precedes(_ lhs: String, _ rhs: String) -> Bool {
        var lhs = lhs
        var rhs = rhs
        return lhs.withUTF8 { left in
            rhs.withUTF8 { right in
                let common = min(left.count, right.count)
                var index = 0
                while index < common {
                    if left[index] != right[index] { return left[index] < right[index] }
                    index += 1
                }
                return left.count < right.count
            }
        }
    }

    private static var openBrace: UInt8 { 0x7B }
    private static var closeBrace: UInt8 { 0x7D }
    private static var openBracket: UInt8 { 0x5B }
    private static var closeBracket: UInt8 { 0x5D }
    private static var colon: UInt8 { 0x3A }
    private static var comma: UInt8 { 0x2C }
    private static var quote: UInt8 { 0x22 }
    private static var backslash: UInt8 { 0x5C }
}
