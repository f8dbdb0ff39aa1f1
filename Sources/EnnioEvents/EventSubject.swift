/// Builds and reads the subjects events travel on.
///
/// - `ennio.<category>.<project_id>.<action>` for sessions, pr, ci, review, merge, reactions
/// - `ennio.rollout.<channel>.<action>`, `ennio.run.<project>.<action>` (the channel or project is
///   the event's `project_id`)
/// - `ennio.lifecycle.<action>` (the project is in the event body)
/// - `ennio.node.<host>.<action>` (the host that emitted the event)
/// - `ennio.commands.<command>`, `ennio.metrics.<action>`, `ennio.dashboard.<action>`
///
/// Every variable segment is checked with ``SubjectSegment``.
public enum EventSubject {
    public static let prefix = "ennio"

    /// The subject `event` is published to. Node events need the emitting `host`.
    public static func subject(for event: Event, host: String? = nil) throws(SubjectSegmentError) -> String {
        try subject(for: event.eventType, projectId: event.projectId, host: host)
    }

    /// The subject of an event of `type` for `projectId`, or for `host` when it is a node event.
    public static func subject(for type: EventType, projectId: String, host: String? = nil) throws(SubjectSegmentError) -> String {
        let category = type.category
        switch category.scope {
        case .project:
            try SubjectSegment.validate(projectId, role: "project_id")
            return "\(prefix).\(category.rawValue).\(projectId).\(type.action)"
        case .host:
            let host = host ?? ""
            try SubjectSegment.validate(host, role: "host")
            return "\(prefix).node.\(host).\(type.action)"
        case .global:
            return "\(prefix).\(category.rawValue).\(type.action)"
        }
    }

    /// The subject of `type` with its variable part named: `ennio.ci.<project_id>.failing`,
    /// `ennio.node.<host>.health_check`, `ennio.lifecycle.all_complete`,
    /// `ennio.rollout.<channel>.opened`.
    public static func template(for type: EventType) -> String {
        switch type.category.scope {
        case .project: "\(prefix).\(type.category.rawValue).<\(type.family.projectRole)>.\(type.action)"
        case .host: "\(prefix).node.<host>.\(type.action)"
        case .global: "\(prefix).\(type.category.rawValue).\(type.action)"
        }
    }

    /// `ennio.commands.<command>`.
    public static func command(_ command: String) throws(SubjectSegmentError) -> String {
        try SubjectSegment.validate(command, role: "command")
        return "\(prefix).commands.\(command)"
    }

    /// `ennio.lifecycle.<action>`.
    public static func lifecycle(_ action: String) throws(SubjectSegmentError) -> String {
        try SubjectSegment.validate(action, role: "action")
        return "\(prefix).lifecycle.\(action)"
    }

    /// `ennio.metrics.<action>`.
    public static func metrics(_ action: String) throws(SubjectSegmentError) -> String {
        try SubjectSegment.validate(action, role: "action")
        return "\(prefix).metrics.\(action)"
    }

    /// `ennio.dashboard.<action>`.
    public static func dashboard(_ action: String) throws(SubjectSegmentError) -> String {
        try SubjectSegment.validate(action, role: "action")
        return "\(prefix).dashboard.\(action)"
    }

    /// What an event subject says: category, project or host, action, and the event type.
    public struct Parsed: Sendable, Hashable {
        public let category: EventCategory
        /// The project (for project-scoped categories) or the host (for node events).
        public let scope: String?
        public let action: String
        /// The event type whose subject this is, if the action names one.
        public let eventType: EventType?
    }

    /// Reads an event subject; `nil` when it is not one (wrong prefix, unknown category,
    /// wrong number of tokens, invalid segment).
    public static func parse(_ subject: String) -> Parsed? {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.count >= 3, tokens[0] == prefix, let category = EventCategory(rawValue: tokens[1]) else { return nil }
        let scope: String?
        let action: String
        switch category.scope {
        case .project, .host:
            guard tokens.count == 4 else { return nil }
            scope = tokens[2]
            action = tokens[3]
        case .global:
            guard tokens.count == 3 else { return nil }
            scope = nil
            action = tokens[2]
        }
        guard tokens.dropFirst(2).allSatisfy(SubjectSegment.isValid) else { return nil }
        return Parsed(category: category, scope: scope, action: action, eventType: EventType(category: category, action: action))
    }
}
