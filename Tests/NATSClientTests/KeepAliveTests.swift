import NATSClient
import Testing

/// The keep-alive logic driven by a clock the test controls: no sockets, no sleeping.
@Suite struct KeepAliveTests {
    @Test func pingsEveryInterval() {
        var keepAlive = KeepAlive(interval: .seconds(120), maximumOutstanding: 2, now: .zero)
        #expect(keepAlive.tick(now: .seconds(119)) == .wait)
        #expect(keepAlive.timeUntilDeadline(now: .seconds(119)) == .seconds(1))
        #expect(keepAlive.tick(now: .seconds(120)) == .sendPing)
        #expect(keepAlive.tick(now: .seconds(121)) == .wait)
        keepAlive.pongReceived()
        #expect(keepAlive.tick(now: .seconds(240)) == .sendPing)
        keepAlive.pongReceived()
        #expect(keepAlive.outstanding == 0)
    }

    @Test func becomesStaleAfterMaximumUnansweredPings() {
        var keepAlive = KeepAlive(interval: .seconds(10), maximumOutstanding: 2, now: .zero)
        #expect(keepAlive.tick(now: .seconds(10)) == .sendPing)
        #expect(keepAlive.tick(now: .seconds(20)) == .sendPing)
        #expect(keepAlive.outstanding == 2)
        #expect(keepAlive.tick(now: .seconds(29)) == .wait)
        #expect(keepAlive.tick(now: .seconds(30)) == .staleConnection)
        // Staleness is sticky until the connection is replaced.
        #expect(keepAlive.tick(now: .seconds(31)) == .staleConnection)
    }

    @Test func aPongInTimeKeepsTheConnectionAlive() {
        var keepAlive = KeepAlive(interval: .seconds(10), maximumOutstanding: 2, now: .zero)
        for round in 1...100 {
            #expect(keepAlive.tick(now: .seconds(10 * round)) == .sendPing)
            if round.isMultiple(of: 2) { keepAlive.pongReceived() }
        }
    }

    @Test func aLateTickSendsOnePingNotABurst() {
        var keepAlive = KeepAlive(interval: .seconds(10), maximumOutstanding: 5, now: .zero)
        #expect(keepAlive.tick(now: .seconds(100)) == .sendPing)
        #expect(keepAlive.tick(now: .seconds(100)) == .wait)
        #expect(keepAlive.timeUntilDeadline(now: .seconds(100)) == .seconds(10))
    }

    @Test func maximumOfOneGoesStaleAtTheSecondDeadline() {
        var keepAlive = KeepAlive(interval: .milliseconds(500), maximumOutstanding: 1, now: .seconds(3))
        #expect(keepAlive.tick(now: .milliseconds(3500)) == .sendPing)
        #expect(keepAlive.tick(now: .milliseconds(4000)) == .staleConnection)
    }
}
