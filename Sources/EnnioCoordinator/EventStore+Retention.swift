public import EnnioEvents

/// The history's retention: events older than a limit are deleted, a bounded number per
/// transaction, so that the store thread goes back to ingesting between two of them.
///
/// Every category ages alike: each reducer's state, rollouts and runs included, is checkpointed
/// row by row (schema 5), so no start replays old events. Kept whatever their age:
/// - events no checkpoint reflects yet (after the lowest `applied_seq` of ``checkpoints``), so
///   that a restart loads the same state as before the deletion;
/// - the event stored last (the highest `seq`): SQLite numbers a new row after the highest
///   one, so keeping it keeps `seq` growing, which the HTTP event stream resumes by.
///
/// The session, node, rollout and run tables are checkpointed beside the history, so they keep
/// what the deleted events made of them (`ennio sessions` and `ennio nodes` are unchanged); a rebuild
/// from the history (`--rebuild`) makes them from what is left.
extension EventStore {
    /// Deletes up to `limit` of the oldest events whose timestamp is before `cutoff` (see above
    /// for the ones kept), in one transaction on the writing connection. Returns how many it
    /// deleted: fewer than `limit` means none is left to delete.
    public func deleteEvents(before cutoff: EventTimestamp, limit: Int) throws -> Int {
        try withDatabase { connection in
            try connection.transaction {
                try connection.run(
                    """
                    DELETE FROM events WHERE seq IN (
                        SELECT seq FROM events
                        WHERE timestamp_ns < ?
                          AND seq <= (SELECT COALESCE(MIN(applied_seq), 0) FROM checkpoints)
                          AND seq < (SELECT MAX(seq) FROM events)
                        ORDER BY timestamp_ns, id
                        LIMIT ?)
                    """,
                    binding: [.integer(cutoff.nanosecondsSinceEpoch), .integer(Int64(max(1, limit)))])
            }
        }
    }
}
