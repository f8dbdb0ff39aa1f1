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

/// Event identifiers: random (version 4) UUIDs in lower case, as the Rust implementation makes.
public enum EventID {
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
