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

    /// Checks a pattern (or a subject) written by hand: it must be able to match the subject of
    /// some event type. It starts with `ennio`; its other tokens are valid segments or `*`; `>`
    /// is only the last token; a literal category is one of ``EventCategory``; the number of
    /// tokens fits the category's subjects (four for `ennio.ci.<project_id>.<action>`, three for
    /// `ennio.lifecycle.<action>`); a literal action is one of the category's event types.
    ///
    /// - Throws: a ``SubjectSegmentError`` naming the token that cannot match and why:
    ///   `ennio.ci.*` (CI subjects have four tokens), `ennio.foo.>` (no category `foo`),
    ///   `ennio.ci.>.failing` (`>` must be last), `ennio.ci.my.app.failing` (a project id
    ///   cannot contain a dot), `ennio.ci.*.fooo` (no CI event `fooo`).
    public init(validating pattern: String) throws(SubjectSegmentError) {
        let tokens = pattern.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.first == EventSubject.prefix, tokens.count >= 2 else {
            throw SubjectSegmentError(
                .notAnEventSubject, segment: pattern, role: "pattern",
                reason: "event subjects start with \"\(EventSubject.prefix).\" and have a category (ennio.<category>.…)")
        }
        let hasTail = tokens.last == ">"
        // What a token is for, in errors: its role where the category says, else its position.
        let named = EventCategory(rawValue: tokens[1])
        func role(_ index: Int) -> String {
            if index == 1 { return "category" }
            guard let named, index < named.subjectTokenCount else { return "token \(index + 1)" }
            if index == named.subjectTokenCount - 1 { return "action" }
            return named.scope == .host ? "host" : "project_id"
        }
        for (index, token) in tokens.enumerated().dropFirst() {
            if token == ">" {
                guard index == tokens.count - 1 else {
                    throw SubjectSegmentError(
                        .misplacedWildcard, segment: token, role: role(index),
                        reason: "'>' matches the rest of a subject, so it can only be the last token")
                }
                continue
            }
            try SubjectSegment.validatePatternToken(token, role: role(index))
        }
        // The categories the second token allows, then those whose subjects have as many tokens.
        var candidates = EventCategory.allCases
        if tokens[1] != "*" && tokens[1] != ">" {
            guard let category = EventCategory(rawValue: tokens[1]) else {
                let kind = EventSubject.nonEventFamilies[tokens[1]].map { "it carries \($0), not events; " } ?? ""
                throw SubjectSegmentError(
                    .unknownCategory, segment: tokens[1], role: "category",
                    reason: "\(kind)event categories are \(EventCategory.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            candidates = [category]
        }
        let fits = candidates.filter { hasTail ? $0.subjectTokenCount >= tokens.count : $0.subjectTokenCount == tokens.count }
        guard !fits.isEmpty else { throw Self.wrongCount(pattern, tokens: tokens, hasTail: hasTail, candidates: candidates) }
        // The action is a subject's last token: where the pattern has it literally, it must be one.
        let matching = fits.filter { category in
            let position = category.subjectTokenCount - 1
            guard position < tokens.count, tokens[position] != "*", tokens[position] != ">" else { return true }
            return category.eventTypes.contains { $0.action == tokens[position] }
        }
        guard !matching.isEmpty else { throw Self.unknownAction(tokens: tokens, categories: fits) }
        self.subject = pattern
    }

    private static func wrongCount(_ pattern: String, tokens: [String], hasTail: Bool, candidates: [EventCategory]) -> SubjectSegmentError {
        let shapes = candidates.map { "\($0.rawValue) subjects have \($0.subjectTokenCount) tokens (\(EventSubject.template(for: $0)))" }
        let counts = Set(candidates.map(\.subjectTokenCount)).sorted().map(String.init).joined(separator: " or ")
        var reason = candidates.count == 1 ? shapes[0] : "event subjects have \(counts) tokens"
        reason += hasTail ? ", and this pattern needs at least \(tokens.count)" : ", this pattern has \(tokens.count)"
        if let category = candidates.first, candidates.count == 1, category.scope != .global, tokens.count > category.subjectTokenCount, !hasTail {
            // The usual cause: a project id or host with a dot in it, split into tokens.
            let scope = tokens[2..<(tokens.count - 1)].joined(separator: ".")
            reason += "; is \(scope.debugDescription) meant as one \(category.scope == .host ? "host" : "project_id")? A segment cannot contain '.'"
        } else if let category = candidates.first, candidates.count == 1, tokens.count < category.subjectTokenCount, !hasTail {
            let filled = tokens + Array(repeating: "*", count: category.subjectTokenCount - tokens.count)
            reason += "; perhaps \(filled.joined(separator: "."))"
        }
        return SubjectSegmentError(.wrongTokenCount, segment: pattern, role: "pattern", reason: reason)
    }

    private static func unknownAction(tokens: [String], categories: [EventCategory]) -> SubjectSegmentError {
        let position = categories[0].subjectTokenCount - 1
        let action = tokens[position]
        let reason = if categories.count == 1 {
            "\(categories[0].rawValue) has no event type with this action (its actions: \(categories[0].eventTypes.map(\.action).joined(separator: ", ")))"
        } else {
            "no category of \(position + 1)-token subjects (\(categories.map(\.rawValue).joined(separator: ", "))) has an event type with this action; `ennio topics` lists them"
        }
        return SubjectSegmentError(.unknownAction, segment: action, role: "action", reason: reason)
    }

    public var description: String { subject }
}

extension EventCategory {
    /// How many tokens the subjects of this category have.
    var subjectTokenCount: Int {
        switch scope {
        case .project, .host: 4
        case .global: 3
        }
    }
}
