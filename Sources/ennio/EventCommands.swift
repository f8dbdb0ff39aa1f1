import EnnioEvents
import Foundation
import NATSClient

/// `ennio pub`: publishes one event.
enum PublishCommand {
    static let help = """
        usage: ennio pub <EventType> [--project P] [--session S] [--message M]
                         [--priority info|action|urgent|critical] [--data JSON|@FILE|@-]
                         [--host H] [--id UUID] [--mode auto|core|jetstream] [--replicas N]
                         [--server URLS]

        Publishes one event to its subject and waits for the server to have it. EventType is the
        name (CiFailing) or the wire name (ci_failing); `ennio topics` lists them.

          --project   the project id; required, except for node events (which are about a host)
          --session   the session id (default: empty; for rollout and run events the
                      rollout_id or op_id in --data)
          --message   text for people (default: empty)
          --priority  default info
          --data      the event's data as JSON (default null); @FILE reads it from a file, @- from
                      standard input (for data too large for a command line)
          --host      the host, for node events only (required for them)
          --id        the event's id, a UUID (default: a new random one); publishing the same id
                      again is stored once
          --mode      jetstream waits for the stream's acknowledgement; auto (the default) does
                      when the server offers JetStream. It retries for up to a minute: through a
                      reconnect and the election of a new stream leader on a cluster
          --replicas  the stream's copies, if this creates it (an existing stream is left as
                      it is; `ennio coordinator --replicas` changes it)

        Rollout and run events (HostJoined, StateEntered, …) need --data with their members
        (`ennio topics --markdown`); --project is the channel or project.

        Fails at once when no server answers.
        """

    /// The most `--data` read from a file or standard input: NATS's largest `max_payload`.
    static let maximumDataLength = 64 * 1024 * 1024

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(
            raw, options: ["project", "session", "message", "priority", "data", "host", "id", "server", "mode", "replicas"],
            positionals: ["event type"], connecting: true)
        let durability = try arguments.durability()
        let replicas = try arguments.replicas()
        guard let type = EventType(named: arguments.positionals[0]) else {
            throw UsageError("unknown event type \(arguments.positionals[0].debugDescription); `ennio topics` lists them")
        }
        var priority = EventPriority.info
        if let text = arguments.value("priority") {
            guard let value = EventPriority(rawValue: text) else { throw UsageError("unknown priority \(text.debugDescription) (info, action, urgent, critical)") }
            priority = value
        }
        let host = arguments.value("host")
        if type.category == .node, host == nil { throw UsageError("node events need --host") }
        if type.category != .node, host != nil { throw UsageError("--host is for node events only; \(type.name) is a \(type.category) event") }
        let projectId: String
        if type.category == .node {
            projectId = arguments.value("project") ?? ""
        } else {
            projectId = try arguments.required("project")
        }
        if let id = arguments.value("id"), !EventID.isUUID(id) {
            throw UsageError("--id must be a UUID like 5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60, not \(id.debugDescription)")
        }
        var data = try await self.data(arguments.value("data"))
        if type.category == .node, case .object(var members) = data.isNull ? JSONValue.object([:]) : data, let host {
            members["host"] = members["host"] ?? .string(host)
            data = .object(members)
        }
        let event = Event(
            id: arguments.value("id") ?? EventID.random(), type: type, priority: priority,
            sessionId: arguments.value("session") ?? type.sessionField.flatMap { data[$0]?.stringValue } ?? "", projectId: projectId,
            message: arguments.value("message") ?? "", data: data)
        let subject: String
        do {
            subject = try EventSubject.subject(for: event, host: host)
            try event.validateData()
        } catch {
            throw UsageError(String(describing: error))
        }
        let connection = try await connect(arguments, name: "ennio pub")
        let publisher = try EventPublisher(connection: connection, host: host)
        if durability ?? (connection.serverInfo?.jetStream == true) {
            if try await EventStream.prepareForPublishing(JetStream(connection: connection), replicas: replicas) == nil {
                printError("the stream \(EventStream.name) does not exist yet and this user may not create it (the coordinator creates it): publishing is retried for up to a minute")
            }
            let ack = try await publisher.publishDurably(event)
            print("published \(event.eventType.rawValue) \(event.id) on \(subject): \(ack.duplicate ? "a duplicate of" : "stored as") \(TerminalText(ack.stream)) #\(ack.sequence)")
        } else {
            try publisher.publish(event)
            try await connection.flush()
            print("published \(event.eventType.rawValue) \(event.id) on \(subject)")
        }
        await connection.close()
        return 0
    }

    /// The value of `--data`: JSON text, `@FILE` or `@-` (standard input); `null` without one.
    static func data(_ argument: String?) async throws -> JSONValue {
        guard let argument else { return .null }
        let bytes: [UInt8]
        let source: String
        if argument.hasPrefix("@") {
            let path = String(argument.dropFirst())
            source = path == "-" ? "standard input" : path
            do {
                bytes = try await InputFile.read(path == "-" ? nil : path, limit: maximumDataLength)
            } catch {
                throw UsageError("--data \(argument): \(error)")
            }
        } else {
            bytes = Array(argument.utf8)
            source = "--data"
        }
        do {
            return try JSONValue(parsing: bytes)
        } catch {
            throw UsageError("--data is not valid JSON (\(source)): \(error.detail) at byte \(error.offset)")
        }
    }
}

/// `ennio sub`: prints events as they arrive.
enum SubscribeCommand {
    static let help = """
        usage: ennio sub <pattern> [--count N] [--json] [--server URLS]

        Prints every event on subjects matching the pattern (e.g. 'ennio.>', 'ennio.ci.my-app.*',
        'ennio.node.build-server.*'): time, priority, type, project, session, message — or, with
        --json, each event's JSON on one line, exactly as received. Exits after N events with
        --count. A pattern that can match no event subject is refused, with the reason.

        Commands and queries (ennio.commands.*, ennio.query.*, which 'ennio.>' also matches) are
        not events: they are shown as such, one line each with their body, and not counted; with
        --json they are left out. Payloads on event subjects that are not valid events are
        reported on standard error. Text from the wire is shown with control characters escaped
        (\\n, \\u{1B}, …), so that no publisher can forge lines or drive the terminal.

        Fails at once when no server answers; once connected, it reconnects whenever the
        connection is lost (saying so on standard error) until stopped.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["count", "server"], flags: ["json"], positionals: ["pattern"], connecting: true)
        let pattern: EventPattern
        do {
            pattern = try EventPattern(validating: arguments.positionals[0])
        } catch {
            throw UsageError(error.description)
        }
        let limit = try arguments.integer("count", range: 1...Int.max)
        let json = arguments.flag("json")
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
                printEvent(event, subject: subject, json: json)
                printed += 1
            case .malformed(let subject, let payload, let error):
                if let family = EventSubject.nonEventFamily(of: subject) {
                    if !json { printNonEvent(family: family, subject: subject, payload: payload) }
                } else {
                    printError("malformed event on \(LogText(subject)): \(LogText(error))")
                }
            case .mismatched(let event, let subject):
                printError("event \(LogText(event.id)) (\(event.eventType)) does not belong on \(LogText(subject))")
            }
            if let limit, printed >= limit { break }
        }
        await connection.close()
        if let error = subscription.error {
            throw CommandFailure("\(error.message) (subscribing needs a reader's or an operator's credentials)")
        }
        return 0
    }

    /// One event as a line: its JSON exactly, or its fields for people, with everything its
    /// publisher chose escaped.
    static func printEvent(_ event: Event, subject: String, json: Bool) {
        let line: String
        if json {
            line = event.jsonString
        } else {
            let session = event.sessionId.isEmpty ? "-" : TerminalText(event.sessionId).description
            let project = event.projectId.isEmpty ? "-" : TerminalText(event.projectId).description
            line = "\(event.timestamp.rfc3339)  \(event.priority.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(event.eventType.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0)) project=\(project) session=\(session)  \(TerminalText(event.message))"
        }
        printLine(line)
    }

    /// A command or query, shown as what it is: the time it arrived, its family, subject and body.
    static func printNonEvent(family: String, subject: String, payload: [UInt8]) {
        let kind = family == "commands" ? "command" : family
        let body = payload.isEmpty ? "(no body)" : TerminalText(bytes: payload, limit: 1024).description
        printLine("\(EventTimestamp.now().rfc3339)  \(kind.padding(toLength: 8, withPad: " ", startingAt: 0)) \(TerminalText(subject))  \(body)")
    }

}
