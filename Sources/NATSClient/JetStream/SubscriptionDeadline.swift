extension NATSSubscription {
    /// What waiting for a subscription's next message with a time limit produced.
    enum Wait: Sendable {
        case message(NATSMessage)
        /// The subscription ended (unsubscribed, drained, connection closed) or the waiting
        /// task was cancelled.
        case ended
        /// Nothing arrived within the limit.
        case timedOut
    }

    /// The next message, waiting at most `limit` for one.
    ///
    /// A message that arrives just as the limit passes is never lost: the wait and the timer
    /// race in a task group, and when the timer wins, the result of the cancelled wait is still
    /// collected — it may already hold the message the reader thread handed it.
    func next(within limit: Duration) async -> Wait {
        // Already queued (the usual case inside a burst): no timer, no child tasks.
        if let ready = state.pollQueued() { return .message(ready) }
        return await withTaskGroup(of: Wait.self) { group in
            group.addTask {
                var iterator = makeAsyncIterator()
                guard let message = await iterator.next() else { return .ended }
                return .message(message)
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return .timedOut
            }
            var outcome = await group.next() ?? .ended
            group.cancelAll()
            while let other = await group.next() {
                if case .message = other { outcome = other }
            }
            return outcome
        }
    }
}
