/// Which events an in-process subscriber wants.
public enum EventFilter: Sendable, Hashable {
    case all
    case type(EventType)
    case category(EventCategory)
    /// Events at or above a priority.
    case minimumPriority(EventPriority)

    public func matches(_ event: Event) -> Bool {
        switch self {
        case .all: true
        case .type(let type): event.eventType == type
        case .category(let category): event.eventType.category == category
        case .minimumPriority(let priority): event.priority >= priority
        }
    }
}
