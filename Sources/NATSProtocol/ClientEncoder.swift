/// Writes client operations into a byte buffer, ready to send.
///
/// The encoder does not validate: callers check subjects, sizes and headers first (see
/// ``Subject`` and ``NATSHeaders/firstInvalidField``). Writing into a caller-owned buffer lets
/// many operations share one allocation and one `write` system call.
public enum ClientEncoder {
    /// `CONNECT {json}`.
    public static func connect(_ info: ConnectInfo, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: "CONNECT ".utf8)
        buffer.append(contentsOf: info.json.utf8)
        buffer.append(contentsOf: crlf)
    }

    /// `PUB <subject> [reply] <#bytes>` and the payload.
    public static func publish(
        subject: String,
        replyTo: String? = nil,
        payload: some Collection<UInt8>,
        into buffer: inout [UInt8]
    ) {
        buffer.append(contentsOf: "PUB ".utf8)
        buffer.append(contentsOf: subject.utf8)
        buffer.append(UInt8(ascii: " "))
        if let replyTo {
            buffer.append(contentsOf: replyTo.utf8)
            buffer.append(UInt8(ascii: " "))
        }
        appendDecimal(payload.count, to: &buffer)
        buffer.append(contentsOf: crlf)
        buffer.append(contentsOf: payload)
        buffer.append(contentsOf: crlf)
    }

    /// `HPUB <subject> [reply] <#header bytes> <#total bytes>`, the header block and the payload.
    public static func publish(
        subject: String,
        replyTo: String? = nil,
        headers: NATSHeaders,
        payload: some Collection<UInt8>,
        into buffer: inout [UInt8]
    ) {
        let headerLength = headers.encodedCount
        buffer.append(contentsOf: "HPUB ".utf8)
        buffer.append(contentsOf: subject.utf8)
        buffer.append(UInt8(ascii: " "))
        if let replyTo {
            buffer.append(contentsOf: replyTo.utf8)
            buffer.append(UInt8(ascii: " "))
        }
        appendDecimal(headerLength, to: &buffer)
        buffer.append(UInt8(ascii: " "))
        appendDecimal(headerLength + payload.count, to: &buffer)
        buffer.append(contentsOf: crlf)
        headers.encode(into: &buffer)
        buffer.append(contentsOf: payload)
        buffer.append(contentsOf: crlf)
    }

    /// `SUB <subject> [queue group] <sid>`.
    public static func subscribe(subject: String, queueGroup: String? = nil, sid: UInt64, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: "SUB ".utf8)
        buffer.append(contentsOf: subject.utf8)
        buffer.append(UInt8(ascii: " "))
        if let queueGroup {
            buffer.append(contentsOf: queueGroup.utf8)
            buffer.append(UInt8(ascii: " "))
        }
        appendDecimal(Int(sid), to: &buffer)
        buffer.append(contentsOf: crlf)
    }

    /// `UNSUB <sid> [max]`: stop now, or after `max` messages in all have been delivered.
    public static func unsubscribe(sid: UInt64, max: Int? = nil, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: "UNSUB ".utf8)
        appendDecimal(Int(sid), to: &buffer)
        if let max {
            buffer.append(UInt8(ascii: " "))
            appendDecimal(max, to: &buffer)
        }
        buffer.append(contentsOf: crlf)
    }

    /// `PING`.
    public static func ping(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: "PING\r\n".utf8)
    }

    /// `PONG`.
    public static func pong(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: "PONG\r\n".utf8)
    }

    /// Appends a non-negative decimal number without building a `String`.
    static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        precondition(value >= 0, "sizes and ids are never negative")
        if value < 10 {
            buffer.append(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var remaining = value
        withUnsafeMutableBytes(of: &digits) { storage in
            while remaining > 0 {
                storage[19 - count] = UInt8(ascii: "0") &+ UInt8(remaining % 10)
                remaining /= 10
                count += 1
            }
            buffer.append(contentsOf: storage[(20 - count)...])
        }
    }
}
