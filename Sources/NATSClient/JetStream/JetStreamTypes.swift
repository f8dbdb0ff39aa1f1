import Foundation

/// How a stream stores messages.
public enum StorageType: String, Codable, Sendable, Hashable {
    case file, memory
}

/// A stream's configuration (the fields this client uses; the server fills in the rest).
public struct StreamConfig: Codable, Sendable, Hashable {
    public var name: String
    public var subjects: [String]
    public var storage: StorageType = .file
    public var retention: String = "limits"
    public var maxMessages: Int64 = -1
    public var maxBytes: Int64 = -1
    /// Maximum age, in nanoseconds (0 = forever).
    public var maxAge: Int64 = 0
    /// The de-duplication window for `Nats-Msg-Id`, in nanoseconds (server default 2 minutes).
    public var duplicateWindow: Int64?
    public var replicas: Int = 1
    /// `old` drops the oldest messages at a limit; `new` refuses new ones.
    public var discard: String = "old"
    public var description: String?
    /// Messages kept per subject (`-1`: no limit); a KV bucket's history.
    public var maxMessagesPerSubject: Int64?
    /// The largest message the stream accepts, in bytes (`-1`: the server's limit).
    public var maxMessageSize: Int32?
    /// Whether a `Nats-Rollup` header may replace earlier messages.
    public var allowRollup: Bool?
    public var denyDelete: Bool?
    public var denyPurge: Bool?
    /// Whether `$JS.API.DIRECT.GET` answers for this stream (from any replica).
    public var allowDirect: Bool?
    /// Whether a message may carry its own lifetime (`Nats-TTL`); nats-server 2.11 and later.
    public var allowMessageTTL: Bool?
    /// How long the marker the server leaves when a subject's last message ages out lives, in
    /// nanoseconds (needs `allowMessageTTL`).
    public var subjectDeleteMarkerTTL: Int64?
    /// `s2` or `none`.
    public var compression: String?
    public var metadata: [String: String]?
    /// A sealed stream accepts no changes at all.
    public var sealed: Bool?

    public init(name: String, subjects: [String], storage: StorageType = .file) {
        self.name = name
        self.subjects = subjects
        self.storage = storage
    }

    enum CodingKeys: String, CodingKey {
        case name, subjects, storage, retention, discard, description, compression, metadata, sealed
        case replicas = "num_replicas"
        case maxMessages = "max_msgs"
        case maxBytes = "max_bytes"
        case maxAge = "max_age"
        case duplicateWindow = "duplicate_window"
        case maxMessagesPerSubject = "max_msgs_per_subject"
        case maxMessageSize = "max_msg_size"
        case allowRollup = "allow_rollup_hdrs"
        case denyDelete = "deny_delete"
        case denyPurge = "deny_purge"
        case allowDirect = "allow_direct"
        case allowMessageTTL = "allow_msg_ttl"
        case subjectDeleteMarkerTTL = "subject_delete_marker_ttl"
    }
}

/// A stream's state.
public struct StreamState: Codable, Sendable, Hashable {
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var consumerCount: Int

    enum CodingKeys: String, CodingKey {
        case messages, bytes
        case firstSequence = "first_seq"
        case lastSequence = "last_seq"
        case consumerCount = "consumer_count"
    }
}

/// What the server says about a stream.
public struct StreamInfo: Codable, Sendable, Hashable {
    public var config: StreamConfig
    public var state: StreamState
    /// Its leader and replicas, when the server is part of a JetStream cluster.
    public var cluster: ClusterInfo?
}

/// How a consumer acknowledges.
public enum AckPolicy: String, Codable, Sendable, Hashable {
    case none, all, explicit
}

/// Where a new consumer starts.
public enum DeliverPolicy: String, Codable, Sendable, Hashable {
    case all, last, new
    case byStartSequence = "by_start_sequence"
    case byStartTime = "by_start_time"
    case lastPerSubject = "last_per_subject"
}

/// A consumer's configuration. Pull consumers have no `deliver_subject`.
public struct ConsumerConfig: Codable, Sendable, Hashable {
    /// A durable name survives restarts and disconnections; `nil` makes an ephemeral consumer.
    public var durableName: String?
    public var name: String?
    public var deliverPolicy: DeliverPolicy = .all
    public var optStartSequence: UInt64?
    public var ackPolicy: AckPolicy = .explicit
    /// How long the server waits for an acknowledgement before redelivering, in nanoseconds.
    public var ackWait: Int64?
    public var maxDeliver: Int?
    public var filterSubject: String?
    public var maxAckPending: Int?
    /// Ephemeral consumers are removed after this much inactivity, in nanoseconds.
    public var inactiveThreshold: Int64?
    /// Several filter subjects (nats-server 2.10 and later), instead of `filterSubject`.
    public var filterSubjects: [String]?
    /// RFC 3339 time to start from, with ``DeliverPolicy/byStartTime``.
    public var optStartTime: String?
    /// A push consumer: where the server sends the messages.
    public var deliverSubject: String?
    /// A push consumer sends `$JS.FC` flow-control requests and waits for their answers.
    public var flowControl: Bool?
    /// A consumer with nothing to send says it is alive this often, in nanoseconds.
    public var idleHeartbeat: Int64?
    /// Deliver headers (and `Nats-Msg-Size`) without payloads.
    public var headersOnly: Bool?
    /// Keep the consumer's state in memory, whatever the stream's storage.
    public var memoryStorage: Bool?
    public var replicas: Int?

    public init(durableName: String? = nil, ackPolicy: AckPolicy = .explicit, ackWait: Duration? = nil) {
        self.durableName = durableName
        self.ackPolicy = ackPolicy
        self.ackWait = ackWait.map(nanosecondsOf)
    }

    enum CodingKeys: String, CodingKey {
        case name
        case durableName = "durable_name"
        case deliverPolicy = "deliver_policy"
        case optStartSequence = "opt_start_seq"
        case ackPolicy = "ack_policy"
        case ackWait = "ack_wait"
        case maxDeliver = "max_deliver"
        case filterSubject = "filter_subject"
        case maxAckPending = "max_ack_pending"
        case inactiveThreshold = "inactive_threshold"
        case filterSubjects = "filter_subjects"
        case optStartTime = "opt_start_time"
        case deliverSubject = "deliver_subject"
        case flowControl = "flow_control"
        case idleHeartbeat = "idle_heartbeat"
        case headersOnly = "headers_only"
        case memoryStorage = "mem_storage"
        case replicas = "num_replicas"
    }
}

/// A consumer's position in its stream.
public struct SequenceInfo: Codable, Sendable, Hashable {
    public var consumerSequence: UInt64
    public var streamSequence: UInt64

    enum CodingKeys: String, CodingKey {
        case consumerSequence = "consumer_seq"
        case streamSequence = "stream_seq"
    }
}

/// What the server says about a consumer.
public struct ConsumerInfo: Codable, Sendable, Hashable {
    public var streamName: String
    public var name: String
    public var config: ConsumerConfig
    public var delivered: SequenceInfo
    public var ackFloor: SequenceInfo
    public var numAckPending: Int
    public var numRedelivered: Int
    public var numPending: UInt64
    /// Its leader and replicas, when the server is part of a JetStream cluster.
    public var cluster: ClusterInfo?

    enum CodingKeys: String, CodingKey {
        case name, config, delivered, cluster
        case streamName = "stream_name"
        case ackFloor = "ack_floor"
        case numAckPending = "num_ack_pending"
        case numRedelivered = "num_redelivered"
        case numPending = "num_pending"
    }
}

/// The server's acknowledgement of a publish to a stream.
public struct PubAck: Codable, Sendable, Hashable {
    public var stream: String
    public var sequence: UInt64
    /// True when the message id was seen within the duplicate window: nothing was stored.
    public var duplicate: Bool
    public var domain: String?

    enum CodingKeys: String, CodingKey {
        case stream, domain
        case sequence = "seq"
        case duplicate
    }

    init(stream: String, sequence: UInt64, duplicate: Bool, domain: String?) {
        self.stream = stream
        self.sequence = sequence
        self.duplicate = duplicate
        self.domain = domain
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        stream = try container.decode(String.self, forKey: .stream)
        sequence = try container.decode(UInt64.self, forKey: .sequence)
        duplicate = try container.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
        domain = try container.decodeIfPresent(String.self, forKey: .domain)
    }
}

extension PubAck {
    /// Reads the usual acknowledgement — one flat object with `stream` and `seq`, and maybe
    /// `duplicate` and `domain`, plain ASCII strings — without Foundation's decoder. `nil` for
    /// anything else (an error, another key, escapes, …): the caller then decodes it fully.
    static func parseCommon(_ bytes: [UInt8]) -> PubAck? {
        bytes.withUnsafeBufferPointer { buffer -> PubAck? in
            var index = 0
            let count = buffer.count
            func skipSpace() {
                while index < count, buffer[index] == 0x20 || buffer[index] == 0x0A || buffer[index] == 0x0D || buffer[index] == 0x09 { index += 1 }
            }
            func take(_ byte: UInt8) -> Bool {
                skipSpace()
                guard index < count, buffer[index] == byte else { return false }
                index += 1
                return true
            }
            /// A quoted string of printable ASCII without escapes; its byte range.
            func plainString() -> Range<Int>? {
                guard take(UInt8(ascii: "\"")) else { return nil }
                let start = index
                while index < count {
                    let byte = buffer[index]
                    if byte == UInt8(ascii: "\"") {
                        index += 1
                        return start..<(index - 1)
                    }
                    guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                    index += 1
                }
                return nil
            }
            func text(_ range: Range<Int>) -> String {
                String(decoding: UnsafeBufferPointer(rebasing: buffer[range]), as: UTF8.self)
            }
            func equals(_ range: Range<Int>, _ literal: StaticString) -> Bool {
                guard range.count == literal.utf8CodeUnitCount else { return false }
                let pointer = literal.utf8Start
                for offset in 0..<range.count where buffer[range.lowerBound + offset] != pointer[offset] { return false }
                return true
            }
            var stream: String?
            var sequence: UInt64?
            var duplicate: Bool?
            var domain: String?
            guard take(UInt8(ascii: "{")) else { return nil }
            if take(UInt8(ascii: "}")) { return nil }
            while true {
                guard let key = plainString(), take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                if equals(key, "stream"), stream == nil {
                    guard let value = plainString() else { return nil }
                    stream = text(value)
                } else if equals(key, "domain"), domain == nil {
                    guard let value = plainString() else { return nil }
                    domain = text(value)
                } else if equals(key, "seq"), sequence == nil {
                    var value: UInt64 = 0
                    let start = index
                    while index < count, buffer[index] >= UInt8(ascii: "0"), buffer[index] <= UInt8(ascii: "9") {
                        let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
                        let (sum, overflow2) = times.addingReportingOverflow(UInt64(buffer[index] - UInt8(ascii: "0")))
                        guard !overflow1, !overflow2 else { return nil }
                        value = sum
                        index += 1
                    }
                    // No digits, a leading zero, or a fraction/exponent: let the full decoder judge.
                    guard index > start, index - start == 1 || buffer[start] != UInt8(ascii: "0") else { return nil }
                    if index < count, buffer[index] == UInt8(ascii: ".") || buffer[index] == UInt8(ascii: "e") || buffer[index] == UInt8(ascii: "E") { return nil }
                    sequence = value
                } else if equals(key, "duplicate"), duplicate == nil {
                    if count - index >= 4, buffer[index] == UInt8(ascii: "t"), buffer[index + 1] == UInt8(ascii: "r"), buffer[index + 2] == UInt8(ascii: "u"), buffer[index + 3] == UInt8(ascii: "e") {
                        duplicate = true
                        index += 4
                    } else if count - index >= 5, buffer[index] == UInt8(ascii: "f"), buffer[index + 1] == UInt8(ascii: "a"), buffer[index + 2] == UInt8(ascii: "l"),
                        buffer[index + 3] == UInt8(ascii: "s"), buffer[index + 4] == UInt8(ascii: "e")
                    {
                        duplicate = false
                        index += 5
                    } else {
                        return nil
                    }
                } else {
                    return nil
                }
                if take(UInt8(ascii: ",")) { continue }
                guard take(UInt8(ascii: "}")) else { return nil }
                skipSpace()
                guard index == count, let stream, let sequence else { return nil }
                return PubAck(stream: stream, sequence: sequence, duplicate: duplicate ?? false, domain: domain)
            }
        }
    }
}

func nanosecondsOf(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}

/// Any API reply: either the expected body or `{"error":{…}}`.
struct APIErrorEnvelope: Decodable {
    struct Body: Decodable {
        var code: Int
        var errCode: Int?
        var description: String?

        enum CodingKeys: String, CodingKey {
            case code, description
            case errCode = "err_code"
        }
    }

    var error: Body?
}
