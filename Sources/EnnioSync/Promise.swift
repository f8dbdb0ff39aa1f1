/// A result that arrives once, from any thread, for any number of waiting tasks: the end of a
/// close, a flush's `PONG`, a request's reply, an agent's stop.
///
/// The first `fulfil` wins and resumes every waiter; later ones are ignored. A waiter that is
/// cancelled, or whose own time limit passes, leaves alone — with its own error — and the
/// others go on waiting: one impatient caller never decides for the rest.
public final class Promise<Success: Sendable, Failure: Error>: Sendable {
    private struct State {
        var result: Result<Success, Failure>?
        var waiters = WaiterQueue<Result<Success, Failure>>()
    }

    private let state = Locked(State())

    public init() {}

    /// Delivers the result to every waiter, now and later; false when one was delivered already.
    @discardableResult
    public func fulfil(_ result: Result<Success, Failure>) -> Bool {
        let waiters = state.withLock { state -> [WaiterQueue<Result<Success, Failure>>.Continuation]? in
            guard state.result == nil else { return nil }
            state.result = result
            return state.waiters.removeAll()
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: result) }
        return true
    }

    public var isFulfilled: Bool { state.withLock { $0.result != nil } }

    /// The result, if it has arrived.
    public var result: Result<Success, Failure>? { state.withLock { $0.result } }

    /// A waiter id for ``value(waiter:cancelled:)``, to be handed to whatever may end that
    /// waiter's wait early (``release(waiter:with:)``) before it suspends.
    public func makeWaiterID() -> UInt64 {
        state.withLock { $0.waiters.makeID() }
    }

    /// Ends one waiter's wait with `error`, leaving the promise unfulfilled for the others (a
    /// time limit). Works before the waiter has suspended, too.
    public func release(waiter id: UInt64, with error: Failure) {
        let waiter = state.withLock { state -> WaiterQueue<Result<Success, Failure>>.Continuation? in
            guard state.result == nil else { return nil }
            return state.waiters.resolve(id, with: .failure(error))
        }
        waiter?.resume(returning: .failure(error))
    }

    /// Waits for the result. If the waiting task is cancelled this waiter throws `cancelled()`
    /// and the promise stays as it was.
    nonisolated(nonsending) public func value(
        waiter id: UInt64? = nil,
        cancelled: @escaping @Sendable () -> Failure
    ) async throws(Failure) -> Success {
        let id = id ?? makeWaiterID()
        let result = await suspendAsWaiter { (continuation: WaiterQueue<Result<Success, Failure>>.Continuation) in
            state.withLock { state -> Result<Success, Failure>? in
                if let result = state.result {
                    state.waiters.forget(id)
                    return result
                }
                return state.waiters.add(id, continuation)
            }
        } cancel: { [self] in
            release(waiter: id, with: cancelled())
        }
        return try result.get()
    }
}
