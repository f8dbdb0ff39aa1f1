/// Key-Value buckets: making, finding, changing and removing them (ADR-8 `KeyValueManager`).
extension JetStream {
    /// Creates a bucket, or finds it when one with the same configuration exists.
    /// - Throws: ``KeyValueError`` `.bucketExists` (another configuration),
    ///   `.invalidBucketName`, `.invalidConfiguration`, `.perKeyTTLNotSupported`.
    public func createKeyValue(_ config: KeyValueConfig) async throws -> KeyValue {
        let stream = try await keyValueStream(config)
        do {
            _ = try await createStream(stream)
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNameInUse {
            throw KeyValueError(.bucketExists, "bucket \(config.bucket) exists with another configuration", underlying: error)
        }
        return KeyValue(jetStream: self, bucket: config.bucket)
    }

    /// Changes a bucket's configuration (what the server allows to change).
    /// - Throws: ``KeyValueError`` `.bucketNotFound`, …
    public func updateKeyValue(_ config: KeyValueConfig) async throws -> KeyValue {
        let stream = try await keyValueStream(config)
        do {
            _ = try await updateStream(stream)
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFound {
            throw KeyValueError(.bucketNotFound, "no bucket \(config.bucket)", underlying: error)
        }
        return KeyValue(jetStream: self, bucket: config.bucket)
    }

    /// Changes the bucket, or creates it when there is none.
    public func createOrUpdateKeyValue(_ config: KeyValueConfig) async throws -> KeyValue {
        do {
            return try await updateKeyValue(config)
        } catch let error as KeyValueError where error.code == .bucketNotFound {
            return try await createKeyValue(config)
        }
    }

    /// An existing bucket.
    /// - Throws: ``KeyValueError`` `.bucketNotFound` (also for a stream that is no bucket),
    ///   `.invalidBucketName`.
    public func keyValue(_ bucket: String) async throws -> KeyValue {
        try Self.checkBucketName(bucket)
        let info: StreamInfo
        do {
            info = try await streamInfo(KeyValue.streamName(bucket))
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFound {
            throw KeyValueError(.bucketNotFound, "no bucket \(bucket)", underlying: error)
        }
        guard (info.config.maxMessagesPerSubject ?? 0) >= 1, info.config.subjects.contains("$KV.\(bucket).>") else {
            throw KeyValueError(.bucketNotFound, "stream \(info.config.name) is not a Key-Value bucket")
        }
        return KeyValue(jetStream: self, bucket: bucket)
    }

    /// Deletes a bucket and everything in it.
    /// - Throws: ``KeyValueError`` `.bucketNotFound`, `.invalidBucketName`.
    public func deleteKeyValue(_ bucket: String) async throws {
        try Self.checkBucketName(bucket)
        do {
            try await deleteStream(KeyValue.streamName(bucket))
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFound {
            throw KeyValueError(.bucketNotFound, "no bucket \(bucket)", underlying: error)
        }
    }

    /// The names of every bucket.
    public func keyValueBucketNames() async throws -> [String] {
        try await streamNames().filter { $0.hasPrefix("KV_") }.map { String($0.dropFirst(3)) }
    }

    static func checkBucketName(_ bucket: String) throws(KeyValueError) {
        guard KeyValueNames.isValidBucket(bucket) else {
            throw KeyValueError(.invalidBucketName, "invalid bucket name \(bucket.debugDescription): use letters, digits, _ and -")
        }
    }

    /// The bucket's stream configuration, after checking that the server offers what it needs.
    private func keyValueStream(_ config: KeyValueConfig) async throws -> StreamConfig {
        let stream = try config.streamConfig()
        if stream.allowMessageTTL == true, (try await accountInfo().api?.level ?? 0) < 1 {
            throw KeyValueError(.perKeyTTLNotSupported, "per-key TTLs and limit markers need nats-server 2.11 or later (JetStream API level 1)")
        }
        return stream
    }
}
