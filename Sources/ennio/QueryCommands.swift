import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient

/// `ennio history`, `ennio sessions`, `ennio nodes`: questions to the coordinator.
enum QueryCommands {
    static let historyHelp = """
        usage: ennio history [--project P] [--session S] [--type T] [--category C]
                             [--min-priority P] [--since RFC3339] [--until RFC3339]
                             [--newest-first] [--after CURSOR] [--limit N] [--json] [--server URLS]

        Asks the coordinator for stored events, oldest first (--newest-first: latest first), and
        prints them as they arrive, page after page: at most --limit events in all (default 100).
        When more follow, the last line names the cursor to go on from with --after.
        """
    static let sessionsHelp = """
        usage: ennio sessions [--project P] [--json] [--server URLS]

        The coordinator's table of sessions (of one project with --project), page after page as
        it arrives; --json prints each reply, one JSON object a line, as it arrives (a table larger
        than one reply comes as several).
        """
    static let nodesHelp = """
        usage: ennio nodes [--json] [--server URLS]

        The coordinator's table of nodes; --json prints each reply, one JSON object a line.
        """

    static func history(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(historyHelp)
            return 0
        }
        let arguments = try Arguments(
            raw, options: ["project", "session", "type", "category", "min-priority", "since", "until", "limit", "after", "server", "timeout"],
            flags: ["json", "newest-first"], connecting: true)
        var query = try filters(from: arguments)
        let limit = try arguments.integer("limit", range: 1...Int.max) ?? 100
        query.limit = min(limit, HistoryQuery.maximumLimit)
        if arguments.flag("newest-first") { query.order = .newestFirst }
        if let text = arguments.value("after") {
            guard let cursor = HistoryCursor(text) else { throw UsageError("--after must be a cursor as history prints it (<timestamp_ns>:<id>), not \(text.debugDescription)") }
            query.after = cursor
        }
        let json = arguments.flag("json")
        let end = try await asking(QueryProtocol.historySubject, arguments: arguments) { client in
            try await client.history(query, maximum: limit) { event, subject in
                SubscribeCommand.printEvent(event, subject: subject, json: json)
            }
        }
        if !json {
            let events = Counted(end.count, "event")
            if let next = end.next {
                printError("\(events); more with --after '\(TerminalText(next.description))'")
            } else {
                printError("\(events)")
            }
        }
        return 0
    }

    /// The history filters `history` and `replay` share: project, session, type, category,
    /// minimum priority, since, until.
    static func filters(from arguments: Arguments) throws -> HistoryQuery {
        var query = HistoryQuery()
        query.projectId = arguments.value("project")
        query.sessionId = arguments.value("session")
        if let name = arguments.value("type") {
            guard let type = EventType(named: name) else { throw UsageError("unknown event type \(name.debugDescription)") }
            query.eventType = type
        }
        if let name = arguments.value("category") {
            guard let category = EventCategory(rawValue: name) else { throw UsageError("unknown category \(name.debugDescription)") }
            query.category = category
        }
        if let name = arguments.value("min-priority") {
            guard let priority = EventPriority(rawValue: name) else { throw UsageError("unknown priority \(name.debugDescription)") }
            query.minimumPriority = priority
        }
        for (name, keyPath) in [("since", \HistoryQuery.since), ("until", \HistoryQuery.until)] {
            if let text = arguments.value(name) {
                do {
                    query[keyPath: keyPath] = try EventTimestamp(rfc3339: text)
                } catch {
                    throw UsageError("--\(name) must be an RFC 3339 time like 2026-03-05T19:25:03Z")
                }
            }
        }
        return query
    }

    static func sessions(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(sessionsHelp)
            return 0
        }
        let arguments = try Arguments(raw, options: ["project", "server", "timeout"], flags: ["json"], connecting: true)
        let json = arguments.flag("json")
        if !json { printLine("PROJECT              SESSION              STATUS             ACTIVITY     TERMINAL  LAST EVENT") }
        var count = 0
        try await rows(QueryProtocol.sessionsSubject, named: "sessions", query: TableQuery(projectId: arguments.value("project")), json: json, arguments: arguments) { row in
            let session = try QueryReplies.session(row, at: "sessions[\(count)]")
            count += 1
            let columns = [
                (session.projectId, 20), (session.sessionId, 20), (session.status ?? "-", 18), (session.activity ?? "-", 12),
                (session.terminal ? "yes" : "no", 9),
            ]
            printLine(columns.map { column($0.0, width: $0.1) }.joined(separator: " ") + " " + TerminalText(session.lastEventType).description + " " + TerminalText(session.lastEventAt).description)
        }
        if !json { printError("\(Counted(count, "session"))") }
        return 0
    }

    static func nodes(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(nodesHelp)
            return 0
        }
        let arguments = try Arguments(raw, options: ["server", "timeout"], flags: ["json"], connecting: true)
        let json = arguments.flag("json")
        if !json { printLine("HOST                 CONNECTED  LAST SEEN  LOAD") }
        var count = 0
        try await rows(QueryProtocol.nodesSubject, named: "nodes", query: TableQuery(), json: json, arguments: arguments) { row in
            let node = try QueryReplies.node(row, at: "nodes[\(count)]")
            count += 1
            let load = node.load.isEmpty ? "-" : node.load.map { String($0) }.joined(separator: " ")
            let seen = node.secondsSinceLastSeen.map { "\($0)s ago" } ?? "-"
            printLine(column(node.host, width: 20) + " " + column(node.connected ? "yes" : "no", width: 10) + " " + column(seen, width: 10) + " " + load)
        }
        if !json { printError("\(Counted(count, "node"))") }
        return 0
    }

    /// Reads a sessions or nodes table page after page, each reply checked as
    /// ``QueryReplies`` does (an answerer may send anything): with `json`, each reply printed as
    /// one line of exact JSON, else every row handed to `each`.
    static func rows(
        _ subject: String, named name: String, query: TableQuery, json: Bool, arguments: Arguments, each: (JSONValue) throws -> Void
    ) async throws {
        try await asking(subject, arguments: arguments) { client in
            try await client.pages(of: subject, query: query) { bytes in
                let reply = try QueryReplies.document(bytes)
                let rows = try QueryReplies.list(name, in: reply)
                if json {
                    printLine(reply.jsonString)
                } else {
                    for row in rows { try each(row) }
                }
                guard let next = reply["next"], !next.isNull else { return nil }
                guard let text = next.stringValue else { throw QueryReplyError("the reply's next is not a string") }
                return text
            }
        }
    }

    /// A table cell: the text escaped, padded to `width` (a longer text is kept whole).
    static func column(_ text: String, width: Int) -> String {
        let shown = TerminalText(text).description
        return shown.count >= width ? shown : shown.padding(toLength: width, withPad: " ", startingAt: 0)
    }

    /// One request and its reply's bytes (for the queries that are not paged by cursor).
    static func ask(_ subject: String, body: [UInt8], arguments: Arguments) async throws -> [UInt8] {
        try await asking(subject, arguments: arguments) { client in
            try await client.connection.request(body, to: subject, timeout: client.timeout).payload
        }
    }

    /// Connects, runs `body` with a ``QueryClient``, closes; a coordinator that is not there or
    /// does not answer becomes a ``CommandFailure`` that says so.
    @discardableResult
    static func asking<T: Sendable>(_ subject: String, arguments: Arguments, _ body: (QueryClient) async throws -> T) async throws -> T {
        let timeout = try arguments.seconds("timeout") ?? .seconds(5)
        let connection = try await connect(arguments, name: "ennio query")
        let result: Result<T, any Error>
        do {
            result = .success(try await body(QueryClient(connection: connection, timeout: timeout)))
        } catch let error as NATSError where error.code == .noResponders {
            result = .failure(CommandFailure("no coordinator is running (nobody answers \(subject))"))
        } catch let error as NATSError where error.code == .timeout {
            result = .failure(CommandFailure("the coordinator did not answer within \(timeout)"))
        } catch let error as NATSError where error.code == .permissionViolation {
            result = .failure(CommandFailure("\(error.message) (queries need a reader's, an operator's or the coordinator's credentials)"))
        } catch {
            result = .failure(error)
        }
        await connection.close()
        return try result.get()
    }
}



/// A failure to report to the user as it is: exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
