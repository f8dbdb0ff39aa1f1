@testable import EnnioCoordinator
import EnnioEvents
import EnnioSync
import Foundation
@testable import NATSTestSupport
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

/// The rollout and run reducers through the coordinator's commit path and a real database: the
/// state after a restart from the checkpoint — cut at any point, with what was emitted and not
/// yet stored lost or still on its way — or after a rebuild from the history alone is the state
/// of live ingest, and the same events are emitted.
@Suite struct FamilyCheckpointRestartTests {
    typealias Database = StateRebuildTests.Database

    static func item(_ event: Event) -> (event: Event, subject: String) {
        (event, (try? EventSubject.subject(for: event)) ?? "?")
    }

    /// The coordinator's loop as far as the checkpoint is concerned: batches committed with the
    /// reducers' rows; what they emit is published and comes back in a later batch, unless a
    /// crash loses it first.
    struct Ingest {
        let database: Database
        var store: EventStore
        var state: CheckpointedState
        var outbox: [Event] = []

        init(_ database: Database) throws {
            self.database = database
            store = try EventStore(path: database.path)
            state = try CheckpointedState(store: store, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
        }

        mutating func commit(_ events: [Event]) throws {
            let commit = try state.commit(events.map(FamilyCheckpointRestartTests.item))
            for case .publish(let event, _) in commit.actions where event.eventType == .rolloutTerminal { outbox.append(event) }
        }

        /// Feeds `events` in batches of random sizes, the outbox now and then among them; with
        /// `crash`, stops before batch `crash`, losing part of the outbox (the rest is still on
        /// its way, and arrives after the restart), and starts again from the database.
        mutating func run(_ events: [Event], schedule seed: UInt64, crash: Int? = nil) throws {
            var random = SeededGenerator(seed: seed)
            var rest = events[...]
            var batch = 0
            while !rest.isEmpty || !outbox.isEmpty {
                if batch == crash {
                    let inFlight = Array(outbox.prefix(Int.random(in: 0...outbox.count, using: &random)))
                    store.close()
                    store = try EventStore(path: database.path)
                    state = try CheckpointedState(store: store, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
                    #expect(state.loadReport.rebuilt.isEmpty)
                    outbox = inFlight + (state.families?.pendingEmissions ?? [])
                }
                let size = min(rest.count, Int.random(in: 1...12, using: &random))
                var events = Array(rest.prefix(size))
                rest = rest.dropFirst(size)
                if rest.isEmpty || random.chance(0.4) {
                    events += outbox
                    outbox = []
                }
                try commit(events)
                batch += 1
            }
        }

        var families: FamilyReducers { state.families ?? FamilyReducers() }

        /// The reducer's `RolloutTerminal`s stored (not the forged ones).
        func emitted() throws -> Set<Event> {
            Set(try store.query(HistoryQuery(eventType: .rolloutTerminal, limit: 1000)).events.filter { $0.id == RolloutReducer.terminalEventID(of: $0.sessionId) })
        }

        /// The family rows of the checkpoint.
        func rows() throws -> [[String]] {
            try StateRebuildTests.rows(of: store).filter { FamilyReducers.tables.contains($0[0]) }
        }
    }

    /// The reducers as live ingest makes them, by definition: every stored event applied once,
    /// in the order it was stored.
    static func appliedInStoredOrder(_ store: EventStore) throws -> FamilyReducers {
        var reducers = FamilyReducers()
        let stored = try store.withReader { connection in
            try connection.rows("SELECT json FROM events ORDER BY seq") { $0.string(at: 0) ?? "" }
        }
        for json in stored { _ = reducers.apply(try EventCodec.decode(json)) }
        return reducers
    }

    /// Rollout and run events with session events among them.
    static func mixedHistory(seed: UInt64) -> [Event] {
        var random = SeededGenerator(seed: seed ^ 0x5E55)
        var events = disturbedFamilyHistory(seed: seed)
        for (event, _) in randomHistory(seed: seed, count: 40) where event.eventType.category != .node {
            events.insert(event, at: Int.random(in: 0...events.count, using: &random))
        }
        return events
    }

    @Test(arguments: 0..<40 as Range<UInt64>)
    func aRestartFromTheCheckpointAtAnyPointGivesTheStateAndEmittedEventsOfLiveIngest(seed: UInt64) throws {
        let events = Self.mixedHistory(seed: seed)
        let liveDatabase = Database()
        defer { liveDatabase.remove() }
        var live = try Ingest(liveDatabase)
        try live.run(events, schedule: seed)
        let expected = FamilySnapshot(live.families)
        #expect(expected == FamilySnapshot(try Self.appliedInStoredOrder(live.store)))
        #expect(!expected.rollouts.isEmpty && !expected.runs.isEmpty && expected.statistics.violations > 0)
        let emitted = try live.emitted()
        #expect(emitted.count == expected.rollouts.values.filter { $0.terminalEvent != nil }.count)
        let liveRows = try live.rows()
        live.store.close()

        var random = SeededGenerator(seed: seed ^ 0xC0FFEE)
        let crashDatabase = Database()
        defer { crashDatabase.remove() }
        var crashed = try Ingest(crashDatabase)
        try crashed.run(events, schedule: seed, crash: Int.random(in: 0...(events.count / 8), using: &random))
        #expect(FamilySnapshot(crashed.families) == expected)
        #expect(try crashed.emitted() == emitted, "each derived event stored once, whatever was lost")
        #expect(try crashed.rows() == liveRows, "the same rows")
        crashed.store.close()

        // A clean restart reads nothing from the history.
        let reopened = try EventStore(path: crashDatabase.path)
        defer { reopened.close() }
        let restarted = try CheckpointedState(store: reopened, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
        #expect(restarted.loadReport.eventsRead == 0 && restarted.loadReport.rebuilt.isEmpty)
        #expect(FamilySnapshot(restarted.families ?? FamilyReducers()) == expected)
        #expect(restarted.families?.pendingEmissions.isEmpty == true)

        // A rebuild from the history alone, in the order it was stored: the same state and rows.
        let rebuilt = try CheckpointedState(store: reopened, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers(), rebuild: true)
        #expect(rebuilt.loadReport.rebuilt == [LifecycleState.name, FamilyReducers.name])
        #expect(FamilySnapshot(rebuilt.families ?? FamilyReducers()) == expected)
        #expect(try StateRebuildTests.rows(of: reopened).filter { FamilyReducers.tables.contains($0[0]) } == liveRows)

        // Events stored after the checkpoint by a program without the reducers: applied at start,
        // those alone, in the order they were stored.
        var later = 0
        for event in disturbedFamilyHistory(seed: seed + 1000).prefix(30) where try reopened.insert(event, subject: Self.item(event).subject) {
            later += 1
        }
        let caughtUp = try CheckpointedState(store: reopened, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
        #expect(caughtUp.loadReport.rebuilt.isEmpty)
        #expect(caughtUp.loadReport.eventsRead == later)
        #expect(FamilySnapshot(caughtUp.families ?? FamilyReducers()) == FamilySnapshot(try Self.appliedInStoredOrder(reopened)))
    }

    /// A database written before the families were checkpointed (schema 4: a lifecycle
    /// checkpoint, the families' partial index) starts: the families are rebuilt from their own
    /// events, once, and the log says so; the lifecycle is loaded.
    @Test func aCheckpointWithoutFamilyRowsIsRebuiltOnceAndTheLogSaysSo() throws {
        let database = Database()
        defer { database.remove() }
        let events = Self.mixedHistory(seed: 7)
        // Each stored once (by id and timestamp).
        let familyEvents = Set(events.filter { [.rollout, .run].contains($0.eventType.category) }.map { "\($0.id)@\($0.timestamp.nanosecondsSinceEpoch)" }).count
        do {
            let store = try EventStore(path: database.path)
            let old = try CheckpointedState(store: store, lifecycle: StateRebuildTests.lifecycle())
            _ = try old.commit(events.map(Self.item))
            try store.withDatabase { connection in
                try connection.exec("CREATE INDEX events_families ON events (seq) WHERE category IN ('rollout', 'run')")
                try connection.exec("PRAGMA user_version = 4")
            }
            store.close()
        }
        let store = try EventStore(path: database.path)
        defer { store.close() }
        let lines = LockedLines()
        let state = try CheckpointedState(store: store, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers(), log: { lines.append($0) })
        #expect(state.loadReport.rebuilt == [FamilyReducers.name])
        #expect(state.loadReport.eventsRead == familyEvents, "the rollout and run events alone")
        #expect(lines.all.contains { $0.contains("no families checkpoint") && $0.contains("rebuilding") }, "\(lines.all)")
        #expect(FamilySnapshot(state.families ?? FamilyReducers()) == FamilySnapshot(try Self.appliedInStoredOrder(store)))
        #expect(try StateRebuildTests.checkpoint(of: store).map(\.[0]) == [FamilyReducers.name, LifecycleState.name])
        let indexes = try store.withReader { try $0.rows("SELECT name FROM sqlite_master WHERE type = 'index'") { $0.string(at: 0) ?? "" } }
        #expect(!indexes.contains("events_families"))

        let again = try CheckpointedState(store: store, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
        #expect(again.loadReport.rebuilt.isEmpty && again.loadReport.eventsRead == 0)
        #expect(FamilySnapshot(again.families ?? FamilyReducers()) == FamilySnapshot(state.families ?? FamilyReducers()))
    }

    /// A batch whose transaction fails (here a trigger refuses its host rows) stores nothing and
    /// leaves the reducers as they were; the batch again then gives what it would have.
    @Test func aBatchWhoseTransactionFailsLeavesTheFamiliesAsTheyWere() throws {
        let database = Database()
        defer { database.remove() }
        let store = try EventStore(path: database.path)
        defer { store.close() }
        let state = try CheckpointedState(store: store, lifecycle: StateRebuildTests.lifecycle(), families: FamilyReducers())
        let events = disturbedFamilyHistory(seed: 3)
        let half = events.count / 2
        _ = try state.commit(events[..<half].map(Self.item))
        let before = FamilySnapshot(state.families ?? FamilyReducers())
        let rowsBefore = try StateRebuildTests.rows(of: store)
        try store.withDatabase { connection in
            try connection.exec("""
                CREATE TRIGGER refuse_hosts BEFORE INSERT ON checkpoint_rows WHEN NEW.table_name = 'rollout_hosts'
                BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
                """)
        }
        let batch = events[half...].map(Self.item)
        #expect(batch.contains { $0.event.eventType == .hostJoined })
        #expect(throws: (any Error).self) { try state.commit(batch) }
        #expect(FamilySnapshot(state.families ?? FamilyReducers()) == before)
        #expect(try StateRebuildTests.rows(of: store) == rowsBefore)
        try store.withDatabase { try $0.exec("DROP TRIGGER refuse_hosts") }
        _ = try state.commit(batch)
        #expect(FamilySnapshot(state.families ?? FamilyReducers()) == FamilySnapshot(try Self.appliedInStoredOrder(store)))
    }
}

/// Log lines collected from any thread.
final class LockedLines: Sendable {
    private let lines = Locked<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
