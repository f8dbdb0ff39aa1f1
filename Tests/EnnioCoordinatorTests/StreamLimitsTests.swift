@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// The event stream's limits (issue 14): set when the stream is created, brought up to date on
/// an existing stream, and applied by the server: past the size limit exactly the oldest events
/// go, past the age limit every event goes.
@Suite struct StreamLimitsTests {
    @Test func theCoordinatorCreatesTheStreamWithItsLimitsAndUpdatesThemOnAnExistingOne() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try await NATSConnection.connect(to: server)
        let jetStream = JetStream(connection: client)

        // A publisher made the stream first, with the defaults.
        _ = try await EventStream.prepareForPublishing(jetStream)
        var info = try await jetStream.streamInfo(EventStream.name)
        #expect(info.config.maxAge == 7 * 86_400 * 1_000_000_000)
        #expect(info.config.maxBytes == 1 << 30)
        #expect(info.config.duplicateWindow == Int64(600) * 1_000_000_000)

        // The coordinator's options decide.
        var options = CoordinatorOptions()
        options.mode = .jetStream
        options.streamLimits = EventStream.Limits(maxAge: .seconds(7200), maxBytes: 10 << 20)
        let running = try await RunningCoordinator(server: server, options: options)
        info = try await jetStream.streamInfo(EventStream.name)
        #expect(info.config.maxAge == 7200 * 1_000_000_000)
        #expect(info.config.maxBytes == 10 << 20)
        #expect(info.config.subjects.sorted() == EventStream.subjects.sorted())
        await running.stop()

        // A publisher leaves an existing stream's limits alone.
        _ = try await EventStream.prepareForPublishing(jetStream)
        #expect(try await jetStream.streamInfo(EventStream.name).config.maxBytes == 10 << 20)

        // An age limit below the duplicate window shortens the window (JetStream insists).
        info = try await EventStream.ensure(jetStream, limits: .init(maxAge: .seconds(90), maxBytes: 10 << 20))
        #expect(info.config.maxAge == 90 * 1_000_000_000)
        #expect(info.config.duplicateWindow == Int64(90) * 1_000_000_000)
        await client.close()
    }

    /// Events of the same size: the stream keeps exactly as many of the newest as fit.
    @Test func pastTheSizeLimitExactlyTheOldestEventsAreDeleted() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try await NATSConnection.connect(to: server)
        let jetStream = JetStream(connection: client)
        let publisher = try EventPublisher(connection: client)
        let limit: Int64 = 1 << 20
        try await EventStream.ensure(jetStream, limits: .init(maxBytes: limit))

        func sized(_ index: Int) -> Event {
            Event(id: String(format: "%08d-0000-4000-8000-000000000000", index), type: .ciPassing, sessionId: "s", projectId: "p",
                  timestamp: EventTimestamp(nanosecondsSinceEpoch: 1_700_000_000_000_000_000), message: String(repeating: "x", count: 1000))
        }
        // Below the limit, then far past it.
        try await publisher.publishDurably(sized(0))
        let one = try await jetStream.streamInfo(EventStream.name).state
        #expect(one.messages == 1)
        let perEvent = one.bytes
        let total = 3000
        for index in 1..<total { try await publisher.publishDurably(sized(index)) }

        let state = try await jetStream.streamInfo(EventStream.name).state
        let fits = UInt64(limit) / perEvent
        #expect(state.messages == fits)
        #expect(state.bytes == fits * perEvent)
        #expect(state.lastSequence == UInt64(total))
        #expect(state.firstSequence == UInt64(total) - fits + 1)
        await client.close()
    }

    @Test func pastTheAgeLimitEventsAreDeleted() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try await NATSConnection.connect(to: server)
        let jetStream = JetStream(connection: client)
        try await EventStream.ensure(jetStream, limits: .init(maxAge: .seconds(1)))
        try await EventPublisher(connection: client).publishDurably(Event(type: .ciPassing, sessionId: "s", projectId: "p", message: "old"))
        #expect(try await jetStream.streamInfo(EventStream.name).state.messages == 1)
        try await eventually("the event older than a second is deleted") {
            try await jetStream.streamInfo(EventStream.name).state.messages == 0
        }
        await client.close()
    }
}
