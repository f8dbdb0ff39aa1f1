import NATSProtocol
import Testing

@Suite struct SubjectTests {
    @Test(arguments: ["a", "foo.bar", "foo.bar.baz", "ennio.ci.my-app.passing", "_INBOX.abc.1", "a.b_c-d.E9", "ünï.côdé"])
    func validSubjects(subject: String) throws {
        try Subject.validate(subject)
        try Subject.validatePattern(subject)
    }

    @Test(arguments: [
        ("", SubjectError.Code.empty),
        (".", .emptyToken),
        ("a.", .emptyToken),
        (".a", .emptyToken),
        ("a..b", .emptyToken),
        ("a b", .whitespace),
        ("a\tb", .whitespace),
        ("a\r\nb", .whitespace),
        ("a.*", .wildcardNotAllowed),
        ("a.>", .wildcardNotAllowed),
        ("*", .wildcardNotAllowed),
    ])
    func invalidPublishSubjects(subject: String, code: SubjectError.Code) {
        #expect(throws: SubjectError(code, subject: subject)) { try Subject.validate(subject) }
    }

    /// The one-pass check publishing uses gives the same verdict as `validate` on every
    /// subject above and on many random ones built from the bytes that matter.
    @Test func thePublishFastPathAgreesWithValidate() {
        var samples = ["a", "foo.bar", "ünï.côdé", "", ".", "a.", ".a", "a..b", "a b", "a\tb", "a.*", "a.>", "*", "a*b", "a>b", "a\u{7F}b", "~.~", "a.b\u{0}"]
        let alphabet = Array("ab.*> \t\u{7F}~?=-_9é".unicodeScalars)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let length = Int.random(in: 0...8, using: &generator)
            samples.append(String(String.UnicodeScalarView((0..<length).map { _ in alphabet.randomElement(using: &generator)! })))
        }
        for subject in samples {
            var expected: SubjectError.Code?
            do {
                try Subject.validate(subject)
            } catch {
                expected = error.code
            }
            var bytes = subject
            let found = bytes.withUTF8 { Subject.problem(inPublishSubject: $0) }
            #expect(found == expected, "\(subject.debugDescription)")
        }
    }

    @Test(arguments: ["*", ">", "a.*", "a.>", "*.b.*", "a.*.>", "*.*"])
    func validPatterns(pattern: String) throws {
        try Subject.validatePattern(pattern)
        #expect(!Subject.isValid(pattern))
    }

    @Test(arguments: [
        ("a.>.b", SubjectError.Code.fullWildcardNotLast),
        (">.a", .fullWildcardNotLast),
        ("a.b*", .wildcardInsideToken),
        ("a.*b", .wildcardInsideToken),
        ("a.>>", .wildcardInsideToken),
        ("a.**", .wildcardInsideToken),
        ("a..*", .emptyToken),
        ("a.* ", .whitespace),
    ])
    func invalidPatterns(pattern: String, code: SubjectError.Code) {
        #expect(throws: SubjectError(code, subject: pattern)) { try Subject.validatePattern(pattern) }
    }

    @Test func queueGroups() {
        #expect((try? Subject.validateQueueGroup("workers")) != nil)
        #expect(throws: SubjectError(.empty, subject: "")) { try Subject.validateQueueGroup("") }
        #expect(throws: SubjectError(.whitespace, subject: "a b")) { try Subject.validateQueueGroup("a b") }
    }

    @Test(arguments: [
        ("foo", "foo", true),
        ("foo", "bar", false),
        ("foo.*", "foo.bar", true),
        ("foo.*", "foo", false),
        ("foo.*", "foo.bar.baz", false),
        ("foo.>", "foo.bar", true),
        ("foo.>", "foo.bar.baz", true),
        ("foo.>", "foo", false),
        (">", "anything.at.all", true),
        ("*", "one", true),
        ("*", "one.two", false),
        ("*.bar.*", "foo.bar.baz", true),
        ("*.bar.*", "foo.baz.baz", false),
        ("ennio.*.p1.*", "ennio.ci.p1.passing", true),
        ("ennio.*.p1.*", "ennio.ci.p2.passing", false),
        ("ennio.ci.p1.*", "ennio.ci.p1", false),
        ("a.*.>", "a.b.c", true),
        ("a.*.>", "a.b", false),
        ("foo.bar", "foo.bar.baz", false),
    ])
    func matching(pattern: String, subject: String, matches: Bool) {
        #expect(Subject.matches(pattern: pattern, subject: subject) == matches)
    }
}
