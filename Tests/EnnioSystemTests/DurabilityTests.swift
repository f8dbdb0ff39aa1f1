import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct DurabilityTests {
    /// The coordinator process is killed (SIGKILL) in the middle of a stream of thousands of
    /// events and started again: its history then holds every event exactly once. It stores
    /// 100 events per transaction here, so that the kill finds it part-way through; the second
    /// half of the events is published only after the kill, so the kill is mid-stream however
    /// fast the first half was stored.
    @Test func aCoordinatorKilledMidStreamLosesNothingAndStoresNothingTwice() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = directory + "/history.sqlite"
        let environment = ["NATS_URL": server.url]
        let arguments = ["coordinator", "--db", database, "--mode", "jetstream", "--batch-size", "100"]

        let first = try EnnioProcess(arguments, environment: environment)
        try await first.waitForOutput("durable consumer")

        let client = try await NATSConnection.connect(to: server.url)
        let jetStream = JetStream(connection: client)
        let total = 4000
        let events = (0..<total).map { index in
            Event(id: "kill-\(index)", type: .sessionWorking, sessionId: "s\(index % 11)", projectId: "p\(index % 5)", message: "event \(index)")
        }
        func publish(_ part: ArraySlice<Event>) async throws -> [PubAck] {
            try await jetStream.publishAll(
                part.map { (try EventSubject.subject(for: $0), EventCodec.encode($0), $0.id) }, maxPending: 128)
        }
        let firstHalf = Task { try await publish(events[..<(total / 2)]) }

        // Kill it once it is part-way through.
        let observer = try EventStore(path: database)
        try await eventually("the coordinator to store some events") { try observer.count() >= 500 }
        first.process.send(SIGKILL)
        #expect(try await first.finish() == 128 + SIGKILL)
        let storedBeforeKill = try observer.count()
        var acks = try await within(.seconds(120), "every publish acknowledged") { try await firstHalf.value }
        acks += try await publish(events[(total / 2)...])
        #expect(acks.count == total)
        #expect(acks.allSatisfy { !$0.duplicate })

        let second = try EnnioProcess(arguments, environment: environment)
        try await second.waitForOutput("durable consumer")
        try await eventually("every event stored", within: .seconds(120)) { try observer.count() == total }
        #expect(try await second.terminate() == 0)

        #expect(storedBeforeKill < total, "the kill happened mid-stream")
        let stored = try observer.query(HistoryQuery(limit: 1000)).events.count
        #expect(stored == 1000)
        var ids: Set<String> = []
        var query = HistoryQuery(limit: 1000)
        while true {
            let page = try observer.query(query)
            ids.formUnion(page.events.map(\.id))
            guard let next = page.next else { break }
            query.after = next
        }
        #expect(ids == Set(events.map(\.id)))
        #expect(try observer.count() == total, "no event stored twice")
        observer.close()
        await client.close()
    }

    @Test func replayPrintsAndRepublishesARangeOfHistory() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = ["NATS_URL": server.url]
        let coordinator = try EnnioProcess(["coordinator", "--db", directory + "/h.sqlite"], environment: environment)
        try await coordinator.waitForOutput("durable consumer")
        for (type, project) in [("CiFailing", "a"), ("CiPassing", "a"), ("PrCreated", "b")] {
            let result = try await EnnioProcess.run(["pub", type, "--project", project, "--session", "s", "--message", "m"], environment: environment)
            #expect(result.output.contains("stored as ENNIO_EVENTS"), "\(result.output)")
        }
        try await eventually("three events in the history") {
            try await EnnioProcess.run(["history", "--json"], environment: environment).output.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 3
        }
        let printed = try await EnnioProcess.run(["replay", "--project", "a"], environment: environment)
        #expect(printed.status == 0)
        let events = try printed.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try Event(json: String($0)) }
        #expect(events.map(\.eventType) == [.ciFailing, .ciPassing])

        let client = try await NATSConnection.connect(to: server.url)
        let watcher = try EventSubscription(connection: client, pattern: try .category(.ci, scope: "a"))
        try await client.flush()
        let republished = try await EnnioProcess.run(["replay", "--project", "a", "--republish"], environment: environment)
        #expect(republished.status == 0)
        #expect(republished.output.contains("re-published 2 events"))
        let seen = try await within { () -> [String] in
            var ids: [String] = []
            var iterator = watcher.makeAsyncIterator()
            while ids.count < 2, let delivery = await iterator.next() { ids.append(delivery.event?.id ?? "?") }
            return ids
        }
        #expect(seen == events.map(\.id), "a new consumer catches up with the same events, same ids")
        #expect(try await coordinator.terminate() == 0)
        await client.close()
    }
}
