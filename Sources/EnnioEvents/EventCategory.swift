/// The second token of an event subject: what part of the system an event is about.
public enum EventCategory: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case sessions
    case pr
    case ci
    case review
    case merge
    case reactions
    case lifecycle
    case node
    /// Fleet rollouts: `ennio.rollout.<channel>.<action>` (the `rollouts` family).
    case rollout
    /// Workflow runs: `ennio.run.<project>.<action>` (the `runs` family).
    case run

    /// How the third token of the subject is chosen.
    public enum Scope: Sendable, Hashable {
        /// `ennio.<category>.<project_id>.<action>`
        case project
        /// `ennio.node.<host>.<action>`: the host that emitted the event.
        case host
        /// `ennio.lifecycle.<action>`: no third token; the project is in the event body.
        case global
    }

    public var scope: Scope {
        switch self {
        case .sessions, .pr, .ci, .review, .merge, .reactions, .rollout, .run: .project
        case .node: .host
        case .lifecycle: .global
        }
    }

    /// The event types of this category, in table order.
    public var eventTypes: [EventType] {
        EventType.allCases.filter { $0.category == self }
    }

    /// The family whose events travel under this category.
    public var family: EventFamily {
        switch self {
        case .sessions, .pr, .ci, .review, .merge, .reactions, .lifecycle, .node: .orchestrator
        case .rollout: .rollouts
        case .run: .runs
        }
    }

    public var description: String { rawValue }
}
