import NATSClient
@testable import NATSTestSupport
import Testing

@Suite struct MaxPayloadTests {
    @Test func oversizedPublishFailsAndTheConnectionStaysUp() async throws {
        let config = try TestServer.writeConfig("max_payload: 1024\n")
        let server = try TestServer(arguments: ["-c", config])
        let connection = try await NATSConnection.connect(to: server)
        #expect(connection.maxPayload == 1024)
        let subscription = try connection.subscribe(to: "big")
        try await connection.flush()

        await expectNATSError(.maxPayloadExceeded) { try connection.publish([UInt8](repeating: 1, count: 1025), to: "big") }
        // Headers count towards the limit too.
        await expectNATSError(.maxPayloadExceeded) {
            try connection.publish([UInt8](repeating: 1, count: 1020), to: "big", headers: ["K": "v"])
        }
        try connection.publish([UInt8](repeating: 2, count: 1024), to: "big")
        try await connection.flush()
        let received = try await subscription.take(1)
        #expect(received.first?.payload.count == 1024)
        #expect(connection.status == .connected)
        #expect(connection.statistics.outMessages == 1)
        await connection.close()
    }
}
