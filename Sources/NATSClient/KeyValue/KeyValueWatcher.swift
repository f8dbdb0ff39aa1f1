/// What a watcher of a bucket delivers.
public enum KeyValueUpdate: Sendable, Hashable {
    case entry(KeyValueEntry)
    /// Every value that existed when the watch began has been delivered; updates follow.
    /// Sent once, also when there was nothing to deliver.
    case initialValuesDone
}

/// How a watcher reads a bucket.
public struct KeyValueWatchOptions: Sendable, Hashable {
    /// Every entry the bucket keeps, not only the latest per key.
    public var includeHistory = false
    /// Leave out deletions and purges.
    public var ignoreDeletes = false
    /// Entries without their values.
    public var metadataOnly = false
    /// Only changes made from now on: ``KeyValueUpdate/initialValuesDone`` comes first.
    public var updatesOnly = false

    public init(includeHistory: Bool = false, ignoreDeletes: Bool = false, metadataOnly: Bool = false, updatesOnly: Bool = false) {
        self.includeHistory = includeHistory
        self.ignoreDeletes = ignoreDeletes
        self.metadataOnly = metadataOnly
        self.updatesOnly = updatesOnly
    }
}

/// A bucket's current values, then every change, as they happen (ADR-8 watch): an
/// ``OrderedConsumer`` on the keys' subjects, so nothing is missed or repeated even when the
/// consumer underneath is lost.
///
/// Iterate once, from one task; the watch ends with the calling task's cancellation, with
/// ``stop()`` or when the connection closes.
public struct KeyValueWatcher: AsyncSequence, Sendable {
    public typealias Element = KeyValueUpdate
    public typealias Failure = any Error

    let keyValue: KeyValue
    let consumer: OrderedConsumer
    let options: KeyValueWatchOptions

    /// Ends the watch and deletes its consumer.
    public func stop() { consumer.stop() }

    public func makeAsyncIterator() -> Iterator {
        Iterator(watcher: self, cursor: WatchCursor(consumer: consumer, updatesOnly: options.updatesOnly))
    }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let watcher: KeyValueWatcher
        var cursor: WatchCursor

        public mutating func next() async throws -> KeyValueUpdate? {
            while let step = try await cursor.next() {
                guard case .message(let message) = step else { return .initialValuesDone }
                guard let entry = watcher.keyValue.entry(message) else { continue }
                if watcher.options.ignoreDeletes, entry.operation != .put { continue }
                return .entry(entry)
            }
            return nil
        }
    }
}

extension KeyValue {
    /// Watches keys matching `patterns` (`*` for a token, `>` at the end for the rest; the
    /// whole bucket by default): first the current values (with `includeHistory` every kept
    /// entry), then ``KeyValueUpdate/initialValuesDone``, then every change.
    /// - Throws: ``KeyValueError`` `.invalidKey` for a bad pattern, ``JetStreamError``.
    public func watch(_ patterns: [String] = [">"], options: KeyValueWatchOptions = KeyValueWatchOptions()) async throws -> KeyValueWatcher {
        for pattern in patterns where !KeyValueNames.isValidPattern(pattern) {
            throw KeyValueError(.invalidKey, "invalid key pattern \(pattern.debugDescription)")
        }
        var config = OrderedConsumerConfig(filterSubjects: patterns.map { subjectPrefix + $0 }, headersOnly: options.metadataOnly)
        config.deliverPolicy = options.updatesOnly ? .new : options.includeHistory ? .all : .lastPerSubject
        let consumer = try await jetStream.orderedConsumer(stream: streamName, config: config)
        return KeyValueWatcher(keyValue: self, consumer: consumer, options: options)
    }
}
