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
