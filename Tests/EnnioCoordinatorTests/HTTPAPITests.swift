@testable import EnnioCoordinator
import EnnioEvents
import EnnioHTTP
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// A coordinator against a real nats-server, with its HTTP API on a free loopback port.
final class RunningHTTPAPI: Sendable {
    let server: TestServer
    let running: RunningCoordinator
    let api: HTTPAPI
    let client: NATSConnection
    let publisher: EventPublisher

    init(token: String? = nil, configure: (inout HTTPAPIOptions) -> Void = { _ in }) async throws {
        server = try TestServer()
        var coordinatorOptions = CoordinatorOptions()
        coordinatorOptions.mode = .core
        running = try await RunningCoordinator(server: server, options: coordinatorOptions)
        var options = HTTPAPIOptions()
        options.port = 0
        options.token = token
        configure(&options)
        api = try HTTPAPI(coordinator: running.coordinator, options: options)
        api.start()
        client = try await NATSConnection.connect(to: server.url)
        publisher = try EventPublisher(connection: client)
    }

    var port: Int { api.port }

    /// Publishes the events and waits until the coordinator has received all of them.
    func publish(_ events: [Event]) async throws {
        let before = running.coordinator.statistics.received
        for event in events { try publisher.publish(event) }
        try await client.flush()
        try await running.waitForReceived(before + UInt64(events.count))
    }

    func get(_ target: String, headers: [String: String] = [:]) async throws -> HTTPTestClient.Response {
        try await HTTPTestClient(port: port).get(target, headers: headers)
    }

    func json(_ target: String, headers: [String: String] = [:]) async throws -> JSONValue {
        let response = try await get(target, headers: headers)
        #expect(response.status == 200, "\(target): \(response.text)")
        return try JSONValue(parsing: response.body)
    }

    func stop() async {
        api.stop()
        await client.close()
        await running.stop()
    }
}

/// Events with timestamps one millisecond apart from `start`, in several projects, types and
/// priorities.
func sampleEvents(count: Int, start: EventTimestamp = EventTimestamp(nanosecondsSinceEpoch: 1_772_000_000_000_000_000), tag: String = "e") -> [Event] {
    let types: [EventType] = [.ciFailing, .ciPassing, .prCreated, .sessionWorking, .reactionEscalated]
    let priorities: [EventPriority] = [.info, .action, .urgent, .critical]
    return (0..<count).map { index in
        Event(
            id: "\(tag)-\(index)", type: types[index % types.count], priority: priorities[index % priorities.count],
            sessionId: "s\(index % 3)", projectId: "p\(index % 2)", timestamp: start + .milliseconds(Int64(index)),
            message: "event \(index)")
    }
}

extension JSONValue {
    var eventIDs: [String] { self["events"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] }
}

@Suite struct HTTPAPITests {
    /// Filters as the NATS query API has them, and pages by cursor: every page continues
    /// after the last event of the one before, until `next` is null.
    @Test func historyIsFilteredAndPagedByCursorAcrossPages() async throws {
        let system = try await RunningHTTPAPI()
        let events = sampleEvents(count: 23)
        try await system.publish(events)

        func allPages(_ parameters: String, limit: Int) async throws -> (ids: [String], pages: Int) {
            var ids: [String] = []
            var after: String?
            var pages = 0
            repeat {
                var target = "/api/events?limit=\(limit)" + (parameters.isEmpty ? "" : "&" + parameters)
                if let after { target += "&after=" + PercentDecoding.encode(after) }
                let page = try await system.json(target)
                ids += page.eventIDs
                #expect(page["count"]?.intValue == Int64(page.eventIDs.count))
                after = page["next"]?.stringValue
                pages += 1
            } while after != nil && pages < 100
            return (ids, pages)
        }
        let everything = try await allPages("", limit: 5)
        #expect(everything.ids == events.map(\.id))
        #expect(everything.pages == 5)
        let since = events[4].timestamp.rfc3339
        let until = events[20].timestamp.rfc3339
        let cases: [(String, (Event) -> Bool)] = [
            ("project=p1", { $0.projectId == "p1" }),
            ("session=s2", { $0.sessionId == "s2" }),
            ("type=ci_failing", { $0.eventType == .ciFailing }),
            ("category=ci", { $0.eventType.category == .ci }),
            ("min_priority=urgent", { $0.priority >= .urgent }),
            ("since=\(since)&until=\(until)", { $0.timestamp >= events[4].timestamp && $0.timestamp < events[20].timestamp }),
            ("project=p0&min_priority=action&category=pr", { $0.projectId == "p0" && $0.priority >= .action && $0.eventType.category == .pr }),
        ]
        for (parameters, matches) in cases {
            #expect(try await allPages(parameters, limit: 2).ids == events.filter(matches).map(\.id), "\(parameters)")
        }

        // The same page over NATS: the HTTP API answers from the same code.
        let reply = try await system.client.request(QueryProtocol.body(for: HistoryQuery(projectId: "p1", limit: 3)), to: QueryProtocol.historySubject, timeout: .seconds(10))
        #expect(try JSONValue(parsing: reply.payload) == (try await system.json("/api/events?project=p1&limit=3")))
        await system.stop()
    }

    @Test func badRequestsAre400WithJSONErrorsAndUnknownPaths404() async throws {
        let system = try await RunningHTTPAPI()
        let bad = [
            "/api/events?limit=0", "/api/events?limit=x", "/api/events?limit=1001", "/api/events?type=nope",
            "/api/events?category=nope", "/api/events?min_priority=loud", "/api/events?since=yesterday",
            "/api/events?after=garbage", "/api/events?project_id=p1", "/api/events?project=a&project=b",
            "/api/events/stream?backlog=5000", "/api/events/stream?limit=3", "/api/sessions?x=1",
            "/api/events/stream?after=12",
        ]
        for target in bad {
            let response = try await system.get(target)
            #expect(response.status == 400, "\(target): \(response.text)")
            #expect(response.header("Content-Type") == "application/json")
            let error = try JSONValue(parsing: response.body)["error"]
            #expect(error?["code"]?.intValue == 400, "\(target)")
            #expect(error?["description"]?.stringValue?.isEmpty == false)
        }
        let streamCursor = try await system.get("/api/events/stream", headers: ["Last-Event-ID": "not a cursor"])
        #expect(streamCursor.status == 400)
        for target in ["/api/nothing", "/nothing", "/api/events/"] {
            let response = try await system.get(target)
            #expect(response.status == 404, "\(target)")
            #expect(try JSONValue(parsing: response.body)["error"]?["code"]?.intValue == 404)
        }
        let post = try HTTPTestClient(port: system.port)
        post.send("POST /api/events HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}")
        let refused = try await post.readResponse()
        #expect(refused.status == 405 && refused.header("Allow") == "GET, HEAD")
        let garbage = try HTTPTestClient(port: system.port)
        garbage.send("GARBAGE\r\n\r\n")
        let malformed = try await garbage.readResponse()
        #expect(malformed.status == 400)
        #expect(try JSONValue(parsing: malformed.body)["error"]?["code"]?.intValue == 400)
        await system.stop()
    }

    @Test func theTokenGuardsEverythingButTheDashboardAndHealth() async throws {
        let system = try await RunningHTTPAPI(token: "s3cret-token")
        for target in ["/api/events", "/api/events/stream", "/api/sessions", "/api/nodes", "/api/stats", "/metrics"] {
            let missing = try await system.get(target)
            #expect(missing.status == 401, "\(target)")
            #expect(missing.header("WWW-Authenticate") == "Bearer")
            #expect(!missing.text.contains("s3cret"), "the token never appears in a reply")
            #expect(try await system.get(target, headers: ["Authorization": "Bearer s3cret-tokeN"]).status == 401)
            #expect(try await system.get(target, headers: ["Authorization": "Bearer s3cret"]).status == 401)
        }
        #expect(try await system.get("/api/sessions", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
        #expect(try await system.get("/metrics", headers: ["Cookie": "theme=dark; ennio_token=s3cret-token"]).status == 200)
        #expect(try await system.get("/").status == 200)
        #expect(try await system.get("/healthz").status == 200)
        #expect(system.api.statistics.unauthorized == 18)
        await system.stop()
    }

    /// A client reads the stream, goes away, events are published (some with timestamps
    /// older than what it saw: a publisher whose clock is behind), and it comes back with
    /// `Last-Event-ID` while more are published: it gets every event it missed, then the new
    /// ones, each once, in the order they were stored.
    @Test func theStreamResumesFromLastEventIDWithNoGapAndNoDuplicate() async throws {
        let system = try await RunningHTTPAPI()
        let first = try HTTPTestClient(port: system.port)
        first.sendGet("/api/events/stream")
        #expect(try await first.readResponse(headOnly: true).status == 200)
        try await eventually("the stream to join the feed") { system.api.statistics.streams == 1 }

        let seen = sampleEvents(count: 10, tag: "seen")
        try await system.publish(seen)
        var received: [HTTPTestClient.StreamEvent] = []
        for _ in seen { received.append(try await first.nextEvent()) }
        #expect(received.map { try? Event(json: $0.data).id } == seen.map(\.id))
        #expect(received.map(\.id) == seen.map { HistoryCursor(after: $0).description })
        let lastID = try #require(received.last?.id)
        first.shutdown()
        try await eventually("the stream to leave the feed") { system.api.statistics.streams == 0 }

        // While it is away: ten more, half of them stamped before anything it saw.
        let missed = sampleEvents(count: 5, start: seen[0].timestamp - .seconds(60), tag: "late")
            + sampleEvents(count: 5, start: seen[9].timestamp + .seconds(1), tag: "missed")
        try await system.publish(missed)

        let again = try HTTPTestClient(port: system.port)
        again.sendGet("/api/events/stream", headers: ["Last-Event-ID": lastID])
        #expect(try await again.readResponse(headOnly: true).status == 200)
        let live = sampleEvents(count: 10, start: seen[9].timestamp + .seconds(2), tag: "live")
        let publishing = Task { try await system.publish(live) }
        var resumed: [String] = []
        for _ in 0..<(missed.count + live.count) {
            resumed.append(try await Event(json: again.nextEvent().data).id)
        }
        try await publishing.value
        #expect(resumed == (missed + live).map(\.id))
        #expect(Set(resumed).count == resumed.count, "nothing twice")
        await system.stop()
    }

    @Test func aStreamFiltersAndStartsWithItsBacklog() async throws {
        let system = try await RunningHTTPAPI()
        let before = sampleEvents(count: 12, tag: "old")
        try await system.publish(before)
        let client = try HTTPTestClient(port: system.port)
        client.sendGet("/api/events/stream?project=p1&min_priority=urgent&backlog=2")
        #expect(try await client.readResponse(headOnly: true).status == 200)
        let matching = before.filter { $0.projectId == "p1" && $0.priority >= .urgent }
        for event in matching.suffix(2) { #expect(try await Event(json: client.nextEvent().data).id == event.id) }
        let after = sampleEvents(count: 12, start: before[11].timestamp + .seconds(1), tag: "new")
        try await system.publish(after)
        for event in after where event.projectId == "p1" && event.priority >= .urgent {
            #expect(try await Event(json: client.nextEvent().data).id == event.id)
        }
        await system.stop()
    }

    /// A client that stops reading is dropped once its queue is full, and counted; the
    /// coordinator meanwhile stores everything.
    @Test func aStreamClientThatStopsReadingIsDroppedAndCounted() async throws {
        let system = try await RunningHTTPAPI { $0.streamQueueCapacity = 50 }
        let stalled = try HTTPTestClient(port: system.port)
        // A small receive buffer, and never a read: the server's writes stop, its queue fills.
        var small: Int32 = 4096
        setsockopt(stalled.descriptor, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        stalled.sendGet("/api/events/stream")
        try await eventually("the stream to join the feed") { system.api.statistics.streams == 1 }
        // Small batches, each smaller than the queue: it fills only because the client's
        // socket does (the kernel's buffers hold a few MB first).
        var published = 0
        while system.api.statistics.streamsDroppedSlow == 0, published < 300_000 {
            let events = sampleEvents(count: 20, start: .now(), tag: "flood-\(published)")
            try await system.publish(events)
            published += events.count
        }
        #expect(published > 50, "the queue overflowed behind a full socket, not from one batch")
        #expect(system.api.statistics.streamsDroppedSlow == 1)
        try await eventually("the dropped stream to leave") { system.api.statistics.streams == 0 }
        #expect(system.running.coordinator.statistics.stored == UInt64(published))
        await system.stop()
    }

    @Test func healthIs200WhileConnectedAndStoringAnd503Otherwise() async throws {
        let system = try await RunningHTTPAPI()
        let healthy = try await system.get("/healthz")
        #expect(healthy.status == 200)
        #expect(try JSONValue(parsing: healthy.body) == ["status": "ok", "nats": "connected", "store": "ok", "caught_up": true])
        system.server.stop()
        try await eventually("the coordinator to notice the server is gone") { system.running.connection.status != .connected }
        let down = try await system.get("/healthz")
        #expect(down.status == 503)
        #expect(try JSONValue(parsing: down.body)["status"]?.stringValue == "unavailable")
        system.api.stop()
        await system.running.stop()
        await system.client.close()
    }
}

/// The reducers' tables over HTTP: the same answers as `ennio.query.rollouts` / `.runs`.
@Suite struct HTTPFamilyAPITests {
    @Test func rolloutsAndRunsAreServedWithTheirFilters() async throws {
        let system = try await RunningHTTPAPI()
        try await system.publish([
            Families.opened("r-1", channel: "stable", at: 1),
            Families.joined("r-1", "host-a", channel: "stable", at: 2),
            Families.opened("r-2", channel: "beta", at: 3),
            Families.started("op-1", at: 4),
            Families.entered("op-1", "build", attempt: 1, base: "snap-0", at: 5),
        ])
        let stable = try await system.json("/api/rollouts?channel=stable")
        #expect(stable["rollouts"]?.arrayValue?.compactMap { $0["rollout_id"]?.stringValue } == ["r-1"])
        #expect(try await system.json("/api/rollouts")["rollouts"]?.arrayValue?.count == 2)
        let run = try await system.json("/api/runs?op_id=op-1")
        let runs = try #require(run["runs"]?.arrayValue)
        #expect(runs.count == 1)
        #expect(runs.first?["op_id"]?.stringValue == "op-1")
        #expect(try await system.get("/api/runs?limit=-1").status == 400)
        #expect(try await system.get("/api/rollouts?colour=red").status == 400)
        await system.stop()
    }
}
