/// An object store's configuration (ADR-20): the stream `OBJ_<bucket>` on `$O.<bucket>.C.>`
/// (chunks) and `$O.<bucket>.M.>` (metadata).
public struct ObjectStoreConfig: Sendable, Hashable {
    /// `[a-zA-Z0-9_-]+`.
    public var bucket: String
    public var description: String?
    /// How long objects live; `nil`: for ever.
    public var ttl: Duration?
    /// The most bytes the bucket holds; `nil`: no limit.
    public var maxBytes: Int64?
    public var storage: StorageType = .file
    public var replicas: Int = 1
    /// Compress stored chunks (s2).
    public var compression = false
    public var metadata: [String: String]?

    public init(bucket: String, storage: StorageType = .file) {
        self.bucket = bucket
        self.storage = storage
    }

    func streamConfig() throws(ObjectStoreError) -> StreamConfig {
        guard KeyValueNames.isValidBucket(bucket) else {
            throw ObjectStoreError(.invalidBucketName, "invalid bucket name \(bucket.debugDescription): use letters, digits, _ and -")
        }
        var config = StreamConfig(name: ObjectStore.streamName(bucket), subjects: ["$O.\(bucket).C.>", "$O.\(bucket).M.>"], storage: storage)
        config.description = description
        config.maxAge = ttl.map(nanosecondsOf) ?? 0
        config.maxBytes = maxBytes ?? -1
        config.replicas = max(1, replicas)
        config.discard = "new"
        config.allowRollup = true
        config.allowDirect = true
        config.compression = compression ? "s2" : "none"
        config.metadata = metadata
        return config
    }
}

/// What an object store holds now (ADR-20 `ObjectStoreStatus`).
public struct ObjectStoreStatus: Sendable, Hashable {
    public var bucket: String
    public var streamInfo: StreamInfo
    public var description: String? { streamInfo.config.description }
    public var ttl: Duration? { streamInfo.config.maxAge > 0 ? .nanoseconds(streamInfo.config.maxAge) : nil }
    public var storage: StorageType { streamInfo.config.storage }
    public var replicas: Int { streamInfo.config.replicas }
    public var sealed: Bool { streamInfo.config.sealed ?? false }
    /// Bytes of every chunk and info stored.
    public var size: UInt64 { streamInfo.state.bytes }
    public var isCompressed: Bool { streamInfo.config.compression == "s2" }
    public var metadata: [String: String]? { streamInfo.config.metadata }
    public var backingStore: String { "JetStream" }
}
