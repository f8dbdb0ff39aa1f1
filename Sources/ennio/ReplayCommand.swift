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
            flags: ["republish"], connecting: true)
        var query = try QueryCommands.filters(from: arguments)
        query.limit = HistoryQuery.maximumLimit
        let republish = arguments.flag("republish")
        var skipped = 0
        let end = try await QueryCommands.asking(QueryProtocol.historySubject, arguments: arguments) { client in
            let connection = client.connection
            var client = client
            client.timeout = try arguments.seconds("timeout") ?? .seconds(10)
            let end = try await client.history(query) { event, subject in
                guard republish else {
                    printLine(event.jsonString)
                    return
                }
                // Again on the subject it came on: a node event's host is that subject's (the
                // Rust implementation's node events name a project there and carry no
                // data.host); from an older coordinator that does not say, data.host.
                var host: String?
                if event.eventType.category == .node {
                    host = EventSubject.parse(subject)?.scope ?? LifecycleState.nodeHost(of: event)
                    guard host != nil else {
                        skipped += 1
                        return
                    }
                }
                try EventPublisher(connection: connection, host: host).publish(event)
            }
            try await connection.flush()
            return end
        }
        let count = end.count - skipped
        if skipped > 0 {
            printError("replay: skipped \(skipped) node events whose host is not known (no subject, no data.host)")
        }
        printError("\(republish ? "re-published" : "replayed") \(Counted(count, "event"))")
        return 0
    }
}
