public import Foundation
public import NATSProtocol

/// A message as a stream stores it, read with a direct get.
public struct StoredMessage: Sendable, Hashable {
    public var stream: String
    public var subject: String
    public var sequence: UInt64
    /// When the stream stored it, in nanoseconds since 1970.
    public var timestamp: Int64
    /// Its own headers, plus the `Nats-Stream`, `Nats-Subject`, `Nats-Sequence` and
    /// `Nats-Time-Stamp` the server adds to a direct get's reply.
    public var headers: NATSHeaders?
    public var payload: [UInt8]

    /// When the stream stored it.
    public var time: Date { Date(timeIntervalSince1970: Double(timestamp) / 1e9) }

    /// Reads a direct get's reply; `nil` when it lacks the headers that say where it is stored.
    init?(directGetReply reply: NATSMessage) {
        guard let headers = reply.headers, let stream = headers["Nats-Stream"], let subject = headers["Nats-Subject"],
            let sequence = headers["Nats-Sequence"].flatMap({ UInt64($0) }),
            let timestamp = headers["Nats-Time-Stamp"].flatMap(RFC3339Time.nanoseconds)
        else { return nil }
        self.stream = stream
        self.subject = subject
        self.sequence = sequence
        self.timestamp = timestamp
        self.headers = headers
        self.payload = reply.payload
    }
}

extension JetStream {
    /// The last message stored on `subject` (which may hold wildcards), or `nil` when there is
    /// none; a direct get, answered by any replica (the stream needs `allow_direct`).
    public func lastMessage(stream: String, subject: String) async throws -> StoredMessage? {
        try await directGet("DIRECT.GET.\(stream).\(subject)", payload: [], stream: stream)
    }

    /// The message at `sequence`, or `nil` when there is none (never stored, deleted, purged).
    public func message(stream: String, sequence: UInt64) async throws -> StoredMessage? {
        try await directGet("DIRECT.GET.\(stream)", payload: Array("{\"seq\":\(sequence)}".utf8), stream: stream)
    }

    private func directGet(_ api: String, payload: [UInt8], stream: String) async throws -> StoredMessage? {
        let reply: NATSMessage
        do {
            reply = try await connection.request(payload, to: "\(prefix).\(api)", timeout: timeout)
        } catch let error as NATSError where error.code == .noResponders {
            throw NATSError(.noResponders, "no direct get for stream \(stream): no such stream, no JetStream, or the stream does not allow direct gets")
        }
        if let status = reply.status, reply.payload.isEmpty || status >= 400 {
            if status == 404 { return nil }
            throw JetStreamError(code: status, errorCode: 0, description: reply.headers?.statusDescription ?? "direct get failed")
        }
        guard let message = StoredMessage(directGetReply: reply) else {
            throw NATSError(.protocolViolation, "a direct get reply without its Nats-Stream, Nats-Subject, Nats-Sequence and Nats-Time-Stamp headers")
        }
        return message
    }

    /// Removes messages from a stream: all of them, or those on `subject` (wildcards allowed),
    /// keeping the newest `keep`, or those below `sequence`. Returns how many were removed.
    @discardableResult
    public func purgeStream(_ name: String, subject: String? = nil, keep: UInt64? = nil, upToSequence sequence: UInt64? = nil) async throws -> UInt64 {
        struct Request: Encodable {
            var filter: String?
            var keep: UInt64?
            var seq: UInt64?
        }
        struct Purged: Decodable {
            var success: Bool
            var purged: UInt64
        }
        return try await request("STREAM.PURGE.\(name)", body: Request(filter: subject, keep: keep, seq: sequence), as: Purged.self).purged
    }

    /// What the server's JetStream offers this account.
    public struct AccountInfo: Decodable, Sendable, Hashable {
        public struct API: Decodable, Sendable, Hashable {
            /// The JetStream API level: 1 from nats-server 2.11 (per-message TTLs, limit markers).
            public var level: Int?
        }

        public var memory: UInt64
        public var storage: UInt64
        public var streams: Int
        public var consumers: Int
        public var api: API?
    }

    /// The account's JetStream usage and the server's API level (`$JS.API.INFO`).
    public func accountInfo() async throws -> AccountInfo {
        try await request("INFO", as: AccountInfo.self)
    }
}
