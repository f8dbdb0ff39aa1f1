import EnnioAgent
@testable import EnnioCoordinator
import EnnioEvents
import EnnioSync
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// The options of a coordinator called `name`, reading the stream.
func replicaOptions(_ name: String, replicas: Int? = nil) -> CoordinatorOptions {
    var options = CoordinatorOptions()
    options.mode = .jetStream
    options.consumerName = CoordinatorOptions.consumerName(for: name)
    options.replicas = replicas
    return options
}

/// Each of `projects` projects runs `sessions` sessions to their end: `projects` all_complete.
func completingProjects(_ projects: Int, sessions: Int = 3, prefix: String = "proj") -> [Event] {
    var events: [Event] = []
    for project in 0..<projects {
        for session in 0..<sessions {
            events.append(event(.sessionSpawned, project: "\(prefix)-\(project)", session: "s\(session)"))
            events.append(event(.sessionWorking, project: "\(prefix)-\(project)", session: "s\(session)"))
        }
        for session in 0..<sessions {
            events.append(event(.sessionExited, project: "\(prefix)-\(project)", session: "s\(session)"))
        }
    }
    return events
}

/// Publishes `events` with acknowledgements, many in flight.
func publishAcknowledged(_ events: [Event], on connection: NATSConnection) async throws {
    let messages = try events.map { event in
        (subject: try EventSubject.subject(for: event), payload: EventCodec.encode(event), messageID: Optional(event.id))
    }
    _ = try await JetStream(connection: connection, timeout: .seconds(30)).publishAll(messages)
}

func allCompleteCounts(in store: EventStore) throws -> [String: Int] {
    let events = try store.query(HistoryQuery(eventType: .allComplete, limit: 1000)).events
    return events.reduce(into: [:]) { $0[$1.projectId, default: 0] += 1 }
}

/// Several coordinators on one stream, each with a durable consumer of its own: every one
/// keeps the whole history, what they derive is stored once, and one that starts late catches
/// up before it answers.
@Suite struct ReplicatedCoordinatorTests {
    /// Coordinators `a` and `b` on `server`, once both have caught up.
    static func twoReplicas(
        on server: TestServer, options: (String) -> CoordinatorOptions
    ) async throws -> (RunningCoordinator, RunningCoordinator) {
        let first = try await RunningCoordinator(server: server, options: options("a"))
        let second = try await RunningCoordinator(server: server, options: options("b"))
        try await within(.seconds(30), "both coordinators caught up") {
            try await first.coordinator.waitUntilCaughtUp()
            try await second.coordinator.waitUntilCaughtUp()
        }
        return (first, second)
    }

    @Test func twoCoordinatorsEachKeepTheWholeHistoryAndWhatTheyDeriveIsStoredOnce() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (first, second) = try await Self.twoReplicas(on: server) { replicaOptions($0) }
        let client = try await NATSConnection.connect(to: server)
        let projects = 12
        let events = completingProjects(projects)
        try await publishAcknowledged(events, on: client)
        let total = events.count + projects
        try await eventually("both histories complete", within: .seconds(60)) {
            try first.store.count() == total && second.store.count() == total
        }
        for store in [first.store, second.store] {
            #expect(try allCompleteCounts(in: store) == Dictionary(uniqueKeysWithValues: (0..<projects).map { ("proj-\($0)", 1) }))
        }
        // Both published every all_complete; the stream kept each once (one Nats-Msg-Id).
        let info = try await JetStream(connection: client).streamInfo(EventStream.name)
        #expect(info.state.messages == UInt64(total))
        #expect(first.coordinator.statistics.published + second.coordinator.statistics.published >= UInt64(projects))

        // Once caught up, each gives the same answer; over NATS one of them answers.
        for subject in [QueryProtocol.historySubject, QueryProtocol.sessionsSubject] {
            let body = Array(#"{"project_id":"proj-3"}"#.utf8)
            let fromFirst = first.coordinator.answer(query: subject, body: body)
            let fromSecond = second.coordinator.answer(query: subject, body: body)
            #expect(fromFirst.status == 200)
            #expect(fromFirst.reply == fromSecond.reply, "\(subject)")
            let reply = try await client.request(body, to: subject, timeout: .seconds(10))
            #expect(reply.payload == fromFirst.reply)
        }
        let queries = first.coordinator.statistics.queries + second.coordinator.statistics.queries
        #expect(queries == 6, "4 asked directly, and each NATS request answered by one coordinator")
        await client.close()
        await first.stop()
        await second.stop()
    }

    @Test func aCoordinatorThatStartsLateCatchesUpBeforeItAnswersAndPublishesOnlyWhatNobodyDid() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try await NATSConnection.connect(to: server)
        // A first coordinator sees half the projects end, and publishes their all_complete.
        let early = try await RunningCoordinator(server: server, options: replicaOptions("early"))
        let before = completingProjects(5, prefix: "before")
        try await publishAcknowledged(before, on: client)
        try await eventually("the early coordinator's history") { try early.store.count() == before.count + 5 }
        await early.stop()
        // Then, with no coordinator running, more projects end, and many other events.
        let after = completingProjects(4, prefix: "after")
        let filler = (0..<6000).map { numberedEvent($0) }
        try await publishAcknowledged(after + filler, on: client)

        // A coordinator started empty: held inside its first batch until it is looked at. (In
        // a file, so that /healthz reads through a connection of its own.)
        let folder = try TemporaryDirectory("ennio-late")
        let store = try EventStore(path: folder.path + "/late.sqlite")
        let connection = try await NATSConnection.connect(to: server)
        var options = replicaOptions("late")
        options.batchSize = 1000
        let late = try Coordinator(connection: connection, store: store, options: options)
        let gate = DispatchSemaphore(value: 0)
        let holding = Locked(true)
        let entered = Locked(false)
        late.hooks.withLock { hooks in
            hooks.duringBatch = {
                entered.withLock { $0 = true }
                if holding.withLock({ $0 }) { gate.wait() }
            }
        }
        var httpOptions = HTTPAPIOptions()
        httpOptions.port = 0
        let api = try HTTPAPI(coordinator: late, options: httpOptions)
        api.start()
        let running = Task { try await late.run() }
        try await eventually("the first batch inside its transaction") { entered.withLock { $0 } }
        #expect(!late.statistics.caughtUp)
        // Nor does it write its tables, older than the buckets', to the state buckets.
        #expect(late.stateBuckets.statistics.resyncs == 0)
        let health = try await HTTPTestClient(port: api.port).get("/healthz")
        #expect(health.status == 503)
        #expect(try JSONValue(parsing: health.body)["status"]?.stringValue == "catching_up")
        await expectNATSError(.noResponders) {
            try await client.request([], to: QueryProtocol.sessionsSubject, timeout: .seconds(5))
        }
        holding.withLock { $0 = false }
        gate.signal()

        let total = before.count + 5 + after.count + filler.count + 4
        try await within(.seconds(60), "the late coordinator caught up") { try await late.waitUntilCaughtUp() }
        #expect(late.statistics.caughtUp)
        #expect(late.statistics.catchUpTime != nil)
        try await eventually("its history complete, with the all_complete it published") { try store.count() == total }
        #expect(late.statistics.published == 4, "only the projects nobody had reported")
        #expect(try allCompleteCounts(in: store).values.allSatisfy { $0 == 1 })
        #expect(try allCompleteCounts(in: store).count == 9)
        let info = try await JetStream(connection: client).streamInfo(EventStream.name)
        #expect(info.state.messages == UInt64(total))
        let healthy = try await HTTPTestClient(port: api.port).get("/healthz")
        #expect(healthy.status == 200)
        try await eventually("the state buckets written once caught up") { late.stateBuckets.statistics.resyncs >= 1 }
        let stats = try JSONValue(parsing: try await HTTPTestClient(port: api.port).get("/api/stats").body)
        #expect(stats["caught_up"] == .bool(true))
        #expect(stats["last_seq"]?.intValue == Int64(total))
        let reply = try await client.request(Array(#"{"project_id":"after-1"}"#.utf8), to: QueryProtocol.sessionsSubject, timeout: .seconds(10))
        #expect(try JSONValue(parsing: reply.payload)["count"]?.intValue == 3)
        api.stop()
        running.cancel()
        _ = await running.result
        await connection.close()
        await client.close()
        store.close()
        withExtendedLifetime(folder) {}
    }

    /// A run that stopped between a delivery and its commit leaves those deliveries
    /// unacknowledged; the server would send them again only after the ack wait (30 s), behind
    /// newer events. The next run reads again from the first of them, so the events are applied
    /// in the stream's order and derive what every other coordinator derives.
    @Test func aRestartReadsWhatTheLastRunLeftUnacknowledgedAgainInOrder() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try await NATSConnection.connect(to: server)
        let jetStream = JetStream(connection: client)
        try await EventStream.ensure(jetStream)
        let spawned = [event(.sessionSpawned, project: "order", session: "s0"), event(.sessionSpawned, project: "order", session: "s1")]
        let exited = [event(.sessionExited, project: "order", session: "s0"), event(.sessionExited, project: "order", session: "s1")]
        try await publishAcknowledged(spawned + exited + (0..<50).map { numberedEvent($0) }, on: client)
        // The last run: took the first three and stopped before committing them.
        let options = replicaOptions("restarted")
        var config = ConsumerConfig(durableName: options.consumerName, ackWait: .seconds(30))
        config.maxAckPending = max(options.batchSize * 4, 1000)
        _ = try await jetStream.createConsumer(stream: EventStream.name, config: config)
        let taken = try await jetStream.pullConsumer(stream: EventStream.name, consumer: options.consumerName).fetch(batch: 3, expires: .seconds(5))
        #expect(taken.messages.count == 3)

        let lines = Locked<[String]>([])
        let running = try await RunningCoordinator(server: server, options: options) { line in lines.withLock { $0.append(line) } }
        try await within(.seconds(60), "caught up") { try await running.coordinator.waitUntilCaughtUp() }
        #expect(lines.withLock { $0 }.contains { $0.contains("reads the stream again from event 1, in order") })
        try await eventually("the history complete") { try running.store.count() == 4 + 50 + 1 }
        let completion = try #require(try running.store.query(HistoryQuery(eventType: .allComplete)).events.first)
        #expect(completion.id == EventID.derived(kind: "all_complete", name: "order " + exited[1].id), "caused by the last exit, as in the stream")
        #expect(running.coordinator.statistics.duplicates == 0)
        await running.stop()
        await client.close()
    }

    @Test func twoCoordinatorsReportOneSilenceWithOneEvent() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func options(_ name: String) -> CoordinatorOptions {
            var options = replicaOptions(name)
            options.tickInterval = .milliseconds(50)
            options.defaultHealthInterval = .milliseconds(300)
            return options
        }
        let (first, second) = try await Self.twoReplicas(on: server, options: options)
        let client = try await NATSConnection.connect(to: server)
        let publisher = try EventPublisher(connection: client, host: "quiet")
        // One health check, then silence.
        try await publisher.publishDurably(Event(
            type: .nodeHealthCheck, sessionId: "", projectId: "", message: "health", data: ["host": "quiet", "interval_seconds": 0.3]))
        func reports(_ store: EventStore) throws -> [Event] {
            try store.query(HistoryQuery(eventType: .nodeDisconnected, limit: 100)).events
        }
        try await eventually("both histories have the report") { try reports(first.store).count == 1 && reports(second.store).count == 1 }
        #expect(try reports(first.store) == reports(second.store))
        #expect(first.coordinator.statistics.published + second.coordinator.statistics.published >= 1)
        let info = try await JetStream(connection: client).streamInfo(EventStream.name)
        #expect(info.state.messages == 2, "the health check and one node_disconnected")
        #expect(try reports(first.store).first?.data["reason"]?.stringValue == "health_checks_stopped")
        await client.close()
        await first.stop()
        await second.stop()
    }

    /// Three servers, the stream on all three: the loss of its leader loses no acknowledged
    /// event, stores none twice, and the coordinator goes on without a restart.
    @Test func publishesAndTheCoordinatorRideOutTheLossOfTheStreamLeader() async throws {
        let cluster = try TestCluster(size: 3, jetStream: true)
        func reconnecting(_ options: inout NATSOptions) {
            options.reconnectWait = .milliseconds(100)
            options.maxReconnectAttempts = -1
        }
        var clientOptions = NATSOptions(servers: cluster.urls)
        reconnecting(&clientOptions)
        let client = try await NATSConnection.connect(clientOptions)
        let jetStream = JetStream(connection: client)
        // An agent made the stream first, with one copy (the cluster may still be electing its
        // JetStream leader: tried until it answers).
        let created = try await within(.seconds(60), "the stream created") {
            while true {
                do {
                    return try await EventStream.ensure(jetStream)
                } catch let error where Coordinator.isTransient(error) {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
        }
        #expect(created.config.replicas == 1)
        // The coordinator with --replicas 3 brings it to three.
        let running = try await RunningCoordinator(servers: cluster.urls, options: replicaOptions("c", replicas: 3), configure: reconnecting)
        try await within(.seconds(60), "caught up") { try await running.coordinator.waitUntilCaughtUp() }
        let info = try await jetStream.streamInfo(EventStream.name)
        #expect(info.config.replicas == 3)
        #expect(try await EventStream.ensure(jetStream).config.replicas == 3, "left as it is without a count")

        let total = 600
        let publisher = try EventPublisher(connection: client)
        let publishing = Task {
            for index in 0..<total { try await publisher.publishDurably(numberedEvent(index), timeout: .seconds(2)) }
        }
        try await eventually("a quarter stored") { try running.store.count() >= total / 4 }
        let leaderName = try #require(try await jetStream.streamInfo(EventStream.name).cluster?.leader)
        let leader = try #require(cluster.index(of: leaderName))
        cluster.kill(leader)
        try await within(.seconds(120), "every publish acknowledged") { try await publishing.value }
        try await eventually("every event stored", within: .seconds(120)) { try running.store.count() == total }
        let after = try await jetStream.streamInfo(EventStream.name)
        #expect(after.state.messages == UInt64(total), "no event stored twice by the retries")
        #expect(after.cluster?.leader != leaderName)
        #expect(Set(try running.store.query(HistoryQuery(limit: 1000)).events.map(\.id)).count == total)
        let reply = try await client.request([], to: QueryProtocol.sessionsSubject, timeout: .seconds(10))
        #expect(try JSONValue(parsing: reply.payload)["count"]?.intValue == 21, "sessions s0…s6 of projects p0…p2")

        // The lost server comes back and catches up as a replica.
        try cluster.start(leader)
        try await eventually("three current replicas again", within: .seconds(60)) {
            let cluster = try await jetStream.streamInfo(EventStream.name).cluster
            return cluster?.leader != nil && (cluster?.replicas ?? []).count == 2 && (cluster?.replicas ?? []).allSatisfy(\.current)
        }
        await running.stop()
        await client.close()
    }
}
