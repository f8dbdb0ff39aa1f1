import EnnioSync

/// The lines a ``LineReader`` thread reads, for a task to consume: an `AsyncSequence` with a
/// bounded queue between the two.
///
/// When the consumer falls behind (more than ``maximumQueuedLines`` lines or
/// ``maximumQueuedBytes`` bytes waiting), the reading thread waits for room, and so does
/// whoever writes into the pipe: nothing is dropped, and memory stays bounded. Once the consumer
/// is gone (its task cancelled, or the sequence ended), the reader stops at its next line.
public struct InputLines: AsyncSequence, Sendable {
    public typealias Element = InputLine
    public typealias Failure = Never

    /// The most lines waiting for the consumer.
    public static let maximumQueuedLines = 1024
    /// The most bytes of lines waiting for the consumer (one line is always let through, so a
    /// line of any length up to the reader's limit fits).
    public static let maximumQueuedBytes = 8 * 1024 * 1024

    let channel: Channel

    init(channel: Channel) {
        self.channel = channel
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(channel: channel)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let channel: Channel

        public mutating func next() async -> InputLine? {
            await channel.receive()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> InputLine? {
            await channel.receive()
        }
    }

    /// The queue: a reading thread sends (waiting while it is full), one task receives.
    final class Channel: @unchecked Sendable {
        private let lock = ConditionLock()
        // Guarded by `lock`.
        /// Lines from `head` on are waiting; those before it were taken (and let go of).
        private var queue: [InputLine?] = []
        private var head = 0
        private var queuedBytes = 0
        private var finished = false
        private var abandoned = false
        private var waiter: CheckedContinuation<InputLine?, Never>?

        /// Hands a line to the consumer, waiting while the queue is full; `false` once the
        /// consumer is gone (the reader should stop).
        func send(_ line: InputLine) -> Bool {
            let size = Self.size(of: line)
            lock.lock()
            while !abandoned, queue.count - head > 0,
                queue.count - head >= InputLines.maximumQueuedLines || queuedBytes + size > InputLines.maximumQueuedBytes
            {
                lock.wait()
            }
            guard !abandoned else {
                lock.unlock()
                return false
            }
            if let waiter {
                self.waiter = nil
                lock.unlock()
                waiter.resume(returning: line)
                return true
            }
            queue.append(line)
            queuedBytes += size
            lock.unlock()
            return true
        }

        /// The input ended: the consumer gets what is queued, then the end.
        func finish() {
            lock.lock()
            finished = true
            let waiter = self.waiter
            self.waiter = nil
            lock.unlock()
            waiter?.resume(returning: nil)
        }

        /// The next line, waiting for one; `nil` at the end or when the calling task is cancelled.
        func receive() async -> InputLine? {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<InputLine?, Never>) in
                    lock.lock()
                    if head < queue.count, let line = queue[head] {
                        queue[head] = nil
                        head += 1
                        queuedBytes -= Self.size(of: line)
                        if head == queue.count {
                            queue.removeAll(keepingCapacity: true)
                            head = 0
                        } else if head >= 256 {
                            // A queue that never empties does not grow: taken slots are dropped.
                            queue.removeFirst(head)
                            head = 0
                        }
                        lock.broadcast()
                        lock.unlock()
                        continuation.resume(returning: line)
                    } else if finished || abandoned || Task.isCancelled {
                        if Task.isCancelled { abandoned = true }
                        lock.broadcast()
                        lock.unlock()
                        continuation.resume(returning: nil)
                    } else {
                        waiter = continuation
                        lock.unlock()
                    }
                }
            } onCancel: {
                abandon()
            }
        }

        /// The consumer is gone: wake the reader so that it stops, and end a waiting receive.
        func abandon() {
            lock.lock()
            abandoned = true
            let waiter = self.waiter
            self.waiter = nil
            lock.broadcast()
            lock.unlock()
            waiter?.resume(returning: nil)
        }

        private static func size(of line: InputLine) -> Int {
            if case .line(let bytes) = line { return bytes.count }
            return 0
        }
    }
}
