@testable import EnnioCoordinator
import EnnioEvents
import Testing

/// The queue between the store thread and the state buckets' writer, without NATS: coalescing
/// per key, a resync first, after a failure and past the limit, nothing kept while one is due.
@Suite struct StateBucketQueueTests {
    static func session(_ key: String, _ value: String) -> CheckpointRow {
        CheckpointRow(table: LifecycleState.sessionsTable, key: key, value: Array(value.utf8), state: [])
    }

    static func node(_ host: String) -> CheckpointRow {
        CheckpointRow(table: LifecycleState.nodesTable, key: host, value: Array("{}".utf8), state: [])
    }

    /// A queue whose first resync has started.
    static func started(limit: Int = 100) -> StateBucketQueue {
        var queue = StateBucketQueue(limit: limit)
        #expect(queue.take() == .resync)
        queue.resyncStarted()
        return queue
    }

    static func written(_ work: StateBucketQueue.Work) -> [CheckpointRow] {
        guard case .write(let rows) = work else { return [] }
        return rows.sorted { $0.key < $1.key }
    }

    @Test func theFirstWorkIsAResyncAndRowsBeforeItAreNotKept() {
        var queue = StateBucketQueue(limit: 10)
        #expect(queue.rowsCommitted([Self.session("p a", "1")]) == .none, "the resync's snapshot has it")
        #expect(queue.take() == .resync)
        #expect(queue.take() == .resync, "until the resync starts")
        queue.resyncStarted()
        #expect(queue.take() == .idle)
    }

    @Test func rowsAreCoalescedPerKeyTheLatestWins() {
        var queue = Self.started()
        #expect(queue.rowsCommitted([Self.session("p a", "1"), Self.session("p b", "1")]) == .wakeWriter)
        #expect(queue.rowsCommitted([Self.session("p a", "2"), Self.node("h")]) == .wakeWriter)
        #expect(queue.rowsCommitted([Self.session("p a", "3")]) == .wakeWriter)
        #expect(queue.pending.count == 3)
        #expect(Self.written(queue.take()) == [Self.node("h"), Self.session("p a", "3"), Self.session("p b", "1")])
        #expect(queue.take() == .idle)
    }

    @Test func rowsOfOtherTablesAreNotKept() {
        var queue = Self.started()
        let rollout = CheckpointRow(table: "rollouts", key: "r", value: nil, state: [])
        #expect(queue.rowsCommitted([rollout]) == .none)
        #expect(queue.take() == .idle)
    }

    @Test func pastTheLimitEverythingWaitingIsDroppedForAResyncLoggedOncePerEpisode() {
        var queue = Self.started(limit: 2)
        #expect(queue.rowsCommitted([Self.session("p a", "1"), Self.session("p b", "1")]) == .wakeWriter)
        #expect(queue.rowsCommitted([Self.session("p a", "2")]) == .wakeWriter, "a key already waiting takes no room")
        #expect(queue.rowsCommitted([Self.session("p c", "1"), Self.session("p d", "1")]) == .wakeWriterAfterOverflow(dropped: 3, firstOfEpisode: true))
        #expect(queue.pending.isEmpty)
        #expect(queue.rowsCommitted([Self.session("p e", "1")]) == .none, "the resync will read it")
        #expect(queue.take() == .resync)
        queue.resyncStarted()
        // Overflowing again before that resync finished: the same episode.
        #expect(queue.rowsCommitted((0..<3).map { Self.session("p \($0)", "x") }) == .wakeWriterAfterOverflow(dropped: 3, firstOfEpisode: false))
        #expect(queue.take() == .resync)
        queue.resyncStarted()
        queue.resyncFinished()
        #expect(queue.rowsCommitted((0..<3).map { Self.session("p \($0)", "y") }) == .wakeWriterAfterOverflow(dropped: 3, firstOfEpisode: true))
    }

    @Test func aFailedWriteMakesTheNextWorkAResync() {
        var queue = Self.started()
        _ = queue.rowsCommitted([Self.session("p a", "1")])
        guard case .write = queue.take() else {
            Issue.record("expected a write")
            return
        }
        _ = queue.rowsCommitted([Self.session("p b", "1")])
        queue.writeFailed()
        #expect(queue.pending.isEmpty)
        #expect(queue.take() == .resync)
        queue.resyncStarted()
        #expect(queue.take() == .idle)
    }

    @Test func aNodeIsDueWhenItsConnectedChangesWithTime() throws {
        let start = EventTimestamp(nanosecondsSinceEpoch: 1_800_000_000_000_000_000)
        let record = NodeRecord(
            host: "h", lastSeen: start, lastHealthCheck: nil, healthInterval: .seconds(10), health: .null, disconnected: false)
        var liveness = NodeLiveness()
        liveness.wrote(Self.node("h"), record: record, connected: true)
        #expect(liveness.due(now: start + .seconds(30), missedHealthChecks: 3, watchingSince: start).isEmpty)
        #expect(liveness.due(now: start + .seconds(31), missedHealthChecks: 3, watchingSince: start) == [Self.node("h")])
        // A coordinator that started watching later gives the node a full timeout from then.
        #expect(liveness.due(now: start + .seconds(31), missedHealthChecks: 3, watchingSince: start + .seconds(5)).isEmpty)
        liveness.wrote(Self.node("h"), record: record, connected: false)
        #expect(liveness.due(now: start + .seconds(31), missedHealthChecks: 3, watchingSince: start).isEmpty)
        #expect(liveness.due(now: start, missedHealthChecks: 3, watchingSince: start) == [Self.node("h")])
        liveness.removed("h")
        #expect(liveness.due(now: start, missedHealthChecks: 3, watchingSince: start).isEmpty)
    }
}
