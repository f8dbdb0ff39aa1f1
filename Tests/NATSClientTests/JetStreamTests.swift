import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct JetStreamTests {
    @Test func streamsCanBeCreatedLookedUpUpdatedListedAndDeleted() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        #expect(connection.serverInfo?.jetStream == true)

        var config = StreamConfig(name: "ORDERS", subjects: ["orders.>"])
        let created = try await js.createStream(config)
        #expect(created.config.name == "ORDERS")
        #expect(created.state.messages == 0)
        #expect(try await js.ensureStream(config).config.subjects == ["orders.>"])
        config.subjects = ["orders.>", "returns.>"]
        #expect(try await js.updateStream(config).config.subjects == ["orders.>", "returns.>"])
        #expect(try await js.streamNames() == ["ORDERS"])
        try await js.deleteStream("ORDERS")
        await #expect {
            try await js.streamInfo("ORDERS")
        } throws: { ($0 as? JetStreamError)?.errorCode == JetStreamError.streamNotFound }
        await connection.close()
    }

    @Test func publishIsAcknowledgedAndDuplicatesAreDetected() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "EVENTS", subjects: ["ev.>"], storage: .memory))

        let first = try await js.publish(Array("one".utf8), to: "ev.a", messageID: "id-1")
        #expect(first.stream == "EVENTS")
        #expect(first.sequence == 1)
        #expect(!first.duplicate)
        let again = try await js.publish(Array("one again".utf8), to: "ev.a", messageID: "id-1")
        #expect(again.duplicate)
        #expect(again.sequence == 1)
        let second = try await js.publish(Array("two".utf8), to: "ev.b", messageID: "id-2", expectedStream: "EVENTS", expectedLastSequence: 1)
        #expect(second.sequence == 2)
        await #expect {
            try await js.publish(Array("x".utf8), to: "ev.c", expectedLastSequence: 1)
        } throws: { ($0 as? JetStreamError)?.errorCode == JetStreamError.wrongLastSequence }
        await #expect {
            try await js.publish(Array("x".utf8), to: "ev.c", expectedStream: "OTHER")
        } throws: { $0 is JetStreamError }
        #expect(try await js.streamInfo("EVENTS").state.messages == 2)
        // No stream for the subject: no responders, retried, then reported.
        await #expect {
            try await js.publish(Array("x".utf8), to: "nowhere", retries: 1)
        } throws: { ($0 as? NATSError)?.code == .noResponders }

        let acks = try await js.publishAll((0..<500).map { ("ev.bulk", Array("\($0)".utf8), "bulk-\($0)") }, maxPending: 64)
        #expect(acks.map(\.sequence) == Array(3...502))
        await connection.close()
    }

    @Test func fetchAckAndNakRedelivery() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "WORK", subjects: ["work.>"], storage: .memory))
        for index in 0..<10 { _ = try await js.publish(Array("job \(index)".utf8), to: "work.job") }
        let info = try await js.createConsumer(stream: "WORK", config: ConsumerConfig(durableName: "workers", ackWait: .seconds(30)))
        #expect(info.numPending == 10)
        let consumer = js.pullConsumer(stream: "WORK", consumer: "workers")

        let batch = try await consumer.fetch(batch: 4, expires: .seconds(5))
        #expect(batch.endReason == .batchComplete)
        #expect(batch.messages.map { String(decoding: $0.payload, as: UTF8.self) } == (0..<4).map { "job \($0)" })
        #expect(batch.messages.map(\.metadata.streamSequence) == [1, 2, 3, 4])
        #expect(batch.messages.allSatisfy { $0.metadata.stream == "WORK" && $0.metadata.consumer == "workers" && $0.metadata.delivered == 1 })
        #expect(batch.messages.last?.metadata.pending == 6)
        try batch.messages[0].ack()
        try await batch.messages[1].ackSync()
        try batch.messages[2].nak()
        try batch.messages[3].term()

        // Everything else: the nak'd message again (second delivery), never the terminated one.
        var rest: [JetStreamMessage] = []
        while rest.count < 7 {
            let more = try await consumer.fetch(batch: 10, expires: .seconds(2))
            rest += more.messages
            for message in more.messages { try message.ack() }
        }
        #expect(rest.map(\.metadata.streamSequence).sorted() == [3, 5, 6, 7, 8, 9, 10])
        #expect(rest.first { $0.metadata.streamSequence == 3 }?.metadata.delivered == 2)
        #expect(rest.filter { $0.metadata.streamSequence != 3 }.allSatisfy { $0.metadata.delivered == 1 })
        try await connection.flush()
        let empty = try await consumer.fetch(batch: 5, noWait: true)
        #expect(empty.messages.isEmpty)
        #expect(empty.endReason == .noMessages)
        let expired = try await consumer.fetch(batch: 5, expires: .milliseconds(300))
        #expect(expired.messages.isEmpty)
        #expect(expired.endReason == .expired)
        await connection.close()
    }

    @Test func anUnacknowledgedMessageIsRedeliveredAfterAckWait() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "SLOW", subjects: ["slow"], storage: .memory))
        _ = try await js.publish(Array("forgotten".utf8), to: "slow")
        _ = try await js.createConsumer(stream: "SLOW", config: ConsumerConfig(durableName: "c", ackWait: .milliseconds(500)))
        let consumer = js.pullConsumer(stream: "SLOW", consumer: "c")
        let first = try await consumer.fetch(batch: 1)
        #expect(first.messages.first?.metadata.delivered == 1)
        // Not acknowledged: after the ack wait the server delivers it again.
        let second = try await consumer.fetch(batch: 1, expires: .seconds(10))
        #expect(second.messages.first?.metadata.delivered == 2)
        #expect(second.messages.first?.metadata.streamSequence == 1)
        try second.messages.first?.inProgress()
        try second.messages.first?.ack()
        await connection.close()
    }

    @Test func theContinuousSequenceKeepsPulling() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "FLOW", subjects: ["flow.>"], storage: .memory))
        _ = try await js.createConsumer(stream: "FLOW", config: ConsumerConfig(durableName: "reader"))
        let publisher = Task {
            for index in 0..<300 { _ = try await js.publish(Array("\(index)".utf8), to: "flow.x") }
        }
        let received = try await within(.seconds(60), "300 messages") { () -> [String] in
            var all: [String] = []
            for try await message in try js.pullConsumer(stream: "FLOW", consumer: "reader").consume(maxMessages: 50, expires: .seconds(1)) {
                all.append(String(decoding: message.payload, as: UTF8.self))
                try message.ack()
                if all.count == 300 { break }
            }
            return all
        }
        try await publisher.value
        #expect(received == (0..<300).map(String.init))
        await connection.close()
    }

    @Test func theContinuousSequenceHoldsABoundedNumberOfMessagesForAConsumerThatDoesNotRead() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "BOUND", subjects: ["bound"], storage: .memory))
        _ = try await js.publishAll((0..<1000).map { ("bound", Array("\($0)".utf8), nil) })
        var config = ConsumerConfig(durableName: "lazy")
        config.maxAckPending = 10_000
        _ = try await js.createConsumer(stream: "BOUND", config: config)

        let sequence = try js.pullConsumer(stream: "BOUND", consumer: "lazy").consume(maxMessages: 20, expires: .seconds(1))
        var iterator = sequence.makeAsyncIterator()
        let first = try await take(1, from: &iterator).first
        #expect(first?.metadata.streamSequence == 1)
        // The reader holds on to the first message and takes no more. Whatever the sequence has
        // pulled is delivered and unacknowledged: over two pull expiries it must stay within
        // the sequence's buffer (20 here, plus the message taken), not run through the stream.
        var most = 0
        let until = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < until {
            most = max(most, try await js.consumerInfo(stream: "BOUND", consumer: "lazy").numAckPending)
            if most > 1000 - 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(most <= 21, "\(most) messages pulled for a reader that took one")
        _ = iterator
        await connection.close()
    }

    @Test func metadataParsesBothReplySubjectForms() {
        let old = JetStreamMetadata(replySubject: "$JS.ACK.ORDERS.workers.3.1042.17.1772738703123456789.9")
        #expect(old?.stream == "ORDERS")
        #expect(old?.consumer == "workers")
        #expect(old?.delivered == 3)
        #expect(old?.streamSequence == 1042)
        #expect(old?.consumerSequence == 17)
        #expect(old?.timestamp == 1_772_738_703_123_456_789)
        #expect(old?.pending == 9)
        #expect(old?.domain == nil)
        let new = JetStreamMetadata(replySubject: "$JS.ACK.hub.ACCHASH.ORDERS.workers.1.5.5.1772738703123456789.0.r4nd0m")
        #expect(new?.domain == "hub")
        #expect(new?.stream == "ORDERS")
        #expect(new?.streamSequence == 5)
        #expect(JetStreamMetadata(replySubject: "$JS.ACK._.ACC.S.C.1.2.3.4.5.x")?.domain == nil)
        for bad in ["", "$JS.ACK.S.C.1.2.3", "foo.bar", "$JS.ACK.S.C.x.2.3.4.5", "$JS.ACK.a.b.S.C.1.2.3.4"] {
            #expect(JetStreamMetadata(replySubject: bad) == nil, "\(bad)")
        }
    }

    @Test func aServerWithoutJetStreamSaysSo() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        await #expect {
            try await JetStream(connection: connection).streamInfo("X")
        } throws: { ($0 as? NATSError)?.code == .noResponders }
        await connection.close()
    }
}
