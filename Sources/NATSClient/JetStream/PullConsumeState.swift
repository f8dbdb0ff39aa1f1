/// The bookkeeping of a continuous pull (ADR-37 `consume()`), without I/O: how many messages
/// the pull requests still owe, when to ask for more, and what a status message means.
///
/// Messages requested but not yet taken by the reader — in flight or waiting in the
/// subscription's queue — never exceed `maxMessages` (one transient exception: after missed
/// heartbeats or a refused request the count restarts at zero, and a request the server was in
/// fact still serving may add up to one more buffer). Requests are only sent when the reader
/// asks for a message, so a reader that stops reading stops the pulling: that is the
/// back-pressure.
struct PullConsumeState: Sendable {
    let maxMessages: Int
    /// Ask for more once at most this many are still owed.
    let threshold: Int
    let expires: Duration
    let idleHeartbeat: Duration

    /// Messages requested and not yet taken by the reader.
    private(set) var owed = 0
    /// When the server last gave a sign of life (or a request was sent).
    private var lastActivity: ContinuousClock.Instant?
    /// No request before this instant (after the server refused one).
    private var pausedUntil: ContinuousClock.Instant?
    /// Times two heartbeat intervals passed in silence.
    private(set) var missedHeartbeats = 0

    init(maxMessages: Int, threshold: Int? = nil, expires: Duration, idleHeartbeat: Duration) {
        self.maxMessages = max(1, maxMessages)
        self.threshold = min(self.maxMessages - 1, max(0, threshold ?? self.maxMessages / 2))
        self.expires = expires
        self.idleHeartbeat = idleHeartbeat
    }

    /// What the reader's task does next.
    enum ReaderAction: Equatable {
        /// Publish a pull request for `batch` messages, then wait.
        case pull(batch: Int)
        /// Wait for the subscription's next message at most this long.
        case wait(Duration)
    }

    /// The reader wants its next message.
    mutating func readerWaiting(now: ContinuousClock.Instant) -> ReaderAction {
        if let pausedUntil {
            if now < pausedUntil { return .wait(pausedUntil - now) }
            self.pausedUntil = nil
        }
        if owed <= threshold {
            let batch = maxMessages - owed
            owed = maxMessages
            lastActivity = now
            return .pull(batch: batch)
        }
        let silentSince = lastActivity ?? now
        return .wait(max(.zero, silentSince + idleHeartbeat * 2 - now))
    }

    /// A message for the reader arrived (and is handed over).
    mutating func messageReceived(now: ContinuousClock.Instant) {
        owed = max(0, owed - 1)
        lastActivity = now
    }

    /// An idle heartbeat (status 100) arrived.
    mutating func heartbeatReceived(now: ContinuousClock.Instant) {
        lastActivity = now
    }

    /// What a status message means for the reader.
    enum StatusAction: Equatable {
        case keepReading
        /// The consumer is gone or refuses pulls: end the sequence with this error.
        case fail(JetStreamError)
    }

    /// A status message (404, 408, 409, …) arrived; `pendingMessages` is its
    /// `Nats-Pending-Messages` header: what the request it ends still owed.
    mutating func statusReceived(code: Int, description: String, pendingMessages: Int?, now: ContinuousClock.Instant) -> StatusAction {
        lastActivity = now
        let text = description.lowercased()
        switch code {
        case 400:
            return .fail(JetStreamError(code: code, errorCode: 0, description: description.isEmpty ? "bad pull request" : description))
        case 409 where text.contains("consumer deleted") || text.contains("push based"):
            return .fail(JetStreamError(code: code, errorCode: 0, description: description))
        case 409 where text.contains("exceeded maxrequest"):
            // The consumer's limits forbid requests like ours: asking again cannot help.
            return .fail(JetStreamError(code: code, errorCode: 0, description: description))
        case 503:
            // No JetStream answering right now (a restart): try again in a second.
            owed = 0
            pausedUntil = now + .seconds(1)
            return .keepReading
        default:
            if let pendingMessages {
                owed = max(0, owed - pendingMessages)
            } else if code == 409 {
                // Refused without saying what it owed (too many waiting requests): start
                // over, a second from now.
                owed = 0
                pausedUntil = now + .seconds(1)
            }
            return .keepReading
        }
    }

    /// The wait returned nothing. True when two heartbeat intervals have passed in silence:
    /// the requests are presumed lost (a restarted server, a reconnect) and asked for again.
    mutating func waitTimedOut(now: ContinuousClock.Instant) -> Bool {
        guard pausedUntil == nil, let lastActivity, now - lastActivity >= idleHeartbeat * 2 else { return false }
        missedHeartbeats += 1
        owed = 0
        return true
    }
}
