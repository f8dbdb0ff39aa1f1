import Foundation
import Glibc

/// The nats-py peer, `Tests/Interop/nats_py_peer.py`, running as a child process: an independent
/// NATS implementation to check our client against.
///
/// Its stdout is read line by line by a background thread, so ``readLine(timeout:)`` never blocks
/// for longer than its timeout; its stderr goes to a temporary file (see ``standardError``), which
/// is quoted in every error thrown here. The process is terminated when the value is deinitialised.
///
/// The synchronous methods block the calling thread while they wait. From async tests that wait
/// for something our own client has to do first, prefer ``line(within:)`` and
/// ``exitCode(within:)``, which wait without holding on to a thread of the cooperative pool.
final class PythonPeer: Sendable {
    /// The arguments given to the script, for messages.
    let arguments: [String]

    private let process: ChildProcess
    private let lines: LineQueue
    private let errorPath: String

    /// The Python interpreter that has nats-py: `$NATS_PY_PYTHON`, else
    /// `<repo>/.build-tools/venv/bin/python` (installed by `scripts/install-tools.sh`).
    static func pythonPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["NATS_PY_PYTHON"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw TestSupportError(description: "NATS_PY_PYTHON=\(path) is not an executable file")
            }
            return path
        }
        if let root = repositoryRoot() {
            let path = root + "/.build-tools/venv/bin/python"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestSupportError(
            description: "no Python with nats-py: run scripts/test.sh (or scripts/install-tools.sh) to install it"
        )
    }

    /// `<repo>/Tests/Interop/nats_py_peer.py`.
    static func scriptPath() -> String {
        let root = repositoryRoot()
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()  // Support
                .deletingLastPathComponent()  // NATSClientTests
                .deletingLastPathComponent()  // Tests
                .deletingLastPathComponent().path
        return root + "/Tests/Interop/nats_py_peer.py"
    }

    /// Starts `python -u nats_py_peer.py <arguments>`, e.g.
    /// `["sub", "--url", server.url, "--subject", "s", "--count", "1"]`.
    init(arguments: [String]) throws {
        let python = try Self.pythonPath()
        let script = Self.scriptPath()
        guard FileManager.default.fileExists(atPath: script) else {
            throw TestSupportError(description: "the nats-py peer script is missing: \(script)")
        }
        // Both ends close-on-exec: the child gets the write end through dup2 only, and no other
        // child may inherit it (we would never see EOF). (`pipe2` is not exported by Glibc.)
        var pipe: [Int32] = [-1, -1]
        guard Glibc.pipe(&pipe) == 0 else {
            throw TestSupportError(description: "pipe() failed: \(errnoText())")
        }
        let (readEnd, writeEnd) = (pipe[0], pipe[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        let errorPath = NSTemporaryDirectory() + "ennio-nats-py-peer-\(UUID().uuidString).stderr"
        do {
            process = try ChildProcess(
                executable: python,
                arguments: ["-u", script] + arguments,
                outputPath: errorPath,
                standardOutput: writeEnd
            )
        } catch {
            _ = close(readEnd)
            _ = close(writeEnd)
            throw error
        }
        _ = close(writeEnd)  // Only the child writes; its exit must give us EOF.
        self.arguments = arguments
        self.errorPath = errorPath
        let lines = LineQueue()
        self.lines = lines
        let reader = Thread { lines.pump(from: readEnd) }
        reader.name = "PythonPeer stdout"
        reader.start()
    }

    deinit {
        terminate()
        try? FileManager.default.removeItem(atPath: errorPath)
    }

    /// The next line the peer printed (without its line break), or `nil` once its stdout is
    /// closed and every line has been read.
    /// - Throws: ``TestSupportError`` if no line arrives within `timeout`.
    func readLine(timeout: Duration) throws -> String? {
        switch lines.next(until: ContinuousClock.now + timeout) {
        case .line(let line): return line
        case .end: return nil
        case .timedOut: throw timedOut(waitingFor: "a line on stdout", after: timeout)
        }
    }

    /// Like ``readLine(timeout:)``, but suspends instead of blocking the thread.
    func line(within timeout: Duration) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            switch lines.next(until: .now) {
            case .line(let line): return line
            case .end: return nil
            case .timedOut:
                guard ContinuousClock.now < deadline else { throw timedOut(waitingFor: "a line on stdout", after: timeout) }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// Reads one line and checks that it is `READY` (what `sub` and `reply` print once subscribed).
    func waitUntilReady(timeout: Duration = .seconds(20)) throws {
        let line = try readLine(timeout: timeout)
        guard line == "READY" else { throw unexpected(line, wanted: "READY") }
    }

    /// Reads one line and decodes it as a message printed by `sub` or `reply`.
    /// - Returns: `nil` at the end of the output.
    func readMessage(timeout: Duration) throws -> PythonPeerMessage? {
        guard let line = try readLine(timeout: timeout) else { return nil }
        return try decodeMessage(line)
    }

    /// Like ``readMessage(timeout:)``, but suspends instead of blocking the thread.
    func message(within timeout: Duration) async throws -> PythonPeerMessage? {
        guard let line = try await line(within: timeout) else { return nil }
        return try decodeMessage(line)
    }

    /// Reads one line (suspending, not blocking) and decodes it as JSON of type `T` — the lines
    /// the Key-Value and object store modes print.
    /// - Returns: `nil` at the end of the output.
    func json<T: Decodable>(_ type: T.Type, within timeout: Duration = .seconds(30)) async throws -> T? {
        guard let line = try await line(within: timeout) else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(line.utf8))
        } catch {
            throw unexpected(line, wanted: "a JSON line of \(T.self)")
        }
    }

    /// Waits for the peer to exit and returns its exit code (128 + the signal number if a signal
    /// ended it).
    /// - Throws: ``TestSupportError`` if it is still running after `timeout`.
    func waitForExit(timeout: Duration) throws -> Int32 {
        guard let code = process.waitForExit(timeout: timeout) else {
            throw timedOut(waitingFor: "the process to exit", after: timeout)
        }
        return code
    }

    /// Like ``waitForExit(timeout:)``, but suspends instead of blocking the thread.
    func exitCode(within timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let code = process.exitStatus() { return code }
            guard ContinuousClock.now < deadline else { throw timedOut(waitingFor: "the process to exit", after: timeout) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Ends the peer (SIGTERM, then SIGKILL after 2 s) and waits for it. Idempotent.
    func terminate() {
        process.stop(grace: .seconds(2))
    }

    /// What the peer has written to stderr so far.
    var standardError: String {
        (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
    }

    // MARK: - Errors

    private var identity: String { "nats_py_peer.py \(arguments.joined(separator: " "))" }

    private func timedOut(waitingFor what: String, after timeout: Duration) -> TestSupportError {
        TestSupportError(description: "\(identity): timed out after \(timeout) waiting for \(what); stderr:\n\(standardError)")
    }

    private func unexpected(_ line: String?, wanted: String) -> TestSupportError {
        TestSupportError(
            description: "\(identity): expected \(wanted), got \(line.map { "\"\($0)\"" } ?? "end of output"); stderr:\n\(standardError)"
        )
    }

    private func decodeMessage(_ line: String) throws -> PythonPeerMessage {
        do {
            return try JSONDecoder().decode(PythonPeerMessage.self, from: Data(line.utf8))
        } catch {
            throw unexpected(line, wanted: "a JSON message line")
        }
    }
}

/// A message as the nats-py peer received it (one JSON line of `sub` or `reply` output).
///
/// nats-py keeps one value per header name (the last one received), so every `headers` list has
/// exactly one element; see the notes in `nats_py_peer.py`.
struct PythonPeerMessage: Decodable, Sendable, Equatable {
    let subject: String
    let reply: String?
    let headers: [String: [String]]?
    /// The payload bytes.
    let payload: [UInt8]

    /// The payload decoded as UTF-8.
    var string: String { String(decoding: payload, as: UTF8.self) }

    private enum CodingKeys: String, CodingKey {
        case subject, reply, headers
        case payload = "payload_b64"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        subject = try container.decode(String.self, forKey: .subject)
        reply = try container.decodeIfPresent(String.self, forKey: .reply)
        headers = try container.decodeIfPresent([String: [String]].self, forKey: .headers)
        let encoded = try container.decode(String.self, forKey: .payload)
        guard let bytes = Data(base64Encoded: encoded) else {
            throw DecodingError.dataCorruptedError(forKey: .payload, in: container, debugDescription: "not base64")
        }
        payload = [UInt8](bytes)
    }
}

/// A line of the peer's `kv-get` and `kv-watch` output: an entry, the initial-values marker or,
/// for `kv-get`, a missing key.
struct PythonKeyValueLine: Decodable, Sendable, Equatable {
    let key: String?
    let valueB64: String?
    let revision: UInt64?
    let operation: String?
    let initialDone: Bool?
    let missing: Bool?

    /// The value bytes.
    var value: [UInt8] { valueB64.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } ?? [] }

    private enum CodingKeys: String, CodingKey {
        case key, revision, operation, missing
        case valueB64 = "value_b64"
        case initialDone = "initial_done"
    }
}

/// A line of the peer's `obj-put`, `obj-get` and `obj-watch` output: an object's info or the
/// initial-values marker.
struct PythonObjectLine: Decodable, Sendable, Equatable {
    let name: String?
    let size: UInt64?
    let chunks: UInt32?
    let deleted: Bool?
    let digest: String?
    let nuid: String?
    let initialDone: Bool?

    private enum CodingKeys: String, CodingKey {
        case name, size, chunks, deleted, digest, nuid
        case initialDone = "initial_done"
    }
}

/// Lines read from a pipe by a background thread, handed out in order.
///
/// `@unchecked Sendable`: every stored property is only touched with `condition` locked.
private final class LineQueue: @unchecked Sendable {
    enum Next {
        case line(String)
        case end
        case timedOut
    }

    private let condition = NSCondition()
    private var lines: [String] = []
    private var head = 0
    private var finished = false

    /// Reads `descriptor` until EOF, queueing each line; then closes it. Runs on the reader thread.
    func pump(from descriptor: Int32) {
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            pending += chunk[..<count]
            var start = pending.startIndex
            var complete: [String] = []
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                complete.append(Self.text(pending[start..<newline]))
                start = newline + 1
            }
            pending.removeSubrange(..<start)
            if !complete.isEmpty { append(complete) }
        }
        if !pending.isEmpty { append([Self.text(pending[...])]) }
        _ = close(descriptor)
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next line, waiting for one until `deadline`.
    func next(until deadline: ContinuousClock.Instant) -> Next {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if head < lines.count {
                let line = lines[head]
                head += 1
                if head == lines.count {
                    lines.removeAll(keepingCapacity: true)
                    head = 0
                }
                return .line(line)
            }
            if finished { return .end }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return .timedOut }
            _ = condition.wait(until: Date(timeIntervalSinceNow: remaining.timeInterval))
        }
    }

    private func append(_ new: [String]) {
        condition.lock()
        lines += new
        condition.broadcast()
        condition.unlock()
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
