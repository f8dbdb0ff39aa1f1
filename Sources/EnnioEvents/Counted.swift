/// A count with its noun, singular or plural as English wants: "1 event", "2 events",
/// "0 sessions".
public struct Counted: Sendable, Hashable, CustomStringConvertible {
    public let count: Int
    public let noun: String
    public let plural: String

    /// `plural` defaults to the noun with an "s".
    public init(_ count: Int, _ noun: String, plural: String? = nil) {
        self.count = count
        self.noun = noun
        self.plural = plural ?? noun + "s"
    }

    public var description: String { "\(count) \(count == 1 ? noun : plural)" }
}
