import EnnioAgent
import EnnioEvents
import EnnioSync
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct NodeAgentTests {
    static func start(_ agent: NodeAgent, lines: AsyncStream<String>? = nil) async -> Task<Void, any Error> {
        let (ready, signal) = AsyncStream<Void>.makeStream()
        let task = Task { try await agent.run(lines: lines) { signal.finish() } }
        for await _ in ready {}
        return task
    }

    @Test func announcesItselfReportsHealthAndSaysGoodbye() async throws {
        let server = try TestServer()
        let observer = try await NATSConnection.connect(to: server.url)
        let nodeEvents = try EventSubscription(connection: observer, pattern: try .node(host: "h1"))
        try await observer.flush()
        let connection = try await NATSConnection.connect(to: server.url)
        var options = AgentOptions(host: "h1")
        options.healthInterval = .milliseconds(100)
        let agent = try NodeAgent(connection: connection, options: options)
        let task = await Self.start(agent)
        try await eventually("two more health checks") { agent.statistics.healthChecks >= 3 }
        agent.stop()
        try await task.value

        let types = try await within { () -> [EventType] in
            var types: [EventType] = []
            var iterator = nodeEvents.makeAsyncIterator()
            while types.last != .nodeDisconnected, let delivery = await iterator.next() {
                if let event = delivery.event { types.append(event.eventType) }
            }
            return types
        }
        #expect(Array(types.prefix(3)) == [.nodeLaunched, .nodeConnected, .nodeHealthCheck])
        #expect(types.last == .nodeDisconnected)
        #expect(types.filter { $0 == .nodeHealthCheck }.count >= 3)
        await connection.close()
        await observer.close()
    }

    @Test func healthChecksCarryHostLoadAndUptime() async throws {
        let server = try TestServer()
        let observer = try await NATSConnection.connect(to: server.url)
        let health = try EventSubscription(connection: observer, pattern: try .type(.nodeHealthCheck, scope: "h2"))
        try await observer.flush()
        let connection = try await NATSConnection.connect(to: server.url)
        let agent = try NodeAgent(connection: connection, options: AgentOptions(host: "h2"))
        let task = await Self.start(agent)
        let first = try await within { () -> Event? in
            var iterator = health.makeAsyncIterator()
            return await iterator.next()?.event
        }
        #expect(first?.data["host"]?.stringValue == "h2")
        #expect(first?.data["interval_seconds"]?.doubleValue == 10)
        #expect(first?.data["load"]?.arrayValue?.count == 3)
        #expect((first?.data["uptime_seconds"]?.doubleValue ?? 0) > 0)
        agent.stop()
        try await task.value
        await connection.close()
        await observer.close()
    }

    @Test func relaysGoodLinesAndRejectsBadOnes() async throws {
        let server = try TestServer()
        let observer = try await NATSConnection.connect(to: server.url)
        let sessions = try EventSubscription(connection: observer, pattern: try .category(.sessions))
        try await observer.flush()
        let connection = try await NATSConnection.connect(to: server.url)
        let agent = try NodeAgent(connection: connection, options: AgentOptions(host: "h3"))
        let (lines, feed) = AsyncStream<String>.makeStream()
        let task = await Self.start(agent, lines: lines)

        let good = Event(type: .sessionSpawned, sessionId: "s1", projectId: "proj", message: "spawned")
        feed.yield(good.jsonString)
        feed.yield("this is not json")
        feed.yield("")
        feed.yield(#"{"id":"x","event_type":"nope","priority":"info","session_id":"s","project_id":"p","timestamp":"2026-01-01T00:00:00Z","message":"","data":null}"#)
        feed.yield(Event(type: .sessionWorking, sessionId: "s1", projectId: "bad project", message: "m").jsonString)
        let second = Event(type: .sessionWorking, sessionId: "s1", projectId: "proj", message: "working")
        feed.yield("  " + second.jsonString + "\r")
        feed.finish()

        let relayed = try await within { () -> [Event] in
            var events: [Event] = []
            var iterator = sessions.makeAsyncIterator()
            while events.count < 2, let delivery = await iterator.next() { if let event = delivery.event { events.append(event) } }
            return events
        }
        #expect(relayed == [good, second])
        try await eventually("the bad lines to be counted") { agent.statistics.rejectedLines == 3 }
        #expect(agent.statistics.relayed == 2)
        agent.stop()
        try await task.value
        await connection.close()
        await observer.close()
    }

    @Test func obeysFleetAndHostTargetedShutdown() async throws {
        let server = try TestServer()
        var agents: [(NodeAgent, Task<Void, any Error>, NATSConnection)] = []
        for host in ["alpha", "beta", "gamma"] {
            let connection = try await NATSConnection.connect(to: server.url)
            let agent = try NodeAgent(connection: connection, options: AgentOptions(host: host))
            agents.append((agent, await Self.start(agent), connection))
        }
        let fleet = agents
        let operator_ = try await NATSConnection.connect(to: server.url)
        // Addressed to beta only.
        try operator_.publish(#"{"host":"beta"}"#, to: "ennio.commands.shutdown")
        try await operator_.flush()
        try await within { try await fleet[1].1.value }
        try await Task.sleep(for: .milliseconds(200))
        #expect(agents[0].0.statistics.commands == 0, "alpha ignores a command for beta")
        // Unknown commands are ignored; a health_check command is answered.
        try operator_.publish("", to: "ennio.commands.dance")
        try operator_.publish("", to: "ennio.commands.health_check")
        try await operator_.flush()
        try await eventually("a health check on request") { agents[0].0.statistics.healthChecks >= 2 }
        // The whole fleet.
        try operator_.publish("", to: "ennio.commands.shutdown")
        try await operator_.flush()
        try await within { try await fleet[0].1.value }
        try await within { try await fleet[2].1.value }
        for agent in agents { await agent.2.close() }
        await operator_.close()
    }

    /// The observer must be back (and subscribed) before the agent reconnects, or it could miss
    /// the event; the restarted server admits the agent's user only after a configuration
    /// reload, which the test sends once the observer is back.
    @Test func publishesNodeConnectedAgainAfterAReconnect() async throws {
        func config(_ users: [String]) -> String {
            "server_name: agent-reconnect\nauthorization { users = [ " + users.map { "{user: \($0), password: pw}" }.joined(separator: ", ") + " ] }\n"
        }
        let path = try TestServer.writeConfig(config(["agent", "observer"]))
        let server = try TestServer(arguments: ["-c", path, "--name", "agent-reconnect"])
        func options(_ user: String) -> NATSOptions {
            var options = NATSOptions(servers: ["nats://\(user):pw@127.0.0.1:\(server.port)"])
            options.reconnectWait = .milliseconds(50)
            options.maxReconnectAttempts = -1
            // The restarted server refuses the agent's user until the reload: keep trying.
            options.abortOnRepeatedAuthorizationError = false
            return options
        }
        let connection = try await NATSConnection.connect(options("agent"))
        let observer = try await NATSConnection.connect(options("observer"))
        let agentEvents = EventWatcher(connection)
        let observerEvents = EventWatcher(observer)
        let connected = try EventSubscription(connection: observer, pattern: try .type(.nodeConnected, scope: "phoenix"))
        try await observer.flush()
        let agent = try NodeAgent(connection: connection, options: AgentOptions(host: "phoenix"))
        let task = await Self.start(agent)
        _ = try await within { () -> Event? in
            var iterator = connected.makeAsyncIterator()
            return await iterator.next()?.event
        }

        server.kill()
        try config(["observer"]).write(toFile: path, atomically: true, encoding: .utf8)
        let restarted = try TestServer(arguments: ["-c", path, "--name", "agent-reconnect"], port: server.port)
        _ = try await observerEvents.waitForReconnect()
        try await observer.flush()
        try config(["agent", "observer"]).write(toFile: path, atomically: true, encoding: .utf8)
        restarted.reloadConfiguration()
        _ = try await agentEvents.waitForReconnect()

        let event = try await within { () -> Event? in
            var iterator = connected.makeAsyncIterator()
            return await iterator.next()?.event
        }
        #expect(event?.message.contains("reconnected") == true)
        agent.stop()
        try await task.value
        await connection.close()
        await observer.close()
    }

    /// An agent whose user may not publish its node's events (another host's credentials), nor
    /// receive commands: each refusal is counted, each kind logged once, and it runs on.
    @Test func refusalsAreCountedLoggedOnceAndTheAgentRunsOn() async throws {
        let path = try TestServer.writeConfig("""
            jetstream { store_dir: "\(NSTemporaryDirectory())ennio-refusals-\(UUID().uuidString)" }
            authorization {
              users = [
                { user: other, password: o, permissions: {
                    publish: { allow: ["ennio.node.other.>", "$JS.API.STREAM.INFO.ENNIO_EVENTS"] },
                    subscribe: { allow: ["_INBOX.>"] } } },
                { user: admin, password: a }
              ]
            }
            """)
        let server = try await onThread { try TestServer(arguments: ["-c", path]) }
        let admin = try await NATSConnection.connect(to: server) {
            $0.user = "admin"
            $0.password = "a"
        }
        try await EventStream.ensure(JetStream(connection: admin))
        let connection = try await NATSConnection.connect(to: server) {
            $0.user = "other"
            $0.password = "o"
        }
        let lines = Locked<[String]>([])
        var options = AgentOptions(host: "h-refused")
        options.healthInterval = .milliseconds(20)
        options.durable = true
        let agent = try NodeAgent(connection: connection, options: options) { line in lines.withLock { $0.append(line) } }
        let task = try await within(.seconds(30), "the agent to start despite the refusals") { await Self.start(agent) }
        try await eventually("ten refused health checks") { agent.statistics.refusedPublishes >= 12 }
        #expect(connection.status == .connected)
        agent.stop()
        try await task.value
        let logged = lines.withLock { $0 }
        for type in [EventType.nodeLaunched, .nodeConnected, .nodeHealthCheck] {
            #expect(logged.filter { $0.contains("may not publish \(type)") }.count == 1, "\(type): \(logged)")
        }
        #expect(logged.filter { $0.contains("receives no commands") }.count == 1, "\(logged)")
        // Every failure was a refusal, but for at most one: the health check that `stop()`
        // cancelled while it waited for its acknowledgement fails without being refused.
        let statistics = agent.statistics
        #expect(statistics.failedPublishes >= statistics.refusedPublishes && statistics.failedPublishes - statistics.refusedPublishes <= 1, "\(statistics)")
        await connection.close()
        await admin.close()
    }
}
