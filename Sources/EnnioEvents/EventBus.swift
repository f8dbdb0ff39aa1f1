import EnnioSync
import Synchronization

/// What an in-process subscriber receives: an event, or word that it fell behind.
public enum EventBusElement: Sendable, Hashable {
    case event(Event)
    /// The subscriber's buffer was full: this many of the oldest events were dropped for it.
    case lagged(missed: UInt64)
}

/// An in-process publish/subscribe hub for events; no network.
///
/// `publish` never blocks and never waits for subscribers. Each subscriber has a bounded buffer
/// (default 1024 events); one that falls behind loses its oldest events, and its next element
/// is ``EventBusElement/lagged(missed:)`` with the count, before the events that remain.
public final class EventBus: Sendable {
    public let bufferSize: Int
    private let state = Locked(BusState())

    private struct BusState {
        var subscribers: [Int: BusSubscriber] = [:]
        var nextID = 0
        var closed = false
    }

    public init(bufferSize: Int = 1024) {
        self.bufferSize = max(1, bufferSize)
    }

    /// Hands `event` to every subscriber whose filter matches.
    public func publish(_ event: Event) {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers where subscriber.filter.matches(event) {
            subscriber.offer(event)
        }
    }

    /// A new subscriber; it sees events published from now on.
    public func subscribe(_ filter: EventFilter = .all) -> EventBusSubscription {
        let (subscriber, closed) = state.withLock { state -> (BusSubscriber, Bool) in
            let subscriber = BusSubscriber(id: state.nextID, filter: filter, capacity: bufferSize)
            state.nextID += 1
            if !state.closed { state.subscribers[subscriber.id] = subscriber }
            return (subscriber, state.closed)
        }
        if closed { subscriber.finish() }
        return EventBusSubscription(subscriber: subscriber, bus: self)
    }

    /// The number of live subscribers.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Ends every subscription (after what they have buffered) and refuses new ones.
    public func close() {
        let subscribers = state.withLock { state -> [BusSubscriber] in
            state.closed = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        subscribers.forEach { $0.finish() }
    }

    func remove(_ subscriber: BusSubscriber) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: subscriber.id) }
        subscriber.finish(discardBuffered: true)
    }
}

/// One subscriber to an ``EventBus``: an `AsyncSequence` of ``EventBusElement``s.
public struct EventBusSubscription: AsyncSequence, Sendable {
    public typealias Element = EventBusElement
    public typealias Failure = Never

    let subscriber: BusSubscriber
    let bus: EventBus

    public var filter: EventFilter { subscriber.filter }
    /// Events this subscriber lost by falling behind, in all.
    public var missedCount: UInt64 { subscriber.totalMissed }

    /// Stops this subscription; the sequence ends.
    public func cancel() {
        bus.remove(subscriber)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(subscriber: subscriber)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let subscriber: BusSubscriber

        public mutating func next() async -> EventBusElement? {
            await subscriber.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> EventBusElement? {
            await subscriber.next()
        }
    }
}

final class BusSubscriber: Sendable {
    let id: Int
    let filter: EventFilter

    private struct State {
        var buffer: BoundedQueue<Event>
        var missedSinceLastReport: UInt64 = 0
        var totalMissed: UInt64 = 0
        /// Tasks waiting for the next element; each leaves alone when cancelled.
        var waiters = WaiterQueue<EventBusElement?>()
        var finished = false
    }

    private let state: Locked<State>

    init(id: Int, filter: EventFilter, capacity: Int) {
        self.id = id
        self.filter = filter
        self.state = Locked(State(buffer: BoundedQueue(capacity: capacity)))
    }

    var totalMissed: UInt64 { state.withLock { $0.totalMissed } }
    /// Tasks waiting for an element right now.
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    func offer(_ event: Event) {
        let waiter = state.withLock { state -> WaiterQueue<EventBusElement?>.Continuation? in
            guard !state.finished else { return nil }
            if let waiter = state.waiters.popFirst() { return waiter }
            if state.buffer.append(event) {
                state.missedSinceLastReport += 1
                state.totalMissed += 1
            }
            return nil
        }
        waiter?.resume(returning: .event(event))
    }

    func finish(discardBuffered: Bool = false) {
        let waiters = state.withLock { state in
            state.finished = true
            if discardBuffered { state.buffer.removeAll() }
            return state.waiters.removeAll()
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    private func take(_ state: inout State) -> EventBusElement?? {
        if state.missedSinceLastReport > 0 {
            defer { state.missedSinceLastReport = 0 }
            return .some(.lagged(missed: state.missedSinceLastReport))
        }
        if let event = state.buffer.popFirst() { return .some(.event(event)) }
        if state.finished { return .some(nil) }
        return nil
    }

    /// The next element; `nil` once finished, or when the calling task is cancelled (which
    /// ends only its own wait: other tasks iterating the same subscription go on).
    nonisolated(nonsending) func next() async -> EventBusElement? {
        if let ready = state.withLock({ take(&$0) }) { return ready }
        let id = state.withLock { $0.waiters.makeID() }
        return await suspendAsWaiter { continuation in
            state.withLock { state -> EventBusElement?? in
                if let ready = take(&state) {
                    state.waiters.forget(id)
                    return ready
                }
                return state.waiters.add(id, continuation)
            }
        } cancel: { [self] in
            let waiter = state.withLock { $0.waiters.resolve(id, with: nil) }
            waiter?.resume(returning: nil)
        }
    }
}
