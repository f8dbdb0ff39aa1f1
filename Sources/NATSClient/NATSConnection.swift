public import NATSProtocol
import Foundation
import Synchronization

/// A connection to a NATS server: publish, subscribe, request/reply, flush, close.
///
/// All methods are thread-safe. Publishing only encodes into a buffer that a writer thread
/// sends, coalescing many operations into one system call; a reader thread parses what the
/// server sends and hands messages to subscriptions. When the socket breaks the connection
/// reconnects (see ``NATSOptions``), re-subscribes and sends what was published meanwhile.
public final class NATSConnection: Sendable {
    public let options: NATSOptions

    let outbound: OutboundBuffer
    let counters = StatisticsCounters()
    private let state: Mutex<ConnectionState>
    private let closedSignal = OneShot<Void>()
    /// Where replies to requests arrive: `_INBOX.<random>.` followed by a per-request token.
    private let replyPrefix: String

    /// What the connection is doing.
    public enum Status: Sendable, Hashable {
        case connecting, connected, reconnecting, draining, closed
    }

    private struct ConnectionState {
        var status: Status = .connecting
        var pool: ServerPool
        var server: ServerAddress?
        var info: ServerInfo?
        var socket: TCPSocket?
        var nextSid: UInt64 = 1
        var subscriptions: [UInt64: SubscriptionState] = [:]
        var replySid: UInt64?
        var replies: [String: OneShot<NATSMessage>] = [:]
        var nextReplyToken: UInt64 = 0
        var pongWaiters = MessageQueue<OneShot<Void>>()
        var lastError: NATSError?
    }

    private init(options: NATSOptions, pool: ServerPool) {
        self.options = options
        self.replyPrefix = "\(options.inboxPrefix).\(Nuid.next())."
        self.outbound = OutboundBuffer(connectedLimit: options.writeBufferLimit, disconnectedLimit: 0)
        self.state = Mutex(ConnectionState(pool: pool))
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

    /// Connects to one URL with default options.
    public static func connect(to url: String) async throws -> NATSConnection {
        try await connect(NATSOptions(servers: [url]))
    }

    // MARK: - Observing

    public var status: Status { state.withLock { $0.status } }

    /// The `INFO` of the server currently connected to.
    public var serverInfo: ServerInfo? { state.withLock { $0.info } }

    /// The server currently connected to (no credentials).
    public var connectedServer: ServerAddress? { state.withLock { $0.server } }

    /// The largest message (headers plus payload) the server accepts.
    public var maxPayload: Int { state.withLock { $0.info?.maxPayload ?? 1024 * 1024 } }

    public var statistics: NATSStatistics { counters.snapshot }

    /// Why the connection closed, if it closed because of an error.
    public var lastError: NATSError? { state.withLock { $0.lastError } }

    // MARK: - Publishing

    /// Publishes a message. Returns once it is buffered; ``flush(timeout:)`` waits for the server.
    ///
    /// - Throws: `.invalidSubject`, `.invalidHeaders`, `.maxPayloadExceeded` (the connection stays
    ///   up), `.headersNotSupported`, `.connectionClosed`.
    public func publish(
        _ payload: some Collection<UInt8>,
        to subject: String,
        replyTo: String? = nil,
        headers: NATSHeaders? = nil
    ) throws(NATSError) {
        try checkPublishable(subject: subject, replyTo: replyTo, headers: headers)
        let headerSize = headers?.encodedCount ?? 0
        let size = headerSize + payload.count
        let limit = maxPayload
        guard size <= limit else {
            throw NATSError(.maxPayloadExceeded, "message of \(size) bytes exceeds the server's max_payload of \(limit)")
        }
        let frameSize = size + subject.utf8.count + (replyTo?.utf8.count ?? 0) + 32
        if let headers {
            try outbound.append(size: frameSize) { buffer in
                ClientEncoder.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload, into: &buffer)
            }
        } else {
            try outbound.append(size: frameSize) { buffer in
                ClientEncoder.publish(subject: subject, replyTo: replyTo, payload: payload, into: &buffer)
            }
        }
        counters.sent(bytes: size)
    }

    /// Publishes a UTF-8 string.
    public func publish(_ text: String, to subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil) throws(NATSError) {
        try publish(Array(text.utf8), to: subject, replyTo: replyTo, headers: headers)
    }

    private func checkPublishable(subject: String, replyTo: String?, headers: NATSHeaders?) throws(NATSError) {
        do {
            try Subject.validate(subject)
            if let replyTo { try Subject.validate(replyTo) }
        } catch {
            throw NATSError.subject(error)
        }
        if let headers {
            if let field = headers.firstInvalidField {
                throw NATSError(.invalidHeaders, "header \(field.name.debugDescription) cannot be sent")
            }
            if state.withLock({ $0.info?.headers == false }) {
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
            try outbound.append(size: subject.utf8.count + 64) { buffer in
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
            let reached = subscription.setMaximum(maximum)
            if reached { _ = state.withLock { $0.subscriptions.removeValue(forKey: subscription.sid) } }
        } else {
            _ = state.withLock { $0.subscriptions.removeValue(forKey: subscription.sid) }
            subscription.finish(discardPending: true)
        }
        guard status != .closed else { return }
        try outbound.append(size: 64) { buffer in
            ClientEncoder.unsubscribe(sid: subscription.sid, max: maximum.map { Int($0) }, into: &buffer)
        }
    }

    // MARK: - Flush

    /// Sends everything buffered and waits for the server to answer a `PING`, which proves it
    /// has processed everything sent before.
    public func flush(timeout: Duration? = nil) async throws {
        let waiter = OneShot<Void>()
        try state.withLock { state throws(NATSError) in
            guard state.status != .closed else { throw NATSError.closed() }
            state.pongWaiters.append(waiter)
        }
        try outbound.append(size: 6) { ClientEncoder.ping(into: &$0) }
        let limit = timeout ?? options.flushTimeout
        try await waiter.value(timeout: limit, timeoutError: NATSError(.timeout, "no PONG within \(limit)"))
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
        let (token, reply, needsSubscribe, sid) = try state.withLock {
            state throws(NATSError) -> (String, OneShot<NATSMessage>, Bool, UInt64) in
            guard state.status != .closed else { throw NATSError.closed() }
            var needsSubscribe = false
            if state.replySid == nil {
                state.replySid = state.nextSid
                state.nextSid += 1
                needsSubscribe = true
            }
            state.nextReplyToken += 1
            let token = String(state.nextReplyToken, radix: 36)
            let reply = OneShot<NATSMessage>()
            state.replies[token] = reply
            return (token, reply, needsSubscribe, state.replySid!)
        }
        defer { _ = state.withLock { $0.replies.removeValue(forKey: token) } }
        if needsSubscribe {
            try outbound.append(size: replyPrefix.utf8.count + 32) { buffer in
                ClientEncoder.subscribe(subject: replyPrefix + "*", sid: sid, into: &buffer)
            }
        }
        try publish(payload, to: subject, replyTo: replyPrefix + token, headers: headers)
        let limit = timeout ?? options.requestTimeout
        let message = try await reply.value(
            timeout: limit,
            timeoutError: NATSError(.timeout, "no reply on \(subject) within \(limit)")
        )
        if message.status == 503, message.payload.isEmpty {
            throw NATSError(.noResponders, "no responders for \(subject)")
        }
        return message
    }

    /// Sends a request with a UTF-8 string payload.
    public func request(_ text: String, to subject: String, headers: NATSHeaders? = nil, timeout: Duration? = nil) async throws -> NATSMessage {
        try await request(Array(text.utf8), to: subject, headers: headers, timeout: timeout)
    }

    // MARK: - Close

    /// Sends what is buffered, closes the socket and ends every subscription.
    public func close() async {
        let socket = state.withLock { state -> TCPSocket? in
            guard state.status != .closed else { return nil }
            state.status = .closed
            return state.socket
        }
        outbound.close()
        socket?.shutdown()
        _ = try? await closedSignal.value()
    }

    // MARK: - The I/O thread

    private func start() async throws {
        let ready = OneShot<Void>()
        let thread = Thread { [self] in
            do {
                let session = try establishFirst()
                ready.fulfil(.success(()))
                run(from: session)
            } catch let error as NATSError {
                finishClosing(error: error)
                ready.fulfil(.failure(error))
            } catch {
                finishClosing(error: NATSError(.connectionFailed, "\(error)"))
                ready.fulfil(.failure(NATSError(.connectionFailed, "\(error)")))
            }
        }
        thread.name = "nats-reader"
        thread.start()
        let writer = Thread { [outbound] in outbound.runWriter() }
        writer.name = "nats-writer"
        writer.start()
        try await ready.value()
    }

    /// A socket that completed the handshake, with the parser that holds any bytes read past it.
    struct Session {
        var socket: TCPSocket
        var parser: ProtocolParser
        var info: ServerInfo
        var server: ServerAddress
    }

    private func establishFirst() throws(NATSError) -> Session {
        let servers = state.withLock { $0.pool.servers }
        var lastError = NATSError(.noServers, "no server to connect to")
        for server in servers {
            do {
                let session = try handshake(with: server)
                attach(session, preamble: [])
                return session
            } catch {
                lastError = error
                if error.code == .authorizationViolation || error.code == .tlsNotSupported { continue }
            }
        }
        throw lastError
    }

    private func attach(_ session: Session, preamble: [UInt8]) {
        state.withLock { state in
            state.socket = session.socket
            state.info = session.info
            state.server = session.server
            state.status = .connected
        }
        outbound.attach(session.socket, preamble: preamble)
    }

    /// Connects and runs `INFO` → `CONNECT` + `PING` → `PONG` on the calling thread.
    private func handshake(with server: ServerAddress) throws(NATSError) -> Session {
        let socket = try TCPSocket.connect(host: server.host, port: server.port, timeout: options.connectTimeout)
        do throws(NATSError) {
            let deadline = ContinuousClock.now + options.connectTimeout
            var parser = ProtocolParser()
            var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)

            func nextOperation() throws(NATSError) -> ServerOperation {
                while true {
                    do {
                        if let operation = try parser.next() { return operation }
                    } catch {
                        throw NATSError(.protocolViolation, "bad handshake from \(server)", underlying: error)
                    }
                    guard socket.waitReadable(until: deadline) else {
                        throw NATSError(.timeout, "no handshake from \(server) within \(options.connectTimeout)")
                    }
                    let count = try readBuffer.withUnsafeMutableBytes { bytes in Result { () throws(NATSError) in try socket.read(into: bytes) } }.get()
                    guard count > 0 else { throw NATSError(.connectionFailed, "\(server) closed the connection") }
                    parser.append(readBuffer[0..<count])
                }
            }

            guard case .info(let json) = try nextOperation() else {
                throw NATSError(.protocolViolation, "\(server) did not start with INFO")
            }
            var info = try ServerInfo(json: json)
            if info.tlsRequired == true {
                throw NATSError(.tlsNotSupported, "\(server) requires TLS, which this client does not support")
            }
            var greeting: [UInt8] = []
            ClientEncoder.connect(connectInfo(for: server), into: &greeting)
            ClientEncoder.ping(into: &greeting)
            try socket.write(greeting)
            while true {
                switch try nextOperation() {
                case .pong:
                    return Session(socket: socket, parser: parser, info: info, server: server)
                case .ping:
                    try socket.write(Array("PONG\r\n".utf8))
                case .info(let json):
                    info = try ServerInfo(json: json)
                case .ok, .message:
                    continue
                case .error(let text):
                    throw Self.error(fromServer: text)
                }
            }
        } catch {
            socket.close()
            throw error
        }
    }

    private func connectInfo(for server: ServerAddress) -> ConnectInfo {
        var info = ConnectInfo()
        info.name = options.name
        info.version = NATSClientVersion.current
        info.echo = options.echo
        if server.user != nil || server.password != nil {
            info.user = server.user
            info.password = server.password
        } else if let token = server.token {
            info.authToken = token
        } else if let token = options.token {
            info.authToken = token
        } else {
            info.user = options.user
            info.password = options.password
        }
        return info
    }

    static func error(fromServer text: String) -> NATSError {
        let lower = text.lowercased()
        if lower.contains("authorization violation") || lower.contains("authentication") {
            return NATSError(.authorizationViolation, "the server refused the credentials: \(text)")
        }
        return NATSError(.serverError, text)
    }

    /// Reads until the socket breaks or the connection is closed.
    private func run(from session: Session) {
        var session = session
        let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { readBuffer.deallocate() }
        var failure: NATSError?
        reading: while true {
            do {
                while let operation = try session.parser.next() {
                    if let fatal = handle(operation) {
                        failure = fatal
                        break reading
                    }
                }
            } catch {
                failure = NATSError(.protocolViolation, "the server sent malformed data", underlying: error)
                break
            }
            let count: Int
            do {
                count = try session.socket.read(into: readBuffer)
            } catch {
                failure = error
                break
            }
            if count == 0 { break }
            session.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
        }
        outbound.detach()
        session.socket.shutdown()
        session.socket.close()
        let closing = status == .closed
        finishClosing(error: closing ? nil : (failure ?? NATSError(.connectionClosed, "the server closed the connection")))
    }

    /// Handles one operation; returns an error when the connection cannot go on.
    private func handle(_ operation: ServerOperation) -> NATSError? {
        switch operation {
        case .message(let inbound):
            counters.received(bytes: inbound.payload.count + (inbound.headers?.encodedCount ?? 0))
            dispatch(inbound)
        case .ping:
            try? outbound.append(size: 6) { ClientEncoder.pong(into: &$0) }
        case .pong:
            let waiter = state.withLock { $0.pongWaiters.popFirst() }
            waiter?.fulfil(.success(()))
        case .info(let json):
            if let info = try? ServerInfo(json: json) {
                state.withLock { $0.info = info }
            }
        case .ok:
            break
        case .error(let text):
            let error = Self.error(fromServer: text)
            // Permission errors concern one subject; the server keeps the connection open.
            if text.lowercased().contains("permissions violation") { return nil }
            return error
        }
        return nil
    }

    private func dispatch(_ inbound: InboundMessage) {
        let message = NATSMessage(subject: inbound.subject, replyTo: inbound.replyTo, headers: inbound.headers, payload: inbound.payload)
        enum Target {
            case subscription(SubscriptionState)
            case reply(OneShot<NATSMessage>?)
            case none
        }
        let target: Target = state.withLock { state in
            if let subscription = state.subscriptions[inbound.sid] { return .subscription(subscription) }
            if inbound.sid == state.replySid, inbound.subject.hasPrefix(replyPrefix) {
                let token = String(inbound.subject.dropFirst(replyPrefix.count))
                return .reply(state.replies.removeValue(forKey: token))
            }
            return .none
        }
        switch target {
        case .subscription(let subscription):
            if subscription.deliver(message) == .queuedLast {
                _ = state.withLock { $0.subscriptions.removeValue(forKey: inbound.sid) }
            }
        case .reply(let waiter):
            waiter?.fulfil(.success(message))
        case .none:
            break
        }
    }

    /// Ends everything that waits on this connection.
    private func finishClosing(error: NATSError?) {
        let (subscriptions, replies, pongs) = state.withLock { state in
            state.status = .closed
            state.socket = nil
            if state.lastError == nil { state.lastError = error }
            let subscriptions = Array(state.subscriptions.values)
            state.subscriptions.removeAll()
            let replies = Array(state.replies.values)
            state.replies.removeAll()
            var pongs: [OneShot<Void>] = []
            while let waiter = state.pongWaiters.popFirst() { pongs.append(waiter) }
            return (subscriptions, replies, pongs)
        }
        outbound.close()
        let reason = error ?? NATSError.closed()
        subscriptions.forEach { $0.finish(discardPending: false) }
        replies.forEach { $0.fulfil(.failure(reason)) }
        pongs.forEach { $0.fulfil(.failure(reason)) }
        closedSignal.fulfil(.success(()))
    }
}

/// The version this client reports in `CONNECT`.
public enum NATSClientVersion {
    public static let current = "0.1.0"
}
