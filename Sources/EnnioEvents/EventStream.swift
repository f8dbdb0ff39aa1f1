public import NATSClient

/// The stream over NATS: its configuration and its creation (its name and subjects, part of
/// the contract, are in `EventStreamSubjects.swift`, which needs no NATS).
extension EventStream {
    public static var config: StreamConfig { config(replicas: 1) }

    /// The configuration with `replicas` copies of every event, each on a server of its own
    /// (1 on a single server; 3 on a cluster, so that losing any one server loses nothing and
    /// stops nothing).
    public static func config(replicas: Int) -> StreamConfig {
        var config = StreamConfig(name: name, subjects: subjects, storage: .file)
        // Redeliveries and retries of the same event id within ten minutes are stored once.
        config.duplicateWindow = 10 * 60 * 1_000_000_000
        config.replicas = replicas
        return config
    }

    /// How long ``EventPublisher/publishDurably(_:retryingFor:timeout:)`` goes on trying by
    /// default: longer than a cluster takes to elect a new stream leader (a few seconds) and a
    /// client to reconnect to another server, with room for a loaded machine.
    public static let publishPatience: Duration = .seconds(60)

    /// Creates the stream unless it exists; a stream made before a category existed (before
    /// `rollout` and `run`, say) gets the missing subjects added, its other settings kept.
    ///
    /// - Parameter replicas: the copies to keep. `nil` creates the stream with one and leaves
    ///   an existing stream's count as it is; a number creates it with that many, or changes an
    ///   existing stream to that many (the servers copy what it holds to the new replicas).
    ///   More than one needs a JetStream cluster with at least that many servers.
    @discardableResult
    public static func ensure(_ jetStream: JetStream, replicas: Int? = nil) async throws -> StreamInfo {
        let info = try await jetStream.ensureStream(config(replicas: replicas ?? 1))
        let missing = subjects.filter { !info.config.subjects.contains($0) }
        let rescale = replicas.map { $0 != info.config.replicas } ?? false
        guard !missing.isEmpty || rescale else { return info }
        var updated = info.config
        updated.subjects += missing
        if let replicas { updated.replicas = replicas }
        return try await jetStream.updateStream(updated)
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
