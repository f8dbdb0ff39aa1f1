public import NATSClient

/// The stream over NATS: its configuration, limits and creation (its name and subjects, part of
/// the contract, are in `EventStreamSubjects.swift`, which needs no NATS).
///
/// The stream is the buffer between publishers and the coordinator, not the record: the
/// coordinator's history is. Its limits bound the disk it takes; past either the oldest
/// events go first, read by the coordinator or not, so they must cover the longest time the
/// coordinator may be down.
extension EventStream {
    /// How much the stream keeps.
    public struct Limits: Sendable, Hashable {
        /// Events older than this are deleted (default 7 days).
        public var maxAge: Duration
        /// Past this many bytes the oldest events are deleted (default 1 GiB).
        public var maxBytes: Int64

        public static let defaultMaxAge: Duration = .seconds(7 * 86_400)
        public static let defaultMaxBytes: Int64 = 1 << 30

        public init(maxAge: Duration = Limits.defaultMaxAge, maxBytes: Int64 = Limits.defaultMaxBytes) {
            self.maxAge = maxAge
            self.maxBytes = maxBytes
        }
    }

    /// The duplicate window when the age limit allows it: retries and redeliveries of the same
    /// event id within it are stored once.
    public static let duplicateWindow: Duration = .seconds(600)

    public static func config(_ limits: Limits = Limits()) -> StreamConfig {
        var config = StreamConfig(name: name, subjects: subjects, storage: .file)
        config.maxAge = nanoseconds(limits.maxAge)
        config.maxBytes = limits.maxBytes
        // JetStream wants the window no longer than the age limit.
        config.duplicateWindow = min(nanoseconds(duplicateWindow), config.maxAge)
        return config
    }

    public static var config: StreamConfig { config() }

    /// Creates the stream with `limits`, or brings an existing one's limits to them (what the
    /// coordinator does: its options decide). A stream made before a category existed (before
    /// `rollout` and `run`, say) gets the missing subjects added; its other settings are kept.
    @discardableResult
    public static func ensure(_ jetStream: JetStream, limits: Limits = Limits()) async throws -> StreamInfo {
        let wanted = config(limits)
        let info = try await jetStream.ensureStream(wanted)
        let current = info.config
        let missing = wanted.subjects.filter { !current.subjects.contains($0) }
        guard !missing.isEmpty || current.maxAge != wanted.maxAge
            || current.maxBytes != wanted.maxBytes || current.duplicateWindow != wanted.duplicateWindow
        else { return info }
        var updated = current
        updated.subjects += missing
        updated.maxAge = wanted.maxAge
        updated.maxBytes = wanted.maxBytes
        updated.duplicateWindow = wanted.duplicateWindow
        return try await jetStream.updateStream(updated)
    }

    /// What a publisher (an agent, `ennio pub`) does before publishing: makes sure the stream
    /// exists, creating it with the default limits if it may. A user that may not create it
    /// (an agent of a deployment with permissions) gets `nil`: the coordinator creates the
    /// stream, and publishing retries until it does. An existing stream is left as it is.
    public static func prepareForPublishing(_ jetStream: JetStream) async throws -> StreamInfo? {
        do {
            return try await jetStream.ensureStream(config)
        } catch let error as NATSError where error.code == .permissionViolation {
            return nil
        }
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// An event the stream did not acknowledge after every retry.
public struct EventNotAcknowledged: Error, Sendable, CustomStringConvertible {
    public let eventID: String
    public let attempts: Int
    public let lastError: String

    public var description: String {
        "event \(eventID) was not acknowledged by JetStream after \(attempts) attempts: \(lastError)"
    }
}

extension EventPublisher {
    /// Publishes `event` to the event stream and waits for JetStream's acknowledgement; the
    /// event id is the `Nats-Msg-Id`, so a retry (or a replay) is stored once.
    ///
    /// Retries up to `attempts` times (timeouts, a stream not ready yet, a reconnect), then
    /// throws ``EventNotAcknowledged`` — the event is never silently dropped. What retrying
    /// cannot mend is thrown at once: a closed connection, an invalid subject, a message too
    /// large, and the server's refusal to let this user publish there (`.permissionViolation`).
    @discardableResult
    public func publishDurably(_ event: Event, attempts: Int = 5, timeout: Duration = .seconds(5)) async throws -> PubAck {
        let subject = try EventSubject.subject(for: event, host: host)
        let jetStream = JetStream(connection: connection, timeout: timeout)
        let payload = EventCodec.encode(event)
        var lastError = "no attempt"
        for attempt in 1...max(1, attempts) {
            do {
                return try await jetStream.publish(payload, to: subject, messageID: event.id)
            } catch let error as NATSError
                where error.code == .connectionClosed || error.code == .invalidSubject || error.code == .maxPayloadExceeded
                || error.code == .permissionViolation
            {
                // Retrying cannot help.
                throw error
            } catch {
                lastError = String(describing: error)
                if attempt < attempts { try await Task.sleep(for: .milliseconds(200 * attempt)) }
            }
        }
        throw EventNotAcknowledged(eventID: event.id, attempts: attempts, lastError: lastError)
    }
}
