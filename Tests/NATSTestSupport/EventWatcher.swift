import EnnioSync
import NATSClient
import Synchronization

/// Records a connection's events as they happen, so a test can wait for one.
final class EventWatcher: Sendable {
    private final class Log: Sendable {
        let seen = Locked<[ConnectionEvent]>([])
    }

    private let log = Log()
    private let task: Task<Void, Never>

    init(_ connection: NATSConnection) {
        let stream = connection.events()
        let log = self.log
        task = Task {
            for await event in stream { log.seen.withLock { $0.append(event) } }
        }
    }

    deinit { task.cancel() }

    var events: [ConnectionEvent] { log.seen.withLock { $0 } }

    /// Waits until an event satisfying `predicate` has been seen `count` times in all.
    @discardableResult
    func wait(
        for what: String,
        count: Int = 1,
        within limit: Duration = .seconds(30),
        _ predicate: @escaping @Sendable (ConnectionEvent) -> Bool
    ) async throws -> ConnectionEvent {
        let deadline = ContinuousClock.now + limit
        while true {
            let matching = events.filter(predicate)
            if matching.count >= count { return matching[count - 1] }
            guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func waitForReconnect(count: Int = 1) async throws -> String {
        let event = try await wait(for: "reconnect #\(count)", count: count) {
            if case .reconnected = $0 { return true }
            return false
        }
        guard case .reconnected(let server) = event else { return "" }
        return server
    }

    func waitForDisconnect(count: Int = 1) async throws {
        try await wait(for: "disconnect #\(count)", count: count) {
            if case .disconnected = $0 { return true }
            return false
        }
    }
}

/// Waits until `condition` holds, checking every 10 ms; `limit` is a safety net only.
func eventually(_ what: String, within limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(10))
    }
}
