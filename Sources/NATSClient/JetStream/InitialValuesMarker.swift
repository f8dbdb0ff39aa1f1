/// When a watcher (of a bucket, of an object store) says it has delivered every value that
/// existed when it started (ADR-8): once, after the first value with nothing pending behind it,
/// or at once when there was nothing to deliver or only updates were asked for.
struct InitialValuesMarker: Sendable {
    private enum State: Sendable {
        /// Initial values are still coming.
        case awaited
        /// To be sent before anything else.
        case due
        case sent
    }

    private var state: State

    init(dueAtOnce: Bool) {
        state = dueAtOnce ? .due : .awaited
    }

    /// A value arrived with `pending` more behind it.
    mutating func valueArrived(pending: UInt64) {
        if state == .awaited, pending == 0 { state = .due }
    }

    /// True exactly once: when the marker is due and was not sent yet.
    mutating func takeIfDue() -> Bool {
        guard state == .due else { return false }
        state = .sent
        return true
    }
}

/// The messages of a watcher's ordered consumer with the "initial values done" marker put in
/// its place among them: what bucket and object store watchers share.
struct WatchCursor: Sendable {
    enum Step: Sendable {
        case message(JetStreamMessage)
        case initialValuesDone
    }

    private var marker: InitialValuesMarker
    private var messages: OrderedConsumer.Iterator

    /// `updatesOnly`: the marker comes first, as it does when there is nothing to deliver.
    init(consumer: OrderedConsumer, updatesOnly: Bool) {
        marker = InitialValuesMarker(dueAtOnce: updatesOnly || consumer.initialPending == 0)
        messages = consumer.makeAsyncIterator()
    }

    /// The marker when it is due, else the next message; `nil` when the consumer ends.
    mutating func next() async throws -> Step? {
        if marker.takeIfDue() { return .initialValuesDone }
        guard let message = try await messages.next() else { return nil }
        marker.valueArrived(pending: message.metadata.pending)
        return .message(message)
    }
}
