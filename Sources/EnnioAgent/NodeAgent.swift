import EnnioSync
import EnnioEvents
public import NATSClient
import Synchronization

/// How a node agent runs.
public struct AgentOptions: Sendable {
    /// This node's name: the third token of its subjects (`ennio.node.<host>.…`).
    public var host: String
    /// How often to publish `NodeHealthCheck`.
    public var healthInterval: Duration = .seconds(10)
    /// The project id written in the agent's own node events (may be empty).
    public var projectId = ""
    /// Publish with JetStream acknowledgements (`true`), core NATS (`false`), or JetStream
    /// when the server offers it (`nil`, the default).
    public var durable: Bool?
    /// The event stream's copies if this agent creates it (default 1); an existing stream is
    /// left as it is (`EventStream.prepareForPublishing(_:replicas:)`).
    public var streamReplicas: Int?
    /// The lifecycle loop over this host's sessions directory; `nil`: no loop.
    public var sessions: SessionLoopOptions?

    public init(host: String) {
        self.host = host
    }
}

/// Counts of what an agent did.
public struct AgentStatistics: Sendable, Hashable {
    public var relayed: UInt64 = 0
    public var rejectedLines: UInt64 = 0
    public var healthChecks: UInt64 = 0
    public var commands: UInt64 = 0
    /// Events that could not be published (or acknowledged) after retries; each is logged,
    /// except that a refusal by the server's permissions is logged once per event type.
    public var failedPublishes: UInt64 = 0
    /// Of those, events the server refused (this user may not publish on their subject).
    public var refusedPublishes: UInt64 = 0
}

/// The agent on one host: announces the node, reports health, relays the session events local
/// programs hand it, and obeys fleet-wide and host-targeted commands.
///
/// - `NodeLaunched` when it starts, `NodeConnected` on every (re)connect,
///   `NodeHealthCheck` every interval (load and uptime in `data`), `NodeDisconnected` when it
///   stops cleanly.
/// - Commands arrive on `ennio.commands.<command>` with an optional JSON body; a body with a
///   `"host"` targets one node. `shutdown` stops the agent; `health_check` reports at once;
///   `kill` (`"session"` in the body) kills one of this host's sessions.
/// - With `options.sessions`, its ``SessionLoop`` observes the host's sessions directory and
///   publishes their lifecycle.
public final class NodeAgent: Sendable {
    public let connection: NATSConnection
    public let options: AgentOptions
    let publisher: EventPublisher
    private let log: @Sendable (String) -> Void
    private let counters = Locked(AgentStatistics())
    /// Event types whose refusal has been logged.
    private let refusedTypes = Locked(Set<EventType>())
    private let startedAt = ContinuousClock.now
    /// Tasks waiting in `waitForStop`, by ticket.
    private let stopWaiters = Locked<(next: Int, waiting: [Int: CheckedContinuation<Void, Never>])>((0, [:]))
    private let stopped = Atomic<Bool>(false)
    /// The lifecycle loop, when `options.sessions` asks for one.
    public let sessionLoop: SessionLoop?

    public init(connection: NATSConnection, options: AgentOptions, log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.connection = connection
        self.options = options
        self.publisher = try EventPublisher(connection: connection, host: options.host)
        self.log = log
        sessionLoop = options.sessions.map { SessionLoop(host: options.host, options: $0, log: log) }
    }

    public var statistics: AgentStatistics { counters.withLock { $0 } }

    /// Whether events go through JetStream with acknowledgements.
    public var isDurable: Bool {
        options.durable ?? (connection.serverInfo?.jetStream == true)
    }

    /// Publishes one event, durably when configured; failures are counted and logged, never
    /// silent.
    @discardableResult
    func send(_ event: Event) async -> Bool {
        do {
            if isDurable {
                try await publisher.publishDurably(event)
            } else {
                try publisher.publish(event)
            }
            return true
        } catch let error as NATSError where error.code == .permissionViolation {
            counters.withLock {
                $0.failedPublishes += 1
                $0.refusedPublishes += 1
            }
            if refusedTypes.withLock({ $0.insert(event.eventType).inserted }) {
                log("agent \(options.host): may not publish \(event.eventType) (logged once; counted in refused publishes): \(LogText(error))")
            }
            return false
        } catch {
            counters.withLock { $0.failedPublishes += 1 }
            log("agent \(options.host): could not publish \(event.eventType) \(LogText(event.id)): \(LogText(error))")
            return false
        }
    }

    /// Runs until a `shutdown` command, `stop()`, or cancellation; relays `lines` (one JSON
    /// event per line) meanwhile. Publishes `NodeDisconnected` and flushes before returning.
    public func run(lines: AsyncStream<String>? = nil, ready: (@Sendable () -> Void)? = nil) async throws {
        var relaying: (@Sendable () async -> Void)?
        if let lines {
            relaying = { for await line in lines { await self.relay(line: line) } }
        }
        try await run(relaying: relaying, ready: ready)
    }

    /// Runs as `run(lines:ready:)` does, relaying the lines a ``LineReader`` reads; when the
    /// agent stops, the reader is told to stop too.
    public func run(input: InputLines?, ready: (@Sendable () -> Void)? = nil) async throws {
        defer { input?.channel.abandon() }
        var relaying: (@Sendable () async -> Void)?
        if let input {
            relaying = { for await line in input { await self.relay(line) } }
        }
        try await run(relaying: relaying, ready: ready)
    }

    /// The agent's work; `relaying`, if any, relays every line of its input and returns at its end.
    private func run(relaying: (@Sendable () async -> Void)?, ready: (@Sendable () -> Void)?) async throws {
        let startedAt = EventTimestamp.now()
        let commands = try connection.subscribe(to: EventPattern.commands.subject)
        let connectionEvents = connection.events()
        if isDurable, try await EventStream.prepareForPublishing(JetStream(connection: connection), replicas: options.streamReplicas) == nil {
            log("agent \(options.host): the stream \(EventStream.name) does not exist yet and this user may not create it; events are retried until the coordinator creates it")
        }
        await publishNodeEvent(.nodeLaunched, message: "agent on \(options.host) started")
        await publishNodeEvent(.nodeConnected, message: "\(options.host) connected")
        await publishHealthCheck()
        do {
            try await connection.flush()
        } catch let error as NATSError where error.code == .permissionViolation {
            // What the server refused (commands, events) is reported where it was refused; the
            // agent runs on with what it may do.
        }
        log("agent \(options.host): running, health check every \(options.healthInterval)")
        ready?()

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForStop() }
            group.addTask {
                for await command in commands where await self.obey(command) { return }
                if let error = commands.error {
                    // Refused by the server: the agent runs on, deaf to commands, and says so once.
                    self.log("agent \(self.options.host): receives no commands: \(LogText(error))")
                    await self.waitForStop()
                }
            }
            group.addTask {
                for await event in connectionEvents {
                    if case .reconnected = event { await self.publishNodeEvent(.nodeConnected, message: "\(self.options.host) reconnected") }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.options.healthInterval)
                    if Task.isCancelled { break }
                    await self.publishHealthCheck()
                }
            }
            if let sessionLoop = self.sessionLoop {
                group.addTask {
                    await sessionLoop.run(startedAt: startedAt) { await self.send($0) }
                    await self.waitForStop()
                }
            }
            if let relaying {
                group.addTask {
                    await relaying()
                    // The input ended; keep running until told to stop.
                    await self.waitForStop()
                }
            }
            await group.next()
            group.cancelAll()
        }
        stop()
        try? commands.unsubscribe()
        // Say goodbye even when the caller was cancelled: this runs on its own.
        let connection = self.connection
        _ = await Task {
            await self.publishNodeEvent(.nodeDisconnected, message: "agent on \(self.options.host) stopped")
            try await connection.flush(timeout: .seconds(5))
        }.result
        log("agent \(options.host): stopped")
    }

    /// Asks `run` to finish.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        let waiters = stopWaiters.withLock { state in
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        waiters.forEach { $0.resume() }
    }

    /// Returns once `stop()` was called or the calling task is cancelled. Any number of tasks
    /// may wait at once.
    private func waitForStop() async {
        let ticket = stopWaiters.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = stopWaiters.withLock { state -> Bool in
                    if stopped.load(ordering: .relaxed) || Task.isCancelled { return true }
                    state.waiting[ticket] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = stopWaiters.withLock { $0.waiting.removeValue(forKey: ticket) }
            waiter?.resume()
        }
    }

    /// Handles one command; returns true when the agent must stop.
    func obey(_ message: NATSMessage) async -> Bool {
        let command = message.subject.split(separator: ".").last.map(String.init) ?? ""
        var target: String?
        if !message.payload.isEmpty, let body = try? JSONValue(parsing: message.payload) {
            target = body["host"]?.stringValue
        }
        guard target == nil || target == options.host else { return false }
        counters.withLock { $0.commands += 1 }
        switch command {
        case "shutdown":
            log("agent \(options.host): shutdown requested\(target == nil ? " for the whole fleet" : "")")
            return true
        case "health_check":
            await publishHealthCheck()
            return false
        case "kill":
            let body = message.payload.isEmpty ? nil : try? JSONValue(parsing: message.payload)
            guard let session = body?["session"]?.stringValue else {
                log("agent \(options.host): ignored a kill command without a \"session\"")
                return false
            }
            if let sessionLoop {
                sessionLoop.requestKill(session: session, targeted: target != nil)
            } else if target != nil {
                log("agent \(options.host): cannot kill session \(session.debugDescription): no lifecycle loop runs here")
            }
            return false
        default:
            log("agent \(options.host): ignored unknown command \(command.debugDescription)")
            return false
        }
    }

    /// Publishes the event one line of JSON describes; a bad line is reported and counted.
    ///
    /// A line may leave out `id` and `timestamp`: the agent fills in a new UUID and the time it
    /// read the line, so that a shell script can emit events without making UUIDs. Every other
    /// key is required (see topics.md).
    @discardableResult
    public func relay(line: String) async -> Bool {
        await relay(bytes: Array(line.utf8))
    }

    /// Relays one line as a ``LineReader`` read it: a line too long is rejected and counted;
    /// any other is checked as ``relay(line:)`` does, byte for byte (invalid UTF-8 is rejected,
    /// never replaced).
    @discardableResult
    public func relay(_ input: InputLine) async -> Bool {
        switch input {
        case .line(let bytes):
            return await relay(bytes: bytes)
        case .tooLong(let count):
            counters.withLock { $0.rejectedLines += 1 }
            log("agent \(options.host): rejected an input line of \(count) bytes: longer than the limit")
            return false
        }
    }

    private func relay(bytes: [UInt8]) async -> Bool {
        // A blank line is no event and is skipped. (Blanks around the JSON, and the \r of a CRLF
        // line, are JSON whitespace.)
        guard bytes.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { return false }
        let event: Event
        do {
            event = try EventCodec.decode(bytes, filling: [.id, .timestamp])
            _ = try EventSubject.subject(for: event, host: options.host)
        } catch {
            counters.withLock { $0.rejectedLines += 1 }
            log("agent \(options.host): rejected an input line: \(LogText(error))")
            return false
        }
        guard await send(event) else { return false }
        counters.withLock { $0.relayed += 1 }
        return true
    }

    func publishNodeEvent(_ type: EventType, message: String, data extra: [String: JSONValue] = [:]) async {
        var data: [String: JSONValue] = ["host": .string(options.host), "interval_seconds": .double(seconds(options.healthInterval))]
        data.merge(extra) { _, new in new }
        let event = Event(type: type, priority: type == .nodeDisconnected ? .action : .info, sessionId: "", projectId: options.projectId, message: message, data: .object(data))
        await send(event)
    }

    func publishHealthCheck() async {
        let health = SystemHealth.read()
        var extra: [String: JSONValue] = ["agent_uptime_seconds": .double(seconds(ContinuousClock.now - startedAt).rounded())]
        if let load = health.load { extra["load"] = .array(load.map(JSONValue.double)) }
        if let uptime = health.uptimeSeconds { extra["uptime_seconds"] = .double(uptime) }
        await publishNodeEvent(.nodeHealthCheck, message: "\(options.host) healthy", data: extra)
        counters.withLock { $0.healthChecks += 1 }
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
