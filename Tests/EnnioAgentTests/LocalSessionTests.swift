import EnnioAgent
import EnnioEvents
import Testing

@Suite struct LocalSessionTests {
    @Test func aRecordSurvivesItsOwnFileFormat() throws {
        var record = session(status: .working)
        record.activity = .idle
        record.processStartTicks = 123_456
        record.bootId = "0ae81019-7125-4de3-bcd4-23bec12fcf78"
        record.exitStatus = .signal(15)
        record.updatedAt = at(5)
        record.outbox = [Event(type: .activityChanged, sessionId: "s1", projectId: "p1", timestamp: at(5), message: "m", data: ["prev": "active", "next": "idle"])]
        let bytes = record.fileContents
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(try LocalSession(parsing: bytes, fileName: "p1.s1.json") == record)
        let json = record.json
        #expect(json["status"]?.stringValue == "working")
        #expect(json["log_file"]?.stringValue == "/tmp/p1.s1.log")
        #expect(json["created_at"]?.stringValue == at(1).rfc3339)
        #expect(json["exit_signal"]?.intValue == 15)
        #expect(json["exit_status"] == nil)
        #expect(json["command"]?.arrayValue?.count == 3)

        var exited = session()
        exited.exitStatus = .code(0)
        #expect(try LocalSession(parsing: exited.fileContents).exitStatus == .code(0))
        #expect(try LocalSession(parsing: session().fileContents).activity == nil)
    }

    @Test func theFormatIsTheDocumentedOne() throws {
        // As the README shows it, written by hand: only the required keys.
        let text = #"{"id":"s-1","project":"my-app","status":"working","activity":"active","pid":12345,"command":["sh","-c","echo hi; sleep 2"],"log_file":"/var/log/s-1.log","created_at":"2026-03-05T19:25:03Z"}"#
        let record = try LocalSession(parsing: Array(text.utf8), fileName: "my-app.s-1.json")
        #expect(record.id == "s-1")
        #expect(record.project == "my-app")
        #expect(record.status == .working)
        #expect(record.activity == .active)
        #expect(record.pid == 12345)
        #expect(record.command == ["sh", "-c", "echo hi; sleep 2"])
        #expect(record.outbox.isEmpty)
        #expect(record.processStartTicks == nil)
    }

    @Test(arguments: [
        ("{", LocalSessionError.Code.malformedJSON, nil),
        ("[]", .malformedJSON, nil),
        (#"{"project":"p1","status":"working","pid":1,"command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .missingField, "id"),
        (#"{"id":"s1","project":"p1","status":"working","command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .missingField, "pid"),
        (#"{"id":"s1","project":"p1","status":"working","pid":"1","command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .wrongType, "pid"),
        (#"{"id":"s1","project":"p1","status":"working","pid":0,"command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .invalidValue, "pid"),
        (#"{"id":"s1","project":"p1","status":"sleeping","pid":1,"command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .invalidValue, "status"),
        (#"{"id":"s1","project":"p1","status":"working","activity":"busy","pid":1,"command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .invalidValue, "activity"),
        (#"{"id":"s1","project":"p1","status":"working","pid":1,"command":[1],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .wrongType, "command"),
        (#"{"id":"s1","project":"p1","status":"working","pid":1,"command":[],"log_file":"l","created_at":"yesterday"}"#, .invalidValue, "created_at"),
        (#"{"id":"s.1","project":"p1","status":"working","pid":1,"command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .invalidValue, "id"),
        (#"{"id":"other","project":"p1","status":"working","pid":1,"command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z"}"#, .nameMismatch, nil),
        (#"{"id":"s1","project":"p1","status":"working","pid":1,"command":[],"log_file":"l","created_at":"2026-03-05T19:25:03Z","outbox":[{"id":"x"}]}"#, .invalidValue, "outbox"),
    ] as [(String, LocalSessionError.Code, String?)])
    func unusableRecordsSayWhatIsWrong(text: String, code: LocalSessionError.Code, field: String?) {
        do {
            _ = try LocalSession(parsing: Array(text.utf8), fileName: "p1.s1.json")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(error.field == field, "\(error)")
        }
    }

    @Test func fileNamesSplitIntoProjectAndSession() {
        #expect(LocalSession.fileName(project: "my-app", session: "s-1") == "my-app.s-1.json")
        #expect(LocalSession.parseFileName("my-app.s-1.json")! == ("my-app", "s-1"))
        for name in ["s-1.json", "a.b.c.json", ".p.s.json", "p.s.log", "p.s.kill", "p..json", "p s.s.json", ".p.s.json.1.tmp"] {
            #expect(LocalSession.parseFileName(name) == nil, "\(name)")
        }
    }

    @Test func parsingAProcStatLineCountsFieldsFromTheLastParenthesis() {
        let line = "4242 (we ird) (name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345678 100 18446744073709551615\n"
        let status = SessionProcess.parseStat(Array(line.utf8))
        #expect(status?.state == UInt8(ascii: "S"))
        #expect(status?.startTicks == 987_654)
        #expect(SessionProcess.parseStat(Array("4242 (sh) Z 1 2".utf8)) == nil, "too short")
        #expect(SessionProcess.parseStat(Array("no parenthesis".utf8)) == nil)
    }
}
