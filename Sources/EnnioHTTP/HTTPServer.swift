import EnnioSync
import Foundation
import Glibc
import Synchronization

/// How an ``HTTPServer`` listens and what it puts up with.
public struct HTTPServerConfiguration: Sendable {
    /// The address to listen on: loopback unless told otherwise.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one (``HTTPServer/port`` tells which).
    public var port = 0
    /// Most clients served at once. Past it, a new client takes the place of the connection
    /// idle longest, if one is idle, or is answered 503 and closed.
    public var maximumConnections = 256
    public var limits = HTTPRequestParser.Limits()
    public var timeouts = HTTPConnectionState.Timeouts()
    /// How long a write may wait for a client that does not read before the client is dropped.
    public var writeTimeout: Duration = .seconds(10)
    /// Pending connections the kernel holds before the server accepts them.
    public var backlog: Int32 = 1024
    /// The response to requests the server refuses by itself (malformed, too large, too many
    /// clients): by default `{"error":{"code":…,"description":"…"}}`.
    public var errorResponse: @Sendable (HTTPStatus, String) -> HTTPResponse = HTTPServer.defaultErrorResponse

    public init() {}
}

/// Counts of what an ``HTTPServer`` did.
public struct HTTPServerStatistics: Sendable, Hashable {
    /// Connections accepted (served, or refused for being one too many).
    public var accepted: UInt64 = 0
    /// Connections answered 503 because `maximumConnections` were busy.
    public var refused: UInt64 = 0
    /// Idle kept-alive connections closed to make room for a new client.
    public var evicted: UInt64 = 0
    /// Requests handed to the handler.
    public var requests: UInt64 = 0
    /// Requests refused as malformed or too large, with their 4xx/5xx status.
    public var malformed: UInt64 = 0
    /// Connections closed because a request did not arrive whole in time.
    public var requestTimeouts: UInt64 = 0
    /// Kept-alive connections closed after sitting idle.
    public var idleTimeouts: UInt64 = 0
    /// Responses that could not be written whole (the client left or stopped reading).
    public var writeFailures: UInt64 = 0
    /// Streaming responses started.
    public var streams: UInt64 = 0
    /// Connections open now, and how many of them are streaming.
    public var openConnections: Int = 0
    public var openStreams: Int = 0
}

/// A failure to start listening.
public struct HTTPServerError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
}

/// A small HTTP/1.1 server over POSIX sockets, on threads of its own: one accepts, one per
/// connection reads, calls the handler and writes. Handlers may block (SQLite reads); nothing
/// here touches Swift's cooperative thread pool.
///
/// Every client is bounded: request line and header size (``HTTPRequestParser/Limits``),
/// the time a request may take to arrive and a connection may idle
/// (``HTTPConnectionState/Timeouts``), the time a write may wait, and the number of clients
/// at once. Start it with ``start()``; ``stop()`` closes every connection and waits for the
/// threads.
public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    public let configuration: HTTPServerConfiguration
    /// The port it listens on (the chosen one when the configuration said 0).
    public let port: Int
    private let listener: Int32
    private let handler: Handler
    private let clockOrigin = ContinuousClock.now

    private struct Registry {
        var connections: [UInt64: Entry] = [:]
        var nextID: UInt64 = 0
        var stopping = false
        var acceptRunning = false
        var statistics = HTTPServerStatistics()
    }

    private struct Entry {
        var descriptor: Int32
        var idleSince: Duration?
        var streaming = false
        var onClose: [@Sendable () -> Void] = []
    }

    private let registry = Locked(Registry())
    /// Signalled when a thread ends, for `stop()`.
    private let finished = ConditionLock()

    /// Binds and listens at once, so that the port is known; serves nothing until ``start()``.
    public init(configuration: HTTPServerConfiguration = .init(), handler: @escaping Handler) throws(HTTPServerError) {
        self.configuration = configuration
        self.handler = handler
        (listener, port) = try Self.listen(host: configuration.host, port: configuration.port, backlog: configuration.backlog)
    }

    deinit {
        Glibc.close(listener)
    }

    public var statistics: HTTPServerStatistics {
        registry.withLock { registry in
            var statistics = registry.statistics
            statistics.openConnections = registry.connections.count
            statistics.openStreams = registry.connections.values.filter(\.streaming).count
            return statistics
        }
    }

    /// Starts accepting connections.
    public func start() {
        let started = registry.withLock { registry -> Bool in
            guard !registry.acceptRunning, !registry.stopping else { return false }
            registry.acceptRunning = true
            return true
        }
        guard started else { return }
        let thread = Thread { [self] in
            acceptLoop()
            registry.withLock { $0.acceptRunning = false }
            finished.withLock {}
            finished.broadcast()
        }
        thread.name = "ennio-http-accept"
        thread.start()
    }

    /// Stops accepting, closes every connection (streams are told through `whenClosed`) and
    /// waits, at most `timeout`, for their threads to end.
    public func stop(timeout: Duration = .seconds(10)) {
        let callbacks = registry.withLock { registry -> [@Sendable () -> Void] in
            registry.stopping = true
            var callbacks: [@Sendable () -> Void] = []
            for (id, entry) in registry.connections {
                _ = Glibc.shutdown(entry.descriptor, Int32(SHUT_RDWR))
                callbacks += entry.onClose
                registry.connections[id]?.onClose = []
            }
            return callbacks
        }
        _ = Glibc.shutdown(listener, Int32(SHUT_RDWR))
        for callback in callbacks { callback() }
        let deadline = ContinuousClock.now + timeout
        finished.lock()
        while registry.withLock({ $0.acceptRunning || !$0.connections.isEmpty }), ContinuousClock.now < deadline {
            finished.wait(nanoseconds: 50_000_000)
        }
        finished.unlock()
    }

    private var now: Duration { ContinuousClock.now - clockOrigin }

    // MARK: - Accepting

    private func acceptLoop() {
        while true {
            let descriptor = accept(listener, nil, nil)
            if descriptor < 0 {
                if registry.withLock({ $0.stopping }) { return }
                switch errno {
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors: let connections end before taking more.
                    usleep(10_000)
                    continue
                default: return
                }
            }
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            admit(descriptor)
        }
    }

    private enum Admission {
        case serve(UInt64)
        case refuse
        case stop
    }

    private func admit(_ descriptor: Int32) {
        let now = self.now
        let admission = registry.withLock { registry -> Admission in
            guard !registry.stopping else { return .stop }
            registry.statistics.accepted += 1
            if registry.connections.count >= configuration.maximumConnections {
                // Make room by closing the connection idle longest, if any is idle.
                let idle = registry.connections.compactMap { id, entry in entry.idleSince.map { (id, $0) } }
                guard let (victim, _) = idle.min(by: { $0.1 < $1.1 }) else {
                    registry.statistics.refused += 1
                    return .refuse
                }
                _ = Glibc.shutdown(registry.connections[victim]!.descriptor, Int32(SHUT_RDWR))
                registry.connections[victim]?.idleSince = nil
                registry.statistics.evicted += 1
            }
            let id = registry.nextID
            registry.nextID += 1
            registry.connections[id] = Entry(descriptor: descriptor, idleSince: now)
            return .serve(id)
        }
        switch admission {
        case .stop:
            Glibc.close(descriptor)
        case .refuse:
            let response = configuration.errorResponse(.serviceUnavailable, "too many connections; try again later")
            var bytes: [UInt8] = []
            if case .bytes(let body) = response.body {
                var withRetry = response
                withRetry.headers.set("Retry-After", "1")
                bytes = withRetry.head(contentLength: body.count, keepAlive: false) + body
            }
            // Never blocks the accept thread: what does not fit in the socket buffer is lost.
            _ = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            Glibc.close(descriptor)
        case .serve(let id):
            configure(descriptor)
            let thread = Thread { [self] in
                serve(id, descriptor: descriptor)
                finished.withLock {}
                finished.broadcast()
            }
            thread.name = "ennio-http-connection"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private func configure(_ descriptor: Int32) {
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let (seconds, attoseconds) = configuration.writeTimeout.components
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    // MARK: - One connection

    private func serve(_ id: UInt64, descriptor: Int32) {
        defer { close(id) }
        var state = HTTPConnectionState(now: now, limits: configuration.limits, timeouts: configuration.timeouts)
        var action = state.firstAction
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            switch action {
            case .read(let deadline):
                markIdle(id, state.isIdle)
                guard Self.waitReadable(descriptor, timeout: deadline - now) else {
                    action = state.timerFired(now: now)
                    continue
                }
                let count = recv(descriptor, buffer.baseAddress, buffer.count, 0)
                if count < 0, errno == EINTR || errno == EAGAIN { continue }
                if count <= 0 {
                    action = state.peerClosed()
                } else {
                    action = state.bytesReceived(UnsafeRawBufferPointer(rebasing: buffer[..<count]), now: now)
                }
            case .handle(let request):
                markIdle(id, false)
                count { $0.requests += 1 }
                let response = handler(request)
                guard respond(id, descriptor: descriptor, to: request, with: response) else { return }
                let keepAlive = request.keepAlive && !registry.withLock { $0.stopping }
                action = state.responseSent(keepAlive: keepAlive, now: now)
            case .reject(let error):
                count { $0.malformed += 1 }
                let response = configuration.errorResponse(error.status, error.detail)
                _ = write(response, keepAlive: false, includeBody: true, to: descriptor)
                lingeringClose(descriptor)
                return
            case .close(let reason):
                switch reason {
                case .requestTimeout: count { $0.requestTimeouts += 1 }
                case .idleTimeout: count { $0.idleTimeouts += 1 }
                case .peerClosed, .responseEnded: break
                }
                return
            }
        }
    }

    /// Writes the response; for a stream, runs it to its end. Returns whether the connection
    /// may carry another request.
    private func respond(_ id: UInt64, descriptor: Int32, to request: HTTPRequest, with response: HTTPResponse) -> Bool {
        let includeBody = request.method != "HEAD"
        switch response.body {
        case .bytes:
            let keepAlive = request.keepAlive && !registry.withLock { $0.stopping }
            return write(response, keepAlive: keepAlive, includeBody: includeBody, to: descriptor) && keepAlive
        case .stream(let body):
            count { $0.streams += 1 }
            registry.withLock { $0.connections[id]?.streaming = true }
            guard Self.send(response.head(contentLength: nil, keepAlive: false), to: descriptor) else {
                count { $0.writeFailures += 1 }
                return false
            }
            if includeBody {
                body(StreamOutput(server: self, id: id, descriptor: descriptor))
            }
            return false
        }
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, includeBody: Bool, to descriptor: Int32) -> Bool {
        guard case .bytes(let body) = response.body else { return false }
        var bytes = response.head(contentLength: body.count, keepAlive: keepAlive)
        if includeBody { bytes += body }
        guard Self.send(bytes, to: descriptor) else {
            count { $0.writeFailures += 1 }
            return false
        }
        return true
    }

    /// After an error response: stop writing, then read and drop what the client still sends
    /// (for a while), so that closing does not reset the connection before the client has
    /// read the response.
    private func lingeringClose(_ descriptor: Int32) {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_WR))
        let deadline = ContinuousClock.now + .seconds(2)
        var drained = 0
        var scratch = [UInt8](repeating: 0, count: 16384)
        while drained < 4 << 20, ContinuousClock.now < deadline {
            guard Self.waitReadable(descriptor, timeout: min(.seconds(1), deadline - ContinuousClock.now)) else { return }
            let count = scratch.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            drained += count
        }
    }

    private func markIdle(_ id: UInt64, _ idle: Bool) {
        let now = self.now
        registry.withLock { registry in
            guard registry.connections[id] != nil else { return }
            if idle {
                if registry.connections[id]?.idleSince == nil { registry.connections[id]?.idleSince = now }
            } else {
                registry.connections[id]?.idleSince = nil
            }
        }
    }

    private func count(_ change: (inout HTTPServerStatistics) -> Void) {
        registry.withLock { change(&$0.statistics) }
    }

    /// Forgets the connection and closes its descriptor, under the lock, so that no other
    /// thread can shut down a descriptor number the system has given to someone else.
    private func close(_ id: UInt64) {
        let callbacks = registry.withLock { registry -> [@Sendable () -> Void] in
            guard let entry = registry.connections.removeValue(forKey: id) else { return [] }
            Glibc.close(entry.descriptor)
            return entry.onClose
        }
        for callback in callbacks { callback() }
    }

    /// Shuts the connection's socket down (waking its thread) and runs its close callbacks.
    fileprivate func shutDown(_ id: UInt64) {
        let callbacks = registry.withLock { registry -> [@Sendable () -> Void] in
            guard let entry = registry.connections[id] else { return [] }
            _ = Glibc.shutdown(entry.descriptor, Int32(SHUT_RDWR))
            registry.connections[id]?.onClose = []
            return entry.onClose
        }
        for callback in callbacks { callback() }
    }

    /// Adds a callback for when the connection closes; runs it at once if it already has.
    fileprivate func whenClosed(_ id: UInt64, _ callback: @escaping @Sendable () -> Void) {
        let registered = registry.withLock { registry -> Bool in
            guard registry.connections[id] != nil, !registry.stopping else { return false }
            registry.connections[id]?.onClose.append(callback)
            return true
        }
        if !registered { callback() }
    }

    fileprivate func countWriteFailure() {
        count { $0.writeFailures += 1 }
    }

    // MARK: - Sockets

    static func send(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = Glibc.send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent > 0 {
                    offset += sent
                } else if sent < 0, errno == EINTR {
                    continue
                } else {
                    // EAGAIN here means SO_SNDTIMEO passed: the client stopped reading.
                    return false
                }
            }
            return true
        }
    }

    /// Waits until the socket is readable (or closed, or failed); false when `timeout` passes.
    static func waitReadable(_ descriptor: Int32, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            let milliseconds = max(0, remaining.components.seconds * 1000 + (remaining.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let result = poll(&entry, 1, Int32(clamping: milliseconds))
            if result > 0 { return true }
            if result == 0 { return false }
            if errno != EINTR { return true }
        }
    }

    private static func listen(host: String, port: Int, backlog: Int32) throws(HTTPServerError) -> (Int32, Int) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw HTTPServerError(description: "cannot resolve \(host.debugDescription): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard descriptor >= 0 else {
                lastError = String(cString: strerror(errno))
                continue
            }
            var one: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, Glibc.listen(descriptor, backlog) == 0 else {
                lastError = String(cString: strerror(errno))
                Glibc.close(descriptor)
                continue
            }
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            guard bound == 0 else {
                lastError = String(cString: strerror(errno))
                Glibc.close(descriptor)
                continue
            }
            let boundPort: UInt16 = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                    if generic.pointee.sa_family == sa_family_t(AF_INET6) {
                        return generic.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }
                    }
                    return generic.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }
                }
            }
            return (descriptor, Int(UInt16(bigEndian: boundPort)))
        }
        throw HTTPServerError(description: "cannot listen on \(host):\(port): \(lastError)")
    }

    /// `{"error":{"code":…,"description":"…"}}`, the shape every error of the API has.
    public static func defaultErrorResponse(_ status: HTTPStatus, _ description: String) -> HTTPResponse {
        var text = "{\"error\":{\"code\":\(status.code),\"description\":\""
        for scalar in description.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case _ where scalar.value < 0x20: text += String(format: "\\u%04x", scalar.value)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\"}}"
        return .json(Array(text.utf8), status: status)
    }
}

/// A streaming response's connection, for the handler's stream body.
private final class StreamOutput: HTTPStreamOutput {
    let server: HTTPServer
    let id: UInt64
    let descriptor: Int32
    private let closed = Atomic<Bool>(false)

    init(server: HTTPServer, id: UInt64, descriptor: Int32) {
        self.server = server
        self.id = id
        self.descriptor = descriptor
    }

    func write(_ bytes: [UInt8]) -> Bool {
        guard !closed.load(ordering: .acquiring) else { return false }
        guard HTTPServer.send(bytes, to: descriptor) else {
            server.countWriteFailure()
            close()
            return false
        }
        return true
    }

    var peerClosed: Bool {
        if closed.load(ordering: .acquiring) { return true }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 0) > 0 else { return false }
        // Readable: either the client closed (a read returns 0) or it sent something, which a
        // stream has no use for and drops.
        var scratch = [UInt8](repeating: 0, count: 4096)
        let count = scratch.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR)
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        server.shutDown(id)
    }

    func whenClosed(_ callback: @escaping @Sendable () -> Void) {
        server.whenClosed(id, callback)
    }
}
