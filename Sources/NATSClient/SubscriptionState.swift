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
        /// Consumers waiting for a message; each leaves alone when its task is cancelled.
        var waiters = WaiterQueue<NATSMessage?>()
        /// `drain` waiting until the consumer took everything (true) or its time ran out.
        var consumedWaiters = WaiterQueue<Bool>()
        /// No more messages will be added; the consumer drains what is queued, then ends.
        var finished = false
        var delivered: UInt64 = 0
        var dropped: UInt64 = 0
        /// Total messages after which the subscription ends (`UNSUB <sid> <max>`).
        var maximum: UInt64?
        /// Dropping since the last message that fit; reported once per such episode.
        var slow = false
        /// Why the server ended the subscription, if it did (a permissions violation).
        var error: NATSError?

        mutating func takeWaiters() -> [WaiterQueue<NATSMessage?>.Continuation] {
            waiters.removeAll()
        }

        /// The `drain` waiters to resume, once finished and emptied.
        mutating func takeConsumedWaitersIfDone() -> [WaiterQueue<Bool>.Continuation] {
            guard finished, queue.isEmpty, !consumedWaiters.isEmpty else { return [] }
            return consumedWaiters.removeAll()
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
        let (waiter, delivery): (WaiterQueue<NATSMessage?>.Continuation?, Delivery) = storage.withLock { state in
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
                state.takeConsumedWaitersIfDone().forEach { $0.resume(returning: true) }
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
        var handOver: (WaiterQueue<NATSMessage?>.Continuation, NATSMessage)?
        var moreHandOvers: [(WaiterQueue<NATSMessage?>.Continuation, NATSMessage)] = []
        var ended: [WaiterQueue<NATSMessage?>.Continuation] = []
        var consumed: [WaiterQueue<Bool>.Continuation] = []
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
                    consumed = state.takeConsumedWaitersIfDone()
                    result.reachedMaximum = true
                    return
                }
            }
        }
        if let (waiter, message) = handOver { waiter.resume(returning: message) }
        for (waiter, message) in moreHandOvers { waiter.resume(returning: message) }
        ended.forEach { $0.resume(returning: nil) }
        consumed.forEach { $0.resume(returning: true) }
        return result
    }

    /// Sets the total number of messages after which the subscription ends.
    /// Returns true when that many have already arrived.
    func setMaximum(_ maximum: UInt64) -> Bool {
        let (reached, waiters, consumed) = storage.withLock { state in
            state.maximum = maximum
            guard state.delivered >= maximum else { return (false, [WaiterQueue<NATSMessage?>.Continuation](), [WaiterQueue<Bool>.Continuation]()) }
            state.finished = true
            return (true, state.queue.isEmpty ? state.takeWaiters() : [], state.takeConsumedWaitersIfDone())
        }
        waiters.forEach { $0.resume(returning: nil) }
        consumed.forEach { $0.resume(returning: true) }
        return reached
    }

    /// The remaining count to send again with `UNSUB` after a reconnect, if a maximum is set.
    var remainingBeforeMaximum: UInt64? {
        storage.withLock { state in state.maximum.map { $0 > state.delivered ? $0 - state.delivered : 0 } }
    }

    /// Why the server ended the subscription, if it did.
    var error: NATSError? { storage.withLock { $0.error } }

    /// Ends the subscription: waiting consumers get `nil`. With `discardPending` queued
    /// messages are dropped too (unsubscribe); without it they are still delivered (drain, close).
    /// `error` is why, when the server ended it.
    func finish(discardPending: Bool, error: NATSError? = nil) {
        let (waiters, consumed) = storage.withLock { state in
            if !state.finished, state.error == nil { state.error = error }
            state.finished = true
            if discardPending {
                state.queue.removeAll()
                state.pendingBytes = 0
            }
            return (state.takeWaiters(), state.takeConsumedWaitersIfDone())
        }
        waiters.forEach { $0.resume(returning: nil) }
        consumed.forEach { $0.resume(returning: true) }
    }

    /// Waits until the subscription has ended and its consumer took every queued message
    /// (true), or `timeout` passed (false). For `drain`.
    func waitUntilConsumed(timeout: Duration, timer: DeadlineTimer) async -> Bool {
        let id = storage.withLock { $0.consumedWaiters.makeID() }
        let release: @Sendable () -> Void = { [self] in
            let waiter = storage.withLock { $0.consumedWaiters.resolve(id, with: false) }
            waiter?.resume(returning: false)
        }
        guard timeout > .zero, let token = timer.schedule(after: timeout, release) else {
            return storage.withLock { $0.finished && $0.queue.isEmpty }
        }
        defer { timer.cancel(token) }
        return await suspendAsWaiter { continuation in
            storage.withLock { state -> Bool? in
                if state.finished, state.queue.isEmpty {
                    state.consumedWaiters.forget(id)
                    return true
                }
                return state.consumedWaiters.add(id, continuation)
            }
        } cancel: {
            release()
        }
    }

    var isFinished: Bool { storage.withLock { $0.finished } }
    /// Consumers waiting for a message right now.
    var waiterCount: Int { storage.withLock { $0.waiters.count } }
    var droppedCount: UInt64 { storage.withLock { $0.dropped } }
    var deliveredCount: UInt64 { storage.withLock { $0.delivered } }
    var pendingCount: Int { storage.withLock { $0.queue.count } }
    var pendingBytes: Int { storage.withLock { $0.pendingBytes } }

    /// The next message, waiting for one if needed; `nil` once finished and drained, or when
    /// the calling task is cancelled.
    nonisolated(nonsending) func next() async -> NATSMessage? {
        if let ready = takeQueued() { return ready.message }
        // Each consumer waits under its own id: a cancelled one leaves, the others stay.
        let id = storage.withLock { $0.waiters.makeID() }
        return await suspendAsWaiter { continuation in
            let (ready, consumed) = storage.withLock { state -> (NATSMessage??, [WaiterQueue<Bool>.Continuation]) in
                if let message = state.queue.popFirst() {
                    state.pendingBytes -= message.size
                    state.waiters.forget(id)
                    return (.some(message), state.takeConsumedWaitersIfDone())
                }
                if state.finished {
                    state.waiters.forget(id)
                    return (.some(nil), [])
                }
                if let early = state.waiters.add(id, continuation) { return (.some(early), []) }
                return (.none, [])
            }
            consumed.forEach { $0.resume(returning: true) }
            return ready
        } cancel: { [self] in
            let waiter = storage.withLock { $0.waiters.resolve(id, with: nil) }
            waiter?.resume(returning: nil)
        }
    }

    /// The next message (waiting for one if needed) followed by whatever else is already
    /// queued, up to `maximum` in all, in order; empty once finished and drained, or when the
    /// calling task is cancelled.
    nonisolated(nonsending) func nextBatch(maximum: Int) async -> [NATSMessage] {
        guard let first = await next() else { return [] }
        guard maximum > 1 else { return [first] }
        let (batch, consumed) = storage.withLock { state in
            var batch = [first]
            batch.reserveCapacity(min(maximum, state.queue.count + 1))
            while batch.count < maximum, let message = state.queue.popFirst() {
                state.pendingBytes -= message.size
                batch.append(message)
            }
            return (batch, state.takeConsumedWaitersIfDone())
        }
        consumed.forEach { $0.resume(returning: true) }
        return batch
    }

    /// The first queued message if there is one, without waiting.
    func pollQueued() -> NATSMessage? {
        let (message, consumed) = storage.withLock { state -> (NATSMessage?, [WaiterQueue<Bool>.Continuation]) in
            guard let message = state.queue.popFirst() else { return (nil, []) }
            state.pendingBytes -= message.size
            return (message, state.takeConsumedWaitersIfDone())
        }
        consumed.forEach { $0.resume(returning: true) }
        return message
    }

    /// A queued message, or `.some(nil)` when finished and drained, or `nil` to wait.
    private func takeQueued() -> (message: NATSMessage?, Void)? {
        let (ready, consumed) = storage.withLock { state -> ((message: NATSMessage?, Void)?, [WaiterQueue<Bool>.Continuation]) in
            if let message = state.queue.popFirst() {
                state.pendingBytes -= message.size
                return ((message, ()), state.takeConsumedWaitersIfDone())
            }
            return (state.finished ? (nil, ()) : nil, [])
        }
        consumed.forEach { $0.resume(returning: true) }
        return ready
    }
}

