@testable import NATSClient
import Testing

@Suite struct RFC3339TimeTests {
    @Test func serverTimesAreReadToTheNanosecond() {
        #expect(RFC3339Time.nanoseconds("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339Time.nanoseconds("2026-03-05T12:00:01.123456789Z") == 1_772_712_001_123_456_789)
        #expect(RFC3339Time.nanoseconds("2026-03-05T12:00:01.5Z") == 1_772_712_001_500_000_000)
        #expect(RFC3339Time.nanoseconds("2026-03-05T13:00:01.5+01:00") == 1_772_712_001_500_000_000)
        #expect(RFC3339Time.nanoseconds("2026-03-05T12:00:01.1234567891Z") == 1_772_712_001_123_456_789, "past nanoseconds: cut")
        #expect(RFC3339Time.nanoseconds("1969-12-31T23:59:59Z") == -1_000_000_000)
        #expect(RFC3339Time.nanoseconds("2024-02-29T00:00:00Z") == 1_709_164_800_000_000_000)
        for bad in ["", "2026-03-05", "2026-03-05T12:00:01", "2026-13-05T12:00:01Z", "2025-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-03-05T12:00:01.Z", "2026-03-05T12:00:01Zjunk", "２026-03-05T12:00:01Z"] {
            #expect(RFC3339Time.nanoseconds(bad) == nil, "\(bad)")
        }
    }

    @Test func formattingReadsBack() {
        #expect(RFC3339Time.format(nanoseconds: 0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339Time.format(nanoseconds: 1_772_712_001_123_456_789) == "2026-03-05T12:00:01.123456789Z")
        #expect(RFC3339Time.format(nanoseconds: 1_772_712_001_500_000_000) == "2026-03-05T12:00:01.5Z")
        #expect(RFC3339Time.format(nanoseconds: -1) == "1969-12-31T23:59:59.999999999Z")
        #expect(RFC3339Time.format(nanoseconds: 1_772_712_001_123_456_789, fractionDigits: 6) == "2026-03-05T12:00:01.123456Z")
        #expect(RFC3339Time.format(nanoseconds: 1_772_712_001_000_000_000, fractionDigits: 6) == "2026-03-05T12:00:01.000000Z")
        #expect(RFC3339Time.format(nanoseconds: 1_772_712_001_900_000_000, fractionDigits: 0) == "2026-03-05T12:00:01Z")
        for value: Int64 in [0, 1, -1, 951_782_400_000_000_007, 4_102_444_799_999_999_999, -2_208_988_800_000_000_000] {
            #expect(RFC3339Time.nanoseconds(RFC3339Time.format(nanoseconds: value)) == value)
        }
    }
}
