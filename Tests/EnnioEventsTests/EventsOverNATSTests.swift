import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct EventsOverNATSTests {
    /// One event of each kind used below, with the subject it must travel on.
    static func events() -> [(Event, String)] {
        let at = EventTimestamp(nanosecondsSinceEpoch: 1_772_738_703_000_000_000)
        return [
            (Event(id: "ci-p1", type: .ciFailing, priority: .urgent, sessionId: "s1", projectId: "p1", timestamp: at, message: "ci failing"), "ennio.ci.p1.failing"),
            (Event(id: "pr-p1", type: .prCreated, sessionId: "s1", projectId: "p1", timestamp: at, message: "pr"), "ennio.pr.p1.created"),
            (Event(id: "ci-p2", type: .ciPassing, sessionId: "s2", projectId: "p2", timestamp: at, message: "ci passing"), "ennio.ci.p2.passing"),
            (Event(id: "node", type: .nodeHealthCheck, sessionId: "", projectId: "p1", timestamp: at, message: "ok", data: ["host": "build-server"]), "ennio.node.build-server.health_check"),
            (Event(id: "done", type: .allComplete, sessionId: "", projectId: "p1", timestamp: at, message: "done"), "ennio.lifecycle.all_complete"),
        ]
    }

    @Test func patternSubscribersGetExactlyTheirEvents() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: connection, host: "build-server")
        let patterns: [(String, EventPattern)] = [
            ("ennio.ci.p1.*", try .category(.ci, scope: "p1")),
            ("ennio.*.p1.*", try .project("p1")),
            ("ennio.node.build-server.*", try .node(host: "build-server")),
            ("ennio.>", .all),
        ]
        let subscriptions = try patterns.map { try EventSubscription(connection: connection, pattern: $0.1) }
        #expect(subscriptions.map(\.pattern.subject) == patterns.map(\.0))
        try await connection.flush()

        for (event, subject) in Self.events() {
            #expect(try publisher.publish(event) == subject)
        }
        try await connection.flush()

        let expected: [[String]] = [
            ["ci-p1"],
            ["ci-p1", "pr-p1"],
            ["node"],
            ["ci-p1", "pr-p1", "ci-p2", "node", "done"],
        ]
        for (subscription, ids) in zip(subscriptions, expected) {
            let received = try await within { () -> [EventDelivery] in
                var all: [EventDelivery] = []
                var iterator = subscription.makeAsyncIterator()
                while all.count < ids.count, let delivery = await iterator.next() { all.append(delivery) }
                return all
            }
            #expect(received.compactMap(\.event?.id) == ids, "pattern \(subscription.pattern)")
            #expect(received.compactMap(\.event) == Self.events().map(\.0).filter { ids.contains($0.id) })
        }
        // Nothing else arrived: one more flush round trip, and no subscription has anything queued.
        try await connection.flush()
        await connection.close()
        for subscription in subscriptions {
            var iterator = subscription.makeAsyncIterator()
            #expect(await iterator.next() == nil, "pattern \(subscription.pattern) got an extra event")
        }
    }

    @Test func malformedAndMismatchedPayloadsAreReportedNotFatal() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server.url)
        let subscription = try EventSubscription(connection: connection, pattern: .all)
        try await connection.flush()

        try connection.publish("{not json", to: "ennio.ci.p1.failing")
        try connection.publish(#"{"id":"x","event_type":"nope","priority":"info","session_id":"","project_id":"p1","timestamp":"2026-01-01T00:00:00Z","message":"","data":null}"#, to: "ennio.ci.p1.failing")
        let wrongPlace = Event(id: "misplaced", type: .ciPassing, sessionId: "s", projectId: "p2", message: "m")
        try connection.publish(wrongPlace.jsonBytes, to: "ennio.ci.p1.passing")
        let good = Event(id: "good", type: .ciPassing, sessionId: "s", projectId: "p1", message: "m")
        try EventPublisher(connection: connection).publish(good)

        let deliveries = try await within { () -> [EventDelivery] in
            var all: [EventDelivery] = []
            var iterator = subscription.makeAsyncIterator()
            while all.count < 4, let delivery = await iterator.next() { all.append(delivery) }
            return all
        }
        guard deliveries.count == 4 else { Issue.record("got \(deliveries)"); return }
        if case .malformed(let subject, _, let error) = deliveries[0] {
            #expect(subject == "ennio.ci.p1.failing")
            #expect(error.code == .malformedJSON)
        } else { Issue.record("expected malformed, got \(deliveries[0])") }
        if case .malformed(_, _, let error) = deliveries[1] { #expect(error.code == .unknownEventType) } else { Issue.record("expected unknown type") }
        #expect(deliveries[2] == .mismatched(wrongPlace, subject: "ennio.ci.p1.passing"))
        #expect(deliveries[3] == .event(good, subject: "ennio.ci.p1.passing"))
        #expect(subscription.malformedCount == 2)
        #expect(subscription.mismatchedCount == 1)
        #expect(subscription.validCount == 1)
        await connection.close()
    }

    @Test func publishingCarriesTheEventIdAsMessageIdHeader() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server.url)
        let raw = try connection.subscribe(to: "ennio.>")
        try await connection.flush()
        let event = Event(type: .sessionSpawned, sessionId: "s", projectId: "p", message: "m")
        try EventPublisher(connection: connection).publish(event)
        let message = try await raw.take(1)[0]
        #expect(message.headers?["Nats-Msg-Id"] == event.id)
        #expect(try EventCodec.decode(message.payload) == event)
        await connection.close()
    }

    @Test func badSegmentsNeverReachTheWire() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server.url)
        let raw = try connection.subscribe(to: ">")
        try await connection.flush()
        let publisher = try EventPublisher(connection: connection)
        for project in ["a.b", "a b", "*", ">", "ü", ""] {
            #expect(throws: SubjectSegmentError.self) {
                try publisher.publish(Event(type: .ciFailing, sessionId: "s", projectId: project, message: "m"))
            }
        }
        #expect(throws: SubjectSegmentError.self) { try publisher.publish(Event(type: .nodeConnected, sessionId: "", projectId: "p", message: "no host")) }
        #expect(throws: SubjectSegmentError.self) { try EventPublisher(connection: connection, host: "bad.host") }
        try await connection.flush()
        #expect(raw.pendingCount == 0)
        await connection.close()
    }

    @Test func natsPyDecodesTheSameJSON() async throws {
        let server = try TestServer()
        let peer = try PythonPeer(arguments: ["sub", "--url", server.url, "--subject", "ennio.>", "--count", "\(Self.events().count)"])
        defer { peer.terminate() }
        #expect(try peer.readLine(timeout: .seconds(30)) == "READY")
        let connection = try await NATSConnection.connect(to: server.url)
        let publisher = try EventPublisher(connection: connection, host: "build-server")
        let events = Self.events().map(\.0).map { event -> Event in
            var event = event
            event.data = ["n": 1, "text": "ünïcode ✓", "nested": ["list": [1, 2.5, nil, true]]]
            return event
        }
        for event in events { try publisher.publish(event) }
        try await connection.flush()

        for (event, subject) in zip(events, Self.events().map(\.1)) {
            let line = try #require(try peer.readLine(timeout: .seconds(30)))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["subject"] as? String == subject)
            #expect((object["headers"] as? [String: [String]])?["Nats-Msg-Id"] == [event.id])
            let decoded = try #require(object["payload_json"] as? [String: Any], "nats-py could not parse the payload as JSON")
            #expect(decoded["id"] as? String == event.id)
            #expect(decoded["event_type"] as? String == event.eventType.rawValue)
            #expect(decoded["priority"] as? String == event.priority.rawValue)
            #expect(decoded["session_id"] as? String == event.sessionId)
            #expect(decoded["project_id"] as? String == event.projectId)
            #expect(decoded["timestamp"] as? String == event.timestamp.rfc3339)
            #expect(decoded["message"] as? String == event.message)
            let data = try #require(decoded["data"] as? [String: Any])
            #expect(data["text"] as? String == "ünïcode ✓")
            #expect(data["n"] as? Int == 1)
            #expect(Set(decoded.keys) == ["id", "event_type", "priority", "session_id", "project_id", "timestamp", "message", "data"])
        }
        #expect(try peer.waitForExit(timeout: .seconds(30)) == 0)
        await connection.close()
    }
}

@Suite struct EventBridgeTests {
    @Test func busAndNATSMeetWithoutLoopsOrDuplicates() async throws {
        let server = try TestServer()
        let bridgeConnection = try await NATSConnection.connect(to: server.url)
        let outside = try await NATSConnection.connect(to: server.url)
        let bus = EventBus()
        let bridge = EventBridge(bus: bus, publisher: try EventPublisher(connection: bridgeConnection, host: "h1"))
        let onBus = bus.subscribe()
        let onNATS = try EventSubscription(connection: outside, pattern: .all)
        try await outside.flush()

        let running = Task { try await bridge.run() }
        try await eventually("the bridge to subscribe") { bus.subscriberCount == 2 }
        try await bridgeConnection.flush()

        // From the bus out to NATS.
        let local = Event(id: "local", type: .sessionSpawned, sessionId: "s", projectId: "p", message: "from the bus")
        bus.publish(local)
        // From NATS onto the bus.
        let remote = Event(id: "remote", type: .ciPassing, sessionId: "s", projectId: "p", message: "from NATS")
        try EventPublisher(connection: outside).publish(remote)
        try await outside.flush()

        let seenOutside = try await within { () -> [String] in
            var ids: [String] = []
            var iterator = onNATS.makeAsyncIterator()
            while ids.count < 2, let delivery = await iterator.next() { ids.append(delivery.event?.id ?? "?") }
            return ids
        }
        #expect(Set(seenOutside) == ["local", "remote"])
        let seenOnBus = try await within { () -> [String] in
            var ids: [String] = []
            var iterator = onBus.makeAsyncIterator()
            while ids.count < 2, let element = await iterator.next() { ids.append(element.id ?? "?") }
            return ids
        }
        #expect(seenOnBus == ["local", "remote"])

        // Let every echo come back through the server, then check nothing crossed twice.
        try await bridgeConnection.flush()
        try await outside.flush()
        try await eventually("both echoes to be suppressed") { bridge.suppressed >= 2 }
        #expect(bridge.forwardedToNATS == 1)
        #expect(bridge.forwardedToBus == 1)
        try await outside.flush()
        #expect(onNATS.validCount == 2, "the remote event was not sent back out")
        running.cancel()
        _ = await running.result
        await bridgeConnection.close()
        await outside.close()
    }
}

@Suite struct EventPublisherFastPathTests {
    @Test func manyEventsKeepTheirSubjectsHeadersAndOrder() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server.url)
        let raw = try connection.subscribe(to: "ennio.>")
        try await connection.flush()
        let publisher = try EventPublisher(connection: connection, host: "h1")
        let events = (0..<40).map { index in
            Event(type: index % 3 == 0 ? .nodeHealthCheck : .ciPassing, sessionId: "s", projectId: "p\(index % 4)", message: "m\(index)")
        }
        let subjects = try events.map { try publisher.publish($0) }
        let messages = try await raw.take(events.count)
        #expect(messages.map(\.subject) == subjects)
        #expect(subjects == (try events.map { try EventSubject.subject(for: $0, host: "h1") }))
        #expect(messages.map { $0.headers?["Nats-Msg-Id"] } == events.map(\.id))
        #expect(try messages.map { try EventCodec.decode($0.payload) } == events)
        await connection.close()
    }

    @Test func anIdThatCannotBeAHeaderValueIsRefused() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server.url)
        let event = Event(id: "bad\r\nid", type: .ciPassing, sessionId: "s", projectId: "p", message: "m")
        #expect(throws: NATSError.self) { try EventPublisher(connection: connection).publish(event) }
        await connection.close()
    }
}
