/// What a watcher of an object store delivers.
public enum ObjectStoreUpdate: Sendable, Hashable {
    /// An object was put, changed, linked or deleted (`info.deleted`).
    case info(ObjectInfo)
    /// Every object that existed when the watch began has been delivered; changes follow.
    case initialValuesDone
}

/// How a watcher reads an object store.
public struct ObjectStoreWatchOptions: Sendable, Hashable {
    /// Every info the bucket keeps, not only the latest per object (the bucket keeps one).
    public var includeHistory = false
    /// Leave out deleted objects.
    public var ignoreDeletes = false
    /// Only changes made from now on: ``ObjectStoreUpdate/initialValuesDone`` comes first.
    public var updatesOnly = false

    public init(includeHistory: Bool = false, ignoreDeletes: Bool = false, updatesOnly: Bool = false) {
        self.includeHistory = includeHistory
        self.ignoreDeletes = ignoreDeletes
        self.updatesOnly = updatesOnly
    }
}

/// The infos of a store's objects, then every change, as they happen: an ``OrderedConsumer``
/// on the info subjects. Iterate once, from one task.
public struct ObjectStoreWatcher: AsyncSequence, Sendable {
    public typealias Element = ObjectStoreUpdate
    public typealias Failure = any Error

    let consumer: OrderedConsumer
    let options: ObjectStoreWatchOptions

    /// Ends the watch and deletes its consumer.
    public func stop() { consumer.stop() }

    public func makeAsyncIterator() -> Iterator {
        Iterator(watcher: self, cursor: WatchCursor(consumer: consumer, updatesOnly: options.updatesOnly))
    }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let watcher: ObjectStoreWatcher
        var cursor: WatchCursor

        public mutating func next() async throws -> ObjectStoreUpdate? {
            while let step = try await cursor.next() {
                guard case .message(let message) = step else { return .initialValuesDone }
                let info = try ObjectStore.decodeInfo(message.payload, timestamp: message.metadata.timestamp)
                if watcher.options.ignoreDeletes, info.deleted { continue }
                return .info(info)
            }
            return nil
        }
    }
}

extension ObjectStore {
    /// Watches the store: first the info of every object, then
    /// ``ObjectStoreUpdate/initialValuesDone``, then every change.
    public func watch(_ options: ObjectStoreWatchOptions = ObjectStoreWatchOptions()) async throws -> ObjectStoreWatcher {
        var config = OrderedConsumerConfig(filterSubjects: [allMetaSubjects])
        config.deliverPolicy = options.updatesOnly ? .new : options.includeHistory ? .all : .lastPerSubject
        return ObjectStoreWatcher(consumer: try await jetStream.orderedConsumer(stream: streamName, config: config), options: options)
    }
}
