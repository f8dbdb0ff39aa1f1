/// A small fixed table from names to values, looked up by the name's UTF-8 bytes, so that a
/// name read from JSON is matched without making a `String` of it or hashing one.
///
/// Meant for a handful of short names (keys, enum wire names): a lookup compares the key with
/// each name of the same length, first and last eight bytes as two words. Matching is byte for
/// byte; for names made only of ASCII letters, digits and `_` this is the same as `String`'s
/// `==`, since no other Unicode text is canonically equivalent to such a name.
struct ByteKeyedTable<Value: Sendable>: Sendable {
    private struct Entry: Sendable {
        /// The name's first and last eight bytes (overlapping if it is shorter than 16; zero
        /// padded if shorter than 8), as `Words` reads them.
        let words: Words
        /// Where the name's bytes start in `names`.
        let start: Int
        let value: Value
    }

    /// Every name's bytes, one after the other (for the middle of names longer than 16 bytes).
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
            let bytes = Array(pair.name.utf8)
            let words = bytes.withUnsafeBufferPointer { Words($0) }
            entries.append(Entry(words: words, start: names.count, value: pair.value))
            names.append(contentsOf: bytes)
            firstEntry[bytes.count + 1] = entries.count
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
        let words = Words(key)
        for candidate in candidates {
            let entry = entries[candidate]
            guard entry.words == words else { continue }
            if length <= 16 || middleMatches(key, entry.start) { return entry.value }
        }
        return nil
    }

    /// Whether the bytes of `key` between its first and last eight match the name at `start`.
    private func middleMatches(_ key: UnsafeBufferPointer<UInt8>, _ start: Int) -> Bool {
        names.withUnsafeBufferPointer { names in
            var index = 8
            while index < key.count &- 8 {
                if names[start &+ index] != key[index] { return false }
                index &+= 1
            }
            return true
        }
    }

    /// The first and last eight bytes of a name, in two words.
    private struct Words: Equatable, Sendable {
        let first: UInt64
        let last: UInt64

        @inline(__always)
        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            let count = bytes.count
            guard let base = bytes.baseAddress else {
                first = 0
                last = 0
                return
            }
            if count >= 8 {
                first = UnsafeRawPointer(base).loadUnaligned(as: UInt64.self)
                last = UnsafeRawPointer(base + (count &- 8)).loadUnaligned(as: UInt64.self)
            } else {
                var word: UInt64 = 0
                var index = count
                while index > 0 {
                    index &-= 1
                    word = word << 8 | UInt64(base[index])
                }
                first = word
                last = 0
            }
        }
    }
}
