import EnnioEvents
@testable import EnnioCoordinator
import Testing

let lifecycleBase: Int64 = 1_700_000_000_000_000_000

func sessionEvent(_ type: EventType, project: String = "p1", session: String, data: JSONValue = .null, at seconds: Int64 = 0) -> Event {
    Event(type: type, sessionId: session, projectId: project,
          timestamp: EventTimestamp(nanosecondsSinceEpoch: lifecycleBase + seconds * 1_000_000_000),
          message: type.rawValue, data: data)
}

func instantAt(_ seconds: Int64) -> EventTimestamp {
    EventTimestamp(nanosecondsSinceEpoch: lifecycleBase + seconds * 1_000_000_000)
}

func published(_ actions: [LifecycleAction]) -> [(EventType, String)] {
    actions.map { action in
        switch action {
        case .publish(let event, let host): (event.eventType, host ?? event.projectId)
        }
    }
}

/// A lifecycle state fed as the coordinator feeds it: each event with the next `seq`, stored
/// at a given instant of the coordinator's clock.
struct Feeder {
    var state: LifecycleState
    var seq: Int64 = 0

    init(defaultHealthInterval: Duration = .seconds(10), missedHealthChecks: Int = 3) {
        state = LifecycleState(defaultHealthInterval: defaultHealthInterval, missedHealthChecks: missedHealthChecks, watchingSince: instantAt(0))
    }

    @discardableResult
    mutating func apply(_ event: Event, storedAt seconds: Int64 = 0, subject: String = "") -> [LifecycleAction] {
        seq += 1
        return state.apply(StoredEvent(event: event, subject: subject, seq: seq, storedAt: instantAt(seconds)))
    }
}

func nodeEvent(_ type: EventType, host: String?, interval: Double? = nil, project: String = "", session: String = "") -> Event {
    var data: [String: JSONValue] = [:]
    if let host { data["host"] = .string(host) }
    if let interval { data["interval_seconds"] = .double(interval) }
    return Event(type: type, sessionId: session, projectId: project, message: "\(type.rawValue)", data: data.isEmpty ? .null : .object(data))
}

@Suite struct LifecycleStateTests {
    @Test func allCompleteIsPublishedOnceWhenEverySessionOfAProjectEnds() {
        var feeder = Feeder()
        #expect(feeder.apply(sessionEvent(.sessionSpawned, session: "a")).isEmpty)
        #expect(feeder.apply(sessionEvent(.sessionSpawned, session: "b")).isEmpty)
        #expect(feeder.apply(sessionEvent(.sessionSpawned, project: "p2", session: "c")).isEmpty)
        #expect(feeder.apply(sessionEvent(.sessionExited, session: "a")).isEmpty, "b is still running")
        let actions = feeder.apply(sessionEvent(.mergeCompleted, session: "b"))
        #expect(published(actions).map(\.0) == [.allComplete])
        #expect(published(actions).map(\.1) == ["p1"])
        if case .publish(let event, _)? = actions.first {
            #expect(event.data["sessions"]?.intValue == 2)
            #expect(event.projectId == "p1")
            #expect(event.message == "all 2 sessions of p1 reached a terminal state")
        }
        // Repeated terminal events: counted once, no second all_complete.
        #expect(feeder.apply(sessionEvent(.sessionKilled, session: "b")).isEmpty)
        #expect(feeder.apply(sessionEvent(.sessionExited, session: "a")).isEmpty)
        #expect(feeder.state.terminalCount == 2)
        #expect(feeder.state.completedProjects == ["p1"])
        #expect(feeder.state.sessions.values.filter { $0.projectId == "p2" }.allSatisfy { !$0.terminal })
    }

    @Test func aNewSessionRearmsTheProject() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a"))
        let first = feeder.apply(sessionEvent(.sessionExited, session: "a"))
        #expect(published(first).count == 1)
        if case .publish(let event, _)? = first.first {
            #expect(event.message == "the one session of p1 reached a terminal state")
        }
        feeder.apply(sessionEvent(.sessionSpawned, session: "b"))
        #expect(!feeder.state.completedProjects.contains("p1"))
        #expect(published(feeder.apply(sessionEvent(.sessionKilled, session: "b"))).count == 1)
    }

    @Test func restoringATerminalSessionMakesItLiveAgain() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a"))
        feeder.apply(sessionEvent(.sessionExited, session: "a"))
        feeder.apply(sessionEvent(.sessionRestored, session: "a"))
        #expect(feeder.state.sessions.values.first?.terminal == false)
        #expect(feeder.state.sessions.values.first?.status == "working")
        #expect(published(feeder.apply(sessionEvent(.sessionExited, session: "a"))).count == 1)
        #expect(feeder.state.terminalCount == 2)
    }

    @Test func statusChangesFromAStatusToItselfChangeNothing() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a"))
        feeder.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "spawning", "to": "working"]))
        #expect(feeder.state.sessions.values.first?.status == "working")
        feeder.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "working", "to": "working"]))
        #expect(feeder.state.ignoredStatusChanges == 1)
        feeder.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "working"]))
        #expect(feeder.state.ignoredStatusChanges == 2, "a change without a target is ignored too")
        let actions = feeder.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "working", "to": "done"]))
        #expect(published(actions).map(\.0) == [.allComplete], "done is terminal")
    }

    @Test func sessionRecordsTrackStatusActivityAndLastEvent() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a", at: 1))
        feeder.apply(sessionEvent(.prCreated, session: "a", at: 2))
        feeder.apply(sessionEvent(.ciFailing, session: "a", at: 3))
        feeder.apply(sessionEvent(.activityChanged, session: "a", data: ["activity": "thinking"], at: 4))
        // An older event arriving late does not move "last event" back.
        feeder.apply(sessionEvent(.sessionWorking, session: "a", at: 0))
        let record = feeder.state.sessionList[0]
        #expect(record.status == "working", "the status is the one stored last")
        #expect(record.activity == "thinking")
        #expect(record.lastEventType == .activityChanged)
        #expect(record.eventCount == 5)
    }

    @Test func activityIsReadFromTheNextFieldAndFromTheOlderActivityField() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a", at: 1))
        feeder.apply(sessionEvent(.activityChanged, session: "a", data: ["prev": nil, "next": "active"], at: 2))
        #expect(feeder.state.sessionList[0].activity == "active")
        feeder.apply(sessionEvent(.activityChanged, session: "a", data: ["activity": "thinking"], at: 3))
        #expect(feeder.state.sessionList[0].activity == "thinking")
        feeder.apply(sessionEvent(.activityChanged, session: "a", data: ["prev": "thinking", "next": "idle"], at: 4))
        #expect(feeder.state.sessionList[0].activity == "idle")
        // Neither field: the activity stays as it was.
        feeder.apply(sessionEvent(.activityChanged, session: "a", data: ["prev": "idle"], at: 5))
        #expect(feeder.state.sessionList[0].activity == "idle")
    }

    @Test func aTickErrorIsCountedForItsSessionAndChangesNoStatus() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a", at: 1))
        #expect(feeder.apply(sessionEvent(.tickError, session: "a", data: ["error": "unreadable"], at: 2)).isEmpty)
        #expect(feeder.state.sessionList[0].status == "spawning")
        #expect(feeder.state.sessionList[0].terminal == false)
        #expect(feeder.state.sessionList[0].eventCount == 2)
    }

    @Test func overlongStatusesAreCutAtACharacter() {
        var feeder = Feeder()
        let long = String(repeating: "é", count: 2000)
        feeder.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "x", "to": .string(long)]))
        let status = feeder.state.sessionList[0].status ?? ""
        #expect(status.utf8.count == LifecycleState.maximumTextBytes)
        #expect(long.hasPrefix(status))
    }

    @Test func eventsWithoutASessionDoNotCreateSessions() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.ciPassing, session: ""))
        feeder.apply(Event(type: .allComplete, sessionId: "", projectId: "p1", message: "m"))
        #expect(feeder.state.sessions.isEmpty)
    }

    @Test func aSilentNodeIsReportedDisconnectedOnceAfterThreeIntervals() {
        var feeder = Feeder(defaultHealthInterval: .seconds(10), missedHealthChecks: 3)
        feeder.apply(nodeEvent(.nodeHealthCheck, host: "h1", interval: 10), storedAt: 0)
        feeder.apply(nodeEvent(.nodeHealthCheck, host: "h2", interval: 10), storedAt: 0)
        #expect(feeder.state.tick(now: instantAt(29)).isEmpty)
        feeder.apply(nodeEvent(.nodeHealthCheck, host: "h2", interval: 10), storedAt: 25)
        let actions = feeder.state.tick(now: instantAt(31))
        #expect(published(actions).map(\.0) == [.nodeDisconnected])
        #expect(published(actions).map(\.1) == ["h1"])
        #expect(feeder.state.nodes["h1"]?.connected == false)
        #expect(feeder.state.nodes["h2"]?.connected == true)
        #expect(feeder.state.tick(now: instantAt(40)).isEmpty, "reported once")
        #expect(published(feeder.state.tick(now: instantAt(56))).map(\.1) == ["h2"])
        // The node comes back: connected again, and can be reported again later.
        feeder.apply(nodeEvent(.nodeHealthCheck, host: "h1", interval: 10), storedAt: 100)
        #expect(feeder.state.nodes["h1"]?.connected == true)
        #expect(published(feeder.state.tick(now: instantAt(131))).map(\.1) == ["h1"])
    }

    @Test func aStartingCoordinatorGivesEveryNodeAFullTimeout() {
        var feeder = Feeder()
        feeder.apply(nodeEvent(.nodeHealthCheck, host: "h", interval: 10), storedAt: -3600)
        feeder.state.watchingSince = instantAt(0)
        #expect(feeder.state.tick(now: instantAt(29)).isEmpty, "heard of an hour ago, but watched for 29 s only")
        #expect(published(feeder.state.tick(now: instantAt(31))).map(\.1) == ["h"])
    }

    @Test func theNodesOwnIntervalIsUsed() {
        var feeder = Feeder(defaultHealthInterval: .seconds(10))
        feeder.apply(nodeEvent(.nodeLaunched, host: "slow", interval: 60))
        #expect(feeder.state.tick(now: instantAt(179)).isEmpty)
        #expect(published(feeder.state.tick(now: instantAt(181))).map(\.1) == ["slow"])
    }

    @Test func aCleanDisconnectIsNotReportedAgain() {
        var feeder = Feeder()
        feeder.apply(nodeEvent(.nodeLaunched, host: "h"))
        feeder.apply(nodeEvent(.nodeDisconnected, host: "h"), storedAt: 1)
        #expect(feeder.state.nodes["h"]?.connected == false)
        #expect(feeder.state.tick(now: instantAt(1000)).isEmpty)
    }

    /// One rule for live ingest and rebuilds: a node event describes the host in its
    /// `data.host`; without one (the Rust implementation's shapes) it describes no node.
    @Test func theNodeIsTheOneInDataHostAndEventsWithoutOneMakeNoNode() {
        var feeder = Feeder()
        feeder.apply(nodeEvent(.nodeConnected, host: "from-data"), subject: "ennio.node.from-data.connected")
        // As the Rust implementation publishes it: once per session, the project in the
        // subject, data null.
        let rust = Event(type: .nodeHealthCheck, sessionId: "s-42", projectId: "my-app", message: "health check", data: .null)
        feeder.apply(rust, subject: "ennio.node.my-app.health_check")
        feeder.apply(nodeEvent(.nodeConnected, host: "bad host"))
        #expect(feeder.state.nodeList.map(\.host) == ["from-data"])
        #expect(feeder.state.tick(now: instantAt(10_000)).count == 1, "an alarm for our node only")
        #expect(LifecycleState.nodeHost(of: rust) == nil)
        #expect(feeder.state.sessions.isEmpty, "a node event is not a session event")
    }

    /// A batch whose transaction fails is undone in memory too: the state is what it was.
    @Test func rollingBackUndoesEverythingSinceTheLastCommit() {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a"))
        feeder.apply(nodeEvent(.nodeLaunched, host: "h"))
        feeder.state.committed()
        let before = feeder.state.changedRows()
        #expect(before.isEmpty)
        let snapshot = (feeder.state.sessions, feeder.state.nodes, feeder.state.completedProjects)

        feeder.apply(sessionEvent(.sessionExited, session: "a"))
        feeder.apply(sessionEvent(.sessionSpawned, session: "b"))
        feeder.apply(nodeEvent(.nodeDisconnected, host: "h"))
        feeder.apply(nodeEvent(.nodeLaunched, host: "other"))
        #expect(feeder.state.changedRows().count == 4)
        feeder.state.rollBack()
        #expect(feeder.state.sessions == snapshot.0)
        #expect(feeder.state.nodes == snapshot.1)
        #expect(feeder.state.completedProjects == snapshot.2)
        #expect(feeder.state.changedRows().isEmpty)
        // The counts came back too: ending "a" completes the project again.
        #expect(published(feeder.apply(sessionEvent(.sessionExited, session: "a"))).map(\.0) == [.allComplete])
    }

    /// The rows a state writes load back into the same state.
    @Test func rowsLoadBackIntoTheSameState() throws {
        var feeder = Feeder()
        feeder.apply(sessionEvent(.sessionSpawned, session: "a", at: 1))
        feeder.apply(sessionEvent(.activityChanged, session: "a", data: ["activity": "typing"], at: 2))
        feeder.apply(sessionEvent(.sessionExited, project: "p2", session: "b", at: 3))
        feeder.apply(nodeEvent(.nodeHealthCheck, host: "h", interval: 2.5), storedAt: 7)
        feeder.apply(nodeEvent(.nodeDisconnected, host: "gone"), storedAt: 8)
        var loaded = LifecycleState(watchingSince: instantAt(0))
        for row in feeder.state.changedRows() { try loaded.load(row) }
        #expect(loaded.sessions == feeder.state.sessions)
        #expect(loaded.nodes == feeder.state.nodes)
        #expect(loaded.completedProjects == ["p2"])
    }
}
