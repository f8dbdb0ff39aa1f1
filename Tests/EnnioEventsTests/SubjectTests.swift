import EnnioEvents
import Testing

@Suite struct EventSubjectTests {
    static let badSegments: [(String, SubjectSegmentError.Code)] = [
        ("", .empty),
        ("my.app", .invalidCharacter),
        ("my app", .invalidCharacter),
        ("*", .wildcardNotAllowed),
        (">", .wildcardNotAllowed),
        ("app*", .invalidCharacter),
        ("app>", .invalidCharacter),
        ("ünïcode", .invalidCharacter),
        ("tab\there", .invalidCharacter),
        ("new\nline", .invalidCharacter),
        ("slash/es", .invalidCharacter),
        (String(repeating: "a", count: SubjectSegment.maximumLength + 1), .tooLong),
    ]

    @Test(arguments: badSegments)
    func badProjectIdsAreRejectedAndNamed(segment: String, code: SubjectSegmentError.Code) {
        let event = Event(type: .ciFailing, sessionId: "s", projectId: segment, message: "m")
        #expect(throws: SubjectSegmentError(code, segment: segment, role: "project_id")) {
            try EventSubject.subject(for: event)
        }
    }

    @Test(arguments: badSegments)
    func badHostsAreRejectedAndNamed(segment: String, code: SubjectSegmentError.Code) {
        let event = Event(type: .nodeConnected, sessionId: "", projectId: "p", message: "m")
        #expect(throws: SubjectSegmentError(code, segment: segment, role: "host")) {
            try EventSubject.subject(for: event, host: segment)
        }
    }

    @Test(arguments: badSegments)
    func badCommandsAreRejected(segment: String, code: SubjectSegmentError.Code) {
        #expect(throws: SubjectSegmentError(code, segment: segment, role: "command")) { try EventSubject.command(segment) }
    }

    @Test func goodSegmentsAreKeptAsTheyAre() throws {
        let longest = String(repeating: "x", count: SubjectSegment.maximumLength)
        for segment in ["a", "my-app", "My_App_2", "0", "-", "_", longest] {
            let event = Event(type: .prCreated, sessionId: "s", projectId: segment, message: "m")
            #expect(try EventSubject.subject(for: event) == "ennio.pr.\(segment).created")
        }
    }

    @Test func nodeEventsNeedAHost() {
        let event = Event(type: .nodeLaunched, sessionId: "", projectId: "p", message: "m")
        #expect(throws: SubjectSegmentError(.empty, segment: "", role: "host")) { try EventSubject.subject(for: event) }
    }

    @Test func allCompleteGoesToLifecycleWhateverTheProject() throws {
        let event = Event(type: .allComplete, sessionId: "", projectId: "not a segment.at all", message: "m")
        #expect(try EventSubject.subject(for: event) == "ennio.lifecycle.all_complete")
    }

    @Test func otherSubjectFamilies() throws {
        #expect(try EventSubject.command("shutdown") == "ennio.commands.shutdown")
        #expect(try EventSubject.metrics("cost_recorded") == "ennio.metrics.cost_recorded")
        #expect(try EventSubject.dashboard("sessions_updated") == "ennio.dashboard.sessions_updated")
        #expect(try EventSubject.lifecycle("poll_started") == "ennio.lifecycle.poll_started")
        #expect(throws: SubjectSegmentError.self) { try EventSubject.metrics("a.b") }
    }

    @Test func parsing() {
        #expect(EventSubject.parse("ennio.ci.p1.failing")?.eventType == .ciFailing)
        #expect(EventSubject.parse("ennio.ci.p1.failing")?.scope == "p1")
        #expect(EventSubject.parse("ennio.node.h1.health_check")?.eventType == .nodeHealthCheck)
        #expect(EventSubject.parse("ennio.lifecycle.all_complete")?.eventType == .allComplete)
        #expect(EventSubject.parse("ennio.ci.p1.unknown")?.eventType == nil)
        for bad in ["ennio.ci.p1", "ennio.ci.p1.failing.extra", "other.ci.p1.failing", "ennio.nope.p1.failing", "ennio.ci..failing", "ennio.lifecycle.a.b", "ennio"] {
            #expect(EventSubject.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func eventsBelongOnlyOnTheirOwnSubject() {
        let event = Event(type: .ciFailing, sessionId: "s", projectId: "p1", message: "m")
        #expect(EventSubject.belongs(event, on: "ennio.ci.p1.failing"))
        #expect(!EventSubject.belongs(event, on: "ennio.ci.p2.failing"))
        #expect(!EventSubject.belongs(event, on: "ennio.ci.p1.passing"))
        #expect(!EventSubject.belongs(event, on: "ennio.pr.p1.failing"))
        let node = Event(type: .nodeConnected, sessionId: "", projectId: "p", message: "m", data: ["host": "h1"])
        #expect(EventSubject.belongs(node, on: "ennio.node.h1.connected"))
        #expect(!EventSubject.belongs(node, on: "ennio.node.h2.connected"))
    }
}

@Suite struct EventPatternTests {
    @Test func builtPatterns() throws {
        #expect(EventPattern.all.subject == "ennio.>")
        #expect(try EventPattern.category(.ci, scope: "p1").subject == "ennio.ci.p1.*")
        #expect(try EventPattern.category(.ci).subject == "ennio.ci.*.*")
        #expect(try EventPattern.category(.lifecycle).subject == "ennio.lifecycle.*")
        #expect(try EventPattern.project("p1").subject == "ennio.*.p1.*")
        #expect(try EventPattern.node(host: "build-server").subject == "ennio.node.build-server.*")
        #expect(try EventPattern.type(.ciFailing).subject == "ennio.ci.*.failing")
        #expect(try EventPattern.type(.nodeHealthCheck, scope: "h").subject == "ennio.node.h.health_check")
        #expect(try EventPattern.type(.allComplete).subject == "ennio.lifecycle.all_complete")
    }

    @Test func badPatternSegmentsAreRejected() {
        #expect(throws: SubjectSegmentError(.invalidCharacter, segment: "p.1", role: "project_id")) { try EventPattern.project("p.1") }
        #expect(throws: SubjectSegmentError(.wildcardNotAllowed, segment: ">", role: "host")) { try EventPattern.node(host: ">") }
        #expect(throws: SubjectSegmentError(.empty, segment: "", role: "project_id")) { try EventPattern.category(.ci, scope: "") }
    }

    @Test func handWrittenPatterns() throws {
        let good = [
            "ennio.>", "ennio.*.p1.*", "ennio.ci.*.failing", "ennio.node.h.>", "ennio.ci.>", "ennio.ci.*.*",
            "ennio.ci.my-app.>", "ennio.lifecycle.*", "ennio.lifecycle.>", "ennio.lifecycle.all_complete", "ennio.*.all_complete",
            "ennio.*.*.failing", "ennio.node.*.health_check", "ennio.ci.my-app.fix_sent", "ennio.*.>", "ennio.*.p1.>",
        ]
        for pattern in good {
            #expect(try EventPattern(validating: pattern).subject == pattern)
        }
        for bad in ["other.>", "ennio", "ennio.>.ci", "ennio.c i.*", "ennio..*", "ennio.ci.p*.*", ">"] {
            #expect(throws: SubjectSegmentError.self, "\(bad)") { try EventPattern(validating: bad) }
        }
    }

    /// Every pattern that can match no event subject is refused, naming the token and why
    /// (issue 15, item 3).
    static let patternsThatMatchNothing: [(String, SubjectSegmentError.Code, String, [String])] = [
        ("ennio.ci.*", .wrongTokenCount, "ennio.ci.*", ["ci subjects have 4 tokens", "ennio.ci.<project_id>.<action>", "has 3", "ennio.ci.*.*"]),
        ("ennio.ci.my.app.failing", .wrongTokenCount, "ennio.ci.my.app.failing", ["has 5", "\"my.app\"", "cannot contain '.'"]),
        ("ennio.lifecycle.x.>", .wrongTokenCount, "ennio.lifecycle.x.>", ["lifecycle subjects have 3 tokens", "at least 4"]),
        ("ennio.ci.p.failing.>", .wrongTokenCount, "ennio.ci.p.failing.>", ["ci subjects have 4 tokens", "at least 5"]),
        ("ennio.*", .wrongTokenCount, "ennio.*", ["3 or 4 tokens", "has 2"]),
        ("ennio.*.a.b.c", .wrongTokenCount, "ennio.*.a.b.c", ["3 or 4 tokens", "has 5"]),
        ("ennio.foo.>", .unknownCategory, "foo", ["sessions, pr, ci", "node"]),
        ("ennio.commands.*", .unknownCategory, "commands", ["commands to node agents, not events"]),
        ("ennio.query.>", .unknownCategory, "query", ["queries to the coordinator, not events"]),
        ("ennio.ci.>.failing", .misplacedWildcard, ">", ["only be the last token"]),
        ("ennio.>.x", .misplacedWildcard, ">", ["only be the last token"]),
        ("ennio.ci.*.fooo", .unknownAction, "fooo", ["ci has no event type", "passing, failing, fix_sent, fix_failed"]),
        ("ennio.lifecycle.poll_started", .unknownAction, "poll_started", ["lifecycle has no event type", "all_complete"]),
        ("ennio.*.*.fooo", .unknownAction, "fooo", ["4-token subjects"]),
        ("ennio.*.failing", .unknownAction, "failing", ["lifecycle has no event type"]),
        ("ennio.ci.my app.failing", .invalidCharacter, "my app", ["project_id"]),
        ("ennio.node.a b.*", .invalidCharacter, "a b", ["host"]),
        ("ennio.ci..failing", .empty, "", ["project_id"]),
    ]

    @Test(arguments: patternsThatMatchNothing)
    func aPatternThatCanMatchNoEventIsRefusedSayingWhy(pattern: String, code: SubjectSegmentError.Code, segment: String, phrases: [String]) {
        do {
            let accepted = try EventPattern(validating: pattern)
            Issue.record("\(pattern) was accepted as \(accepted)")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(error.segment == segment, "\(error)")
            for phrase in phrases {
                #expect(error.description.contains(phrase), "\(error.description) lacks \(phrase.debugDescription)")
            }
        }
    }

    /// The check follows the category table: every event type's subject, and the patterns built
    /// from it, are valid, whatever categories there are.
    @Test func everyEventSubjectAndBuiltPatternIsValid() throws {
        for type in EventType.allCases {
            let subject = try EventSubject.subject(for: type, projectId: "p", host: "h")
            #expect(try EventPattern(validating: subject).subject == subject)
            #expect(try EventPattern(validating: EventPattern.type(type).subject).subject == EventPattern.type(type).subject)
        }
        for category in EventCategory.allCases {
            let pattern = try EventPattern.category(category).subject
            #expect(try EventPattern(validating: pattern).subject == pattern)
            #expect(try EventPattern(validating: "ennio.\(category.rawValue).>").subject == "ennio.\(category.rawValue).>")
        }
    }
}
