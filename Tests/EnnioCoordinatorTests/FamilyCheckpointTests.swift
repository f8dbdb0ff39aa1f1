@testable import EnnioCoordinator
import EnnioEvents
@testable import NATSTestSupport
import Testing

/// A history of rollout and run events as a coordinator may store it: a valid history
/// (``FamilyHistory``) in an order the rules allow, then disturbed — neighbours swapped (which
/// breaks rules: flagged), events delivered again (the store keeps one), the same facts again
/// under new ids (the reducers' duplicates), orphan and forged events — with timestamps (and
/// `at`) in another order than the one they are stored in.
func disturbedFamilyHistory(seed: UInt64) -> [Event] {
    let history = FamilyHistory(seed: seed)
    var random = SeededGenerator(seed: seed ^ 0xC4C4)
    let order = history.randomOrder(&random)
    var times = Array(order.indices)
    times.shuffle(using: &random)
    var events = order.enumerated().map { history.event($1, at: times[$0]) }
    for _ in 0..<(events.count / 8) {
        let index = Int.random(in: 0..<(events.count - 1), using: &random)
        events.swapAt(index, index + 1)
    }
    for number in 0..<(events.count / 8 + 1) {
        let source = Int.random(in: 0..<events.count, using: &random)
        var copy = events[source]
        if random.chance(0.5) { copy.id += "-again-\(number)" }
        events.insert(copy, at: Int.random(in: (source + 1)...events.count, using: &random))
    }
    let strangers = [
        Families.joined("never-opened", "h-1", at: 3),
        Families.rollout(.rolloutTerminal, "r0", at: 4, id: "forged-terminal-\(seed)"),
        Families.moved("r0", "no-such-host", .dispatched, .soaking, at: 5),
        Families.completed("op-never-started", "s0", context: "ctx", at: 6),
        Families.entered("op0", "s0", attempt: 0, base: "op0-snap-0", at: 7),
        Families.opened("r1", channel: "stable", target: "v-other", at: 8),
    ]
    for event in strangers { events.insert(event, at: Int.random(in: 0...events.count, using: &random)) }
    return events
}

/// Everything the family reducers hold, to compare two of them whole.
struct FamilySnapshot: Equatable, CustomStringConvertible {
    let rollouts: [String: RolloutRecord]
    let runs: [String: RunRecord]
    let rolloutOrphans: ViolationLog
    let runOrphans: ViolationLog
    let rolloutStatistics: ReducerStatistics
    let runStatistics: ReducerStatistics
    let unconfirmed: Set<String>
    let pending: [Event]

    init(_ reducers: FamilyReducers) {
        rollouts = reducers.rollouts.rollouts
        runs = reducers.runs.runs
        rolloutOrphans = reducers.rollouts.orphans
        runOrphans = reducers.runs.orphans
        rolloutStatistics = reducers.rollouts.statistics
        runStatistics = reducers.runs.statistics
        unconfirmed = reducers.rollouts.unconfirmed
        pending = reducers.pendingEmissions
    }

    var statistics: ReducerStatistics { rolloutStatistics + runStatistics }

    var description: String {
        "\(rollouts.count) rollouts, \(runs.count) runs, \(statistics), orphans \(rolloutOrphans.count)+\(runOrphans.count), unconfirmed \(unconfirmed.sorted())"
    }
}

/// The family reducers' checkpoint rows: what they write, load back, and undo.
@Suite struct FamilyCheckpointTests {
    /// Every row of `reducers`' state (all of it changed since a fresh start), as the store
    /// returns them: table by table, each in key order.
    static func rowsInStoreOrder(_ rows: [CheckpointRow]) -> [CheckpointRow] {
        FamilyReducers.tables.flatMap { table in
            rows.filter { $0.table == table && $0.value != nil }.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        }
    }

    /// Feeds `events` as the coordinator does, each emitted event coming back right after.
    static func feed(_ events: some Sequence<Event>, to reducers: inout FamilyReducers) {
        for event in events {
            for emitted in reducers.apply(event).emitted { _ = reducers.apply(emitted) }
        }
    }

    static let seeds = 0..<100 as Range<UInt64>

    /// The reducers stopped part-way through a disturbed history, so that some rollouts are
    /// live, some hosts failed, some terminal events emitted and back, some not yet; and the
    /// events left.
    static func stopped(_ seed: UInt64) -> (FamilyReducers, ArraySlice<Event>) {
        var reducers = FamilyReducers()
        let events = disturbedFamilyHistory(seed: seed)
        var random = SeededGenerator(seed: seed)
        let cut = Int.random(in: (events.count / 2)...events.count, using: &random)
        for event in events[..<cut] {
            // Some emitted events come back, some not yet.
            for emitted in reducers.apply(event).emitted where random.chance(0.5) { _ = reducers.apply(emitted) }
        }
        return (reducers, events[cut...])
    }

    /// The states the rows are tested with have every kind of row and bookkeeping.
    @Test func theStatesWriteEveryKindOfRow() {
        var seen: [String: Int] = [:]
        for seed in Self.seeds {
            let (reducers, _) = Self.stopped(seed)
            for row in reducers.changedRows() { seen[row.table, default: 0] += 1 }
            if !reducers.rollouts.unconfirmed.isEmpty { seen["unconfirmed", default: 0] += 1 }
            if reducers.rollouts.orphans.count > 0 && reducers.runs.orphans.count > 0 { seen["orphans", default: 0] += 1 }
            let rollouts = reducers.rollouts.rollouts.values
            if rollouts.contains(where: { $0.terminalEvent != nil && $0.terminalConfirmed }) { seen["confirmed", default: 0] += 1 }
            if rollouts.contains(where: { !$0.advances.isEmpty }) { seen["advances", default: 0] += 1 }
            if rollouts.contains(where: { $0.clearances.contains { !$0.excused.isEmpty } }) { seen["excused", default: 0] += 1 }
            if rollouts.contains(where: { $0.violations.count > 0 }) { seen["rollout violations", default: 0] += 1 }
            let runs = reducers.runs.runs.values
            if runs.contains(where: { !$0.failureSnapshots.isEmpty }) { seen["failure snapshots", default: 0] += 1 }
            if runs.contains(where: { $0.openState != nil }) { seen["open attempt", default: 0] += 1 }
            if runs.contains(where: { $0.violations.count > 0 }) { seen["run violations", default: 0] += 1 }
        }
        for kind in FamilyReducers.tables + ["unconfirmed", "orphans", "confirmed", "advances", "excused", "rollout violations", "failure snapshots", "open attempt", "run violations"] {
            #expect(seen[kind, default: 0] > 0, "no state has \(kind): \(seen)")
        }
    }

    @Test(arguments: seeds)
    func rowsLoadBackIntoExactlyTheSameState(seed: UInt64) throws {
        var (reducers, rest) = Self.stopped(seed)
        let rows = Self.rowsInStoreOrder(reducers.changedRows())
        var loaded = FamilyReducers()
        for row in rows { try loaded.load(row) }
        #expect(FamilySnapshot(loaded) == FamilySnapshot(reducers))
        #expect(loaded.changedRows().isEmpty, "loading is no change to write")
        // And it goes on as the original does.
        Self.feed(rest, to: &reducers)
        Self.feed(rest, to: &loaded)
        #expect(FamilySnapshot(loaded) == FamilySnapshot(reducers))
    }

    @Test(arguments: seeds)
    func aBatchRolledBackLeavesTheStateAsItWasAndWritesNothing(seed: UInt64) throws {
        let events = disturbedFamilyHistory(seed: seed)
        var random = SeededGenerator(seed: seed ^ 0x99)
        let start = Int.random(in: 0...events.count, using: &random)
        let end = Int.random(in: start...events.count, using: &random)
        var reducers = FamilyReducers()
        Self.feed(events[..<start], to: &reducers)
        reducers.committed()
        let before = FamilySnapshot(reducers)
        Self.feed(events[start..<end], to: &reducers)
        reducers.rollBack()
        #expect(FamilySnapshot(reducers) == before)
        #expect(reducers.changedRows().isEmpty)
        // The batch again, and the rest: as if it had never failed.
        Self.feed(events[start...], to: &reducers)
        var straight = FamilyReducers()
        Self.feed(events, to: &straight)
        #expect(FamilySnapshot(reducers) == FamilySnapshot(straight))
    }

    /// A host's move writes that host and its rollout's summary, not the rollout's other hosts;
    /// a duplicate writes only the counts; pruning deletes the hosts' rows.
    @Test func aBatchWritesOnlyTheRowsItChanged() throws {
        var reducers = FamilyReducers()
        var events = [Families.opened("big", at: 0)]
        for host in 0..<50 { events.append(Families.joined("big", "h\(host)", at: 1)) }
        for host in 0..<50 { events += Families.walk("big", "h\(host)", [.soaking, .soaked, .converged], from: 2) }
        Self.feed(events.dropLast(), to: &reducers)
        reducers.committed()

        Self.feed([events.last!], to: &reducers)
        let rows = reducers.changedRows()
        #expect(Set(rows.map { "\($0.table) \($0.key)" }) == [
            "rollouts big", "rollout_hosts 3:big h49", "family_totals rollouts",
        ])
        #expect(reducers.rollouts.rollouts["big"]?.state == .terminal)
        reducers.committed()

        _ = reducers.apply(events.last!)
        #expect(reducers.changedRows().map(\.table) == [FamilyReducers.totalsTable], "a duplicate changes only the counts")
        reducers.committed()

        _ = reducers.apply(Families.retention("big", at: 9))
        let pruned = reducers.changedRows()
        #expect(pruned.filter { $0.table == RolloutReducer.hostsTable && $0.value == nil }.count == 50)
        #expect(pruned.contains { $0.table == RolloutReducer.rolloutsTable && $0.value != nil })
        reducers.committed()

        _ = reducers.apply(Families.started("op", at: 10))
        #expect(Set(reducers.changedRows().map { "\($0.table) \($0.key)" }) == ["runs op", "family_totals runs"])
    }

    /// A row that cannot be read is refused with an error that names it, never misread.
    @Test func aDamagedRowIsRefused() throws {
        var reducers = FamilyReducers()
        Self.feed([Families.opened("r", at: 0), Families.joined("r", "h", at: 1), Families.started("op", at: 2)], to: &reducers)
        let rows = Self.rowsInStoreOrder(reducers.changedRows())
        for row in rows {
            var damaged = row
            damaged.value = Array("{\"rollout_id\":1}".utf8)
            var loaded = FamilyReducers()
            let error = #expect(throws: CheckpointError.self) {
                for other in rows { try loaded.load(other == row ? damaged : other) }
            }
            #expect(error?.description.contains(row.key.debugDescription) == true, "\(error.map(\.description) ?? "")")
        }
        // A host whose rollout has no row.
        var orphanHost = FamilyReducers()
        let host = try #require(rows.first { $0.table == RolloutReducer.hostsTable })
        #expect(throws: CheckpointError.self) { try orphanHost.load(host) }
    }
}
