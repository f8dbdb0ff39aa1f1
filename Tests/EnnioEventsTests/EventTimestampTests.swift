@testable import EnnioEvents
import Testing

private let nanosPerSecond: Int64 = 1_000_000_000

private func timestamp(seconds: Int64, nanos: Int64 = 0) -> EventTimestamp {
    EventTimestamp(nanosecondsSinceEpoch: seconds * nanosPerSecond + nanos)
}

private func parsed(_ text: String) throws(JSONError) -> EventTimestamp {
    try EventTimestamp(rfc3339: text)
}

@Suite struct EventTimestampTests {
    @Test func parsesFullPrecision() throws {
        let value = try parsed("2026-03-05T19:25:03.123456789Z")
        #expect(value == timestamp(seconds: 1_772_738_703, nanos: 123_456_789))
        #expect(value.rfc3339 == "2026-03-05T19:25:03.123456789Z")
    }

    @Test func fractions() throws {
        #expect(try parsed("2026-03-05T19:25:03.1Z") == timestamp(seconds: 1_772_738_703, nanos: 100_000_000))
        #expect(try parsed("2026-03-05T19:25:03.1Z").rfc3339 == "2026-03-05T19:25:03.100Z")
        #expect(try parsed("2026-03-05T19:25:03.000001Z").rfc3339 == "2026-03-05T19:25:03.000001Z")
        #expect(try parsed("2026-03-05T19:25:03.0Z").rfc3339 == "2026-03-05T19:25:03Z")
        // Digits beyond nanoseconds are dropped, not rounded.
        #expect(try parsed("2026-03-05T19:25:03.1234567899999Z") == timestamp(seconds: 1_772_738_703, nanos: 123_456_789))
    }

    @Test func offsetsAreConvertedToUTC() throws {
        let utc = try parsed("2026-03-05T19:25:03Z")
        #expect(try parsed("2026-03-05T21:25:03+02:00") == utc)
        #expect(try parsed("2026-03-05T13:55:03-05:30") == utc)
        #expect(try parsed("2026-03-06T00:25:03.000+05:00") == utc)
        #expect(try parsed("2026-03-05T19:25:03+00:00") == utc)
        #expect(try parsed("2026-03-05T19:25:03-00:00") == utc)
        #expect(try parsed("2026-03-05t19:25:03z") == utc)
        // Crossing a year boundary.
        #expect(try parsed("2027-01-01T01:00:00+02:00").rfc3339 == "2026-12-31T23:00:00Z")
        #expect(try parsed("2026-12-31T23:59:59.5-23:59").rfc3339 == "2027-01-01T23:58:59.500Z")
    }

    @Test func leapDays() throws {
        #expect(try parsed("2024-02-29T12:00:00Z") == timestamp(seconds: 1_709_208_000))
        #expect(try parsed("2000-02-29T00:00:00Z").rfc3339 == "2000-02-29T00:00:00Z")
        #expect(throws: JSONError.self) { try parsed("2023-02-29T12:00:00Z") }
        #expect(throws: JSONError.self) { try parsed("1900-02-29T12:00:00Z") }
        #expect(throws: JSONError.self) { try parsed("2100-02-29T12:00:00Z") }
        #expect(try parsed("2024-02-28T23:59:59Z") + .seconds(1) == parsed("2024-02-29T00:00:00Z"))
        #expect(try parsed("2024-02-29T23:59:59Z") + .seconds(1) == parsed("2024-03-01T00:00:00Z"))
    }

    @Test func outputFormats() {
        let base: Int64 = 1_772_738_703
        #expect(timestamp(seconds: base).rfc3339 == "2026-03-05T19:25:03Z")
        #expect(timestamp(seconds: base, nanos: 123_000_000).rfc3339 == "2026-03-05T19:25:03.123Z")
        #expect(timestamp(seconds: base, nanos: 100_000_000).rfc3339 == "2026-03-05T19:25:03.100Z")
        #expect(timestamp(seconds: base, nanos: 123_456_000).rfc3339 == "2026-03-05T19:25:03.123456Z")
        #expect(timestamp(seconds: base, nanos: 1_000).rfc3339 == "2026-03-05T19:25:03.000001Z")
        #expect(timestamp(seconds: base, nanos: 123_456_789).rfc3339 == "2026-03-05T19:25:03.123456789Z")
        #expect(timestamp(seconds: base, nanos: 1).rfc3339 == "2026-03-05T19:25:03.000000001Z")
        #expect(timestamp(seconds: base, nanos: 1).description == "2026-03-05T19:25:03.000000001Z")
    }

    @Test func epochAndEarlierDates() throws {
        #expect(EventTimestamp(nanosecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00Z")
        #expect(try parsed("1970-01-01T00:00:00Z").nanosecondsSinceEpoch == 0)
        #expect(EventTimestamp(nanosecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999999999Z")
        #expect(EventTimestamp(nanosecondsSinceEpoch: -1_000_000).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(try parsed("1969-07-20T20:17:40Z") == timestamp(seconds: -14_182_940))
        #expect(timestamp(seconds: -14_182_940).rfc3339 == "1969-07-20T20:17:40Z")
        #expect(try parsed("1900-01-01T00:00:00Z") == timestamp(seconds: -2_208_988_800))
        #expect(try parsed("2000-01-01T00:00:00Z") == timestamp(seconds: 946_684_800))
    }

    @Test func representableRange() throws {
        let earliest = EventTimestamp(nanosecondsSinceEpoch: .min)
        let latest = EventTimestamp(nanosecondsSinceEpoch: .max)
        #expect(earliest.rfc3339 == "1677-09-21T00:12:43.145224192Z")
        #expect(latest.rfc3339 == "2262-04-11T23:47:16.854775807Z")
        #expect(try parsed(earliest.rfc3339) == earliest)
        #expect(try parsed(latest.rfc3339) == latest)
        #expect(throws: JSONError.self) { try parsed("1677-09-21T00:12:43.145224191Z") }
        #expect(throws: JSONError.self) { try parsed("2262-04-11T23:47:16.854775808Z") }
        #expect(throws: JSONError.self) { try parsed("0001-01-01T00:00:00Z") }
        #expect(throws: JSONError.self) { try parsed("9999-12-31T23:59:59Z") }
    }

    @Test func invalidTexts() {
        let cases = [
            "",
            "2026",
            "2026-03-05",
            "2026-03-05T19:25:03",
            "2026-03-05 19:25:03Z",
            "2026-03-05_19:25:03Z",
            "2026-03-05T19:25Z",
            "26-03-05T19:25:03Z",
            "2026-3-5T19:25:03Z",
            "2026/03/05T19:25:03Z",
            "+2026-03-05T19:25:03Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-32T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-03-05T24:00:00Z",
            "2026-03-05T19:60:00Z",
            "2026-03-05T23:59:60Z",
            "2026-03-05T19:25:61Z",
            "2026-03-05T19:25:03.Z",
            "2026-03-05T19:25:03.",
            "2026-03-05T19:25:03,5Z",
            "2026-03-05T19:25:03+2:00",
            "2026-03-05T19:25:03+0200",
            "2026-03-05T19:25:03+02",
            "2026-03-05T19:25:03+24:00",
            "2026-03-05T19:25:03+02:60",
            "2026-03-05T19:25:03ZZ",
            "2026-03-05T19:25:03Z ",
            " 2026-03-05T19:25:03Z",
            "2026-03-05T19:25:03UTC",
            "0000-01-01T00:00:00Z",
            "２０２６-03-05T19:25:03Z",
        ]
        for text in cases {
            do {
                _ = try parsed(text)
                Issue.record("\(text.debugDescription) was accepted")
            } catch {
                #expect(error.code == .invalidTimestamp, "\(text.debugDescription)")
                #expect(error.detail.contains("RFC 3339"))
            }
        }
    }

    @Test func errorsPointAtTheProblem() {
        func failure(_ text: String) -> JSONError? {
            do {
                _ = try parsed(text)
                return nil
            } catch {
                return error
            }
        }
        #expect(failure("2026-13-05T19:25:03Z")?.offset == 5)
        #expect(failure("2026-02-30T19:25:03Z")?.offset == 8)
        #expect(failure("2026-03-05T19:25:60Z")?.offset == 17)
        #expect(failure("2026-03-05T19:25:60Z")?.detail.contains("leap second") == true)
        #expect(failure("2026-03-05X19:25:03Z")?.offset == 10)
        #expect(failure("2026-03-05T19:25:03")?.offset == 19)
    }

    @Test func writeAppendsTheSameText() {
        var buffer = Array("t=".utf8)
        let value = timestamp(seconds: 1_772_738_703, nanos: 120_000)
        value.write(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "t=2026-03-05T19:25:03.000120Z")
    }

    @Test func randomInstantsRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<10_000 {
            var nanos = Int64.random(in: .min ... .max, using: &generator)
            // Also exercise the shorter fraction forms.
            switch round % 4 {
            case 1: nanos -= nanos % 1_000_000
            case 2: nanos -= nanos % 1_000
            case 3: nanos -= nanos % nanosPerSecond
            default: break
            }
            let value = EventTimestamp(nanosecondsSinceEpoch: nanos)
            let text = value.rfc3339
            #expect(try parsed(text) == value, "\(nanos) → \(text)")
            var bytes: [UInt8] = []
            value.write(into: &bytes)
            #expect(bytes == Array(text.utf8))
        }
    }

    @Test func calendarArithmeticIsConsistent() {
        // The conversions work in 400-year eras: check every day of three whole eras, and the
        // first and last day of every month of years 0001–9999.
        func check(year: Int64, month: Int64, day: Int64, expected: Int64) -> Bool {
            let number = EventTimestamp.days(fromCivilYear: year, month: month, day: day)
            let date = EventTimestamp.civil(fromDays: expected)
            guard number == expected, date.year == year, date.month == month, date.day == day else {
                Issue.record("\(year)-\(month)-\(day) is day \(number), expected \(expected); day \(expected) is \(date)")
                return false
            }
            return true
        }
        var expected = EventTimestamp.days(fromCivilYear: 1600, month: 1, day: 1)
        #expect(expected == -135_140)
        for year: Int64 in 1600..<2800 {
            for month: Int64 in 1...12 {
                for day in 1...EventTimestamp.daysIn(month: month, year: year) {
                    guard check(year: year, month: month, day: day, expected: expected) else { return }
                    expected += 1
                }
            }
        }
        expected = EventTimestamp.days(fromCivilYear: 1, month: 1, day: 1)
        #expect(expected == -719_162)
        for year: Int64 in 1...9999 {
            for month: Int64 in 1...12 {
                let length = EventTimestamp.daysIn(month: month, year: year)
                guard check(year: year, month: month, day: 1, expected: expected) else { return }
                guard check(year: year, month: month, day: length, expected: expected + length - 1) else { return }
                expected += length
            }
        }
        #expect(expected - 1 == 2_932_896)  // 9999-12-31
    }

    @Test func arithmeticAndOrdering() throws {
        let start = try parsed("2026-03-05T19:25:03Z")
        #expect((start + .milliseconds(1_500)).rfc3339 == "2026-03-05T19:25:04.500Z")
        #expect((start + .milliseconds(-1_500)).rfc3339 == "2026-03-05T19:25:01.500Z")
        #expect((start - .seconds(86_400)).rfc3339 == "2026-03-04T19:25:03Z")
        #expect((start + .nanoseconds(1)).rfc3339 == "2026-03-05T19:25:03.000000001Z")
        #expect((start + .seconds(3_600)) - start == .seconds(3_600))
        #expect(start - (start + .microseconds(5)) == .microseconds(-5))
        let earliest = EventTimestamp(nanosecondsSinceEpoch: .min)
        let latest = EventTimestamp(nanosecondsSinceEpoch: .max)
        #expect(latest - earliest == .nanoseconds(Int64.max) + .nanoseconds(Int64.max) + .nanoseconds(1))
        #expect(earliest - latest == .zero - (latest - earliest))
        let sorted = [start + .seconds(2), start, start - .seconds(1)].sorted()
        #expect(sorted == [start - .seconds(1), start, start + .seconds(2)])
        #expect(start < start + .nanoseconds(1))
    }

    @Test func now() throws {
        let first = EventTimestamp.now()
        let second = EventTimestamp.now()
        #expect(first >= (try parsed("2024-01-01T00:00:00Z")))
        #expect(first <= (try parsed("2100-01-01T00:00:00Z")))
        #expect(second - first < .seconds(60))
        #expect(try parsed(first.rfc3339) == first)
    }
}
