import Foundation
@testable import NATSTestSupport
import Testing

/// `docker-compose.yml` is a valid Compose file (`docker-compose config -q`, which needs no
/// Docker engine) that deploys what issue 14 asks: JetStream on a named volume, TLS, a user of
/// its own for every service and the coordinator in `--mode jetstream`
/// (`scripts/check-compose.sh`, which installs Debian's docker-compose package first when it is
/// missing and we are root). The check is shown to fail for the file as it was before, and for
/// each way the file could drift back.
@Suite struct ComposeTests {
    static var canCheck: Bool { RepositoryScript.isOnPath("docker-compose") || RepositoryScript.isRoot }

    @Test(.enabled(if: ComposeTests.canCheck, "needs docker-compose installed (or root, to install it)"))
    func composeFileIsValidAndDeploysJetStreamTLSAndAUserPerService() async throws {
        let outcome = try await RepositoryScript("scripts/check-compose.sh").run(limit: .seconds(600))
        #expect(outcome.status == 0, "scripts/check-compose.sh exited with status \(outcome.status):\n\(outcome.output)")
        #expect(outcome.output.contains("PASS: "), "\(outcome.output)")
    }

    /// The compose file of before issue 14: no JetStream, no TLS, no users.
    static let before = """
        services:
          nats:
            image: nats:2.10
            ports:
              - "4222:4222"
          coordinator:
            build: .
            command: coordinator --db /data/ennio-events.sqlite --server nats://nats:4222
            volumes:
              - coordinator-data:/data
          agent-a:
            build: .
            command: agent --host agent-a --server nats://nats:4222
        volumes:
          coordinator-data:
        """

    /// Ways back: (what, file, replaced, by, what the check says).
    static let drifts: [(String, String, String, String, String)] = [
        ("the file of before", "docker-compose.yml", "", before, "does not run a configuration file"),
        ("no JetStream", "deploy/nats-server.conf", "jetstream {\n  store_dir: $ENNIO_NATS_STORE_DIR\n}", "", "no jetstream block"),
        ("JetStream off the volume", "docker-compose.yml", "      - nats-data:/data\n", "", "not a named volume"),
        ("no TLS", "deploy/nats-server.conf", "tls {", "tls_off {", "no tls block"),
        ("plain clients allowed", "deploy/nats-server.conf", "  timeout: 5\n}", "  timeout: 5\n}\nallow_non_tls: true", "allows clients without TLS"),
        ("no authorization", "deploy/nats-server.conf", "include \"auth.conf\"", "", "includes no authorization"),
        ("a default user", "deploy/nats-server.conf", "include \"auth.conf\"", "include \"auth.conf\"\nno_auth_user: reader", "defines users"),
        ("a silent downgrade", "docker-compose.yml", "--mode=jetstream\n      - --db", "--mode=auto\n      - --db", "without --mode=jetstream"),
        ("plain text", "docker-compose.yml", "--server=tls://nats:4222\n      - --tlsca=/run/ennio/ca.pem\n      - --nkey=/run/ennio/user.nk\n      - --inbox-prefix=_INBOX.coordinator",
         "--server=nats://nats:4222\n      - --tlsca=/run/ennio/ca.pem\n      - --nkey=/run/ennio/user.nk\n      - --inbox-prefix=_INBOX.coordinator", "coordinator does not connect with TLS"),
        ("another host's credentials", "docker-compose.yml", "./deploy/secrets/agent-host-a.nk", "./deploy/secrets/agent-host-b.nk", "runs the agent of host-a as agent-host-b"),
        ("a shared inbox", "docker-compose.yml", "--inbox-prefix=_INBOX.agent-host-b", "--inbox-prefix=_INBOX", "inbox prefix"),
    ]

    @Test(.enabled(if: ComposeTests.canCheck, "needs docker-compose installed (or root, to install it)"), arguments: drifts.indices)
    func theCheckFailsWhenTheFileDriftsBack(_ index: Int) async throws {
        let (what, file, replaced, replacement, message) = Self.drifts[index]
        guard let root = repositoryRoot() else { throw TestSupportError(description: "no repository root") }
        let copy = try TemporaryDirectory("ennio-compose")
        try FileManager.default.createDirectory(atPath: copy.path + "/deploy", withIntermediateDirectories: true)
        for name in ["docker-compose.yml", "deploy/nats-server.conf"] {
            try FileManager.default.copyItem(atPath: "\(root)/\(name)", toPath: "\(copy.path)/\(name)")
        }
        let path = "\(copy.path)/\(file)"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let changed = replaced.isEmpty ? replacement : text.replacingOccurrences(of: replaced, with: replacement)
        try #require(changed != text, "\(what): \(replaced.debugDescription) is not in \(file) any more")
        try changed.write(toFile: path, atomically: true, encoding: .utf8)

        let outcome = try await RepositoryScript("scripts/check-compose.sh").run(environment: ["COMPOSE_ROOT": copy.path], limit: .seconds(600))
        #expect(outcome.status != 0, "\(what): the check passed:\n\(outcome.output)")
        #expect(outcome.output.contains(message), "\(what): \(outcome.output)")
    }
}
