/// Writes JSON text straight into memory through a pointer, with no bounds checks: whoever
/// makes one must provide room for everything written (see `JSONWriter.appendUnsafe`).
///
/// Room is reserved in one of two ways (see `reservedLength`): exactly, which needs a look at
/// every string first, or optimistically, as if no string needed escaping, plus some `spare`
/// room. Strings that need escaping use up the spare room; a string that does not fit in what
/// is left is not written, and the output is marked `overflowed`: then it must be written
/// again with room reserved exactly. Everything else is always within its reservation, except
/// a value written with `writeValue(_:keepingFree:)`, which checks its room as it goes.
///
/// Strings are escaped as `JSONWriter` escapes them (it uses this type): only `"`, `\` and
/// control characters; `/` and non-ASCII text as they are.
struct UnsafeJSONOutput {
    private let start: UnsafeMutablePointer<UInt8>
    private var next: UnsafeMutablePointer<UInt8>
    /// Room beyond the reservations, for the escapes of optimistically reserved strings.
    private var spare: Int
    /// Whether a string did not fit: what was written is not the JSON intended.
    private(set) var overflowed = false
    /// Where a value written by `writeValue(_:keepingFree:)` has to end, if one is being written.
    private var limit: UnsafeMutablePointer<UInt8>?
    /// Just past the memory written into.
    private let end: UnsafeMutablePointer<UInt8>
    /// Whether the room was reserved exactly (no spare room to count).
    private let reservedExactly: Bool

    /// An output into the `capacity` bytes at `start`; `spare` is the room beyond the
    /// reservations (`Int.max` when they are exact).
    init(start: UnsafeMutablePointer<UInt8>, capacity: Int, spare: Int) {
        self.start = start
        next = start
        end = start + capacity
        self.spare = spare
        reservedExactly = spare == .max
    }

    /// Bytes written so far.
    var count: Int { next - start }

    @inline(__always)
    mutating func write(_ byte: UInt8) {
        next.initialize(to: byte)
        next += 1
    }

    /// Writes `literal` as it is (no quotes, no escaping).
    @inline(__always)
    mutating func write(_ literal: StaticString) {
        literal.withUTF8Buffer { write($0) }
    }

    /// Writes `bytes` as they are.
    @inline(__always)
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        next.initialize(from: source, count: bytes.count)
        next += bytes.count
    }

    // MARK: - Reservations

    /// The room to reserve for `writeString(text)`: exactly the most it can write, or, when not
    /// `exact`, as if it needed no escaping.
    @inline(__always)
    static func reservedLength(of text: String, exact: Bool) -> Int {
        exact ? StringScan(text).maximumLength : text.utf8.count &+ 2
    }

    /// The room to reserve for `writeValue(value)` (strings as in `reservedLength(of:exact:)`),
    /// or `nil` if that is more than `limit` (counting stops there).
    static func reservedLength(of value: JSONValue, exact: Bool, upTo limit: Int) -> Int? {
        switch value {
        case .null: return 4
        case .bool: return 5
        case .int: return maximumIntLength
        case .double: return maximumDoubleLength
        case .number(let number): return number.text.utf8.count
        case .string(let text):
            let length = reservedLength(of: text, exact: exact)
            return length <= limit ? length : nil
        case .array(let elements):
            // Brackets and commas.
            var total = 1 &+ max(elements.count, 1)
            for element in elements {
                guard let length = reservedLength(of: element, exact: exact, upTo: limit &- total) else { return nil }
                total &+= length
            }
            return total <= limit ? total : nil
        case .object(let members):
            // Braces, commas and colons.
            var total = 1 &+ max(members.count, 1) &+ members.count
            for (key, member) in members {
                total &+= reservedLength(of: key, exact: exact)
                guard total <= limit, let length = reservedLength(of: member, exact: exact, upTo: limit &- total) else {
                    return nil
                }
                total &+= length
            }
            return total <= limit ? total : nil
        }
    }

    // MARK: - Values

    /// Writes `value` into whatever room is left, leaving `tail` bytes (and the spare room)
    /// free at the end: for a value whose length is not worth working out first. If it does
    /// not fit, it is cut short and the output marked `overflowed`.
    mutating func writeValue(_ value: JSONValue, keepingFree tail: Int) {
        // With exact reservations the room is there: nothing to check.
        guard !reservedExactly else {
            writeValue(value)
            return
        }
        limit = end - tail
        writeValue(value)
        limit = nil
    }

    /// Whether `count` more bytes fit before the limit of `writeValue(_:keepingFree:)`, with the
    /// spare room left for escapes; marks the output `overflowed` if not. Always true outside
    /// that function: then the room was reserved.
    @inline(__always)
    private mutating func fits(_ count: Int) -> Bool {
        guard let limit else { return true }
        if !overflowed, (limit - next) &- spare >= count { return true }
        overflowed = true
        return false
    }

    /// Writes `value` compactly, as `JSONWriter.value(_:)` does: object members in the order of
    /// their keys' UTF-8 bytes. Needs `reservedLength(of: value)` bytes of room.
    mutating func writeValue(_ value: JSONValue) {
        switch value {
        case .null:
            guard fits(4) else { return }
            write("null")
        case .bool(let flag):
            guard fits(5) else { return }
            write(flag ? "true" : "false")
        case .int(let number):
            guard fits(Self.maximumIntLength) else { return }
            writeInt(number)
        case .double(let number):
            guard fits(Self.maximumDoubleLength) else { return }
            writeDouble(number)
        case .number(let number):
            guard fits(number.text.utf8.count) else { return }
            writeNumber(number)
        case .string(let text):
            guard fits(text.utf8.count &+ 2) else { return }
            writeString(text)
        case .array(let elements):
            guard fits(1) else { return }
            write(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first {
                    guard fits(1) else { return }
                    write(UInt8(ascii: ","))
                }
                first = false
                writeValue(element)
            }
            guard fits(1) else { return }
            write(UInt8(ascii: "]"))
        case .object(let members):
            guard fits(1) else { return }
            write(UInt8(ascii: "{"))
            switch members.count {
            case 0:
                break
            case 1:
                let only = members[members.startIndex]
                writeMember(key: only.key, value: only.value)
            case 2:
                // Common enough in events (`from` and `to`) to be ordered by one comparison.
                let first = members[members.startIndex]
                let second = members[members.index(after: members.startIndex)]
                let (lower, upper) = Self.utf8Precedes(second.key, first.key) ? (second, first) : (first, second)
                writeMember(key: lower.key, value: lower.value)
                guard fits(1) else { return }
                write(UInt8(ascii: ","))
                writeMember(key: upper.key, value: upper.value)
            default:
                writeMembersInKeyOrder(members)
            }
            guard fits(1) else { return }
            write(UInt8(ascii: "}"))
        }
    }

    private mutating func writeMember(key: String, value: JSONValue) {
        // The key, its quotes and the colon.
        guard fits(key.utf8.count &+ 3) else { return }
        writeString(key)
        write(UInt8(ascii: ":"))
        writeValue(value)
    }

    /// A member of an object being sorted: where its key's bytes are, and the member.
    private struct SortedMember {
        var keyStart: Int
        var keyCount: Int
        var index: [String: JSONValue].Index
    }

    /// Copies the keys' UTF-8 bytes into temporary memory once, sorts the members by those
    /// bytes, and writes them in that order (for objects of three members or more).
    private mutating func writeMembersInKeyOrder(_ members: [String: JSONValue]) {
        var keyBytes = 0
        for key in members.keys { keyBytes &+= key.utf8.count }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(keyBytes, 1)) { keys in
            withUnsafeTemporaryAllocation(of: SortedMember.self, capacity: members.count) { order in
                let keys = keys.baseAddress.unsafelyUnwrapped
                let start = order.baseAddress.unsafelyUnwrapped
                var count = 0
                var used = 0
                var index = members.startIndex
                while index != members.endIndex {
                    let keyCount = withUTF8Bytes(of: members.keys[index]) { key in
                        if let source = key.baseAddress { (keys + used).initialize(from: source, count: key.count) }
                        return key.count
                    }
                    (start + count).initialize(to: SortedMember(keyStart: used, keyCount: keyCount, index: index))
                    used &+= keyCount
                    count &+= 1
                    members.formIndex(after: &index)
                }
                defer { start.deinitialize(count: count) }

                var sorted = UnsafeMutableBufferPointer(start: start, count: count)
                @inline(__always) func precedes(_ left: SortedMember, _ right: SortedMember) -> Bool {
                    Self.bytesPrecede(keys + left.keyStart, left.keyCount, keys + right.keyStart, right.keyCount)
                }
                if count <= 16 {
                    // By insertion: few members, and no call into the general sort.
                    for unsorted in 1..<max(count, 1) {
                        var position = unsorted
                        while position > 0, precedes(sorted[position], sorted[position &- 1]) {
                            sorted.swapAt(position, position &- 1)
                            position &-= 1
                        }
                    }
                } else {
                    sorted.sort(by: precedes)
                }
                for position in 0..<count {
                    let member = sorted[position]
                    // A comma, the key, its quotes and the colon.
                    guard fits(member.keyCount &+ 4) else { return }
                    if position > 0 { write(UInt8(ascii: ",")) }
                    let key = UnsafeBufferPointer(start: keys + member.keyStart, count: member.keyCount)
                    writeString(key)
                    write(UInt8(ascii: ":"))
                    writeValue(members.values[member.index])
                }
            }
        }
    }

    /// Whether the first bytes come before the second, compared byte by byte (a prefix first).
    @inline(__always)
    private static func bytesPrecede(
        _ left: UnsafePointer<UInt8>, _ leftCount: Int, _ right: UnsafePointer<UInt8>, _ rightCount: Int
    ) -> Bool {
        let common = min(leftCount, rightCount)
        var index = 0
        while index < common {
            if left[index] != right[index] { return left[index] < right[index] }
            index &+= 1
        }
        return leftCount < rightCount
    }

    /// Orders strings by their UTF-8 bytes (which is also Unicode scalar order), as serde_json's
    /// default map does; Swift's `<` compares canonical equivalents instead.
    static func utf8Precedes(_ lhs: String, _ rhs: String) -> Bool {
        withUTF8Bytes(of: lhs) { left in
            withUTF8Bytes(of: rhs) { right in
                guard let leftStart = left.baseAddress else { return !right.isEmpty }
                guard let rightStart = right.baseAddress else { return false }
                return bytesPrecede(leftStart, left.count, rightStart, right.count)
            }
        }
    }

    /// "-9223372036854775808"
    static var maximumIntLength: Int { 20 }

    mutating func writeInt(_ value: Int64) {
        var magnitude = value.magnitude
        var digits = 1
        var power: UInt64 = 10
        while digits < 20, magnitude >= power {
            digits += 1
            power = power &* 10
        }
        if value < 0 { write(UInt8(ascii: "-")) }
        var index = digits
        repeat {
            index -= 1
            next[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
        } while index > 0
        next += digits
    }

    /// Writes a number read from JSON as the text it was read as. (Out of line: it keeps
    /// `writeValue`, which rarely meets one, small.)
    @inline(never)
    mutating func writeNumber(_ number: JSONNumber) {
        var text = number.text
        text.withUTF8 { write($0) }
    }

    /// `Double.description` is at most 32 bytes; ".0" may follow.
    static var maximumDoubleLength: Int { 34 }

    /// Writes the shortest text that reads back as the same `Double` (always with a `.` or an
    /// exponent, so `1.0` stays `1.0`); infinities and NaN, which JSON cannot express, as `null`.
    mutating func writeDouble(_ value: Double) {
        guard value.isFinite else {
            write("null")
            return
        }
        // Whole numbers below 10^15 are printed by `description` as digits and ".0"; do that
        // without building a String.
        if value.magnitude < 1e15, value.rounded(.towardZero) == value {
            if value == 0 {
                write(value.sign == .minus ? "-0.0" : "0.0")
            } else {
                writeInt(Int64(value))
                write(".0")
            }
            return
        }
        // `description` is the shortest text that round-trips. Its exponent is written like
        // "e+16" or "e-07"; serde_json writes "e16" and "e-7", which is also what is written here.
        var text = value.description
        text.withUTF8 { utf8 in
            precondition(utf8.count <= Self.maximumDoubleLength - 2, "Double.description is longer than expected")
            guard let marker = utf8.firstIndex(of: UInt8(ascii: "e")) else {
                write(utf8)
                if !utf8.contains(UInt8(ascii: ".")) { write(".0") }
                return
            }
            write(UnsafeBufferPointer(rebasing: utf8[...marker]))
            var index = marker + 1
            if index < utf8.count, utf8[index] == UInt8(ascii: "+") || utf8[index] == UInt8(ascii: "-") {
                if utf8[index] == UInt8(ascii: "-") { write(UInt8(ascii: "-")) }
                index += 1
            }
            while index < utf8.count - 1, utf8[index] == UInt8(ascii: "0") { index += 1 }
            write(UnsafeBufferPointer(rebasing: utf8[index...]))
        }
    }

    // MARK: - Strings

    /// Lets `body` write at most `maximumCount` bytes into the space it gets; `body` returns
    /// how many it wrote.
    @inline(__always)
    mutating func write(maximumCount: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> Int) {
        let written = body(UnsafeMutableBufferPointer(start: next, count: maximumCount))
        next += written
    }

    /// Writes `text` quoted without looking for bytes to escape: only for text known to have
    /// none, such as the wire names of event types and priorities (ASCII letters and `_`).
    @inline(__always)
    mutating func writeUnescapedString(_ text: String) {
        withUTF8Bytes(of: text) { utf8 in
            assert(StringScan(utf8).plainPrefix == utf8.count, "\(text.debugDescription) needs escaping")
            write(quote)
            write(utf8)
            write(quote)
        }
    }

    /// Writes `text` as a quoted, escaped JSON string.
    @inline(__always)
    mutating func writeString(_ text: String) {
        withUTF8Bytes(of: text) { writeString($0) }
    }

    /// Writes `utf8` as a quoted, escaped JSON string. Needs `utf8.count + 2` bytes of room
    /// reserved, and takes what escaping needs beyond that from the spare room; if there is
    /// not enough of that, writes no more than its reservation and marks the output
    /// `overflowed`.
    mutating func writeString(_ utf8: UnsafeBufferPointer<UInt8>) {
        write(quote)
        guard let base = utf8.baseAddress else {
            write(quote)
            return
        }
        let count = utf8.count
        let plain: Int
        if count >= 8 {
            // Checked and copied a word at a time, the last word overlapping the one before, so
            // every store is within the string's own room. The word with the first byte to
            // escape is copied whole: what follows that byte is written over.
            var index = 0
            while true {
                let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(next + index).storeBytes(of: word, as: UInt64.self)
                let flags = StringScan.escapeBits(UInt64(littleEndian: word))
                if flags != 0 {
                    plain = index &+ flags.trailingZeroBitCount &>> 3
                    break
                }
                if index &+ 8 == count {
                    plain = count
                    break
                }
                index = min(index &+ 8, count &- 8)
            }
        } else {
            // The part before the first byte to escape is copied as it is, in one piece.
            plain = StringScan.firstByteToEscape(base, from: 0, count: count)
            next.initialize(from: base, count: plain)
        }
        next += plain
        if plain < count {
            let extra = StringScan.escapingExtra(base, from: plain, count: count)
            if extra > spare {
                overflowed = true
            } else {
                spare &-= extra
                writeEscaping(utf8, from: plain)
            }
        }
        write(quote)
    }

    /// Writes `utf8` escaped, without quotes: a piece of a long string. Needs six bytes of room
    /// per byte.
    mutating func writeStringContents(_ utf8: UnsafeBufferPointer<UInt8>) {
        guard !utf8.isEmpty else { return }
        writeEscaping(utf8, from: 0)
    }

    /// Writes `utf8[index...]`, escaping what needs it; runs that need nothing are copied in
    /// bulk, found eight bytes at a time.
    private mutating func writeEscaping(_ utf8: UnsafeBufferPointer<UInt8>, from index: Int) {
        let base = utf8.baseAddress.unsafelyUnwrapped
        let count = utf8.count
        var index = index
        var runStart = index
        while true {
            index = StringScan.firstByteToEscape(base, from: index, count: count)
            guard index < count else { break }
            let byte = base[index]
            next.initialize(from: base + runStart, count: index &- runStart)
            next += index &- runStart
            write(backslash)
            switch byte {
            case quote: write(quote)
            case backslash: write(backslash)
            case 0x0A: write(UInt8(ascii: "n"))
            case 0x0D: write(UInt8(ascii: "r"))
            case 0x09: write(UInt8(ascii: "t"))
            case 0x08: write(UInt8(ascii: "b"))
            case 0x0C: write(UInt8(ascii: "f"))
            default:
                write("u00")
                write(Self.hexDigit(byte >> 4))
                write(Self.hexDigit(byte & 0x0F))
            }
            index &+= 1
            runStart = index
        }
        next.initialize(from: base + runStart, count: count &- runStart)
        next += count &- runStart
    }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// What a string needs before it is written: its length and where escaping starts.
    struct StringScan {
        /// Bytes in the string.
        let count: Int
        /// Bytes before the first one that must be escaped (`count` if none must).
        let plainPrefix: Int

        init(_ text: String) {
            self = withUTF8Bytes(of: text) { StringScan($0) }
        }

        init(_ utf8: UnsafeBufferPointer<UInt8>) {
            count = utf8.count
            if let base = utf8.baseAddress {
                plainPrefix = Self.firstByteToEscape(base, from: 0, count: count)
            } else {
                plainPrefix = 0
            }
        }

        /// The most bytes `writeString` writes for the string: quotes included, and six bytes
        /// (`\u001f`) for each byte from the first to escape on (an exact reservation).
        var maximumLength: Int {
            plainPrefix &+ 6 &* (count &- plainPrefix) &+ 2
        }

        /// The index of the first byte in `from..<count` that is `"`, `\` or below 0x20;
        /// `count` if there is none. Looks at eight bytes at a time, the last eight again if
        /// `count` is not a multiple of eight; never reads outside `from..<count`.
        @inline(__always)
        static func firstByteToEscape(_ base: UnsafePointer<UInt8>, from start: Int, count: Int) -> Int {
            guard count &- start >= 8 else {
                // Fewer than eight bytes: gathered into a word (the first byte lowest, as the
                // loads below see it), padded with spaces, which need no escaping.
                let length = count &- start
                guard length > 0 else { return count }
                var word: UInt64 = 0x2020_2020_2020_2020 &<< (UInt64(length) &* 8)
                var index = count
                var shift = UInt64(length) &* 8
                while index > start {
                    index &-= 1
                    shift &-= 8
                    word |= UInt64(base[index]) &<< shift
                }
                let flags = escapeBits(word)
                return flags == 0 ? count : start &+ flags.trailingZeroBitCount &>> 3
            }
            var index = start
            while true {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
                let flags = escapeBits(word)
                if flags != 0 { return index &+ flags.trailingZeroBitCount &>> 3 }
                index &+= 8
                if index &+ 8 > count {
                    guard index < count else { return count }
                    // The last eight bytes; those before `index` among them are known to be fine.
                    index = count &- 8
                }
            }
        }

        /// How many more bytes than `count - start` escaping `start..<count` writes: one for
        /// each byte written as a two-byte escape (`\n`), five for each written as `\u001f`.
        static func escapingExtra(_ base: UnsafePointer<UInt8>, from start: Int, count: Int) -> Int {
            var extra = 0
            var index = firstByteToEscape(base, from: start, count: count)
            while index < count {
                switch base[index] {
                case quote, backslash, 0x0A, 0x0D, 0x09, 0x08, 0x0C: extra &+= 1
                default: extra &+= 5
                }
                index = firstByteToEscape(base, from: index &+ 1, count: count)
            }
            return extra
        }

        /// The high bit of each of the eight bytes (from the least significant) that is `"`, `\`
        /// or below 0x20. Bits above the lowest set one may be false alarms (a borrow in the
        /// subtraction), but the lowest one is exact.
        @inline(__always)
        static func escapeBits(_ word: UInt64) -> UInt64 {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            let quotes = word ^ (ones &* UInt64(quote))
            let backslashes = word ^ (ones &* UInt64(backslash))
            let hasQuote = (quotes &- ones) & ~quotes
            let hasBackslash = (backslashes &- ones) & ~backslashes
            let hasControl = (word &- ones &* 0x20) & ~word
            return (hasQuote | hasBackslash | hasControl) & highs
        }
    }
}

private var quote: UInt8 { 0x22 }
private var backslash: UInt8 { 0x5C }

/// Calls `body` with the UTF-8 bytes of `text`, without copying them when they are stored
/// contiguously (native Swift strings always are).
@inline(__always)
func withUTF8Bytes<Result>(of text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
    if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
    var copy = text
    return copy.withUTF8(body)
}
