import Foundation
@testable import NATSTestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One of the repository's shell scripts (`scripts/…`), run to completion with `bash` by a test:
/// its exit status and everything it printed (stdout and stderr, interleaved).
struct RepositoryScript {
    struct Outcome {
        let status: Int32
        let output: String

        var lines: [Substring] { output.split(separator: "\n") }
    }

    /// The script's path relative to the repository root, e.g. `scripts/netns-test.sh`.
    let path: String

    init(_ path: String) {
        self.path = path
    }

    /// Runs `bash <repo>/<path> arguments…` with `environment` added to this process's environment, and waits
    /// for it (polling every 100 ms). If it is still running after `limit` it is stopped (SIGTERM,
    /// which the scripts clean up after, then SIGKILL) and an error with its output is thrown.
    func run(_ arguments: [String] = [], environment: [String: String] = [:], limit: Duration) async throws -> Outcome {
        guard let root = repositoryRoot() else {
            throw TestSupportError(description: "cannot find the repository root (no Package.swift above \(#filePath))")
        }
        let script = root + "/" + path
        guard FileManager.default.fileExists(atPath: script) else {
            throw TestSupportError(description: "the script \(script) does not exist")
        }
        guard let env = ["/usr/bin/env", "/bin/env"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSupportError(description: "no env(1) to start bash with")
        }
        let outputPath = NSTemporaryDirectory() + "ennio-script-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        func output() -> String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

        // `env NAME=value … bash script`: ChildProcess passes this process's environment as it is.
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let process = try ChildProcess(executable: env, arguments: assignments + ["bash", script] + arguments, outputPath: outputPath)
        let deadline = ContinuousClock.now + limit
        do {
            while true {
                if let status = process.exitStatus() { return Outcome(status: status, output: output()) }
                guard ContinuousClock.now < deadline else {
                    process.stop(grace: .seconds(30))
                    throw TestSupportError(description: "\(path) did not finish within \(limit); it printed:\n\(output())")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        } catch {
            process.stop(grace: .seconds(30))
            throw error
        }
    }

    /// The `ennio` executable the tests run: `$ENNIO_BIN` if set, else `ennio` in the build
    /// products directory, the one holding the test bundle (`<products>/<package>PackageTests.xctest`).
    static func ennioBinary() -> String {
        if let path = ProcessInfo.processInfo.environment["ENNIO_BIN"], !path.isEmpty { return path }
        var candidates: [String] = []
        for executable in [URL(fileURLWithPath: CommandLine.arguments[0]), Bundle.main.executableURL].compactMap({ $0 }) {
            candidates.append(productsDirectory(of: executable.standardizedFileURL).appendingPathComponent("ennio").path)
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// The directory holding the `.xctest` bundle `executable` belongs to (on Linux the bundle is
    /// the executable itself), else the executable's own directory.
    private static func productsDirectory(of executable: URL) -> URL {
        var probe = executable
        while probe.path != "/", !probe.path.isEmpty {
            if probe.pathExtension == "xctest" { return probe.deletingLastPathComponent() }
            probe.deleteLastPathComponent()
        }
        return executable.deletingLastPathComponent()
    }

    /// Whether `name` is an executable file in one of the `PATH` directories.
    static func isOnPath(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Whether this process runs as root.
    static var isRoot: Bool { getuid() == 0 }
}
