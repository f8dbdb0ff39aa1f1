import NATSClient
import NATSProtocol
@testable import NATSTestSupport
import Testing

@Suite struct PubSubTests {
    @Test func publishedBytesArriveUnchanged() async throws {
        let server = try TestServer()
        let publisher = try await NATSConnection.connect(to: server)
        let subscriber = try await NATSConnection.connect(to: server)
        let subscription = try subscriber.subscribe(to: "bytes")
        try await subscriber.flush()

        let payloads: [[UInt8]] = [[], Array("hello".utf8), Array(0...255), Array("MSG x 1 3\r\nabc\r\n".utf8), [UInt8](repeating: 7, count: 100_000)]
        for payload in payloads { try publisher.publish(payload, to: "bytes") }
        try await publisher.flush()

        let received = try await subscription.take(payloads.count)
        #expect(received.map(\.payload) == payloads)
        #expect(received.allSatisfy { $0.subject == "bytes" && $0.replyTo == nil && $0.headers == nil })
        await publisher.close()
        await subscriber.close()
    }

    @Test func wildcardSubscriptionsGetExactlyTheMatchingSubjects() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let patterns = ["w.*", "w.>", "w.x.y", "w.*.y", ">"]
        let subscriptions = try patterns.map { try connection.subscribe(to: $0) }
        try await connection.flush()

        let subjects = ["w.a", "w.x.y", "w.b.y", "w.b.c.d", "other.q", "w"]
        for subject in subjects { try connection.publish(subject, to: subject) }
        // The PONG comes after every message the server sent us before it.
        try await connection.flush()

        for (pattern, subscription) in zip(patterns, subscriptions) {
            let got = await subscription.takeQueued().map(\.subject)
            let expected = subjects.filter { Subject.matches(pattern: pattern, subject: $0) }
            #expect(got == expected, "pattern \(pattern)")
            #expect(got.allSatisfy { Subject.matches(pattern: pattern, subject: $0) })
        }
        #expect(subscriptions[0].deliveredCount == 1)
        await connection.close()
    }

    @Test func queueGroupSpreadsMessagesAndDeliversEachOnce() async throws {
        let server = try TestServer()
        let publisher = try await NATSConnection.connect(to: server)
        var members: [(NATSConnection, NATSSubscription)] = []
        for _ in 0..<3 {
            let connection = try await NATSConnection.connect(to: server)
            let subscription = try connection.subscribe(to: "jobs", queueGroup: "workers")
            try await connection.flush()
            members.append((connection, subscription))
        }
        // A plain subscriber beside the group gets every message.
        let observer = try publisher.subscribe(to: "jobs")
        try await publisher.flush()

        let total = 300
        for index in 0..<total { try publisher.publish(String(index), to: "jobs") }
        try await publisher.flush()
        for (connection, _) in members { try await connection.flush() }

        var seen: [String] = []
        for (_, subscription) in members {
            let got = await subscription.takeQueued().map(\.string)
            #expect(!got.isEmpty, "each member of the group gets a share")
            seen += got
        }
        #expect(seen.count == total)
        #expect(Set(seen) == Set((0..<total).map(String.init)))
        #expect(await observer.takeQueued().count == total)
        for (connection, _) in members { await connection.close() }
        await publisher.close()
    }

    @Test func unsubscribeAfterNMessagesEndsTheSequence() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "count")
        try subscription.unsubscribe(afterMessages: 3)
        try await connection.flush()
        for index in 0..<10 { try connection.publish(String(index), to: "count") }
        try await connection.flush()

        let received = try await within(.seconds(20), "the sequence to end") {
            var all: [String] = []
            for await message in subscription { all.append(message.string) }
            return all
        }
        #expect(received == ["0", "1", "2"])
        #expect(subscription.deliveredCount == 3)
        await connection.close()
    }

    @Test func unsubscribeAfterMessagesAlreadyReceivedEndsAtOnce() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "early")
        try await connection.flush()
        for index in 0..<5 { try connection.publish(String(index), to: "early") }
        try await connection.flush()
        try subscription.unsubscribe(afterMessages: 2)
        let received = try await within { await subscription.reduce(into: [String]()) { $0.append($1.string) } }
        #expect(received == ["0", "1", "2", "3", "4"], "messages already queued are still delivered")
        await connection.close()
    }

    @Test func unsubscribeNowStopsDelivery() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "stop")
        let other = try connection.subscribe(to: "stop")
        try await connection.flush()
        try subscription.unsubscribe()
        try connection.publish("after", to: "stop")
        try await connection.flush()
        var iterator = subscription.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        #expect(await other.takeQueued().map(\.string) == ["after"])
        await connection.close()
    }

    @Test func invalidSubjectsAreRejectedBeforeSending() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        await expectNATSError(.invalidSubject) { try connection.publish("x", to: "a b") }
        await expectNATSError(.invalidSubject) { try connection.publish("x", to: "a.*") }
        await expectNATSError(.invalidSubject) { try connection.publish("x", to: "") }
        await expectNATSError(.invalidSubject) { try connection.publish("x", to: "a", replyTo: "r..s") }
        await expectNATSError(.invalidSubject) { try connection.subscribe(to: "a.>.b") }
        await expectNATSError(.invalidSubject) { try connection.subscribe(to: "a", queueGroup: "q q") }
        // The error says what is wrong once (issue 15, item 10: it used to repeat itself).
        do {
            try connection.publish("x", to: "a b")
        } catch {
            let description = String(describing: error)
            #expect(error.underlying == nil, "\(description)")
            #expect(!description.contains("["), "\(description)")
        }
        // The connection is still usable.
        try await connection.flush()
        #expect(connection.status == .connected)
        await connection.close()
    }

    @Test func statisticsCountMessagesAndBytes() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "stats")
        try await connection.flush()
        for _ in 0..<4 { try connection.publish([1, 2, 3, 4, 5], to: "stats") }
        try await connection.flush()
        _ = try await subscription.take(4)
        let statistics = connection.statistics
        #expect(statistics.outMessages == 4)
        #expect(statistics.outBytes == 20)
        #expect(statistics.inMessages == 4)
        #expect(statistics.inBytes == 20)
        await connection.close()
    }

    @Test func closeEndsSubscriptionsAndRejectsLaterUse() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "closing")
        try connection.publish("last words", to: "closing")
        await connection.close()
        #expect(connection.status == .closed)
        await expectNATSError(.connectionClosed) { try connection.publish("x", to: "closing") }
        await expectNATSError(.connectionClosed) { try connection.subscribe(to: "closing") }
        await expectNATSError(.connectionClosed) { try await connection.flush() }
        let rest = try await within { await subscription.reduce(into: 0) { count, _ in count += 1 } }
        #expect(rest <= 1)
    }

    @Test func connectingToNothingFailsWithATypedError() async throws {
        let port = try TestServer.freePort()
        await expectNATSError(.connectionFailed) { try await NATSConnection.connect(to: "nats://127.0.0.1:\(port)") }
        await expectNATSError(.invalidURL) { try await NATSConnection.connect(to: "http://127.0.0.1:4222") }
        await expectNATSError(.invalidURL) { try await NATSConnection.connect(to: "nats://127.0.0.1:99999") }
        await expectNATSError(.noServers) { try await NATSConnection.connect(NATSOptions(servers: [])) }
    }

    @Test func manySmallPublishesAllArriveInOrder() async throws {
        let server = try TestServer()
        let publisher = try await NATSConnection.connect(to: server)
        let subscriber = try await NATSConnection.connect(to: server)
        let subscription = try subscriber.subscribe(to: "stream")
        try await subscriber.flush()
        let total = 20_000
        for index in 0..<total { try publisher.publish(String(index), to: "stream") }
        try await publisher.flush()
        let received = try await subscription.take(total)
        #expect(received.map(\.string) == (0..<total).map(String.init))
        await publisher.close()
        await subscriber.close()
    }
}
