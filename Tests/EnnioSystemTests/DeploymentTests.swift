import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// The deployment of `deploy/` against a real nats-server (issue 14): every role may do what
/// its role allows — the programs run as they are deployed, over TLS, each as its own NKEY
/// user — and the server refuses the rest, which the client reports as `.permissionViolation`
/// on the operation that tried it while the connection stays up.
@Suite(.serialized) struct DeploymentTests {
    // MARK: - Helpers

    /// `subject` may be published to: a flush after it succeeds.
    static func expectPublishAllowed(_ connection: NATSConnection, _ subject: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try connection.publish("{}", to: subject)
        do {
            try await connection.flush()
        } catch {
            Issue.record("\(connection.options.name ?? "?") may not publish to \(subject): \(error)", sourceLocation: sourceLocation)
        }
    }

    /// The server refuses a publish to `subject`: the flush after it says so.
    static func expectPublishRefused(_ connection: NATSConnection, _ subject: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try connection.publish("{}", to: subject)
        let error = await expectNATSError(.permissionViolation, sourceLocation: sourceLocation) { try await connection.flush() }
        #expect(error?.message.contains("Publish to \"\(subject)\"") == true, "\(error.map(String.init(describing:)) ?? "")", sourceLocation: sourceLocation)
        #expect(connection.status == .connected, sourceLocation: sourceLocation)
    }

    /// The server refuses a subscription to `subject`: it ends, saying why.
    static func expectSubscriptionRefused(_ connection: NATSConnection, _ subject: String, queueGroup: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let subscription = try connection.subscribe(to: subject, queueGroup: queueGroup)
        await expectNATSError(.permissionViolation, sourceLocation: sourceLocation) { try await connection.flush() }
        let rest = try await within { await subscription.nextBatch() }
        #expect(rest.isEmpty, sourceLocation: sourceLocation)
        #expect(subscription.error?.code == .permissionViolation, "\(connection.options.name ?? "?") subscribed to \(subject)", sourceLocation: sourceLocation)
    }

    static func event(_ type: EventType, project: String = "p", session: String = "s", host: String? = nil) -> Event {
        Event(type: type, sessionId: session, projectId: project, message: "\(type.rawValue) test", data: host.map { ["host": .string($0)] } ?? .null)
    }

    /// The coordinator, as the deployment runs it (one of several when it has a `name`).
    static func coordinator(_ deployment: Deployment, name: String? = nil) async throws -> EnnioProcess {
        let naming = name.map { ["--name", $0] } ?? []
        let process = try EnnioProcess(
            ["coordinator", "--mode", "jetstream", "--db", deployment.folder.path + "/history\(name.map { "-" + $0 } ?? "").sqlite"] + naming,
            environment: deployment.environment("coordinator"))
        try await process.waitForOutput("reading stream ENNIO_EVENTS through durable consumer \(CoordinatorOptions.consumerName(for: name))")
        // Queries are answered once it has caught up with the stream (after a restart, with
        // what was published meanwhile).
        try await process.waitForOutput("answering queries")
        return process
    }

    /// The agent of `host`, as the deployment runs it (health checks only when asked).
    static func agent(_ deployment: Deployment, host: String) async throws -> EnnioProcess {
        let process = try EnnioProcess(
            ["agent", "--host", host, "--mode", "jetstream", "--health-interval", "3600", "--sessions-dir", deployment.folder.path + "/sessions-\(host)"],
            environment: deployment.environment("agent-\(host)"))
        try await process.waitForOutput("running")
        return process
    }

    /// The stored events of `type`, asked for as the reader.
    static func history(_ deployment: Deployment, type: EventType) async throws -> [Event] {
        let result = try await EnnioProcess.run(["history", "--json", "--limit", "1000", "--type", type.rawValue], environment: deployment.environment("reader"))
        guard result.status == 0 else { throw TestSupportError(description: "ennio history failed: \(result.output)") }
        return try result.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try Event(json: String($0)) }
    }

    // MARK: - The roles

    @Test func eachRoleMayDoWhatItsRoleAllowsAndNothingElse() async throws {
        let deployment = try await Deployment(hosts: ["host-a", "host-b"])
        let coordinator = try await Self.coordinator(deployment)
        let agent = try await Self.agent(deployment, host: "host-a")

        let hostA = try await deployment.connect("agent-host-a")
        let operatorConnection = try await deployment.connect("operator")
        let reader = try await deployment.connect("reader")

        // --- An agent: its own node, every category that carries a project, commands in ---
        let publisher = try EventPublisher(connection: hostA, host: "host-a")
        try await publisher.publishDurably(Self.event(.nodeHealthCheck, project: "", session: "", host: "host-a"))
        for category in EventCategory.allCases where category.scope == .project {
            let type = try #require(category.eventTypes.first { $0 != .rolloutTerminal && $0 != .operatorClearance })
            let ack = try await publisher.publishDurably(Self.event(type))
            #expect(ack.stream == EventStream.name, "agent-host-a publishing \(type)")
        }
        let commands = try hostA.subscribe(to: "ennio.commands.>")
        try await hostA.flush()
        #expect(try await JetStream(connection: hostA).streamInfo(EventStream.name).config.name == EventStream.name)
        // … and nothing else: another host's node, reserved events, commands, queries.
        let forged = Self.event(.nodeHealthCheck, project: "", session: "", host: "host-b")
        let started = ContinuousClock.now
        await expectNATSError(.permissionViolation) { try await EventPublisher(connection: hostA, host: "host-b").publishDurably(forged) }
        #expect(ContinuousClock.now - started < .seconds(5), "refused at once, not retried until a time limit")
        try await Self.expectPublishRefused(hostA, "ennio.node.host-b.health_check")
        try await Self.expectPublishRefused(hostA, "ennio.rollout.c.terminal")
        try await Self.expectPublishRefused(hostA, "ennio.rollout.c.operator_clearance")
        try await Self.expectPublishRefused(hostA, "ennio.commands.shutdown")
        try await Self.expectPublishRefused(hostA, "ennio.lifecycle.all_complete")
        await expectNATSError(.permissionViolation) { _ = try await hostA.request("{}", to: "ennio.query.nodes", timeout: .seconds(30)) }
        await expectNATSError(.permissionViolation) { try await JetStream(connection: hostA).deleteStream(EventStream.name) }
        await expectNATSError(.permissionViolation) {
            _ = try await JetStream(connection: hostA).createConsumer(stream: EventStream.name, config: ConsumerConfig(durableName: "spy"))
        }
        for subject in ["ennio.>", "ennio.sessions.>", "ennio.query.>", "_INBOX.>", "_INBOX.operator.>", "$JS.ACK.>"] {
            try await Self.expectSubscriptionRefused(hostA, subject)
        }
        #expect(hostA.status == .connected)

        // --- The operator: commands and queries; sees events, never queries ---
        let everything = try operatorConnection.subscribe(to: "ennio.>")
        let healthChecks = try operatorConnection.subscribe(to: "ennio.node.host-a.health_check")
        try await operatorConnection.flush()
        try operatorConnection.publish(#"{"host":"host-a"}"#, to: "ennio.commands.health_check")
        try await operatorConnection.flush()
        let answer = try await healthChecks.take(1)
        #expect(try Event(json: answer[0].string).eventType == .nodeHealthCheck)
        #expect(try await commands.take(1).first?.subject == "ennio.commands.health_check")
        try await eventually("the coordinator tells the operator of host-a") {
            try await operatorConnection.request("", to: "ennio.query.nodes", timeout: .seconds(10)).string.contains(#""host":"host-a""#)
        }
        try await Self.expectPublishAllowed(operatorConnection, "ennio.rollout.c.operator_clearance")
        try await Self.expectPublishRefused(operatorConnection, "ennio.ci.p.failing")
        try await Self.expectPublishRefused(operatorConnection, "ennio.node.host-a.health_check")
        try await Self.expectSubscriptionRefused(operatorConnection, "ennio.query.>")
        try await Self.expectSubscriptionRefused(operatorConnection, "ennio.query.history", queueGroup: "ennio-coordinator")
        try await Self.expectSubscriptionRefused(operatorConnection, "_INBOX.>")

        // --- A reader: queries and events; publishes nothing else ---
        let history = try await reader.request(#"{"limit":1}"#, to: "ennio.query.history", timeout: .seconds(10))
        #expect(history.string.contains(#""events""#), "\(history.string)")
        try await Self.expectPublishRefused(reader, "ennio.commands.shutdown")
        try await Self.expectPublishRefused(reader, "ennio.ci.p.failing")
        try await Self.expectSubscriptionRefused(reader, "ennio.query.>")
        try await Self.expectSubscriptionRefused(reader, "ennio.query.nodes", queueGroup: "ennio-coordinator")
        let readerEvents = try reader.subscribe(to: "ennio.>")
        try await reader.flush()
        // It finds the coordinator's service and reads the state buckets the coordinator
        // writes (a watch: an ordered consumer on its own inbox), but writes nothing there.
        let ping = try await reader.request("", to: "$SRV.PING.ennio-coordinator", timeout: .seconds(10))
        #expect(ping.string.contains(#""name":"ennio-coordinator""#), "\(ping.string)")
        let nodesBucket = try await JetStream(connection: reader).keyValue("ENNIO_NODES")
        try await eventually("host-a's row in ENNIO_NODES, as the reader reads it") {
            (try? await nodesBucket.get("host-a"))?.value.isEmpty == false
        }
        let watcher = try await nodesBucket.watch()
        let first = try await within { () async throws -> KeyValueUpdate? in
            var updates = watcher.makeAsyncIterator()
            return try await updates.next()
        }
        #expect(first != nil, "the reader watches ENNIO_NODES")
        watcher.stop()
        await expectNATSError(.permissionViolation) { _ = try await nodesBucket.put("host-a", "forged") }
        try await Self.expectSubscriptionRefused(reader, "$SRV.PING")

        // Only the coordinator receives queries: after one more query, a marker event reaches
        // both subscribers with no query before it.
        _ = try await reader.request("", to: "ennio.query.sessions", timeout: .seconds(10))
        let marker = Self.event(.ciPassing, project: "marker")
        try await publisher.publishDurably(marker)
        for subscription in [everything, readerEvents] {
            let seen = try await within { () -> [NATSMessage] in
                var seen: [NATSMessage] = []
                var iterator = subscription.makeAsyncIterator()
                while let message = await iterator.next() {
                    seen.append(message)
                    if message.subject == "ennio.ci.marker.passing" { break }
                }
                return seen
            }
            #expect(!seen.contains { $0.subject.hasPrefix("ennio.query.") }, "\(seen.map(\.subject))")
            #expect(seen.last?.subject == "ennio.ci.marker.passing")
        }

        // --- The coordinator: its own events go through too (all_complete, by the stream) ---
        try await publisher.publishDurably(Self.event(.sessionSpawned, project: "solo", session: "only"))
        try await publisher.publishDurably(Self.event(.sessionExited, project: "solo", session: "only"))
        try await eventually("all_complete for solo in the history") {
            try await Self.history(deployment, type: .allComplete).contains { $0.projectId == "solo" }
        }
        // Nothing of the forged host-b event reached the history; the marker, published after
        // it, did.
        try await eventually("the marker in the history") {
            try await Self.history(deployment, type: .ciPassing).contains { $0.id == marker.id }
        }
        let checks = try await Self.history(deployment, type: .nodeHealthCheck)
        #expect(!checks.contains { $0.id == forged.id || $0.data["host"]?.stringValue == "host-b" }, "\(checks)")
        #expect(checks.contains { $0.data["host"]?.stringValue == "host-a" })

        // --- Without the deployment's credentials, TLS or inbox: nothing ---
        await expectNATSError(.authorizationViolation) { try await deployment.connect("reader") { $0.credentials = nil } }
        await expectNATSError(.tlsRequiredByServer) { try await deployment.connect("reader") { $0.tls.mode = .disabled } }
        let noPrefix = try await deployment.connect("reader") { $0.inboxPrefix = "_INBOX" }
        await expectNATSError(.permissionViolation) { _ = try await noPrefix.request("", to: "ennio.query.nodes", timeout: .seconds(30)) }

        for connection in [hostA, operatorConnection, reader, noPrefix] { await connection.close() }
        #expect(try await agent.terminate() == 0)
        #expect(try await coordinator.terminate() == 0)
        #expect(!coordinator.output.contains("Permissions Violation"), "the coordinator was refused something:\n\(coordinator.output)")
        #expect(!agent.output.contains("Permissions Violation"), "the agent was refused something:\n\(agent.output)")
    }

    /// What people type: refusals are said plainly and exit with status 1.
    @Test func theCommandLineSaysWhatARoleMayNotDo() async throws {
        let deployment = try await Deployment(hosts: ["host-a", "host-b"])
        let coordinator = try await Self.coordinator(deployment)
        let agent = try await Self.agent(deployment, host: "host-a")

        let asOperator = try await EnnioProcess.run(["command", "health-check", "--host", "host-a"], environment: deployment.environment("operator"))
        #expect(asOperator.status == 0, "\(asOperator.output)")
        #expect(asOperator.output.contains("host-a healthy"), "\(asOperator.output)")
        let asReader = try await EnnioProcess.run(["command", "shutdown", "--host", "host-a"], environment: deployment.environment("reader"))
        #expect(asReader.status == 1, "\(asReader.output)")
        #expect(asReader.output.contains(#"Permissions Violation for Publish to "ennio.commands.shutdown""#), "\(asReader.output)")
        let forging = try await EnnioProcess.run(["pub", "NodeHealthCheck", "--host", "host-b"], environment: deployment.environment("agent-host-a"))
        #expect(forging.status == 1, "\(forging.output)")
        #expect(forging.output.contains(#"Permissions Violation for Publish to "ennio.node.host-b.health_check""#), "\(forging.output)")
        let peeking = try await EnnioProcess.run(["sub", "ennio.>", "--count", "1"], environment: deployment.environment("agent-host-a"))
        #expect(peeking.status == 1, "\(peeking.output)")
        #expect(peeking.output.contains(#"Permissions Violation for Subscription to "ennio.>""#), "\(peeking.output)")
        let asking = try await EnnioProcess.run(["nodes"], environment: deployment.environment("agent-host-a"))
        #expect(asking.status == 1, "\(asking.output)")
        try await eventually("ennio nodes shows host-a to the reader") {
            let nodes = try await EnnioProcess.run(["nodes"], environment: deployment.environment("reader"))
            return nodes.status == 0 && nodes.output.contains("host-a               yes")
        }
        // The agent still runs: nothing it was sent stopped it.
        #expect(agent.process.exitStatus() == nil)
        #expect(try await agent.terminate() == 0)
        #expect(try await coordinator.terminate() == 0)
    }

    /// Two coordinators with names of their own run on the one coordinator seed: each reads
    /// the stream through its own consumer and stores what an agent publishes; none is refused.
    @Test func twoNamedCoordinatorsRunWithTheCoordinatorsCredentials() async throws {
        let deployment = try await Deployment(hosts: ["host-a"])
        let first = try await Self.coordinator(deployment, name: "c1")
        let second = try await Self.coordinator(deployment, name: "c2")
        let agent = try await deployment.connect("agent-host-a")
        let marker = Self.event(.ciPassing, project: "both")
        let ack = try await EventPublisher(connection: agent, host: "host-a").publishDurably(marker)
        // Each coordinator has stored it: its own consumer acknowledged it (after the commit).
        let coordinatorConnection = try await deployment.connect("coordinator")
        let jetStream = JetStream(connection: coordinatorConnection)
        for name in ["c1", "c2"] {
            try await eventually("coordinator \(name) stored the marker") {
                let info = try await jetStream.consumerInfo(stream: EventStream.name, consumer: CoordinatorOptions.consumerName(for: name))
                return info.ackFloor.streamSequence >= ack.sequence
            }
        }
        await coordinatorConnection.close()
        await agent.close()
        for coordinator in [first, second] {
            #expect(try await coordinator.terminate() == 0)
            #expect(!coordinator.output.contains("Permissions Violation"), "\(coordinator.output)")
        }
    }

    // MARK: - Durability

    /// Events the stream acknowledged survive the server's death (SIGKILL) and restart with its
    /// file store, whether the coordinator was running or not.
    @Test func aRestartedServerLosesNothingItAcknowledged() async throws {
        let deployment = try await Deployment(hosts: ["host-a"])
        var coordinator = try await Self.coordinator(deployment)
        func reconnecting(_ options: inout NATSOptions) {
            options.reconnectWait = .milliseconds(100)
            options.maxReconnectAttempts = -1
        }
        let hostA = try await deployment.connect("agent-host-a", configure: reconnecting)
        let publisher = try EventPublisher(connection: hostA, host: "host-a")
        var published: [Event] = []
        for index in 0..<50 {
            published.append(Self.event(.sessionWorking, project: "durable", session: "s\(index)"))
            try await publisher.publishDurably(published[index])
        }
        // Killed while the coordinator runs, and again while it is stopped.
        try await deployment.restartServer()
        for index in 50..<100 {
            published.append(Self.event(.sessionWorking, project: "durable", session: "s\(index)"))
            try await publisher.publishDurably(published[index], retryingFor: .seconds(120))
        }
        #expect(try await coordinator.terminate() == 0)
        for index in 100..<150 {
            published.append(Self.event(.sessionWorking, project: "durable", session: "s\(index)"))
            try await publisher.publishDurably(published[index], retryingFor: .seconds(120))
        }
        try await deployment.restartServer()
        coordinator = try await Self.coordinator(deployment)
        try await eventually("all 150 acknowledged events in the history", within: .seconds(60)) {
            Set(try await Self.history(deployment, type: .sessionWorking).map(\.id)).isSuperset(of: published.map(\.id))
        }
        #expect(try await Self.history(deployment, type: .sessionWorking).count == 150, "each stored once")
        await hostA.close()
        #expect(try await coordinator.terminate() == 0)
    }
}
