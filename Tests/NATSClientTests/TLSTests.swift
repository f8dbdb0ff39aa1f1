import Foundation
import NATSClient
@testable import NATSTestSupport
import Testing

/// TLS against real nats-server processes, with certificates the tests make with `openssl`.
@Suite struct TLSTests {
    static func tlsServer(verify: Bool = false, handshakeFirst: Bool = false, port: Int? = nil) throws -> (TestServer, TestCertificates) {
        let certificates = try TestCertificates.shared()
        var configuration = ServerConfiguration()
        configuration.tls = .standard(certificates, verify: verify, handshakeFirst: handshakeFirst)
        return (try TestServer(configuration: configuration, port: port), certificates)
    }

    static func trusting(_ certificates: TestCertificates) -> (inout NATSOptions) -> Void {
        { $0.tls.caFile = certificates.caFile }
    }

    @Test func aPrivateCAMakesTheConnectionTrustedAndMessagesFlow() async throws {
        let (server, certificates) = try Self.tlsServer()
        let connection = try await NATSConnection.connect(NATSOptions(servers: [server.tlsURL]).with(Self.trusting(certificates)))
        #expect(connection.connectedServer?.description == server.tlsURL)
        #expect(connection.serverInfo?.tlsRequired == true)
        try await AuthTests.expectWorking(connection)
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
        try await connection.flush()
        let received = try await subscription.take(payloads.count)
        #expect(received.map(\.payload) == payloads)
        await connection.close()
    }
}
