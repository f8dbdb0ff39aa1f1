@testable import EnnioCoordinator
import EnnioEvents
import Testing

private typealias F = Families

@Suite struct RunReducerTests {
    private static func reducer(_ events: [Event]) -> RunReducer {
        var reducer = RunReducer()
        for event in events { _ = reducer.apply(event) }
        return reducer
    }

    @Test func aRunResumesFromItsInitialSnapshotBeforeAnyState() throws {
        let reducer = Self.reducer([F.started("op-1", manifest: "m-7", initial: "snap-0", at: 0)])
        let run = try #require(reducer.runs["op-1"])
        #expect(run.status == .running)
        #expect(run.manifestId == "m-7")
        #expect(run.projectId == "billing")
        #expect(run.resumePoint == ResumePoint(reason: .start, stateId: nil, afterStateId: nil, snapshotId: "snap-0", nextAttempt: nil))
    }

    @Test func anOpenAttemptResumesItsStateFromItsBase() throws {
        let reducer = Self.reducer([F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1)])
        let run = try #require(reducer.runs["op-1"])
        #expect(run.openState == "charge")
        #expect(run.states["charge"]?.map(\.outcome) == [.open])
        #expect(run.resumePoint == ResumePoint(reason: .interrupted, stateId: "charge", afterStateId: nil, snapshotId: "snap-0", nextAttempt: 2))
    }

    @Test func aCompletedStateResumesAfterItFromItsContext() throws {
        let reducer = Self.reducer([
            F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1),
            F.completed("op-1", "charge", context: "snap-1", at: 2),
        ])
        let run = try #require(reducer.runs["op-1"])
        #expect(run.openState == nil)
        #expect(run.states["charge"]?.map(\.outcome) == [.completed(contextSnapshotId: "snap-1")])
        #expect(run.resumePoint == ResumePoint(reason: .continue, stateId: nil, afterStateId: "charge", snapshotId: "snap-1", nextAttempt: nil))
    }

    @Test func aFailedAttemptIsRetriedFromItsBaseNeverItsFailureSnapshot() throws {
        var reducer = Self.reducer([
            F.started("op-1", at: 0), F.entered("op-1", "fetch", attempt: 1, base: "snap-0", at: 1),
            F.completed("op-1", "fetch", context: "snap-1", at: 2),
            F.entered("op-1", "charge", attempt: 1, base: "snap-1", at: 3),
            F.failed("op-1", "charge", error: "card declined", snapshot: "crash-dump-1", at: 4),
        ])
        var run = try #require(reducer.runs["op-1"])
        #expect(run.resumePoint == ResumePoint(reason: .retry, stateId: "charge", afterStateId: nil, snapshotId: "snap-1", nextAttempt: 2))
        #expect(run.states["charge"]?.last?.outcome == .failed(error: "card declined", failureSnapshotId: "crash-dump-1"))

        // The retry may not start from the failure snapshot.
        let fromFailure = F.entered("op-1", "charge", attempt: 2, base: "crash-dump-1", at: 5)
        #expect(reducer.apply(fromFailure).verdict.violationCode == .failureSnapshotAsBoundary)
        #expect(reducer.runs["op-1"]?.resumePoint?.snapshotId == "snap-1")
        #expect(reducer.apply(F.entered("op-1", "charge", attempt: 2, base: "snap-1", at: 6)).verdict == .applied)
        #expect(reducer.apply(F.completed("op-1", "charge", context: "crash-dump-1", at: 7)).verdict.violationCode == .failureSnapshotAsBoundary)
        #expect(reducer.apply(F.failed("op-1", "charge", snapshot: "snap-1", at: 8)).verdict.violationCode == .boundaryAsFailureSnapshot)
        run = try #require(reducer.runs["op-1"])
        #expect(run.attemptCounts == ["fetch": 1, "charge": 2])
        #expect(run.resumePoint == ResumePoint(reason: .interrupted, stateId: "charge", afterStateId: nil, snapshotId: "snap-1", nextAttempt: 3))
    }

    @Test func reenteringAnOpenStateMarksTheOpenAttemptInterrupted() throws {
        let reducer = Self.reducer([
            F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1),
            F.entered("op-1", "charge", attempt: 2, base: "snap-0", at: 2),
        ])
        let run = try #require(reducer.runs["op-1"])
        #expect(run.states["charge"]?.map(\.outcome) == [.interrupted, .open])
        #expect(run.resumePoint?.nextAttempt == 3)
    }

    @Test func attemptNumbersGoUp() {
        var reducer = Self.reducer([
            F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1),
            F.failed("op-1", "charge", at: 2), F.entered("op-1", "charge", attempt: 3, base: "snap-0", at: 3),
            F.failed("op-1", "charge", at: 4),
        ])
        let before = reducer.runs["op-1"]?.states
        #expect(reducer.apply(F.entered("op-1", "charge", attempt: 2, base: "snap-0", at: 5)).verdict.violationCode == .attemptWentBackwards)
        #expect(reducer.apply(F.entered("op-1", "charge", attempt: 3, base: "snap-9", at: 6)).verdict.violationCode == .attemptRepeated)
        #expect(reducer.apply(F.entered("op-1", "charge", attempt: 3, base: "snap-0", at: 3)).verdict == .duplicate)
        #expect(reducer.runs["op-1"]?.states == before)
        #expect(reducer.runs["op-1"]?.violations.count == 2)
    }

    @Test func closingAStateNeedsAnOpenAttemptAtIt() {
        var reducer = Self.reducer([F.started("op-1", at: 0)])
        #expect(reducer.apply(F.completed("op-1", "charge", context: "snap-1", at: 1)).verdict.violationCode == .notEntered)
        #expect(reducer.apply(F.failed("op-1", "charge", at: 2)).verdict.violationCode == .notEntered)
        reducer = Self.reducer([
            F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1),
            F.completed("op-1", "charge", context: "snap-1", at: 2),
        ])
        let completedAgain = F.completed("op-1", "charge", context: "snap-1", at: 2)
        #expect(reducer.apply(completedAgain).verdict == .duplicate)
        #expect(reducer.apply(F.completed("op-1", "charge", context: "snap-1", at: 9)).verdict == .duplicate, "the same outcome sent again")
        #expect(reducer.apply(F.completed("op-1", "charge", context: "snap-2", at: 3)).verdict.violationCode == .attemptNotOpen)
        #expect(reducer.apply(F.failed("op-1", "charge", at: 4)).verdict.violationCode == .attemptNotOpen)
        // With `attempt`, exactly that attempt.
        _ = reducer.apply(F.entered("op-1", "charge", attempt: 2, base: "snap-1", at: 5))
        #expect(reducer.apply(F.failed("op-1", "charge", attempt: 1, at: 6)).verdict.violationCode == .attemptNotOpen)
        #expect(reducer.apply(F.failed("op-1", "charge", attempt: 2, at: 7)).verdict == .applied)
        #expect(reducer.apply(F.failed("op-1", "charge", attempt: 2, at: 8)).verdict == .duplicate, "attempt 2 failed so already")
    }

    @Test func onlyOneStateIsOpenAtATime() {
        var reducer = Self.reducer([F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1)])
        #expect(reducer.apply(F.entered("op-1", "ship", attempt: 1, base: "snap-0", at: 2)).verdict.violationCode == .anotherStateOpen)
        #expect(reducer.runs["op-1"]?.openState == "charge")
    }

    @Test func aCompletedRunHasNoResumePointAndTakesNoMoreEvents() throws {
        var reducer = Self.reducer([
            F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1),
            F.completed("op-1", "charge", context: "snap-1", at: 2), F.runCompleted("op-1", status: .succeeded, final: "snap-1", at: 3),
        ])
        let run = try #require(reducer.runs["op-1"])
        #expect(run.status == .succeeded)
        #expect(run.finalSnapshotId == "snap-1")
        #expect(run.resumePoint == nil)
        #expect(reducer.apply(F.runCompleted("op-1", status: .succeeded, final: "snap-1", at: 3)).verdict == .duplicate)
        #expect(reducer.apply(F.runCompleted("op-1", status: .failed, at: 4)).verdict.violationCode == .runFinished)
        #expect(reducer.apply(F.entered("op-1", "refund", attempt: 1, base: "snap-1", at: 5)).verdict.violationCode == .runFinished)
        #expect(reducer.runs["op-1"]?.status == .succeeded)
    }

    @Test func ruleBreakingEventsAreFlaggedCountedAndChangeNothing() throws {
        var reducer = Self.reducer([F.started("op-1", at: 0), F.entered("op-1", "charge", attempt: 1, base: "snap-0", at: 1)])
        let before = try #require(reducer.runs["op-1"])
        let cases: [(Event, RuleViolation.Code)] = [
            (F.entered("op-9", "charge", attempt: 1, base: "snap-0", at: 2), .unknownRun),
            (F.started("op-1", manifest: "other", at: 2), .runExists),
            (F.entered("op-1", "charge", attempt: 2, base: "snap-0", project: "shipping", at: 2), .wrongScope),
            (F.run(.stateEntered, "op-1", at: 2, ["state_id": "charge", "attempt": 0, "base_snapshot_id": "s"]), .invalidData),
            (F.run(.stateEntered, "op-1", at: 2, ["state_id": "charge", "base_snapshot_id": "s"]), .invalidData),
            (F.run(.stateCompleted, "op-1", at: 2, ["state_id": "", "context_snapshot_id": "s"]), .invalidData),
            (F.run(.runStarted, "op-1", at: 2, ["op_id": "op-2", "manifest_id": "m", "initial_snapshot_id": "s"]), .invalidData),
            (F.run(.runCompleted, "op-1", at: 2, ["status": "running"]), .invalidData),
            (Event(type: .stateFailed, sessionId: "op-1", projectId: "billing", message: "not an object", data: "oops"), .invalidData),
        ]
        for (index, (event, code)) in cases.enumerated() {
            #expect(reducer.apply(event).verdict.violationCode == code, "case \(index): \(event.jsonString)")
        }
        var after = try #require(reducer.runs["op-1"])
        #expect(after.violations.count == cases.count - 1)
        #expect(reducer.orphans.count == 1)
        #expect(reducer.statistics.violations == UInt64(cases.count))
        after.violations = before.violations
        #expect(after == before)
    }
}
