import EnnioEvents
@testable import NATSTestSupport
import Testing

/// The keys of the coordinator's state buckets: ids as they are where subjects allow them,
/// escaped otherwise, always valid Key-Value keys, and read back to the same ids.
@Suite struct StateBucketKeyTests {
    /// What nats.go and nats-py accept as a key: `[-/_=.a-zA-Z0-9]+`, no `.` first or last, no
    /// empty token.
    static func isValidKey(_ key: String) -> Bool {
        guard let first = key.utf8.first, let last = key.utf8.last, first != UInt8(ascii: "."), last != UInt8(ascii: ".") else { return false }
        return !key.contains("..") && key.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "-/_=.".utf8.contains(byte)
        }
    }

    @Test func idsThatSubjectsAllowAreTheKeyAsTheyAre() {
        #expect(StateBucket.sessionKey(projectId: "my-app", sessionId: "s_1") == "my-app.s_1")
        #expect(StateBucket.nodeKey(host: "build-server") == "build-server")
        #expect(StateBucket.sessionIds(ofKey: "my-app.s_1").map { [$0.projectId, $0.sessionId] } == ["my-app", "s_1"])
        #expect(StateBucket.host(ofKey: "build-server") == "build-server")
    }

    @Test func otherBytesAreEscapedAndComeBack() throws {
        let cases: [(String, String)] = [
            ("build 7", "build=207"), ("s.1", "s=2E1"), ("a=b", "a=3Db"), ("", "="), ("*", "=2A"), (">", "=3E"),
            ("ü", "=C3=BC"), ("a/b", "a=2Fb"), ("x\ny", "x=0Ay"),
        ]
        for (id, token) in cases {
            #expect(StateBucket.escape(id) == token)
            #expect(StateBucket.unescape(Substring(token)) == id)
        }
        let key = try #require(StateBucket.sessionKey(projectId: "p", sessionId: "run #4.2"))
        #expect(key == "p.run=20=234=2E2")
        #expect(Self.isValidKey(key))
        #expect(StateBucket.sessionIds(ofKey: key).map { [$0.projectId, $0.sessionId] } == ["p", "run #4.2"])
    }

    @Test func tokensEscapeNeverMakesAreRefused() {
        // An escaped byte that needs none, lower-case hex, a cut escape, a byte never kept, not
        // UTF-8; keys with the wrong number of tokens.
        for token in ["=41", "=2e", "=2", "a=", "a b", "=FF", "=C3"] {
            #expect(StateBucket.unescape(Substring(token)) == nil, "\(token)")
        }
        #expect(StateBucket.unescape("") == nil)
        #expect(StateBucket.sessionIds(ofKey: "p") == nil)
        #expect(StateBucket.sessionIds(ofKey: "p.s.t") == nil)
        #expect(StateBucket.host(ofKey: "a.b") == nil)
    }

    @Test func randomIdsMakeValidDistinctKeysThatComeBack() {
        var generator = SeededGenerator(seed: 19)
        let alphabet = Array("ab-_Z9 .=*>/\\\"\u{0}\u{7F}éü漢😀")
        var seen: [String: [String]] = [:]
        for _ in 0..<5000 {
            func id() -> String {
                String((0..<Int.random(in: 0...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            }
            let (project, session) = (id(), id())
            guard let key = StateBucket.sessionKey(projectId: project, sessionId: session) else {
                Issue.record("no key for \(project.debugDescription) \(session.debugDescription)")
                continue
            }
            #expect(Self.isValidKey(key), "\(key)")
            let back = StateBucket.sessionIds(ofKey: key)
            #expect(back?.projectId == project && back?.sessionId == session, "\(key)")
            if let other = seen[key] { #expect(other == [project, session], "two sessions share \(key)") }
            seen[key] = [project, session]
        }
    }

    @Test func keysLongerThanTheLimitAreNotMade() {
        let long = String(repeating: "x", count: StateBucket.maximumKeyBytes)
        #expect(StateBucket.nodeKey(host: long) == long)
        #expect(StateBucket.nodeKey(host: long + "x") == nil)
        #expect(StateBucket.sessionKey(projectId: "p", sessionId: String(repeating: " ", count: 400)) == nil)
    }
}
