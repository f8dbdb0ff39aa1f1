public import EnnioEvents

/// The fleet rollout state machine as a pure reducer: rollout events in, rollout state and the
/// events it derives out (`RolloutTerminal`, once per rollout). No clock, no NATS; the same
/// events give the same state and the same emitted events, in any order the rules allow.
///
/// The rules are those of `topics.md` (generated from ``RolloutState/transitions`` and
/// ``RolloutHostState/successors``). An event applied already — the same move of the same host
/// at the same `at`, the same wave advance, … — is a duplicate and changes nothing; an event
/// that breaks a rule is flagged on its rollout (or among ``orphans``), counted, and changes
/// nothing else.
public struct RolloutReducer: Sendable {
    public internal(set) var rollouts: [String: RolloutRecord] = [:]
    /// Violations of events that name no rollout the reducer knows.
    public internal(set) var orphans = ViolationLog()
    public internal(set) var statistics = ReducerStatistics()
    /// Rollouts whose `RolloutTerminal` was emitted and has not come back yet.
    public internal(set) var unconfirmed: Set<String> = []
    /// What changed since the coordinator's last commit, for its checkpoint
    /// (`RolloutReducer+Checkpoint.swift`).
    var changes = Changes()

    public init() {}

    /// The id of rollout `rolloutId`'s `RolloutTerminal` (see ``EventID/derived(kind:name:)``).
    public static func terminalEventID(of rolloutId: String) -> String {
        EventID.derived(kind: EventType.rolloutTerminal.rawValue, name: rolloutId)
    }

    /// The emitted `RolloutTerminal`s not seen back yet: to publish (again) after a restart.
    public var pendingEmissions: [Event] {
        unconfirmed.sorted().compactMap { rollouts[$0]?.terminalEvent }
    }

    /// The rollouts, by id.
    public var rolloutList: [RolloutRecord] {
        rollouts.values.sorted { $0.rolloutId < $1.rolloutId }
    }

    /// Applies one event; returns what became of it and what to publish.
    public mutating func apply(_ event: Event) -> ReducerOutcome {
        noteTotals()
        let outcome = reduce(event)
        statistics.count(outcome)
        if case .violation(let violation) = outcome.verdict { flag(violation, event) }
        return outcome
    }

    private mutating func reduce(_ event: Event) -> ReducerOutcome {
        guard event.eventType.category == .rollout else { return ReducerOutcome(.ignored) }
        let data: Members
        do {
            data = Members(try event.eventType.checkedData(of: event), event)
        } catch {
            return .violation(.invalidData, event, error.detail)
        }
        if event.eventType == .rolloutOpened { return opened(event, data) }
        if event.eventType == .successorOpened { return successorOpened(event, data) }
        guard let index = rollouts.index(forKey: event.sessionId) else {
            return .violation(.unknownRollout, event, "no rollout \(event.sessionId.debugDescription) was opened")
        }
        guard rollouts.values[index].channel == event.projectId else {
            return .violation(.wrongScope, event, "rollout \(event.sessionId.debugDescription) is on channel \(rollouts.values[index].channel.debugDescription), not \(event.projectId.debugDescription)")
        }
        let noted = noteChange(ofRolloutAt: index)
        let outcome: ReducerOutcome
        switch event.eventType {
        case .hostJoined: outcome = Self.hostJoined(event, data, &rollouts.values[index], &changes)
        case .hostStateChanged: outcome = Self.hostStateChanged(event, data, &rollouts.values[index], &changes)
        case .waveAdvanced: outcome = Self.waveAdvanced(event, data, &rollouts.values[index])
        case .rolloutTerminal: outcome = Self.terminal(event, &rollouts.values[index])
        case .retentionExpired: outcome = Self.retentionExpired(event, data, &rollouts.values[index], &changes)
        case .operatorClearance: outcome = Self.cleared(event, data, &rollouts.values[index], &changes)
        default: outcome = ReducerOutcome(.ignored)
        }
        if noted, outcome.verdict == .duplicate || outcome.verdict == .ignored { changes.rollouts.forget(event.sessionId) }
        if outcome.verdict == .confirmed { unconfirmed.remove(event.sessionId) }
        if let emitted = outcome.emitted.first {
            // Emitted but perhaps already seen: its own copy may sort before its cause.
            if rollouts.values[index].terminalConfirmed {
                return ReducerOutcome(outcome.verdict)
            }
            unconfirmed.insert(emitted.sessionId)
        }
        return outcome
    }

    // MARK: - Events

    private mutating func opened(_ event: Event, _ data: Members) -> ReducerOutcome {
        let at = data.at
        let target = data.string("target_ref")
        if let existing = rollouts[event.sessionId] {
            if existing.channel == event.projectId, existing.targetRef == target, existing.openedAt == at, existing.supersedes == nil {
                return ReducerOutcome(.duplicate)
            }
            return .violation(.rolloutExists, event, "rollout \(event.sessionId.debugDescription) is already open")
        }
        noteChange(of: event.sessionId)
        rollouts[event.sessionId] = RolloutRecord(rolloutId: event.sessionId, channel: event.projectId, targetRef: target, at: at)
        return ReducerOutcome(.applied)
    }

    /// The predecessor becomes Superseded and the successor opens, in one step.
    private mutating func successorOpened(_ event: Event, _ data: Members) -> ReducerOutcome {
        let successor = event.sessionId
        let predecessor = data.string("superseded_rollout_id") ?? ""
        let at = data.at
        if let existing = rollouts[successor], existing.supersedes == predecessor, existing.openedAt == at {
            return ReducerOutcome(.duplicate)
        }
        guard let old = rollouts[predecessor] else {
            return .violation(.unknownRollout, event, "no rollout \(predecessor.debugDescription) was opened")
        }
        guard old.channel == event.projectId else {
            return .violation(.wrongScope, event, "rollout \(predecessor.debugDescription) is on channel \(old.channel.debugDescription), not \(event.projectId.debugDescription)")
        }
        guard rollouts[successor] == nil else {
            return .violation(.rolloutExists, event, "rollout \(successor.debugDescription) is already open")
        }
        guard old.state.isLive else {
            return .violation(.notSupersedable, event, "rollout \(predecessor.debugDescription) is \(old.state), not live")
        }
        noteChange(of: predecessor)
        noteChange(of: successor)
        rollouts[predecessor]?.state = .superseded
        rollouts[predecessor]?.supersededBy = successor
        rollouts[predecessor]?.touch(at)
        rollouts[successor] = RolloutRecord(rolloutId: successor, channel: event.projectId, targetRef: data.string("target_ref"), supersedes: predecessor, at: at)
        return ReducerOutcome(.applied)
    }

    private static func hostJoined(_ event: Event, _ data: Members, _ rollout: inout RolloutRecord, _ changes: inout Changes) -> ReducerOutcome {
        let hostId = data.string("host_id") ?? ""
        let wave = data.integer("wave")
        let at = data.at
        if let host = rollout.hosts[hostId] {
            if host.wave == wave, host.joinedAt == at { return ReducerOutcome(.duplicate) }
            return .violation(.hostExists, event, "host \(hostId.debugDescription) joined rollout \(rollout.rolloutId.debugDescription) already, in wave \(host.wave)")
        }
        guard rollout.state.isLive || rollout.state == .failed else {
            return .violation(.rolloutEnded, event, "rollout \(rollout.rolloutId.debugDescription) is \(rollout.state)")
        }
        if rollout.state == .opening {
            rollout.currentWave = wave
            rollout.state = .active
        } else if let current = rollout.currentWave, wave > current {
            return .violation(.waveNotOpen, event, "wave \(wave) has not started; the current wave is \(current)")
        }
        let host = RolloutHost(hostId: hostId, wave: wave, at: at)
        changes.note(host: hostId, of: rollout)
        rollout.hosts[hostId] = host
        rollout.hostCount += 1
        rollout.count(host, 1)
        rollout.touch(at)
        return ReducerOutcome(.applied, emitted: settle(&rollout))
    }

    private static func hostStateChanged(_ event: Event, _ data: Members, _ rollout: inout RolloutRecord, _ changes: inout Changes) -> ReducerOutcome {
        let hostId = data.string("host_id") ?? ""
        guard let index = rollout.hosts.index(forKey: hostId) else {
            if rollout.state == .pruned { return .violation(.rolloutEnded, event, "rollout \(rollout.rolloutId.debugDescription) was pruned") }
            return .violation(.unknownHost, event, "host \(hostId.debugDescription) never joined rollout \(rollout.rolloutId.debugDescription)")
        }
        // Validated: both are host states.
        let from = RolloutHostState(rawValue: data.string("from") ?? "") ?? .dispatched
        let to = RolloutHostState(rawValue: data.string("to") ?? "") ?? .dispatched
        let at = data.at
        let move = RolloutHost.Move(from: from, to: to, at: at)
        // Read in place: a copy of the host would make the change below copy its moves.
        if rollout.hosts.values[index].moves.contains(move) { return ReducerOutcome(.duplicate) }
        guard rollout.state.isLive || rollout.state == .failed else {
            return .violation(.rolloutEnded, event, "rollout \(rollout.rolloutId.debugDescription) is \(rollout.state)")
        }
        let state = rollout.hosts.values[index].state
        guard state == from else {
            return .violation(.staleHostState, event, "host \(hostId.debugDescription) is \(state), not \(from)")
        }
        guard from.canMove(to: to) else {
            return .violation(.illegalHostTransition, event, "a host may not move from \(from) to \(to)")
        }
        changes.note(host: hostId, of: rollout)
        rollout.update(hostAt: index) { host in
            host.state = to
            host.moves.append(move)
            if to == .dispatched { host.excused = false }
        }
        rollout.touch(at)
        if to == .converged { rollout.noteCause(event, at: data.string("at") ?? "") }
        if to == .failed, rollout.state == .active || rollout.state == .converging {
            rollout.state = .failed
        }
        return ReducerOutcome(.applied, emitted: settle(&rollout))
    }

    private static func waveAdvanced(_ event: Event, _ data: Members, _ rollout: inout RolloutRecord) -> ReducerOutcome {
        let advance = RolloutRecord.WaveAdvance(from: data.integer("from_wave"), to: data.integer("to_wave"), at: data.at)
        if rollout.advances.contains(advance) { return ReducerOutcome(.duplicate) }
        guard rollout.state == .converging else {
            return .violation(.notConverging, event, "rollout \(rollout.rolloutId.debugDescription) is \(rollout.state), not converging")
        }
        guard advance.from == rollout.currentWave, advance.to > advance.from else {
            return .violation(.wrongWave, event, "the current wave is \(rollout.currentWave.map(String.init) ?? "none"); cannot advance from \(advance.from) to \(advance.to)")
        }
        rollout.currentWave = advance.to
        rollout.advances.append(advance)
        rollout.state = .active
        rollout.touch(advance.at)
        return ReducerOutcome(.applied, emitted: settle(&rollout))
    }

    /// A `RolloutTerminal` arrived: the reducer's own (by its id) is a confirmation, anything
    /// else a violation. Either way the state is what the hosts make it, not what this says.
    private static func terminal(_ event: Event, _ rollout: inout RolloutRecord) -> ReducerOutcome {
        guard event.id == Self.terminalEventID(of: rollout.rolloutId) else {
            return .violation(.terminalNotDerived, event, "rollout_terminal is emitted by the coordinator's reducer (id \(Self.terminalEventID(of: rollout.rolloutId))), not published")
        }
        if rollout.terminalConfirmed { return ReducerOutcome(.duplicate) }
        rollout.terminalConfirmed = true
        return ReducerOutcome(.confirmed)
    }

    private static func retentionExpired(_ event: Event, _ data: Members, _ rollout: inout RolloutRecord, _ changes: inout Changes) -> ReducerOutcome {
        if rollout.state == .pruned { return ReducerOutcome(.duplicate) }
        guard rollout.state.isRetained else {
            return .violation(.notRetained, event, "rollout \(rollout.rolloutId.debugDescription) is \(rollout.state); only terminal, superseded, failed or reverted rollouts are pruned")
        }
        rollout.touch(data.at)
        for hostId in rollout.hosts.keys { changes.note(host: hostId, of: rollout) }
        rollout.prune()
        return ReducerOutcome(.applied)
    }

    /// Failed → Active: the hosts failed, reverting or reverted by now are excused; then the
    /// derived moves apply (the rollout may converge, or end, at once).
    private static func cleared(_ event: Event, _ data: Members, _ rollout: inout RolloutRecord, _ changes: inout Changes) -> ReducerOutcome {
        let at = data.at
        let operatorName = data.string("operator") ?? ""
        let reason = data.string("reason") ?? ""
        if rollout.clearances.contains(where: { $0.at == at && $0.operatorName == operatorName && $0.reason == reason }) {
            return ReducerOutcome(.duplicate)
        }
        guard rollout.state == .failed else {
            return .violation(.nothingToClear, event, "rollout \(rollout.rolloutId.debugDescription) is \(rollout.state), not failed")
        }
        let excused = rollout.hosts.values
            .filter { !$0.excused && ($0.state == .failed || $0.state == .reverting || $0.state == .reverted) }
            .map(\.hostId).sorted()
        for hostId in excused {
            guard let index = rollout.hosts.index(forKey: hostId) else { continue }
            changes.note(host: hostId, of: rollout)
            rollout.update(hostAt: index) { $0.excused = true }
        }
        rollout.clearances.append(RolloutRecord.Clearance(operatorName: operatorName, reason: reason, at: at, excused: excused))
        rollout.state = .active
        rollout.touch(at)
        rollout.noteCause(event, at: data.string("at") ?? "")
        return ReducerOutcome(.applied, emitted: settle(&rollout))
    }

    // MARK: - Derived moves

    /// The moves that follow from the hosts' states: Active ⇄ Converging, Converging →
    /// Terminal (emitting `RolloutTerminal`), → Reverted.
    private static func settle(_ rollout: inout RolloutRecord) -> [Event] {
        switch rollout.state {
        case .failed:
            if rollout.everyHostReverted { rollout.state = .reverted }
            return []
        case .active, .converging:
            if rollout.everyHostReverted {
                rollout.state = .reverted
                return []
            }
            rollout.state = rollout.currentWaveSoaked ? .converging : .active
            guard rollout.state == .converging, rollout.everyHostConverged, let cause = rollout.terminalCause else { return [] }
            rollout.state = .terminal
            let event = Event(
                id: Self.terminalEventID(of: rollout.rolloutId), type: .rolloutTerminal, priority: .action,
                sessionId: rollout.rolloutId, projectId: rollout.channel, timestamp: cause.timestamp,
                message: "rollout \(rollout.rolloutId) on \(rollout.channel): all \(rollout.convergedHosts) hosts converged",
                data: ["rollout_id": .string(rollout.rolloutId), "at": .string(cause.at)])
            rollout.terminalEvent = event
            return [event]
        case .opening, .terminal, .superseded, .reverted, .pruned:
            return []
        }
    }

    // MARK: - Violations

    /// Keeps the flag on the rollout the event names (for a successor, its predecessor), or
    /// among the orphans.
    private mutating func flag(_ violation: RuleViolation, _ event: Event) {
        if rollouts[event.sessionId] != nil {
            noteChange(of: event.sessionId)
            rollouts[event.sessionId]?.violations.add(violation)
        } else if event.eventType == .successorOpened, let predecessor = event.data["superseded_rollout_id"]?.stringValue, rollouts[predecessor] != nil {
            noteChange(of: predecessor)
            rollouts[predecessor]?.violations.add(violation)
        } else {
            orphans.add(violation)
        }
    }
}

extension RolloutRecord {
    mutating func noteCause(_ event: Event, at: String) {
        let cause = Cause(timestamp: event.timestamp, id: event.id, at: at)
        if terminalCause.map({ $0 < cause }) ?? true { terminalCause = cause }
    }
}

/// The members of a checked event's `data`.
struct Members {
    let data: CheckedData
    /// `data.at`, or the envelope's timestamp for a type without one.
    let at: EventTimestamp

    init(_ data: CheckedData, _ event: Event) {
        self.data = data
        at = data.at ?? event.timestamp
    }

    func string(_ name: String) -> String? { data[name]?.stringValue }

    func integer(_ name: String) -> Int64 { data[name]?.intValue ?? 0 }

    func optionalInteger(_ name: String) -> Int64? { data[name]?.intValue }
}
