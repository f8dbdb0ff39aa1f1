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

    /// The configuration with `limits` and `replicas` copies of every event, each on a server
    /// of its own (1 on a single server; 3 on a cluster, so that losing any one server loses
    /// nothing and stops nothing).
    public static func config(_ limits: Limits = Limits(), replicas: Int = 1) -> StreamConfig {
        var config = StreamConfig(name: name, subjects: subjects, storage: .file)
        config.maxAge = nanoseconds(limits.maxAge)
        config.maxBytes = limits.maxBytes
        // JetStream wants the window no longer than the age limit.
        config.duplicateWindow = min(nanoseconds(duplicateWindow), config.maxAge)
        config.replicas = replicas
        return config
    }

    public static var config: StreamConfig { config() }

    /// How long ``EventPublisher/publishDurably(_:retryingFor:timeout:)`` goes on trying by
    /// default: longer than a cluster takes to elect a new stream leader (a few seconds) and a
    /// client to reconnect to another server, with room for a loaded machine.
    public static let publishPatience: Duration = .seconds(60)

    /// Creates the stream with `limits`, or brings an existing one's limits to them (what the
    /// coordinator does: its options decide). A stream made before a category existed (before
    /// `rollout` and `run`, say) gets the missing subjects added; its other settings are kept.
    ///
    /// - Parameter replicas: the copies to keep. `nil` creates the stream with one and leaves
    ///   an existing stream's count as it is; a number creates it with that many, or changes an
    ///   existing stream to that many (the servers copy what it holds to the new replicas).
    ///   More than one needs a JetStream cluster with at least that many servers.
    @discardableResult
    public static func ensure(_ jetStream: JetStream, limits: Limits = Limits(), replicas: Int? = nil) async throws -> StreamInfo {
        let wanted = config(limits, replicas: replicas ?? 1)
        let info = try await jetStream.ensureStream(wanted)
        let current = info.config
        let missing = wanted.subjects.filter { !current.subjects.contains($0) }
        let rescale = replicas.map { $0 != current.replicas } ?? false
        guard !missing.isEmpty || rescale || current.maxAge != wanted.maxAge
            || current.maxBytes != wanted.maxBytes || current.duplicateWindow != wanted.duplicateWindow
        else { return info }
        var updated = current
        updated.subjects += missing
        updated.maxAge = wanted.maxAge
        updated.maxBytes = wanted.maxBytes
        updated.duplicateWindow = wanted.duplicateWindow
        if let replicas { updated.replicas = replicas }
        return try await jetStream.updateStream(updated)
    }

    /// What a publisher (an agent, `ennio pub`) does before publishing: makes sure the stream
    /// exists, creating it with the default limits and `replicas` copies (default 1) if it may.
    /// A user that may not create it (an agent of a deployment with permissions) gets `nil`:
    /// the coordinator creates the stream, and publishing retries until it does. An existing
    /// stream is left as it is (the coordinator's options decide its limits and copies).
    public static func prepareForPublishing(_ jetStream: JetStream, replicas: Int? = nil) async throws -> StreamInfo? {
        do {
            return try await jetStream.ensureStream(config(replicas: replicas ?? 1))
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
    /// Tries again — after 100 ms, then twice as long each time up to 2 s — for as long as
    /// `patience` allows: through timeouts, a stream not ready yet, a reconnect to another
    /// server, and the election of a new leader after the stream's leader was lost (until
    /// then nobody answers for the stream). An attempt whose acknowledgement was lost is
    /// acknowledged by the next as a duplicate. When `patience` runs out it throws
    /// ``EventNotAcknowledged``: the event is never silently dropped. What no retry can mend
    /// is thrown at once: a closed connection, an invalid subject, a message too large, a
    /// publish the server does not permit.
    @discardableResult
    public func publishDurably(
        _ event: Event, retryingFor patience: Duration = EventStream.publishPatience, timeout: Duration = .seconds(5)
    ) async throws -> PubAck {
        let subject = try EventSubject.subject(for: event, host: host)
        let jetStream = JetStream(connection: connection, timeout: timeout)
        let payload = EventCodec.encode(event)
        let deadline = ContinuousClock.now + patience
        var pause: Duration = .milliseconds(100)
        var attempts = 0
        while true {
            attempts += 1
            do {
                return try await jetStream.publish(payload, to: subject, messageID: event.id)
            } catch let error as NATSError
                where error.code == .connectionClosed || error.code == .invalidSubject || error.code == .maxPayloadExceeded
                || error.code == .permissionViolation
            {
                // Retrying cannot help.
                throw error
            } catch {
                guard ContinuousClock.now + pause < deadline else {
                    throw EventNotAcknowledged(eventID: event.id, attempts: attempts, lastError: String(describing: error))
                }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }
}
