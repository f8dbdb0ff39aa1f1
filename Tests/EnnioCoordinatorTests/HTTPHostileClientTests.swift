@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import Glibc
import NATSClient
@testable import NATSTestSupport
import Synchronization
import Testing

@Suite struct HTTPHostileClientTests {
    /// A slowloris, a 1 MB header and 1,000 connections opened and left idle, all at once:
    /// meanwhile the coordinator stores every event published, answers history queries over
    /// NATS and HTTP, and streams events to a well-behaved client.
    @Test func theCoordinatorKeepsIngestingAndAnsweringWhileClientsMisbehave() async throws {
        try Self.allowDescriptors(4096)
        let system = try await RunningHTTPAPI { $0.timeouts.request = .seconds(2) }
        let port = system.port
        let watcher = try HTTPTestClient(port: port)
        watcher.sendGet("/api/events/stream?project=p0")
        #expect(try await watcher.readResponse(headOnly: true).status == 200)
        try await eventually("the stream to join the feed") { system.api.statistics.streams == 1 }

        let idle = try (0..<1000).map { _ in try HTTPTestClient(port: port) }
        let slow = try HTTPTestClient(port: port)
        let stop = Atomic<Bool>(false)
        let trickle = Thread {
            for byte in Array("GET /api/events HTTP/1.1\r\nHost: h\r\nX-Slow: ".utf8) + [UInt8](repeating: 0x61, count: 100_000) {
                guard !stop.load(ordering: .relaxed), slow.send([byte]) else { return }
                usleep(50_000)
            }
        }
        trickle.start()
        let huge = try HTTPTestClient(port: port)
        let hugeSender = Thread { huge.send("GET /api/events HTTP/1.1\r\nHost: h\r\nX-Huge: " + String(repeating: "x", count: 1 << 20) + "\r\n\r\n") }
        hugeSender.start()

        let events = sampleEvents(count: 2000, start: .now(), tag: "hostile")
        try await system.publish(events)
        #expect(system.running.coordinator.statistics.stored == 2000)
        let reply = try await system.client.request(QueryProtocol.body(for: HistoryQuery(projectId: "p1", limit: 5)), to: QueryProtocol.historySubject, timeout: .seconds(10))
        #expect(try HistoryReply(parsing: reply.payload).events.count == 5)
        #expect(try await system.json("/api/events?project=p1&limit=5").eventIDs == events.filter { $0.projectId == "p1" }.prefix(5).map(\.id))
        #expect(try await system.json("/api/sessions")["sessions"]?.arrayValue?.count == 6, "three sessions in each of two projects")
        for event in events where event.projectId == "p0" {
            #expect(try await Event(json: watcher.nextEvent().data).id == event.id)
        }

        #expect(try await huge.readResponse().status == 431)
        #expect(await slow.waitForClose(within: .seconds(30)), "the slowloris is cut off")
        stop.store(true, ordering: .relaxed)
        let statistics = system.api.statistics.server
        #expect(statistics.requestTimeouts >= 1)
        #expect(statistics.malformed >= 1)
        #expect(statistics.evicted >= 700, "idle connections made room for the clients that asked something")
        #expect(statistics.openConnections <= system.api.options.maximumConnections + 1)
        withExtendedLifetime(idle) {}
        await system.stop()
    }

    /// Raises the soft limit on open descriptors to at least `count` (within the hard limit).
    static func allowDescriptors(_ count: rlim_t) throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard limit.rlim_cur < count else { return }
        limit.rlim_cur = min(count, limit.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        try #require(limit.rlim_cur >= 2200, "this test needs about 2,200 open descriptors; the hard limit is \(limit.rlim_max)")
    }
}
