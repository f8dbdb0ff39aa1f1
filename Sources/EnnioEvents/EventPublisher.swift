public import NATSClient
import NATSProtocol

/// Publishes events over NATS, each to its subject, as JSON.
///
/// Node events go to the subject of this publisher's `host`. Every event also carries the
/// `Nats-Msg-Id` header set to its id, so a JetStream stream can de-duplicate redeliveries.
public struct EventPublisher: Sendable {
    public let connection: NATSConnection
    /// The host whose subject node events go to; required for node events.
    public let host: String?

    /// - Throws: ``SubjectSegmentError`` when `host` is not a valid subject segment.
    public init(connection: NATSConnection, host: String? = nil) throws(SubjectSegmentError) {
        if let host { try SubjectSegment.validate(host, role: "host") }
        self.connection = connection
        self.host = host
    }

    /// The header name JetStream uses for de-duplication.
    public static let messageIDHeader = "Nats-Msg-Id"

    /// Publishes `event` and returns the subject it went to. Returns once the message is
    /// buffered; flush the connection to wait for the server.
    ///
    /// - Throws: ``SubjectSegmentError`` for an event whose project (or this publisher's host)
    ///   cannot be a subject segment; ``NATSError`` when the connection refuses the message.
    @discardableResult
    public func publish(_ event: Event) throws -> String {
        let subject = try EventSubject.subject(for: event, host: host)
        var headers = NATSHeaders()
        headers.append(event.id, for: Self.messageIDHeader)
        try connection.publish(EventCodec.encode(event), to: subject, headers: headers)
        return subject
    }
}
