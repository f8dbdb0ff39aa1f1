import EnnioSync
import Glibc

/// A blocking TCP socket over POSIX calls: the plain ``Transport``.
///
/// One thread reads while another writes; `shutdown()` may come from any thread. The
/// descriptor is released by `close()` only, and `shutdown()` after that does nothing: a
/// descriptor number the process has reused for something else is never shut down.
final class TCPSocket: Transport {
    let descriptor: Int32
    /// Whether `close()` has released the descriptor; guards `shutdown()` against reuse.
    private let closed = Locked(false)

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Connects to `host:port`, trying every address the name resolves to, within `timeout`.
    static func connect(host: String, port: Int, timeout: Duration) throws(NATSError) -> TCPSocket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = String(cString: gai_strerror(status))
            throw NATSError(.connectionFailed, "cannot resolve \(host): \(reason)")
        }
        defer { freeaddrinfo(list) }

        let deadline = ContinuousClock.now + timeout
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 {
                lastError = errnoDescription()
                continue
            }
            do {
                try connect(fd, to: info.pointee.ai_addr, length: info.pointee.ai_addrlen, deadline: deadline)
                let socket = TCPSocket(descriptor: fd)
                socket.configure()
                return socket
            } catch {
                lastError = error.description
                Glibc.close(fd)
            }
        }
        throw NATSError(.connectionFailed, "cannot connect to \(host):\(port): \(lastError)")
    }

    /// Non-blocking connect bounded by `deadline`, then back to blocking mode.
    private static func connect(
        _ fd: Int32,
        to address: UnsafeMutablePointer<sockaddr>,
        length: socklen_t,
        deadline: ContinuousClock.Instant
    ) throws(ConnectFailure) {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(fd, address, length) != 0 {
            guard errno == EINPROGRESS else { throw ConnectFailure(errnoDescription()) }
            guard poll(fd, events: Int16(POLLOUT), until: deadline) else { throw ConnectFailure("timed out") }
            var error: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
            guard error == 0 else { throw ConnectFailure(String(cString: strerror(error))) }
        }
        _ = fcntl(fd, F_SETFL, flags)
    }

    private func configure() {
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Waits until the socket has bytes to read (or is closed), at most until `deadline`.
    func waitReadable(until deadline: ContinuousClock.Instant) -> Bool {
        Self.poll(descriptor, events: Int16(POLLIN), until: deadline)
    }

    /// Waits until the socket can take more bytes (or is broken), at most until `deadline`.
    func waitWritable(until deadline: ContinuousClock.Instant) -> Bool {
        Self.poll(descriptor, events: Int16(POLLOUT), until: deadline)
    }

    /// Reads what is available, blocking until something is; 0 means the peer closed.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(NATSError) -> Int {
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw NATSError(.connectionClosed, "read failed: \(errnoDescription())")
        }
    }

    /// Writes what the socket takes without blocking; 0 when its buffer is full.
    func writeAvailable(_ bytes: UnsafeRawBufferPointer) throws(NATSError) -> Int {
        var written = 0
        while written < bytes.count {
            let count = send(descriptor, bytes.baseAddress! + written, bytes.count - written, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if count > 0 {
                written += count
            } else if count < 0, errno == EINTR {
                continue
            } else if count < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                break
            } else {
                throw NATSError(.connectionClosed, "write failed: \(errnoDescription())")
            }
        }
        return written
    }

    /// Writes every byte, blocking as needed.
    func write(_ bytes: UnsafeRawBufferPointer) throws(NATSError) {
        var offset = 0
        while offset < bytes.count {
            let count = send(descriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if count > 0 {
                offset += count
            } else if count < 0, errno == EINTR {
                continue
            } else {
                throw NATSError(.connectionClosed, "write failed: \(errnoDescription())")
            }
        }
    }

    /// Stops reads and writes; a blocked `read` returns 0. The descriptor stays allocated until
    /// `close()`; after it, this does nothing.
    func shutdown() {
        closed.withLock { closed in
            if !closed { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    /// Releases the descriptor. Call once, after every thread is done with it.
    func close() {
        closed.withLock { closed in
            guard !closed else { return }
            closed = true
            _ = Glibc.close(descriptor)
        }
    }

    static func poll(_ fd: Int32, events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let remaining = deadline - ContinuousClock.now
            let milliseconds = max(0, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let result = Glibc.poll(&entry, 1, Int32(clamping: milliseconds))
            if result > 0 { return true }
            if result == 0 { return false }
            if errno != EINTR { return false }
        }
    }
}

private struct ConnectFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func errnoDescription() -> String {
    String(cString: strerror(errno))
}
