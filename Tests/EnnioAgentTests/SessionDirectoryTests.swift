import EnnioAgent
import EnnioEvents
import Foundation
import Glibc
@testable import NATSTestSupport
import Testing

/// A sessions directory (not yet created) inside a temporary directory removed afterwards.
struct ScratchDirectory {
    let temporary: TemporaryDirectory
    let directory: SessionDirectory

    init() throws {
        temporary = try TemporaryDirectory("ennio-sessions")
        directory = SessionDirectory(path: temporary.path + "/sessions")
    }
}

/// Waits until the session's process is gone (a child of ours is reaped on the way).
func waitUntilGone(_ record: LocalSession) async throws -> SessionProbe.Process {
    var last = SessionProbe.Process.alive
    try await eventually("session \(record.id)'s process to end") {
        last = SessionProcess.probe(record)
        if case .gone = last { return true }
        return false
    }
    return last
}

@Suite struct SessionDirectoryTests {
    @Test func theDefaultDirectoryFollowsXDGStateHomeElseHome() {
        #expect(SessionDirectory.defaultPath(environment: ["XDG_STATE_HOME": "/state", "HOME": "/home/u"]) == "/state/ennio/sessions")
        #expect(SessionDirectory.defaultPath(environment: ["XDG_STATE_HOME": "relative", "HOME": "/home/u"]) == "/home/u/.local/state/ennio/sessions")
        #expect(SessionDirectory.defaultPath(environment: ["HOME": "/home/u"]) == "/home/u/.local/state/ennio/sessions")
    }

    @Test func startingASessionRunsItDetachedAndWritesItsRecord() async throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.directory
        let record = try SessionLauncher.start(project: "p1", session: "s1", command: ["sh", "-c", "echo hi; echo oops >&2; sleep 30"], in: directory)
        defer { SessionProcess.send(SIGKILL, to: record) }
        #expect(record.status == .spawning)
        #expect(record.pid > 0)
        #expect(record.processStartTicks != nil)
        #expect(record.logFile == directory.path + "/p1.s1.log")
        #expect(try directory.read("p1.s1.json").record == record)
        #expect(try directory.find(session: "s1") == record)
        #expect(getsid(record.pid) == record.pid, "a session of its own")
        #expect(getpgid(record.pid) == record.pid, "a process group of its own")
        var info = stat()
        #expect(stat(directory.path, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(directory.file("p1.s1.json"), &info) == 0 && info.st_mode & 0o777 == 0o600)
        try await eventually("the output in the log") {
            let log = (try? String(contentsOfFile: record.logFile, encoding: .utf8)) ?? ""
            return log.contains("hi\n") && log.contains("oops\n")
        }
        #expect(SessionProcess.probe(record) == .alive)

        // The same id again, in any project: refused, and nothing is started.
        for project in ["p1", "p2"] {
            #expect(throws: LocalSessionError.self) { try SessionLauncher.start(project: project, session: "s1", command: ["true"], in: directory) }
        }
        #expect(try directory.names().filter { $0.hasSuffix(".json") } == ["p1.s1.json"])
    }

    @Test func badLaunchesFailClearlyAndLeaveNoRecord() throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.directory
        func failure(_ body: () throws(LocalSessionError) -> LocalSession) -> LocalSessionError? {
            do {
                _ = try body()
                return nil
            } catch {
                return error
            }
        }
        #expect(failure { () throws(LocalSessionError) in try SessionLauncher.start(project: "p 1", session: "s1", command: ["true"], in: directory) }?.field == "project")
        #expect(failure { () throws(LocalSessionError) in try SessionLauncher.start(project: "p1", session: "s/1", command: ["true"], in: directory) }?.field == "session")
        #expect(failure { () throws(LocalSessionError) in try SessionLauncher.start(project: "p1", session: "s1", command: [], in: directory) }?.field == "command")
        let missing = failure { () throws(LocalSessionError) in try SessionLauncher.start(project: "p1", session: "s1", command: ["/no/such/program"], in: directory) }
        #expect(missing?.code == .systemFailure)
        #expect(missing?.description.contains("/no/such/program") == true)
        #expect(try directory.records().isEmpty)
    }

    @Test func aChildOfOursIsReapedWithItsExitStatus() async throws {
        let scratch = try ScratchDirectory()
        let record = try SessionLauncher.start(project: "p1", session: "s1", command: ["sh", "-c", "exit 7"], in: scratch.directory)
        #expect(try await waitUntilGone(record) == .gone(.code(7)))
        #expect(SessionProcess.probe(record) == .gone(nil), "reaped once; after that only gone")
    }

    @Test func aReusedPidOrAnotherBootIsNotTheSessionsProcess() throws {
        var record = LocalSession(id: "s1", project: "p1", pid: getpid(), command: ["x"], logFile: "/dev/null", createdAt: .now())
        record.processStartTicks = SessionProcess.status(of: getpid())?.startTicks
        #expect(SessionProcess.probe(record) == .alive, "this test process is alive")
        record.processStartTicks = (record.processStartTicks ?? 0) + 1
        #expect(SessionProcess.probe(record) == .gone(nil), "same pid, another start time: another process")
        record.processStartTicks = nil
        record.bootId = "not-this-boot"
        #expect(SessionProcess.probe(record) == .gone(nil))
        // Signals go only to the session's own process: this one must survive the test.
        record.processStartTicks = 1
        record.bootId = nil
        #expect(!SessionProcess.send(SIGTERM, to: record))
    }

    @Test func killRequestsAreWrittenBeforeTheSignalAndRefusedForEndedSessions() async throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.directory
        let record = try SessionLauncher.start(project: "p1", session: "s1", command: ["sh", "-c", "sleep 30; echo never"], in: directory)
        #expect(directory.killRequestTime(record) == nil)
        try directory.requestKill(record, by: "a test")
        #expect(directory.killRequestTime(record) != nil)
        #expect(try await waitUntilGone(record) == .gone(.signal(SIGTERM)))
        // The whole group got it: the shell's `sleep` too, so nothing is left to print "never".
        #expect(!((try? String(contentsOfFile: record.logFile, encoding: .utf8)) ?? "").contains("never"))
        #expect(throws: LocalSessionError.self) { try directory.requestKill(record, by: "a test") }
        directory.removeKillRequest(record)
        #expect(directory.killRequestTime(record) == nil)
    }

    @Test func recordsAreReplacedWholeAndListedWithTheirProblems() throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.directory
        try directory.create()
        var record = session()
        let first = try directory.write(record, durable: true)
        record.status = .working
        let second = try directory.write(record, durable: false)
        #expect(first != second)
        #expect(directory.stamp("p1.s1.json") == second)
        #expect(try directory.read("p1.s1.json").record.status == .working)
        try "not json".write(toFile: directory.file("p1.bad.json"), atomically: false, encoding: .utf8)
        try "{}".write(toFile: directory.file("README.json"), atomically: false, encoding: .utf8)
        let records = try directory.records()
        #expect(records.map(\.name) == ["p1.bad.json", "p1.s1.json"], "files not named <project>.<session>.json are not records")
        if case .failure(let error) = records[0].record { #expect(error.code == .malformedJSON) } else { Issue.record("a bad record was read") }
        #expect(try directory.names().allSatisfy { !$0.hasSuffix(".tmp") }, "no temporary file is left")
        #expect(throws: LocalSessionError.self) { try directory.create(record) }
    }
}
