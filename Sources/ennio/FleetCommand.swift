import EnnioEvents
import Foundation
import NATSClient

/// `ennio command`: sends a fleet command to the node agents, as an operator.
enum FleetCommand {
    static let help = """
        usage: ennio command shutdown [--host H] [--server URLS]
               ennio command health-check [--host H] [--wait DURATION] [--server URLS]
               ennio command kill --session S [--host H] [--server URLS]

        Publishes a command on ennio.commands.<command> (see topics.md); with --host only the
        agent of that host obeys, without it every agent does.

          shutdown      the agents say goodbye (node_disconnected) and stop
          health-check  the agents publish a health check at once; this command prints those
                        that arrive within --wait (default 2s) and fails when none does
          kill          the agent kills the session's process (SIGTERM, SIGKILL after 10s) and
                        reports session_killed; --session is required

        In a deployment with permissions only the operator role may send commands; any other
        user is refused by the server, and this command says so (exit status 1).
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["host", "session", "wait", "server"], positionals: ["command"], connecting: true)
        let name = arguments.positionals[0]
        let subjectName: String
        switch name {
        case "shutdown", "kill": subjectName = name
        case "health-check", "health_check": subjectName = "health_check"
        default: throw UsageError("unknown command \(name.debugDescription): shutdown, health-check or kill")
        }
        let host = arguments.value("host")
        if let host {
            do {
                try SubjectSegment.validate(host, role: "host")
            } catch {
                throw UsageError(error.description)
            }
        }
        let session = arguments.value("session")
        if subjectName == "kill", session == nil { throw UsageError("kill needs --session") }
        if subjectName != "kill", session != nil { throw UsageError("--session is for kill only") }
        if subjectName != "health_check", arguments.value("wait") != nil { throw UsageError("--wait is for health-check only") }
        let wait = try arguments.duration("wait", range: .milliseconds(10) ... .seconds(600)) ?? .seconds(2)

        var body: [String: JSONValue] = [:]
        if let host { body["host"] = .string(host) }
        if let session { body["session"] = .string(session) }
        let payload = body.isEmpty ? [] : Array(JSONValue.object(body).jsonString.utf8)
        let subject = try EventSubject.command(subjectName)
        let target = host.map { "the agent of \($0)" } ?? "every agent"

        let connection = try await connect(arguments, name: "ennio command")
        do {
            // Health checks that answer: subscribed before the command goes out.
            let answers = subjectName == "health_check"
                ? try connection.subscribe(to: "\(EventSubject.prefix).node.\(host ?? "*").health_check") : nil
            do {
                try connection.publish(payload, to: subject)
                try await connection.flush()
            } catch let error as NATSError where error.code == .permissionViolation {
                throw CommandFailure("\(error.message) (commands need an operator's credentials)")
            }
            printLine("sent \(name) to \(target) on \(subject)")
            if let answers {
                let answered = await healthChecks(answers, within: wait, stopAfterFirst: host != nil)
                guard answered > 0 else {
                    throw CommandFailure("no health check from \(target) within \(Arguments.describe(wait))")
                }
                printError("\(Counted(answered, "health check")) within \(Arguments.describe(wait))")
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        return 0
    }

    /// Prints the health checks that arrive within `limit`; returns how many did.
    static func healthChecks(_ subscription: NATSSubscription, within limit: Duration, stopAfterFirst: Bool) async -> Int {
        let timer = Task {
            try? await Task.sleep(for: limit)
            try? subscription.unsubscribe()
        }
        defer { timer.cancel() }
        var count = 0
        for await message in subscription {
            guard let event = try? EventCodec.decode(message.payload) else { continue }
            SubscribeCommand.printEvent(event, subject: message.subject, json: false)
            count += 1
            if stopAfterFirst { break }
        }
        return count
    }
}
