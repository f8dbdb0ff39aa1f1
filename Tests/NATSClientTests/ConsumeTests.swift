import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// `consume()` against a real server: the continuous pull through restarts and deletions.
@Suite struct ConsumeTests {
    @Test func aDeletedConsumerEndsTheSequenceWithAnError() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "CD", subjects: ["cd"], storage: .memory))
        _ = try await js.createConsumer(stream: "CD", config: ConsumerConfig(durableName: "doomed"))
        _ = try await js.publish(Array("one".utf8), to: "cd")
        let messages = try js.pullConsumer(stream: "CD", consumer: "doomed").consume(maxMessages: 10, expires: .seconds(5))
        var iterator = messages.makeAsyncIterator()
        #expect(try await take(1, from: &iterator).first?.payload == Array("one".utf8))
        try await js.deleteConsumer(stream: "CD", consumer: "doomed")
        await #expect { try await readToTheEnd(iterator) } throws: {
            // A pull waiting when the consumer goes gets 409; a pull made just after, 404/10014.
            guard let error = $0 as? JetStreamError else { return false }
            return error.code == 409 || error.errorCode == JetStreamError.consumerNotFound
        }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func aConsumerDeletedBetweenPullsEndsTheSequenceWithAnError() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "CG", subjects: ["cg"], storage: .memory))
        _ = try await js.createConsumer(stream: "CG", config: ConsumerConfig(durableName: "gone"))
        _ = try await js.publishAll((0..<20).map { ("cg", Array("\($0)".utf8), nil) })
        let messages = try js.pullConsumer(stream: "CG", consumer: "gone").consume(maxMessages: 10, expires: .seconds(5))
        var iterator = messages.makeAsyncIterator()
        _ = try await take(1, from: &iterator)
        // The first request's ten messages have all been delivered: no request waits at the
        // server to be told of the deletion. The next request finds no consumer at all.
        try await within(.seconds(20), "the buffer to fill") {
            while try await js.consumerInfo(stream: "CG", consumer: "gone").delivered.streamSequence < 10 {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        try await js.deleteConsumer(stream: "CG", consumer: "gone")
        await #expect { try await readToTheEnd(iterator) } throws: { ($0 as? JetStreamError)?.errorCode == JetStreamError.consumerNotFound }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func itGoesOnAfterAServerRestart() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server) {
            $0.reconnectWait = .milliseconds(100)
            $0.maxReconnectAttempts = -1
        }
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "CR", subjects: ["cr"], storage: .file))
        _ = try await js.createConsumer(stream: "CR", config: ConsumerConfig(durableName: "durable"))
        _ = try await js.publishAll((0..<50).map { ("cr", Array("\($0)".utf8), nil) })
        let messages = try js.pullConsumer(stream: "CR", consumer: "durable")
            .consume(maxMessages: 20, expires: .seconds(2), idleHeartbeat: .milliseconds(250))
        var iterator = messages.makeAsyncIterator()
        var received: [String] = []
        for message in try await take(50, from: &iterator) {
            received.append(String(decoding: message.payload, as: UTF8.self))
            try await message.ackSync()
        }
        // A clean shutdown ends the waiting request with "409 Server Shutdown"; the sequence
        // asks again once reconnected.
        await stopOffThePool(server)
        let restarted = try await onThread { try jetStreamServer(port: server.port, storeDirectory: directory).0 }
        try await js.publishWhenBack(Array("50".utf8), to: "cr")
        try await within(.seconds(30), "the message published after the restart") { [iterator] in
            var iterator = iterator
            let message = try #require(try await iterator.next())
            #expect(String(decoding: message.payload, as: UTF8.self) == "50")
            try message.ack()
        }
        #expect(received == (0..<50).map(String.init))
        await connection.close()
        await stopOffThePool(restarted)
    }

    @Test func aSilentServerIsAskedAgainAfterTwoHeartbeatIntervals() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let js = JetStream(connection: connection)
        _ = try await js.createStream(StreamConfig(name: "CS", subjects: ["cs"], storage: .memory))
        _ = try await js.createConsumer(stream: "CS", config: ConsumerConfig(durableName: "durable"))
        let messages = try js.pullConsumer(stream: "CS", consumer: "durable")
            .consume(maxMessages: 20, expires: .seconds(30), idleHeartbeat: .milliseconds(250))
        let reader = Task {
            for try await message in messages {
                try message.ack()
                return String(decoding: message.payload, as: UTF8.self)
            }
            return ""
        }
        // Frozen, the server sends no heartbeats: the reader notices and asks again.
        server.pause()
        try await within(.seconds(20), "missed heartbeats") {
            while messages.missedHeartbeats == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        server.resume()
        _ = try await js.publish(Array("after".utf8), to: "cs")
        #expect(try await within(.seconds(20), "the message") { try await reader.value } == "after")
        await connection.close()
        await stopOffThePool(server)
    }
}
