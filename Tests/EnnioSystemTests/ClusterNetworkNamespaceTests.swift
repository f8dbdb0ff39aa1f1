import Foundation
@testable import NATSTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The event system on a JetStream cluster across separate network hosts:
/// `scripts/netns-cluster-test.sh` builds three server hosts (clustered, the stream R3), two
/// coordinator hosts, two agent hosts and a host asking queries out of network namespaces; under a
/// steady stream of events it kills the stream leader's server, then a coordinator, then starts
/// both again, and checks that every acknowledged event is in both histories exactly once, that
/// derived events are stored once and that queries were answered throughout. Needs root.
@Suite struct ClusterNetworkNamespaceTests {
    @Test(.enabled(if: getuid() == 0, "needs root to create network namespaces"))
    func aClusterLosesItsStreamLeaderAndACoordinatorWithoutLosingOrDoublingAnEvent() async throws {
        let ennio = RepositoryScript.ennioBinary()
        try #require(
            FileManager.default.isExecutableFile(atPath: ennio),
            "no ennio binary at \(ennio): build it (swift build --product ennio) or set ENNIO_BIN"
        )
        let outcome = try await RepositoryScript("scripts/netns-cluster-test.sh").run(
            environment: ["ENNIO_BIN": ennio, "NATS_SERVER_BIN": try TestServer.binaryPath()],
            limit: .seconds(900)
        )
        // Root without the right to create namespaces (an unprivileged container): nothing to test.
        if outcome.status == 0, let skip = outcome.lines.first(where: { $0.hasPrefix("SKIP:") }) {
            try Test.cancel(Comment(rawValue: String(skip)))
        }
        #expect(outcome.status == 0, "scripts/netns-cluster-test.sh exited with status \(outcome.status):\n\(outcome.output)")
        #expect(
            outcome.lines.contains { $0.hasPrefix("PASS: network namespace cluster test") },
            "scripts/netns-cluster-test.sh printed no final PASS line:\n\(outcome.output)"
        )
    }
}
