import Foundation
import NATSProtocol

/// An object store (ADR-20): objects of any size in the stream `OBJ_<bucket>`, as chunks of
/// 128 KiB on `$O.<bucket>.C.<nuid>` and an info message on `$O.<bucket>.M.<base64url name>`
/// with the size, chunk count and SHA-256 digest, which `get` checks.
///
/// Large objects never sit whole in memory: `put` sends chunks with a bounded number of
/// acknowledgements outstanding, `get` reads them through an ordered consumer that pulls a
/// bounded number of chunks ahead of the reader.
public struct ObjectStore: Sendable {
    public let jetStream: JetStream
    public let bucket: String

    /// Bytes per chunk unless an object's meta says otherwise.
    public static let defaultChunkSize = 128 * 1024
    /// Chunks sent and not yet acknowledged, at most, during a `put`.
    static let chunksInFlight = 8
    /// Chunks asked for ahead of the reader, at most, during a `get`: 2 MiB of 128 KiB chunks.
    static let chunksAhead = 16

    static func streamName(_ bucket: String) -> String { "OBJ_\(bucket)" }

    /// `OBJ_<bucket>`.
    public var streamName: String { Self.streamName(bucket) }

    init(jetStream: JetStream, bucket: String) {
        self.jetStream = jetStream
        self.bucket = bucket
    }

    func chunkSubject(_ nuid: String) -> String { "$O.\(bucket).C.\(nuid)" }
    func metaSubject(_ name: String) -> String { "$O.\(bucket).M.\(Base64URL.encode(Array(name.utf8)))" }
    var allMetaSubjects: String { "$O.\(bucket).M.>" }

    // MARK: - Info

    /// The info of object `name`.
    /// - Throws: ``ObjectStoreError`` `.objectNotFound` (also when deleted, unless
    ///   `includingDeleted`), `.badMetadata`.
    public func info(_ name: String, includingDeleted: Bool = false) async throws -> ObjectInfo {
        guard let info = try await storedInfo(name), includingDeleted || !info.deleted else {
            throw ObjectStoreError(.objectNotFound, "no object \(name.debugDescription) in \(bucket)")
        }
        return info
    }

    /// The stored info of `name`, deleted or not; `nil` when there is none.
    func storedInfo(_ name: String) async throws -> ObjectInfo? {
        guard !name.isEmpty else { throw ObjectStoreError(.invalidName, "an object needs a name") }
        guard let stored = try await jetStream.lastMessage(stream: streamName, subject: metaSubject(name)) else { return nil }
        return try Self.decodeInfo(stored.payload, timestamp: stored.timestamp)
    }

    static func decodeInfo(_ payload: [UInt8], timestamp: Int64) throws -> ObjectInfo {
        do {
            var info = try JSONDecoder().decode(ObjectInfo.self, from: Data(payload))
            info.modified = Date(timeIntervalSince1970: Double(timestamp) / 1e9)
            return info
        } catch {
            throw ObjectStoreError(.badMetadata, "an object info that is not valid: \(String(decoding: payload.prefix(120), as: UTF8.self).debugDescription)")
        }
    }

    /// Publishes `info` as the object's only info message (a subject rollup) and waits for the
    /// stream; returns it with `modified` set to now.
    private func publishInfo(_ info: ObjectInfo) async throws -> ObjectInfo {
        let payload = try JSONEncoder().encode(info)
        _ = try await jetStream.publish(Array(payload), to: metaSubject(info.name), headers: [JetStream.Header.rollup: "sub"])
        var published = info
        published.modified = Date()
        return published
    }

    // MARK: - Putting

    /// Stores `data` as object `meta.name`, replacing any object of that name.
    @discardableResult
    public func put(_ meta: ObjectMeta, data: [UInt8]) async throws -> ObjectInfo {
        let chunkSize = meta.chunkSize ?? Self.defaultChunkSize
        var offset = 0
        return try await put(meta) {
            guard offset < data.count else { return nil }
            defer { offset += chunkSize }
            return Array(data[offset..<Swift.min(data.count, offset + chunkSize)])
        }
    }

    /// Stores `data` as object `name`.
    @discardableResult
    public func put(_ name: String, data: [UInt8]) async throws -> ObjectInfo {
        try await put(ObjectMeta(name: name), data: data)
    }

    /// Stores the file at `path` as object `meta.name`, reading it a chunk at a time.
    /// - Throws: ``ObjectStoreError`` `.fileError` when it cannot be read.
    @discardableResult
    public func put(_ meta: ObjectMeta, fileAt path: String) async throws -> ObjectInfo {
        let file = try await BlockingFile.open(reading: path)
        let chunkSize = meta.chunkSize ?? Self.defaultChunkSize
        return try await put(meta) {
            let chunk = try await file.read(upTo: chunkSize)
            return chunk.isEmpty ? nil : chunk
        }
    }

    /// Stores the byte chunks `source` yields (of any sizes) as object `meta.name`.
    @discardableResult
    public func put<Source: AsyncSequence & Sendable>(_ meta: ObjectMeta, from source: Source) async throws -> ObjectInfo
    where Source.Element == [UInt8] {
        let chunkSize = meta.chunkSize ?? Self.defaultChunkSize
        var iterator = source.makeAsyncIterator()
        var pending: [UInt8] = []
        var ended = false
        return try await put(meta) {
            while !ended, pending.count < chunkSize {
                guard let more = try await iterator.next() else {
                    ended = true
                    break
                }
                pending += more
            }
            guard !pending.isEmpty else { return nil }
            let chunk = Array(pending.prefix(chunkSize))
            pending.removeFirst(chunk.count)
            return chunk
        }
    }

    /// The common part of every `put`: `nextChunk` gives the chunks in order, `nil` at the end.
    private func put(_ meta: ObjectMeta, nextChunk: () async throws -> [UInt8]?) async throws -> ObjectInfo {
        guard !meta.name.isEmpty else { throw ObjectStoreError(.invalidName, "an object needs a name") }
        guard meta.link == nil else { throw ObjectStoreError(.linkNotAllowed, "put cannot store a link: use addLink or addBucketLink") }
        if let chunkSize = meta.chunkSize, chunkSize < 1 {
            throw ObjectStoreError(.invalidName, "a chunk size must be positive, not \(chunkSize)")
        }
        let existing = try await storedInfo(meta.name)
        let nuid = Nuid.next()
        let subject = chunkSubject(nuid)
        var digest = SHA256Digest()
        var size: UInt64 = 0
        var chunks: UInt32 = 0
        do {
            var window = try PublishWindow(jetStream: jetStream, maxPending: Self.chunksInFlight)
            while let chunk = try await nextChunk() {
                digest.update(chunk)
                try await window.publish(chunk, to: subject)
                size += UInt64(chunk.count)
                chunks += 1
            }
            try await window.finish()
        } catch {
            // Leave no orphaned chunks behind.
            _ = try? await jetStream.purgeStream(streamName, subject: subject)
            throw error
        }
        var stored = meta
        stored.chunkSize = meta.chunkSize ?? Self.defaultChunkSize
        let info = ObjectInfo(
            meta: stored, bucket: bucket, nuid: nuid, size: size, modified: Date(), chunks: chunks,
            digest: SHA256Digest.objectStoreForm(digest.finalize()), deleted: false
        )
        let published: ObjectInfo
        do {
            published = try await publishInfo(info)
        } catch {
            _ = try? await jetStream.purgeStream(streamName, subject: subject)
            throw error
        }
        if let existing, !existing.deleted, !existing.isLink {
            _ = try? await jetStream.purgeStream(streamName, subject: chunkSubject(existing.nuid))
        }
        return published
    }

    // MARK: - Getting

    /// Object `name`, its bytes as a sequence of chunks; the digest is checked when the last
    /// chunk has been read. A link to an object is followed.
    /// - Throws: ``ObjectStoreError`` `.objectNotFound`, `.linkIsBucket`; reading throws
    ///   `.digestMismatch` or `.incomplete`.
    public func get(_ name: String) async throws -> ObjectReader {
        let info = try await info(name)
        if let link = info.meta.link {
            guard let target = link.name else {
                throw ObjectStoreError(.linkIsBucket, "\(name.debugDescription) links to the whole bucket \(link.bucket)")
            }
            let store = link.bucket == bucket ? self : try await jetStream.objectStore(link.bucket)
            return try await store.get(target)
        }
        return try await ObjectReader.start(store: self, info: info)
    }

    /// Object `name`'s bytes, all in memory: for small objects.
    public func getBytes(_ name: String) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in try await get(name) { bytes += chunk }
        return bytes
    }

    /// Writes object `name` to the file at `path`, a chunk at a time. The file appears only
    /// once every byte is written and the digest matched; an existing file is replaced then.
    /// - Returns: the object's info.
    @discardableResult
    public func get(_ name: String, toFile path: String) async throws -> ObjectInfo {
        let reader = try await get(name)
        let partial = "\(path).\(Nuid.next()).partial"
        let file = try await BlockingFile.create(writing: partial)
        do {
            for try await chunk in reader { try await file.write(chunk) }
            try await file.close()
            guard rename(partial, path) == 0 else {
                throw ObjectStoreError(.fileError, "cannot move the object to \(path.debugDescription): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(partial)
            throw error
        }
        return reader.info
    }

    // MARK: - Deleting, listing, links

    /// Deletes object `name`: its chunks are purged, its info marked deleted. Deleting a
    /// deleted object does nothing.
    /// - Throws: ``ObjectStoreError`` `.objectNotFound` when there never was one.
    public func delete(_ name: String) async throws {
        var info = try await info(name, includingDeleted: true)
        guard !info.deleted else { return }
        let chunks = chunkSubject(info.nuid)
        info.deleted = true
        info.size = 0
        info.chunks = 0
        info.digest = nil
        _ = try await publishInfo(info)
        try await jetStream.purgeStream(streamName, subject: chunks)
    }

    /// The info of every object (without deleted ones unless `includingDeleted`).
    public func list(includingDeleted: Bool = false) async throws -> [ObjectInfo] {
        var objects: [ObjectInfo] = []
        for try await update in try await watch(ObjectStoreWatchOptions(ignoreDeletes: !includingDeleted)) {
            switch update {
            case .info(let info): objects.append(info)
            case .initialValuesDone: return objects
            }
        }
        return objects
    }

    /// Adds `name` as a link to `object` (of this or another bucket).
    /// - Throws: ``ObjectStoreError`` `.linkToDeleted`, `.linkToLink`, `.objectExists` when
    ///   `name` is an object that is not deleted.
    @discardableResult
    public func addLink(_ name: String, to object: ObjectInfo) async throws -> ObjectInfo {
        guard !object.deleted else { throw ObjectStoreError(.linkToDeleted, "\(object.name.debugDescription) is deleted") }
        guard !object.isLink else { throw ObjectStoreError(.linkToLink, "\(object.name.debugDescription) is itself a link") }
        return try await addLink(name, ObjectLink(bucket: object.bucket, name: object.name))
    }

    /// Adds `name` as a link to the whole bucket `store`.
    @discardableResult
    public func addBucketLink(_ name: String, to store: ObjectStore) async throws -> ObjectInfo {
        try await addLink(name, ObjectLink(bucket: store.bucket))
    }

    private func addLink(_ name: String, _ link: ObjectLink) async throws -> ObjectInfo {
        if let existing = try await storedInfo(name), !existing.deleted, !existing.isLink {
            throw ObjectStoreError(.objectExists, "\(name.debugDescription) is an object; a link may not replace it")
        }
        var meta = ObjectMeta(name: name)
        meta.link = link
        let info = ObjectInfo(meta: meta, bucket: bucket, nuid: Nuid.next(), size: 0, modified: Date(), chunks: 0, digest: nil, deleted: false)
        return try await publishInfo(info)
    }

    /// Changes the name, description, headers or metadata of object `name`.
    /// - Throws: ``ObjectStoreError`` `.objectNotFound`, `.objectExists` when renaming onto
    ///   an object that is not deleted.
    public func updateMeta(_ name: String, _ meta: ObjectMeta) async throws {
        var info = try await info(name)
        if meta.name != name, let target = try await storedInfo(meta.name), !target.deleted {
            throw ObjectStoreError(.objectExists, "\(meta.name.debugDescription) exists")
        }
        info.meta.name = meta.name
        info.meta.description = meta.description
        info.meta.headers = meta.headers
        info.meta.metadata = meta.metadata
        _ = try await publishInfo(info)
        if meta.name != name { try await jetStream.purgeStream(streamName, subject: metaSubject(name)) }
    }

    // MARK: - The bucket

    /// What the bucket holds now.
    public func status() async throws -> ObjectStoreStatus {
        ObjectStoreStatus(bucket: bucket, streamInfo: try await jetStream.streamInfo(streamName))
    }

    /// Seals the bucket: no change of any kind is accepted afterwards.
    public func seal() async throws {
        var config = try await jetStream.streamInfo(streamName).config
        config.sealed = true
        _ = try await jetStream.updateStream(config)
    }
}
