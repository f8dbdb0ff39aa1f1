import EnnioSync

/// An object's bytes as they arrive, one chunk at a time, from an ordered consumer on its
/// chunk subject. After the last chunk the count, size and SHA-256 digest are checked against
/// the object's info; a mismatch ends the sequence with an error instead of its end.
///
/// Iterate once, from one task; ``stop()`` (or dropping the reader) deletes the consumer.
public struct ObjectReader: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public typealias Failure = any Error

    /// The object's info (for a link: the info of the object it points to).
    public let info: ObjectInfo
    let consumer: OrderedConsumer?
    let progress = ProgressBox()

    struct Progress: ~Copyable {
        var digest = SHA256Digest()
        var chunks: UInt32 = 0
        var bytes: UInt64 = 0
        var finished = false
    }

    /// What has been read, shared by copies of the reader.
    final class ProgressBox: Sendable {
        private let state = Locked(Progress())

        var isFinished: Bool { state.withLock { $0.finished } }
        var chunks: UInt32 { state.withLock { $0.chunks } }

        /// Counts a chunk; true when it is the last one expected.
        func add(_ payload: [UInt8], expected: UInt32, pending: UInt64) -> Bool {
            state.withLock { progress in
                progress.digest.update(payload)
                progress.chunks += 1
                progress.bytes += UInt64(payload.count)
                return progress.chunks == expected || pending == 0
            }
        }

        /// What was read, the first time only.
        func finish() -> (chunks: UInt32, bytes: UInt64, digest: [UInt8])? {
            state.withLock { progress in
                guard !progress.finished else { return nil }
                progress.finished = true
                return (progress.chunks, progress.bytes, progress.digest.finalize())
            }
        }
    }

    static func start(store: ObjectStore, info: ObjectInfo) async throws -> ObjectReader {
        // An empty object has no chunks to read.
        var config = OrderedConsumerConfig(filterSubjects: [store.chunkSubject(info.nuid)])
        config.delivery = .pull(buffer: ObjectStore.chunksAhead)
        let consumer = info.chunks == 0 ? nil : try await store.jetStream.orderedConsumer(stream: store.streamName, config: config)
        return ObjectReader(info: info, consumer: consumer)
    }

    /// Stops reading and deletes the consumer.
    public func stop() { consumer?.stop() }

    public func makeAsyncIterator() -> Iterator {
        Iterator(reader: self, messages: consumer?.makeAsyncIterator())
    }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let reader: ObjectReader
        var messages: OrderedConsumer.Iterator?

        public mutating func next() async throws -> [UInt8]? {
            let expected = reader.info.chunks
            if reader.progress.isFinished { return nil }
            if reader.progress.chunks < expected, let message = try await messages?.next() {
                let payload = message.payload
                if reader.progress.add(payload, expected: expected, pending: message.metadata.pending) { try finish() }
                return payload
            }
            try finish()
            return nil
        }

        /// Checks what was read against the info, once.
        private func finish() throws {
            guard let (chunks, bytes, digest) = reader.progress.finish() else { return }
            reader.consumer?.stop()
            let info = reader.info
            guard chunks == info.chunks, bytes == info.size else {
                throw ObjectStoreError(.incomplete, "\(info.name.debugDescription): \(chunks) of \(info.chunks) chunks, \(bytes) of \(info.size) bytes")
            }
            guard let recorded = info.digest else { return }
            guard Self.matches(recorded, digest) else {
                throw ObjectStoreError(.digestMismatch, "\(info.name.debugDescription): SHA-256 \(SHA256Digest.objectStoreForm(digest)), its info says \(recorded.debugDescription)")
            }
        }

        /// Whether `recorded` (`SHA-256=<base64>`, either alphabet, padded or not) is `digest`.
        static func matches(_ recorded: String, _ digest: [UInt8]) -> Bool {
            guard let separator = recorded.firstIndex(of: "="), recorded[..<separator].uppercased() == "SHA-256" else { return false }
            return Base64URL.decode(String(recorded[recorded.index(after: separator)...])) == digest
        }
    }
}
