import Foundation
import Glibc

/// A real headless Chromium (Debian's `chromium`), driven over the DevTools protocol on a pair
/// of pipes (`--remote-debugging-pipe`: JSON messages ended by a NUL byte, commands on the
/// child's descriptor 3, replies and events on 4). It opens a page and evaluates JavaScript in
/// it, to read the DOM as the page's own scripts left it.
final class HeadlessBrowser: @unchecked Sendable {
    let process: ChildProcess
    private let commands: Int32
    private let replies: Int32
    private let profile: String
    let logPath: String
    private var buffer: [UInt8] = []
    private var nextID = 1
    private var session: String?

    /// The browser binary, or nil when it is not installed (`scripts/install-tools.sh`
    /// installs it, as root).
    static var binaryPath: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init() throws {
        guard let binary = Self.binaryPath else {
            throw TestSupportError(description: "chromium is not installed: run scripts/install-tools.sh as root")
        }
        let toBrowser = try Self.pipe()
        let fromBrowser = try Self.pipe()
        profile = NSTemporaryDirectory() + "ennio-chromium-\(UUID().uuidString)"
        logPath = profile + ".log"
        process = try ChildProcess(
            executable: binary,
            arguments: [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
                "--user-data-dir=\(profile)", "--window-size=1400,1000", "about:blank",
            ],
            outputPath: logPath, passing: [toBrowser[0], fromBrowser[1]])
        Glibc.close(toBrowser[0])
        Glibc.close(fromBrowser[1])
        commands = toBrowser[1]
        replies = fromBrowser[0]
    }

    deinit {
        Glibc.close(commands)
        Glibc.close(replies)
        process.stop(grace: .seconds(5))
        try? FileManager.default.removeItem(atPath: profile)
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// A pipe whose ends close on exec and are numbered 10 or more (clear of the descriptors
    /// the child gets them as).
    private static func pipe() throws -> [Int32] {
        var ends: [Int32] = [0, 0]
        guard Glibc.pipe(&ends) == 0 else { throw TestSupportError(description: "pipe failed: \(errnoText())") }
        return ends.map { end in
            let moved = fcntl(end, F_DUPFD_CLOEXEC, 10)
            Glibc.close(end)
            return moved
        }
    }

    /// Opens `url` in a new tab and attaches to it; later calls evaluate in that tab.
    func open(_ url: String) async throws {
        try await onThread { try self.blockingOpen(url) }
    }

    private func blockingOpen(_ url: String) throws {
        let target = try send("Target.createTarget", ["url": url], session: nil)
        guard let targetID = target["targetId"] as? String else { throw failure("no targetId in \(target)") }
        let attached = try send("Target.attachToTarget", ["targetId": targetID, "flatten": true], session: nil)
        guard let session = attached["sessionId"] as? String else { throw failure("no sessionId in \(attached)") }
        self.session = session
    }

    /// Evaluates `expression` in the page and returns its value (JSON-like: strings, numbers,
    /// arrays, dictionaries).
    func evaluate(_ expression: String) async throws -> Any? {
        try await onThread { try self.blockingEvaluate(expression) }.value
    }

    /// The JSON-like value of an evaluation, wrapped to cross to the awaiting task.
    private struct Value: @unchecked Sendable {
        let value: Any?
    }

    private func blockingEvaluate(_ expression: String) throws -> Value {
        let result = try send("Runtime.evaluate", ["expression": expression, "returnByValue": true], session: session)
        if let exception = result["exceptionDetails"] { throw failure("the page threw: \(exception)") }
        return Value(value: (result["result"] as? [String: Any])?["value"])
    }

    /// A PNG of the page as it is now.
    func screenshot() async throws -> Data {
        try await onThread { try self.blockingScreenshot() }
    }

    private func blockingScreenshot() throws -> Data {
        let result = try send("Page.captureScreenshot", ["format": "png"], session: session)
        guard let text = result["data"] as? String, let data = Data(base64Encoded: text) else { throw failure("no screenshot") }
        return data
    }

    /// Sends one command and waits (at most 30 s) for its reply, skipping events.
    private func send(_ method: String, _ parameters: [String: Any], session: String?) throws -> [String: Any] {
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["id": id, "method": method, "params": parameters]
        if let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        let written = bytes.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let count = write(commands, raw.baseAddress! + offset, raw.count - offset)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        guard written else { throw failure("the browser stopped reading its commands") }
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            while let end = buffer.firstIndex(of: 0) {
                let reply = Array(buffer[..<end])
                buffer.removeFirst(end + 1)
                guard let object = try JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any], object["id"] as? Int == id else { continue }
                if let error = object["error"] { throw failure("\(method) failed: \(error)") }
                return object["result"] as? [String: Any] ?? [:]
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw failure("no reply to \(method) within 30 s") }
            var entry = pollfd(fd: replies, events: Int16(POLLIN), revents: 0)
            let milliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
            guard poll(&entry, 1, Int32(clamping: milliseconds)) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(replies, $0.baseAddress, $0.count) }
            guard count > 0 else { throw failure("the browser closed its pipe") }
            buffer += chunk[..<count]
        }
    }

    private func failure(_ text: String) -> TestSupportError {
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return TestSupportError(description: "chromium: \(text)\n\(log.suffix(2000))")
    }
}
