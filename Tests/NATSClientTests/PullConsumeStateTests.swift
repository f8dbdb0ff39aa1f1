@testable import NATSClient
import Testing

/// The continuous pull's bookkeeping, driven without a server.
@Suite struct PullConsumeStateTests {
    let start = ContinuousClock.now

    @Test func itAsksForAFullBufferThenRefillsAtTheThreshold() {
        var state = PullConsumeState(maxMessages: 10, expires: .seconds(30), idleHeartbeat: .seconds(5))
        let result1 = state.readerWaiting(now: start)
        #expect(result1 == .pull(batch: 10))
        let result2 = state.readerWaiting(now: start)
        #expect(result2 == .wait(.seconds(10)))
        for _ in 0..<4 { state.messageReceived(now: start) }
        let result3 = state.readerWaiting(now: start)
        #expect(result3 == .wait(.seconds(10)), "6 still owed: above the threshold of 5")
        state.messageReceived(now: start)
        let result4 = state.readerWaiting(now: start)
        #expect(result4 == .pull(batch: 5), "refilled to the buffer, no more")
        #expect(state.owed == 10)
    }

    @Test func aBufferOfOneDoesNotGetStuck() {
        var state = PullConsumeState(maxMessages: 1, expires: .seconds(30), idleHeartbeat: .seconds(5))
        let result5 = state.readerWaiting(now: start)
        #expect(result5 == .pull(batch: 1))
        let result6 = state.readerWaiting(now: start)
        #expect(result6 == .wait(.seconds(10)))
        state.messageReceived(now: start)
        let result7 = state.readerWaiting(now: start)
        #expect(result7 == .pull(batch: 1))
    }

    @Test func anExpiredRequestGivesBackWhatItStillOwed() {
        var state = PullConsumeState(maxMessages: 10, expires: .seconds(30), idleHeartbeat: .seconds(5))
        _ = state.readerWaiting(now: start)
        for _ in 0..<3 { state.messageReceived(now: start) }
        let result8 = state.statusReceived(code: 408, description: "Request Timeout", pendingMessages: 7, now: start)
        #expect(result8 == .keepReading)
        #expect(state.owed == 0)
        let result9 = state.readerWaiting(now: start)
        #expect(result9 == .pull(batch: 10))
    }

    @Test func aDeletedConsumerOrABadRequestEndsTheSequence() {
        var state = PullConsumeState(maxMessages: 10, expires: .seconds(30), idleHeartbeat: .seconds(5))
        _ = state.readerWaiting(now: start)
        for (code, text) in [(409, "Consumer Deleted"), (409, "Consumer is push based"), (400, "Bad Request"), (409, "Exceeded MaxRequestBatch of 5")] {
            let result = state.statusReceived(code: code, description: text, pendingMessages: nil, now: start)
            #expect(result == .fail(JetStreamError(code: code, errorCode: 0, description: text)))
        }
        let result10 = state.statusReceived(code: 404, description: "No Messages", pendingMessages: nil, now: start)
        #expect(result10 == .keepReading)
    }

    @Test func aRefusedRequestIsRetriedASecondLater() {
        var state = PullConsumeState(maxMessages: 10, expires: .seconds(30), idleHeartbeat: .seconds(5))
        _ = state.readerWaiting(now: start)
        let result11 = state.statusReceived(code: 409, description: "Exceeded MaxWaiting", pendingMessages: nil, now: start)
        #expect(result11 == .keepReading)
        let result12 = state.readerWaiting(now: start + .milliseconds(400))
        #expect(result12 == .wait(.milliseconds(600)))
        let result13 = state.readerWaiting(now: start + .seconds(1))
        #expect(result13 == .pull(batch: 10))
        let result14 = state.statusReceived(code: 503, description: "No Responders", pendingMessages: nil, now: start + .seconds(2))
        #expect(result14 == .keepReading)
        let result15 = state.readerWaiting(now: start + .seconds(2))
        #expect(result15 == .wait(.seconds(1)))
    }

    @Test func twoSilentHeartbeatIntervalsStartThePullAgain() {
        var state = PullConsumeState(maxMessages: 10, expires: .seconds(30), idleHeartbeat: .seconds(5))
        _ = state.readerWaiting(now: start)
        state.heartbeatReceived(now: start + .seconds(4))
        let result16 = state.waitTimedOut(now: start + .seconds(13))
        #expect(!result16, "a heartbeat came 9 s ago")
        let result17 = state.readerWaiting(now: start + .seconds(13))
        #expect(result17 == .wait(.seconds(1)))
        let result18 = state.waitTimedOut(now: start + .seconds(14))
        #expect(result18)
        #expect(state.missedHeartbeats == 1)
        let result19 = state.readerWaiting(now: start + .seconds(14))
        #expect(result19 == .pull(batch: 10))
    }
}
