@testable import EnnioEvents
import Testing

func sampleEvent(_ index: Int, type: EventType = .sessionWorking, priority: EventPriority = .info) -> Event {
    Event(id: "e-\(index)", type: type, priority: priority, sessionId: "s", projectId: "p",
          timestamp: EventTimestamp(nanosecondsSinceEpoch: 1_700_000_000_000_000_000 + Int64(index)), message: "event \(index)")
}

extension EventBusSubscription {
    /// What is buffered now, without waiting (the bus delivers synchronously on publish).
    func takeBuffered(_ count: Int) async -> [EventBusElement] {
        var elements: [EventBusElement] = []
        var iterator = makeAsyncIterator()
        for _ in 0..<count {
            guard let element = await iterator.next() else { break }
            elements.append(element)
        }
        return elements
    }
}

@Suite struct EventBusTests {
    @Test func everySubscriberGetsEveryMatchingEventInOrder() async {
        let bus = EventBus()
        let first = bus.subscribe()
        let second = bus.subscribe()
        for index in 0..<10 { bus.publish(sampleEvent(index)) }
        let expected = (0..<10).map { EventBusElement.event(sampleEvent($0)) }
        #expect(await first.takeBuffered(10).map(\.id) == expected.map(\.id))
        #expect(await second.takeBuffered(10).map(\.id) == expected.map(\.id))
    }

    @Test func filtersByTypeCategoryAndPriority() async {
        let bus = EventBus()
        let byType = bus.subscribe(.type(.ciFailing))
        let byCategory = bus.subscribe(.category(.ci))
        let urgentOrMore = bus.subscribe(.minimumPriority(.urgent))
        let events = [
            sampleEvent(0, type: .ciFailing, priority: .info),
            sampleEvent(1, type: .ciPassing, priority: .critical),
            sampleEvent(2, type: .prCreated, priority: .urgent),
            sampleEvent(3, type: .prClosed, priority: .action),
        ]
        events.forEach(bus.publish)
        bus.close()
        #expect(await byType.takeBuffered(10).map(\.id) == ["e-0"])
        #expect(await byCategory.takeBuffered(10).map(\.id) == ["e-0", "e-1"])
        #expect(await urgentOrMore.takeBuffered(10).map(\.id) == ["e-1", "e-2"])
    }

    @Test func aSubscriberThatFallsBehindLosesTheOldestAndIsToldHowMany() async {
        let bus = EventBus(bufferSize: 4)
        let slow = bus.subscribe()
        for index in 0..<10 { bus.publish(sampleEvent(index)) }
        let elements = await slow.takeBuffered(5)
        #expect(elements.first == .lagged(missed: 6))
        #expect(elements.dropFirst().map(\.id) == ["e-6", "e-7", "e-8", "e-9"])
        #expect(slow.missedCount == 6)
        // Keeping up again: no more lag reports.
        bus.publish(sampleEvent(10))
        #expect(await slow.takeBuffered(1) == [.event(sampleEvent(10))])
    }

    @Test func publishingNeverBlocksAndMemoryStaysBounded() async {
        let bus = EventBus(bufferSize: 16)
        let idle = bus.subscribe()
        for index in 0..<100_000 { bus.publish(sampleEvent(index)) }
        #expect(idle.missedCount == 100_000 - 16)
        let elements = await idle.takeBuffered(17)
        #expect(elements.first == .lagged(missed: 100_000 - 16))
        #expect(elements.last?.id == "e-99999")
    }

    @Test func aWaitingSubscriberIsWokenByPublish() async throws {
        let bus = EventBus()
        let subscription = bus.subscribe()
        let waiter = Task { await subscription.takeBuffered(1) }
        while bus.subscriberCount == 0 { await Task.yield() }
        try await Task.sleep(for: .milliseconds(20))
        bus.publish(sampleEvent(1))
        #expect(await waiter.value.map(\.id) == ["e-1"])
    }

    @Test func cancellingOrClosingEndsTheSequence() async {
        let bus = EventBus()
        let cancelled = bus.subscribe()
        cancelled.cancel()
        #expect(await cancelled.takeBuffered(1).isEmpty)
        #expect(bus.subscriberCount == 0)
        let open = bus.subscribe()
        bus.publish(sampleEvent(1))
        bus.close()
        #expect(await open.takeBuffered(5).map(\.id) == ["e-1"], "what was buffered is still delivered")
        #expect(await bus.subscribe().takeBuffered(1).isEmpty)
    }
}

extension EventBusElement {
    var id: String? {
        if case .event(let event) = self { return event.id }
        return nil
    }
}

/// Several tasks iterating one bus subscription (the subscriber used to hold one waiter: a
/// second task overwrote the first one's, which never returned, and a cancelled task ended the
/// other's iteration).
@Suite struct EventBusWaiterTests {
    static func event(_ id: String) -> Event {
        Event(id: id, type: .sessionWorking, sessionId: "s", projectId: "p", message: "m")
    }

    @Test func twoTasksOnOneSubscriptionEachGetAnEventAndACancelledOneLeavesAlone() async throws {
        let bus = EventBus()
        let subscription = bus.subscribe()
        func waiter() -> Task<EventBusElement?, Never> {
            Task {
                var iterator = subscription.makeAsyncIterator()
                return await iterator.next()
            }
        }
        let one = waiter()
        let two = waiter()
        let cancelled = waiter()
        while subscription.subscriber.waiterCount < 3 { try await Task.sleep(for: .milliseconds(1)) }
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        bus.publish(Self.event("a"))
        bus.publish(Self.event("b"))
        let ids = Set([await one.value?.id, await two.value?.id].compactMap { $0 })
        #expect(ids == ["a", "b"])
    }
}
