import EnnioAgent
import EnnioEvents
import Foundation

/// `ennio session start|list|show|kill`: this host's sessions, as records in the sessions
/// directory that the agent's lifecycle loop watches. Works without a server or an agent.
enum SessionCommand {
    static let help = """
        usage: ennio session <start|list|show|kill> [options]

          start --project P --session S [--log FILE] [--sessions-dir DIR] -- CMD [ARGS…]
                    start CMD detached (a session and process group of its own, input from
                    /dev/null, output appended to FILE, default DIR/P.S.log), write its record
                    and return; the agent reports it on its next tick
          list [--json] [--sessions-dir DIR]
                    every record: session, project, status, activity, pid, and whether the
                    process is alive now
          show S [--sessions-dir DIR]
                    the record of session S (JSON)
          kill S [--grace DURATION] [--sessions-dir DIR]
                    SIGTERM to the session's process group, SIGKILL if it is still alive after
                    the grace period (default 10s); returns once it is gone. The agent reports
                    session_killed (never session_exited).

        DIR defaults to $XDG_STATE_HOME/ennio/sessions, else ~/.local/state/ennio/sessions.
        Durations are written 500ms, 2s, 1m.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        guard let verb = raw.first else {
            print(help)
            return 2
        }
        let rest = Array(raw.dropFirst())
        if verb == "--help" || verb == "-h" || (verb != "start" && (rest.contains("--help") || rest.contains("-h"))) {
            print(help)
            return 0
        }
        switch verb {
        case "start": return try start(rest)
        case "list": return try list(rest)
        case "show": return try show(rest)
        case "kill": return try await kill(rest)
        default: throw UsageError("unknown session command \(verb.debugDescription) (start, list, show or kill)")
        }
    }

    static func directory(_ arguments: Arguments) -> SessionDirectory {
        SessionDirectory(path: arguments.value("sessions-dir") ?? SessionDirectory.defaultPath(environment: ProcessInfo.processInfo.environment))
    }

    static func start(_ raw: [String]) throws -> Int32 {
        // Everything after `--` is the command, --help included.
        let ownArguments = raw.prefix { $0 != "--" }
        if ownArguments.contains("--help") || ownArguments.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["project", "session", "log", "sessions-dir"], command: true)
        let project = try arguments.required("project")
        let session = try arguments.required("session")
        guard !arguments.command.isEmpty else { throw UsageError("give the command to run after --") }
        let record: LocalSession
        do {
            record = try SessionLauncher.start(
                project: project, session: session, command: arguments.command, in: directory(arguments), logFile: arguments.value("log"))
        } catch {
            guard error.code != .invalidValue else { throw UsageError(error.description) }
            throw error
        }
        print("session \(record.id) of \(record.project) started: pid \(record.pid), output in \(record.logFile)")
        return 0
    }

    static func list(_ raw: [String]) throws -> Int32 {
        let arguments = try Arguments(raw, options: ["sessions-dir"], flags: ["json"])
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument \(arguments.positionals[0].debugDescription)") }
        let records = try directory(arguments).records()
        if arguments.flag("json") {
            for (name, result) in records {
                switch result {
                case .success(let record):
                    var json = record.json
                    if case .object(var members) = json {
                        members["process"] = .string(processState(record))
                        json = .object(members)
                    }
                    print(json.jsonString)
                case .failure(let error):
                    print(JSONValue.object(["file": .string(name), "error": .string(error.description)]).jsonString)
                }
            }
            return 0
        }
        print(row("SESSION", "PROJECT", "STATUS", "ACTIVITY", "PID", "PROCESS", "CREATED"))
        for (name, result) in records {
            switch result {
            case .success(let record):
                print(row(record.id, record.project, record.status.rawValue, record.activity?.rawValue ?? "-", "\(record.pid)",
                          processState(record), record.createdAt.rfc3339))
            case .failure(let error):
                let parts = LocalSession.parseFileName(name)
                print(row(parts?.session ?? "?", parts?.project ?? "?", "unusable", "-", "-", "-", escaped(error.description)))
            }
        }
        return 0
    }

    static func show(_ raw: [String]) throws -> Int32 {
        let arguments = try Arguments(raw, options: ["sessions-dir"], positionals: ["the session id"])
        let record = try directory(arguments).find(session: arguments.positionals[0])
        print(record.json.jsonString)
        return 0
    }

    static func kill(_ raw: [String]) async throws -> Int32 {
        let arguments = try Arguments(raw, options: ["sessions-dir", "grace"], positionals: ["the session id"])
        let grace = try arguments.duration("grace", range: .zero ... .seconds(3600)) ?? .seconds(10)
        let directory = directory(arguments)
        let record = try directory.find(session: arguments.positionals[0])
        try directory.requestKill(record, by: "ennio session kill")
        if try await waitUntilGone(record, within: grace) {
            print("session \(record.id) killed (SIGTERM)")
            return 0
        }
        SessionProcess.send(SIGKILL, to: record)
        if try await waitUntilGone(record, within: .seconds(5)) {
            print("session \(record.id) killed (SIGKILL after \(Arguments.describe(grace)))")
            return 0
        }
        printError("ennio session kill: session \(record.id) (pid \(record.pid)) is still alive after SIGKILL")
        return 1
    }

    private static func waitUntilGone(_ record: LocalSession, within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            if case .gone = SessionProcess.probe(record) { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private static func processState(_ record: LocalSession) -> String {
        if case .alive = SessionProcess.probe(record) { return "alive" }
        return "gone"
    }

    private static func row(_ columns: String...) -> String {
        let widths = [16, 16, 9, 9, 8, 8]
        return columns.enumerated().map { index, text in
            index < widths.count ? text.padding(toLength: max(widths[index], text.count + 1), withPad: " ", startingAt: 0) : text
        }.joined()
    }

    /// Text from a file, safe for a terminal: control characters escaped.
    private static func escaped(_ text: String) -> String {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) } ? text.debugDescription : text
    }
}
