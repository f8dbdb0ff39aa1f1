/// A subscription: an `AsyncSequence` of the messages published to its subject.
///
/// The sequence ends when the subscription is unsubscribed, reaches its message maximum, the
/// connection closes, or the server refuses it (``error`` then says why). Messages that arrive while the consumer is behind wait in a bounded
/// queue (``NATSOptions/pendingMessageLimit`` / ``NATSOptions/pendingByteLimit``); past that
/// they are dropped and counted in ``droppedCount``.
public struct NATSSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage
    public typealias Failure = Never

    let lifetime: SubscriptionLifetime
    var state: SubscriptionState { lifetime.state }
    var connection: NATSConnection { lifetime.connection }

    /// The subject or pattern subscribed to.
    public var subject: String { state.subject }
    /// The queue group, if any.
    public var queueGroup: String? { state.queueGroup }
    /// Messages dropped because the consumer was behind.
    public var droppedCount: UInt64 { state.droppedCount }
    /// Messages received for this subscription (queued or consumed, not dropped).
    public var deliveredCount: UInt64 { state.deliveredCount }
    /// Messages waiting for the consumer.
    public var pendingCount: Int { state.pendingCount }
    /// Why the server ended the subscription, if it did: `.permissionViolation` when the
    /// user may not subscribe to ``subject`` (the sequence then ends, the connection stays
    /// up). `nil` while it runs and when it ended otherwise (unsubscribed, drained, closed).
    public var error: NATSError? { state.error }

    /// Stops the subscription now; messages not yet consumed are discarded.
    public func unsubscribe() throws(NATSError) {
        try connection.core.unsubscribe(state, after: nil)
    }

    /// Ends the subscription after `count` messages in all (including those already received).
    public func unsubscribe(afterMessages count: Int) throws(NATSError) {
        guard count > 0 else { throw NATSError(.invalidArgument, "the message count must be positive") }
        try connection.core.unsubscribe(state, after: UInt64(count))
    }

    /// Stops the server sending more, waits until what it already sent has arrived, and ends
    /// the sequence once the consumer has taken every queued message.
    public func drain(timeout: Duration? = nil) async throws {
        try await connection.core.drain(state, timeout: timeout)
    }

    /// Messages dropped because the consumer was behind, and bytes waiting for it.
    public var pendingBytes: Int { state.pendingBytes }

    /// The next message, waiting for one if needed, together with every message already
    /// queued behind it (at most `maximum` in all, without waiting for more), in order.
    /// Empty once the subscription has ended and been drained, or when the calling task is
    /// cancelled. Lets a consumer handle a burst as one batch; mixing it with iteration is fine.
    public func nextBatch(maximum: Int = 1000) async -> [NATSMessage] {
        await state.nextBatch(maximum: Swift.max(1, maximum))
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(lifetime: lifetime)
    }

    /// Holds the subscription (and its connection) alive while it iterates.
    public struct Iterator: AsyncIteratorProtocol {
        let lifetime: SubscriptionLifetime
        var state: SubscriptionState { lifetime.state }

        public mutating func next() async -> NATSMessage? {
            await state.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> NATSMessage? {
            await state.next()
        }
    }
}

/// What keeps a subscription live: every copy of a ``NATSSubscription`` and every iterator
/// share one. When the last of them goes away the subscription unsubscribes (if it had not
/// ended already). It holds the connection, so a subscription in use keeps its connection.
final class SubscriptionLifetime: Sendable {
    let state: SubscriptionState
    let connection: NATSConnection

    init(state: SubscriptionState, connection: NATSConnection) {
        self.state = state
        self.connection = connection
    }

    deinit {
        connection.core.subscriptionDropped(state)
    }
}
