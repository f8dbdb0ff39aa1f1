import NATSClient

extension KeyValue {
    /// What the bucket holds now, by key (deleted keys left out): read with a watch up to its
    /// initial-values marker.
    func currentValues() async throws -> [String: [UInt8]] {
        var options = KeyValueWatchOptions()
        options.ignoreDeletes = true
        let watcher = try await watch(options: options)
        defer { watcher.stop() }
        var values: [String: [UInt8]] = [:]
        for try await update in watcher {
            guard case .entry(let entry) = update else { break }
            values[entry.key] = entry.value
        }
        return values
    }
}
