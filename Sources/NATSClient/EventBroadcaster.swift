import EnnioSync
import Synchronization

/// Hands each ``ConnectionEvent`` to every stream that observes the connection.
///
/// Each stream buffers at most `bufferLimit` events; an observer that does not read loses the
/// oldest ones rather than growing memory.
final class EventBroadcaster: Sendable {
    private struct State {
        var observers: [Int: AsyncStream<ConnectionEvent>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }

    private let state = Locked(State())
    let bufferLimit: Int

    init(bufferLimit: Int = 256) {
        self.bufferLimit = bufferLimit
    }

    /// A new stream of events, starting with `initial` (the current situation).
    func stream(initial: [ConnectionEvent]) -> AsyncStream<ConnectionEvent> {
        let (stream, continuation) = AsyncStream<ConnectionEvent>.makeStream(bufferingPolicy: .bufferingNewest(bufferLimit))
        for event in initial { continuation.yield(event) }
        let registered = state.withLock { state -> Int? in
            guard !state.finished else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.observers[id] = continuation
            return id
        }
        guard let id = registered else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.observers.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: ConnectionEvent) {
        let observers = state.withLock { Array($0.observers.values) }
        for observer in observers { observer.yield(event) }
    }

    /// Emits `last` and ends every stream.
    func finish(with last: ConnectionEvent) {
        let observers = state.withLock { state -> [AsyncStream<ConnectionEvent>.Continuation] in
            guard !state.finished else { return [] }
            state.finished = true
            defer { state.observers.removeAll() }
            return Array(state.observers.values)
        }
        for observer in observers {
            observer.yield(last)
            observer.finish()
        }
    }
}
