@testable import NATSClient
import EnnioSync
import Synchronization
import Testing

@Suite struct DeadlineTimerTests {
    /// Actions run in deadline order whatever the order they were armed in; a cancelled one
    /// never runs.
    @Test func actionsRunInDeadlineOrderAndCancelledOnesNever() async throws {
        let timer = DeadlineTimer()
        defer { timer.stop() }
        let fired = Locked<[Int]>([])
        let done = Promise<Void, NATSError>()
        let delays = [40, 10, 30, 20]
        for (number, milliseconds) in delays.enumerated() {
            _ = timer.schedule(after: .milliseconds(milliseconds)) {
                fired.withLock { $0.append(number) }
            }
        }
        let cancelled = try #require(timer.schedule(after: .milliseconds(15)) { fired.withLock { $0.append(99) } })
        timer.cancel(cancelled)
        _ = timer.schedule(after: .milliseconds(60)) { done.fulfil(.success(())) }
        try await done.value(cancelled: { NATSError(.cancelled, "cancelled") })
        #expect(fired.withLock { $0 } == [1, 3, 2, 0])
    }

    /// An earlier deadline armed while the thread waits for a much later one fires first.
    @Test func anEarlierDeadlineArmedLaterFiresFirst() async throws {
        let timer = DeadlineTimer()
        defer { timer.stop() }
        let late = Promise<Void, NATSError>()
        let early = Promise<Void, NATSError>()
        _ = timer.schedule(after: .seconds(3600)) { late.fulfil(.success(())) }
        // Give the thread time to start waiting for the hour.
        try await Task.sleep(for: .milliseconds(20))
        _ = timer.schedule(after: .milliseconds(1)) { early.fulfil(.success(())) }
        try await early.value(cancelled: { NATSError(.cancelled, "cancelled") })
        #expect(!late.isFulfilled)
    }

    /// After `stop` nothing is armed and nothing pending runs.
    @Test func stopDropsEverything() async throws {
        let timer = DeadlineTimer()
        let ran = Atomic<Bool>(false)
        _ = timer.schedule(after: .milliseconds(5)) { ran.store(true, ordering: .relaxed) }
        timer.stop()
        #expect(timer.schedule(after: .zero) { ran.store(true, ordering: .relaxed) } == nil)
        try await Task.sleep(for: .milliseconds(30))
        let didRun = ran.load(ordering: .relaxed)
        #expect(!didRun)
    }
}
