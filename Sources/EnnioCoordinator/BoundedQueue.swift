import EnnioSync

/// A queue of at most `capacity` elements from threads of their own to one task: when it is
/// full, ``send(_:)`` waits (blocking its thread) until the task takes an element — the
/// back-pressure that keeps the coordinator's store thread from piling up actions its
/// publisher cannot keep up with. Never call ``send(_:)`` from the cooperative pool.
///
/// One receiver at a time. ``close()`` (or cancelling the receiving task) ends it: waiting and
/// later senders return false, the receiver gets what is queued, then `nil`.
final class BoundedQueue<Element: Sendable>: Sendable {
    let capacity: Int

    private struct State {
        var items: [Element] = []
        var closed = false
        var receiver: CheckedContinuation<Element?, Never>?
        var waitingSenders = 0
    }

    private enum Outcome {
        case closed, queued, full
        case handedOver(CheckedContinuation<Element?, Never>)
    }

    /// Senders wait on its condition; it guards `state` too (always taken first).
    private let condition = ConditionLock()
    private let state = Locked(State())

    init(capacity: Int) {
        precondition(capacity > 0, "a bounded queue needs room for one element")
        self.capacity = capacity
    }

    /// Elements waiting for the receiver.
    var count: Int { condition.withLock { state.withLock { $0.items.count } } }
    /// Senders waiting for room.
    var waitingSenders: Int { condition.withLock { state.withLock { $0.waitingSenders } } }

    /// Hands `element` to the receiver, or queues it, waiting while the queue is full. Returns
    /// false (and drops the element) once the queue is closed.
    @discardableResult
    func send(_ element: Element) -> Bool {
        condition.lock()
        while true {
            let outcome = state.withLock { state -> Outcome in
                if state.closed { return .closed }
                if let receiver = state.receiver {
                    state.receiver = nil
                    return .handedOver(receiver)
                }
                guard state.items.count < capacity else {
                    state.waitingSenders += 1
                    return .full
                }
                state.items.append(element)
                return .queued
            }
            switch outcome {
            case .closed:
                condition.unlock()
                return false
            case .queued:
                condition.unlock()
                return true
            case .handedOver(let receiver):
                condition.unlock()
                receiver.resume(returning: element)
                return true
            case .full:
                condition.wait()
                state.withLock { $0.waitingSenders -= 1 }
            }
        }
    }

    /// The next element, waiting for one; `nil` once closed and empty, or when the calling task
    /// is cancelled (which closes the queue).
    func next() async -> Element? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
                condition.lock()
                let ready = state.withLock { state -> Element?? in
                    if !state.items.isEmpty { return .some(state.items.removeFirst()) }
                    if state.closed { return .some(nil) }
                    state.receiver = continuation
                    return nil
                }
                if ready != nil { condition.signal() }
                condition.unlock()
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            close()
        }
    }

    /// Ends the queue: senders waiting or to come return false; the receiver gets what is
    /// queued, then `nil`.
    func close() {
        condition.lock()
        let receiver = state.withLock { state -> CheckedContinuation<Element?, Never>? in
            state.closed = true
            defer { state.receiver = nil }
            return state.items.isEmpty ? state.receiver : nil
        }
        condition.broadcast()
        condition.unlock()
        receiver?.resume(returning: nil)
    }
}
