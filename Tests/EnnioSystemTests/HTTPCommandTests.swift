import Foundation
@testable import NATSTestSupport
import Testing

@Suite struct HTTPCommandTests {
    /// `ennio coordinator --http 127.0.0.1:0 --http-token FILE` as a user runs it: it says where
    /// it listens, refuses requests without the token, answers with it, and the token appears
    /// neither in what it prints nor on its command line.
    @Test func theCoordinatorServesItsHTTPAPIBehindATokenItNeverShows() async throws {
        let server = try TestServer()
        let directory = NSTemporaryDirectory() + "ennio-http-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokenFile = directory + "/token"
        let token = "tok-\(UUID().uuidString)"
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let coordinator = try EnnioProcess(
            ["coordinator", "--db", directory + "/history.sqlite", "--mode", "core", "--http", "127.0.0.1:0", "--http-token", tokenFile],
            environment: ["NATS_URL": server.url])
        try await coordinator.waitForOutput("subscribed to ennio.>")
        let line = try #require(coordinator.output.split(separator: "\n").first { $0.contains("HTTP API and dashboard on http://127.0.0.1:") })
        #expect(line.contains("(token required)"))
        let port = try #require(Int(line.split(separator: ":").last?.split(separator: "/").first ?? ""))

        #expect(try await HTTPTestClient(port: port).get("/api/sessions").status == 401)
        let sessions = try await HTTPTestClient(port: port).get("/api/sessions", headers: ["Authorization": "Bearer \(token)"])
        #expect(sessions.status == 200 && sessions.text == #"{"sessions":[],"count":0,"next":null}"#)
        #expect(try await HTTPTestClient(port: port).get("/").text.contains("<title>Ennio fleet</title>"))
        let commandLine = (try? String(contentsOfFile: "/proc/\(coordinator.process.pid)/cmdline", encoding: .utf8)) ?? ""
        #expect(!commandLine.contains(token))
        #expect(try await coordinator.terminate() == 0)
        #expect(!coordinator.output.contains(token), "the token is never printed")
    }
}
