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
            } else if changes.hosts.existed(key) {
                // (A host that joined and was pruned since has no row to delete.)
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
        guard let value = row.value else { return }
        switch row.table {
        case Self.rolloutsTable:
            var rollout = try CheckpointDecoder.decode(value, of: row, Self.rollout)
            try CheckpointDecoder.decode(row.state, of: row) { reader, decoder throws(JSONError) in try Self.readBookkeeping(&reader, &decoder, into: &rollout) }
            rollouts[rollout.rolloutId] = rollout
            if rollout.terminalEvent != nil, !rollout.terminalConfirmed { unconfirmed.insert(rollout.rolloutId) }
        case Self.hostsTable:
            let (rolloutId, host) = try CheckpointDecoder.decode(value, of: row, Self.host)
            guard rollouts[rolloutId] != nil else { throw CheckpointError("\(row.name) is a host of rollout \(rolloutId.debugDescription), which has no row") }
            rollouts[rolloutId]?.hosts[host.hostId] = host
        case FamilyReducers.totalsTable:
            (statistics, orphans) = try FamilyReducers.totals(from: value, of: row)
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

    /// Reads a rollout's `value` (the record but its hosts and bookkeeping).
    static func rollout(_ reader: inout JSONReader, _ decoder: inout CheckpointDecoder) throws(JSONError) -> RolloutRecord? {
        var id: String?, channel: String?, target: String?, state: String?, wave: Int64?, hostCount: Int?, counts: [Int] = []
        var supersedes: String?, supersededBy: String?, clearances: [RolloutRecord.Clearance] = [], opened: EventTimestamp?
        var updated: EventTimestamp?, eventCount: Int?, violations = ViolationLog(), terminal: JSONValue?, confirmed: Bool?
        try reader.readObject { key, reader throws(JSONError) in
            switch key {
            case "rollout_id": id = try reader.readString()
            case "channel": channel = try reader.readString()
            case "target_ref": target = try reader.readOptionalString()
            case "state": state = try reader.readString()
            case "current_wave": wave = try reader.readOptionalInt()
            case "host_count": hostCount = try reader.readCount()
            case "host_states": try reader.readArray { reader throws(JSONError) in counts.append(try reader.readCount() ?? -1) }
            case "supersedes": supersedes = try reader.readOptionalString()
            case "superseded_by": supersededBy = try reader.readOptionalString()
            case "clearances":
                try reader.readArray { reader throws(JSONError) in
                    var name: String?, reason: String?, at: EventTimestamp?, excused: [String] = []
                    try reader.readObject { key, reader throws(JSONError) in
                        switch key {
                        case "operator": name = try reader.readString()
                        case "reason": reason = try reader.readString()
                        case "at_ns": at = try reader.readInstant()
                        case "excused": excused = try reader.readStrings()
                        default: try reader.skipValue()
                        }
                    }
                    guard let name, let reason, let at else { return decoder.invalid("clearance") }
                    clearances.append(RolloutRecord.Clearance(operatorName: name, reason: reason, at: at, excused: excused))
                }
            case "opened_at_ns": opened = try reader.readInstant()
            case "updated_at_ns": updated = try reader.readInstant()
            case "event_count": eventCount = try reader.readCount()
            case "violations": violations = try decoder.violations(&reader)
            case "terminal_event": terminal = try reader.readValue()
            case "terminal_confirmed": confirmed = try reader.readBool()
            default: try reader.skipValue()
            }
        }
        guard let id = decoder.required(id, "rollout_id"), let channel = decoder.required(channel, "channel"),
            let opened = decoder.required(opened, "opened_at_ns"), let updated = decoder.required(updated, "updated_at_ns"),
            let state = decoder.choice(state, RolloutState.self, "state"), let hostCount = decoder.required(hostCount, "host_count"),
            let eventCount = decoder.required(eventCount, "event_count"), let confirmed = decoder.required(confirmed, "terminal_confirmed")
        else { return nil }
        guard counts.count == RolloutHostState.allCases.count, counts.allSatisfy({ $0 >= 0 }) else {
            decoder.invalid("host_states")
            return nil
        }
        var rollout = RolloutRecord(rolloutId: id, channel: channel, targetRef: target, supersedes: supersedes, at: opened)
        rollout.state = state
        rollout.currentWave = wave
        rollout.hostCount = hostCount
        rollout.hostStateCounts = counts
        rollout.supersededBy = supersededBy
        rollout.clearances = clearances
        rollout.updatedAt = updated
        rollout.eventCount = eventCount
        rollout.violations = violations
        rollout.terminalConfirmed = confirmed
        if let terminal, !terminal.isNull {
            guard let event = try? EventCodec.decode(Array(terminal.jsonString.utf8)) else {
                decoder.invalid("terminal_event")
                return nil
            }
            rollout.terminalEvent = event
        }
        return rollout
    }

    /// Reads a rollout's `state` (what derives its moves) into `rollout`.
    static func readBookkeeping(_ reader: inout JSONReader, _ decoder: inout CheckpointDecoder, into rollout: inout RolloutRecord) throws(JSONError) -> Void? {
        var counted: Int?, converged: Int?, reverted: Int?
        try reader.readObject { key, reader throws(JSONError) in
            switch key {
            case "advances":
                try reader.readArray { reader throws(JSONError) in
                    var from: Int64?, to: Int64?, at: EventTimestamp?
                    try reader.readObject { key, reader throws(JSONError) in
                        switch key {
                        case "from": from = try reader.readInt()
                        case "to": to = try reader.readInt()
                        case "at_ns": at = try reader.readInstant()
                        default: try reader.skipValue()
                        }
                    }
                    guard let from, let to, let at else { return decoder.invalid("advance") }
                    rollout.advances.append(RolloutRecord.WaveAdvance(from: from, to: to, at: at))
                }
            case "waves":
                try reader.readArray { reader throws(JSONError) in
                    var wave: Int64?, counted: Int?, soaked: Int?
                    try reader.readObject { key, reader throws(JSONError) in
                        switch key {
                        case "wave": wave = try reader.readInt()
                        case "counted": counted = try reader.readCount()
                        case "soaked": soaked = try reader.readCount()
                        default: try reader.skipValue()
                        }
                    }
                    guard let wave, let counted, let soaked else { return decoder.invalid("wave") }
                    rollout.waves[wave] = RolloutRecord.WaveCount(counted: counted, soaked: soaked)
                }
            case "counted_hosts": counted = try reader.readCount()
            case "converged_hosts": converged = try reader.readCount()
            case "reverted_hosts": reverted = try reader.readCount()
            case "terminal_cause":
                guard try !reader.readNull() else { return }
                var timestamp: EventTimestamp?, id: String?, at: String?
                try reader.readObject { key, reader throws(JSONError) in
                    switch key {
                    case "timestamp_ns": timestamp = try reader.readInstant()
                    case "id": id = try reader.readString()
                    case "at": at = try reader.readString()
                    default: try reader.skipValue()
                    }
                }
                guard let timestamp, let id, let at else { return decoder.invalid("terminal_cause") }
                rollout.terminalCause = RolloutRecord.Cause(timestamp: timestamp, id: id, at: at)
            default: try reader.skipValue()
            }
        }
        guard let counted = decoder.required(counted, "counted_hosts"), let converged = decoder.required(converged, "converged_hosts"),
            let reverted = decoder.required(reverted, "reverted_hosts")
        else { return nil }
        rollout.countedHosts = counted
        rollout.convergedHosts = converged
        rollout.revertedHosts = reverted
        return ()
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

    /// Reads a host's row: its rollout's id and the host.
    static func host(_ reader: inout JSONReader, _ decoder: inout CheckpointDecoder) throws(JSONError) -> (String, RolloutHost)? {
        var rolloutId: String?, hostId: String?, wave: Int64?, state: String?, excused: Bool?, moves: [RolloutHost.Move] = []
        try reader.readObject { key, reader throws(JSONError) in
            switch key {
            case "rollout_id": rolloutId = try reader.readString()
            case "host_id": hostId = try reader.readString()
            case "wave": wave = try reader.readInt()
            case "state": state = try reader.readString()
            case "excused": excused = try reader.readBool()
            case "moves":
                try reader.readArray { reader throws(JSONError) in
                    var from: String?, to: String?, at: EventTimestamp?
                    try reader.readObject { key, reader throws(JSONError) in
                        switch key {
                        case "from": from = try reader.readOptionalString()
                        case "to": to = try reader.readString()
                        case "at_ns": at = try reader.readInstant()
                        default: try reader.skipValue()
                        }
                    }
                    let fromState = from.map { RolloutHostState(rawValue: $0) }
                    guard let to = to.flatMap(RolloutHostState.init(rawValue:)), let at, fromState != .some(nil) else { return decoder.invalid("move") }
                    moves.append(RolloutHost.Move(from: fromState ?? nil, to: to, at: at))
                }
            default: try reader.skipValue()
            }
        }
        guard let rolloutId = decoder.required(rolloutId, "rollout_id"), let hostId = decoder.required(hostId, "host_id"),
            let wave = decoder.required(wave, "wave"), let state = decoder.choice(state, RolloutHostState.self, "state"),
            let excused = decoder.required(excused, "excused")
        else { return nil }
        guard let join = moves.first, join.from == nil else {
            decoder.invalid("moves")
            return nil
        }
        var host = RolloutHost(hostId: hostId, wave: wave, at: join.at)
        host.state = state
        host.excused = excused
        host.moves = moves
        return (rolloutId, host)
    }
}
