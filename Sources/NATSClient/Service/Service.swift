import EnnioSync
public import Foundation
import NATSProtocol

/// A NATS service (ADR-32, "micro"): endpoints that answer requests in a queue group, and the
/// discovery subjects `$SRV.PING|INFO|STATS` (for all services, by name, and by id) that
/// report who it is, what it offers and what it has done.
///
/// ```swift
/// let service = try Service(connection: connection, config: ServiceConfig(name: "calc", version: "1.0.0"))
/// try service.addEndpoint("add") { request in try request.respond("…") }
/// try await service.run()   // until stop() or cancellation
/// ```
///
/// `run()` does the work in the caller's task: it subscribes, then answers requests until
/// ``stop()`` (which drains: requests already received are still answered) or until its task
/// is cancelled. Each endpoint handles its requests one at a time, in order; endpoints run
/// side by side. Endpoints may be added before or while it runs.
public final class Service: Sendable {
    public let connection: NATSConnection
    public let config: ServiceConfig
    /// This instance's unique id.
    public let id: String
    /// When the service was made, in nanoseconds since 1970.
    public let startedNanoseconds: Int64

    private enum Phase {
        case idle
        /// Endpoints added while running go to the run loop through this.
        case running(AsyncStream<(ServiceEndpoint, NATSSubscription)>.Continuation)
        case stopped
    }

    private struct State {
        var phase: Phase = .idle
        var endpoints: [ServiceEndpoint] = []
        var subscriptions: [NATSSubscription] = []
    }

    private let state = Locked(State())

    /// - Throws: ``ServiceError`` `.invalidName`, `.invalidVersion`, `.invalidQueueGroup`.
    public init(connection: NATSConnection, config: ServiceConfig) throws(ServiceError) {
        guard ServiceNames.isValidName(config.name) else {
            throw ServiceError(.invalidName, "invalid service name \(config.name.debugDescription): use letters, digits, _ and -")
        }
        guard ServiceNames.isValidVersion(config.version) else {
            throw ServiceError(.invalidVersion, "\(config.version.debugDescription) is not a semantic version")
        }
        self.connection = connection
        self.config = config
        self.id = Nuid.next()
        self.startedNanoseconds = Int64(Date().timeIntervalSince1970 * 1e9)
        _ = try Self.queueGroup([config.queueGroup])
    }

    /// When the service was made.
    public var started: Date { Date(timeIntervalSince1970: Double(startedNanoseconds) / 1e9) }

    // MARK: - Endpoints and groups

    /// Adds an endpoint named `name` on `subject` (by default its name).
    /// - Parameter queueGroup: `.inherited`: the service's (`q` by default).
    /// - Throws: ``ServiceError`` `.invalidName`, `.invalidSubject`, `.invalidQueueGroup`,
    ///   `.stopped`; ``NATSError`` when it cannot subscribe.
    public func addEndpoint(
        _ name: String,
        subject: String? = nil,
        queueGroup: ServiceQueueGroup = .inherited,
        metadata: [String: String] = [:],
        handler: @escaping ServiceHandler
    ) throws {
        try addEndpoint(name, subject: subject, prefix: nil, queueGroups: [queueGroup], metadata: metadata, handler: handler)
    }

    /// A group of endpoints whose subjects start with `prefix` (a subject without `>`).
    public func addGroup(_ prefix: String, queueGroup: ServiceQueueGroup = .inherited) throws(ServiceError) -> ServiceGroup {
        try ServiceGroup(service: self, prefix: prefix, queueGroup: queueGroup)
    }

    func addEndpoint(
        _ name: String,
        subject: String?,
        prefix: String?,
        queueGroups: [ServiceQueueGroup],
        metadata: [String: String],
        handler: @escaping ServiceHandler
    ) throws {
        guard ServiceNames.isValidName(name) else {
            throw ServiceError(.invalidName, "invalid endpoint name \(name.debugDescription): use letters, digits, _ and -")
        }
        let own = subject ?? name
        let full = prefix.map { "\($0).\(own)" } ?? own
        do {
            try Subject.validatePattern(full)
        } catch {
            throw ServiceError(.invalidSubject, "invalid endpoint subject: \(error)")
        }
        let group = try Self.queueGroup(queueGroups + [config.queueGroup])
        let endpoint = ServiceEndpoint(name: name, subject: full, queueGroup: group, metadata: metadata, handler: handler)
        // Subscribe at once when running, under the lock, so that stop() cannot miss it.
        try state.withLock { state in
            switch state.phase {
            case .stopped:
                throw ServiceError(.stopped, "service \(config.name) was stopped")
            case .idle:
                state.endpoints.append(endpoint)
            case .running(let additions):
                let subscription = try connection.subscribe(to: endpoint.subject, queueGroup: endpoint.queueGroup)
                state.endpoints.append(endpoint)
                state.subscriptions.append(subscription)
                additions.yield((endpoint, subscription))
            }
        }
    }

    /// The queue group of an endpoint: the first choice, from the endpoint's own outwards to
    /// the service's, that is not `.inherited`, else `q`; `nil` for none.
    static func queueGroup(_ choices: [ServiceQueueGroup]) throws(ServiceError) -> String? {
        let resolved = choices.first { $0 != .inherited } ?? .named(ServiceConfig.defaultQueueGroup)
        guard case .named(let name) = resolved else { return nil }
        do {
            try Subject.validateQueueGroup(name)
        } catch {
            throw ServiceError(.invalidQueueGroup, "invalid queue group: \(error)")
        }
        return name
    }

    // MARK: - Running

    /// Subscribes and answers requests and discovery until ``stop()`` or cancellation.
    /// - Parameter ready: called once, when every subscription is made (sent to the server
    ///   before anything published after it), before the first request is answered.
    /// - Throws: ``ServiceError`` `.stopped`, `.alreadyRunning`; ``NATSError`` when it
    ///   cannot subscribe.
    public func run(ready: (@Sendable () -> Void)? = nil) async throws {
        let (additions, continuation) = AsyncStream.makeStream(of: (ServiceEndpoint, NATSSubscription).self)
        let verbs = verbSubjects()
        let (endpoints, subscriptions): ([ServiceEndpoint], [NATSSubscription]) = try state.withLock { state in
            switch state.phase {
            case .stopped: throw ServiceError(.stopped, "service \(config.name) was stopped")
            case .running: throw ServiceError(.alreadyRunning, "service \(config.name) is already running")
            case .idle: break
            }
            var subscriptions: [NATSSubscription] = []
            do {
                for (subject, _) in verbs { subscriptions.append(try connection.subscribe(to: subject)) }
                for endpoint in state.endpoints {
                    subscriptions.append(try connection.subscribe(to: endpoint.subject, queueGroup: endpoint.queueGroup))
                }
            } catch {
                for subscription in subscriptions { try? subscription.unsubscribe() }
                throw error
            }
            state.subscriptions = subscriptions
            state.phase = .running(continuation)
            return (state.endpoints, subscriptions)
        }
        ready?()
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                for (index, (_, verb)) in verbs.enumerated() {
                    let subscription = subscriptions[index]
                    group.addTask { await self.answer(verb, on: subscription) }
                }
                for (index, endpoint) in endpoints.enumerated() {
                    let subscription = subscriptions[verbs.count + index]
                    group.addTask { await self.serve(endpoint, on: subscription) }
                }
                for await (endpoint, subscription) in additions {
                    group.addTask { await self.serve(endpoint, on: subscription) }
                }
            }
        } onCancel: {
            self.end(draining: false)
        }
    }

    /// Messages its subscriptions (discovery and endpoints) dropped while it ran, because they
    /// came faster than they were handled (see ``NATSSubscription/droppedCount``).
    public var droppedMessages: UInt64 {
        state.withLock { $0.subscriptions }.reduce(0) { $0 + $1.droppedCount }
    }

    /// Stops the service: no new requests; those already received are answered, then `run()`
    /// returns. The service cannot run again.
    public func stop() async {
        let subscriptions = end(draining: true)
        for subscription in subscriptions { try? await subscription.drain() }
    }

    /// Marks the service stopped and ends the run loop's additions; unsubscribes at once
    /// unless `draining`, else returns the subscriptions to drain.
    @discardableResult
    private func end(draining: Bool) -> [NATSSubscription] {
        let (subscriptions, additions) = state.withLock { state -> ([NATSSubscription], AsyncStream<(ServiceEndpoint, NATSSubscription)>.Continuation?) in
            var additions: AsyncStream<(ServiceEndpoint, NATSSubscription)>.Continuation?
            if case .running(let continuation) = state.phase { additions = continuation }
            state.phase = .stopped
            defer { state.subscriptions = [] }
            return (state.subscriptions, additions)
        }
        additions?.finish()
        if !draining { for subscription in subscriptions { try? subscription.unsubscribe() } }
        return subscriptions
    }

    private func serve(_ endpoint: ServiceEndpoint, on subscription: NATSSubscription) async {
        for await message in subscription { await endpoint.handle(message, connection: connection) }
    }

    // MARK: - Discovery

    enum Verb: String, CaseIterable {
        case ping = "PING"
        case info = "INFO"
        case stats = "STATS"
    }

    /// `$SRV.<VERB>`, `$SRV.<VERB>.<name>`, `$SRV.<VERB>.<name>.<id>` for every verb.
    func verbSubjects() -> [(String, Verb)] {
        Verb.allCases.flatMap { verb -> [(String, Verb)] in
            let base = "\(config.apiPrefix).\(verb.rawValue)"
            return [(base, verb), ("\(base).\(config.name)", verb), ("\(base).\(config.name).\(id)", verb)]
        }
    }

    private func answer(_ verb: Verb, on subscription: NATSSubscription) async {
        for await request in subscription {
            guard let reply = request.replyTo, !reply.isEmpty else { continue }
            let body: Data?
            switch verb {
            case .ping: body = try? JSONEncoder().encode(ping)
            case .info: body = try? JSONEncoder().encode(info)
            case .stats: body = try? JSONEncoder().encode(stats)
            }
            if let body { try? connection.publish(Array(body), to: reply) }
        }
    }

    /// What `$SRV.PING` answers.
    public var ping: ServicePing {
        ServicePing(type: ServicePing.type, name: config.name, id: id, version: config.version, metadata: config.metadata)
    }

    /// What `$SRV.INFO` answers.
    public var info: ServiceInfo {
        ServiceInfo(
            type: ServiceInfo.type, name: config.name, id: id, version: config.version, metadata: config.metadata,
            description: config.description, endpoints: state.withLock { $0.endpoints }.map(\.info)
        )
    }

    /// What `$SRV.STATS` answers.
    public var stats: ServiceStats {
        let endpoints = state.withLock { $0.endpoints }.map { endpoint in
            endpoint.stats(data: config.statisticsData.flatMap { $0(endpoint.name) }.flatMap(Self.json))
        }
        return ServiceStats(
            type: ServiceStats.type, name: config.name, id: id, version: config.version, metadata: config.metadata,
            // Microseconds, always six digits: what nats-py's parser and nats.go's both read.
            started: RFC3339Time.format(nanoseconds: startedNanoseconds, fractionDigits: 6), endpoints: endpoints
        )
    }

    /// Sets every endpoint's statistics back to zero.
    public func reset() {
        for endpoint in state.withLock({ $0.endpoints }) { endpoint.resetStatistics() }
    }

    private static func json(_ value: any Encodable & Sendable) -> ServiceJSON? {
        guard let data = try? JSONEncoder().encode(value) else { return nil }
        return try? JSONDecoder().decode(ServiceJSON.self, from: data)
    }
}
