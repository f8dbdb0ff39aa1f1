@testable import EnnioEvents
import Testing

/// Runs `body` with a reader over exactly the bytes of `text` (nothing after them, so strings
/// that end the input exercise the reader's end-of-input paths).
private func reading<T>(_ text: String, _ body: (inout JSONReader) throws(JSONError) -> T) throws(JSONError) -> T {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBufferPointer { buffer in
        Result { () throws(JSONError) in
            var reader = JSONReader(bytes: buffer)
            return try body(&reader)
        }
    }.get()
}

private func errorCode<T>(_ text: String, _ body: (inout JSONReader) throws(JSONError) -> T) -> JSONError.Code? {
    do {
        _ = try reading(text, body)
        return nil
    } catch {
        return error.code
    }
}

/// The string's contents as the reader's two string reads see them.
private func readBothWays(_ json: String) throws(JSONError) -> (string: String, bytes: [UInt8]) {
    let string = try reading(json) { reader throws(JSONError) in
        let value = try reader.readString()
        try reader.expectEnd()
        return value
    }
    let bytes = try reading(json) { reader throws(JSONError) in
        let value = try reader.readStringBytes { Array($0) }
        try reader.expectEnd()
        return value
    }
    return (string, bytes)
}

@Suite struct JSONKeyBytesTests {
    @Test func keysArriveUnescaped() throws {
        let text = #"""
            {"id":1,"\u0069d":2,"a\"b":3,"é":4,"\u00e9":5,"😀":6,"\ud83d\ude00":7,"":8,
             "a key longer than eight\tbytes":9, "\/":10 , "x\\":11}
            """#
        var keys: [[UInt8]] = []
        var values: [Int64] = []
        try reading(text) { reader throws(JSONError) in
            try reader.readObjectWithKeyBytes { key, reader throws(JSONError) in
                keys.append(Array(key))
                values.append(try reader.readInt())
            }
            try reader.expectEnd()
        }
        let expected = ["id", "id", "a\"b", "é", "é", "😀", "😀", "", "a key longer than eight\tbytes", "/", "x\\"]
        #expect(keys == expected.map { Array($0.utf8) })
        #expect(values == Array(1...11))
    }

    @Test func agreesWithStringKeys() throws {
        let text = #"{"b":1,"\u0061":{"n":[1,2]},"c\n":"v","b":3,"unread":[{"x":"\""}]}"#
        var byteKeys: [String] = []
        var stringKeys: [String] = []
        try reading(text) { reader throws(JSONError) in
            try reader.readObjectWithKeyBytes { key, _ throws(JSONError) in byteKeys.append(String(decoding: key, as: UTF8.self)) }
            try reader.expectEnd()
        }
        try reading(text) { reader throws(JSONError) in
            try reader.readObject { key, _ throws(JSONError) in stringKeys.append(key) }
            try reader.expectEnd()
        }
        // Every member is visited, repeated keys included; unread values are skipped.
        #expect(byteKeys == ["b", "a", "c\n", "b", "unread"])
        #expect(byteKeys == stringKeys)
    }

    @Test func errors() {
        let walk = { (reader: inout JSONReader) throws(JSONError) in
            try reader.readObjectWithKeyBytes { _, _ throws(JSONError) in }
        }
        #expect(errorCode("[1]", walk) == .typeMismatch)
        #expect(errorCode("", walk) == .unexpectedEnd)
        #expect(errorCode(#"{"\q":1}"#, walk) == .invalidString)
        #expect(errorCode(#"{"\ud800":1}"#, walk) == .invalidString)
        #expect(errorCode("{\"a\u{1}\":1}", walk) == .invalidString)
        #expect(errorCode(#"{"a":1,"b"}"#, walk) == .unexpectedCharacter)
        #expect(errorCode(#"{"a":[1,}"#, walk) == .unexpectedCharacter)
        #expect(errorCode(#"{"abc"#, walk) == .unexpectedEnd)
        #expect(errorCode(#"{"a\"#, walk) == .unexpectedEnd)
        var bad = Array(#"{"ab":1}"#.utf8)
        bad[3] = 0xFF
        let code = bad.withUnsafeBufferPointer { buffer -> JSONError.Code? in
            var reader = JSONReader(bytes: buffer)
            do throws(JSONError) {
                try walk(&reader)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code == .invalidString)
    }
}

@Suite struct JSONStringBytesTests {
    @Test func returnsWhatTheBodyReturns() throws {
        let count = try reading(#"  "a\nb"  "#) { reader throws(JSONError) in
            let count = try reader.readStringBytes { $0.count }
            try reader.expectEnd()
            return count
        }
        #expect(count == 3)
        #expect(errorCode("12") { reader throws(JSONError) in try reader.readStringBytes { $0.count } } == .typeMismatch)
        #expect(errorCode("null") { reader throws(JSONError) in try reader.readStringBytes { $0.count } } == .typeMismatch)
        #expect(errorCode(#""\x""#) { reader throws(JSONError) in try reader.readStringBytes { $0.count } } == .invalidString)
        #expect(errorCode("[") { reader throws(JSONError) in try reader.readStringBytes { $0.count } } == .unexpectedEnd)
        // The body's own error stops the read.
        #expect(errorCode(#""x""#) { reader throws(JSONError) in
            try reader.readStringBytes { _ throws(JSONError) in throw JSONError(.missingField, offset: 0, detail: "") }
        } == .missingField)
    }

    /// Each special text (written raw or as a JSON escape) at every position of strings of
    /// every length around the eight-byte scan, with the string ending the input.
    @Test func specialsAtEveryPosition() throws {
        let specials: [(json: String, text: String)] = [
            (#"\""#, "\""), (#"\\"#, "\\"), (#"\n"#, "\n"), (#"\/"#, "/"), (#"\u0041"#, "A"), (#"\u00e9"#, "é"),
            (#"\ud83d\ude00"#, "😀"), ("é", "é"), ("😀", "😀"), ("\u{7F}", "\u{7F}"), ("€", "€"),
        ]
        for (json, text) in specials {
            for length in 0..<20 {
                for position in 0...length {
                    let plain = String(repeating: "x", count: length)
                    let index = plain.index(plain.startIndex, offsetBy: position)
                    let source = "\"" + plain[..<index] + json + plain[index...] + "\""
                    let expected = plain[..<index] + text + plain[index...]
                    let read = try readBothWays(source)
                    #expect(read.string == expected, "\(source)")
                    #expect(read.bytes == Array(expected.utf8), "\(source)")
                }
            }
        }
    }

    @Test func badStringsAtEveryPosition() {
        for length in 0..<20 {
            let plain = String(repeating: "y", count: length)
            // Unterminated, at every length.
            #expect(errorCode("\"" + plain) { reader throws(JSONError) in try reader.readString() } == .unexpectedEnd)
            #expect(errorCode("\"" + plain + "\\") { reader throws(JSONError) in try reader.readStringBytes { $0.count } } == .unexpectedEnd)
            for position in 0...length {
                let index = plain.index(plain.startIndex, offsetBy: position)
                // A raw control character.
                let control = "\"" + plain[..<index] + "\u{1F}" + plain[index...] + "\""
                #expect(errorCode(control) { reader throws(JSONError) in try reader.readStringBytes { $0.count } } == .invalidString)
                // Invalid UTF-8: a lone continuation byte, a truncated sequence.
                for bad: [UInt8] in [[0x80], [0xE2, 0x82], [0xED, 0xA0, 0x80]] {
                    var bytes = Array(("\"" + plain + "\"").utf8)
                    bytes.insert(contentsOf: bad, at: 1 + position)
                    let code = bytes.withUnsafeBufferPointer { buffer -> JSONError.Code? in
                        var reader = JSONReader(bytes: buffer)
                        do throws(JSONError) {
                            _ = try reader.readStringBytes { $0.count }
                            return nil
                        } catch {
                            return error.code
                        }
                    }
                    #expect(code == .invalidString, "\(bytes)")
                }
            }
        }
    }
}

@Suite struct ByteKeyedTableTests {
    private func lookUp(_ table: ByteKeyedTable<Int>, _ key: String) -> Int? {
        Array(key.utf8).withUnsafeBufferPointer { table.value(for: $0) }
    }

    @Test func findsExactlyItsNames() {
        let names = ["a", "bb", "cc", "dd", "ddd", "eight888", "nine99999", "sixteen-bytes-xx", "seventeen-bytes-x", "é"]
        let table = ByteKeyedTable(names.enumerated().map { (name: $0.element, value: $0.offset) })
        for (index, name) in names.enumerated() {
            #expect(lookUp(table, name) == index, "\(name)")
            // One byte changed anywhere, one more or one fewer: no match.
            var bytes = Array(name.utf8)
            for position in bytes.indices {
                bytes[position] ^= 0x01
                #expect(bytes.withUnsafeBufferPointer { table.value(for: $0) } == nil, "\(name) \(position)")
                bytes[position] ^= 0x01
            }
            #expect(lookUp(table, name + "z") == nil)
            let shorter = String(name.dropLast())
            #expect(lookUp(table, shorter) == names.firstIndex(of: shorter))
        }
        #expect(lookUp(table, "") == nil)
        #expect(lookUp(table, "b") == nil)
        #expect(lookUp(table, "x") == nil)
        #expect(lookUp(table, String(repeating: "q", count: 40)) == nil)
        #expect(ByteKeyedTable<Int>([]).value(for: UnsafeBufferPointer(start: nil, count: 0)) == nil)
    }

    @Test func anEmptyName() {
        let table = ByteKeyedTable([(name: "", value: 1), (name: "k", value: 2)])
        #expect(table.value(for: UnsafeBufferPointer(start: nil, count: 0)) == 1)
        #expect(lookUp(table, "") == 1)
        #expect(lookUp(table, "k") == 2)
        #expect(lookUp(table, "kk") == nil)
    }

    @Test func eventTypesAndPriorities() {
        for type in EventType.allCases {
            #expect(Array(type.rawValue.utf8).withUnsafeBufferPointer { EventType(wireNameBytes: $0) } == type)
            #expect(Array(type.name.utf8).withUnsafeBufferPointer { EventType(wireNameBytes: $0) } == nil)
            #expect(Array((type.rawValue + "_").utf8).withUnsafeBufferPointer { EventType(wireNameBytes: $0) } == nil)
        }
        for priority in EventPriority.allCases {
            #expect(Array(priority.rawValue.utf8).withUnsafeBufferPointer { EventPriority(wireNameBytes: $0) } == priority)
            #expect(Array(priority.rawValue.uppercased().utf8).withUnsafeBufferPointer { EventPriority(wireNameBytes: $0) } == nil)
        }
        #expect(Array("".utf8).withUnsafeBufferPointer { EventPriority(wireNameBytes: $0) } == nil)
    }

    /// Byte matching is String equality for the names matched that way (keys, types,
    /// priorities) only because no other text is canonically equivalent to them: these are
    /// made of ASCII letters, digits and '_', and no other scalar is equal to one of those.
    @Test func noOtherTextEqualsTheNamesCharacters() {
        let names = ["id", "event_type", "priority", "session_id", "project_id", "timestamp", "message", "data"]
            + EventType.allCases.map(\.rawValue) + EventPriority.allCases.map(\.rawValue)
        let characters = Set(names.flatMap { Array($0.unicodeScalars) })
        #expect(characters.allSatisfy { $0.isASCII && ($0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0)) })
        let asStrings = Set(characters.map { String($0) })
        var equal: [Unicode.Scalar] = []
        for value in UInt32(0x80)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            if asStrings.contains(String(scalar)) { equal.append(scalar) }
        }
        #expect(equal.isEmpty, "\(equal)")
    }
}
