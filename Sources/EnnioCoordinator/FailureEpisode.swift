/// A stretch of failures of one kind, told once when it starts and once when it ends: the
/// coordinator logs "could not store …" at the first failure and "works again, after N" at the
/// first success after it, whatever happened between, so that a failing disk or bucket does not
/// write a line per attempt.
struct FailureEpisode: Sendable, Hashable {
    private(set) var failing = false
    /// What failed since the episode started (events, attempts: the caller's unit).
    private(set) var failedSince: UInt64 = 0

    /// Counts `count` failures; true when they start an episode (tell it).
    mutating func failed(_ count: UInt64 = 1) -> Bool {
        defer {
            failing = true
            failedSince += count
        }
        return !failing
    }

    /// Ends the episode, if one runs: what failed during it (tell it), or `nil`.
    mutating func worked() -> UInt64? {
        guard failing else { return nil }
        defer {
            failing = false
            failedSince = 0
        }
        return failedSince
    }
}
