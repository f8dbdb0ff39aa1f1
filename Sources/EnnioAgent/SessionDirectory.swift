public import EnnioEvents
import Glibc

/// The directory of session records on one host, the lifecycle loop's source of truth.
///
/// `<project>.<session>.json` is a session's record (``LocalSession``), `<project>.<session>.log`
/// its output by default, `<project>.<session>.kill` a request to kill it (written before the
/// signal, so the loop can tell a kill from an exit). Records are always written whole: a
/// temporary file (`.<name>.<pid>.tmp`) renamed over the old one, so a reader or a crash never
/// sees half a record. Session ids are unique within a directory, whatever their project.
public struct SessionDirectory: Sendable, Hashable {
    public let path: String

    public init(path: String) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// `$XDG_STATE_HOME/ennio/sessions` (when that is an absolute path), else
    /// `$HOME/.local/state/ennio/sessions`.
    public static func defaultPath(environment: [String: String]) -> String {
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            return state + "/ennio/sessions"
        }
        var home = environment["HOME"] ?? ""
        if home.isEmpty, let entry = getpwuid(getuid()), let directory = entry.pointee.pw_dir {
            home = String(cString: directory)
        }
        return (home.isEmpty ? "." : home) + "/.local/state/ennio/sessions"
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// The default log file of a session.
    public func logFile(project: String, session: String) -> String {
        file("\(project).\(session).log")
    }

    static func killRequestName(forRecord name: String) -> String {
        String(name.dropLast(5)) + ".kill"
    }

    /// Creates the directory (and its parents) if missing, readable by this user only.
    public func create() throws(LocalSessionError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0, errno != EEXIST {
                throw LocalSessionError(.systemFailure, detail: "cannot create \(prefix): \(SystemError(errno))")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw LocalSessionError(.systemFailure, detail: "\(path) is not a directory")
        }
    }

    /// The names of every entry (no `.` and `..`).
    public func names() throws(LocalSessionError) -> [String] {
        guard let directory = opendir(path) else {
            throw LocalSessionError(.systemFailure, detail: "cannot list \(path): \(SystemError(errno))")
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    /// Identifies one version of a file: every write of a record makes a new file, so a new
    /// inode, size or modification time means a new version.
    public struct FileStamp: Sendable, Hashable {
        var inode: UInt64
        var size: Int64
        var modified: Int64

        init(_ info: stat) {
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = EventTimestamp(info.st_mtim).nanosecondsSinceEpoch
        }
    }

    /// The stamp of the file `name`, or `nil` if it does not exist (or cannot be examined).
    public func stamp(_ name: String) -> FileStamp? {
        var info = stat()
        guard stat(file(name), &info) == 0 else { return nil }
        return FileStamp(info)
    }

    /// Records larger than this are refused as unusable.
    public static let maximumRecordSize = 1 << 20

    /// Reads and decodes the record `name`.
    public func read(_ name: String) throws(LocalSessionError) -> (record: LocalSession, stamp: FileStamp) {
        let descriptor = open(file(name), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let number = errno
            throw LocalSessionError(number == ENOENT ? .notFound : .systemFailure, detail: "cannot open \(file(name)): \(SystemError(number))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw LocalSessionError(.systemFailure, detail: "cannot examine \(file(name)): \(SystemError(errno))") }
        guard info.st_size <= Self.maximumRecordSize else {
            throw LocalSessionError(.systemFailure, detail: "\(file(name)) is \(info.st_size) bytes, more than a record can be (\(Self.maximumRecordSize))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var total = 0
        while total < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + total, $0.count - total) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw LocalSessionError(.systemFailure, detail: "cannot read \(file(name)): \(SystemError(errno))") }
            if count == 0 { break }
            total += count
        }
        bytes.removeSubrange(total...)
        return (try LocalSession(parsing: bytes, fileName: name), FileStamp(info))
    }

    /// Writes `record` whole under its file name, replacing any earlier version.
    ///
    /// - Parameter durable: flush the data to the disk before the rename (for transitions whose
    ///   loss in a power cut would matter).
    /// - Returns: the stamp of the new version.
    @discardableResult
    public func write(_ record: LocalSession, durable: Bool) throws(LocalSessionError) -> FileStamp {
        try write(record.fileContents, as: record.fileName, durable: durable, exclusive: false)
    }

    /// Writes the first version of `record`, failing with `.alreadyExists` if a record of that
    /// name is there already (even one written a moment ago by another process).
    @discardableResult
    public func create(_ record: LocalSession) throws(LocalSessionError) -> FileStamp {
        try write(record.fileContents, as: record.fileName, durable: true, exclusive: true)
    }

    private func write(_ contents: [UInt8], as name: String, durable: Bool, exclusive: Bool) throws(LocalSessionError) -> FileStamp {
        let temporary = file(".\(name).\(getpid()).tmp")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw LocalSessionError(.systemFailure, detail: "cannot create \(temporary): \(SystemError(errno))") }
        var failure: String?
        var written = 0
        while written < contents.count, failure == nil {
            let count = contents.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { failure = "cannot write \(temporary): \(SystemError(errno))" } else { written += count }
        }
        if failure == nil, durable, fdatasync(descriptor) != 0 { failure = "cannot flush \(temporary): \(SystemError(errno))" }
        var info = stat()
        if failure == nil, fstat(descriptor, &info) != 0 { failure = "cannot examine \(temporary): \(SystemError(errno))" }
        close(descriptor)
        if failure == nil {
            if exclusive {
                // link() fails if the name exists: nobody else's record is ever replaced.
                if link(temporary, file(name)) != 0 {
                    let number = errno
                    unlink(temporary)
                    if number == EEXIST { throw LocalSessionError(.alreadyExists, detail: "\(file(name)) exists") }
                    throw LocalSessionError(.systemFailure, detail: "cannot create \(file(name)): \(SystemError(number))")
                }
                unlink(temporary)
            } else if rename(temporary, file(name)) != 0 {
                failure = "cannot rename \(temporary) to \(file(name)): \(SystemError(errno))"
            }
        }
        if let failure {
            unlink(temporary)
            throw LocalSessionError(.systemFailure, detail: failure)
        }
        return FileStamp(info)
    }

    /// Every record, by file name: the session, or why it cannot be used.
    public func records() throws(LocalSessionError) -> [(name: String, record: Result<LocalSession, LocalSessionError>)] {
        try names().filter { LocalSession.parseFileName($0) != nil }.sorted().map { name in
            do throws(LocalSessionError) {
                return (name, .success(try read(name).record))
            } catch {
                return (name, .failure(error))
            }
        }
    }

    /// The record of `session`, whatever its project.
    /// - Throws: `.notFound` if there is none; the record's own error if it cannot be used.
    public func find(session: String) throws(LocalSessionError) -> LocalSession {
        for name in try names() {
            guard let parts = LocalSession.parseFileName(name), parts.session == session else { continue }
            return try read(name).record
        }
        throw LocalSessionError(.notFound, detail: "no session \(session.debugDescription) in \(path)")
    }

    /// Asks for `session` to be killed: writes its kill request (so that its end is reported
    /// as `session_killed`), then sends `SIGTERM` to its process group. The caller (the loop or
    /// `ennio session kill`) sends `SIGKILL` if it outlives the grace period.
    ///
    /// - Throws: `.notRunning` if the session is terminal or its process already gone.
    public func requestKill(_ record: LocalSession, by who: String, now: EventTimestamp = .now()) throws(LocalSessionError) {
        guard !record.status.isTerminal, case .alive = SessionProcess.probe(record) else {
            throw LocalSessionError(.notRunning, detail: "session \(record.id) is not running")
        }
        let request: JSONValue = ["requested_at": .string(now.rfc3339), "by": .string(who)]
        var contents: [UInt8] = []
        request.encode(into: &contents)
        contents.append(UInt8(ascii: "\n"))
        _ = try write(contents, as: Self.killRequestName(forRecord: record.fileName), durable: false, exclusive: false)
        SessionProcess.send(SIGTERM, to: record)
    }

    /// When a kill of `record`'s session was requested, `nil` if it was not.
    public func killRequestTime(_ record: LocalSession) -> EventTimestamp? {
        var info = stat()
        guard stat(file(Self.killRequestName(forRecord: record.fileName)), &info) == 0 else { return nil }
        return EventTimestamp(info.st_mtim)
    }

    /// Removes a kill request that has served its purpose.
    public func removeKillRequest(_ record: LocalSession) {
        unlink(file(Self.killRequestName(forRecord: record.fileName)))
    }
}
