import EnnioSync
import Synchronization

/// The receiving side of one subscription: messages the reader thread delivered and the
/// consumer has not taken yet, bounded by the pending limits.
///
/// The reader thread never waits here: past either limit a message is dropped and counted.
final class SubscriptionState: Sendable {
    let sid: UInt64
    let subject: String
    let queueGroup: String?
    let messageLimit: Int
    let byteLimit: Int

    private struct Storage {
        var queue = MessageQueue<NATSMessage>()
        var pendingBytes = 0
        var waiters = MessageQueue<CheckedContinuation<NATSMessage?, Never>>()
        /// No more messages will be added; the consumer drains what is queued, then ends.
        var finished = false
        var delivered: UInt64 = 0
        var dropped: UInt64 = 0
        /// Total messages after which the subscription ends (`UNSUB <sid> <max>`).
        var maximum: UInt64?
        /// Dropping since the last message that fit; reported once per such episode.
        var slow = false

        mutating func takeWaiters() -> [CheckedContinuation<NATSMessage?, Never>] {
            var taken: [CheckedContinuation<NATSMessage?, Never>] = []
            while let waiter = waiters.popFirst() { taken.append(waiter) }
            return taken
        }
    }

    private let storage = Locked(Storage())

    init(sid: UInt64, subject: String, queueGroup: String?, messageLimit: Int, byteLimit: Int) {
        self.sid = sid
        self.subject = subject
        self.queueGroup = queueGroup
        self.messageLimit = messageLimit
        self.byteLimit = byteLimit
    }

    /// What `deliver` did with a message.
    enum Delivery: Equatable {
        case queued
        /// Queued, and it was the last one allowed by the maximum: unregister the subscription.
        case queuedLast
        /// Over a pending limit: dropped and counted. `firstInEpisode` is true for the first
        /// drop after a message that fitted, so a slow consumer is reported once, not per message.
        case dropped(firstInEpisode: Bool)
        /// The subscription already ended.
        case ignored
    }

    /// Hands a message to the consumer, or queues it, or drops it when over the limits.
    func deliver(_ message: NATSMessage) -> Delivery {
        let (waiter, delivery): (CheckedContinuation<NATSMessage?, Never>?, Delivery) = storage.withLock { state in
            guard !state.finished else { return (nil, .ignored) }
            let size = message.size
            let waiter = state.waiters.popFirst()
            if waiter == nil {
                guard state.queue.count < messageLimit, state.pendingBytes + size <= byteLimit else {
                    state.dropped += 1
                    defer { state.slow = true }
                    return (nil, .dropped(firstInEpisode: !state.slow))
                }
                state.slow = false
                state.queue.append(message)
                state.pendingBytes += size
            }
            state.delivered += 1
            if let maximum = state.maximum, state.delivered >= maximum {
                state.finished = true
                let rest = state.queue.isEmpty ? state.takeWaiters() : []
                rest.forEach { $0.resume(returning: nil) }
                return (waiter, .queuedLast)
            }
            return (waiter, .queued)
        }
        waiter?.resume(returning: message)
        return delivery
    }

    /// What `deliver(_:)` did with a batch.
    struct BatchDelivery {
        /// The maximum was reached: unregister the subscription.
        var reachedMaximum = false
        /// Some were dropped, the first of them after a message that fitted (report it once).
        var startedDropping = false
    }

    /// Hands several messages, in order, to the consumer — the same as calling
    /// `deliver(_:)` for each, with the lock taken once and at most one wake-up per waiting
    /// consumer.
    /// The messages are moved out of `messages`, which is left holding `nil`s.
    func deliver(contentsOf messages: inout [NATSMessage?]) -> BatchDelivery {
        var result = BatchDelivery()
        var handOver: (CheckedContinuation<NATSMessage?, Never>, NATSMessage)?
        var moreHandOvers: [(CheckedContinuation<NATSMessage?, Never>, NATSMessage)] = []
        var ended: [CheckedContinuation<NATSMessage?, Never>] = []
        storage.withLock { state in
            for index in messages.indices {
                guard !state.finished else { return }
                guard let message = messages[index].take() else { continue }
                let size = message.size
                if let waiter = state.waiters.popFirst() {
                    if handOver == nil { handOver = (waiter, message) } else { moreHandOvers.append((waiter, message)) }
                } else {
                    guard state.queue.count < messageLimit, state.pendingBytes + size <= byteLimit else {
                        state.dropped += 1
                        if !state.slow { result.startedDropping = true }
                        state.slow = true
                        continue
                    }
                    state.slow = false
                    state.queue.append(message)
                    state.pendingBytes += size
                }
                state.delivered += 1
                if let maximum = state.maximum, state.delivered >= maximum {
                    state.finished = true
                    if state.queue.isEmpty { ended = state.takeWaiters() }
                    result.reachedMaximum = true
                    return
                }
            }
        }
        if let (waiter, message) = handOver { waiter.resume(returning: message) }
        for (waiter, message) in moreHandOvers { waiter.resume(returning: message) }
        ended.forEach { $0.resume(returning: nil) }
        return result
    }

    /// Sets the total number of messages after which the subscription ends.
    /// Returns true when that many have already arrived.
    func setMaximum(_ maximum: UInt64) -> Bool {
        let (reached, waiters) = storage.withLock { state -> (Bool, [CheckedContinuation<NATSMessage?, Never>]) in
            state.maximum = maximum
            guard state.delivered >= maximum else { return (false, []) }
            state.finished = true
            return (true, state.queue.isEmpty ? state.takeWaiters() : [])
        }
        waiters.forEach { $0.resume(returning: nil) }
        return reached
    }

    /// The remaining count to send again with `UNSUB` after a reconnect, if a maximum is set.
    var remainingBeforeMaximum: UInt64? {
        storage.withLock { state in state.maximum.map { $0 > state.delivered ? $0 - state.delivered : 0 } }
    }

    /// Ends the subscription: waiting consumers get `nil`. With `discardPending` queued
    /// messages are dropped too (unsubscribe); without it they are still delivered (drain, close).
    func finish(discardPending: Bool) {
        let waiters = storage.withLock { state in
            state.finished = true
            if discardPending {
                state.queue.removeAll()
                state.pendingBytes = 0
            }
            return state.takeWaiters()
        }
        waiters.forEach { $0.resume(returning: nil) }
    }

    var isFinished: Bool { storage.withLock { $0.finished } }
    var droppedCount: UInt64 { storage.withLock { $0.dropped } }
    var deliveredCount: UInt64 { storage.withLock { $0.delivered } }
    var pendingCount: Int { storage.withLock { $0.queue.count } }
    var pendingBytes: Int { storage.withLock { $0.pendingBytes } }

    /// The next message, waiting for one if needed; `nil` once finished and drained, or when
    /// the calling task is cancelled.
    nonisolated(nonsending) func next() async -> NATSMessage? {
        if let ready = takeQueued() { return ready.message }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<NATSMessage?, Never>) in
                let ready: NATSMessage?? = storage.withLock { state in
                    if let message = state.queue.popFirst() {
                        state.pendingBytes -= message.size
                        return .some(message)
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiters.append(continuation)
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiters = storage.withLock { $0.takeWaiters() }
            waiters.forEach { $0.resume(returning: nil) }
        }
    }

    /// The next message (waiting for one if needed) followed by whatever else is already
    /// queued, up to `maximum` in all, in order; empty once finished and drained, or when the
    /// calling task is cancelled.
    nonisolated(nonsending) func nextBatch(maximum: Int) async -> [NATSMessage] {
        guard let first = await next() else { return [] }
        guard maximum > 1 else { return [first] }
        return storage.withLock { state in
            var batch = [first]
            batch.reserveCapacity(min(maximum, state.queue.count + 1))
            while batch.count < maximum, let message = state.queue.popFirst() {
                state.pendingBytes -= message.size
                batch.append(message)
            }
            return batch
        }
    }

    /// The first queued message if there is one, without waiting.
    func pollQueued() -> NATSMessage? {
        storage.withLock { state in
            guard let message = state.queue.popFirst() else { return nil }
            state.pendingBytes -= message.size
            return message
        }
    }

    /// A queued message, or `.some(nil)` when finished and drained, or `nil` to wait.
    private func takeQueued() -> (message: NATSMessage?, Void)? {
        storage.withLock { state in
            if let message = state.queue.popFirst() {
                state.pendingBytes -= message.size
                return (message, ())
            }
            return state.finished ? (nil, ()) : nil
        }
    }
}

