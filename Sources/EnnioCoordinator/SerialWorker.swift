import EnnioSync
import Foundation
import Synchronization

/// One thread of its own that runs submitted jobs in order — for the coordinator's SQLite
/// writes, which block for tens of milliseconds per batch.
///
/// On the cooperative thread pool such a job keeps a thread from every other task (on a
/// two-core machine, half the pool), and a task created to run it may wait that long before
/// it starts. A job submitted here starts at once, and the submitter awaits its result only
/// when it needs it.
final class SerialWorker: Sendable {
    private struct Queue {
        var jobs: [@Sendable () -> Void] = []
        var stopped = false
    }

    private let condition = NSCondition()
    private let queue = Locked(Queue())

    /// What its thread is called.
    let name: String

    init(name: String) {
        self.name = name
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the worker after the jobs submitted before it. After `stop()` the job
    /// still runs, on the caller's thread, so that nothing submitted is lost.
    func submit<Result: Sendable>(_ body: @escaping @Sendable () -> Result) -> Pending<Result> {
        let pending = Pending<Result>()
        let accepted = condition.withLock {
            queue.withLock { queue in
                guard !queue.stopped else { return false }
                queue.jobs.append { pending.fulfil(body()) }
                return true
            }
        }
        if accepted {
            condition.signal()
        } else {
            pending.fulfil(body())
        }
        return pending
    }

    /// Lets the jobs already submitted finish, then ends the thread.
    func stop() {
        condition.withLock {
            queue.withLock { $0.stopped = true }
        }
        condition.signal()
    }

    /// The name of the worker whose thread calls this; `nil` on any other thread.
    static var current: String? {
        Thread.current.threadDictionary[threadKey] as? String
    }

    private static let threadKey = "ennio.serial-worker"

    private func run() {
        Thread.current.threadDictionary[Self.threadKey] = name
        while true {
            condition.lock()
            var next: [@Sendable () -> Void] = []
            var stopped = false
            while true {
                (next, stopped) = queue.withLock { queue in
                    defer { queue.jobs.removeAll() }
                    return (queue.jobs, queue.stopped)
                }
                if !next.isEmpty || stopped { break }
                condition.wait()
            }
            condition.unlock()
            for job in next { job() }
            if stopped, next.isEmpty { return }
        }
    }

    /// The result of a submitted job, to await once.
    final class Pending<Value: Sendable>: Sendable {
        private struct State {
            var value: Value?
            var waiter: CheckedContinuation<Value, Never>?
        }

        private let state = Locked(State())

        fileprivate func fulfil(_ value: Value) {
            let waiter = state.withLock { state in
                state.value = value
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: value)
        }

        /// Waits for the job to finish (not cancellable: a write in progress is not abandoned).
        var value: Value {
            get async {
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> Value? in
                        if let value = state.value { return value }
                        state.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            }
        }
    }
}
