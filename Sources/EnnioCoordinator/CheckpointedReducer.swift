public import EnnioEvents

/// An event as the history holds it: with the subject it came on, its place in the order of
/// storing (`seq`, increasing) and when the coordinator stored it.
public struct StoredEvent: Sendable, Hashable {
    public var event: Event
    public var subject: String
    /// The order it was stored in: later events have larger numbers.
    public var seq: Int64
    /// When the coordinator stored it, on the coordinator's clock.
    public var storedAt: EventTimestamp

    /// Its place in the order of storing (the HTTP event stream's name for ``seq``).
    public var position: Int64 { seq }

    public init(event: Event, subject: String, seq: Int64, storedAt: EventTimestamp) {
        self.event = event
        self.subject = subject
        self.seq = seq
        self.storedAt = storedAt
    }
}

/// One row of a reducer's table in the coordinator's database: a key (the order of paging),
/// the row as queries return it (`value`, JSON), and whatever else the reducer needs to load
/// it again (`state`). A row without a value is deleted.
struct CheckpointRow: Sendable, Hashable {
    var table: String
    var key: String
    var value: [UInt8]?
    var state: [UInt8]

    /// The row that deletes `key` from `table`.
    static func deletion(table: String, key: String) -> CheckpointRow {
        CheckpointRow(table: table, key: key, value: nil, state: [])
    }
}

/// A reducer whose state the coordinator keeps in SQLite beside the history, written in the
/// same transaction as each batch of events, so that a restart loads it instead of reading the
/// history again (see ``CheckpointedState``).
///
/// A restart loads its rows and applies, in the order they were stored (`seq`), the events
/// stored after its checkpoint: exactly what live ingest did after the batch the checkpoint
/// ends with. A rebuild from the history alone has a choice of order:
/// - a reducer whose state depends only on the set of stored events — each with its `seq` and
///   `storedAt`, which the history keeps — and not on the order they are applied in, can be
///   rebuilt by walking the history by key (timestamp, id); where the order matters ("the
///   latest status"), it compares `seq`s rather than trusting the order of calls (the
///   lifecycle's tables);
/// - a reducer whose rules follow the order events came in (a rollout's hosts, a run's
///   attempts: the family reducers) says so with ``dependsOnStoredOrder``, and is rebuilt by
///   walking the history in the order it was stored, by `seq`, as live ingest applied it.
///
/// Either way it must depend on nothing else — no clock, no process state — so that a restart
/// and a rebuild give the state, the rows and the emitted events that live ingest gave.
///
/// Adding a reducer: conform to this, give it tables of its own and add it to the list the
/// coordinator's ``CheckpointedState`` is made with; its first start rebuilds its tables from
/// the history (and says so in the log), as does any change of ``version``.
protocol CheckpointedReducer: Sendable {
    /// Its name in the `checkpoints` table.
    static var name: String { get }
    /// The format of its rows: a checkpoint written with another version is rebuilt.
    static var version: Int { get }
    /// The tables its rows belong to (the `table_name` of `checkpoint_rows`), in the order
    /// they are loaded.
    static var tables: [String] { get }
    /// Whether its rules depend on the order events are applied in: then it is rebuilt in the
    /// order of storing (`seq`) rather than by key.
    static var dependsOnStoredOrder: Bool { get }
    /// The categories of the events it reads, or `nil` for any: a rebuild of such reducers
    /// alone reads only those events (SQLite skips the rest, undecoded).
    static var categories: Set<EventCategory>? { get }

    /// Applies one newly stored event; returns what the rules ask for.
    mutating func apply(_ event: StoredEvent) -> [LifecycleAction]
    /// The rows changed since the last ``committed()``, to write with the batch.
    func changedRows() -> [CheckpointRow]
    /// The batch's transaction committed: its changes become the base for the next one.
    mutating func committed()
    /// The batch's transaction failed: undoes everything applied since ``committed()``.
    mutating func rollBack()
    /// Takes back one row of its tables (rows come table by table, in key order).
    mutating func load(_ row: CheckpointRow) throws
    /// Forgets all state (before a rebuild from the history).
    mutating func reset()
}

/// A checkpoint row that cannot be read back.
struct CheckpointError: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension CheckpointedReducer {
    static var dependsOnStoredOrder: Bool { false }
    static var categories: Set<EventCategory>? { nil }
}
