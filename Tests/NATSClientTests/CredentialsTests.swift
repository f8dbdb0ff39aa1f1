import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// NKEY and JWT authentication against real servers: the server checks every signature.
@Suite struct CredentialsTests {
    /// An operator, an account and a user with their JWTs, and a server in operator mode.
    struct Operator {
        let operatorKey: NKey
        let account: NKey
        let operatorJWT: String
        let accountJWT: String

        init() throws {
            operatorKey = try NKey.generate(.operator)
            account = try NKey.generate(.account)
            operatorJWT = try TestJWT.operatorJWT(operatorKey)
            accountJWT = try TestJWT.accountJWT(account, signedBy: operatorKey)
        }

        var configuration: ServerConfiguration {
            var configuration = ServerConfiguration()
            configuration.operatorMode = .init(operatorJWT: operatorJWT, accounts: [account.publicKey: accountJWT])
            return configuration
        }

        /// A new user of the account and its `.creds` file.
        func user(expires: Date? = nil) throws -> (NKey, String) {
            let user = try NKey.generate(.user)
            let jwt = try TestJWT.userJWT(user, signedBy: account, expires: expires)
            return (user, try TestJWT.writeSecretFile(TestJWT.credentials(jwt: jwt, user: user), suffix: ".creds"))
        }
    }

    static func nkeyServer(_ users: [NKey], port: Int? = nil) throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.users = users.map { .nkey($0.publicKey) }
        return try TestServer(configuration: configuration, port: port)
    }

    @Test func nkeyUsersFromASeedAndFromASeedFile() async throws {
        let user = try NKey.generate(.user)
        let server = try Self.nkeyServer([user])
        #expect(server.log.isEmpty || !server.log.contains(user.seed))
        try await AuthTests.expectWorking(try await NATSConnection.connect(to: server) { $0.credentials = .nkeySeed(user.seed) })
        let seedFile = try TestJWT.writeSecretFile("\(user.seed)\n", suffix: ".nk")
        try await AuthTests.expectWorking(try await NATSConnection.connect(to: server) { $0.credentials = .nkeySeedFile(seedFile) })
        // A seed kept elsewhere: only its public key and a signer are given.
        try await AuthTests.expectWorking(
            try await NATSConnection.connect(to: server) { $0.credentials = .nkey(publicKey: user.publicKey) { try user.sign($0) } }
        )
    }

    @Test func aWrongSeedIsRefused() async throws {
        let server = try Self.nkeyServer([try NKey.generate(.user)])
        let stranger = try NKey.generate(.user)
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: server) { $0.credentials = .nkeySeed(stranger.seed) } }
        // The right public key with a signature by another key.
        let known = try NKey.generate(.user)
        let other = try Self.nkeyServer([known])
        await expectNATSError(.authorizationViolation) {
            try await NATSConnection.connect(to: other) { $0.credentials = .nkey(publicKey: known.publicKey) { try stranger.sign($0) } }
        }
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: other) }
    }

    @Test func aSeedThatIsNotASeedIsInvalidCredentialsNotSent() async throws {
        let server = try Self.nkeyServer([try NKey.generate(.user)])
        await expectNATSError(.invalidCredentials) { try await NATSConnection.connect(to: server) { $0.credentials = .nkeySeed("SUNOTASEED") } }
        await expectNATSError(.invalidCredentials) { try await NATSConnection.connect(to: server) { $0.credentials = .credentialsFile("/nonexistent/user.creds") } }
    }

    @Test func credentialsWithoutANonceToSignAreRefusedBeforeSending() async throws {
        let server = try TestServer()
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: server) { $0.credentials = .nkeySeed(try! NKey.generate(.user).seed) } }
    }

    @Test func anOperatorAccountUserChainFromACredsFile() async throws {
        let chain = try Operator()
        let server = try TestServer(configuration: chain.configuration)
        let (user, creds) = try chain.user()
        let connection = try await NATSConnection.connect(to: server) { $0.credentials = .credentialsFile(creds) }
        try await AuthTests.expectWorking(connection)
        // The JWT with a signing callback, for seeds kept elsewhere.
        let jwt = try TestJWT.userJWT(user, signedBy: chain.account)
        try await AuthTests.expectWorking(try await NATSConnection.connect(to: server) { $0.credentials = .jwt(jwt) { try user.sign($0) } })
        // Without credentials, or with a user of another account the server does not know.
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: server) }
        let stranger = try Operator()
        let (_, strangerCreds) = try stranger.user()
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: server) { $0.credentials = .credentialsFile(strangerCreds) } }
    }

    @Test func anExpiredUserJWTIsRefused() async throws {
        let chain = try Operator()
        let server = try TestServer(configuration: chain.configuration)
        let (_, creds) = try chain.user(expires: Date(timeIntervalSinceNow: -60))
        await expectNATSError(.authorizationViolation) { try await NATSConnection.connect(to: server) { $0.credentials = .credentialsFile(creds) } }
    }

    @Test func aUserWhoseJWTExpiresWhileConnectedIsDisconnectedAndNotRetriedForever() async throws {
        let chain = try Operator()
        let server = try TestServer(configuration: chain.configuration)
        // Late enough for the watcher below to be listening even when the whole suite loads
        // the machine (6 s was not, once; nor was 15 s at a load average of 10).
        let (_, creds) = try chain.user(expires: Date(timeIntervalSinceNow: 40))
        let connection = try await NATSConnection.connect(to: server) {
            $0.credentials = .credentialsFile(creds)
            ReconnectTests.fastReconnect(&$0)
        }
        let events = EventWatcher(connection)
        try await eventually("the connection to give up", within: .seconds(120)) { connection.status == .closed }
        // The server ends the connection (its notice, `-ERR 'User Authentication Expired'`, may
        // be lost with the socket it closes); the expired JWT is then refused twice and the
        // connection closes instead of retrying.
        #expect(events.events.contains { if case .disconnected = $0 { return true } else { return false } })
        let reason = String(describing: connection.lastError)
        #expect(reason.contains("Authorization Violation"), "\(reason)")
    }

    @Test func refusedCredentialsAfterARestartCloseTheConnectionInsteadOfRetryingForever() async throws {
        let user = try NKey.generate(.user)
        let server = try Self.nkeyServer([user])
        let connection = try await NATSConnection.connect(to: server) {
            $0.credentials = .nkeySeed(user.seed)
            ReconnectTests.fastReconnect(&$0)
        }
        let events = EventWatcher(connection)
        let port = server.port
        server.kill()
        try await events.waitForDisconnect()
        // Back, without this user.
        let restarted = try Self.nkeyServer([try NKey.generate(.user)], port: port)
        try await events.wait(for: "the connection to give up", within: .seconds(30)) { $0 == .closed }
        #expect(connection.status == .closed)
        #expect(!events.events.contains { if case .reconnected = $0 { return true } else { return false } })
        withExtendedLifetime(restarted) {}
    }

    @Test func credentialsAndMutualTLSTogether() async throws {
        let certificates = try TestCertificates.shared()
        let chain = try Operator()
        var configuration = chain.configuration
        configuration.tls = .standard(certificates, verify: true)
        let server = try TestServer(configuration: configuration)
        let (_, creds) = try chain.user()
        let connection = try await NATSConnection.connect(NATSOptions(servers: [server.tlsURL]).with {
            $0.credentials = .credentialsFile(creds)
            $0.tls.caFile = certificates.caFile
            $0.tls.certificateFile = certificates.clientCertificate
            $0.tls.keyFile = certificates.clientKey
        })
        try await AuthTests.expectWorking(connection)
    }

    @Test(arguments: [
        ("User Authentication Expired", NATSError.Code.authenticationExpired),
        ("User Authentication Revoked", .authenticationRevoked),
        ("Account Authentication Expired", .accountAuthenticationExpired),
        ("Authorization Violation", .authorizationViolation),
        ("Secure Connection - TLS Required", .tlsRequiredByServer),
        ("Permissions Violation for Publish to \"x\"", .permissionViolation),
    ])
    func serverErrorsAboutCredentialsAreTyped(text: String, code: NATSError.Code) {
        #expect(ConnectionCore.error(fromServer: text).code == code)
    }
}
