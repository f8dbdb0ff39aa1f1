import EnnioEvents

/// The events a coordinator derives (`all_complete`, `node_disconnected`, `RolloutTerminal`)
/// while it catches up with the stream: held back instead of published, and forgotten when
/// the stream brings the same event (by id) — another coordinator, or this one before it
/// stopped, published it already. What is still held once the coordinator has caught up is
/// published then. A pure value; the coordinator keeps it under a lock.
///
/// Without it, a coordinator catching up with an old history would publish again every
/// derived event of that history: the stream's duplicate window (10 minutes) would not catch
/// those older than that, and the stream would hold them twice (the histories would not: an
/// event is known there by its id and timestamp, both derived).
///
/// Bounded: past ``capacity`` held events, the oldest is published at once (the history keeps
/// it once whatever happens; at worst the stream holds a second copy of an old event).
struct HeldEmissions: Sendable {
    let capacity: Int
    /// Publishing as events are derived (caught up), rather than holding them.
    private(set) var releasing: Bool
    /// Held actions by event id, and the ids in the order they were derived (some already
    /// forgotten: skipped when released).
    private var held: [String: LifecycleAction] = [:]
    private var order: [String] = []
    private var orderStart = 0

    init(releasing: Bool = true, capacity: Int = 100_000) {
        self.releasing = releasing
        self.capacity = max(1, capacity)
    }

    /// Events held now.
    var count: Int { held.count }

    /// Starts holding (a coordinator about to catch up with a stream).
    mutating func hold() {
        releasing = false
    }

    /// A batch was committed: it stored `stored` (new events, by id) and its rules asked for
    /// `actions`. Returns the actions to perform now.
    mutating func committed(actions: [LifecycleAction], stored: some Sequence<String>) -> [LifecycleAction] {
        guard !releasing else { return actions }
        for action in actions {
            guard case .publish(let event, _) = action else { continue }
            if held.updateValue(action, forKey: event.id) == nil { order.append(event.id) }
        }
        if !held.isEmpty {
            for id in stored { held[id] = nil }
        }
        var now: [LifecycleAction] = []
        while held.count > capacity, let oldest = takeOldest() { now.append(oldest) }
        compact()
        return now
    }

    /// Caught up: returns what is still held, in the order it was derived, and publishes as
    /// events are derived from now on.
    mutating func caughtUp() -> [LifecycleAction] {
        releasing = true
        var released: [LifecycleAction] = []
        while let action = takeOldest() { released.append(action) }
        order.removeAll()
        orderStart = 0
        return released
    }

    private mutating func takeOldest() -> LifecycleAction? {
        while orderStart < order.count {
            let id = order[orderStart]
            orderStart += 1
            if let action = held.removeValue(forKey: id) { return action }
        }
        return nil
    }

    /// Drops forgotten ids from the front of `order`, and all of it once nothing is held.
    private mutating func compact() {
        if held.isEmpty {
            order.removeAll(keepingCapacity: true)
            orderStart = 0
        } else if order.count - orderStart > 2 * capacity {
            order = order[orderStart...].filter { held[$0] != nil }
            orderStart = 0
        } else if orderStart > 1024, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }
}
