import EnnioCoordinator
import EnnioEvents
import Glibc

extension BenchCommand {
    /// The rollout and run reducers alone, without NATS or SQLite: decoded events of a
    /// synthetic fleet (rollouts of three waves of ten hosts walking to converged, runs of five
    /// states with a retry in one of three) applied to fresh reducers. The best of three rounds,
    /// for rollout events, run events, and both interleaved; per second of the clock and per
    /// second of the thread's CPU time (which other work on a busy machine inflates less).
    static func reducers(count: Int) {
        let rollouts = ReducerWorkload.rollouts(count)
        let runs = ReducerWorkload.runs(count)
        let both = ReducerWorkload.interleave(rollouts, runs, count)
        for (figure, events) in [("reducers_rollouts", rollouts), ("reducers_runs", runs), ("reducers_both", both)] {
            var best = Duration.seconds(86_400)
            var bestCPU = Duration.seconds(86_400)
            for _ in 0..<3 {
                let clock = ContinuousClock()
                var reducers = FamilyReducers()
                var emitted = 0
                let start = clock.now
                let startCPU = threadCPUTime()
                for event in events {
                    emitted &+= reducers.apply(event).emitted.count
                }
                bestCPU = min(bestCPU, threadCPUTime() - startCPU)
                best = min(best, clock.now - start)
                // The workload is valid: every event applies, every rollout ends.
                precondition(reducers.statistics.violations == 0 && reducers.statistics.applied == UInt64(events.count))
                precondition(figure != "reducers_rollouts" || emitted > 0)
            }
            let rate = Double(events.count) / max(seconds(best), 1e-9)
            let cpuRate = Double(events.count) / max(seconds(bestCPU), 1e-9)
            report(
                figure, "\(events.count) events in \(String(format: "%.3f", seconds(best))) s: \(Int64(rate)) events/s (\(Int64(cpuRate)) per CPU second)",
                [("events_per_sec", rate), ("events_per_cpu_sec", cpuRate)])
        }
    }

    /// The calling thread's CPU time so far.
    private static func threadCPUTime() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }
}

/// The events of the reducer benchmark, made once before timing.
enum ReducerWorkload {
    private static let origin: Int64 = 1_772_700_000_000_000_000

    private struct Clock {
        var nanoseconds = ReducerWorkload.origin
        var number = 0

        mutating func next() -> (EventTimestamp, String) {
            nanoseconds += 1_000_000
            number += 1
            return (EventTimestamp(nanosecondsSinceEpoch: nanoseconds), "bench-\(number)")
        }
    }

    /// About `count` rollout events: rollouts of 3 waves × 10 hosts, 8 at a time in flight.
    static func rollouts(_ count: Int) -> [Event] {
        var clock = Clock()
        var events: [Event] = []
        events.reserveCapacity(count + 200)
        var rollout = 0
        while events.count < count {
            // Eight rollouts at once, their events interleaved step by step.
            let batch = (0..<8).map { offset in steps(rollout: "r\(rollout + offset)", channel: "ch\((rollout + offset) % 5)") }
            rollout += 8
            for step in 0..<batch[0].count {
                for rolloutSteps in batch {
                    let (timestamp, id) = clock.next()
                    events.append(rolloutSteps[step](timestamp, id))
                }
            }
        }
        return events
    }

    private typealias Step = (EventTimestamp, String) -> Event

    private static func steps(rollout: String, channel: String) -> [Step] {
        func event(_ type: EventType, _ data: [String: JSONValue]) -> Step {
            { timestamp, id in
                var members = data
                members["rollout_id"] = .string(rollout)
                members["at"] = .string(timestamp.rfc3339)
                return Event(id: id, type: type, sessionId: rollout, projectId: channel, timestamp: timestamp, message: type.rawValue, data: .object(members))
            }
        }
        var steps: [Step] = [event(.rolloutOpened, ["channel": .string(channel), "target_ref": "v2"])]
        let hosts = (0..<3).map { wave in (0..<10).map { "\(rollout)-w\(wave)-h\($0)" } }
        func move(_ host: String, _ from: RolloutHostState, _ to: RolloutHostState) -> Step {
            event(.hostStateChanged, ["host_id": .string(host), "from": .string(from.rawValue), "to": .string(to.rawValue)])
        }
        for wave in 0..<3 {
            for host in hosts[wave] { steps.append(event(.hostJoined, ["host_id": .string(host), "wave": .int(Int64(wave))])) }
            for host in hosts[wave] { steps.append(move(host, .dispatched, .soaking)) }
            for host in hosts[wave] { steps.append(move(host, .soaking, .soaked)) }
            if wave < 2 { steps.append(event(.waveAdvanced, ["from_wave": .int(Int64(wave)), "to_wave": .int(Int64(wave + 1))])) }
        }
        for host in hosts.joined() { steps.append(move(host, .soaked, .converged)) }
        return steps
    }

    /// About `count` run events: runs of 5 states, every third state failing once first.
    static func runs(_ count: Int) -> [Event] {
        var clock = Clock()
        var events: [Event] = []
        events.reserveCapacity(count + 64)
        var number = 0
        while events.count < count {
            let opId = "op-\(number)"
            let project = "project-\(number % 7)"
            number += 1
            func add(_ type: EventType, _ data: [String: JSONValue]) {
                let (timestamp, id) = clock.next()
                events.append(Event(id: id, type: type, sessionId: opId, projectId: project, timestamp: timestamp, message: type.rawValue, data: .object(data)))
            }
            add(.runStarted, ["op_id": .string(opId), "manifest_id": "m-1", "initial_snapshot_id": .string("\(opId)-s")])
            var base = "\(opId)-s"
            for state in 0..<5 {
                let stateId = "state-\(state)"
                var attempt: Int64 = 1
                if (number + state) % 3 == 0 {
                    add(.stateEntered, ["state_id": .string(stateId), "attempt": .int(attempt), "base_snapshot_id": .string(base)])
                    add(.stateFailed, ["state_id": .string(stateId), "error": "timeout", "failure_snapshot_id": .string("\(opId)-\(state)-f")])
                    attempt += 1
                }
                add(.stateEntered, ["state_id": .string(stateId), "attempt": .int(attempt), "base_snapshot_id": .string(base)])
                base = "\(opId)-\(state)-c"
                add(.stateCompleted, ["state_id": .string(stateId), "context_snapshot_id": .string(base)])
            }
            add(.runCompleted, ["status": "succeeded", "final_snapshot_id": .string(base)])
        }
        return events
    }

    /// Half of each, alternating (their ids and times do not meet: rollouts and runs are apart).
    static func interleave(_ rollouts: [Event], _ runs: [Event], _ count: Int) -> [Event] {
        var events: [Event] = []
        events.reserveCapacity(count)
        for index in 0..<(count / 2) {
            if index < rollouts.count { events.append(rollouts[index]) }
            if index < runs.count { events.append(runs[index]) }
        }
        return events
    }
}
