import EnnioSync
import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

extension ServiceError: CodedError {}

/// Services (ADR-32) against a real server, and read by nats-py's service models.
@Suite struct ServiceTests {
    /// A running service, ended with the test.
    struct Running {
        let service: Service
        let task: Task<Void, any Error>

        init(_ service: Service) {
            self.service = service
            self.task = Task { try await service.run() }
        }

        /// Stops the service and waits for `run()` to return.
        func stop() async throws {
            await service.stop()
            try await within(.seconds(20), "run() to return") { try await task.value }
        }
    }

    /// Waits until the server has the service's subscriptions: a `$SRV.PING.<name>.<id>` answers.
    static func ready(_ service: Service) async throws {
        try await within(.seconds(20), "the service to answer") {
            while true {
                if (try? await service.connection.request([UInt8](), to: "$SRV.PING.\(service.config.name).\(service.id)", timeout: .seconds(1))) != nil {
                    return
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    /// Every answer to one request on `subject`, from `count` responders.
    static func gather(_ count: Int, from subject: String, on connection: NATSConnection) async throws -> [NATSMessage] {
        let inbox = "_INBOX.\(UUID().uuidString)"
        let answers = try connection.subscribe(to: inbox)
        defer { try? answers.unsubscribe() }
        try connection.publish([UInt8](), to: subject, replyTo: inbox)
        return try await answers.take(count)
    }

    static func object(_ message: NATSMessage) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
    }

    @Test func namesAndVersionsAreChecked() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        for version in ["1.0.0", "0.1.0-alpha.1+build.5", "10.20.30", "1.0.0-0A.is.legal", "1.0.0+21AF26D3---117B344092BD"] {
            #expect(throws: Never.self, "\(version)") { _ = try Service(connection: connection, config: ServiceConfig(name: "s", version: version)) }
        }
        for version in ["1.0", "01.0.0", "1.0.0-01", "v1.0.0", "1.0.0-", "1.0.0+", "1.0.0-a..b", "", "1.2.3.4"] {
            await expectError(ServiceError.self, .invalidVersion) { try Service(connection: connection, config: ServiceConfig(name: "s", version: version)) }
        }
        for name in ["", "a.b", "a b", "ä", "a>"] {
            await expectError(ServiceError.self, .invalidName) { try Service(connection: connection, config: ServiceConfig(name: name, version: "1.0.0")) }
        }
        let service = try Service(connection: connection, config: ServiceConfig(name: "checks", version: "1.0.0"))
        await expectError(ServiceError.self, .invalidName) { try service.addEndpoint("a.b") { _ in } }
        await expectError(ServiceError.self, .invalidSubject) { try service.addEndpoint("x", subject: "a..b") { _ in } }
        await expectError(ServiceError.self, .invalidSubject) { try service.addGroup("a.>") }
        await expectError(ServiceError.self, .invalidQueueGroup) { try service.addEndpoint("y", queueGroup: .named("bad group")) { _ in } }
        await service.stop()
        await expectError(ServiceError.self, .stopped) { try service.addEndpoint("z") { _ in } }
        await expectError(ServiceError.self, .stopped) { try await service.run() }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func endpointsAnswerRequestsAndErrorsCarryTheServiceHeaders() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        let service = try Service(connection: connection, config: ServiceConfig(name: "calc", version: "1.2.3", description: "sums"))
        try service.addEndpoint("add", metadata: ["unit": "none"]) { request in
            let numbers = request.string.split(separator: " ").compactMap { Int($0) }
            try request.respond(String(numbers.reduce(0, +)))
        }
        try service.addEndpoint("divide") { request in
            let numbers = request.string.split(separator: " ").compactMap { Int($0) }
            guard numbers.count == 2, numbers[1] != 0 else {
                try request.respondError(code: 400, description: "need two numbers,\r\nthe second not zero", data: Array("bad input".utf8))
                return
            }
            try request.respond(String(numbers[0] / numbers[1]))
        }
        try service.addEndpoint("fail") { _ in throw ServiceReplyError(code: 503, description: "try later") }
        try service.addEndpoint("crash") { _ in throw CancellationError() }
        let running = Running(service)
        try await Self.ready(service)

        #expect(try await connection.request("1 2 3", to: "add").string == "6")
        #expect(try await connection.request("1 2 3", to: "add").serviceError == nil)
        #expect(try await connection.request("9 3", to: "divide").string == "3")
        let refused = try await connection.request("9 0", to: "divide")
        #expect(refused.serviceError == ServiceReplyError(code: 400, description: "need two numbers,  the second not zero"))
        #expect(refused.headers?["Nats-Service-Error-Code"] == "400")
        #expect(refused.string == "bad input")
        #expect(try await connection.request("", to: "fail").serviceError == ServiceReplyError(code: 503, description: "try later"))
        let crashed = try await connection.request("", to: "crash").serviceError
        #expect(crashed?.code == 500)
        #expect(crashed?.errorDescription == "the handler failed (CancellationError)")

        let stats = service.stats
        let byName = Dictionary(uniqueKeysWithValues: stats.endpoints.map { ($0.name, $0) })
        #expect(byName["add"]?.numRequests == 2)
        #expect(byName["add"]?.numErrors == 0)
        #expect(byName["add"]?.lastError == "")
        #expect(byName["divide"]?.numRequests == 2)
        #expect(byName["divide"]?.numErrors == 1)
        #expect(byName["divide"]?.lastError == "400:need two numbers,  the second not zero")
        #expect(byName["fail"]?.lastError == "503:try later")
        #expect(byName["crash"]?.numErrors == 1)
        #expect((byName["add"]?.processingTime ?? 0) > 0)
        #expect(byName["add"]?.averageProcessingTime == (byName["add"]?.processingTime ?? 0) / 2)
        service.reset()
        #expect(service.stats.endpoints.allSatisfy { $0.numRequests == 0 && $0.numErrors == 0 && $0.lastError.isEmpty })
        try await running.stop()
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func discoveryAnswersForAllByNameAndById() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        var config = ServiceConfig(name: "inventory", version: "2.0.0", description: "what is in stock", metadata: ["region": "eu"])
        config.statisticsData = { endpoint in endpoint == "count" ? ["cached": 12] : nil }
        let first = try Service(connection: connection, config: config)
        let second = try Service(connection: connection, config: config)
        let other = try Service(connection: connection, config: ServiceConfig(name: "billing", version: "0.9.0"))
        for service in [first, second] {
            try service.addEndpoint("count", subject: "stock.count", metadata: ["format": "text"]) { try $0.respond("42") }
        }
        let services = [first, second, other].map(Running.init)
        for service in [first, second, other] { try await Self.ready(service) }

        #expect(try await Self.gather(3, from: "$SRV.PING", on: connection).count == 3)
        let pings = try await Self.gather(2, from: "$SRV.PING.inventory", on: connection).map { try Self.object($0) }
        #expect(Set(pings.compactMap { $0["id"] as? String }) == [first.id, second.id])
        #expect(pings.allSatisfy { $0["type"] as? String == "io.nats.micro.v1.ping_response" && $0["version"] as? String == "2.0.0" })
        #expect(pings.allSatisfy { ($0["metadata"] as? [String: String]) == ["region": "eu"] })

        let info = try Self.object(try #require(try await Self.gather(1, from: "$SRV.INFO.inventory.\(second.id)", on: connection).first))
        #expect(info["type"] as? String == "io.nats.micro.v1.info_response")
        #expect(info["id"] as? String == second.id)
        #expect(info["description"] as? String == "what is in stock")
        let endpoint = try #require((info["endpoints"] as? [[String: Any]])?.first)
        #expect(endpoint["name"] as? String == "count")
        #expect(endpoint["subject"] as? String == "stock.count")
        #expect(endpoint["queue_group"] as? String == "q")
        #expect(endpoint["metadata"] as? [String: String] == ["format": "text"])

        #expect(try await connection.request("", to: "stock.count").string == "42")
        let stats = try #require(try await Self.gather(2, from: "$SRV.STATS.inventory", on: connection).map { try Self.object($0) } as [[String: Any]]?)
        #expect(stats.allSatisfy { $0["type"] as? String == "io.nats.micro.v1.stats_response" })
        let counted = stats.compactMap { ($0["endpoints"] as? [[String: Any]])?.first }
        #expect(counted.compactMap { $0["num_requests"] as? Int }.sorted() == [0, 1], "one request, answered by one member of the queue group")
        #expect(counted.allSatisfy { ($0["data"] as? [String: Int]) == ["cached": 12] })
        #expect(counted.allSatisfy { $0["last_error"] as? String == "" && $0["processing_time"] is Int && $0["average_processing_time"] is Int })
        let started = try #require(stats.first?["started"] as? String)
        #expect(RFC3339Time.nanoseconds(started) != nil, "\(started)")
        let decoded = try JSONDecoder().decode(ServiceStats.self, from: Data(try #require(try await Self.gather(1, from: "$SRV.STATS.billing", on: connection).first).payload))
        #expect(decoded.name == "billing")
        #expect(decoded.endpoints.isEmpty)

        for service in services { try await service.stop() }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func queueGroupsSpreadRequestsOrLetEveryInstanceAnswer() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        let handled = Locked<[String: Int]>([:])
        var services: [Service] = []
        for index in 0..<2 {
            let service = try Service(connection: connection, config: ServiceConfig(name: "workers", version: "1.0.0"))
            try service.addEndpoint("job") { request in
                handled.withLock { $0["job-\(index)", default: 0] += 1 }
                try request.respond("done")
            }
            try service.addEndpoint("broadcast", queueGroup: .disabled) { request in
                handled.withLock { $0["broadcast-\(index)", default: 0] += 1 }
                try request.respond("seen")
            }
            services.append(service)
        }
        let running = services.map(Running.init)
        for service in services { try await Self.ready(service) }
        for _ in 0..<20 { _ = try await connection.request("", to: "job") }
        #expect(try await Self.gather(2, from: "broadcast", on: connection).count == 2)
        let counts = handled.withLock { $0 }
        #expect((counts["job-0"] ?? 0) + (counts["job-1"] ?? 0) == 20, "each job handled once")
        #expect(counts["broadcast-0"] == 1 && counts["broadcast-1"] == 1, "both instances see a broadcast")
        #expect(services[0].info.endpoints.first { $0.name == "broadcast" }?.queueGroup == "")
        for service in running { try await service.stop() }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func groupsPrefixSubjectsAndPassOnQueueGroups() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        var config = ServiceConfig(name: "api", version: "1.0.0")
        config.queueGroup = .named("api-workers")
        let service = try Service(connection: connection, config: config)
        let v1 = try service.addGroup("api.v1")
        try v1.addEndpoint("users") { try $0.respond("v1 users") }
        let admin = try v1.addGroup("admin", queueGroup: .named("admins"))
        try admin.addEndpoint("reset", subject: "reset.all") { try $0.respond("reset") }
        try admin.addEndpoint("audit", queueGroup: .disabled) { try $0.respond("audit") }
        let running = Running(service)
        try await Self.ready(service)

        #expect(try await connection.request("", to: "api.v1.users").string == "v1 users")
        #expect(try await connection.request("", to: "api.v1.admin.reset.all").string == "reset")
        let endpoints = Dictionary(uniqueKeysWithValues: service.info.endpoints.map { ($0.name, $0) })
        #expect(endpoints["users"]?.subject == "api.v1.users")
        #expect(endpoints["users"]?.queueGroup == "api-workers")
        #expect(endpoints["reset"]?.subject == "api.v1.admin.reset.all")
        #expect(endpoints["reset"]?.queueGroup == "admins")
        #expect(endpoints["audit"]?.queueGroup == "")
        // Endpoints added while it runs answer too.
        try v1.addEndpoint("orders") { try $0.respond("v1 orders") }
        try await within(.seconds(20), "the new endpoint") {
            while (try? await connection.request("", to: "api.v1.orders", timeout: .seconds(1)))?.string != "v1 orders" {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        try await running.stop()
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func stopAnswersWhatArrivedAndCancellationEndsTheRun() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        let service = try Service(connection: connection, config: ServiceConfig(name: "slow", version: "1.0.0"))
        let started = Locked(0)
        try service.addEndpoint("work") { request in
            started.withLock { $0 += 1 }
            try await Task.sleep(for: .milliseconds(50))
            try request.respond("finished")
        }
        let running = Running(service)
        try await Self.ready(service)
        // Three requests, then stop: all three are still answered. (Once the flush returns,
        // the server has delivered them to the service's subscription on this connection.)
        let inbox = try connection.subscribe(to: "_INBOX.stop-test")
        for index in 0..<3 { try connection.publish(String(index), to: "work", replyTo: "_INBOX.stop-test") }
        try await connection.flush()
        try await within(.seconds(20), "the first request to start") {
            while started.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        try await running.stop()
        #expect(try await inbox.take(3).map(\.string) == ["finished", "finished", "finished"])
        await expectNATSError(.noResponders) { try await connection.request("", to: "work") }

        let other = try Service(connection: connection, config: ServiceConfig(name: "cancelled", version: "1.0.0"))
        try other.addEndpoint("noop") { try $0.respond("") }
        let task = Task { try await other.run() }
        try await Self.ready(other)
        task.cancel()
        try await within(.seconds(20), "the cancelled run to return") { try await task.value }
        await expectError(ServiceError.self, .stopped) { try await other.run() }
        await connection.close()
        await stopOffThePool(server)
    }

    @Test func natsPyReadsOurDiscoveryAnswersAndErrorReplies() async throws {
        let server = try await onThread { try TestServer() }
        let connection = try await NATSConnection.connect(to: server)
        let service = try Service(connection: connection, config: ServiceConfig(name: "shared", version: "3.1.4", metadata: ["team": "core"]))
        try service.addEndpoint("echo") { try $0.respond($0.payload) }
        try service.addEndpoint("refuse") { try $0.respondError(code: 418, description: "short and stout") }
        let running = Running(service)
        try await Self.ready(service)
        _ = try await connection.request("warm up", to: "echo")

        for verb in ["PING", "INFO", "STATS"] {
            let peer = try PythonPeer(arguments: ["srv-discover", "--url", server.url, "--subject", "$SRV.\(verb).shared.\(service.id)", "--count", "1"])
            let line = try #require(try await peer.line(within: .seconds(30)), "\(peer.standardError)")
            #expect(try await peer.exitCode(within: .seconds(30)) == 0, "\(peer.standardError)")
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(parsed["id"] as? String == service.id)
            #expect(parsed["name"] as? String == "shared")
            #expect(parsed["version"] as? String == "3.1.4")
            #expect(parsed["metadata"] as? [String: String] == ["team": "core"])
            if verb == "STATS" {
                let echo = (parsed["endpoints"] as? [[String: Any]])?.first { $0["name"] as? String == "echo" }
                #expect(echo?["num_requests"] as? Int == 1)
            }
            if verb == "INFO" {
                #expect((parsed["endpoints"] as? [[String: Any]])?.compactMap { $0["subject"] as? String }.sorted() == ["echo", "refuse"])
            }
        }

        let peer = try PythonPeer(arguments: ["request", "--url", server.url, "--subject", "refuse", "--payload-b64", ""])
        let reply = try #require(try await peer.message(within: .seconds(30)), "\(peer.standardError)")
        #expect(reply.headers?["Nats-Service-Error-Code"] == ["418"])
        #expect(reply.headers?["Nats-Service-Error"] == ["short and stout"])
        #expect(try await peer.exitCode(within: .seconds(30)) == 0)
        try await running.stop()
        await connection.close()
        await stopOffThePool(server)
    }
}
