public import Foundation

/// Where a link points: a whole bucket (no name) or one object of it.
public struct ObjectLink: Codable, Sendable, Hashable {
    public var bucket: String
    public var name: String?

    public init(bucket: String, name: String? = nil) {
        self.bucket = bucket
        self.name = name
    }
}

/// What describes an object, as its writer gives it.
public struct ObjectMeta: Sendable, Hashable {
    /// Any text; it is base64url-encoded into the metadata subject.
    public var name: String
    public var description: String?
    /// Headers in the shape nats.go writes them: each name with its values.
    public var headers: [String: [String]]?
    public var metadata: [String: String]?
    /// Bytes per chunk; 128 KiB by default.
    public var chunkSize: Int?
    /// Set for links (made by `addLink` and `addBucketLink`).
    public var link: ObjectLink?

    public init(name: String, description: String? = nil, headers: [String: [String]]? = nil, metadata: [String: String]? = nil, chunkSize: Int? = nil) {
        self.name = name
        self.description = description
        self.headers = headers
        self.metadata = metadata
        self.chunkSize = chunkSize
    }
}

/// An object's metadata and where its bytes are (ADR-20 `ObjectInfo`), stored as JSON on
/// `$O.<bucket>.M.<base64url name>`.
public struct ObjectInfo: Sendable, Hashable {
    public var meta: ObjectMeta
    public var bucket: String
    /// The object's chunks are on `$O.<bucket>.C.<nuid>`.
    public var nuid: String
    /// Bytes in all.
    public var size: UInt64
    /// When the stream stored this info (for what `put` returns: when it returned).
    public var modified: Date
    public var chunks: UInt32
    /// `SHA-256=<base64url>` of the bytes.
    public var digest: String?
    public var deleted: Bool

    public var name: String { meta.name }
    public var isLink: Bool { meta.link != nil }
}

extension ObjectInfo: Codable {
    enum CodingKeys: String, CodingKey {
        case name, description, headers, metadata, options, bucket, nuid, size, mtime, chunks, digest, deleted
    }

    struct Options: Codable {
        var link: ObjectLink?
        var maxChunkSize: Int?

        enum CodingKeys: String, CodingKey {
            case link
            case maxChunkSize = "max_chunk_size"
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let options = try container.decodeIfPresent(Options.self, forKey: .options)
        meta = ObjectMeta(
            name: try container.decode(String.self, forKey: .name),
            description: try container.decodeIfPresent(String.self, forKey: .description),
            headers: try container.decodeIfPresent([String: [String]].self, forKey: .headers),
            metadata: try container.decodeIfPresent([String: String].self, forKey: .metadata),
            chunkSize: options?.maxChunkSize
        )
        meta.link = options?.link
        bucket = try container.decode(String.self, forKey: .bucket)
        nuid = try container.decode(String.self, forKey: .nuid)
        size = try container.decodeIfPresent(UInt64.self, forKey: .size) ?? 0
        chunks = try container.decodeIfPresent(UInt32.self, forKey: .chunks) ?? 0
        digest = try container.decodeIfPresent(String.self, forKey: .digest).flatMap { $0.isEmpty ? nil : $0 }
        deleted = try container.decodeIfPresent(Bool.self, forKey: .deleted) ?? false
        // The stored time is never trusted: the message's own timestamp replaces it.
        modified = Date(timeIntervalSince1970: 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(meta.name, forKey: .name)
        try container.encodeIfPresent(meta.description, forKey: .description)
        try container.encodeIfPresent(meta.headers, forKey: .headers)
        try container.encodeIfPresent(meta.metadata, forKey: .metadata)
        if meta.link != nil || meta.chunkSize != nil {
            try container.encode(Options(link: meta.link, maxChunkSize: meta.chunkSize), forKey: .options)
        }
        try container.encode(bucket, forKey: .bucket)
        try container.encode(nuid, forKey: .nuid)
        try container.encode(size, forKey: .size)
        // ADR-20: the time is never stored; Go's zero time, as nats.go writes it.
        try container.encode("0001-01-01T00:00:00Z", forKey: .mtime)
        try container.encode(chunks, forKey: .chunks)
        try container.encodeIfPresent(digest, forKey: .digest)
        if deleted { try container.encode(true, forKey: .deleted) }
    }
}
