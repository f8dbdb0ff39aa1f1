#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A UTC instant with nanosecond precision, written as RFC 3339.
///
/// Stored as nanoseconds since 1970-01-01T00:00:00Z in an `Int64`, so the instants it can hold
/// run from 1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z. Parsing accepts
/// the syntax of any year 0001–9999 but rejects instants outside that range.
public struct EventTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let nanosecondsSinceEpoch: Int64

    public init(nanosecondsSinceEpoch: Int64) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
    }

    /// The current time of the system's real-time clock.
    public static func now() -> EventTimestamp {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return EventTimestamp(nanosecondsSinceEpoch: Int64(time.tv_sec) * nanosPerSecond + Int64(time.tv_nsec))
    }

    public static func < (lhs: EventTimestamp, rhs: EventTimestamp) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    public var description: String { rfc3339 }

    // MARK: - Arithmetic

    /// The instant `rhs` later (earlier if negative); sub-nanosecond parts are dropped. Traps
    /// if the result is outside the representable range.
    public static func + (lhs: EventTimestamp, rhs: Duration) -> EventTimestamp {
        EventTimestamp(nanosecondsSinceEpoch: lhs.nanosecondsSinceEpoch + nanoseconds(of: rhs))
    }

    /// The instant `rhs` earlier. Traps if the result is outside the representable range.
    public static func - (lhs: EventTimestamp, rhs: Duration) -> EventTimestamp {
        EventTimestamp(nanosecondsSinceEpoch: lhs.nanosecondsSinceEpoch - nanoseconds(of: rhs))
    }

    /// The time from `rhs` to `lhs` (negative if `lhs` is earlier).
    public static func - (lhs: EventTimestamp, rhs: EventTimestamp) -> Duration {
        let (difference, overflow) = lhs.nanosecondsSinceEpoch.subtractingReportingOverflow(rhs.nanosecondsSinceEpoch)
        if !overflow { return .nanoseconds(difference) }
        let seconds = lhs.nanosecondsSinceEpoch / nanosPerSecond - rhs.nanosecondsSinceEpoch / nanosPerSecond
        let nanos = lhs.nanosecondsSinceEpoch % nanosPerSecond - rhs.nanosecondsSinceEpoch % nanosPerSecond
        return .seconds(seconds) + .nanoseconds(nanos)
    }

    private static func nanoseconds(of duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * nanosPerSecond + attoseconds / 1_000_000_000
    }

    // MARK: - Formatting

    /// RFC 3339 in UTC with a `Z`, the fraction as chrono's `SecondsFormat::AutoSi` writes it:
    /// none for whole seconds, else 3, 6 or 9 digits, the fewest that are exact.
    public var rfc3339: String {
        String(unsafeUninitializedCapacity: Self.maximumTextLength) { format(into: $0) }
    }

    /// Appends the `rfc3339` text to `buffer`.
    public func write(into buffer: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumTextLength) { scratch in
            let count = format(into: scratch)
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<count]))
        }
    }

    /// "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
    static var maximumTextLength: Int { 30 }

    /// Writes the text into `out` (at least `maximumTextLength` bytes); returns its length.
    func format(into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        // Whole days and the rest, rounding down. The rest is below 86 400 × 10⁹, and the days
        // of representable instants (±106 752) are counted from 0000-03-01 in 32 bits below.
        let nanosPerDay = Self.secondsPerDay * Self.nanosPerSecond
        var days = nanosecondsSinceEpoch / nanosPerDay
        var nanosOfDay = nanosecondsSinceEpoch % nanosPerDay
        if nanosOfDay < 0 {
            nanosOfDay += nanosPerDay
            days -= 1
        }
        let secondOfDay = UInt32(truncatingIfNeeded: nanosOfDay / Self.nanosPerSecond)
        let nanos = UInt32(truncatingIfNeeded: nanosOfDay % Self.nanosPerSecond)
        let date = Self.civil32(fromDays: days)

        // Straight stores: the text has a fixed layout up to the fraction.
        let start = out.baseAddress.unsafelyUnwrapped
        @inline(__always) func two(_ value: UInt32, at index: Int) {
            start[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
            start[index &+ 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
        }
        @inline(__always) func three(_ value: UInt32, at index: Int) {
            start[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 100)
            two(value % 100, at: index &+ 1)
        }
        // Years of representable instants have four digits (1677–2262).
        two(date.year / 100, at: 0)
        two(date.year % 100, at: 2)
        start[4] = UInt8(ascii: "-")
        two(date.month, at: 5)
        start[7] = UInt8(ascii: "-")
        two(date.day, at: 8)
        start[10] = UInt8(ascii: "T")
        two(secondOfDay / 3600, at: 11)
        start[13] = UInt8(ascii: ":")
        two(secondOfDay / 60 % 60, at: 14)
        start[16] = UInt8(ascii: ":")
        two(secondOfDay % 60, at: 17)
        var position = 19
        if nanos != 0 {
            start[position] = UInt8(ascii: ".")
            position &+= 1
            if nanos % 1_000_000 == 0 {
                three(nanos / 1_000_000, at: position)
                position &+= 3
            } else if nanos % 1_000 == 0 {
                let micros = nanos / 1_000
                three(micros / 1_000, at: position)
                three(micros % 1_000, at: position &+ 3)
                position &+= 6
            } else {
                three(nanos / 1_000_000, at: position)
                three(nanos / 1_000 % 1_000, at: position &+ 3)
                three(nanos % 1_000, at: position &+ 6)
                position &+= 9
            }
        }
        start[position] = UInt8(ascii: "Z")
        return position &+ 1
    }

    /// `civil(fromDays:)` in 32-bit arithmetic, for the days of representable instants (whose
    /// count from 0000-03-01 is positive and small); the same steps, so the same dates.
    @inline(__always)
    private static func civil32(fromDays days: Int64) -> (year: UInt32, month: UInt32, day: UInt32) {
        let shifted = UInt32(truncatingIfNeeded: days + 719_468)
        let era = shifted / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    // MARK: - Parsing

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    ///
    /// - The date/time separator is `T` or `t`, the UTC designator `Z` or `z`.
    /// - The fraction has one or more digits; digits past the ninth are dropped (truncated).
    /// - An offset is applied to give UTC; `-00:00` is taken as UTC.
    /// - Years 0001–9999, months 1–12, days as the month has them (leap years included), hours
    ///   0–23, minutes 0–59, seconds 0–59: leap seconds (`:60`) are rejected, since the
    ///   timestamp counts seconds as POSIX time does.
    /// - The instant must lie within the range an `Int64` of nanoseconds can hold (1677–2262).
    ///
    /// Failures throw a `JSONError` with code `.invalidTimestamp` and the byte offset of the
    /// problem in the UTF-8 text.
    public init(rfc3339 text: String) throws(JSONError) {
        var text = text
        self = try text.withUTF8 { utf8 in
            Result { () throws(JSONError) in try Self.parse(utf8) }
        }.get()
    }

    /// `init(rfc3339:)` from the text's UTF-8 bytes, without making a `String`.
    init(rfc3339UTF8 text: UnsafeBufferPointer<UInt8>) throws(JSONError) {
        self = try Self.parse(text)
    }

    private static func parse(_ text: UnsafeBufferPointer<UInt8>) throws(JSONError) -> EventTimestamp {
        if let timestamp = parseUTCFast(text) { return timestamp }
        var scanner = Scanner(text: text)

        let yearStart = scanner.position
        let year = try scanner.number(digits: 4, of: "year")
        try scanner.expect(UInt8(ascii: "-"), "'-' after the year")
        let monthStart = scanner.position
        let month = try scanner.number(digits: 2, of: "month")
        try scanner.expect(UInt8(ascii: "-"), "'-' after the month")
        let dayStart = scanner.position
        let day = try scanner.number(digits: 2, of: "day")
        try scanner.expect(UInt8(ascii: "T"), or: UInt8(ascii: "t"), "'T' between the date and the time")
        let hourStart = scanner.position
        let hour = try scanner.number(digits: 2, of: "hour")
        try scanner.expect(UInt8(ascii: ":"), "':' after the hour")
        let minuteStart = scanner.position
        let minute = try scanner.number(digits: 2, of: "minute")
        try scanner.expect(UInt8(ascii: ":"), "':' after the minute")
        let secondStart = scanner.position
        let second = try scanner.number(digits: 2, of: "second")

        var nanos: Int64 = 0
        if scanner.peek() == UInt8(ascii: ".") {
            scanner.position += 1
            guard let first = scanner.peek(), isDigit(first) else {
                throw scanner.failure("expected a digit after '.'")
            }
            var scale: Int64 = 100_000_000
            while let byte = scanner.peek(), isDigit(byte) {
                nanos += Int64(byte - UInt8(ascii: "0")) * scale
                scale /= 10
                scanner.position += 1
            }
        }

        guard let zone = scanner.peek() else {
            throw scanner.failure("expected 'Z' or an offset such as +02:00 at the end")
        }
        var offsetSeconds: Int64 = 0
        switch zone {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            scanner.position += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let negative = zone == UInt8(ascii: "-")
            scanner.position += 1
            let offsetHourStart = scanner.position
            let offsetHours = try scanner.number(digits: 2, of: "offset hour")
            try scanner.expect(UInt8(ascii: ":"), "':' in the offset")
            let offsetMinuteStart = scanner.position
            let offsetMinutes = try scanner.number(digits: 2, of: "offset minute")
            guard offsetHours <= 23 else {
                throw scanner.failure("the offset hour \(offsetHours) is not in 00–23", at: offsetHourStart)
            }
            guard offsetMinutes <= 59 else {
                throw scanner.failure("the offset minute \(offsetMinutes) is not in 00–59", at: offsetMinuteStart)
            }
            offsetSeconds = (offsetHours * 60 + offsetMinutes) * 60
            if negative { offsetSeconds = -offsetSeconds }
        default:
            throw scanner.failure("expected '.', 'Z' or an offset such as +02:00")
        }
        guard scanner.position == text.count else {
            throw scanner.failure("unexpected text after the time zone")
        }

        guard year >= 1 else { throw scanner.failure("the year 0000 is not supported", at: yearStart) }
        guard (1...12).contains(month) else {
            throw scanner.failure("the month \(month) is not in 01–12", at: monthStart)
        }
        let monthLength = daysIn(month: month, year: year)
        guard day >= 1, day <= monthLength else {
            throw scanner.failure("the day \(day) is not in 01–\(monthLength) for this month", at: dayStart)
        }
        guard hour <= 23 else { throw scanner.failure("the hour \(hour) is not in 00–23", at: hourStart) }
        guard minute <= 59 else { throw scanner.failure("the minute \(minute) is not in 00–59", at: minuteStart) }
        guard second <= 59 else {
            throw scanner.failure(
                second == 60 ? "leap seconds (:60) are not supported" : "the second \(second) is not in 00–59",
                at: secondStart
            )
        }

        guard let total = nanoseconds(
            year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanos: nanos,
            offsetSeconds: offsetSeconds
        ) else {
            throw scanner.failure(
                "the instant is outside the supported range 1677-09-21T00:12:43.145224192Z … 2262-04-11T23:47:16.854775807Z",
                at: 0
            )
        }
        return EventTimestamp(nanosecondsSinceEpoch: total)
    }

    /// Nanoseconds since the epoch of a validated date and time, or `nil` if out of range.
    @inline(__always)
    private static func nanoseconds(
        year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, nanos: Int64,
        offsetSeconds: Int64
    ) -> Int64? {
        var nanos = nanos
        let dayNumber = days(fromCivilYear: year, month: month, day: day)
        var seconds = dayNumber * secondsPerDay + hour * 3600 + minute * 60 + second - offsetSeconds
        if seconds < 0 && nanos > 0 {
            // Keep the intermediate product in range for instants just after the earliest one.
            seconds += 1
            nanos -= nanosPerSecond
        }
        let (scaled, overflow1) = seconds.multipliedReportingOverflow(by: nanosPerSecond)
        let (total, overflow2) = scaled.addingReportingOverflow(nanos)
        guard !overflow1, !overflow2 else { return nil }
        return total
    }

    /// The usual case, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, valid and in range, without the
    /// scanner; `nil` for anything else (which `parse` then reads, or explains, the long way).
    /// Gives the same instant `parse` would.
    @inline(__always)
    private static func parseUTCFast(_ text: UnsafeBufferPointer<UInt8>) -> EventTimestamp? {
        let count = text.count
        guard count >= 20, let base = text.baseAddress else { return nil }
        guard base[4] == UInt8(ascii: "-"), base[7] == UInt8(ascii: "-"), base[10] | 0x20 == UInt8(ascii: "t"),
            base[13] == UInt8(ascii: ":"), base[16] == UInt8(ascii: ":")
        else { return nil }
        // The fourteen digits of the date and time, each checked.
        var notDigits: UInt8 = 0
        @inline(__always) func two(_ index: Int) -> Int64 {
            let high = base[index] &- UInt8(ascii: "0")
            let low = base[index &+ 1] &- UInt8(ascii: "0")
            notDigits |= (high > 9 ? 1 : 0) | (low > 9 ? 1 : 0)
            return Int64(high) &* 10 &+ Int64(low)
        }
        let year = two(0) &* 100 &+ two(2)
        let month = two(5)
        let day = two(8)
        let hour = two(11)
        let minute = two(14)
        let second = two(17)
        guard notDigits == 0 else { return nil }

        var index = 19
        var nanos: Int64 = 0
        if base[index] == UInt8(ascii: ".") {
            // Digits past the ninth are dropped, as `parse` does.
            index &+= 1
            var digits = 0
            while index < count {
                let value = base[index] &- UInt8(ascii: "0")
                if value > 9 { break }
                if digits < 9 {
                    nanos = nanos &* 10 &+ Int64(value)
                    digits &+= 1
                }
                index &+= 1
            }
            guard digits > 0 else { return nil }
            while digits < 9 {
                nanos &*= 10
                digits &+= 1
            }
        }
        // Only a final Z here; offsets go the long way.
        guard index == count &- 1, base[index] | 0x20 == UInt8(ascii: "z") else { return nil }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 59,
            let total = nanoseconds(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanos: nanos,
                offsetSeconds: 0
            )
        else { return nil }
        return EventTimestamp(nanosecondsSinceEpoch: total)
    }

    /// Walks the bytes of a timestamp being parsed.
    private struct Scanner {
        let text: UnsafeBufferPointer<UInt8>
        var position = 0

        func peek() -> UInt8? {
            position < text.count ? text[position] : nil
        }

        mutating func number(digits: Int, of field: String) throws(JSONError) -> Int64 {
            var value: Int64 = 0
            for _ in 0..<digits {
                guard let byte = peek(), EventTimestamp.isDigit(byte) else {
                    throw failure("expected \(digits) digits for the \(field)")
                }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                position += 1
            }
            return value
        }

        mutating func expect(_ byte: UInt8, or alternative: UInt8? = nil, _ what: String) throws(JSONError) {
            guard let found = peek(), found == byte || found == alternative else {
                throw failure("expected \(what)")
            }
            position += 1
        }

        func failure(_ detail: String, at offset: Int? = nil) -> JSONError {
            let quoted = String(decoding: text, as: UTF8.self).debugDescription
            return JSONError(.invalidTimestamp, offset: offset ?? position, detail: "invalid RFC 3339 timestamp \(quoted): \(detail)")
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    // MARK: - Calendar arithmetic (proleptic Gregorian)

    private static let nanosPerSecond: Int64 = 1_000_000_000
    private static let secondsPerDay: Int64 = 86_400

    static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the given date.
    ///
    /// Counts in 400-year eras (146 097 days each) of years that start on 1 March, so the leap
    /// day is the last day of its year and the month lengths from March on follow a fixed
    /// pattern: day-of-year = (153 × month-index + 2) / 5 + day − 1.
    static func days(fromCivilYear year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400  // 0...399
        let monthIndex = month > 2 ? month - 3 : month + 9  // March = 0 … February = 11
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1  // 0...365
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear  // 0...146096
        // 719 468 days separate 0000-03-01 (the start of era 0) from 1970-01-01.
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `days` after 1970-01-01; the inverse of `days(fromCivilYear:month:day:)`.
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097  // 0...146096
        // Undo the leap-day counting: one fewer day every 4 years, one more every 100, one
        // fewer every 400 (the last day of the era).
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // 0...365
        let monthIndex = (5 * dayOfYear + 2) / 153  // 0...11, March = 0
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
