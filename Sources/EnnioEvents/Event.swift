import COpenSSL

/// One event of the system: what happened, to which session of which project, when.
///
/// On the wire it is a JSON object with the keys `id`, `event_type`, `priority`, `session_id`,
/// `project_id`, `timestamp`, `message` and `data`, the same as the Rust implementation's
/// `OrchestratorEvent` (see `topics.md`).
public struct Event: Sendable, Hashable {
    /// Unique per event; a UUID unless the producer chose otherwise. Used for de-duplication.
    public var id: String
    public var eventType: EventType
    public var priority: EventPriority
    public var sessionId: String
    public var projectId: String
    public var timestamp: EventTimestamp
    /// For people to read.
    public var message: String
    /// Anything else, as JSON; `null` when there is nothing.
    public var data: JSONValue

    public init(
        id: String = EventID.random(),
        type eventType: EventType,
        priority: EventPriority = .info,
        sessionId: String,
        projectId: String,
        timestamp: EventTimestamp = .now(),
        message: String,
        data: JSONValue = .null
    ) {
        self.id = id
        self.eventType = eventType
        self.priority = priority
        self.sessionId = sessionId
        self.projectId = projectId
        self.timestamp = timestamp
        self.message = message
        self.data = data
    }
}

/// Event identifiers: random (version 4) UUIDs in lower case, as the Rust implementation makes,
/// and name-based ones for events a reducer derives from others.
public enum EventID {
    /// Whether `text` is a UUID in its usual form, 8-4-4-4-12 hexadecimal digits
    /// (`5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60`), in either case.
    public static func isUUID(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == 36 else { return false }
        for (index, byte) in utf8.enumerated() {
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): continue
                default: return false
                }
            }
        }
        return true
    }

    public static func random() -> String {
        let (high, low) = RandomBytes.next128()
        return uuid(version: 4) { index in UInt8(truncatingIfNeeded: (index < 8 ? high : low) >> (UInt64(index % 8) * 8)) }
    }

    /// The namespace of ``derived(kind:name:)``.
    public static let derivedNamespace = "ennio-derived-event-id"

    /// A name-based UUID (version 8, RFC 9562): the first 16 bytes of SHA-256 over
    /// ``derivedNamespace``, a zero byte, `kind`, a zero byte and `name` (UTF-8), with the
    /// version and variant bits set. The same kind and name always give the same id — on every
    /// coordinator and after every restart — so an event derived from others is published with
    /// one `Nats-Msg-Id` and stored once.
    public static func derived(kind: String, name: String) -> String {
        var input = Array(derivedNamespace.utf8)
        input.append(0)
        input += kind.utf8
        input.append(0)
        input += name.utf8
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let succeeded = input.withUnsafeBytes { bytes in
            digest.withUnsafeMutableBufferPointer { output in
                EVP_Digest(bytes.baseAddress, bytes.count, output.baseAddress, &length, EVP_sha256(), nil) == 1
            }
        }
        // SHA-256 from the system's libcrypto does not fail for in-memory input; should it ever,
        // a random id is still a valid id (only the de-duplication across coordinators is lost).
        guard succeeded, length >= 16 else { return random() }
        return uuid(version: 8) { digest[$0] }
    }

    /// The 16 bytes `byte(0)`…`byte(15)` as a UUID in lower case, with `version` and the RFC 9562
    /// variant set.
    @inline(__always)
    private static func uuid(version: UInt8, _ byte: (Int) -> UInt8) -> String {
        let hex: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 36) { text in
            var written = 0
            for index in 0..<16 {
                var value = byte(index)
                if index == 6 { value = (value & 0x0F) | (version << 4) }
                if index == 8 { value = (value & 0x3F) | 0x80 }
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    text[written] = UInt8(ascii: "-")
                    written += 1
                }
                text[written] = hex.utf8Start[Int(value >> 4)]
                text[written + 1] = hex.utf8Start[Int(value & 0x0F)]
                written += 2
            }
            return written
        }
    }
}
