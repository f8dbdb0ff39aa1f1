import EnnioSync

/// A bounded queue between producers (the code that learns of new events) and the one thread
/// that writes a streaming response to a client.
///
/// Full means the client fell behind: the queue then stops taking anything, its consumer is
/// told `.overflowed` (and should drop the client, which can resume from where it was), and
/// `onOverflow` runs once so that a write stuck on the slow client can be cut short. A
/// producer never waits.
public final class StreamQueue<Element: Sendable>: @unchecked Sendable {
    public enum Taken: Sendable {
        case elements([Element])
        /// Nothing arrived within the timeout.
        case timedOut
        /// The producers offered more than the capacity before the consumer took it.
        case overflowed
        case closed
    }

    public let capacity: Int
    private let condition = ConditionLock()
    // Guarded by `condition`.
    private var elements: [Element] = []
    private var overflowed = false
    private var closed = false
    private var onOverflow: (@Sendable () -> Void)?

    public init(capacity: Int, onOverflow: (@Sendable () -> Void)? = nil) {
        precondition(capacity > 0, "a stream queue needs room for at least one element")
        self.capacity = capacity
        self.onOverflow = onOverflow
    }

    /// Appends `items`; false if the queue is closed or overflowed, now or before.
    @discardableResult
    public func offer(_ items: some Collection<Element>) -> Bool {
        guard !items.isEmpty else { return true }
        var overflowAction: (@Sendable () -> Void)?
        let accepted = condition.withLock { () -> Bool in
            guard !closed, !overflowed else { return false }
            guard elements.count + items.count <= capacity else {
                overflowed = true
                elements.removeAll()
                overflowAction = onOverflow
                onOverflow = nil
                return false
            }
            elements.append(contentsOf: items)
            return true
        }
        condition.signal()
        overflowAction?()
        return accepted
    }

    /// Everything queued, waiting up to `timeout` for something to arrive.
    public func take(timeout: Duration) -> Taken {
        let deadline = ContinuousClock.now + timeout
        condition.lock()
        defer { condition.unlock() }
        while true {
            if overflowed { return .overflowed }
            if !elements.isEmpty {
                defer { elements.removeAll(keepingCapacity: true) }
                return .elements(elements)
            }
            if closed { return .closed }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return .timedOut }
            let (seconds, attoseconds) = remaining.components
            condition.wait(nanoseconds: Int(clamping: seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        }
    }

    /// Ends the queue: what is queued can still be taken, then `.closed`.
    public func close() {
        condition.withLock { closed = true }
        condition.broadcast()
    }

    public var count: Int { condition.withLock { elements.count } }
}
