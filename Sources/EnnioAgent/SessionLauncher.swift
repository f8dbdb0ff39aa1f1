public import EnnioEvents
import Glibc

/// Starts a session: the command as a detached process (a session and process group of its
/// own, standard input from `/dev/null`, output appended to its log file), then its record in
/// the sessions directory, where the agent's lifecycle loop finds it on its next tick.
public enum SessionLauncher {
    /// Starts `command` as session `session` of `project`.
    ///
    /// - Parameters:
    ///   - logFile: where its output goes; by default `<project>.<session>.log` in the directory.
    /// - Returns: the record written.
    /// - Throws: ``LocalSessionError``: `.invalidValue` for a bad id or an empty command,
    ///   `.alreadyExists` if the directory has a session of that id, `.systemFailure` if the
    ///   command cannot be started or the record written (then the process is killed again).
    public static func start(
        project: String, session: String, command: [String], in directory: SessionDirectory,
        logFile: String? = nil, now: EventTimestamp = .now()
    ) throws(LocalSessionError) -> LocalSession {
        guard SubjectSegment.isValid(project) else {
            throw LocalSessionError(.invalidValue, field: "project", detail: "\(project.debugDescription) is not a valid project id (letters, digits, _ and -)")
        }
        guard SubjectSegment.isValid(session) else {
            throw LocalSessionError(.invalidValue, field: "session", detail: "\(session.debugDescription) is not a valid session id (letters, digits, _ and -)")
        }
        guard let program = command.first, !program.isEmpty else { throw LocalSessionError(.invalidValue, field: "command", detail: "no command given") }
        try directory.create()
        do throws(LocalSessionError) {
            let existing = try directory.find(session: session)
            throw LocalSessionError(.alreadyExists, detail: "session \(session) (project \(existing.project)) is already in \(directory.path)")
        } catch where error.code == .notFound {
            // Free to use.
        }
        let log = logFile ?? directory.logFile(project: project, session: session)
        let pid = try spawn(command, log: log)
        var record = LocalSession(
            id: session, project: project, pid: pid, command: command, logFile: log, createdAt: now,
            processStartTicks: SessionProcess.status(of: pid)?.startTicks, bootId: SessionProcess.currentBootId)
        record.updatedAt = now
        do {
            try directory.create(record)
        } catch {
            SessionProcess.send(SIGKILL, to: record)
            throw error
        }
        return record
    }

    /// `posix_spawnp` with a new session (`setsid`), default signal handling, an empty signal
    /// mask, `/dev/null` as input, output appended to `log`, and no other inherited descriptors
    /// where the C library can close them.
    static func spawn(_ command: [String], log: String) throws(LocalSessionError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if let closeFrom = addCloseFrom { _ = closeFrom.function(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setflags(&attributes, Int16(spawnSetSession | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let result = posix_spawnp(&pid, command[0], &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw LocalSessionError(.systemFailure, field: "command", detail: "cannot start \(command[0].debugDescription): \(SystemError(result))")
        }
        return pid
    }

    /// glibc's `POSIX_SPAWN_SETSID` (spawn.h, glibc 2.26 and later; musl has the same value),
    /// which the Glibc module hides behind `_GNU_SOURCE`.
    private static let spawnSetSession: Int32 = 0x80

    /// `posix_spawn_file_actions_addclosefrom_np` (a GNU extension of glibc 2.34+, not exported
    /// by the Glibc module), looked up at run time.
    private struct CloseFrom: @unchecked Sendable {
        typealias Function = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        let function: Function
    }

    private static let addCloseFrom: CloseFrom? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return CloseFrom(function: unsafeBitCast(symbol, to: CloseFrom.Function.self))
    }()
}
