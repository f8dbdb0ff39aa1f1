import Foundation
import Glibc
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// The defects of issue 12, each as a test against a real server (where one is needed): every
/// one of them failed (or hung) on the connection core before the state machine.
@Suite struct ConnectionDefectTests {
    static func fastReconnect(_ options: inout NATSOptions) {
        options.reconnectWait = .milliseconds(50)
        options.reconnectJitter = .milliseconds(10)
        options.maxReconnectAttempts = -1
    }

    // MARK: 1. Concurrent close and drain

    /// Two concurrent `close()`s and a `drain()`: all three return (the second used to
    /// overwrite the first one's waiter, which then never returned).
    @Test func concurrentClosesAndADrainAllReturn() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        try await within(.seconds(20), "three concurrent ends") {
            async let first: Void = connection.close()
            async let second: Void = connection.close()
            async let third: Void = { try? await connection.drain() }()
            _ = await (first, second, third)
        }
        #expect(connection.status == .closed)
    }

    /// A cancelled `close()` returns at once, but another caller's `close()` returns only once
    /// the teardown is over: its subscriptions have ended.
    @Test func aCancelledCloseDoesNotCutAnotherCallersWaitShort() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "never")
        try await connection.flush()
        let impatient = Task { await connection.close() }
        impatient.cancel()
        await connection.close()
        await impatient.value
        // The teardown is over: the sequence has ended, without waiting.
        var iterator = subscription.makeAsyncIterator()
        #expect(subscription.state.isFinished)
        #expect(await iterator.next() == nil)
    }

    // MARK: 2. Several tasks iterating one subscription

    /// Two tasks wait on one subscription; cancelling one ends only its own wait.
    @Test func cancellingOneIteratingTaskLeavesTheOtherIterating() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "shared")
        try await connection.flush()
        let cancelled = Task {
            var iterator = subscription.makeAsyncIterator()
            return await iterator.next()
        }
        let staying = Task {
            var iterator = subscription.makeAsyncIterator()
            return await iterator.next()
        }
        try await eventually("both tasks waiting") { subscription.state.waiterCount == 2 }
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        try connection.publish("still here", to: "shared")
        let message = try await within(.seconds(20), "the other task's message") { await staying.value }
        #expect(message?.string == "still here")
        await connection.close()
    }

    // MARK: 3. A flush whose PING cannot be queued

    /// While disconnected with a full reconnect buffer, a flush fails at once and leaves no
    /// waiter behind: after the reconnect the next flush is answered by its own PONG (it used
    /// to take the PONG of the one that failed and then wait for a PONG that never came).
    @Test func aFlushThatCannotQueueItsPingLeavesNoWaiterBehind() async throws {
        let server = try TestServer()
        let port = server.port
        let connection = try await NATSConnection.connect(to: server) {
            Self.fastReconnect(&$0)
            // No room at all while disconnected: not even a PING fits.
            $0.reconnectBufferSize = 0
        }
        let events = EventWatcher(connection)
        server.kill()
        try await events.waitForDisconnect()
        await #expect { try await connection.flush(timeout: .seconds(5)) } throws: {
            ($0 as? NATSError)?.code == .reconnectBufferFull
        }
        let restarted = try TestServer(port: port)
        _ = try await events.waitForReconnect()
        try await connection.flush(timeout: .seconds(10))
        #expect(connection.core.state.withLock { $0.machine.outstandingPings } == 0)
        await connection.close()
        _ = restarted
    }

    // MARK: 7. Drain during a reconnect

    /// A drain asked for while reconnecting stays a drain through the reconnect: the status
    /// stays `draining` (it used to go back to `reconnecting`, then `connected`), no new
    /// subscription is accepted, and the drain ends with the connection closed.
    @Test func aDrainDuringAReconnectStaysADrain() async throws {
        let server = try TestServer()
        let port = server.port
        let connection = try await NATSConnection.connect(to: server, configure: Self.fastReconnect)
        let events = EventWatcher(connection)
        _ = try connection.subscribe(to: "drained")
        try await connection.flush()
        server.kill()
        try await events.waitForDisconnect()
        let drain = Task { try await connection.drain(timeout: .seconds(30)) }
        try await eventually("the drain to start") { connection.status == .draining }
        #expect { try connection.subscribe(to: "late") } throws: { ($0 as? NATSError)?.code == .connectionDraining }
        // Watch every status from here to the end.
        let seen = Task {
            var statuses: Set<NATSConnection.Status> = []
            while connection.status != .closed {
                statuses.insert(connection.status)
                try? await Task.sleep(for: .milliseconds(1))
            }
            return statuses
        }
        let restarted = try TestServer(port: port)
        try await within(.seconds(30), "the drain") { try await drain.value }
        #expect(connection.status == .closed)
        #expect(await seen.value.isSubset(of: [.draining]))
        _ = restarted
    }

    /// A drain whose socket is lost midway ends with the connection closed; it never goes
    /// back to `reconnecting` or `connected` meanwhile.
    @Test func aDrainInterruptedByADisconnectNeverLooksConnectedAgain() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server, configure: Self.fastReconnect)
        _ = try connection.subscribe(to: "drained")
        try await connection.flush()
        server.pause()
        let drain = Task { try? await connection.drain(timeout: .seconds(30)) }
        try await eventually("the drain to start") { connection.status == .draining }
        let seen = Task {
            var statuses: Set<NATSConnection.Status> = []
            while connection.status != .closed {
                statuses.insert(connection.status)
                try? await Task.sleep(for: .milliseconds(1))
            }
            return statuses
        }
        server.kill()
        try await within(.seconds(30), "the drain") { await drain.value }
        #expect(connection.status == .closed)
        #expect(await seen.value.isSubset(of: [.draining]))
    }

    // MARK: 8. Nothing blocks a thread of the cooperative pool

    /// With the server not reading, publishing fails fast with `.outboundBufferFull` once the
    /// buffer holds its limit, instead of blocking the calling thread until there is room.
    @Test func publishingIntoAFullBufferFailsFastInsteadOfBlocking() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server) { $0.writeBufferLimit = 256 * 1024 }
        server.pause()
        defer { server.resume() }
        let payload = [UInt8](repeating: 1, count: 16 * 1024)
        let code = try await within(.seconds(20), "publish to fail") { () -> NATSError.Code? in
            // The socket's buffers take some megabytes first; then the limit applies.
            for _ in 0..<100_000 {
                do {
                    try connection.publish(payload, to: "full")
                } catch let error as NATSError {
                    return error.code
                }
            }
            return nil
        }
        #expect(code == .outboundBufferFull)
        // `close()` does not wait for a server that does not read longer than its timeout.
        try await within(.seconds(20), "close") { await connection.close() }
    }

    /// The async variant waits for room instead, and every message arrives.
    @Test func publishWaitingForRoomWaitsAndLosesNothing() async throws {
        let server = try TestServer()
        let publisher = try await NATSConnection.connect(to: server) { $0.writeBufferLimit = 64 * 1024 }
        let subscriber = try await NATSConnection.connect(to: server)
        let subscription = try subscriber.subscribe(to: "room")
        try await subscriber.flush()
        let payload = [UInt8](repeating: 2, count: 8 * 1024)
        let count = 3000  // 24 MB: more than the sockets' buffers take while the server is stopped
        server.pause()
        let publishing = Task {
            for _ in 0..<count { try await publisher.publishWaitingForRoom(payload, to: "room") }
        }
        try await eventually("the publisher to wait for room", within: .seconds(120)) { publisher.core.outbound.roomWaiterCount > 0 }
        server.resume()
        try await within(.seconds(30), "the publishes") { try await publishing.value }
        try await publisher.flush()
        #expect(try await subscription.take(count, within: .seconds(60)).count == count)
        await publisher.close()
        await subscriber.close()
    }

    // MARK: 10. Scoped lifetimes

    /// A connection that is dropped without `close()` closes, and its threads let go of it.
    @Test func aDroppedConnectionClosesAndReleasesItsThreads() async throws {
        let server = try TestServer()
        weak var handle: NATSConnection?
        weak var core: ConnectionCore?
        do {
            let connection = try await NATSConnection.connect(to: server)
            try connection.publish("bye", to: "dropped")
            try await connection.flush()
            handle = connection
            core = connection.core
        }
        #expect(handle == nil)
        try await eventually("the connection's threads to end") { core == nil }
    }

    /// A subscription whose every copy is gone unsubscribes: a request to its subject then
    /// finds no responders.
    @Test func aDroppedSubscriptionUnsubscribes() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let requester = try await NATSConnection.connect(to: server)
        do {
            let subscription = try connection.subscribe(to: "abandoned")
            try await connection.flush()
            #expect(subscription.subject == "abandoned")
        }
        try await connection.flush()
        await #expect { _ = try await requester.request("anyone?", to: "abandoned", timeout: .seconds(5)) } throws: {
            ($0 as? NATSError)?.code == .noResponders
        }
        await connection.close()
        await requester.close()
    }

    // MARK: 11. The parser's payload limit is the server's

    /// A server that announces a `max_payload` and then sends a message far larger is a
    /// protocol violation, found before the message is buffered.
    @Test func aMessageLargerThanTheServersMaxPayloadIsRefusedBeforeItIsBuffered() async throws {
        let fake = try FakeServer(info: #"{"server_id":"FAKE","version":"2.12.0","max_payload":1024,"headers":true}"#)
        let connection = try await NATSConnection.connect(NATSOptions(servers: ["nats://127.0.0.1:\(fake.port)"]).with {
            $0.allowReconnect = false
        })
        let subscription = try connection.subscribe(to: "big")
        _ = subscription
        // 128 MiB announced; the client must drop the connection without waiting for it.
        fake.send("MSG big 1 134217728\r\n")
        try await eventually("the connection to close") { connection.status == .closed }
        #expect(connection.lastError?.code == .protocolViolation)
    }

    // MARK: 13. A disconnect reaches the user with its cause

    /// After a protocol violation the disconnect event says why.
    @Test func aProtocolViolationIsReportedWithItsCause() async throws {
        let fake = try FakeServer(info: #"{"server_id":"FAKE","version":"2.12.0","max_payload":1048576}"#)
        let connection = try await NATSConnection.connect(NATSOptions(servers: ["nats://127.0.0.1:\(fake.port)"]).with {
            $0.allowReconnect = false
        })
        let events = connection.events()
        fake.send("GARBAGE\r\n")
        let reason = try await within(.seconds(20), "a disconnect") { () -> String? in
            for await event in events {
                if case .disconnected(let reason) = event { return reason }
            }
            return nil
        }
        #expect(reason?.contains("malformed") == true)
        #expect(reason?.contains("GARBAGE") == true)
    }
}
