import EnnioSync

extension ConnectionCore {
    /// The server refused one operation (`-ERR 'Permissions Violation …'`) and keeps the
    /// connection: the refusal goes to the operations it concerns, as far as they can be known.
    ///
    /// - A refused subscription ends, with the error as its ``NATSSubscription/error`` (every
    ///   subscription on that subject and queue group: the server refuses them all alike). A
    ///   refused reply subscription fails every waiting request.
    /// - A refused publish fails the requests waiting on that subject (or that reply subject).
    /// - A refusal no request was told of — a publish, a subscription — fails every flush
    ///   still waiting (the server answers in order, so each of those `PING`s was sent after
    ///   what it refused); when none waits, the next flush fails with it at once. So a flush
    ///   after a refused publish or subscription always reports it, once.
    ///
    /// The connection's events carry the server's text too (``ConnectionEvent/serverError(_:)``),
    /// once.
    func refused(_ error: NATSError, text: String) {
        let violation = PermissionViolation(serverError: text)
        let (subscriptions, requests, flushes) = state.withLock { shared in
            var subscriptions: [SubscriptionState] = []
            var tokens: [String] = []
            switch violation {
            case let violation? where violation.kind == .subscription:
                let refused = shared.machine.subscriptionRefused(subject: violation.subject, queueGroup: violation.queueGroup)
                subscriptions = refused.subscriptions
                if refused.replySubscription { tokens = Array(shared.replies.keys) }
            case let violation? where violation.kind == .publish:
                tokens = shared.replies.filter { $0.value.subject == violation.subject }.map(\.key)
            case let violation? where violation.subject.hasPrefix(replyPrefix):
                // A reply subject of ours: that one request.
                tokens = [String(violation.subject.dropFirst(replyPrefix.count))]
            default:
                break
            }
            let requests = tokens.compactMap { shared.replies.removeValue(forKey: $0)?.reply }
            guard requests.isEmpty else { return (subscriptions, requests, [Promise<Void, NATSError>]()) }
            // Their PONGs still arrive and find no waiter.
            let flushes = Array(shared.flushes.values)
            shared.flushes.removeAll()
            shared.unreportedRefusal = flushes.isEmpty ? error : nil
            return (subscriptions, requests, flushes)
        }
        subscriptions.forEach { $0.finish(discardPending: false, error: error) }
        requests.forEach { $0.fulfil(.failure(error)) }
        flushes.forEach { $0.fulfil(.failure(error)) }
    }
}
