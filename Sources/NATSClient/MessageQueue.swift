/// A first-in first-out queue: amortised O(1) at both ends, storage reused as it drains.
///
/// Elements are moved out, not copied: a slot is emptied as its element is taken, so taking
/// costs no reference counting and the slot keeps nothing alive.
struct MessageQueue<Element> {
    private var storage: [Element?] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }

    mutating func append(_ element: consuming Element) {
        storage.append(element)
    }

    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head].take()
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}
extension MessageQueue: Sendable where Element: Sendable {}
