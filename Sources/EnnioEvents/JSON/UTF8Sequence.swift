/// The rule for one multi-byte UTF-8 sequence (RFC 3629: shortest form, no surrogates, nothing
/// above U+10FFFF), shared by the JSON reader and ``TerminalText``.
enum UTF8Sequence {
    /// For a lead byte of 0x80 or more: the sequence's length and the range its second byte
    /// must be in (the bytes after it are 0x80...0xBF); `nil` if the byte cannot start one.
    @inline(__always)
    static func shape(lead: UInt8) -> (length: Int, second: ClosedRange<UInt8>)? {
        switch lead {
        case 0xC2...0xDF: (2, 0x80...0xBF)
        case 0xE0: (3, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (3, 0x80...0xBF)
        case 0xED: (3, 0x80...0x9F)
        case 0xF0: (4, 0x90...0xBF)
        case 0xF1...0xF3: (4, 0x80...0xBF)
        case 0xF4: (4, 0x80...0x8F)
        default: nil
        }
    }
}
