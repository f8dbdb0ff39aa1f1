/// When to send a keep-alive `PING` and when to give up on a silent server.
///
/// A pure state machine: time is an input (`now`, the time since any fixed origin), so tests
/// drive it without sockets or sleeping. Every `interval` the connection sends a `PING`; each
/// `PONG` clears the count of unanswered ones. When a `PING` is due while `maximumOutstanding`
/// are still unanswered, the connection is stale and must be dropped (then reconnected).
public struct KeepAlive: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// Nothing to do before `deadline`.
        case wait
        /// Send a `PING` now.
        case sendPing
        /// Too many `PING`s went unanswered: treat the connection as broken.
        case staleConnection
    }

    public let interval: Duration
    public let maximumOutstanding: Int
    public private(set) var outstanding = 0
    /// When the next `PING` is due.
    public private(set) var deadline: Duration

    public init(interval: Duration, maximumOutstanding: Int, now: Duration) {
        self.interval = interval
        self.maximumOutstanding = maximumOutstanding
        self.deadline = now + interval
    }

    /// What to do at `now`; call again after doing it.
    public mutating func tick(now: Duration) -> Action {
        guard now >= deadline else { return .wait }
        if outstanding >= maximumOutstanding { return .staleConnection }
        outstanding += 1
        deadline = now + interval
        return .sendPing
    }

    /// The server answered a `PING` (a keep-alive one or a flush).
    public mutating func pongReceived() {
        outstanding = 0
    }

    /// How long the reader may block before `tick` has something to do.
    public func timeUntilDeadline(now: Duration) -> Duration {
        max(.zero, deadline - now)
    }
}
