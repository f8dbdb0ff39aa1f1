import EnnioEvents

/// The rollout and run reducers as the coordinator's ``CheckpointedState`` holds them: applied in
/// the same transaction as each batch, undone with it when it fails, and made again at start from
/// the rollout and run events alone, in the order they were stored (their rules depend on that
/// order, so they are replayed rather than checkpointed row by row).
struct ReplayedFamilies: CheckpointedReducer {
    static let name = "families"
    static let version = 1
    static let tables: [String] = []
    static var replayedCategories: [EventCategory]? { [.rollout, .run] }

    private(set) var reducers = FamilyReducers()
    /// The reducers as they were before the batch in progress, if it changed them.
    private var before: FamilyReducers?

    mutating func apply(_ event: StoredEvent) -> [LifecycleAction] {
        guard event.event.eventType.category == .rollout || event.event.eventType.category == .run else { return [] }
        if before == nil { before = reducers }
        return reducers.apply(event.event).emitted.map { .publish($0, host: nil) }
    }

    func changedRows() -> [CheckpointRow] { [] }

    mutating func committed() { before = nil }

    mutating func rollBack() {
        if let before { reducers = before }
        before = nil
    }

    mutating func load(_ row: CheckpointRow) throws {}

    mutating func reset() {
        reducers = FamilyReducers()
        before = nil
    }
}
