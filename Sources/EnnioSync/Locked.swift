#if ENNIO_PTHREAD_LOCKS
import Glibc
#else
public import Synchronization
#endif

#if ENNIO_PTHREAD_LOCKS
/// A value guarded by a lock: the one lock of the whole project.
///
/// Release and debug builds use `Synchronization.Mutex` (this type is an alias of it).
/// Sanitizer builds (`-DENNIO_PTHREAD_LOCKS`, set by `SANITIZE=thread scripts/test.sh`) use
/// this pthread-backed twin with the same API instead: on this toolchain ThreadSanitizer does
/// not understand `Mutex` and reports every access it guards as a race, while it knows
/// pthread mutexes. So a sanitizer run reports only races that are real.
public struct Locked<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let storage: UnsafeMutablePointer<Value>

    public init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        storage = .allocate(capacity: 1)
        storage.initialize(to: initialValue)
    }

    deinit {
        storage.deinitialize(count: 1)
        storage.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&storage.pointee)
    }

    /// Runs `body` with the value if the lock is free at once; `nil` otherwise.
    public borrowing func withLockIfAvailable<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return try body(&storage.pointee)
    }
}
#else
/// A value guarded by a lock: the one lock of the whole project.
///
/// Here an alias of `Synchronization.Mutex`. Sanitizer builds (`-DENNIO_PTHREAD_LOCKS`, set by
/// `SANITIZE=thread scripts/test.sh`) replace it with a pthread-backed twin of the same API,
/// because on this toolchain ThreadSanitizer does not understand `Mutex`.
public typealias Locked<Value: ~Copyable> = Mutex<Value>
#endif
