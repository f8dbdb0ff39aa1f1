import EnnioEvents
import Glibc

/// What the operating system says about a session's process: alive or gone, the same process
/// or a later one with the same pid, and signals to its process group.
///
/// Liveness is `kill(pid, 0)` (no such process: gone), then `/proc/<pid>/stat`: a zombie is
/// gone, and a start time other than the record's means the pid was reused. A zombie that is
/// this process's own child is reaped with `waitpid`, which gives its exit status.
public enum SessionProcess {
    /// This boot's id (`/proc/sys/kernel/random/boot_id`), `nil` where unavailable.
    public static let currentBootId: String? = {
        guard let text = readSmallFile("/proc/sys/kernel/random/boot_id") else { return nil }
        let trimmed = text.filter { $0 != " " && $0 != "\n" }
        return trimmed.isEmpty ? nil : trimmed
    }()

    /// The state letter and start time (clock ticks after boot) of `pid`, from
    /// `/proc/<pid>/stat`; `nil` if there is no such entry or it cannot be read.
    public static func status(of pid: Int32) -> (state: UInt8, startTicks: UInt64)? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let descriptor = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parseStat(buffer[..<count])
    }

    /// Reads the state (field 3) and start time (field 22) of a `/proc/<pid>/stat` line. The
    /// command name (field 2) is in parentheses and may itself hold spaces and parentheses,
    /// so fields are counted from the last `)`.
    public static func parseStat(_ line: some Collection<UInt8>) -> (state: UInt8, startTicks: UInt64)? {
        let bytes = Array(line)
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
        guard fields.count > 19, let state = fields[0].first else { return nil }
        var ticks: UInt64 = 0
        for digit in fields[19] {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            let (scaled, overflow1) = ticks.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = scaled.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            ticks = sum
        }
        return (state, ticks)
    }

    /// Whether the session's process is alive, with its exit status when this process reaped it.
    public static func probe(_ session: LocalSession) -> SessionProbe.Process {
        if let boot = session.bootId, let current = currentBootId, boot != current { return .gone(nil) }
        if kill(session.pid, 0) != 0, errno == ESRCH { return .gone(nil) }
        guard let status = status(of: session.pid) else {
            // No /proc entry although the process exists: /proc is hidden (hidepid) or absent.
            // Only `waitpid` can say more, and only for a child of ours.
            return reapIfChild(session.pid) ?? .alive
        }
        if let start = session.processStartTicks, status.startTicks != start { return .gone(nil) }
        switch status.state {
        case UInt8(ascii: "Z"), UInt8(ascii: "X"):
            return reapIfChild(session.pid) ?? .gone(nil)
        default:
            return .alive
        }
    }

    /// `waitpid(pid, WNOHANG)`: `.gone` with the status if `pid` was our child and has ended,
    /// `.alive` if it is our child still running, `nil` if it is not our child.
    private static func reapIfChild(_ pid: Int32) -> SessionProbe.Process? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signal = status & 0x7F
                return .gone(signal == 0 ? .code((status >> 8) & 0xFF) : .signal(signal))
            }
            if result == 0 { return .alive }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Sends `signal` to the session's process group (each session leads one), or to the
    /// process alone if it does not lead its group — but only if the pid still belongs to the
    /// session's process. Returns false if the process is gone.
    @discardableResult
    public static func send(_ signal: Int32, to session: LocalSession) -> Bool {
        guard case .alive = probe(session) else { return false }
        let pid = session.pid
        if getpgid(pid) == pid, kill(-pid, signal) == 0 { return true }
        return kill(pid, signal) == 0
    }

    /// The modification time of the file at `path`, or the `errno` of a failed `stat`.
    static func modificationTime(of path: String) -> Result<EventTimestamp, SystemError> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(SystemError(errno)) }
        return .success(EventTimestamp(info.st_mtim))
    }

    static func readSmallFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}

/// An `errno`, with the system's text for it.
struct SystemError: Error, Sendable, Hashable, CustomStringConvertible {
    let number: Int32
    init(_ number: Int32) { self.number = number }
    var description: String { String(cString: strerror(number)) }
}

extension EventTimestamp {
    init(_ time: timespec) {
        self.init(nanosecondsSinceEpoch: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }
}
