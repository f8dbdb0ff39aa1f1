@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// The coordinator's queries as the service `ennio-coordinator` (ADR-32): found by `$SRV.PING`,
/// described by `$SRV.INFO`, counted by `$SRV.STATS` — by name and by id, from our client and
/// from nats-py's service models — with one of several coordinators answering each query, and
/// the replies as they always were.
@Suite struct CoordinatorServiceTests {
    /// Every answer to one empty request on `subject`, from `count` responders.
    static func gather(_ count: Int, from subject: String, on connection: NATSConnection) async throws -> [NATSMessage] {
        let inbox = "_INBOX.\(UUID().uuidString)"
        let answers = try connection.subscribe(to: inbox)
        defer { try? answers.unsubscribe() }
        try await connection.flush()
        try connection.publish([UInt8](), to: subject, replyTo: inbox)
        return try await answers.take(count)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ message: NATSMessage) throws -> T {
        try JSONDecoder().decode(type, from: Data(message.payload))
    }

    static func requests(to endpoint: String, in stats: [ServiceStats]) -> Int {
        stats.flatMap(\.endpoints).filter { $0.name == endpoint }.reduce(0) { $0 + $1.numRequests }
    }

    @Test func everyCoordinatorIsFoundDescribedAndCountedByNameAndById() async throws {
        let scene = try await JetStreamScene()
        let first = try await scene.coordinator { $0.consumerName = "ennio-coordinator-a" }
        let second = try await scene.coordinator { $0.consumerName = "ennio-coordinator-b" }
        let ids = try Set([first, second].map { try #require($0.coordinator.service?.id) })
        let client = scene.client

        let pings = try await Self.gather(2, from: "$SRV.PING.\(CoordinatorService.name)", on: client).map { try Self.decode(ServicePing.self, $0) }
        #expect(Set(pings.map(\.id)) == ids)
        #expect(pings.allSatisfy { $0.name == "ennio-coordinator" && $0.version == CoordinatorService.version && $0.type == ServicePing.type })
        #expect(Set(pings.compactMap { $0.metadata["consumer"] }) == ["ennio-coordinator-a", "ennio-coordinator-b"])

        let firstID = try #require(first.coordinator.service?.id)
        let info = try Self.decode(ServiceInfo.self, try #require(try await Self.gather(1, from: "$SRV.INFO.ennio-coordinator.\(firstID)", on: client).first))
        #expect(info.id == firstID)
        #expect(info.endpoints.map(\.subject) == ["ennio.query.history", "ennio.query.sessions", "ennio.query.nodes", "ennio.query.rollouts", "ennio.query.runs"])
        #expect(info.endpoints.map(\.name) == ["history", "sessions", "nodes", "rollouts", "runs"])
        #expect(info.endpoints.allSatisfy { $0.queueGroup == "ennio-coordinator" })

        // Queries as before: each answered by one coordinator of the two, and counted there.
        let queries = 12
        for _ in 0..<queries {
            let reply = try await client.request(Array("{}".utf8), to: QueryProtocol.sessionsSubject, timeout: .seconds(10))
            #expect(try JSONValue(parsing: reply.payload) == ["sessions": [], "count": 0, "next": nil])
            #expect(reply.headers == nil)
        }
        try await eventually("the statistics to count every query") {
            let stats = try await Self.gather(2, from: "$SRV.STATS.ennio-coordinator", on: client).map { try Self.decode(ServiceStats.self, $0) }
            return Self.requests(to: "sessions", in: stats) >= queries
        }
        let stats = try await Self.gather(2, from: "$SRV.STATS.ennio-coordinator", on: client).map { try Self.decode(ServiceStats.self, $0) }
        #expect(Self.requests(to: "sessions", in: stats) == queries, "one answer per query")
        #expect(first.coordinator.statistics.queries + second.coordinator.statistics.queries == UInt64(queries))

        // A bad query: the same reply as ever, as a service error too, counted as one.
        let bad = try await client.request(Array("not json".utf8), to: QueryProtocol.historySubject, timeout: .seconds(10))
        let expected = first.coordinator.answer(query: QueryProtocol.historySubject, body: Array("not json".utf8))
        #expect(bad.payload == expected.reply && expected.status == 400)
        #expect(bad.serviceError?.code == 400)
        // A long description is cut in the header, whole in the reply.
        let long = Array(#"{"\#(String(repeating: "ü", count: 400))":1}"#.utf8)
        let cut = try await client.request(long, to: QueryProtocol.sessionsSubject, timeout: .seconds(10))
        #expect(cut.payload == first.coordinator.answer(query: QueryProtocol.sessionsSubject, body: long).reply)
        let header = try #require(cut.headers?["Nats-Service-Error"])
        #expect(header.utf8.count <= CoordinatorService.headerDescriptionBytes + 3 && header.hasSuffix("…"), "\(header)")
        try await eventually("the error counted") {
            let stats = try await Self.gather(2, from: "$SRV.STATS", on: client).map { try Self.decode(ServiceStats.self, $0) }
            return stats.flatMap(\.endpoints).filter { $0.name == "history" || $0.name == "sessions" }.reduce(0) { $0 + $1.numErrors } == 2
        }
        await scene.finish(first, second)
    }

    @Test func natsPyFindsTheCoordinatorsWithItsServiceModels() async throws {
        let scene = try await JetStreamScene()
        let first = try await scene.coordinator { $0.consumerName = "ennio-coordinator-a" }
        let second = try await scene.coordinator { $0.consumerName = "ennio-coordinator-b" }
        let firstID = try #require(first.coordinator.service?.id)
        let client = scene.client
        _ = try await client.request([UInt8](), to: QueryProtocol.nodesSubject, timeout: .seconds(10))

        func discover(_ subject: String, count: Int) async throws -> [[String: Any]] {
            let peer = try PythonPeer(arguments: ["srv-discover", "--url", scene.server.url, "--subject", subject, "--count", "\(count)"])
            var answers: [[String: Any]] = []
            for _ in 0..<count {
                let line = try #require(try await peer.line(within: .seconds(30)), "\(peer.standardError)")
                answers.append(try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]))
            }
            #expect(try await peer.exitCode(within: .seconds(30)) == 0, "\(peer.standardError)")
            return answers
        }
        let pings = try await discover("$SRV.PING.ennio-coordinator", count: 2)
        #expect(Set(pings.compactMap { $0["id"] as? String }) == [firstID, try #require(second.coordinator.service?.id)])
        #expect(pings.allSatisfy { $0["name"] as? String == "ennio-coordinator" && $0["type"] as? String == ServicePing.type })
        let infos = try await discover("$SRV.INFO", count: 2)
        #expect(infos.allSatisfy { (($0["endpoints"] as? [[String: Any]])?.count) == 5 })
        let stats = try await discover("$SRV.STATS.ennio-coordinator.\(firstID)", count: 1)
        let endpoints = try #require(stats.first?["endpoints"] as? [[String: Any]])
        #expect(endpoints.compactMap { $0["subject"] as? String }.sorted() == CoordinatorService.endpoints.map(\.subject).sorted())
        #expect(endpoints.allSatisfy { $0["queue_group"] as? String == "ennio-coordinator" })
        await scene.finish(first, second)
    }
}
