import EnnioHTTP
import Foundation
@testable import NATSTestSupport
import Testing

/// A server on a free loopback port answering `/echo?x=` with x, `/stream` with a stream the
/// test feeds through `queue`, and 404 otherwise.
final class EchoServer: Sendable {
    let server: HTTPServer
    let queue = StreamQueue<[UInt8]>(capacity: 100)

    init(configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws {
        var configuration = HTTPServerConfiguration()
        configure(&configuration)
        let queue = self.queue
        server = try HTTPServer(configuration: configuration) { request in
            switch request.path {
            case "/echo":
                return .content(Array((request.queryValue("x") ?? "").utf8), type: "text/plain")
            case "/stream":
                return HTTPResponse(headers: ServerSentEvents.headers, body: .stream { output in
                    output.whenClosed { queue.close() }
                    while case .elements(let chunks) = queue.take(timeout: .seconds(30)) {
                        for chunk in chunks where !output.write(chunk) { return }
                    }
                })
            default:
                return HTTPServer.defaultErrorResponse(.notFound, "no such path \(request.path)")
            }
        }
        server.start()
    }

    var port: Int { server.port }

    deinit { server.stop() }
}

@Suite struct HTTPServerTests {
    @Test func requestsOnOneKeptAliveConnectionAndPipelined() async throws {
        let echo = try EchoServer()
        let client = try HTTPTestClient(port: echo.port)
        #expect(try await client.get("/echo?x=one").text == "one")
        let second = try await client.get("/echo?x=two%20words")
        #expect(second.text == "two words")
        #expect(second.header("Connection") == "keep-alive")
        client.send("GET /echo?x=a HTTP/1.1\r\nHost: h\r\n\r\nGET /echo?x=b HTTP/1.1\r\nHost: h\r\n\r\nHEAD /echo?x=ccc HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try await client.readResponse().text == "a")
        #expect(try await client.readResponse().text == "b")
        let head = try await client.readResponse(headOnly: true)
        #expect(head.header("Content-Length") == "3" && head.body.isEmpty)
        let missing = try await client.get("/nothing")
        #expect(missing.status == 404)
        #expect(missing.header("Content-Type") == "application/json")
        #expect(missing.text == #"{"error":{"code":404,"description":"no such path /nothing"}}"#)
        #expect(echo.server.statistics.requests == 6)
    }

    @Test func http10AndConnectionCloseEndTheConnectionAfterTheResponse() async throws {
        let echo = try EchoServer()
        let old = try HTTPTestClient(port: echo.port)
        old.send("GET /echo?x=1 HTTP/1.0\r\n\r\n")
        let response = try await old.readResponse()
        #expect(response.text == "1" && response.header("Connection") == "close")
        #expect(await old.waitForClose())
        let closing = try HTTPTestClient(port: echo.port)
        #expect(try await closing.get("/echo?x=2", headers: ["Connection": "close"]).text == "2")
        #expect(await closing.waitForClose())
    }

    @Test func aMalformedRequestGetsAJSONErrorAndTheConnectionCloses() async throws {
        let echo = try EchoServer()
        for (request, status) in [("GET /x HTTP/1.1\r\n\r\n", 400), ("GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505), ("NOT HTTP\r\n\r\n", 400)] {
            let client = try HTTPTestClient(port: echo.port)
            client.send(request)
            let response = try await client.readResponse()
            #expect(response.status == status)
            #expect(response.text.hasPrefix(#"{"error":{"code":\#(status),"description":"#))
            #expect(await client.waitForClose())
        }
        #expect(echo.server.statistics.malformed == 3)
    }

    /// A 1 MB header is refused with 431 once the head passes 16 KiB; the server reads and
    /// drops the rest, so the client still gets the answer.
    @Test func aMegabyteHeaderIsRefusedWith431() async throws {
        let echo = try EchoServer()
        let client = try HTTPTestClient(port: echo.port)
        let sender = Thread {
            client.send("GET /echo HTTP/1.1\r\nHost: h\r\nX-Huge: " + String(repeating: "x", count: 1 << 20) + "\r\n\r\n")
        }
        sender.start()
        let response = try await client.readResponse()
        #expect(response.status == 431)
        #expect(await client.waitForClose())
        #expect(try await HTTPTestClient(port: echo.port).get("/echo?x=still").text == "still")
    }

    /// Slowloris: a client that sends its headers a byte at a time is closed once its request
    /// timeout passes, while other clients are served.
    @Test func aClientTricklingItsHeadersIsCutOff() async throws {
        let echo = try EchoServer { $0.timeouts.request = .milliseconds(300) }
        let slow = try HTTPTestClient(port: echo.port)
        let stop = Flag()
        let trickle = Thread {
            for byte in Array("GET /echo HTTP/1.1\r\nHost: h\r\nX-Slow: ".utf8) + [UInt8](repeating: 0x61, count: 10_000) {
                guard !stop.isSet, slow.send([byte]) else { return }
                usleep(20_000)
            }
        }
        trickle.start()
        #expect(try await HTTPTestClient(port: echo.port).get("/echo?x=other").text == "other")
        #expect(await slow.waitForClose(within: .seconds(30)), "the slow client is closed")
        stop.set()
        #expect(echo.server.statistics.requestTimeouts >= 1)
    }

    /// At the limit, a new client takes the place of the connection idle longest; when none
    /// is idle it is answered 503.
    @Test func pastTheLimitIdleConnectionsMakeRoomOrNewClientsAreRefused() async throws {
        // Timeouts far beyond the test's length: on a loaded machine the check below may run
        // seconds late, and an idle client closed by its timeout would never make three.
        let echo = try EchoServer {
            $0.maximumConnections = 3
            $0.timeouts.request = .seconds(600)
            $0.timeouts.idle = .seconds(600)
        }
        let idle = try (0..<3).map { _ in try HTTPTestClient(port: echo.port) }
        try await eventually("three connections open") { echo.server.statistics.openConnections == 3 }
        #expect(try await HTTPTestClient(port: echo.port).get("/echo?x=in").text == "in")
        #expect(await idle[0].waitForClose(), "the oldest idle connection made room")
        #expect(echo.server.statistics.evicted >= 1)

        // One stream at a time: a client that has connected but not yet sent its request is
        // idle, and may rightly be the one that makes room for the next.
        var streams: [HTTPTestClient] = []
        for _ in 0..<3 {
            let stream = try HTTPTestClient(port: echo.port)
            stream.sendGet("/stream")
            #expect(try await stream.readResponse(headOnly: true).status == 200)
            streams.append(stream)
        }
        try await eventually("three streams open") { echo.server.statistics.openStreams == 3 }
        let refused = try HTTPTestClient(port: echo.port)
        let response = try await refused.readResponse()
        #expect(response.status == 503)
        #expect(response.header("Retry-After") == "1")
        #expect(echo.server.statistics.refused == 1)
    }

    @Test func aStreamDeliversWhatIsQueuedAndStoppingTheServerEndsIt() async throws {
        let echo = try EchoServer()
        let client = try HTTPTestClient(port: echo.port)
        client.sendGet("/stream")
        let head = try await client.readResponse(headOnly: true)
        #expect(head.header("Content-Type") == "text/event-stream; charset=utf-8")
        #expect(head.header("Connection") == "close")
        var message: [UInt8] = []
        ServerSentEvents.appendMessage(id: "7", event: "note", data: Array("hello\nworld".utf8), to: &message)
        echo.queue.offer([message])
        #expect(try await client.nextEvent() == .init(id: "7", event: "note", data: "hello\nworld"))
        echo.server.stop()
        #expect(await client.waitForClose())
        #expect(echo.server.statistics.openConnections == 0)
    }
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

import Synchronization
