@testable import EnnioCoordinator
import EnnioEvents
import EnnioSync
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// The session and node tables in the buckets `ENNIO_SESSIONS` and `ENNIO_NODES`, against a
/// real server: a watch (ours and nats-py's) sees a consistent snapshot and then every change,
/// values are the query rows, a restarted coordinator's buckets converge, writes that fail or
/// fall behind end in the same tables, and core mode has no buckets.
@Suite struct StateBucketTests {
    // MARK: - Helpers

    /// A session event of the flow: 20 sessions over 3 projects, never terminal.
    static func sessionEvent(_ index: Int, prefix: String = "s") -> Event {
        let session = index % 20
        let types: [EventType] = [.sessionSpawned, .sessionWorking, .activityChanged, .prCreated, .ciFailing, .ciPassing]
        let type = types[(index / 20) % types.count]
        let data: JSONValue = type == .activityChanged ? ["next": index % 2 == 0 ? "active" : "idle"] : .null
        return Event(type: type, sessionId: "\(prefix)\(session)", projectId: "p\(session % 3)", message: "event \(index)", data: data)
    }

    /// A health check of `host`, every `interval` seconds.
    static func healthCheck(_ host: String, interval: Double = 60, load: Double = 0.5) -> Event {
        Event(
            type: .nodeHealthCheck, sessionId: "", projectId: "", message: "ok",
            data: ["host": .string(host), "interval_seconds": .double(interval), "load": [.double(load)]])
    }

    static func publish(_ events: [Event], on connection: NATSConnection) async throws {
        for event in events {
            let host = LifecycleState.nodeHost(of: event)
            try await EventPublisher(connection: connection, host: host).publishDurably(event)
        }
    }

    /// A node row without `seconds_since_last_seen`, which changes with every instant.
    static func withoutAge(_ row: JSONValue) -> JSONValue {
        guard case .object(var members) = row else { return row }
        members["seconds_since_last_seen"] = nil
        return .object(members)
    }

    /// What a bucket holds, by key: read with a watch up to its initial-values marker.
    static func contents(of bucket: String, on connection: NATSConnection) async throws -> [String: JSONValue] {
        try await JetStream(connection: connection).keyValue(bucket).currentValues().mapValues { try JSONValue(parsing: $0) }
    }

    /// The tables as the coordinator answers `ennio.query.sessions|nodes` (what `ennio
    /// sessions --json` and `ennio nodes --json` print), by bucket key; nodes without their age.
    static func tables(on connection: NATSConnection) async throws -> (sessions: [String: JSONValue], nodes: [String: JSONValue]) {
        let client = QueryClient(connection: connection, timeout: .seconds(10))
        var sessions: [String: JSONValue] = [:]
        try await client.sessions { row in
            let key = try #require(StateBucket.sessionKey(projectId: row["project_id"]?.stringValue ?? "", sessionId: row["session_id"]?.stringValue ?? ""))
            sessions[key] = row
        }
        var nodes: [String: JSONValue] = [:]
        try await client.nodes { row in
            #expect(row["seconds_since_last_seen"]?.doubleValue != nil)
            nodes[try #require(row["host"]?.stringValue)] = withoutAge(row)
        }
        return (sessions, nodes)
    }

    /// Whether both buckets hold exactly the tables.
    static func converged(on connection: NATSConnection) async throws -> Bool {
        let (sessions, nodes) = try await tables(on: connection)
        let buckets = try await (contents(of: StateBucket.sessions, on: connection), contents(of: StateBucket.nodes, on: connection))
        return buckets.0 == sessions && buckets.1.mapValues(withoutAge) == nodes
    }

    // MARK: - Watching

    @Test func aWatchSeesAConsistentSnapshotThenEveryChangeWhileEventsFlow() async throws {
        let scene = try await JetStreamScene()
        let running = try await scene.coordinator()
        let client = scene.client
        let total = 600
        let flow = Task {
            for index in 0..<total {
                var events = [Self.sessionEvent(index)]
                if index % 10 == 0 { events.append(Self.healthCheck("h\(index / 10 % 2)", load: Double(index))) }
                try await Self.publish(events, on: client)
            }
        }
        try await eventually("a part of the flow stored") { try running.store.count() >= 150 }

        // The watch starts in the middle of the flow.
        let kv = try await JetStream(connection: client).keyValue(StateBucket.sessions)
        let status = try await kv.status()
        #expect(status.history == 1 && status.config.storage == .file)
        #expect(status.config.replicas == (try await JetStream(connection: client).streamInfo(EventStream.name)).config.replicas)
        struct Seen: Sendable {
            var values: [String: JSONValue] = [:]
            var snapshotDone = false
            var snapshotKeys = 0
            var problems: [String] = []
        }
        let seen = Locked(Seen())
        let watcher = try await kv.watch()
        let watching = Task {
            for try await update in watcher {
                guard case .entry(let entry) = update else {
                    seen.withLock {
                        $0.snapshotDone = true
                        $0.snapshotKeys = $0.values.count
                    }
                    continue
                }
                let value = try JSONValue(parsing: entry.value)
                seen.withLock { seen in
                    let ids = StateBucket.sessionIds(ofKey: entry.key)
                    if entry.operation != .put || ids?.projectId != value["project_id"]?.stringValue || ids?.sessionId != value["session_id"]?.stringValue {
                        seen.problems.append("\(entry.key): \(entry.operation) \(value)")
                    }
                    // The tables only move forward: a session's event count never goes back.
                    let before = seen.values[entry.key]?["event_count"]?.intValue ?? 0
                    if let count = value["event_count"]?.intValue, count < before {
                        seen.problems.append("\(entry.key) went back from \(before) to \(count) events")
                    }
                    seen.values[entry.key] = value
                }
            }
        }
        try await within(.seconds(120), "the flow") { try await flow.value }
        try await eventually("every event stored") { try running.store.count() == total + total / 10 }
        let (sessions, nodes) = try await Self.tables(on: client)
        #expect(sessions.count == 20 && nodes.count == 2)
        try await eventually("the watch to see the tables", within: .seconds(60)) { seen.withLock { $0.values } == sessions }
        let final = seen.withLock { $0 }
        #expect(final.snapshotDone && final.snapshotKeys > 0, "a snapshot first, then changes")
        #expect(final.problems.isEmpty, "\(final.problems)")
        #expect(try await Self.contents(of: StateBucket.nodes, on: client).mapValues(Self.withoutAge) == nodes)

        // A node whose health checks stop is not connected, in the bucket as in the query.
        try await Self.publish([Self.healthCheck("quiet", interval: 0.1)], on: client)
        try await eventually("the quiet node disconnected in the bucket") {
            try await Self.contents(of: StateBucket.nodes, on: client)["quiet"]?["connected"] == false
        }
        try await eventually("the buckets to hold the tables") { try await Self.converged(on: client) }
        watcher.stop()
        _ = await watching.result
        #expect(running.coordinator.stateBuckets.statistics.failures == 0)
        await scene.finish(running)
    }

    @Test func natsPyWatchesTheSnapshotAndThenEveryChange() async throws {
        let scene = try await JetStreamScene()
        let running = try await scene.coordinator()
        let client = scene.client
        try await Self.publish((0..<60).map { Self.sessionEvent($0) }, on: client)
        try await eventually("every event stored") { try running.store.count() == 60 }
        try await eventually("the buckets to hold the tables") { try await Self.converged(on: client) }
        let before = try await Self.contents(of: StateBucket.sessions, on: client)

        let added = 5
        let peer = try PythonPeer(arguments: [
            "kv-watch", "--url", scene.server.url, "--bucket", StateBucket.sessions, "--key", ">", "--count", "\(before.count + 1 + added)",
            "--timeout", "60",
        ])
        #expect(try await peer.line(within: .seconds(30)) == "READY", "\(peer.standardError)")
        // Each event makes a new session: one new value each.
        try await Self.publish((0..<added).map { Self.sessionEvent($0, prefix: "late") }, on: client)
        var snapshot: [String: JSONValue] = [:]
        var changes: [String: JSONValue] = [:]
        var markerSeen = false
        for _ in 0..<(before.count + 1 + added) {
            let line = try #require(try await peer.line(within: .seconds(60)), "\(peer.standardError)")
            let entry = try JSONValue(parsing: Array(line.utf8))
            if entry["initial_done"] == true {
                markerSeen = true
                continue
            }
            let key = try #require(entry["key"]?.stringValue)
            let value = try JSONValue(parsing: Array(try #require(Data(base64Encoded: entry["value_b64"]?.stringValue ?? ""))))
            #expect(entry["operation"] == "PUT")
            if markerSeen { changes[key] = value } else { snapshot[key] = value }
        }
        #expect(try await peer.exitCode(within: .seconds(30)) == 0, "\(peer.standardError)")
        #expect(snapshot == before)
        let (sessions, _) = try await Self.tables(on: client)
        #expect(changes == sessions.filter { $0.key.contains(".late") })
        #expect(changes.count == added)
        await scene.finish(running)
    }

    // MARK: - Restarts, failures, overflows

    @Test func aRestartedCoordinatorsBucketsConvergeToItsCheckpointedTables() async throws {
        let scene = try await JetStreamScene()
        let client = scene.client
        let database = scene.directory + "/history.sqlite"
        var running = try await scene.coordinator(database: database)
        try await Self.publish((0..<40).map { Self.sessionEvent($0) } + [Self.healthCheck("h0"), Self.healthCheck("h1")], on: client)
        try await eventually("every event stored") { try running.store.count() == 42 }
        try await eventually("the buckets to hold the tables") { try await Self.converged(on: client) }
        await running.stop()

        // While it is down: someone meddles with the buckets, and events go on.
        let jetStream = JetStream(connection: client)
        let sessions = try await jetStream.keyValue(StateBucket.sessions)
        let nodes = try await jetStream.keyValue(StateBucket.nodes)
        try await sessions.put("bogus.key", "{}")
        try await sessions.put("p1.s1", #"{"stale":true}"#)
        try await sessions.delete("p2.s2")
        try await nodes.put("ghost", "{}")
        try await Self.publish((40..<70).map { Self.sessionEvent($0) } + [Self.sessionEvent(0, prefix: "new")], on: client)

        running = try await scene.coordinator(database: database)
        try await eventually("every event stored") { try running.store.count() == 73 }
        try await eventually("the buckets to hold the tables again") { try await Self.converged(on: client) }
        let contents = try await Self.contents(of: StateBucket.sessions, on: client)
        #expect(contents["bogus.key"] == nil && contents["p2.s2"] != nil && contents["p0.new0"] != nil)
        #expect(try await Self.contents(of: StateBucket.nodes, on: client)["ghost"] == nil)
        let statistics = running.coordinator.stateBuckets.statistics
        #expect(statistics.resyncs >= 1 && statistics.deletes >= 2)
        #expect(!scene.log.contains { $0.contains("state buckets") }, "no failure, no overflow: \(scene.log)")
        await scene.finish(running)
    }

    @Test func aBucketDeletedUnderTheCoordinatorIsMadeAgainAndFilled() async throws {
        let scene = try await JetStreamScene()
        let running = try await scene.coordinator()
        let client = scene.client
        try await Self.publish((0..<20).map { Self.sessionEvent($0) }, on: client)
        try await eventually("the buckets to hold the tables") { try await Self.converged(on: client) }

        try await JetStream(connection: client).deleteKeyValue(StateBucket.sessions)
        try await Self.publish((20..<40).map { Self.sessionEvent($0) }, on: client)
        try await eventually("a failed write") { running.coordinator.stateBuckets.statistics.failures >= 1 }
        try await eventually("the bucket made again, holding the tables", within: .seconds(60)) {
            (try? await Self.converged(on: client)) == true
        }
        try await eventually("the writer to say it works again") { !running.coordinator.stateBuckets.statistics.failing }
        let log = scene.log
        #expect(log.filter { $0.contains("could not write the state buckets") }.count == 1, "once per episode: \(log)")
        #expect(log.contains { $0.contains("writing the state buckets works again") }, "\(log)")
        #expect(try running.store.count() == 40, "storing never waited for the buckets")
        await scene.finish(running)
    }

    @Test func changesPastThePendingLimitAreDroppedForAResyncThatConverges() async throws {
        let scene = try await JetStreamScene()
        let running = try await scene.coordinator { $0.stateBucketPendingLimit = 3 }
        let client = scene.client
        let writer = running.coordinator.stateBuckets
        try await eventually("the first resync") { writer.statistics.resyncs >= 1 }

        // Hold the writer, then change more rows than may wait.
        let (held, holding) = AsyncStream<Void>.makeStream()
        let (gate, open) = AsyncStream<Void>.makeStream()
        writer.hooks.withLock {
            $0.beforeWriting = {
                holding.yield()
                for await _ in gate {}
            }
        }
        var heldIterator = held.makeAsyncIterator()
        _ = await heldIterator.next()
        try await Self.publish((0..<20).map { Self.sessionEvent($0) }, on: client)
        try await eventually("every event stored") { try running.store.count() == 20 }
        try await eventually("an overflow") { writer.statistics.overflows >= 1 }
        #expect(writer.statistics.puts == 0, "nothing written while held")

        writer.hooks.withLock { $0.beforeWriting = nil }
        open.finish()
        try await eventually("the buckets to hold the tables") { try await Self.converged(on: client) }
        #expect(writer.statistics.resyncs >= 2)
        #expect(scene.log.filter { $0.contains("the state buckets fall behind") }.count == 1, "\(scene.log)")
        await scene.finish(running)
    }

    @Test func inCoreModeThereAreNoBucketsAndTheLogSaysSo() async throws {
        let scene = try await JetStreamScene()
        let running = try await scene.coordinator { $0.mode = .core }
        #expect(scene.log.contains { $0.contains("core NATS: the session and node tables are not kept in the buckets ENNIO_SESSIONS and ENNIO_NODES") })
        let client = scene.client
        let publisher = try EventPublisher(connection: client)
        for index in 0..<10 { try publisher.publish(Self.sessionEvent(index)) }
        try await client.flush()
        try await eventually("every event stored") { try running.store.count() == 10 }
        #expect(try await !JetStream(connection: client).keyValueBucketNames().contains(StateBucket.sessions))
        #expect(running.coordinator.stateBuckets.statistics == StateBucketStatistics())
        await scene.finish(running)
    }
}
