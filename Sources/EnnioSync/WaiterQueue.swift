/// Tasks waiting for a value, in the order they came, each known by its own id: the one waiter
/// primitive of the project (subscriptions, the event bus, close, flush, requests, drain).
///
/// It lives inside the state a lock guards (`Locked<State>`) and only does the bookkeeping:
/// every method is called with the lock held and hands back the continuations to resume,
/// which the caller resumes after releasing the lock. Each waiter is resumed exactly once:
/// by whoever removes it first — `popFirst`, `resolve(_:with:)` for its id (a cancellation or
/// a time limit), or `removeAll`. A waiter resolved before it was added (its task was
/// cancelled, or its time limit passed, before it suspended) gets that value when it is added.
public struct WaiterQueue<Value: Sendable>: Sendable {
    public typealias Continuation = CheckedContinuation<Value, Never>

    private var entries: [(id: UInt64, continuation: Continuation)] = []
    /// Values for waiters that were resolved before they were added.
    private var early: [UInt64: Value] = [:]
    private var nextID: UInt64 = 0

    public init() {}

    /// A new id, for one waiter.
    public mutating func makeID() -> UInt64 {
        nextID &+= 1
        return nextID
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// Adds a waiter at the end; returns the value to resume it with at once when its id was
    /// resolved before (then it is not added).
    public mutating func add(_ id: UInt64, _ continuation: Continuation) -> Value? {
        if let value = early.removeValue(forKey: id) { return value }
        entries.append((id, continuation))
        return nil
    }

    /// Takes the waiter `id` out to be resumed with `value`; if it has not been added yet,
    /// keeps `value` for when it is. Returns the continuation to resume, if it was waiting.
    public mutating func resolve(_ id: UInt64, with value: Value) -> Continuation? {
        if let index = entries.firstIndex(where: { $0.id == id }) {
            return entries.remove(at: index).continuation
        }
        early[id] = value
        return nil
    }

    /// Forgets a value kept for a waiter that will never be added (it returned another way).
    public mutating func forget(_ id: UInt64) {
        early.removeValue(forKey: id)
    }

    /// Takes out the longest-waiting waiter.
    public mutating func popFirst() -> Continuation? {
        entries.isEmpty ? nil : entries.removeFirst().continuation
    }

    /// Takes out every waiter.
    public mutating func removeAll() -> [Continuation] {
        defer {
            entries.removeAll()
            early.removeAll()
        }
        return entries.map(\.continuation)
    }
}

/// Suspends the calling task as one waiter of a ``WaiterQueue``.
///
/// - Parameters:
///   - register: called once, on suspension, to add the continuation under the caller's lock;
///     returns a value to resume with at once instead (the thing awaited is already there, or
///     ``WaiterQueue/add(_:_:)`` returned an early value).
///   - cancel: called if the task is cancelled, from any thread; it must resolve this waiter's
///     id (``WaiterQueue/resolve(_:with:)``) under the caller's lock and resume what that returns.
/// - Returns: the value the waiter was resumed with.
nonisolated(nonsending) public func suspendAsWaiter<Value: Sendable>(
    register: (WaiterQueue<Value>.Continuation) -> Value?,
    cancel: @Sendable () -> Void
) async -> Value {
    await withTaskCancellationHandler {
        await withCheckedContinuation { (continuation: WaiterQueue<Value>.Continuation) in
            if let ready = register(continuation) { continuation.resume(returning: ready) }
        }
    } onCancel: {
        cancel()
    }
}
