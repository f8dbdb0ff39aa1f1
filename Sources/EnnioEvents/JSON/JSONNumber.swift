/// A JSON number kept as the text it arrived as: `1e14`, `0.1`, `-0`, `2.50`,
/// `12345678901234567890` — every number the reader does not read as an `Int64` integer.
///
/// Writing it again writes the same text, so an event's `data` is stored and re-published as
/// it was published (the Rust implementation's serde_json keeps integers integers, and a number
/// never grows from `1e14` to `100000000000000.0`). Numbers built in code are `.int` or
/// `.double` values instead.
///
/// Two numbers are equal when their values are (`1e2` and `100.0`, or a `.double(100)`): see
/// ``JSONValue``.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number's JSON text, exactly as it was read (RFC 8259 grammar, within `Double`'s range).
    public let text: String

    /// Made by the reader from text it validated.
    init(validatedText text: String) {
        self.text = text
    }

    /// The nearest `Double`. (The reader refuses numbers beyond `Double`'s range; one too small
    /// for it is 0.)
    public var doubleValue: Double {
        Double(text) ?? .nan
    }

    public var description: String { text }

    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        lhs.text == rhs.text || lhs.doubleValue == rhs.doubleValue
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(doubleValue)
    }
}
