public import NATSClient
import Synchronization

/// One message received on an event subject, decoded.
public enum EventDelivery: Sendable, Hashable {
    /// A valid event, on the subject it belongs to.
    case event(Event, subject: String)
    /// The payload is not a valid event: bad JSON, a missing field, an unknown type.
    case malformed(subject: String, payload: [UInt8], error: EventDecodingError)
    /// A valid event on a subject it does not belong to (another category, action or project).
    case mismatched(Event, subject: String)

    /// The event, if the delivery holds a valid one on its own subject.
    public var event: Event? {
        if case .event(let event, _) = self { return event }
        return nil
    }
}

/// Events from NATS for a pattern: an `AsyncSequence` of ``EventDelivery``, never failing on
/// bad input — malformed payloads are delivered as such and counted.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = EventDelivery
    public typealias Failure = Never

    public let pattern: EventPattern
    let subscription: NATSSubscription
    let counters: Counters

    final class Counters: Sendable {
        let valid = Atomic<UInt64>(0)
        let malformed = Atomic<UInt64>(0)
        let mismatched = Atomic<UInt64>(0)
    }

    /// Subscribes to `pattern` on `connection`, optionally in a queue group.
    public init(connection: NATSConnection, pattern: EventPattern, queueGroup: String? = nil) throws(NATSError) {
        self.pattern = pattern
        self.subscription = try connection.subscribe(to: pattern.subject, queueGroup: queueGroup)
        self.counters = Counters()
    }

    /// Valid events delivered so far.
    public var validCount: UInt64 { counters.valid.load(ordering: .relaxed) }
    /// Payloads that were not valid events.
    public var malformedCount: UInt64 { counters.malformed.load(ordering: .relaxed) }
    /// Valid events on the wrong subject.
    public var mismatchedCount: UInt64 { counters.mismatched.load(ordering: .relaxed) }
    /// Messages dropped because this consumer fell behind (see ``NATSOptions/pendingMessageLimit``).
    public var droppedCount: UInt64 { subscription.droppedCount }
    /// Why the server ended the subscription, if it did: `.permissionViolation` when this user
    /// may not subscribe to the pattern (``NATSSubscription/error``).
    public var error: NATSError? { subscription.error }

    public func unsubscribe() throws(NATSError) {
        try subscription.unsubscribe()
    }

    public func drain() async throws {
        try await subscription.drain()
    }

    /// Decodes one message and checks it belongs on its subject.
    public static func decode(_ message: NATSMessage) -> EventDelivery {
        let event: Event
        do {
            event = try EventCodec.decode(message.payload)
        } catch {
            return .malformed(subject: message.subject, payload: message.payload, error: error)
        }
        guard EventSubject.belongs(event, on: message.subject) else {
            return .mismatched(event, subject: message.subject)
        }
        return .event(event, subject: message.subject)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(messages: subscription.makeAsyncIterator(), counters: counters)
    }

    public struct Iterator: AsyncIteratorProtocol {
        var messages: NATSSubscription.Iterator
        let counters: Counters

        public mutating func next() async -> EventDelivery? {
            guard let message = await messages.next() else { return nil }
            return record(EventSubscription.decode(message))
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> EventDelivery? {
            guard let message = await messages.next(isolation: actor) else { return nil }
            return record(EventSubscription.decode(message))
        }

        private func record(_ delivery: EventDelivery) -> EventDelivery {
            switch delivery {
            case .event: counters.valid.add(1, ordering: .relaxed)
            case .malformed: counters.malformed.add(1, ordering: .relaxed)
            case .mismatched: counters.mismatched.add(1, ordering: .relaxed)
            }
            return delivery
        }
    }
}

extension EventSubject {
    /// Whether `event` belongs on `subject`: same category and action, and for project-scoped
    /// events the same project. For node events the host is the subject's; when the event's
    /// `data` names a `host`, it must be the same.
    public static func belongs(_ event: Event, on subject: String) -> Bool {
        switch event.eventType.category.scope {
        case .project, .global:
            // The one subject such an event belongs on (an invalid project has none).
            guard let expected = try? EventSubject.subject(for: event.eventType, projectId: event.projectId) else { return false }
            return subject.utf8.elementsEqual(expected.utf8)
        case .host:
            break
        }
        guard let parsed = parse(subject), parsed.eventType == event.eventType else { return false }
        switch event.eventType.category.scope {
        case .project:
            return parsed.scope == event.projectId
        case .host:
            if let host = event.data["host"]?.stringValue { return host == parsed.scope }
            return true
        case .global:
            return true
        }
    }
}
