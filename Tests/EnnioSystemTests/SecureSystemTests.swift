import EnnioEvents
import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// The event system as it runs against a secured deployment: mutual TLS with a private CA,
/// decentralised JWT authentication, JetStream; the `ennio` processes get their security the
/// way the `nats` command does (flags or environment variables).
@Suite struct SecureSystemTests {
    @Test func coordinatorAgentPubAndSubOverMutualTLSWithCredentials() async throws {
        let certificates = try TestCertificates.shared()
        let operatorKey = try NKey.generate(.operator)
        let account = try NKey.generate(.account)
        let system = try NKey.generate(.account)
        let user = try NKey.generate(.user)
        let creds = try TestJWT.writeSecretFile(
            TestJWT.credentials(jwt: try TestJWT.userJWT(user, signedBy: account), user: user), suffix: ".creds")
        let folder = NSTemporaryDirectory() + "ennio-secure-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }

        var configuration = ServerConfiguration()
        configuration.tls = .standard(certificates, verify: true)
        configuration.operatorMode = .init(
            operatorJWT: try TestJWT.operatorJWT(operatorKey),
            accounts: [
                account.publicKey: try TestJWT.accountJWT(account, signedBy: operatorKey),
                system.publicKey: try TestJWT.accountJWT(system, signedBy: operatorKey, name: "SYS", jetStream: false),
            ],
            systemAccount: system.publicKey
        )
        configuration.jetStreamDirectory = folder + "/jetstream"
        let server = try TestServer(configuration: configuration)

        let environment = [
            "NATS_URL": server.tlsURL, "NATS_CREDS": creds, "NATS_CA": certificates.caFile,
            "NATS_CERT": certificates.clientCertificate, "NATS_KEY": certificates.clientKey,
        ]
        // Without credentials the same server refuses, and says so.
        let refused = try await EnnioProcess.run(["sessions"], environment: environment.filter { $0.key != "NATS_CREDS" })
        #expect(refused.status == 1)
        #expect(refused.output.contains("authorizationViolation"), "\(refused.output)")

        let coordinator = try EnnioProcess(["coordinator", "--db", folder + "/history.sqlite"], environment: environment)
        try await coordinator.waitForOutput("durable consumer")
        let subscriber = try EnnioProcess(["sub", "ennio.ci.secure.*", "--count", "1", "--json"], environment: environment)
        try await subscriber.waitForOutput("listening on ennio.ci.secure.*")
        let agent = try EnnioProcess(["agent", "--host", "secure-host", "--health-interval", "0.2"], environment: environment)
        try await agent.waitForOutput("running")

        // This one by flags rather than the environment.
        let published = try await EnnioProcess.run([
            "pub", "CiFailing", "--project", "secure", "--session", "s-1", "--message", "over TLS with a JWT",
            "--server", server.tlsURL, "--creds", creds, "--tlsca", certificates.caFile,
            "--tlscert", certificates.clientCertificate, "--tlskey", certificates.clientKey,
        ])
        #expect(published.status == 0, "\(published.output)")
        #expect(published.output.contains("stored as ENNIO_EVENTS"), "\(published.output)")

        #expect(try await subscriber.finish() == 0)
        let received = try subscriber.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try Event(json: String($0)) }
        #expect(received.map(\.message) == ["over TLS with a JWT"])
        try await eventually("the event in the history") {
            try await EnnioProcess.run(["history", "--project", "secure", "--json"], environment: environment)
                .output.contains("over TLS with a JWT")
        }
        try await eventually("the agent's node in the table") {
            try await EnnioProcess.run(["nodes"], environment: environment).output.contains("secure-host")
        }
        #expect(try await agent.terminate() == 0)
        #expect(try await coordinator.terminate() == 0)
    }

    @Test func generatedKeysMakeAnNKeyUserAndAPasswordNeverShowsInTheProcessList() async throws {
        let generated = try await EnnioProcess.run(["keys", "generate", "--kind", "user"])
        #expect(generated.status == 0)
        let lines = generated.output.split(separator: "\n").map(String.init)
        let seed = try #require(lines.first)
        let key = try NKey(seed: seed)
        #expect(lines.count == 2 && lines[1] == key.publicKey)
        let seedFile = try TestJWT.writeSecretFile(generated.output, suffix: ".nk")

        var configuration = ServerConfiguration()
        configuration.users = [.nkey(key.publicKey), .password(user: "alice", password: "hunter2-secret")]
        let server = try TestServer(configuration: configuration)
        let published = try await EnnioProcess.run(["pub", "CiPassing", "--project", "p", "--session", "s", "--message", "m", "--mode", "core", "--nkey", seedFile, "--server", server.url])
        #expect(published.status == 0, "\(published.output)")
        let refused = try await EnnioProcess.run(["pub", "CiPassing", "--project", "p", "--session", "s", "--message", "m", "--mode", "core", "--server", server.url])
        #expect(refused.status == 1)

        let subscriber = try EnnioProcess(["sub", "ennio.>", "--user", "alice", "--password", "hunter2-secret", "--server", server.url])
        try await subscriber.waitForOutput("listening on ennio.>")
        let commandLine = try String(contentsOfFile: "/proc/\(subscriber.process.pid)/cmdline", encoding: .utf8)
        #expect(commandLine.contains("alice"))
        #expect(!commandLine.contains("hunter2"), "\(commandLine)")
        #expect(!subscriber.output.contains("hunter2"))
        _ = try await subscriber.terminate()  // sub ends with the signal

        // In a URL too; and errors print URLs without their password.
        let url = "nats://alice:hunter2-secret@127.0.0.1:\(server.port)"
        let inURL = try EnnioProcess(["sub", "ennio.>", "--server", url])
        try await inURL.waitForOutput("listening on ennio.>")
        #expect(!(try String(contentsOfFile: "/proc/\(inURL.process.pid)/cmdline", encoding: .utf8)).contains("hunter2"))
        _ = try await inURL.terminate()
        let wrong = try await EnnioProcess.run(["sessions", "--server", "nats://alice:hunter2-wrong@127.0.0.1:\(server.port)"])
        #expect(wrong.status == 1)
        #expect(!wrong.output.contains("hunter2"), "\(wrong.output)")
    }

    @Test(arguments: [
        (["keys"], "generate"),
        (["keys", "generate"], "--kind is required"),
        (["keys", "generate", "--kind", "wizard"], "--kind must be"),
        (["sub", "ennio.>", "--creds", "a.creds", "--nkey", "b.nk"], "--creds and --nkey"),
        (["sessions", "--tlscert", "client.pem"], "--tlscert and --tlskey go together"),
        (["pub", "CiFailing", "--project", "p", "--tlsfirst=yes"], "--tlsfirst takes no value"),
    ] as [([String], String)])
    func badSecurityArgumentsExitWithTwo(arguments: [String], message: String) async throws {
        let result = try await EnnioProcess.run(arguments)
        #expect(result.status == 2, "ennio \(arguments) → \(result.status): \(result.output)")
        #expect(result.output.contains(message), "ennio \(arguments) printed: \(result.output)")
    }

    @Test func tlsFirstFromTheCommandLine() async throws {
        let certificates = try TestCertificates.shared()
        var configuration = ServerConfiguration()
        configuration.tls = .standard(certificates, handshakeFirst: true)
        let server = try TestServer(configuration: configuration)
        // Connected and asked: no coordinator answers, which only a secured connection can tell.
        let asked = try await EnnioProcess.run(["sessions", "--server", server.tlsURL, "--tlsca", certificates.caFile, "--tlsfirst"])
        #expect(asked.status == 1)
        #expect(asked.output.contains("no coordinator is running"), "\(asked.output)")
        let untrusted = try await EnnioProcess.run(["sessions", "--server", server.tlsURL, "--tlsfirst"])
        #expect(untrusted.status == 1)
        #expect(untrusted.output.contains("tlsCertificateNotTrusted"), "\(untrusted.output)")
    }

    @Test func keysHasHelpAndTheTopLevelHelpNamesTheSecurityOptions() async throws {
        let keys = try await EnnioProcess.run(["keys", "--help"])
        #expect(keys.status == 0)
        #expect(keys.output.contains("usage: ennio keys generate"))
        let help = try await EnnioProcess.run(["--help"])
        for option in ["--creds", "NATS_CREDS", "--nkey", "--tlsca", "NATS_CA", "--tlscert", "--tlskey", "--tlsfirst", "NATS_PASSWORD", "NATS_TOKEN"] {
            #expect(help.output.contains(option), "\(option)")
        }
    }
}
