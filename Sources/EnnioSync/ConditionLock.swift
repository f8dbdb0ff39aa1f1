import Glibc

/// A mutex with condition variables, for the writer thread that sleeps until bytes arrive and
/// the publishers that wait for room.
///
/// `Mutex` from Synchronization has no way to wait; this wraps pthreads, which do. Each
/// condition is named by its number, `0..<conditionCount`; waking one set of waiters does not
/// disturb the others.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    private let conditionCount: Int

    public init(conditionCount: Int = 1) {
        precondition(conditionCount > 0)
        self.conditionCount = conditionCount
        conditions = .allocate(capacity: conditionCount)
        pthread_mutex_init(mutex, nil)
        // Timed waits count on the monotonic clock: a wall-clock step (NTP, an operator's
        // `date -s`) neither stalls nor cuts short a request's or flush's time limit.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        for index in 0..<conditionCount { pthread_cond_init(conditions + index, &attributes) }
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        for index in 0..<conditionCount { pthread_cond_destroy(conditions + index) }
        pthread_mutex_destroy(mutex)
        conditions.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Waits for a signal; call with the lock held. Wakes spuriously, so loop on the condition.
    public func wait(_ condition: Int = 0) { pthread_cond_wait(conditions + condition, mutex) }

    /// Waits for a signal or until `nanoseconds` have passed; call with the lock held.
    public func wait(_ condition: Int = 0, nanoseconds: Int) {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let total = Int(deadline.tv_nsec) + nanoseconds
        deadline.tv_sec += total / 1_000_000_000
        deadline.tv_nsec = total % 1_000_000_000
        _ = pthread_cond_timedwait(conditions + condition, mutex, &deadline)
    }

    /// Wakes every waiter of `condition`.
    public func broadcast(_ condition: Int = 0) { pthread_cond_broadcast(conditions + condition) }

    /// Wakes one waiter of `condition`.
    public func signal(_ condition: Int = 0) { pthread_cond_signal(conditions + condition) }

    public func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        lock()
        defer { unlock() }
        return try body()
    }
}
