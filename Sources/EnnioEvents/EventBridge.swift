import EnnioSync
import NATSClient
import Synchronization

/// Connects an in-process ``EventBus`` to NATS in both directions, without loops or duplicates.
///
/// Events published on the bus go out to NATS; events arriving from NATS (matching `pattern`)
/// are published on the bus. The bridge remembers the ids it forwarded each way (the most recent
/// `memory` of them), so its own publishes coming back from NATS are not put on the bus again,
/// and events it took from NATS are not sent back out.
public final class EventBridge: Sendable {
    public let bus: EventBus
    public let publisher: EventPublisher
    public let pattern: EventPattern

    private let seen: Locked<SeenIDs>
    private let counters = Counters()

    final class Counters: Sendable {
        let toNATS = Atomic<UInt64>(0)
        let toBus = Atomic<UInt64>(0)
        let suppressed = Atomic<UInt64>(0)
        let failed = Atomic<UInt64>(0)
    }

    public init(bus: EventBus, publisher: EventPublisher, pattern: EventPattern = .all, memory: Int = 65_536) {
        self.bus = bus
        self.publisher = publisher
        self.pattern = pattern
        self.seen = Locked(SeenIDs(capacity: memory))
    }

    /// Events sent from the bus to NATS.
    public var forwardedToNATS: UInt64 { counters.toNATS.load(ordering: .relaxed) }
    /// Events taken from NATS onto the bus.
    public var forwardedToBus: UInt64 { counters.toBus.load(ordering: .relaxed) }
    /// Events not forwarded because they had already crossed the bridge.
    public var suppressed: UInt64 { counters.suppressed.load(ordering: .relaxed) }
    /// Events the bridge could not publish to NATS (invalid subject segment, closed connection).
    public var failedToPublish: UInt64 { counters.failed.load(ordering: .relaxed) }

    /// Runs both directions until the calling task is cancelled or the connection closes.
    /// Returns once the bridge is subscribed on both sides, via `ready`.
    public func run(ready: (@Sendable () -> Void)? = nil) async throws {
        let fromBus = bus.subscribe(.all)
        let fromNATS = try EventSubscription(connection: publisher.connection, pattern: pattern)
        try await publisher.connection.flush()
        ready?()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.forward(fromBus) }
            group.addTask { await self.forward(fromNATS) }
            await group.next()
            group.cancelAll()
        }
        fromBus.cancel()
        try? fromNATS.unsubscribe()
    }

    private func forward(_ subscription: EventBusSubscription) async {
        for await element in subscription {
            guard case .event(let event) = element else { continue }
            let fresh = seen.withLock { $0.insert(event.id, direction: .toNATS) }
            guard fresh else {
                counters.suppressed.add(1, ordering: .relaxed)
                continue
            }
            do {
                try publisher.publish(event)
                counters.toNATS.add(1, ordering: .relaxed)
            } catch {
                counters.failed.add(1, ordering: .relaxed)
            }
        }
    }

    private func forward(_ subscription: EventSubscription) async {
        for await delivery in subscription {
            guard let event = delivery.event else { continue }
            let fresh = seen.withLock { $0.insert(event.id, direction: .toBus) }
            guard fresh else {
                counters.suppressed.add(1, ordering: .relaxed)
                continue
            }
            bus.publish(event)
            counters.toBus.add(1, ordering: .relaxed)
        }
    }
}

/// Ids that crossed the bridge recently, with the direction they crossed in.
struct SeenIDs {
    enum Direction { case toNATS, toBus }

    private var directions: [String: Direction] = [:]
    private var order: BoundedQueue<String>

    init(capacity: Int) {
        order = BoundedQueue(capacity: max(1, capacity))
    }

    /// Records `id` crossing in `direction`; false when it already crossed (either way), which
    /// means forwarding it would send it back where it came from or twice.
    mutating func insert(_ id: String, direction: Direction) -> Bool {
        guard directions[id] == nil else { return false }
        directions[id] = direction
        if order.count == order.capacity, let oldest = order.popFirst() {
            directions.removeValue(forKey: oldest)
        }
        _ = order.append(id)
        return true
    }
}
