import EnnioSync
import Foundation
@testable import NATSClient
import Testing

/// The one waiter primitive and the low-level pieces under the connection.
@Suite struct WaiterTests {
    struct Cancelled: Error, Equatable {}

    /// Many waiters get the one result; a cancelled waiter leaves alone and the promise stays
    /// open for the others (a cancelled `close()` used to end every other caller's wait).
    @Test func aCancelledWaiterLeavesAloneAndTheOthersGetTheResult() async throws {
        let promise = Promise<Int, Cancelled>()
        let waiters = (0..<3).map { _ in Task { try await promise.value(cancelled: { Cancelled() }) } }
        let impatient = Task { try await promise.value(cancelled: { Cancelled() }) }
        impatient.cancel()
        await #expect(throws: Cancelled.self) { try await impatient.value }
        #expect(!promise.isFulfilled)
        promise.fulfil(.success(42))
        for waiter in waiters { #expect(try await waiter.value == 42) }
        // Later waiters get it at once; a second fulfil is ignored.
        #expect(!promise.fulfil(.success(7)))
        #expect(try await promise.value(cancelled: { Cancelled() }) == 42)
    }

    /// A waiter released (its time limit) before it even suspended returns that error.
    @Test func aWaiterReleasedBeforeItWaitsGetsItsError() async throws {
        let promise = Promise<Int, Cancelled>()
        let id = promise.makeWaiterID()
        promise.release(waiter: id, with: Cancelled())
        await #expect(throws: Cancelled.self) { try await promise.value(waiter: id, cancelled: { Cancelled() }) }
        #expect(!promise.isFulfilled)
    }

    @Test func theQueueResumesInOrderAndResolvesByID() {
        var queue = WaiterQueue<Int>()
        let first = queue.makeID()
        let second = queue.makeID()
        #expect(first != second)
        // Resolved before added: kept for when it is.
        #expect(queue.resolve(second, with: 9) == nil)
        #expect(queue.count == 0)
        queue.forget(second)
        #expect(queue.popFirst() == nil)
    }

    /// Three tasks wait on one subscription: one is cancelled (and only it ends), the other
    /// two get a message each.
    @Test func severalTasksWaitOnOneSubscription() async throws {
        let state = SubscriptionState(sid: 1, subject: "s", queueGroup: nil, messageLimit: 10, byteLimit: 1 << 20)
        let one = Task { await state.next() }
        let two = Task { await state.next() }
        let three = Task { await state.next() }
        while state.waiterCount < 3 { try await Task.sleep(for: .milliseconds(1)) }
        three.cancel()
        #expect(await three.value == nil)
        _ = state.deliver(NATSMessage(subject: "s", replyTo: nil, headers: nil, payload: [1]))
        _ = state.deliver(NATSMessage(subject: "s", replyTo: nil, headers: nil, payload: [2]))
        let payloads = Set([await one.value?.payload, await two.value?.payload].compactMap { $0 })
        #expect(payloads == [[1], [2]])
    }

    /// `shutdown()` after `close()` leaves alone whatever now has the same descriptor number
    /// (`close()` in the connection used to shut down a descriptor the reader thread had
    /// closed and the process had reused).
    @Test func shutdownAfterCloseNeverTouchesAReusedDescriptor() throws {
        let server = try TestListener()
        let socket = try TCPSocket.connect(host: "127.0.0.1", port: server.port, timeout: .seconds(5))
        let number = socket.descriptor
        socket.close()
        // Take the number back with something else.
        let reused = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(reused) }
        try #require(reused == number, "the descriptor number was not reused; nothing to check")
        socket.shutdown()
        // Still usable: a socket shut down before it connected refuses to connect.
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(server.port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(reused, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
    }

    /// Timed waits count on the monotonic clock: a deadline given on that clock is honoured
    /// (a wait on the wall clock would take a monotonic deadline — a small number — as long
    /// past and return at once; that is how waits stalled or ended early when the wall clock
    /// stepped).
    @Test func timedWaitsCountOnTheMonotonicClock() {
        let lock = ConditionLock()
        let start = ContinuousClock.now
        lock.withLock { lock.wait(nanoseconds: 200_000_000) }
        #expect(ContinuousClock.now - start >= .milliseconds(150))
    }
}

/// A TCP listener on a free loopback port that accepts nothing (the kernel completes the
/// handshake into its backlog).
struct TestListener: ~Copyable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        } && listen(descriptor, 16) == 0
        guard ok else { throw NATSError(.connectionFailed, "cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { Glibc.close(descriptor) }
}
