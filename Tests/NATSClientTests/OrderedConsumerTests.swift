import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// Ordered consumers against a real server: every message once and in order, whatever happens
/// to the consumer underneath.
@Suite struct OrderedConsumerTests {
    /// Publishes `range` as payloads `"<n>"` to `subject`, in order, acknowledged.
    static func publish(_ range: Range<Int>, to subject: String, _ js: JetStream) async throws {
        _ = try await js.publishAll(range.map { (subject, Array("\($0)".utf8), nil) })
    }

    /// Takes messages from `iterator` until `count` have arrived.
    static func take(_ count: Int, from iterator: inout OrderedConsumer.Iterator) async throws -> [String] {
        try await NATSTestSupport.take(count, from: &iterator).map { String(decoding: $0.payload, as: UTF8.self) }
    }

    static func strings(_ range: Range<Int>) -> [String] { range.map(String.init) }

    static var quick: OrderedConsumerConfig { quick(.push) }

    /// Heartbeats every half second, so that a lost consumer is noticed within a second.
    static func quick(_ delivery: OrderedConsumerConfig.Delivery) -> OrderedConsumerConfig {
        var config = OrderedConsumerConfig()
        config.idleHeartbeat = .milliseconds(500)
        config.delivery = delivery
        return config
    }

    static let deliveries: [OrderedConsumerConfig.Delivery] = [.push, .pull(buffer: 64)]

    @Test(arguments: deliveries) func everyMessageArrivesOnceInOrderThenNewOnesFollow(delivery: OrderedConsumerConfig.Delivery) async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "ORD", subjects: ["ord.>"], storage: .memory))
        try await Self.publish(0..<1000, to: "ord.a", js)

        let consumer = try await js.orderedConsumer(stream: "ORD", config: Self.quick(delivery))
        #expect(consumer.initialPending == 1000)
        var iterator = consumer.makeAsyncIterator()
        #expect(try await Self.take(1000, from: &iterator) == Self.strings(0..<1000))
        try await Self.publish(1000..<1100, to: "ord.b", js)
        let more = try await Self.take(100, from: &iterator)
        #expect(more == Self.strings(1000..<1100))
        #expect(consumer.lastStreamSequence == 1100)
        #expect(consumer.recreations == 0)
        consumer.stop()
        #expect(try await NATSTestSupport.take(1, from: &iterator).isEmpty, "stopped")
        await connection.close()
        await stopOffThePool(server)
    }

    @Test(arguments: deliveries) func itSurvivesTheDeletionOfItsConsumer(delivery: OrderedConsumerConfig.Delivery) async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "DEL", subjects: ["del"], storage: .memory))
        try await Self.publish(0..<300, to: "del", js)

        let consumer = try await js.orderedConsumer(stream: "DEL", config: Self.quick(delivery))
        var iterator = consumer.makeAsyncIterator()
        var received = try await Self.take(100, from: &iterator)
        let first = try #require(consumer.consumerName)
        try await js.deleteConsumer(stream: "DEL", consumer: first)
        try await Self.publish(300..<600, to: "del", js)
        received += try await Self.take(500, from: &iterator)
        #expect(received == Self.strings(0..<600), "nothing missing, nothing twice")
        #expect(consumer.recreations >= 1)
        #expect(consumer.consumerName != first)
        await connection.close()
        await stopOffThePool(server)
    }

    @Test(arguments: deliveries) func itSurvivesAServerRestartWithAFileStore(delivery: OrderedConsumerConfig.Delivery) async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server) {
            $0.reconnectWait = .milliseconds(100)
            $0.maxReconnectAttempts = -1
        }
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "RST", subjects: ["rst"], storage: .file))
        try await Self.publish(0..<300, to: "rst", js)

        let consumer = try await js.orderedConsumer(stream: "RST", config: Self.quick(delivery))
        var iterator = consumer.makeAsyncIterator()
        var received = try await Self.take(100, from: &iterator)
        await stopOffThePool(server)
        let restarted = try await onThread { try jetStreamServer(port: server.port, storeDirectory: directory).0 }
        try await js.publishWhenBack(Array("300".utf8), to: "rst")
        try await Self.publish(301..<600, to: "rst", js)
        received += try await Self.take(500, from: &iterator)
        #expect(received == Self.strings(0..<600), "nothing missing, nothing twice")
        #expect(consumer.recreations >= 1)
        await connection.close()
        await stopOffThePool(restarted)
    }

    @Test func aGapInTheConsumerSequenceIsRepairedFromTheNextStreamSequence() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A subscription that holds 50 messages: the server's first burst overflows it, and the
        // dropped messages leave a gap.
        let connection = try await NATSConnection.connect(to: server) { $0.pendingMessageLimit = 50 }
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "GAP", subjects: ["gap"], storage: .memory))
        try await Self.publish(0..<1000, to: "gap", js)

        var config = Self.quick
        config.pendingLimits = nil
        let consumer = try await js.orderedConsumer(stream: "GAP", config: config)
        try await within(.seconds(20), "the subscription to drop messages") {
            while consumer.buffered.dropped == 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        var iterator = consumer.makeAsyncIterator()
        #expect(try await Self.take(1000, from: &iterator) == Self.strings(0..<1000))
        #expect(consumer.recreations >= 1)
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func flowControlRequestsAreAnswered() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "FC", subjects: ["fc"], storage: .memory))
        // 10 MiB: five times the server's first flow-control window of 2 MiB.
        let chunk = [UInt8](repeating: 0x5A, count: 128 * 1024)
        _ = try await js.publishAll((0..<80).map { _ in ("fc", chunk, nil) }, maxPending: 16)

        let consumer = try await js.orderedConsumer(stream: "FC")
        var iterator = consumer.makeAsyncIterator()
        let bytes = try await NATSTestSupport.take(80, from: &iterator).reduce(0) { $0 + $1.payload.count }
        #expect(bytes == 80 * chunk.count)
        #expect(consumer.flowControlAnswers > 0)
        #expect(consumer.recreations == 0)
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func startPoliciesFiltersAndHeadersOnly() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "POL", subjects: ["pol.>"], storage: .memory))
        for (index, subject) in ["pol.a", "pol.b", "pol.a", "pol.c", "pol.b"].enumerated() {
            _ = try await js.publish(Array("\(index)".utf8), to: subject)
        }

        func all(_ config: OrderedConsumerConfig, _ count: Int) async throws -> [String] {
            let consumer = try await js.orderedConsumer(stream: "POL", config: config)
            defer { consumer.stop() }
            var iterator = consumer.makeAsyncIterator()
            return try await Self.take(count, from: &iterator)
        }
        #expect(try await all(OrderedConsumerConfig(filterSubjects: ["pol.>"], deliverPolicy: .lastPerSubject), 3) == ["2", "3", "4"])
        #expect(try await all(OrderedConsumerConfig(filterSubjects: ["pol.a"]), 2) == ["0", "2"])
        #expect(try await all(OrderedConsumerConfig(filterSubjects: ["pol.a", "pol.c"]), 3) == ["0", "2", "3"])
        #expect(try await all(OrderedConsumerConfig(deliverPolicy: .byStartSequence, startSequence: 4), 2) == ["3", "4"])
        #expect(try await all(OrderedConsumerConfig(deliverPolicy: .last), 1) == ["4"])

        let headers = try await js.orderedConsumer(stream: "POL", config: OrderedConsumerConfig(headersOnly: true))
        var iterator = headers.makeAsyncIterator()
        let first = try #require(try await NATSTestSupport.take(1, from: &iterator).first)
        #expect(first.payload.isEmpty)
        #expect(first.headers?["Nats-Msg-Size"] == "1")
        headers.stop()

        await #expect(throws: NATSError.self) {
            _ = try await js.orderedConsumer(stream: "POL", config: OrderedConsumerConfig(deliverPolicy: .byStartSequence))
        }
        await #expect {
            _ = try await js.orderedConsumer(stream: "NOPE")
        } throws: { ($0 as? JetStreamError)?.errorCode == JetStreamError.streamNotFound }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test(arguments: deliveries) func deliverNewResumesAtItsStartWhenLostBeforeItsFirstMessage(delivery: OrderedConsumerConfig.Delivery) async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "NEW", subjects: ["new"], storage: .memory))
        try await Self.publish(0..<10, to: "new", js)
        var config = Self.quick(delivery)
        config.deliverPolicy = .new
        let consumer = try await js.orderedConsumer(stream: "NEW", config: config)
        try await js.deleteConsumer(stream: "NEW", consumer: try #require(consumer.consumerName))
        // Published while no consumer exists: the new consumer must still start here.
        try await Self.publish(10..<12, to: "new", js)
        var iterator = consumer.makeAsyncIterator()
        #expect(try await Self.take(2, from: &iterator) == ["10", "11"])
        #expect(consumer.recreations >= 1)
        await connection.close()
        await stopOffThePool(server)
    }

    @Test(arguments: deliveries) func aDeletedStreamEndsTheSequenceWithAnError(delivery: OrderedConsumerConfig.Delivery) async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "GONE", subjects: ["gone"], storage: .memory))
        try await Self.publish(0..<3, to: "gone", js)
        let consumer = try await js.orderedConsumer(stream: "GONE", config: Self.quick(delivery))
        var iterator = consumer.makeAsyncIterator()
        #expect(try await Self.take(3, from: &iterator) == ["0", "1", "2"])
        try await js.deleteStream("GONE")
        await #expect { try await readToTheEnd(iterator) } throws: { ($0 as? JetStreamError)?.errorCode == JetStreamError.streamNotFound }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func cancellingTheReaderEndsTheSequence() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "CAN", subjects: ["can"], storage: .memory))
        let consumer = try await js.orderedConsumer(stream: "CAN")
        let reader = Task {
            var count = 0
            for try await _ in consumer { count += 1 }
            return count
        }
        reader.cancel()
        #expect(try await within(.seconds(20), "the reader to end") { try await reader.value } == 0)
        await connection.close()
        await stopOffThePool(server)
    }
}
