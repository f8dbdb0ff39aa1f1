public import EnnioEvents

/// The order a history page comes in.
public enum HistoryOrder: String, Sendable, Hashable, CaseIterable {
    /// By timestamp, then id, ascending (the default).
    case oldestFirst = "oldest_first"
    /// By timestamp, then id, descending: the latest events first.
    case newestFirst = "newest_first"
}

/// Which stored events to return, and which page of them. Every filter that is set must match.
public struct HistoryQuery: Sendable, Hashable {
    public static let defaultLimit = 100
    public static let maximumLimit = 1000
    /// The fewest bytes a page may be limited to: room for a reply's envelope.
    public static let minimumBytes = 512

    public var projectId: String?
    public var sessionId: String?
    public var eventType: EventType?
    public var category: EventCategory?
    /// Events of this priority or higher.
    public var minimumPriority: EventPriority?
    /// Events at or after this instant (inclusive).
    public var since: EventTimestamp?
    /// Events before this instant (exclusive).
    public var until: EventTimestamp?
    /// Where the page starts: after this event, in the page's ``order`` (`nil`: at the start).
    public var after: HistoryCursor?
    public var order: HistoryOrder
    /// Events per page, 1...1000.
    public var limit: Int
    /// The most bytes of event JSON per page (a page holds at least one event, however large);
    /// `nil` for no limit but ``limit``. Replies over NATS are also limited by the server's
    /// `max_payload`.
    public var maxBytes: Int?

    public init(
        projectId: String? = nil,
        sessionId: String? = nil,
        eventType: EventType? = nil,
        category: EventCategory? = nil,
        minimumPriority: EventPriority? = nil,
        since: EventTimestamp? = nil,
        until: EventTimestamp? = nil,
        after: HistoryCursor? = nil,
        order: HistoryOrder = .oldestFirst,
        limit: Int = HistoryQuery.defaultLimit,
        maxBytes: Int? = nil
    ) {
        self.projectId = projectId
        self.sessionId = sessionId
        self.eventType = eventType
        self.category = category
        self.minimumPriority = minimumPriority
        self.since = since
        self.until = until
        self.after = after
        self.order = order
        self.limit = limit
        self.maxBytes = maxBytes
    }

    /// Throws if the limit is not in 1...1000 or the byte limit below ``minimumBytes``.
    public func validate() throws(HistoryQueryError) {
        try Self.validatePage(limit: limit, maximum: Self.maximumLimit, maxBytes: maxBytes)
    }

    /// The checks every page request shares: `limit` in 1...`maximum`, `maxBytes` (if any) at
    /// least ``minimumBytes``.
    static func validatePage(limit: Int, maximum: Int, maxBytes: Int?) throws(HistoryQueryError) {
        guard (1...maximum).contains(limit) else {
            throw HistoryQueryError("limit must be between 1 and \(maximum), not \(limit)")
        }
        if let maxBytes, maxBytes < minimumBytes {
            throw HistoryQueryError("max_bytes must be at least \(minimumBytes), not \(maxBytes)")
        }
    }
}

/// A history query that cannot be run as asked.
public struct HistoryQueryError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// One page of history.
public struct HistoryPage: Sendable, Hashable {
    /// In the query's order: by timestamp, then id.
    public var events: [Event]
    /// The subject each event was received on, in the same order.
    public var subjects: [String]
    /// Where the next page starts (pass it as ``HistoryQuery/after``); `nil` when this was the last.
    public var next: HistoryCursor?

    public init(events: [Event], subjects: [String], next: HistoryCursor?) {
        self.events = events
        self.subjects = subjects
        self.next = next
    }
}
