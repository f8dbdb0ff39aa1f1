import NATSProtocol

/// A Key-Value bucket (ADR-8): values of keys kept in the stream `KV_<bucket>`, one subject
/// `$KV.<bucket>.<key>` per key, with history, revisions and watchers.
///
/// Get one with ``JetStream/keyValue(_:)`` or ``JetStream/createKeyValue(_:)``. Reads are
/// direct gets (any replica answers; a read right after a write elsewhere may see the older
/// value); every write waits for the stream's acknowledgement and returns the new revision.
public struct KeyValue: Sendable {
    public let jetStream: JetStream
    public let bucket: String

    /// The header that marks deletions and purges.
    static let operationHeader = "KV-Operation"

    static func streamName(_ bucket: String) -> String { "KV_\(bucket)" }

    /// `KV_<bucket>`.
    public var streamName: String { Self.streamName(bucket) }
    /// `$KV.<bucket>.`, the subject of every key without the key.
    var subjectPrefix: String { "$KV.\(bucket)." }

    init(jetStream: JetStream, bucket: String) {
        self.jetStream = jetStream
        self.bucket = bucket
    }

    // MARK: - Reading

    /// The latest value of `key`, or the entry at `revision`.
    /// - Throws: ``KeyValueError`` `.keyNotFound` when there is none (or the key was deleted
    ///   or purged there), `.invalidKey`.
    public func get(_ key: String, revision: UInt64? = nil) async throws -> KeyValueEntry {
        guard let entry = try await storedEntry(key, revision: revision), entry.operation == .put else {
            throw KeyValueError(.keyNotFound, revision.map { "no value of \(key) at revision \($0)" } ?? "no value for \(key)")
        }
        return entry
    }

    /// The latest entry of a key, deletions included, or the one at `revision`; `nil` when none.
    private func storedEntry(_ key: String, revision: UInt64? = nil) async throws -> KeyValueEntry? {
        try Self.checkKey(key)
        let stored: StoredMessage?
        if let revision {
            stored = try await jetStream.message(stream: streamName, sequence: revision)
            guard stored?.subject == subjectPrefix + key else { return nil }
        } else {
            stored = try await jetStream.lastMessage(stream: streamName, subject: subjectPrefix + key)
        }
        return stored.map { entry(key: key, stored: $0) }
    }

    private func entry(key: String, stored: StoredMessage) -> KeyValueEntry {
        KeyValueEntry(
            bucket: bucket, key: key, value: stored.payload, revision: stored.sequence,
            createdNanoseconds: stored.timestamp, delta: 0, operation: KeyValueEntry.operation(of: stored.headers)
        )
    }

    /// The entry an ordered consumer delivered, or `nil` for a subject outside the bucket.
    func entry(_ message: JetStreamMessage) -> KeyValueEntry? {
        guard message.subject.hasPrefix(subjectPrefix) else { return nil }
        return KeyValueEntry(
            bucket: bucket, key: String(message.subject.dropFirst(subjectPrefix.count)), value: message.payload,
            revision: message.metadata.streamSequence, createdNanoseconds: message.metadata.timestamp,
            delta: message.metadata.pending, operation: KeyValueEntry.operation(of: message.headers)
        )
    }

    // MARK: - Writing

    /// Sets `key` to `value`.
    /// - Returns: the new revision.
    /// - Throws: ``KeyValueError`` (`.invalidKey`, `.valueTooLarge`), ``JetStreamError``,
    ///   ``NATSError``.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        try await write(key, value, headers: nil)
    }

    /// Sets `key` to the UTF-8 bytes of `value`.
    @discardableResult
    public func put(_ key: String, _ value: String) async throws -> UInt64 {
        try await put(key, Array(value.utf8))
    }

    /// Sets `key` only if it has no value (never written, or deleted or purged last).
    ///
    /// - Parameter ttl: how long this value lives (at least a second), on buckets that
    ///   ``KeyValueConfig/allowsPerKeyTTL``.
    /// - Returns: the new revision.
    /// - Throws: ``KeyValueError`` `.keyExists`, `.perKeyTTLNotEnabled`, …
    @discardableResult
    public func create(_ key: String, _ value: [UInt8], ttl: Duration? = nil) async throws -> UInt64 {
        let ttlHeader = try Self.ttlValue(ttl)
        do {
            return try await write(key, value, headers: Self.headers(lastRevision: 0, ttl: ttlHeader))
        } catch let error as KeyValueError where error.code == .wrongLastSequence {
            // A deleted or purged key has a last revision, its marker: replace exactly that.
            guard let latest = try await storedEntry(key), latest.operation != .put else {
                throw KeyValueError(.keyExists, "\(key) has a value", underlying: error.underlying)
            }
            do {
                return try await write(key, value, headers: Self.headers(lastRevision: latest.revision, ttl: ttlHeader))
            } catch let again as KeyValueError where again.code == .wrongLastSequence {
                throw KeyValueError(.keyExists, "\(key) was given a value meanwhile", underlying: again.underlying)
            }
        }
    }

    /// Sets `key` only if its latest revision is `revision`.
    /// - Returns: the new revision.
    /// - Throws: ``KeyValueError`` `.wrongLastSequence` when the key has moved on.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], revision: UInt64) async throws -> UInt64 {
        try await write(key, value, headers: Self.headers(lastRevision: revision, ttl: nil))
    }

    /// Deletes `key`, keeping its history; with `revision`, only if that is its latest.
    public func delete(_ key: String, revision: UInt64? = nil) async throws {
        var headers = Self.headers(lastRevision: revision, ttl: nil) ?? NATSHeaders()
        headers[Self.operationHeader] = KeyValueEntry.Operation.delete.rawValue
        try await write(key, [], headers: headers)
    }

    /// Deletes `key` and its whole history, leaving one purge marker; with `revision`, only if
    /// that is its latest.
    /// - Parameter ttl: how long the marker stays (at least a second), on buckets that
    ///   ``KeyValueConfig/allowsPerKeyTTL``.
    public func purge(_ key: String, revision: UInt64? = nil, ttl: Duration? = nil) async throws {
        var headers = Self.headers(lastRevision: revision, ttl: try Self.ttlValue(ttl)) ?? NATSHeaders()
        headers[Self.operationHeader] = KeyValueEntry.Operation.purge.rawValue
        headers[JetStream.Header.rollup] = "sub"
        try await write(key, [], headers: headers)
    }

    static func headers(lastRevision: UInt64?, ttl: String?) -> NATSHeaders? {
        guard lastRevision != nil || ttl != nil else { return nil }
        var headers = NATSHeaders()
        if let lastRevision { headers[JetStream.Header.expectedLastSubjectSequence] = String(lastRevision) }
        if let ttl { headers[JetStream.Header.ttl] = ttl }
        return headers
    }

    /// A `Nats-TTL` value: whole seconds, at least one.
    static func ttlValue(_ ttl: Duration?) throws(KeyValueError) -> String? {
        guard let ttl else { return nil }
        let seconds = ttl.components.seconds
        guard seconds >= 1, ttl.components.attoseconds == 0 else {
            throw KeyValueError(.invalidConfiguration, "a per-key TTL is a whole number of seconds, at least one, not \(ttl)")
        }
        return "\(seconds)s"
    }

    @discardableResult
    private func write(_ key: String, _ value: [UInt8], headers: NATSHeaders?) async throws -> UInt64 {
        try Self.checkKey(key)
        do {
            return try await jetStream.publish(value, to: subjectPrefix + key, headers: headers).sequence
        } catch let error as JetStreamError {
            switch error.errorCode {
            case JetStreamError.wrongLastSequence, 10164:
                throw KeyValueError(.wrongLastSequence, "\(key) is not at the revision given", underlying: error)
            case 10054:
                throw KeyValueError(.valueTooLarge, "a value of \(value.count) bytes for \(key) is over the bucket's limit", underlying: error)
            case 10166:
                throw KeyValueError(.perKeyTTLNotEnabled, "bucket \(bucket) does not allow per-key TTLs", underlying: error)
            default:
                throw error
            }
        }
    }

    static func checkKey(_ key: String) throws(KeyValueError) {
        guard KeyValueNames.isValidKey(key) else {
            throw KeyValueError(.invalidKey, "invalid key \(key.debugDescription): use letters, digits and -/_=., not starting or ending with .")
        }
    }

    // MARK: - Keys, history, status

    /// The keys that have a value, in the order they were last written; only those matching
    /// `patterns` (`*` for a token, `>` at the end for the rest).
    public func keys(matching patterns: [String] = [">"]) async throws -> [String] {
        var options = KeyValueWatchOptions()
        options.ignoreDeletes = true
        options.metadataOnly = true
        var keys: [String] = []
        for try await update in try await watch(patterns, options: options) {
            switch update {
            case .entry(let entry): keys.append(entry.key)
            case .initialValuesDone: return keys
            }
        }
        return keys
    }

    /// Every entry of `key` the bucket keeps, oldest first, deletions included.
    /// - Throws: ``KeyValueError`` `.keyNotFound` when there is none.
    public func history(_ key: String) async throws -> [KeyValueEntry] {
        try Self.checkKey(key)
        var options = KeyValueWatchOptions()
        options.includeHistory = true
        var entries: [KeyValueEntry] = []
        for try await update in try await watch([key], options: options) {
            switch update {
            case .entry(let entry): entries.append(entry)
            case .initialValuesDone:
                guard !entries.isEmpty else { throw KeyValueError(.keyNotFound, "no history for \(key)") }
                return entries
            }
        }
        return entries
    }

    /// What the bucket holds now, and its configuration.
    public func status() async throws -> KeyValueStatus {
        let info = try await jetStream.streamInfo(streamName)
        return KeyValueStatus(
            bucket: bucket, values: info.state.messages, bytes: info.state.bytes,
            config: KeyValueConfig(bucket: bucket, stream: info.config), streamInfo: info
        )
    }
}
