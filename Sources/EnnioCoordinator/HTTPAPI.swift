import EnnioEvents
public import EnnioHTTP
import EnnioSync
import Foundation
import NATSClient
import Synchronization

/// How the coordinator's HTTP API listens and what it puts up with.
public struct HTTPAPIOptions: Sendable {
    /// Loopback unless told otherwise.
    public var host = "127.0.0.1"
    public var port = 8080
    /// When set, every path but `/` and `/healthz` needs it, as `Authorization: Bearer …` or
    /// the cookie `ennio_token` (which the dashboard sets). Compared in constant time.
    public var token: String?
    /// Most clients at once (see ``HTTPServerConfiguration/maximumConnections``).
    public var maximumConnections = 256
    /// Events a stream's queue holds for a client that reads slowly; past it the client is
    /// dropped (and resumes with `Last-Event-ID`). Several batches of the coordinator's
    /// (8,000 events at most each); the messages themselves are shared by every stream, so
    /// a queue costs a reference per event.
    public var streamQueueCapacity = 50_000
    /// How often an idle stream sends a comment, so that proxies and clients keep it open and
    /// a client that went away is noticed.
    public var heartbeat: Duration = .seconds(15)
    /// Events read from the history per page while a stream catches up.
    public var replayPageSize = 500
    /// The largest `backlog` a stream may ask for.
    public static let maximumBacklog = 1000
    public var timeouts = HTTPConnectionState.Timeouts()

    public init() {}
}

/// Counts of what the HTTP API did, with its server's.
public struct HTTPAPIStatistics: Sendable, Hashable {
    public var server: HTTPServerStatistics
    /// Event streams open now.
    public var streams: Int
    /// Events written to streams, summed over the streams.
    public var streamEventsSent: UInt64
    /// Streams dropped because the client read too slowly.
    public var streamsDroppedSlow: UInt64
    /// Times the feed of new events fell behind and dropped every stream.
    public var feedOverruns: UInt64
    /// Requests refused for a missing or wrong token.
    public var unauthorized: UInt64
}

/// The coordinator over HTTP: history, sessions and nodes as JSON (answered by the same code
/// as the NATS query API, ``Coordinator/answer(query:body:)``), a live stream of events as
/// server-sent events, Prometheus metrics, a health check, and the dashboard page.
///
/// | Path | |
/// | --- | --- |
/// | `GET /api/events?project=&session=&type=&category=&min_priority=&since=&until=&limit=&after=` | a page of history |
/// | `GET /api/events/stream?project=&session=&type=&category=&min_priority=&after=&backlog=` | server-sent events |
/// | `GET /api/sessions`, `GET /api/nodes`, `GET /api/stats` | the tables, the counts |
/// | `GET /api/rollouts?channel=&state=&rollout_id=&limit=&offset=` | the rollout reducer's table (as `ennio.query.rollouts`) |
/// | `GET /api/runs?project_id=&status=&op_id=&limit=&offset=` | the run reducer's table with resume points (as `ennio.query.runs`) |
/// | `GET /metrics` | Prometheus text |
/// | `GET /healthz` | 200 when connected, storing and caught up with the stream, 503 otherwise |
/// | `GET /` | the dashboard |
public final class HTTPAPI: Sendable {
    public let coordinator: Coordinator
    public let options: HTTPAPIOptions
    private let server: HTTPServer
    private let route = RouteBox()
    let feed = EventFeed()
    private let tokenBytes: [UInt8]?
    private let eventsSent = Atomic<UInt64>(0)
    private let unauthorized = Atomic<UInt64>(0)

    /// HTTP names of the history filters, and the query API's keys they stand for.
    static let historyParameters: [String: String] = [
        "project": "project_id", "session": "session_id", "type": "event_type", "category": "category",
        "min_priority": "min_priority", "since": "since", "until": "until", "limit": "limit", "after": "after",
        "order": "order",
    ]
    static let streamParameters: Set<String> = ["project", "session", "type", "category", "min_priority", "after", "backlog"]

    /// Listens at once (so ``port`` is known); serves from ``start()``.
    public init(coordinator: Coordinator, options: HTTPAPIOptions = .init()) throws(HTTPServerError) {
        self.coordinator = coordinator
        self.options = options
        tokenBytes = options.token.map { Array($0.utf8) }
        var configuration = HTTPServerConfiguration()
        configuration.host = options.host
        configuration.port = options.port
        configuration.maximumConnections = options.maximumConnections
        configuration.timeouts = options.timeouts
        configuration.errorResponse = { status, description in
            .json(QueryProtocol.errorReply(code: status.code, description: description), status: status)
        }
        let route = self.route
        server = try HTTPServer(configuration: configuration) { request in route.handle(request) }
        route.api.withLock { $0 = self }
        let feed = self.feed
        coordinator.observeCommits { events in feed.announce(events) }
    }

    /// The port it listens on.
    public var port: Int { server.port }

    public func start() {
        feed.start()
        server.start()
    }

    /// Ends every stream and closes every connection.
    public func stop() {
        feed.stop()
        server.stop()
        route.api.withLock { $0 = nil }
    }

    public var statistics: HTTPAPIStatistics {
        let feedStatistics = feed.statistics
        return HTTPAPIStatistics(
            server: server.statistics, streams: feedStatistics.subscribers, streamEventsSent: eventsSent.load(ordering: .relaxed),
            streamsDroppedSlow: feedStatistics.droppedSlow, feedOverruns: feedStatistics.overruns,
            unauthorized: unauthorized.load(ordering: .relaxed))
    }

    // MARK: - Routing

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            var response = Self.error(.methodNotAllowed, "\(request.method) is not served; use GET")
            response.headers.set("Allow", "GET, HEAD")
            return response
        }
        switch request.path {
        case "/", "/index.html":
            var response = HTTPResponse.content(DashboardPage.bytes, type: "text/html; charset=utf-8")
            response.headers.set("Cache-Control", "no-store")
            return response
        case "/healthz":
            return health()
        default:
            break
        }
        guard authorized(request) else {
            unauthorized.add(1, ordering: .relaxed)
            var response = Self.error(.unauthorized, "this path needs the token: Authorization: Bearer <token>")
            response.headers.set("WWW-Authenticate", "Bearer")
            return response
        }
        do {
            switch request.path {
            case "/api/events": return try history(request)
            case "/api/events/stream": return try stream(request)
            case "/api/sessions": return try answer(QueryProtocol.sessionsSubject, request)
            case "/api/nodes": return try answer(QueryProtocol.nodesSubject, request)
            case "/api/rollouts":
                return try answer(QueryProtocol.rolloutsSubject, request, strings: ["channel", "state", "rollout_id"], integers: ["limit", "offset"])
            case "/api/runs":
                return try answer(QueryProtocol.runsSubject, request, strings: ["project_id", "status", "op_id"], integers: ["limit", "offset"])
            case "/api/stats": return try stats(request)
            case "/metrics": return try metrics(request)
            default: return Self.error(.notFound, "no such path \(request.path.debugDescription)")
            }
        } catch let error as BadRequest {
            return Self.error(.badRequest, error.message)
        } catch {
            return Self.error(.internalServerError, "the request failed: \(error)")
        }
    }

    /// A missing token fails; a wrong one fails in the same time whatever it holds.
    private func authorized(_ request: HTTPRequest) -> Bool {
        guard let tokenBytes else { return true }
        var presented: [UInt8]?
        if let authorization = request.headers["Authorization"], authorization.lowercased().hasPrefix("bearer ") {
            presented = Array(authorization.dropFirst(7).utf8)
        } else if let cookies = request.headers["Cookie"] {
            for cookie in cookies.split(separator: ";") {
                let parts = cookie.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "ennio_token" {
                    presented = PercentDecoding.decode(Array(parts[1].utf8), plusIsSpace: false).map { Array($0.utf8) }
                }
            }
        }
        guard let presented else { return false }
        return ConstantTime.equal(presented, tokenBytes)
    }

    struct BadRequest: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    static func error(_ status: HTTPStatus, _ description: String) -> HTTPResponse {
        .json(QueryProtocol.errorReply(code: status.code, description: description), status: status)
    }

    /// Query parameters by name, each at most once, each one of `known`.
    static func parameters(_ request: HTTPRequest, known: Set<String>) throws(BadRequest) -> [String: String] {
        var values: [String: String] = [:]
        for item in request.query {
            guard known.contains(item.name) else {
                throw BadRequest("unknown parameter \(item.name.debugDescription); known: \(known.sorted().joined(separator: ", "))")
            }
            guard values.updateValue(item.value, forKey: item.name) == nil else {
                throw BadRequest("the parameter \(item.name) appears more than once")
            }
        }
        return values
    }

    /// The query API's request object for HTTP parameters: `limit` as a number when it reads
    /// as one (otherwise the query API reports it), the rest as strings.
    static func requestObject(_ parameters: [String: String]) -> [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        for (name, value) in parameters {
            guard let key = historyParameters[name] else { continue }
            object[key] = key == "limit" ? (Int64(value).map(JSONValue.int) ?? .string(value)) : .string(value)
        }
        return object
    }

    // MARK: - History, tables, counts

    private func history(_ request: HTTPRequest) throws -> HTTPResponse {
        let parameters = try Self.parameters(request, known: Set(Self.historyParameters.keys))
        let body = Array(JSONValue.object(Self.requestObject(parameters)).jsonString.utf8)
        let (reply, status) = coordinator.answer(query: QueryProtocol.historySubject, body: body)
        return .json(reply, status: Self.status(status))
    }

    /// Sessions or nodes: a page, `after=` the previous reply's `next` (and `limit=`; for
    /// sessions `project=`), as the NATS query answers it.
    private func answer(_ subject: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let known: Set<String> = subject == QueryProtocol.sessionsSubject ? ["after", "limit", "project"] : ["after", "limit"]
        let parameters = try Self.parameters(request, known: known)
        var object: [String: JSONValue] = [:]
        if let after = parameters["after"] { object["after"] = .string(after) }
        if let project = parameters["project"] { object["project_id"] = .string(project) }
        if let limit = parameters["limit"] { object["limit"] = Int64(limit).map(JSONValue.int) ?? .string(limit) }
        let body = object.isEmpty ? [] : Array(JSONValue.object(object).jsonString.utf8)
        let (reply, status) = coordinator.answer(query: subject, body: body)
        return .json(reply, status: Self.status(status))
    }

    /// A query whose NATS request body has these keys, taken from the URL's parameters of the
    /// same names: the same answer as `nats req <subject> '{…}'`.
    private func answer(_ subject: String, _ request: HTTPRequest, strings: Set<String>, integers: Set<String>) throws -> HTTPResponse {
        let values = try Self.parameters(request, known: strings.union(integers))
        var body: [String: JSONValue] = [:]
        for (name, value) in values {
            if integers.contains(name) {
                guard let number = Int64(value), number >= 0 else { throw BadRequest("\(name) must be a whole number, not \(LogText(value))") }
                body[name] = .int(number)
            } else {
                body[name] = .string(value)
            }
        }
        let (reply, status) = coordinator.answer(query: subject, body: Array(JSONValue.object(body).jsonString.utf8))
        return .json(reply, status: Self.status(status))
    }

    static func status(_ code: Int) -> HTTPStatus {
        switch code {
        case 200: .ok
        case 400: .badRequest
        case 404: .notFound
        default: .internalServerError
        }
    }

    private func stats(_ request: HTTPRequest) throws -> HTTPResponse {
        _ = try Self.parameters(request, known: [])
        let statistics = coordinator.statistics
        var categories: [String: JSONValue] = [:]
        for category in EventCategory.allCases {
            categories[category.rawValue] = .int(Int64(statistics.storedByCategory[category] ?? 0))
        }
        let object: JSONValue = [
            "received": .int(Int64(statistics.received)),
            "stored": .int(Int64(statistics.stored)),
            "duplicates": .int(Int64(statistics.duplicates)),
            "malformed": .int(Int64(statistics.malformed)),
            "mismatched": .int(Int64(statistics.mismatched)),
            "stored_by_category": .object(categories),
            "streams": .int(Int64(feed.statistics.subscribers)),
            "published": .int(Int64(statistics.published)),
            "caught_up": .bool(statistics.caughtUp),
            // The newest event's number in the history, from every run (the counts above are
            // this run's): as many as it holds unless retention deleted old ones.
            "last_seq": .int(try coordinator.store.lastSequence()),
        ]
        return .json(Array(object.jsonString.utf8))
    }

    /// Ready to serve: connected, storing, and caught up with the stream — a coordinator that
    /// is still catching up (`"status":"catching_up"`) would answer from part of the history.
    private func health() -> HTTPResponse {
        let nats = coordinator.connection.status
        let statistics = coordinator.statistics
        let storing = !statistics.storeFailing && (try? coordinator.store.lastPosition()) != nil
        let working = nats == .connected && storing
        let object: JSONValue = [
            "status": .string(!working ? "unavailable" : statistics.caughtUp ? "ok" : "catching_up"),
            "nats": .string("\(nats)"),
            "store": .string(storing ? "ok" : "failing"),
            "caught_up": .bool(statistics.caughtUp),
        ]
        return .json(Array(object.jsonString.utf8), status: working && statistics.caughtUp ? .ok : .serviceUnavailable)
    }

    private func metrics(_ request: HTTPRequest) throws -> HTTPResponse {
        _ = try Self.parameters(request, known: [])
        let text = CoordinatorMetrics.text(coordinator: coordinator, http: statistics)
        return .content(Array(text.utf8), type: PrometheusText.contentType)
    }

    // MARK: - The event stream

    /// `GET /api/events/stream`: every event stored from now on that matches the filters, as
    /// one server-sent event each (`id:` its cursor). With `Last-Event-ID` (or `after`) it
    /// first sends every matching event stored after that one, from the history, in the order
    /// they were stored, then the live tail: no gap, no duplicate. With `backlog=N` (and no
    /// cursor) it starts with the last N matching events.
    private func stream(_ request: HTTPRequest) throws -> HTTPResponse {
        let parameters = try Self.parameters(request, known: Self.streamParameters)
        var object = Self.requestObject(parameters)
        object["after"] = nil
        let filter: HistoryQuery
        do {
            filter = try QueryProtocol.historyQuery(from: object)
        } catch {
            throw BadRequest(error.message)
        }
        var cursor: HistoryCursor?
        if let text = request.headers["Last-Event-ID"].flatMap({ $0.isEmpty ? nil : $0 }) ?? parameters["after"] {
            guard let parsed = HistoryCursor(text) else {
                throw BadRequest("the last event id must be a cursor <timestamp_ns>:<id>, not \(text.debugDescription)")
            }
            cursor = parsed
        }
        var backlog = 0
        if let text = parameters["backlog"] {
            guard let value = Int(text), (0...HTTPAPIOptions.maximumBacklog).contains(value) else {
                throw BadRequest("backlog must be a whole number from 0 to \(HTTPAPIOptions.maximumBacklog), not \(text.debugDescription)")
            }
            backlog = value
        }

        let output = Locked<(any HTTPStreamOutput)?>(nil)
        let queue = StreamQueue<[UInt8]>(capacity: options.streamQueueCapacity) {
            // The client fell behind: cut short a write that may be stuck on it.
            output.withLock { $0 }?.close()
        }
        let subscriber = EventFeed.Subscriber(filter: filter, queue: queue)
        // Between commits: the history up to `last` and the feed from the next batch on meet
        // exactly.
        let (id, last) = try coordinator.betweenCommits { () throws -> (UInt64, Int64) in
            let last = try coordinator.store.lastPosition()
            return (feed.add(subscriber), last)
        }
        let catchUp = Replay(store: coordinator.store, filter: filter, cursor: cursor, backlog: backlog, last: last, pageSize: options.replayPageSize)
        return HTTPResponse(headers: ServerSentEvents.headers, body: .stream { [self] client in
            defer { feed.remove(id) }
            output.withLock { $0 = client }
            client.whenClosed { queue.close() }
            guard client.write(ServerSentEvents.retry(milliseconds: 1000)) else { return }
            do {
                guard try catchUp.run({ messages in send(messages, to: client) }) else { return }
            } catch {
                _ = client.write(ServerSentEvents.comment("the history could not be read: \(error)"))
                return
            }
            // Wakes at least once a second to notice a client that left (the thread waits on
            // the queue, not the socket), and writes a comment when the stream was quiet for a
            // heartbeat.
            var lastWrite = ContinuousClock.now
            while true {
                switch queue.take(timeout: min(options.heartbeat, .seconds(1))) {
                case .elements(let messages):
                    guard send(messages, to: client) else { return }
                    lastWrite = ContinuousClock.now
                case .timedOut:
                    guard !client.peerClosed else { return }
                    if ContinuousClock.now - lastWrite >= options.heartbeat {
                        guard client.write(ServerSentEvents.comment("keep-alive")) else { return }
                        lastWrite = ContinuousClock.now
                    }
                case .overflowed, .closed:
                    return
                }
            }
        })
    }

    /// Writes messages in one go; false once the client is gone.
    private func send(_ messages: [[UInt8]], to client: any HTTPStreamOutput) -> Bool {
        guard !messages.isEmpty else { return true }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(messages.reduce(0) { $0 + $1.count })
        for message in messages { bytes += message }
        guard client.write(bytes) else { return false }
        eventsSent.add(UInt64(messages.count), ordering: .relaxed)
        return true
    }

    /// What a stream sends from the history before the live tail.
    struct Replay: Sendable {
        let store: EventStore
        let filter: HistoryQuery
        let cursor: HistoryCursor?
        let backlog: Int
        /// The last event stored before the stream joined the feed.
        let last: Int64
        let pageSize: Int

        /// Sends the pages through `send`; false if the client went away.
        func run(_ send: ([[UInt8]]) -> Bool) throws -> Bool {
            func deliver(_ page: [EventStore.StoredEvent]) -> Bool {
                send(page.map { EventFeed.message(for: $0.event) })
            }
            guard let cursor else {
                guard backlog > 0 else { return true }
                return deliver(try store.latestEvents(through: last, matching: filter, count: backlog))
            }
            if var position = try store.position(of: cursor) {
                // Everything stored after that event, in the order stored.
                while true {
                    let page = try store.events(storedAfter: position, through: last, matching: filter, limit: pageSize)
                    guard let end = page.last else { return true }
                    guard deliver(page) else { return false }
                    position = end.position
                }
            }
            // A cursor that names no stored event: what follows its key.
            var after = cursor
            while true {
                let page = try store.events(after: after, through: last, matching: filter, limit: pageSize)
                guard let end = page.last else { return true }
                guard deliver(page) else { return false }
                after = HistoryCursor(after: end.event)
            }
        }
    }
}

/// Lets the server's handler reach the API it was made for (the server is made first).
private final class RouteBox: Sendable {
    let api = Locked<HTTPAPI?>(nil)

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard let api = api.withLock({ $0 }) else { return HTTPAPI.error(.serviceUnavailable, "the coordinator's HTTP API is not running") }
        return api.handle(request)
    }
}
