/// Reads the frames a client writes (`PUB`, `HPUB`, `SUB`, `UNSUB`, `PING`, `PONG`,
/// `CONNECT`) back out of an outbound byte stream: where each one ends and what it is.
///
/// The client needs this only when a write stops part-way through its buffer (the socket was
/// full, or broke): to know how much of the stream is the rest of a frame already partly sent,
/// which may only be finished on that socket, and which whole frames may go to the next server.
/// It trusts its input (the client's own encoder wrote it) but never reads out of bounds.
public enum ClientFrames {
    public enum Kind: Sendable, Hashable {
        case publish
        case ping
        case pong
        case subscribe
        case unsubscribe
        case connect
        case other
    }

    /// The frame that starts at `start`: its kind and the index just past its end, or `nil`
    /// when `bytes` ends before the frame does.
    public static func frame(at start: Int, in bytes: UnsafeRawBufferPointer) -> (kind: Kind, end: Int)? {
        guard start < bytes.count else { return nil }
        var lineEnd = start
        while lineEnd + 1 < bytes.count, !(bytes[lineEnd] == 0x0D && bytes[lineEnd + 1] == 0x0A) { lineEnd += 1 }
        guard lineEnd + 1 < bytes.count else { return nil }
        let afterLine = lineEnd + 2
        let kind = kind(of: bytes, from: start, to: lineEnd)
        guard kind == .publish else { return (kind, afterLine) }
        // PUB <subject> [reply] <size> / HPUB <subject> [reply] <header size> <total size>:
        // the last field is the size of what follows the line, then CRLF.
        var index = lineEnd
        var size = 0
        var scale = 1
        while index > start, bytes[index - 1] >= 0x30, bytes[index - 1] <= 0x39 {
            index -= 1
            size += Int(bytes[index] - 0x30) * scale
            scale = scale &* 10
        }
        let end = afterLine + size + 2
        return end <= bytes.count ? (.publish, end) : nil
    }

    /// The end of the frame that contains byte `offset`, walking frame by frame from `start`
    /// (which must be the start of a frame); `nil` when `bytes` ends first.
    public static func endOfFrame(containing offset: Int, from start: Int, in bytes: UnsafeRawBufferPointer) -> Int? {
        var position = start
        while position <= offset {
            guard let frame = frame(at: position, in: bytes) else { return nil }
            if frame.end > offset { return frame.end }
            position = frame.end
        }
        return position
    }

    private static func kind(of bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Kind {
        func starts(with word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard end - start >= count else { return false }
            for index in 0..<count where bytes[start + index] != word.utf8Start[index] { return false }
            return true
        }
        if starts(with: "PUB ") || starts(with: "HPUB ") { return .publish }
        if starts(with: "PING") { return .ping }
        if starts(with: "PONG") { return .pong }
        if starts(with: "SUB ") { return .subscribe }
        if starts(with: "UNSUB ") { return .unsubscribe }
        if starts(with: "CONNECT ") { return .connect }
        return .other
    }
}
