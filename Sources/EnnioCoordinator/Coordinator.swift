public import EnnioEvents
public import NATSClient
import Synchronization

/// How the coordinator runs.
public struct CoordinatorOptions: Sendable {
    /// A node's health-check interval when its events do not say (`data.interval_seconds`).
    public var defaultHealthInterval: Duration = .seconds(10)
    /// Intervals without a health check after which a node is disconnected.
    public var missedHealthChecks = 3
    /// How often node health is checked.
    public var tickInterval: Duration = .milliseconds(500)

    public init() {}
}

/// Counts of what the coordinator did.
public struct CoordinatorStatistics: Sendable, Hashable {
    /// Messages received on event subjects.
    public var received: UInt64 = 0
    /// Events stored (new ids).
    public var stored: UInt64 = 0
    /// Events whose id was already stored: not stored or applied again.
    public var duplicates: UInt64 = 0
    /// Payloads that were not valid events.
    public var malformed: UInt64 = 0
    /// Valid events on a subject they do not belong to.
    public var mismatched: UInt64 = 0
    /// Events the coordinator published itself (all_complete, node_disconnected).
    public var published: UInt64 = 0
    /// Queries answered, and those answered with an error.
    public var queries: UInt64 = 0
    public var badQueries: UInt64 = 0
    /// Events that could not be stored (a database failure).
    public var storeFailures: UInt64 = 0
}

/// The central lifecycle coordinator: subscribes to every event category with wildcard
/// patterns, stores every event once in SQLite, keeps session and node state, applies the
/// lifecycle rules, and answers history and state queries over request/reply.
public final class Coordinator: Sendable {
    public let connection: NATSConnection
    public let store: EventStore
    public let options: CoordinatorOptions
    private let log: @Sendable (String) -> Void

    private struct Mutable {
        var lifecycle: LifecycleState
        var statistics = CoordinatorStatistics()
    }

    private let state: Mutex<Mutable>
    private let clockOrigin = ContinuousClock.now

    /// The coordinator subscribes to every event with one wildcard pattern, so that it sees
    /// events in the order the server delivers them, across categories.
    public static let eventPattern = EventPattern.all

    /// Subject families under `ennio.` that carry no events: skipped without complaint.
    static let nonEventFamilies: Set<Substring> = ["commands", "query", "metrics", "dashboard"]

    /// Whether a subject under `ennio.>` is meant to carry an event.
    static func carriesEvents(_ subject: String) -> Bool {
        let parts = subject.split(separator: ".", maxSplits: 2)
        return parts.count < 2 || !nonEventFamilies.contains(parts[1])
    }

    /// Creates a coordinator and rebuilds its session and node state from the stored history,
    /// so a restart keeps what it knew.
    public init(
        connection: NATSConnection,
        store: EventStore,
        options: CoordinatorOptions = CoordinatorOptions(),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.connection = connection
        self.store = store
        self.options = options
        self.log = log
        var lifecycle = LifecycleState(defaultHealthInterval: options.defaultHealthInterval, missedHealthChecks: options.missedHealthChecks)
        var query = HistoryQuery(limit: 1000)
        while true {
            let page = try store.query(query)
            for event in page.events {
                let host = event.eventType.category == .node ? event.data["host"]?.stringValue : nil
                _ = lifecycle.apply(event, host: host, now: .zero)
            }
            guard let next = page.nextOffset else { break }
            query.offset = next
        }
        self.state = Mutex(Mutable(lifecycle: lifecycle))
    }

    private var now: Duration { ContinuousClock.now - clockOrigin }

    public var statistics: CoordinatorStatistics { state.withLock { $0.statistics } }
    public var sessions: [SessionRecord] { state.withLock { $0.lifecycle.sessionList } }
    public var nodes: [NodeRecord] { state.withLock { $0.lifecycle.nodeList } }

    /// Subscribes and works until the calling task is cancelled or the connection closes.
    /// `ready` is called once every subscription is in place on the server.
    public func run(ready: (@Sendable () -> Void)? = nil) async throws {
        let events = try connection.subscribe(to: Self.eventPattern.subject)
        let queries = try [QueryProtocol.historySubject, QueryProtocol.sessionsSubject, QueryProtocol.nodesSubject].map {
            try connection.subscribe(to: $0, queueGroup: "ennio-coordinator")
        }
        try await connection.flush()
        log("coordinator: subscribed to \(Self.eventPattern.subject)")
        ready?()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in events where Self.carriesEvents(message.subject) {
                    self.ingest(EventSubscription.decode(message))
                }
            }
            for subscription in queries {
                group.addTask {
                    for await request in subscription { self.answer(request) }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.options.tickInterval)
                    self.checkNodes()
                }
            }
            await group.next()
            group.cancelAll()
        }
        try? events.unsubscribe()
        for subscription in queries { try? subscription.unsubscribe() }
    }

    /// Handles one delivery: store it if new, then apply the lifecycle rules.
    public func ingest(_ delivery: EventDelivery) {
        let actions: [LifecycleAction] = state.withLock { state in
            state.statistics.received += 1
            switch delivery {
            case .malformed(let subject, _, let error):
                state.statistics.malformed += 1
                log("coordinator: ignored a malformed event on \(subject): \(error)")
                return []
            case .mismatched(let event, let subject):
                state.statistics.mismatched += 1
                log("coordinator: ignored event \(event.id) (\(event.eventType)) on the wrong subject \(subject)")
                return []
            case .event(let event, let subject):
                do {
                    guard try store.insert(event, subject: subject) else {
                        state.statistics.duplicates += 1
                        return []
                    }
                } catch {
                    state.statistics.storeFailures += 1
                    log("coordinator: could not store event \(event.id): \(error)")
                    return []
                }
                state.statistics.stored += 1
                let host = event.eventType.category == .node ? EventSubject.parse(subject)?.scope : nil
                return state.lifecycle.apply(event, host: host, now: now)
            }
        }
        perform(actions)
    }

    /// Applies the node timeout rule now.
    public func checkNodes() {
        let actions = state.withLock { $0.lifecycle.tick(now: now) }
        perform(actions)
    }

    private func perform(_ actions: [LifecycleAction]) {
        for action in actions {
            switch action {
            case .publish(let event, let host):
                do {
                    let subject = try EventPublisher(connection: connection, host: host).publish(event)
                    state.withLock { $0.statistics.published += 1 }
                    log("coordinator: published \(event.eventType) on \(subject): \(event.message)")
                } catch {
                    log("coordinator: could not publish \(event.eventType): \(error)")
                }
            }
        }
    }

    private func answer(_ request: NATSMessage) {
        guard let replyTo = request.replyTo else { return }
        let reply: [UInt8]
        var failed = false
        switch request.subject {
        case QueryProtocol.historySubject:
            do {
                let query = try QueryProtocol.historyQuery(from: request.payload)
                reply = QueryProtocol.reply(for: try store.query(query))
            } catch let error as HistoryQueryError {
                failed = true
                reply = QueryProtocol.errorReply(code: 400, description: error.message)
            } catch {
                failed = true
                reply = QueryProtocol.errorReply(code: 500, description: "the history could not be read: \(error)")
            }
        case QueryProtocol.sessionsSubject:
            reply = QueryProtocol.reply(for: sessions)
        case QueryProtocol.nodesSubject:
            reply = QueryProtocol.reply(for: nodes, now: now)
        default:
            failed = true
            reply = QueryProtocol.errorReply(code: 404, description: "unknown query \(request.subject)")
        }
        state.withLock {
            $0.statistics.queries += 1
            if failed { $0.statistics.badQueries += 1 }
        }
        do {
            try connection.publish(reply, to: replyTo)
        } catch {
            log("coordinator: could not answer a query: \(error)")
        }
    }
}
