import NATSProtocol

/// Fetches messages from a pull consumer.
///
/// Each fetch asks `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` for a batch, delivered to a
/// private inbox. The server ends a fetch early with a status message: 404 (no messages, with
/// `noWait`), 408 (the request expired), 409 (the consumer was deleted, or too many waiting
/// requests, …); 100 is an idle heartbeat that only proves the server is alive.
public struct PullConsumer: Sendable {
    public let jetStream: JetStream
    public let stream: String
    public let consumer: String

    /// Why a fetch ended before the batch was full.
    public enum EndReason: Sendable, Hashable {
        case batchComplete
        /// 404: nothing to deliver right now (with `noWait`).
        case noMessages
        /// 408: the request's expiry passed.
        case expired
        /// 409 and its description (consumer deleted, leadership change, exceeded limits).
        case conflict(String)
        /// No message or heartbeat for two heartbeat intervals: the server may be gone.
        case missedHeartbeats
    }

    /// One fetch's result.
    public struct Batch: Sendable {
        public var messages: [JetStreamMessage]
        public var endReason: EndReason
    }

    /// Where pull requests go: `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
    var requestSubject: String { "\(jetStream.prefix).CONSUMER.MSG.NEXT.\(stream).\(consumer)" }

    /// A pull request: `{"batch":…,"expires":…}`, or `"no_wait"` when `expires` is `nil`.
    static func requestBody(batch: Int, expires: Duration?, idleHeartbeat: Duration?) -> [UInt8] {
        var body = "{\"batch\":\(batch)"
        if let expires {
            body += ",\"expires\":\(nanosecondsOf(expires))"
        } else {
            body += ",\"no_wait\":true"
        }
        if let idleHeartbeat { body += ",\"idle_heartbeat\":\(nanosecondsOf(idleHeartbeat))" }
        return Array((body + "}").utf8)
    }

    /// Fetches up to `batch` messages, waiting at most `expires`.
    public func fetch(
        batch: Int,
        expires: Duration = .seconds(5),
        noWait: Bool = false,
        idleHeartbeat: Duration? = nil
    ) async throws -> Batch {
        let connection = jetStream.connection
        let inbox = "\(connection.options.inboxPrefix).\(Nuid.next())"
        let subscription = try connection.subscribe(to: inbox)
        defer { try? subscription.unsubscribe() }
        try connection.publish(
            Self.requestBody(batch: batch, expires: noWait ? nil : expires, idleHeartbeat: idleHeartbeat),
            to: requestSubject,
            replyTo: inbox
        )

        // A safety net past the server's own expiry; heartbeats, when asked for, detect a
        // silent server sooner.
        let watchdog = idleHeartbeat.map { $0 * 2 } ?? (expires + .seconds(5))
        var messages: [JetStreamMessage] = []
        while messages.count < batch {
            let next: NATSMessage
            switch await subscription.next(within: watchdog) {
            case .message(let message): next = message
            case .timedOut: return Batch(messages: messages, endReason: .missedHeartbeats)
            case .ended:
                try Task.checkCancellation()
                return Batch(messages: messages, endReason: .missedHeartbeats)
            }
            if let status = next.status, next.payload.isEmpty || status != 200 {
                switch status {
                case 100: continue
                case 404: return Batch(messages: messages, endReason: .noMessages)
                case 408: return Batch(messages: messages, endReason: .expired)
                case 409: return Batch(messages: messages, endReason: .conflict(next.headers?.statusDescription ?? "conflict"))
                default:
                    if status >= 400 {
                        throw JetStreamError(code: status, errorCode: 0, description: next.headers?.statusDescription ?? "pull request failed")
                    }
                    continue
                }
            }
            guard let message = JetStreamMessage(message: next, connection: connection) else { continue }
            messages.append(message)
        }
        return Batch(messages: messages, endReason: .batchComplete)
    }
}
