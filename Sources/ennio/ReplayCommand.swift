import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient

/// `ennio replay`: prints or re-publishes a range of the coordinator's history.
enum ReplayCommand {
    static let help = """
        usage: ennio replay [--project P] [--session S] [--type T] [--category C] [--min-priority P]
                            [--since RFC3339] [--until RFC3339] [--republish] [--server URLS]

        Reads every matching event from the coordinator's history, oldest first, and prints each
        as one line of JSON — or, with --republish, publishes each again to its subject (same id,
        so the stream and the coordinator store it once), so that a new consumer can catch up.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(
            raw, options: ["project", "session", "type", "category", "min-priority", "since", "until", "server", "timeout"],
            flags: ["republish"])
        var query = try QueryCommands.filters(from: arguments)
        query.limit = 1000
        let connection = try await connect(arguments, name: "ennio replay")
        var count = 0
        do {
            while true {
                let reply = try await connection.request(QueryProtocol.body(for: query), to: QueryProtocol.historySubject, timeout: .seconds(10))
                let page = try QueryProtocol.page(from: reply.payload)
                for event in page.events {
                    if arguments.flag("republish") {
                        let host = event.eventType.category == .node ? event.data["host"]?.stringValue : nil
                        try EventPublisher(connection: connection, host: host).publish(event)
                    } else {
                        printLine(event.jsonString)
                    }
                    count += 1
                }
                guard let next = page.nextOffset else { break }
                // Whoever answers could send the same page forever: the offset must move on.
                guard next > query.offset else { throw CommandFailure("the history reply's next_offset \(next) does not move past \(query.offset)") }
                query.offset = next
            }
            try await connection.flush()
        } catch let error as NATSError where error.code == .noResponders {
            await connection.close()
            throw CommandFailure("no coordinator is running (nobody answers \(QueryProtocol.historySubject))")
        }
        await connection.close()
        printError("\(arguments.flag("republish") ? "re-published" : "replayed") \(Counted(count, "event"))")
        return 0
    }
}
