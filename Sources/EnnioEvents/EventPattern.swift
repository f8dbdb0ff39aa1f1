/// A subscription pattern over event subjects, built with the same segment rules as subjects
/// plus the wildcards `*` (one token) and `>` (the rest).
public struct EventPattern: Sendable, Hashable, CustomStringConvertible {
    /// The NATS subject pattern.
    public let subject: String

    private init(unchecked subject: String) {
        self.subject = subject
    }

    /// Every event subject: `ennio.>`.
    public static let all = EventPattern(unchecked: "ennio.>")

    /// Every command: `ennio.commands.*`.
    public static let commands = EventPattern(unchecked: "ennio.commands.*")

    /// Every event of a category, for one project or host, or all (`nil`): `ennio.ci.p1.*`,
    /// `ennio.node.*.*`, `ennio.lifecycle.*`.
    public static func category(_ category: EventCategory, scope: String? = nil) throws(SubjectSegmentError) -> EventPattern {
        switch category.scope {
        case .project, .host:
            let token = scope ?? "*"
            try SubjectSegment.validatePatternToken(token, role: category.scope == .host ? "host" : "project_id")
            return EventPattern(unchecked: "ennio.\(category.rawValue).\(token).*")
        case .global:
            return EventPattern(unchecked: "ennio.\(category.rawValue).*")
        }
    }

    /// Every project-scoped event of one project: `ennio.*.<project>.*`. (This also matches
    /// node events of a host with the same name; filter on the category if that matters.)
    public static func project(_ projectId: String) throws(SubjectSegmentError) -> EventPattern {
        try SubjectSegment.validate(projectId, role: "project_id")
        return EventPattern(unchecked: "ennio.*.\(projectId).*")
    }

    /// Every event of one node: `ennio.node.<host>.*`.
    public static func node(host: String) throws(SubjectSegmentError) -> EventPattern {
        try category(.node, scope: host)
    }

    /// One event type, for one project or host, or all (`nil`): `ennio.ci.*.failing`.
    public static func type(_ type: EventType, scope: String? = nil) throws(SubjectSegmentError) -> EventPattern {
        switch type.category.scope {
        case .project, .host:
            let token = scope ?? "*"
            try SubjectSegment.validatePatternToken(token, role: type.category.scope == .host ? "host" : "project_id")
            return EventPattern(unchecked: "ennio.\(type.category.rawValue).\(token).\(type.action)")
        case .global:
            return EventPattern(unchecked: "ennio.\(type.category.rawValue).\(type.action)")
        }
    }

    /// Checks a pattern written by hand: it must start with `ennio`, every other token must be
    /// a valid segment or `*`, and `>` may only be the last token.
    public init(validating pattern: String) throws(SubjectSegmentError) {
        let tokens = pattern.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.first == EventSubject.prefix, tokens.count >= 2 else {
            throw SubjectSegmentError(.notAnEventSubject, segment: pattern, role: "pattern")
        }
        for (index, token) in tokens.enumerated().dropFirst() {
            if token == ">" && index == tokens.count - 1 { continue }
            try SubjectSegment.validatePatternToken(token, role: "pattern segment")
        }
        self.subject = pattern
    }

    public var description: String { subject }
}
