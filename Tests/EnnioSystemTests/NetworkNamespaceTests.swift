import Foundation
@testable import NATSTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The whole system across separate network hosts, deployed as `deploy/` deploys it (TLS, a
/// user per program with its role's permissions, JetStream in files): `scripts/netns-test.sh`
/// builds a switch (a Linux bridge) and three hosts (`srv` with nats-server and the coordinator,
/// `hosta` and `hostb` with an agent each) out of network namespaces, checks that the
/// coordinator sees both nodes and the events hosta relays; that hosta's credentials cannot
/// publish hostb's health check (and nothing of it reaches the history), that the reader cannot
/// send a command and the operator can; that a server killed and restarted on its file store
/// lost none of the events it had acknowledged; then cuts hostb's link and checks that hostb, and
/// only hostb, is marked disconnected. Creating namespaces needs root.
@Suite struct NetworkNamespaceTests {
    @Test(.enabled(if: getuid() == 0, "needs root to create network namespaces"))
    func aDeploymentAcrossABridgeKeepsItsRolesLosesNothingAndNoticesAHostVanish() async throws {
        let ennio = RepositoryScript.ennioBinary()
        try #require(
            FileManager.default.isExecutableFile(atPath: ennio),
            "no ennio binary at \(ennio): build it (swift build --product ennio) or set ENNIO_BIN"
        )
        let natsServer = try TestServer.binaryPath()

        let outcome = try await RepositoryScript("scripts/netns-test.sh").run(
            environment: ["ENNIO_BIN": ennio, "NATS_SERVER_BIN": natsServer],
            limit: .seconds(300)
        )

        // Root without the right to create namespaces (an unprivileged container): nothing to test.
        if outcome.status == 0, let skip = outcome.lines.first(where: { $0.hasPrefix("SKIP:") }) {
            try Test.cancel(Comment(rawValue: String(skip)))
        }
        guard outcome.status == 0 else {
            Issue.record("scripts/netns-test.sh exited with status \(outcome.status):\n\(outcome.output)")
            return
        }
        #expect(
            outcome.lines.contains { $0.hasPrefix("PASS: network namespace test") },
            "scripts/netns-test.sh printed no final PASS line:\n\(outcome.output)"
        )
    }
}
