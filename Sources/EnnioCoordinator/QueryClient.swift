public import EnnioEvents
public import NATSClient

/// Asks the coordinator over NATS and follows the replies' cursors page after page, handing
/// each event or row on as it arrives: what `ennio history`, `sessions`, `nodes` and `replay`
/// use. Memory stays one page (or one oversized event being joined from its parts).
public struct QueryClient: Sendable {
    public let connection: NATSConnection
    /// How long to wait for each reply.
    public var timeout: Duration

    public init(connection: NATSConnection, timeout: Duration = .seconds(5)) {
        self.connection = connection
        self.timeout = timeout
    }

    /// Where a read of the history stopped.
    public struct HistoryEnd: Sendable, Hashable {
        /// Events handed on.
        public var count: Int
        /// Where to go on from, when `maximum` stopped it and more events follow; `nil` at the end.
        public var next: HistoryCursor?
    }

    /// Reads the events `query` selects, from `query.after` on, at most `maximum` (all when
    /// `nil`), calling `each` with every event and the subject it came on. Pages ask for at
    /// most `query.limit` events; an event sent in parts is joined before it is handed on.
    ///
    /// - Throws: ``QueryFailure`` for an error reply, `NATSError` (`.noResponders`, `.timeout`,
    ///   …) when no coordinator answers, ``HistoryQueryError`` for a reply that makes no sense.
    @discardableResult
    public func history(
        _ query: HistoryQuery, maximum: Int? = nil, each: (Event, String) async throws -> Void
    ) async throws -> HistoryEnd {
        var query = query
        let pageLimit = query.limit
        var count = 0
        var joining: (key: HistoryCursor, subject: String, size: Int, bytes: [UInt8])?
        while true {
            if let maximum {
                guard count < maximum else { return HistoryEnd(count: count, next: query.after) }
                query.limit = min(pageLimit, maximum - count)
            }
            let message = try await connection.request(QueryProtocol.body(for: query), to: QueryProtocol.historySubject, timeout: timeout)
            let reply = try HistoryReply(parsing: message.payload)
            for (event, subject) in zip(reply.events, reply.subjects) {
                try await each(event, subject)
                count += 1
            }
            if let part = reply.part {
                if part.offset == 0 {
                    joining = (part.key, part.subject, part.size, [])
                    joining?.bytes.reserveCapacity(part.size)
                }
                guard var current = joining, current.key == part.key, current.size == part.size, current.bytes.count == part.offset else {
                    throw HistoryQueryError("the parts of event \(part.key) came out of order")
                }
                joining = nil
                current.bytes += part.data
                guard current.bytes.count <= current.size else { throw HistoryQueryError("event \(part.key) is longer than its size") }
                if current.bytes.count == current.size {
                    try await each(try EventCodec.decode(current.bytes), current.subject)
                    count += 1
                } else {
                    joining = current
                }
            }
            guard let next = reply.next else { return HistoryEnd(count: count, next: nil) }
            if reply.events.isEmpty, reply.part == nil, next == query.after {
                throw HistoryQueryError("the coordinator's reply does not move on from \(next)")
            }
            query.after = next
        }
    }

    /// Reads every session (of `query.projectId`, if set), page after page, calling `each`
    /// with each row as the coordinator sends it (see `topics.md`).
    public func sessions(_ query: TableQuery = TableQuery(), each: (JSONValue) async throws -> Void) async throws {
        try await rows(of: QueryProtocol.sessionsSubject, named: "sessions", query: query, each: each)
    }

    /// Reads every node, page after page.
    public func nodes(_ query: TableQuery = TableQuery(), each: (JSONValue) async throws -> Void) async throws {
        try await rows(of: QueryProtocol.nodesSubject, named: "nodes", query: query, each: each)
    }

    private func rows(of subject: String, named name: String, query: TableQuery, each: (JSONValue) async throws -> Void) async throws {
        try await pages(of: subject, query: query) { bytes in
            let reply = try JSONValue(parsing: bytes)
            try QueryProtocol.throwIfError(reply)
            guard let rows = reply[name]?.arrayValue else { throw HistoryQueryError("the reply has no \(name)") }
            for row in rows { try await each(row) }
            return reply["next"]?.stringValue
        }
    }

    /// Asks for a sessions or nodes table (`subject`) page after page: `each` gets every reply
    /// as it came and returns its `next` (`nil` after the last page), for readers that check
    /// replies their own way.
    public func pages(of subject: String, query: TableQuery, each: ([UInt8]) async throws -> String?) async throws {
        var query = query
        while true {
            let message = try await connection.request(QueryProtocol.body(for: query), to: subject, timeout: timeout)
            guard let next = try await each(message.payload) else { return }
            guard next != query.after else { throw HistoryQueryError("the coordinator's reply does not move on from \(next)") }
            query.after = next
        }
    }
}
