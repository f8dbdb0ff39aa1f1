import Foundation
public import NATSProtocol

/// The JetStream API of a connection: streams, consumers, acknowledged publishing and pulling.
///
/// Every call is a request on `$JS.API.…` (or `$JS.<domain>.API.…`, or a custom prefix); an
/// `{"error":…}` reply becomes a ``JetStreamError``.
public struct JetStream: Sendable {
    public let connection: NATSConnection
    /// The API subject prefix, `$JS.API` by default.
    public let prefix: String
    public let timeout: Duration

    public init(connection: NATSConnection, domain: String? = nil, prefix: String? = nil, timeout: Duration = .seconds(5)) {
        self.connection = connection
        if let prefix {
            self.prefix = prefix.hasSuffix(".") ? String(prefix.dropLast()) : prefix
        } else if let domain {
            self.prefix = "$JS.\(domain).API"
        } else {
            self.prefix = "$JS.API"
        }
        self.timeout = timeout
    }

    // MARK: - Requests

    func request<Response: Decodable>(_ api: String, body: some Encodable, as type: Response.Type) async throws -> Response {
        let payload = try JSONEncoder().encode(body)
        return try await request(api, payload: Array(payload), as: type)
    }

    func request<Response: Decodable>(_ api: String, payload: [UInt8] = [], as type: Response.Type) async throws -> Response {
        let reply: NATSMessage
        do {
            reply = try await connection.request(payload, to: "\(prefix).\(api)", timeout: timeout)
        } catch let error as NATSError where error.code == .noResponders {
            throw NATSError(.noResponders, "JetStream is not enabled on the server (no responders for \(prefix).\(api))")
        }
        let data = Data(reply.payload)
        if let envelope = try? JSONDecoder().decode(APIErrorEnvelope.self, from: data), let error = envelope.error {
            throw JetStreamError(code: error.code, errorCode: error.errCode ?? 0, description: error.description ?? "")
        }
        do {
            return try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw NATSError(.protocolViolation, "unexpected JetStream reply to \(api): \(String(decoding: reply.payload.prefix(200), as: UTF8.self).debugDescription)", underlying: error)
        }
    }

    // MARK: - Streams

    /// Creates a stream; fails with error code 10058 if one with that name exists with another configuration.
    public func createStream(_ config: StreamConfig) async throws -> StreamInfo {
        try await request("STREAM.CREATE.\(config.name)", body: config, as: StreamInfo.self)
    }

    public func updateStream(_ config: StreamConfig) async throws -> StreamInfo {
        try await request("STREAM.UPDATE.\(config.name)", body: config, as: StreamInfo.self)
    }

    public func streamInfo(_ name: String) async throws -> StreamInfo {
        try await request("STREAM.INFO.\(name)", as: StreamInfo.self)
    }

    /// The stream if it exists, else creates it.
    public func ensureStream(_ config: StreamConfig) async throws -> StreamInfo {
        do {
            return try await streamInfo(config.name)
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFound || error.code == 404 {
            do {
                return try await createStream(config)
            } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNameInUse {
                return try await streamInfo(config.name)
            }
        }
    }

    public func deleteStream(_ name: String) async throws {
        struct Deleted: Decodable { var success: Bool }
        _ = try await request("STREAM.DELETE.\(name)", as: Deleted.self)
    }

    /// The names of every stream.
    public func streamNames() async throws -> [String] {
        struct Page: Decodable {
            var streams: [String]?
            var total: Int
            var offset: Int
            var limit: Int
        }
        struct Request: Encodable { var offset: Int }
        var names: [String] = []
        while true {
            let page = try await request("STREAM.NAMES", body: Request(offset: names.count), as: Page.self)
            let batch = page.streams ?? []
            names += batch
            if batch.isEmpty || names.count >= page.total { return names }
        }
    }

    // MARK: - Consumers

    /// Creates (or, with the same configuration, finds) a consumer; durable when the config
    /// has a `durableName`, ephemeral otherwise (named when it has a `name`).
    public func createConsumer(stream: String, config: ConsumerConfig) async throws -> ConsumerInfo {
        struct Request: Encodable {
            var stream_name: String
            var config: ConsumerConfig
        }
        let api = (config.durableName ?? config.name).map { "CONSUMER.CREATE.\(stream).\($0)" } ?? "CONSUMER.CREATE.\(stream)"
        return try await request(api, body: Request(stream_name: stream, config: config), as: ConsumerInfo.self)
    }

    public func consumerInfo(stream: String, consumer: String) async throws -> ConsumerInfo {
        try await request("CONSUMER.INFO.\(stream).\(consumer)", as: ConsumerInfo.self)
    }

    public func deleteConsumer(stream: String, consumer: String) async throws {
        struct Deleted: Decodable { var success: Bool }
        _ = try await request("CONSUMER.DELETE.\(stream).\(consumer)", as: Deleted.self)
    }

    // MARK: - Publishing

    /// Header names JetStream understands.
    public enum Header {
        public static let messageID = "Nats-Msg-Id"
        public static let expectedStream = "Nats-Expected-Stream"
        public static let expectedLastSequence = "Nats-Expected-Last-Sequence"
        /// Accept the message only if the last one on its subject has this sequence (0: none).
        public static let expectedLastSubjectSequence = "Nats-Expected-Last-Subject-Sequence"
        /// `sub`: the message replaces every earlier one on its subject; `all`: on the stream.
        public static let rollup = "Nats-Rollup"
        /// How long this message lives (`30s`, `1h`, `never`), on streams that allow message TTLs.
        public static let ttl = "Nats-TTL"
        /// Why the server placed a marker: `MaxAge`, `Purge` or `Remove`.
        public static let markerReason = "Nats-Marker-Reason"
        /// On a status ending a pull request: the messages and bytes it still owed.
        public static let pendingMessages = "Nats-Pending-Messages"
        public static let pendingBytes = "Nats-Pending-Bytes"
    }

    /// Publishes to a stream and waits for its acknowledgement.
    ///
    /// - Parameters:
    ///   - messageID: de-duplication id (`Nats-Msg-Id`): a repeat within the stream's window is
    ///     acknowledged with `duplicate: true` and not stored again.
    ///   - retries: attempts when no stream answers yet (status 503), 250 ms apart.
    public func publish(
        _ payload: [UInt8],
        to subject: String,
        headers: NATSHeaders? = nil,
        messageID: String? = nil,
        expectedStream: String? = nil,
        expectedLastSequence: UInt64? = nil,
        retries: Int = 3
    ) async throws -> PubAck {
        let headers = Self.headers(headers, messageID: messageID, expectedStream: expectedStream, expectedLastSequence: expectedLastSequence)
        var attempt = 0
        while true {
            let reply: NATSMessage
            do {
                reply = try await connection.request(payload, to: subject, headers: headers, timeout: timeout)
            } catch let error as NATSError where error.code == .noResponders && attempt < retries {
                attempt += 1
                try await Task.sleep(for: .milliseconds(250))
                continue
            }
            return try Self.decodeAck(reply)
        }
    }

    static func headers(_ base: NATSHeaders?, messageID: String?, expectedStream: String?, expectedLastSequence: UInt64?) -> NATSHeaders? {
        guard messageID != nil || expectedStream != nil || expectedLastSequence != nil else { return base }
        var headers = base ?? NATSHeaders()
        if let messageID { headers[Header.messageID] = messageID }
        if let expectedStream { headers[Header.expectedStream] = expectedStream }
        if let expectedLastSequence { headers[Header.expectedLastSequence] = String(expectedLastSequence) }
        return headers
    }

    static func decodeAck(_ reply: NATSMessage) throws -> PubAck {
        if let ack = PubAck.parseCommon(reply.payload) { return ack }
        let data = Data(reply.payload)
        if let envelope = try? JSONDecoder().decode(APIErrorEnvelope.self, from: data), let error = envelope.error {
            throw JetStreamError(code: error.code, errorCode: error.errCode ?? 0, description: error.description ?? "")
        }
        do {
            return try JSONDecoder().decode(PubAck.self, from: data)
        } catch {
            throw NATSError(.protocolViolation, "unexpected publish acknowledgement: \(String(decoding: reply.payload.prefix(200), as: UTF8.self).debugDescription)", underlying: error)
        }
    }

    /// Publishes many messages in order, with at most `maxPending` acknowledgements
    /// outstanding, and returns the acknowledgements in the same order. Much faster than
    /// awaiting each `publish`. A message that finds no stream (503) is sent again, in turn.
    public func publishAll(
        _ messages: [(subject: String, payload: [UInt8], messageID: String?)],
        maxPending: Int = 256
    ) async throws -> [PubAck] {
        var acks: [PubAck] = []
        acks.reserveCapacity(messages.count)
        var window: [(index: Int, request: ConnectionCore.PendingRequest)] = []
        defer { for entry in window { connection.forgetRequest(entry.request.token) } }
        var next = 0
        while acks.count < messages.count {
            while window.count < max(1, maxPending), next < messages.count {
                let message = messages[next]
                let headers = Self.headers(nil, messageID: message.messageID, expectedStream: nil, expectedLastSequence: nil)
                window.append((next, try connection.startRequest(message.payload, to: message.subject, headers: headers)))
                next += 1
            }
            let (index, request) = window.removeFirst()
            do {
                acks.append(try Self.decodeAck(try await request.reply(timeout: timeout)))
            } catch let error as NATSError where error.code == .noResponders {
                let message = messages[index]
                acks.append(try await publish(message.payload, to: message.subject, messageID: message.messageID))
            }
        }
        return acks
    }

    // MARK: - Pulling

    /// A handle on a pull consumer.
    public func pullConsumer(stream: String, consumer: String) -> PullConsumer {
        PullConsumer(jetStream: self, stream: stream, consumer: consumer)
    }
}
