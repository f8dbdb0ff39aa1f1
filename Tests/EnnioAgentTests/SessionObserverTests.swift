@testable import EnnioAgent
import EnnioEvents
import Testing

let base = EventTimestamp(nanosecondsSinceEpoch: 1_772_000_000_000_000_000)

func at(_ seconds: Double) -> EventTimestamp {
    base + .milliseconds(Int64(seconds * 1000))
}

func session(_ id: String = "s1", project: String = "p1", createdAt: EventTimestamp = at(1), status: LocalSession.Status = .spawning) -> LocalSession {
    LocalSession(id: id, project: project, status: status, pid: 4242, command: ["sh", "-c", "echo hi"], logFile: "/tmp/\(project).\(id).log", createdAt: createdAt)
}

extension SessionObserver.Transition {
    var types: [EventType] { events.map(\.eventType) }
}

@Suite struct SessionObserverTests {
    @Test func aNewSessionIsSpawnedStartsWorkingGoesIdleAndExitsOnce() {
        var observer = SessionObserver(host: "h1", startedAt: at(0), idleAfter: .seconds(60))
        var record = session(createdAt: at(1))

        var step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(1)), now: at(2))
        #expect(step.types == [.sessionSpawned, .statusChanged, .activityChanged])
        #expect(step.events[0].data["pid"]?.intValue == 4242)
        #expect(step.events[0].data["host"]?.stringValue == "h1")
        #expect(step.events[1].data["from"]?.stringValue == "spawning")
        #expect(step.events[1].data["to"]?.stringValue == "working")
        #expect(step.events[2].data["prev"] == .null)
        #expect(step.events[2].data["next"]?.stringValue == "active")
        #expect(step.events.map(\.timestamp) == [at(2), at(2) + .nanoseconds(1), at(2) + .nanoseconds(2)], "in order, a nanosecond apart")
        #expect(step.events.allSatisfy { $0.sessionId == "s1" && $0.projectId == "p1" })
        #expect(step.record.status == .working)
        #expect(step.record.activity == .active)
        #expect(step.record.outbox == step.events)
        record = step.record
        observer.tickFinished()

        // Nothing new: nothing published, the record unchanged.
        step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(30)), now: at(40))
        #expect(step.events.isEmpty)
        #expect(step.record == record)

        // No output for 60 s: idle; output again: active.
        step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(30)), now: at(90))
        #expect(step.types == [.activityChanged])
        #expect(step.events[0].data["prev"]?.stringValue == "active")
        #expect(step.events[0].data["next"]?.stringValue == "idle")
        record = step.record
        step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(95)), now: at(96))
        #expect(step.events.map { $0.data["next"]?.stringValue } == ["active"])
        record = step.record

        step = observer.probed(record, SessionProbe(process: .gone(.code(3))), now: at(100))
        #expect(step.types == [.activityChanged, .sessionExited])
        #expect(step.events[0].data["next"]?.stringValue == "exited")
        #expect(step.events[1].data["exit_status"]?.intValue == 3)
        #expect(step.events[1].priority == .action, "a failure needs attention")
        #expect(step.record.status == .exited)
        #expect(step.record.exitStatus == .code(3))
        record = step.record

        // Terminal: nothing more, whatever the probe says.
        #expect(observer.probed(record, SessionProbe(process: .gone(nil)), now: at(110)).events.isEmpty)
        #expect(observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(111)), now: at(112)).events.isEmpty)
    }

    @Test func sessionsFoundOnTheFirstTickAreRestoredAndLaterOnesSpawned() {
        var observer = SessionObserver(host: "h1", startedAt: at(100))
        let old = session("old", createdAt: at(1), status: .working)
        let step = observer.probed(old, SessionProbe(process: .alive, logModifiedAt: at(99)), now: at(100))
        #expect(step.types == [.sessionRestored, .activityChanged])
        #expect(step.events[0].data["status"]?.stringValue == "working")
        // Created after the loop started, though found on the first tick: spawned.
        let new = session("new", createdAt: at(100.5))
        #expect(observer.probed(new, SessionProbe(process: .alive, logModifiedAt: at(100.5)), now: at(101)).types.first == .sessionSpawned)
        observer.tickFinished()
        // Created before the loop started but first seen later (say, its file appeared): spawned.
        let late = session("late", createdAt: at(2))
        #expect(observer.probed(late, SessionProbe(process: .alive, logModifiedAt: at(2)), now: at(111)).types.first == .sessionSpawned)
        // Each is announced once.
        #expect(observer.probed(step.record, SessionProbe(process: .alive, logModifiedAt: at(120)), now: at(121)).events.isEmpty)
        // Unless its record goes away and comes back.
        observer.recordRemoved(file: old.fileName, session: old.id)
        #expect(observer.probed(step.record, SessionProbe(process: .alive, logModifiedAt: at(120)), now: at(122)).types == [.sessionSpawned])
    }

    @Test func aSessionGoneOnItsFirstProbeIsSpawnedAndExitedWithoutWorking() {
        var observer = SessionObserver(host: "h1", startedAt: at(0))
        let step = observer.probed(session(), SessionProbe(process: .gone(nil)), now: at(5))
        #expect(step.types == [.sessionSpawned, .activityChanged, .sessionExited])
        #expect(step.events[1].data["prev"] == .null)
        #expect(step.events[2].data["exit_status"] == nil, "unknown: not this process's child")
        #expect(step.events[2].priority == .info)
        #expect(!step.types.contains(.statusChanged))
    }

    @Test func aKillRequestMakesTheEndAKillAndEscalatesOnceAfterTheGracePeriod() {
        var observer = SessionObserver(host: "h1", startedAt: at(0), killGrace: .seconds(10))
        var record = observer.probed(session(), SessionProbe(process: .alive, logModifiedAt: at(1)), now: at(2)).record
        var step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(1), killRequestedAt: at(3)), now: at(4))
        #expect(step.signal == nil, "still within the grace period")
        #expect(step.events.isEmpty)
        step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(1), killRequestedAt: at(3)), now: at(13))
        #expect(step.signal == .forceKill)
        step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(1), killRequestedAt: at(3)), now: at(14))
        #expect(step.signal == nil, "SIGKILL is sent once")
        record = step.record
        step = observer.probed(record, SessionProbe(process: .gone(.signal(9)), killRequestedAt: at(3)), now: at(15))
        #expect(step.types == [.activityChanged, .sessionKilled])
        #expect(step.events[1].data["exit_signal"]?.intValue == 9)
        #expect(step.record.status == .killed)
        #expect(!step.types.contains(.sessionExited))
    }

    @Test func unpublishedEventsWaitInTheOutboxAheadOfANewLoopsOwn() {
        var first = SessionObserver(host: "h1", startedAt: at(0))
        let unpublished = first.probed(session(), SessionProbe(process: .alive, logModifiedAt: at(1)), now: at(2)).record
        // The agent died before publishing; a new loop finds the record on its first tick and
        // says it took the session over, after what the old one had to say.
        var second = SessionObserver(host: "h1", startedAt: at(10))
        let step = second.probed(unpublished, SessionProbe(process: .alive, logModifiedAt: at(9)), now: at(10))
        #expect(step.types == [.sessionRestored])
        #expect(step.record.outbox.map(\.eventType) == [.sessionSpawned, .statusChanged, .activityChanged, .sessionRestored])
        // Publishing removes exactly the events published.
        let published = second.published(Set(unpublished.outbox.prefix(2).map(\.id)), from: step.record)
        #expect(published.outbox.map(\.eventType) == [.activityChanged, .sessionRestored])
    }

    @Test func problemsAreReportedOnceUntilTheyChangeOrClear() {
        var observer = SessionObserver(host: "h1", startedAt: at(0))
        var record = observer.probed(session(), SessionProbe(process: .alive, logModifiedAt: at(1)), now: at(2)).record
        let missing = SessionProbe(process: .alive, problem: "log file /tmp/x: No such file or directory")
        var step = observer.probed(record, missing, now: at(3))
        #expect(step.types == [.tickError])
        #expect(step.events[0].data["error"]?.stringValue == "log file /tmp/x: No such file or directory")
        #expect(step.record.activity == .active, "an unknown activity stays as it was")
        record = step.record
        #expect(observer.probed(record, missing, now: at(4)).events.isEmpty)
        step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(4)), now: at(5))
        #expect(step.events.isEmpty)
        #expect(observer.probed(record, missing, now: at(6)).types == [.tickError], "reported again after it cleared")

        #expect(observer.recordUnusable(file: "p1.bad.json", project: "p1", session: "bad", error: "malformed JSON", now: at(7))?.eventType == .tickError)
        #expect(observer.recordUnusable(file: "p1.bad.json", project: "p1", session: "bad", error: "malformed JSON", now: at(8)) == nil)
        let changed = observer.recordUnusable(file: "p1.bad.json", project: "p1", session: "bad", error: "missing field pid", now: at(9))
        #expect(changed?.sessionId == "bad")
        #expect(changed?.projectId == "p1")
        #expect(changed?.data["file"]?.stringValue == "p1.bad.json")
        #expect(changed.map { (try? EventSubject.subject(for: $0)) ?? "" } == "ennio.sessions.p1.tick_error")
    }

    @Test func aFailedWriteForgetsTheAnnouncementSoTheNextTickMakesItAgain() {
        var observer = SessionObserver(host: "h1", startedAt: at(0))
        let record = session()
        let step = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(1)), now: at(2))
        #expect(observer.persistFailed(step, error: "disk full", now: at(2))?.eventType == .tickError)
        #expect(observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(1)), now: at(3)).types.first == .sessionSpawned)
    }

    @Test func aFullOutboxDropsItsOldestEventsButNeverTheTerminalOne() {
        var observer = SessionObserver(host: "h1", startedAt: at(0), idleAfter: .seconds(1), outboxLimit: 4)
        var record = session()
        var second = 1.0
        for _ in 0..<10 {
            // Alternating output and silence: an activity change on every probe, none published.
            record = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(second)), now: at(second + 0.5)).record
            record = observer.probed(record, SessionProbe(process: .alive, logModifiedAt: at(second)), now: at(second + 2)).record
            second += 3
        }
        #expect(record.outbox.count == 4)
        #expect(record.outbox.prefix(2).map(\.eventType) == [.sessionSpawned, .statusChanged], "announcement and status change kept")
        record = observer.probed(record, SessionProbe(process: .gone(nil)), now: at(second)).record
        #expect(record.outbox.count == 4)
        #expect(record.outbox.first?.eventType == .sessionSpawned)
        #expect(record.outbox.last?.eventType == .sessionExited)
        #expect(observer.droppedEvents > 0)
    }

    /// Random probe sequences, with the agent restarting and losing unpublished work at random
    /// points, against the rules: a status never changes to itself, activity changes are a
    /// chain, a session is announced once per loop and ends exactly once.
    @Test(arguments: 0..<200)
    func randomProbeSequencesKeepTheRules(seed: Int) {
        var random = Xorshift(seed: UInt64(seed))
        var now = at(10)
        var observer = SessionObserver(host: "h1", startedAt: now, idleAfter: .seconds(5), killGrace: .seconds(3))
        var loops = 1
        var disk = session(createdAt: at(Double(random.next(below: 20))))
        var published: [Event] = []
        var producedByLoop: [Int: [Event]] = [:]
        var lastOutput = disk.createdAt
        var killRequestedAt: EventTimestamp?
        var gone = false
        var ticks = 0

        for _ in 0..<60 {
            now = now + .milliseconds(Int64(random.next(below: 4000)) + 1)
            switch random.next(below: 10) {
            case 0:
                // The agent restarts; events not yet published stay in the record's outbox.
                observer = SessionObserver(host: "h1", startedAt: now, idleAfter: .seconds(5), killGrace: .seconds(3))
                loops += 1
                ticks = 0
                continue
            case 1 where !gone:
                killRequestedAt = killRequestedAt ?? now
            case 2, 3:
                lastOutput = now
            case 4 where !gone:
                gone = random.next(below: 3) == 0
            default:
                break
            }
            let process: SessionProbe.Process = gone ? .gone(random.next(below: 2) == 0 ? nil : .code(Int32(random.next(below: 3)))) : .alive
            let logSeen = random.next(below: 8) != 0
            let probe = SessionProbe(
                process: process, logModifiedAt: logSeen ? lastOutput : nil, killRequestedAt: killRequestedAt,
                problem: logSeen ? nil : "log file unreadable")
            let step = observer.probed(disk, probe, now: now)
            producedByLoop[loops, default: []] += step.events
            #expect(step.record.outbox.suffix(step.events.count) == step.events[...])
            disk = step.record
            ticks += 1
            if random.next(below: 3) == 0 { observer.tickFinished() }
            // Sometimes the publisher gets through: the outbox goes out and is emptied.
            if random.next(below: 2) == 0 {
                published += disk.outbox
                disk = observer.published(Set(disk.outbox.map(\.id)), from: disk)
            }
        }
        published += disk.outbox

        for event in producedByLoop.values.joined() where event.eventType == .statusChanged {
            #expect(event.data["from"] != event.data["to"], "status_changed from a status to itself")
        }
        // What a reader sees: the published events, each id once (as the coordinator stores them).
        var ids = Set<String>()
        let seen = published.filter { ids.insert($0.id).inserted }
        let terminal = seen.filter(\.eventType.isTerminalForSession)
        if disk.status.isTerminal {
            #expect(terminal.count == 1, "terminal exactly once: \(seen.map(\.eventType))")
            #expect(seen.last?.eventType.isTerminalForSession == true, "nothing after the end")
            #expect(terminal.first?.eventType == (killRequestedAt == nil ? .sessionExited : .sessionKilled))
        } else {
            #expect(terminal.isEmpty)
        }
        var activity: JSONValue = .null
        for event in seen where event.eventType == .activityChanged {
            #expect(event.data["prev"] == activity, "activity changes form a chain")
            #expect(event.data["prev"] != event.data["next"])
            activity = event.data["next"] ?? .null
        }
        for events in producedByLoop.values {
            #expect(events.count { $0.eventType == .sessionSpawned || $0.eventType == .sessionRestored } <= 1, "announced once per loop")
        }
        #expect(seen.first.map { [.sessionSpawned, .sessionRestored].contains($0.eventType) } ?? true, "the first event announces the session")
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so that a failing seed can be replayed.
struct Xorshift: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed &* 0x2545_F491_4F6C_DD1D | 1 }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    mutating func next(below bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }
}
