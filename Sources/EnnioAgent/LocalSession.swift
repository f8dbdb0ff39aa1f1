public import EnnioEvents

/// One session on this host: its record in the sessions directory, the file
/// `<project>.<session>.json` (see the README for the format).
///
/// `ennio session start` writes the first version; after that only the agent's lifecycle loop
/// writes it, always whole (a temporary file renamed over the old one).
public struct LocalSession: Sendable, Hashable {
    /// Where a session is in its life, as the Rust implementation names these statuses.
    public enum Status: String, Sendable, Hashable, CaseIterable {
        /// Started; no agent has seen its process yet.
        case spawning
        /// Its process was seen running.
        case working
        /// Its process ended by itself (terminal).
        case exited
        /// Its process was killed through the agent or `ennio session kill` (terminal).
        case killed

        public var isTerminal: Bool { self == .exited || self == .killed }
    }

    /// What a session is doing, judged from its log file and process.
    public enum Activity: String, Sendable, Hashable, CaseIterable {
        /// Output appeared in its log within the idle limit.
        case active
        /// No output for at least the idle limit.
        case idle
        /// Its process is gone.
        case exited
    }

    /// How a process ended, when the agent could learn it (it reaped the process itself).
    public enum ExitStatus: Sendable, Hashable {
        case code(Int32)
        case signal(Int32)
    }

    public var id: String
    public var project: String
    public var status: Status
    /// `nil` until the loop first probes the log.
    public var activity: Activity?
    public var pid: Int32
    /// The program and its arguments, as started.
    public var command: [String]
    /// The file the process writes its output to.
    public var logFile: String
    public var createdAt: EventTimestamp
    /// The process's start time in clock ticks after boot (`/proc/<pid>/stat`, field 22), and
    /// the boot it belongs to: together they tell the session's process from a later one that
    /// was given the same pid. `nil` where unknown (then only the pid is checked).
    public var processStartTicks: UInt64?
    public var bootId: String?
    public var exitStatus: ExitStatus?
    /// When the loop last wrote the record.
    public var updatedAt: EventTimestamp?
    /// Events decided but not yet published (acknowledged, with JetStream). They are written
    /// with the transition that made them and removed once published, so a crash or an
    /// unreachable server loses none and a retry sends the same event ids (stored once). A
    /// terminal record with an empty outbox has been reported.
    public var outbox: [Event] = []

    public init(
        id: String, project: String, status: Status = .spawning, activity: Activity? = nil, pid: Int32,
        command: [String], logFile: String, createdAt: EventTimestamp,
        processStartTicks: UInt64? = nil, bootId: String? = nil
    ) {
        self.id = id
        self.project = project
        self.status = status
        self.activity = activity
        self.pid = pid
        self.command = command
        self.logFile = logFile
        self.createdAt = createdAt
        self.processStartTicks = processStartTicks
        self.bootId = bootId
    }

    /// The record's file name: `<project>.<session>.json`. Both are subject segments, which
    /// contain no dots, so the name splits back unambiguously.
    public static func fileName(project: String, session: String) -> String {
        "\(project).\(session).json"
    }

    public var fileName: String { Self.fileName(project: project, session: id) }

    /// The project and session a record's file name stands for; `nil` for any other file.
    public static func parseFileName(_ name: String) -> (project: String, session: String)? {
        guard name.hasSuffix(".json"), !name.hasPrefix(".") else { return nil }
        let parts = name.dropLast(5).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let project = String(parts[0]), session = String(parts[1])
        guard SubjectSegment.isValid(project), SubjectSegment.isValid(session) else { return nil }
        return (project, session)
    }
}

// MARK: - JSON

extension LocalSession {
    /// The record as JSON (keys sorted, one line).
    public var json: JSONValue {
        var members: [String: JSONValue] = [
            "id": .string(id),
            "project": .string(project),
            "status": .string(status.rawValue),
            "activity": activity.map { .string($0.rawValue) } ?? .null,
            "pid": .int(Int64(pid)),
            "command": .array(command.map(JSONValue.string)),
            "log_file": .string(logFile),
            "created_at": .string(createdAt.rfc3339),
            "process_start_ticks": processStartTicks.map { .int(Int64(clamping: $0)) } ?? .null,
            "boot_id": bootId.map(JSONValue.string) ?? .null,
            "updated_at": updatedAt.map { .string($0.rfc3339) } ?? .null,
            "outbox": .array(outbox.map { (try? JSONValue(parsing: EventCodec.encode($0))) ?? .null }),
        ]
        switch exitStatus {
        case .code(let code)?:
            members["exit_status"] = .int(Int64(code))
        case .signal(let signal)?:
            members["exit_signal"] = .int(Int64(signal))
        case nil:
            break
        }
        return .object(members)
    }

    /// The bytes of the file: the JSON and a newline.
    public var fileContents: [UInt8] {
        var bytes: [UInt8] = []
        json.encode(into: &bytes)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Reads a record from the bytes of its file.
    ///
    /// - Parameter fileName: when given, the record must be the one that name stands for.
    /// - Throws: ``LocalSessionError`` saying which field is missing or wrong.
    public init(parsing bytes: [UInt8], fileName: String? = nil) throws(LocalSessionError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw LocalSessionError(.malformedJSON, detail: error.description)
        }
        guard case .object(let members) = value else { throw LocalSessionError(.malformedJSON, detail: "the record is not a JSON object") }

        func string(_ key: String) throws(LocalSessionError) -> String {
            guard let member = members[key] else { throw LocalSessionError(.missingField, field: key) }
            guard let text = member.stringValue else { throw LocalSessionError(.wrongType, field: key, detail: "expected a string") }
            return text
        }
        func optionalString(_ key: String) throws(LocalSessionError) -> String? {
            guard let member = members[key], !member.isNull else { return nil }
            guard let text = member.stringValue else { throw LocalSessionError(.wrongType, field: key, detail: "expected a string or null") }
            return text
        }
        func timestamp(_ text: String, _ key: String) throws(LocalSessionError) -> EventTimestamp {
            do {
                return try EventTimestamp(rfc3339: text)
            } catch {
                throw LocalSessionError(.invalidValue, field: key, detail: error.description)
            }
        }
        func int32(_ key: String) throws(LocalSessionError) -> Int32? {
            guard let member = members[key], !member.isNull else { return nil }
            guard let number = member.intValue, let value = Int32(exactly: number) else {
                throw LocalSessionError(.wrongType, field: key, detail: "expected a whole number")
            }
            return value
        }

        let id = try string("id")
        let project = try string("project")
        guard SubjectSegment.isValid(id) else { throw LocalSessionError(.invalidValue, field: "id", detail: "\(id.debugDescription) is not a valid session id") }
        guard SubjectSegment.isValid(project) else { throw LocalSessionError(.invalidValue, field: "project", detail: "\(project.debugDescription) is not a valid project id") }
        if let fileName, fileName != Self.fileName(project: project, session: id) {
            throw LocalSessionError(.nameMismatch, detail: "the record is for session \(id) of \(project), but the file is \(fileName)")
        }
        let statusText = try string("status")
        guard let status = Status(rawValue: statusText) else {
            throw LocalSessionError(.invalidValue, field: "status", detail: "unknown status \(statusText.debugDescription)")
        }
        var activity: Activity?
        if let text = try optionalString("activity") {
            guard let known = Activity(rawValue: text) else { throw LocalSessionError(.invalidValue, field: "activity", detail: "unknown activity \(text.debugDescription)") }
            activity = known
        }
        guard let pid = try int32("pid") else { throw LocalSessionError(.missingField, field: "pid") }
        guard pid > 0 else { throw LocalSessionError(.invalidValue, field: "pid", detail: "\(pid) is not a process id") }
        guard let commandValue = members["command"] else { throw LocalSessionError(.missingField, field: "command") }
        guard let elements = commandValue.arrayValue else { throw LocalSessionError(.wrongType, field: "command", detail: "expected an array of strings") }
        var command: [String] = []
        for element in elements {
            guard let text = element.stringValue else { throw LocalSessionError(.wrongType, field: "command", detail: "expected an array of strings") }
            command.append(text)
        }
        let logFile = try string("log_file")
        let createdAt = try timestamp(try string("created_at"), "created_at")

        var processStartTicks: UInt64?
        if let member = members["process_start_ticks"], !member.isNull {
            guard let number = member.intValue, number >= 0 else {
                throw LocalSessionError(.wrongType, field: "process_start_ticks", detail: "expected a whole number ≥ 0")
            }
            processStartTicks = UInt64(number)
        }
        self.init(
            id: id, project: project, status: status, activity: activity, pid: pid, command: command,
            logFile: logFile, createdAt: createdAt, processStartTicks: processStartTicks, bootId: try optionalString("boot_id"))
        if let code = try int32("exit_status") {
            exitStatus = .code(code)
        } else if let signal = try int32("exit_signal") {
            exitStatus = .signal(signal)
        }
        if let text = try optionalString("updated_at") { updatedAt = try timestamp(text, "updated_at") }
        if let member = members["outbox"], !member.isNull {
            guard let elements = member.arrayValue else { throw LocalSessionError(.wrongType, field: "outbox", detail: "expected an array of events") }
            for element in elements {
                do {
                    outbox.append(try EventCodec.decode(element.jsonString))
                } catch {
                    throw LocalSessionError(.invalidValue, field: "outbox", detail: error.description)
                }
            }
        }
    }
}

/// A session record that cannot be used: what is wrong and, where it applies, which field.
public struct LocalSessionError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case malformedJSON = "malformed JSON"
            case missingField = "missing field"
            case wrongType = "wrong type"
            case invalidValue = "invalid value"
            case nameMismatch = "record does not match its file name"
            case systemFailure = "system failure"
            case notFound = "no such session"
            case alreadyExists = "session already exists"
            case notRunning = "session not running"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let malformedJSON = Code(.malformedJSON)
        public static let missingField = Code(.missingField)
        public static let wrongType = Code(.wrongType)
        public static let invalidValue = Code(.invalidValue)
        /// The record's project and session are not the ones its file name says.
        public static let nameMismatch = Code(.nameMismatch)
        /// A file, the directory or a process could not be read, written or started; `detail`
        /// has the system's reason.
        public static let systemFailure = Code(.systemFailure)
        public static let notFound = Code(.notFound)
        public static let alreadyExists = Code(.alreadyExists)
        /// The session is terminal or its process is gone.
        public static let notRunning = Code(.notRunning)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let field: String?
    public let detail: String

    public init(_ code: Code, field: String? = nil, detail: String = "") {
        self.code = code
        self.field = field
        self.detail = detail
    }

    public var description: String {
        if code == .systemFailure { return detail }
        var text = code.description
        if let field { text += " \(field)" }
        if !detail.isEmpty { text += ": \(detail)" }
        return text
    }
}
