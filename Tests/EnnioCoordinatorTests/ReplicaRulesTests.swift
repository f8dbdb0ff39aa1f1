import EnnioEvents
@testable import EnnioCoordinator
import Testing

/// The rules that let several coordinators share one stream, without sockets: catching up,
/// holding derived events meanwhile, and derived events that every replica makes the same.
@Suite struct StreamCatchUpTests {
    @Test func aConsumerWithNothingPendingIsCaughtUpAtOnce() {
        var catchUp = StreamCatchUp()
        #expect(catchUp.startedReading(numPending: 0, numAckPending: 0, deliveredThrough: 40, ackFloor: 40, now: instantAt(1)) == .caughtUp)
        #expect(catchUp.caughtUp)
        #expect(catchUp.judgingTime(now: instantAt(5)) == instantAt(1), "current as of the start, not later")
        #expect(catchUp.foundNothing(now: instantAt(6)) == .none, "caught up once")
        #expect(catchUp.judgingTime(now: instantAt(7)) == instantAt(6))
    }

    @Test func aBacklogIsCaughtUpWhenTheLastMessageOfACommittedBatchHasNothingAfterIt() {
        var catchUp = StreamCatchUp()
        #expect(catchUp.startedReading(numPending: 20_000, numAckPending: 0, deliveredThrough: 0, ackFloor: 0, now: instantAt(0)) == .none)
        #expect(!catchUp.caughtUp)
        #expect(catchUp.judgingTime(now: instantAt(1)) == nil, "no node is judged before catching up")
        #expect(catchUp.committed(pending: 12_000, now: instantAt(1)) == .none)
        #expect(catchUp.committed(pending: 4_000, now: instantAt(2)) == .none)
        #expect(!catchUp.caughtUp)
        #expect(catchUp.committed(pending: 0, now: instantAt(3)) == .caughtUp)
        #expect(catchUp.judgingTime(now: instantAt(9)) == instantAt(3))
        // Behind again (a burst): judged as of the last time everything had been read.
        #expect(catchUp.committed(pending: 500, now: instantAt(10)) == .none)
        #expect(catchUp.judgingTime(now: instantAt(11)) == instantAt(3))
        #expect(catchUp.caughtUp, "caught up stays caught up")
    }

    @Test func anEmptyFetchAfterTheLastCommitIsTheEndToo() {
        var catchUp = StreamCatchUp()
        _ = catchUp.startedReading(numPending: 5, numAckPending: 0, deliveredThrough: 0, ackFloor: 0, now: instantAt(0))
        #expect(catchUp.foundNothing(now: instantAt(2)) == .caughtUp)
    }

    @Test func deliveriesOfAnEarlierRunMustBeAcknowledgedFirst() {
        var catchUp = StreamCatchUp()
        // The run before stopped with messages 91...100 delivered and not acknowledged: the
        // server delivers them again after the ack wait.
        #expect(catchUp.startedReading(numPending: 0, numAckPending: 10, deliveredThrough: 100, ackFloor: 90, now: instantAt(0)) == .none)
        #expect(catchUp.needsConsumerInfo)
        #expect(catchUp.consumerInfoArrived(numPending: 0, ackFloor: 90, now: instantAt(1)) == .none)
        #expect(!catchUp.caughtUp && !catchUp.needsConsumerInfo)
        #expect(catchUp.foundNothing(now: instantAt(2)) == .none)
        #expect(catchUp.needsConsumerInfo, "asks again at the next end")
        #expect(catchUp.committed(pending: 0, now: instantAt(30)) == .none, "the redelivered batch")
        #expect(catchUp.consumerInfoArrived(numPending: 0, ackFloor: 100, now: instantAt(31)) == .caughtUp)
        #expect(catchUp.judgingTime(now: instantAt(40)) == instantAt(31))
    }

    @Test func coreNATSIsAlwaysCurrent() {
        var catchUp = StreamCatchUp()
        #expect(catchUp.caughtUp)
        #expect(catchUp.judgingTime(now: instantAt(7)) == instantAt(7))
        #expect(catchUp.committed(pending: 0, now: instantAt(8)) == .none)
    }
}

@Suite struct HeldEmissionsTests {
    func completion(_ project: String) -> LifecycleAction {
        .publish(Event(id: "done-\(project)", type: .allComplete, sessionId: "", projectId: project, timestamp: instantAt(0), message: "m"), host: nil)
    }

    @Test func whileCatchingUpDerivedEventsWaitAndThoseTheStreamBringsAreForgotten() {
        var held = HeldEmissions()
        held.hold()
        #expect(held.committed(actions: [completion("a"), completion("b")], stored: ["e1", "e2"]).isEmpty)
        #expect(held.count == 2)
        // Another coordinator published b's: it comes from the stream.
        #expect(held.committed(actions: [completion("c")], stored: ["done-b", "e3"]).isEmpty)
        // Derived and brought in the same batch.
        #expect(held.committed(actions: [completion("d")], stored: ["e4", "done-d"]).isEmpty)
        #expect(held.count == 2)
        #expect(held.caughtUp() == [completion("a"), completion("c")])
        #expect(held.count == 0)
        #expect(held.committed(actions: [completion("e")], stored: []) == [completion("e")], "published as derived once caught up")
    }

    @Test func pastItsCapacityTheOldestIsPublishedAtOnce() {
        var held = HeldEmissions(releasing: false, capacity: 2)
        #expect(held.committed(actions: [completion("a"), completion("b")], stored: []).isEmpty)
        #expect(held.committed(actions: [completion("c")], stored: []) == [completion("a")])
        #expect(held.count == 2)
        for index in 0..<5000 {
            _ = held.committed(actions: [completion("x\(index)")], stored: ["done-x\(index)"])
        }
        #expect(held.count == 2)
        #expect(held.caughtUp() == [completion("b"), completion("c")])
    }

    @Test func releasingPassesEverythingThrough() {
        var held = HeldEmissions()
        #expect(held.committed(actions: [completion("a")], stored: ["done-a"]) == [completion("a")])
        #expect(held.caughtUp().isEmpty)
    }
}

@Suite struct DerivedEventTests {
    func events(_ actions: [LifecycleAction]) -> [Event] {
        actions.map { action in
            switch action {
            case .publish(let event, _): event
            }
        }
    }

    /// Two coordinators (two states) fed the same history derive the same all_complete, to the
    /// byte: its id from the project and the event that ended it, its timestamp that event's.
    @Test func allCompleteIsTheSameOnEveryReplica() throws {
        let history = [
            sessionEvent(.sessionSpawned, session: "a", at: 1), sessionEvent(.sessionSpawned, session: "b", at: 2),
            sessionEvent(.sessionExited, session: "a", at: 3), sessionEvent(.sessionKilled, session: "b", at: 4),
        ]
        var first = Feeder()
        var second = Feeder()
        var derived: [[Event]] = [[], []]
        for (index, event) in history.enumerated() {
            derived[0] += events(first.apply(event, storedAt: Int64(index)))
            // The second coordinator stores them later, on another clock.
            derived[1] += events(second.apply(event, storedAt: Int64(index) + 500))
        }
        #expect(derived[0].count == 1)
        #expect(derived[0] == derived[1])
        let completion = try #require(derived[0].first)
        #expect(completion.id == EventID.derived(kind: "all_complete", name: "p1 " + history[3].id))
        #expect(completion.timestamp == history[3].timestamp)
        #expect(EventCodec.encode(completion) == EventCodec.encode(try #require(derived[1].first)))

        // A session comes back and the project ends again: another cause, another event.
        let again = [sessionEvent(.sessionRestored, session: "a", at: 10), sessionEvent(.sessionExited, session: "a", at: 11)]
        let later = again.flatMap { events(first.apply($0)) }
        #expect(later.count == 1)
        #expect(later.first?.id != completion.id)
        #expect(later.first?.timestamp == again[1].timestamp)
    }

    /// Two coordinators that find the same node silent, each on its own clock, publish one
    /// node_disconnected: derived from the node's last event, timed by it.
    @Test func aSilenceIsReportedWithTheSameEventByEveryReplica() throws {
        let check = Event(
            type: .nodeHealthCheck, sessionId: "", projectId: "", timestamp: instantAt(100), message: "health",
            data: ["host": "h1", "interval_seconds": 10])
        var first = Feeder()
        var second = Feeder()
        first.apply(check, storedAt: 101)
        second.apply(check, storedAt: 104)
        let one = events(first.state.tick(now: instantAt(132)))
        #expect(second.state.tick(now: instantAt(132)).isEmpty, "heard from 28 s ago on its clock")
        let other = events(second.state.tick(now: instantAt(135)))
        #expect(one.count == 1)
        #expect(one == other)
        let report = try #require(one.first)
        #expect(report.id == EventID.derived(kind: "node_disconnected", name: "h1 " + check.id))
        #expect(report.timestamp == instantAt(130), "the last check's time plus three intervals")
        #expect(report.data["last_event_id"]?.stringValue == check.id)
        #expect(report.data["host"]?.stringValue == "h1")

        // Heard from again, then silent again: another silence, another event.
        var next = check
        next.id = EventID.random()
        next.timestamp = instantAt(200)
        first.apply(next, storedAt: 200)
        let again = events(first.state.tick(now: instantAt(231)))
        #expect(again.count == 1)
        #expect(again.first?.id != report.id)
    }

    /// The node's last event survives a restart from the checkpoint: the report is the same.
    @Test func theCauseOfASilenceIsKeptInTheCheckpoint() throws {
        var feeder = Feeder()
        feeder.apply(nodeEvent(.nodeHealthCheck, host: "h", interval: 10), storedAt: 0)
        let rows = feeder.state.changedRows()
        var restarted = LifecycleState(watchingSince: instantAt(0))
        for row in rows { try restarted.load(row) }
        let before = events(feeder.state.tick(now: instantAt(31)))
        let after = events(restarted.tick(now: instantAt(31)))
        #expect(before.count == 1)
        #expect(before == after)
    }
}

@Suite struct DeliveryOrderTests {
    @Test func messagesInOrderAreAllTaken() {
        var order = DeliveryOrder()
        #expect(order.arrived([5, 6, 7]) == (3, nil), "the first message of a new consumer sets the order")
        #expect(order.arrived([8]) == (1, nil))
        #expect(order.expected == 9)
    }

    @Test func oneThatComesEarlyStopsTheBatchAndNamesWhereToStartAgain() {
        var order = DeliveryOrder(expected: 10)
        // 12 and 13 were delivered before 11 arrived (11 lost with a server, say).
        #expect(order.arrived([10, 12, 13]) == (1, 11))
        #expect(order.expected == 11)
        order.restarted()
        #expect(order.arrived([11, 12, 13]) == (3, nil))
        #expect(order.expected == 14)
    }

    @Test func redeliveriesOfWhatWasTakenAreTakenAgain() {
        var order = DeliveryOrder(expected: 20)
        #expect(order.arrived([17, 20, 18, 21]) == (4, nil))
        #expect(order.expected == 22)
    }

    @Test func afterARestartTheFirstMessageIsTakenWhateverItsSequence() {
        var order = DeliveryOrder(expected: 3)
        order.restarted()
        // Events 3…99 aged out of the stream.
        #expect(order.arrived([100, 101]) == (2, nil))
    }
}
