public import EnnioEvents

/// An event a reducer did not apply because it breaks the family's rules. The event is still
/// in the history; the reducer keeps this flag (on the rollout or run it names, or among the
/// reducer's own when it names none it knows) and counts it, and its state is unchanged.
public struct RuleViolation: Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable, CaseIterable {
            case invalidData, wrongScope
            case unknownRollout, rolloutExists, rolloutEnded, unknownHost, hostExists, waveNotOpen
            case staleHostState, illegalHostTransition, notConverging, wrongWave, terminalNotDerived
            case notSupersedable, notRetained, nothingToClear
            case unknownRun, runExists, runFinished, anotherStateOpen, attemptWentBackwards, attemptRepeated
            case notEntered, attemptNotOpen, failureSnapshotAsBoundary, boundaryAsFailureSnapshot
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// `data` lacks a member its type declares, or holds the wrong kind of value.
        public static let invalidData = Code(.invalidData)
        /// The channel (or project) is not the one of the rollout (or run) the event names.
        public static let wrongScope = Code(.wrongScope)

        /// An event for a rollout that was never opened.
        public static let unknownRollout = Code(.unknownRollout)
        /// `RolloutOpened` (or a successor) for a rollout id already in use.
        public static let rolloutExists = Code(.rolloutExists)
        /// A host event for a rollout that ended (Terminal, Superseded, Reverted, Pruned).
        public static let rolloutEnded = Code(.rolloutEnded)
        /// A `HostStateChanged` for a host that never joined.
        public static let unknownHost = Code(.unknownHost)
        /// `HostJoined` for a host already in the rollout, with another wave.
        public static let hostExists = Code(.hostExists)
        /// `HostJoined` for a wave after the current one.
        public static let waveNotOpen = Code(.waveNotOpen)
        /// `HostStateChanged` whose `from` is not the host's state.
        public static let staleHostState = Code(.staleHostState)
        /// `HostStateChanged` from a state to one it may not move to.
        public static let illegalHostTransition = Code(.illegalHostTransition)
        /// `WaveAdvanced` while the rollout is not Converging.
        public static let notConverging = Code(.notConverging)
        /// `WaveAdvanced` from a wave that is not the current one, or not to a later one.
        public static let wrongWave = Code(.wrongWave)
        /// `RolloutTerminal` from a publisher: not the id the reducer derives.
        public static let terminalNotDerived = Code(.terminalNotDerived)
        /// `SuccessorOpened` for a rollout that is not live.
        public static let notSupersedable = Code(.notSupersedable)
        /// `RetentionExpired` for a rollout that is still live.
        public static let notRetained = Code(.notRetained)
        /// `OperatorClearance` for a rollout that has not failed.
        public static let nothingToClear = Code(.nothingToClear)

        /// An event for a run that never started.
        public static let unknownRun = Code(.unknownRun)
        /// `RunStarted` for an op id already in use, with another manifest or snapshot.
        public static let runExists = Code(.runExists)
        /// An event for a run that completed.
        public static let runFinished = Code(.runFinished)
        /// `StateEntered` while an attempt at another state is open.
        public static let anotherStateOpen = Code(.anotherStateOpen)
        /// `StateEntered` with an attempt number below the state's last.
        public static let attemptWentBackwards = Code(.attemptWentBackwards)
        /// `StateEntered` with the state's last attempt number again, from another snapshot.
        public static let attemptRepeated = Code(.attemptRepeated)
        /// `StateCompleted` or `StateFailed` for a state that was never entered.
        public static let notEntered = Code(.notEntered)
        /// `StateCompleted` or `StateFailed` when the state has no open attempt (or not the one named).
        public static let attemptNotOpen = Code(.attemptNotOpen)
        /// A failure snapshot named as a base or context snapshot.
        public static let failureSnapshotAsBoundary = Code(.failureSnapshotAsBoundary)
        /// A resume boundary (initial, base or context snapshot) named as a failure snapshot.
        public static let boundaryAsFailureSnapshot = Code(.boundaryAsFailureSnapshot)

        /// The code named `name` in JSON (``description``), if there is one.
        public init?(named name: String) {
            guard let base = Base.allCases.first(where: { Code($0).description == name }) else { return nil }
            self.base = base
        }

        /// The name used in JSON (`unknown_rollout`, …).
        public var description: String {
            base.rawValue.reduce(into: "") { name, character in
                if character.isUppercase {
                    name += "_" + character.lowercased()
                } else {
                    name.append(character)
                }
            }
        }
    }

    public let code: Code
    public let eventId: String
    public let eventType: EventType
    public let timestamp: EventTimestamp
    public let detail: String

    public init(_ code: Code, event: Event, _ detail: String) {
        self.init(code, eventId: event.id, eventType: event.eventType, timestamp: event.timestamp, detail)
    }

    /// A flag as a checkpoint keeps it.
    init(_ code: Code, eventId: String, eventType: EventType, timestamp: EventTimestamp, _ detail: String) {
        self.code = code
        self.eventId = eventId
        self.eventType = eventType
        self.timestamp = timestamp
        self.detail = detail
    }

    public var description: String { "\(eventType.rawValue) \(eventId): \(code): \(detail)" }
}

/// What a reducer made of one event.
public struct ReducerOutcome: Sendable, Hashable {
    public enum Verdict: Sendable, Hashable {
        /// The event changed the state.
        case applied
        /// The event had been applied already (the same event again); nothing changed.
        case duplicate
        /// The reducer's own emitted event came back (through the stream, or from another
        /// coordinator): it is confirmed, and nothing else changes.
        case confirmed
        /// The event breaks the rules: flagged and counted, the state unchanged.
        case violation(RuleViolation)
        /// Not an event of this reducer's family.
        case ignored
    }

    public var verdict: Verdict
    /// Events the reducer derived from this one, to publish (with their ids as `Nats-Msg-Id`).
    public var emitted: [Event]

    public init(_ verdict: Verdict, emitted: [Event] = []) {
        self.verdict = verdict
        self.emitted = emitted
    }

    /// `event` breaks the rule `code`.
    static func violation(_ code: RuleViolation.Code, _ event: Event, _ detail: String) -> ReducerOutcome {
        ReducerOutcome(.violation(RuleViolation(code, event: event, detail)))
    }
}

/// How many events a reducer applied, recognised again, refused, …
public struct ReducerStatistics: Sendable, Hashable {
    public var applied: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var confirmed: UInt64 = 0
    public var violations: UInt64 = 0
    public var emitted: UInt64 = 0

    public init() {}

    mutating func count(_ outcome: ReducerOutcome) {
        switch outcome.verdict {
        case .applied: applied += 1
        case .duplicate: duplicates += 1
        case .confirmed: confirmed += 1
        case .violation: violations += 1
        case .ignored: break
        }
        emitted += UInt64(outcome.emitted.count)
    }

    static func + (lhs: ReducerStatistics, rhs: ReducerStatistics) -> ReducerStatistics {
        var sum = lhs
        sum.applied += rhs.applied
        sum.duplicates += rhs.duplicates
        sum.confirmed += rhs.confirmed
        sum.violations += rhs.violations
        sum.emitted += rhs.emitted
        return sum
    }
}

/// The most recent flags, at most `capacity` of them, with the count of all.
public struct ViolationLog: Sendable, Hashable {
    public static let capacity = 16

    /// Oldest first.
    public private(set) var recent: [RuleViolation] = []
    public private(set) var count = 0

    public init() {}

    /// A log as a checkpoint keeps it: at most ``capacity`` of the `count` flags, oldest first.
    init(recent: [RuleViolation], count: Int) {
        self.recent = Array(recent.suffix(Self.capacity))
        self.count = max(count, self.recent.count)
    }

    mutating func add(_ violation: RuleViolation) {
        count += 1
        if recent.count == Self.capacity { recent.removeFirst() }
        recent.append(violation)
    }
}
