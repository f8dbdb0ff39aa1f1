import Foundation
@testable import NATSTestSupport

/// The `ennio` binary run as a user runs it: a child process whose output (stdout and stderr)
/// goes to a file the test reads.
final class EnnioProcess: Sendable {
    let process: ChildProcess
    let outputPath: String

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        outputPath = NSTemporaryDirectory() + "ennio-cli-\(UUID().uuidString).log"
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        process = try ChildProcess(
            executable: "/usr/bin/env",
            arguments: assignments + [RepositoryScript.ennioBinary()] + arguments,
            outputPath: outputPath)
    }

    deinit {
        process.stop(grace: .seconds(5))
        try? FileManager.default.removeItem(atPath: outputPath)
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to end (polling, without blocking a thread); throws if it runs
    /// longer than `limit`, which is only a safety net.
    func finish(within limit: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + limit
        while true {
            if let status = process.exitStatus() { return status }
            guard ContinuousClock.now < deadline else {
                process.stop(grace: .seconds(5))
                throw TestSupportError(description: "ennio did not finish within \(limit); it printed:\n\(output)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until the output contains `text`.
    func waitForOutput(_ text: String, within limit: Duration = .seconds(30)) async throws {
        try await eventually("ennio to print \(text.debugDescription); it printed:\n\(output)", within: limit) {
            if output.contains(text) { return true }
            if let status = process.exitStatus() {
                throw TestSupportError(description: "ennio exited (\(status)) before printing \(text.debugDescription):\n\(output)")
            }
            return false
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    func terminate() async throws -> Int32 {
        process.send(SIGTERM)
        return try await finish(within: .seconds(30))
    }

    /// Runs `ennio arguments…` to completion.
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let process = try EnnioProcess(arguments, environment: environment)
        let status = try await process.finish()
        return (status, process.output)
    }
}
