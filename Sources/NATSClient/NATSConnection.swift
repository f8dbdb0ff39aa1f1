import EnnioSync
public import NATSProtocol
import Foundation
import Synchronization

/// A connection to a NATS server: publish, subscribe, request/reply, flush, drain, close.
///
/// All methods are thread-safe. Publishing only encodes into a buffer that a writer thread
/// sends, coalescing many operations into one system call; a reader thread parses what the
/// server sends and hands messages to subscriptions. When the socket breaks the connection
/// reconnects (see ``NATSOptions``), subscribes again and sends what was published meanwhile.
public final class NATSConnection: Sendable {
    public let options: NATSOptions

    let outbound: OutboundBuffer
    let counters = StatisticsCounters()
    let broadcaster = EventBroadcaster()
    let state: Locked<ConnectionState>
    let closedSignal = OneShot<Void>()
    /// Time limits of requests and flushes.
    let timer = DeadlineTimer()
    /// Where replies to requests arrive: `_INBOX.<random>.` followed by a per-request token.
    let replyPrefix: String
    let clockOrigin = ContinuousClock.now
    /// The server's `max_payload` and whether it refuses headers, copied from `state.info`
    /// whenever that changes, so that publishing does not take the state lock.
    let maxPayloadCache = Atomic<Int>(1024 * 1024)
    let headersRefused = Atomic<Bool>(false)

    /// What the connection is doing.
    public enum Status: Sendable, Hashable {
        case connecting, connected, reconnecting, draining, closed
    }

    struct ConnectionState {
        var status: Status = .connecting
        var pool: ServerPool
        var server: ServerAddress?
        var info: ServerInfo?
        var socket: (any Transport)?
        var nextSid: UInt64 = 1
        var subscriptions: [UInt64: SubscriptionState] = [:]
        var replySid: UInt64?
        var replies: [String: OneShot<NATSMessage>] = [:]
        var nextReplyToken: UInt64 = 0
        /// One entry per `PING` sent, in order; `nil` for a keep-alive `PING` nobody awaits.
        var pongWaiters = MessageQueue<OneShot<Void>?>()
        var keepAlive: KeepAlive
        var lastError: NATSError?
    }

    private init(options: NATSOptions, pool: ServerPool) {
        self.options = options
        self.replyPrefix = "\(options.inboxPrefix).\(Nuid.next())."
        self.outbound = OutboundBuffer(
            connectedLimit: options.writeBufferLimit,
            disconnectedLimit: options.allowReconnect ? options.reconnectBufferSize : 0
        )
        let keepAlive = KeepAlive(interval: options.pingInterval, maximumOutstanding: options.maxPingsOutstanding, now: .zero)
        self.state = Locked(ConnectionState(pool: pool, keepAlive: keepAlive))
    }

    /// Connects to the first server of `options.servers` that answers, handshake included.
    ///
    /// - Throws: ``NATSError`` — `.noServers`, `.invalidURL`, `.authorizationViolation`,
    ///   `.tlsNotSupported`, or `.connectionFailed` with the last server's error.
    public static func connect(_ options: NATSOptions = NATSOptions()) async throws -> NATSConnection {
        let pool = try ServerPool(urls: options.servers, randomize: !options.noRandomize)
        let connection = NATSConnection(options: options, pool: pool)
        try await connection.start()
        return connection
    }

    /// Connects to one URL (or a comma-separated list) with default options.
    public static func connect(to url: String) async throws -> NATSConnection {
        try await connect(NATSOptions(servers: [url]))
    }

    // MARK: - Observing

    public var status: Status { state.withLock { $0.status } }

    /// The `INFO` of the server currently (or last) connected to.
    public var serverInfo: ServerInfo? { state.withLock { $0.info } }

    /// The server currently (or last) connected to, without credentials.
    public var connectedServer: ServerAddress? { state.withLock { $0.server } }

    /// The servers this connection knows, seeds and discovered ones, in the order it would try them.
    public var knownServers: [ServerAddress] { state.withLock { $0.pool.servers } }

    /// The largest message (headers plus payload) the server accepts.
    public var maxPayload: Int { state.withLock { $0.info?.maxPayload ?? 1024 * 1024 } }

    public var statistics: NATSStatistics { counters.snapshot }

    /// Why the connection closed, if it closed because of an error.
    public var lastError: NATSError? { state.withLock { $0.lastError } }

    /// Events from now on (connected, disconnected, reconnected, slow consumer, …), starting
    /// with `.connected` when connected. The stream ends after `.closed`.
    public func events() -> AsyncStream<ConnectionEvent> {
        let initial: [ConnectionEvent] = state.withLock { state in
            switch state.status {
            case .connected, .draining: return [.connected(server: state.server?.description ?? "")]
            case .closed: return [.closed]
            case .connecting, .reconnecting: return []
            }
        }
        return broadcaster.stream(initial: initial)
    }

    // MARK: - Publishing

    /// Publishes a message. Returns once it is buffered; ``flush(timeout:)`` waits for the server.
    ///
    /// While reconnecting, the message waits in the reconnect buffer and goes out after the
    /// reconnect.
    /// - Throws: `.invalidSubject`, `.invalidHeaders`, `.maxPayloadExceeded` (the connection stays
    ///   up), `.headersNotSupported`, `.reconnectBufferFull`, `.connectionClosed`.
    public func publish(
        _ payload: some Collection<UInt8>,
        to subject: String,
        replyTo: String? = nil,
        headers: NATSHeaders? = nil
    ) throws(NATSError) {
        let result = payload.withContiguousStorageIfAvailable { bytes in
            Result { () throws(NATSError) in
                try publishBytes(UnsafeRawBufferPointer(bytes), to: subject, replyTo: replyTo, headers: headers)
            }
        }
        if let result { return try result.get() }
        try publish(Array(payload), to: subject, replyTo: replyTo, headers: headers)
    }

    /// Publishes a message whose payload is an array of bytes (the same as the generic
    /// ``publish(_:to:replyTo:headers:)``, without going through `Collection`).
    public func publish(
        _ payload: [UInt8],
        to subject: String,
        replyTo: String? = nil,
        headers: NATSHeaders? = nil
    ) throws(NATSError) {
        try payload.withUnsafeBytes { bytes in
            Result { () throws(NATSError) in
                try publishBytes(bytes, to: subject, replyTo: replyTo, headers: headers)
            }
        }.get()
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

    /// Publishes with a header block the caller has already encoded and checked
    /// (`NATS/1.0\r\n`, fields, empty line) — for publishers that send the same kind of
    /// header with every message. `subjectIsValid`: the caller guarantees a valid subject
    /// (built from checked parts), so it is not checked again.
    package func publish(
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

    /// Publishes a UTF-8 string.
    public func publish(_ text: String, to subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil) throws(NATSError) {
        try publish(Array(text.utf8), to: subject, replyTo: replyTo, headers: headers)
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

    /// Subscribes to a subject or wildcard pattern, optionally as a member of a queue group
    /// (each message goes to one member of the group).
    public func subscribe(to subject: String, queueGroup: String? = nil) throws(NATSError) -> NATSSubscription {
        do {
            try Subject.validatePattern(subject)
            if let queueGroup { try Subject.validateQueueGroup(queueGroup) }
        } catch {
            throw NATSError.subject(error)
        }
        let subscription = try state.withLock { state throws(NATSError) -> SubscriptionState in
            guard state.status != .closed, state.status != .draining else { throw NATSError.closed() }
            let sid = state.nextSid
            state.nextSid += 1
            let subscription = SubscriptionState(
                sid: sid,
                subject: subject,
                queueGroup: queueGroup,
                messageLimit: options.pendingMessageLimit,
                byteLimit: options.pendingByteLimit
            )
            state.subscriptions[sid] = subscription
            return subscription
        }
        do {
            try outbound.append(size: subject.utf8.count + (queueGroup?.utf8.count ?? 0) + 32) { buffer in
                ClientEncoder.subscribe(subject: subject, queueGroup: queueGroup, sid: subscription.sid, into: &buffer)
            }
        } catch {
            _ = state.withLock { $0.subscriptions.removeValue(forKey: subscription.sid) }
            throw error
        }
        return NATSSubscription(state: subscription, connection: self)
    }

    func unsubscribe(_ subscription: SubscriptionState, after maximum: UInt64?) throws(NATSError) {
        if let maximum {
            if subscription.setMaximum(maximum) { removeSubscription(subscription.sid) }
        } else {
            removeSubscription(subscription.sid)
            subscription.finish(discardPending: true)
        }
        guard status != .closed else { return }
        try outbound.append(size: 48) { buffer in
            ClientEncoder.unsubscribe(sid: subscription.sid, max: maximum.map { Int($0) }, into: &buffer)
        }
    }

    /// Stops the server sending to this subscription, waits until everything it already sent
    /// has arrived, then ends the sequence once the consumer has taken what is queued.
    func drain(_ subscription: SubscriptionState, timeout: Duration?) async throws {
        try outbound.append(size: 48) { ClientEncoder.unsubscribe(sid: subscription.sid, into: &$0) }
        try await flush(timeout: timeout)
        removeSubscription(subscription.sid)
        subscription.finish(discardPending: false)
    }

    func removeSubscription(_ sid: UInt64) {
        _ = state.withLock { $0.subscriptions.removeValue(forKey: sid) }
    }

    // MARK: - Flush

    /// Sends everything buffered and waits for the server to answer a `PING`, which proves it
    /// has processed everything sent before.
    ///
    /// - Throws: `.timeout`, `.disconnected` when the connection broke before the answer,
    ///   `.connectionClosed`.
    public func flush(timeout: Duration? = nil) async throws {
        let waiter = OneShot<Void>()
        try state.withLock { state throws(NATSError) in
            guard state.status != .closed else { throw NATSError.closed() }
            state.pongWaiters.append(waiter)
        }
        try outbound.append(size: 6, pings: 1) { ClientEncoder.ping(into: &$0) }
        let limit = timeout ?? options.flushTimeout
        try await waiter.value(timeout: limit, timeoutError: NATSError(.timeout, "no PONG within \(limit)"), timer: timer)
    }

    // MARK: - Request/reply

    /// Publishes a request and waits for the first reply.
    ///
    /// All requests share one wildcard subscription on `_INBOX.<id>.*`; each gets its own token.
    /// - Throws: `.noResponders` when nobody subscribes to `subject` (status 503), `.timeout`.
    public func request(
        _ payload: some Collection<UInt8>,
        to subject: String,
        headers: NATSHeaders? = nil,
        timeout: Duration? = nil
    ) async throws -> NATSMessage {
        let pending = try startRequest(payload, to: subject, headers: headers)
        return try await pending.reply(timeout: timeout ?? options.requestTimeout)
    }

    /// A request that is sent and waits for its reply.
    struct PendingRequest: Sendable {
        let connection: NATSConnection
        let token: String
        let subject: String
        let slot: OneShot<NATSMessage>

        /// Waits for the reply (at most `timeout`) and forgets the request.
        func reply(timeout: Duration) async throws -> NATSMessage {
            defer { connection.forgetRequest(token) }
            let message = try await slot.value(
                timeout: timeout,
                timeoutError: NATSError(.timeout, "no reply on \(subject) within \(timeout)"),
                timer: connection.timer
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
        let (token, reply, subscribeSid) = try state.withLock {
            state throws(NATSError) -> (String, OneShot<NATSMessage>, UInt64?) in
            guard state.status != .closed else { throw NATSError.closed() }
            var subscribeSid: UInt64?
            if state.replySid == nil {
                state.replySid = state.nextSid
                state.nextSid += 1
                subscribeSid = state.replySid
            }
            state.nextReplyToken += 1
            let token = String(state.nextReplyToken, radix: 36)
            let reply = OneShot<NATSMessage>()
            state.replies[token] = reply
            return (token, reply, subscribeSid)
        }
        do {
            if let sid = subscribeSid {
                try outbound.append(size: replyPrefix.utf8.count + 32) { buffer in
                    ClientEncoder.subscribe(subject: replyPrefix + "*", sid: sid, into: &buffer)
                }
            }
            try publish(payload, to: subject, replyTo: replyPrefix + token, headers: headers)
        } catch {
            forgetRequest(token)
            throw error
        }
        return PendingRequest(connection: self, token: token, subject: subject, slot: reply)
    }

    /// Sends a request with a UTF-8 string payload.
    public func request(_ text: String, to subject: String, headers: NATSHeaders? = nil, timeout: Duration? = nil) async throws -> NATSMessage {
        try await request(Array(text.utf8), to: subject, headers: headers, timeout: timeout)
    }

    // MARK: - Drain and close

    /// Drains every subscription (the server stops sending, consumers get what already
    /// arrived), waits for consumers to take what is queued, flushes publishes, then closes.
    ///
    /// - Throws: `.timeout` when consumers have not caught up within `timeout`; the connection
    ///   is closed all the same.
    public func drain(timeout: Duration? = nil) async throws {
        let subscriptions = state.withLock { state -> [SubscriptionState]? in
            guard state.status != .closed, state.status != .draining else { return nil }
            state.status = .draining
            return Array(state.subscriptions.values)
        }
        guard let subscriptions else { return }
        let limit = timeout ?? options.drainTimeout
        let deadline = ContinuousClock.now + limit
        var failure: (any Error)?
        do {
            for subscription in subscriptions {
                try outbound.append(size: 48) { ClientEncoder.unsubscribe(sid: subscription.sid, into: &$0) }
            }
            try await flush(timeout: limit)
            for subscription in subscriptions {
                removeSubscription(subscription.sid)
                subscription.finish(discardPending: false)
            }
            while subscriptions.contains(where: { $0.pendingCount > 0 }) {
                guard ContinuousClock.now < deadline else {
                    throw NATSError(.timeout, "consumers did not take their pending messages within \(limit)")
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            try await flush(timeout: max(.milliseconds(1), deadline - ContinuousClock.now))
        } catch {
            failure = error
        }
        await close()
        if let failure { throw failure }
    }

    /// Sends what is buffered, closes the socket and ends every subscription.
    public func close() async {
        let socket = state.withLock { state -> (any Transport)? in
            guard state.status != .closed else { return nil }
            state.status = .closed
            return state.socket
        }
        outbound.close()
        socket?.shutdown()
        _ = try? await closedSignal.value()
    }
}

/// The version this client reports in `CONNECT`.
public enum NATSClientVersion {
    public static let current = "0.1.0"
}
