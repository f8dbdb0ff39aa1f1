public import Foundation
import NATSProtocol

/// One value of a key, or its deletion, with where it sits in the bucket's history.
public struct KeyValueEntry: Sendable, Hashable {
    /// What the entry records.
    public enum Operation: String, Sendable, Hashable {
        case put = "PUT"
        /// `delete`: the key's history is kept.
        case delete = "DEL"
        /// `purge`: the earlier history is gone; also a key aged out (a limit marker).
        case purge = "PURGE"
    }

    public var bucket: String
    public var key: String
    /// Empty for deletions, and for watchers that asked for metadata only.
    public var value: [UInt8]
    /// The stream sequence of the entry: unique and increasing within the bucket.
    public var revision: UInt64
    /// When the bucket stored it, in nanoseconds since 1970.
    public var createdNanoseconds: Int64
    /// How many newer entries follow it for the watcher or history that produced it (0: the
    /// latest); 0 for `get`.
    public var delta: UInt64
    public var operation: Operation

    public var created: Date { Date(timeIntervalSince1970: Double(createdNanoseconds) / 1e9) }
    /// The value as UTF-8 text.
    public var string: String { String(decoding: value, as: UTF8.self) }

    public init(bucket: String, key: String, value: [UInt8], revision: UInt64, createdNanoseconds: Int64, delta: UInt64, operation: Operation) {
        self.bucket = bucket
        self.key = key
        self.value = value
        self.revision = revision
        self.createdNanoseconds = createdNanoseconds
        self.delta = delta
        self.operation = operation
    }

    /// The operation a stored message's headers record: `KV-Operation`, or for a marker the
    /// server placed, `Nats-Marker-Reason` (`MaxAge` and `Purge` purge, `Remove` deletes).
    static func operation(of headers: NATSHeaders?) -> Operation {
        guard let headers else { return .put }
        switch headers[KeyValue.operationHeader] {
        case "DEL": return .delete
        case "PURGE": return .purge
        default: break
        }
        switch headers[JetStream.Header.markerReason] {
        case "MaxAge", "Purge": return .purge
        case "Remove": return .delete
        default: return .put
        }
    }
}
