import EnnioSync
import Foundation
import Glibc
import NATSProtocol

/// The connection's I/O thread: it asks the state machine what to do next — connect, wait, or
/// finish — and does it: the handshake, the read loop (with the keep-alive), the teardown.
extension ConnectionCore {
    /// A socket that completed the handshake, with the parser that holds any bytes read past it.
    struct Session {
        var socket: any Transport
        var parser: ProtocolParser
        var info: ServerInfo
        var server: ServerAddress
    }

    /// Starts the I/O and writer threads and waits for the first connection.
    func start() async throws {
        let reader = Thread { [self] in runIOThread() }
        reader.name = "nats-io"
        reader.start()
        let writer = Thread { [outbound] in outbound.runWriter() }
        writer.name = "nats-writer"
        writer.start()
        try await ready.value(cancelled: { NATSError(.cancelled, "connecting was cancelled") })
    }

    private func runIOThread() {
        while true {
            let jitter = options.reconnectJitter > .zero
                ? Duration.nanoseconds(Int64.random(in: 0...nanoseconds(options.reconnectJitter))) : .zero
            let step = state.withLock { $0.machine.nextStep(now: now, jitter: jitter) }
            switch step {
            case .finish(let error):
                finishClosing(error: error)
                return
            case .wait(let instant):
                sleep(until: instant)
            case .connect(let server):
                connectAndRead(server)
            }
        }
    }

    /// Sleeps until `instant` on the connection's clock, or until `close()` wakes it.
    private func sleep(until instant: Duration) {
        ioWakeUp.withLock {
            let remaining = instant - now
            if !ioWakeUpRequested, remaining > .zero {
                ioWakeUp.wait(nanoseconds: Int(clamping: nanoseconds(remaining)))
            }
            ioWakeUpRequested = false
        }
    }

    /// One server: handshake, attach, read until the socket is lost, detach.
    private func connectAndRead(_ server: ServerAddress) {
        var session: Session
        do {
            session = try handshake(with: server)
        } catch {
            state.withLock { $0.machine.handshakeFailed(server: server, error: error, now: now) }
            return
        }
        let action = state.withLock { shared -> ConnectionStateMachine.AttachAction in
            let action = shared.machine.handshakeSucceeded(server: session.server, info: session.info, now: now)
            if case .attach(let preamble, _, _) = action {
                cacheLimits(from: session.info)
                // Under the state lock: a SUB made from now on goes after the preamble.
                outbound.attach(session.socket, preamble: preamble)
            }
            return action
        }
        guard case .attach(_, let event, let discovered) = action else {
            session.socket.shutdown()
            session.socket.close()
            return
        }
        if case .reconnected = event { counters.reconnects.add(1, ordering: .relaxed) }
        broadcaster.emit(event)
        if !discovered.isEmpty { broadcaster.emit(.discoveredServers(discovered.map(\.description))) }
        ready.fulfil(.success(()))
        outbound.kick()

        let reason = readUntilInterrupted(&session)
        session.socket.shutdown()
        // The machine first, so that no SUB is appended for this socket after the writer
        // sorted its buffer; then the writer lets go of it.
        let closedAction = state.withLock { $0.machine.transportClosed(reason: reason) }
        let pingsKept = outbound.detach()
        let failed = state.withLock { shared in
            shared.machine.pingsDropped(keeping: pingsKept).compactMap { shared.flushes.removeValue(forKey: $0) }
        }
        session.socket.close()
        let error = NATSError(.disconnected, "the connection broke before the server answered: \(reason.message)")
        for flush in failed { flush.fulfil(.failure(error)) }
        if let event = closedAction.event { broadcaster.emit(event) }
    }

    /// Reads and handles operations until the socket breaks, the server goes quiet, announces
    /// lame duck mode or closes it, or the connection is closed. Returns why.
    private func readUntilInterrupted(_ session: inout Session) -> NATSError {
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
                    if let stop = handle(operation, session: &session) { return stop }
                }
            } catch {
                deliver(&batch)
                return NATSError(.protocolViolation, "\(session.server) sent malformed data", underlying: error)
            }
            deliver(&batch)
            if let stale = keepAliveTick() { return stale }
            let wait = state.withLock { $0.machine.timeUntilKeepAlive(now: now) }
            guard session.socket.waitReadable(until: .now + wait) else { continue }
            let count: Int
            do {
                count = try session.socket.read(into: readBuffer)
            } catch {
                return error
            }
            if count == 0 { return NATSError(.disconnected, "\(session.server) closed the connection") }
            session.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
        }
    }

    /// Sends a keep-alive `PING` when one is due; returns an error when the server is stale.
    private func keepAliveTick() -> NATSError? {
        let decision = state.withLock { shared -> ConnectionStateMachine.KeepAliveDecision in
            let decision = shared.machine.keepAliveTimerFired(now: now)
            if decision == .sendPing {
                do {
                    try outbound.append(size: 6, urgent: true) { ClientEncoder.ping(into: &$0) }
                    shared.machine.pingQueued(flush: nil)
                } catch {
                    // A buffer that cannot take six bytes is going nowhere: the keep-alive
                    // counts this PING as unanswered and declares the connection stale.
                }
            }
            return decision
        }
        switch decision {
        case .none:
            return nil
        case .sendPing:
            outbound.kick()
            return nil
        case .closeTransport(let error):
            return error
        }
    }

    /// Handles one operation; returns why reading must stop, if it must.
    private func handle(_ operation: ServerOperation, session: inout Session) -> NATSError? {
        switch operation {
        case .message(let inbound):
            counters.received(bytes: inbound.payload.count + (inbound.headers?.encodedCount ?? 0))
            var batch = DeliveryBatch()
            dispatch(inbound, batch: &batch)
            deliver(&batch)
        case .ping:
            try? outbound.append(size: 6, urgent: true) { ClientEncoder.pong(into: &$0) }
            outbound.kick()
        case .pong:
            let flush = state.withLock { shared in
                shared.machine.pongReceived().flatMap { shared.flushes.removeValue(forKey: $0) }
            }
            flush?.fulfil(.success(()))
        case .info(let json):
            guard let info = try? ServerInfo(json: json) else { break }
            let action = state.withLock { shared in
                let action = shared.machine.infoReceived(info)
                cacheLimits(from: info)
                return action
            }
            session.parser.maximumPayloadLength = info.maxPayload
            if !action.discovered.isEmpty { broadcaster.emit(.discoveredServers(action.discovered.map(\.description))) }
            if action.lameDuck { broadcaster.emit(.lameDuckMode(server: session.server.description)) }
            if let stop = action.closeTransport { return stop }
        case .ok:
            break
        case .error(let text):
            broadcaster.emit(.serverError(text))
            switch state.withLock({ $0.machine.serverErrorReceived(text) }) {
            case .report(let error):
                // A permissions violation concerns one operation; the server keeps the connection.
                refused(error, text: text)
            case .closeTransport(let error):
                return error
            }
        }
        return nil
    }

    /// Copies what publishing checks from the server's `INFO` (see ``maxPayloadCache``).
    func cacheLimits(from info: ServerInfo) {
        maxPayloadCache.store(info.maxPayload, ordering: .relaxed)
        headersRefused.store(info.headers == false, ordering: .relaxed)
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
            if result.reachedMaximum { subscriptionEnded(batch.sid) }
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
            case reply(Promise<NATSMessage, NATSError>?)
            case none
        }
        let target: Target = state.withLock { shared in
            if let subscription = shared.machine.subscription(inbound.sid) { return .subscription(subscription) }
            if inbound.sid == shared.machine.replySid, inbound.subject.hasPrefix(replyPrefix) {
                let token = String(decoding: inbound.subject.utf8.dropFirst(replyPrefix.utf8.count), as: UTF8.self)
                return .reply(shared.replies.removeValue(forKey: token)?.reply)
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

    /// Ends everything that waits on this connection; the last thing the I/O thread does.
    private func finishClosing(error: NATSError?) {
        let (subscriptions, replies, flushes) = state.withLock { shared in
            let (subscriptions, flushIDs) = shared.machine.takeEverything()
            var flushes = flushIDs.compactMap { shared.flushes.removeValue(forKey: $0) }
            flushes += shared.flushes.values
            shared.flushes.removeAll()
            let replies = shared.replies.values.map(\.reply)
            shared.replies.removeAll()
            return (subscriptions, replies, flushes)
        }
        outbound.stop()
        let reason = error ?? NATSError.closed()
        subscriptions.forEach { $0.finish(discardPending: false) }
        replies.forEach { $0.fulfil(.failure(reason)) }
        flushes.forEach { $0.fulfil(.failure(reason)) }
        timer.stop()
        broadcaster.finish(with: .closed)
        ready.fulfil(.failure(error ?? NATSError(.connectionClosed, "the connection was closed before it was established")))
        closed.fulfil(.success(()))
    }
}

func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return seconds < 0 ? .min : .max }
    return whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
}
