public import EnnioEvents

/// A place in the history: the key of one stored event, its timestamp and id (the store's
/// unique key, in the order pages come in). A page that continues "after" a cursor starts with
/// the event that follows that key, so a page costs the same at the start and at the end of a
/// history of any length, and events stored meanwhile neither shift nor repeat what is read.
///
/// Its text form is `<timestamp_ns>:<id>` (for instance `1772738703123456789:5f0c2a4e-…`): the
/// `next` of a history reply, the `after` of a request, the `id:` of an event in the HTTP event
/// stream. The id may contain anything, including `:`, since only the first `:` separates.
/// Inside an event too large for one reply (see ``QueryProtocol``) it is
/// `<timestamp_ns>+<byte>:<id>`: the event itself, from that byte of its JSON on.
public struct HistoryCursor: Sendable, Hashable, CustomStringConvertible, LosslessStringConvertible {
    public var timestampNanoseconds: Int64
    public var id: String
    /// Inside an oversized event: the byte of its JSON where the next part starts; `nil` for
    /// the place after the whole event.
    public var partOffset: Int?

    public init(timestampNanoseconds: Int64, id: String, partOffset: Int? = nil) {
        self.timestampNanoseconds = timestampNanoseconds
        self.id = id
        self.partOffset = partOffset
    }

    /// The place just after `event`.
    public init(after event: Event) {
        self.init(timestampNanoseconds: event.timestamp.nanosecondsSinceEpoch, id: event.id)
    }

    /// Reads the text form; `nil` if it is not one.
    public init?(_ text: String) {
        guard let colon = text.utf8.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let head = text[..<colon]
        let id = String(text[text.index(after: colon)...])
        var offset: Int?
        var stamp = Substring(head)
        if let plus = head.utf8.lastIndex(of: UInt8(ascii: "+")), plus != head.startIndex {
            guard let part = Int(head[head.index(after: plus)...]), part >= 0 else { return nil }
            offset = part
            stamp = head[..<plus]
        }
        guard let nanoseconds = Int64(stamp) else { return nil }
        self.init(timestampNanoseconds: nanoseconds, id: id, partOffset: offset)
    }

    public var description: String {
        if let partOffset { return "\(timestampNanoseconds)+\(partOffset):\(id)" }
        return "\(timestampNanoseconds):\(id)"
    }

    /// The same event, without a part: the place after it.
    var wholeEvent: HistoryCursor { HistoryCursor(timestampNanoseconds: timestampNanoseconds, id: id) }
}
