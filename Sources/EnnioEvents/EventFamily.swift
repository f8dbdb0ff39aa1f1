/// A family of event types that share the envelope, the subjects, the stream and the history,
/// and differ in what `project_id` and `session_id` stand for, in the members of `data`, and in
/// the rules a reducer applies to them.
///
/// The registry is ``all``: the orchestrator's sessions, pull requests, CI, … first, then fleet
/// rollouts and workflow runs. A family's types are the rows of the ``EventType`` table whose
/// category belongs to it (``EventCategory/family``), so a new type is one row of that table;
/// each row declares its subject action and typed `data` members. `topics.md` has one section
/// per family, made from its table and its ``documentation``.
public struct EventFamily: Sendable, Hashable, CustomStringConvertible {
    /// A short name (`orchestrator`, `rollouts`, `runs`).
    public let name: String
    /// The heading of its section in `topics.md`.
    public let title: String
    /// What the envelope's `project_id` holds; also the name of the subject's third token.
    public let projectRole: String
    /// What the envelope's `session_id` holds.
    public let sessionRole: String
    /// Its own paragraphs of `topics.md`, after the table of its types and their members.
    let documentation: @Sendable () -> [String]

    init(name: String, title: String, projectRole: String, sessionRole: String, documentation: @escaping @Sendable () -> [String] = { [] }) {
        self.name = name
        self.title = title
        self.projectRole = projectRole
        self.sessionRole = sessionRole
        self.documentation = documentation
    }

    /// Every family, in the order of `topics.md`.
    public static let all: [EventFamily] = [.orchestrator, .rollouts, .runs]

    /// Sessions, pull requests, CI, reviews, merges, reactions, lifecycle and nodes: the
    /// orchestrator's events, as the Rust implementation has them. `data` is free.
    public static let orchestrator = EventFamily(
        name: "orchestrator", title: "Sessions, pull requests, CI, reviews, merges, reactions, lifecycle, nodes",
        projectRole: "project_id", sessionRole: "the session (empty for events about a project or node)")

    /// The categories of this family, in table order.
    public var categories: [EventCategory] { EventCategory.allCases.filter { $0.family == self } }

    /// The types of this family, in table order.
    public var types: [EventType] { EventType.allCases.filter { $0.family == self } }

    public var description: String { name }

    public static func == (lhs: EventFamily, rhs: EventFamily) -> Bool { lhs.name == rhs.name }

    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}
