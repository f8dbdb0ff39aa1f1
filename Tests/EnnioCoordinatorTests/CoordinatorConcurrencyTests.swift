@testable import EnnioCoordinator
import EnnioEvents
import Dispatch
import EnnioSync
import Foundation
import NATSClient
@testable import NATSTestSupport
import Synchronization
import Testing

/// A gate that threads or tasks stop at until it is opened, counting who arrived.
final class TestGate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let opened = Atomic<Bool>(false)
    let arrivals = Atomic<Int>(0)
    private let waiters = Locked<[CheckedContinuation<Void, Never>]>([])

    /// Blocks the calling thread (never a task's: use `pass()` there) until the gate opens.
    func block() {
        arrivals.add(1, ordering: .sequentiallyConsistent)
        guard !opened.load(ordering: .sequentiallyConsistent) else { return }
        semaphore.wait()
        semaphore.signal()
    }

    /// Suspends until the gate opens.
    func pass() async {
        arrivals.add(1, ordering: .sequentiallyConsistent)
        await withCheckedContinuation { continuation in
            let waiting = waiters.withLock { list -> Bool in
                guard !opened.load(ordering: .sequentiallyConsistent) else { return false }
                list.append(continuation)
                return true
            }
            if !waiting { continuation.resume() }
        }
    }

    func open() {
        let list = waiters.withLock { list -> [CheckedContinuation<Void, Never>] in
            opened.store(true, ordering: .sequentiallyConsistent)
            defer { list.removeAll() }
            return list
        }
        semaphore.signal()
        for waiter in list { waiter.resume() }
    }

    var arrived: Int { arrivals.load(ordering: .sequentiallyConsistent) }
}

/// What the coordinator's threads and queues do under load (issue 12: no blocking on the
/// cooperative pool, no lock across a batch, bounded queues with back-pressure).
@Suite struct CoordinatorConcurrencyTests {
    func temporaryDatabase() -> (path: String, remove: @Sendable () -> Void) {
        let directory = NSTemporaryDirectory() + "ennio-concurrency-\(EventID.random())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (directory + "/events.sqlite", { try? FileManager.default.removeItem(atPath: directory) })
    }

    /// A batch held in the middle of its update (its transaction open, the writer busy): every
    /// query is still answered, from what was committed before.
    @Test func queriesAreAnsweredWhileABatchIsInProgress() async throws {
        let server = try TestServer()
        let database = temporaryDatabase()
        defer { database.remove() }
        var options = CoordinatorOptions()
        options.mode = .core
        let running = try await RunningCoordinator(server: server, databasePath: database.path, options: options)
        let client = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: client)
        try publisher.publish(event(.sessionSpawned, session: "before"))
        try await client.flush()
        try await running.waitForReceived(1)

        let gate = TestGate()
        running.coordinator.hooks.withLock { $0.duringBatch = { gate.block() } }
        defer { gate.open() }
        try publisher.publish(event(.sessionSpawned, session: "held"))
        try await client.flush()
        try await eventually("the batch to be held in its update") { gate.arrived == 1 }

        for subject in [QueryProtocol.sessionsSubject, QueryProtocol.nodesSubject, QueryProtocol.historySubject] {
            let reply = try await client.request([], to: subject, timeout: .seconds(10))
            let value = try JSONValue(parsing: reply.payload)
            #expect(value["error"] == nil, "\(subject): \(value)")
        }
        let sessions = try JSONValue(parsing: try await client.request([], to: QueryProtocol.sessionsSubject, timeout: .seconds(10)).payload)
        #expect(sessions["sessions"]?.arrayValue?.compactMap { $0["session_id"]?.stringValue } == ["before"], "what was committed")

        gate.open()
        try await running.waitForReceived(2)
        await client.close()
        await running.stop()
    }

    /// Queries are answered on the coordinator's query thread, not on the cooperative pool
    /// (where SQLite work would keep a thread from every other task).
    @Test func queriesRunOnAThreadOfTheirOwn() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let threads = Locked<[String]>([])
        running.coordinator.hooks.withLock {
            $0.answeringQuery = { threads.withLock { $0.append(SerialWorker.current ?? "not a worker") } }
        }
        let client = try await NATSConnection.connect(to: server.url)
        for subject in [QueryProtocol.sessionsSubject, QueryProtocol.nodesSubject, QueryProtocol.historySubject] {
            _ = try await client.request([], to: subject, timeout: .seconds(10))
        }
        #expect(threads.withLock { $0 } == ["ennio-query", "ennio-query", "ennio-query"])
        await client.close()
        await running.stop()
    }

    /// While the actions of earlier batches cannot be performed, the queue of actions stays
    /// within its limit and ingest waits for room (the events wait in the subscription's or
    /// the stream's bounded queue) — the producer never piles up work without bound. Once the
    /// performer goes on, every action is performed.
    @Test func theActionQueueIsBoundedAndItsProducerWaits() async throws {
        let server = try TestServer()
        var options = CoordinatorOptions()
        options.mode = .core
        options.actionQueueLimit = 1
        let running = try await RunningCoordinator(server: server, options: options)
        let gate = TestGate()
        running.coordinator.hooks.withLock { $0.performing = { await gate.pass() } }
        defer { gate.open() }
        let client = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: client)
        // Each project's one session starts and ends: one all_complete per project, each in a
        // batch of its own (the next pair is published once the previous one is stored).
        for project in 0..<3 {
            try publisher.publish(event(.sessionSpawned, project: "p\(project)", session: "s"))
            try publisher.publish(event(.sessionExited, project: "p\(project)", session: "s"))
            try await client.flush()
            try await running.waitForReceived(UInt64(2 * (project + 1)))
        }
        // The first batch of actions is stalled in the performer, the second fills the queue,
        // the third's producer waits for room.
        try await eventually("the action producer to wait for room") { running.coordinator.actions.waitingSenders == 1 }
        #expect(running.coordinator.actions.count <= 1)
        gate.open()
        try await eventually("every all_complete published") { running.coordinator.statistics.published == 3 }
        await client.close()
        await running.stop()
    }
}
