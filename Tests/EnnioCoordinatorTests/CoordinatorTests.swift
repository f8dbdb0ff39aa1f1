import EnnioAgent
@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// A coordinator running against a real server, with helpers to drive and inspect it.
final class RunningCoordinator: Sendable {
    let connection: NATSConnection
    let coordinator: Coordinator
    let store: EventStore
    let task: Task<Void, any Error>

    convenience init(
        server: TestServer, databasePath: String = ":memory:", options: CoordinatorOptions = CoordinatorOptions(),
        log: @escaping @Sendable (String) -> Void = { _ in }, configure: (inout NATSOptions) -> Void = { _ in }
    ) async throws {
        try await self.init(servers: [server.url], databasePath: databasePath, options: options, log: log, configure: configure)
    }

    /// A coordinator whose connection may use any of `servers` (a cluster's nodes).
    init(
        servers: [String], databasePath: String = ":memory:", options: CoordinatorOptions = CoordinatorOptions(),
        log: @escaping @Sendable (String) -> Void = { _ in }, configure: (inout NATSOptions) -> Void = { _ in }
    ) async throws {
        var connectionOptions = NATSOptions(servers: servers)
        configure(&connectionOptions)
        connection = try await NATSConnection.connect(connectionOptions)
        store = try EventStore(path: databasePath)
        let coordinator = try Coordinator(connection: connection, store: store, options: options, log: log)
        self.coordinator = coordinator
        let (ready, signal) = AsyncStream<Void>.makeStream()
        task = Task { try await coordinator.run { signal.finish() } }
        for await _ in ready {}
    }

    func stop() async {
        task.cancel()
        _ = await task.result
        await connection.close()
        store.close()
    }

    /// Waits until the coordinator has received `count` messages in all.
    func waitForReceived(_ count: UInt64) async throws {
        try await eventually("the coordinator to receive \(count) messages") { coordinator.statistics.received >= count }
    }
}

func event(_ type: EventType, project: String = "p1", session: String, id: String = EventID.random(), data: JSONValue = .null) -> Event {
    Event(id: id, type: type, sessionId: session, projectId: project, message: "\(type.rawValue) \(session)", data: data)
}

@Suite struct CoordinatorTests {
    @Test func sessionsRunToAllCompleteWhichIsPublishedOncePerProject() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let client = try await NATSConnection.connect(to: server.url)
        let lifecycle = try EventSubscription(connection: client, pattern: try .category(.lifecycle))
        try await client.flush()
        let publisher = try EventPublisher(connection: client)

        let script: [Event] = [
            event(.sessionSpawned, session: "a"), event(.sessionSpawned, session: "b"),
            event(.sessionSpawned, project: "p2", session: "c"),
            event(.statusChanged, session: "a", data: ["from": "working", "to": "working"]),
            event(.sessionExited, session: "a"), event(.sessionExited, session: "a"),
            event(.prMerged, session: "b"),
            event(.sessionKilled, project: "p2", session: "c"),
            event(.sessionKilled, session: "b"),
        ]
        for item in script { try publisher.publish(item) }
        try await client.flush()
        // Two all_complete events come back to the coordinator as well.
        try await running.waitForReceived(UInt64(script.count) + 2)

        let completions = try await within { () -> [String] in
            var projects: [String] = []
            var iterator = lifecycle.makeAsyncIterator()
            while projects.count < 2, let delivery = await iterator.next() { projects.append(delivery.event?.projectId ?? "?") }
            return projects.sorted()
        }
        #expect(completions == ["p1", "p2"])
        let statistics = running.coordinator.statistics
        #expect(statistics.stored == UInt64(script.count) + 2)
        #expect(statistics.published == 2, "one all_complete per project, however many terminal events")
        let sessions = running.coordinator.sessions
        #expect(sessions.map(\.sessionId) == ["a", "b", "c"])
        #expect(sessions.allSatisfy { $0.terminal })
        #expect(sessions.first { $0.sessionId == "b" }?.status == "killed")
        await client.close()
        await running.stop()
    }

    @Test func aNodeWhoseHealthChecksStopIsReportedDisconnectedOnce() async throws {
        let server = try TestServer()
        var options = CoordinatorOptions()
        options.tickInterval = .milliseconds(50)
        let running = try await RunningCoordinator(server: server, options: options)
        let watcher = try await NATSConnection.connect(to: server.url)
        let disconnects = try EventSubscription(connection: watcher, pattern: try .type(.nodeDisconnected))
        try await watcher.flush()

        // Two agents; "doomed" reports every 100 ms and then dies without saying goodbye.
        // "steady" reports every 60 s, so however slow the machine is, its silence during the
        // test is never long enough to count as missing.
        var agents: [(NATSConnection, Task<Void, any Error>)] = []
        for host in ["steady", "doomed"] {
            let connection = try await NATSConnection.connect(to: server) { $0.allowReconnect = false }
            var agentOptions = AgentOptions(host: host)
            agentOptions.healthInterval = host == "steady" ? .seconds(60) : .milliseconds(100)
            let agent = try NodeAgent(connection: connection, options: agentOptions)
            let (ready, signal) = AsyncStream<Void>.makeStream()
            agents.append((connection, Task { try await agent.run { signal.finish() } }))
            for await _ in ready {}
        }
        try await eventually("both nodes to be connected") { running.coordinator.nodes.filter(\.connected).count == 2 }

        // Crash: the connection goes away; no node_disconnected is sent.
        agents[1].1.cancel()
        await agents[1].0.close()
        _ = await agents[1].1.result

        let reported = try await within { () -> Event? in
            var iterator = disconnects.makeAsyncIterator()
            return await iterator.next()?.event
        }
        // The agent's own goodbye may or may not have got out before the socket closed; either
        // way the coordinator ends up with the node disconnected and reports it at most once.
        #expect(reported?.data["host"]?.stringValue == "doomed")
        try await eventually("the doomed node to be marked disconnected") {
            // By its goodbye, stored; or by the coordinator, once its report is published.
            guard let node = running.coordinator.nodes.first(where: { $0.host == "doomed" }) else { return false }
            return node.disconnected || (node.silenceReported && running.coordinator.statistics.published == 1)
        }
        // Once dead, it stays reported: no further node_disconnected for it.
        let publishedAfterDeath = running.coordinator.statistics.published
        try await Task.sleep(for: .milliseconds(600))
        #expect(running.coordinator.statistics.published == publishedAfterDeath)
        #expect(running.coordinator.nodes.first { $0.host == "steady" }?.connected == true)

        agents[0].1.cancel()
        _ = await agents[0].1.result
        await agents[0].0.close()
        await watcher.close()
        await running.stop()
    }

    @Test func silentNodesAreDetectedByTheCoordinator() async throws {
        let server = try TestServer()
        var options = CoordinatorOptions()
        options.tickInterval = .milliseconds(50)
        options.defaultHealthInterval = .milliseconds(100)
        let running = try await RunningCoordinator(server: server, options: options)
        let client = try await NATSConnection.connect(to: server.url)
        let disconnects = try EventSubscription(connection: client, pattern: try .type(.nodeDisconnected))
        try await client.flush()
        // A node that reports once and then goes silent (no goodbye at all).
        try EventPublisher(connection: client, host: "silent").publish(
            Event(type: .nodeHealthCheck, sessionId: "", projectId: "", message: "ok", data: ["host": "silent", "interval_seconds": 0.1]))
        try await client.flush()
        let reported = try await within { () -> Event? in
            var iterator = disconnects.makeAsyncIterator()
            return await iterator.next()?.event
        }
        #expect(reported?.data["host"]?.stringValue == "silent")
        try await Task.sleep(for: .milliseconds(500))
        #expect(running.coordinator.statistics.published == 1, "reported once")
        #expect(running.coordinator.nodes.first?.connected == false)
        await client.close()
        await running.stop()
    }

    @Test func duplicateEventIdsAreStoredOnce() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let client = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: client)
        let original = event(.sessionSpawned, session: "a", id: "same-id")
        var changed = original
        changed.message = "a different body with the same id"
        for item in [original, original, changed, event(.sessionWorking, session: "a")] { try publisher.publish(item) }
        try await client.flush()
        try await running.waitForReceived(4)
        // Counted together with its outcome: nothing received is unaccounted for.
        let statistics = running.coordinator.statistics
        #expect(statistics.stored + statistics.duplicates == statistics.received)
        #expect(try running.store.count() == 2)
        #expect(statistics.duplicates == 2)
        #expect(running.coordinator.sessions.first?.eventCount == 2, "a duplicate is not applied twice")
        let page = try running.store.query(HistoryQuery(sessionId: "a"))
        #expect(page.events.first == original)
        await client.close()
        await running.stop()
    }

    @Test func malformedMessagesAreCountedNeverStoredNeverFatal() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let client = try await NATSConnection.connect(to: server.url)
        try client.publish("{broken", to: "ennio.ci.p1.failing")
        try client.publish("[]", to: "ennio.sessions.p1.spawned")
        try client.publish(#"{"id":"x","event_type":"exploded","priority":"info","session_id":"s","project_id":"p1","timestamp":"2026-01-01T00:00:00Z","message":"","data":null}"#, to: "ennio.ci.p1.failing")
        try client.publish(event(.ciPassing, project: "p2", session: "s").jsonBytes, to: "ennio.ci.p1.passing")
        try client.publish(event(.ciPassing, session: "s").jsonBytes, to: "ennio.sessions.p1.spawned")
        try client.publish([UInt8](repeating: 0xFF, count: 100), to: "ennio.node.h.health_check")
        try EventPublisher(connection: client).publish(event(.ciPassing, session: "s", id: "the-good-one"))
        try await client.flush()
        try await running.waitForReceived(7)
        let statistics = running.coordinator.statistics
        #expect(statistics.malformed == 4)
        #expect(statistics.mismatched == 2)
        #expect(statistics.stored == 1)
        #expect(try running.store.count() == 1)
        #expect(try running.store.contains(id: "the-good-one"))
        await client.close()
        await running.stop()
    }

    @Test func aRestartKeepsHistoryAndState() async throws {
        let server = try TestServer()
        let path = NSTemporaryDirectory() + "ennio-restart-\(EventID.random()).sqlite"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        let first = try await RunningCoordinator(server: server, databasePath: path)
        let client = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: client)
        for item in [event(.sessionSpawned, session: "a"), event(.ciFailing, session: "a"), event(.sessionSpawned, session: "b")] {
            try publisher.publish(item)
        }
        try await client.flush()
        try await first.waitForReceived(3)
        await first.stop()

        let second = try await RunningCoordinator(server: server, databasePath: path)
        #expect(try second.store.count() == 3)
        #expect(second.coordinator.sessions.map(\.sessionId) == ["a", "b"])
        #expect(second.coordinator.sessions.first?.status == "ci_failed")
        // The rules go on from where they were: ending both sessions completes the project.
        try publisher.publish(event(.sessionExited, session: "a"))
        try publisher.publish(event(.sessionExited, session: "b"))
        try await client.flush()
        try await second.waitForReceived(3)
        #expect(second.coordinator.statistics.published == 1)
        await client.close()
        await second.stop()
    }

    @Test func historyQueriesFilterPageAndRejectBadRequests() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let client = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: client)
        let base: Int64 = 1_800_000_000_000_000_000
        for index in 0..<30 {
            var item = event(index.isMultiple(of: 3) ? .ciFailing : .sessionWorking, project: index < 20 ? "p1" : "p2", session: "s\(index % 2)")
            item.timestamp = EventTimestamp(nanosecondsSinceEpoch: base + Int64(index) * 1_000_000_000)
            item.priority = index.isMultiple(of: 3) ? .urgent : .info
            try publisher.publish(item)
        }
        try await client.flush()
        try await running.waitForReceived(30)

        func history(_ body: String) async throws -> JSONValue {
            let reply = try await client.request(body, to: QueryProtocol.historySubject, timeout: .seconds(10))
            return try JSONValue(parsing: reply.payload)
        }
        #expect(try await history("")["count"]?.intValue == 30)
        #expect(try await history(#"{"project_id":"p2"}"#)["count"]?.intValue == 10)
        #expect(try await history(#"{"project_id":"p1","session_id":"s0"}"#)["count"]?.intValue == 10)
        #expect(try await history(#"{"event_type":"ci_failing"}"#)["count"]?.intValue == 10)
        #expect(try await history(#"{"category":"sessions"}"#)["count"]?.intValue == 20)
        #expect(try await history(#"{"min_priority":"urgent"}"#)["count"]?.intValue == 10)
        let since = EventTimestamp(nanosecondsSinceEpoch: base + 10 * 1_000_000_000).rfc3339
        let until = EventTimestamp(nanosecondsSinceEpoch: base + 15 * 1_000_000_000).rfc3339
        #expect(try await history(#"{"since":"\#(since)","until":"\#(until)"}"#)["count"]?.intValue == 5)

        // Paging by cursor: every event exactly once, oldest first, each with its subject.
        var seen: [String] = []
        var after: String?
        repeat {
            let page = try await history(after.map { #"{"limit":7,"after":"\#($0)"}"# } ?? #"{"limit":7}"#)
            seen += page["events"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            #expect(page["subjects"]?.arrayValue?.count == page["events"]?.arrayValue?.count)
            after = page["next"]?.stringValue
        } while after != nil
        #expect(seen.count == 30)
        #expect(Set(seen).count == 30)
        let newest = try await history(#"{"limit":1,"order":"newest_first"}"#)
        #expect(newest["events"]?[0]?["timestamp"]?.stringValue == EventTimestamp(nanosecondsSinceEpoch: base + 29 * 1_000_000_000).rfc3339)

        let offset = try await history(#"{"offset":7}"#)
        #expect(offset["error"]?["description"]?.stringValue?.contains("after") == true, "offset is refused, pointing to after")
        for bad in ["{", #"{"limit":0}"#, #"{"limit":5000}"#, #"{"event_type":"nope"}"#, #"{"project":"p1"}"#, #"{"since":"yesterday"}"#, #"{"limit":"ten"}"#, "[1]", #"{"after":"nope"}"#, #"{"order":"sideways"}"#, #"{"max_bytes":10}"#] {
            let reply = try await history(bad)
            #expect(reply["error"]?["code"]?.intValue == 400, "\(bad) → \(reply)")
            #expect(reply["error"]?["description"]?.stringValue?.isEmpty == false)
        }
        #expect(running.coordinator.statistics.badQueries == 12)

        let sessions = try JSONValue(parsing: try await client.request("", to: QueryProtocol.sessionsSubject).payload)
        #expect(sessions["sessions"]?.arrayValue?.count == 4)
        await client.close()
        await running.stop()
    }
}
