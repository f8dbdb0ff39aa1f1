import EnnioAgent
@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing


func numberedEvent(_ index: Int) -> Event {
    Event(id: "event-\(index)", type: .sessionWorking, sessionId: "s\(index % 7)", projectId: "p\(index % 3)", message: "event \(index)")
}

@Suite struct DurableCoordinatorTests {
    @Test func eventsPublishedWhileTheCoordinatorIsDownAreNotLost() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try await NATSConnection.connect(to: server)
        let publisher = try EventPublisher(connection: client)
        try await EventStream.ensure(JetStream(connection: client))
        for index in 0..<200 {
            let ack = try await publisher.publishDurably(numberedEvent(index))
            #expect(ack.stream == EventStream.name)
        }
        // Published again (a retry, a replay): acknowledged as duplicates, stored once.
        #expect(try await publisher.publishDurably(numberedEvent(7)).duplicate)

        var options = CoordinatorOptions()
        options.mode = .automatic
        let running = try await RunningCoordinator(server: server, options: options)
        #expect(running.coordinator.effectiveMode == .jetStream)
        try await eventually("all 200 events stored") { try running.store.count() == 200 }
        let ids = try running.store.query(HistoryQuery(limit: 1000)).events.map(\.id)
        #expect(Set(ids) == Set((0..<200).map { "event-\($0)" }))

        // Live events keep flowing through the stream, and the rules still apply.
        try await publisher.publishDurably(Event(type: .sessionExited, sessionId: "only", projectId: "solo", message: "bye"))
        try await eventually("all_complete for solo, through the stream") {
            try running.store.query(HistoryQuery(projectId: "solo", eventType: .allComplete)).events.count == 1
        }
        #expect(running.coordinator.statistics.publishFailures == 0)
        await client.close()
        await running.stop()
    }

    @Test func theServerRestartedMidStreamWithFileStorageLosesNothing() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = server.port
        func reconnecting(_ options: inout NATSOptions) {
            options.reconnectWait = .milliseconds(50)
            options.maxReconnectAttempts = -1
        }
        let coordinatorConnection = try await NATSConnection.connect(to: server, configure: reconnecting)
        let store = try EventStore(path: ":memory:")
        var options = CoordinatorOptions()
        options.mode = .jetStream
        let coordinator = try Coordinator(connection: coordinatorConnection, store: store, options: options)
        let (ready, signal) = AsyncStream<Void>.makeStream()
        let running = Task { try await coordinator.run { signal.finish() } }
        for await _ in ready {}

        let client = try await NATSConnection.connect(to: server, configure: reconnecting)
        let publisher = try EventPublisher(connection: client)
        let total = 600
        let publishing = Task {
            for index in 0..<total {
                // Retried until acknowledged: the server is away for a while in the middle.
                try await publisher.publishDurably(numberedEvent(index), retryingFor: .seconds(120), timeout: .seconds(2))
            }
        }
        try await eventually("a third of the events stored") { try store.count() >= total / 3 }
        server.kill()
        let restarted = try TestServer(arguments: ["-js", "-sd", directory], port: port)
        try await within(.seconds(120), "every publish acknowledged") { try await publishing.value }
        try await eventually("every event stored", within: .seconds(60)) { try store.count() == total }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try store.count() == total)
        let ids = try store.query(HistoryQuery(limit: 1000)).events.map(\.id)
        #expect(Set(ids).count == total)
        running.cancel()
        _ = await running.result
        await client.close()
        await coordinatorConnection.close()
        restarted.stop()
    }

    @Test func agentsPublishDurablyAndCountWhatFails() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await NATSConnection.connect(to: server)
        let agent = try NodeAgent(connection: connection, options: AgentOptions(host: "durable-host"))
        #expect(agent.isDurable)
        let (lines, feed) = AsyncStream<String>.makeStream()
        let task = Task { try await agent.run(lines: lines) }
        let event = Event(type: .sessionSpawned, sessionId: "s", projectId: "p", message: "m")
        feed.yield(event.jsonString)
        try await eventually("the event relayed") { agent.statistics.relayed == 1 }
        let js = JetStream(connection: connection)
        let info = try await js.streamInfo(EventStream.name)
        #expect(info.state.messages >= 4, "launched, connected, health check and the relayed event are in the stream")
        #expect(agent.statistics.failedPublishes == 0)
        agent.stop()
        try await task.value
        await connection.close()
    }
}
