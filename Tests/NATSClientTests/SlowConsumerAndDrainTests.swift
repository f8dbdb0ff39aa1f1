import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct SlowConsumerTests {
    @Test func aSubscriberThatDoesNotReadIsBoundedAndItsDropsCounted() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) {
            $0.pendingMessageLimit = 100
            $0.pendingByteLimit = 1024 * 1024
        }
        let events = EventWatcher(connection)
        let lazy = try connection.subscribe(to: "firehose")
        let busy = try connection.subscribe(to: "firehose")
        try await connection.flush()

        // 20 rounds of 50: the busy consumer empties its queue after every round, so it never
        // reaches the limit; the lazy one never reads.
        var consumed: [String] = []
        for round in 0..<20 {
            for index in (round * 50)..<(round * 50 + 50) { try connection.publish(String(index), to: "firehose") }
            try await connection.flush()
            consumed += await busy.takeQueued().map(\.string)
        }

        #expect(consumed == (0..<1000).map(String.init))
        #expect(busy.droppedCount == 0, "a reader that keeps up is not affected")
        #expect(lazy.pendingCount == 100)
        #expect(lazy.droppedCount == 900)
        #expect(lazy.deliveredCount == 100)
        // The first 100 were kept; later ones dropped.
        #expect(await lazy.takeQueued().map(\.string) == (0..<100).map(String.init))
        try await events.wait(for: "a slow consumer event") {
            if case .slowConsumer(let subject, _) = $0 { return subject == "firehose" }
            return false
        }
        let slowEvents = events.events.filter { if case .slowConsumer = $0 { return true } else { return false } }
        #expect(slowEvents.count == 1, "one report per episode, not one per dropped message")
        await connection.close()
    }

    /// A subscription's own limits replace the connection's for it alone.
    @Test func aSubscriptionWithLimitsOfItsOwnKeepsWhatTheyAllow() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) { $0.pendingMessageLimit = 10 }
        let ordinary = try connection.subscribe(to: "window")
        let roomy = try connection.subscribe(to: "window", pendingLimits: PendingLimits(messages: 500, bytes: 1 << 20))
        try await connection.flush()
        for index in 0..<300 { try connection.publish(String(index), to: "window") }
        try await connection.flush()
        #expect(ordinary.pendingCount == 10)
        #expect(ordinary.droppedCount == 290)
        #expect(roomy.pendingCount == 300)
        #expect(roomy.droppedCount == 0)
        #expect(throws: NATSError.self) { try connection.subscribe(to: "x", pendingLimits: PendingLimits(messages: 0, bytes: 1)) }
        await connection.close()
    }

    @Test func theByteLimitBoundsMemoryToo() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) {
            $0.pendingMessageLimit = 1_000_000
            $0.pendingByteLimit = 10_000
        }
        let lazy = try connection.subscribe(to: "big")
        try await connection.flush()
        for _ in 0..<100 { try connection.publish([UInt8](repeating: 0, count: 1000), to: "big") }
        try await connection.flush()
        #expect(lazy.pendingBytes <= 10_000)
        #expect(lazy.pendingCount == 10)
        #expect(lazy.droppedCount == 90)
        await connection.close()
    }
}

@Suite struct DrainTests {
    @Test func drainingASubscriptionDeliversWhatIsPendingThenEnds() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "work")
        try await connection.flush()
        for index in 0..<50 { try connection.publish(String(index), to: "work") }
        try await subscription.drain()
        try connection.publish("after drain", to: "work")
        try await connection.flush()
        let all = try await within { await subscription.reduce(into: [String]()) { $0.append($1.string) } }
        #expect(all == (0..<50).map(String.init))
        await connection.close()
    }

    @Test func drainingTheConnectionDeliversEverythingAndCloses() async throws {
        let server = try TestServer()
        let publisher = try await NATSConnection.connect(to: server)
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "jobs")
        try await connection.flush()
        for index in 0..<2000 { try publisher.publish(String(index), to: "jobs") }
        try await publisher.flush()

        let consumer = Task {
            var seen: [String] = []
            for await message in subscription {
                seen.append(message.string)
                if seen.count % 500 == 0 { try? await Task.sleep(for: .milliseconds(5)) }
            }
            return seen
        }
        try await connection.drain(timeout: .seconds(60))
        #expect(connection.status == .closed)
        #expect(await consumer.value == (0..<2000).map(String.init))
        await publisher.close()
    }

    @Test func drainFlushesPublishes() async throws {
        let server = try TestServer()
        let observer = try await NATSConnection.connect(to: server)
        let subscription = try observer.subscribe(to: "out")
        try await observer.flush()
        let connection = try await NATSConnection.connect(to: server)
        for index in 0..<100 { try connection.publish(String(index), to: "out") }
        try await connection.drain()
        #expect(try await subscription.take(100).map(\.string) == (0..<100).map(String.init))
        await observer.close()
    }
}

