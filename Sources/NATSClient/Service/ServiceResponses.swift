/// The answers to `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` (ADR-32), as JSON: what a service
/// sends and what a client that discovers services decodes.
public struct ServicePing: Codable, Sendable, Hashable {
    public static let type = "io.nats.micro.v1.ping_response"
    public var type: String
    public var name: String
    public var id: String
    public var version: String
    public var metadata: [String: String]
}

/// `$SRV.INFO`: the service and its endpoints.
public struct ServiceInfo: Codable, Sendable, Hashable {
    public static let type = "io.nats.micro.v1.info_response"
    public var type: String
    public var name: String
    public var id: String
    public var version: String
    public var metadata: [String: String]
    public var description: String
    public var endpoints: [ServiceEndpointInfo]
}

public struct ServiceEndpointInfo: Codable, Sendable, Hashable {
    public var name: String
    public var subject: String
    /// Empty when the endpoint joins no queue group.
    public var queueGroup: String
    public var metadata: [String: String]

    enum CodingKeys: String, CodingKey {
        case name, subject, metadata
        case queueGroup = "queue_group"
    }
}

/// `$SRV.STATS`: what each endpoint has done since the service started (or was reset).
public struct ServiceStats: Codable, Sendable, Hashable {
    public static let type = "io.nats.micro.v1.stats_response"
    public var type: String
    public var name: String
    public var id: String
    public var version: String
    public var metadata: [String: String]
    /// When the service started, RFC 3339 in UTC.
    public var started: String
    public var endpoints: [ServiceEndpointStats]
}

public struct ServiceEndpointStats: Codable, Sendable, Hashable {
    public var name: String
    public var subject: String
    public var queueGroup: String
    public var numRequests: Int
    public var numErrors: Int
    /// `<code>:<description>` of the last error reply; empty when there was none.
    public var lastError: String
    /// Nanoseconds spent in the handler, in all and per request.
    public var processingTime: Int64
    public var averageProcessingTime: Int64
    /// What the service's ``ServiceConfig/statisticsData`` gave for this endpoint.
    public var data: ServiceJSON?

    enum CodingKeys: String, CodingKey {
        case name, subject, data
        case queueGroup = "queue_group"
        case numRequests = "num_requests"
        case numErrors = "num_errors"
        case lastError = "last_error"
        case processingTime = "processing_time"
        case averageProcessingTime = "average_processing_time"
    }

    public init(
        name: String, subject: String, queueGroup: String, numRequests: Int, numErrors: Int, lastError: String,
        processingTime: Int64, averageProcessingTime: Int64, data: ServiceJSON?
    ) {
        self.name = name
        self.subject = subject
        self.queueGroup = queueGroup
        self.numRequests = numRequests
        self.numErrors = numErrors
        self.lastError = lastError
        self.processingTime = processingTime
        self.averageProcessingTime = averageProcessingTime
        self.data = data
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(subject, forKey: .subject)
        try container.encode(queueGroup, forKey: .queueGroup)
        try container.encode(numRequests, forKey: .numRequests)
        try container.encode(numErrors, forKey: .numErrors)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(processingTime, forKey: .processingTime)
        try container.encode(averageProcessingTime, forKey: .averageProcessingTime)
        // Always there, null when empty: nats-py's reader requires the key.
        try container.encode(data ?? .null, forKey: .data)
    }
}

/// Any JSON value: the free-form `data` of endpoint statistics.
public enum ServiceJSON: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([ServiceJSON])
    case object([String: ServiceJSON])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([ServiceJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: ServiceJSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
