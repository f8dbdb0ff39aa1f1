@testable import NATSClient
import NATSProtocol
import Testing

/// The ordered consumer's rules, driven without a server.
@Suite struct OrderedConsumerStateTests {
    let start = ContinuousClock.now

    func metadata(consumer: String = "c1", stream: UInt64, consumerSequence: UInt64) -> JetStreamMetadata {
        JetStreamMetadata(domain: nil, stream: "S", consumer: consumer, delivered: 1, streamSequence: stream,
                          consumerSequence: consumerSequence, timestamp: 0, pending: 0)
    }

    func made(_ name: String = "c1", delivered: UInt64 = 0, atPolicy: Bool = false) -> OrderedConsumerState {
        var state = OrderedConsumerState(idleHeartbeat: .seconds(5), now: start)
        state.consumerCreated(name: name, deliveredStreamSequence: delivered, startsAtPolicy: atPolicy, now: start)
        return state
    }

    @Test func messagesInSequenceAreDeliveredAndMoveTheResumePoint() {
        var state = made()
        #expect(state.resumeSequence == 1)
        let first = state.received(.message(metadata(stream: 10, consumerSequence: 1)), now: start)
        let second = state.received(.message(metadata(stream: 12, consumerSequence: 2)), now: start)
        #expect(first == .deliver)
        #expect(second == .deliver)
        #expect(state.streamSequence == 12)
        #expect(state.resumeSequence == 13)
    }

    @Test func aGapInTheConsumerSequenceRecreatesFromTheLastDeliveredMessage() {
        var state = made()
        _ = state.received(.message(metadata(stream: 1, consumerSequence: 1)), now: start)
        let gap = state.received(.message(metadata(stream: 3, consumerSequence: 3)), now: start)
        #expect(gap == .recreate)
        #expect(state.resumeSequence == 2, "not past the message that never arrived")
        state.consumerCreated(name: "c2", deliveredStreamSequence: 1, startsAtPolicy: false, now: start)
        #expect(state.recreations == 1)
        let old = state.received(.message(metadata(consumer: "c1", stream: 4, consumerSequence: 4)), now: start)
        #expect(old == .ignore, "a late message of the old consumer")
        let again = state.received(.message(metadata(consumer: "c2", stream: 2, consumerSequence: 1)), now: start)
        #expect(again == .deliver)
    }

    @Test func heartbeatsReportGapsAndStalls() {
        var state = made()
        _ = state.received(.message(metadata(stream: 1, consumerSequence: 1)), now: start)
        let quiet = state.received(.heartbeat(lastConsumerSequence: 1, stalledReply: nil), now: start)
        #expect(quiet == .ignore)
        let stalled = state.received(.heartbeat(lastConsumerSequence: 1, stalledReply: "$JS.FC.S.x.1"), now: start)
        #expect(stalled == .answer("$JS.FC.S.x.1"))
        let missed = state.received(.heartbeat(lastConsumerSequence: 5, stalledReply: nil), now: start)
        #expect(missed == .recreate)
    }

    @Test func flowControlIsAnsweredAndOtherStatusesRecreate() {
        var state = made()
        let request = state.received(.flowControl(reply: "$JS.FC.S.y.2"), now: start)
        #expect(request == .answer("$JS.FC.S.y.2"))
        #expect(state.answers == 1)
        let deleted = state.received(.status(409), now: start)
        #expect(deleted == .recreate)
        let junk = state.received(.unknown, now: start)
        #expect(junk == .ignore)
    }

    @Test func twoSilentHeartbeatIntervalsMeanTheConsumerIsLost() {
        var state = made()
        #expect(state.waitLimit(now: start + .seconds(3)) == .seconds(7))
        #expect(!state.silenceMeansLost(now: start + .seconds(9)))
        #expect(state.silenceMeansLost(now: start + .seconds(10)))
        _ = state.received(.heartbeat(lastConsumerSequence: 0, stalledReply: nil), now: start + .seconds(9))
        #expect(!state.silenceMeansLost(now: start + .seconds(10)), "a heartbeat restarts the clock")
    }

    @Test func aLastPerSubjectStartIsKeptUntilTheFirstMessage() {
        var state = made(delivered: 40, atPolicy: true)
        #expect(state.resumeSequence == nil)
        _ = state.received(.message(metadata(stream: 41, consumerSequence: 1)), now: start)
        #expect(state.resumeSequence == 42)
        let positioned = made(delivered: 40)
        #expect(positioned.resumeSequence == 41, "deliver new: the position it started at")
    }

    @Test func deliveriesAreSortedByTheirHeadersAndReplySubjects() {
        func status(_ code: Int, reply: String? = nil, _ fields: [(String, String)] = []) -> NATSMessage {
            var headers = NATSHeaders(fields)
            headers.status = code
            return NATSMessage(subject: "_INBOX.x", replyTo: reply, headers: headers, payload: [])
        }
        #expect(OrderedConsumerState.classify(status(100, reply: "$JS.FC.S.a.b")) == .flowControl(reply: "$JS.FC.S.a.b"))
        #expect(OrderedConsumerState.classify(status(100, [("Nats-Last-Consumer", "7"), ("Nats-Consumer-Stalled", "$JS.FC.S.c")]))
            == .heartbeat(lastConsumerSequence: 7, stalledReply: "$JS.FC.S.c"))
        #expect(OrderedConsumerState.classify(status(409)) == .status(409))
        let data = NATSMessage(subject: "s", replyTo: "$JS.ACK.S.c1.1.5.2.1772738703123456789.0", payload: [1])
        #expect(OrderedConsumerState.classify(data) == .message(JetStreamMetadata(
            domain: nil, stream: "S", consumer: "c1", delivered: 1, streamSequence: 5, consumerSequence: 2,
            timestamp: 1_772_738_703_123_456_789, pending: 0)))
        #expect(OrderedConsumerState.classify(NATSMessage(subject: "s", payload: [1])) == .unknown)
    }
}
