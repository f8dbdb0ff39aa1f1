import NATSProtocol

/// What a connection is doing and what it must do next, as a value: no sockets, no threads, no
/// clock of its own (`now` is the time since the connection was made, an input).
///
/// It owns the connection's status, the draining and closing requests, the server pool and
/// the reconnect policy, the keep-alive, the waiters for `PONG`s (in the order their `PING`s
/// went into the outbound stream) and the subscriptions, so it alone decides what may be
/// written to a new socket: `SUB` for each live subscription, then whatever whole messages
/// were buffered. Its methods are named after what happened (`handshakeSucceeded`,
/// `transportClosed`, `pongReceived`, `closeRequested`, …) and return what to do; the
/// connection's threads (see `NATSConnection+IO.swift`) call them under one lock and carry the
/// actions out after releasing it.
///
/// The phases:
///
///     connecting ──handshakeSucceeded──▶ connected ──transportClosed──▶ disconnected
///         │  ▲                              ▲                              │   ▲
///         │  └─handshakeFailed (next seed)  └──────handshakeSucceeded── reconnecting
///         │                                                             (nextStep → connect)
///         └──── every seed failed, closeRequested, no reconnect, pool used up ────▶ closed
///
/// `draining` is not a phase: a drain requested while disconnected stays requested through
/// the reconnect (and no new subscription is accepted meanwhile).
struct ConnectionStateMachine: Sendable {
    enum Phase: Sendable, Hashable {
        /// The first connection is being made, to each seed server in turn.
        case connecting
        /// A socket is attached and the read loop runs.
        case connected
        /// The socket was lost; the next attempt waits for its time.
        case disconnected
        /// A reconnect attempt's handshake is under way.
        case reconnecting
        case closed
    }

    /// What the policy needs from ``NATSOptions``.
    struct Policy: Sendable, Hashable {
        var allowReconnect = true
        var maxReconnectAttempts = 60
        var reconnectWait: Duration = .seconds(2)
        var pingInterval: Duration = .seconds(120)
        var maxPingsOutstanding = 2
        var ignoreDiscoveredServers = false
        var abortOnRepeatedAuthorizationError = true

        init() {}

        init(_ options: NATSOptions) {
            allowReconnect = options.allowReconnect
            maxReconnectAttempts = options.maxReconnectAttempts
            reconnectWait = options.reconnectWait
            pingInterval = options.pingInterval
            maxPingsOutstanding = options.maxPingsOutstanding
            ignoreDiscoveredServers = options.ignoreDiscoveredServers
            abortOnRepeatedAuthorizationError = options.abortOnRepeatedAuthorizationError
        }
    }

    /// One subscription as the machine knows it.
    struct Subscription: Sendable {
        let state: SubscriptionState
        /// Being drained: its `UNSUB` went out, so a new server is not told of it again.
        var draining = false
        var sid: UInt64 { state.sid }
    }

    let policy: Policy
    private(set) var phase: Phase = .connecting
    private(set) var draining = false
    /// `close()` was called (or the connection was dropped); teardown follows.
    private(set) var closeRequested = false
    private(set) var pool: ServerPool
    /// The server of the current (or last) connection.
    private(set) var server: ServerAddress?
    /// Its latest `INFO`.
    private(set) var info: ServerInfo?
    private(set) var keepAlive: KeepAlive
    /// Why the connection closed, if an error closed it.
    private(set) var lastError: NATSError?
    /// One entry per `PING` in the outbound stream, in order: a flush's id, or `nil` for a
    /// keep-alive `PING` nobody awaits.
    private var pongWaiters = MessageQueue<UInt64?>()
    private(set) var subscriptions: [UInt64: Subscription] = [:]
    private var nextSid: UInt64 = 1
    /// The shared subscription requests get their replies on, once the first request made it.
    private(set) var replySid: UInt64?
    private let replySubject: String
    /// Seeds not tried yet by the first connection, and the most telling failure so far.
    private var untriedSeeds: [ServerAddress]
    private var firstConnectError: NATSError?
    /// The server the next reconnect attempt goes to, once chosen (it may have to wait).
    private var candidate: ServerAddress?
    /// Why the last socket was lost.
    private var lastDisconnect: NATSError?
    /// Set when the machine has decided to close with this error; `nextStep` finishes.
    private var finishReason: NATSError??

    init(pool: ServerPool, policy: Policy, replySubject: String, now: Duration) {
        self.pool = pool
        self.policy = policy
        self.replySubject = replySubject
        self.untriedSeeds = pool.servers
        self.keepAlive = KeepAlive(interval: policy.pingInterval, maximumOutstanding: policy.maxPingsOutstanding, now: now)
    }

    /// The status users see.
    var status: NATSConnection.Status {
        switch phase {
        case .closed: .closed
        case _ where draining: .draining
        case .connecting: .connecting
        case .connected: .connected
        case .disconnected, .reconnecting: .reconnecting
        }
    }

    /// Whether messages and `SUB`s go to a socket now (rather than to the reconnect buffer).
    var isConnected: Bool { phase == .connected }

    /// Number of `PING`s whose `PONG` is awaited.
    var outstandingPings: Int { pongWaiters.count }

    // MARK: - Connecting

    /// What the I/O thread does when it has no socket.
    enum NextStep: Sendable, Hashable {
        /// Open a connection to this server and run the handshake.
        case connect(ServerAddress)
        /// Nothing to do before this instant (or until woken by a close).
        case wait(until: Duration)
        /// Tear down for good, with the error that ended the connection, if any.
        case finish(NATSError?)
    }

    /// The next step when there is no socket. `jitter` is the random extra wait before a
    /// reconnect attempt (an input, so that tests choose it).
    mutating func nextStep(now: Duration, jitter: Duration = .zero) -> NextStep {
        if let reason = finishReason {
            phase = .closed
            if let reason, lastError == nil { lastError = reason }
            return .finish(reason)
        }
        if closeRequested {
            phase = .closed
            return .finish(nil)
        }
        switch phase {
        case .connecting:
            guard let next = untriedSeeds.first else {
                let error = firstConnectError ?? NATSError(.noServers, "no server to connect to")
                return finish(error)
            }
            pool.recordAttempt(next, at: now)
            return .connect(next)
        case .disconnected, .reconnecting:
            if candidate == nil {
                guard let entry = pool.nextForReconnect(maximumAttempts: policy.maxReconnectAttempts) else {
                    return finish(NATSError(.connectionClosed, "could not reconnect to any server", underlying: lastDisconnect))
                }
                candidate = entry.address
            }
            let next = candidate!
            if let last = pool.entries.first(where: { $0.address == next })?.lastAttempt {
                let due = last + policy.reconnectWait + jitter
                if due > now { return .wait(until: due) }
            }
            candidate = nil
            phase = .reconnecting
            pool.recordAttempt(next, at: now)
            return .connect(next)
        case .connected:
            // The read loop owns the connected phase; nothing to do without a socket.
            return .wait(until: now + policy.pingInterval)
        case .closed:
            return .finish(nil)
        }
    }

    private mutating func finish(_ error: NATSError?) -> NextStep {
        phase = .closed
        if let error, lastError == nil { lastError = error }
        return .finish(error)
    }

    /// What to do with a socket whose handshake just succeeded.
    enum AttachAction: Sendable {
        /// Hand the socket to the writer with this preamble (`SUB`s) before anything buffered,
        /// announce `event`, then read. `discovered`: servers the `INFO` added to the pool.
        case attach(preamble: [UInt8], event: ConnectionEvent, discovered: [ServerAddress])
        /// The connection was closed meanwhile: close the socket.
        case abandon
    }

    mutating func handshakeSucceeded(server: ServerAddress, info: ServerInfo, now: Duration) -> AttachAction {
        guard !closeRequested, phase != .closed else { return .abandon }
        let event: ConnectionEvent = phase == .connecting ? .connected(server: server.description) : .reconnected(server: server.description)
        phase = .connected
        self.server = server
        self.info = info
        untriedSeeds.removeAll()
        pool.recordSuccess(server)
        keepAlive = KeepAlive(interval: policy.pingInterval, maximumOutstanding: policy.maxPingsOutstanding, now: now)
        let discovered = discover(from: info)
        return .attach(preamble: resubscribePreamble(), event: event, discovered: discovered)
    }

    mutating func handshakeFailed(server: ServerAddress, error: NATSError, now: Duration) {
        pool.recordFailure(server)
        if error.code == .authorizationViolation, policy.abortOnRepeatedAuthorizationError, pool.recordAuthorizationFailure(server) {
            lastDisconnect = error
        }
        switch phase {
        case .connecting:
            untriedSeeds.removeAll { $0 == server }
            // The most telling failure: a refusal of the credentials beats "unreachable".
            if firstConnectError?.code != .authorizationViolation || error.code == .authorizationViolation {
                firstConnectError = error
            }
        case .reconnecting:
            phase = .disconnected
            lastDisconnect = error
        case .connected, .disconnected, .closed:
            break
        }
    }

    /// `SUB` (and `UNSUB <max>` for the remaining count) for every live subscription, then
    /// the shared reply subscription: what a new server is told before anything buffered.
    func resubscribePreamble() -> [UInt8] {
        var preamble: [UInt8] = []
        for subscription in subscriptions.values.sorted(by: { $0.sid < $1.sid }) where !subscription.draining {
            let state = subscription.state
            ClientEncoder.subscribe(subject: state.subject, queueGroup: state.queueGroup, sid: state.sid, into: &preamble)
            if let remaining = state.remainingBeforeMaximum {
                ClientEncoder.unsubscribe(sid: state.sid, max: Int(remaining), into: &preamble)
            }
        }
        if let replySid {
            ClientEncoder.subscribe(subject: replySubject, sid: replySid, into: &preamble)
        }
        return preamble
    }

    // MARK: - While connected

    /// What to do after the read loop ended.
    struct ClosedAction: Sendable, Hashable {
        /// Flushes whose `PING` went out on the lost socket: they fail with `.disconnected`.
        var failedFlushes: [UInt64] = []
        /// To announce (`.disconnected` with the reason), if anyone should hear of it.
        var event: ConnectionEvent?
    }

    /// The socket is gone (read error, end of stream, stale, lame duck, protocol violation, a
    /// close). Call before detaching it from the writer, so that no `SUB` is written for it
    /// after its buffer was sorted; `pingsKept` is then known only after the detach — pass it
    /// to ``pingsDropped(keeping:)``.
    mutating func transportClosed(reason: NATSError) -> ClosedAction {
        guard phase == .connected else { return ClosedAction() }
        if closeRequested {
            phase = .disconnected
            return ClosedAction()
        }
        lastDisconnect = reason
        guard policy.allowReconnect else {
            phase = .disconnected
            finishReason = .some(reason)
            return ClosedAction(event: .disconnected(reason: reason.description))
        }
        phase = .disconnected
        if let server { pool.moveToBack(server) }
        return ClosedAction(event: .disconnected(reason: reason.description))
    }

    /// The writer let go of the lost socket and kept `kept` `PING`s for the next one (the
    /// last `kept` in the stream); every earlier one is lost, and its flush fails.
    mutating func pingsDropped(keeping kept: Int) -> [UInt64] {
        var failed: [UInt64] = []
        while pongWaiters.count > kept, let waiter = pongWaiters.popFirst() {
            if let waiter { failed.append(waiter) }
        }
        return failed
    }

    /// A flush wants a `PING`.
    enum FlushDecision: Sendable, Hashable {
        /// Append a `PING`; if that works, call ``pingQueued(flush:)``.
        case queuePing
        case fail(NATSError)
    }

    func flushRequested() -> FlushDecision {
        if phase == .closed || closeRequested { return .fail(.closed()) }
        return .queuePing
    }

    /// A `PING` was appended to the outbound stream for `flush` (`nil`: keep-alive). Call under
    /// the same lock as the append, so that waiters keep the order of their `PING`s.
    mutating func pingQueued(flush: UInt64?) {
        pongWaiters.append(flush)
    }

    /// A `PONG` arrived; returns the flush it completes, if one waits for it.
    mutating func pongReceived() -> UInt64? {
        keepAlive.pongReceived()
        return pongWaiters.popFirst() ?? nil
    }

    /// What the keep-alive calls for.
    enum KeepAliveDecision: Sendable, Hashable {
        case none
        /// Append a `PING`, then ``pingQueued(flush:)`` with `nil`.
        case sendPing
        /// Too many `PING`s unanswered: drop the socket (and reconnect).
        case closeTransport(NATSError)
    }

    mutating func keepAliveTimerFired(now: Duration) -> KeepAliveDecision {
        guard phase == .connected else { return .none }
        switch keepAlive.tick(now: now) {
        case .wait: return .none
        case .sendPing: return .sendPing
        case .staleConnection:
            return .closeTransport(NATSError(.staleConnection, "no PONG for \(policy.maxPingsOutstanding) keep-alive PINGs"))
        }
    }

    /// How long the read loop may block before the keep-alive has something to do.
    func timeUntilKeepAlive(now: Duration) -> Duration {
        keepAlive.timeUntilDeadline(now: now)
    }

    /// What an asynchronous `INFO` calls for.
    struct InfoAction: Sendable {
        var discovered: [ServerAddress] = []
        /// The server is in lame duck mode and others exist: drop the socket (and reconnect).
        var closeTransport: NATSError?
        var lameDuck = false
    }

    mutating func infoReceived(_ info: ServerInfo) -> InfoAction {
        self.info = info
        var action = InfoAction(discovered: discover(from: info))
        if info.lameDuckMode == true {
            action.lameDuck = true
            if pool.servers.contains(where: { $0 != server }) {
                action.closeTransport = NATSError(.disconnected, "\(server?.description ?? "the server") entered lame duck mode")
            }
        }
        return action
    }

    private mutating func discover(from info: ServerInfo) -> [ServerAddress] {
        guard !policy.ignoreDiscoveredServers, let urls = info.connectURLs, !urls.isEmpty else { return [] }
        return pool.addDiscovered(urls, credentialsFrom: server)
    }

    /// What a `-ERR` calls for.
    enum ServerErrorAction: Sendable, Hashable {
        /// The server refused one operation (a permissions violation) and keeps the connection.
        case report(NATSError)
        /// The server closes the connection after this error.
        case closeTransport(NATSError)
    }

    func serverErrorReceived(_ text: String) -> ServerErrorAction {
        let error = ConnectionCore.error(fromServer: text)
        return error.code == .permissionViolation ? .report(error) : .closeTransport(error)
    }

    // MARK: - Requests from users

    /// What `close()` must do.
    enum CloseAction: Sendable, Hashable {
        /// Already closed (or closing): just wait for the end.
        case none
        /// Connected: let the writer send what is buffered, then shut the socket down.
        case flushThenCloseTransport
        /// Waiting to reconnect: wake the I/O thread, which finishes.
        case wakeIOThread
        /// A handshake is under way; the I/O thread abandons it when it returns.
        case awaitHandshake
    }

    mutating func closeRequested(now: Duration) -> CloseAction {
        guard !closeRequested, phase != .closed else { return .none }
        closeRequested = true
        switch phase {
        case .connected: return .flushThenCloseTransport
        case .disconnected: return .wakeIOThread
        case .connecting, .reconnecting: return .awaitHandshake
        case .closed: return .none
        }
    }

    /// `drain()`: returns the subscriptions to drain, or `nil` when a drain or close is
    /// already under way (or over).
    mutating func drainRequested() -> [SubscriptionState]? {
        guard !draining, !closeRequested, phase != .closed else { return nil }
        draining = true
        for sid in subscriptions.keys { subscriptions[sid]?.draining = true }
        return subscriptions.values.sorted { $0.sid < $1.sid }.map(\.state)
    }

    /// A new subscription's id; `sendNow` says whether to append its `SUB` (when connected; a
    /// new server hears of it in the preamble otherwise).
    mutating func subscribeRequested(
        makeState: (UInt64) -> SubscriptionState
    ) throws(NATSError) -> (state: SubscriptionState, sendNow: Bool) {
        guard phase != .closed, !closeRequested else { throw NATSError.closed() }
        guard !draining else { throw NATSError(.connectionDraining, "the connection is draining: no new subscriptions") }
        let sid = nextSid
        nextSid += 1
        let state = makeState(sid)
        subscriptions[sid] = Subscription(state: state)
        return (state, isConnected)
    }

    /// A subscription is being drained by itself: its `UNSUB` goes out now, so a new server is
    /// not told of it again. Returns whether to append the `UNSUB` (connected).
    mutating func subscriptionDrainRequested(_ sid: UInt64) -> Bool {
        guard subscriptions[sid] != nil else { return false }
        subscriptions[sid]?.draining = true
        return isConnected
    }

    /// The subscription ended (unsubscribed, drained, its maximum reached). Returns whether to
    /// append an `UNSUB` (connected).
    mutating func subscriptionRemoved(_ sid: UInt64) -> Bool {
        subscriptions.removeValue(forKey: sid) != nil && isConnected
    }

    /// `UNSUB <sid> <max>`: the subscription stays until the maximum is reached. Returns
    /// whether to append the `UNSUB` (connected; the preamble carries the remaining count
    /// otherwise).
    func subscriptionLimited(_ sid: UInt64) -> Bool {
        subscriptions[sid] != nil && isConnected
    }

    func subscription(_ sid: UInt64) -> SubscriptionState? {
        subscriptions[sid]?.state
    }

    /// The reply subscription's id for a request. `subscribeNow` is true the first time, when
    /// its `SUB` must be appended (connected; the preamble carries it otherwise).
    mutating func replySubscriptionRequested() throws(NATSError) -> (sid: UInt64, subscribeNow: Bool) {
        guard phase != .closed, !closeRequested else { throw NATSError.closed() }
        if let replySid { return (replySid, false) }
        let sid = nextSid
        nextSid += 1
        replySid = sid
        return (sid, isConnected)
    }

    /// The server refused a subscription (a permissions violation; it keeps the connection but
    /// never registered the `SUB`): every subscription on that subject and queue group ends,
    /// and none is sent to a new server. `replySubscription` says the shared reply
    /// subscription was the one refused: its requests fail, and the next request subscribes
    /// again.
    mutating func subscriptionRefused(subject: String, queueGroup: String?) -> (subscriptions: [SubscriptionState], replySubscription: Bool) {
        let refused = subscriptions.values
            .filter { $0.state.subject == subject && $0.state.queueGroup == queueGroup }
            .sorted { $0.sid < $1.sid }
        for subscription in refused { subscriptions.removeValue(forKey: subscription.sid) }
        let replySubscription = replySid != nil && queueGroup == nil && subject == replySubject
        if replySubscription { replySid = nil }
        return (refused.map(\.state), replySubscription)
    }

    /// Everything that still waits, taken out at teardown: subscriptions to end and flushes to fail.
    mutating func takeEverything() -> (subscriptions: [SubscriptionState], flushes: [UInt64]) {
        phase = .closed
        let subscriptions = self.subscriptions.values.map(\.state)
        self.subscriptions.removeAll()
        var flushes: [UInt64] = []
        while let waiter = pongWaiters.popFirst() {
            if let waiter { flushes.append(waiter) }
        }
        return (subscriptions, flushes)
    }
}
