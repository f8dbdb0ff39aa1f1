/// Text that came off the wire, made safe to print on a terminal or in a log line.
///
/// Whoever publishes an event chooses its id, session, message and subject. Printed raw, a
/// newline in them would forge a log line and `ESC [2J` would clear the screen of whoever is
/// watching. `TerminalText` shows every character that is not plain printable text visibly:
///
/// - `\n`, `\r` and `\t` for line feed, carriage return and tab;
/// - `\u{1B}` (the scalar's value in hex) for every other control or format character: the C0
///   and C1 controls (NUL and ESC among them), DEL, the line and paragraph separators, the
///   bidirectional overrides and isolates, zero-width characters;
/// - `\xFF` for each byte that is not part of valid UTF-8 (text made from bytes).
///
/// Everything else, letters of every script included, is kept. A backslash is kept as it is,
/// so escaping is idempotent: text that was escaped once comes out unchanged, and a message may
/// be escaped where it is made and again where it is printed.
///
/// With a `limit`, at most that many bytes of the text are shown, followed by `…` and how many
/// bytes were left out: for log lines, which quote at most a bounded prefix of what they
/// complain about (see ``LogText``).
public struct TerminalText: Sendable, Hashable, CustomStringConvertible {
    /// The escaped text, one line.
    public let description: String

    /// Escapes `text`, keeping at most `limit` bytes of it.
    public init(_ text: some StringProtocol, limit: Int? = nil) {
        var text = String(text)
        description = text.withUTF8 { Self.escape($0, limit: limit) }
    }

    /// Escapes the UTF-8 `bytes`, showing each byte that is not valid UTF-8 as `\xNN`; keeps at
    /// most `limit` bytes.
    public init(bytes: some Collection<UInt8>, limit: Int? = nil) {
        if let escaped = bytes.withContiguousStorageIfAvailable({ Self.escape($0, limit: limit) }) {
            description = escaped
        } else {
            description = Array(bytes).withUnsafeBufferPointer { Self.escape($0, limit: limit) }
        }
    }

    /// An error's description, escaped (it may quote what came off the wire).
    public init(_ error: any Error, limit: Int? = nil) {
        self.init(String(describing: error), limit: limit)
    }

    /// Whether `scalar` is shown escaped: controls, format characters, line and paragraph
    /// separators.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x20 || scalar.value == 0x7F { return true }
        if scalar.value < 0x80 { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate: return true
        default: return false
        }
    }

    private static func escape(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int?) -> String {
        let shown = limit.map { min(max($0, 0), bytes.count) } ?? bytes.count
        // The common case: printable ASCII only, nothing cut.
        if shown == bytes.count, bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        var output = ""
        output.reserveCapacity(shown)
        var index = 0
        while index < shown {
            let byte = bytes[index]
            if byte < 0x80 {
                append(Unicode.Scalar(byte), to: &output)
                index += 1
                continue
            }
            if let (scalar, length) = decodeSequence(bytes, at: index) {
                // A character the limit cuts is left out whole.
                if index + length > shown { break }
                append(scalar, to: &output)
                index += length
            } else {
                output += "\\x" + hex(UInt32(byte), digits: 2)
                index += 1
            }
        }
        if index < bytes.count {
            output += "… (\(bytes.count - index) more bytes)"
        }
        return output
    }

    private static func append(_ scalar: Unicode.Scalar, to output: inout String) {
        guard needsEscape(scalar) else {
            output.unicodeScalars.append(scalar)
            return
        }
        switch scalar {
        case "\n": output += "\\n"
        case "\r": output += "\\r"
        case "\t": output += "\\t"
        default: output += "\\u{" + hex(scalar.value, digits: 1) + "}"
        }
    }

    /// The scalar of the well-formed UTF-8 sequence that starts with the non-ASCII byte at `index`, and its length;
    /// `nil` if the bytes there are not one.
    private static func decodeSequence(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (Unicode.Scalar, Int)? {
        let lead = bytes[index]
        guard let (length, second) = UTF8Sequence.shape(lead: lead), index + length <= bytes.count else { return nil }
        var range = second
        var value = UInt32(lead & (0x7F >> length))
        for position in (index + 1)..<(index + length) {
            let byte = bytes[position]
            guard range.contains(byte) else { return nil }
            range = 0x80...0xBF
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, length)
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return text.count < digits ? String(repeating: "0", count: digits - text.count) + text : text
    }
}

/// Text from the wire as a log line quotes it: escaped like ``TerminalText``, and at most
/// ``limit`` bytes of it, so that a 500 KB payload never becomes a 500 KB log line.
public struct LogText: Sendable, Hashable, CustomStringConvertible {
    /// The most bytes of the text a log line shows.
    public static let limit = 256

    public let description: String

    public init(_ text: some StringProtocol) {
        description = TerminalText(text, limit: Self.limit).description
    }

    public init(bytes: some Collection<UInt8>) {
        description = TerminalText(bytes: bytes, limit: Self.limit).description
    }

    /// An error's description, escaped and bounded.
    public init(_ error: any Error) {
        self.init(String(describing: error))
    }
}
