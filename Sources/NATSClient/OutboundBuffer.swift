/// The bytes waiting to go to the server, and the writer thread that sends them.
///
/// Publishers encode straight into one shared buffer under a lock; the writer thread takes the
/// whole buffer at once and sends it in one `write`. While a write is in flight new operations
/// pile up behind it, so a burst of small publishes costs a handful of system calls.
/// While disconnected the buffer holds what is published, up to a limit, for the next socket.
final class OutboundBuffer: @unchecked Sendable {
    private let lock = ConditionLock()
    // Everything below is guarded by `lock`.
    private var pending: [UInt8] = []
    private var spare: [UInt8] = []
    private var socket: TCPSocket?
    private var closing = false
    private var writerRunning = false
    private var writerIdle = false
    private var writeInFlight = false
    /// `PING`s in `pending`, not yet handed to the socket.
    private var pendingPings = 0

    /// Most bytes held while connected before publishers wait for the writer.
    let connectedLimit: Int
    /// Most bytes held while there is no socket; past it appends fail.
    private let disconnectedLimit: Int

    init(connectedLimit: Int, disconnectedLimit: Int) {
        self.connectedLimit = connectedLimit
        self.disconnectedLimit = disconnectedLimit
        pending.reserveCapacity(64 * 1024)
        spare.reserveCapacity(64 * 1024)
    }

    /// Encodes an operation into the buffer.
    ///
    /// - Parameter size: the bytes `encode` will write, to check limits before writing any.
    /// - Throws: ``NATSError/Code/connectionClosed`` after `close`, or when disconnected and the
    ///   operation does not fit in the reconnect buffer.
    func append(size: Int, pings: Int = 0, _ encode: (inout [UInt8]) -> Void) throws(NATSError) {
        lock.lock()
        defer { lock.unlock() }
        guard !closing else { throw NATSError.closed() }
        if socket == nil {
            guard pending.count + size <= disconnectedLimit else {
                throw NATSError(
                    .reconnectBufferFull,
                    "disconnected, and the reconnect buffer (\(disconnectedLimit) bytes) is full"
                )
            }
        } else {
            while socket != nil, !closing, pending.count >= connectedLimit { lock.wait() }
        }
        encode(&pending)
        pendingPings += pings
        if writerIdle { lock.broadcast() }
    }

    /// Hands the writer a new socket; `preamble` (CONNECT, subscriptions) goes out before
    /// anything buffered while there was no socket.
    func attach(_ socket: TCPSocket, preamble: [UInt8]) {
        lock.withLock {
            self.socket = socket
            pending.insert(contentsOf: preamble, at: 0)
            lock.broadcast()
        }
    }

    /// Takes the socket away once no write uses it; publishes go on buffering, up to
    /// `disconnectedLimit`. Shut the socket down first so that a blocked write returns.
    ///
    /// - Returns: how many `PING`s are still unsent; they go out on the next socket, so the
    ///   last that many `PONG` waiters stay valid while the earlier ones never get an answer.
    func detach() -> Int {
        lock.withLock {
            socket = nil
            while writeInFlight { lock.wait() }
            lock.broadcast()
            return pendingPings
        }
    }

    /// Drops everything not yet written (a reconnect buffer that can never be sent).
    func discardPending() {
        lock.withLock { pending.removeAll(keepingCapacity: false) }
    }

    /// The number of bytes waiting to be written.
    var pendingByteCount: Int {
        lock.withLock { pending.count }
    }

    /// Stops accepting operations; the writer sends what is pending (if it has a socket) and exits.
    /// Returns once the writer is done or has no socket to write to.
    func close() {
        lock.lock()
        closing = true
        lock.broadcast()
        while writerRunning, socket != nil, !pending.isEmpty || writeInFlight { lock.wait() }
        lock.unlock()
    }

    /// The writer loop; runs on its own thread until `close()`.
    func runWriter() {
        lock.lock()
        writerRunning = true
        while true {
            while !closing, socket == nil || pending.isEmpty {
                writerIdle = true
                lock.wait()
                writerIdle = false
            }
            guard let socket, !pending.isEmpty else {
                // Closing, with nothing to send or nowhere to send it.
                break
            }
            swap(&pending, &spare)
            pendingPings = 0
            writeInFlight = true
            lock.unlock()

            var failed = false
            do {
                try socket.write(spare)
            } catch {
                failed = true
            }
            spare.removeAll(keepingCapacity: true)

            lock.lock()
            writeInFlight = false
            if failed {
                // The reader sees the same broken socket and runs the disconnect logic.
                socket.shutdown()
                if self.socket?.descriptor == socket.descriptor { self.socket = nil }
            }
            lock.broadcast()
        }
        writerRunning = false
        lock.broadcast()
        lock.unlock()
    }
}
