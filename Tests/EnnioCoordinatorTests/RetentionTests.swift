@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// The history's retention (issue 14): exactly the events older than the limit are deleted, a
/// bounded number per transaction, except those the state still needs; the session table keeps
/// what they made of it, across a restart.
@Suite struct RetentionTests {
    /// Seconds since the epoch, as a timestamp.
    static func at(_ seconds: Int64) -> EventTimestamp {
        EventTimestamp(nanosecondsSinceEpoch: seconds * 1_000_000_000)
    }

    static func stored(_ type: EventType, session: String, at seconds: Int64, project: String = "p") -> (event: Event, subject: String) {
        let event = Event(type: type, sessionId: session, projectId: project, timestamp: at(seconds), message: "\(type.rawValue) \(session)")
        return (event, try! EventSubject.subject(for: event))
    }

    static func timestamps(in store: EventStore) throws -> [Int64] {
        try store.withReader { connection in
            try connection.rows("SELECT timestamp_ns FROM events ORDER BY seq") { $0.int64(at: 0) / 1_000_000_000 }
        }
    }

    @Test func exactlyTheEventsBeforeTheCutoffAreDeletedABatchAtATime() throws {
        let database = StateRebuildTests.Database()
        defer { database.remove() }
        let store = try EventStore(path: database.path)
        let state = try CheckpointedState(store: store, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
        // Ten sessions at 1000 s … 1009 s, a rollout's event at 1000 s, then (stored last) one
        // more old event at 1001 s.
        _ = try state.commit((0..<10).map { Self.stored(.sessionSpawned, session: "s\($0)", at: 1000 + Int64($0)) })
        var rollout = Families.opened("r1", at: 0)
        rollout.timestamp = Self.at(1000)
        _ = try state.commit([(rollout, try EventSubject.subject(for: rollout))])
        _ = try state.commit([Self.stored(.sessionWorking, session: "s1", at: 1001)])
        let sessions = state.lifecycle.sessions
        let families = FamilySnapshot(try #require(state.families))
        #expect(families.rollouts["r1"] != nil)

        // Before 1005 s, two at a time, oldest first: the rollout's event too, since its
        // state is checkpointed like the sessions'.
        #expect(try store.deleteEvents(before: Self.at(1005), limit: 2) == 2)
        #expect(try Self.timestamps(in: store).filter { $0 < 1005 }.sorted() == [1001, 1001, 1002, 1003, 1004])
        #expect(try store.deleteEvents(before: Self.at(1005), limit: 2) == 2)
        #expect(try store.deleteEvents(before: Self.at(1005), limit: 2) == 2)
        #expect(try store.deleteEvents(before: Self.at(1005), limit: 2) == 0)
        // Left: everything from 1005 s on and the event stored last (so that seq keeps growing).
        #expect(try Self.timestamps(in: store) == [1005, 1006, 1007, 1008, 1009, 1001])
        #expect(try store.count() == 6)

        // The session and rollout tables still have everything, and so has a restart.
        #expect(state.lifecycle.sessions == sessions)
        store.close()
        let reopened = try EventStore(path: database.path)
        let restarted = try CheckpointedState(store: reopened, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
        #expect(restarted.lifecycle.sessions == sessions)
        #expect(FamilySnapshot(try #require(restarted.families)) == families)
        #expect(restarted.loadReport.eventsRead == 0)
        // A new event comes after every one before, even after the newest was a candidate.
        _ = try restarted.commit([Self.stored(.sessionWorking, session: "s9", at: 2000)])
        #expect(try reopened.lastSequence() == 13)
        reopened.close()
    }

    @Test func eventsNoCheckpointReflectsAreKept() throws {
        let store = try EventStore(path: ":memory:")
        // Stored without the state (no checkpoint): nothing may go.
        _ = try store.insert([Self.stored(.sessionSpawned, session: "a", at: 10), Self.stored(.sessionSpawned, session: "b", at: 11)])
        #expect(try store.deleteEvents(before: Self.at(100), limit: 100) == 0)
        #expect(try store.count() == 2)
        store.close()
    }

    @Test func theCoordinatorDeletesWhatIsPastItsRetentionAndKeepsIngesting() async throws {
        let server = try await onThread { try TestServer() }
        var options = CoordinatorOptions()
        options.retention = .seconds(3600)
        options.retentionInterval = .milliseconds(50)
        options.retentionBatch = 100
        let running = try await RunningCoordinator(server: server, options: options)
        let client = try await NATSConnection.connect(to: server)
        let publisher = try EventPublisher(connection: client)
        // 500 events from 2020, then 50 of now: five batches of deletions, the new ones stay.
        let old = (0..<500).map { Event(type: .sessionWorking, sessionId: "old\($0 % 20)", projectId: "p", timestamp: Self.at(1_600_000_000 + Int64($0)), message: "old") }
        let new = (0..<50).map { Event(type: .sessionWorking, sessionId: "new\($0 % 5)", projectId: "p", message: "new") }
        for event in old + new { try publisher.publish(event) }
        try await client.flush()
        try await eventually("the 500 old events deleted") { running.coordinator.statistics.expired == 500 }
        try await running.waitForReceived(550)
        let left = try running.store.query(HistoryQuery(limit: 1000)).events
        #expect(Set(left.map(\.id)) == Set(new.map(\.id)))
        #expect(running.coordinator.statistics.stored == 550)
        // The sessions of the deleted events are still known.
        #expect(Set(running.coordinator.sessions.map(\.sessionId)).isSuperset(of: (0..<20).map { "old\($0)" }))
        await client.close()
        await running.stop()
    }
}
