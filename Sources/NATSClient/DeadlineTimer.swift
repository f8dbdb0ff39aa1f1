import EnnioSync
import Foundation

/// Runs actions at deadlines — the time limits of requests and flushes — on one thread of its
/// own, so that arming a limit costs a lock and a heap insertion rather than a task that the
/// scheduler must start, put to sleep and cancel for every request.
///
/// Cancelled entries stay in the heap until they come to the top (or the heap is rebuilt when
/// they outnumber the live ones). The thread sleeps until the earliest live deadline; when it
/// has nothing to wait for it wakes every second, so that arming a limit longer than that
/// never needs to wake it, and it ends after a few idle wake-ups (the next `schedule` starts
/// it again).
final class DeadlineTimer: @unchecked Sendable {
    private struct Entry {
        var deadline: Int64
        var id: UInt64
    }

    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var heap: [Entry] = []
    private var actions: [UInt64: @Sendable () -> Void] = [:]
    private var nextID: UInt64 = 1
    private var threadRunning = false
    private var stopped = false
    /// The instant the thread's current wait ends; `nil` while it is not waiting.
    private var sleepingUntil: Int64?

    private static let idleWaitNanoseconds: Int64 = 1_000_000_000
    private static let idleWaitsBeforeExit = 5

    /// Runs `action` on the timer's thread once `delay` has passed, unless cancelled first.
    /// Returns the token to cancel it with; `nil` after `stop()` (the action never runs).
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> UInt64? {
        let (seconds, attoseconds) = delay.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let offset = nanoseconds.overflow ? Int64.max / 2 : min(nanoseconds.partialValue + attoseconds / 1_000_000_000, Int64.max / 2)
        let deadline = monotonicNanoseconds() + max(0, offset)
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return nil }
        let id = nextID
        nextID += 1
        actions[id] = action
        push(Entry(deadline: deadline, id: id))
        if !threadRunning {
            threadRunning = true
            let thread = Thread { [self] in run() }
            thread.name = "nats-timer"
            thread.start()
        } else if let sleepingUntil, deadline < sleepingUntil {
            lock.signal()
        }
        return id
    }

    func cancel(_ id: UInt64) {
        lock.withLock {
            _ = actions.removeValue(forKey: id)
            // Mostly cancelled entries: keep only the live ones.
            if heap.count > 1024, heap.count > 2 * actions.count {
                heap.removeAll { actions[$0.id] == nil }
                heap.sort { $0.deadline < $1.deadline }
            }
        }
    }

    /// Drops every pending action and ends the thread. Later `schedule` calls do nothing.
    func stop() {
        lock.withLock {
            stopped = true
            actions.removeAll()
            heap.removeAll()
            lock.signal()
        }
    }

    private func run() {
        lock.lock()
        var idleWaits = 0
        while !stopped {
            while let top = heap.first, actions[top.id] == nil { pop() }
            let now = monotonicNanoseconds()
            guard let top = heap.first else {
                guard idleWaits < Self.idleWaitsBeforeExit else { break }
                idleWaits += 1
                wait(until: now + Self.idleWaitNanoseconds, now: now)
                continue
            }
            idleWaits = 0
            guard top.deadline <= now else {
                wait(until: min(top.deadline, now + Self.idleWaitNanoseconds), now: now)
                continue
            }
            pop()
            let action = actions.removeValue(forKey: top.id)
            lock.unlock()
            action?()
            lock.lock()
        }
        threadRunning = false
        lock.unlock()
    }

    /// Waits for a signal or `deadline`; call with the lock held.
    private func wait(until deadline: Int64, now: Int64) {
        sleepingUntil = deadline
        lock.wait(nanoseconds: Int(deadline - now))
        sleepingUntil = nil
    }

    // MARK: - The heap, ordered by deadline

    private func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func pop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count, heap[right].deadline < heap[smallest].deadline { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
