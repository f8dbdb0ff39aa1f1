/// Why a part of an event subject was rejected. It names the bad segment and what it was for;
/// a bad segment is never escaped or rewritten.
public struct SubjectSegmentError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case empty, tooLong, invalidCharacter, wildcardNotAllowed, notAnEventSubject
            case misplacedWildcard, unknownCategory, wrongTokenCount, unknownAction
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let empty = Code(.empty)
        /// Longer than ``SubjectSegment/maximumLength`` bytes.
        public static let tooLong = Code(.tooLong)
        /// Anything but ASCII letters, digits, `_` and `-` (dots, spaces, `*`, `>`, unicode, …).
        public static let invalidCharacter = Code(.invalidCharacter)
        /// A wildcard where a concrete value is needed.
        public static let wildcardNotAllowed = Code(.wildcardNotAllowed)
        /// A subject or pattern outside the `ennio.` scheme.
        public static let notAnEventSubject = Code(.notAnEventSubject)
        /// `>` anywhere but as the last token of a pattern.
        public static let misplacedWildcard = Code(.misplacedWildcard)
        /// The second token names no event category (`ennio.foo.>`, `ennio.commands.*`).
        public static let unknownCategory = Code(.unknownCategory)
        /// More or fewer tokens than the category's subjects have (`ennio.ci.*`: CI subjects
        /// have four).
        public static let wrongTokenCount = Code(.wrongTokenCount)
        /// The action token names no event type of the category (`ennio.ci.*.fooo`).
        public static let unknownAction = Code(.unknownAction)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// The rejected text.
    public let segment: String
    /// What the segment was for: `project_id`, `host`, `command`, `action`, `subject`.
    public let role: String
    /// Why the segment does not fit, where its code alone does not say (which categories there
    /// are, how many tokens a category's subjects have, …).
    public let reason: String?

    public init(_ code: Code, segment: String, role: String, reason: String? = nil) {
        self.code = code
        self.segment = segment
        self.role = role
        self.reason = reason
    }

    public var description: String {
        if let reason { return "invalid \(role) \(segment.debugDescription): \(reason)" }
        return switch code {
        case .empty: "invalid \(role): it is empty"
        case .tooLong: "invalid \(role) \(segment.debugDescription): longer than \(SubjectSegment.maximumLength) bytes"
        case .wildcardNotAllowed: "invalid \(role) \(segment.debugDescription): wildcards are only allowed in patterns"
        case .notAnEventSubject: "invalid \(role) \(segment.debugDescription): not an ennio event subject"
        default: "invalid \(role) \(segment.debugDescription): only ASCII letters, digits, '_' and '-' are allowed"
        }
    }
}

/// The rule for one token of an event subject: 1 to 128 ASCII letters, digits, `_` or `-`.
public enum SubjectSegment {
    public static let maximumLength = 128

    /// Checks `segment`, naming it `role` in the error.
    public static func validate(_ segment: String, role: String) throws(SubjectSegmentError) {
        let bytes = segment.utf8
        guard !bytes.isEmpty else { throw SubjectSegmentError(.empty, segment: segment, role: role) }
        guard bytes.count <= maximumLength else { throw SubjectSegmentError(.tooLong, segment: segment, role: role) }
        for byte in bytes where !isAllowed(byte) {
            if segment == "*" || segment == ">" {
                throw SubjectSegmentError(.wildcardNotAllowed, segment: segment, role: role)
            }
            throw SubjectSegmentError(.invalidCharacter, segment: segment, role: role)
        }
    }

    /// Like `validate`, but `*` is accepted as a whole segment.
    static func validatePatternToken(_ segment: String, role: String) throws(SubjectSegmentError) {
        if segment == "*" { return }
        try validate(segment, role: role)
    }

    public static func isValid(_ segment: String) -> Bool {
        (try? validate(segment, role: "segment")) != nil
    }

    @inline(__always)
    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
