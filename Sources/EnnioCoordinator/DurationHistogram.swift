/// Counts of durations in fixed buckets, with their sum: what a Prometheus histogram reports.
public struct DurationHistogram: Sendable, Hashable {
    /// The upper bounds of the buckets, ascending (each bucket counts durations up to it; the
    /// last, unbounded one is implied).
    public let bounds: [Duration]
    /// Per bound, how many durations were at most it (cumulative, as Prometheus has them).
    public private(set) var cumulativeCounts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var sum: Duration = .zero

    public init(bounds: [Duration]) {
        self.bounds = bounds
        cumulativeCounts = Array(repeating: 0, count: bounds.count)
    }

    /// SQLite batch times: 1 ms to 10 s.
    public static let storeBatches = DurationHistogram(bounds: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000].map { .milliseconds($0) })

    public mutating func record(_ duration: Duration) {
        count += 1
        sum += duration
        for (index, bound) in bounds.enumerated() where duration <= bound {
            cumulativeCounts[index] += 1
        }
    }
}
