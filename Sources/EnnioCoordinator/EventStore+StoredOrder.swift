public import EnnioEvents

/// The history in the order it was stored, for the HTTP event stream: each event's `seq`
/// numbers it in commit order (rows are only ever appended, one transaction at a time), so
/// "everything stored after this event" is exact even when events arrive out of timestamp
/// order — a publisher whose clock is behind, a retry stored late. Read on the store's reading
/// connection: never behind a batch being written.
extension EventStore {
    /// One stored event and its place in the order of storing (``EnnioCoordinator/StoredEvent``).
    public typealias StoredEvent = EnnioCoordinator.StoredEvent

    /// The place of the last event stored (its `seq`); 0 for an empty history.
    public func lastPosition() throws -> Int64 {
        try lastSequence()
    }

    /// The place of the event `cursor` names (through the `events_key` index); `nil` when no
    /// such event is stored.
    public func position(of cursor: HistoryCursor) throws -> Int64? {
        try withReader { connection in
            try connection.rows(
                "SELECT seq FROM events WHERE timestamp_ns = ? AND id = ?",
                binding: [.integer(cursor.timestampNanoseconds), .text(cursor.id)]
            ) { $0.int64(at: 0) }.first
        }
    }

    /// Up to `limit` events matching `query`'s filters (not its page) stored after `position`
    /// and at or before `last`, in the order they were stored.
    public func events(storedAfter position: Int64, through last: Int64, matching query: HistoryQuery, limit: Int) throws -> [StoredEvent] {
        var (conditions, values) = Self.conditions(for: query)
        conditions.append("seq > ?")
        conditions.append("seq <= ?")
        values += [.integer(position), .integer(last)]
        return try storedEvents(where: conditions, values: values, order: "seq ASC", limit: limit)
    }

    /// The last `count` events matching `query`'s filters stored at or before `last`, in the
    /// order they were stored.
    public func latestEvents(through last: Int64, matching query: HistoryQuery, count: Int) throws -> [StoredEvent] {
        var (conditions, values) = Self.conditions(for: query)
        conditions.append("seq <= ?")
        values.append(.integer(last))
        return try storedEvents(where: conditions, values: values, order: "seq DESC", limit: count).reversed()
    }

    /// Up to `limit` events matching `query`'s filters whose key follows `cursor`, stored at or
    /// before `last`, in key order: for a cursor that names no stored event.
    public func events(after cursor: HistoryCursor, through last: Int64, matching query: HistoryQuery, limit: Int) throws -> [StoredEvent] {
        var (conditions, values) = Self.conditions(for: query)
        conditions.append("(timestamp_ns, id) > (?, ?)")
        conditions.append("seq <= ?")
        values += [.integer(cursor.timestampNanoseconds), .text(cursor.id), .integer(last)]
        return try storedEvents(where: conditions, values: values, order: "timestamp_ns ASC, id ASC", limit: limit)
    }

    private func storedEvents(where conditions: [String], values: [SQLiteValue], order: String, limit: Int) throws -> [StoredEvent] {
        let sql = "SELECT \(Self.rowColumns) FROM events WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(order) LIMIT ?"
        return try withReader { connection in
            try connection.rows(sql, binding: values + [.integer(Int64(limit))]) { try StoredRow(statement: $0).stored() }
        }
    }
}

extension HistoryQuery {
    /// Whether `event` passes every filter set (as the store's WHERE would have it): for
    /// events that arrive live, not from the store.
    public func matches(_ event: Event) -> Bool {
        if let projectId, event.projectId != projectId { return false }
        if let sessionId, event.sessionId != sessionId { return false }
        if let eventType, event.eventType != eventType { return false }
        if let category, event.eventType.category != category { return false }
        if let minimumPriority, event.priority < minimumPriority { return false }
        if let since, event.timestamp < since { return false }
        if let until, event.timestamp >= until { return false }
        return true
    }
}
