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
    public var discard: String = "old"

    public init(name: String, subjects: [String], storage: StorageType = .file) {
        self.name = name
        self.subjects = subjects
        self.storage = storage
    }

    enum CodingKeys: String, CodingKey {
        case name, subjects, storage, retention, discard
        case replicas = "num_replicas"
        case maxMessages = "max_msgs"
        case maxBytes = "max_bytes"
        case maxAge = "max_age"
        case duplicateWindow = "duplicate_window"
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

    enum CodingKeys: String, CodingKey {
        case name, config, delivered
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

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        stream = try container.decode(String.self, forKey: .stream)
        sequence = try container.decode(UInt64.self, forKey: .sequence)
        duplicate = try container.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
        domain = try container.decodeIfPresent(String.self, forKey: .domain)
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
