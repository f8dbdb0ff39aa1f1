/// The state of one host in a rollout, as `HostStateChanged` reports it (snake_case in JSON).
public enum RolloutHostState: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case dispatched
    case soaking
    case soaked
    case converged
    case failed
    case reverting
    case reverted

    /// The states a host may move to from this one; every other move is a rule violation.
    public var successors: [RolloutHostState] {
        switch self {
        case .dispatched: [.soaking, .failed, .reverting]
        case .soaking: [.soaked, .failed, .reverting]
        case .soaked: [.converged, .failed, .reverting]
        case .converged: [.reverting]
        case .failed: [.dispatched, .reverting]
        case .reverting: [.reverted, .failed]
        case .reverted: []
        }
    }

    public func canMove(to next: RolloutHostState) -> Bool { successors.contains(next) }

    /// Soaked or further along the way to converged: counts towards a complete wave.
    public var hasSoaked: Bool { self == .soaked || self == .converged }

    public var summary: String {
        switch self {
        case .dispatched: "the new version was sent to the host (the state a host joins in)"
        case .soaking: "running the new version, under observation"
        case .soaked: "observed long enough without trouble"
        case .converged: "done: the host is on the target for good"
        case .failed: "the host failed; the rollout halts until an operator clears it"
        case .reverting: "going back to the previous version"
        case .reverted: "back on the previous version (final)"
        }
    }

    public var description: String { rawValue }
}

/// The state of a rollout, as the coordinator's reducer keeps it (snake_case in JSON).
public enum RolloutState: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case opening
    case active
    case converging
    case terminal
    case superseded
    case failed
    case reverted
    case pruned

    /// Opening, Active or Converging: the rollout is under way.
    public var isLive: Bool { self == .opening || self == .active || self == .converging }

    /// Terminal, Superseded, Failed or Reverted: `RetentionExpired` prunes it.
    public var isRetained: Bool { self == .terminal || self == .superseded || self == .failed || self == .reverted }

    public var summary: String {
        switch self {
        case .opening: "opened; no host has joined yet"
        case .active: "hosts of the current wave are on their way to soaked"
        case .converging: "every host of the current wave has soaked; waiting for the next wave or for every host to converge"
        case .terminal: "every host of every wave converged"
        case .superseded: "replaced by a successor rollout of the same channel"
        case .failed: "a host failed; halted until an operator clears it"
        case .reverted: "every host was reverted"
        case .pruned: "past its retention: only a summary is kept"
        }
    }

    /// One documented move of the rollout state machine.
    public struct Transition: Sendable, Hashable {
        public let from: [RolloutState]
        public let cause: String
        public let to: RolloutState
    }

    /// Every move the reducer makes, for `topics.md`. Moves marked "(derived)" follow from the
    /// hosts' states after an event; the others are the event's own.
    public static let transitions: [Transition] = [
        Transition(from: [], cause: "`RolloutOpened`, or `SuccessorOpened` naming it as the successor", to: .opening),
        Transition(from: [.opening], cause: "the first `HostJoined` (its wave becomes the current wave)", to: .active),
        Transition(from: [.active], cause: "(derived) every host of the current wave has soaked (`soaked` or `converged`; excused hosts aside)", to: .converging),
        Transition(from: [.converging], cause: "`WaveAdvanced` from the current wave; or (derived) a host joins the current wave or one of its hosts leaves `soaked` for `reverting`", to: .active),
        Transition(from: [.converging], cause: "(derived) every host of every wave converged (excused hosts aside) — the reducer publishes `RolloutTerminal`", to: .terminal),
        Transition(from: [.opening, .active, .converging], cause: "`SuccessorOpened` naming it as the superseded rollout (in the same step as the successor opens)", to: .superseded),
        Transition(from: [.active, .converging], cause: "(derived) a host moves to `failed`", to: .failed),
        Transition(from: [.active, .converging, .failed], cause: "(derived) every host is `reverted`", to: .reverted),
        Transition(from: [.failed], cause: "`OperatorClearance`: the hosts `failed`, `reverting` or `reverted` at that moment are excused (they no longer hold a wave or the end back); then the derived moves apply", to: .active),
        Transition(from: [.terminal, .superseded, .failed, .reverted], cause: "`RetentionExpired`", to: .pruned),
    ]

    public var description: String { rawValue }
}

extension EventFamily {
    /// Fleet rollouts: a target is rolled out to the hosts of a channel wave by wave.
    public static let rollouts = EventFamily(
        name: "rollouts", title: "Fleet rollouts", projectRole: "channel", sessionRole: "the rollout id",
        documentation: rolloutDocumentation)

    @Sendable private static func rolloutDocumentation() -> [String] {
        var lines = ["#### Host states", "", "A host joins `dispatched`. Any move not in this table is a rule violation.", ""]
        lines += TopicsDocument.table(["Host state", "Meaning", "May move to"], RolloutHostState.allCases.map { state in
            let next = state.successors.isEmpty ? "— (final)" : state.successors.map { "`\($0.rawValue)`" }.joined(separator: ", ")
            return ["`\(state.rawValue)`", state.summary, next]
        })
        lines += ["", "#### Rollout states", "", "The coordinator's reducer keeps each rollout's state (`ennio rollouts`, `ennio.query.rollouts`).", ""]
        lines += TopicsDocument.table(["Rollout state", "Meaning"], RolloutState.allCases.map { ["`\($0.rawValue)`", $0.summary] })
        lines.append("")
        lines += TopicsDocument.table(["From", "Event or condition", "To"], RolloutState.transitions.map { transition in
            let from = transition.from.isEmpty ? "—" : transition.from.map { "`\($0.rawValue)`" }.joined(separator: ", ")
            return [from, transition.cause, "`\(transition.to.rawValue)`"]
        })
        lines += [
            "",
            "Further rules: a host joins a wave up to the current one, never a later one, and not after the",
            "rollout ended (a Failed rollout still takes hosts, which wait); `WaveAdvanced` needs Converging and",
            "`from_wave` = the current wave < `to_wave`; a wave with no host yet is Active. Pruning keeps the",
            "rollout's summary and drops its hosts.",
            "",
            "`RolloutTerminal` is emitted by the coordinator's reducer, as a consequence of the event that",
            "made the last host converge (or of the clearance that let the rollout end), never by a",
            "publisher: its `id` is derived from the rollout id — a UUID (version 8) made of the first 16",
            "bytes of SHA-256(`\(EventID.derivedNamespace)` ‖ 0x00 ‖ `rollout_terminal` ‖ 0x00 ‖ rollout id) — and its",
            "`timestamp` and `data.at` are those of the latest event among the hosts' moves to `converged`",
            "and the rollout's clearances, so every coordinator, and every restart, makes the same event,",
            "and the stream's de-duplication (`Nats-Msg-Id`) and the history keep it once. A",
            "`rollout_terminal` with any other id is stored and flagged as a rule violation.",
        ]
        return lines
    }
}

extension EventDataField {
    static let rolloutId = EventDataField("rollout_id", .identifier, mirrors: .sessionId, "the rollout; the same as `session_id`")
    static let channel = EventDataField("channel", .identifier, mirrors: .projectId, "the channel; the same as `project_id`")
    static let targetRef = EventDataField("target_ref", .identifier, "what is rolled out (a version, a commit)")
    static let optionalTargetRef = EventDataField("target_ref", .identifier, required: false, "what the successor rolls out")
    static let at = EventDataField("at", .timestamp, "when it happened")
    static let hostId = EventDataField("host_id", .identifier, "the host")
    static let wave = EventDataField("wave", .integer(0...Int64.max), "the host's wave (waves are numbered upwards)")
    static let supersededRolloutId = EventDataField("superseded_rollout_id", .identifier, "the live rollout being replaced")
    static let successorRolloutId = EventDataField("successor_rollout_id", .identifier, mirrors: .sessionId, "the rollout replacing it; the same as `session_id`")
    static let operatorName = EventDataField("operator", .identifier, "who cleared it")
    static let reason = EventDataField("reason", .text, "why")

    static func wave(_ name: String) -> EventDataField {
        EventDataField(name, .integer(0...Int64.max), name == "from_wave" ? "the wave whose hosts all soaked" : "the wave that starts")
    }

    static func hostState(_ name: String) -> EventDataField {
        EventDataField(name, .choice(RolloutHostState.allCases.map(\.rawValue)), name == "from" ? "the host's state before" : "the host's state after")
    }
}
