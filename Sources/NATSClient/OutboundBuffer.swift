import EnnioSync
import Glibc
import NATSProtocol
import Synchronization

/// The bytes waiting to go to the server, and the writer thread that sends them.
///
/// Publishers encode straight into one shared buffer under a lock. Who writes it out depends
/// on the traffic:
/// - a message that arrives after a quiet spell (nothing written for 20 µs) is written at once
///   by its publisher, without blocking (a request, a lone publish: no thread hand-off);
/// - during a burst, the publisher whose append fills the buffer past 64 KiB writes what the
///   socket takes at once, without blocking, as libnats does (no hand-off per write);
/// - whatever is left is sent by the writer thread: the first append after a write wakes it,
///   and it waits 50 µs for more before writing, so that a trickle of publishes costs a write
///   per batch rather than per message. While publishers keep writing full buffers themselves
///   it waits longer, up to a millisecond (as libnats's flusher does). A `PING` (a flush) is
///   written without that pause.
///
/// Only the writer thread ever blocks on the socket. A publisher never waits: past
/// `connectedLimit` bytes pending, appends fail with `.outboundBufferFull` (``waitForRoom()``
/// lets an async publisher wait instead); while there is no socket they go to the reconnect
/// buffer, up to `disconnectedLimit`, then fail with `.reconnectBufferFull`.
///
/// **A full socket is the writer's.** What a write does not get into the socket stays where it
/// is, in `inFlight` after `inFlightStart` — the head of the stream, sent before `pending` —
/// and is never copied back; while it is there publishers only append, and the writer thread
/// waits for the socket and sends it.
///
/// **Whole frames only to a new server.** A write can stop part-way through a frame (the
/// socket was full, or broke). The rest of that frame, `fragment` bytes at the front of the
/// head, is finished on the same socket or, if that socket is lost, dropped and counted
/// (``droppedMessages``) — never sent to the next server, where it would be a protocol error.
/// When the socket is lost (``detach()``) the buffer keeps only whole `PUB`/`HPUB` and `PING`
/// frames; subscriptions are re-sent from the connection's own table (the preamble of
/// ``attach(_:preamble:)``), so the `SUB`s and `UNSUB`s meant for the old socket are dropped.
final class OutboundBuffer: @unchecked Sendable {
    private let lock = ConditionLock(conditionCount: 2)
    /// `detach` and the writer waiting for a write in flight to end.
    private static let writeEnded = 0
    /// The writer waiting for `writerSignaled`.
    private static let writerWakeUp = 1
    // Everything below is guarded by `lock`.
    // Exclusive access is the lock's job; the runtime's own checks on every append cost
    // more than the copy.
    @exclusivity(unchecked) private var pending = ByteBuffer(capacity: 64 * 1024)
    /// The bytes of the last write; those after `inFlightStart` were not sent yet.
    @exclusivity(unchecked) private var inFlight = ByteBuffer(capacity: 64 * 1024)
    private var inFlightStart = 0
    /// Where `[UInt8]` encoders write before their bytes are copied into `pending`.
    private var scratch: [UInt8] = []
    private var transport: (any Transport)?
    /// Leading bytes of the head (`inFlight` after `inFlightStart`) that finish a frame partly
    /// written to `transport`.
    private var fragment = 0
    /// `close` asked to send what is pending, then shut the socket down.
    private var closing = false
    /// Monotonic nanoseconds after which a closing writer gives up sending.
    private var closeDeadline: Int64 = .max
    /// Everything pending is dropped and the writer ends.
    private var stopped = false
    /// Bytes were appended since the writer last took the buffer: it has a write to do.
    private var writerSignaled = false
    /// The writer is asleep on `writerWakeUp`.
    private var writerWaiting = false
    private var writeInFlight = false
    /// When the last write ended, in nanoseconds of the monotonic clock.
    private var lastWriteEnded: Int64 = 0
    /// Writes made by publishers that filled the buffer: while this grows, a burst is going on.
    private var callerWrites = 0
    /// A `PING` waits in `pending`: the writer sends without its pause.
    private var urgent = false
    /// Async publishers waiting for room (resumed with false when the buffer stops).
    private var roomWaiters = WaiterQueue<Bool>()

    /// Messages whose frame was partly written to a socket that was then lost.
    private let dropped = Atomic<UInt64>(0)

    /// Most bytes held while connected before appends fail with `.outboundBufferFull`.
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
    /// How often a writer blocked on a full socket looks whether `close` set a deadline.
    private static let blockedWriteCheck: Duration = .milliseconds(100)

    init(connectedLimit: Int, disconnectedLimit: Int) {
        self.connectedLimit = connectedLimit
        self.disconnectedLimit = disconnectedLimit
    }

    /// Messages dropped because their frame was partly written to a socket that was lost.
    var droppedMessages: UInt64 { dropped.load(ordering: .relaxed) }

    /// Bytes of the last write not sent yet (they go before `pending`). Call with the lock held.
    private var headCount: Int { inFlight.count - inFlightStart }

    /// Every byte waiting to be written. Call with the lock held.
    private var queuedCount: Int { headCount + pending.count }

    // MARK: - Appending

    /// Encodes a control operation (`SUB`, `UNSUB`, `PING`, `PONG`) into the buffer. It never
    /// writes to the socket itself, so it may be called under the connection's state lock;
    /// call ``kick()`` afterwards (without that lock) to send it at once.
    ///
    /// - Parameters:
    ///   - size: the bytes `encode` will write, to check limits before writing any.
    ///   - urgent: the writer sends it without its batching pause (a flush's `PING`).
    /// - Throws: `.connectionClosed` after `close`; `.reconnectBufferFull` /
    ///   `.outboundBufferFull` when it does not fit.
    func append(size: Int, urgent: Bool = false, _ encode: (inout [UInt8]) -> Void) throws(NATSError) {
        lock.lock()
        defer { lock.unlock() }
        try reserveSpace(size: size)
        scratch.removeAll(keepingCapacity: true)
        encode(&scratch)
        scratch.withUnsafeBytes { pending.append($0) }
        if urgent { self.urgent = true }
        signalWriter()
    }

    /// Writes what is pending now on the calling thread, without blocking, if no write is in
    /// flight (else the writer, already told, sends it).
    func kick() {
        lock.lock()
        // A head left by a full socket is the writer's, which waits for the socket to take it.
        guard !writeInFlight, !closing, !stopped, let transport, headCount == 0, pending.count > 0 else {
            lock.unlock()
            return
        }
        writeDirectly(to: transport)
    }

    /// Encodes `PUB`/`HPUB` straight into the buffer. `headers` is the encoded header block.
    ///
    /// - Parameter size: the limit-checking size, as for ``append(size:urgent:_:)``.
    func appendPublish(
        size: Int,
        subject: UnsafeRawBufferPointer,
        replyTo: UnsafeRawBufferPointer?,
        headers: UnsafeRawBufferPointer?,
        payload: UnsafeRawBufferPointer
    ) throws(NATSError) {
        lock.lock()
        do {
            try reserveSpace(size: size)
        } catch {
            lock.unlock()
            throw error
        }
        let wasIdle = pending.count == 0 && headCount == 0 && !writeInFlight
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
        finishPublish(wasIdle: wasIdle)
    }

    /// Checks the limits. Call with the lock held.
    private func reserveSpace(size: Int) throws(NATSError) {
        guard !closing, !stopped else { throw NATSError.closed() }
        if transport == nil {
            guard queuedCount + size <= disconnectedLimit else {
                throw NATSError(
                    .reconnectBufferFull,
                    "disconnected, and the reconnect buffer (\(disconnectedLimit) bytes) is full"
                )
            }
        } else if queuedCount >= connectedLimit {
            throw NATSError(
                .outboundBufferFull,
                "\(queuedCount) bytes wait for the server, past the limit of \(connectedLimit): the server or the network is slower than the publisher"
            )
        }
    }

    /// Writes at once, or has the writer write later; releases the lock. `wasIdle`: the buffer
    /// was empty and no write in flight before this publish (the clock is read only then).
    private func finishPublish(wasIdle: Bool) {
        if wasIdle, let transport, !closing, monotonicNanoseconds() - lastWriteEnded >= Self.quietNanoseconds {
            writeDirectly(to: transport)
            return
        }
        if pending.count >= Self.callerWriteBytes, headCount == 0, !writeInFlight, let transport, !closing {
            callerWrites &+= 1
            writeDirectly(to: transport)
            return
        }
        signalWriter()
        lock.unlock()
    }

    /// Tells the writer there is something to write, waking it if it sleeps and has a socket
    /// to write to (once: the waker clears `writerWaiting`). Call with the lock held.
    private func signalWriter() {
        writerSignaled = true
        if writerWaiting, transport != nil {
            writerWaiting = false
            lock.signal(Self.writerWakeUp)
        }
    }

    /// Waits until an append could fit (true), or the buffer stops or the task is cancelled
    /// (false). For publishers that would rather wait than fail with `.outboundBufferFull`.
    func waitForRoom() async -> Bool {
        let id = lock.withLock { roomWaiters.makeID() }
        return await suspendAsWaiter { continuation in
            lock.withLock { () -> Bool? in
                if closing || stopped { return false }
                if hasRoom { return true }
                return roomWaiters.add(id, continuation)
            }
        } cancel: {
            let waiter = self.lock.withLock { self.roomWaiters.resolve(id, with: false) }
            waiter?.resume(returning: false)
        }
    }

    /// Publishers waiting in ``waitForRoom()`` right now.
    var roomWaiterCount: Int { lock.withLock { roomWaiters.count } }

    /// Whether an append of a small message would fit. Call with the lock held.
    private var hasRoom: Bool {
        transport == nil ? queuedCount < disconnectedLimit : queuedCount < connectedLimit
    }

    /// Resumes the publishers waiting for room, if there is room. Call with the lock held
    /// (resuming only schedules their tasks; none of them runs on this thread).
    private func wakeRoomWaitersIfRoom() {
        guard !roomWaiters.isEmpty, hasRoom || closing || stopped else { return }
        let open = !(closing || stopped)
        for waiter in roomWaiters.removeAll() { waiter.resume(returning: open) }
    }

    // MARK: - Writing

    /// Sends `pending` on the calling thread without blocking; whatever the socket does not
    /// take goes back to the front of the buffer for the writer. Called with the lock held;
    /// releases it.
    private func writeDirectly(to transport: any Transport) {
        let batch = beginWrite()
        lock.unlock()
        var written = 0
        var failed = false
        do {
            written = try transport.writeAvailable(UnsafeRawBufferPointer(rebasing: inFlight.bytes[batch.start...]))
        } catch {
            failed = true
        }
        lock.lock()
        endWrite(written: written, batch: batch, failed: failed, on: transport)
        lock.unlock()
    }

    /// Sends all of `pending` on the writer thread, blocking (with the lock released meanwhile;
    /// new operations pile up in `pending`) until the socket took it, broke, or a closing
    /// deadline passed. Called with the lock held; returns with it held. Returns false when it
    /// stopped for the closing deadline.
    @discardableResult
    private func writeAll(to transport: any Transport) -> Bool {
        let batch = beginWrite()
        lock.unlock()
        var written = 0
        var failed = false
        var inTime = true
        let length = inFlight.count - batch.start
        do {
            while written < length {
                let count = try transport.writeAvailable(UnsafeRawBufferPointer(rebasing: inFlight.bytes[(batch.start + written)...]))
                written += count
                if count > 0 { continue }
                // The socket is full: wait for room, looking now and then whether `close` set
                // a deadline.
                let deadline = lock.withLock { closeDeadline }
                if monotonicNanoseconds() >= deadline {
                    inTime = false
                    break
                }
                _ = transport.waitWritable(until: .now + Self.blockedWriteCheck)
            }
        } catch {
            failed = true
        }
        lock.lock()
        endWrite(written: written, batch: batch, failed: failed, on: transport)
        return inTime
    }

    /// Where a write starts: the head left by the last write if there is one, else all of
    /// `pending` (moved into `inFlight`), and the fragment it starts with.
    struct Batch {
        var start: Int
        var fragment: Int
    }

    /// Chooses what to write next and marks a write in flight. Call with the lock held.
    private func beginWrite() -> Batch {
        if headCount == 0 {
            swap(&pending, &inFlight)
            pending.removeAll()
            inFlightStart = 0
        }
        urgent = false
        writeInFlight = true
        return Batch(start: inFlightStart, fragment: fragment)
    }

    /// Notes what a write sent; what it did not stays as the head, with how much of it is the
    /// rest of a frame already partly sent. Call with the lock held.
    private func endWrite(written: Int, batch: Batch, failed: Bool, on transport: any Transport) {
        lastWriteEnded = monotonicNanoseconds()
        writeInFlight = false
        inFlightStart = batch.start + written
        if headCount == 0 {
            // Its storage is kept for the next swap: during a burst both buffers keep the size
            // they grew to, instead of a fresh allocation (page faults on every byte) each
            // time. The writer gives it back when it goes to sleep (``releaseIdleStorage()``).
            inFlight.removeAll()
            inFlightStart = 0
            fragment = 0
        } else {
            if written == 0 {
                fragment = batch.fragment
            } else if written < batch.fragment {
                fragment = batch.fragment - written
            } else {
                // Frames start after the batch's fragment: find where the last byte sent belongs.
                let end = ClientFrames.endOfFrame(containing: inFlightStart - 1, from: batch.start + batch.fragment, in: inFlight.bytes) ?? inFlight.count
                fragment = end - inFlightStart
            }
            // The socket was full: the writer sends the rest as soon as it takes more, without
            // a batching pause.
            urgent = true
        }
        if failed {
            // The reader sees the same broken socket and runs the disconnect logic.
            transport.shutdown()
            if self.transport === transport { self.transport = nil }
        }
        if queuedCount > 0 { signalWriter() }
        wakeRoomWaitersIfRoom()
        lock.broadcast(Self.writeEnded)
    }

    // MARK: - Sockets

    /// Hands the writer a new socket; `preamble` (the subscriptions) goes out before anything
    /// buffered while there was no socket.
    func attach(_ transport: any Transport, preamble: [UInt8]) {
        lock.withLock {
            self.transport = transport
            fragment = 0
            preamble.withUnsafeBytes { pending.insertAtFront($0) }
            if pending.count > 0 { signalWriter() }
            lock.broadcast(Self.writeEnded)
        }
    }

    /// Takes the socket away once no write uses it (shut it down first, so that a blocked
    /// write returns). Drops the rest of a frame partly written to it (counted in
    /// ``droppedMessages``), and keeps only whole `PUB`/`HPUB` and `PING` frames for the next
    /// socket. Publishes go on buffering, up to `disconnectedLimit`.
    ///
    /// - Returns: how many `PING`s are kept; they go out on the next socket, so the last that
    ///   many `PONG` waiters stay valid while the earlier ones never get an answer.
    func detach() -> Int {
        lock.withLock {
            transport = nil
            while writeInFlight { lock.wait(Self.writeEnded) }
            if fragment > 0 {
                inFlightStart += fragment
                fragment = 0
                dropped.add(1, ordering: .relaxed)
            }
            // The head, now whole frames, goes back in front of the rest (a rare copy).
            if headCount > 0 { pending.insertAtFront(UnsafeRawBufferPointer(rebasing: inFlight.bytes[inFlightStart...])) }
            inFlight.removeAll(shrinkingTo: 64 * 1024)
            inFlightStart = 0
            let kept = pending.keepFrames { $0 == .publish || $0 == .ping }
            urgent = kept.pings > 0
            lock.broadcast(Self.writeEnded)
            return kept.pings
        }
    }

    /// The storage both buffers hold now, written or not (for tests of what a burst keeps).
    var storageCapacity: Int {
        lock.withLock { pending.capacity + inFlight.capacity }
    }

    /// The number of bytes waiting to be written.
    var pendingByteCount: Int {
        lock.withLock { queuedCount }
    }

    /// Stops accepting operations; the writer sends what is pending (if it has a socket), at
    /// most until `deadline` (monotonic nanoseconds), then shuts the socket down and ends.
    /// Returns at once.
    func beginClose(deadline: Int64) {
        lock.withLock {
            guard !closing else { return }
            closing = true
            closeDeadline = deadline
            wakeRoomWaitersIfRoom()
            lock.signal(Self.writerWakeUp)
            lock.broadcast(Self.writeEnded)
        }
    }

    /// Drops everything not yet written and ends the writer (at teardown). Returns at once.
    func stop() {
        lock.withLock {
            stopped = true
            closing = true
            pending.removeAll(shrinkingTo: 64 * 1024)
            inFlight.removeAll(shrinkingTo: 64 * 1024)
            inFlightStart = 0
            fragment = 0
            wakeRoomWaitersIfRoom()
            lock.signal(Self.writerWakeUp)
            lock.broadcast(Self.writeEnded)
        }
    }

    /// The writer loop; runs on its own thread until the buffer stops, or closes and is sent.
    /// Storage each buffer keeps while the connection is quiet.
    private static let idleCapacity = 1024 * 1024
    /// How long the writer, with nothing to write, waits before it gives back burst storage.
    private static let idleReleaseNanoseconds = 200_000_000

    /// Whether either buffer holds more storage than a quiet connection keeps. Call with the
    /// lock held.
    private var holdsBurstStorage: Bool {
        pending.capacity > Self.idleCapacity || inFlight.capacity > Self.idleCapacity
    }

    /// Gives back what a burst made the two buffers grow to, once the writer has had nothing
    /// to do for a while (the burst is over). Call with the lock held.
    private func releaseIdleStorage() {
        if !writeInFlight, headCount == 0 { inFlight.removeAll(shrinkingTo: Self.idleCapacity) }
        if pending.count == 0 { pending.removeAll(shrinkingTo: Self.idleCapacity) }
    }

    func runWriter() {
        lock.lock()
        while !stopped {
            if closing {
                // Send what is left, then shut the socket down (the reader then ends) and end.
                if writeInFlight {
                    lock.wait(Self.writeEnded)
                    continue
                }
                if let transport, queuedCount > 0, writeAll(to: transport) { continue }
                let transport = self.transport
                lock.unlock()
                transport?.shutdown()
                lock.lock()
                break
            }
            guard writerSignaled, transport != nil else {
                // Storage a burst grew is kept while the burst goes on (a publisher waiting for
                // room leaves the buffer empty for a moment) and given back after a quiet spell.
                writerWaiting = true
                if holdsBurstStorage {
                    lock.wait(Self.writerWakeUp, nanoseconds: Self.idleReleaseNanoseconds)
                    if !writerSignaled, !closing, !stopped { releaseIdleStorage() }
                } else {
                    lock.wait(Self.writerWakeUp)
                }
                writerWaiting = false
                continue
            }
            // Woken by the first append after a write: let the burst build up. Publishers that
            // fill the buffer meanwhile write it themselves; while they do, wait longer rather
            // than take a half-filled buffer from them. The tail of the burst goes out after
            // the first pause in which none of them wrote.
            var pause = Self.batchWaitNanoseconds
            while !closing, !stopped, !urgent {
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
            guard !writeInFlight, !closing, let transport, queuedCount > 0 else { continue }
            writeAll(to: transport)
        }
        lock.unlock()
    }
}

func monotonicNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}
