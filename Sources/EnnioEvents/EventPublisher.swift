import EnnioSync
public import NATSClient
import NATSProtocol
import Synchronization

/// Publishes events over NATS, each to its subject, as JSON.
///
/// Node events go to the subject of this publisher's `host`. Every event also carries the
/// `Nats-Msg-Id` header set to its id, so a JetStream stream can de-duplicate redeliveries.
public struct EventPublisher: Sendable {
    public let connection: NATSConnection
    /// The host whose subject node events go to; required for node events.
    public let host: String?

    /// - Throws: ``SubjectSegmentError`` when `host` is not a valid subject segment.
    public init(connection: NATSConnection, host: String? = nil) throws(SubjectSegmentError) {
        if let host { try SubjectSegment.validate(host, role: "host") }
        self.connection = connection
        self.host = host
    }

    /// The header name JetStream uses for de-duplication.
    public static let messageIDHeader = "Nats-Msg-Id"

    /// Publishes `event` and returns the subject it went to. Returns once the message is
    /// buffered; flush the connection to wait for the server.
    ///
    /// - Throws: ``SubjectSegmentError`` for an event whose project (or this publisher's host)
    ///   cannot be a subject segment; ``NATSError`` when the connection refuses the message.
    @discardableResult
    public func publish(_ event: Event) throws -> String {
        let subject = try subjects.subject(for: event, host: host)
        // The JSON goes into a buffer this publisher reuses (no allocation per event), taken
        // out of its lock for the publish: no lock is held across the connection's work.
        var payload = scratch.take()
        defer { scratch.giveBack(payload) }
        payload.removeAll(keepingCapacity: true)
        EventCodec.encode(event, into: &payload)
        try publish(payload, of: event, to: subject)
        return subject
    }

    /// Publishes like ``publish(_:)``, but when the connection's buffer is full (the server
    /// is slower than this publisher) it suspends until there is room instead of failing.
    @discardableResult
    public func publishWaitingForRoom(_ event: Event) async throws -> String {
        while true {
            do {
                return try publish(event)
            } catch let error as NATSError where error.code == .outboundBufferFull || error.code == .reconnectBufferFull {
                guard await connection.waitForRoom() else { throw error }
            }
        }
    }

    private func publish(_ payload: [UInt8], of event: Event, to subject: String) throws {
        var id = event.id
        let sent = try id.withUTF8 { id throws -> Bool in
            var index = 0
            while index < id.count {
                // Not a valid header value: the general path below reports it.
                if id[index] == 0x0D || id[index] == 0x0A { return false }
                index &+= 1
            }
            // "NATS/1.0\r\nNats-Msg-Id: <id>\r\n\r\n", written once on the stack.
            let prefix: StaticString = "NATS/1.0\r\nNats-Msg-Id: "
            let prefixCount = prefix.utf8CodeUnitCount
            let headerCount = prefixCount + id.count + 4
            try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: headerCount) { block in
                let base = block.baseAddress.unsafelyUnwrapped
                base.update(from: prefix.utf8Start, count: prefixCount)
                if let idBase = id.baseAddress { (base + prefixCount).update(from: idBase, count: id.count) }
                let end = prefixCount + id.count
                block[end] = 0x0D
                block[end + 1] = 0x0A
                block[end + 2] = 0x0D
                block[end + 3] = 0x0A
                try payload.withUnsafeBytes { body in
                    try connection.publish(body, to: subject, subjectIsValid: true, encodedHeaders: UnsafeRawBufferPointer(block))
                }
            }
            return true
        }
        if !sent {
            var headers = NATSHeaders()
            headers.append(event.id, for: Self.messageIDHeader)
            try connection.publish(payload, to: subject, headers: headers)
        }
    }

    /// Subjects built for this publisher, by event type and project (node events all use
    /// this publisher's host), so that each is built and checked once.
    private let subjects = SubjectCache()
    private let scratch = ScratchBuffer()
}

/// A byte buffer kept between calls. A caller takes it (another caller meanwhile gets a new,
/// empty one) and gives it back; the lock is held only to swap it in or out.
final class ScratchBuffer: Sendable {
    private let spare = Locked<[UInt8]?>([])
    /// Buffers larger than this are not kept, so one huge event does not pin its memory.
    private static let largestKept = 1 << 20

    func take() -> [UInt8] {
        spare.withLock { $0.take() } ?? []
    }

    func giveBack(_ buffer: [UInt8]) {
        guard buffer.capacity <= Self.largestKept else { return }
        spare.withLock { $0 = buffer }
    }
}

/// A small, bounded map from (event type, project) to the event subject.
final class SubjectCache: Sendable {
    private struct Key: Hashable {
        let type: EventType
        let projectId: String
    }

    private static let capacity = 1024
    private let entries = Locked<[Key: String]>([:])

    func subject(for event: Event, host: String?) throws(SubjectSegmentError) -> String {
        // Only the project matters for project-scoped subjects; others share one entry per type.
        let key = Key(type: event.eventType, projectId: event.eventType.category.scope == .project ? event.projectId : "")
        if let subject = entries.withLock({ $0[key] }) { return subject }
        let subject = try EventSubject.subject(for: event, host: host)
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = subject
        }
        return subject
    }
}
