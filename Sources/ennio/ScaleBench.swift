import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient

/// `ennio bench scale`: the coordinator's costs as its history grows (issue 16). One database
/// grows through the sizes; at each: restart until a query is answered, history pages, ingest,
/// and a rebuild from the history; then, apart, terminal events in a project of many sessions.
///
/// Events are generated into the store directly, in batches through the coordinator's own
/// commit path (history and checkpointed state in one transaction), not over NATS: 10⁷ events
/// take minutes, not hours.
enum ScaleBench {
    static let help = """
        usage: ennio bench scale [--sizes N,N,…] [--sessions N,N,…] [--hosts N,N,…] [--dir PATH] [--server URL]

        Grows one history through --sizes (default 10000,100000,1000000,10000000 events; 100
        sessions in 10 projects, 10 nodes, and a tenth of the events rollouts and workflow runs)
        and at each size measures: restart until `ennio.query.sessions` answers (open, load the
        checkpoint, subscribe, reply) and the checkpoint rows it loaded; history
        p50/p99 for the last 100 events of one project and of one session (200 queries each, over
        NATS); ingest of 80,000 more events (store + checkpoint, batches of 8,000, no NATS); a
        rebuild of the tables from the history (which is linear). Then, for each of --sessions
        (default 1000,10000,100000) sessions spawned in one project, the time to apply one
        terminal event for each. Then, for each of --hosts (default 10,100,1000,10000), 100
        rollouts over fleets of that many hosts (every rollout done and pruned) and 100 runs: the
        time to load the checkpoint (what a restart does) and to rebuild the rollouts and runs
        from their events (what every restart did before they were checkpointed). Needs a
        nats-server (--server); the databases are made in --dir (default a temporary directory,
        removed after) and take about 500 bytes an event.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["sizes", "sessions", "hosts", "dir", "server"], connecting: true)
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument \(arguments.positionals[0].debugDescription)") }
        func list(_ name: String, _ fallback: [Int]) throws -> [Int] {
            guard let text = arguments.value(name) else { return fallback }
            let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { throw UsageError("--\(name) must be whole numbers above 0, separated by commas") }
            return values.compactMap { $0 }
        }
        let sizes = try list("sizes", [10_000, 100_000, 1_000_000, 10_000_000]).sorted()
        let sessionCounts = try list("sessions", [1000, 10_000, 100_000])
        let fleets = try list("hosts", [10, 100, 1000, 10_000])
        let directory = arguments.value("dir") ?? FileManager.default.temporaryDirectory.appendingPathComponent("ennio-scale-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if arguments.value("dir") == nil { try? FileManager.default.removeItem(atPath: directory) } }

        let path = directory + "/scale.sqlite"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        var generator = Generator()
        for size in sizes {
            try grow(path, to: size, with: &generator)
            try await measure(path, size: size, arguments: arguments, generator: &generator)
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        for count in sessionCounts {
            try terminal(directory: directory, sessions: count)
        }
        for hosts in fleets {
            try families(directory: directory, hosts: hosts)
        }
        return 0
    }

    /// Makes events like a busy fleet's: 100 sessions in 10 projects, 10 nodes reporting, and one
    /// event in ten a rollout's or a workflow run's (``FamilyStream``); ids random, timestamps
    /// increasing.
    struct Generator {
        var made = 0
        var families = FamilyStream()
        /// Rollout and run events made.
        var familyEvents = 0
        let base = EventTimestamp.now().nanosecondsSinceEpoch - 10_000_000 * 1_000_000
        static let types: [EventType] = [.sessionWorking, .statusChanged, .activityChanged, .ciPassing, .ciFailing, .prUpdated, .reviewPending]

        static func project(_ number: Int) -> String { "project-\(number % 10)" }
        static func session(_ number: Int) -> String { "session-\(number % 100)" }

        mutating func next(_ count: Int) -> [(event: Event, subject: String)] {
            (0..<count).map { _ in
                let number = made
                made += 1
                let timestamp = EventTimestamp(nanosecondsSinceEpoch: base + Int64(number) * 1_000_000)
                if number % 10 == 5 {
                    familyEvents += 1
                    let event = families.next(at: timestamp)
                    return (event, (try? EventSubject.subject(for: event)) ?? "?")
                }
                if number % 50 == 0 {
                    let host = "host-\(number / 50 % 10)"
                    let event = Event(
                        type: .nodeHealthCheck, sessionId: "", projectId: "", timestamp: timestamp, message: "\(host) healthy",
                        data: ["host": .string(host), "interval_seconds": 10, "load": [0.5, 0.4, 0.3]])
                    return (event, "ennio.node.\(host).health_check")
                }
                let type = Self.types[number % Self.types.count]
                let data: JSONValue = switch type {
                case .statusChanged: ["from": "working", "to": "pr_open"]
                case .activityChanged: ["prev": "idle", "next": "active"]
                default: ["attempt": .int(Int64(number % 5)), "branch": "feature/scale"]
                }
                let event = Event(
                    type: type, sessionId: Self.session(number), projectId: Self.project(number), timestamp: timestamp,
                    message: "benchmark event \(number)", data: data)
                return (event, (try? EventSubject.subject(for: event)) ?? "?")
            }
        }
    }

    static let batch = 8000

    /// The coordinator's state over the bench's database: the lifecycle and the families.
    static func state(_ store: EventStore, rebuild: Bool = false) throws -> CheckpointedState {
        try CheckpointedState(store: store, lifecycle: LifecycleState(), families: FamilyReducers(), rebuild: rebuild)
    }

    /// What the reducers emitted in a batch (`RolloutTerminal`), to store with the next one, as
    /// the coordinator's published events come back.
    static func derived(_ commit: CheckpointedState.Commit) -> [(event: Event, subject: String)] {
        commit.actions.compactMap { action in
            guard case .publish(let event, _) = action, event.eventType == .rolloutTerminal else { return nil }
            return (event, (try? EventSubject.subject(for: event)) ?? "?")
        }
    }

    static func grow(_ path: String, to size: Int, with generator: inout Generator) throws {
        let store = try EventStore(path: path)
        defer { store.close() }
        let state = try Self.state(store)
        var stored = Int(try store.lastSequence())
        var emitted: [(event: Event, subject: String)] = []
        let start = ContinuousClock.now
        while stored < size || !emitted.isEmpty {
            let commit = try state.commit(emitted + generator.next(max(0, min(batch, size - stored))))
            stored += commit.stored.count
            emitted = derived(commit)
        }
        let elapsed = ContinuousClock.now - start
        printError("bench scale: \(size) events stored (\(String(format: "%.1f", BenchCommand.seconds(elapsed))) s to grow)")
    }

    static func measure(_ path: String, size: Int, arguments: Arguments, generator: inout Generator) async throws {
        let familyEvents = generator.familyEvents
        // Restart: open, load, subscribe, answer the first query.
        var natsOptions = NATSOptions(servers: arguments.servers())
        natsOptions.name = "ennio bench scale client"
        let client = try await NATSConnection.connect(natsOptions)
        natsOptions.name = "ennio bench scale coordinator"
        let clock = ContinuousClock()
        let start = clock.now
        let store = try EventStore(path: path)
        let connection = try await NATSConnection.connect(natsOptions)
        var options = CoordinatorOptions()
        options.mode = .core
        options.consumerName = "ennio-bench-scale"
        let coordinator = try Coordinator(connection: connection, store: store, options: options)
        let ready = AsyncStream<Void>.makeStream()
        let running = Task { try await coordinator.run { ready.continuation.finish() } }
        for await _ in ready.stream {}
        _ = try await client.request(QueryProtocol.body(for: TableQuery(limit: 100)), to: QueryProtocol.sessionsSubject, timeout: .seconds(600))
        let restart = clock.now - start
        let loaded = coordinator.state.loadReport
        guard loaded.eventsRead == 0, loaded.rebuilt.isEmpty else { throw BenchError("bench scale: the restart read the history") }
        let families = coordinator.families
        let familyRecords = families.rollouts.rollouts.count + families.runs.runs.count
        guard families.statistics.violations == 0, families.pendingEmissions.isEmpty else {
            throw BenchError("bench scale: the rollouts and runs broke \(families.statistics.violations) rules, \(families.pendingEmissions.count) emitted events are pending")
        }

        // History: the last 100 events of one project, of one session.
        // A project has more than 100 events at every size; a session may have fewer at the
        // smallest, but never none.
        func latencies(_ query: HistoryQuery, full: Bool) async throws -> (p50: Double, p99: Double) {
            var samples: [Double] = []
            let body = QueryProtocol.body(for: query)
            for round in 0..<220 {
                let begin = clock.now
                let reply = try await client.request(body, to: QueryProtocol.historySubject, timeout: .seconds(60))
                if round >= 20 { samples.append(BenchCommand.seconds(clock.now - begin) * 1e6) }
                if round == 0 {
                    let page = try HistoryReply(parsing: reply.payload)
                    guard full ? page.events.count == 100 || page.part != nil : !page.events.isEmpty else { throw BenchError("bench scale: a page of \(page.events.count) events") }
                }
            }
            samples.sort()
            return (samples[samples.count / 2], samples[samples.count * 99 / 100])
        }
        let project = try await latencies(HistoryQuery(projectId: Generator.project(3), order: .newestFirst, limit: 100), full: true)
        let session = try await latencies(
            HistoryQuery(projectId: Generator.project(7), sessionId: Generator.session(7), order: .newestFirst, limit: 100), full: false)
        running.cancel()
        _ = try? await running.value
        await connection.close()
        await client.close()

        store.close()

        // A rebuild from the history alone.
        let rebuildStart = clock.now
        let rebuildStore = try EventStore(path: path)
        defer { rebuildStore.close() }
        let rebuilt = try state(rebuildStore, rebuild: true)
        let rebuild = clock.now - rebuildStart
        guard rebuilt.loadReport.eventsRead >= size else { throw BenchError("bench scale: the rebuild read \(rebuilt.loadReport.eventsRead) events, not \(size)") }

        // Ingest: 80,000 more, through the same commit path (then grown on from there).
        let extra = 80_000
        var ingested = 0
        var ingestTime = Duration.zero
        var emitted: [(event: Event, subject: String)] = []
        while ingested < extra {
            let events = emitted + generator.next(batch)
            let rows = EventStore.Rows(events)
            let begin = clock.now
            let commit = try rebuilt.commit(rows, of: events)
            ingestTime += clock.now - begin
            ingested += commit.stored.count
            emitted = derived(commit)
        }
        if !emitted.isEmpty { _ = try rebuilt.commit(emitted) }

        let rate = Double(extra) / max(BenchCommand.seconds(ingestTime), 1e-9)
        BenchCommand.report(
            "scale_\(size)",
            "\(size) events (\(familyEvents) of rollouts and runs): restart \(String(format: "%.0f", BenchCommand.seconds(restart) * 1000)) ms, \(loaded.rowsLoaded) checkpoint rows (\(familyRecords) rollouts and runs); history of a project p50 \(String(format: "%.0f", project.p50)) µs p99 \(String(format: "%.0f", project.p99)) µs, of a session p50 \(String(format: "%.0f", session.p50)) µs p99 \(String(format: "%.0f", session.p99)) µs; ingest \(Int(rate)) events/s; rebuild \(String(format: "%.2f", BenchCommand.seconds(rebuild))) s",
            [
                ("restart_ms", BenchCommand.seconds(restart) * 1000), ("project_p50_us", project.p50), ("project_p99_us", project.p99),
                ("session_p50_us", session.p50), ("session_p99_us", session.p99), ("ingest_events_per_sec", rate),
                ("rebuild_s", BenchCommand.seconds(rebuild)), ("rows_loaded", Double(loaded.rowsLoaded)),
                ("family_records", Double(familyRecords)), ("family_events", Double(familyEvents)),
            ])
    }

    /// 100 rollouts over fleets of `hosts` hosts, each walked to converged and pruned, and 100
    /// runs: the same rows whatever the number of hosts, ever more events. The time to load the
    /// checkpoint, and to rebuild the reducers from the events instead.
    static func families(directory: String, hosts: Int) throws {
        let path = directory + "/families-\(hosts).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let base = EventTimestamp.now().nanosecondsSinceEpoch - 100_000_000 * 1_000_000
        var made = 0
        func events(_ steps: [FamilyStream.Step]) -> [(event: Event, subject: String)] {
            steps.map { step in
                made += 1
                let event = FamilyStream.event(step, at: EventTimestamp(nanosecondsSinceEpoch: base + Int64(made) * 1_000_000))
                return (event, (try? EventSubject.subject(for: event)) ?? "?")
            }
        }
        do {
            let store = try EventStore(path: path)
            defer { store.close() }
            let state = try state(store)
            var emitted: [(event: Event, subject: String)] = []
            var steps = Array((0..<100).map { FamilyStream.run(project: $0 % FamilyStream.projects, number: $0) }.joined())
            for number in 0..<100 { steps += FamilyStream.rollout(channel: number % FamilyStream.channels, number: number, hosts: hosts) }
            var pending = steps[...]
            while !pending.isEmpty || !emitted.isEmpty {
                let commit = try state.commit(emitted + events(Array(pending.prefix(batch))))
                pending = pending.dropFirst(batch)
                emitted = derived(commit)
            }
        }
        let clock = ContinuousClock()
        let loadStart = clock.now
        let store = try EventStore(path: path)
        defer { store.close() }
        let loaded = try state(store)
        let load = clock.now - loadStart
        guard loaded.loadReport.eventsRead == 0, let families = loaded.families, families.statistics.violations == 0,
            families.rollouts.rollouts.values.allSatisfy({ $0.state == .pruned })
        else { throw BenchError("bench scale: the fleet of \(hosts) hosts did not load as it was stored") }
        let rebuildStart = clock.now
        let rebuilt = try state(store, rebuild: true)
        let rebuild = clock.now - rebuildStart
        BenchCommand.report(
            "families_\(hosts)",
            "100 rollouts over \(hosts) hosts and 100 runs, \(made) events: checkpoint loaded in \(String(format: "%.1f", BenchCommand.seconds(load) * 1000)) ms (\(loaded.loadReport.rowsLoaded) rows); rebuilt from \(rebuilt.loadReport.eventsRead) events in \(String(format: "%.1f", BenchCommand.seconds(rebuild) * 1000)) ms",
            [("load_ms", BenchCommand.seconds(load) * 1000), ("rows_loaded", Double(loaded.loadReport.rowsLoaded)), ("events", Double(made)),
             ("rebuild_ms", BenchCommand.seconds(rebuild) * 1000)])
    }

    /// `sessions` sessions spawned in one project, then one terminal event each: the time the
    /// terminal ones take to apply (through the commit path, as the coordinator applies them).
    static func terminal(directory: String, sessions: Int) throws {
        let path = directory + "/terminal-\(sessions).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try EventStore(path: path)
        defer { store.close() }
        let state = try CheckpointedState(store: store, lifecycle: LifecycleState())
        let base = EventTimestamp.now().nanosecondsSinceEpoch
        func events(_ type: EventType, from: Int, count: Int, offset: Int64) -> [(event: Event, subject: String)] {
            (from..<(from + count)).map { number in
                let event = Event(
                    type: type, sessionId: "session-\(number)", projectId: "one-project",
                    timestamp: EventTimestamp(nanosecondsSinceEpoch: base + offset + Int64(number) * 1000), message: "\(type.rawValue) \(number)")
                return (event, (try? EventSubject.subject(for: event)) ?? "?")
            }
        }
        var done = 0
        while done < sessions {
            let count = min(batch, sessions - done)
            _ = try state.commit(events(.sessionSpawned, from: done, count: count, offset: 0))
            done += count
        }
        let clock = ContinuousClock()
        var elapsed = Duration.zero
        var completions = 0
        done = 0
        while done < sessions {
            let count = min(batch, sessions - done)
            let batchEvents = events(.sessionExited, from: done, count: count, offset: 1_000_000_000_000)
            let rows = EventStore.Rows(batchEvents)
            let begin = clock.now
            completions += try state.commit(rows, of: batchEvents).actions.count
            elapsed += clock.now - begin
            done += count
        }
        guard completions == 1 else { throw BenchError("bench scale: \(completions) all_complete for one project") }
        let seconds = BenchCommand.seconds(elapsed)
        BenchCommand.report(
            "terminal_\(sessions)",
            "\(sessions) terminal events in a project of \(sessions) sessions: \(String(format: "%.3f", seconds)) s, \(String(format: "%.2f", seconds / Double(sessions) * 1e6)) µs each",
            [("apply_s", seconds), ("per_event_us", seconds / Double(sessions) * 1e6)])
    }
}
