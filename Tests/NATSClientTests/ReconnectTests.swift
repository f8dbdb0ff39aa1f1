import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct ReconnectTests {
    static func fastReconnect(_ options: inout NATSOptions) {
        options.reconnectWait = .milliseconds(50)
        options.reconnectJitter = .milliseconds(10)
        options.maxReconnectAttempts = -1
    }

    /// The server is killed during a stream of publishes and restarted on the same port. The
    /// subscriber must get every message, including those accepted while the publisher was
    /// disconnected, in order. To make "the subscriber is back before the buffered messages
    /// arrive" certain rather than likely, the restarted server first admits only the
    /// subscriber's user; the publisher's user is added by a configuration reload afterwards.
    @Test func messagesPublishedWhileDisconnectedArriveAfterReconnect() async throws {
        // The server name is in the file as well as on the command line: a reload must not change it.
        let bothUsers = """
            server_name: reconnect-test
            authorization { users = [ {user: sub, password: s}, {user: pub, password: p} ] }
            """
        let onlySubscriber = """
            server_name: reconnect-test
            authorization { users = [ {user: sub, password: s} ] }
            """
        let config = try TestServer.writeConfig(bothUsers)
        let server = try TestServer(arguments: ["-c", config, "--name", "reconnect-test"])
        let port = server.port

        let subscriber = try await NATSConnection.connect(NATSOptions(servers: ["nats://sub:s@127.0.0.1:\(port)"]).with(Self.fastReconnect))
        // Refused while only the subscriber is admitted: keep trying (the default gives up on
        // credentials refused twice in a row).
        let publisher = try await NATSConnection.connect(NATSOptions(servers: ["nats://pub:p@127.0.0.1:\(port)"]).with(Self.fastReconnect).with {
            $0.abortOnRepeatedAuthorizationError = false
        })
        let subscriberEvents = EventWatcher(subscriber)
        let publisherEvents = EventWatcher(publisher)
        let stream = try subscriber.subscribe(to: "stream")
        try await subscriber.flush()

        for index in 0..<500 { try publisher.publish(String(index), to: "stream") }
        try await publisher.flush()
        try await subscriber.flush()

        server.kill()
        try await publisherEvents.waitForDisconnect()
        #expect(publisher.status == .reconnecting)
        for index in 500..<1000 { try publisher.publish(String(index), to: "stream") }

        try String(onlySubscriber).write(toFile: config, atomically: true, encoding: .utf8)
        let restarted = try TestServer(arguments: ["-c", config, "--name", "reconnect-test"], port: port)
        _ = try await subscriberEvents.waitForReconnect()
        try await subscriber.flush()
        #expect(publisher.status == .reconnecting, "the publisher's user is not admitted yet")

        try bothUsers.write(toFile: config, atomically: true, encoding: .utf8)
        restarted.reloadConfiguration()
        _ = try await publisherEvents.waitForReconnect()
        try await publisher.flush()

        let received = try await stream.take(1000)
        #expect(received.map(\.string) == (0..<1000).map(String.init))
        #expect(publisher.statistics.reconnects == 1)
        #expect(subscriber.statistics.reconnects == 1)
        await publisher.close()
        await subscriber.close()
    }

    @Test func subscriptionsAndAutoUnsubscribeCountsSurviveAReconnect() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server, configure: Self.fastReconnect)
        let events = EventWatcher(connection)
        let limited = try connection.subscribe(to: "limited")
        try limited.unsubscribe(afterMessages: 5)
        let queue = try connection.subscribe(to: "q", queueGroup: "g")
        try await connection.flush()
        for index in 0..<3 { try connection.publish(String(index), to: "limited") }
        try await connection.flush()

        server.kill()
        try await events.waitForDisconnect()
        let restarted = try TestServer(port: server.port)
        _ = try await events.waitForReconnect()
        try await connection.flush()

        for index in 3..<10 { try connection.publish(String(index), to: "limited") }
        try connection.publish("queued", to: "q")
        try await connection.flush()
        let all = try await within { await limited.reduce(into: [String]()) { $0.append($1.string) } }
        #expect(all == ["0", "1", "2", "3", "4"], "the remaining count (2) was sent again with the subscription")
        #expect(try await queue.take(1).first?.string == "queued")
        await connection.close()
        restarted.stop()
    }

    @Test func requestsWorkAfterAReconnect() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server, configure: Self.fastReconnect)
        let events = EventWatcher(connection)
        let service = try connection.subscribe(to: "svc")
        let responder = Task {
            for await request in service { if let reply = request.replyTo { try? connection.publish("pong", to: reply) } }
        }
        try await connection.flush()
        #expect(try await connection.request("ping", to: "svc").string == "pong")
        server.kill()
        try await events.waitForDisconnect()
        let restarted = try TestServer(port: server.port)
        _ = try await events.waitForReconnect()
        #expect(try await connection.request("ping", to: "svc", timeout: .seconds(20)).string == "pong")
        await connection.close()
        await responder.value
        restarted.stop()
    }

    @Test func theReconnectBufferIsBounded() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) {
            Self.fastReconnect(&$0)
            $0.reconnectBufferSize = 4096
        }
        let events = EventWatcher(connection)
        server.kill()
        try await events.waitForDisconnect()
        var accepted = 0
        await expectNATSError(.reconnectBufferFull) {
            while true {
                try connection.publish([UInt8](repeating: 1, count: 100), to: "buffered")
                accepted += 1
                if accepted > 1000 { return }
            }
        }
        #expect(accepted > 10 && accepted < 41)
        await connection.close()
    }

    @Test func givingUpAfterMaxAttemptsClosesWithAnError() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) {
            $0.reconnectWait = .milliseconds(10)
            $0.reconnectJitter = .zero
            $0.maxReconnectAttempts = 3
        }
        let events = EventWatcher(connection)
        let subscription = try connection.subscribe(to: "x")
        server.kill()
        try await events.wait(for: "closed") { $0 == .closed }
        #expect(connection.status == .closed)
        #expect(connection.lastError != nil)
        var iterator = subscription.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        await expectNATSError(.connectionClosed) { try connection.publish("late", to: "x") }
    }

    @Test func withoutReconnectAServerThatGoesAwayClosesTheConnection() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) { $0.allowReconnect = false }
        let events = EventWatcher(connection)
        let subscription = try connection.subscribe(to: "x")
        try await connection.flush()
        server.kill()
        try await events.wait(for: "closed") { $0 == .closed }
        #expect(connection.lastError?.code == .disconnected)
        var iterator = subscription.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        await expectNATSError(.connectionClosed) { try connection.publish("late", to: "x") }
    }

    /// A server that stops answering (SIGSTOP) is detected by keep-alive PINGs, and the client
    /// reconnects once it answers again (SIGCONT).
    @Test func aStaleConnectionIsDetectedAndReplaced() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) {
            Self.fastReconnect(&$0)
            $0.pingInterval = .milliseconds(100)
            $0.maxPingsOutstanding = 2
            $0.connectTimeout = .milliseconds(500)
        }
        let events = EventWatcher(connection)
        server.pause()
        try await events.wait(for: "stale disconnect") {
            if case .disconnected(let reason) = $0 { return reason.contains("staleConnection") }
            return false
        }
        server.resume()
        _ = try await events.waitForReconnect()
        try await connection.flush()
        #expect(connection.status == .connected)
        await connection.close()
    }
}

extension NATSOptions {
    func with(_ change: (inout NATSOptions) -> Void) -> NATSOptions {
        var copy = self
        change(&copy)
        return copy
    }
}
