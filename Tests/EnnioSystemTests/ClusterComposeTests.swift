import Foundation
@testable import NATSTestSupport
import Testing

/// `docker-compose.cluster.yml` is a valid Compose file (`docker-compose config -q`) that deploys
/// three NATS servers clustered with JetStream and two coordinators on an R3 stream, with command
/// lines the real nats-server and ennio accept (`scripts/check-compose-cluster.sh`). The check is
/// shown to fail for each way the file could drift.
@Suite struct ClusterComposeTests {
    static var canCheck: Bool { RepositoryScript.isOnPath("docker-compose") || RepositoryScript.isRoot }

    /// Runs the check on `text` as the cluster's compose file (the repository's when `nil`).
    static func check(_ text: String? = nil) async throws -> RepositoryScript.Outcome {
        var environment = ["ENNIO_BIN": RepositoryScript.ennioBinary(), "NATS_SERVER_BIN": try TestServer.binaryPath()]
        let copy = try TemporaryDirectory("ennio-compose-cluster")
        if let text {
            let path = copy.path + "/docker-compose.cluster.yml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            environment["CLUSTER_COMPOSE_FILE"] = path
        }
        let outcome = try await RepositoryScript("scripts/check-compose-cluster.sh").run(environment: environment, limit: .seconds(600))
        withExtendedLifetime(copy) {}
        return outcome
    }

    @Test(.enabled(if: ClusterComposeTests.canCheck, "needs docker-compose installed (or root, to install it)"))
    func theClusterComposeFileIsValidAndItsCommandLinesAreOnesTheProgramsAccept() async throws {
        let outcome = try await Self.check()
        #expect(outcome.status == 0, "scripts/check-compose-cluster.sh exited with status \(outcome.status):\n\(outcome.output)")
        #expect(outcome.output.contains("PASS: "), "\(outcome.output)")
    }

    /// Ways to drift: (what, replaced, by, what the check says). Each replaces the first match.
    static let drifts: [(String, String, String, String)] = [
        ("one copy of each event", #""--replicas", "3""#, #""--replicas", "1""#, "not 3"),
        ("two coordinators on one consumer", #""--name", "c2""#, #""--name", "c1""#, "no --name of its own"),
        ("core NATS", #""--mode", "jetstream""#, #""--mode", "auto""#, "without --mode jetstream"),
        ("a flag ennio does not have", #""--db", "/data"#, #""--database", "/data"#, "ennio rejects"),
        ("a flag nats-server does not have", #""-sd", "/data""#, #""--storedir", "/data""#, "nats-server rejects"),
        ("a server left out of the cluster", #""--routes", "nats://nats-2:6222,nats://nats-3:6222""#, #""--routes", "nats://nats-2:6222""#, "not to the other two servers"),
        ("a coordinator that knows one server", #""nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"]"#, #""nats://nats-1:4222"]"#, "not the three servers"),
        ("a store off its volume", "      - nats-3-data:/data\n", "      - /srv/nats-3:/data\n", "on no named volume"),
    ]

    @Test(.enabled(if: ClusterComposeTests.canCheck, "needs docker-compose installed (or root, to install it)"), arguments: drifts.indices)
    func theCheckFailsWhenTheFileDrifts(_ index: Int) async throws {
        let (what, replaced, replacement, message) = Self.drifts[index]
        guard let root = repositoryRoot() else { throw TestSupportError(description: "no repository root") }
        let text = try String(contentsOfFile: root + "/docker-compose.cluster.yml", encoding: .utf8)
        let range = try #require(text.range(of: replaced), "\(what): \(replaced.debugDescription) is not in docker-compose.cluster.yml any more")
        let outcome = try await Self.check(text.replacingCharacters(in: range, with: replacement))
        #expect(outcome.status != 0, "\(what): the check passed:\n\(outcome.output)")
        #expect(outcome.output.contains(message), "\(what): \(outcome.output)")
    }
}
