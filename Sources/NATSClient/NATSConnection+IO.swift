import Foundation
import Glibc
import NATSProtocol

/// The connection's I/O thread: handshake, reading, keep-alive and reconnecting.
extension NATSConnection {
    /// A socket that completed the handshake, with the parser that holds any bytes read past it.
    struct Session {
        var socket: any Transport
        var parser: ProtocolParser
        var info: ServerInfo
        var server: ServerAddress
    }

    /// Why the read loop stopped.
    enum Interruption {
        case failed(NATSError)
        case lameDuck
    }

    func start() async throws {
        let ready = OneShot<Void>()
        let reader = Thread { [self] in runIOThread(ready: ready) }
        reader.name = "nats-reader"
        reader.start()
        let writer = Thread { [outbound] in outbound.runWriter() }
        writer.name = "nats-writer"
        writer.start()
        try await ready.value()
    }

    var now: Duration { ContinuousClock.now - clockOrigin }

    private func runIOThread(ready: OneShot<Void>) {
        var session: Session
        do {
            session = try establishFirst()
        } catch {
            finishClosing(error: error)
            ready.fulfil(.failure(error))
            return
        }
        attach(session, preamble: [])
        broadcaster.emit(.connected(server: session.server.description))
        discover(from: session.info)
        ready.fulfil(.success(()))

        while true {
            let interruption = readUntilInterrupted(&session)
            session.socket.shutdown()
            let unsentPings = outbound.detach()
            session.socket.close()
            if status == .closed {
                finishClosing(error: nil)
                return
            }
            let reason: NATSError
            switch interruption {
            case .failed(let error): reason = error
            case .lameDuck: reason = NATSError(.disconnected, "\(session.server) entered lame duck mode")
            }
            guard options.allowReconnect else {
                finishClosing(error: reason)
                return
            }
            enterReconnecting(reason: reason, unsentPings: unsentPings, leaving: session.server)
            guard let next = reconnect() else {
                finishClosing(error: status == .closed ? nil : NATSError(.connectionClosed, "could not reconnect to any server", underlying: reason))
                return
            }
            session = next
            attach(session, preamble: resubscribePreamble())
            counters.reconnects.add(1, ordering: .relaxed)
            broadcaster.emit(.reconnected(server: session.server.description))
            discover(from: session.info)
        }
    }

    private func establishFirst() throws(NATSError) -> Session {
        let servers = state.withLock { $0.pool.servers }
        var lastError = NATSError(.noServers, "no server to connect to")
        for server in servers {
            do {
                let session = try handshake(with: server)
                state.withLock { $0.pool.recordAttempt(server, at: .now) }
                return session
            } catch {
                state.withLock { $0.pool.recordFailure(server) }
                // Report the most telling failure: a refusal of credentials beats "unreachable".
                if lastError.code != .authorizationViolation || error.code == .authorizationViolation { lastError = error }
            }
        }
        throw lastError
    }

    private func attach(_ session: Session, preamble: [UInt8]) {
        let now = self.now
        let closed = state.withLock { state -> Bool in
            guard state.status != .closed else { return true }
            state.socket = session.socket
            state.info = session.info
            cacheLimits(from: session.info)
            state.server = session.server
            state.status = state.status == .draining ? .draining : .connected
            state.keepAlive = KeepAlive(interval: options.pingInterval, maximumOutstanding: options.maxPingsOutstanding, now: now)
            return false
        }
        if closed {
            // close() ran during the handshake; the read loop will end at once.
            session.socket.shutdown()
        }
        outbound.attach(session.socket, preamble: preamble)
    }

    /// `SUB` (and `UNSUB <max>` for the remaining count) for every live subscription.
    private func resubscribePreamble() -> [UInt8] {
        let (subscriptions, replySid) = state.withLock { state in
            (state.subscriptions.values.sorted { $0.sid < $1.sid }, state.replySid)
        }
        var preamble: [UInt8] = []
        for subscription in subscriptions {
            ClientEncoder.subscribe(subject: subscription.subject, queueGroup: subscription.queueGroup, sid: subscription.sid, into: &preamble)
            if let remaining = subscription.remainingBeforeMaximum {
                ClientEncoder.unsubscribe(sid: subscription.sid, max: Int(remaining), into: &preamble)
            }
        }
        if let replySid {
            ClientEncoder.subscribe(subject: replyPrefix + "*", sid: replySid, into: &preamble)
        }
        return preamble
    }

    private func enterReconnecting(reason: NATSError, unsentPings: Int, leaving server: ServerAddress) {
        let abandoned = state.withLock { state -> [OneShot<Void>] in
            if state.status != .closed { state.status = .reconnecting }
            state.socket = nil
            state.pool.moveToBack(server)
            // Waiters whose PING already went out will never get their PONG.
            var abandoned: [OneShot<Void>] = []
            while state.pongWaiters.count > unsentPings, let waiter = state.pongWaiters.popFirst() {
                if let waiter { abandoned.append(waiter) }
            }
            return abandoned
        }
        let error = NATSError(.disconnected, "the connection broke before the server answered: \(reason.message)")
        abandoned.forEach { $0.fulfil(.failure(error)) }
        broadcaster.emit(.disconnected(reason: reason.description))
    }

    /// Tries the pool's servers in turn, waiting between attempts on the same server.
    /// Returns `nil` when every server used up its attempts or the connection was closed.
    private func reconnect() -> Session? {
        while status != .closed {
            let maximum = options.maxReconnectAttempts
            guard let entry = state.withLock({ $0.pool.nextForReconnect(maximumAttempts: maximum) }) else { return nil }
            if let last = entry.lastAttempt {
                let jitter = options.reconnectJitter > .zero
                    ? Duration.nanoseconds(Int64.random(in: 0...nanoseconds(options.reconnectJitter))) : .zero
                let wakeUp = last + options.reconnectWait + jitter
                if !sleep(until: wakeUp) { return nil }
            }
            state.withLock { $0.pool.recordAttempt(entry.address, at: .now) }
            do {
                let session = try handshake(with: entry.address)
                state.withLock { $0.pool.recordSuccess(entry.address) }
                return session
            } catch {
                state.withLock { $0.pool.recordFailure(entry.address) }
            }
        }
        return nil
    }

    /// Sleeps until `instant`, in short steps so that `close()` is noticed; false if closed.
    private func sleep(until instant: ContinuousClock.Instant) -> Bool {
        while ContinuousClock.now < instant {
            if status == .closed { return false }
            let remaining = min(instant - ContinuousClock.now, .milliseconds(20))
            if remaining > .zero { usleep(useconds_t(nanoseconds(remaining) / 1000)) }
        }
        return status != .closed
    }

    /// Reads and handles operations until the socket breaks, the server goes quiet, or it
    /// announces lame duck mode.
    private func readUntilInterrupted(_ session: inout Session) -> Interruption {
        let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { readBuffer.deallocate() }
        var batch = DeliveryBatch()
        while true {
            do {
                while let operation = try session.parser.next() {
                    // Consecutive messages for the same subscription are handed over together
                    // (one lock, one wake-up); anything else first delivers what is batched,
                    // so that, say, a PONG is seen only after the messages before it.
                    if case .message(let inbound) = operation {
                        counters.received(bytes: inbound.payload.count + (inbound.headers?.encodedCount ?? 0))
                        if batch.target != nil, batch.sid == inbound.sid {
                            batch.messages.append(NATSMessage(subject: inbound.subject, replyTo: inbound.replyTo, headers: inbound.headers, payload: inbound.payload))
                            if batch.messages.count >= DeliveryBatch.limit { deliver(&batch) }
                            continue
                        }
                        deliver(&batch)
                        dispatch(inbound, batch: &batch)
                        continue
                    }
                    deliver(&batch)
                    if let interruption = handle(operation, from: session.server) { return interruption }
                }
            } catch {
                deliver(&batch)
                return .failed(NATSError(.protocolViolation, "the server sent malformed data", underlying: error))
            }
            deliver(&batch)
            if let stale = keepAliveTick() { return .failed(stale) }
            let wait = state.withLock { $0.keepAlive.timeUntilDeadline(now: now) }
            guard session.socket.waitReadable(until: .now + wait) else { continue }
            let count: Int
            do {
                count = try session.socket.read(into: readBuffer)
            } catch {
                return .failed(error)
            }
            if count == 0 { return .failed(NATSError(.disconnected, "\(session.server) closed the connection")) }
            session.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
        }
    }

    /// Sends a keep-alive `PING` when one is due; returns an error when the server is stale.
    private func keepAliveTick() -> NATSError? {
        let action = state.withLock { state -> KeepAlive.Action in
            let action = state.keepAlive.tick(now: now)
            if action == .sendPing { state.pongWaiters.append(nil) }
            return action
        }
        switch action {
        case .wait:
            return nil
        case .sendPing:
            try? outbound.append(size: 6, pings: 1) { ClientEncoder.ping(into: &$0) }
            return nil
        case .staleConnection:
            return NATSError(.staleConnection, "no PONG for \(options.maxPingsOutstanding) keep-alive PINGs")
        }
    }

    /// Handles one operation; returns why reading must stop, if it must.
    private func handle(_ operation: ServerOperation, from server: ServerAddress) -> Interruption? {
        switch operation {
        case .message(let inbound):
            counters.received(bytes: inbound.payload.count + (inbound.headers?.encodedCount ?? 0))
            var batch = DeliveryBatch()
            dispatch(inbound, batch: &batch)
            deliver(&batch)
        case .ping:
            try? outbound.append(size: 6) { ClientEncoder.pong(into: &$0) }
        case .pong:
            let waiter = state.withLock { state in
                state.keepAlive.pongReceived()
                return state.pongWaiters.popFirst()
            }
            waiter??.fulfil(.success(()))
        case .info(let json):
            guard let info = try? ServerInfo(json: json) else { break }
            state.withLock { state in
                state.info = info
                cacheLimits(from: info)
            }
            discover(from: info)
            if info.lameDuckMode == true {
                broadcaster.emit(.lameDuckMode(server: server.description))
                let others = state.withLock { $0.pool.servers.contains { $0 != server } }
                if others { return .lameDuck }
            }
        case .ok:
            break
        case .error(let text):
            broadcaster.emit(.serverError(text))
            // Permission errors concern one subject; the server keeps the connection open.
            if text.lowercased().contains("permissions violation") { return nil }
            return .failed(Self.error(fromServer: text))
        }
        return nil
    }

    /// Copies what publishing checks from the server's `INFO` (see ``maxPayloadCache``).
    func cacheLimits(from info: ServerInfo) {
        maxPayloadCache.store(info.maxPayload, ordering: .relaxed)
        headersRefused.store(info.headers == false, ordering: .relaxed)
    }

    /// Adds the servers an `INFO` announces to the pool.
    private func discover(from info: ServerInfo) {
        guard !options.ignoreDiscoveredServers, let urls = info.connectURLs, !urls.isEmpty else { return }
        let added = state.withLock { state in
            state.pool.addDiscovered(urls, credentialsFrom: state.server)
        }
        if !added.isEmpty { broadcaster.emit(.discoveredServers(added.map(\.description))) }
    }

    /// Messages read for one subscription, not handed over yet.
    struct DeliveryBatch {
        static let limit = 1024
        var sid: UInt64 = 0
        var target: SubscriptionState?
        /// Moved out one by one as they are delivered.
        var messages: [NATSMessage?] = []
    }

    /// Hands the batched messages to their subscription.
    private func deliver(_ batch: inout DeliveryBatch) {
        guard let subscription = batch.target else { return }
        if !batch.messages.isEmpty {
            let result = subscription.deliver(contentsOf: &batch.messages)
            if result.reachedMaximum { removeSubscription(batch.sid) }
            if result.startedDropping {
                broadcaster.emit(.slowConsumer(subject: subscription.subject, dropped: subscription.droppedCount))
            }
            batch.messages.removeAll(keepingCapacity: true)
        }
        batch.target = nil
    }

    /// Routes a message: a subscription's are batched (the batch must be empty), a reply
    /// completes its request.
    private func dispatch(_ inbound: InboundMessage, batch: inout DeliveryBatch) {
        let message = NATSMessage(subject: inbound.subject, replyTo: inbound.replyTo, headers: inbound.headers, payload: inbound.payload)
        enum Target {
            case subscription(SubscriptionState)
            case reply(OneShot<NATSMessage>?)
            case none
        }
        let target: Target = state.withLock { state in
            if let subscription = state.subscriptions[inbound.sid] { return .subscription(subscription) }
            if inbound.sid == state.replySid, inbound.subject.hasPrefix(replyPrefix) {
                let token = String(decoding: inbound.subject.utf8.dropFirst(replyPrefix.utf8.count), as: UTF8.self)
                return .reply(state.replies.removeValue(forKey: token))
            }
            return .none
        }
        switch target {
        case .subscription(let subscription):
            batch.sid = inbound.sid
            batch.target = subscription
            batch.messages.append(message)
        case .reply(let waiter):
            waiter?.fulfil(.success(message))
        case .none:
            break
        }
    }

    /// Ends everything that waits on this connection.
    func finishClosing(error: NATSError?) {
        let (subscriptions, replies, pongs) = state.withLock { state in
            state.status = .closed
            state.socket = nil
            if state.lastError == nil { state.lastError = error }
            let subscriptions = Array(state.subscriptions.values)
            state.subscriptions.removeAll()
            let replies = Array(state.replies.values)
            state.replies.removeAll()
            var pongs: [OneShot<Void>] = []
            while let waiter = state.pongWaiters.popFirst() {
                if let waiter { pongs.append(waiter) }
            }
            return (subscriptions, replies, pongs)
        }
        outbound.close()
        outbound.discardPending()
        let reason = error ?? NATSError.closed()
        subscriptions.forEach { $0.finish(discardPending: false) }
        replies.forEach { $0.fulfil(.failure(reason)) }
        pongs.forEach { $0.fulfil(.failure(reason)) }
        timer.stop()
        broadcaster.finish(with: .closed)
        closedSignal.fulfil(.success(()))
    }
}

func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}
