import EnnioAgent
@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import Glibc
import NATSClient
@testable import NATSTestSupport
import Testing

/// A node agent with its lifecycle loop over a scratch sessions directory, against a real
/// server; stopped by `stop()`.
final class LoopingAgent: Sendable {
    let agent: NodeAgent
    let connection: NATSConnection
    let task: Task<Void, any Error>

    init(server: TestServer, host: String = "h1", directory: SessionDirectory) async throws {
        connection = try await NATSConnection.connect(to: server.url)
        var options = AgentOptions(host: host)
        var sessions = SessionLoopOptions(directory: directory)
        sessions.pollInterval = .milliseconds(100)
        sessions.idleAfter = .milliseconds(500)
        options.sessions = sessions
        let agent = try NodeAgent(connection: connection, options: options)
        self.agent = agent
        task = await NodeAgentTests.start(agent)
    }

    var loop: SessionLoop { agent.sessionLoop! }

    func stop() async throws {
        agent.stop()
        try await task.value
        await connection.close()
    }
}

/// The coordinator's stored history of one session, oldest first.
func history(_ running: RunningCoordinator, session: String) throws -> [Event] {
    try running.store.query(HistoryQuery(sessionId: session, limit: 1000)).events
}

/// Waits until the coordinator has stored an event of `type` for `session`; returns the
/// session's history.
@discardableResult
func waitForHistory(_ running: RunningCoordinator, session: String, toContain type: EventType) async throws -> [Event] {
    var events: [Event] = []
    try await eventually("\(type) of \(session) in the coordinator's history") {
        events = try history(running, session: session)
        return events.contains { $0.eventType == type }
    }
    return events
}

/// Starts a short session and waits until its end is stored: whatever the agent published
/// before (for any session) has been stored by then, because the loop publishes in order.
func sentinel(_ running: RunningCoordinator, _ directory: SessionDirectory, id: String) async throws {
    _ = try SessionLauncher.start(project: "p1", session: id, command: ["sh", "-c", "exit 0"], in: directory)
    try await waitForHistory(running, session: id, toContain: .sessionExited)
}

@Suite struct SessionLoopTests {
    @Test func aSessionIsSpawnedChangesActivityAndExitsOnceInTheCoordinatorsHistory() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let scratch = try TemporaryDirectory("ennio-sessions")
        let directory = SessionDirectory(path: scratch.path)
        let agent = try await LoopingAgent(server: server, directory: directory)

        let record = try SessionLauncher.start(project: "p1", session: "s1", command: ["sh", "-c", "echo hi; sleep 2"], in: directory)
        try await waitForHistory(running, session: "s1", toContain: .sessionExited)
        try await sentinel(running, directory, id: "after")
        let events = try history(running, session: "s1")
        let types = events.map(\.eventType)

        #expect(types.first == .sessionSpawned, "\(types)")
        #expect(types.last == .sessionExited, "\(types)")
        #expect(types.count { $0.isTerminalForSession } == 1, "\(types)")
        #expect(events.first?.data["pid"]?.intValue == Int64(record.pid))
        #expect(events.allSatisfy { $0.data["host"]?.stringValue == "h1" && $0.projectId == "p1" })
        // The activity changes form a chain from nothing to exited.
        let activity = events.filter { $0.eventType == .activityChanged }
        #expect(activity.first?.data["prev"] == .null)
        #expect(activity.last?.data["next"]?.stringValue == "exited")
        for (earlier, later) in zip(activity, activity.dropFirst()) { #expect(later.data["prev"] == earlier.data["next"]) }
        // Seen running (unless the machine stalled for its 2 s): working once, then active.
        let statusChanges = events.filter { $0.eventType == .statusChanged }
        #expect(statusChanges.count <= 1)
        for change in statusChanges {
            #expect(change.data["from"]?.stringValue == "spawning")
            #expect(change.data["to"]?.stringValue == "working")
            #expect(activity.first?.data["next"]?.stringValue == "active")
        }
        // This test started the process, so the loop reaped it and knows how it ended.
        #expect(events.last?.data["exit_status"]?.intValue == 0)

        // The coordinator's table agrees, and the record on disk says it was reported.
        let table = running.coordinator.sessions.first { $0.sessionId == "s1" }
        #expect(table?.status == "exited")
        #expect(table?.activity == "exited")
        #expect(table?.terminal == true)
        let stored = try directory.read("p1.s1.json").record
        #expect(stored.status == .exited)
        #expect(stored.outbox.isEmpty)
        #expect(stored.exitStatus == .code(0))

        try await agent.stop()
        await running.stop()
    }

    @Test func aRestartedAgentRestoresARunningSessionOnceAndReportsItsExitOnce() async throws {
        let (server, store) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: store) }
        let running = try await RunningCoordinator(server: server)
        let scratch = try TemporaryDirectory("ennio-sessions")
        let directory = SessionDirectory(path: scratch.path)

        let first = try await LoopingAgent(server: server, directory: directory)
        #expect(first.agent.isDurable)
        let record = try SessionLauncher.start(project: "p1", session: "long", command: ["sleep", "60"], in: directory)
        try await waitForHistory(running, session: "long", toContain: .statusChanged)
        try await first.stop()

        let second = try await LoopingAgent(server: server, directory: directory)
        try await waitForHistory(running, session: "long", toContain: .sessionRestored)
        // It ends by itself (as far as the agent knows: nobody asked the agent to kill it).
        kill(record.pid, SIGTERM)
        try await waitForHistory(running, session: "long", toContain: .sessionExited)
        try await sentinel(running, directory, id: "after-exit")
        let restoredEvent = try history(running, session: "long").first { $0.eventType == .sessionRestored }
        #expect(restoredEvent?.data["status"]?.stringValue == "working")
        try await second.stop()

        // A third agent finds the session ended and reported: it says nothing about it.
        let third = try await LoopingAgent(server: server, directory: directory)
        try await eventually("two ticks of the third agent") { third.loop.statistics.ticks >= 2 }
        try await sentinel(running, directory, id: "after-restart")
        let types = try history(running, session: "long").map(\.eventType)
        #expect(types.count { $0 == .sessionSpawned } == 1, "\(types)")
        #expect(types.count { $0 == .sessionRestored } == 1, "\(types)")
        #expect(types.count { $0 == .sessionExited } == 1, "\(types)")
        #expect(!types.contains(.sessionKilled))
        #expect(types.last == .sessionExited)
        #expect(try history(running, session: "long").last?.data["exit_signal"]?.intValue == Int64(SIGTERM))
        #expect(running.coordinator.statistics.duplicates == 0)
        try await third.stop()
        await running.stop()
    }

    @Test func aSessionKilledByCommandIsKilledOnceAndNeverExited() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let scratch = try TemporaryDirectory("ennio-sessions")
        let directory = SessionDirectory(path: scratch.path)
        let agent = try await LoopingAgent(server: server, host: "h1", directory: directory)
        let record = try SessionLauncher.start(project: "p1", session: "victim", command: ["sh", "-c", "sleep 60"], in: directory)
        try await waitForHistory(running, session: "victim", toContain: .statusChanged)

        let operator_ = try await NATSConnection.connect(to: server.url)
        // Addressed to another host: ignored. (Commands are handled in order: once the health
        // check after it is answered, the kill has been looked at.)
        let healthChecks = agent.agent.statistics.healthChecks
        try operator_.publish(#"{"host":"elsewhere","session":"victim"}"#, to: "ennio.commands.kill")
        try operator_.publish(#"{"host":"h1"}"#, to: "ennio.commands.health_check")
        try await operator_.flush()
        try await eventually("the health check after the kill command") { agent.agent.statistics.healthChecks > healthChecks }
        try await sentinel(running, directory, id: "before-kill")
        #expect(SessionProcess.probe(record) == .alive)
        #expect(agent.loop.statistics.kills == 0)

        try operator_.publish(#"{"host":"h1","session":"victim"}"#, to: "ennio.commands.kill")
        try await operator_.flush()
        try await waitForHistory(running, session: "victim", toContain: .sessionKilled)
        try await sentinel(running, directory, id: "after-kill")
        let events = try history(running, session: "victim")
        let types = events.map(\.eventType)
        #expect(types.count { $0 == .sessionKilled } == 1, "\(types)")
        #expect(!types.contains(.sessionExited), "\(types)")
        #expect(types.last == .sessionKilled)
        #expect(events.last?.data["exit_signal"]?.intValue == Int64(SIGTERM))
        #expect(agent.loop.statistics.kills == 1)
        #expect(SessionProcess.probe(record) == .gone(nil))
        #expect(try directory.read("p1.victim.json").record.status == .killed)
        #expect(directory.killRequestTime(record) == nil, "the kill request is removed once reported")
        #expect(running.coordinator.sessions.first { $0.sessionId == "victim" }?.status == "killed")
        await operator_.close()
        try await agent.stop()
        await running.stop()
    }

    @Test func oneLoopPerDirectoryTheSecondTakesOverWhenTheFirstStops() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let scratch = try TemporaryDirectory("ennio-sessions")
        let directory = SessionDirectory(path: scratch.path)
        let first = try await LoopingAgent(server: server, host: "first", directory: directory)
        let record = try SessionLauncher.start(project: "p1", session: "shared", command: ["sleep", "60"], in: directory)
        defer { SessionProcess.send(SIGKILL, to: record) }
        try await waitForHistory(running, session: "shared", toContain: .statusChanged)

        let second = try await LoopingAgent(server: server, host: "second", directory: directory)
        try await eventually("the second loop to find the directory taken") { second.loop.statistics.listErrors >= 2 }
        #expect(second.loop.statistics.ticks == 0)
        try await first.stop()
        let events = try await waitForHistory(running, session: "shared", toContain: .sessionRestored)
        #expect(events.map(\.eventType).count { $0 == .sessionSpawned } == 1)
        let restored = try #require(events.firstIndex { $0.eventType == .sessionRestored })
        #expect(events[restored].data["host"]?.stringValue == "second")
        #expect(events[..<restored].allSatisfy { $0.data["host"]?.stringValue == "first" }, "the second loop said nothing before")
        try await second.stop()
        await running.stop()
    }

    @Test func aCorruptRecordIsATickErrorAndTheOtherSessionsAreStillObserved() async throws {
        let server = try TestServer()
        let running = try await RunningCoordinator(server: server)
        let scratch = try TemporaryDirectory("ennio-sessions")
        let directory = SessionDirectory(path: scratch.path)
        try #"{"id":"broken","project":"p1","status":"#.write(toFile: directory.file("p1.broken.json"), atomically: false, encoding: .utf8)
        let agent = try await LoopingAgent(server: server, directory: directory)
        _ = try SessionLauncher.start(project: "p1", session: "fine", command: ["sh", "-c", "echo fine; sleep 0.3"], in: directory)

        let errors = try await waitForHistory(running, session: "broken", toContain: .tickError)
        #expect(errors.first?.projectId == "p1")
        #expect(errors.first?.data["file"]?.stringValue == "p1.broken.json")
        #expect(errors.first?.data["error"]?.stringValue?.contains("malformed JSON") == true)
        try await waitForHistory(running, session: "fine", toContain: .sessionExited)
        try await sentinel(running, directory, id: "later")
        #expect(try history(running, session: "broken").count == 1, "reported once while it stays the same")

        // Repaired, it is a session like any other (first seen after the first tick: spawned).
        let repaired = LocalSession(id: "broken", project: "p1", pid: getpid(), command: ["x"], logFile: "/dev/null", createdAt: .now())
        try directory.write(repaired, durable: false)
        let types = try await waitForHistory(running, session: "broken", toContain: .sessionSpawned).map(\.eventType)
        #expect(Array(types.prefix(2)) == [.tickError, .sessionSpawned])
        #expect(agent.loop.statistics.tickErrors == 1)
        try await agent.stop()
        await running.stop()
    }
}
