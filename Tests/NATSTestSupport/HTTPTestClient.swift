import Foundation
import Glibc

/// A plain HTTP/1.1 client over a blocking loopback socket, for tests: it sends exactly the
/// bytes it is given (well-formed or not) and reads responses and event streams as they come.
/// Every read waits at most `timeout`, a safety net only, on a thread of its own (``onThread``).
final class HTTPTestClient: @unchecked Sendable {
    let descriptor: Int32
    private var buffer: [UInt8] = []
    var timeout: Duration = .seconds(20)

    struct Response: Sendable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// One server-sent event as a client sees it.
    struct StreamEvent: Sendable, Hashable {
        var id: String?
        var event: String?
        var data: String
    }

    init(port: Int, host: String = "127.0.0.1") throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError(description: "socket() failed: \(errnoText())") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            let text = errnoText()
            Glibc.close(descriptor)
            throw TestSupportError(description: "cannot connect to \(host):\(port): \(text)")
        }
    }

    deinit {
        Glibc.close(descriptor)
    }

    /// Ends the connection both ways (the descriptor is released when the client is).
    func shutdown() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Sends every byte; false if the server closed or reset the connection first.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = Glibc.send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent > 0 {
                    offset += sent
                } else if sent < 0, errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Sends a GET with a Host header and `headers`.
    func sendGet(_ target: String, headers: [String: String] = [:]) {
        var text = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        send(text + "\r\n")
    }

    /// GET `target` and read the response.
    func get(_ target: String, headers: [String: String] = [:]) async throws -> Response {
        sendGet(target, headers: headers)
        return try await readResponse()
    }

    /// Reads one response with a Content-Length body (or the head alone for a stream, when
    /// `headOnly`).
    func readResponse(headOnly: Bool = false) async throws -> Response {
        try await onThread { try self.blockingReadResponse(headOnly: headOnly) }
    }

    /// Reads the next server-sent event of a stream (skipping comments and `retry:`).
    func nextEvent() async throws -> StreamEvent {
        try await onThread { try self.blockingNextEvent() }
    }

    /// Waits until the server closes the connection; true if it did within `limit`.
    func waitForClose(within limit: Duration = .seconds(20)) async -> Bool {
        (try? await onThread { self.blockingWaitForClose(within: limit) }) ?? false
    }

    private func blockingReadResponse(headOnly: Bool) throws -> Response {
        let deadline = ContinuousClock.now + timeout
        var headEnd: Int?
        while headEnd == nil {
            headEnd = Self.find([0x0D, 0x0A, 0x0D, 0x0A], in: buffer)
            if headEnd == nil { try fill(until: deadline) }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw TestSupportError(description: "not an HTTP status line: \(head)")
        }
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = Response(status: status, headers: headers, body: [])
        guard !headOnly, let length = response.header("Content-Length").flatMap({ Int($0) }) else { return response }
        while buffer.count < length { try fill(until: deadline) }
        response.body = Array(buffer[..<length])
        buffer.removeFirst(length)
        return response
    }

    private func blockingNextEvent() throws -> StreamEvent {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let end = Self.find([0x0A, 0x0A], in: buffer) else {
                try fill(until: deadline)
                continue
            }
            let block = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 2)
            var event = StreamEvent(id: nil, event: nil, data: "")
            var dataLines: [String] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") { continue }
                let (name, value) = line.firstIndex(of: ":").map { (String(line[..<$0]), String(line[line.index(after: $0)...].drop { $0 == " " })) } ?? (String(line), "")
                switch name {
                case "id": event.id = value
                case "event": event.event = value
                case "data": dataLines.append(value)
                default: break
                }
            }
            guard !dataLines.isEmpty else { continue }
            event.data = dataLines.joined(separator: "\n")
            return event
        }
    }

    private func blockingWaitForClose(within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            do {
                try fill(until: deadline)
            } catch let error as Closed {
                _ = error
                return true
            } catch {
                return false
            }
        }
        return false
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the server closed the connection" }
    }

    private func fill(until deadline: ContinuousClock.Instant) throws {
        let remaining = deadline - ContinuousClock.now
        let milliseconds = max(0, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, Int32(clamping: milliseconds))
        guard ready > 0 else { throw TestSupportError(description: "no answer from the HTTP server in time") }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw Closed() }
        buffer += chunk[..<count]
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// Runs blocking work (a socket read, a browser's reply) on a thread of its own and awaits it,
/// so that a test's wait never holds one of the cooperative pool's few threads (two on a
/// two-core machine), which every other test running at the same time needs.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}
