/// Reads JSON (RFC 8259) straight from bytes, either as whole `JSONValue`s or piece by piece.
///
/// The reader does not own its bytes: create it inside `withUnsafeBufferPointer` (or similar)
/// and do not let it outlive the buffer. Every read skips leading whitespace, validates what it
/// consumes (grammar, escapes, UTF-8, nesting depth) and leaves `offset` just after the value.
///
/// Streaming use, for an object whose shape is known:
///
///     var reader = JSONReader(bytes: buffer)
///     try reader.readObject { key, reader throws(JSONError) in
///         switch key {
///         case "name": name = try reader.readString()
///         default: try reader.skipValue()
///         }
///     }
///     try reader.expectEnd()
public struct JSONReader {
    /// Deepest nesting of arrays and objects accepted; one more is `.tooDeep`.
    public static let maximumDepth = 256

    private let bytes: UnsafeBufferPointer<UInt8>
    /// Byte offset of the next unread byte.
    public private(set) var offset: Int = 0
    private var depth = 0

    public init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    // MARK: - Public reads

    /// Reads one value of any kind.
    public mutating func readValue() throws(JSONError) -> JSONValue {
        let byte = try peekNonWhitespace()
        switch byte {
        case Byte.openBrace: return .object(try parseObject())
        case Byte.openBracket: return .array(try parseArray())
        case Byte.quote: return .string(try parseString(materialize: true))
        case Byte.t:
            try parseLiteral(Byte.trueLiteral)
            return .bool(true)
        case Byte.f:
            try parseLiteral(Byte.falseLiteral)
            return .bool(false)
        case Byte.n:
            try parseLiteral(Byte.nullLiteral)
            return .null
        case Byte.minus, Byte.zero...Byte.nine:
            switch try parseNumber() {
            case .int(let value): return .int(value)
            case .other(let text, _): return .number(JSONNumber(validatedText: String(decoding: UnsafeBufferPointer(rebasing: bytes[text]), as: UTF8.self)))
            }
        default:
            throw notAValue(byte)
        }
    }

    /// Calls `body` for each member of the object that starts at the current position, in the
    /// order written, with the reader positioned at the member's value.
    ///
    /// `body` should consume the value with one of the read functions or `skipValue()`; if it
    /// consumes nothing, the value is skipped for it. A valid value other than an object here
    /// is `.typeMismatch`; invalid JSON is reported as such (`.unexpectedCharacter`, …). The
    /// same holds for the typed reads below.
    public mutating func readObject(_ body: (String, inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        let first = try peekNonWhitespace()
        guard first == Byte.openBrace else { throw mismatch(expected: "an object", found: first) }
        try forEachMember(decodingKeys: true) { key, reader throws(JSONError) in
            let valueStart = reader.offset
            try body(String(decoding: key, as: UTF8.self), &reader)
            if reader.offset == valueStart { try reader.skipValue() }
        }
    }

    /// `readObject(_:)` without making a `String` of each key: `body` gets the key's UTF-8
    /// bytes, with its escapes decoded (a key written `"\u0069d"` arrives as the two bytes
    /// `id`), so a key can be matched by comparing bytes.
    ///
    /// The bytes are valid UTF-8 and valid only during the call: they point into the input
    /// when the key has no escapes, into a temporary buffer when it does. The other rules are
    /// those of `readObject(_:)`.
    public mutating func readObjectWithKeyBytes(
        _ body: (UnsafeBufferPointer<UInt8>, inout JSONReader) throws(JSONError) -> Void
    ) throws(JSONError) {
        let first = try peekNonWhitespace()
        guard first == Byte.openBrace else { throw mismatch(expected: "an object", found: first) }
        try forEachMember(decodingKeys: true) { key, reader throws(JSONError) in
            let valueStart = reader.offset
            try body(key, &reader)
            if reader.offset == valueStart { try reader.skipValue() }
        }
    }

    /// Calls `body` once per element of the array that starts at the current position, with the
    /// reader positioned at the element. Same rules as `readObject(_:)`.
    public mutating func readArray(_ body: (inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        let first = try peekNonWhitespace()
        guard first == Byte.openBracket else { throw mismatch(expected: "an array", found: first) }
        try forEachElement { reader throws(JSONError) in
            let valueStart = reader.offset
            try body(&reader)
            if reader.offset == valueStart { try reader.skipValue() }
        }
    }

    /// Walks the members of the object at the current position (which must start with `{`);
    /// `body` gets each key's UTF-8 bytes (valid during the call only) and must consume the
    /// member's value. Escapes in keys are decoded only when asked for: without
    /// `decodingKeys`, a key with escapes is only validated and passed as no bytes.
    private mutating func forEachMember(
        decodingKeys: Bool,
        _ body: (UnsafeBufferPointer<UInt8>, inout JSONReader) throws(JSONError) -> Void
    ) throws(JSONError) {
        try enterContainer()
        offset += 1
        var byte = try peekNonWhitespace()
        if byte == Byte.closeBrace {
            offset += 1
            depth -= 1
            return
        }
        // Decoded keys with escapes; reused from one key to the next.
        var scratch: [UInt8] = []
        while true {
            guard byte == Byte.quote else {
                throw error(.unexpectedCharacter, at: offset, "expected a string key, found \(Self.describe(byte))")
            }
            let raw = try scanString(decodingInto: &scratch, decode: decodingKeys)
            try expectColon()
            skipWhitespace()
            if let raw {
                try body(UnsafeBufferPointer(start: bytes.baseAddress.unsafelyUnwrapped + raw.lowerBound, count: raw.count), &self)
            } else {
                try scratch.withUnsafeBufferPointer { (key) throws(JSONError) in try body(key, &self) }
            }
            byte = try peekNonWhitespace()
            if byte == Byte.comma {
                offset += 1
                byte = try peekNonWhitespace()
            } else if byte == Byte.closeBrace {
                offset += 1
                depth -= 1
                return
            } else {
                throw error(.unexpectedCharacter, at: offset, "expected ',' or '}' after an object member, found \(Self.describe(byte))")
            }
        }
    }

    /// Walks the elements of the array at the current position (which must start with `[`);
    /// `body` must consume each element.
    private mutating func forEachElement(_ body: (inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        try enterContainer()
        offset += 1
        if try peekNonWhitespace() == Byte.closeBracket {
            offset += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            try body(&self)
            let byte = try peekNonWhitespace()
            if byte == Byte.comma {
                offset += 1
            } else if byte == Byte.closeBracket {
                offset += 1
                depth -= 1
                return
            } else {
                throw error(.unexpectedCharacter, at: offset, "expected ',' or ']' after an array element, found \(Self.describe(byte))")
            }
        }
    }

    /// Reads a string; any other value is `.typeMismatch`.
    public mutating func readString() throws(JSONError) -> String {
        let byte = try peekNonWhitespace()
        guard byte == Byte.quote else { throw mismatch(expected: "a string", found: byte) }
        return try parseString(materialize: true)
    }

    /// Reads a string without making a `String` of it: `body` gets its UTF-8 bytes with the
    /// escapes decoded, and what `body` returns is returned. Any other value is
    /// `.typeMismatch`.
    ///
    /// The bytes are valid UTF-8 and valid only during the call: they point into the input
    /// when the string has no escapes, into a temporary buffer when it does.
    public mutating func readStringBytes<Output>(
        _ body: (UnsafeBufferPointer<UInt8>) throws(JSONError) -> Output
    ) throws(JSONError) -> Output {
        let byte = try peekNonWhitespace()
        guard byte == Byte.quote else { throw mismatch(expected: "a string", found: byte) }
        var scratch: [UInt8] = []
        if let raw = try scanString(decodingInto: &scratch, decode: true) {
            return try body(UnsafeBufferPointer(start: bytes.baseAddress.unsafelyUnwrapped + raw.lowerBound, count: raw.count))
        }
        return try scratch.withUnsafeBufferPointer { (decoded) throws(JSONError) in try body(decoded) }
    }

    /// Reads a number written as an integer that fits in `Int64`; any other value is
    /// `.typeMismatch`.
    public mutating func readInt() throws(JSONError) -> Int64 {
        let byte = try peekNonWhitespace()
        guard byte == Byte.minus || (Byte.zero...Byte.nine).contains(byte) else {
            throw mismatch(expected: "an integer", found: byte)
        }
        let start = offset
        if case .int(let value) = try parseNumber() { return value }
        throw error(.typeMismatch, at: start, "expected an integer, found a number that is not an Int64")
    }

    /// Reads any number as a `Double`; any other value is `.typeMismatch`.
    public mutating func readDouble() throws(JSONError) -> Double {
        let byte = try peekNonWhitespace()
        guard byte == Byte.minus || (Byte.zero...Byte.nine).contains(byte) else {
            throw mismatch(expected: "a number", found: byte)
        }
        switch try parseNumber() {
        case .int(let value): return Double(value)
        case .other(_, let value): return value
        }
    }

    /// Reads `true` or `false`; any other value is `.typeMismatch`.
    public mutating func readBool() throws(JSONError) -> Bool {
        let byte = try peekNonWhitespace()
        switch byte {
        case Byte.t:
            try parseLiteral(Byte.trueLiteral)
            return true
        case Byte.f:
            try parseLiteral(Byte.falseLiteral)
            return false
        default:
            throw mismatch(expected: "a boolean", found: byte)
        }
    }

    /// Returns `true` and consumes the value if the next value is `null`; returns `false` and
    /// consumes nothing (but whitespace) otherwise.
    public mutating func readNull() throws(JSONError) -> Bool {
        guard try peekNonWhitespace() == Byte.n else { return false }
        try parseLiteral(Byte.nullLiteral)
        return true
    }

    /// Consumes the next value, whatever it is, validating it without building it.
    public mutating func skipValue() throws(JSONError) {
        let byte = try peekNonWhitespace()
        switch byte {
        case Byte.openBrace:
            try forEachMember(decodingKeys: false) { _, reader throws(JSONError) in try reader.skipValue() }
        case Byte.openBracket:
            try forEachElement { reader throws(JSONError) in try reader.skipValue() }
        case Byte.quote:
            var unused: [UInt8] = []
            _ = try scanString(decodingInto: &unused, decode: false)
        case Byte.t:
            try parseLiteral(Byte.trueLiteral)
        case Byte.f:
            try parseLiteral(Byte.falseLiteral)
        case Byte.n:
            try parseLiteral(Byte.nullLiteral)
        case Byte.minus, Byte.zero...Byte.nine:
            _ = try parseNumber()
        default:
            throw notAValue(byte)
        }
    }

    /// Throws `.trailingData` unless only whitespace remains.
    public mutating func expectEnd() throws(JSONError) {
        skipWhitespace()
        if offset < bytes.count {
            throw error(.trailingData, at: offset, "unexpected \(Self.describe(bytes[offset])) after the JSON value")
        }
    }

    // MARK: - Structure

    @inline(__always)
    private mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case Byte.space, Byte.tab, Byte.lineFeed, Byte.carriageReturn: offset += 1
            default: return
            }
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    @inline(__always)
    private mutating func peekNonWhitespace() throws(JSONError) -> UInt8 {
        skipWhitespace()
        guard offset < bytes.count else {
            throw error(.unexpectedEnd, at: offset, "the input ends where a value or delimiter was expected")
        }
        return bytes[offset]
    }

    @inline(__always)
    private mutating func expectColon() throws(JSONError) {
        // Usually right after the key.
        if offset < bytes.count, bytes[offset] == Byte.colon {
            offset &+= 1
            return
        }
        let byte = try peekNonWhitespace()
        guard byte == Byte.colon else {
            throw error(.unexpectedCharacter, at: offset, "expected ':' after an object key, found \(Self.describe(byte))")
        }
        offset += 1
    }

    private mutating func enterContainer() throws(JSONError) {
        depth += 1
        if depth > Self.maximumDepth {
            throw error(.tooDeep, at: offset, "arrays and objects are nested more than \(Self.maximumDepth) deep")
        }
    }

    private mutating func parseObject() throws(JSONError) -> [String: JSONValue] {
        // Skips the first few regrowths for the small objects events carry (and, unlike
        // `reserveCapacity`, allocates the storage directly).
        var members = [String: JSONValue](minimumCapacity: 8)
        try forEachMember(decodingKeys: true) { key, reader throws(JSONError) in
            members[String(decoding: key, as: UTF8.self)] = try reader.readValue()
        }
        return members
    }

    private mutating func parseArray() throws(JSONError) -> [JSONValue] {
        var elements: [JSONValue] = []
        try forEachElement { reader throws(JSONError) in
            // Room for a few at once: no regrowth for the short arrays events carry.
            if elements.isEmpty { elements.reserveCapacity(4) }
            elements.append(try reader.readValue())
        }
        return elements
    }

    private mutating func parseLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        let expected = literal.utf8Start
        for index in 0..<count {
            guard offset + index < bytes.count else {
                throw error(.unexpectedEnd, at: offset + index, "the input ends inside the literal '\(literal)'")
            }
            guard bytes[offset + index] == expected[index] else {
                throw error(
                    .unexpectedCharacter, at: offset + index,
                    "expected the literal '\(literal)', found \(Self.describe(bytes[offset + index]))"
                )
            }
        }
        offset += count
    }

    // MARK: - Strings

    /// Parses the string whose opening quote is at `offset`. With `materialize == false` it only
    /// validates and returns "".
    private mutating func parseString(materialize: Bool) throws(JSONError) -> String {
        var scratch: [UInt8] = []
        let raw = try scanString(decodingInto: &scratch, decode: materialize)
        guard materialize else { return "" }
        guard let raw else { return String(decoding: scratch, as: UTF8.self) }
        // Already validated; `String(decoding:)` checks again, but with its all-ASCII fast path
        // that costs less than anything that avoids it.
        return String(
            decoding: UnsafeBufferPointer(start: bytes.baseAddress.unsafelyUnwrapped + raw.lowerBound, count: raw.count),
            as: UTF8.self
        )
    }

    /// Validates the string whose opening quote is at `offset` and moves past its closing quote.
    ///
    /// Returns the range of its contents in the input when it has no escapes: those bytes are
    /// the string. Returns `nil` when it has escapes; then, if `decode` is set, `scratch` holds
    /// the decoded bytes instead (its previous contents are replaced).
    @inline(__always)
    private mutating func scanString(decodingInto scratch: inout [UInt8], decode: Bool) throws(JSONError) -> Range<Int>? {
        // The usual string, plain ASCII up to its quote, is found here, inline; anything else
        // continues out of line from the first byte that needs a look.
        let base = bytes.baseAddress.unsafelyUnwrapped
        let count = bytes.count
        let start = offset &+ 1
        var index = start
        while index &+ 8 <= count {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            let attention = Self.attentionBits(word)
            if attention != 0 {
                index &+= attention.trailingZeroBitCount &>> 3
                if base[index] == Byte.quote {
                    offset = index &+ 1
                    return start..<index
                }
                break
            }
            index &+= 8
        }
        return try scanString(from: index, decodingInto: &scratch, decode: decode)
    }

    /// `scanString(decodingInto:decode:)` from `index`, where the bytes since the opening quote
    /// are known to be plain ASCII.
    private mutating func scanString(from index: Int, decodingInto scratch: inout [UInt8], decode: Bool) throws(JSONError) -> Range<Int>? {
        let base = bytes.baseAddress.unsafelyUnwrapped
        let count = bytes.count
        let start = offset &+ 1
        var index = index
        var runStart = start
        var escaped = false

        while true {
            // Skip plain ASCII eight bytes at a time, stopping exactly at the first byte that
            // needs a look.
            while index &+ 8 <= count {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
                let attention = Self.attentionBits(word)
                if attention != 0 {
                    index &+= attention.trailingZeroBitCount &>> 3
                    break
                }
                index &+= 8
            }
            guard index < count else {
                throw error(.unexpectedEnd, at: index, "the input ends inside a string")
            }
            let byte = base[index]
            if byte == Byte.quote {
                offset = index &+ 1
                guard escaped else { return start..<index }
                if decode {
                    scratch.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: index &- runStart))
                }
                return nil
            } else if byte == Byte.backslash {
                if decode {
                    if !escaped {
                        scratch.removeAll(keepingCapacity: true)
                        scratch.reserveCapacity(index &- runStart &+ 32)
                    }
                    scratch.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: index &- runStart))
                }
                escaped = true
                index = try parseEscape(at: index, into: &scratch, materialize: decode)
                runStart = index
            } else if byte < 0x20 {
                throw error(.invalidString, at: index, "the control character \(Self.hex(byte)) must be escaped in a string")
            } else if byte < 0x80 {
                index &+= 1
            } else {
                index = try validateUTF8Sequence(at: index)
            }
        }
    }

    /// The high bit of each of the eight bytes (in memory order, from the least significant
    /// byte) that is `"`, `\`, below 0x20 or above 0x7F. Bits above the lowest set one may be
    /// false alarms (a borrow in the subtraction), but the lowest one is exact.
    @inline(__always)
    private static func attentionBits(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* UInt64(Byte.quote))
        let backslashes = word ^ (ones &* UInt64(Byte.backslash))
        let hasQuote = (quotes &- ones) & ~quotes
        let hasBackslash = (backslashes &- ones) & ~backslashes
        let hasControl = (word &- ones &* 0x20) & ~word
        return (hasQuote | hasBackslash | hasControl | word) & highs
    }

    /// Decodes the escape whose backslash is at `index`; returns the index after it.
    private func parseEscape(at index: Int, into scratch: inout [UInt8], materialize: Bool) throws(JSONError) -> Int {
        guard index + 1 < bytes.count else {
            throw error(.unexpectedEnd, at: index + 1, "the input ends inside an escape")
        }
        let simple: UInt8
        switch bytes[index + 1] {
        case Byte.quote: simple = Byte.quote
        case Byte.backslash: simple = Byte.backslash
        case Byte.slash: simple = Byte.slash
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"):
            let unit = try hex4(at: index + 2)
            var scalar = UInt32(unit)
            var next = index + 6
            if (0xD800...0xDBFF).contains(unit) {
                func notFollowed() -> JSONError {
                    error(.invalidString, at: index, "the high surrogate \\u\(Self.hex4Text(unit)) is not followed by a low surrogate")
                }
                guard next < bytes.count else {
                    throw error(.unexpectedEnd, at: next, "the input ends after a high surrogate")
                }
                guard bytes[next] == Byte.backslash else { throw notFollowed() }
                guard next + 1 < bytes.count else {
                    throw error(.unexpectedEnd, at: next + 1, "the input ends after a high surrogate")
                }
                guard bytes[next + 1] == UInt8(ascii: "u") else { throw notFollowed() }
                let low = try hex4(at: next + 2)
                guard (0xDC00...0xDFFF).contains(low) else { throw notFollowed() }
                scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                next += 6
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw error(.invalidString, at: index, "the low surrogate \\u\(Self.hex4Text(unit)) has no high surrogate before it")
            }
            if materialize { Self.appendUTF8(scalar, to: &scratch) }
            return next
        default:
            throw error(.invalidString, at: index, "invalid escape \\\(Self.describeRaw(bytes[index + 1]))")
        }
        if materialize { scratch.append(simple) }
        return index + 2
    }

    private func hex4(at index: Int) throws(JSONError) -> UInt16 {
        var value: UInt16 = 0
        for position in index..<(index + 4) {
            guard position < bytes.count else {
                throw error(.unexpectedEnd, at: position, "the input ends inside a \\u escape")
            }
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case Byte.zero...Byte.nine: digit = byte - Byte.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default:
                throw error(.invalidString, at: position, "a \\u escape needs four hex digits, found \(Self.describe(byte))")
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    private static func appendUTF8(_ scalar: UInt32, to buffer: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            buffer.append(UInt8(scalar))
        case 0x80..<0x800:
            buffer.append(UInt8(0xC0 | scalar >> 6))
            buffer.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            buffer.append(UInt8(0xE0 | scalar >> 12))
            buffer.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            buffer.append(UInt8(0x80 | scalar & 0x3F))
        default:
            buffer.append(UInt8(0xF0 | scalar >> 18))
            buffer.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            buffer.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            buffer.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Checks the multi-byte UTF-8 sequence starting at `index` (RFC 3629: shortest form, no
    /// surrogates, nothing above U+10FFFF); returns the index after it.
    private func validateUTF8Sequence(at index: Int) throws(JSONError) -> Int {
        let lead = bytes[index]
        guard let (length, second) = UTF8Sequence.shape(lead: lead) else {
            throw error(.invalidString, at: index, "invalid UTF-8: \(Self.hex(lead)) cannot start a character")
        }
        var range = second
        for position in (index + 1)..<(index + length) {
            guard position < bytes.count else {
                throw error(.unexpectedEnd, at: position, "the input ends inside a UTF-8 sequence")
            }
            let byte = bytes[position]
            guard range.contains(byte) else {
                throw error(.invalidString, at: position, "invalid UTF-8: unexpected \(Self.hex(byte)) in a multi-byte sequence")
            }
            range = 0x80...0xBF
        }
        return index + length
    }

    // MARK: - Numbers

    /// A number just read: an integer that fits in `Int64`, or any other number with where its
    /// text is and its nearest `Double`.
    private enum ParsedNumber {
        case int(Int64)
        case other(text: Range<Int>, Double)
    }

    /// Parses the number that starts at `offset` (at a '-' or a digit).
    private mutating func parseNumber() throws(JSONError) -> ParsedNumber {
        let count = bytes.count
        let start = offset
        var index = offset
        var negative = false
        if bytes[index] == Byte.minus {
            negative = true
            index += 1
            guard index < count else {
                throw error(.unexpectedEnd, at: index, "the input ends after '-'")
            }
        }

        var magnitude: UInt64 = 0
        var overflow = false
        let first = bytes[index]
        if first == Byte.zero {
            index += 1
            if index < count, Self.isDigit(bytes[index]) {
                throw error(.invalidNumber, at: start, "numbers cannot have leading zeros")
            }
        } else if Self.isDigit(first) {
            while index < count, Self.isDigit(bytes[index]) {
                if !overflow {
                    let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times10.addingReportingOverflow(UInt64(bytes[index] &- Byte.zero))
                    if overflow1 || overflow2 { overflow = true } else { magnitude = sum }
                }
                index += 1
            }
        } else {
            throw error(.invalidNumber, at: index, "expected a digit after '-', found \(Self.describe(first))")
        }

        var isInteger = true
        if index < count, bytes[index] == Byte.dot {
            isInteger = false
            index += 1
            try requireDigit(at: index, after: "'.'")
            while index < count, Self.isDigit(bytes[index]) { index += 1 }
        }
        if index < count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            index += 1
            if index < count, bytes[index] == Byte.plus || bytes[index] == Byte.minus { index += 1 }
            try requireDigit(at: index, after: "the exponent marker")
            while index < count, Self.isDigit(bytes[index]) { index += 1 }
        }
        offset = index

        if isInteger && !overflow {
            if !negative {
                if magnitude <= UInt64(Int64.max) { return .int(Int64(magnitude)) }
            } else if magnitude == 0 {
                return .other(text: start..<index, -0.0)
            } else if magnitude <= UInt64(Int64.max) + 1 {
                return .int(Int64(bitPattern: 0 &- magnitude))
            }
        }
        return .other(text: start..<index, try parseDouble(from: start, to: index))
    }

    private func requireDigit(at index: Int, after what: String) throws(JSONError) {
        guard index < bytes.count else {
            throw error(.unexpectedEnd, at: index, "the input ends after \(what) of a number")
        }
        guard Self.isDigit(bytes[index]) else {
            throw error(.invalidNumber, at: index, "expected a digit after \(what), found \(Self.describe(bytes[index]))")
        }
    }

    private static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// Converts the already validated number text in `start..<end` to the nearest `Double`.
    private func parseDouble(from start: Int, to end: Int) throws(JSONError) -> Double {
        // Fast path (Clinger): with at most 2^53 as the significand and a power of ten that is
        // exact in a Double, one correctly rounded multiplication or division gives the answer.
        var index = start
        let negative = bytes[index] == Byte.minus
        if negative { index += 1 }
        var significand: UInt64 = 0
        var digits = 0
        var inexact = false
        var exponent = 0
        while index < end, Self.isDigit(bytes[index]) {
            let digit = UInt64(bytes[index] - Byte.zero)
            if digits < 19 {
                significand = significand * 10 + digit
                if significand != 0 { digits += 1 }
            } else {
                exponent += 1
                if digit != 0 { inexact = true }
            }
            index += 1
        }
        if index < end, bytes[index] == Byte.dot {
            index += 1
            while index < end, Self.isDigit(bytes[index]) {
                let digit = UInt64(bytes[index] - Byte.zero)
                if digits < 19 {
                    significand = significand * 10 + digit
                    if significand != 0 { digits += 1 }
                    exponent -= 1
                } else if digit != 0 {
                    inexact = true
                }
                index += 1
            }
        }
        if index < end {  // exponent part
            index += 1
            var exponentNegative = false
            if bytes[index] == Byte.minus || bytes[index] == Byte.plus {
                exponentNegative = bytes[index] == Byte.minus
                index += 1
            }
            var written = 0
            while index < end {
                if written < 100_000 { written = written * 10 + Int(bytes[index] - Byte.zero) }
                index += 1
            }
            exponent += exponentNegative ? -written : written
        }

        if significand == 0 && !inexact { return negative ? -0.0 : 0.0 }
        if !inexact, significand <= 1 << 53, exponent >= -22, exponent <= 22 {
            var value = Double(significand)
            if exponent < 0 {
                value /= Self.exactPowersOfTen[-exponent]
            } else {
                value *= Self.exactPowersOfTen[exponent]
            }
            return negative ? -value : value
        }

        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            // Quoted up to a bounded length: the number may be megabytes of digits.
            let quoted = end - start <= 40 ? text : "\(text.prefix(32))… (\(end - start) bytes)"
            throw error(.invalidNumber, at: start, "the number \(quoted) is too large for a Double")
        }
        return value
    }

    @inline(__always)
    private static func isDigit(_ byte: UInt8) -> Bool {
        byte &- Byte.zero < 10
    }

    // MARK: - Errors

    private func error(_ code: JSONError.Code, at offset: Int, _ detail: String) -> JSONError {
        JSONError(code, offset: offset, detail: detail)
    }

    /// For a byte where some kind of value was required but a different one was found: a
    /// `.typeMismatch` if what is there is a valid value, else the error that makes it invalid.
    private func mismatch(expected: String, found byte: UInt8) -> JSONError {
        let kind: String
        switch byte {
        case Byte.openBrace: kind = "an object"
        case Byte.openBracket: kind = "an array"
        case Byte.quote: kind = "a string"
        case Byte.t, Byte.f: kind = "a boolean"
        case Byte.n: kind = "null"
        case Byte.minus, Byte.zero...Byte.nine: kind = "a number"
        default: return notAValue(byte)
        }
        var probe = self
        do throws(JSONError) {
            try probe.skipValue()
        } catch {
            return error
        }
        return self.error(.typeMismatch, at: offset, "expected \(expected), found \(kind)")
    }

    private func notAValue(_ byte: UInt8) -> JSONError {
        switch byte {
        case Byte.plus, Byte.dot:
            return error(.invalidNumber, at: offset, "a number must start with '-' or a digit, found \(Self.describe(byte))")
        default:
            return error(.unexpectedCharacter, at: offset, "expected a value, found \(Self.describe(byte))")
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(describeRaw(byte))'" : "byte \(hex(byte))"
    }

    private static func describeRaw(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? String(UnicodeScalar(byte)) : hex(byte)
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return byte < 0x10 ? "0x0" + digits : "0x" + digits
    }

    private static func hex4Text(_ unit: UInt16) -> String {
        let digits = String(unit, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}

extension JSONReader {
    /// The bytes JSON syntax is made of.
    fileprivate enum Byte {
        static var space: UInt8 { 0x20 }
        static var tab: UInt8 { 0x09 }
        static var lineFeed: UInt8 { 0x0A }
        static var carriageReturn: UInt8 { 0x0D }
        static var openBrace: UInt8 { 0x7B }  // {
        static var closeBrace: UInt8 { 0x7D }  // }
        static var openBracket: UInt8 { 0x5B }  // [
        static var closeBracket: UInt8 { 0x5D }  // ]
        static var colon: UInt8 { 0x3A }
        static var comma: UInt8 { 0x2C }
        static var quote: UInt8 { 0x22 }
        static var backslash: UInt8 { 0x5C }
        static var slash: UInt8 { 0x2F }
        static var minus: UInt8 { 0x2D }
        static var plus: UInt8 { 0x2B }
        static var dot: UInt8 { 0x2E }
        static var zero: UInt8 { 0x30 }
        static var nine: UInt8 { 0x39 }
        static var t: UInt8 { 0x74 }
        static var f: UInt8 { 0x66 }
        static var n: UInt8 { 0x6E }
        static var trueLiteral: StaticString { "true" }
        static var falseLiteral: StaticString { "false" }
        static var nullLiteral: StaticString { "null" }
    }
}
