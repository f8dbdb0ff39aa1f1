import EnnioSync
import NATSProtocol
import Synchronization

/// Everything a connection is, shared by the user's handle (``NATSConnection``) and the
/// connection's threads.
///
/// ## How a connection works
/// - **One state machine** (``ConnectionStateMachine``) decides: status, reconnecting,
///   keep-alive, `PONG` waiters, subscriptions, what a new socket is told. It sits behind one
///   lock (`state`) with the requests' and flushes' promises. Every path — a user's call, the
///   I/O thread — calls one of its methods under that lock and carries out the returned action
///   after releasing it (writes are only ever *appended* to the outbound buffer under it).
/// - **Three threads** per connection, none of them in the cooperative pool:
///   - the I/O thread (`ConnectionCore+IO.swift`) connects, runs the handshake, reads and
///     parses, hands messages to subscriptions, answers `PING`s, runs the keep-alive, sleeps
///     between reconnect attempts and tears down at the end;
///   - the writer thread (``OutboundBuffer/runWriter()``) sends what publishers buffered;
///   - the timer thread (``DeadlineTimer``) ends the waits of requests and flushes whose time
///     is up; it starts on the first time limit and stops when idle.
/// - **Publishing** takes only the outbound buffer's lock: encode, and at most a write that
///   never blocks. Lock order: `state` before the buffer's lock, never the reverse.
/// - **Lifetimes.** The threads hold this core, not the user's handle: when the handle goes
///   away (and with it every subscription and iterator, which hold it), `abandon()` closes the
///   connection and every thread ends.
final class ConnectionCore: Sendable {
    let options: NATSOptions
    let outbound: OutboundBuffer
    let counters = StatisticsCounters()
    let broadcaster = EventBroadcaster()
    /// Time limits of requests and flushes.
    let timer = DeadlineTimer()
    /// Where replies to requests arrive: `_INBOX.<random>.` followed by a per-request token.
    let replyPrefix: String
    let clockOrigin = ContinuousClock.now
    /// The server's `max_payload` and whether it refuses headers, copied from its `INFO`
    /// whenever that changes, so that publishing does not take the state lock.
    let maxPayloadCache = Atomic<Int>(1024 * 1024)
    let headersRefused = Atomic<Bool>(false)
    /// Fulfilled when the first connection is made (or failed for good).
    let ready = Promise<Void, NATSError>()
    /// Fulfilled when everything is torn down.
    let closed = Promise<Void, NATSError>()
    /// Wakes the I/O thread from a sleep between reconnect attempts.
    let ioWakeUp = ConditionLock()
    /// Guarded by `ioWakeUp`.
    nonisolated(unsafe) var ioWakeUpRequested = false

    /// A request waiting for its reply, with the subject it was published to (a refused
    /// publish to that subject fails it at once).
    struct WaitingRequest: Sendable {
        let subject: String
        let reply: Promise<NATSMessage, NATSError>
    }

    struct Shared: Sendable {
        var machine: ConnectionStateMachine
        /// By reply token.
        var replies: [String: WaitingRequest] = [:]
        var nextReplyToken: UInt64 = 0
        var flushes: [UInt64: Promise<Void, NATSError>] = [:]
        var nextFlushID: UInt64 = 0
        /// A permissions violation that arrived while no flush waited: the next flush reports it.
        var unreportedRefusal: NATSError?
    }

    let state: Locked<Shared>

    init(options: NATSOptions, pool: ServerPool) {
        self.options = options
        let replyPrefix = "\(options.inboxPrefix).\(Nuid.next())."
        self.replyPrefix = replyPrefix
        self.outbound = OutboundBuffer(
            connectedLimit: options.writeBufferLimit,
            disconnectedLimit: options.allowReconnect ? options.reconnectBufferSize : 0
        )
        let machine = ConnectionStateMachine(pool: pool, policy: .init(options), replySubject: replyPrefix + "*", now: .zero)
        self.state = Locked(Shared(machine: machine))
    }

    /// Time on the connection's clock: since it was made.
    var now: Duration { ContinuousClock.now - clockOrigin }

    // MARK: - Observing

    var status: NATSConnection.Status { state.withLock { $0.machine.status } }
    var serverInfo: ServerInfo? { state.withLock { $0.machine.info } }
    var connectedServer: ServerAddress? { state.withLock { $0.machine.server } }
    var knownServers: [ServerAddress] { state.withLock { $0.machine.pool.servers } }
    var maxPayload: Int { state.withLock { $0.machine.info?.maxPayload ?? 1024 * 1024 } }
    var lastError: NATSError? { state.withLock { $0.machine.lastError } }

    var statistics: NATSStatistics {
        var statistics = counters.snapshot
        statistics.droppedOutboundMessages = outbound.droppedMessages
        return statistics
    }

    func events() -> AsyncStream<ConnectionEvent> {
        let initial: [ConnectionEvent] = state.withLock { shared in
            switch shared.machine.status {
            case .connected, .draining: return [.connected(server: shared.machine.server?.description ?? "")]
            case .closed: return [.closed]
            case .connecting, .reconnecting: return []
            }
        }
        return broadcaster.stream(initial: initial)
    }

    // MARK: - Publishing

    func publish(
        _ payload: some Collection<UInt8>,
        to subject: String,
        replyTo: String?,
        headers: NATSHeaders?
    ) throws(NATSError) {
        let result = payload.withContiguousStorageIfAvailable { bytes in
            Result { () throws(NATSError) in
                try publishBytes(UnsafeRawBufferPointer(bytes), to: subject, replyTo: replyTo, headers: headers)
            }
        }
        if let result { return try result.get() }
        try publish(Array(payload), to: subject, replyTo: replyTo, headers: headers)
    }

    func publish(_ payload: [UInt8], to subject: String, replyTo: String?, headers: NATSHeaders?) throws(NATSError) {
        try payload.withUnsafeBytes { bytes in
            Result { () throws(NATSError) in
                try publishBytes(bytes, to: subject, replyTo: replyTo, headers: headers)
            }
        }.get()
    }

    func publishWaitingForRoom(_ payload: [UInt8], to subject: String, replyTo: String?, headers: NATSHeaders?) async throws(NATSError) {
        while true {
            do {
                try publish(payload, to: subject, replyTo: replyTo, headers: headers)
                return
            } catch where error.code == .outboundBufferFull || error.code == .reconnectBufferFull {
                guard await outbound.waitForRoom() else {
                    if Task.isCancelled { throw NATSError(.cancelled, "the publishing task was cancelled while waiting for room") }
                    throw NATSError.closed()
                }
            }
        }
    }

    /// Checks and encodes a message straight into the outbound buffer.
    func publishBytes(
        _ payload: UnsafeRawBufferPointer,
        to subject: String,
        replyTo: String?,
        headers: NATSHeaders?
    ) throws(NATSError) {
        try checkPublishable(replyTo: replyTo, headers: headers)
        var headerBlock: [UInt8]?
        if let headers {
            var block: [UInt8] = []
            block.reserveCapacity(headers.encodedCount)
            headers.encode(into: &block)
            headerBlock = block
        }
        let size = (headerBlock?.count ?? 0) + payload.count
        let limit = maxPayloadCache.load(ordering: .relaxed)
        guard size <= limit else {
            throw NATSError(.maxPayloadExceeded, "message of \(size) bytes exceeds the server's max_payload of \(limit)")
        }
        var subject = subject
        let frameSize = size + subject.utf8.count + (replyTo?.utf8.count ?? 0) + 32
        try subject.withUTF8 { subjectBytes in
            Result { () throws(NATSError) in
                if let problem = Subject.problem(inPublishSubject: subjectBytes) {
                    throw NATSError.subject(SubjectError(problem, subject: String(decoding: subjectBytes, as: UTF8.self)))
                }
                guard var replyTo else {
                    try appendPublish(size: frameSize, subject: subjectBytes, replyTo: nil, headers: headerBlock, payload: payload)
                    return
                }
                try replyTo.withUTF8 { replyBytes in
                    Result { () throws(NATSError) in
                        try appendPublish(size: frameSize, subject: subjectBytes, replyTo: UnsafeRawBufferPointer(replyBytes), headers: headerBlock, payload: payload)
                    }
                }.get()
            }
        }.get()
        counters.sent(bytes: size)
    }

    func publish(
        _ payload: UnsafeRawBufferPointer,
        to subject: String,
        subjectIsValid: Bool,
        encodedHeaders: UnsafeRawBufferPointer
    ) throws(NATSError) {
        if !subjectIsValid {
            do {
                try Subject.validate(subject)
            } catch {
                throw NATSError.subject(error)
            }
        }
        if headersRefused.load(ordering: .relaxed) {
            throw NATSError(.headersNotSupported, "the server does not support headers")
        }
        let size = encodedHeaders.count + payload.count
        let limit = maxPayloadCache.load(ordering: .relaxed)
        guard size <= limit else {
            throw NATSError(.maxPayloadExceeded, "message of \(size) bytes exceeds the server's max_payload of \(limit)")
        }
        var subject = subject
        let frameSize = size + subject.utf8.count + 32
        try subject.withUTF8 { subjectBytes in
            Result { () throws(NATSError) in
                try outbound.appendPublish(size: frameSize, subject: UnsafeRawBufferPointer(subjectBytes), replyTo: nil, headers: encodedHeaders, payload: payload)
            }
        }.get()
        counters.sent(bytes: size)
    }

    private func appendPublish(
        size: Int,
        subject: UnsafeBufferPointer<UInt8>,
        replyTo: UnsafeRawBufferPointer?,
        headers: [UInt8]?,
        payload: UnsafeRawBufferPointer
    ) throws(NATSError) {
        guard let headers else {
            try outbound.appendPublish(size: size, subject: UnsafeRawBufferPointer(subject), replyTo: replyTo, headers: nil, payload: payload)
            return
        }
        try headers.withUnsafeBytes { headerBytes in
            Result { () throws(NATSError) in
                try outbound.appendPublish(size: size, subject: UnsafeRawBufferPointer(subject), replyTo: replyTo, headers: headerBytes, payload: payload)
            }
        }.get()
    }

    /// Checks what goes with a message (its subject is checked where its bytes are at hand).
    private func checkPublishable(replyTo: String?, headers: NATSHeaders?) throws(NATSError) {
        do {
            if let replyTo { try Subject.validate(replyTo) }
        } catch {
            throw NATSError.subject(error)
        }
        if let headers {
            if let field = headers.firstInvalidField {
                throw NATSError(.invalidHeaders, "header \(field.name.debugDescription) cannot be sent")
            }
            if headersRefused.load(ordering: .relaxed) {
                throw NATSError(.headersNotSupported, "the server does not support headers")
            }
        }
    }

    // MARK: - Subscribing

    func subscribe(to subject: String, queueGroup: String?, limits: PendingLimits) throws(NATSError) -> SubscriptionState {
        do {
            try Subject.validatePattern(subject)
            if let queueGroup { try Subject.validateQueueGroup(queueGroup) }
        } catch {
            throw NATSError.subject(error)
        }
        let subscription = try state.withLock { shared throws(NATSError) -> SubscriptionState in
            let (subscription, sendNow) = try shared.machine.subscribeRequested { sid in
                SubscriptionState(
                    sid: sid,
                    subject: subject,
                    queueGroup: queueGroup,
                    messageLimit: limits.messages,
                    byteLimit: limits.bytes
                )
            }
            guard sendNow else { return subscription }
            do throws(NATSError) {
                // Under the state lock, so that a socket lost meanwhile either sorts this SUB
                // out of its buffer or was lost before: never both this and the preamble.
                try outbound.append(size: subject.utf8.count + (queueGroup?.utf8.count ?? 0) + 32) { buffer in
                    ClientEncoder.subscribe(subject: subject, queueGroup: queueGroup, sid: subscription.sid, into: &buffer)
                }
            } catch {
                _ = shared.machine.subscriptionRemoved(subscription.sid)
                throw error
            }
            return subscription
        }
        outbound.kick()
        return subscription
    }

    /// Appends `UNSUB` under the state lock (best effort: a full buffer is sorted out by the
    /// next reconnect's preamble, which no longer lists the subscription).
    private func appendUnsubscribe(sid: UInt64, max: UInt64? = nil) {
        try? outbound.append(size: 48) { buffer in
            ClientEncoder.unsubscribe(sid: sid, max: max.map { Int($0) }, into: &buffer)
        }
    }

    func unsubscribe(_ subscription: SubscriptionState, after maximum: UInt64?) throws(NATSError) {
        if let maximum {
            let reached = subscription.setMaximum(maximum)
            try state.withLock { shared throws(NATSError) in
                guard shared.machine.subscription(subscription.sid) != nil else { return }
                guard shared.machine.status != .closed else { throw NATSError.closed() }
                if shared.machine.subscriptionLimited(subscription.sid) { appendUnsubscribe(sid: subscription.sid, max: maximum) }
                if reached { _ = shared.machine.subscriptionRemoved(subscription.sid) }
            }
        } else {
            state.withLock { shared in
                if shared.machine.subscriptionRemoved(subscription.sid) { appendUnsubscribe(sid: subscription.sid) }
            }
            subscription.finish(discardPending: true)
        }
        outbound.kick()
    }

    /// The last holder of a subscription let go of it: unsubscribe, if it is still live.
    func subscriptionDropped(_ subscription: SubscriptionState) {
        let wasLive = state.withLock { shared -> Bool in
            guard shared.machine.subscription(subscription.sid) != nil else { return false }
            if shared.machine.subscriptionRemoved(subscription.sid) { appendUnsubscribe(sid: subscription.sid) }
            return true
        }
        guard wasLive else { return }
        subscription.finish(discardPending: true)
        outbound.kick()
    }

    /// Stops the server sending to this subscription, waits until everything it already sent
    /// has arrived, then ends the sequence once the consumer has taken what is queued.
    func drain(_ subscription: SubscriptionState, timeout: Duration?) async throws {
        state.withLock { shared in
            if shared.machine.subscriptionDrainRequested(subscription.sid) { appendUnsubscribe(sid: subscription.sid) }
        }
        outbound.kick()
        try await flush(timeout: timeout)
        state.withLock { _ = $0.machine.subscriptionRemoved(subscription.sid) }
        subscription.finish(discardPending: false)
    }

    /// A subscription reached its maximum: the server already forgot it.
    func subscriptionEnded(_ sid: UInt64) {
        state.withLock { _ = $0.machine.subscriptionRemoved(sid) }
    }

    // MARK: - Flush

    func flush(timeout: Duration?) async throws {
        let (id, promise) = try state.withLock { shared throws(NATSError) -> (UInt64, Promise<Void, NATSError>) in
            if case .fail(let error) = shared.machine.flushRequested() { throw error }
            if let refusal = shared.unreportedRefusal {
                shared.unreportedRefusal = nil
                throw refusal
            }
            // The PING and its waiter go in together, under this lock: when the PING cannot be
            // queued no waiter is left behind, and waiters keep the order of their PINGs.
            try outbound.append(size: 6, urgent: true) { ClientEncoder.ping(into: &$0) }
            shared.nextFlushID += 1
            let id = shared.nextFlushID
            let promise = Promise<Void, NATSError>()
            shared.flushes[id] = promise
            shared.machine.pingQueued(flush: id)
            return (id, promise)
        }
        defer { _ = state.withLock { $0.flushes.removeValue(forKey: id) } }
        outbound.kick()
        let limit = timeout ?? options.flushTimeout
        try await promise.value(timeout: limit, timeoutError: NATSError(.timeout, "no PONG within \(limit)"), timer: timer)
    }

    // MARK: - Request/reply

    /// A request that is sent and waits for its reply.
    struct PendingRequest: Sendable {
        let core: ConnectionCore
        let token: String
        let subject: String
        let slot: Promise<NATSMessage, NATSError>

        /// Waits for the reply (at most `timeout`) and forgets the request.
        func reply(timeout: Duration) async throws -> NATSMessage {
            defer { core.forgetRequest(token) }
            let message = try await slot.value(
                timeout: timeout,
                timeoutError: NATSError(.timeout, "no reply on \(subject) within \(timeout)"),
                timer: core.timer
            )
            if message.status == 503, message.payload.isEmpty {
                throw NATSError(.noResponders, "no responders for \(subject)")
            }
            return message
        }
    }

    func forgetRequest(_ token: String) {
        _ = state.withLock { $0.replies.removeValue(forKey: token) }
    }

    /// Publishes a request now, in order with other publishes, without waiting for the reply.
    func startRequest(_ payload: some Collection<UInt8>, to subject: String, headers: NATSHeaders?) throws -> PendingRequest {
        let (token, reply) = try state.withLock { shared throws(NATSError) -> (String, Promise<NATSMessage, NATSError>) in
            let (sid, subscribeNow) = try shared.machine.replySubscriptionRequested()
            if subscribeNow {
                try outbound.append(size: replyPrefix.utf8.count + 32) { buffer in
                    ClientEncoder.subscribe(subject: replyPrefix + "*", sid: sid, into: &buffer)
                }
            }
            shared.nextReplyToken += 1
            let token = String(shared.nextReplyToken, radix: 36)
            let reply = Promise<NATSMessage, NATSError>()
            shared.replies[token] = WaitingRequest(subject: subject, reply: reply)
            return (token, reply)
        }
        do {
            try publish(payload, to: subject, replyTo: replyPrefix + token, headers: headers)
        } catch {
            forgetRequest(token)
            throw error
        }
        return PendingRequest(core: self, token: token, subject: subject, slot: reply)
    }

    // MARK: - Drain and close

    func drain(timeout: Duration?) async throws {
        let subscriptions = state.withLock { shared -> [SubscriptionState]? in
            guard let subscriptions = shared.machine.drainRequested() else { return nil }
            if shared.machine.isConnected {
                for subscription in subscriptions { appendUnsubscribe(sid: subscription.sid) }
            }
            return subscriptions
        }
        guard let subscriptions else {
            // A drain or close is under way: the same end, for every caller.
            await waitUntilClosed()
            return
        }
        outbound.kick()
        let limit = timeout ?? options.drainTimeout
        let deadline = ContinuousClock.now + limit
        var failure: (any Error)?
        do {
            try await flush(timeout: limit)
            state.withLock { shared in
                for subscription in subscriptions { _ = shared.machine.subscriptionRemoved(subscription.sid) }
            }
            for subscription in subscriptions { subscription.finish(discardPending: false) }
            for subscription in subscriptions {
                let remaining = deadline - ContinuousClock.now
                guard await subscription.waitUntilConsumed(timeout: remaining, timer: timer) else {
                    throw NATSError(.timeout, "consumers did not take their pending messages within \(limit)")
                }
            }
            try await flush(timeout: max(.milliseconds(1), deadline - ContinuousClock.now))
        } catch {
            failure = error
        }
        await close()
        if let failure { throw failure }
    }

    func close() async {
        requestClose()
        await waitUntilClosed()
    }

    /// The user's handle went away: close without waiting (the threads finish by themselves).
    func abandon() {
        requestClose()
    }

    private func requestClose() {
        let action = state.withLock { $0.machine.closeRequested(now: now) }
        switch action {
        case .flushThenCloseTransport:
            outbound.beginClose(deadline: monotonicNanoseconds() + nanoseconds(options.closeTimeout))
        case .wakeIOThread:
            wakeIOThread()
        case .awaitHandshake, .none:
            break
        }
    }

    /// Returns when the teardown is over, or at once for a cancelled caller.
    private func waitUntilClosed() async {
        _ = try? await closed.value(cancelled: { NATSError(.cancelled, "the waiting task was cancelled") })
    }

    func wakeIOThread() {
        ioWakeUp.withLock {
            ioWakeUpRequested = true
            ioWakeUp.signal()
        }
    }
}

extension Promise where Failure == NATSError {
    /// Waits for the result at most `timeout`; then this waiter throws `timeoutError` (the
    /// promise itself stays open for others).
    func value(timeout: Duration, timeoutError: NATSError, timer: DeadlineTimer) async throws(NATSError) -> Success {
        if let ready = result { return try ready.get() }
        let waiter = makeWaiterID()
        // A stopped timer belongs to a closed connection: nothing will come.
        guard let token = timer.schedule(after: timeout, { [self] in release(waiter: waiter, with: timeoutError) }) else {
            throw NATSError.closed()
        }
        defer { timer.cancel(token) }
        return try await value(waiter: waiter, cancelled: { NATSError(.cancelled, "the waiting task was cancelled") })
    }
}
