import EnnioSync

/// A pull consumer's messages as they come (ADR-37 `consume()`): one subscription, pull
/// requests sent as the reader takes messages, at most `maxMessages` requested and not yet
/// taken.
///
/// The pulling happens in the reader's own task, inside `next()`: a reader that stops reading
/// stops the pulling, so a slow reader holds at most one buffer of messages. Idle heartbeats
/// prove the server alive; after two silent intervals (a restarted server, a reconnect) the
/// requests are sent again and the sequence goes on. It ends with an error when the consumer
/// is deleted or refuses the requests, and without one when the calling task is cancelled,
/// ``stop()`` is called or the connection closes.
///
/// Iterate it once, from one task.
public struct PullConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = JetStreamMessage
    public typealias Failure = any Error

    let run: Run

    /// Times the server went silent for two heartbeat intervals and the pull was started again.
    public var missedHeartbeats: Int { run.state.withLock { $0.missedHeartbeats } }

    /// Ends the sequence: no more requests; what was already received is discarded (the
    /// server delivers unacknowledged messages again after their ack wait).
    public func stop() {
        try? run.subscription.unsubscribe()
    }

    public func makeAsyncIterator() -> Iterator { Iterator(run: run) }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let run: Run

        public mutating func next() async throws -> JetStreamMessage? {
            try await run.next()
        }
    }

    /// The subscription and the bookkeeping, shared by copies of the sequence.
    final class Run: Sendable {
        let consumer: PullConsumer
        let subscription: NATSSubscription
        let state: Locked<PullConsumeState>
        var connection: NATSConnection { consumer.jetStream.connection }

        init(consumer: PullConsumer, subscription: NATSSubscription, state: PullConsumeState) {
            self.consumer = consumer
            self.subscription = subscription
            self.state = Locked(state)
        }

        deinit {
            try? subscription.unsubscribe()
        }

        /// Nobody answered a pull request: JetStream is away (a restart) or the consumer is gone.
        /// Asks which, and ends the sequence in the second case.
        private func failUnlessConsumerExists() async throws {
            do {
                _ = try await consumer.jetStream.consumerInfo(stream: consumer.stream, consumer: consumer.consumer)
            } catch let error as JetStreamError where error.errorCode == JetStreamError.consumerNotFound {
                try? subscription.unsubscribe()
                throw error
            } catch {
                // JetStream is away: the state machine asks again in a second.
            }
        }

        func next() async throws -> JetStreamMessage? {
            while true {
                if Task.isCancelled { return nil }
                let action = state.withLock { $0.readerWaiting(now: .now) }
                let limit: Duration
                switch action {
                case .pull(let batch):
                    let (expires, heartbeat) = state.withLock { ($0.expires, $0.idleHeartbeat) }
                    let body = PullConsumer.requestBody(batch: batch, expires: expires, idleHeartbeat: heartbeat)
                    try connection.publish(body, to: consumer.requestSubject, replyTo: subscription.subject)
                    continue
                case .wait(let duration):
                    limit = duration
                }
                switch await subscription.next(within: limit) {
                case .message(let message):
                    if let status = message.status, message.payload.isEmpty || status != 200 {
                        if status == 100 {
                            state.withLock { $0.heartbeatReceived(now: .now) }
                            continue
                        }
                        let pending = message.headers?[JetStream.Header.pendingMessages].flatMap { Int($0) }
                        let outcome = state.withLock {
                            $0.statusReceived(code: status, description: message.headers?.statusDescription ?? "", pendingMessages: pending, now: .now)
                        }
                        if case .fail(let error) = outcome {
                            try? subscription.unsubscribe()
                            throw error
                        }
                        if status == 503 { try await failUnlessConsumerExists() }
                        continue
                    }
                    guard let received = JetStreamMessage(message: message, connection: connection) else { continue }
                    state.withLock { $0.messageReceived(now: .now) }
                    return received
                case .timedOut:
                    _ = state.withLock { $0.waitTimedOut(now: .now) }
                case .ended:
                    return nil
                }
            }
        }
    }
}

extension PullConsumer {
    /// Messages as they come, with at most `maxMessages` requested and not yet taken (ADR-37
    /// `consume()`).
    ///
    /// - Parameters:
    ///   - maxMessages: the buffer: messages requested ahead of the reader.
    ///   - expires: how long each pull request lives on the server (at least 1 s).
    ///   - idleHeartbeat: how often a server with nothing to send says it is alive; by default
    ///     half of `expires`, between 0.5 s and 30 s.
    ///   - threshold: ask for more once at most this many are still owed; half the buffer by
    ///     default.
    /// - Throws: ``NATSError`` when the subscription cannot be made.
    public func consume(
        maxMessages: Int = 500,
        expires: Duration = .seconds(30),
        idleHeartbeat: Duration? = nil,
        threshold: Int? = nil
    ) throws(NATSError) -> PullConsumerMessages {
        guard maxMessages > 0 else { throw NATSError(.invalidArgument, "consume needs a buffer of at least one message") }
        let expires = max(expires, .seconds(1))
        let heartbeat = idleHeartbeat ?? min(.seconds(30), max(.milliseconds(500), expires / 2))
        let connection = jetStream.connection
        let subscription = try connection.subscribe(to: "\(connection.options.inboxPrefix).\(Nuid.next())")
        let state = PullConsumeState(maxMessages: maxMessages, threshold: threshold, expires: expires, idleHeartbeat: heartbeat)
        return PullConsumerMessages(run: .init(consumer: self, subscription: subscription, state: state))
    }
}
