/// The text form of NKEYs: a prefix byte naming the kind of key, the key's 32 bytes and a
/// CRC-16 (XMODEM, little-endian), in base32 (RFC 4648 alphabet, no padding).
///
/// Public keys read `U…` (user), `A…` (account), `O…` (operator), `N…` (server), `C…`
/// (cluster). A seed puts the seed prefix (`S`) in the top five bits of two bytes and the
/// kind in the next ten, so a user's seed reads `SU…`.
package enum NKeyEncoding {
    /// The prefix byte of a seed.
    static let seedPrefix: UInt8 = 18 << 3

    /// `prefix`, `key` and their checksum, in base32.
    static func encodePublic(prefix: UInt8, key: [UInt8]) -> String {
        withChecksum([prefix] + key)
    }

    /// A seed of the kind `prefix` (a public prefix byte), in base32.
    static func encodeSeed(prefix: UInt8, seed: [UInt8]) -> String {
        let first = seedPrefix | (prefix >> 5)
        let second = (prefix & 31) << 3
        return withChecksum([first, second] + seed)
    }

    /// The kind's prefix byte and the 32 bytes of a seed.
    /// - Throws: `.invalidCredentials`, never quoting the text (it is a secret).
    static func decodeSeed(_ text: some StringProtocol) throws(NATSError) -> (prefix: UInt8, seed: [UInt8]) {
        let raw = try checkedBytes(text, what: "NKEY seed")
        guard raw.count == 2 + 32, raw[0] & 0xF8 == seedPrefix else {
            throw NATSError(.invalidCredentials, "not an NKEY seed (a seed starts with S and is 58 characters long)")
        }
        let prefix = ((raw[0] & 0x07) << 5) | ((raw[1] & 0xF8) >> 3)
        return (prefix, Array(raw[2...]))
    }

    /// The prefix byte and the 32 key bytes of a public key.
    static func decodePublic(_ text: some StringProtocol) throws(NATSError) -> (prefix: UInt8, key: [UInt8]) {
        let raw = try checkedBytes(text, what: "NKEY public key")
        guard raw.count == 1 + 32 else { throw NATSError(.invalidCredentials, "not an NKEY public key (wrong length)") }
        return (raw[0], Array(raw[1...]))
    }

    private static func withChecksum(_ bytes: [UInt8]) -> String {
        let crc = crc16(bytes)
        return base32Encode(bytes + [UInt8(crc & 0xFF), UInt8(crc >> 8)])
    }

    /// The bytes before the checksum, once the checksum matched.
    private static func checkedBytes(_ text: some StringProtocol, what: String) throws(NATSError) -> [UInt8] {
        guard let raw = base32Decode(text.trimmingWhitespace()), raw.count > 2 else {
            throw NATSError(.invalidCredentials, "not an \(what): not base32 text")
        }
        let body = Array(raw.dropLast(2))
        let stored = UInt16(raw[raw.count - 2]) | UInt16(raw[raw.count - 1]) << 8
        guard crc16(body) == stored else { throw NATSError(.invalidCredentials, "not an \(what): its checksum does not match") }
        return body
    }

    // MARK: - CRC-16/XMODEM and base32

    /// CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Base32 (RFC 4648) without padding.
    package static func base32Encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                output.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes base32 without padding (trailing `=` are accepted); `nil` for any other character.
    static func base32Decode(_ text: some StringProtocol) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            if character == UInt8(ascii: "=") { break }
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = character - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                output.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        return output
    }
}
