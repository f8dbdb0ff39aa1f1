import EnnioEvents
import Testing

@Suite struct EventCodecTests {
    static let issueExample = """
        {"id":"5f0c2a4e-0000-4000-8000-000000000001","event_type":"session_spawned","priority":"info","session_id":"s-1",\
        "project_id":"my-app","timestamp":"2026-03-05T19:25:03.123456789Z","message":"session spawned","data":null}
        """

    @Test func decodesTheRustFormat() throws {
        let event = try Event(json: Self.issueExample)
        #expect(event.id == "5f0c2a4e-0000-4000-8000-000000000001")
        #expect(event.eventType == .sessionSpawned)
        #expect(event.priority == .info)
        #expect(event.sessionId == "s-1")
        #expect(event.projectId == "my-app")
        #expect(event.timestamp.rfc3339 == "2026-03-05T19:25:03.123456789Z")
        #expect(event.message == "session spawned")
        #expect(event.data == .null)
        // Written back byte for byte: same keys, same order, same timestamp.
        #expect(event.jsonString == Self.issueExample)
    }

    @Test(arguments: EventType.allCases)
    func everyTypeRoundTrips(type: EventType) throws {
        for priority in EventPriority.allCases {
            let event = Event(
                type: type, priority: priority, sessionId: "session-\(type.rawValue)", projectId: "project_1",
                timestamp: EventTimestamp(nanosecondsSinceEpoch: 1_700_000_000_123_000_000),
                message: "a \"quoted\" message\nwith ünïcode ✓ and \\ backslash",
                data: ["n": 1, "x": 2.5, "flag": true, "list": [1, "two", nil], "nested": ["deep": ["k": "v"]]])
            let bytes = EventCodec.encode(event)
            let decoded = try EventCodec.decode(bytes)
            #expect(decoded == event)
            #expect(decoded.jsonBytes == bytes)
        }
    }

    @Test func writesTheKeysInTheRustOrder() {
        let event = Event(id: "i", type: .ciFixSent, priority: .urgent, sessionId: "s", projectId: "p",
                          timestamp: EventTimestamp(nanosecondsSinceEpoch: 0), message: "m", data: ["b": 1, "a": 2])
        #expect(event.jsonString == #"{"id":"i","event_type":"ci_fix_sent","priority":"urgent","session_id":"s","project_id":"p","timestamp":"1970-01-01T00:00:00Z","message":"m","data":{"a":2,"b":1}}"#)
    }

    @Test(arguments: ["", ".1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567", ".12345678", ".123456789"])
    func acceptsAnyNumberOfFractionalDigits(fraction: String) throws {
        let json = Self.issueExample.replacingOccurrences(of: ".123456789Z", with: "\(fraction)Z")
        let event = try Event(json: json)
        let digits = fraction.dropFirst()
        let nanos = digits.isEmpty ? 0 : Int64(digits.padding(toLength: 9, withPad: "0", startingAt: 0))!
        #expect(event.timestamp.nanosecondsSinceEpoch % 1_000_000_000 == nanos)
    }

    @Test func toleratesUnknownExtraFields() throws {
        let json = Self.issueExample.replacingOccurrences(of: #""data":null"#, with: #""data":null,"extra":{"any":[1,2]},"version":2"#)
        #expect(try Event(json: json).eventType == .sessionSpawned)
    }

    static let requiredKeys = ["id", "event_type", "priority", "session_id", "project_id", "timestamp", "message", "data"]

    @Test(arguments: requiredKeys)
    func everyKeyIsRequired(key: String) throws {
        var object = try JSONValue(parsing: Self.issueExample)
        guard case .object(var members) = object else { Issue.record("not an object"); return }
        members.removeValue(forKey: key)
        object = .object(members)
        #expect(throws: EventDecodingError(.missingField, field: key, detail: "the key \"\(key)\" is required")) {
            try EventCodec.decode(object.jsonString)
        }
    }

    @Test(arguments: [
        (#"{"#, EventDecodingError.Code.malformedJSON),
        ("", .malformedJSON),
        ("not json", .malformedJSON),
        ("[1,2]", .notAnObject),
        ("42", .notAnObject),
        ("null", .notAnObject),
    ])
    func rejectsWhatIsNotAnEventObject(text: String, code: EventDecodingError.Code) {
        #expect { try EventCodec.decode(text) } throws: { ($0 as? EventDecodingError)?.code == code }
    }

    @Test(arguments: [
        (#""event_type":"session_spawned""#, #""event_type":"session_exploded""#, EventDecodingError.Code.unknownEventType, "event_type"),
        (#""event_type":"session_spawned""#, #""event_type":"SessionSpawned""#, .unknownEventType, "event_type"),
        (#""priority":"info""#, #""priority":"INFO""#, .unknownPriority, "priority"),
        (#""priority":"info""#, #""priority":3"#, .wrongType, "priority"),
        (#""session_id":"s-1""#, #""session_id":null"#, .wrongType, "session_id"),
        (#""id":"5f0c2a4e-0000-4000-8000-000000000001""#, #""id":7"#, .wrongType, "id"),
        (#""2026-03-05T19:25:03.123456789Z""#, #""yesterday""#, .invalidTimestamp, "timestamp"),
        (#""2026-03-05T19:25:03.123456789Z""#, #""2026-13-05T19:25:03Z""#, .invalidTimestamp, "timestamp"),
        (#""2026-03-05T19:25:03.123456789Z""#, #"1772738703"#, .wrongType, "timestamp"),
    ])
    func rejectsBadFieldsWithTheFieldNamed(original: String, replacement: String, code: EventDecodingError.Code, field: String) {
        let json = Self.issueExample.replacingOccurrences(of: original, with: replacement)
        #expect(json != Self.issueExample)
        #expect {
            try Event(json: json)
        } throws: { error in
            let error = error as? EventDecodingError
            return error?.code == code && error?.field == field
        }
    }

    @Test func rejectsTrailingGarbage() {
        #expect(throws: EventDecodingError.self) { try Event(json: Self.issueExample + "x") }
        #expect(throws: EventDecodingError.self) { try Event(json: Self.issueExample + Self.issueExample) }
    }

    @Test func idsAreUniqueUUIDs() {
        let ids = (0..<10_000).map { _ in EventID.random() }
        #expect(Set(ids).count == ids.count)
        // 8-4-4-4-12 lower-case hex digits, version 4, variant 10xx (8, 9, a or b).
        for id in ids {
            let characters = Array(id)
            #expect(characters.count == 36)
            #expect([8, 13, 18, 23].allSatisfy { characters[$0] == "-" }, "\(id)")
            #expect(characters.enumerated().allSatisfy { [8, 13, 18, 23].contains($0.offset) || "0123456789abcdef".contains($0.element) }, "\(id)")
            #expect(characters[14] == "4", "\(id)")
            #expect("89ab".contains(characters[19]), "\(id)")
        }
        // Every hex digit shows up in every free position sooner or later (no stuck bits).
        let free = (0..<36).filter { ![8, 13, 14, 18, 19, 23].contains($0) }
        for position in free {
            #expect(Set(ids.map { Array($0)[position] }).count == 16, "position \(position)")
        }
    }

    @Test func idsMadeOnManyThreadsAtOnceAreAllDifferent() async {
        // The random bytes come from one shared pool: no two callers may get the same ones.
        let batches = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<5_000).map { _ in EventID.random() } }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(batches.count == 40_000)
        #expect(Set(batches).count == batches.count)
    }
}

extension String {
    /// Plain substring replacement (tests only; no Foundation needed).
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    fileprivate func range(of target: String) -> Range<Index>? {
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) {
                return index..<self.index(index, offsetBy: target.count)
            }
            index = self.index(after: index)
        }
        return nil
    }
}
