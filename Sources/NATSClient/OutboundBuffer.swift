import EnnioSync
import Glibc

/// The bytes waiting to go to the server, and the writer thread that sends them.
///
/// Publishers encode straight into one shared buffer under a lock. Who writes it out depends
/// on the traffic:
/// - an operation that arrives after a quiet spell (nothing written for 20 µs) is written at
///   once by its caller, without blocking (a request, a lone publish: no thread hand-off, no
///   delay); so is a `PING`, with everything before it (a flush waits for no pause);
/// - during a burst, the publisher whose append fills the buffer past 64 KiB writes it, as
///   libnats does (no hand-off per write);
/// - whatever is left is sent by the writer thread: the first append after a write wakes it,
///   and it waits 50 µs for more before writing, so that a trickle of publishes costs a write
///   per batch rather than per message. While publishers keep writing full buffers themselves
///   it waits longer, up to a millisecond (as libnats's flusher does), instead of taking
///   half-filled buffers from them.
/// While disconnected the buffer holds what is published, up to a limit, for the next socket.
final class OutboundBuffer: @unchecked Sendable {
    private let lock = ConditionLock(conditionCount: 2)
    /// Publishers waiting for room, `close` and `detach` waiting for a write to end.
    private static let roomOrWriteEnded = 0
    /// The writer waiting for `writerSignaled`.
    private static let writerWakeUp = 1
    // Everything below is guarded by `lock`.
    // Exclusive access is the lock's job; the runtime's own checks on every append cost
    // more than the copy.
    @exclusivity(unchecked) private var pending = ByteBuffer(capacity: 64 * 1024)
    @exclusivity(unchecked) private var spare = ByteBuffer(capacity: 64 * 1024)
    /// Where `[UInt8]` encoders write before their bytes are copied into `pending`.
    private var scratch: [UInt8] = []
    private var socket: (any Transport)?
    private var closing = false
    private var writerRunning = false
    /// Bytes were appended since the writer last took the buffer: it has a write to do.
    private var writerSignaled = false
    /// The writer is asleep on `writerWakeUp`.
    private var writerWaiting = false
    private var writeInFlight = false
    /// `PING`s in `pending`, not yet handed to the socket.
    private var pendingPings = 0
    /// When the last write ended, in nanoseconds of the monotonic clock.
    private var lastWriteEnded: Int64 = 0
    /// Writes made by publishers that filled the buffer: while this grows, a burst is going on.
    private var callerWrites = 0
    /// A `PING` waits in `pending`: the writer sends without its pause.
    private var urgent = false

    /// Most bytes held while connected before publishers wait for the writer.
    let connectedLimit: Int
    /// Most bytes held while there is no socket; past it appends fail.
    private let disconnectedLimit: Int

    /// How long the writer, once woken, lets a burst build up before writing.
    private static let batchWaitNanoseconds = 50_000
    /// The longest the writer waits while publishers write the buffer themselves.
    private static let longestBatchWaitNanoseconds = 1_000_000
    /// A buffer this full is written by the publisher that filled it (if no write is in flight).
    private static let callerWriteBytes = 64 * 1024
    /// An operation that finds the buffer empty this long after the last write ended is written
    /// straight away by its caller. (Counted from the end: a slow `send` must not make every
    /// publish of a busy loop look like the first after a quiet spell.)
    private static let quietNanoseconds: Int64 = 20_000

    init(connectedLimit: Int, disconnectedLimit: Int) {
        self.connectedLimit = connectedLimit
        self.disconnectedLimit = disconnectedLimit
    }

    deinit {
        pending.deallocate()
        spare.deallocate()
    }

    /// Encodes an operation into the buffer.
    ///
    /// - Parameter size: the bytes `encode` will write, to check limits before writing any.
    /// - Throws: ``NATSError/Code/connectionClosed`` after `close`, or when disconnected and the
    ///   operation does not fit in the reconnect buffer.
    func append(size: Int, pings: Int = 0, _ encode: (inout [UInt8]) -> Void) throws(NATSError) {
        let wasIdle = try beginAppend(size: size)
        scratch.removeAll(keepingCapacity: true)
        encode(&scratch)
        scratch.withUnsafeBytes { pending.append($0) }
        finishAppend(pings: pings, wasIdle: wasIdle)
    }

    /// Encodes `PUB`/`HPUB` straight into the buffer. `headers` is the encoded header block.
    ///
    /// - Parameter size: the limit-checking size, as for ``append(size:pings:_:)``.
    func appendPublish(
        size: Int,
        subject: UnsafeRawBufferPointer,
        replyTo: UnsafeRawBufferPointer?,
        headers: UnsafeRawBufferPointer?,
        payload: UnsafeRawBufferPointer
    ) throws(NATSError) {
        let wasIdle = try beginAppend(size: size)
        let total = (headers?.count ?? 0) + payload.count
        // "HPUB " + subject + " " + reply + " " + 20 digits + " " + 20 digits + CRLF + bytes + CRLF
        pending.reserve(subject.count + (replyTo?.count ?? 0) + total + 56)
        if headers != nil {
            pending.appendUnchecked(literal: "HPUB ")
        } else {
            pending.appendUnchecked(literal: "PUB ")
        }
        pending.appendUnchecked(subject)
        pending.appendUnchecked(byte: 0x20)
        if let replyTo {
            pending.appendUnchecked(replyTo)
            pending.appendUnchecked(byte: 0x20)
        }
        if let headers {
            pending.appendUnchecked(decimal: headers.count)
            pending.appendUnchecked(byte: 0x20)
        }
        pending.appendUnchecked(decimal: total)
        pending.appendUnchecked(byte: 0x0D)
        pending.appendUnchecked(byte: 0x0A)
        if let headers { pending.appendUnchecked(headers) }
        pending.appendUnchecked(payload)
        pending.appendUnchecked(byte: 0x0D)
        pending.appendUnchecked(byte: 0x0A)
        finishAppend(pings: 0, wasIdle: wasIdle)
    }

    /// Takes the lock and checks the limits (releasing the lock if they refuse). Returns whether
    /// the buffer was idle: empty, with no write in flight.
    private func beginAppend(size: Int) throws(NATSError) -> Bool {
        lock.lock()
        do {
            try reserveSpace(size: size)
        } catch {
            lock.unlock()
            throw error
        }
        return pending.count == 0 && !writeInFlight
    }

    /// Checks the limits; waits while the connected buffer is full. Call with the lock held.
    private func reserveSpace(size: Int) throws(NATSError) {
        guard !closing else { throw NATSError.closed() }
        if socket == nil {
            guard pending.count + size <= disconnectedLimit else {
                throw NATSError(
                    .reconnectBufferFull,
                    "disconnected, and the reconnect buffer (\(disconnectedLimit) bytes) is full"
                )
            }
        } else {
            while socket != nil, !closing, pending.count >= connectedLimit { lock.wait(Self.roomOrWriteEnded) }
        }
    }

    /// Writes at once, or has the writer write later; releases the lock. `wasIdle`: the buffer
    /// was empty and no write in flight before this operation (the clock is read only then).
    private func finishAppend(pings: Int, wasIdle: Bool) {
        pendingPings += pings
        if pings > 0 {
            urgent = true
            if !writeInFlight, let socket, !closing {
                writeDirectly(to: socket)
                return
            }
        } else if wasIdle, let socket, !closing, monotonicNanoseconds() - lastWriteEnded >= Self.quietNanoseconds {
            writeDirectly(to: socket)
            return
        }
        if pending.count >= Self.callerWriteBytes, !writeInFlight, let socket, !closing {
            writeAsCaller(to: socket)
            return
        }
        signalWriter()
        lock.unlock()
    }

    /// Tells the writer there is something to write, waking it if it sleeps and has a socket
    /// to write to (once: the waker clears `writerWaiting`). Call with the lock held.
    private func signalWriter() {
        writerSignaled = true
        if writerWaiting, socket != nil {
            writerWaiting = false
            lock.signal(Self.writerWakeUp)
        }
    }

    /// Writes `pending` on the calling thread, blocking until the socket has taken it all, as
    /// the writer would: during a burst the publisher that fills the buffer sends it, which
    /// saves waking the writer thread for every write. Called with the lock held; releases it.
    private func writeAsCaller(to socket: any Transport) {
        callerWrites &+= 1
        writeAll(to: socket)
        lock.unlock()
    }

    /// Takes all of `pending` and sends it, blocking, with the lock released meanwhile (new
    /// operations go on piling up in `pending`); lets go of the socket if it failed. Called
    /// with the lock held; returns with it held.
    private func writeAll(to socket: any Transport) {
        swap(&pending, &spare)
        pendingPings = 0
        urgent = false
        writeInFlight = true
        lock.unlock()
        var failed = false
        do {
            try socket.write(UnsafeRawBufferPointer(start: spare.base, count: spare.count))
        } catch {
            failed = true
        }
        lock.lock()
        lastWriteEnded = monotonicNanoseconds()
        spare.removeAll(shrinkingTo: 4 * 1024 * 1024)
        writeInFlight = false
        if failed {
            // The reader sees the same broken socket and runs the disconnect logic.
            socket.shutdown()
            if self.socket === socket { self.socket = nil }
        }
        // What was appended during the write is the writer's to send.
        if pending.count > 0 { signalWriter() }
        lock.broadcast(Self.roomOrWriteEnded)
    }

    /// Sends `pending` on the calling thread without blocking; whatever the socket does not
    /// take goes back to the front of the buffer for the writer. Called with the lock held;
    /// releases it.
    private func writeDirectly(to socket: any Transport) {
        swap(&pending, &spare)
        let pings = pendingPings
        let wasUrgent = urgent
        pendingPings = 0
        urgent = false
        writeInFlight = true
        lock.unlock()

        var written = 0
        var failed = false
        do {
            written = try socket.writeAvailable(UnsafeRawBufferPointer(start: spare.base, count: spare.count))
        } catch {
            failed = true
        }

        lock.lock()
        lastWriteEnded = monotonicNanoseconds()
        writeInFlight = false
        if written < spare.count {
            if failed {
                socket.shutdown()
                if self.socket === socket { self.socket = nil }
            }
            // Unsent bytes go first, before anything appended meanwhile.
            pending.insertAtFront(UnsafeRawBufferPointer(start: spare.base + written, count: spare.count - written))
            pendingPings += pings
            urgent = urgent || wasUrgent
        }
        spare.removeAll()
        if pending.count > 0 { signalWriter() }
        lock.broadcast(Self.roomOrWriteEnded)
        lock.unlock()
    }

    /// Hands the writer a new socket; `preamble` (CONNECT, subscriptions) goes out before
    /// anything buffered while there was no socket.
    func attach(_ socket: any Transport, preamble: [UInt8]) {
        lock.withLock {
            self.socket = socket
            preamble.withUnsafeBytes { pending.insertAtFront($0) }
            if pending.count > 0 { signalWriter() }
            lock.broadcast(Self.roomOrWriteEnded)
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
            while writeInFlight { lock.wait(Self.roomOrWriteEnded) }
            lock.broadcast(Self.roomOrWriteEnded)
            return pendingPings
        }
    }

    /// Drops everything not yet written (a reconnect buffer that can never be sent).
    func discardPending() {
        lock.withLock { pending.removeAll(shrinkingTo: 64 * 1024) }
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
        lock.broadcast(Self.roomOrWriteEnded)
        lock.signal(Self.writerWakeUp)
        while writerRunning, socket != nil, pending.count > 0 || writeInFlight { lock.wait(Self.roomOrWriteEnded) }
        lock.unlock()
    }

    /// The writer loop; runs on its own thread until `close()`.
    func runWriter() {
        lock.lock()
        writerRunning = true
        while true {
            while !closing, !writerSignaled || socket == nil {
                writerWaiting = true
                lock.wait(Self.writerWakeUp)
                writerWaiting = false
            }
            // Woken by the first append after a write: let the burst build up. Publishers that
            // fill the buffer meanwhile write it themselves; while they do, wait longer rather
            // than take a half-filled buffer from them. The tail of the burst goes out after
            // the first pause in which none of them wrote.
            var pause = Self.batchWaitNanoseconds
            while !closing, !urgent {
                let callerWritesBefore = callerWrites
                lock.unlock()
                var interval = timespec(tv_sec: 0, tv_nsec: pause)
                nanosleep(&interval, nil)
                lock.lock()
                guard callerWrites != callerWritesBefore else { break }
                pause = min(pause * 2, Self.longestBatchWaitNanoseconds)
            }
            writerSignaled = false
            // A write in flight (a publisher's) signals again when it ends if bytes are left.
            while closing, writeInFlight { lock.wait(Self.roomOrWriteEnded) }
            guard !writeInFlight else { continue }
            guard let socket, pending.count > 0 else {
                if closing { break }
                continue
            }
            writeAll(to: socket)
            if closing, pending.count == 0 || self.socket == nil { break }
        }
        writerRunning = false
        lock.broadcast(Self.roomOrWriteEnded)
        lock.unlock()
    }
}

func monotonicNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}

/// A growable byte buffer with manual storage: appends are a bounds check and a copy.
/// Not thread-safe and not copyable in meaning: its owner frees it with `deallocate()`.
struct ByteBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    func deallocate() { base.deallocate() }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private mutating func grow(to minimum: Int) {
        var newCapacity = Swift.max(capacity * 2, 4096)
        while newCapacity < minimum { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        appendUnchecked(bytes)
    }

    @inline(__always)
    mutating func appendUnchecked(_ bytes: UnsafeRawBufferPointer) {
        if let source = bytes.baseAddress, bytes.count > 0 {
            (base + count).copyMemory(from: source, byteCount: bytes.count)
            count += bytes.count
        }
    }

    @inline(__always)
    mutating func appendUnchecked(byte: UInt8) {
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    mutating func appendUnchecked(literal: StaticString) {
        appendUnchecked(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// A non-negative decimal number (at most 20 digits).
    @inline(__always)
    mutating func appendUnchecked(decimal value: Int) {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        var remaining = value
        var index = count + digits - 1
        repeat {
            base.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + remaining % 10), toByteOffset: index, as: UInt8.self)
            remaining /= 10
            index -= 1
        } while remaining > 0
        count += digits
    }

    mutating func insertAtFront(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let source = bytes.baseAddress else { return }
        reserve(bytes.count)
        (base + bytes.count).copyMemory(from: base, byteCount: count)
        base.copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    mutating func removeAll() { count = 0 }

    /// Empties the buffer and gives back storage above `limit` bytes.
    mutating func removeAll(shrinkingTo limit: Int) {
        count = 0
        if capacity > limit {
            base.deallocate()
            capacity = limit
            base = UnsafeMutableRawPointer.allocate(byteCount: limit, alignment: 16)
        }
    }
}
