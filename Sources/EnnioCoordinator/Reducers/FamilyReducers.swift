public import EnnioEvents

/// The reducers of the event families beyond the orchestrator's, as the coordinator holds them:
/// every stored event goes in (``apply(_:)``), the events they derive come out, to be published
/// with their ids as `Nats-Msg-Id`. Pure: no clock, no NATS, no SQLite.
///
/// The coordinator keeps their state in its checkpoint, row by row, like its session and node
/// tables (`FamilyReducers+Checkpoint.swift`); ``pendingEmissions`` are the derived events to
/// publish after a restart (emitted, but not seen back in the history).
public struct FamilyReducers: Sendable {
    public internal(set) var rollouts = RolloutReducer()
    public internal(set) var runs = RunReducer()

    public init() {}

    /// Applies one new (stored) event of any family; events of the orchestrator's family are
    /// `.ignored`.
    public mutating func apply(_ event: Event) -> ReducerOutcome {
        switch event.eventType.category {
        case .rollout: rollouts.apply(event)
        case .run: runs.apply(event)
        case .sessions, .pr, .ci, .review, .merge, .reactions, .lifecycle, .node: ReducerOutcome(.ignored)
        }
    }

    /// Derived events emitted but not seen back yet (in the history, from the stream).
    public var pendingEmissions: [Event] { rollouts.pendingEmissions }

    /// Both reducers' counts together.
    public var statistics: ReducerStatistics { rollouts.statistics + runs.statistics }
}
