import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient

/// `ennio history`, `ennio sessions`, `ennio nodes`: questions to the coordinator.
enum QueryCommands {
    static let historyHelp = """
        usage: ennio history [--project P] [--session S] [--type T] [--category C]
                             [--min-priority P] [--since RFC3339] [--until RFC3339]
                             [--limit N] [--offset N] [--json] [--server URLS]

        Asks the coordinator for stored events, oldest first (default limit 100, at most 1000).
        """
    static let sessionsHelp = "usage: ennio sessions [--json] [--server URLS]\n\nThe coordinator's live table of sessions."
    static let nodesHelp = "usage: ennio nodes [--json] [--server URLS]\n\nThe coordinator's table of nodes."

    static func history(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(historyHelp)
            return 0
        }
        let arguments = try Arguments(
            raw, options: ["project", "session", "type", "category", "min-priority", "since", "until", "limit", "offset", "server", "timeout"],
            flags: ["json"])
        var query = try filters(from: arguments)
        query.limit = try arguments.integer("limit", range: 1...1000) ?? 100
        query.offset = try arguments.integer("offset") ?? 0

        let reply = try await ask(QueryProtocol.historySubject, body: QueryProtocol.body(for: query), arguments: arguments)
        let page = try QueryProtocol.page(from: reply)
        for event in page.events {
            SubscribeCommand.printEvent(event, subject: "", json: arguments.flag("json"))
        }
        if !arguments.flag("json") {
            let count = Counted(page.events.count, "event")
            if let next = page.nextOffset {
                printError("\(count); more with --offset \(next)")
            } else {
                printError("\(count)")
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
        let arguments = try Arguments(raw, options: ["server", "timeout"], flags: ["json"])
        let reply = try await ask(QueryProtocol.sessionsSubject, body: [], arguments: arguments)
        let sessions = try QueryReplies.sessions(from: reply)
        if arguments.flag("json") {
            printJSON(reply)
            return 0
        }
        printLine("PROJECT              SESSION              STATUS             ACTIVITY     TERMINAL  LAST EVENT")
        for session in sessions {
            let columns = [
                (session.projectId, 20), (session.sessionId, 20), (session.status ?? "-", 18), (session.activity ?? "-", 12),
                (session.terminal ? "yes" : "no", 9),
            ]
            printLine(columns.map { column($0.0, width: $0.1) }.joined(separator: " ") + " " + TerminalText(session.lastEventType).description + " " + TerminalText(session.lastEventAt).description)
        }
        printError("\(Counted(sessions.count, "session"))")
        return 0
    }

    static func nodes(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(nodesHelp)
            return 0
        }
        let arguments = try Arguments(raw, options: ["server", "timeout"], flags: ["json"])
        let reply = try await ask(QueryProtocol.nodesSubject, body: [], arguments: arguments)
        let nodes = try QueryReplies.nodes(from: reply)
        if arguments.flag("json") {
            printJSON(reply)
            return 0
        }
        printLine("HOST                 CONNECTED  LAST SEEN  LOAD")
        for node in nodes {
            let load = node.load.isEmpty ? "-" : node.load.map { String($0) }.joined(separator: " ")
            let seen = node.secondsSinceLastSeen.map { "\($0)s ago" } ?? "-"
            printLine(column(node.host, width: 20) + " " + column(node.connected ? "yes" : "no", width: 10) + " " + column(seen, width: 10) + " " + load)
        }
        printError("\(Counted(nodes.count, "node"))")
        return 0
    }

    /// A table cell: the text escaped, padded to `width` (a longer text is kept whole).
    static func column(_ text: String, width: Int) -> String {
        let shown = TerminalText(text).description
        return shown.count >= width ? shown : shown.padding(toLength: width, withPad: " ", startingAt: 0)
    }

    /// A reply for `--json`: the JSON read and written again, compactly on one line, so that it
    /// is exact JSON whatever the answerer sent (numbers keep their text).
    static func printJSON(_ reply: [UInt8]) {
        if let value = try? JSONValue(parsing: reply) { printLine(value.jsonString) }
    }

    static func ask(_ subject: String, body: [UInt8], arguments: Arguments) async throws -> [UInt8] {
        let timeout = try arguments.seconds("timeout") ?? .seconds(5)
        let connection = try await connect(arguments, name: "ennio query")
        let result: Result<[UInt8], any Error>
        do {
            result = .success(try await connection.request(body, to: subject, timeout: timeout).payload)
        } catch let error as NATSError where error.code == .noResponders {
            result = .failure(CommandFailure("no coordinator is running (nobody answers \(subject))"))
        } catch let error as NATSError where error.code == .timeout {
            result = .failure(CommandFailure("the coordinator did not answer within \(timeout)"))
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
