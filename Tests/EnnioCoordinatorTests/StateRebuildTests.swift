@testable import EnnioCoordinator
import EnnioEvents
import EnnioSync
import Foundation
import Testing

/// A small deterministic generator (SplitMix64), so that a failing history can be made again
/// from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random history: sessions of a few projects going through every kind of session event
/// (terminal ones, restores, status changes to themselves and to terminal statuses,
/// activities), node events of our agents and of the Rust implementation (no `data.host`),
/// all_complete events, timestamps out of order, and events delivered twice.
func randomHistory(seed: UInt64, count: Int) -> [(event: Event, subject: String)] {
    var random = SeededRandom(state: seed)
    let sessionTypes: [EventType] = [
        .sessionSpawned, .sessionWorking, .sessionExited, .sessionKilled, .sessionRestored, .sessionCleaned,
        .statusChanged, .statusChanged, .activityChanged, .prCreated, .prMerged, .ciFailing, .ciPassing,
        .reviewApproved, .mergeCompleted, .reactionTriggered, .tickError,
    ]
    let statuses = ["working", "pr_open", "merged", "done", "killed", "ci_failed"]
    var history: [(event: Event, subject: String)] = []
    while history.count < count {
        let seconds = Int64.random(in: 0..<200, using: &random)
        let timestamp = EventTimestamp(nanosecondsSinceEpoch: lifecycleBase + seconds * 1_000_000_000 + Int64.random(in: 0..<3, using: &random))
        if Int.random(in: 0..<10, using: &random) == 0, let earlier = history.randomElement(using: &random) {
            history.append(earlier)  // a redelivery: the same id and timestamp
            continue
        }
        let event: Event
        let subject: String
        switch Int.random(in: 0..<10, using: &random) {
        case 0, 1:
            let host = ["h1", "h2", "h3"].randomElement(using: &random)!
            let type: EventType = [.nodeLaunched, .nodeConnected, .nodeHealthCheck, .nodeHealthCheck, .nodeDisconnected].randomElement(using: &random)!
            var data: [String: JSONValue] = ["host": .string(host)]
            if Bool.random(using: &random) { data["interval_seconds"] = .double(Double(Int.random(in: 1...20, using: &random))) }
            if type == .nodeHealthCheck { data["load"] = [.double(Double(Int.random(in: 0..<100, using: &random)) / 10)] }
            event = Event(type: type, sessionId: "", projectId: "", timestamp: timestamp, message: "node", data: .object(data))
            subject = "ennio.node.\(host).\(type.action)"
        case 2:
            // The Rust implementation's shape: the project in the subject, data null.
            let project = "p\(Int.random(in: 0..<3, using: &random))"
            event = Event(type: .nodeHealthCheck, sessionId: "s\(Int.random(in: 0..<5, using: &random))", projectId: project, timestamp: timestamp, message: "rust", data: .null)
            subject = "ennio.node.\(project).health_check"
        case 3 where Int.random(in: 0..<3, using: &random) == 0:
            let project = "p\(Int.random(in: 0..<3, using: &random))"
            event = Event(type: .allComplete, sessionId: "", projectId: project, timestamp: timestamp, message: "done", data: ["sessions": 1])
            subject = "ennio.lifecycle.all_complete"
        default:
            let type = sessionTypes.randomElement(using: &random)!
            let project = "p\(Int.random(in: 0..<3, using: &random))"
            var data: JSONValue = .null
            if type == .statusChanged {
                let from = statuses.randomElement(using: &random)!
                data = ["from": .string(from), "to": .string(Bool.random(using: &random) ? from : statuses.randomElement(using: &random)!)]
            } else if type == .activityChanged {
                data = Bool.random(using: &random) ? ["activity": "thinking"] : ["prev": "idle", "next": .string(["active", "idle"].randomElement(using: &random)!)]
            }
            event = Event(type: type, sessionId: "s\(Int.random(in: 0..<5, using: &random))", projectId: project, timestamp: timestamp, message: type.rawValue, data: data)
            subject = (try? EventSubject.subject(for: event)) ?? "?"
        }
        history.append((event, subject))
    }
    return history
}

/// Rebuild equals live: the state after a restart — from the checkpoint, from the history
/// alone, or from a checkpoint taken part-way and the events stored after it — is the state
/// live ingest built, for any history.
@Suite struct StateRebuildTests {
    struct Database {
        let directory = NSTemporaryDirectory() + "ennio-rebuild-\(EventID.random())"
        var path: String { directory + "/events.sqlite" }
        init() { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    static func rows(of store: EventStore) throws -> [[String]] {
        try store.withReader { connection in
            try connection.rows("SELECT table_name, key, value, state FROM checkpoint_rows ORDER BY table_name, key") { row in
                (0..<4).map { row.string(at: $0) ?? "NULL" }
            }
        }
    }

    static func checkpoint(of store: EventStore) throws -> [[String]] {
        try store.withReader { connection in
            try connection.rows("SELECT reducer, version, applied_seq FROM checkpoints ORDER BY reducer") { row in
                [row.string(at: 0) ?? "", String(row.int64(at: 1)), String(row.int64(at: 2))]
            }
        }
    }

    static func lifecycle() -> LifecycleState {
        LifecycleState(watchingSince: EventTimestamp(nanosecondsSinceEpoch: lifecycleBase))
    }

    /// Feeds `history` in batches of random sizes, as the coordinator does.
    static func feed(_ history: ArraySlice<(event: Event, subject: String)>, to state: CheckpointedState, random: inout SeededRandom) throws {
        var rest = history
        while !rest.isEmpty {
            let size = min(rest.count, Int.random(in: 1...40, using: &random))
            _ = try state.commit(Array(rest.prefix(size)))
            rest = rest.dropFirst(size)
        }
    }

    @Test(arguments: 1...24)
    func aRestartRebuildOrCatchUpGivesTheStateLiveIngestGave(seed: Int) throws {
        let history = randomHistory(seed: UInt64(seed), count: 400)
        var random = SeededRandom(state: UInt64(seed) &* 7919)
        let database = Database()
        defer { database.remove() }

        let store = try EventStore(path: database.path)
        let live = try CheckpointedState(store: store, lifecycle: Self.lifecycle())
        try Self.feed(history[...], to: live, random: &random)
        let liveRows = try Self.rows(of: store)
        let liveState = live.lifecycle
        #expect(!liveState.sessions.isEmpty && !liveState.nodes.isEmpty, "seed \(seed): a history with sessions and nodes")
        #expect(Set(liveState.nodes.keys).isSubset(of: ["h1", "h2", "h3"]), "seed \(seed): no node from the Rust shapes")
        store.close()

        // A restart: the checkpoint, nothing read from the history.
        let reopened = try EventStore(path: database.path)
        let restarted = try CheckpointedState(store: reopened, lifecycle: Self.lifecycle())
        #expect(restarted.loadReport.eventsRead == 0 && restarted.loadReport.rebuilt.isEmpty, "seed \(seed)")
        #expect(restarted.lifecycle.sessions == liveState.sessions, "seed \(seed)")
        #expect(restarted.lifecycle.nodes == liveState.nodes, "seed \(seed)")
        #expect(restarted.lifecycle.completedProjects == liveState.completedProjects, "seed \(seed)")

        // A rebuild from the history alone, walked by key: the same tables, row for row.
        let rebuilt = try CheckpointedState(store: reopened, lifecycle: Self.lifecycle(), rebuild: true)
        #expect(rebuilt.loadReport.rebuilt == [LifecycleState.name], "seed \(seed)")
        #expect(try Self.rows(of: reopened) == liveRows, "seed \(seed)")
        #expect(rebuilt.lifecycle.sessions == liveState.sessions, "seed \(seed)")
        #expect(rebuilt.lifecycle.nodes == liveState.nodes, "seed \(seed)")
        reopened.close()
    }

    @Test(arguments: 1...12)
    func eventsStoredAfterTheCheckpointAreAppliedAtStart(seed: Int) throws {
        let history = randomHistory(seed: UInt64(seed) + 1000, count: 300)
        var random = SeededRandom(state: UInt64(seed))
        let cut = Int.random(in: 0...history.count, using: &random)

        // The whole history, live.
        let whole = Database()
        defer { whole.remove() }
        let wholeStore = try EventStore(path: whole.path)
        let live = try CheckpointedState(store: wholeStore, lifecycle: Self.lifecycle())
        for item in history { _ = try live.commit([item]) }
        let liveRows = try Self.rows(of: wholeStore)
        wholeStore.close()

        // The same, with the state checkpointed up to `cut` and the rest stored as history
        // alone (as a program that stores without the coordinator's state would).
        let partial = Database()
        defer { partial.remove() }
        let partialStore = try EventStore(path: partial.path)
        let early = try CheckpointedState(store: partialStore, lifecycle: Self.lifecycle())
        for item in history[..<cut] { _ = try early.commit([item]) }
        let atCut = try partialStore.withReader { try partialStore.lastSequence(in: $0) }
        for item in history[cut...] { try partialStore.insert(item.event, subject: item.subject) }
        let stored = try partialStore.withReader { try partialStore.lastSequence(in: $0) }
        let caughtUp = try CheckpointedState(store: partialStore, lifecycle: Self.lifecycle())
        #expect(caughtUp.loadReport.rebuilt.isEmpty, "seed \(seed)")
        #expect(caughtUp.loadReport.eventsRead == Int(stored - atCut), "seed \(seed): only what came after the checkpoint")
        // Stored at other instants than in the live run: compare what does not depend on that.
        func withoutTimes(_ rows: [[String]]) -> [[String]] {
            rows.map { row in row[0] == LifecycleState.nodesTable ? [row[0], row[1]] : row }
        }
        #expect(withoutTimes(try Self.rows(of: partialStore)) == withoutTimes(liveRows), "seed \(seed)")
        #expect(try Self.checkpoint(of: partialStore).first?[2] == String(stored))
        partialStore.close()
    }

    /// A reducer checkpoint of another format is rebuilt, not misread.
    @Test func aCheckpointOfAnotherFormatIsRebuilt() throws {
        let database = Database()
        defer { database.remove() }
        let store = try EventStore(path: database.path)
        defer { store.close() }
        let state = try CheckpointedState(store: store, lifecycle: Self.lifecycle())
        _ = try state.commit(Array(randomHistory(seed: 99, count: 50)))
        let rows = try Self.rows(of: store)
        _ = try store.withDatabase { try $0.run("UPDATE checkpoints SET version = 99") }
        var logged: [String] = []
        let lines = LockedLines()
        let again = try CheckpointedState(store: store, lifecycle: Self.lifecycle(), log: { lines.append($0) })
        logged = lines.all
        #expect(again.loadReport.rebuilt == [LifecycleState.name])
        #expect(logged.contains { $0.contains("format 99") })
        #expect(try Self.rows(of: store) == rows)
        #expect(try Self.checkpoint(of: store).first?[1] == String(LifecycleState.version))
    }
}

/// Log lines collected from any thread.
final class LockedLines: Sendable {
    private let lines = Locked<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
