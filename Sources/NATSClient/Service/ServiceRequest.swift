import EnnioSync
import Foundation
public import NATSProtocol

/// A request to a service endpoint, with the ways to answer it.
public struct ServiceRequest: Sendable {
    public let message: NATSMessage
    let connection: NATSConnection
    let outcome: Outcome

    public var subject: String { message.subject }
    public var payload: [UInt8] { message.payload }
    public var headers: NATSHeaders? { message.headers }
    /// The payload as UTF-8 text.
    public var string: String { message.string }

    /// Whether the handler answered, and with which error: what the statistics count.
    final class Outcome: Sendable {
        private let state = Locked<(responded: Bool, error: ServiceReplyError?)>((false, nil))

        var responded: Bool { state.withLock { $0.responded } }
        var error: ServiceReplyError? { state.withLock { $0.error } }

        func record(_ error: ServiceReplyError?) {
            state.withLock {
                $0.responded = true
                if let error { $0.error = error }
            }
        }
    }

    /// Answers with `payload`. A request without a reply subject (a plain publish) is not
    /// answered.
    public func respond(_ payload: [UInt8], headers: NATSHeaders? = nil) throws(NATSError) {
        guard let reply = message.replyTo, !reply.isEmpty else { return }
        try connection.publish(payload, to: reply, headers: headers)
        outcome.record(nil)
    }

    /// Answers with the UTF-8 bytes of `text`.
    public func respond(_ text: String, headers: NATSHeaders? = nil) throws(NATSError) {
        try respond(Array(text.utf8), headers: headers)
    }

    /// Answers with `value` as JSON.
    public func respond(json value: some Encodable) throws {
        try respond(Array(try JSONEncoder().encode(value)))
    }

    /// Answers with an error (ADR-32): `code` in `Nats-Service-Error-Code`, `description` in
    /// `Nats-Service-Error`, `data` as the payload. Counted in the endpoint's errors.
    public func respondError(code: Int, description: String, data: [UInt8] = [], headers: NATSHeaders? = nil) throws(NATSError) {
        // A header value may not hold line breaks ("\r\n" is one Character: look at scalars).
        var cleaned = String.UnicodeScalarView()
        for scalar in description.unicodeScalars { cleaned.append(scalar == "\r" || scalar == "\n" ? " " : scalar) }
        let description = String(cleaned)
        var headers = headers ?? NATSHeaders()
        headers[ServiceReplyError.codeHeader] = String(code)
        headers[ServiceReplyError.descriptionHeader] = description
        let error = ServiceReplyError(code: code, description: description)
        guard let reply = message.replyTo, !reply.isEmpty else {
            outcome.record(error)
            return
        }
        try connection.publish(data, to: reply, headers: headers)
        outcome.record(error)
    }
}
