import EnnioEvents
import Foundation
import NATSClient

/// Connects to the servers the arguments name. Long-running services (coordinator, agent,
/// sub) reconnect without limit and, when no server answers yet (a container that started
/// first), keep trying to connect for up to a minute.
func connect(_ arguments: Arguments, name: String, longRunning: Bool = false) async throws -> NATSConnection {
    var options = NATSOptions(servers: arguments.servers())
    options.name = name
    guard longRunning else { return try await NATSConnection.connect(options) }
    options.maxReconnectAttempts = -1
    let deadline = ContinuousClock.now + .seconds(60)
    while true {
        do {
            return try await NATSConnection.connect(options)
        } catch let error as NATSError where error.code == .connectionFailed && ContinuousClock.now < deadline {
            printError("\(name): no server yet (\(error.message)); trying again")
            try await Task.sleep(for: .seconds(1))
        }
    }
}

/// `ennio pub`: publishes one event.
enum PublishCommand {
    static let help = """
        usage: ennio pub <EventType> --project P --session S --message M
                         [--priority info|action|urgent|critical] [--data JSON] [--host H] [--id ID]
                         [--mode auto|core|jetstream] [--server URLS]

        Publishes one event to its subject and waits for the server to have it. EventType is the
        name (CiFailing) or the wire name (ci_failing). Node events need --host. With JetStream
        (the default when the server offers it) it waits for the stream's acknowledgement.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["project", "session", "message", "priority", "data", "host", "id", "server", "mode"])
        let durability = try arguments.durability()
        guard arguments.positionals.count == 1 else { throw UsageError("give exactly one event type") }
        guard let type = EventType(named: arguments.positionals[0]) else {
            throw UsageError("unknown event type \(arguments.positionals[0].debugDescription); `ennio topics` lists them")
        }
        var priority = EventPriority.info
        if let text = arguments.value("priority") {
            guard let value = EventPriority(rawValue: text) else { throw UsageError("unknown priority \(text.debugDescription)") }
            priority = value
        }
        var data = JSONValue.null
        if let text = arguments.value("data") {
            do {
                data = try JSONValue(parsing: text)
            } catch {
                throw UsageError("--data is not valid JSON: \(error.detail)")
            }
        }
        let host = arguments.value("host")
        if type.category == .node, host == nil { throw UsageError("node events need --host") }
        if type.category == .node, case .object(var members) = data.isNull ? JSONValue.object([:]) : data, let host {
            members["host"] = members["host"] ?? .string(host)
            data = .object(members)
        }
        let event = Event(
            id: arguments.value("id") ?? EventID.random(), type: type, priority: priority,
            sessionId: arguments.value("session") ?? "", projectId: try arguments.required("project"),
            message: arguments.value("message") ?? "", data: data)
        do {
            _ = try EventSubject.subject(for: event, host: host)
        } catch {
            throw UsageError(error.description)
        }
        let connection = try await connect(arguments, name: "ennio pub")
        let publisher = try EventPublisher(connection: connection, host: host)
        let subject = try EventSubject.subject(for: event, host: host)
        if durability ?? (connection.serverInfo?.jetStream == true) {
            try await EventStream.ensure(JetStream(connection: connection))
            let ack = try await publisher.publishDurably(event)
            print("published \(event.eventType.rawValue) \(event.id) on \(subject): \(ack.duplicate ? "a duplicate of" : "stored as") \(ack.stream) #\(ack.sequence)")
        } else {
            try publisher.publish(event)
            try await connection.flush()
            print("published \(event.eventType.rawValue) \(event.id) on \(subject)")
        }
        await connection.close()
        return 0
    }
}

/// `ennio sub`: prints events as they arrive.
enum SubscribeCommand {
    static let help = """
        usage: ennio sub <pattern> [--count N] [--json] [--server URLS]

        Prints every event on subjects matching the pattern (e.g. 'ennio.>', 'ennio.ci.my-app.*',
        'ennio.node.build-server.*'): time, priority, type, project, session, message — or, with
        --json, each event's JSON on one line. Exits after N events with --count. Payloads that are
        not valid events are reported on standard error.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["count", "server"], flags: ["json"])
        guard arguments.positionals.count == 1 else { throw UsageError("give exactly one pattern") }
        let pattern: EventPattern
        do {
            pattern = try EventPattern(validating: arguments.positionals[0])
        } catch {
            throw UsageError(error.description)
        }
        let limit = try arguments.integer("count", range: 1...Int.max)
        let connection = try await connect(arguments, name: "ennio sub", longRunning: true)
        let report = reportConnectionEvents(of: connection, as: "ennio sub")
        defer { report.cancel() }
        let subscription = try EventSubscription(connection: connection, pattern: pattern)
        try await connection.flush()
        printError("listening on \(pattern.subject)")
        var printed = 0
        for await delivery in subscription {
            switch delivery {
            case .event(let event, let subject):
                printEvent(event, subject: subject, json: arguments.flag("json"))
                printed += 1
            case .malformed(let subject, _, let error):
                printError("malformed event on \(subject): \(error)")
            case .mismatched(let event, let subject):
                printError("event \(event.id) (\(event.eventType)) does not belong on \(subject)")
            }
            if let limit, printed >= limit { break }
        }
        await connection.close()
        return 0
    }

    static func printEvent(_ event: Event, subject: String, json: Bool) {
        let line: String
        if json {
            line = event.jsonString
        } else {
            let session = event.sessionId.isEmpty ? "-" : event.sessionId
            let project = event.projectId.isEmpty ? "-" : event.projectId
            line = "\(event.timestamp.rfc3339)  \(event.priority.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(event.eventType.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0)) project=\(project) session=\(session)  \(event.message)"
        }
        // Unbuffered, so a pipe reader sees each event as it arrives.
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
