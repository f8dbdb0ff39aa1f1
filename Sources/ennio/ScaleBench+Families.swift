import EnnioCoordinator
import EnnioEvents

extension ScaleBench {
    /// The rollout and run events of `bench scale` (a tenth of its events), as a fleet makes
    /// them, all valid: on each of 10 channels, rollouts one after another over the same 100
    /// hosts — opened, every host joined, soaking, soaked, converged (the reducer then emits
    /// `RolloutTerminal`, which the bench stores like a published event coming back), then
    /// pruned when its retention expires; in each of 10 projects, workflow runs of 5 states, one
    /// state in four failing once and retried. Four rollout events to one run event.
    ///
    /// What the reducers keep grows with the rollouts and runs (a pruned rollout's summary, a
    /// run's attempts), not with the events of the ones under way: 402 events make one row of a
    /// rollout, about 13 one row of a run.
    struct FamilyStream {
        static let channels = 10
        static let projects = 10
        static let hosts = 100

        typealias Step = (type: EventType, session: String, scope: String, data: [String: JSONValue])

        /// Per stream (the channels, then the projects): the steps of its current rollout or
        /// run, where it is in them, and how many it made.
        private var scripts = [[Step]](repeating: [], count: channels + projects)
        private var positions = [Int](repeating: 0, count: channels + projects)
        private var made = [Int](repeating: 0, count: channels + projects)
        private var turn = 0

        /// The next event, at `timestamp` (rollout events carry it as `at` too).
        mutating func next(at timestamp: EventTimestamp) -> Event {
            let stream = turn % 5 == 4 ? Self.channels + (turn / 5) % Self.projects : (turn - turn / 5) % Self.channels
            turn += 1
            if positions[stream] == scripts[stream].count {
                scripts[stream] = stream < Self.channels
                    ? Self.rollout(channel: stream, number: made[stream]) : Self.run(project: stream - Self.channels, number: made[stream])
                made[stream] += 1
                positions[stream] = 0
            }
            let step = scripts[stream][positions[stream]]
            positions[stream] += 1
            return Self.event(step, at: timestamp)
        }

        /// The event of `step` at `timestamp` (rollout events carry it as `at` too).
        static func event(_ step: Step, at timestamp: EventTimestamp) -> Event {
            var data = step.data
            if step.type.category == .rollout { data["at"] = .string(timestamp.rfc3339) }
            return Event(type: step.type, sessionId: step.session, projectId: step.scope, timestamp: timestamp, message: "benchmark \(step.type.rawValue)", data: .object(data))
        }

        /// One rollout on channel `number`: opened, `hosts` hosts joined and walked to converged,
        /// then pruned.
        static func rollout(channel number: Int, number rollout: Int, hosts count: Int = hosts) -> [Step] {
            let channel = "channel-\(number)"
            let id = "rollout-\(number)-\(rollout)"
            func step(_ type: EventType, _ data: [String: JSONValue] = [:]) -> Step {
                var members = data
                members["rollout_id"] = .string(id)
                return (type, id, channel, members)
            }
            let hosts = (0..<count).map { "host-\(number)-\($0)" }
            var steps = [step(.rolloutOpened, ["channel": .string(channel), "target_ref": .string("v\(rollout)")])]
            steps += hosts.map { step(.hostJoined, ["host_id": .string($0), "wave": 0]) }
            for (from, to) in [(RolloutHostState.dispatched, RolloutHostState.soaking), (.soaking, .soaked), (.soaked, .converged)] {
                steps += hosts.map { step(.hostStateChanged, ["host_id": .string($0), "from": .string(from.rawValue), "to": .string(to.rawValue)]) }
            }
            steps.append(step(.retentionExpired))
            return steps
        }

        /// One workflow run in project `number`.
        static func run(project number: Int, number run: Int) -> [Step] {
            let project = "workflows-\(number)"
            let opId = "run-\(number)-\(run)"
            var steps: [Step] = [(.runStarted, opId, project, ["op_id": .string(opId), "manifest_id": "manifest-1", "initial_snapshot_id": .string("\(opId)-start")])]
            var base = "\(opId)-start"
            for state in 0..<5 {
                let stateId = "state-\(state)"
                var attempt: Int64 = 1
                if (run + state) % 4 == 0 {
                    steps.append((.stateEntered, opId, project, ["state_id": .string(stateId), "attempt": .int(attempt), "base_snapshot_id": .string(base)]))
                    steps.append((.stateFailed, opId, project, ["state_id": .string(stateId), "error": "timed out"]))
                    attempt += 1
                }
                steps.append((.stateEntered, opId, project, ["state_id": .string(stateId), "attempt": .int(attempt), "base_snapshot_id": .string(base)]))
                base = "\(opId)-\(stateId)-done"
                steps.append((.stateCompleted, opId, project, ["state_id": .string(stateId), "context_snapshot_id": .string(base)]))
            }
            steps.append((.runCompleted, opId, project, ["status": "succeeded", "final_snapshot_id": .string(base)]))
            return steps
        }
    }
}
