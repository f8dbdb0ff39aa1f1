import EnnioEvents
@testable import EnnioCoordinator
import Testing

func sessionEvent(_ type: EventType, project: String = "p1", session: String, data: JSONValue = .null, at seconds: Int64 = 0) -> Event {
    Event(type: type, sessionId: session, projectId: project,
          timestamp: EventTimestamp(nanosecondsSinceEpoch: 1_700_000_000_000_000_000 + seconds * 1_000_000_000),
          message: type.rawValue, data: data)
}

func published(_ actions: [LifecycleAction]) -> [(EventType, String)] {
    actions.map { action in
        switch action {
        case .publish(let event, let host): (event.eventType, host ?? event.projectId)
        }
    }
}

@Suite struct LifecycleStateTests {
    @Test func allCompleteIsPublishedOnceWhenEverySessionOfAProjectEnds() {
        var state = LifecycleState()
        #expect(state.apply(sessionEvent(.sessionSpawned, session: "a"), now: .zero).isEmpty)
        #expect(state.apply(sessionEvent(.sessionSpawned, session: "b"), now: .zero).isEmpty)
        #expect(state.apply(sessionEvent(.sessionSpawned, project: "p2", session: "c"), now: .zero).isEmpty)
        #expect(state.apply(sessionEvent(.sessionExited, session: "a"), now: .zero).isEmpty, "b is still running")
        let actions = state.apply(sessionEvent(.mergeCompleted, session: "b"), now: .zero)
        #expect(published(actions).map(\.0) == [.allComplete])
        #expect(published(actions).map(\.1) == ["p1"])
        if case .publish(let event, _)? = actions.first {
            #expect(event.data["sessions"]?.intValue == 2)
            #expect(event.projectId == "p1")
        }
        // Repeated terminal events: counted once, no second all_complete.
        #expect(state.apply(sessionEvent(.sessionKilled, session: "b"), now: .zero).isEmpty)
        #expect(state.apply(sessionEvent(.sessionExited, session: "a"), now: .zero).isEmpty)
        #expect(state.terminalCount == 2)
        #expect(state.completedProjects == ["p1"])
        #expect(state.sessions.values.filter { $0.projectId == "p2" }.allSatisfy { !$0.terminal })
    }

    @Test func aNewSessionRearmsTheProject() {
        var state = LifecycleState()
        _ = state.apply(sessionEvent(.sessionSpawned, session: "a"), now: .zero)
        #expect(published(state.apply(sessionEvent(.sessionExited, session: "a"), now: .zero)).count == 1)
        _ = state.apply(sessionEvent(.sessionSpawned, session: "b"), now: .zero)
        #expect(!state.completedProjects.contains("p1"))
        #expect(published(state.apply(sessionEvent(.sessionKilled, session: "b"), now: .zero)).count == 1)
    }

    @Test func restoringATerminalSessionMakesItLiveAgain() {
        var state = LifecycleState()
        _ = state.apply(sessionEvent(.sessionSpawned, session: "a"), now: .zero)
        _ = state.apply(sessionEvent(.sessionExited, session: "a"), now: .zero)
        _ = state.apply(sessionEvent(.sessionRestored, session: "a"), now: .zero)
        #expect(state.sessions.values.first?.terminal == false)
        #expect(state.sessions.values.first?.status == "working")
        #expect(published(state.apply(sessionEvent(.sessionExited, session: "a"), now: .zero)).count == 1)
        #expect(state.terminalCount == 2)
    }

    @Test func statusChangesFromAStatusToItselfChangeNothing() {
        var state = LifecycleState()
        _ = state.apply(sessionEvent(.sessionSpawned, session: "a"), now: .zero)
        _ = state.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "spawning", "to": "working"]), now: .zero)
        #expect(state.sessions.values.first?.status == "working")
        _ = state.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "working", "to": "working"]), now: .zero)
        #expect(state.ignoredStatusChanges == 1)
        _ = state.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "working"]), now: .zero)
        #expect(state.ignoredStatusChanges == 2, "a change without a target is ignored too")
        let actions = state.apply(sessionEvent(.statusChanged, session: "a", data: ["from": "working", "to": "done"]), now: .zero)
        #expect(published(actions).map(\.0) == [.allComplete], "done is terminal")
    }

    @Test func sessionRecordsTrackStatusActivityAndLastEvent() {
        var state = LifecycleState()
        _ = state.apply(sessionEvent(.sessionSpawned, session: "a", at: 1), now: .zero)
        _ = state.apply(sessionEvent(.prCreated, session: "a", at: 2), now: .zero)
        _ = state.apply(sessionEvent(.ciFailing, session: "a", at: 3), now: .zero)
        _ = state.apply(sessionEvent(.activityChanged, session: "a", data: ["activity": "thinking"], at: 4), now: .zero)
        // An older event arriving late does not move "last event" back.
        _ = state.apply(sessionEvent(.sessionWorking, session: "a", at: 0), now: .zero)
        let record = state.sessionList[0]
        #expect(record.status == "working")
        #expect(record.activity == "thinking")
        #expect(record.lastEventType == .activityChanged)
        #expect(record.eventCount == 5)
    }

    @Test func activityIsReadFromTheNextFieldAndFromTheOlderActivityField() {
        var state = LifecycleState()
        _ = state.apply(sessionEvent(.sessionSpawned, session: "a", at: 1), now: .zero)
        _ = state.apply(sessionEvent(.activityChanged, session: "a", data: ["prev": nil, "next": "active"], at: 2), now: .zero)
        #expect(state.sessionList[0].activity == "active")
        _ = state.apply(sessionEvent(.activityChanged, session: "a", data: ["activity": "thinking"], at: 3), now: .zero)
        #expect(state.sessionList[0].activity == "thinking")
        _ = state.apply(sessionEvent(.activityChanged, session: "a", data: ["prev": "thinking", "next": "idle"], at: 4), now: .zero)
        #expect(state.sessionList[0].activity == "idle")
        // Neither field: the activity stays as it was.
        _ = state.apply(sessionEvent(.activityChanged, session: "a", data: ["prev": "idle"], at: 5), now: .zero)
        #expect(state.sessionList[0].activity == "idle")
    }

    @Test func aTickErrorIsCountedForItsSessionAndChangesNoStatus() {
        var state = LifecycleState()
        _ = state.apply(sessionEvent(.sessionSpawned, session: "a", at: 1), now: .zero)
        #expect(state.apply(sessionEvent(.tickError, session: "a", data: ["error": "unreadable"], at: 2), now: .zero).isEmpty)
        #expect(state.sessionList[0].status == "spawning")
        #expect(state.sessionList[0].terminal == false)
        #expect(state.sessionList[0].eventCount == 2)
    }

    @Test func eventsWithoutASessionDoNotCreateSessions() {
        var state = LifecycleState()
        _ = state.apply(sessionEvent(.ciPassing, session: ""), now: .zero)
        _ = state.apply(Event(type: .allComplete, sessionId: "", projectId: "p1", message: "m"), now: .zero)
        #expect(state.sessions.isEmpty)
    }

    @Test func aSilentNodeIsReportedDisconnectedOnceAfterThreeIntervals() {
        var state = LifecycleState(defaultHealthInterval: .seconds(10), missedHealthChecks: 3)
        let health = Event(type: .nodeHealthCheck, sessionId: "", projectId: "", message: "ok", data: ["interval_seconds": 10])
        _ = state.apply(health, host: "h1", now: .seconds(0))
        _ = state.apply(health, host: "h2", now: .seconds(0))
        #expect(state.tick(now: .seconds(29)).isEmpty)
        _ = state.apply(health, host: "h2", now: .seconds(25))
        let actions = state.tick(now: .seconds(31))
        #expect(published(actions).map(\.0) == [.nodeDisconnected])
        #expect(published(actions).map(\.1) == ["h1"])
        #expect(state.nodes["h1"]?.connected == false)
        #expect(state.nodes["h2"]?.connected == true)
        #expect(state.tick(now: .seconds(40)).isEmpty, "reported once")
        #expect(published(state.tick(now: .seconds(56))).map(\.1) == ["h2"])
        // The node comes back: connected again, and can be reported again later.
        _ = state.apply(health, host: "h1", now: .seconds(100))
        #expect(state.nodes["h1"]?.connected == true)
        #expect(published(state.tick(now: .seconds(131))).map(\.1) == ["h1"])
    }

    @Test func theNodesOwnIntervalIsUsed() {
        var state = LifecycleState(defaultHealthInterval: .seconds(10))
        let slow = Event(type: .nodeLaunched, sessionId: "", projectId: "", message: "up", data: ["interval_seconds": 60])
        _ = state.apply(slow, host: "slow", now: .zero)
        #expect(state.tick(now: .seconds(179)).isEmpty)
        #expect(published(state.tick(now: .seconds(181))).map(\.1) == ["slow"])
    }

    @Test func aCleanDisconnectIsNotReportedAgain() {
        var state = LifecycleState()
        _ = state.apply(Event(type: .nodeLaunched, sessionId: "", projectId: "", message: "up"), host: "h", now: .zero)
        _ = state.apply(Event(type: .nodeDisconnected, sessionId: "", projectId: "", message: "bye"), host: "h", now: .seconds(1))
        #expect(state.nodes["h"]?.connected == false)
        #expect(state.tick(now: .seconds(1000)).isEmpty)
    }

    @Test func theNodeHostComesFromTheSubjectOrTheData() {
        var state = LifecycleState()
        _ = state.apply(Event(type: .nodeConnected, sessionId: "", projectId: "", message: "m", data: ["host": "from-data"]), now: .zero)
        _ = state.apply(Event(type: .nodeConnected, sessionId: "", projectId: "", message: "m"), host: "from-subject", now: .zero)
        _ = state.apply(Event(type: .nodeConnected, sessionId: "", projectId: "", message: "no host"), now: .zero)
        #expect(state.nodeList.map(\.host) == ["from-data", "from-subject"])
    }
}
