/// How much attention an event asks for, from least to most: `info < action < urgent < critical`.
public enum EventPriority: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case info
    case action
    case urgent
    case critical

    private var rank: Int {
        switch self {
        case .info: 0
        case .action: 1
        case .urgent: 2
        case .critical: 3
        }
    }

    public static func < (lhs: EventPriority, rhs: EventPriority) -> Bool {
        lhs.rank < rhs.rank
    }

    /// The lower-case name used on the wire.
    public var description: String { rawValue }
}

extension EventPriority {
    private static let byWireNameBytes = ByteKeyedTable(allCases.map { (name: $0.rawValue, value: $0) })

    /// `EventPriority(rawValue:)` from the wire name's UTF-8 bytes, without making a `String`.
    init?(wireNameBytes bytes: UnsafeBufferPointer<UInt8>) {
        guard let priority = Self.byWireNameBytes.value(for: bytes) else { return nil }
        self = priority
    }
}
