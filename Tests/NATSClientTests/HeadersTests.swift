import NATSClient
import NATSProtocol
@testable import NATSTestSupport
import Testing

@Suite struct HeadersTests {
    @Test func multiValuedHeadersRoundTrip() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "h")
        try await connection.flush()

        var headers: NATSHeaders = ["Tag": "a", "Tag": "b", "Nats-Msg-Id": "id-1"]
        headers.append("c", for: "Tag")
        try connection.publish(Array("body".utf8), to: "h", headers: headers)
        try connection.publish(Array("plain".utf8), to: "h")
        let received = try await subscription.take(2)

        #expect(received[0].headers?.values(for: "Tag") == ["a", "b", "c"])
        #expect(received[0].headers?["Nats-Msg-Id"] == "id-1")
        #expect(received[0].headers?.status == nil)
        #expect(received[0].string == "body")
        #expect(received[1].headers == nil)
        await connection.close()
    }

    @Test func headersWithEmptyPayload() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        let subscription = try connection.subscribe(to: "h.empty")
        try await connection.flush()
        try connection.publish([UInt8](), to: "h.empty", headers: ["Only": "header"])
        let received = try await subscription.take(1)
        #expect(received[0].payload.isEmpty)
        #expect(received[0].headers?["Only"] == "header")
        await connection.close()
    }

    @Test func invalidHeadersAreRejected() async throws {
        let server = try TestServer()
        let connection = try await NATSConnection.connect(to: server)
        await expectNATSError(.invalidHeaders) { try connection.publish("x", to: "h", headers: ["Bad Name": "v"]) }
        await expectNATSError(.invalidHeaders) { try connection.publish("x", to: "h", headers: ["Name": "a\r\nb"]) }
        try await connection.flush()
        await connection.close()
    }
}
