import EnnioSync
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// Waiting for a consumer's next message with a time limit must never lose a message that
/// arrives just as the limit passes.
@Suite struct FetchWatchdogTests {
    @Test func aMessageArrivingAsTheWaitEndsIsKept() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "trickle")
        try await connection.flush()
        let total = 3000
        let published = Locked(false)
        // One message per round trip: they arrive one by one while the receiver waits in
        // slices so short that many of them end just as a message comes in.
        let publisher = Task {
            defer { published.withLock { $0 = true } }
            for index in 0..<total {
                try connection.publish(String(index), to: "trickle")
                try await connection.flush()
            }
        }
        var received: [String] = []
        while !published.withLock({ $0 }) {
            if case .message(let message) = await subscription.next(within: .microseconds(20)) {
                received.append(message.string)
            }
        }
        try await publisher.value
        // The last flush has returned: every message the server sent is queued by now.
        while subscription.pendingCount > 0, case .message(let message) = await subscription.next(within: .seconds(5)) {
            received.append(message.string)
        }
        let lost = Set((0..<total).map(String.init)).subtracting(received)
        #expect(lost.isEmpty, "\(lost.count) of \(total) messages lost")
        let onceInOrder = received == (0..<total).map(String.init)
        #expect(onceInOrder)
        await connection.close()
        await stopOffThePool(server)
    }
}
