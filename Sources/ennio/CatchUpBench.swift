import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient

/// `ennio bench catchup`: how long a coordinator started empty takes to catch up with a stream
/// that already holds `count` events — what a second coordinator, or one that was down a long
/// time, goes through before it answers queries. And the helpers `bench ingest` shares with it.
extension BenchCommand {
    static func catchUp(_ arguments: Arguments, count: Int, replicas: Int?) async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let connection = try await connection(arguments, name: "ennio bench catchup publisher")
        guard connection.serverInfo?.jetStream == true else {
            await connection.close()
            throw BenchError("bench catchup: the server has no JetStream")
        }
        // A fresh stream, large enough for every event (the default limit is 1 GiB): 2 KiB an
        // event, and room besides.
        let jetStream = JetStream(connection: connection, timeout: .seconds(30))
        try? await jetStream.deleteStream(EventStream.name)
        let limits = EventStream.Limits(maxBytes: Int64(count) * 2048 + (64 << 20))
        // A cluster just started may still be electing its JetStream leader or waiting for its
        // servers to join (what the coordinator waits through too): tried for a minute.
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                try await EventStream.ensure(jetStream, limits: limits, replicas: replicas)
                break
            } catch where Coordinator.isTransient(error) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
            }
        }

        // The stream, filled with acknowledged publishes, as agents publish.
        let templates = sampleEvents(4096)
        let base = EventTimestamp.now().nanosecondsSinceEpoch
        let filling = ContinuousClock.now
        var published = 0
        while published < count {
            let batch = stamped(templates, published..<min(published + 5_000, count), base: base)
            try await publishAcknowledged(batch, on: connection)
            published += batch.count
        }
        rateReport("catchup_fill", count: count, bytes: 0, elapsed: ContinuousClock.now - filling, unit: "events")
        let messages = try await jetStream.streamInfo(EventStream.name).state.messages
        guard messages == UInt64(count) else { throw BenchError("bench catchup: the stream holds \(messages) events, not \(count)") }

        // A coordinator started empty, with a durable consumer of its own.
        let store = try EventStore(path: directory.appendingPathComponent("late.sqlite").path)
        defer { store.close() }
        let coordinatorConnection = try await self.connection(arguments, name: "ennio bench catchup coordinator", subscriberLimits: true)
        var options = CoordinatorOptions()
        options.mode = .jetStream
        options.consumerName = CoordinatorOptions.consumerName(for: "bench-late")
        options.replicas = replicas
        options.streamLimits = limits
        options.stateBuckets = false
        let coordinator = try Coordinator(connection: coordinatorConnection, store: store, options: options) { _ in }
        let start = ContinuousClock.now
        let running = try await started(coordinator)
        try await watch(coordinator, storing: count) { coordinator.statistics.caughtUp }
        let elapsed = ContinuousClock.now - start
        let stored = try store.count()
        guard stored == count else { throw BenchError("bench catchup: caught up with \(stored) events stored, not \(count)") }
        rateReport(replicas.map { "catchup_r\($0)" } ?? "catchup", count: count, bytes: 0, elapsed: elapsed, unit: "events")
        running.cancel()
        _ = try? await running.value
        try? await jetStream.deleteStream(EventStream.name)
        await coordinatorConnection.close()
        await connection.close()
    }

    /// Runs `coordinator` in a task of its own and returns it once the coordinator is reading
    /// (its `ready`), or throws what stopped it before (a stream it could not set up).
    static func started(_ coordinator: Coordinator) async throws -> Task<Void, any Error> {
        let (ready, signal) = AsyncStream<Void>.makeStream()
        let running = Task {
            defer { signal.finish() }
            try await coordinator.run { signal.yield() }
        }
        for await _ in ready { return running }
        try await running.value
        throw BenchError("the coordinator stopped before it was reading")
    }

    /// A folder of its own for a benchmark's files, under the temporary directory.
    static func scratchDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ennio-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// The events numbered `numbers`, made from `templates` (made before any clock starts), each
    /// with a new id and a timestamp of its own, as a producer stamps an event.
    static func stamped(_ templates: [Event], _ numbers: Range<Int>, base: Int64) -> [Event] {
        numbers.map { number in
            var event = templates[number % templates.count]
            event.id = EventID.random()
            event.timestamp = EventTimestamp(nanosecondsSinceEpoch: base + Int64(number) * 1000)
            return event
        }
    }

    /// Acknowledged publishing, as agents do (`publishDurably`), many in flight.
    static func publishAcknowledged(_ events: [Event], on connection: NATSConnection) async throws {
        let messages = try events.map { event in
            (subject: try EventSubject.subject(for: event), payload: EventCodec.encode(event), messageID: Optional(event.id))
        }
        _ = try await JetStream(connection: connection, timeout: .seconds(30)).publishAll(messages, maxPending: 256)
    }

    /// Waits until `done`, polling; fails when `coordinator` stores nothing for 30 s meanwhile
    /// (of the `count` events the benchmark is about).
    static func watch(_ coordinator: Coordinator, storing count: Int, until done: () -> Bool) async throws {
        var lastProgress = (stored: coordinator.statistics.stored, at: ContinuousClock.now)
        while !done() {
            let now = ContinuousClock.now
            let current = coordinator.statistics.stored
            if current != lastProgress.stored {
                lastProgress = (current, now)
            } else if now - lastProgress.at > .seconds(30) {
                throw BenchError("the coordinator stored nothing for 30 s (\(current) of \(count) stored; statistics \(coordinator.statistics))")
            }
            try await Task.sleep(for: .microseconds(200))
        }
    }
}
