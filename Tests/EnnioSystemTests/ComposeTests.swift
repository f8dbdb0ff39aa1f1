import Testing

/// `docker-compose.yml` is a valid Compose file: `scripts/check-compose.sh` runs
/// `docker-compose config -q`, which needs no Docker engine (it installs Debian's docker-compose
/// package first when it is missing and we are root).
@Suite struct ComposeTests {
    static var canCheck: Bool { RepositoryScript.isOnPath("docker-compose") || RepositoryScript.isRoot }

    @Test(.enabled(if: ComposeTests.canCheck, "needs docker-compose installed (or root, to install it)"))
    func composeFileIsValid() async throws {
        let outcome = try await RepositoryScript("scripts/check-compose.sh").run(limit: .seconds(600))
        #expect(outcome.status == 0, "scripts/check-compose.sh exited with status \(outcome.status):\n\(outcome.output)")
    }
}
