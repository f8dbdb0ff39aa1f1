/// The entries of a reducer's table changed since its last commit, each with what it was
/// before (`nil`: absent): the rows to write with the batch, and what to put back if the
/// batch's transaction fails.
struct ChangedEntries<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private(set) var before: [Key: Value?] = [:]

    /// Keeps `value`, what `key` holds now, unless the key changed already since the last
    /// commit. Returns whether it was noted now (the first change).
    @discardableResult
    mutating func note(_ key: Key, was value: Value?) -> Bool {
        guard before.index(forKey: key) == nil else { return false }
        before[key] = .some(value)
        return true
    }

    /// Whether `key` changed since the last commit.
    func contains(_ key: Key) -> Bool {
        before.index(forKey: key) != nil
    }

    /// Whether `key` held a value at the last commit (so that its row exists).
    func existed(_ key: Key) -> Bool {
        if case .some(.some) = before[key] { true } else { false }
    }

    /// Forgets a key noted for a change that did not happen.
    mutating func forget(_ key: Key) {
        before.removeValue(forKey: key)
    }

    var keys: Dictionary<Key, Value?>.Keys { before.keys }
    var isEmpty: Bool { before.isEmpty }

    /// Puts back what every changed key held.
    func restore(_ table: inout [Key: Value]) {
        for (key, value) in before { table[key] = value }
    }

    /// Forgets every change (keeping the room of a batch's worth, not of a rebuild's).
    mutating func removeAll() {
        before.removeAll(keepingCapacity: before.count <= 4096)
    }
}
