/// A small fixed table from names to values, looked up by the name's UTF-8 bytes, so that a
/// name read from JSON is matched without making a `String` of it or hashing one.
///
/// Meant for a handful of short names (keys, enum wire names): a lookup compares the bytes of
/// each name of the right length. Matching is byte for byte; for names made only of ASCII
/// letters, digits and `_` this is the same as `String`'s `==`, since no other Unicode text is
/// canonically equivalent to such a name.
struct ByteKeyedTable<Value: Sendable>: Sendable {
    private struct Entry: Sendable {
        /// Where the name's bytes start in `names`.
        let start: Int
        let value: Value
    }

    /// Every name's bytes, one after the other.
    private let names: [UInt8]
    /// The entries whose name has `length` bytes are `entries[firstEntry[length]..<firstEntry[length + 1]]`.
    private let entries: [Entry]
    private let firstEntry: [Int]

    /// The table of `pairs`; the names must be distinct.
    init(_ pairs: [(name: String, value: Value)]) {
        let sorted = pairs.sorted { $0.name.utf8.count < $1.name.utf8.count }
        let longest = sorted.last?.name.utf8.count ?? 0
        var names: [UInt8] = []
        var entries: [Entry] = []
        var firstEntry = [Int](repeating: 0, count: longest + 2)
        for pair in sorted {
            entries.append(Entry(start: names.count, value: pair.value))
            names.append(contentsOf: pair.name.utf8)
            firstEntry[pair.name.utf8.count + 1] = entries.count
        }
        // Lengths no name has: an empty range starting where the previous length ended.
        for length in 1..<firstEntry.count {
            firstEntry[length] = max(firstEntry[length], firstEntry[length - 1])
        }
        self.names = names
        self.entries = entries
        self.firstEntry = firstEntry
    }

    /// The value whose name is exactly `key`'s bytes.
    @inline(__always)
    func value(for key: UnsafeBufferPointer<UInt8>) -> Value? {
        let length = key.count
        guard length &+ 1 < firstEntry.count else { return nil }
        let candidates = firstEntry[length]..<firstEntry[length &+ 1]
        if candidates.isEmpty { return nil }
        // An empty buffer may have no address; the one empty name, if any, matches it.
        guard let keyBytes = key.baseAddress else { return entries[candidates.lowerBound].value }
        return names.withUnsafeBufferPointer { names in
            let names = names.baseAddress.unsafelyUnwrapped
            for candidate in candidates {
                let entry = entries[candidate]
                if Self.equal(names + entry.start, keyBytes, count: length) {
                    return entry.value
                }
            }
            return nil
        }
    }

    @inline(__always)
    private static func equal(_ lhs: UnsafePointer<UInt8>, _ rhs: UnsafePointer<UInt8>, count: Int) -> Bool {
        var index = 0
        // Eight bytes at a time, then the rest one by one.
        while index &+ 8 <= count {
            let left = UnsafeRawPointer(lhs + index).loadUnaligned(as: UInt64.self)
            let right = UnsafeRawPointer(rhs + index).loadUnaligned(as: UInt64.self)
            if left != right { return false }
            index &+= 8
        }
        while index < count {
            if lhs[index] != rhs[index] { return false }
            index &+= 1
        }
        return true
    }
}
