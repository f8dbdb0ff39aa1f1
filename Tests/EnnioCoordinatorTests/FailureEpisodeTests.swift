@testable import EnnioCoordinator
import Testing

/// A run of failures is told once at its start and once at its end, with what failed between.
@Suite struct FailureEpisodeTests {
    @Test func aRunOfFailuresStartsOnceAndEndsOnceWithItsCount() {
        var episode = FailureEpisode()
        let told = [
            episode.worked() == nil,   // nothing to end before any failure
            episode.failed(3),         // starts
            !episode.failed(2),
            !episode.failed(),
            episode.worked() == 6,     // ends, with all six
            episode.worked() == nil,
            episode.failed(),          // a failure after it worked starts a new episode
            episode.worked() == 1,
        ]
        #expect(told == Array(repeating: true, count: 8), "\(told)")
    }
}
