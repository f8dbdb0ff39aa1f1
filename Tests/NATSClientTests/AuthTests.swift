import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct AuthTests {
    /// A connection that works: it can publish to itself.
    static func expectWorking(_ connection: NATSConnection) async throws {
        let subscription = try connection.subscribe(to: "auth.check")
        try await connection.flush()
        try connection.publish("ok", to: "auth.check")
        #expect(try await subscription.take(1).first?.string == "ok")
        await connection.close()
    }

    @Test func tokenFromOptionsAndFromURL() async throws {
        let server = try TestServer(arguments: ["--auth", "s3cret"])
        try await Self.expectWorking(try await NATSConnection.connect(to: server) { $0.token = "s3cret" })
        try await Self.expectWorking(try await NATSConnection.connect(to: "nats://s3cret@127.0.0.1:\(server.port)"))
    }

    @Test func wrongOrMissingTokenIsAnAuthorizationViolation() async throws {
        let server = try TestServer(arguments: ["--auth", "s3cret"])
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: server) { $0.token = "wrong" } }
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: "nats://nope@127.0.0.1:\(server.port)") }
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: server) }
    }

    @Test func userAndPasswordFromOptionsAndFromURL() async throws {
        let server = try TestServer(arguments: ["--user", "alice", "--pass", "p@ss:word"])
        try await Self.expectWorking(
            try await NATSConnection.connect(to: server) {
                $0.user = "alice"
                $0.password = "p@ss:word"
            })
        try await Self.expectWorking(try await NATSConnection.connect(to: "nats://alice:p%40ss%3Aword@127.0.0.1:\(server.port)"))
    }

    @Test func wrongPasswordIsAnAuthorizationViolation() async throws {
        let server = try TestServer(arguments: ["--user", "alice", "--pass", "secret"])
        await expectNATSError(.authorizationViolation) {
            try await NATSConnection.connect(to: server) {
                $0.user = "alice"
                $0.password = "guess"
            }
        }
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: "nats://alice:guess@127.0.0.1:\(server.port)") }
    }
}
