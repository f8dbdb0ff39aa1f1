import EnnioEvents
import EnnioHTTP
import EnnioSync
import Foundation

/// Hands the events each committed batch stored to the HTTP event streams that want them, on
/// a thread of its own: the coordinator's commit hook only appends the batch here and returns,
/// so ingest never waits for a stream. Each event is written as a server-sent event once, and
/// that message is shared by every stream it matches.
///
/// Every queue is bounded: a stream's own (``StreamQueue``: a stream that falls behind is
/// dropped and counted, and resumes from its last event id when it reconnects), and the
/// feed's, of batches not yet handed on (past `maximumPendingEvents`, every stream is dropped
/// — counted as an overrun — and resumes the same way).
final class EventFeed: Sendable {
    /// A stream that wants events: its filters and its queue of encoded messages.
    final class Subscriber: Sendable {
        let filter: HistoryQuery
        let queue: StreamQueue<[UInt8]>

        init(filter: HistoryQuery, queue: StreamQueue<[UInt8]>) {
            self.filter = filter
            self.queue = queue
        }
    }

    struct Statistics: Sendable, Hashable {
        var subscribers = 0
        /// Streams dropped because their queue overflowed (the client read too slowly).
        var droppedSlow: UInt64 = 0
        /// Times the feed itself fell behind and dropped every stream.
        var overruns: UInt64 = 0
    }

    private enum Item: Sendable {
        case batch([Event])
        case add(UInt64, Subscriber)
        case remove(UInt64)
        case dropAll
    }

    private struct Input {
        var items: [Item] = []
        var pendingEvents = 0
        var nextID: UInt64 = 0
        /// The streams added and not yet removed or dropped (some perhaps still in `items`).
        var live: Set<UInt64> = []
        var stopped = false
        var running = false
        var statistics = Statistics()
    }

    let maximumPendingEvents: Int
    private let condition = ConditionLock()
    private let input = Locked(Input())
    /// Only the feed's thread touches the subscribers; their count is mirrored in `input`.
    private let subscribers = Locked<[UInt64: Subscriber]>([:])

    init(maximumPendingEvents: Int = 200_000) {
        self.maximumPendingEvents = maximumPendingEvents
    }

    var statistics: Statistics {
        input.withLock { input in
            var statistics = input.statistics
            statistics.subscribers = input.live.count
            return statistics
        }
    }

    func start() {
        let start = input.withLock { input -> Bool in
            guard !input.running, !input.stopped else { return false }
            input.running = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in run() }
        thread.name = "ennio-http-feed"
        thread.start()
    }

    /// Ends the thread and closes every stream's queue.
    func stop() {
        condition.withLock { input.withLock { $0.stopped = true } }
        condition.signal()
    }

    /// Called by the commit hook: the batch goes on the feed's queue; never waits.
    func announce(_ events: [Event]) {
        let dropped = condition.withLock { () -> [Subscriber] in
            input.withLock { input -> [Subscriber] in
                guard !input.stopped, !input.live.isEmpty else { return [] }
                guard input.pendingEvents + events.count <= maximumPendingEvents else {
                    // Fallen behind: every stream, present or about to be added, misses a
                    // batch, so every one is dropped; they resume from the history.
                    var dropped: [Subscriber] = []
                    input.items = input.items.compactMap { item in
                        switch item {
                        case .batch: return nil
                        case .add(let id, let subscriber):
                            dropped.append(subscriber)
                            input.live.remove(id)
                            return nil
                        case .remove, .dropAll: return item
                        }
                    }
                    input.items.append(.dropAll)
                    input.pendingEvents = 0
                    input.statistics.overruns += 1
                    return dropped
                }
                input.items.append(.batch(events))
                input.pendingEvents += events.count
                return []
            }
        }
        condition.signal()
        for subscriber in dropped { subscriber.queue.close() }
    }

    /// Adds a stream; it receives every batch announced after this call. Call it between
    /// commits (``Coordinator/betweenCommits(_:)``) to know exactly which batches those are.
    func add(_ subscriber: Subscriber) -> UInt64 {
        let id = condition.withLock {
            input.withLock { input -> UInt64 in
                let id = input.nextID
                input.nextID += 1
                input.items.append(.add(id, subscriber))
                input.live.insert(id)
                return id
            }
        }
        condition.signal()
        return id
    }

    func remove(_ id: UInt64) {
        condition.withLock {
            input.withLock { input in
                input.live.remove(id)
                input.items.append(.remove(id))
            }
        }
        condition.signal()
    }

    private func run() {
        while true {
            condition.lock()
            var items: [Item] = []
            var stopped = false
            while true {
                (items, stopped) = input.withLock { input in
                    defer {
                        input.items.removeAll()
                        input.pendingEvents = 0
                    }
                    return (input.items, input.stopped)
                }
                if !items.isEmpty || stopped { break }
                condition.wait()
            }
            condition.unlock()
            if stopped {
                let all = subscribers.withLock { subscribers in
                    defer { subscribers.removeAll() }
                    return Array(subscribers.values)
                }
                for subscriber in all { subscriber.queue.close() }
                for case .add(_, let subscriber) in items { subscriber.queue.close() }
                input.withLock {
                    $0.live.removeAll()
                    $0.running = false
                }
                return
            }
            // Batches that queued up back to back go out as one: when the feed falls behind,
            // each stream gets fewer, larger writes, which is what lets it catch up.
            var events: [Event] = []
            for item in items {
                if case .batch(let batch) = item {
                    events += batch
                    continue
                }
                if !events.isEmpty {
                    deliver(events)
                    events.removeAll()
                }
                handle(item)
            }
            if !events.isEmpty { deliver(events) }
        }
    }

    private func handle(_ item: Item) {
        switch item {
        case .add(let id, let subscriber):
            subscribers.withLock { $0[id] = subscriber }
        case .remove(let id):
            subscribers.withLock { $0[id] = nil }
        case .dropAll:
            let all = subscribers.withLock { subscribers in
                defer { subscribers.removeAll() }
                return subscribers
            }
            input.withLock { input in
                for id in all.keys { input.live.remove(id) }
            }
            for subscriber in all.values { subscriber.queue.close() }
        case .batch(let events):
            deliver(events)
        }
    }

    /// Encodes each event once, for the streams it matches, and offers each stream its share.
    private func deliver(_ events: [Event]) {
        let current = subscribers.withLock { Array($0) }
        guard !current.isEmpty else { return }
        var shares = Array(repeating: [[UInt8]](), count: current.count)
        for event in events {
            var message: [UInt8]?
            for (index, (_, subscriber)) in current.enumerated() where subscriber.filter.matches(event) {
                if message == nil { message = Self.message(for: event) }
                shares[index].append(message!)
            }
        }
        var slow: [UInt64] = []
        for (index, (id, subscriber)) in current.enumerated() where !shares[index].isEmpty {
            if !subscriber.queue.offer(shares[index]) { slow.append(id) }
        }
        guard !slow.isEmpty else { return }
        subscribers.withLock { subscribers in
            for id in slow { subscribers[id] = nil }
        }
        input.withLock { input in
            for id in slow { input.live.remove(id) }
            input.statistics.droppedSlow += UInt64(slow.count)
        }
    }

    /// One event as a server-sent event: `id:` its cursor, `data:` its JSON. A cursor that
    /// cannot be an SSE id (its event id holds a line break or NUL) is left out: a client
    /// that reconnects then resumes from the event before, and sees this one again rather
    /// than missing it.
    static func message(for event: Event) -> [UInt8] {
        let cursor = HistoryCursor(after: event).description
        let usable = !cursor.utf8.contains { $0 == 0x0A || $0 == 0x0D || $0 == 0 }
        var message: [UInt8] = []
        ServerSentEvents.appendMessage(id: usable ? cursor : nil, event: nil, data: EventCodec.encode(event), to: &message)
        return message
    }
}
