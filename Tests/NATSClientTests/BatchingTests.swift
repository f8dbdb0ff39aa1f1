@testable import NATSClient
import NATSProtocol
@testable import NATSTestSupport
import Testing

@Suite struct BatchingTests {
    @Test func nextBatchReturnsWhatIsQueuedInOrderUpToTheMaximum() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "batch")
        try await connection.flush()
        for index in 0..<25 { try connection.publish(Array("\(index)".utf8), to: "batch") }
        try await connection.flush()
        try await within(.seconds(20), "25 queued messages") {
            while subscription.pendingCount < 25 { try await Task.sleep(for: .milliseconds(5)) }
        }
        let first = await subscription.nextBatch(maximum: 10)
        let second = await subscription.nextBatch(maximum: 100)
        #expect(first.map(\.string) == (0..<10).map { "\($0)" })
        #expect(second.map(\.string) == (10..<25).map { "\($0)" })
        #expect(subscription.pendingCount == 0)
        #expect(subscription.pendingBytes == 0)
        try subscription.unsubscribe()
        #expect(await subscription.nextBatch().isEmpty)
        await connection.close()
    }

    @Test func aMessageMaximumIsKeptWhenMessagesArriveTogether() async throws {
        let server = try TestServer()
        let publisher = try await NATSConnection.connect(to: server)
        let subscriber = try await NATSConnection.connect(to: server)
        let subscription = try subscriber.subscribe(to: "max")
        try subscription.unsubscribe(afterMessages: 7)
        try await subscriber.flush()
        for index in 0..<50 { try publisher.publish(Array("\(index)".utf8), to: "max") }
        try await publisher.flush()
        var received: [String] = []
        for await message in subscription { received.append(message.string) }
        #expect(received == (0..<7).map { "\($0)" })
        await publisher.close()
        await subscriber.close()
    }

    @Test func commonAcknowledgementsAreReadWithoutTheFullDecoder() throws {
        let plain = try #require(PubAck.parseCommon(Array(#"{"stream":"EVENTS","seq":42}"#.utf8)))
        #expect(plain.stream == "EVENTS" && plain.sequence == 42 && !plain.duplicate && plain.domain == nil)
        let full = try #require(PubAck.parseCommon(Array(#" { "stream" : "S", "domain":"hub", "seq":18446744073709551615 , "duplicate":true } "#.utf8)))
        #expect(full.stream == "S" && full.sequence == UInt64.max && full.duplicate && full.domain == "hub")
        // Anything unusual is left to the full decoder.
        for text in [
            #"{"error":{"code":503,"description":"no stream"}}"#, #"{"stream":"S"}"#, #"{"seq":1}"#,
            #"{"stream":"S\u0041","seq":1}"#, #"{"stream":"S","seq":1.5}"#, #"{"stream":"S","seq":-1}"#,
            #"{"stream":"S","seq":18446744073709551616}"#, #"{"stream":"S","seq":01}"#, #"{"stream":"S","seq":1,"seq":2}"#,
            #"{"stream":"S","seq":1,"other":1}"#, #"{"stream":"S","seq":1}x"#, #"{"stream":"S","seq":1,}"#, "", "{}",
        ] {
            #expect(PubAck.parseCommon(Array(text.utf8)) == nil, "\(text)")
        }
        // Whatever it reads, the full decoder reads the same.
        let reply = NATSMessage(subject: "_INBOX.x", payload: Array(#"{"stream":"EVENTS","seq":7,"duplicate":false}"#.utf8))
        #expect(try JetStream.decodeAck(reply) == PubAck(stream: "EVENTS", sequence: 7, duplicate: false, domain: nil))
    }
}
