/// Why a subject (or subscription pattern, or queue group) was rejected.
public struct SubjectError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case empty, emptyToken, whitespace, wildcardNotAllowed, wildcardInsideToken, fullWildcardNotLast
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The subject is the empty string.
        public static let empty = Code(.empty)
        /// Two dots in a row, or a leading or trailing dot.
        public static let emptyToken = Code(.emptyToken)
        /// A space, tab, CR, LF or other control character.
        public static let whitespace = Code(.whitespace)
        /// `*` or `>` where only a concrete subject is allowed (publishing).
        public static let wildcardNotAllowed = Code(.wildcardNotAllowed)
        /// `*` or `>` as part of a longer token, like `a.b*`.
        public static let wildcardInsideToken = Code(.wildcardInsideToken)
        /// `>` anywhere but the last token.
        public static let fullWildcardNotLast = Code(.fullWildcardNotLast)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// The rejected subject.
    public let subject: String

    public init(_ code: Code, subject: String) {
        self.code = code
        self.subject = subject
    }

    public var description: String { "invalid subject \(subject.debugDescription): \(code)" }
}

/// Validation and wildcard matching of NATS subjects.
///
/// A subject is a list of tokens separated by `.`; no token is empty and none holds whitespace.
/// In a subscription pattern a token may be `*` (exactly one token) or, as the last token,
/// `>` (one or more tokens).
public enum Subject {
    /// Checks a subject to publish to: no wildcards allowed.
    public static func validate(_ subject: String) throws(SubjectError) {
        try validate(subject, allowingWildcards: false)
    }

    /// The rule a subject to publish to breaks, if any, from its UTF-8 bytes: the same answer
    /// as ``validate(_:)``, in one pass that mostly compares each byte once (this runs for
    /// every message published).
    public static func problem(inPublishSubject bytes: UnsafeBufferPointer<UInt8>) -> SubjectError.Code? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .empty }
        var previous = UInt8(ascii: ".")
        for index in 0..<bytes.count {
            let byte = base[index]
            // Above `>` only DEL is refused: letters, digits' neighbours, `_`, `-` take one test.
            if byte > UInt8(ascii: ">") {
                if byte == 0x7F { return .whitespace }
            } else if byte == UInt8(ascii: ".") {
                if previous == UInt8(ascii: ".") { return .emptyToken }
            } else if byte <= 0x20 {
                return .whitespace
            } else if byte == UInt8(ascii: "*") || byte == UInt8(ascii: ">") {
                return .wildcardNotAllowed
            }
            previous = byte
        }
        return previous == UInt8(ascii: ".") ? .emptyToken : nil
    }

    /// Checks a subscription pattern: `*` and `>` allowed as whole tokens, `>` only last.
    public static func validatePattern(_ pattern: String) throws(SubjectError) {
        try validate(pattern, allowingWildcards: true)
    }

    /// Checks a queue group name: non-empty, no whitespace.
    public static func validateQueueGroup(_ name: String) throws(SubjectError) {
        if name.isEmpty { throw SubjectError(.empty, subject: name) }
        if name.utf8.contains(where: isWhitespaceOrControl) { throw SubjectError(.whitespace, subject: name) }
    }

    public static func isValid(_ subject: String) -> Bool {
        (try? validate(subject)) != nil
    }

    public static func isValidPattern(_ pattern: String) -> Bool {
        (try? validatePattern(pattern)) != nil
    }

    static func validate(_ subject: String, allowingWildcards: Bool) throws(SubjectError) {
        // Native strings hand out their UTF-8 directly; the loop then runs on plain bytes.
        let problem = subject.utf8.withContiguousStorageIfAvailable { problemIn($0, allowingWildcards: allowingWildcards) }
            ?? problemIn(subject.utf8, allowingWildcards: allowingWildcards)
        if let problem { throw SubjectError(problem, subject: subject) }
    }

    /// The first rule `bytes` breaks, if any.
    @inline(__always)
    private static func problemIn(_ bytes: some Collection<UInt8>, allowingWildcards: Bool) -> SubjectError.Code? {
        guard !bytes.isEmpty else { return .empty }
        var tokenLength = 0
        var tokenIsWildcard = false
        var sawFullWildcard = false
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                if tokenLength == 0 { return .emptyToken }
                if sawFullWildcard { return .fullWildcardNotLast }
                tokenLength = 0
                tokenIsWildcard = false
                continue
            }
            if isWhitespaceOrControl(byte) { return .whitespace }
            if sawFullWildcard { return .wildcardInsideToken }
            if byte == UInt8(ascii: "*") || byte == UInt8(ascii: ">") {
                if !allowingWildcards { return .wildcardNotAllowed }
                if tokenLength != 0 { return .wildcardInsideToken }
                tokenIsWildcard = true
                sawFullWildcard = byte == UInt8(ascii: ">")
            } else if tokenIsWildcard {
                return .wildcardInsideToken
            }
            tokenLength += 1
        }
        if tokenLength == 0 { return .emptyToken }
        return nil
    }

    /// Whether a concrete `subject` matches a subscription `pattern` (which may use `*` and `>`).
    public static func matches(pattern: String, subject: String) -> Bool {
        var patternTokens = pattern.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)[...]
        var subjectTokens = subject.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)[...]
        while let patternToken = patternTokens.popFirst() {
            if patternToken.elementsEqual(">".utf8) {
                return patternTokens.isEmpty && !subjectTokens.isEmpty
            }
            guard let subjectToken = subjectTokens.popFirst() else { return false }
            if patternToken.elementsEqual("*".utf8) { continue }
            if !patternToken.elementsEqual(subjectToken) { return false }
        }
        return subjectTokens.isEmpty
    }
}

private func isWhitespaceOrControl(_ byte: UInt8) -> Bool {
    byte <= 0x20 || byte == 0x7F
}
