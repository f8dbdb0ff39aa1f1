import EnnioEvents

/// The rollout and run reducers as the coordinator's ``CheckpointedState`` holds them: applied in
/// the same transaction as each batch, their changed rows written with it (and undone with it
/// when it fails), loaded back at start — then only the events stored after the checkpoint are
/// applied, in the order they were stored.
///
/// Their rules follow the order events came in (a host's moves, a run's attempts), so a rebuild
/// from the history walks it in that order (`seq`), reading only rollout and run events.
extension FamilyReducers: CheckpointedReducer {
    static let name = "families"
    static let version = 1
    /// Each reducer's counts and orphan flags, one row each.
    static let totalsTable = "family_totals"
    static let tables = [RolloutReducer.rolloutsTable, RolloutReducer.hostsTable, RunReducer.runsTable, totalsTable]
    static var dependsOnStoredOrder: Bool { true }
    static var categories: Set<EventCategory>? { [.rollout, .run] }

    mutating func apply(_ event: StoredEvent) -> [LifecycleAction] {
        apply(event.event).emitted.map { .publish($0, host: nil) }
    }

    func changedRows() -> [CheckpointRow] {
        rollouts.changedRows() + runs.changedRows()
    }

    mutating func committed() {
        rollouts.committed()
        runs.committed()
    }

    mutating func rollBack() {
        rollouts.rollBack()
        runs.rollBack()
    }

    mutating func load(_ row: CheckpointRow) throws {
        switch row.table {
        case RolloutReducer.rolloutsTable, RolloutReducer.hostsTable: try rollouts.load(row)
        case RunReducer.runsTable: try runs.load(row)
        case Self.totalsTable where row.key == RolloutReducer.totalsKey: try rollouts.load(row)
        case Self.totalsTable where row.key == RunReducer.totalsKey: try runs.load(row)
        default: throw CheckpointError("the families have no row \(row.key.debugDescription) in \(row.table.debugDescription)")
        }
    }

    mutating func reset() {
        self = FamilyReducers()
    }

    /// The row of one reducer's counts and orphan flags (`key`: which reducer).
    static func totalsRow(_ key: String, statistics: ReducerStatistics, orphans: ViolationLog) -> CheckpointRow {
        var value = JSONWriter(reservingCapacity: 256)
        value.beginObject()
        value.member("statistics", statistics)
        value.member("orphans", orphans)
        value.endObject()
        return CheckpointRow(table: totalsTable, key: key, value: value.bytes, state: Array("{}".utf8))
    }

    /// Reads back the `value` of a row of ``totalsRow(_:statistics:orphans:)``.
    static func totals(from value: [UInt8], of row: CheckpointRow) throws -> (statistics: ReducerStatistics, orphans: ViolationLog) {
        try CheckpointDecoder.decode(value, of: row) { reader, decoder throws(JSONError) in
            var statistics: ReducerStatistics?, orphans: ViolationLog?
            try reader.readObject { key, reader throws(JSONError) in
                switch key {
                case "statistics": statistics = try decoder.statistics(&reader)
                case "orphans": orphans = try decoder.violations(&reader)
                default: try reader.skipValue()
                }
            }
            guard let statistics = decoder.required(statistics, "statistics"), let orphans = decoder.required(orphans, "orphans") else { return nil }
            return (statistics, orphans)
        }
    }
}
