/// One client connection as a state machine: bytes, responses and time in, actions out.
///
/// The server's connection thread only reports what happened (`bytesReceived`,
/// `responseSent`, `timerFired`, …) and carries out the action it gets back. Time is an input
/// (`now`, on any monotonic clock), so tests drive every timeout without sleeping.
///
/// - A request must arrive whole within `requestTimeout` of the moment the server began
///   waiting for it, on a new connection, or of its first byte, on a kept-alive one (a
///   slowloris that trickles its headers is cut off however slowly it sends).
/// - A kept-alive connection on which nothing arrives is closed after `idleTimeout`; while it
///   sits so, the server may close it to make room for a new client (``isIdle``).
/// - Requests that arrived together (pipelining) are handled one after the other, in order.
public struct HTTPConnectionState: Sendable {
    public struct Timeouts: Sendable, Hashable {
        public var request: Duration = .seconds(10)
        public var idle: Duration = .seconds(30)

        public init() {}
    }

    public enum Action: Sendable, Hashable {
        /// Wait for bytes until `deadline`, then report `timerFired` (or what arrived).
        case read(deadline: Duration)
        /// Hand the request to the handler, then report `responseSent`.
        case handle(HTTPRequest)
        /// Answer with the error's status and close.
        case reject(HTTPError)
        /// Close the connection.
        case close(CloseReason)
    }

    public enum CloseReason: Sendable, Hashable {
        /// The client closed its side.
        case peerClosed
        /// A request did not arrive whole in time.
        case requestTimeout
        /// Nothing arrived on a kept-alive connection in time.
        case idleTimeout
        /// The response said the connection ends (HTTP/1.0, `Connection: close`, a stream).
        case responseEnded
    }

    private enum Phase: Sendable, Hashable {
        /// Waiting for a request; `deadline` is when waiting ends.
        case waiting(deadline: Duration, keptAlive: Bool)
        /// A request is with the handler.
        case handling
        case closed
    }

    public let timeouts: Timeouts
    private var parser: HTTPRequestParser
    private var phase: Phase

    /// A new connection, accepted at `now`.
    public init(now: Duration, limits: HTTPRequestParser.Limits = .init(), timeouts: Timeouts = .init()) {
        self.timeouts = timeouts
        parser = HTTPRequestParser(limits: limits)
        phase = .waiting(deadline: now + timeouts.request, keptAlive: false)
    }

    /// The first thing to do.
    public var firstAction: Action {
        if case .waiting(let deadline, _) = phase { return .read(deadline: deadline) }
        return .close(.peerClosed)
    }

    /// Whether the connection waits for a request of which nothing has arrived: closing it
    /// loses nothing.
    public var isIdle: Bool {
        if case .waiting = phase { return !parser.isMidRequest }
        return false
    }

    public mutating func bytesReceived(_ bytes: some Collection<UInt8>, now: Duration) -> Action {
        guard case .waiting(var deadline, let keptAlive) = phase else { return .close(.peerClosed) }
        let wasIdle = !parser.isMidRequest
        parser.append(bytes)
        if keptAlive, wasIdle, parser.isMidRequest {
            // The first byte of the next request: from now on it has the request timeout.
            deadline = now + timeouts.request
            phase = .waiting(deadline: deadline, keptAlive: true)
        }
        return nextRequest(deadline: deadline)
    }

    /// The handler's response went out; `keepAlive` says whether the connection stays open.
    public mutating func responseSent(keepAlive: Bool, now: Duration) -> Action {
        guard case .handling = phase else { return .close(.peerClosed) }
        guard keepAlive else {
            phase = .closed
            return .close(.responseEnded)
        }
        let deadline = now + (parser.isMidRequest ? timeouts.request : timeouts.idle)
        phase = .waiting(deadline: deadline, keptAlive: true)
        return nextRequest(deadline: deadline)
    }

    /// The deadline of the last `.read` passed (or the wait returned early; then it reads on).
    public mutating func timerFired(now: Duration) -> Action {
        guard case .waiting(let deadline, let keptAlive) = phase else { return .close(.peerClosed) }
        guard now >= deadline else { return .read(deadline: deadline) }
        phase = .closed
        return .close(keptAlive && !parser.isMidRequest ? .idleTimeout : .requestTimeout)
    }

    /// The client closed its side (a read returned 0) or the socket failed.
    public mutating func peerClosed() -> Action {
        phase = .closed
        return .close(.peerClosed)
    }

    private mutating func nextRequest(deadline: Duration) -> Action {
        do {
            guard let request = try parser.next() else { return .read(deadline: deadline) }
            phase = .handling
            return .handle(request)
        } catch {
            phase = .closed
            return .reject(error)
        }
    }
}
