import EnnioCoordinator
import EnnioEvents
import Foundation
import Glibc
import NATSClient
import Synchronization

/// `ennio bench sse`: a coordinator (core NATS, SQLite in a temporary directory) with its HTTP
/// API, `--clients` clients reading `/api/events/stream` over loopback, and a publisher of
/// `--count` events, at `--rate` events/s or as fast as every client takes them (0: at most
/// 20,000 events ahead of the slowest).
///
/// Reports the events/s delivered to every client (from the first publish until the last
/// client has the last event), and the delay from publish to delivery (an event's timestamp
/// is its publish time; each client reads it from the event's JSON when the event arrives),
/// p50/p99/max over every delivery to every client. Clients run on threads of their own in
/// this process and parse every event: on a machine of few cores they compete with the
/// coordinator, as a browser on the same host would.
enum StreamBenchmark {
    static func run(_ arguments: Arguments, count: Int) async throws {
        let clients = try arguments.integer("clients", range: 1...1000) ?? 100
        let rate = try arguments.integer("rate", range: 0...10_000_000) ?? 0
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ennio-bench-sse-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try EventStore(path: directory.appendingPathComponent("history.sqlite").path)
        defer { store.close() }
        let coordinatorConnection = try await BenchCommand.connection(arguments, name: "ennio bench sse coordinator", subscriberLimits: true)
        var options = CoordinatorOptions()
        options.mode = .core
        let coordinator = try Coordinator(connection: coordinatorConnection, store: store, options: options)
        var httpOptions = HTTPAPIOptions()
        httpOptions.port = 0
        httpOptions.maximumConnections = clients + 16
        let api = try HTTPAPI(coordinator: coordinator, options: httpOptions)
        api.start()
        defer { api.stop() }
        let ready = AsyncStream<Void>.makeStream()
        let running = Task { try await coordinator.run { ready.continuation.finish() } }
        for await _ in ready.stream {}

        let readers = try (0..<clients).map { _ in try StreamReader(port: api.port, expecting: count) }
        for reader in readers { reader.start() }
        let deadline = ContinuousClock.now + .seconds(30)
        while api.statistics.streams < clients {
            guard ContinuousClock.now < deadline else { throw BenchError("only \(api.statistics.streams) of \(clients) streams connected") }
            try await Task.sleep(for: .milliseconds(10))
        }

        let connection = try await BenchCommand.connection(arguments, name: "ennio bench sse publisher")
        let publisher = try EventPublisher(connection: connection)
        let template = Event(type: .ciFailing, priority: .urgent, sessionId: "s-1", projectId: "bench", message: "CI failing: unit tests", data: ["attempt": 2])
        let start = ContinuousClock.now
        let interval: Duration = rate > 0 ? .seconds(1) / rate : .zero
        for number in 0..<count {
            if rate > 0 {
                let due = start + interval * number
                if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
            } else if number % 1000 == 999 {
                // As fast as every client takes them: at most 20,000 events (less than a
                // stream's queue) ahead of the slowest client.
                while number - (readers.map(\.received).min() ?? 0) > 20_000 { try await Task.sleep(for: .microseconds(200)) }
            }
            var event = template
            event.id = EventID.random()
            event.timestamp = .now()
            try publisher.publish(event)
        }
        try await connection.flush(timeout: .seconds(120))
        let published = ContinuousClock.now - start

        let finish = ContinuousClock.now + .seconds(120)
        while readers.contains(where: { !$0.isDone }) {
            guard ContinuousClock.now < finish else { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let lastDelivery = readers.map(\.lastArrival).max() ?? ContinuousClock.now
        var delays = readers.flatMap(\.delays)
        delays.sort()
        let delivered = readers.map(\.received).reduce(0, +)
        let complete = readers.filter { $0.received == count }.count
        let elapsed = BenchCommand.seconds(lastDelivery - start)
        func percentile(_ fraction: Double) -> Double {
            delays.isEmpty ? .nan : delays[min(delays.count - 1, Int(Double(delays.count) * fraction))] * 1000
        }
        let statistics = api.statistics
        let perClient = Double(count) / max(elapsed, 1e-9)
        BenchCommand.report(
            "sse",
            "\(clients) clients, \(count) events\(rate > 0 ? " at \(rate)/s" : ""): \(Int64(perClient)) events/s to every client "
                + "(\(Int64(perClient * Double(clients))) deliveries/s; published in \(String(format: "%.3f", BenchCommand.seconds(published))) s), "
                + "publish→SSE p50 \(String(format: "%.2f", percentile(0.5))) ms, p99 \(String(format: "%.2f", percentile(0.99))) ms, max \(String(format: "%.2f", percentile(1))) ms; "
                + "\(complete)/\(clients) clients got every event, \(statistics.streamsDroppedSlow) dropped as slow",
            [
                ("clients", Double(clients)), ("events", Double(count)), ("rate", Double(rate)),
                ("events_per_sec", perClient), ("deliveries_per_sec", perClient * Double(clients)),
                ("p50_ms", percentile(0.5)), ("p99_ms", percentile(0.99)), ("max_ms", percentile(1)),
                ("complete_clients", Double(complete)), ("dropped_slow", Double(statistics.streamsDroppedSlow)),
                ("delivered", Double(delivered)),
            ])
        for reader in readers { reader.stop() }
        running.cancel()
        _ = await running.result
        await connection.close()
        await coordinatorConnection.close()
    }
}

/// One client of the benchmark: a thread reading an event stream from a socket, noting when
/// each event arrives and how long after its timestamp.
private final class StreamReader: @unchecked Sendable {
    let descriptor: Int32
    let expected: Int
    private let done = Atomic<Bool>(false)
    private let receivedCount = Atomic<Int>(0)
    // Written by the reader thread only, read after `isDone` (or after `stop`).
    private(set) var delays: [Double] = []
    private(set) var lastArrival = ContinuousClock.now

    init(port: Int, expecting count: Int) throws {
        expected = count
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else { throw BenchError("cannot connect to the HTTP API on port \(port)") }
        delays.reserveCapacity(count)
    }

    deinit { Glibc.close(descriptor) }

    var isDone: Bool { done.load(ordering: .acquiring) }

    /// Events received so far.
    var received: Int { receivedCount.load(ordering: .relaxed) }

    func start() {
        let request = Array("GET /api/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let thread = Thread { [self] in read() }
        thread.name = "ennio-bench-sse-client"
        thread.start()
    }

    func stop() { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }

    private func read() {
        defer { done.store(true, ordering: .releasing) }
        let marker = Array("\"timestamp\":\"".utf8)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var scanned = 0
        var received = 0
        while received < expected {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            let arrival = ContinuousClock.now
            let now = EventTimestamp.now()
            buffer += chunk[..<count]
            // Each complete message ends with a blank line; find its timestamp.
            var start = 0
            var index = max(scanned, 1)
            while index < buffer.count {
                if buffer[index] == 0x0A, buffer[index - 1] == 0x0A {
                    let message = buffer[start..<index]
                    if let found = Self.find(marker, in: message),
                        let end = message[(found + marker.count)...].firstIndex(of: UInt8(ascii: "\"")),
                        let stamp = try? EventTimestamp(rfc3339: String(decoding: message[(found + marker.count)..<end], as: UTF8.self))
                    {
                        delays.append(BenchCommand.seconds(now - stamp))
                        received += 1
                        receivedCount.store(received, ordering: .relaxed)
                        lastArrival = arrival
                    }
                    start = index + 1
                }
                index += 1
            }
            buffer.removeFirst(start)
            scanned = buffer.count
        }
    }

    private static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = haystack.startIndex
        while index <= haystack.endIndex - needle.count {
            if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
