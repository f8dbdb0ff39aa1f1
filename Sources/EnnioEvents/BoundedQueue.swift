/// A first-in first-out ring buffer of fixed capacity that overwrites its oldest element.
struct BoundedQueue<Element> {
    private var storage: [Element?]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a bounded queue needs room for at least one element")
        storage = Array(repeating: nil, count: capacity)
    }

    var capacity: Int { storage.count }
    var isEmpty: Bool { count == 0 }

    /// Appends; when full, drops the oldest element and returns true.
    mutating func append(_ element: Element) -> Bool {
        let overwrote = count == capacity
        if overwrote {
            storage[head] = element
            head = (head + 1) % capacity
        } else {
            storage[(head + count) % capacity] = element
            count += 1
        }
        return overwrote
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil
        head = (head + 1) % capacity
        count -= 1
        return element
    }

    mutating func removeAll() {
        while popFirst() != nil {}
    }
}
