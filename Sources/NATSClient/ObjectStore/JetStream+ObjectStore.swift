/// Object stores: making, finding and removing them (ADR-20 `ObjectStoreManager`).
extension JetStream {
    /// Creates an object store, or finds it when one with the same configuration exists.
    /// - Throws: ``ObjectStoreError`` `.bucketExists` (another configuration), `.invalidBucketName`.
    public func createObjectStore(_ config: ObjectStoreConfig) async throws -> ObjectStore {
        do {
            _ = try await createStream(try config.streamConfig())
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNameInUse {
            throw ObjectStoreError(.bucketExists, "object store \(config.bucket) exists with another configuration", underlying: error)
        }
        return ObjectStore(jetStream: self, bucket: config.bucket)
    }

    /// An existing object store.
    /// - Throws: ``ObjectStoreError`` `.bucketNotFound`, `.invalidBucketName`.
    public func objectStore(_ bucket: String) async throws -> ObjectStore {
        try Self.checkObjectStoreName(bucket)
        do {
            _ = try await streamInfo(ObjectStore.streamName(bucket))
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFound {
            throw ObjectStoreError(.bucketNotFound, "no object store \(bucket)", underlying: error)
        }
        return ObjectStore(jetStream: self, bucket: bucket)
    }

    /// Deletes an object store and every object in it.
    /// - Throws: ``ObjectStoreError`` `.bucketNotFound`, `.invalidBucketName`.
    public func deleteObjectStore(_ bucket: String) async throws {
        try Self.checkObjectStoreName(bucket)
        do {
            try await deleteStream(ObjectStore.streamName(bucket))
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFound {
            throw ObjectStoreError(.bucketNotFound, "no object store \(bucket)", underlying: error)
        }
    }

    /// The names of every object store.
    public func objectStoreNames() async throws -> [String] {
        try await streamNames().filter { $0.hasPrefix("OBJ_") }.map { String($0.dropFirst(4)) }
    }

    private static func checkObjectStoreName(_ bucket: String) throws(ObjectStoreError) {
        guard KeyValueNames.isValidBucket(bucket) else {
            throw ObjectStoreError(.invalidBucketName, "invalid object store name \(bucket.debugDescription): use letters, digits, _ and -")
        }
    }
}
