@testable import EnnioAgent
import EnnioEvents
import EnnioSync
import Foundation
import Glibc
import NATSClient
@testable import NATSTestSupport
import Testing

/// The agent's input (issue 15, items 1, 7 and 10): lines are bounded, invalid bytes are
/// rejected and counted, never replaced, nothing is dropped, and a line may leave out its id and
/// timestamp.
@Suite struct LineSplitterTests {
    static func split(_ input: [UInt8], limit: Int = 16, chunks: [Int]) -> [InputLine] {
        var splitter = LineSplitter(maximumLineLength: limit)
        var lines: [InputLine] = []
        var start = 0
        for size in chunks where start < input.count {
            let end = min(start + size, input.count)
            input[start..<end].withUnsafeBufferPointer { splitter.append($0) { lines.append($0) } }
            #expect(splitter.heldByteCount <= limit)
            start = end
        }
        splitter.finish { lines.append($0) }
        return lines
    }

    static let input = Array("first\n\nthis line is too long for sixteen\nexactly-16-bytes\n17-bytes-is-over!\ncrlf\r\n\u{0}nul\nlast, no newline".utf8)
    static let expected: [InputLine] = [
        .line(Array("first".utf8)), .line([]), .tooLong(byteCount: 33), .line(Array("exactly-16-bytes".utf8)),
        .tooLong(byteCount: 17), .line(Array("crlf\r".utf8)), .line(Array("\u{0}nul".utf8)), .line(Array("last, no newline".utf8)),
    ]

    @Test func linesAreTheSameHoweverTheInputIsCut() {
        #expect(Self.split(Self.input, chunks: [Self.input.count]) == Self.expected)
        #expect(Self.split(Self.input, chunks: Array(repeating: 1, count: Self.input.count)) == Self.expected)
        for first in 1..<Self.input.count {
            #expect(Self.split(Self.input, chunks: [first, Self.input.count]) == Self.expected, "cut at \(first)")
        }
    }

    @Test func aHugeLineWithoutNewlineNeverTakesMoreThanTheLimit() {
        var splitter = LineSplitter(maximumLineLength: 1 << 20)
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
        var lines: [InputLine] = []
        for _ in 0..<(300 * 16) {  // 300 MiB
            chunk.withUnsafeBufferPointer { splitter.append($0) { lines.append($0) } }
            #expect(splitter.heldByteCount <= 1 << 20)
        }
        Array("\n{}\n".utf8).withUnsafeBufferPointer { splitter.append($0) { lines.append($0) } }
        #expect(lines == [.tooLong(byteCount: 300 * 1024 * 1024), .line(Array("{}".utf8))])
    }
}

@Suite struct InputLinesTests {
    @Test func aSlowConsumerMakesTheReaderWaitAndLosesNothing() async throws {
        let channel = InputLines.Channel()
        let total = InputLines.maximumQueuedLines * 3
        let sent = Thread {
            for index in 0..<total { _ = channel.send(.line(Array(String(index).utf8))) }
            channel.finish()
        }
        sent.start()
        var received: [String] = []
        for await line in InputLines(channel: channel) {
            guard case .line(let bytes) = line else { continue }
            received.append(String(decoding: bytes, as: UTF8.self))
            if received.count % 100 == 0 { await Task.yield() }
        }
        #expect(received == (0..<total).map(String.init))
    }

    @Test func theReaderStopsWhenTheConsumerIsGone() async throws {
        let channel = InputLines.Channel()
        let refused = Locked<Bool?>(nil)
        let (done, signal) = AsyncStream<Void>.makeStream()
        let thread = Thread {
            var index = 0
            // Fills the queue, then waits in `send` until the consumer goes away.
            while channel.send(.line(Array(String(index).utf8))) { index += 1 }
            refused.withLock { $0 = true }
            signal.finish()
        }
        thread.start()
        let consumer = Task {
            var count = 0
            for await _ in InputLines(channel: channel) {
                count += 1
                if count == 10 { break }
            }
        }
        await consumer.value
        channel.abandon()
        for await _ in done {}
        #expect(refused.withLock { $0 } == true)
    }
}

/// What an agent logged.
final class AgentLog: Sendable {
    private let lines = Locked<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

@Suite struct AgentInputTests {
    static func agent(on server: TestServer, log: AgentLog) async throws -> (NodeAgent, NATSConnection) {
        let connection = try await NATSConnection.connect(to: server.url)
        let agent = try NodeAgent(connection: connection, options: AgentOptions(host: "input-host")) { log.append($0) }
        return (agent, connection)
    }

    @Test func badLinesAreRejectedAndCountedWithTheBytesTheyHad() async throws {
        let server = try TestServer()
        let observer = try await NATSConnection.connect(to: server.url)
        let sessions = try EventSubscription(connection: observer, pattern: try .category(.sessions))
        try await observer.flush()
        let log = AgentLog()
        let (agent, connection) = try await Self.agent(on: server, log: log)

        let folder = NSTemporaryDirectory() + "ennio-input-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let smallest = #"{"event_type":"session_spawned","priority":"info","session_id":"s-1","project_id":"my-app","message":"","data":null}"#
        var input: [UInt8] = Array((smallest + "\n").utf8)
        input += Array(#"{"event_type":"session_working","priority":"info","session_id":"s-"#.utf8) + [0xFF] + Array(#"","project_id":"my-app","message":"","data":null}"#.utf8) + [0x0A]
        input += [0x00] + Array((smallest + "\n").utf8)
        input += [UInt8](repeating: UInt8(ascii: " "), count: 2 << 20) + [0x0A]  // 2 MiB: too long, though blank
        input += Array("\n   \r\n".utf8)  // blank lines: no events, nothing to reject
        input += Array((smallest.replacingOccurrences(of: "s-1", with: "s-2") + "\r\n").utf8)
        _ = FileManager.default.createFile(atPath: folder + "/events.jsonl", contents: Data(input))

        let before = EventTimestamp.now()
        let task = Task { try await agent.run(input: LineReader.file(at: folder + "/events.jsonl")) }
        let relayed = try await within { () -> [Event] in
            var events: [Event] = []
            var iterator = sessions.makeAsyncIterator()
            while events.count < 2, let delivery = await iterator.next() { if let event = delivery.event { events.append(event) } }
            return events
        }
        try await eventually("the bad lines counted") { agent.statistics.rejectedLines == 3 }
        #expect(agent.statistics.relayed == 2)
        #expect(relayed.map(\.sessionId) == ["s-1", "s-2"])
        // The id and the timestamp were filled in.
        #expect(relayed.allSatisfy { EventID.isUUID($0.id) })
        #expect(relayed[0].id != relayed[1].id)
        #expect(relayed.allSatisfy { $0.timestamp >= before && $0.timestamp <= EventTimestamp.now() })

        let lines = log.all.filter { $0.contains("rejected") }
        #expect(lines.count == 3, "\(lines)")
        // Each names what was really there: the byte 0xFF, the NUL, the length.
        #expect(lines.contains { $0.contains("invalid UTF-8: 0xFF") }, "\(lines)")
        #expect(lines.contains { $0.contains("found byte 0x00") }, "\(lines)")
        #expect(lines.contains { $0.contains("\(2 << 20) bytes: longer than the limit") }, "\(lines)")
        #expect(!lines.contains { $0.contains("0xEF") || $0.contains("\u{FFFD}") }, "\(lines)")
        agent.stop()
        try await task.value
        await connection.close()
        await observer.close()
    }

    /// Writers that follow each other closely into the pipe: every line arrives, none is lost
    /// while the reader reopens the pipe.
    @Test func aNamedPipeLosesNoLineBetweenWriters() async throws {
        let server = try TestServer()
        let log = AgentLog()
        let (agent, connection) = try await Self.agent(on: server, log: log)
        let folder = NSTemporaryDirectory() + "ennio-fifo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/events.fifo"
        #expect(mkfifo(path, 0o600) == 0)
        let task = Task { try await agent.run(input: LineReader.file(at: path)) }
        let writers = 200
        let written = Thread {
            for index in 0..<writers {
                let descriptor = open(path, O_WRONLY)
                let line = #"{"event_type":"session_spawned","priority":"info","session_id":"s-\#(index)","project_id":"p","message":"","data":null}"# + "\n"
                _ = line.withCString { write(descriptor, $0, strlen($0)) }
                close(descriptor)
            }
        }
        written.start()
        try await eventually("every writer's line relayed", within: .seconds(120)) { agent.statistics.relayed == UInt64(writers) }
        #expect(agent.statistics.rejectedLines == 0, "\(log.all)")
        agent.stop()
        try await task.value
        await connection.close()
    }
}
