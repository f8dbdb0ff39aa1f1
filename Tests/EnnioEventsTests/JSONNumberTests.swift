import EnnioEvents
import Testing

/// Numbers keep the text they arrived as (issue 15, item 8): `1e14` is stored and re-published
/// as `1e14`, not `100000000000000.0`; integers stay integers.
@Suite struct JSONNumberTests {
    /// Texts that are not `Int64` integers, each written back exactly as it was read.
    static let texts = [
        "1e14", "1E14", "1e+14", "2.50", "0.1", "-0", "-0.0", "0e0", "1.0", "100000000000000.0", "-2.5e-3",
        "12345678901234567890", "-9223372036854775809", "123456789012345678901234567890",
        "3.141592653589793238462643383279", "4.9406564584124654e-324", "1e-400",
    ]

    @Test(arguments: texts)
    func aNumberIsWrittenAsItWasRead(text: String) throws {
        let value = try JSONValue(parsing: text)
        guard case .number(let number) = value else {
            Issue.record("\(text) was read as \(value), not as a number with its text")
            return
        }
        #expect(number.text == text)
        #expect(value.jsonString == text)
        #expect(try JSONValue(parsing: "[\(text),{\"k\":\(text)}]").jsonString == "[\(text),{\"k\":\(text)}]")
        #expect(value.doubleValue == Double(text))
    }

    @Test func integersStayIntegers() throws {
        for text in ["0", "7", "-12", "9223372036854775807", "-9223372036854775808"] {
            let value = try JSONValue(parsing: text)
            #expect(value.intValue == Int64(text), "\(text)")
            #expect(value.jsonString == text)
        }
    }

    @Test func anEventsDataIsReEncodedByteForByte() throws {
        let data = #"{"attempts":[1e14,1e14,2.50,-0],"big":123456789012345678901234567890,"ratio":0.30000000000000004,"small":1E-7}"#
        let json = #"{"id":"5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60","event_type":"ci_failing","priority":"urgent","session_id":"s-1","project_id":"my-app","timestamp":"2026-03-05T19:25:03.123456789Z","message":"m","data":"#
            + data + "}"
        let event = try EventCodec.decode(Array(json.utf8))
        #expect(String(decoding: EventCodec.encode(event), as: UTF8.self) == json)
        #expect(event.data.jsonString == data)
    }

    @Test func aMegabyteOfNumbersDoesNotGrow() throws {
        let text = "[" + Array(repeating: "1e14", count: 200_000).joined(separator: ",") + "]"
        let value = try JSONValue(parsing: text)
        #expect(value.jsonString.utf8.count == text.utf8.count)
    }

    @Test func numbersMadeInCodeAreWrittenAsBefore() {
        #expect(JSONValue.double(1e14).jsonString == "100000000000000.0")
        #expect(JSONValue.double(0.5).jsonString == "0.5")
        #expect(JSONValue.int(42).jsonString == "42")
    }

    @Test func numbersReadAndMadeCompareByValue() throws {
        #expect(try JSONValue(parsing: "1e2") == .double(100))
        #expect(try JSONValue(parsing: "1e2") == JSONValue(parsing: "100.0"))
        #expect(try JSONValue(parsing: "1e2") != .int(100))
        #expect(try JSONValue(parsing: "0.5") != .double(0.25))
        #expect(try JSONValue(parsing: "0.5") != .string("0.5"))
        // Equal values hash alike, whichever way they were made.
        let set: Set<JSONValue> = [.double(100), .double(0.5)]
        #expect(try set.contains(JSONValue(parsing: "1E+2")))
        #expect(try set.contains(JSONValue(parsing: "5e-1")))
        #expect(try !set.contains(JSONValue(parsing: "100")))
    }

    @Test func numbersOutOfRangeAreRefusedWithABoundedMessage() {
        let digits = String(repeating: "9", count: 500_000)
        do {
            _ = try JSONValue(parsing: digits + "e9")
            Issue.record("a number of 500,000 digits and e9 was accepted")
        } catch {
            #expect(error.code == .invalidNumber)
            #expect(error.description.utf8.count < 200, "\(error.description.prefix(300))")
        }
        #expect(throws: JSONError.self) { try JSONValue(parsing: "1e400") }
        #expect(throws: JSONError.self) { try JSONValue(parsing: "-1e400") }
    }

    @Test func readersOfNumbersStillWork() throws {
        var double = 0.0
        var integer: Int64 = 0
        try Array(#"{"d":1e14,"i":5}"#.utf8).withUnsafeBufferPointer { buffer in
            var reader = JSONReader(bytes: buffer)
            try reader.readObject { key, reader throws(JSONError) in
                if key == "d" { double = try reader.readDouble() }
                if key == "i" { integer = try reader.readInt() }
            }
        }
        #expect(double == 1e14)
        #expect(integer == 5)
    }
}
