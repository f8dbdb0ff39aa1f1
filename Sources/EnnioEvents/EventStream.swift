public import NATSClient

/// The stream over NATS: its configuration and its creation (its name and subjects, part of
/// the contract, are in `EventStreamSubjects.swift`, which needs no NATS).
extension EventStream {
    public static var config: StreamConfig {
        var config = StreamConfig(name: name, subjects: subjects, storage: .file)
        // Redeliveries and retries of the same event id within ten minutes are stored once.
        config.duplicateWindow = 10 * 60 * 1_000_000_000
        return config
    }

    /// Creates the stream unless it exists; a stream made before a category existed (before
    /// `rollout` and `run`, say) gets the missing subjects added, its other settings kept.
    @discardableResult
    public static func ensure(_ jetStream: JetStream) async throws -> StreamInfo {
        let info = try await jetStream.ensureStream(config)
        let missing = subjects.filter { !info.config.subjects.contains($0) }
        guard !missing.isEmpty else { return info }
        var updated = info.config
        updated.subjects += missing
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
    /// Retries up to `attempts` times (timeouts, a stream not ready yet, a reconnect), then
    /// throws ``EventNotAcknowledged`` — the event is never silently dropped.
    @discardableResult
    public func publishDurably(_ event: Event, attempts: Int = 5, timeout: Duration = .seconds(5)) async throws -> PubAck {
        let subject = try EventSubject.subject(for: event, host: host)
        let jetStream = JetStream(connection: connection, timeout: timeout)
        let payload = EventCodec.encode(event)
        var lastError = "no attempt"
        for attempt in 1...max(1, attempts) {
            do {
                return try await jetStream.publish(payload, to: subject, messageID: event.id)
            } catch let error as NATSError where error.code == .connectionClosed || error.code == .invalidSubject || error.code == .maxPayloadExceeded {
                throw error
            } catch {
                lastError = String(describing: error)
                if attempt < attempts { try await Task.sleep(for: .milliseconds(200 * attempt)) }
            }
        }
        throw EventNotAcknowledged(eventID: event.id, attempts: attempts, lastError: lastError)
    }
}
