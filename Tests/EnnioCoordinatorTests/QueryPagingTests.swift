@testable import EnnioCoordinator
import EnnioEvents
import EnnioSync
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// An event whose JSON is exactly `size` bytes: its message padded with text that needs
/// escaping (quotes, backslashes) and characters of several bytes.
func eventOfSize(_ size: Int, project: String = "big", session: String = "s", at seconds: Int64) -> Event {
    var event = Event(
        type: .ciFailing, sessionId: session, projectId: project,
        timestamp: EventTimestamp(nanosecondsSinceEpoch: lifecycleBase + seconds * 1_000_000_000), message: "")
    let pattern = "log line \"quoted\" \\ é ✓ 👩‍💻\n"
    var message = ""
    while EventCodec.encode(event).count < size {
        let room = size - EventCodec.encode(event).count
        let piece = pattern.utf8.count + 8 <= room ? pattern : String(repeating: "x", count: room)
        message += piece
        event.message = message
    }
    precondition(EventCodec.encode(event).count == size, "padding overshot")
    return event
}

/// Query replies larger than the server's `max_payload`: paged below it, with cursors, and an
/// event too large for a reply in parts — nothing lost to the reader.
@Suite struct QueryPagingTests {
    static let maxPayload = 4096

    static func smallServer() throws -> TestServer {
        try TestServer(arguments: ["-c", try TestServer.writeConfig("max_payload: \(maxPayload)\n")])
    }

    /// Follows a query's cursors by hand, checking that every reply fits `max_payload`.
    static func pages(_ subject: String, body: (String?) -> String, on client: NATSConnection) async throws -> [JSONValue] {
        var replies: [JSONValue] = []
        var after: String?
        repeat {
            let reply = try await client.request(body(after), to: subject, timeout: .seconds(10))
            #expect(reply.payload.count <= maxPayload, "a reply of \(reply.payload.count) bytes")
            let value = try JSONValue(parsing: reply.payload)
            #expect(value["error"] == nil, "\(value)")
            replies.append(value)
            let next = value["next"]?.stringValue
            #expect(next != after, "the cursor moves on")
            after = next
        } while after != nil && replies.count < 10_000
        return replies
    }

    @Test func historyLargerThanAReplyComesInPagesAndOversizedEventsInParts() async throws {
        let server = try Self.smallServer()
        let running = try await RunningCoordinator(server: server)
        let client = try await NATSConnection.connect(to: server)
        #expect(client.maxPayload == Self.maxPayload)
        var events: [Event] = []
        for index in 0..<20 { events.append(sessionEvent(.ciPassing, project: "big", session: "s", at: Int64(index))) }
        for index in 20..<23 { events.append(eventOfSize(3900, at: Int64(index))) }
        // As large as the server takes: it can only be read back in parts.
        events.append(eventOfSize(Self.maxPayload, at: 23))
        for index in 24..<44 { events.append(sessionEvent(.ciPassing, project: "big", session: "s", at: Int64(index))) }
        // Without headers (a Nats-Msg-Id would count towards max_payload too).
        for event in events.shuffled() { try client.publish(event.jsonBytes, to: try EventSubject.subject(for: event)) }
        try await client.flush()
        try await running.waitForReceived(UInt64(events.count))
        #expect(running.coordinator.statistics.stored == UInt64(events.count))

        // By hand: every reply fits, some are parts.
        let replies = try await Self.pages(QueryProtocol.historySubject, body: { after in
            after.map { #"{"limit":1000,"after":"\#($0)"}"# } ?? #"{"limit":1000}"#
        }, on: client)
        let parts = replies.filter { $0["part"] != nil }
        #expect(parts.count >= 2, "the largest event needs two parts at least")
        #expect(replies.count > 5)

        // As a reader does: every event, once, in order, equal to what was published.
        var read: [Event] = []
        var subjects: [String] = []
        let end = try await QueryClient(connection: client).history(HistoryQuery(limit: 1000)) { event, subject in
            read.append(event)
            subjects.append(subject)
        }
        #expect(end.count == events.count && end.next == nil)
        #expect(read == events)
        #expect(subjects.allSatisfy { $0 == "ennio.ci.big.failing" || $0 == "ennio.ci.big.passing" })

        // Newest first, a few at a time, the same events the other way round.
        var backwards: [Event] = []
        try await QueryClient(connection: client).history(HistoryQuery(order: .newestFirst, limit: 3)) { event, _ in backwards.append(event) }
        #expect(backwards == events.reversed())

        // --limit counts events, whatever the pages.
        var five: [Event] = []
        let stopped = try await QueryClient(connection: client).history(HistoryQuery(limit: 1000), maximum: 22) { event, _ in five.append(event) }
        #expect(five == Array(events.prefix(22)))
        #expect(stopped.next == HistoryCursor(after: events[21]))
        await client.close()
        await running.stop()
    }

    @Test func sessionAndNodeTablesLargerThanAReplyComeInPages() async throws {
        let server = try Self.smallServer()
        let running = try await RunningCoordinator(server: server)
        let client = try await NATSConnection.connect(to: server)
        var expectedSessions: [String] = []
        for project in ["alpha", "beta", "gamma"] {
            let publisher = try EventPublisher(connection: client)
            for index in 0..<120 {
                let session = "session-\(index)"
                try publisher.publish(sessionEvent(.sessionSpawned, project: project, session: session))
                expectedSessions.append(LifecycleState.key(project, session))
            }
        }
        let hosts = (0..<60).map { "host-\($0)" }
        for host in hosts {
            try EventPublisher(connection: client, host: host).publish(Event(
                type: .nodeHealthCheck, sessionId: "", projectId: "", message: "ok",
                data: ["host": .string(host), "interval_seconds": 30, "load": [0.5, 0.25, 0.125], "note": .string(String(repeating: "n", count: 200))]))
        }
        try await client.flush()
        try await running.waitForReceived(UInt64(expectedSessions.count + hosts.count))

        let sessionPages = try await Self.pages(QueryProtocol.sessionsSubject, body: { after in
            after.map { #"{"after":"\#($0)"}"# } ?? ""
        }, on: client)
        #expect(sessionPages.count > 3)
        let sessions = sessionPages.flatMap { $0["sessions"]?.arrayValue ?? [] }
        let keys = sessions.compactMap { row in row["project_id"]?.stringValue.flatMap { project in row["session_id"]?.stringValue.map { LifecycleState.key(project, $0) } } }
        #expect(keys == expectedSessions.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })

        let nodePages = try await Self.pages(QueryProtocol.nodesSubject, body: { after in
            after.map { #"{"after":"\#($0)"}"# } ?? ""
        }, on: client)
        #expect(nodePages.count > 3)
        let nodes = nodePages.flatMap { $0["nodes"]?.arrayValue ?? [] }
        #expect(nodes.compactMap { $0["host"]?.stringValue } == hosts.sorted())
        #expect(nodes.allSatisfy { $0["connected"]?.boolValue == true && $0["health"]?["load"]?.arrayValue?.count == 3 })

        // As a reader does, and one project alone.
        var read = 0
        try await QueryClient(connection: client).sessions { _ in read += 1 }
        #expect(read == expectedSessions.count)
        var beta: [String] = []
        try await QueryClient(connection: client).sessions(TableQuery(projectId: "beta", limit: 7)) { row in
            beta.append(row["project_id"]?.stringValue ?? "?")
        }
        #expect(beta.count == 120 && Set(beta) == ["beta"])
        var nodeCount = 0
        try await QueryClient(connection: client).nodes(TableQuery(limit: 9)) { _ in nodeCount += 1 }
        #expect(nodeCount == hosts.count)
        await client.close()
        await running.stop()
    }

    /// Core NATS, the coordinator's writer held while a burst arrives: the subscription's queue
    /// fills and drops. Every drop is counted (received + dropped = published) and the episode
    /// is logged once, saying what to do.
    @Test func aCoreModeBurstPastTheSubscriptionLimitIsCountedAndLoggedOnce() async throws {
        let server = try TestServer()
        var options = CoordinatorOptions()
        options.mode = .core
        // Small batches: the receiving loop takes a few messages, then waits for the held writer.
        options.batchSize = 10
        let lines = LockedLines()
        let running = try await RunningCoordinator(server: server, options: options, log: { lines.append($0) }) {
            $0.pendingMessageLimit = 50
        }
        #expect(lines.all.contains { $0.contains("a burst past that is dropped") }, "the small limit is pointed out")
        let gate = TestGate()
        running.coordinator.hooks.withLock { $0.duringBatch = { gate.block() } }
        defer { gate.open() }
        let client = try await NATSConnection.connect(to: server)
        let publisher = try EventPublisher(connection: client)
        try publisher.publish(event(.sessionSpawned, session: "first"))
        try await client.flush()
        try await eventually("the first batch to be held") { gate.arrived == 1 }
        let burst = 400
        for index in 0..<burst { try publisher.publish(event(.ciPassing, session: "s\(index % 9)")) }
        try await client.flush()
        // Let the server see the subscriber's queue full: a round trip through the coordinator's
        // connection after the burst (its PONG follows every message before it).
        try await running.connection.flush()
        gate.open()
        try await eventually("every message counted, received or dropped") {
            let statistics = running.coordinator.statistics
            return statistics.received + statistics.dropped == UInt64(burst + 1)
        }
        let statistics = running.coordinator.statistics
        #expect(statistics.dropped > 0)
        #expect(statistics.stored == statistics.received)
        let episodes = lines.all.filter { $0.contains("events are dropped") }
        #expect(episodes.count == 1, "\(episodes)")
        #expect(episodes.first?.contains("--mode jetstream") == true)
        await client.close()
        await running.stop()
    }

    /// Node events in the Rust implementation's shapes: stored, in the history, never a node
    /// or a `node_disconnected` — live, and after a restart.
    @Test func rustShapedNodeEventsAreStoredAndShownButMakeNoNodeOrAlarm() async throws {
        let server = try TestServer()
        let directory = NSTemporaryDirectory() + "ennio-rust-\(EventID.random())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = CoordinatorOptions()
        options.mode = .core
        options.tickInterval = .milliseconds(20)
        options.defaultHealthInterval = .milliseconds(20)
        options.missedHealthChecks = 1
        let client = try await NATSConnection.connect(to: server)
        let alarms = try client.subscribe(to: "ennio.node.*.disconnected")
        try await client.flush()
        let sessions = ["a1b2c3d4-0000-4000-8000-000000000001", "a1b2c3d4-0000-4000-8000-000000000002"]
        let rust = sessions.map { session in
            Event(type: .nodeHealthCheck, sessionId: session, projectId: "my-app", message: "health check", data: .null)
        }
        for round in 0..<2 {
            let running = try await RunningCoordinator(server: server, databasePath: directory + "/h.sqlite", options: options)
            if round == 0 {
                for event in rust { try client.publish(event.jsonBytes, to: "ennio.node.my-app.health_check") }
                try await client.flush()
                try await running.waitForReceived(2)
            }
            #expect(running.coordinator.statistics.mismatched == 0)
            #expect(running.coordinator.nodes.isEmpty, "round \(round): no phantom node named after the project")
            let stored = try running.store.query(HistoryQuery(category: .node))
            #expect(stored.events == rust)
            #expect(stored.subjects == ["ennio.node.my-app.health_check", "ennio.node.my-app.health_check"])
            // Well past the timeout of a node that would have been made of them.
            let ticks = running.coordinator.statistics
            try await Task.sleep(for: .milliseconds(200))
            await running.coordinator.checkNodes()
            #expect(running.coordinator.statistics.published == ticks.published, "round \(round): no alarm")
            let reply = try JSONValue(parsing: try await client.request([], to: QueryProtocol.nodesSubject).payload)
            #expect(reply["nodes"]?.arrayValue?.isEmpty == true)
            await running.stop()
        }
        try await client.flush()
        #expect(alarms.pendingCount == 0 && alarms.deliveredCount == 0)
        await client.close()
    }

    /// The tables a coordinator answers from are the same after a restart from its checkpoint
    /// and after one with `rebuildFromHistory`.
    @Test func aRestartFromTheCheckpointAndARebuildAnswerTheSame() async throws {
        let server = try TestServer()
        let directory = NSTemporaryDirectory() + "ennio-restart-\(EventID.random())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/h.sqlite"
        var options = CoordinatorOptions()
        options.mode = .core
        // No node is found silent during the test (which would publish and change the tables).
        options.missedHealthChecks = 1000
        let first = try await RunningCoordinator(server: server, databasePath: path, options: options)
        let client = try await NATSConnection.connect(to: server)
        let history = randomHistory(seed: 4242, count: 300)
        for (event, subject) in history { try client.publish(event.jsonBytes, to: subject) }
        try await client.flush()
        try await first.waitForReceived(UInt64(history.count))
        func tables() async throws -> [JSONValue] {
            var rows: [JSONValue] = []
            try await QueryClient(connection: client).sessions { rows.append($0) }
            try await QueryClient(connection: client).nodes { node in
                // What does not depend on the time of the query.
                rows.append(.object((node.objectValue ?? [:]).filter { $0.key != "seconds_since_last_seen" && $0.key != "connected" }))
            }
            return rows
        }
        let live = try await tables()
        #expect(live.count > 5)
        await first.stop()

        let restarted = try await RunningCoordinator(server: server, databasePath: path, options: options)
        #expect(restarted.coordinator.state.loadReport.eventsRead == 0)
        #expect(try await tables() == live)
        await restarted.stop()

        options.rebuildFromHistory = true
        let rebuilt = try await RunningCoordinator(server: server, databasePath: path, options: options)
        #expect(rebuilt.coordinator.state.loadReport.rebuilt == [LifecycleState.name, FamilyReducers.name])
        #expect(try await tables() == live)
        await rebuilt.stop()
        await client.close()
    }
}
