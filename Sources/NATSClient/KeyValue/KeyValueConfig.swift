/// A Key-Value bucket's configuration (ADR-8): the stream `KV_<bucket>` on `$KV.<bucket>.>`.
public struct KeyValueConfig: Sendable, Hashable {
    /// `[a-zA-Z0-9_-]+`.
    public var bucket: String
    public var description: String?
    /// Values kept per key, the latest included: 1 to 64.
    public var history: Int = 1
    /// How long a value lives; `nil`: for ever.
    public var ttl: Duration?
    /// The largest value accepted, in bytes; `nil`: the server's limit.
    public var maxValueSize: Int32?
    /// The most bytes the bucket holds; `nil`: no limit. When full, puts are refused.
    public var maxBytes: Int64?
    public var storage: StorageType = .file
    public var replicas: Int = 1
    /// Compress stored values (s2).
    public var compression = false
    /// Allow per-key TTLs on `create` and `purge` (the stream's `allow_msg_ttl`; nats-server
    /// 2.11 and later).
    public var allowsPerKeyTTL = false
    /// Keep a marker for this long when a key ages out (by `ttl` or a per-key TTL), so that
    /// watchers see the removal; at least a second. Implies ``allowsPerKeyTTL``.
    public var limitMarkerTTL: Duration?
    public var metadata: [String: String]?

    public init(bucket: String, history: Int = 1, ttl: Duration? = nil, storage: StorageType = .file) {
        self.bucket = bucket
        self.history = history
        self.ttl = ttl
        self.storage = storage
    }

    /// The stream that holds the bucket.
    func streamConfig() throws(KeyValueError) -> StreamConfig {
        guard KeyValueNames.isValidBucket(bucket) else {
            throw KeyValueError(.invalidBucketName, "invalid bucket name \(bucket.debugDescription): use letters, digits, _ and -")
        }
        guard (1...64).contains(history) else {
            throw KeyValueError(.invalidConfiguration, "a bucket keeps 1 to 64 values per key, not \(history)")
        }
        if let limitMarkerTTL, limitMarkerTTL < .seconds(1) {
            throw KeyValueError(.invalidConfiguration, "limit markers must live at least a second, not \(limitMarkerTTL)")
        }
        if let ttl, ttl < .zero { throw KeyValueError(.invalidConfiguration, "a negative TTL: \(ttl)") }
        var config = StreamConfig(name: KeyValue.streamName(bucket), subjects: ["$KV.\(bucket).>"], storage: storage)
        config.description = description
        config.maxMessagesPerSubject = Int64(history)
        config.maxBytes = maxBytes ?? -1
        config.maxMessageSize = maxValueSize ?? -1
        config.maxAge = ttl.map(nanosecondsOf) ?? 0
        if let ttl, ttl > .zero { config.duplicateWindow = nanosecondsOf(Swift.min(ttl, .seconds(120))) }
        config.replicas = Swift.max(1, replicas)
        config.discard = "new"
        config.allowRollup = true
        config.denyDelete = true
        config.allowDirect = true
        config.compression = compression ? "s2" : "none"
        if allowsPerKeyTTL || limitMarkerTTL != nil { config.allowMessageTTL = true }
        config.subjectDeleteMarkerTTL = limitMarkerTTL.map(nanosecondsOf)
        config.metadata = metadata
        return config
    }

    /// The configuration a bucket's stream expresses.
    init(bucket: String, stream config: StreamConfig) {
        self.init(bucket: bucket)
        description = config.description
        history = Int(config.maxMessagesPerSubject ?? 1)
        ttl = config.maxAge > 0 ? .nanoseconds(config.maxAge) : nil
        maxValueSize = config.maxMessageSize.flatMap { $0 < 0 ? nil : $0 }
        maxBytes = config.maxBytes < 0 ? nil : config.maxBytes
        storage = config.storage
        replicas = config.replicas
        compression = config.compression == "s2"
        allowsPerKeyTTL = config.allowMessageTTL ?? false
        limitMarkerTTL = config.subjectDeleteMarkerTTL.flatMap { $0 > 0 ? .nanoseconds($0) : nil }
        metadata = config.metadata
    }
}

/// What a bucket holds now (ADR-8 `Status`).
public struct KeyValueStatus: Sendable, Hashable {
    public var bucket: String
    /// Stored values, history included.
    public var values: UInt64
    public var bytes: UInt64
    public var config: KeyValueConfig
    /// The stream underneath, for anything else.
    public var streamInfo: StreamInfo
    /// Where the bucket lives.
    public var backingStore: String { "JetStream" }
    public var history: Int { config.history }
    public var ttl: Duration? { config.ttl }
    public var limitMarkerTTL: Duration? { config.limitMarkerTTL }
    public var isCompressed: Bool { config.compression }
}
