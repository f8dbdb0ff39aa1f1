public import EnnioEvents

/// A place in the history: the key of one stored event, its timestamp and id (the store's
/// unique key, in the order history pages come in). A page that continues "after" a cursor
/// starts with the event that follows that key, so a page costs the same at the start and at
/// the end of a history of any length (SQLite walks the `events_key` index from there), and
/// events stored meanwhile neither shift nor repeat what is read.
///
/// Its text form is `<timestamp_ns>:<id>` (for instance `1772738703123456789:5f0c2a4e-…`):
/// the `next` of a history reply, the `after` of a request, the `id:` of an event in the HTTP
/// event stream. Only the first `:` separates, so the id may hold anything.
public struct HistoryCursor: Sendable, Hashable, CustomStringConvertible, LosslessStringConvertible {
    public var timestampNanoseconds: Int64
    public var id: String

    public init(timestampNanoseconds: Int64, id: String) {
        self.timestampNanoseconds = timestampNanoseconds
        self.id = id
    }

    /// The place just after `event`.
    public init(after event: Event) {
        self.init(timestampNanoseconds: event.timestamp.nanosecondsSinceEpoch, id: event.id)
    }

    /// Reads the text form; `nil` if it is not one.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":"), let nanoseconds = Int64(text[..<colon]) else { return nil }
        self.init(timestampNanoseconds: nanoseconds, id: String(text[text.index(after: colon)...]))
    }

    public var description: String { "\(timestampNanoseconds):\(id)" }
}
