@testable import EnnioCoordinator
import EnnioEvents

/// Rollout and run events as their publishers write them (the documented JSON), at instants
/// given in seconds after a fixed origin.
enum Families {
    static let origin: Int64 = 1_772_700_000_000_000_000

    static func instant(_ seconds: Int64) -> EventTimestamp {
        EventTimestamp(nanosecondsSinceEpoch: origin + seconds * 1_000_000_000)
    }

    /// A rollout event of `rollout` on `channel`; `rollout_id` and `at` are added to `data`.
    static func rollout(
        _ type: EventType, _ rollout: String, channel: String = "stable", at seconds: Int64, id: String? = nil,
        _ data: [String: JSONValue] = [:]
    ) -> Event {
        let timestamp = instant(seconds)
        var members = data
        if type != .successorOpened { members["rollout_id"] = members["rollout_id"] ?? .string(rollout) }
        members["at"] = members["at"] ?? .string(timestamp.rfc3339)
        return Event(
            id: id ?? "\(type.rawValue)-\(rollout)-\(seconds)-\(data.keys.sorted().map { "\(data[$0]!)" }.joined(separator: "-"))",
            type: type, priority: .info, sessionId: rollout, projectId: channel, timestamp: timestamp,
            message: "\(type.rawValue) \(rollout)", data: .object(members))
    }

    static func opened(_ rollout: String, channel: String = "stable", target: String = "v2", at seconds: Int64) -> Event {
        Self.rollout(.rolloutOpened, rollout, channel: channel, at: seconds, ["channel": .string(channel), "target_ref": .string(target)])
    }

    static func joined(_ rollout: String, _ host: String, wave: Int64 = 0, channel: String = "stable", at seconds: Int64) -> Event {
        Self.rollout(.hostJoined, rollout, channel: channel, at: seconds, ["host_id": .string(host), "wave": .int(wave)])
    }

    static func moved(
        _ rollout: String, _ host: String, _ from: RolloutHostState, _ to: RolloutHostState, channel: String = "stable", at seconds: Int64
    ) -> Event {
        Self.rollout(.hostStateChanged, rollout, channel: channel, at: seconds, ["host_id": .string(host), "from": .string(from.rawValue), "to": .string(to.rawValue)])
    }

    /// The moves that take `host` from `dispatched` through `states`, one second apart from `seconds`.
    static func walk(_ rollout: String, _ host: String, _ states: [RolloutHostState], channel: String = "stable", from seconds: Int64) -> [Event] {
        var previous = RolloutHostState.dispatched
        var events: [Event] = []
        for (offset, state) in states.enumerated() {
            events.append(moved(rollout, host, previous, state, channel: channel, at: seconds + Int64(offset)))
            previous = state
        }
        return events
    }

    static func advanced(_ rollout: String, from: Int64, to: Int64, channel: String = "stable", at seconds: Int64) -> Event {
        Self.rollout(.waveAdvanced, rollout, channel: channel, at: seconds, ["from_wave": .int(from), "to_wave": .int(to)])
    }

    static func successor(_ old: String, _ new: String, channel: String = "stable", target: String? = "v3", at seconds: Int64) -> Event {
        var data: [String: JSONValue] = ["superseded_rollout_id": .string(old), "successor_rollout_id": .string(new)]
        if let target { data["target_ref"] = .string(target) }
        return Self.rollout(.successorOpened, new, channel: channel, at: seconds, data)
    }

    static func retention(_ rollout: String, channel: String = "stable", at seconds: Int64) -> Event {
        Self.rollout(.retentionExpired, rollout, channel: channel, at: seconds)
    }

    static func clearance(_ rollout: String, by name: String = "alice", reason: String = "known flaky host", channel: String = "stable", at seconds: Int64) -> Event {
        Self.rollout(.operatorClearance, rollout, channel: channel, at: seconds, ["operator": .string(name), "reason": .string(reason)])
    }

    /// A run event of `opId` in `project`.
    static func run(_ type: EventType, _ opId: String, project: String = "billing", at seconds: Int64, id: String? = nil, _ data: [String: JSONValue]) -> Event {
        Event(
            id: id ?? "\(type.rawValue)-\(opId)-\(seconds)-\(data.keys.sorted().map { "\(data[$0]!)" }.joined(separator: "-"))",
            type: type, priority: .info, sessionId: opId, projectId: project, timestamp: instant(seconds),
            message: "\(type.rawValue) \(opId)", data: .object(data))
    }

    static func started(_ opId: String, project: String = "billing", manifest: String = "m-1", initial: String = "snap-0", at seconds: Int64) -> Event {
        run(.runStarted, opId, project: project, at: seconds, ["op_id": .string(opId), "manifest_id": .string(manifest), "initial_snapshot_id": .string(initial)])
    }

    static func entered(_ opId: String, _ state: String, attempt: Int64, base: String, project: String = "billing", at seconds: Int64) -> Event {
        run(.stateEntered, opId, project: project, at: seconds, ["state_id": .string(state), "attempt": .int(attempt), "base_snapshot_id": .string(base)])
    }

    static func completed(_ opId: String, _ state: String, context: String, attempt: Int64? = nil, project: String = "billing", at seconds: Int64) -> Event {
        var data: [String: JSONValue] = ["state_id": .string(state), "context_snapshot_id": .string(context)]
        if let attempt { data["attempt"] = .int(attempt) }
        return run(.stateCompleted, opId, project: project, at: seconds, data)
    }

    static func failed(
        _ opId: String, _ state: String, error: String = "timeout", snapshot: String? = nil, attempt: Int64? = nil, project: String = "billing", at seconds: Int64
    ) -> Event {
        var data: [String: JSONValue] = ["state_id": .string(state), "error": .string(error)]
        if let snapshot { data["failure_snapshot_id"] = .string(snapshot) }
        if let attempt { data["attempt"] = .int(attempt) }
        return run(.stateFailed, opId, project: project, at: seconds, data)
    }

    static func runCompleted(_ opId: String, status: RunStatus, final: String? = nil, project: String = "billing", at seconds: Int64) -> Event {
        var data: [String: JSONValue] = ["status": .string(status.rawValue)]
        if let final { data["final_snapshot_id"] = .string(final) }
        return run(.runCompleted, opId, project: project, at: seconds, data)
    }
}

extension ReducerOutcome.Verdict {
    /// The violation's code, if this is one.
    var violationCode: RuleViolation.Code? {
        if case .violation(let violation) = self { return violation.code }
        return nil
    }
}

extension RolloutReducer {
    /// Applies every event, feeding the emitted ones back in (as the stream does); returns
    /// the outcomes of `events` and everything emitted.
    @discardableResult
    mutating func apply(_ events: [Event]) -> (outcomes: [ReducerOutcome], emitted: [Event]) {
        var outcomes: [ReducerOutcome] = []
        var emitted: [Event] = []
        for event in events {
            let outcome = apply(event)
            outcomes.append(outcome)
            for derived in outcome.emitted {
                emitted.append(derived)
                _ = apply(derived)
            }
        }
        return (outcomes, emitted)
    }
}
