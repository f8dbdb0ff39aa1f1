@testable import EnnioEvents
@testable import NATSTestSupport
import Testing

private func parse(_ text: String) throws(JSONError) -> JSONValue {
    try JSONValue(parsing: text)
}

private func parseError(_ bytes: [UInt8]) -> JSONError? {
    do {
        _ = try JSONValue(parsing: bytes)
        return nil
    } catch {
        return error
    }
}

private func written(_ body: (inout JSONWriter) -> Void) -> String {
    var writer = JSONWriter()
    body(&writer)
    return String(decoding: writer.bytes, as: UTF8.self)
}

/// Runs `body` with a streaming reader over `text`.
@discardableResult
private func withReader<T>(_ text: String, _ body: (inout JSONReader) throws(JSONError) -> T) throws(JSONError) -> T {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBufferPointer { buffer in
        Result { () throws(JSONError) in
            var reader = JSONReader(bytes: buffer)
            return try body(&reader)
        }
    }.get()
}

@Suite struct JSONParsingTests {
    @Test func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse("true") == .bool(true))
        #expect(try parse("false") == .bool(false))
        #expect(try parse("0") == .int(0))
        #expect(try parse("-12") == .int(-12))
        #expect(try parse("1.5") == .double(1.5))
        #expect(try parse("\"hi\"") == .string("hi"))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object([:]))
    }

    @Test func whitespaceAroundAndInside() throws {
        let value = try parse(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] , \"b\" : { } }\r\n ")
        #expect(value == ["a": [1, 2], "b": [:]])
    }

    @Test func nestedDocument() throws {
        let text = #"{"name":"ennio","tags":["a","b"],"count":3,"ratio":0.25,"ok":true,"none":null,"inner":{"deep":[[],[{}]]}}"#
        let expected: JSONValue = [
            "name": "ennio", "tags": ["a", "b"], "count": 3, "ratio": 0.25, "ok": true, "none": nil,
            "inner": ["deep": [[], [[:]]]],
        ]
        #expect(try parse(text) == expected)
    }

    @Test func duplicateKeysLastWins() throws {
        #expect(try parse(#"{"a":1,"b":2,"a":3}"#) == ["a": 3, "b": 2])
    }

    @Test func everyEscape() throws {
        let value = try parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\u0000""#)
        #expect(value == .string("\"\\/\u{8}\u{C}\n\r\tAé€\u{0}"))
    }

    @Test func surrogatePairs() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""\uD834\uDD1E x""#) == .string("𝄞 x"))
        #expect(try parse(#""a\uDBFF\uDFFFb""#) == .string("a\u{10FFFF}b"))
    }

    @Test func rawUTF8() throws {
        #expect(try parse("\"héllo € 😀 日本\"") == .string("héllo € 😀 日本"))
        // Long enough for the eight-byte scan, with special bytes at every position.
        for position in 0..<24 {
            var text = String(repeating: "a", count: 24)
            text.insert("é", at: text.index(text.startIndex, offsetBy: position))
            #expect(try parse("\"\(text)\"") == .string(text))
            var escaped = String(repeating: "b", count: 24)
            escaped.insert(contentsOf: "\\n", at: escaped.index(escaped.startIndex, offsetBy: position))
            var expected = String(repeating: "b", count: 24)
            expected.insert("\n", at: expected.index(expected.startIndex, offsetBy: position))
            #expect(try parse("\"\(escaped)\"") == .string(expected))
        }
    }

    @Test func parsesFromManyCollections() throws {
        let bytes = Array(#"xx[1,"two"]"#.utf8)
        #expect(try JSONValue(parsing: bytes[2...]) == [1, "two"])
        #expect(try JSONValue(parsing: bytes.dropFirst(2).lazy.map { $0 }) == [1, "two"])
        #expect(try JSONValue(parsing: #"[1,"two"]"#.utf8) == [1, "two"])
        #expect(try JSONValue(parsing: Substring("  [1,\"two\"] ").utf8) == [1, "two"])
    }

    @Test func numbers() throws {
        #expect(try parse("0") == .int(0))
        #expect(try parse("9223372036854775807") == .int(.max))
        #expect(try parse("-9223372036854775808") == .int(.min))
        #expect(try parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try parse("-9223372036854775809") == .double(-9_223_372_036_854_775_808))
        #expect(try parse("123456789012345678901234567890") == .double(1.2345678901234568e29))
        #expect(try parse("1E2") == .double(100))
        #expect(try parse("1e+2") == .double(100))
        #expect(try parse("25e-1") == .double(2.5))
        #expect(try parse("0.1") == .double(0.1))
        #expect(try parse("-0.0") == .double(0))
        #expect(try parse("1e308") == .double(1e308))
        #expect(try parse("1.7976931348623157e308") == .double(.greatestFiniteMagnitude))
        #expect(try parse("2.2250738585072014e-308") == .double(.leastNormalMagnitude))
        #expect(try parse("4.9406564584124654e-324") == .double(.leastNonzeroMagnitude))
        #expect(try parse("1e-400") == .double(0))
        #expect(try parse("0e999999999999999999999") == .double(0))
        #expect(try parse("0.30000000000000004") == .double(0.1 + 0.2))
        #expect(try parse("3.141592653589793") == .double(.pi))
        #expect(try parse("100000000000000000000000") == .double(1e23))
        // Exactly halfway between 1 and the next Double: ties to even; one more digit rounds up.
        #expect(try parse("1.00000000000000011102230246251565404236316680908203125") == .double(1))
        #expect(try parse("1.00000000000000011102230246251565404236316680908203126") == .double(1.0000000000000002))
        #expect(try parse("[1,-2.5e3,0]") == [1, -2500.0, 0])
    }

    @Test func negativeZeroKeepsItsSign() throws {
        for text in ["-0", "-0.0", "-0e5", "-0E-3"] {
            let value = try parse(text)
            #expect(value.doubleValue == 0)
            #expect(value.doubleValue?.sign == .minus, "\(text)")
        }
        #expect(try parse("0").intValue == 0)
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func doublesMatchTheStandardLibrary(seed: UInt64) throws {
        var generator = SeededGenerator(state: seed)
        for _ in 0..<5_000 {
            // Any finite Double, through its shortest text.
            let bits = Double(bitPattern: generator.next())
            if bits.isFinite {
                let parsed = try parse(bits.description).doubleValue
                #expect(parsed?.bitPattern == bits.bitPattern || (bits == 0 && parsed == 0), "\(bits)")
            }
            // Random decimal text, compared with Double(String).
            let digitCount = Int.random(in: 1...22, using: &generator)
            var text = Bool.random(using: &generator) ? "-" : ""
            text += String(Int.random(in: 1...9, using: &generator))
            for _ in 1..<digitCount { text += String(Int.random(in: 0...9, using: &generator)) }
            let point = Int.random(in: 0...digitCount, using: &generator)
            if point < digitCount - 1 {
                text.insert(".", at: text.index(text.endIndex, offsetBy: -(digitCount - point - 1)))
            }
            if Bool.random(using: &generator) { text += "e\(Int.random(in: -330...310, using: &generator))" }
            let expected = Double(text)!
            if expected.isFinite {
                let value = try parse(text)
                if case .int(let integer) = value {
                    #expect(Double(integer) == expected, "\(text)")
                } else {
                    #expect(value.doubleValue?.bitPattern == expected.bitPattern, "\(text)")
                }
            } else {
                #expect(throws: JSONError.self) { try parse(text) }
            }
        }
    }
}

@Suite struct JSONInvalidInputTests {
    static let cases: [(String, JSONError.Code)] = [
        ("", .unexpectedEnd),
        ("   ", .unexpectedEnd),
        ("[", .unexpectedEnd),
        ("[1,", .unexpectedEnd),
        ("[1", .unexpectedEnd),
        (#"{"a""#, .unexpectedEnd),
        (#"{"a":"#, .unexpectedEnd),
        (#"{"a":1"#, .unexpectedEnd),
        (#""abc"#, .unexpectedEnd),
        (#""ab\"#, .unexpectedEnd),
        (#""\u12"#, .unexpectedEnd),
        (#""\ud83d"#, .unexpectedEnd),
        ("tru", .unexpectedEnd),
        ("nul", .unexpectedEnd),
        ("-", .unexpectedEnd),
        ("1.", .unexpectedEnd),
        ("1e", .unexpectedEnd),
        ("1e+", .unexpectedEnd),
        ("trux", .unexpectedCharacter),
        ("nulL", .unexpectedCharacter),
        ("True", .unexpectedCharacter),
        ("[1 2]", .unexpectedCharacter),
        ("[1,]", .unexpectedCharacter),
        ("[,1]", .unexpectedCharacter),
        (#"{"a":1,}"#, .unexpectedCharacter),
        ("{a:1}", .unexpectedCharacter),
        (#"{"a" 1}"#, .unexpectedCharacter),
        (#"{"a":1 "b":2}"#, .unexpectedCharacter),
        ("[1}", .unexpectedCharacter),
        (#"{"a":1]"#, .unexpectedCharacter),
        ("'a'", .unexpectedCharacter),
        ("NaN", .unexpectedCharacter),
        ("Infinity", .unexpectedCharacter),
        ("undefined", .unexpectedCharacter),
        ("-Infinity", .invalidNumber),
        ("+1", .invalidNumber),
        (".5", .invalidNumber),
        ("01", .invalidNumber),
        ("-01", .invalidNumber),
        ("00", .invalidNumber),
        ("1.x", .invalidNumber),
        ("1.e5", .invalidNumber),
        ("1ex", .invalidNumber),
        ("-a", .invalidNumber),
        ("1e400", .invalidNumber),
        ("-1e400", .invalidNumber),
        ("[1e309]", .invalidNumber),
        (#""\x""#, .invalidString),
        (#""\U0041""#, .invalidString),
        (#""\u12g4""#, .invalidString),
        (#""\ud83d""#, .invalidString),
        (#""\ude00""#, .invalidString),
        (#""\ud83dx""#, .invalidString),
        (#""\ud83d\u0041""#, .invalidString),
        (#""\ud83d\n""#, .invalidString),
        ("\"a\nb\"", .invalidString),
        ("\"tab\there\"", .invalidString),
        ("\"\u{1F}\"", .invalidString),
        ("1 2", .trailingData),
        ("{} x", .trailingData),
        (#""a""b""#, .trailingData),
        ("[1]]", .trailingData),
        ("truex", .trailingData),
        ("1a", .trailingData),
        ("0x10", .trailingData),
    ]

    @Test func invalidTexts() {
        for (text, code) in Self.cases {
            let error = parseError(Array(text.utf8))
            #expect(error?.code == code, "\(text.debugDescription) gave \(String(describing: error))")
        }
    }

    @Test func invalidUTF8() throws {
        let cases: [([UInt8], JSONError.Code)] = [
            ([0x22, 0xC3, 0x28, 0x22], .invalidString),  // missing continuation
            ([0x22, 0x80, 0x22], .invalidString),  // lone continuation byte
            ([0x22, 0xC0, 0x80, 0x22], .invalidString),  // overlong NUL
            ([0x22, 0xC1, 0xBF, 0x22], .invalidString),  // overlong
            ([0x22, 0xE0, 0x80, 0x80, 0x22], .invalidString),  // overlong 3-byte
            ([0x22, 0xED, 0xA0, 0x80, 0x22], .invalidString),  // encoded surrogate
            ([0x22, 0xF0, 0x80, 0x80, 0x80, 0x22], .invalidString),  // overlong 4-byte
            ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], .invalidString),  // above U+10FFFF
            ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], .invalidString),
            ([0x22, 0xFF, 0x22], .invalidString),
            ([0x22, 0xE2, 0x82], .unexpectedEnd),  // truncated
            ([0xEF, 0xBB, 0xBF, 0x31], .unexpectedCharacter),  // a byte order mark is not JSON
        ]
        for (bytes, code) in cases {
            #expect(parseError(bytes)?.code == code, "\(bytes)")
        }
        // The largest valid sequences of each length are fine.
        #expect(try JSONValue(parsing: [0x22, 0xDF, 0xBF, 0xEF, 0xBF, 0xBF, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]) == .string("\u{7FF}\u{FFFF}\u{10FFFF}"))
        #expect(try JSONValue(parsing: [0x22, 0xED, 0x9F, 0xBF, 0xEE, 0x80, 0x80, 0x22]) == .string("\u{D7FF}\u{E000}"))
    }

    @Test func offsetsPointAtTheProblem() {
        #expect(parseError(Array("[1,]".utf8))?.offset == 3)
        #expect(parseError(Array("  x".utf8))?.offset == 2)
        #expect(parseError(Array("[1] 2".utf8))?.offset == 4)
        #expect(parseError(Array("\"ab\u{1}\"".utf8))?.offset == 3)
        #expect(parseError(Array(#"["x\q"]"#.utf8))?.offset == 3)
        #expect(parseError(Array("".utf8))?.offset == 0)
        let error = parseError(Array("[1,]".utf8))
        #expect(error?.description.contains("unexpectedCharacter") == true)
        #expect(error?.description.contains("byte 3") == true)
    }

    @Test func depthLimit() throws {
        let limit = JSONReader.maximumDepth
        #expect(limit == 256)
        let deepArrays = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(throws: Never.self) { try parse(deepArrays) }
        let tooDeepArrays = "[" + deepArrays + "]"
        #expect(parseError(Array(tooDeepArrays.utf8))?.code == .tooDeep)

        let deepObjects = String(repeating: #"{"a":"#, count: limit) + "1" + String(repeating: "}", count: limit)
        #expect(throws: Never.self) { try parse(deepObjects) }
        let tooDeepObjects = String(repeating: #"{"a":"#, count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)
        #expect(parseError(Array(tooDeepObjects.utf8))?.code == .tooDeep)

        // Unclosed nesting far beyond the limit stops at the limit rather than overflowing.
        #expect(parseError(Array(String(repeating: "[", count: 100_000).utf8))?.code == .tooDeep)

        // Skipping counts depth the same way.
        try withReader(tooDeepArrays) { reader throws(JSONError) in
            #expect(throws: JSONError.self) { try reader.skipValue() }
        }
        try withReader(deepArrays) { reader throws(JSONError) in
            try reader.skipValue()
            try reader.expectEnd()
        }
        // So does reading a member inside a streamed object.
        let wrapped = #"{"x":"# + String(repeating: "[", count: limit) + String(repeating: "]", count: limit) + "}"
        try withReader(wrapped) { reader throws(JSONError) in
            var caught: JSONError?
            do throws(JSONError) {
                try reader.readObject { _, reader throws(JSONError) in _ = try reader.readValue() }
            } catch {
                caught = error
            }
            #expect(caught?.code == .tooDeep)
        }
    }
}

@Suite struct JSONValueTests {
    @Test func literalsAndAccessors() {
        let value: JSONValue = ["s": "text", "i": 42, "d": 2.5, "b": false, "n": nil, "a": [1, "x"]]
        #expect(value["s"]?.stringValue == "text")
        #expect(value["i"]?.intValue == 42)
        #expect(value["i"]?.doubleValue == 42)
        #expect(value["d"]?.doubleValue == 2.5)
        #expect(value["d"]?.intValue == nil)
        #expect(value["b"]?.boolValue == false)
        #expect(value["n"]?.isNull == true)
        #expect(value["a"]?[1] == "x")
        #expect(value["a"]?[2] == nil)
        #expect(value["a"]?.arrayValue?.count == 2)
        #expect(value.objectValue?.count == 6)
        #expect(value["missing"] == nil)
        #expect(JSONValue.string("x")["key"] == nil)
        #expect(JSONValue.int(1).stringValue == nil)
        #expect(JSONValue.null.isNull)
        #expect(!JSONValue.bool(false).isNull)
        let repeated: JSONValue = ["k": 1, "k": 2]
        #expect(repeated == ["k": 2])
    }

    @Test func encodingIsCompactWithSortedKeys() {
        let value: JSONValue = ["b": 1, "a": [true, nil, 1.5, "x"], "aa": [:], "B": [], "é": "e", "z": -3]
        #expect(value.jsonString == #"{"B":[],"a":[true,null,1.5,"x"],"aa":{},"b":1,"z":-3,"é":"e"}"#)
        #expect(value.description == value.jsonString)
        // UTF-8 byte order, not UTF-16 order: U+FFFF (EF BF BF) sorts before U+1F600 (F0 9F 98 80).
        let astral: JSONValue = ["😀": 1, "\u{FFFF}": 2, "~": 3]
        #expect(astral.jsonString == "{\"~\":3,\"\u{FFFF}\":2,\"😀\":1}")
    }

    @Test func encodeAppends() {
        var buffer = Array("prefix ".utf8)
        JSONValue.array([1, 2]).encode(into: &buffer)
        JSONValue.object(["k": "v"]).encode(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"prefix [1,2]{"k":"v"}"#)
    }

    @Test func roundTripsThroughText() throws {
        let value: JSONValue = [
            "text": "quote \" backslash \\ slash / newline \n tab \t nul \u{0} bell \u{7} unicode é 😀",
            "numbers": [0, -1, .int(.max), .int(.min), 0.5, -0.0, 1e300, .double(.leastNonzeroMagnitude), 1e16, 123_456.789],
            "nested": ["deeper": [["x": nil]]],
            "flags": [true, false],
            "": "empty key",
        ]
        let text = value.jsonString
        #expect(try parse(text) == value)
        var bytes: [UInt8] = []
        value.encode(into: &bytes)
        #expect(try JSONValue(parsing: bytes) == value)
        #expect(try parse(text).jsonString == text)
    }

    @Test func randomValuesRoundTrip() throws {
        var generator = SeededGenerator(state: 0xE221)
        func randomString() -> String {
            let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\u{0}", "\u{1F}", "\u{7F}", "é", "€", "😀", "\u{FFFF}"]
            var text = ""
            for _ in 0..<Int.random(in: 0...20, using: &generator) {
                text.unicodeScalars.append(pool.randomElement(using: &generator)!)
            }
            return text
        }
        func randomValue(depth: Int) -> JSONValue {
            switch Int.random(in: 0...(depth > 3 ? 5 : 7), using: &generator) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &generator))
            case 2: return .int(Int64(bitPattern: generator.next()) >> Int64.random(in: 0...63, using: &generator))
            case 3:
                let number = Double(bitPattern: generator.next())
                return .double(number.isFinite ? number : 0.5)
            case 4, 5: return .string(randomString())
            case 6: return .array((0..<Int.random(in: 0...5, using: &generator)).map { _ in randomValue(depth: depth + 1) })
            default:
                var members: [String: JSONValue] = [:]
                for _ in 0..<Int.random(in: 0...5, using: &generator) {
                    let key = String((0..<Int.random(in: 0...6, using: &generator)).map { _ in "abcxyzAB_-".randomElement(using: &generator)! })
                    members[key] = randomValue(depth: depth + 1)
                }
                return .object(members)
            }
        }
        for _ in 0..<2_000 {
            let value = randomValue(depth: 0)
            let text = value.jsonString
            let back = try parse(text)
            #expect(back == value, "\(text)")
            #expect(back.jsonString == text)
        }
    }
}

@Suite struct JSONWriterTests {
    @Test func doubles() {
        let cases: [(Double, String)] = [
            (1, "1.0"), (-1, "-1.0"), (0, "0.0"), (-0.0, "-0.0"), (0.5, "0.5"), (-2.25, "-2.25"),
            (100_000, "100000.0"), (1e15, "1000000000000000.0"), (1e16, "1e16"), (1.5e300, "1.5e300"),
            (1e21, "1e21"), (1e-7, "1e-7"), (1.25e-5, "1.25e-5"), (0.0001, "0.0001"), (.leastNonzeroMagnitude, "5e-324"),
            (1e308, "1e308"), (.greatestFiniteMagnitude, "1.7976931348623157e308"), (0.1 + 0.2, "0.30000000000000004"),
            (123_456.789, "123456.789"), (9_007_199_254_740_992, "9007199254740992.0"),
            (.infinity, "null"), (-.infinity, "null"), (.nan, "null"),
        ]
        for (number, text) in cases {
            #expect(written { $0.double(number) } == text, "\(number)")
        }
    }

    @Test func wholeDoublesMatchDescription() {
        var generator = SeededGenerator(state: 7)
        for _ in 0..<10_000 {
            let number = Double(Int64.random(in: -999_999_999_999_999...999_999_999_999_999, using: &generator))
                / [1, 10, 1000, 1e6].randomElement(using: &generator)!
            let expected = number.description.replacingExponent()
            #expect(written { $0.double(number) } == expected, "\(number)")
        }
    }

    @Test func integers() {
        #expect(written { $0.int(0) } == "0")
        #expect(written { $0.int(-7) } == "-7")
        #expect(written { $0.int(1_234_567_890) } == "1234567890")
        #expect(written { $0.int(.max) } == "9223372036854775807")
        #expect(written { $0.int(.min) } == "-9223372036854775808")
    }

    @Test func stringEscaping() {
        let text = "\"\\/\n\r\t\u{8}\u{C}\u{0}\u{1}\u{1F}\u{7F} é€😀"
        #expect(written { $0.string(text) } == #""\"\\/\n\r\t\b\f\u0000\u0001\u001f"# + "\u{7F} é€😀\"")
        #expect(written { $0.string("") } == "\"\"")
        #expect(written { $0.string("plain ascii that is long enough for several words") } == "\"plain ascii that is long enough for several words\"")
    }

    @Test func escapingAtEveryPosition() throws {
        // A special byte at each position of a string longer than the eight-byte scan.
        func reference(_ text: String) -> String {
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\u{1}": out += "\\u0001"
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        for special in ["\"", "\\", "\n", "\u{1}", "é", "😀"] {
            for position in 0..<20 {
                var text = String(repeating: "x", count: 19)
                text.insert(contentsOf: special, at: text.index(text.startIndex, offsetBy: position))
                let output = written { $0.string(text) }
                #expect(output == reference(text))
                #expect(try parse(output) == .string(text))
            }
        }
    }

    @Test func structureAndSeparators() {
        let text = written { writer in
            writer.beginObject()
            writer.key("a")
            writer.int(1)
            writer.key("list")
            writer.beginArray()
            writer.int(1)
            writer.string("two")
            writer.beginObject()
            writer.endObject()
            writer.beginArray()
            writer.endArray()
            writer.null()
            writer.bool(true)
            writer.double(0.5)
            writer.endArray()
            writer.key("empty")
            writer.beginObject()
            writer.endObject()
            writer.key("v")
            writer.value(["y": 1, "x": [nil]])
            writer.endObject()
        }
        #expect(text == #"{"a":1,"list":[1,"two",{},[],null,true,0.5],"empty":{},"v":{"x":[null],"y":1}}"#)
    }

    @Test func bytesWrittenDirectlyCountAsAValue() {
        // As the event encoder writes a pre-formatted timestamp.
        let text = written { writer in
            writer.beginObject()
            writer.key("t")
            writer.bytes.append(contentsOf: Array("\"raw\"".utf8))
            writer.key("next")
            writer.int(2)
            writer.endObject()
        }
        #expect(text == #"{"t":"raw","next":2}"#)
    }

    @Test func appendsToAnExistingBuffer() {
        var writer = JSONWriter(bytes: Array("[9]".utf8))
        writer.beginObject()
        writer.key("k")
        writer.string("v")
        writer.endObject()
        writer.int(5)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #"[9]{"k":"v"}5"#)
        var reserved = JSONWriter(reservingCapacity: 64)
        reserved.null()
        #expect(reserved.bytes == Array("null".utf8))
    }
}

@Suite struct JSONReaderTests {
    @Test func streamingAnObject() throws {
        let text = #"""
        {"id":"e-1","n":-5,"skip":{"a":[1,2,{"b":null}],"s":"x\"y"},"flag":true,"d":1.5,"whole":2,
         "nothing":null,"something":"here","arr":[1,2,3],"unread":[{"x":1}],"last":false}
        """#
        var keys: [String] = []
        var id = "", number: Int64 = 0, flag = false, ratio = 0.0, whole = 0.0
        var nothingWasNull = false, somethingWasNull = true, something = ""
        var array: [Int64] = []
        try withReader(text) { reader throws(JSONError) in
            try reader.readObject { key, reader throws(JSONError) in
                keys.append(key)
                switch key {
                case "id": id = try reader.readString()
                case "n": number = try reader.readInt()
                case "skip": try reader.skipValue()
                case "flag": flag = try reader.readBool()
                case "d": ratio = try reader.readDouble()
                case "whole": whole = try reader.readDouble()
                case "nothing": nothingWasNull = try reader.readNull()
                case "something":
                    somethingWasNull = try reader.readNull()
                    something = try reader.readString()
                case "arr": try reader.readArray { reader throws(JSONError) in array.append(try reader.readInt()) }
                case "unread": break  // not consumed: skipped for us
                default: _ = try reader.readValue()
                }
            }
            try reader.expectEnd()
        }
        #expect(keys == ["id", "n", "skip", "flag", "d", "whole", "nothing", "something", "arr", "unread", "last"])
        #expect(id == "e-1")
        #expect(number == -5)
        #expect(flag)
        #expect(ratio == 1.5)
        #expect(whole == 2)
        #expect(nothingWasNull)
        #expect(!somethingWasNull)
        #expect(something == "here")
        #expect(array == [1, 2, 3])
    }

    @Test func emptyContainers() throws {
        var calls = 0
        try withReader(" { } ") { reader throws(JSONError) in
            try reader.readObject { _, _ throws(JSONError) in calls += 1 }
            try reader.expectEnd()
        }
        try withReader("[ ]") { reader throws(JSONError) in
            try reader.readArray { _ throws(JSONError) in calls += 1 }
        }
        #expect(calls == 0)
    }

    @Test func typeMismatches() throws {
        func code(_ text: String, _ body: (inout JSONReader) throws(JSONError) -> Void) -> JSONError.Code? {
            do {
                try withReader(text, body)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code("12") { reader throws(JSONError) in _ = try reader.readString() } == .typeMismatch)
        #expect(code("null") { reader throws(JSONError) in _ = try reader.readString() } == .typeMismatch)
        #expect(code("\"x\"") { reader throws(JSONError) in _ = try reader.readInt() } == .typeMismatch)
        #expect(code("1.5") { reader throws(JSONError) in _ = try reader.readInt() } == .typeMismatch)
        #expect(code("1e3") { reader throws(JSONError) in _ = try reader.readInt() } == .typeMismatch)
        #expect(code("true") { reader throws(JSONError) in _ = try reader.readDouble() } == .typeMismatch)
        #expect(code("0") { reader throws(JSONError) in _ = try reader.readBool() } == .typeMismatch)
        #expect(code("[1]") { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .typeMismatch)
        #expect(code("{}") { reader throws(JSONError) in try reader.readArray { _ throws(JSONError) in } } == .typeMismatch)
        #expect(code("") { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .unexpectedEnd)
        #expect(code("x") { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .unexpectedCharacter)
        // A type mismatch needs a valid value of another type; otherwise the syntax error wins.
        #expect(code("not json") { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .unexpectedCharacter)
        #expect(code("[1,") { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .unexpectedEnd)
        #expect(code(#""\q""#) { reader throws(JSONError) in _ = try reader.readInt() } == .invalidString)
        #expect(code("[1,2] x") { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .typeMismatch)
        #expect(code("{} 1") { reader throws(JSONError) in
            try reader.readObject { _, _ throws(JSONError) in }
            try reader.expectEnd()
        } == .trailingData)
        #expect(code(#"{"a" 1}"#) { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .unexpectedCharacter)
        #expect(code(#"{"a":1,}"#) { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .unexpectedCharacter)
        #expect(code(#"{"a":01}"#) { reader throws(JSONError) in try reader.readObject { _, _ throws(JSONError) in } } == .invalidNumber)
        // A member body that throws stops the walk with its error.
        #expect(code(#"{"a":1}"#) { reader throws(JSONError) in
            try reader.readObject { key, _ throws(JSONError) in throw JSONError(.missingField, offset: 0, detail: key) }
        } == .missingField)
    }

    @Test func readNullLeavesOtherValues() throws {
        try withReader("  7") { reader throws(JSONError) in
            #expect(try reader.readNull() == false)
            #expect(try reader.readInt() == 7)
            try reader.expectEnd()
        }
        try withReader("nul") { reader throws(JSONError) in
            #expect(throws: JSONError.self) { try reader.readNull() }
        }
    }

    @Test func skipValueValidates() throws {
        for bad in [#"{"a":[1,2}"#, #""\q""#, "[01]", "[1e999]", "\"\u{1}\"", "{\"a\"}", "[tru]"] {
            let error: JSONError? = {
                do throws(JSONError) {
                    try withReader(bad) { reader throws(JSONError) in try reader.skipValue() }
                    return nil
                } catch {
                    return error
                }
            }()
            #expect(error != nil, "\(bad)")
        }
        try withReader(#" {"a":[1,-2.5e3,{"b":"\u00e9\ud83d\ude00"}],"c":true,"d":null} "#) { reader throws(JSONError) in
            try reader.skipValue()
            #expect(reader.offset == 62)
            try reader.expectEnd()
        }
    }

    @Test func readValueLeavesTheRest() throws {
        try withReader("[1] [2]") { reader throws(JSONError) in
            #expect(try reader.readValue() == [1])
            #expect(reader.offset == 3)
            #expect(try reader.readValue() == [2])
            try reader.expectEnd()
        }
    }
}

extension String {
    /// `description`'s exponent ("e+16", "e-07") written as serde_json does ("e16", "e-7").
    fileprivate func replacingExponent() -> String {
        guard let marker = firstIndex(of: "e") else { return self }
        var exponent = self[index(after: marker)...]
        var sign = ""
        if exponent.first == "+" { exponent = exponent.dropFirst() }
        if exponent.first == "-" {
            sign = "-"
            exponent = exponent.dropFirst()
        }
        while exponent.count > 1, exponent.first == "0" { exponent = exponent.dropFirst() }
        return self[...marker] + sign + exponent
    }
}
