@testable import EnnioCoordinator
import EnnioEvents
@testable import NATSTestSupport
import Testing

/// A random valid history of rollouts and runs, as a graph: each event names the events that
/// must come before it (the rules' causal order). Any topological order of the graph is a
/// history the rules allow; events that are not ordered by it commute.
struct FamilyHistory {
    struct Node {
        let type: EventType
        let session: String
        let scope: String
        let data: [String: JSONValue]
        let after: [Int]
    }

    private(set) var nodes: [Node] = []
    let seed: UInt64

    /// Builds the event of node `index` at position `position` of the order timestamps follow.
    func event(_ index: Int, at position: Int) -> Event {
        let node = nodes[index]
        let timestamp = EventTimestamp(nanosecondsSinceEpoch: Families.origin + Int64(position) * 1_000_000)
        var data = node.data
        if node.type.category == .rollout { data["at"] = .string(timestamp.rfc3339) }
        return Event(
            id: "h\(seed)-\(index)", type: node.type, sessionId: node.session, projectId: node.scope, timestamp: timestamp,
            message: "\(node.type.rawValue) \(node.session)", data: .object(data))
    }

    @discardableResult
    private mutating func add(_ type: EventType, _ session: String, _ scope: String, after: [Int], _ data: [String: JSONValue]) -> Int {
        nodes.append(Node(type: type, session: session, scope: scope, data: data, after: after))
        return nodes.count - 1
    }

    init(seed: UInt64) {
        self.seed = seed
        var random = SeededGenerator(seed: seed)
        for index in 0..<Int.random(in: 2...4, using: &random) {
            let channel = ["stable", "beta"][index % 2]
            let id = "r\(index)"
            let opened = add(.rolloutOpened, id, channel, after: [], ["rollout_id": .string(id), "channel": .string(channel), "target_ref": .string("v\(index)")])
            rollout(id, channel: channel, opened: opened, depth: 0, &random)
        }
        for index in 0..<Int.random(in: 2...4, using: &random) {
            run("op\(index)", project: ["billing", "shipping"][index % 2], &random)
        }
    }

    private struct Host {
        let id: String
        let wave: Int64
        var state: RolloutHostState
        var tip: Int
        var excused = false
    }

    private mutating func move(_ rollout: String, _ channel: String, _ host: inout Host, to state: RolloutHostState, after barrier: [Int]) {
        host.tip = add(.hostStateChanged, rollout, channel, after: [host.tip] + barrier, [
            "rollout_id": .string(rollout), "host_id": .string(host.id), "from": .string(host.state.rawValue), "to": .string(state.rawValue),
        ])
        host.state = state
    }

    /// One rollout from its opening event: waves of hosts, maybe a failure (cleared, or
    /// reverted), maybe a successor, then convergence and maybe retention.
    private mutating func rollout(_ id: String, channel: String, opened: Int, depth: Int, _ random: inout SeededGenerator) {
        var barrier = [opened]
        var hosts: [Host] = []
        let waves = Int.random(in: 1...3, using: &random)
        func retention(after: [Int], _ history: inout FamilyHistory, _ random: inout SeededGenerator) {
            if random.chance(0.5) { history.add(.retentionExpired, id, channel, after: after, ["rollout_id": .string(id)]) }
        }
        for wave in 0..<waves {
            var phase: [Int] = []
            let count = Int.random(in: 1...3, using: &random)
            let failing = random.chance(0.3) ? Int.random(in: 0..<count, using: &random) : nil
            let keepFailed = count > 1 && random.chance(0.5)
            for number in 0..<count {
                let hostId = "\(id)-w\(wave)-h\(number)"
                let joined = add(.hostJoined, id, channel, after: barrier, ["rollout_id": .string(id), "host_id": .string(hostId), "wave": .int(Int64(wave))])
                var host = Host(id: hostId, wave: Int64(wave), state: .dispatched, tip: joined)
                move(id, channel, &host, to: .soaking, after: [])
                if number == failing {
                    move(id, channel, &host, to: .failed, after: [])
                    if !keepFailed {
                        for state in [RolloutHostState.dispatched, .soaking, .soaked] { move(id, channel, &host, to: state, after: []) }
                    }
                } else {
                    move(id, channel, &host, to: .soaked, after: [])
                }
                phase.append(host.tip)
                hosts.append(host)
            }
            if failing != nil {
                if random.chance(0.3) {
                    // Every host is reverted: the rollout ends Reverted.
                    var ends: [Int] = []
                    for index in hosts.indices {
                        move(id, channel, &hosts[index], to: .reverting, after: phase)
                        move(id, channel, &hosts[index], to: .reverted, after: [])
                        ends.append(hosts[index].tip)
                    }
                    retention(after: ends, &self, &random)
                    return
                }
                let clearance = add(.operatorClearance, id, channel, after: phase, ["rollout_id": .string(id), "operator": "alice", "reason": "seen to"])
                for index in hosts.indices where hosts[index].state == .failed { hosts[index].excused = true }
                phase = [clearance]
            } else if depth < 2, random.chance(0.15) {
                // A successor replaces it, in the same step.
                let successor = "\(id)s"
                let opened = add(.successorOpened, successor, channel, after: phase, [
                    "superseded_rollout_id": .string(id), "successor_rollout_id": .string(successor), "target_ref": "v-next",
                ])
                retention(after: [opened], &self, &random)
                rollout(successor, channel: channel, opened: opened, depth: depth + 1, &random)
                return
            }
            barrier = phase
            if wave < waves - 1 {
                barrier = [add(.waveAdvanced, id, channel, after: phase, ["rollout_id": .string(id), "from_wave": .int(Int64(wave)), "to_wave": .int(Int64(wave + 1))])]
            }
        }
        var ends: [Int] = []
        for index in hosts.indices where !hosts[index].excused {
            move(id, channel, &hosts[index], to: .converged, after: barrier)
            ends.append(hosts[index].tip)
        }
        retention(after: ends, &self, &random)
    }

    /// One run: states one after another, attempts that complete, fail (with or without a
    /// failure snapshot) or are interrupted; usually completed.
    private mutating func run(_ opId: String, project: String, _ random: inout SeededGenerator) {
        var tip = add(.runStarted, opId, project, after: [], ["op_id": .string(opId), "manifest_id": "m", "initial_snapshot_id": .string("\(opId)-snap-0")])
        func next(_ type: EventType, _ data: [String: JSONValue], _ history: inout FamilyHistory) {
            tip = history.add(type, opId, project, after: [tip], data)
        }
        var boundary = "\(opId)-snap-0"
        for state in 0..<Int.random(in: 1...4, using: &random) {
            let stateId = "s\(state)"
            var attempt: Int64 = 1
            while true {
                next(.stateEntered, ["state_id": .string(stateId), "attempt": .int(attempt), "base_snapshot_id": .string(boundary)], &self)
                let roll = Double.random(in: 0..<1, using: &random)
                if roll < 0.6 {
                    boundary = "\(opId)-\(stateId)-ctx"
                    next(.stateCompleted, ["state_id": .string(stateId), "context_snapshot_id": .string(boundary)], &self)
                    break
                }
                if roll < 0.85 {
                    var data: [String: JSONValue] = ["state_id": .string(stateId), "error": "timeout"]
                    if random.chance(0.5) { data["failure_snapshot_id"] = .string("\(opId)-\(stateId)-fail-\(attempt)") }
                    if random.chance(0.5) { data["attempt"] = .int(attempt) }
                    next(.stateFailed, data, &self)
                }
                // Failed, or interrupted (the kernel stopped): the next attempt.
                attempt += 1
                if attempt > 3 {
                    next(.runCompleted, ["status": "failed"], &self)
                    return
                }
            }
        }
        if random.chance(0.8) { next(.runCompleted, ["status": "succeeded", "final_snapshot_id": .string(boundary)], &self) }
    }

    /// A random topological order of the nodes.
    func randomOrder(_ random: inout SeededGenerator) -> [Int] {
        var waiting = nodes.map(\.after.count)
        var followers = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            for before in node.after { followers[before].append(index) }
        }
        var ready = nodes.indices.filter { waiting[$0] == 0 }
        var order: [Int] = []
        while !ready.isEmpty {
            let index = ready.remove(at: Int.random(in: 0..<ready.count, using: &random))
            order.append(index)
            for follower in followers[index] {
                waiting[follower] -= 1
                if waiting[follower] == 0 { ready.append(follower) }
            }
        }
        return order
    }
}

/// The coordinator as far as the reducers are concerned: a history that stores an event once
/// (by id and timestamp), the reducers with their checkpoint rows (written with each event, as
/// the coordinator writes them with each batch), and an outbox of emitted events that are
/// published — and come back as events — a little later, or are lost in a crash.
struct CoordinatorModel {
    var reducers = FamilyReducers()
    private(set) var history: [Event] = []
    private var stored: Set<String> = []
    private var outbox: [Event] = []
    private(set) var resumePointsChecked = 0
    /// The checkpoint: rows by table, then key.
    private(set) var checkpoint: [String: [String: CheckpointRow]] = [:]

    /// How a restarted coordinator gets its reducers back.
    enum Restart {
        /// From the checkpoint rows (every restart).
        case checkpoint
        /// From the history alone, in the order it was stored (`ennio coordinator --rebuild`).
        case rebuild
    }

    /// An event arrives: stored if new, then reduced, its changed rows written; what it emits
    /// goes to the outbox.
    mutating func receive(_ event: Event) {
        guard stored.insert(event.id + "@\(event.timestamp.nanosecondsSinceEpoch)").inserted else { return }
        history.append(event)
        outbox += reducers.apply(event).emitted
        for row in reducers.changedRows() {
            checkpoint[row.table, default: [:]][row.key] = row.value == nil ? nil : row
        }
        reducers.committed()
        checkResumePoint(of: event)
    }

    /// The checkpoint's rows as the store returns them: table by table, each in key order.
    var checkpointRows: [CheckpointRow] {
        FamilyReducers.tables.flatMap { table in
            (checkpoint[table] ?? [:]).values.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        }
    }

    /// Publishes what is in the outbox (each comes back through the stream).
    mutating func publish() {
        while !outbox.isEmpty {
            let event = outbox.removeFirst()
            receive(event)
        }
    }

    /// A crash: what was not published yet is lost; a new coordinator loads the reducers from
    /// the checkpoint (or rebuilds them from the history, in the order it was stored), then
    /// publishes what they emitted that the history does not have.
    mutating func restart(publishingFirst: Bool, from source: Restart) throws {
        if publishingFirst { publish() }
        outbox = []
        reducers = FamilyReducers()
        switch source {
        case .checkpoint:
            for row in checkpointRows { try reducers.load(row) }
        case .rebuild:
            for event in history { _ = reducers.apply(event) }
            checkpoint = [:]
            for row in reducers.changedRows() where row.value != nil { checkpoint[row.table, default: [:]][row.key] = row }
            reducers.committed()
        }
        outbox = reducers.pendingEmissions
        publish()
    }

    /// The one rule a run's state serves: its resume point is a boundary, never a failure snapshot.
    mutating func checkResumePoint(of event: Event) {
        guard event.eventType.category == .run, let run = reducers.runs.runs[event.sessionId] else { return }
        resumePointsChecked += 1
        #expect(run.boundaries.isDisjoint(with: run.failureSnapshots))
        guard let point = run.resumePoint else { return }
        #expect(!run.failureSnapshots.contains(point.snapshotId), "\(event.sessionId) resumes from failure snapshot \(point.snapshotId)")
        #expect(run.boundaries.contains(point.snapshotId))
    }

    /// Feeds `events`, publishing after each; with `cut`, crashes and restarts before event `cut`.
    static func run(_ events: [Event], cut: Int? = nil, publishingBeforeCrash: Bool = true, restart: Restart = .checkpoint) throws -> CoordinatorModel {
        var model = CoordinatorModel()
        for (index, event) in events.enumerated() {
            if index == cut { try model.restart(publishingFirst: publishingBeforeCrash, from: restart) }
            model.receive(event)
            // Published once the next event is in: a crash may come in between.
            if index + 1 != cut { model.publish() }
        }
        if cut == events.count { try model.restart(publishingFirst: publishingBeforeCrash, from: restart) }
        model.publish()
        return model
    }
}

@Suite struct FamilyReducerPropertyTests {
    static let seeds: [UInt64] = Array(0..<200)

    /// The state the rules define, which every valid order must reach.
    struct Outcome: Equatable {
        let rollouts: [String: RolloutRecord]
        let runs: [String: RunRecord]
        let emitted: Set<Event>
        let pending: [Event]

        init(_ model: CoordinatorModel) {
            rollouts = model.reducers.rollouts.rollouts
            runs = model.reducers.runs.runs
            emitted = Set(model.history.filter { $0.eventType == .rolloutTerminal })
            pending = model.reducers.pendingEmissions
        }
    }

    private static func baseline(_ seed: UInt64) throws -> (FamilyHistory, [Int], CoordinatorModel) {
        let history = FamilyHistory(seed: seed)
        var random = SeededGenerator(seed: seed ^ 0xA5A5)
        let order = history.randomOrder(&random)
        // Timestamps follow this first order, so the store's order (by time) is one the rules allow.
        var events = [Event?](repeating: nil, count: history.nodes.count)
        for (position, index) in order.enumerated() { events[index] = history.event(index, at: position) }
        let model = try CoordinatorModel.run(order.map { events[$0]! })
        return (history, order, model)
    }

    private static func events(_ history: FamilyHistory, timedBy order: [Int]) -> [Event] {
        var events = [Event?](repeating: nil, count: history.nodes.count)
        for (position, index) in order.enumerated() { events[index] = history.event(index, at: position) }
        return events.map { $0! }
    }

    /// The histories exercise every rule the properties are about, not only the easy path.
    @Test func theGeneratedHistoriesCoverEveryKindOfStep() throws {
        var seen: [String: Int] = [:]
        for seed in Self.seeds {
            let model = try Self.baseline(seed).2
            for rollout in model.reducers.rollouts.rollouts.values {
                seen["rollout \(rollout.state)", default: 0] += 1
                if rollout.supersedes != nil { seen["successor", default: 0] += 1 }
                if !rollout.clearances.isEmpty { seen["clearance", default: 0] += 1 }
                if rollout.clearances.contains(where: { !$0.excused.isEmpty }) { seen["excused host", default: 0] += 1 }
                if rollout.terminalEvent != nil { seen["terminal emitted", default: 0] += 1 }
                if (rollout.currentWave ?? 0) > 0 { seen["several waves", default: 0] += 1 }
            }
            for run in model.reducers.runs.runs.values {
                seen["run \(run.status)", default: 0] += 1
                let outcomes = run.states.values.joined().map(\.outcome)
                if outcomes.contains(.interrupted) { seen["interrupted attempt", default: 0] += 1 }
                if !run.failureSnapshots.isEmpty { seen["failure snapshot", default: 0] += 1 }
                if outcomes.contains(where: { if case .failed = $0 { true } else { false } }) { seen["failed attempt", default: 0] += 1 }
            }
        }
        let wanted = ["rollout terminal", "rollout pruned", "rollout superseded", "rollout reverted", "successor", "clearance", "excused host",
                      "terminal emitted", "several waves", "run succeeded", "run failed", "run running", "interrupted attempt",
                      "failure snapshot", "failed attempt"]
        for kind in wanted { #expect(seen[kind, default: 0] > 0, "no history has: \(kind) (\(seen))") }
    }

    @Test(arguments: seeds)
    func aValidHistoryBreaksNoRuleAndEndsEveryRolloutItCan(seed: UInt64) throws {
        let (history, _, model) = try Self.baseline(seed)
        let statistics = model.reducers.statistics
        #expect(statistics.violations == 0, "\(model.reducers.rollouts.orphans.recent) \(model.reducers.rollouts.rollouts.values.flatMap(\.violations.recent)) \(model.reducers.runs.runs.values.flatMap(\.violations.recent))")
        #expect(statistics.duplicates == 0)
        #expect(statistics.applied == UInt64(history.nodes.count))
        let terminal = model.reducers.rollouts.rollouts.values.filter { $0.terminalEvent != nil }
        #expect(statistics.emitted == UInt64(terminal.count))
        #expect(statistics.confirmed == UInt64(terminal.count))
        #expect(Outcome(model).emitted.count == terminal.count, "each RolloutTerminal stored once")
        #expect(model.reducers.pendingEmissions.isEmpty)
        #expect(model.resumePointsChecked > 0)
    }

    @Test(arguments: seeds)
    func anyOrderTheRulesAllowGivesTheSameStateAndEmittedEvents(seed: UInt64) throws {
        let (history, order, model) = try Self.baseline(seed)
        let expected = Outcome(model)
        let events = Self.events(history, timedBy: order)
        var random = SeededGenerator(seed: seed ^ 0x5A5A)
        for _ in 0..<5 {
            let reordered = history.randomOrder(&random).map { events[$0] }
            #expect(Outcome(try CoordinatorModel.run(reordered)) == expected)
        }
    }

    @Test(arguments: seeds)
    func duplicatedEventsChangeNothingAndAreCounted(seed: UInt64) throws {
        let (history, order, model) = try Self.baseline(seed)
        let expected = Outcome(model)
        let timed = Self.events(history, timedBy: order)
        var events = order.map { timed[$0] }
        var random = SeededGenerator(seed: seed ^ 0x3C3C)
        // Copies of about a fifth of the events, later on — for a rollout's events, before its
        // pruning (which forgets what would recognise them).
        var copies = 0
        for _ in 0..<(events.count / 5 + 1) {
            let source = Int.random(in: 0..<events.count, using: &random)
            let copy = events[source]
            let pruning = events.firstIndex { $0.eventType == .retentionExpired && $0.sessionId == copy.sessionId && copy.eventType.category == .rollout }
            let limit = pruning ?? events.count
            guard source < limit, copy.eventType != .retentionExpired else { continue }
            events.insert(copy, at: Int.random(in: (source + 1)...limit, using: &random))
            copies += 1
        }
        // Straight into the reducers, without the store's de-duplication.
        var reducers = FamilyReducers()
        var emitted: Set<Event> = []
        for event in events {
            for derived in reducers.apply(event).emitted {
                emitted.insert(derived)
                _ = reducers.apply(derived)
            }
        }
        #expect(reducers.rollouts.rollouts == expected.rollouts)
        #expect(reducers.runs.runs == expected.runs)
        #expect(emitted == expected.emitted)
        #expect(reducers.statistics.duplicates == UInt64(copies))
        #expect(reducers.statistics.violations == 0)
    }

    @Test(arguments: seeds)
    func aRestartAtAnyPointGivesTheSameStateAndPublishesEachDerivedEventOnce(seed: UInt64) throws {
        let (history, order, model) = try Self.baseline(seed)
        let expected = Outcome(model)
        let events = Self.events(history, timedBy: order)
        var random = SeededGenerator(seed: seed ^ 0x7E7E)
        for attempt in 0..<4 {
            let reordered = history.randomOrder(&random).map { events[$0] }
            let cut = Int.random(in: 0...reordered.count, using: &random)
            for source in [CoordinatorModel.Restart.checkpoint, .rebuild] {
                let restarted = try CoordinatorModel.run(reordered, cut: cut, publishingBeforeCrash: attempt % 2 == 0, restart: source)
                #expect(Outcome(restarted) == expected, "\(source): cut at \(cut) of \(reordered.count)")
                let terminals = restarted.history.filter { $0.eventType == .rolloutTerminal }
                #expect(terminals.count == Set(terminals.map(\.id)).count, "each RolloutTerminal published once")
            }
        }
    }

    /// Whatever the history — rules broken by events out of order, events again under new ids,
    /// forged and orphan events, timestamps in another order than the stored one — a restart
    /// from the checkpoint, cut at any point, and a rebuild from the history in the order it was
    /// stored give exactly the state of live ingest (every record, flag and count) and the same
    /// emitted events.
    @Test(arguments: seeds)
    func aRestartFromTheCheckpointOfAnyHistoryGivesExactlyTheStateOfLiveIngest(seed: UInt64) throws {
        let events = disturbedFamilyHistory(seed: seed)
        let live = try CoordinatorModel.run(events)
        let expected = FamilySnapshot(live.reducers)
        let emitted = Set(live.history.filter { $0.eventType == .rolloutTerminal })
        #expect(expected.statistics.violations > 0, "a history that breaks rules")
        var random = SeededGenerator(seed: seed ^ 0x6B6B)
        for attempt in 0..<3 {
            let cut = Int.random(in: 0...events.count, using: &random)
            for source in [CoordinatorModel.Restart.checkpoint, .rebuild] {
                let restarted = try CoordinatorModel.run(events, cut: cut, publishingBeforeCrash: attempt != 1, restart: source)
                #expect(FamilySnapshot(restarted.reducers) == expected, "\(source): cut at \(cut) of \(events.count)")
                #expect(Set(restarted.history.filter { $0.eventType == .rolloutTerminal }) == emitted)
                #expect(restarted.checkpointRows == live.checkpointRows, "the same rows")
            }
        }
    }

    /// Rule-breaking run events mixed in never lead a resume point to a failure snapshot.
    @Test(arguments: seeds)
    func ruleBreakingRunEventsNeverMakeAFailureSnapshotAResumePoint(seed: UInt64) throws {
        let (history, order, _) = try Self.baseline(seed)
        let timed = Self.events(history, timedBy: order)
        var events = order.map { timed[$0] }
        var random = SeededGenerator(seed: seed ^ 0x1F1F)
        let failures = events.compactMap { event -> (String, String)? in
            guard event.eventType == .stateFailed, let snapshot = event.data["failure_snapshot_id"]?.stringValue else { return nil }
            return (event.sessionId, snapshot)
        }
        var injected = 0
        for (number, (opId, snapshot)) in failures.enumerated() {
            guard let position = events.lastIndex(where: { $0.sessionId == opId }) else { continue }
            let state = "s\(number)"
            let offenders = [
                Families.entered(opId, state, attempt: 9, base: snapshot, project: events[position].projectId, at: 0),
                Families.completed(opId, "s0", context: snapshot, project: events[position].projectId, at: 0),
            ]
            for offender in offenders {
                events.insert(offender, at: Int.random(in: 0...events.count, using: &random))
                injected += 1
            }
        }
        var model = CoordinatorModel()
        for event in events { model.receive(event) }
        #expect(model.reducers.runs.statistics.violations >= UInt64(injected) / 2)
    }
}
