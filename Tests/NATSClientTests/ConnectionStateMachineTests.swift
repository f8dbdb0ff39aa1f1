@testable import NATSClient
import NATSProtocol
import Testing

/// The connection's state machine, transition by transition: no sockets, no threads, no clock.
@Suite struct ConnectionStateMachineTests {
    static let info = try! ServerInfo(json: #"{"server_id":"S","version":"2.12.0","max_payload":1048576}"#)
    static let failure = NATSError(.connectionFailed, "refused")
    static let refused = NATSError(.authorizationViolation, "no")

    static func machine(_ urls: [String] = ["nats://a:1", "nats://b:2"], configure: (inout ConnectionStateMachine.Policy) -> Void = { _ in }) throws -> ConnectionStateMachine {
        var policy = ConnectionStateMachine.Policy()
        policy.reconnectWait = .seconds(2)
        policy.pingInterval = .seconds(10)
        configure(&policy)
        return ConnectionStateMachine(pool: try ServerPool(urls: urls, randomize: false), policy: policy, replySubject: "_INBOX.x.*", now: .zero)
    }

    static func subscription(_ sid: UInt64, _ subject: String) -> SubscriptionState {
        SubscriptionState(sid: sid, subject: subject, queueGroup: nil, messageLimit: 10, byteLimit: 1000)
    }

    static let a = try! ServerAddress(parsing: "nats://a:1")
    static let b = try! ServerAddress(parsing: "nats://b:2")

    /// Connected to `a` at time zero.
    static func connected() throws -> ConnectionStateMachine {
        var machine = try machine()
        #expect(machine.nextStep(now: .zero) == .connect(a))
        _ = machine.handshakeSucceeded(server: a, info: info, now: .zero)
        return machine
    }

    @Test func theFirstConnectionTriesEachSeedOnceAndReportsTheMostTellingFailure() throws {
        var machine = try Self.machine()
        #expect(machine.status == .connecting)
        #expect(machine.nextStep(now: .zero) == .connect(Self.a))
        machine.handshakeFailed(server: Self.a, error: Self.refused, now: .zero)
        #expect(machine.nextStep(now: .zero) == .connect(Self.b))
        machine.handshakeFailed(server: Self.b, error: Self.failure, now: .zero)
        // A refusal of the credentials says more than "unreachable".
        #expect(machine.nextStep(now: .zero) == .finish(Self.refused))
        #expect(machine.status == .closed)
        #expect(machine.lastError == Self.refused)
    }

    @Test func aSuccessfulHandshakeAttachesAndAnnouncesTheConnection() throws {
        var machine = try Self.machine()
        _ = machine.nextStep(now: .zero)
        guard case .attach(let preamble, let event, _) = machine.handshakeSucceeded(server: Self.a, info: Self.info, now: .zero) else {
            Issue.record("not attached")
            return
        }
        #expect(preamble.isEmpty)
        #expect(event == .connected(server: "nats://a:1"))
        #expect(machine.status == .connected)
        #expect(machine.server == Self.a)
    }

    @Test func aLostSocketIsAnnouncedAndTheNextAttemptWaitsForItsTime() throws {
        var machine = try Self.connected()
        let closed = machine.transportClosed(reason: NATSError(.disconnected, "gone"))
        #expect(closed.event == .disconnected(reason: NATSError(.disconnected, "gone").description))
        #expect(machine.status == .reconnecting)
        // `a` moved to the back: `b` first, which was never tried.
        #expect(machine.nextStep(now: .seconds(1)) == .connect(Self.b))
        machine.handshakeFailed(server: Self.b, error: Self.failure, now: .seconds(1))
        // `a` was last tried at zero: wait until 2 s (+ jitter), then try it.
        #expect(machine.nextStep(now: .seconds(1), jitter: .milliseconds(50)) == .wait(until: .milliseconds(2050)))
        #expect(machine.nextStep(now: .milliseconds(2050)) == .connect(Self.a))
        guard case .attach(_, let event, _) = machine.handshakeSucceeded(server: Self.a, info: Self.info, now: .seconds(3)) else {
            Issue.record("not attached")
            return
        }
        #expect(event == .reconnected(server: "nats://a:1"))
        #expect(machine.status == .connected)
    }

    @Test func aNewServerIsToldOfLiveSubscriptionsOnlyAndOfTheirRemainingCounts() throws {
        var machine = try Self.connected()
        let live = try machine.subscribeRequested { Self.subscription($0, "live") }
        #expect(live.sendNow)
        let limited = try machine.subscribeRequested { Self.subscription($0, "limited") }
        _ = limited.state.setMaximum(5)
        let drained = try machine.subscribeRequested { Self.subscription($0, "drained") }
        let drainSent = machine.subscriptionDrainRequested(drained.state.sid)
        #expect(drainSent)
        let gone = try machine.subscribeRequested { Self.subscription($0, "gone") }
        let unsubscribeSent = machine.subscriptionRemoved(gone.state.sid)
        #expect(unsubscribeSent)
        _ = try machine.replySubscriptionRequested()

        _ = machine.transportClosed(reason: Self.failure)
        // While disconnected a new subscription is not sent; the preamble carries it.
        let late = try machine.subscribeRequested { Self.subscription($0, "late") }
        #expect(!late.sendNow)
        let preamble = String(decoding: machine.resubscribePreamble(), as: UTF8.self)
        #expect(preamble == "SUB live 1\r\nSUB limited 2\r\nUNSUB 2 5\r\nSUB late 6\r\nSUB _INBOX.x.* 5\r\n")
    }

    @Test func pongsCompleteFlushesInTheOrderOfTheirPings() throws {
        var machine = try Self.connected()
        #expect(machine.flushRequested() == .queuePing)
        machine.pingQueued(flush: 1)
        machine.pingQueued(flush: nil)
        machine.pingQueued(flush: 2)
        #expect(machine.pongReceived() == 1)
        #expect(machine.pongReceived() == nil)
        #expect(machine.pongReceived() == 2)
        #expect(machine.outstandingPings == 0)
    }

    /// When the socket is lost, the flushes whose PING went out with it fail; those whose PING
    /// the writer kept for the next socket (the last ones) stay.
    @Test func aLostSocketFailsTheFlushesWhosePingWentWithIt() throws {
        var machine = try Self.connected()
        for id in [1, 2, 3] as [UInt64] { machine.pingQueued(flush: id) }
        machine.pingQueued(flush: nil)
        _ = machine.transportClosed(reason: Self.failure)
        #expect(machine.pingsDropped(keeping: 1) == [1, 2, 3])
        #expect(machine.outstandingPings == 1)
    }

    @Test func theKeepAlivePingsThenDeclaresTheConnectionStale() throws {
        var machine = try Self.connected()
        #expect(machine.keepAliveTimerFired(now: .seconds(5)) == .none)
        #expect(machine.keepAliveTimerFired(now: .seconds(10)) == .sendPing)
        #expect(machine.keepAliveTimerFired(now: .seconds(20)) == .sendPing)
        guard case .closeTransport(let error) = machine.keepAliveTimerFired(now: .seconds(30)) else {
            Issue.record("not stale")
            return
        }
        #expect(error.code == .staleConnection)
        // Any PONG resets the count.
        var answered = try Self.connected()
        _ = answered.keepAliveTimerFired(now: .seconds(10))
        _ = answered.pongReceived()
        #expect(answered.keepAliveTimerFired(now: .seconds(20)) == .sendPing)
        #expect(answered.keepAliveTimerFired(now: .seconds(30)) == .sendPing)
    }

    @Test func closingWhileConnectedFlushesThenFinishesWithoutAnnouncingADisconnect() throws {
        var machine = try Self.connected()
        #expect(machine.closeRequested(now: .seconds(1)) == .flushThenCloseTransport)
        #expect(machine.closeRequested(now: .seconds(1)) == .none)
        #expect(machine.flushRequested() == .fail(.closed()))
        #expect(machine.transportClosed(reason: Self.failure).event == nil)
        #expect(machine.nextStep(now: .seconds(1)) == .finish(nil))
        #expect(machine.status == .closed)
    }

    @Test func closingWhileWaitingToReconnectWakesTheIOThreadWhichFinishes() throws {
        var machine = try Self.connected()
        _ = machine.transportClosed(reason: Self.failure)
        #expect(machine.closeRequested(now: .seconds(1)) == .wakeIOThread)
        #expect(machine.nextStep(now: .seconds(1)) == .finish(nil))
    }

    @Test func closingDuringAHandshakeAbandonsItsSocket() throws {
        var machine = try Self.machine()
        #expect(machine.nextStep(now: .zero) == .connect(Self.a))
        #expect(machine.closeRequested(now: .zero) == .awaitHandshake)
        guard case .abandon = machine.handshakeSucceeded(server: Self.a, info: Self.info, now: .zero) else {
            Issue.record("not abandoned")
            return
        }
        #expect(machine.nextStep(now: .zero) == .finish(nil))
    }

    @Test func aDrainIsRequestedOnceAndRefusesNewSubscriptionsThroughAReconnect() throws {
        var machine = try Self.connected()
        let subscription = try machine.subscribeRequested { Self.subscription($0, "s") }
        #expect(machine.drainRequested()?.map(\.sid) == [subscription.state.sid])
        #expect(machine.drainRequested() == nil)
        #expect(machine.status == .draining)
        _ = machine.transportClosed(reason: Self.failure)
        #expect(machine.status == .draining)
        do {
            _ = try machine.subscribeRequested { Self.subscription($0, "t") }
            Issue.record("a subscription was accepted while draining")
        } catch {
            #expect(error.code == .connectionDraining)
        }
        _ = machine.nextStep(now: .seconds(5))
        _ = machine.handshakeSucceeded(server: Self.b, info: Self.info, now: .seconds(5))
        #expect(machine.status == .draining)
        // The drained subscription is not sent to the new server.
        #expect(machine.resubscribePreamble().isEmpty)
    }

    @Test func withoutReconnectALostSocketClosesWithItsReason() throws {
        var machine = try Self.machine { $0.allowReconnect = false }
        _ = machine.nextStep(now: .zero)
        _ = machine.handshakeSucceeded(server: Self.a, info: Self.info, now: .zero)
        let reason = NATSError(.disconnected, "gone")
        #expect(machine.transportClosed(reason: reason).event != nil)
        #expect(machine.nextStep(now: .zero) == .finish(reason))
        #expect(machine.lastError == reason)
    }

    /// Credentials refused twice in a row by the only server: reconnecting stops there.
    @Test func credentialsRefusedTwiceInARowEndReconnecting() throws {
        var machine = try Self.machine(["nats://a:1"])
        _ = machine.nextStep(now: .zero)
        _ = machine.handshakeSucceeded(server: Self.a, info: Self.info, now: .zero)
        _ = machine.transportClosed(reason: Self.failure)
        for attempt in 1...2 {
            let now = Duration.seconds(10 * attempt)
            #expect(machine.nextStep(now: now) == .connect(Self.a))
            machine.handshakeFailed(server: Self.a, error: Self.refused, now: now)
        }
        guard case .finish(let error?) = machine.nextStep(now: .seconds(60)) else {
            Issue.record("still reconnecting")
            return
        }
        #expect(error.code == .connectionClosed)
        // Unless told to keep trying.
        var patient = try Self.machine(["nats://a:1"]) { $0.abortOnRepeatedAuthorizationError = false }
        _ = patient.nextStep(now: .zero)
        _ = patient.handshakeSucceeded(server: Self.a, info: Self.info, now: .zero)
        _ = patient.transportClosed(reason: Self.failure)
        for attempt in 1...5 {
            let now = Duration.seconds(10 * attempt)
            #expect(patient.nextStep(now: now) == .connect(Self.a))
            patient.handshakeFailed(server: Self.a, error: Self.refused, now: now)
        }
    }

    @Test func lameDuckModeMovesOnlyWhenThereIsSomewhereToGo() throws {
        let lameDuck = try ServerInfo(json: #"{"server_id":"S","version":"2.12.0","max_payload":1048576,"ldm":true}"#)
        var machine = try Self.connected()
        let action = machine.infoReceived(lameDuck)
        #expect(action.lameDuck)
        #expect(action.closeTransport?.code == .disconnected)
        var alone = try Self.machine(["nats://a:1"])
        _ = alone.nextStep(now: .zero)
        _ = alone.handshakeSucceeded(server: Self.a, info: Self.info, now: .zero)
        #expect(alone.infoReceived(lameDuck).closeTransport == nil)
    }

    @Test func aPermissionViolationIsReportedWhileOtherErrorsDropTheSocket() throws {
        let machine = try Self.connected()
        #expect(machine.serverErrorReceived("Permissions Violation for Publish to \"x\"") == .report(ConnectionCore.error(fromServer: "Permissions Violation for Publish to \"x\"")))
        guard case .closeTransport(let error) = machine.serverErrorReceived("Stale Connection") else {
            Issue.record("kept the socket")
            return
        }
        #expect(error.code == .serverError)
    }

    @Test func announcedServersJoinThePoolWithTheCredentialsAndTLSOfTheSeed() throws {
        var machine = try Self.machine(["tls://user:pw@a:1"])
        _ = machine.nextStep(now: .zero)
        let seed = try ServerAddress(parsing: "tls://user:pw@a:1")
        let info = try ServerInfo(json: #"{"server_id":"S","version":"2.12.0","max_payload":1048576,"connect_urls":["c:3","a:1"]}"#)
        guard case .attach(_, _, let discovered) = machine.handshakeSucceeded(server: seed, info: info, now: .zero) else {
            Issue.record("not attached")
            return
        }
        #expect(discovered.map(\.description) == ["tls://c:3"])
        #expect(discovered.first?.user == "user")
    }
}
