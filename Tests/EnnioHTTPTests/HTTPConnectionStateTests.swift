@testable import EnnioHTTP
import Testing

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite struct HTTPConnectionStateTests {
    let get = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"

    @Test func aRequestIsHandledThenTheConnectionIdlesUntilTheIdleTimeout() throws {
        var state = HTTPConnectionState(now: .zero)
        #expect(state.firstAction == .read(deadline: .seconds(10)))
        #expect(state.isIdle)
        guard case .handle(let request) = state.bytesReceived(bytes(get), now: .seconds(1)) else {
            Issue.record("expected the request")
            return
        }
        #expect(request.path == "/a")
        #expect(!state.isIdle, "a connection whose request is being handled is not idle")
        #expect(state.responseSent(keepAlive: true, now: .seconds(2)) == .read(deadline: .seconds(32)))
        #expect(state.isIdle)
        #expect(state.timerFired(now: .seconds(31)) == .read(deadline: .seconds(32)), "woken early, it reads on")
        #expect(state.timerFired(now: .seconds(32)) == .close(.idleTimeout))
    }

    /// A slowloris: one byte of headers at a time, each well within any per-read timeout. The
    /// request's deadline counts from its first byte, so it is cut off all the same.
    @Test func aRequestTrickledByteByByteIsCutOffAtItsDeadline() {
        var state = HTTPConnectionState(now: .zero)
        _ = state.responseSent(keepAlive: true, now: .zero)
        var now = Duration.zero
        var last = state.firstAction
        for byte in bytes("GET / HTTP/1.1\r\nX-Slow: ") {
            now += .milliseconds(500)
            last = state.bytesReceived([byte], now: now)
            if case .read(let deadline) = last, now >= deadline { break }
        }
        #expect(last == .read(deadline: .seconds(10)), "the deadline set when the connection opened stays")
        #expect(!state.isIdle, "part of a request has arrived")
        #expect(state.timerFired(now: .seconds(10)) == .close(.requestTimeout))
    }

    @Test func onAKeptAliveConnectionTheNextRequestsTimeoutStartsWithItsFirstByte() {
        var state = HTTPConnectionState(now: .zero)
        _ = state.bytesReceived(bytes(get), now: .zero)
        #expect(state.responseSent(keepAlive: true, now: .seconds(1)) == .read(deadline: .seconds(31)))
        #expect(state.bytesReceived(bytes("GE"), now: .seconds(20)) == .read(deadline: .seconds(30)))
        #expect(state.timerFired(now: .seconds(30)) == .close(.requestTimeout))
    }

    @Test func pipelinedRequestsAreHandledOneAfterTheOther() {
        var state = HTTPConnectionState(now: .zero)
        let action = state.bytesReceived(bytes(get + get.replacingOccurrences(of: "/a", with: "/b") + "GET /c"), now: .zero)
        guard case .handle(let first) = action else {
            Issue.record("expected /a, got \(action)")
            return
        }
        #expect(first.path == "/a")
        guard case .handle(let second) = state.responseSent(keepAlive: true, now: .seconds(1)) else {
            Issue.record("expected /b")
            return
        }
        #expect(second.path == "/b")
        #expect(state.responseSent(keepAlive: true, now: .seconds(2)) == .read(deadline: .seconds(12)), "/c has begun: the request timeout")
    }

    @Test func aResponseThatEndsTheConnectionClosesIt() {
        var state = HTTPConnectionState(now: .zero)
        _ = state.bytesReceived(bytes(get), now: .zero)
        #expect(state.responseSent(keepAlive: false, now: .zero) == .close(.responseEnded))
    }

    @Test func aMalformedRequestIsRejectedWithItsError() {
        var state = HTTPConnectionState(now: .zero)
        guard case .reject(let error) = state.bytesReceived(bytes("BAD\r\n"), now: .zero) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(error.code == .malformedRequestLine)
        #expect(state.bytesReceived(bytes(get), now: .zero) == .close(.peerClosed), "nothing more is read after a rejection")
    }

    @Test func aNewConnectionThatSendsNothingTimesOutAsARequest() {
        var state = HTTPConnectionState(now: .seconds(5))
        #expect(state.timerFired(now: .seconds(15)) == .close(.requestTimeout))
        var closed = HTTPConnectionState(now: .zero)
        #expect(closed.peerClosed() == .close(.peerClosed))
    }
}

@Suite struct ServerSentEventsTests {
    @Test func eachLineOfTheDataGetsADataFieldAndFieldsCannotBeBrokenOpen() {
        var buffer: [UInt8] = []
        ServerSentEvents.appendMessage(id: "1-a\nb", event: "ci_failing", data: Array("one\r\ntwo\nthree\rfour".utf8), to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "id: 1-ab\nevent: ci_failing\ndata: one\ndata: two\ndata: three\ndata: four\n\n")
        buffer = []
        ServerSentEvents.appendMessage(id: nil, event: nil, data: [UInt8](), to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "data: \n\n")
        #expect(String(decoding: ServerSentEvents.comment("keep\nalive"), as: UTF8.self) == ": keepalive\n\n")
    }
}

@Suite struct StreamQueueTests {
    @Test func aConsumerTakesWhatWasOfferedInOrder() {
        let queue = StreamQueue<Int>(capacity: 4)
        #expect(queue.offer([1, 2]))
        #expect(queue.offer([3]))
        guard case .elements(let taken) = queue.take(timeout: .seconds(5)) else {
            Issue.record("expected elements")
            return
        }
        #expect(taken == [1, 2, 3])
        guard case .timedOut = queue.take(timeout: .milliseconds(1)) else {
            Issue.record("expected a timeout")
            return
        }
        queue.close()
        guard case .closed = queue.take(timeout: .seconds(5)) else {
            Issue.record("expected closed")
            return
        }
        #expect(!queue.offer([4]))
    }

    @Test func overflowingTellsTheConsumerAndRunsTheCallbackOnce() {
        let calls = Counter()
        let queue = StreamQueue<Int>(capacity: 3) { calls.increment() }
        #expect(queue.offer([1, 2, 3]))
        #expect(!queue.offer([4]), "full: the client fell behind")
        #expect(!queue.offer([5]))
        #expect(calls.value == 1)
        guard case .overflowed = queue.take(timeout: .seconds(5)) else {
            Issue.record("expected overflowed")
            return
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = ConditionLockBox()
    private var count = 0
    func increment() { lock.run { count += 1 } }
    var value: Int { lock.run { count } }
}

import EnnioSync

final class ConditionLockBox: Sendable {
    private let lock = ConditionLock()
    func run<T>(_ body: () -> T) -> T { lock.withLock(body) }
}
