import EnnioEvents
import Testing

/// The cases the codec's fast paths have to get right: escaped keys and names, repeated and
/// unknown keys, strings that need escaping anywhere, long and large values.
@Suite struct EventDecodingEdgeTests {
    static let example = EventCodecTests.issueExample

    private func decoded(_ json: String) throws -> Event {
        try Event(json: json)
    }

    private func failure(_ json: String) -> EventDecodingError? {
        do {
            _ = try Event(json: json)
            return nil
        } catch {
            return error
        }
    }

    @Test func escapedKeysAreRecognised() throws {
        let original = try decoded(Self.example)
        var json = Self.example
        for (key, escaped) in [
            ("id", #"\u0069d"#), ("event_type", #"event\u005ftype"#), ("priority", #"priorit\u0079"#),
            ("session_id", #"\u0073ession_id"#), ("project_id", #"project\u005Fid"#), ("timestamp", #"times\u0074amp"#),
            ("message", #"m\u0065ssage"#), ("data", #"d\u0061t\u0061"#),
        ] {
            json = json.replacingOccurrences(of: "\"\(key)\":", with: "\"\(escaped)\":")
        }
        #expect(!json.contains(#""id":"#))
        #expect(try decoded(json) == original)
    }

    @Test func escapedValuesAreDecoded() throws {
        let original = try decoded(Self.example)
        let json = Self.example
            .replacingOccurrences(of: #""session_spawned""#, with: #""session\u005fspawned""#)
            .replacingOccurrences(of: #""info""#, with: #""\u0069nfo""#)
            .replacingOccurrences(of: #""2026-03-05T19:25:03.123456789Z""#, with: #""2026\u002d03-05T19:25:03.123456789\u005a""#)
            .replacingOccurrences(of: #""s-1""#, with: #""s\u002d1""#)
        #expect(try decoded(json) == original)
    }

    @Test func theLastOfARepeatedKeyWins() throws {
        func with(_ extra: String) -> String {
            Self.example.replacingOccurrences(of: #""data":null"#, with: #""data":null,"# + extra)
        }
        let urgent = try decoded(with(#""priority":"urgent""#))
        #expect(urgent.priority == .urgent)
        #expect(try decoded(with(#""id":"second","id":"third""#)).id == "third")
        #expect(try decoded(with(#""data":{"k":1}"#)).data == ["k": 1])
        #expect(try decoded(with(#""event_type":"ci_passing""#)).eventType == .ciPassing)
        #expect(try decoded(with(#""timestamp":"1970-01-01T00:00:01Z""#)).timestamp.nanosecondsSinceEpoch == 1_000_000_000)
        // A bad value overwritten by a good one is fine; a good one overwritten by a bad one is not.
        let badFirst = Self.example
            .replacingOccurrences(of: #""event_type":"session_spawned""#, with: #""event_type":"nope","priority":"NOPE","timestamp":"never""#)
            .replacingOccurrences(of: #""data":null"#, with: #""data":null,"event_type":"pr_merged","priority":"critical","timestamp":"2000-01-01T00:00:00Z""#)
        let event = try decoded(badFirst)
        #expect(event.eventType == .prMerged)
        #expect(event.priority == .critical)
        #expect(event.timestamp.rfc3339 == "2000-01-01T00:00:00Z")
        #expect(failure(with(#""event_type":"nope""#))
            == EventDecodingError(.unknownEventType, field: "event_type", detail: #"unknown event type "nope""#))
        #expect(failure(with(#""priority":"INFO""#))
            == EventDecodingError(.unknownPriority, field: "priority", detail: #"unknown priority "INFO""#))
        #expect(failure(with(#""timestamp":"2026-02-30T00:00:00Z""#))?.code == .invalidTimestamp)
        // A repeated key of the wrong type fails even if an earlier one was right.
        #expect(failure(with(#""message":7"#)) == EventDecodingError(.wrongType, field: "message", detail: "expected a string, found a number"))
    }

    @Test func errorsAreReportedInTheSameOrder() {
        // Missing keys before bad names, then the type, the priority, the timestamp.
        let allBad = Self.example
            .replacingOccurrences(of: #""session_spawned""#, with: #""bogus_type""#)
            .replacingOccurrences(of: #""info""#, with: #""bogus""#)
            .replacingOccurrences(of: #""2026-03-05T19:25:03.123456789Z""#, with: #""bogus""#)
        #expect(failure(allBad)?.code == .unknownEventType)
        #expect(failure(allBad.replacingOccurrences(of: #","data":null"#, with: ""))?.code == .missingField)
        let badPriorityAndTime = allBad.replacingOccurrences(of: #""bogus_type""#, with: #""pr_closed""#)
        #expect(failure(badPriorityAndTime) == EventDecodingError(.unknownPriority, field: "priority", detail: #"unknown priority "bogus""#))
        let badTime = badPriorityAndTime.replacingOccurrences(of: #""priority":"bogus""#, with: #""priority":"action""#)
        #expect(failure(badTime)?.code == .invalidTimestamp)
        #expect(failure(badTime)?.field == "timestamp")
        #expect(failure(badTime)?.detail == #"invalid RFC 3339 timestamp "bogus": expected 4 digits for the year"#)
    }

    @Test func wrongTypesNameTheFieldHoweverTheKeyIsWritten() {
        let json = Self.example.replacingOccurrences(of: #""session_id":"s-1""#, with: #""session\u005fid":["s-1"]"#)
        #expect(failure(json) == EventDecodingError(.wrongType, field: "session_id", detail: "expected a string, found an array"))
        let number = Self.example.replacingOccurrences(of: #""event_type":"session_spawned""#, with: #""event_type":1.5"#)
        #expect(failure(number) == EventDecodingError(.wrongType, field: "event_type", detail: "expected a string, found a number"))
    }

    @Test func keysThatOnlyLookLikeTheFieldsAreIgnored() throws {
        let original = try decoded(Self.example)
        var extras: [String] = []
        for key in ["i", "idd", "ID", "Id", " id", "id ", "event_type ", "eventType", "data2", "", "messages", "timestam", "\\u0000id"] {
            extras.append("\"\(key)\":[\"ignored\",{\"id\":1}]")
        }
        let json = Self.example.replacingOccurrences(of: #"{"id""#, with: "{" + extras.joined(separator: ",") + #","id""#)
        #expect(try decoded(json) == original)
        #expect(failure(json.replacingOccurrences(of: #""id":"5f0c2a4e-0000-4000-8000-000000000001","#, with: ""))
            == EventDecodingError(.missingField, field: "id", detail: #"the key "id" is required"#))
    }

    @Test func whitespaceAnywhere() throws {
        let original = try decoded(Self.example)
        let inside = String(Self.example.dropFirst().dropLast())
            .replacingOccurrences(of: "\":", with: "\" \t:\n ")
            .replacingOccurrences(of: ",\"", with: " ,\r\n\"")
        let spaced = " \n\t{ \r\n" + inside + "\n}\t "
        #expect(try decoded(spaced) == original)
    }

    @Test func nonASCIIAndEscapesInEveryString() throws {
        for text in ["é", "€uro", "😀", "\"", "\\", "\n", "\u{1}", "\u{7F}", "tab\there", "/slash/", "✓ \"quoted\" ✓"] {
            for position in [0, 3, 7, 8, 9, 15, 16, 17] {
                var message = String(repeating: "m", count: 20)
                message.insert(contentsOf: text, at: message.index(message.startIndex, offsetBy: position))
                let event = Event(
                    id: "id-" + text, type: .ciFixSent, priority: .action, sessionId: text + "-session", projectId: "p" + text,
                    timestamp: EventTimestamp(nanosecondsSinceEpoch: 1_700_000_000_000_000_123), message: message,
                    data: [text: .string(message), "k": [.string(text)]]
                )
                let bytes = EventCodec.encode(event)
                #expect(bytes == EncodingReference.event(event), "\(text) at \(position)")
                #expect(try EventCodec.decode(bytes) == event)
            }
        }
    }
}

@Suite struct EventEncodingEdgeTests {
    private static func event(message: String = "m", data: JSONValue = .null) -> Event {
        Event(
            id: "00000000-0000-4000-8000-000000000001", type: .reviewChangesRequested, priority: .critical,
            sessionId: "session-1", projectId: "project-1",
            timestamp: EventTimestamp(nanosecondsSinceEpoch: 1_772_738_703_123_456_789), message: message, data: data
        )
    }

    @Test(arguments: [0, 1, 7, 8, 100, 127, 128, 129, 600, 5_000])
    func messagesNeedingMoreRoomThanReserved(escapes: Int) throws {
        // Escapes beyond the spare room make the encoder write the event again with exact room.
        for escape in ["\"", "\n", "\u{1}"] {
            let message = "start " + String(repeating: escape, count: escapes) + " end"
            let event = Self.event(message: message)
            let bytes = EventCodec.encode(event)
            #expect(bytes == EncodingReference.event(event))
            #expect(try EventCodec.decode(bytes) == event)
        }
    }

    @Test func longAndLargeEvents() throws {
        let long = String(repeating: "0123456789abcdef", count: 1_500)  // 24 000 bytes
        var members: [String: JSONValue] = [:]
        for index in 0..<40 { members["key-\(index)-\(index % 3 == 0 ? "é" : "")"] = .string("value \(index) \"q\"") }
        let cases: [Event] = [
            Self.event(message: long),
            Self.event(message: long + "\"" + long),
            Self.event(data: .string(long)),
            Self.event(data: .string(long + "\n" + long)),
            Self.event(data: .object(members)),
            Self.event(data: ["list": .array((0..<3_000).map { .int(Int64($0) * 1_000_003) }), "nested": .object(members)]),
            Self.event(data: ["doubles": [0.1, -2.5e-300, 1e300, 12345.678, -0.0, 3.0]]),
        ]
        for event in cases {
            let bytes = EventCodec.encode(event)
            #expect(bytes == EncodingReference.event(event))
            #expect(try EventCodec.decode(bytes) == event)
            var appended = Array("prefix".utf8)
            EventCodec.encode(event, into: &appended)
            #expect(appended == Array("prefix".utf8) + bytes)
        }
    }

    @Test func smallDataOfAnyLength() throws {
        // A small object or array is written into what is left of a stack-sized piece without
        // measuring it first: too long, and the event is written again with exact room. Also
        // with messages long enough that it is measured first.
        for messageLength in [10, 300, 600, 700, 900] {
            for length in [0, 100, 400, 600, 650, 700, 750, 800, 850, 900, 1_000, 3_000] {
                for filler in ["v", "\"", "é"] {
                    let text = String(repeating: filler, count: length)
                    let message = String(repeating: "m", count: messageLength)
                    for data: JSONValue in [
                        ["k": .string(text)],
                        ["a": 1, "b": .string(text), "c": [.string(text), 2.5]],
                        [.string(text), .string(text), nil, true, -7],
                        .array((0..<8).map { .string(String(text.prefix($0 * 40))) }),
                        .object(Dictionary(uniqueKeysWithValues: (0..<8).map { ("key \($0) " + text.prefix($0 * 30), .int(Int64($0))) })),
                        .array((0..<9).map { _ in .string(text) }),
                    ] {
                        let event = Self.event(message: message, data: data)
                        let bytes = EventCodec.encode(event)
                        #expect(bytes == EncodingReference.event(event), "\(messageLength) \(length) \(filler)")
                        #expect(try EventCodec.decode(bytes) == event)
                    }
                }
            }
        }
    }

    @Test func objectKeysInByteOrder() {
        let keys = ["b", "a", "ab", "", "é", "e", "z", "Z", "a\u{301}", "😀", "\u{FFFD}", "aa", "a\"", "a\n", "A"]
        var members: [String: JSONValue] = [:]
        for (index, key) in keys.enumerated() { members[key] = .int(Int64(index)) }
        for count in 0...keys.count {
            let value = JSONValue.object(members.filter { member in keys.prefix(count).contains(member.key) })
            #expect(value.jsonString == String(decoding: EncodingReference.value(value), as: UTF8.self))
            let event = Self.event(data: value)
            #expect(EventCodec.encode(event) == EncodingReference.event(event))
        }
    }

    @Test func eventsInsideAnArray() {
        let first = Self.event(message: "one")
        let second = Self.event(message: "two \"2\"", data: ["k": [1, 2]])
        var writer = JSONWriter()
        writer.beginArray()
        EventCodec.write(first, to: &writer)
        EventCodec.write(second, to: &writer)
        writer.endArray()
        #expect(writer.bytes == Array("[".utf8) + EncodingReference.event(first) + Array(",".utf8) + EncodingReference.event(second) + Array("]".utf8))
    }

    @Test func everyLengthWithASpecialAtEveryPosition() {
        // Strings are checked and copied eight bytes at a time, the last eight overlapping.
        for special in ["\"", "\\", "\n", "\u{1}", "\u{1F}", "é", "\u{7F}"] {
            for length in 0..<40 {
                let plain = String(repeating: "p", count: length)
                #expect(JSONValue.string(plain).jsonString == EncodingReference.string(plain))
                for position in 0...length {
                    var text = plain
                    text.insert(contentsOf: special, at: text.index(text.startIndex, offsetBy: position))
                    #expect(JSONValue.string(text).jsonString == EncodingReference.string(text), "\(length) \(position)")
                    // Twice in one string, and in a key.
                    let twice = text + special
                    #expect(JSONValue.object([twice: .string(twice)]).jsonString == "{" + EncodingReference.string(twice) + ":" + EncodingReference.string(twice) + "}")
                }
            }
        }
    }

    @Test func writerValuesMatchTheReference() {
        let long = String(repeating: "ab\"cd\\ef\u{1}", count: 3_000)  // escapes all along a long string
        let values: [JSONValue] = [
            .string(long),
            .string(String(repeating: "x", count: 20_000)),
            .array([.string(long), .null, .bool(false), ["k": .string(long)]]),
            .object(["big": .array((0..<5_000).map { .string("item \($0)") }), "small": 1]),
            .string(String(repeating: "\"", count: 300)),
        ]
        for value in values {
            var writer = JSONWriter()
            writer.beginArray()
            writer.int(1)
            writer.value(value)
            writer.string(long)
            writer.endArray()
            let expected = Array("[1,".utf8) + EncodingReference.value(value) + Array(",".utf8) + EncodingReference.value(.string(long)) + Array("]".utf8)
            #expect(writer.bytes == expected)
        }
    }

    @Test func timestampsTheFastWayAndTheLongWayAgree() throws {
        // A final Z is read by a fast path, an offset by the scanner: the same instants.
        for text in [
            "2026-03-05T19:25:03Z", "2026-03-05T19:25:03.1Z", "2026-03-05t19:25:03.123456789123z", "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59.999999999Z", "0001-01-01T00:00:00Z", "2262-04-11T23:47:16.854775807Z",
            "1677-09-21T00:12:43.145224192Z", "1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775808Z",
            "1900-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
            "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z",
            "0000-01-01T00:00:00Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00", "2026-01-01 00:00:00Z",
        ] {
            let utc = Result { () throws(JSONError) in try EventTimestamp(rfc3339: text) }
            let withOffset = String(text.dropLast()) + "+00:00"
            let offset = Result { () throws(JSONError) in try EventTimestamp(rfc3339: withOffset) }
            switch (utc, offset) {
            case (.success(let left), .success(let right)): #expect(left == right, "\(text)")
            case (.failure(let left), .failure(let right)): #expect(left.code == right.code, "\(text)")
            default:
                // Only a text without a zone may be valid with one added.
                #expect(!text.hasSuffix("Z") && !text.hasSuffix("z"), "\(text): \(utc) vs \(offset)")
            }
        }
    }
}

/// A plain, obviously correct encoder to compare the fast one with: scalar by scalar escaping
/// as serde_json does, object keys ordered by their UTF-8 bytes, the event's keys in the Rust
/// order. Doubles are taken from `JSONWriter`, whose formatting is tested on its own.
enum EncodingReference {
    static func event(_ event: Event) -> [UInt8] {
        var out = "{\"id\":" + string(event.id)
        out += ",\"event_type\":" + string(event.eventType.rawValue)
        out += ",\"priority\":" + string(event.priority.rawValue)
        out += ",\"session_id\":" + string(event.sessionId)
        out += ",\"project_id\":" + string(event.projectId)
        out += ",\"timestamp\":" + string(event.timestamp.rfc3339)
        out += ",\"message\":" + string(event.message)
        return Array((out + ",\"data\":").utf8) + value(event.data) + Array("}".utf8)
    }

    static func value(_ value: JSONValue) -> [UInt8] {
        switch value {
        case .null: return Array("null".utf8)
        case .bool(let flag): return Array((flag ? "true" : "false").utf8)
        case .int(let number): return Array(String(number).utf8)
        case .number(let number): return Array(number.text.utf8)
        case .double:
            var writer = JSONWriter()
            writer.value(value)
            return writer.bytes
        case .string(let text): return Array(string(text).utf8)
        case .array(let elements):
            return Array("[".utf8) + Array(elements.map { Self.value($0) }.joined(separator: Array(",".utf8))) + Array("]".utf8)
        case .object(let members):
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            let parts = sorted.map { Array(string($0.key).utf8) + Array(":".utf8) + Self.value($0.value) }
            return Array("{".utf8) + Array(parts.joined(separator: Array(",".utf8))) + Array("}".utf8)
        }
    }

    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{8}": out += "\\b"
            case "\u{C}": out += "\\f"
            case "\u{0}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
