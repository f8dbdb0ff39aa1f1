public import NATSProtocol

/// A connection to a NATS server: publish, subscribe, request/reply, flush, drain, close.
///
/// All methods are thread-safe. Publishing only encodes into a buffer that a writer thread
/// sends, coalescing many operations into one system call; a reader thread parses what the
/// server sends and hands messages to subscriptions. When the socket breaks the connection
/// reconnects (see ``NATSOptions``), subscribes again and sends what was published meanwhile.
///
/// A connection lives as long as something holds it: this object, one of its subscriptions
/// (or a task iterating one), a ``JetStream``. When the last of them lets go, it closes as if
/// ``close()`` had been called and its threads end. (See `ConnectionCore` for how it works.)
public final class NATSConnection: Sendable {
    let core: ConnectionCore

    private init(core: ConnectionCore) {
        self.core = core
    }

    deinit {
        core.abandon()
    }

    /// Connects to the first server of `options.servers` that answers, handshake included.
    ///
    /// - Throws: ``NATSError`` — `.noServers`, `.invalidURL`, `.authorizationViolation`,
    ///   TLS errors, or `.connectionFailed` with the last server's error.
    public static func connect(_ options: NATSOptions = NATSOptions()) async throws -> NATSConnection {
        let pool = try ServerPool(urls: options.servers, randomize: !options.noRandomize)
        let core = ConnectionCore(options: options, pool: pool)
        try await core.start()
        return NATSConnection(core: core)
    }

    /// Connects to one URL (or a comma-separated list) with default options.
    public static func connect(to url: String) async throws -> NATSConnection {
        try await connect(NATSOptions(servers: [url]))
    }

    /// What the connection is doing.
    public enum Status: Sendable, Hashable {
        case connecting, connected, reconnecting, draining, closed
    }

    public var options: NATSOptions { core.options }

    // MARK: - Observing

    public var status: Status { core.status }

    /// The `INFO` of the server currently (or last) connected to.
    public var serverInfo: ServerInfo? { core.serverInfo }

    /// The server currently (or last) connected to, without credentials.
    public var connectedServer: ServerAddress? { core.connectedServer }

    /// The servers this connection knows, seeds and discovered ones, in the order it would try them.
    public var knownServers: [ServerAddress] { core.knownServers }

    /// The largest message (headers plus payload) the server accepts.
    public var maxPayload: Int { core.maxPayload }

    public var statistics: NATSStatistics { core.statistics }

    /// Why the connection closed, if it closed because of an error.
    public var lastError: NATSError? { core.lastError }

    /// Events from now on (connected, disconnected with the reason, reconnected, slow
    /// consumer, …), starting with `.connected` when connected. The stream ends after `.closed`.
    public func events() -> AsyncStream<ConnectionEvent> { core.events() }

    // MARK: - Publishing

    /// Publishes a message. Returns once it is buffered, without waiting and without blocking
    /// the calling thread; ``flush(timeout:)`` waits for the server.
    ///
    /// While reconnecting, the message waits in the reconnect buffer and goes out after the
    /// reconnect.
    /// - Throws: `.invalidSubject`, `.invalidHeaders`, `.maxPayloadExceeded` (the connection stays
    ///   up), `.headersNotSupported`, `.outboundBufferFull` (the server is slower than the
    ///   publisher; ``publishWaitingForRoom(_:to:replyTo:headers:)`` waits instead),
    ///   `.reconnectBufferFull`, `.connectionClosed`.
    public func publish(
        _ payload: some Collection<UInt8>,
        to subject: String,
        replyTo: String? = nil,
        headers: NATSHeaders? = nil
    ) throws(NATSError) {
        try core.publish(payload, to: subject, replyTo: replyTo, headers: headers)
    }

    /// Publishes a message whose payload is an array of bytes (the same as the generic
    /// ``publish(_:to:replyTo:headers:)``, without going through `Collection`).
    public func publish(
        _ payload: [UInt8],
        to subject: String,
        replyTo: String? = nil,
        headers: NATSHeaders? = nil
    ) throws(NATSError) {
        try core.publish(payload, to: subject, replyTo: replyTo, headers: headers)
    }

    /// Publishes a UTF-8 string.
    public func publish(_ text: String, to subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil) throws(NATSError) {
        try core.publish(Array(text.utf8), to: subject, replyTo: replyTo, headers: headers)
    }

    /// Publishes like ``publish(_:to:replyTo:headers:)``, but when the outbound or reconnect
    /// buffer is full it suspends the calling task until there is room (back-pressure)
    /// instead of failing. No thread is blocked meanwhile.
    ///
    /// - Throws: as `publish`, except for the full buffers; `.connectionClosed` if the
    ///   connection closes while waiting, `.cancelled` if the task is cancelled.
    public func publishWaitingForRoom(
        _ payload: [UInt8],
        to subject: String,
        replyTo: String? = nil,
        headers: NATSHeaders? = nil
    ) async throws(NATSError) {
        try await core.publishWaitingForRoom(payload, to: subject, replyTo: replyTo, headers: headers)
    }

    /// Waits until a publish could fit in the outbound (or reconnect) buffer; false when the
    /// connection closes or the task is cancelled first. For publishers built on the
    /// non-blocking `publish` that would rather wait than fail with `.outboundBufferFull`.
    package func waitForRoom() async -> Bool {
        await core.outbound.waitForRoom()
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
        try core.publish(payload, to: subject, subjectIsValid: subjectIsValid, encodedHeaders: encodedHeaders)
    }

    // MARK: - Subscribing

    /// Subscribes to a subject or wildcard pattern, optionally as a member of a queue group
    /// (each message goes to one member of the group).
    ///
    /// The subscription lasts until it is unsubscribed or drained, reaches its maximum, the
    /// connection closes — or every copy of it (and every iterator) is gone, when it
    /// unsubscribes by itself.
    /// - Throws: `.invalidSubject`, `.connectionDraining`, `.connectionClosed`.
    public func subscribe(to subject: String, queueGroup: String? = nil) throws(NATSError) -> NATSSubscription {
        try subscribe(to: subject, queueGroup: queueGroup, pendingLimits: PendingLimits(options))
    }

    /// Subscribes with limits of its own on what may wait for the consumer, in place of
    /// ``NATSOptions/pendingMessageLimit`` and ``NATSOptions/pendingByteLimit`` — for a
    /// consumer that must hold a known window without dropping (a JetStream push consumer
    /// with flow control, say).
    public func subscribe(to subject: String, queueGroup: String? = nil, pendingLimits: PendingLimits) throws(NATSError) -> NATSSubscription {
        guard pendingLimits.messages > 0, pendingLimits.bytes > 0 else {
            throw NATSError(.invalidArgument, "pending limits must be positive")
        }
        return NATSSubscription(lifetime: SubscriptionLifetime(state: try core.subscribe(to: subject, queueGroup: queueGroup, limits: pendingLimits), connection: self))
    }

    // MARK: - Flush

    /// Sends everything buffered and waits for the server to answer a `PING`, which proves it
    /// has processed everything sent before.
    ///
    /// - Throws: `.timeout`; `.disconnected` when the connection broke before the answer;
    ///   `.reconnectBufferFull` when disconnected and the `PING` does not fit;
    ///   `.permissionViolation` when the server refused a publish or a subscription since the
    ///   previous flush or while this one waited (each refusal is reported once; a request
    ///   that was refused reports it itself);
    ///   `.connectionClosed`; `.cancelled`.
    public func flush(timeout: Duration? = nil) async throws {
        try await core.flush(timeout: timeout)
    }

    // MARK: - Request/reply

    /// Publishes a request and waits for the first reply.
    ///
    /// All requests share one wildcard subscription on `_INBOX.<id>.*`; each gets its own token.
    /// - Throws: `.noResponders` when nobody subscribes to `subject` (status 503), `.timeout`,
    ///   `.permissionViolation` at once when the server refuses to let this user publish to
    ///   `subject` or subscribe to the reply subject, `.cancelled`.
    public func request(
        _ payload: some Collection<UInt8>,
        to subject: String,
        headers: NATSHeaders? = nil,
        timeout: Duration? = nil
    ) async throws -> NATSMessage {
        let pending = try core.startRequest(payload, to: subject, headers: headers)
        return try await pending.reply(timeout: timeout ?? options.requestTimeout)
    }

    /// Sends a request with a UTF-8 string payload.
    public func request(_ text: String, to subject: String, headers: NATSHeaders? = nil, timeout: Duration? = nil) async throws -> NATSMessage {
        try await request(Array(text.utf8), to: subject, headers: headers, timeout: timeout)
    }

    /// Publishes a request now, in order with other publishes, without waiting for the reply.
    func startRequest(_ payload: some Collection<UInt8>, to subject: String, headers: NATSHeaders?) throws -> ConnectionCore.PendingRequest {
        try core.startRequest(payload, to: subject, headers: headers)
    }

    func forgetRequest(_ token: String) {
        core.forgetRequest(token)
    }

    // MARK: - Drain and close

    /// Drains every subscription (the server stops sending, consumers get what already
    /// arrived), waits for consumers to take what is queued, flushes publishes, then closes.
    /// Calls made while a drain or close is under way wait for the same end.
    ///
    /// - Throws: `.timeout` when consumers have not caught up within `timeout`; the connection
    ///   is closed all the same.
    public func drain(timeout: Duration? = nil) async throws {
        try await core.drain(timeout: timeout)
    }

    /// Sends what is buffered (for at most ``NATSOptions/closeTimeout``), closes the socket and
    /// ends every subscription. Returns once all of that is done; any number of calls, from
    /// any number of tasks, all return then (a cancelled caller returns at once, and the
    /// teardown goes on).
    public func close() async {
        await core.close()
    }
}

/// The version this client reports in `CONNECT`.
public enum NATSClientVersion {
    public static let current = "0.1.0"
}
