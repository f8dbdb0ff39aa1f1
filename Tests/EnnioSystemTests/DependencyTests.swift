import Testing

/// The README's "Using the package from another package" works as written (issue 15, item 6):
/// `scripts/use-as-dependency.sh` makes a package from the README's manifest and program, which
/// depends on this one by path, and builds it against `NATSClient` (it compiles the client once,
/// in a folder of its own: about half a minute).
@Suite struct DependencyTests {
    @Test func anotherPackageBuildsAgainstTheClientByPath() async throws {
        let outcome = try await RepositoryScript("scripts/use-as-dependency.sh").run(limit: .seconds(900))
        #expect(outcome.status == 0, "scripts/use-as-dependency.sh exited with \(outcome.status):\n\(outcome.output)")
        #expect(outcome.output.contains("builds against NATSClient"))
    }
}
