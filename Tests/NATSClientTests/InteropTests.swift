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
