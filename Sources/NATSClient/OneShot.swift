import EnnioSync
import Synchronization

/// A value that arrives once, from any thread, for one waiting task: a request's reply, a
/// flush's `PONG`. The first `fulfil` wins; later ones are ignored.
final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var result: Result<Value, NATSError>?
        var waiter: CheckedContinuation<Value, any Error>?
    }

    private let state = Locked(State())

    init() {}

    /// Delivers the result; returns false when one was delivered already.
    @discardableResult
    func fulfil(_ result: Result<Value, NATSError>) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Value, any Error>?) in
            guard state.result == nil else { return (false, nil) }
            state.result = result
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume(with: result.mapError { $0 as any Error })
        return accepted
    }

    var isFulfilled: Bool { state.withLock { $0.result != nil } }

    /// Waits for the result; cancellation of the waiting task fulfils it with ``NATSError/Code/cancelled``.
    func value() async throws -> Value {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let ready = state.withLock { state -> Result<Value, NATSError>? in
                    if let result = state.result { return result }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready.mapError { $0 as any Error }) }
            }
        } onCancel: {
            fulfil(.failure(NATSError(.cancelled, "the waiting task was cancelled")))
        }
    }

    /// Waits for the result at most `timeout`; then it is fulfilled with `timeoutError`.
    func value(timeout: Duration, timeoutError: NATSError, timer: DeadlineTimer) async throws -> Value {
        if let ready = state.withLock({ $0.result }) { return try ready.get() }
        // A stopped timer belongs to a closed connection: nothing will come.
        guard let token = timer.schedule(after: timeout, { [self] in fulfil(.failure(timeoutError)) }) else {
            fulfil(.failure(NATSError.closed()))
            return try await value()
        }
        defer { timer.cancel(token) }
        return try await value()
    }
}
