/// The Key-Value buckets in which the coordinator keeps its session and node tables, and the
/// keys of their rows: part of the public contract (`topics.md`), like the event stream's name.
/// Writing them over NATS is the coordinator's (`StateBucketWriter`); this needs no NATS.
///
/// A key is made of ids the way a subject is made of segments. Ids of ASCII letters, digits,
/// `_` and `-` (every project id and host, which are subject segments, and nearly every session
/// id) are the key as they are; any other byte is written `=` and two uppercase hexadecimal
/// digits (`build 7` → `build=207`, `s.1` → `s=2E1`), and an empty id is `=`. Keys are thus
/// valid Key-Value keys, one token per id, and tell every id from every other.
public enum StateBucket {
    /// The session table: key `<project_id>.<session_id>`.
    public static let sessions = "ENNIO_SESSIONS"
    /// The node table: key `<host>`.
    public static let nodes = "ENNIO_NODES"

    /// The longest key written, in bytes. A row whose key would be longer (a session id of
    /// hundreds of bytes) is not kept in the bucket; the coordinator counts and logs it, and
    /// `ennio.query.sessions` still has it.
    public static let maximumKeyBytes = 1024

    /// The key of a session's row, or `nil` when it would be longer than ``maximumKeyBytes``.
    public static func sessionKey(projectId: String, sessionId: String) -> String? {
        let key = escape(projectId) + "." + escape(sessionId)
        return key.utf8.count <= maximumKeyBytes ? key : nil
    }

    /// The key of a node's row, or `nil` when it would be longer than ``maximumKeyBytes``.
    public static func nodeKey(host: String) -> String? {
        let key = escape(host)
        return key.utf8.count <= maximumKeyBytes ? key : nil
    }

    /// The project and session ids a session key was made of, or `nil` for a key no session
    /// has.
    public static func sessionIds(ofKey key: String) -> (projectId: String, sessionId: String)? {
        let tokens = key.split(separator: ".", omittingEmptySubsequences: false)
        guard tokens.count == 2, let project = unescape(tokens[0]), let session = unescape(tokens[1]) else { return nil }
        return (project, session)
    }

    /// The host a node key was made of, or `nil` for a key no node has.
    public static func host(ofKey key: String) -> String? {
        guard !key.contains(".") else { return nil }
        return unescape(Substring(key))
    }

    /// One id as a key token (see ``StateBucket``).
    public static func escape(_ id: String) -> String {
        guard !id.isEmpty else { return "=" }
        guard !id.utf8.allSatisfy(SubjectSegment.isAllowed) else { return id }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(id.utf8.count * 3)
        for byte in id.utf8 {
            if SubjectSegment.isAllowed(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "="))
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The id a key token stands for, or `nil` for a token ``escape(_:)`` never makes (a
    /// byte it would have escaped, an escape of a byte it would have kept, lower-case hex,
    /// or bytes that are not UTF-8).
    public static func unescape(_ token: Substring) -> String? {
        if token == "=" { return "" }
        guard !token.isEmpty else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.utf8.count)
        var iterator = token.utf8.makeIterator()
        while let byte = iterator.next() {
            if SubjectSegment.isAllowed(byte) {
                bytes.append(byte)
                continue
            }
            guard byte == UInt8(ascii: "="), let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            let decoded = high << 4 | low
            guard !SubjectSegment.isAllowed(decoded) else { return nil }
            bytes.append(decoded)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
