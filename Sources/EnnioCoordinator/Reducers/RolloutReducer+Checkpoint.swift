import EnnioEvents

/// The rollout reducer's state as rows of the coordinator's checkpoint (``FamilyReducers``): a
/// row per rollout (the record and its bookkeeping, without its hosts), a row per host of a
/// rollout that was not pruned, and its totals (counts and orphan flags). A batch writes only
/// the rows it changed — one host's move rewrites that host and its rollout's summary, not the
/// rollout's other hosts — and a failed batch is undone from the records as they were.
///
/// Loaded back, the rows give the reducer exactly as it was (every field, bookkeeping
/// included), so what it does with the events after the checkpoint is what it did live.
extension RolloutReducer {
    static let rolloutsTable = "rollouts"
    static let hostsTable = "rollout_hosts"
    /// The key of its totals in ``FamilyReducers/totalsTable``.
    static let totalsKey = "rollouts"

    /// A host of a rollout.
    struct HostKey: Hashable, Sendable {
        let rollout: String
        let host: String

        /// Its key in the hosts table: unique for any ids (the rollout id's length first), in
        /// the order of the rollout, then the host.
        var rowKey: String { "\(rollout.utf8.count):\(rollout) \(host)" }
    }

    struct Totals: Sendable {
        var orphans: ViolationLog
        var statistics: ReducerStatistics
        var unconfirmed: Set<String>
    }

    /// What changed since the last commit, with what it was.
    struct Changes: Sendable {
        /// Rollouts as they were, without their hosts: those are kept one by one in `hosts`
        /// (a copy of a record with its hosts would make the first change to any of them copy
        /// them all).
        var rollouts = ChangedEntries<String, RolloutRecord>()
        var hosts = ChangedEntries<HostKey, RolloutHost>()
        var totals: Totals?

        /// Notes a host of `rollout` (a rollout noted already) before it changes.
        mutating func note(host hostId: String, of rollout: RolloutRecord) {
            let key = HostKey(rollout: rollout.rolloutId, host: hostId)
            if !hosts.contains(key) { hosts.note(key, was: rollout.hosts[hostId]) }
        }
    }

    mutating func noteTotals() {
        if changes.totals == nil { changes.totals = Totals(orphans: orphans, statistics: statistics, unconfirmed: unconfirmed) }
    }

    /// Notes the rollout `rolloutId` (absent or not) before it changes.
    mutating func noteChange(of rolloutId: String) {
        if let index = rollouts.index(forKey: rolloutId) {
            noteChange(ofRolloutAt: index)
        } else {
            changes.rollouts.note(rolloutId, was: nil)
        }
    }

    /// Notes the rollout at `index` before it changes; returns whether it was noted now.
    @discardableResult
    mutating func noteChange(ofRolloutAt index: Dictionary<String, RolloutRecord>.Index) -> Bool {
        let rolloutId = rollouts.keys[index]
        guard !changes.rollouts.contains(rolloutId) else { return false }
        var before = rollouts.values[index]
        before.hosts = [:]
        return changes.rollouts.note(rolloutId, was: before)
    }

    // MARK: - Rows

    func changedRows() -> [CheckpointRow] {
        var rows: [CheckpointRow] = []
        rows.reserveCapacity(changes.rollouts.before.count + changes.hosts.before.count + 1)
        for rolloutId in changes.rollouts.keys {
            if let rollout = rollouts[rolloutId] {
                rows.append(Self.row(of: rollout))
            } else {
                rows.append(.deletion(table: Self.rolloutsTable, key: rolloutId))
            }
        }
        for key in changes.hosts.keys {
            if let host = rollouts[key.rollout]?.hosts[key.host] {
                rows.append(Self.row(of: host, in: key.rollout))
            } else {
                rows.append(.deletion(table: Self.hostsTable, key: key.rowKey))
            }
        }
        if changes.totals != nil { rows.append(FamilyReducers.totalsRow(Self.totalsKey, statistics: statistics, orphans: orphans)) }
        return rows
    }

    mutating func committed() {
        changes.rollouts.removeAll()
        changes.hosts.removeAll()
        changes.totals = nil
    }

    mutating func rollBack() {
        if let totals = changes.totals {
            orphans = totals.orphans
            statistics = totals.statistics
            unconfirmed = totals.unconfirmed
        }
        // The hosts as they were: those of the records now, with the changed ones put back.
        var hosts: [String: [String: RolloutHost]] = [:]
        for rolloutId in changes.rollouts.keys { hosts[rolloutId] = rollouts[rolloutId]?.hosts ?? [:] }
        for (key, host) in changes.hosts.before { hosts[key.rollout, default: [:]][key.host] = host }
        for (rolloutId, before) in changes.rollouts.before {
            if var record = before {
                record.hosts = hosts[rolloutId] ?? [:]
                rollouts[rolloutId] = record
            } else {
                rollouts[rolloutId] = nil
            }
        }
        committed()
    }

    /// Takes back one row: rollouts come before their hosts (the order of the tables).
    mutating func load(_ row: CheckpointRow) throws {
        guard let valueBytes = row.value else { return }
        let context = "the \(row.table) row \(row.key.debugDescription)"
        let value = try CheckpointFields(parsing: valueBytes, context)
        switch row.table {
        case Self.rolloutsTable:
            let rollout = try Self.rollout(from: value, state: try CheckpointFields(parsing: row.state, context))
            rollouts[rollout.rolloutId] = rollout
            if rollout.terminalEvent != nil, !rollout.terminalConfirmed { unconfirmed.insert(rollout.rolloutId) }
        case Self.hostsTable:
            let rolloutId = try value.string("rollout_id")
            let host = try Self.host(from: value)
            guard rollouts[rolloutId] != nil else { throw CheckpointError("\(context) is a host of rollout \(rolloutId.debugDescription), which has no row") }
            rollouts[rolloutId]?.hosts[host.hostId] = host
        case FamilyReducers.totalsTable:
            (statistics, orphans) = try FamilyReducers.totals(from: value)
        default:
            throw CheckpointError("the rollout reducer has no table \(row.table.debugDescription)")
        }
    }

    // MARK: - A rollout's row

    /// The row of a rollout: the record in `value`, the bookkeeping that derives its moves in
    /// `state`; its hosts have rows of their own.
    static func row(of rollout: RolloutRecord) -> CheckpointRow {
        var value = JSONWriter(reservingCapacity: 512)
        value.beginObject()
        value.member("rollout_id", rollout.rolloutId)
        value.member("channel", rollout.channel)
        value.member("target_ref", rollout.targetRef)
        value.member("state", rollout.state.rawValue)
        value.member("current_wave", rollout.currentWave)
        value.member("host_count", count: rollout.hostCount)
        value.key("host_states")
        value.beginArray()
        for count in rollout.hostStateCounts { value.int(Int64(count)) }
        value.endArray()
        value.member("supersedes", rollout.supersedes)
        value.member("superseded_by", rollout.supersededBy)
        value.key("clearances")
        value.beginArray()
        for clearance in rollout.clearances {
            value.beginObject()
            value.member("operator", clearance.operatorName)
            value.member("reason", clearance.reason)
            value.member("at_ns", clearance.at)
            value.member("excused", strings: clearance.excused)
            value.endObject()
        }
        value.endArray()
        value.member("opened_at_ns", rollout.openedAt)
        value.member("updated_at_ns", rollout.updatedAt)
        value.member("event_count", count: rollout.eventCount)
        value.member("violations", rollout.violations)
        value.key("terminal_event")
        if let event = rollout.terminalEvent { EventCodec.write(event, to: &value) } else { value.null() }
        value.member("terminal_confirmed", rollout.terminalConfirmed)
        value.endObject()

        var state = JSONWriter(reservingCapacity: 256)
        state.beginObject()
        state.key("advances")
        state.beginArray()
        for advance in rollout.advances {
            state.beginObject()
            state.member("from", advance.from)
            state.member("to", advance.to)
            state.member("at_ns", advance.at)
            state.endObject()
        }
        state.endArray()
        state.key("waves")
        state.beginArray()
        for (wave, count) in rollout.waves.sorted(by: { $0.key < $1.key }) {
            state.beginObject()
            state.member("wave", wave)
            state.member("counted", count: count.counted)
            state.member("soaked", count: count.soaked)
            state.endObject()
        }
        state.endArray()
        state.member("counted_hosts", count: rollout.countedHosts)
        state.member("converged_hosts", count: rollout.convergedHosts)
        state.member("reverted_hosts", count: rollout.revertedHosts)
        state.key("terminal_cause")
        if let cause = rollout.terminalCause {
            state.beginObject()
            state.member("timestamp_ns", cause.timestamp)
            state.member("id", cause.id)
            state.member("at", cause.at)
            state.endObject()
        } else {
            state.null()
        }
        state.endObject()
        return CheckpointRow(table: rolloutsTable, key: rollout.rolloutId, value: value.bytes, state: state.bytes)
    }

    static func rollout(from value: CheckpointFields, state: CheckpointFields) throws -> RolloutRecord {
        var rollout = RolloutRecord(
            rolloutId: try value.string("rollout_id"), channel: try value.string("channel"), targetRef: try value.optionalString("target_ref"),
            supersedes: try value.optionalString("supersedes"), at: try value.instant("opened_at_ns"))
        rollout.state = try value.choice("state", RolloutState.self)
        rollout.currentWave = try value.optionalInteger("current_wave")
        rollout.hostCount = try value.count("host_count")
        let counts = try value.counts("host_states")
        guard counts.count == RolloutHostState.allCases.count else { throw value.invalid("host_states") }
        rollout.hostStateCounts = counts
        rollout.supersededBy = try value.optionalString("superseded_by")
        rollout.clearances = try value.list("clearances").map { clearance in
            RolloutRecord.Clearance(
                operatorName: try clearance.string("operator"), reason: try clearance.string("reason"), at: try clearance.instant("at_ns"),
                excused: try clearance.strings("excused"))
        }
        rollout.updatedAt = try value.instant("updated_at_ns")
        rollout.eventCount = try value.count("event_count")
        rollout.violations = try value.violations("violations")
        rollout.terminalEvent = try value.optionalEvent("terminal_event")
        rollout.terminalConfirmed = try value.bool("terminal_confirmed")

        rollout.advances = try state.list("advances").map { advance in
            RolloutRecord.WaveAdvance(from: try advance.integer("from"), to: try advance.integer("to"), at: try advance.instant("at_ns"))
        }
        for wave in try state.list("waves") {
            rollout.waves[try wave.integer("wave")] = RolloutRecord.WaveCount(counted: try wave.count("counted"), soaked: try wave.count("soaked"))
        }
        rollout.countedHosts = try state.count("counted_hosts")
        rollout.convergedHosts = try state.count("converged_hosts")
        rollout.revertedHosts = try state.count("reverted_hosts")
        if let cause = try state.optionalFields("terminal_cause") {
            rollout.terminalCause = RolloutRecord.Cause(timestamp: try cause.instant("timestamp_ns"), id: try cause.string("id"), at: try cause.string("at"))
        }
        return rollout
    }

    // MARK: - A host's row

    static func row(of host: RolloutHost, in rolloutId: String) -> CheckpointRow {
        var value = JSONWriter(reservingCapacity: 96 + 64 * host.moves.count)
        value.beginObject()
        value.member("rollout_id", rolloutId)
        value.member("host_id", host.hostId)
        value.member("wave", host.wave)
        value.member("state", host.state.rawValue)
        value.member("excused", host.excused)
        value.key("moves")
        value.beginArray()
        for move in host.moves {
            value.beginObject()
            value.member("from", move.from?.rawValue)
            value.member("to", move.to.rawValue)
            value.member("at_ns", move.at)
            value.endObject()
        }
        value.endArray()
        value.endObject()
        let key = HostKey(rollout: rolloutId, host: host.hostId)
        return CheckpointRow(table: hostsTable, key: key.rowKey, value: value.bytes, state: Array("{}".utf8))
    }

    static func host(from value: CheckpointFields) throws -> RolloutHost {
        let moves = try value.list("moves").map { move in
            RolloutHost.Move(
                from: try move.optionalChoice("from", RolloutHostState.self), to: try move.choice("to", RolloutHostState.self),
                at: try move.instant("at_ns"))
        }
        guard let join = moves.first, join.from == nil else { throw value.invalid("moves") }
        var host = RolloutHost(hostId: try value.string("host_id"), wave: try value.integer("wave"), at: join.at)
        host.state = try value.choice("state", RolloutHostState.self)
        host.excused = try value.bool("excused")
        host.moves = moves
        return host
    }
}
