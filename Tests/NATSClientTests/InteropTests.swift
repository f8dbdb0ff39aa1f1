import Foundation
import NATSClient
import NATSProtocol
@testable import NATSTestSupport
import Testing

/// Our client against an independent implementation of the protocol: nats-py, through a
/// real nats-server.
@Suite struct InteropTests {
    struct PeerMessage: Decodable {
        let subject: String
        let reply: String?
        let headers: [String: [String]]?
        let payload_b64: String

        var payload: [UInt8] { Array(Data(base64Encoded: payload_b64) ?? Data()) }
    }

    static let binaryPayload: [UInt8] = Array(0...255) + Array("\r\nMSG fake 1 2\r\n".utf8) + [0, 0, 255]

    @Test func messagesFromSwiftReachNatsPyUnchanged() async throws {
        let server = try TestServer()
        let peer = try PythonPeer(arguments: ["sub", "--url", server.url, "--subject", "interop.>", "--count", "3"])
        defer { peer.terminate() }
        #expect(try peer.readLine(timeout: .seconds(30)) == "READY")

        let connection = try await NATSConnection.connect(to: server)
        try connection.publish(Self.binaryPayload, to: "interop.binary")
        try connection.publish(Array("with headers".utf8), to: "interop.headers", replyTo: "reply.here",
                               headers: ["Nats-Msg-Id": "abc-123", "X-Trace": "t 1"])
        try connection.publish([UInt8](), to: "interop.empty")
        try await connection.flush()

        var received: [PeerMessage] = []
        for _ in 0..<3 {
            let line = try #require(try peer.readLine(timeout: .seconds(30)))
            received.append(try JSONDecoder().decode(PeerMessage.self, from: Data(line.utf8)))
        }
        #expect(try peer.waitForExit(timeout: .seconds(30)) == 0)

        #expect(received.map(\.subject) == ["interop.binary", "interop.headers", "interop.empty"])
        #expect(received[0].payload == Self.binaryPayload)
        #expect(received[0].headers == nil)
        #expect(received[1].payload == Array("with headers".utf8))
        #expect(received[1].reply == "reply.here")
        #expect(received[1].headers == ["Nats-Msg-Id": ["abc-123"], "X-Trace": ["t 1"]])
        #expect(received[2].payload.isEmpty)
        await connection.close()
    }

    @Test func messagesFromNatsPyReachSwiftUnchanged() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "from-python.*")
        try await connection.flush()

        let payload = Array("héllo from nats-py \u{0}\u{1}".utf8)
        let publisher = try PythonPeer(arguments: [
            "pub", "--url", server.url, "--subject", "from-python.one",
            "--payload-b64", Data(payload).base64EncodedString(),
            "--header", "Nats-Msg-Id=py-1", "--header", "X-Kind=test value", "--reply", "py.reply",
        ])
        #expect(try publisher.waitForExit(timeout: .seconds(30)) == 0)
        let plain = try PythonPeer(arguments: [
            "pub", "--url", server.url, "--subject", "from-python.two",
            "--payload-b64", Data(Self.binaryPayload).base64EncodedString(),
        ])
        #expect(try plain.waitForExit(timeout: .seconds(30)) == 0)

        let messages = try await subscription.take(2)
        #expect(messages[0].subject == "from-python.one")
        #expect(messages[0].payload == payload)
        #expect(messages[0].replyTo == "py.reply")
        #expect(messages[0].headers?["Nats-Msg-Id"] == "py-1")
        #expect(messages[0].headers?["X-Kind"] == "test value")
        #expect(messages[1].subject == "from-python.two")
        #expect(messages[1].payload == Self.binaryPayload)
        #expect(messages[1].headers == nil)
        await connection.close()
    }

    @Test func swiftRequestsAreAnsweredByNatsPy() async throws {
        let server = try TestServer()
        let responder = try PythonPeer(arguments: ["reply", "--url", server.url, "--subject", "py.echo", "--count", "5"])
        defer { responder.terminate() }
        #expect(try responder.readLine(timeout: .seconds(30)) == "READY")
        let connection = try await NATSConnection.connect(to: server)
        for index in 0..<5 {
            let reply = try await connection.request("request \(index)", to: "py.echo", timeout: .seconds(20))
            #expect(reply.string == "echo:request \(index)")
        }
        #expect(try responder.waitForExit(timeout: .seconds(30)) == 0)
        await connection.close()
    }
}

/// nats-py and our client on one server with mutual TLS and JWT credentials, each with the
/// same certificates and a `.creds` file of its own user.
@Suite struct SecureInteropTests {
    @Test func natsPyAndSwiftExchangeMessagesOverMutualTLSWithCredentials() async throws {
        let certificates = try TestCertificates.shared()
        let chain = try CredentialsTests.Operator()
        var configuration = chain.configuration
        configuration.tls = .standard(certificates, verify: true)
        let server = try TestServer(configuration: configuration)
        let (_, swiftCreds) = try chain.user()
        let (_, pythonCreds) = try chain.user()
        let security = [
            "--tls-ca", certificates.caFile, "--tls-cert", certificates.clientCertificate,
            "--tls-key", certificates.clientKey, "--creds", pythonCreds,
        ]
        let connection = try await NATSConnection.connect(NATSOptions(servers: [server.tlsURL]).with {
            $0.credentials = .credentialsFile(swiftCreds)
            $0.tls.caFile = certificates.caFile
            $0.tls.certificateFile = certificates.clientCertificate
            $0.tls.keyFile = certificates.clientKey
        })

        // Swift → nats-py.
        let peer = try PythonPeer(arguments: ["sub", "--url", server.tlsURL, "--subject", "secure.to-python", "--count", "2"] + security)
        defer { peer.terminate() }
        #expect(try await peer.line(within: .seconds(30)) == "READY")
        try connection.publish(InteropTests.binaryPayload, to: "secure.to-python")
        try connection.publish("second", to: "secure.to-python", headers: ["X-Secure": "yes"])
        try await connection.flush()
        let first = try #require(try await peer.message(within: .seconds(30)))
        let second = try #require(try await peer.message(within: .seconds(30)))
        #expect(first.payload == InteropTests.binaryPayload)
        #expect(second.string == "second")
        #expect(second.headers == ["X-Secure": ["yes"]])
        #expect(try await peer.exitCode(within: .seconds(30)) == 0)

        // nats-py → Swift, and a request nats-py answers.
        let subscription = try connection.subscribe(to: "secure.to-swift")
        try await connection.flush()
        let publisher = try PythonPeer(arguments: ["pub", "--url", server.tlsURL, "--subject", "secure.to-swift", "--payload-b64", Data("from nats-py".utf8).base64EncodedString()] + security)
        #expect(try await publisher.exitCode(within: .seconds(30)) == 0, "\(publisher.standardError)")
        #expect(try await subscription.take(1).map(\.string) == ["from nats-py"])
        let responder = try PythonPeer(arguments: ["reply", "--url", server.tlsURL, "--subject", "secure.echo", "--count", "1"] + security)
        defer { responder.terminate() }
        #expect(try await responder.line(within: .seconds(30)) == "READY")
        #expect(try await connection.request("ping", to: "secure.echo", timeout: .seconds(20)).string == "echo:ping")
        await connection.close()
    }

    @Test func natsPyWithAnNKeySeedReachesSwift() async throws {
        let user = try NKey.generate(.user)
        let server = try CredentialsTests.nkeyServer([user])
        let seedFile = try TestJWT.writeSecretFile(user.seed + "\n", suffix: ".nk")
        let connection = try await NATSConnection.connect(to: server) { $0.credentials = .nkeySeedFile(seedFile) }
        let subscription = try connection.subscribe(to: "nkey.interop")
        try await connection.flush()
        let publisher = try PythonPeer(arguments: ["pub", "--url", server.url, "--subject", "nkey.interop", "--payload-b64", Data("signed".utf8).base64EncodedString(), "--nkey-seed", seedFile])
        #expect(try await publisher.exitCode(within: .seconds(30)) == 0, "\(publisher.standardError)")
        #expect(try await subscription.take(1).map(\.string) == ["signed"])
        await connection.close()
    }
}
