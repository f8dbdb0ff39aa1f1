import EnnioSync
import Foundation
@testable import NATSClient
import NATSProtocol
import Testing

/// A transport that takes only as many bytes as the test allows (then answers "would
/// block"), records what it took, and can break.
final class ScriptedTransport: Transport, @unchecked Sendable {
    private let lock = ConditionLock()
    private var budget: Int
    private var broken = false
    private var taken: [UInt8] = []

    init(budget: Int = .max) {
        self.budget = budget
    }

    var received: [UInt8] { lock.withLock { taken } }
    var receivedText: String { String(decoding: received, as: UTF8.self) }

    /// Lets it take `count` more bytes.
    func allow(_ count: Int) {
        lock.withLock {
            budget = budget == .max ? .max : budget + count
            lock.broadcast()
        }
    }

    func allowEverything() {
        lock.withLock {
            budget = .max
            lock.broadcast()
        }
    }

    func waitReadable(until deadline: ContinuousClock.Instant) -> Bool { false }

    func waitWritable(until deadline: ContinuousClock.Instant) -> Bool {
        lock.withLock {
            while budget == 0, !broken, ContinuousClock.now < deadline { lock.wait(nanoseconds: 1_000_000) }
            return budget > 0 || broken
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(NATSError) -> Int { 0 }

    func write(_ bytes: UnsafeRawBufferPointer) throws(NATSError) {
        var offset = 0
        while offset < bytes.count {
            offset += try writeAvailable(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            if offset < bytes.count { _ = waitWritable(until: .now + .seconds(1)) }
        }
    }

    func writeAvailable(_ bytes: UnsafeRawBufferPointer) throws(NATSError) -> Int {
        lock.lock()
        defer { lock.unlock() }
        if broken { throw NATSError(.connectionClosed, "broken") }
        let count = min(budget, bytes.count)
        taken += bytes[0..<count]
        if budget != .max { budget -= count }
        return count
    }

    func shutdown() {
        lock.withLock {
            broken = true
            lock.broadcast()
        }
    }

    func close() {}
}

@Suite struct OutboundBufferTests {
    static func publish(_ buffer: OutboundBuffer, _ subject: String, _ payload: String) throws(NATSError) {
        let payloadBytes = Array(payload.utf8)
        var subject = subject
        try subject.withUTF8 { subjectBytes in
            Result { () throws(NATSError) in
                try payloadBytes.withUnsafeBytes { body in
                    Result { () throws(NATSError) in
                        try buffer.appendPublish(size: payloadBytes.count + subjectBytes.count + 32, subject: UnsafeRawBufferPointer(subjectBytes), replyTo: nil, headers: nil, payload: body)
                    }
                }.get()
            }
        }.get()
    }

    /// Runs the writer thread for the duration of `body`.
    static func withWriter(_ buffer: OutboundBuffer, _ body: () async throws -> Void) async rethrows {
        let writer = Thread { buffer.runWriter() }
        writer.start()
        defer { buffer.stop() }
        try await body()
    }

    static func eventually(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOutWaiting(what: what) }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    struct TimedOutWaiting: Error { let what: String }

    /// A write that the socket takes only partly (then "would block") is finished later on the
    /// same socket, byte for byte, in order.
    @Test func aPartialWriteIsFinishedOnItsOwnSocket() async throws {
        let buffer = OutboundBuffer(connectedLimit: 1 << 20, disconnectedLimit: 1 << 20)
        let socket = ScriptedTransport(budget: 7)
        buffer.attach(socket, preamble: [])
        try await Self.withWriter(buffer) {
            try Self.publish(buffer, "a", "hello world")
            try Self.publish(buffer, "b", "second")
            socket.allowEverything()
            try await Self.eventually("everything written") { socket.receivedText == "PUB a 11\r\nhello world\r\nPUB b 6\r\nsecond\r\n" }
        }
    }

    /// A burst grows the buffers, and the storage is given back once the writer has been idle a
    /// while. (That it stays while the burst goes on — no fresh pages, each faulted in, for
    /// every batch — is a matter of speed: BENCHMARKS.md, not a test.)
    @Test func aBurstKeepsItsStorageUntilAQuietSpell() async throws {
        let buffer = OutboundBuffer(connectedLimit: 64 << 20, disconnectedLimit: 1 << 20)
        let socket = ScriptedTransport(budget: 0)
        buffer.attach(socket, preamble: [])
        try await Self.withWriter(buffer) {
            let payload = String(repeating: "x", count: 1000)
            for _ in 0..<8000 { try Self.publish(buffer, "burst", payload) }
            let grown = buffer.storageCapacity
            #expect(grown >= 8_000_000)
            socket.allowEverything()
            try await Self.eventually("the burst written") { buffer.pendingByteCount == 0 && socket.received.count > 8_000_000 }
            try await Self.eventually("the storage given back") { buffer.storageCapacity <= 2 << 20 }
        }
    }

    /// The socket is lost after taking part of a frame: the rest of that frame is dropped and
    /// counted, never sent to the next socket, which gets the preamble and the whole frames
    /// that followed — including a PING, but not the SUB meant for the old socket.
    @Test func theRestOfAFramePartlyWrittenToALostSocketNeverReachesTheNextOne() throws {
        let buffer = OutboundBuffer(connectedLimit: 1 << 20, disconnectedLimit: 1 << 20)
        let lost = ScriptedTransport(budget: 12)
        buffer.attach(lost, preamble: [])
        // After a quiet spell the publisher writes at once: 12 bytes of the first frame go out.
        try Self.publish(buffer, "first", "0123456789")
        #expect(lost.receivedText == "PUB first 10")
        try buffer.append(size: 16) { ClientEncoder.subscribe(subject: "old", sid: 1, into: &$0) }
        try Self.publish(buffer, "second", "abc")
        try buffer.append(size: 6, urgent: true) { ClientEncoder.ping(into: &$0) }
        lost.shutdown()
        #expect(buffer.detach() == 1)
        #expect(buffer.droppedMessages == 1)
        let next = ScriptedTransport(budget: 0)
        buffer.attach(next, preamble: Array("SUB new 2\r\n".utf8))
        next.allowEverything()
        buffer.kick()
        #expect(next.receivedText == "SUB new 2\r\nPUB second 3\r\nabc\r\nPING\r\n")
    }

    /// A write that breaks part-way puts back what it did not send; the whole frames among it
    /// go to the next socket.
    @Test func aWriteThatBreaksKeepsTheWholeFramesItDidNotSend() async throws {
        let buffer = OutboundBuffer(connectedLimit: 1 << 20, disconnectedLimit: 1 << 20)
        let lost = ScriptedTransport(budget: 0)
        buffer.attach(lost, preamble: [])
        try await Self.withWriter(buffer) {
            // The socket takes nothing: what is left is the writer's, which waits for room.
            try Self.publish(buffer, "one", "1")
            try Self.publish(buffer, "two", "2")
            lost.allow(5)
            try await Self.eventually("five bytes written") { lost.receivedText == "PUB o" }
            lost.shutdown()
            #expect(buffer.detach() == 0)
            let next = ScriptedTransport()
            buffer.attach(next, preamble: [])
            try await Self.eventually("the whole frame on the next socket") { next.receivedText == "PUB two 1\r\n2\r\n" }
            #expect(buffer.droppedMessages == 1)
        }
    }

    /// While the socket is full, publishers only append: the writer alone waits for the
    /// socket, and sends everything in order once it takes more.
    @Test func whileTheSocketIsFullPublishersOnlyAppend() async throws {
        let buffer = OutboundBuffer(connectedLimit: 1 << 20, disconnectedLimit: 1 << 20)
        let socket = ScriptedTransport(budget: 0)
        buffer.attach(socket, preamble: [])
        try await Self.withWriter(buffer) {
            var expected = ""
            for index in 0..<2000 {
                try Self.publish(buffer, "s", String(index))
                expected += "PUB s \(String(index).utf8.count)\r\n\(index)\r\n"
            }
            #expect(socket.received.isEmpty)
            socket.allowEverything()
            try await Self.eventually("everything in order") { socket.receivedText == expected }
        }
    }

    /// Past the connected limit appends fail at once; `waitForRoom` returns once the socket
    /// has taken enough.
    @Test func backPressureAtTheLimitFailsFastAndWaitingForRoomResumes() async throws {
        let buffer = OutboundBuffer(connectedLimit: 1024, disconnectedLimit: 1024)
        let socket = ScriptedTransport(budget: 0)
        buffer.attach(socket, preamble: [])
        try await Self.withWriter(buffer) {
            var failure: NATSError?
            for _ in 0..<100 {
                do {
                    try Self.publish(buffer, "s", String(repeating: "x", count: 100))
                } catch let error as NATSError {
                    failure = error
                    break
                }
            }
            #expect(failure?.code == .outboundBufferFull)
            let waiting = Task { await buffer.waitForRoom() }
            socket.allowEverything()
            #expect(await waiting.value)
            try Self.publish(buffer, "s", "fits again")
        }
    }

    /// A socket lost while a write blocks on it: `detach` waits for that write to end, then
    /// the buffer is ready for the next socket, with no byte of the broken frame.
    @Test func detachingInTheMiddleOfAWriteWaitsForItAndKeepsWholeFrames() async throws {
        let buffer = OutboundBuffer(connectedLimit: 1 << 20, disconnectedLimit: 1 << 20)
        let socket = ScriptedTransport(budget: 3)
        buffer.attach(socket, preamble: [])
        try await Self.withWriter(buffer) {
            // Bytes appended right after a write are the writer's: it takes 3, then blocks.
            for index in 0..<50 { try Self.publish(buffer, "m", String(index)) }
            try await Self.eventually("the writer to block") { socket.received.count == 3 }
            socket.shutdown()
            _ = buffer.detach()
            let next = ScriptedTransport()
            buffer.attach(next, preamble: [])
            buffer.kick()
            let text = next.receivedText
            // Whatever went to the lost socket, the new one starts at a frame and holds whole ones.
            #expect(text.hasPrefix("PUB m "))
            #expect(text.hasSuffix("PUB m 2\r\n49\r\n"))
            #expect(buffer.droppedMessages <= 1)
        }
    }

    /// While disconnected, appends go to the reconnect buffer up to its limit, then fail.
    @Test func theReconnectBufferHasItsOwnLimit() throws {
        let buffer = OutboundBuffer(connectedLimit: 1 << 20, disconnectedLimit: 100)
        try Self.publish(buffer, "s", "x")
        #expect { try Self.publish(buffer, "s", String(repeating: "y", count: 100)) } throws: {
            ($0 as? NATSError)?.code == .reconnectBufferFull
        }
        let socket = ScriptedTransport()
        buffer.attach(socket, preamble: [])
        buffer.kick()
        #expect(socket.receivedText == "PUB s 1\r\nx\r\n")
    }

    /// Closing sends what is pending, then shuts the socket down; appends fail from then on.
    @Test func closingSendsWhatIsPendingThenShutsTheSocketDown() async throws {
        let buffer = OutboundBuffer(connectedLimit: 1 << 20, disconnectedLimit: 1 << 20)
        let socket = ScriptedTransport(budget: 0)
        buffer.attach(socket, preamble: [])
        try Self.publish(buffer, "last", "words")
        let writer = Thread { buffer.runWriter() }
        writer.start()
        buffer.beginClose(deadline: monotonicNanoseconds() + 10_000_000_000)
        #expect { try Self.publish(buffer, "late", "x") } throws: { ($0 as? NATSError)?.code == .connectionClosed }
        socket.allowEverything()
        try await Self.eventually("the last words") { socket.receivedText == "PUB last 5\r\nwords\r\n" }
        try await Self.eventually("the shutdown") { (try? socket.writeAvailable(UnsafeRawBufferPointer(start: nil, count: 0))) == nil }
        buffer.stop()
    }
}
