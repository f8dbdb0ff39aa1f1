import NATSClient
import NATSProtocol
@testable import NATSTestSupport
import Testing

@Suite struct RequestReplyTests {
    /// Answers every request on `subject` with "echo:" + its payload, until the connection closes.
    static func startResponder(on connection: NATSConnection, subject: String) async throws -> Task<Void, Never> {
        let requests = try connection.subscribe(to: subject)
        try await connection.flush()
        return Task {
            for await request in requests {
                guard let reply = request.replyTo else { continue }
                try? connection.publish(Array("echo:".utf8) + request.payload, to: reply, headers: request.headers)
            }
        }
    }

    @Test func requestGetsTheReply() async throws {
        let server = try TestServer()
        let service = try await NATSConnection.connect(to: server)
        let responder = try await Self.startResponder(on: service, subject: "svc.echo")
        let client = try await NATSConnection.connect(to: server)

        let reply = try await client.request("ping", to: "svc.echo", timeout: .seconds(10))
        #expect(reply.string == "echo:ping")
        #expect(reply.subject.hasPrefix("_INBOX."))

        await client.close()
        await service.close()
        await responder.value
    }

    @Test func concurrentRequestsEachGetTheirOwnReply() async throws {
        let server = try TestServer()
        let service = try await NATSConnection.connect(to: server)
        let responder = try await Self.startResponder(on: service, subject: "svc.many")
        let client = try await NATSConnection.connect(to: server)

        let replies = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for index in 0..<100 {
                group.addTask { (index, try await client.request(String(index), to: "svc.many", timeout: .seconds(15)).string) }
            }
            return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
        }
        #expect(replies.count == 100)
        for (index, text) in replies { #expect(text == "echo:\(index)") }

        await client.close()
        await service.close()
        await responder.value
    }

    @Test func requestWithHeadersKeepsThem() async throws {
        let server = try TestServer()
        let service = try await NATSConnection.connect(to: server)
        let responder = try await Self.startResponder(on: service, subject: "svc.headers")
        let client = try await NATSConnection.connect(to: server)
        let reply = try await client.request(Array("x".utf8), to: "svc.headers", headers: ["Trace": "t-1"], timeout: .seconds(10))
        #expect(reply.headers?["Trace"] == "t-1")
        await client.close()
        await service.close()
        await responder.value
    }

    @Test func noRespondersIsATypedError() async throws {
        let server = try TestServer()
        let client = try await NATSConnection.connect(to: server)
        await expectNATSError(.noResponders) { try await client.request("anyone?", to: "nobody.home", timeout: .seconds(10)) }
        // The shared reply subscription still works afterwards.
        await expectNATSError(.noResponders) { try await client.request("again?", to: "nobody.home", timeout: .seconds(10)) }
        #expect(client.status == .connected)
        await client.close()
    }

    @Test func silentResponderTimesOut() async throws {
        let server = try TestServer()
        let client = try await NATSConnection.connect(to: server)
        let silent = try client.subscribe(to: "svc.silent")
        try await client.flush()
        await expectNATSError(.timeout) { try await client.request("hello?", to: "svc.silent", timeout: .milliseconds(200)) }
        #expect(silent.deliveredCount == 1)
        await client.close()
    }

    @Test func cancellingARequestEndsItWithoutWaitingForTheTimeout() async throws {
        let server = try TestServer()
        let client = try await NATSConnection.connect(to: server)
        _ = try client.subscribe(to: "svc.slow")
        try await client.flush()
        let request = Task { try await client.request("x", to: "svc.slow", timeout: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        request.cancel()
        let outcome = try await within(.seconds(20), "the cancelled request") { await request.result }
        #expect(throws: NATSError.self) { try outcome.get() }
        await client.close()
    }

    @Test func closingFailsPendingRequests() async throws {
        let server = try TestServer()
        let client = try await NATSConnection.connect(to: server)
        _ = try client.subscribe(to: "svc.never")
        try await client.flush()
        let request = Task { try await client.request("x", to: "svc.never", timeout: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        await client.close()
        let outcome = try await within(.seconds(20), "the failed request") { await request.result }
        #expect(throws: NATSError.self) { try outcome.get() }
    }
}
