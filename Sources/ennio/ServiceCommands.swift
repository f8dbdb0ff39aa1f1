import EnnioAgent
import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient

/// Runs `body` until it returns or the process gets SIGINT or SIGTERM, which cancel it.
func runUntilSignalled(_ body: @escaping @Sendable () async throws -> Void) async throws {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let task = Task { try await body() }
    let sources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { task.cancel() }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    do {
        try await task.value
    } catch where task.isCancelled {
        // Stopped by a signal: a normal end.
    }
}

/// The log of the coordinator and the agent. They escape what they quote from the wire; this
/// escapes the whole line once more (escaping is idempotent), so that a log line is always one
/// line.
func logToStandardError(_ line: String) {
    printError(TerminalText(line).description)
}

/// `ennio coordinator`: the central lifecycle coordinator.
enum CoordinatorCommand {
    static let help = """
        usage: ennio coordinator [--db PATH] [--health-interval SECONDS] [--missed-health-checks N]
                                 [--mode auto|core|jetstream] [--batch-size N] [--rebuild]
                                 [--stream-max-age DURATION] [--stream-max-bytes SIZE] [--retain DURATION]
                                 [--server URLS] [--name NAME] [--replicas N]
                                 [--http [HOST:]PORT] [--http-token FILE] [--http-max-clients N]

        Subscribes to every event category, stores every event once in SQLite (default
        ennio-events.sqlite), keeps the session and node tables, publishes all_complete and
        node_disconnected, and answers `ennio history`, `ennio sessions` and `ennio nodes`.
        Runs until SIGINT or SIGTERM.

        With JetStream (the default when the server offers it) the coordinator reads the stream
        ENNIO_EVENTS through the durable consumer ennio-coordinator and acknowledges each event
        only after it is committed to SQLite: nothing published while it is down or restarting is
        lost, and nothing is stored twice. --mode core uses plain subscriptions (at most once).

        Several coordinators: give each a --name (letters, digits, _ and -) and a database of its
        own. Each reads the stream through a durable consumer of its own, ennio-coordinator-NAME,
        so each keeps the whole history; queries go to a queue group, so one of them answers.
        What they derive (all_complete, node_disconnected, rollout_terminal) has an id and a
        timestamp taken from what caused it, so the stream and every history keep it once. A
        coordinator that starts late or was down first catches up from the stream (from its
        checkpoint); until then it answers no query, publishes nothing it derives, and
        /healthz says 503 catching_up. Without --name the consumer is ennio-coordinator.

        --replicas N: the stream keeps N copies of every event, each on a server of its own (3
        on a three-server JetStream cluster: losing any one server loses nothing and stops
        nothing). The coordinator creates the stream with N copies, or changes an existing
        stream to N. Without it, a new stream has one copy and an existing one is left as it is.

        --batch-size: most events per SQLite transaction (and per pull), default 8000. Under
        load bigger transactions store faster; at low rates a batch is what has arrived.

        The session and node tables are kept in the database beside the history, in the same
        transaction as each batch: a restart loads them instead of reading the history again.
        --rebuild makes them again from the history alone (one pass over it) before starting.

        --stream-max-age (default 7d) and --stream-max-bytes (default 1GiB): the limits of the
        stream, set when the coordinator creates it or starts. Past either the oldest events are
        deleted from the stream (not from the history), read or not: they must cover the longest
        time the coordinator may be down. Durations: 90m, 12h, 30d; sizes: 500MB, 10GiB.

        --retain DURATION (e.g. 30d; default: keep every event): events whose timestamp is older
        are deleted from the history, at start and every minute, a few thousand per transaction
        between batches being stored. The session and node tables keep what those events made of
        them. Kept whatever their age: rollout and run events (their state is replayed from them
        at every start). --rebuild after a deletion rebuilds from what is left.

        Fails at once, creating no database, when no server answers (or, with --mode jetstream,
        when the server has no JetStream); once connected it reconnects whenever the connection
        is lost.

        --http serves the HTTP API and the dashboard (off by default): `--http 8080` listens on
        127.0.0.1:8080; name another address to listen there (`--http 0.0.0.0:8080`,
        `--http [::1]:8080`; port 0 picks a free one). --http-token FILE: every path but / and
        /healthz then needs the token in the file, as `Authorization: Bearer <token>` (the
        dashboard asks for it once). --http-max-clients: most clients at once, default 256.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(
            raw, options: [
                "db", "health-interval", "missed-health-checks", "server", "mode", "batch-size", "stream-max-age", "stream-max-bytes", "retain",
                "http", "http-token", "http-max-clients", "name", "replicas",
            ],
            flags: ["rebuild"], connecting: true)
        var options = CoordinatorOptions()
        options.defaultHealthInterval = try arguments.seconds("health-interval") ?? options.defaultHealthInterval
        options.missedHealthChecks = try arguments.integer("missed-health-checks", range: 1...1000) ?? options.missedHealthChecks
        options.batchSize = try arguments.integer("batch-size", range: 1...100_000) ?? options.batchSize
        options.rebuildFromHistory = arguments.flag("rebuild")
        let name = arguments.value("name")
        if let name {
            do {
                try SubjectSegment.validate(name, role: "coordinator name")
            } catch {
                throw UsageError(error.description)
            }
        }
        options.consumerName = CoordinatorOptions.consumerName(for: name)
        options.replicas = try arguments.replicas()
        options.streamLimits.maxAge = try arguments.duration("stream-max-age", range: .seconds(60) ... .seconds(3650 * 86_400)) ?? options.streamLimits.maxAge
        options.streamLimits.maxBytes = try arguments.byteCount("stream-max-bytes", range: 1 << 20 ... Int64.max) ?? options.streamLimits.maxBytes
        options.retention = try arguments.duration("retain", range: .seconds(60) ... .seconds(36_500 * 86_400))
        switch try arguments.durability() {
        case nil: options.mode = .automatic
        case true?: options.mode = .jetStream
        case false?: options.mode = .core
        }
        var httpOptions: HTTPAPIOptions?
        if let address = arguments.value("http") {
            var http = HTTPAPIOptions()
            (http.host, http.port) = try Self.listenAddress(address)
            if let file = arguments.value("http-token") { http.token = try Self.token(from: file) }
            http.maximumConnections = try arguments.integer("http-max-clients", range: 1...10_000) ?? http.maximumConnections
            httpOptions = http
        } else if arguments.value("http-token") != nil || arguments.value("http-max-clients") != nil {
            throw UsageError("--http-token and --http-max-clients need --http")
        }
        let path = arguments.value("db") ?? "ennio-events.sqlite"
        // Connected and checked before the history is opened: a coordinator that cannot run
        // leaves no database file behind.
        let connection = try await connect(
            arguments, name: name.map { "ennio coordinator \($0)" } ?? "ennio coordinator", longRunning: true, configure: options.configure)
        if options.mode == .jetStream, connection.serverInfo?.jetStream != true {
            await connection.close()
            throw CommandFailure(
                "--mode jetstream: the server at \(connection.connectedServer?.description ?? "?") has no JetStream "
                    + "(start nats-server with -js), so events published while the coordinator is down would be lost")
        }
        let store: EventStore
        do {
            store = try EventStore(path: path)
        } catch {
            await connection.close()
            throw error
        }
        let report = reportConnectionEvents(of: connection, as: "coordinator")
        defer { report.cancel() }
        let started = ContinuousClock.now
        let coordinator = try Coordinator(connection: connection, store: store, options: options, log: logToStandardError)
        let loaded = ContinuousClock.now - started
        // The last seq, not count(*), which reads an index the size of the history.
        let stored = try store.lastSequence()
        let milliseconds = Double(loaded.components.seconds) * 1000 + Double(loaded.components.attoseconds) / 1e15
        printError("coordinator: history in \(path) (\(Counted(Int(stored), "event"))), state ready in \(String(format: "%.0f", milliseconds)) ms, connected to \(connection.connectedServer?.description ?? "?")")
        var api: HTTPAPI?
        if let httpOptions {
            do {
                api = try HTTPAPI(coordinator: coordinator, options: httpOptions)
            } catch {
                throw UsageError("--http: \(error)")
            }
            api?.start()
            let host = httpOptions.host.contains(":") ? "[\(httpOptions.host)]" : httpOptions.host
            printError("coordinator: HTTP API and dashboard on http://\(host):\(api?.port ?? 0)/\(httpOptions.token == nil ? "" : " (token required)")")
        }
        try await runUntilSignalled {
            try await coordinator.run()
        }
        api?.stop()
        let statistics = coordinator.statistics
        printError("coordinator: stopping; received \(statistics.received), stored \(statistics.stored), duplicates \(statistics.duplicates), malformed \(statistics.malformed), mismatched \(statistics.mismatched), store failures \(statistics.storeFailures), dropped \(statistics.dropped), expired \(statistics.expired)")
        try? await connection.drain(timeout: .seconds(5))
        store.close()
        return 0
    }
}

extension CoordinatorCommand {
    /// `PORT` (on loopback) or `HOST:PORT`, with an IPv6 host in brackets.
    static func listenAddress(_ text: String) throws -> (String, Int) {
        var host = "127.0.0.1"
        var portText = text
        if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw UsageError("--http needs a host before the colon (127.0.0.1:PORT, 0.0.0.0:PORT), not \(text.debugDescription)") }
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw UsageError("--http must be PORT or HOST:PORT with a port from 0 to 65535, not \(text.debugDescription)")
        }
        return (host, port)
    }

    /// The token in `path`, without the line break that ends it. Never printed.
    static func token(from path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw UsageError("--http-token: cannot read \(path)") }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw UsageError("--http-token: \(path) is empty") }
        guard !token.contains(where: { $0.isNewline || $0 == " " }) else {
            throw UsageError("--http-token: the token in \(path) must be one word on one line")
        }
        return token
    }
}

/// `ennio agent`: the node agent of one host.
enum AgentCommand {
    static let help = """
        usage: ennio agent --host NAME [--health-interval SECONDS] [--events-from PATH|-]
                           [--sessions-dir DIR] [--poll DURATION] [--idle-after DURATION]
                           [--project P] [--mode auto|core|jetstream] [--replicas N] [--server URLS]

        Publishes node_launched, node_connected (on every connect), node_health_check every
        interval (default 10 s) and node_disconnected when it stops. With --events-from it relays
        JSON events, one per line, from a file, a named pipe (reopened for each writer) or
        standard input (-); a line may leave out id and timestamp (the agent fills them in), and
        a line longer than 1 MiB, not UTF-8 or not an event is rejected and counted.
        Stops on SIGINT, SIGTERM or `ennio.commands.shutdown`. Fails at once when no server
        answers; once connected it reconnects whenever the connection is lost.

        Its lifecycle loop observes the sessions in DIR (records written by `ennio session
        start`; default $XDG_STATE_HOME/ennio/sessions, else ~/.local/state/ennio/sessions):
        every --poll (default 10s) it probes each session's process and log and publishes
        session_spawned or session_restored, status_changed, activity_changed (active; idle
        after --idle-after without output, default 60s; exited), session_exited or
        session_killed once, and tick_error for records it cannot use. It obeys
        `ennio.commands.kill` with {"host":…,"session":…}: SIGTERM, SIGKILL 10s later.
        Durations are written 500ms, 2s, 1m.

        With JetStream (the default when the server offers it) every event is published with an
        acknowledgement from the stream ENNIO_EVENTS, retried for up to a minute (through a
        reconnect to another server and the election of a new stream leader), and reported if it
        still fails. --replicas N: create the stream with N copies if it does not exist yet (an
        existing stream is left as it is; `ennio coordinator --replicas` changes it).
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(
            raw, options: ["host", "health-interval", "events-from", "project", "server", "mode", "sessions-dir", "poll", "idle-after", "replicas"],
            connecting: true)
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument \(arguments.positionals[0].debugDescription)") }
        let host = try arguments.required("host")
        do {
            try SubjectSegment.validate(host, role: "host")
        } catch {
            throw UsageError(error.description)
        }
        var options = AgentOptions(host: host)
        options.healthInterval = try arguments.seconds("health-interval") ?? options.healthInterval
        options.projectId = arguments.value("project") ?? ""
        options.durable = try arguments.durability()
        options.streamReplicas = try arguments.replicas()
        var sessions = SessionLoopOptions(directory: SessionCommand.directory(arguments))
        sessions.pollInterval = try arguments.duration("poll", range: .milliseconds(10) ... .seconds(3600)) ?? sessions.pollInterval
        sessions.idleAfter = try arguments.duration("idle-after") ?? sessions.idleAfter
        options.sessions = sessions
        var lines: InputLines?
        if let source = arguments.value("events-from") {
            if source == "-" {
                lines = LineReader.standardInput()
            } else {
                guard FileManager.default.fileExists(atPath: source) else { throw UsageError("no such file or pipe: \(source)") }
                lines = LineReader.file(at: source)
            }
        }
        let connection = try await connect(arguments, name: "ennio agent \(host)", longRunning: true)
        let report = reportConnectionEvents(of: connection, as: "agent \(host)")
        defer { report.cancel() }
        let agent = try NodeAgent(connection: connection, options: options, log: logToStandardError)
        let input = lines
        try await runUntilSignalled {
            try await agent.run(input: input)
        }
        let statistics = agent.statistics
        printError("agent \(host): relayed \(statistics.relayed), rejected \(statistics.rejectedLines), health checks \(statistics.healthChecks), failed publishes \(statistics.failedPublishes) (\(statistics.refusedPublishes) refused)")
        if let loop = agent.sessionLoop?.statistics {
            printError("agent \(host): lifecycle loop: \(loop.ticks) ticks, \(loop.published) session events published, \(loop.tickErrors) tick errors, \(loop.kills) kills")
        }
        await connection.close()
        return 0
    }
}
