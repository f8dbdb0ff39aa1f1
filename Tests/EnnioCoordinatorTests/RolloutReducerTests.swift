@testable import EnnioCoordinator
import EnnioEvents
import Testing

private typealias F = Families

@Suite struct RolloutReducerTests {
    /// r1 opened with hosts a and b in wave 0, both soaked: Converging.
    private static func convergingRollout() -> RolloutReducer {
        var reducer = RolloutReducer()
        reducer.apply([F.opened("r1", at: 0), F.joined("r1", "a", at: 1), F.joined("r1", "b", at: 2)]
            + F.walk("r1", "a", [.soaking, .soaked], from: 10) + F.walk("r1", "b", [.soaking, .soaked], from: 20))
        return reducer
    }

    @Test func openingThenTheFirstHostMakesItActiveInItsWave() {
        var reducer = RolloutReducer()
        #expect(reducer.apply(F.opened("r1", target: "v2.1", at: 0)).verdict == .applied)
        var rollout = reducer.rollouts["r1"]
        #expect(rollout?.state == .opening)
        #expect(rollout?.channel == "stable")
        #expect(rollout?.targetRef == "v2.1")
        #expect(rollout?.currentWave == nil)

        #expect(reducer.apply(F.joined("r1", "a", wave: 3, at: 1)).verdict == .applied)
        rollout = reducer.rollouts["r1"]
        #expect(rollout?.state == .active)
        #expect(rollout?.currentWave == 3)
        #expect(rollout?.hosts["a"]?.state == .dispatched)
        #expect(rollout?.hostCount(in: .dispatched) == 1)
    }

    @Test func aWaveWhoseHostsAllSoakedIsConvergingAndALateHostReopensIt() {
        var reducer = Self.convergingRollout()
        #expect(reducer.rollouts["r1"]?.state == .converging)
        #expect(reducer.apply(F.joined("r1", "c", at: 30)).verdict == .applied)
        #expect(reducer.rollouts["r1"]?.state == .active, "a host joining the current wave makes it Active again")
        reducer.apply(F.walk("r1", "c", [.soaking, .soaked], from: 31))
        #expect(reducer.rollouts["r1"]?.state == .converging)
        // A soaked host going back (reverting) reopens the wave too.
        reducer.apply([F.moved("r1", "c", .soaked, .reverting, at: 40)])
        #expect(reducer.rollouts["r1"]?.state == .active)
    }

    @Test func waveAdvancedMovesConvergingBackToActiveOnTheNextWave() {
        var reducer = Self.convergingRollout()
        #expect(reducer.apply(F.advanced("r1", from: 0, to: 1, at: 30)).verdict == .applied)
        #expect(reducer.rollouts["r1"]?.state == .active)
        #expect(reducer.rollouts["r1"]?.currentWave == 1)
        // The new wave has no host yet: Active until its hosts soak.
        reducer.apply([F.joined("r1", "c", wave: 1, at: 31)] + F.walk("r1", "c", [.soaking, .soaked], from: 32))
        #expect(reducer.rollouts["r1"]?.state == .converging)
        // A late host of an earlier wave is welcome; one of a later wave is not.
        #expect(reducer.apply(F.joined("r1", "d", wave: 0, at: 40)).verdict == .applied)
        #expect(reducer.apply(F.joined("r1", "e", wave: 2, at: 41)).verdict.violationCode == .waveNotOpen)
    }

    @Test func waveAdvancedNeedsConvergingAndTheCurrentWave() {
        var reducer = RolloutReducer()
        reducer.apply([F.opened("r1", at: 0), F.joined("r1", "a", at: 1)])
        #expect(reducer.apply(F.advanced("r1", from: 0, to: 1, at: 2)).verdict.violationCode == .notConverging)
        reducer.apply(F.walk("r1", "a", [.soaking, .soaked], from: 3))
        #expect(reducer.apply(F.advanced("r1", from: 1, to: 2, at: 10)).verdict.violationCode == .wrongWave)
        #expect(reducer.apply(F.advanced("r1", from: 0, to: 0, at: 11)).verdict.violationCode == .wrongWave)
        #expect(reducer.rollouts["r1"]?.state == .converging)
        #expect(reducer.rollouts["r1"]?.violations.count == 3)
    }

    @Test func theLastHostToConvergeMakesTheReducerEmitRolloutTerminalOnce() throws {
        var reducer = Self.convergingRollout()
        #expect(reducer.apply(F.moved("r1", "a", .soaked, .converged, at: 50)).emitted.isEmpty)
        #expect(reducer.rollouts["r1"]?.state == .converging)
        let last = F.moved("r1", "b", .soaked, .converged, at: 60)
        let outcome = reducer.apply(last)
        #expect(outcome.verdict == .applied)
        let terminal = try #require(outcome.emitted.first)
        #expect(outcome.emitted.count == 1)
        #expect(reducer.rollouts["r1"]?.state == .terminal)

        // Derived from what caused it: the id from the rollout id, the time from the last move.
        #expect(terminal.eventType == .rolloutTerminal)
        #expect(terminal.id == RolloutReducer.terminalEventID(of: "r1"))
        #expect(terminal.id == EventID.derived(kind: "rollout_terminal", name: "r1"))
        #expect(terminal.timestamp == last.timestamp)
        #expect(terminal.data["at"] == last.data["at"])
        #expect(terminal.data["rollout_id"] == "r1")
        #expect(terminal.sessionId == "r1" && terminal.projectId == "stable")
        #expect(try EventSubject.subject(for: terminal) == "ennio.rollout.stable.terminal")
        #expect(throws: Never.self) { try terminal.validateData() }
        #expect(reducer.pendingEmissions == [terminal])

        // The same move again emits nothing; the emitted event coming back confirms it.
        #expect(reducer.apply(last) == ReducerOutcome(.duplicate))
        #expect(reducer.apply(terminal).verdict == .confirmed)
        #expect(reducer.pendingEmissions.isEmpty)
        #expect(reducer.apply(terminal).verdict == .duplicate)
        #expect(reducer.rollouts["r1"]?.terminalConfirmed == true)
        #expect(reducer.statistics.emitted == 1)

        // A terminal rollout takes no more host events.
        #expect(reducer.apply(F.moved("r1", "b", .converged, .reverting, at: 70)).verdict.violationCode == .rolloutEnded)
    }

    @Test func aRolloutTerminalFromAPublisherIsFlaggedAndChangesNothing() {
        var reducer = Self.convergingRollout()
        let forged = F.rollout(.rolloutTerminal, "r1", at: 40, id: "someone-else")
        let outcome = reducer.apply(forged)
        #expect(outcome.verdict.violationCode == .terminalNotDerived)
        #expect(reducer.rollouts["r1"]?.state == .converging)
        #expect(reducer.rollouts["r1"]?.violations.recent.last?.eventId == "someone-else")
    }

    @Test func itsOwnTerminalArrivingBeforeItsCauseIsNotEmittedAgain() {
        // After a restart the history is replayed by time, then id: the emitted event has its
        // cause's timestamp and may come first.
        var first = Self.convergingRollout()
        let moves = [F.moved("r1", "a", .soaked, .converged, at: 50), F.moved("r1", "b", .soaked, .converged, at: 60)]
        let (_, emitted) = first.apply(moves)
        #expect(emitted.count == 1)

        var replayed = Self.convergingRollout()
        replayed.apply([moves[0]])
        #expect(replayed.apply(emitted[0]).verdict == .confirmed)
        #expect(replayed.rollouts["r1"]?.state == .converging, "the state is what the hosts make it")
        let outcome = replayed.apply(moves[1])
        #expect(outcome.verdict == .applied)
        #expect(outcome.emitted.isEmpty)
        #expect(replayed.rollouts["r1"]?.state == .terminal)
        #expect(replayed.pendingEmissions.isEmpty)
        #expect(replayed.rollouts == first.rollouts)
    }

    @Test func aFailedHostHaltsTheRolloutUntilAnOperatorClearsIt() throws {
        var reducer = RolloutReducer()
        reducer.apply([F.opened("r1", at: 0), F.joined("r1", "a", at: 1), F.joined("r1", "b", at: 2)]
            + F.walk("r1", "a", [.soaking, .soaked], from: 10) + F.walk("r1", "b", [.soaking, .failed], from: 20))
        #expect(reducer.rollouts["r1"]?.state == .failed)
        // Halted: no wave advance; hosts still report, and may join.
        #expect(reducer.apply(F.advanced("r1", from: 0, to: 1, at: 30)).verdict.violationCode == .notConverging)
        #expect(reducer.apply(F.joined("r1", "c", at: 31)).verdict == .applied)
        reducer.apply(F.walk("r1", "c", [.soaking, .soaked], from: 32))
        #expect(reducer.rollouts["r1"]?.state == .failed)

        // Clearance on anything but Failed does nothing.
        var other = Self.convergingRollout()
        #expect(other.apply(F.clearance("r1", at: 40)).verdict.violationCode == .nothingToClear)

        // The clearance excuses b (failed): the wave of a and c is complete.
        let clearance = F.clearance("r1", by: "alice", reason: "b is being replaced", at: 40)
        #expect(reducer.apply(clearance).verdict == .applied)
        let rollout = try #require(reducer.rollouts["r1"])
        #expect(rollout.state == .converging)
        #expect(rollout.hosts["b"]?.excused == true)
        #expect(rollout.clearances == [RolloutRecord.Clearance(operatorName: "alice", reason: "b is being replaced", at: F.instant(40), excused: ["b"])])
        #expect(reducer.apply(clearance).verdict == .duplicate)

        // b does not hold the end back: a and c converging is enough.
        let (_, emitted) = reducer.apply([F.moved("r1", "a", .soaked, .converged, at: 50), F.moved("r1", "c", .soaked, .converged, at: 51)])
        #expect(emitted.map(\.timestamp) == [F.instant(51)])
        #expect(reducer.rollouts["r1"]?.state == .terminal)
    }

    @Test func aClearanceThatLetsTheRolloutEndIsTheCauseOfItsTerminal() throws {
        var reducer = RolloutReducer()
        reducer.apply([F.opened("r1", at: 0), F.joined("r1", "a", at: 1), F.joined("r1", "b", at: 2)]
            + F.walk("r1", "a", [.soaking, .soaked, .converged], from: 10) + F.walk("r1", "b", [.soaking, .failed], from: 20))
        #expect(reducer.rollouts["r1"]?.state == .failed)
        let outcome = reducer.apply(F.clearance("r1", at: 30))
        let terminal = try #require(outcome.emitted.first)
        #expect(terminal.timestamp == F.instant(30))
        #expect(reducer.rollouts["r1"]?.state == .terminal)
    }

    @Test func aRetriedHostIsNoLongerExcused() {
        var reducer = RolloutReducer()
        reducer.apply([F.opened("r1", at: 0), F.joined("r1", "a", at: 1), F.joined("r1", "b", at: 2)]
            + F.walk("r1", "a", [.soaking, .soaked], from: 10) + F.walk("r1", "b", [.soaking, .failed], from: 20)
            + [F.clearance("r1", at: 30)])
        #expect(reducer.rollouts["r1"]?.state == .converging)
        reducer.apply([F.moved("r1", "b", .failed, .dispatched, at: 40)])
        #expect(reducer.rollouts["r1"]?.hosts["b"]?.excused == false)
        #expect(reducer.rollouts["r1"]?.state == .active, "b counts again and has not soaked")
    }

    @Test func everyHostRevertedMakesTheRolloutReverted() {
        // After a failure…
        var reducer = RolloutReducer()
        reducer.apply([F.opened("r1", at: 0), F.joined("r1", "a", at: 1), F.joined("r1", "b", at: 2)]
            + F.walk("r1", "a", [.soaking, .failed, .reverting, .reverted], from: 10))
        #expect(reducer.rollouts["r1"]?.state == .failed)
        reducer.apply(F.walk("r1", "b", [.reverting, .reverted], from: 20))
        #expect(reducer.rollouts["r1"]?.state == .reverted)
        #expect(reducer.rollouts["r1"]?.hostCount(in: .reverted) == 2)
        // …or without one.
        var healthy = Self.convergingRollout()
        healthy.apply([F.moved("r1", "a", .soaked, .reverting, at: 30), F.moved("r1", "b", .soaked, .reverting, at: 31)])
        #expect(healthy.rollouts["r1"]?.state == .active)
        healthy.apply([F.moved("r1", "a", .reverting, .reverted, at: 32), F.moved("r1", "b", .reverting, .reverted, at: 33)])
        #expect(healthy.rollouts["r1"]?.state == .reverted)
    }

    @Test func aSuccessorSupersedesItsPredecessorInTheSameStep() throws {
        var reducer = Self.convergingRollout()
        let before = try #require(reducer.rollouts["r1"])
        let event = F.successor("r1", "r2", target: "v3", at: 30)
        #expect(reducer.apply(event).verdict == .applied)
        let old = try #require(reducer.rollouts["r1"])
        let new = try #require(reducer.rollouts["r2"])
        #expect(old.state == .superseded)
        #expect(old.supersededBy == "r2")
        #expect(old.hosts == before.hosts, "the predecessor's hosts are kept as they were")
        #expect(new.state == .opening)
        #expect(new.supersedes == "r1")
        #expect(new.targetRef == "v3")
        #expect(new.channel == "stable")
        #expect(reducer.apply(event).verdict == .duplicate)

        // The superseded rollout takes no more host events; the successor does.
        #expect(reducer.apply(F.moved("r1", "a", .soaked, .converged, at: 31)).verdict.violationCode == .rolloutEnded)
        #expect(reducer.apply(F.joined("r2", "a", at: 32)).verdict == .applied)
        #expect(reducer.rollouts["r2"]?.state == .active)
    }

    @Test func aSuccessorNeedsALiveKnownPredecessorOnItsChannelAndANewId() {
        var reducer = Self.convergingRollout()
        reducer.apply([F.opened("r9", at: 1)])
        #expect(reducer.apply(F.successor("nope", "r2", at: 30)).verdict.violationCode == .unknownRollout)
        #expect(reducer.apply(F.successor("r1", "r2", channel: "beta", at: 31)).verdict.violationCode == .wrongScope)
        #expect(reducer.apply(F.successor("r1", "r9", at: 32)).verdict.violationCode == .rolloutExists)
        reducer.apply([F.moved("r1", "a", .soaked, .converged, at: 40), F.moved("r1", "b", .soaked, .converged, at: 41)])
        #expect(reducer.rollouts["r1"]?.state == .terminal)
        #expect(reducer.apply(F.successor("r1", "r2", at: 50)).verdict.violationCode == .notSupersedable)
        #expect(reducer.rollouts["r2"] == nil)
        #expect(reducer.rollouts["r1"]?.violations.count == 2, "flagged on the predecessor")
        #expect(reducer.rollouts["r9"]?.violations.count == 1, "flagged on the rollout whose id was taken")
        #expect(reducer.orphans.count == 1, "the unknown predecessor")
    }

    @Test(arguments: [RolloutState.terminal, .superseded, .failed, .reverted])
    func retentionPrunesAFinishedRollout(state: RolloutState) throws {
        var reducer = Self.convergingRollout()
        switch state {
        case .terminal: reducer.apply([F.moved("r1", "a", .soaked, .converged, at: 30), F.moved("r1", "b", .soaked, .converged, at: 31)])
        case .superseded: reducer.apply([F.successor("r1", "r2", at: 30)])
        case .failed: reducer.apply([F.moved("r1", "a", .soaked, .failed, at: 30)])
        default:
            reducer.apply([
                F.moved("r1", "a", .soaked, .reverting, at: 30), F.moved("r1", "a", .reverting, .reverted, at: 31),
                F.moved("r1", "b", .soaked, .reverting, at: 40), F.moved("r1", "b", .reverting, .reverted, at: 41),
            ])
        }
        #expect(reducer.rollouts["r1"]?.state == state)
        #expect(reducer.apply(F.retention("r1", at: 100)).verdict == .applied)
        let pruned = try #require(reducer.rollouts["r1"])
        #expect(pruned.state == .pruned)
        #expect(pruned.hosts.isEmpty)
        #expect(pruned.hostCount == 2, "the summary stays")
        #expect(pruned.hostStateCounts.reduce(0, +) == 2)
        #expect(reducer.apply(F.retention("r1", at: 100)).verdict == .duplicate)
        #expect(reducer.apply(F.moved("r1", "a", .soaked, .converged, at: 101)).verdict.violationCode == .rolloutEnded)
    }

    @Test(arguments: [RolloutState.opening, .active, .converging])
    func retentionOfALiveRolloutIsAViolation(state: RolloutState) {
        var reducer = RolloutReducer()
        reducer.apply([F.opened("r1", at: 0)])
        if state != .opening { reducer.apply([F.joined("r1", "a", at: 1)]) }
        if state == .converging { reducer.apply(F.walk("r1", "a", [.soaking, .soaked], from: 2)) }
        #expect(reducer.rollouts["r1"]?.state == state)
        #expect(reducer.apply(F.retention("r1", at: 10)).verdict.violationCode == .notRetained)
        #expect(reducer.rollouts["r1"]?.state == state)
    }

    /// Every (from, to) pair of host states: applied exactly when `to` is a successor of `from`.
    @Test(arguments: RolloutHostState.allCases)
    func hostTransitionsAreLegalExactlyAsDocumented(from: RolloutHostState) {
        let paths: [RolloutHostState: [RolloutHostState]] = [
            .dispatched: [], .soaking: [.soaking], .soaked: [.soaking, .soaked], .converged: [.soaking, .soaked, .converged],
            .failed: [.failed], .reverting: [.reverting], .reverted: [.reverting, .reverted],
        ]
        for to in RolloutHostState.allCases {
            var reducer = RolloutReducer()
            // A second host stays dispatched, so the rollout neither ends nor reverts.
            reducer.apply([F.opened("r1", at: 0), F.joined("r1", "a", at: 1), F.joined("r1", "b", at: 2)] + F.walk("r1", "a", paths[from]!, from: 10))
            #expect(reducer.rollouts["r1"]?.hosts["a"]?.state == from)
            let before = reducer.rollouts
            let outcome = reducer.apply(F.moved("r1", "a", from, to, at: 100))
            if from.canMove(to: to) {
                #expect(outcome.verdict == .applied, "\(from) → \(to)")
                #expect(reducer.rollouts["r1"]?.hosts["a"]?.state == to)
            } else {
                #expect(outcome.verdict.violationCode == .illegalHostTransition, "\(from) → \(to)")
                var expected = before
                expected["r1"]?.violations = reducer.rollouts["r1"]?.violations ?? ViolationLog()
                #expect(reducer.rollouts == expected, "nothing but the flag changed")
            }
        }
    }

    @Test func ruleBreakingEventsAreFlaggedCountedAndChangeNothing() throws {
        var reducer = Self.convergingRollout()
        let before = try #require(reducer.rollouts["r1"])
        let cases: [(Event, RuleViolation.Code)] = [
            (F.joined("ghost", "a", at: 30), .unknownRollout),
            (F.moved("ghost", "a", .soaked, .converged, at: 30), .unknownRollout),
            (F.opened("r1", target: "v9", at: 30), .rolloutExists),
            (F.joined("r1", "a", wave: 1, at: 30), .hostExists),
            (F.moved("r1", "zz", .soaked, .converged, at: 30), .unknownHost),
            (F.moved("r1", "a", .soaking, .soaked, at: 30), .staleHostState),
            (F.moved("r1", "a", .soaked, .dispatched, at: 30), .illegalHostTransition),
            (F.joined("r1", "x", channel: "beta", at: 30), .wrongScope),
            (F.rollout(.hostJoined, "r1", at: 30, ["host_id": "x"]), .invalidData),
            (F.rollout(.hostJoined, "r1", at: 30, ["host_id": "x", "wave": "1"]), .invalidData),
            (F.rollout(.hostStateChanged, "r1", at: 30, ["host_id": "a", "from": "soaked", "to": "gone"]), .invalidData),
            (F.rollout(.hostJoined, "r1", at: 30, ["host_id": "x", "wave": 0, "rollout_id": "r2"]), .invalidData),
            (F.rollout(.hostJoined, "r1", at: 30, ["host_id": "x", "wave": 0, "at": "yesterday"]), .invalidData),
        ]
        for (index, (event, code)) in cases.enumerated() {
            let outcome = reducer.apply(event)
            #expect(outcome.verdict.violationCode == code, "case \(index): \(event.jsonString)")
            #expect(outcome.emitted.isEmpty)
        }
        var after = try #require(reducer.rollouts["r1"])
        #expect(after.violations.count == cases.count - 2)
        #expect(reducer.orphans.count == 2)
        #expect(reducer.statistics.violations == UInt64(cases.count))
        after.violations = before.violations
        #expect(after == before)
        #expect(reducer.rollouts.keys.sorted() == ["r1"])
    }

    @Test func nonRolloutEventsAreIgnored() {
        var reducer = RolloutReducer()
        #expect(reducer.apply(Event(type: .ciFailing, sessionId: "s", projectId: "p", message: "m")).verdict == .ignored)
        #expect(reducer.apply(F.started("op", at: 0)).verdict == .ignored)
        #expect(reducer.statistics == ReducerStatistics())
    }
}
