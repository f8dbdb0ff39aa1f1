import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// A user that tries what the server's permissions forbid gets `.permissionViolation` on the
/// operation that did it, and the connection stays up: the parser of the server's text, the
/// state machine's part, and a real nats-server with per-user permissions.
@Suite struct PermissionViolationTests {
    // MARK: - The server's text

    @Test func theServersWordingsAreRead() {
        #expect(PermissionViolation(serverError: #"Permissions Violation for Publish to "ennio.commands.shutdown""#)
            == PermissionViolation(kind: .publish, subject: "ennio.commands.shutdown"))
        #expect(PermissionViolation(serverError: #"'Permissions Violation for Publish to "a.b"'"#)
            == PermissionViolation(kind: .publish, subject: "a.b"))
        #expect(PermissionViolation(serverError: #"Permissions Violation for Publish with Reply of "_INBOX.x.1""#)
            == PermissionViolation(kind: .publishReply, subject: "_INBOX.x.1"))
        #expect(PermissionViolation(serverError: #"Permissions Violation for Subscription to "ennio.query.>""#)
            == PermissionViolation(kind: .subscription, subject: "ennio.query.>"))
        #expect(PermissionViolation(serverError: #"Permissions Violation for Subscription to "ennio.query.history" using queue "q""#)
            == PermissionViolation(kind: .subscription, subject: "ennio.query.history", queueGroup: "q"))
        #expect(PermissionViolation(serverError: #"Permissions Violation for Subscription to "a.b.c", too many tokens"#)
            == PermissionViolation(kind: .subscription, subject: "a.b.c"))
        // Go's %q escapes quotes and backslashes.
        #expect(PermissionViolation(serverError: #"Permissions Violation for Publish to "a\"b\\c""#)
            == PermissionViolation(kind: .publish, subject: #"a"b\c"#))
    }

    @Test(arguments: [
        "Permissions Violation",
        "Permissions Violation for Publish to",
        #"Permissions Violation for Publish to "unterminated"#,
        #"Permissions Violation for Publish to "a" and more"#,
        #"Permissions Violation for Publish to "a\x00""#,
        #"Permissions Violation for Subscription to "a" using queue"#,
        "Authorization Violation",
        "",
    ])
    func anythingElseIsNotRead(_ text: String) {
        #expect(PermissionViolation(serverError: text) == nil)
    }

    // MARK: - The state machine

    @Test func aRefusedSubscriptionLeavesTheMachineAndIsNotSentToTheNextServer() throws {
        var machine = try ConnectionStateMachineTests.connected()
        let refused = try machine.subscribeRequested { SubscriptionState(sid: $0, subject: "secret.>", queueGroup: nil, messageLimit: 10, byteLimit: 1000) }.state
        let grouped = try machine.subscribeRequested { SubscriptionState(sid: $0, subject: "secret.>", queueGroup: "g", messageLimit: 10, byteLimit: 1000) }.state
        let kept = try machine.subscribeRequested { SubscriptionState(sid: $0, subject: "open", queueGroup: nil, messageLimit: 10, byteLimit: 1000) }.state
        let (sid, _) = try machine.replySubscriptionRequested()

        let outcome = machine.subscriptionRefused(subject: "secret.>", queueGroup: nil)
        #expect(outcome.subscriptions.map(\.sid) == [refused.sid])
        #expect(!outcome.replySubscription)
        #expect(machine.subscription(refused.sid) == nil)
        #expect(machine.subscription(grouped.sid) != nil)
        #expect(machine.subscription(kept.sid) != nil)
        let preamble = String(decoding: machine.resubscribePreamble(), as: UTF8.self)
        #expect(!preamble.contains("SUB secret.> \(refused.sid)"))
        #expect(preamble.contains("SUB open \(kept.sid)"))

        // The reply subscription: refused, forgotten, asked for again by the next request.
        let reply = machine.subscriptionRefused(subject: "_INBOX.x.*", queueGroup: nil)
        #expect(reply.replySubscription && reply.subscriptions.isEmpty)
        #expect(machine.replySid == nil)
        let again = try machine.replySubscriptionRequested()
        #expect(again.sid != sid && again.subscribeNow)
    }

    // MARK: - A real server

    /// `alice` may publish to `open.>`, subscribe to it (but not `open.secret.>`) and get replies;
    /// `bob` may also use `closed.>` and answer requests; `carol` gets no replies.
    static func server() async throws -> TestServer {
        let path = try TestServer.writeConfig("""
            authorization {
              users = [
                { user: alice, password: a, permissions: {
                    publish: { allow: ["open.>"] },
                    subscribe: { allow: ["open.>", "_INBOX.>"], deny: ["open.secret.>"] } } },
                { user: bob, password: b, permissions: {
                    publish: { allow: ["open.>", "closed.>"] },
                    subscribe: { allow: ["open.>", "closed.>", "_INBOX.>"] },
                    allow_responses: true } },
                { user: carol, password: c, permissions: {
                    publish: { allow: ["open.>"] },
                    subscribe: { allow: ["open.>"] } } }
              ]
            }
            """)
        return try await onThread { try TestServer(arguments: ["-c", path]) }
    }

    static func connect(_ server: TestServer, _ user: String) async throws -> NATSConnection {
        try await NATSConnection.connect(to: server) {
            $0.user = user
            $0.password = String(user.prefix(1))
        }
    }

    /// `connection` answers every request on `open.echo` with its payload.
    static func answerEchoRequests(_ connection: NATSConnection) async throws {
        let echo = try connection.subscribe(to: "open.echo")
        try await connection.flush()
        Task {
            for await request in echo {
                if let reply = request.replyTo { try? connection.publish(request.payload, to: reply) }
            }
        }
    }

    @Test func aRefusedSubscriptionEndsWithTheErrorAndTheConnectionStaysUp() async throws {
        let server = try await Self.server()
        let alice = try await Self.connect(server, "alice")
        let events = alice.events()
        let refused = try alice.subscribe(to: "closed.>")
        let allowed = try alice.subscribe(to: "open.news")
        await expectNATSError(.permissionViolation) { try await alice.flush() }
        // The sequence ends, saying why.
        let messages = try await within { await refused.nextBatch() }
        #expect(messages.isEmpty)
        #expect(refused.error?.code == .permissionViolation)
        #expect(refused.error?.message.contains(#""closed.>""#) == true)
        #expect(allowed.error == nil)
        // Still connected, and what was allowed works.
        #expect(alice.status == .connected)
        try alice.publish("hello", to: "open.news")
        #expect(try await allowed.take(1).first?.string == "hello")
        try await alice.flush()
        // Reported once among the connection's events.
        let reported = try await within {
            for await event in events { if case .serverError(let text) = event { return text } }
            return ""
        }
        #expect(reported.contains("Permissions Violation for Subscription"))
        await alice.close()
    }

    @Test func aWildcardOverlappingADenyIsAcceptedButNeverDeliversTheDeniedSubjects() async throws {
        let server = try await Self.server()
        let alice = try await Self.connect(server, "alice")
        let bob = try await Self.connect(server, "bob")
        let everything = try alice.subscribe(to: "open.>")
        try await alice.flush()
        try bob.publish("hidden", to: "open.secret.plan")
        try bob.publish("visible", to: "open.news")
        try await bob.flush()
        #expect(try await everything.take(1).first?.subject == "open.news")
        #expect(everything.error == nil)
        await alice.close()
        await bob.close()
    }

    @Test func aFlushAfterARefusedPublishReportsItAndTheNextFlushSucceeds() async throws {
        let server = try await Self.server()
        let alice = try await Self.connect(server, "alice")
        try alice.publish("stop", to: "closed.commands.shutdown")
        let error = await expectNATSError(.permissionViolation) { try await alice.flush() }
        #expect(error?.message.contains(#"Publish to "closed.commands.shutdown""#) == true)
        #expect(alice.status == .connected)
        try await alice.flush()
        // However the refusal and the flush meet: reported by the flush, once.
        for _ in 0..<20 {
            try alice.publish("stop", to: "closed.commands.shutdown")
            try await Task.sleep(for: .milliseconds(1))
            await expectNATSError(.permissionViolation) { try await alice.flush() }
            try await alice.flush()
        }
        await alice.close()
    }

    @Test func aRequestToASubjectItMayNotPublishToFailsAtOnceNotAfterItsTimeout() async throws {
        let server = try await Self.server()
        let alice = try await Self.connect(server, "alice")
        let bob = try await Self.connect(server, "bob")
        let service = try bob.subscribe(to: "closed.service")
        try await bob.flush()
        let started = ContinuousClock.now
        await expectNATSError(.permissionViolation) { _ = try await alice.request("q", to: "closed.service", timeout: .seconds(60)) }
        #expect(ContinuousClock.now - started < .seconds(30))
        // The request said so: a flush does not say it again.
        try await alice.flush()
        // Allowed requests still work on the same connection.
        try await Self.answerEchoRequests(bob)
        #expect(try await alice.request("ping", to: "open.echo", timeout: .seconds(10)).string == "ping")
        #expect(service.pendingCount == 0)
        await alice.close()
        await bob.close()
    }

    @Test func aRefusedReplySubscriptionFailsTheRequestAtOnce() async throws {
        let server = try await Self.server()
        // carol may not subscribe to _INBOX.>: no request of hers can get a reply.
        let carol = try await Self.connect(server, "carol")
        let bob = try await Self.connect(server, "bob")
        try await Self.answerEchoRequests(bob)
        let started = ContinuousClock.now
        await expectNATSError(.permissionViolation) { _ = try await carol.request("ping", to: "open.echo", timeout: .seconds(60)) }
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(carol.status == .connected)
        // And again: the reply subscription is asked for anew, and refused anew.
        await expectNATSError(.permissionViolation) { _ = try await carol.request("ping", to: "open.echo", timeout: .seconds(60)) }
        await carol.close()
        await bob.close()
    }
}
