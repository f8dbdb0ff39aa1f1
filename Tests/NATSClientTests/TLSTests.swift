import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// TLS against real nats-server processes, with certificates the tests make with `openssl`.
@Suite struct TLSTests {
    static func configuration(
        _ certificates: TestCertificates,
        certificate: String? = nil,
        key: String? = nil,
        verify: Bool = false,
        handshakeFirst: Bool = false
    ) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.tls = .standard(certificates, verify: verify, handshakeFirst: handshakeFirst)
        if let certificate, let key {
            configuration.tls?.certificateFile = certificate
            configuration.tls?.keyFile = key
        }
        return configuration
    }

    static func tlsServer(verify: Bool = false, handshakeFirst: Bool = false, port: Int? = nil) throws -> (TestServer, TestCertificates) {
        let certificates = try TestCertificates.shared()
        return (try TestServer(configuration: configuration(certificates, verify: verify, handshakeFirst: handshakeFirst), port: port), certificates)
    }

    static func trusting(_ certificates: TestCertificates) -> (inout NATSOptions) -> Void {
        { $0.tls.caFile = certificates.caFile }
    }

    /// Connects to `url` with `configure`d options and expects `code`, with `fragments` in the message.
    static func expectRefusal(
        _ code: NATSError.Code,
        url: String,
        mentioning fragments: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation,
        _ configure: (inout NATSOptions) -> Void
    ) async {
        var options = NATSOptions(servers: [url])
        options.connectTimeout = .seconds(5)
        configure(&options)
        do {
            let connection = try await NATSConnection.connect(options)
            await connection.close()
            Issue.record("connected; expected \(code)", sourceLocation: sourceLocation)
        } catch let error as NATSError {
            #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
            for fragment in fragments {
                #expect(error.message.contains(fragment), "\(fragment) not in \(error.message)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected NATSError \(code), got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func aPrivateCAMakesTheConnectionTrustedAndMessagesFlow() async throws {
        let (server, certificates) = try Self.tlsServer()
        let connection = try await NATSConnection.connect(NATSOptions(servers: [server.tlsURL]).with(Self.trusting(certificates)))
        #expect(connection.connectedServer?.description == server.tlsURL)
        #expect(connection.serverInfo?.tlsRequired == true)
        try await AuthTests.expectWorking(connection)
        // By name as well as by address: the certificate names both.
        let byName = try await NATSConnection.connect(NATSOptions(servers: ["tls://localhost:\(server.port)"]).with(Self.trusting(certificates)))
        try await AuthTests.expectWorking(byName)
    }

    @Test func aNatsURLIsSecuredWhenTheServerRequiresTLS() async throws {
        let (server, certificates) = try Self.tlsServer()
        let connection = try await NATSConnection.connect(to: server, configure: Self.trusting(certificates))
        #expect(connection.connectedServer?.usesTLS == true)
        try await AuthTests.expectWorking(connection)
    }

    @Test func largeMessagesBothWaysOverTLS() async throws {
        let (server, certificates) = try Self.tlsServer()
        let connection = try await NATSConnection.connect(to: server, configure: Self.trusting(certificates))
        let subscription = try connection.subscribe(to: "tls.big")
        try await connection.flush()
        let payloads = (0..<40).map { index in [UInt8]((0..<(100_000 + index * 997)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }) }
        for payload in payloads { try connection.publish(payload, to: "tls.big") }
        for index in 0..<20_000 { try connection.publish("small \(index)", to: "tls.big") }
        try await connection.flush()
        let received = try await subscription.take(payloads.count + 20_000)
        #expect(received.prefix(payloads.count).map(\.payload) == payloads)
        #expect(received.dropFirst(payloads.count).map(\.string) == (0..<20_000).map { "small \($0)" })
        await connection.close()
    }

    @Test func mutualTLSWithAClientCertificate() async throws {
        let (server, certificates) = try Self.tlsServer(verify: true)
        let connection = try await NATSConnection.connect(to: server) {
            $0.tls.caFile = certificates.caFile
            $0.tls.certificateFile = certificates.clientCertificate
            $0.tls.keyFile = certificates.clientKey
        }
        #expect(connection.serverInfo?.tlsVerify == true)
        try await AuthTests.expectWorking(connection)
    }

    @Test func mutualTLSWithoutAClientCertificateIsARefusedHandshake() async throws {
        let (server, certificates) = try Self.tlsServer(verify: true)
        await Self.expectRefusal(.tlsHandshakeFailed, url: server.tlsURL, mentioning: ["certificate"], Self.trusting(certificates))
    }

    @Test func tlsFirstBeforeTheServersINFO() async throws {
        let (server, certificates) = try Self.tlsServer(handshakeFirst: true)
        let connection = try await NATSConnection.connect(to: server) {
            $0.tls.caFile = certificates.caFile
            $0.tls.handshakeFirst = true
        }
        #expect(connection.connectedServer?.usesTLS == true)
        try await AuthTests.expectWorking(connection)
        // A client waiting for INFO gets nothing from such a server: a timeout, not a hang.
        await Self.expectRefusal(.timeout, url: server.tlsURL) {
            $0.tls.caFile = certificates.caFile
            $0.connectTimeout = .milliseconds(500)
        }
    }

    @Test func tlsFirstToAServerThatSendsINFOFirstFailsTheHandshake() async throws {
        let (server, certificates) = try Self.tlsServer()
        await Self.expectRefusal(.tlsHandshakeFailed, url: server.tlsURL, mentioning: ["handshake_first"]) {
            $0.tls.caFile = certificates.caFile
            $0.tls.handshakeFirst = true
        }
    }

    @Test func aServerThatRequiresTLSAndAClientToldNotToUseIt() async throws {
        let (server, _) = try Self.tlsServer()
        await Self.expectRefusal(.tlsRequiredByServer, url: server.url) { $0.tls.mode = .disabled }
    }

    @Test func tlsAskedOfAServerWithoutTLS() async throws {
        let server = try TestServer()
        await Self.expectRefusal(.tlsUnavailable, url: "tls://127.0.0.1:\(server.port)") { _ in }
        await Self.expectRefusal(.tlsUnavailable, url: server.url) { $0.tls.mode = .required }
    }

    @Test func aCertificateFromAnUntrustedAuthorityIsRefusedNamingItsSubject() async throws {
        let certificates = try TestCertificates.shared()
        let server = try TestServer(configuration: Self.configuration(certificates, certificate: certificates.untrustedCertificate, key: certificates.untrustedKey))
        await Self.expectRefusal(.tlsCertificateNotTrusted, url: server.tlsURL, mentioning: ["O=Somebody Else", "CN=localhost", "Untrusted Test CA"], Self.trusting(certificates))
        // Without a CA file the system's trust store decides, and it does not know the test CA either.
        let (trustedServer, _) = try Self.tlsServer()
        await Self.expectRefusal(.tlsCertificateNotTrusted, url: trustedServer.tlsURL, mentioning: ["CN=localhost"]) { _ in }
        // Skipping verification, loudly named, connects anyway.
        let insecure = try await NATSConnection.connect(NATSOptions(servers: [server.tlsURL]).with { $0.tls.dangerouslySkipCertificateVerification = true })
        try await AuthTests.expectWorking(insecure)
    }

    @Test func aCertificateForAnotherHostIsAHostnameMismatch() async throws {
        let certificates = try TestCertificates.shared()
        let server = try TestServer(configuration: Self.configuration(certificates, certificate: certificates.wrongNameCertificate, key: certificates.wrongNameKey))
        await Self.expectRefusal(.tlsHostnameMismatch, url: server.tlsURL, mentioning: ["wrong.example", "127.0.0.1"], Self.trusting(certificates))
        await Self.expectRefusal(.tlsHostnameMismatch, url: "tls://localhost:\(server.port)", mentioning: ["localhost"], Self.trusting(certificates))
        // The name the certificate does carry, given as the server name, is accepted.
        let named = try await NATSConnection.connect(NATSOptions(servers: [server.tlsURL]).with {
            $0.tls.caFile = certificates.caFile
            $0.tls.serverName = "wrong.example"
        })
        try await AuthTests.expectWorking(named)
    }

    @Test func unusableTLSFilesAreAConfigurationError() async throws {
        let (server, certificates) = try Self.tlsServer()
        await Self.expectRefusal(.invalidTLSConfiguration, url: server.tlsURL, mentioning: ["/nonexistent/ca.pem"]) { $0.tls.caFile = "/nonexistent/ca.pem" }
        await Self.expectRefusal(.invalidTLSConfiguration, url: server.tlsURL, mentioning: ["does not belong"]) {
            $0.tls.caFile = certificates.caFile
            $0.tls.certificateFile = certificates.clientCertificate
            $0.tls.keyFile = certificates.serverKey
        }
        await Self.expectRefusal(.invalidTLSConfiguration, url: server.tlsURL) {
            $0.tls.caFile = certificates.caFile
            $0.tls.certificateFile = certificates.clientCertificate
        }
    }

    @Test func reconnectsToARestartedTLSServer() async throws {
        let (server, certificates) = try Self.tlsServer()
        let port = server.port
        let client = try await NATSConnection.connect(NATSOptions(servers: [server.tlsURL]).with {
            $0.tls.caFile = certificates.caFile
            ReconnectTests.fastReconnect(&$0)
        })
        let events = EventWatcher(client)
        let subscription = try client.subscribe(to: "tls.restart")
        try await client.flush()
        server.kill()
        try await events.waitForDisconnect()
        try client.publish("sent while disconnected", to: "tls.restart")
        let (restarted, _) = try Self.tlsServer(port: port)
        #expect(try await events.waitForReconnect() == restarted.tlsURL)
        try client.publish("sent after the reconnect", to: "tls.restart")
        try await client.flush()
        #expect(try await subscription.take(2).map(\.string) == ["sent while disconnected", "sent after the reconnect"])
        await client.close()
    }

    /// A cluster of TLS servers on loopback (routes in plain TCP), started node by node.
    struct TLSCluster {
        let certificates: TestCertificates
        let clientPorts: [Int]
        let routePorts: [Int]

        init(size: Int) throws {
            certificates = try TestCertificates.shared()
            clientPorts = try (0..<size).map { _ in try TestServer.freePort() }
            routePorts = try (0..<size).map { _ in try TestServer.freePort() }
        }

        func node(_ index: Int) throws -> TestServer {
            var configuration = TLSTests.configuration(certificates)
            configuration.cluster = .init(
                name: "ennio-tls", port: routePorts[index],
                routes: routePorts.enumerated().filter { $0.offset != index }.map { "nats://127.0.0.1:\($0.element)" }
            )
            return try TestServer(configuration: configuration, port: clientPorts[index])
        }
    }

    @Test func lameDuckModeMovesATLSClientToAnotherNode() async throws {
        let cluster = try TLSCluster(size: 2)
        let nodes = [try cluster.node(0), try cluster.node(1)]
        let client = try await NATSConnection.connect(NATSOptions(servers: [nodes[0].tlsURL]).with {
            $0.tls.caFile = cluster.certificates.caFile
            ReconnectTests.fastReconnect(&$0)
        })
        let events = EventWatcher(client)
        try await eventually("the second node to be announced") { client.knownServers.count == 2 }
        nodes[0].enterLameDuckMode()
        try await events.wait(for: "lame duck mode") { if case .lameDuckMode = $0 { return true } else { return false } }
        #expect(try await events.waitForReconnect() == nodes[1].tlsURL)
        try await AuthTests.expectWorking(client)
    }

    @Test func aTLSClusterAnnouncesItsNodesAndTheClientMovesOverTLS() async throws {
        let cluster = try TLSCluster(size: 3)
        let (certificates, clientPorts) = (cluster.certificates, cluster.clientPorts)
        func node(_ index: Int) throws -> TestServer { try cluster.node(index) }
        // All nodes first: their ports were picked free, and the sooner they are taken the
        // smaller the window for another test's server to take one. The client names one.
        let first = try node(0)
        let others = [try node(1), try node(2)]
        let client = try await NATSConnection.connect(NATSOptions(servers: ["tls://localhost:\(first.port)"]).with {
            $0.tls.caFile = certificates.caFile
            ReconnectTests.fastReconnect(&$0)
        })
        let events = EventWatcher(client)
        // The seed is localhost; the nodes announce themselves by address (the seed's own too).
        try await eventually("the other two nodes to be announced") { Set(client.knownServers.map(\.port)) == Set(clientPorts) }
        #expect(client.knownServers.allSatisfy { $0.usesTLS })

        let observer = try await NATSConnection.connect(NATSOptions(servers: [others[1].tlsURL]).with(Self.trusting(certificates)))
        let received = try observer.subscribe(to: "tls-cluster.>")
        try await observer.flush()
        try await ClusterTests.waitForInterest(publisher: client, prefix: "tls-cluster", subscription: received)

        first.stop()
        let newServer = try await events.waitForReconnect()
        #expect(newServer.hasPrefix("tls://"))
        #expect(client.connectedServer?.port != first.port)
        try await ClusterTests.waitForInterest(publisher: client, prefix: "tls-cluster", subscription: received)
        for index in 0..<100 { try client.publish(String(index), to: "tls-cluster.data") }
        try await client.flush()
        #expect(try await ClusterTests.takeData(100, from: received) == (0..<100).map(String.init))
        await client.close()
        await observer.close()
    }
}
