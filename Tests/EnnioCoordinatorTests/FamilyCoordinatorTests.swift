@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// Rollout and run events as another program writes them: JSON text by hand, in the documented
/// shape, each on its documented subject, published by nats-py.
private struct ForeignEvents {
    private(set) var lines: [String] = []
    private var number = 0

    static func time(_ seconds: Int) -> String {
        String(format: "2026-03-05T10:%02d:%02dZ", seconds / 60, seconds % 60)
    }

    mutating func add(_ type: String, action: String, category: String, project: String, session: String, at seconds: Int, _ data: String) {
        number += 1
        let time = Self.time(seconds)
        let members = category == "rollout" ? data.dropLast() + #","at":"\#(time)"}"# : Substring(data)
        lines.append(
            "ennio.\(category).\(project).\(action) "
                + #"{"id":"py-\#(number)","event_type":"\#(type)","priority":"info","session_id":"\#(session)","project_id":"\#(project)","timestamp":"\#(time)","message":"\#(type)","data":\#(members)}"#)
    }

    /// Rollout r-py on `stable`: two hosts in wave 0, one in wave 1, all converge; and a host of
    /// a rollout nobody opened.
    mutating func rollout() {
        func event(_ type: String, _ action: String, at seconds: Int, _ data: String) {
            add(type, action: action, category: "rollout", project: "stable", session: "r-py", at: seconds, data)
        }
        event("rollout_opened", "opened", at: 1, #"{"rollout_id":"r-py","channel":"stable","target_ref":"v2.0"}"#)
        var time = 2
        func move(_ host: String, _ moves: [(String, String)]) {
            for (from, to) in moves {
                event("host_state_changed", "host_state_changed", at: time, #"{"rollout_id":"r-py","host_id":"\#(host)","from":"\#(from)","to":"\#(to)"}"#)
                time += 1
            }
        }
        for host in ["web-1", "web-2"] {
            event("host_joined", "host_joined", at: time, #"{"rollout_id":"r-py","host_id":"\#(host)","wave":0}"#)
            time += 1
            move(host, [("dispatched", "soaking"), ("soaking", "soaked")])
        }
        event("wave_advanced", "wave_advanced", at: time, #"{"rollout_id":"r-py","from_wave":0,"to_wave":1}"#)
        time += 1
        event("host_joined", "host_joined", at: time, #"{"rollout_id":"r-py","host_id":"web-3","wave":1}"#)
        time += 1
        move("web-3", [("dispatched", "soaking"), ("soaking", "soaked")])
        add("host_joined", action: "host_joined", category: "rollout", project: "stable", session: "r-ghost", at: time, #"{"rollout_id":"r-ghost","host_id":"web-9","wave":0}"#)
        time += 1
        for host in ["web-1", "web-2", "web-3"] { move(host, [("soaked", "converged")]) }
    }

    /// Run op-py of project billing: s1 fails, is retried and completes; s2 fails with a
    /// failure snapshot. It resumes by retrying s2 from s1's context snapshot.
    mutating func run() {
        func event(_ type: String, _ action: String, at seconds: Int, _ data: String) {
            add(type, action: action, category: "run", project: "billing", session: "op-py", at: seconds, data)
        }
        event("run_started", "started", at: 100, #"{"op_id":"op-py","manifest_id":"invoice-v3","initial_snapshot_id":"snap-0"}"#)
        event("state_entered", "state_entered", at: 101, #"{"state_id":"s1","attempt":1,"base_snapshot_id":"snap-0"}"#)
        event("state_failed", "state_failed", at: 102, #"{"state_id":"s1","error":"timeout","failure_snapshot_id":"dump-1"}"#)
        event("state_entered", "state_entered", at: 103, #"{"state_id":"s1","attempt":2,"base_snapshot_id":"snap-0"}"#)
        event("state_completed", "state_completed", at: 104, #"{"state_id":"s1","context_snapshot_id":"snap-1"}"#)
        event("state_entered", "state_entered", at: 105, #"{"state_id":"s2","attempt":1,"base_snapshot_id":"snap-1"}"#)
        event("state_failed", "state_failed", at: 106, #"{"state_id":"s2","error":"card declined","failure_snapshot_id":"dump-2","attempt":1}"#)
    }

    /// Writes the lines to a temporary file for the peer.
    func file() throws -> String {
        let path = NSTemporaryDirectory() + "ennio-family-events-\(UUID().uuidString).txt"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

private func jetStreamCoordinator(_ server: TestServer, consumer: String, databasePath: String = ":memory:") async throws -> RunningCoordinator {
    var options = CoordinatorOptions()
    options.mode = .jetStream
    options.consumerName = consumer
    return try await RunningCoordinator(server: server, databasePath: databasePath, options: options)
}

private func ask(_ connection: NATSConnection, _ subject: String, _ body: String) async throws -> JSONValue {
    try JSONValue(parsing: try await connection.request(Array(body.utf8), to: subject, timeout: .seconds(10)).payload)
}

/// The events stored in the stream under `subject`, read with a consumer of their own.
private func streamed(_ subject: String, _ connection: NATSConnection, name: String) async throws -> [NATSMessage] {
    let jetStream = JetStream(connection: connection)
    var config = ConsumerConfig(durableName: name)
    config.filterSubject = subject
    _ = try await jetStream.createConsumer(stream: EventStream.name, config: config)
    let batch = try await jetStream.pullConsumer(stream: EventStream.name, consumer: name).fetch(batch: 10, expires: .seconds(1))
    return batch.messages.map(\.message)
}

@Suite struct FamilyCoordinatorTests {
    @Test func eventsFromNatsPyAreStoredReducedQueriedAndRolloutTerminalIsPublishedOnce() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Two coordinators, each reading the whole stream through its own consumer.
        let first = try await jetStreamCoordinator(server, consumer: "ennio-coordinator-a")
        let second = try await jetStreamCoordinator(server, consumer: "ennio-coordinator-b")
        var events = ForeignEvents()
        events.rollout()
        events.run()
        let path = try events.file()
        defer { try? FileManager.default.removeItem(atPath: path) }

        let peer = try PythonPeer(arguments: ["events", "--url", server.url, "--file", path])
        #expect(try await peer.exitCode(within: .seconds(60)) == 0, "\(peer.standardError)")
        for running in [first, second] {
            try await eventually("the rollout to end and its RolloutTerminal to come back") {
                running.coordinator.families.rollouts.rollouts["r-py"]?.terminalConfirmed == true
            }
            try await eventually("every event stored") { try running.store.count() == events.lines.count + 1 }
            // Published by each coordinator, stored once by each.
            try await eventually("the coordinator's publish acknowledged") { running.coordinator.statistics.published == 1 }
            #expect(try running.store.query(HistoryQuery(eventType: .rolloutTerminal)).events.count == 1)
        }
        let client = try await NATSConnection.connect(to: server)
        let terminals = try await streamed("ennio.rollout.stable.terminal", client, name: "terminal-check")
        #expect(terminals.count == 1, "the stream de-duplicated the second coordinator's copy")
        let terminal = try EventCodec.decode(try #require(terminals.first).payload)
        #expect(terminal.id == RolloutReducer.terminalEventID(of: "r-py"))
        let lastMove = try #require(events.lines.last { $0.contains(#""to":"converged""#) })
        let cause = try Event(json: String(lastMove.split(separator: " ", maxSplits: 1)[1]))
        #expect(terminal.timestamp == cause.timestamp)
        #expect(terminal.data["at"] == cause.data["at"])
        #expect(terminals.first?.headers?[EventPublisher.messageIDHeader] == terminal.id)

        // The reducers' state, as the queries give it.
        let rollout = try await ask(client, QueryProtocol.rolloutsSubject, #"{"rollout_id":"r-py"}"#)
        let record = try #require(rollout["rollouts"]?[0])
        #expect(record["state"] == "terminal")
        #expect(record["channel"] == "stable")
        #expect(record["target_ref"] == "v2.0")
        #expect(record["current_wave"] == 1)
        #expect(record["host_states"]?["converged"] == 3)
        #expect(record["terminal_event_id"] == .string(terminal.id))
        #expect(record["hosts"]?.arrayValue?.compactMap { $0["host_id"]?.stringValue } == ["web-1", "web-2", "web-3"])
        let list = try await ask(client, QueryProtocol.rolloutsSubject, #"{"channel":"stable"}"#)
        #expect(list["count"] == 1)
        #expect(list["statistics"]?["violations"] == 1)
        #expect(list["orphan_violations"]?[0]?["code"] == "unknown_rollout")
        #expect(list["orphan_violations"]?[0]?["event_type"] == "host_joined")
        let run = try await ask(client, QueryProtocol.runsSubject, #"{"op_id":"op-py"}"#)
        let resume = try #require(run["runs"]?[0]?["resume_point"])
        #expect(resume == ["reason": "retry", "state_id": "s2", "after_state_id": nil, "snapshot_id": "snap-1", "next_attempt": 2])
        #expect(run["runs"]?[0]?["attempts"] == ["s1": 2, "s2": 1])
        let runs = try await ask(client, QueryProtocol.runsSubject, #"{"project_id":"billing","status":"running"}"#)
        #expect(runs["runs"]?.arrayValue?.count == 1)

        // Bad requests and unknown ids.
        #expect(try await ask(client, QueryProtocol.rolloutsSubject, #"{"rollout_id":"nope"}"#)["error"]?["code"] == 404)
        #expect(try await ask(client, QueryProtocol.runsSubject, #"{"op":"x"}"#)["error"]?["code"] == 400)
        #expect(try await ask(client, QueryProtocol.rolloutsSubject, #"{"state":"done"}"#)["error"]?["code"] == 400)
        #expect(try await ask(client, QueryProtocol.runsSubject, #"{"limit":0}"#)["error"]?["code"] == 400)

        await client.close()
        await first.stop()
        await second.stop()
    }

    @Test func aStreamMadeBeforeTheFamiliesGetsTheirSubjects() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try await NATSConnection.connect(to: server)
        let jetStream = JetStream(connection: client)
        var old = EventStream.config
        old.subjects = old.subjects.filter { $0 != "ennio.rollout.>" && $0 != "ennio.run.>" }
        _ = try await jetStream.createStream(old)
        let info = try await EventStream.ensure(jetStream)
        #expect(Set(info.config.subjects) == Set(EventStream.subjects))
        #expect(info.config.duplicateWindow == old.duplicateWindow, "its other settings are kept")
        #expect(try await jetStream.streamInfo(EventStream.name).config.subjects.contains("ennio.run.>"))
        await client.close()
    }

    @Test func aRestartPublishesWhatItEmittedButNeverPublishedOnceAndNothingAfter() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = NSTemporaryDirectory() + "ennio-family-\(UUID().uuidString).sqlite"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        }
        // A history that ends with the last host converging: the coordinator that stored it
        // stopped before it could publish the RolloutTerminal.
        var events = ForeignEvents()
        events.rollout()
        let history = try events.lines.map { line in
            let space = try #require(line.firstIndex(of: " "))
            return (event: try Event(json: String(line[line.index(after: space)...])), subject: String(line[..<space]))
        }
        do {
            let store = try EventStore(path: database)
            try store.insert(history)
            store.close()
        }

        let restarted = try await jetStreamCoordinator(server, consumer: "ennio-coordinator", databasePath: database)
        try await eventually("the missing RolloutTerminal published and stored") {
            try restarted.store.query(HistoryQuery(eventType: .rolloutTerminal)).events.count == 1
        }
        try await eventually("and confirmed") { restarted.coordinator.families.rollouts.rollouts["r-py"]?.terminalConfirmed == true }
        #expect(restarted.coordinator.statistics.published == 1)
        await restarted.stop()

        // Once it is in the history, a restart has nothing to publish.
        let store = try EventStore(path: database)
        let connection = try await NATSConnection.connect(to: server)
        let again = try Coordinator(connection: connection, store: store)
        #expect(again.families.pendingEmissions.isEmpty)
        #expect(again.families.rollouts.rollouts["r-py"]?.state == .terminal)
        #expect(again.families.rollouts.rollouts["r-py"]?.terminalConfirmed == true)
        await connection.close()
        store.close()

        let client = try await NATSConnection.connect(to: server)
        #expect(try await streamed("ennio.rollout.*.terminal", client, name: "terminal-check").count == 1)
        await client.close()
    }
}
