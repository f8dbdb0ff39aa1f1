import CSQLite
import EnnioEvents
import Foundation
import Testing

@testable import EnnioCoordinator

/// A database file under the temporary directory, removed (with its WAL files) by `remove()`.
private struct TemporaryDatabase {
    let directory: String
    let path: String

    init() throws {
        directory = NSTemporaryDirectory() + "ennio-event-store-" + EventID.random()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/events.sqlite"
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

private let baseNanoseconds: Int64 = 1_700_000_000_000_000_000

private func instant(_ seconds: Int64, nanos: Int64 = 0) -> EventTimestamp {
    EventTimestamp(nanosecondsSinceEpoch: baseNanoseconds + seconds * 1_000_000_000 + nanos)
}

private func storeEvent(
    id: String = EventID.random(),
    _ type: EventType = .sessionWorking,
    priority: EventPriority = .info,
    project: String = "p1",
    session: String = "s1",
    at seconds: Int64 = 0,
    message: String = "something happened",
    data: JSONValue = .null
) -> Event {
    Event(id: id, type: type, priority: priority, sessionId: session, projectId: project,
          timestamp: instant(seconds), message: message, data: data)
}

private func subject(of event: Event) -> String {
    "ennio.\(event.eventType.category.rawValue).\(event.projectId).\(event.eventType.action)"
}

/// The expected order of a history page.
private func ordered(_ events: [Event]) -> [Event] {
    // SQLite's BINARY collation compares the UTF-8 bytes.
    events.sorted { a, b in
        if a.timestamp != b.timestamp { return a.timestamp < b.timestamp }
        return a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
    }
}

@Suite struct EventStoreTests {
    @Test func insertedEventsComeBackEqual() throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        let events = [
            storeEvent(.sessionSpawned, at: 3, data: ["agent": "claude", "attempt": 2, "tags": ["a", "b"], "ok": true, "ratio": 1.5, "none": nil]),
            Event(type: .ciFailing, priority: .urgent, sessionId: "s2", projectId: "p2",
                  timestamp: EventTimestamp(nanosecondsSinceEpoch: baseNanoseconds + 123_456_789), message: "CI is red"),
            storeEvent(.prCreated, priority: .action, at: 1, message: ""),
            storeEvent(.nodeHealthCheck, project: "host-1", session: "", at: -5, data: ["load": ["one": 0.25]]),
        ]
        for event in events {
            #expect(try store.insert(event, subject: subject(of: event)))
        }
        #expect(try store.count() == events.count)
        for event in events {
            #expect(try store.contains(id: event.id))
        }
        #expect(try !store.contains(id: "no-such-id"))
        let page = try store.query(HistoryQuery())
        #expect(page.events == ordered(events))
        #expect(page.next == nil)
    }

    @Test func rowsHoldTheCodecsJSONAndTheColumns() throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        let event = storeEvent(.reviewApproved, priority: .critical, project: "proj", session: "sess", at: 7, data: ["x": 1])
        try store.insert(event, subject: "ennio.review.proj.approved")
        let row = try store.withDatabase { database in
            try database.rows("SELECT event_type, category, priority, session_id, project_id, timestamp_ns, subject, json, stored_at_ns FROM events") {
                [$0.string(at: 0), $0.string(at: 1), String($0.int64(at: 2)), $0.string(at: 3), $0.string(at: 4),
                 String($0.int64(at: 5)), $0.string(at: 6), $0.string(at: 7), String($0.int64(at: 8) > 0)]
            }
        }
        #expect(row.count == 1)
        #expect(row.first == [
            "review_approved", "review", "3", "sess", "proj", String(event.timestamp.nanosecondsSinceEpoch),
            "ennio.review.proj.approved", String(decoding: EventCodec.encode(event), as: UTF8.self), "true",
        ])
    }

    @Test func aRedeliveredEventStoresNothing() throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        let original = storeEvent(id: "same-id", .sessionSpawned, at: 1, message: "first")
        #expect(try store.insert(original, subject: subject(of: original)))
        #expect(try !store.insert(original, subject: subject(of: original)))
        // Same id and instant: the same event as far as the store knows, whatever else differs.
        var changed = storeEvent(id: "same-id", .sessionKilled, priority: .critical, project: "other", session: "other", at: 1, message: "second")
        changed.data = ["different": true]
        #expect(try !store.insert(changed, subject: "ennio.sessions.other.killed"))
        #expect(try store.count() == 1)
        #expect(try store.query(HistoryQuery()).events == [original])
        #expect(try store.query(HistoryQuery(projectId: "other")).events.isEmpty)
    }

    @Test func theSameIdAtAnotherInstantIsAnotherEvent() throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        let first = storeEvent(id: "reused-id", .sessionSpawned, at: 1, message: "first")
        let second = storeEvent(id: "reused-id", .sessionKilled, at: 2, message: "second")
        #expect(try store.insert([first, second, first, second].map { (event: $0, subject: subject(of: $0)) }) == [true, true, false, false])
        #expect(try store.count() == 2)
        #expect(try store.contains(id: "reused-id"))
        #expect(try store.query(HistoryQuery()).events == [first, second])
    }

    @Test func batchesReportWhichEventsWereNew() throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        let a = storeEvent(id: "a", at: 1)
        let b = storeEvent(id: "b", at: 2)
        let c = storeEvent(id: "c", at: 3)
        let d = storeEvent(id: "d", at: 4)
        var aAgain = a
        aAgain.message = "a again, changed"
        let first = try store.insert([a, b, aAgain, c, a].map { (event: $0, subject: subject(of: $0)) })
        #expect(first == [true, true, false, true, false])
        #expect(try store.count() == 3)
        let second = try store.insert([b, d, d, c].map { (event: $0, subject: subject(of: $0)) })
        #expect(second == [false, true, false, false])
        #expect(try store.count() == 4)
        #expect(try store.query(HistoryQuery()).events == [a, b, c, d])
        #expect(try store.insert([]) == [])
    }

    @Test func closingAndReopeningKeepsEverything() throws {
        let file = try TemporaryDatabase()
        defer { file.remove() }
        let events = (0..<20).map { storeEvent(session: "s\($0 % 3)", at: Int64($0)) }
        do {
            let store = try EventStore(path: file.path)
            try store.insert(events.map { (event: $0, subject: subject(of: $0)) })
            let journal = try store.withDatabase { try $0.rows("PRAGMA journal_mode") { $0.string(at: 0) } }
            #expect(journal == ["wal"])
            store.close()
            store.close()
            #expect(throws: SQLiteError.self) { try store.count() }
            #expect(throws: SQLiteError.self) { try store.insert(events[0], subject: "x") }
            #expect(throws: SQLiteError.self) { try store.query(HistoryQuery()) }
        }
        let reopened = try EventStore(path: file.path)
        defer { reopened.close() }
        #expect(try reopened.count() == 20)
        #expect(try reopened.query(HistoryQuery()).events == events)
        #expect(try !reopened.insert(events[5], subject: subject(of: events[5])))
        let version = try reopened.withDatabase { try $0.rows("PRAGMA user_version") { $0.int64(at: 0) } }
        #expect(version == [EventStore.schemaVersion])
        let pageSize = try reopened.withDatabase { try $0.rows("PRAGMA page_size") { $0.int64(at: 0) } }
        #expect(pageSize == [Int64(EventStore.pageSize)])
    }

    /// The schema of versions 1 and 2, as they wrote it: a primary key on `id`.
    private static let version2Schema = """
        CREATE TABLE events (
            id TEXT PRIMARY KEY NOT NULL, event_type TEXT NOT NULL, category TEXT NOT NULL,
            priority INTEGER NOT NULL, session_id TEXT NOT NULL, project_id TEXT NOT NULL,
            timestamp_ns INTEGER NOT NULL, subject TEXT NOT NULL, json TEXT NOT NULL, stored_at_ns INTEGER NOT NULL
        );
        CREATE INDEX events_project ON events (project_id, timestamp_ns);
        CREATE INDEX events_session ON events (session_id, timestamp_ns);
        CREATE INDEX events_time ON events (timestamp_ns);
        """

    /// The schema of version 3: the key `(timestamp_ns, id)`, no `seq`, no checkpoint.
    private static let version3Schema = """
        CREATE TABLE events (
            id TEXT NOT NULL, event_type TEXT NOT NULL, category TEXT NOT NULL,
            priority INTEGER NOT NULL, session_id TEXT NOT NULL, project_id TEXT NOT NULL,
            timestamp_ns INTEGER NOT NULL, subject TEXT NOT NULL, json TEXT NOT NULL, stored_at_ns INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX events_key ON events (timestamp_ns, id);
        CREATE INDEX events_project ON events (project_id, timestamp_ns);
        CREATE INDEX events_session ON events (session_id, timestamp_ns);
        """

    @Test(arguments: [1, 2, 3])
    func anOlderDatabaseMovesToTheCurrentSchemaAndKeepsItsEvents(version: Int) throws {
        let file = try TemporaryDatabase()
        defer { file.remove() }
        let types: [EventType] = [.sessionSpawned, .ciFailing, .prCreated, .ciFailing, .mergeReady]
        let events = types.enumerated().map { storeEvent($0.element, at: Int64(4 - $0.offset)) }
        do {
            let database = try SQLiteDatabase(path: file.path)
            try database.exec("PRAGMA journal_mode = WAL")
            try database.exec(version == 3 ? Self.version3Schema : Self.version2Schema)
            if version == 1 {
                try database.exec("CREATE INDEX events_type ON events (event_type, timestamp_ns)")
                try database.exec("CREATE INDEX events_category ON events (category, timestamp_ns)")
            }
            for event in events {
                _ = try database.run(
                    "INSERT INTO events (\(EventStore.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    binding: [
                        .text(event.id), .text(event.eventType.rawValue), .text(event.eventType.category.rawValue),
                        .integer(EventStore.priorityRank(event.priority)), .text(event.sessionId), .text(event.projectId),
                        .integer(event.timestamp.nanosecondsSinceEpoch), .text(subject(of: event)),
                        .text(String(decoding: EventCodec.encode(event), as: UTF8.self)), .integer(1),
                    ]
                )
            }
            try database.exec("PRAGMA user_version = \(version)")
            database.close()
        }
        let store = try EventStore(path: file.path)
        defer { store.close() }
        let names = try store.withDatabase { database in
            try database.rows("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name") { $0.string(at: 0) ?? "?" }
        }
        #expect(names == ["events_key", "events_project", "events_session"], "no automatic index on id is left")
        // Numbered in the order they were stored.
        let order = try store.withDatabase { try $0.rows("SELECT id FROM events ORDER BY seq") { $0.string(at: 0) ?? "" } }
        #expect(order == events.map(\.id))
        #expect(try store.withDatabase { try $0.rows("PRAGMA user_version") { $0.int64(at: 0) } } == [EventStore.schemaVersion])
        #expect(try store.count() == events.count)
        #expect(try store.query(HistoryQuery()).events == events.reversed())
        #expect(try store.query(HistoryQuery(eventType: .ciFailing)).events == events.filter { $0.eventType == .ciFailing }.reversed())
        // The moved rows still count as stored: delivering one again stores nothing.
        #expect(try !store.insert(events[2], subject: subject(of: events[2])))
        #expect(try store.insert(storeEvent(at: 10), subject: "ennio.sessions.p1.working"))
        #expect(try store.count() == events.count + 1)
    }

    /// Version 4 had a partial index for the rollout and run reducers' replay at start; version 5
    /// drops it and keeps the events and the checkpoint as they were.
    @Test func aVersion4DatabaseLosesTheFamiliesIndexAndKeepsEverythingElse() throws {
        let file = try TemporaryDatabase()
        defer { file.remove() }
        let events = (0..<5).map { storeEvent(.sessionSpawned, at: Int64($0)) }
        do {
            let store = try EventStore(path: file.path)
            try store.insert(events.map { (event: $0, subject: subject(of: $0)) })
            try store.withDatabase { database in
                try database.exec("CREATE INDEX events_families ON events (seq) WHERE category IN ('rollout', 'run')")
                _ = try database.run("INSERT INTO checkpoints (reducer, version, applied_seq) VALUES ('lifecycle', 1, 5)")
                try database.exec("PRAGMA user_version = 4")
            }
            store.close()
        }
        let store = try EventStore(path: file.path)
        defer { store.close() }
        let names = try store.withDatabase { database in
            try database.rows("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name") { $0.string(at: 0) ?? "?" }
        }
        #expect(!names.contains("events_families"), "\(names)")
        #expect(names.contains("events_key"))
        #expect(try store.withDatabase { try $0.rows("PRAGMA user_version") { $0.int64(at: 0) } } == [EventStore.schemaVersion])
        #expect(try store.query(HistoryQuery(order: .oldestFirst)).events == events)
        #expect(try store.withDatabase { try store.checkpoint(of: "lifecycle", in: $0) }?.appliedSequence == 5)
    }

    @Test func aNewerSchemaVersionIsRefused() throws {
        let file = try TemporaryDatabase()
        defer { file.remove() }
        do {
            let database = try SQLiteDatabase(path: file.path)
            try database.exec("PRAGMA user_version = 7")
            database.close()
        }
        let error = #expect(throws: SQLiteError.self) { try EventStore(path: file.path) }
        #expect(error?.message.contains("schema version 7") == true)
    }

    // MARK: - Filters

    /// Events over two projects, three sessions, several types, categories and priorities, one
    /// per second, two of them sharing a timestamp.
    private static let sample: [Event] = {
        let types: [EventType] = [.sessionSpawned, .ciFailing, .prCreated, .reviewApproved, .ciFixSent, .mergeReady, .statusChanged]
        return (0..<42).map { index in
            storeEvent(
                id: "event-0" + (41 - index < 10 ? "0" : "") + String(41 - index),
                types[index % types.count],
                priority: EventPriority.allCases[index % 4],
                project: index % 2 == 0 ? "alpha" : "beta",
                session: "s\(index % 3)",
                at: Int64(index == 10 ? 9 : index)
            )
        }
    }()

    private static func store(with events: [Event]) throws -> EventStore {
        let store = try EventStore(path: ":memory:")
        try store.insert(events.map { (event: $0, subject: subject(of: $0)) })
        return store
    }

    private static let filterCases: [(name: String, query: HistoryQuery, matches: @Sendable (Event) -> Bool)] = [
        ("everything", HistoryQuery(), { _ in true }),
        ("project", HistoryQuery(projectId: "alpha"), { $0.projectId == "alpha" }),
        ("unknown project", HistoryQuery(projectId: "gamma"), { _ in false }),
        ("session", HistoryQuery(sessionId: "s1"), { $0.sessionId == "s1" }),
        ("type", HistoryQuery(eventType: .ciFailing), { $0.eventType == .ciFailing }),
        ("category", HistoryQuery(category: .ci), { $0.eventType.category == .ci }),
        ("category without events", HistoryQuery(category: .node), { _ in false }),
        ("priority info", HistoryQuery(minimumPriority: .info), { _ in true }),
        ("priority action", HistoryQuery(minimumPriority: .action), { $0.priority >= .action }),
        ("priority urgent", HistoryQuery(minimumPriority: .urgent), { $0.priority >= .urgent }),
        ("priority critical", HistoryQuery(minimumPriority: .critical), { $0.priority == .critical }),
        ("since is inclusive", HistoryQuery(since: instant(9)), { $0.timestamp >= instant(9) }),
        ("until is exclusive", HistoryQuery(until: instant(9)), { $0.timestamp < instant(9) }),
        ("since one nanosecond later", HistoryQuery(since: instant(9, nanos: 1)), { $0.timestamp > instant(9) }),
        ("since and until", HistoryQuery(since: instant(5), until: instant(20)), { $0.timestamp >= instant(5) && $0.timestamp < instant(20) }),
        ("empty range", HistoryQuery(since: instant(9), until: instant(9)), { _ in false }),
        ("project and session", HistoryQuery(projectId: "beta", sessionId: "s2"), { $0.projectId == "beta" && $0.sessionId == "s2" }),
        ("category and priority", HistoryQuery(category: .ci, minimumPriority: .urgent), { $0.eventType.category == .ci && $0.priority >= .urgent }),
        (
            "all of them",
            HistoryQuery(projectId: "alpha", sessionId: "s0", eventType: .statusChanged, category: .sessions, minimumPriority: .action, since: instant(1), until: instant(40)),
            { $0.projectId == "alpha" && $0.sessionId == "s0" && $0.eventType == .statusChanged && $0.priority >= .action && $0.timestamp >= instant(1) && $0.timestamp < instant(40) }
        ),
        ("type and another category", HistoryQuery(eventType: .ciFailing, category: .pr), { _ in false }),
    ]

    @Test(arguments: 0..<filterCases.count)
    func filtersSelectExactlyTheMatchingEvents(caseIndex: Int) throws {
        let (name, query, matches) = Self.filterCases[caseIndex]
        let store = try Self.store(with: Self.sample)
        defer { store.close() }
        let expected = ordered(Self.sample.filter(matches))
        let page = try store.query(query)
        #expect(page.events == expected, "\(name)")
        #expect(page.next == nil, "\(name)")
        if name != "everything" && !name.hasPrefix("priority info") {
            #expect(expected.count < Self.sample.count, "the case \(name) should filter something out")
        }
        if !name.contains("empty") && !name.contains("unknown") && !name.contains("without") && !name.contains("another") {
            #expect(!expected.isEmpty, "the case \(name) should match something")
        }
    }

    @Test func eventsAtTheSameInstantAreOrderedById() throws {
        let store = try Self.store(with: Self.sample)
        defer { store.close() }
        let page = try store.query(HistoryQuery(since: instant(9), until: instant(10)))
        #expect(page.events.map(\.id) == ["event-031", "event-032"])
    }

    // MARK: - Paging

    @Test func pagesReturnEveryEventOnceInOrder() throws {
        // Several events share each timestamp, so the order within an instant matters too.
        let events = (0..<250).map { storeEvent(id: EventID.random(), at: Int64($0 / 4)) }
        let store = try Self.store(with: events.shuffled())
        defer { store.close() }
        let expected = ordered(events)
        var seen: [Event] = []
        var cursors: [HistoryCursor?] = []
        var query = HistoryQuery(limit: 100)
        while true {
            let page = try store.query(query)
            seen += page.events
            cursors.append(page.next)
            guard let next = page.next else { break }
            query.after = next
        }
        #expect(cursors == [HistoryCursor(after: expected[99]), HistoryCursor(after: expected[199]), nil])
        #expect(seen == expected)
        #expect(Set(seen.map(\.id)).count == 250)

        // A last page that is exactly full has no next page.
        #expect(try store.query(HistoryQuery(after: HistoryCursor(after: expected[199]), limit: 50)).next == nil)
        #expect(try store.query(HistoryQuery(after: HistoryCursor(after: expected[198]), limit: 50)).next == HistoryCursor(after: expected[248]))
        #expect(try store.query(HistoryQuery(limit: 1000)).events.count == 250)
        let past = try store.query(HistoryQuery(after: HistoryCursor(after: expected[249])))
        #expect(past.events.isEmpty && past.next == nil)
        #expect(try store.query(HistoryQuery(after: HistoryCursor(after: expected[2]), limit: 7)).events == Array(expected[3..<10]))
        // A cursor between stored events (an event that is not there) still places the page.
        let between = HistoryCursor(timestampNanoseconds: expected[10].timestamp.nanosecondsSinceEpoch, id: "")
        #expect(try store.query(HistoryQuery(after: between, limit: 1)).events.first?.timestamp == expected[10].timestamp)
    }

    @Test func newestFirstPagesGoBackInTime() throws {
        let events = (0..<45).map { storeEvent(id: EventID.random(), project: $0 % 2 == 0 ? "alpha" : "beta", at: Int64($0 / 3)) }
        let store = try Self.store(with: events.shuffled())
        defer { store.close() }
        for filter in [HistoryQuery(order: .newestFirst, limit: 10), HistoryQuery(projectId: "alpha", order: .newestFirst, limit: 10)] {
            var query = filter
            var seen: [Event] = []
            while true {
                let page = try store.query(query)
                seen += page.events
                guard let next = page.next else { break }
                query.after = next
            }
            #expect(seen == ordered(events.filter { filter.projectId == nil || $0.projectId == filter.projectId }).reversed())
        }
    }

    @Test func pagesCombineWithFilters() throws {
        let events = (0..<120).map { storeEvent(project: $0 % 3 == 0 ? "alpha" : "beta", at: Int64($0)) }
        let store = try Self.store(with: events)
        defer { store.close() }
        let alpha = events.filter { $0.projectId == "alpha" }
        let first = try store.query(HistoryQuery(projectId: "alpha", limit: 30))
        #expect(first.events == Array(alpha.prefix(30)))
        #expect(first.next == HistoryCursor(after: alpha[29]))
        let second = try store.query(HistoryQuery(projectId: "alpha", after: first.next, limit: 30))
        #expect(second.events == Array(alpha[30...]))
        #expect(second.next == nil)
    }

    @Test func pagesStopAtTheirByteLimitButHoldAtLeastOneEvent() throws {
        let big = String(repeating: "x", count: 3000)
        let events = (0..<10).map { storeEvent(at: Int64($0), message: $0 == 4 ? big + big : big) }
        let store = try Self.store(with: events)
        defer { store.close() }
        var query = HistoryQuery(limit: 1000, maxBytes: 7000)
        var sizes: [Int] = []
        while true {
            let page = try store.query(query)
            sizes.append(page.events.count)
            guard let next = page.next else { break }
            query.after = next
        }
        // Two per page of about 3 KB each, the 6 KB one alone.
        #expect(sizes == [2, 2, 1, 2, 2, 1])
    }

    @Test(arguments: [(0, nil), (-1, nil), (1001, nil), (Int.min, nil), (100, 511), (100, 0), (100, Int.min)] as [(Int, Int?)])
    func invalidLimitsAreRejected(limit: Int, maxBytes: Int?) throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        let error = #expect(throws: HistoryQueryError.self) {
            try store.query(HistoryQuery(limit: limit, maxBytes: maxBytes))
        }
        #expect(error?.message.isEmpty == false)
    }

    @Test func theLimitsBoundariesAreAccepted() throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        _ = try store.query(HistoryQuery(limit: 1))
        _ = try store.query(HistoryQuery(limit: 1000, maxBytes: HistoryQuery.minimumBytes))
        _ = try store.query(HistoryQuery(after: HistoryCursor(timestampNanoseconds: .max, id: "\u{10FFFF}"), limit: 1000))
        _ = try store.query(HistoryQuery(after: HistoryCursor(timestampNanoseconds: .min, id: ""), order: .newestFirst))
    }

    @Test(arguments: [
        ("1772738703123456789:5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60", HistoryCursor(timestampNanoseconds: 1_772_738_703_123_456_789, id: "5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60")),
        ("-5:a:b", HistoryCursor(timestampNanoseconds: -5, id: "a:b")),
        ("0:", HistoryCursor(timestampNanoseconds: 0, id: "")),
        ("12+300:id+x", HistoryCursor(timestampNanoseconds: 12, id: "id+x", partOffset: 300)),
        ("-12+0:id", HistoryCursor(timestampNanoseconds: -12, id: "id", partOffset: 0)),
    ])
    func cursorsReadTheirTextForm(text: String, cursor: HistoryCursor) {
        #expect(HistoryCursor(text) == cursor)
        #expect(HistoryCursor(cursor.description) == cursor)
    }

    @Test(arguments: ["", "12", ":id", "x:id", "12+:id", "12+-1:id", "1+2+3:id", "99999999999999999999:id"])
    func thingsThatAreNotCursorsAreRefused(text: String) {
        #expect(HistoryCursor(text) == nil)
    }

    // MARK: - Schema and hostile values

    @Test func theSchemaHasItsIndexes() throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        let indexes = try store.withDatabase { database in
            try database.rows("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name") {
                "\($0.string(at: 0) ?? "?"): \($0.string(at: 1) ?? "?")"
            }
        }
        #expect(indexes == [
            "events_key: CREATE UNIQUE INDEX events_key ON events (timestamp_ns, id)",
            "events_project: CREATE INDEX events_project ON events (project_id, timestamp_ns, id)",
            "events_session: CREATE INDEX events_session ON events (session_id, timestamp_ns, id)",
        ])
        func plan(_ query: HistoryQuery) throws -> [String] {
            let (sql, values) = EventStore.select(for: query)
            return try store.withDatabase { database in
                try database.rows("EXPLAIN QUERY PLAN " + sql, binding: values) { $0.string(at: 3) ?? "" }
            }
        }
        let byProject = try plan(HistoryQuery(projectId: "p"))
        #expect(byProject.contains { $0.contains("events_project") }, "\(byProject)")
        let byTime = try plan(HistoryQuery(since: instant(1)))
        #expect(byTime.contains { $0.contains("events_key") }, "\(byTime)")
        #expect(!byTime.contains { $0.contains("TEMP B-TREE") }, "pages come in key order, unsorted: \(byTime)")
        // A page after a cursor continues along an index, never sorting or scanning from the start.
        let cursor = HistoryCursor(timestampNanoseconds: 5, id: "x")
        for query in [
            HistoryQuery(after: cursor), HistoryQuery(projectId: "p", after: cursor), HistoryQuery(sessionId: "s", after: cursor),
            HistoryQuery(after: cursor, order: .newestFirst), HistoryQuery(projectId: "p", after: cursor, order: .newestFirst),
        ] {
            let steps = try plan(query)
            #expect(steps.contains { $0.contains("USING") && $0.contains("INDEX") && $0.contains("timestamp_ns") }, "\(query): \(steps)")
            #expect(!steps.contains { $0.contains("TEMP B-TREE") }, "\(query): \(steps)")
        }
    }

    @Test func hostileAndUnicodeValuesAreStoredVerbatim() throws {
        let file = try TemporaryDatabase()
        defer { file.remove() }
        let nasty = "'; DROP TABLE events; --"
        let values = [nasty, "O'Brien \"quoted\" \\ back", "日本語 ✓ émoji 👩‍💻", "null\u{0}byte", "", " spaced ", "?", "%_*"]
        let events = values.enumerated().map { index, value in
            storeEvent(id: value.isEmpty ? "empty-\(index)" : value, project: value, session: value + "-s", at: Int64(index),
                       message: value, data: ["value": .string(value), value: 1])
        }
        let store = try EventStore(path: file.path)
        defer { store.close() }
        for event in events {
            #expect(try store.insert(event, subject: "ennio.sessions.\(event.projectId).working"))
        }
        #expect(try store.count() == events.count)
        for event in events {
            #expect(try store.contains(id: event.id))
            #expect(try store.query(HistoryQuery(projectId: event.projectId)).events == [event])
            #expect(try store.query(HistoryQuery(sessionId: event.sessionId)).events == [event])
        }
        #expect(try !store.contains(id: "%"))
        #expect(try store.query(HistoryQuery(projectId: "O'Brien")).events.isEmpty)
        let subjects = try store.withDatabase { database in
            try database.rows("SELECT subject FROM events WHERE id = ?", binding: [.text(nasty)]) { $0.string(at: 0) }
        }
        #expect(subjects == ["ennio.sessions.\(nasty).working"])
        #expect(try store.query(HistoryQuery()).events == events)
    }

    @Test func aDirectoryIsNotADatabase() throws {
        let file = try TemporaryDatabase()
        defer { file.remove() }
        #expect(throws: SQLiteError.self) { try EventStore(path: file.directory) }
        #expect(throws: SQLiteError.self) { try EventStore(path: file.directory + "/missing/dir/events.sqlite") }
    }

    @Test func aFileThatIsNotADatabaseIsRefused() throws {
        let file = try TemporaryDatabase()
        defer { file.remove() }
        try Array(repeating: "not a database\n", count: 100).joined().write(toFile: file.path, atomically: true, encoding: .utf8)
        let error = #expect(throws: SQLiteError.self) { try EventStore(path: file.path) }
        #expect(error?.code == SQLITE_NOTADB)
    }

    @Test func concurrentWritersAndReadersAreSerialised() async throws {
        let store = try EventStore(path: ":memory:")
        defer { store.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for index in 0..<50 {
                        let event = storeEvent(id: "w\(writer)-\(index)", session: "w\(writer)", at: Int64(index))
                        try store.insert(event, subject: subject(of: event))
                        try store.insert(event, subject: subject(of: event))
                    }
                }
                group.addTask {
                    for _ in 0..<20 { _ = try store.query(HistoryQuery(sessionId: "w\(writer)", limit: 10)) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.count() == 400)
    }

    // MARK: - The SQLite wrapper

    @Suite struct SQLiteWrapper {
        @Test func transactionsCommitOrRollBack() throws {
            let database = try SQLiteDatabase(path: ":memory:")
            try database.exec("CREATE TABLE t (x INTEGER)")
            try database.transaction { try database.run("INSERT INTO t VALUES (1)") }
            struct Failure: Error {}
            #expect(throws: Failure.self) {
                try database.transaction {
                    try database.run("INSERT INTO t VALUES (2)")
                    throw Failure()
                }
            }
            // An inner failure undoes only the inner work.
            try database.transaction {
                try database.run("INSERT INTO t VALUES (3)")
                _ = try? database.transaction {
                    try database.run("INSERT INTO t VALUES (4)")
                    throw Failure()
                }
            }
            #expect(database.isAutocommit)
            #expect(try database.rows("SELECT x FROM t ORDER BY x") { $0.int64(at: 0) } == [1, 3])
        }

        @Test func statementsAreCachedAndBindEveryType() throws {
            let database = try SQLiteDatabase(path: ":memory:")
            try database.exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, n TEXT)")
            let insert = "INSERT INTO t VALUES (?, ?, ?, ?)"
            let statement = try database.prepare(insert)
            try statement.bind(Int64.min, at: 1)
            try statement.bind(-0.5, at: 2)
            try statement.bind("a\u{0}b ✓", at: 3)
            try statement.bindNull(at: 4)
            #expect(try !statement.step())
            #expect(database.changes == 1)
            #expect(try database.prepare(insert) === statement)
            #expect(try database.run(insert, binding: [.integer(Int64.max), .real(2), .text(""), .text("x")]) == 1)
            let rows = try database.rows("SELECT i, d, s, n FROM t ORDER BY i") { row in
                "\(row.int64(at: 0)) \(row.double(at: 1)) \(String(reflecting: row.string(at: 2))) \(String(reflecting: row.string(at: 3))) \(row.isNull(at: 3))"
            }
            #expect(rows == [
                "\(Int64.min) -0.5 Optional(\"a\\0b ✓\") nil true",
                "\(Int64.max) 2.0 Optional(\"\") Optional(\"x\") false",
            ])
            #expect(throws: SQLiteError.self) { try statement.bind(1, at: 5) }
            #expect(throws: SQLiteError.self) { try database.run(insert, binding: [.null]) }
            database.close()
            #expect(statement.isFinalized)
            #expect(throws: SQLiteError.self) { try statement.step() }
            #expect(throws: SQLiteError.self) { try database.exec("SELECT 1") }
        }

        @Test func errorsCarryCodeMessageAndSQL() throws {
            let database = try SQLiteDatabase(path: ":memory:")
            let error = #expect(throws: SQLiteError.self) { try database.prepare("SELEKT 1") }
            #expect(error?.code == SQLITE_ERROR)
            #expect(error?.message.contains("syntax error") == true)
            #expect(error?.sql == "SELEKT 1")
            #expect(error?.description.contains("SELEKT") == true)
            #expect(throws: SQLiteError.self) { try database.prepare("SELECT 1; SELECT 2") }
            #expect(throws: SQLiteError.self) { try database.prepare("  ") }
            try database.exec("CREATE TABLE t (x TEXT PRIMARY KEY)")
            try database.run("INSERT INTO t VALUES ('a')")
            let conflict = #expect(throws: SQLiteError.self) { try database.run("INSERT INTO t VALUES ('a')") }
            #expect(conflict?.code == SQLITE_CONSTRAINT)
            // The statement is usable again after its failure.
            #expect(try database.run("INSERT INTO t VALUES (?)", binding: [.text("b")]) == 1)
        }
    }
}
