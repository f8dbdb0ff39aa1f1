/// A service that cannot be made as configured (ADR-32 names, versions, subjects).
public struct ServiceError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidName, invalidVersion, invalidSubject, invalidQueueGroup, stopped, alreadyRunning
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Service and endpoint names are `[A-Za-z0-9_-]+`.
        public static let invalidName = Code(.invalidName)
        /// Versions are semantic versions (`1.4.0`, `2.0.0-rc.1+build.5`).
        public static let invalidVersion = Code(.invalidVersion)
        /// An endpoint's subject or a group's prefix is not a valid subject (or a group holds `>`).
        public static let invalidSubject = Code(.invalidSubject)
        public static let invalidQueueGroup = Code(.invalidQueueGroup)
        /// The service was stopped: it takes no more endpoints and does not run again.
        public static let stopped = Code(.stopped)
        /// `run()` was called while the service runs.
        public static let alreadyRunning = Code(.alreadyRunning)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "service error (\(code)): \(message)" }
}

/// An error reply of a service (ADR-32): a numeric code and a description, carried in the
/// `Nats-Service-Error-Code` and `Nats-Service-Error` headers.
///
/// Thrown by a handler, it becomes the reply; read from a reply with
/// ``NATSMessage/serviceError``.
public struct ServiceReplyError: Error, Sendable, Hashable, CustomStringConvertible {
    public static let codeHeader = "Nats-Service-Error-Code"
    public static let descriptionHeader = "Nats-Service-Error"

    public let code: Int
    public let errorDescription: String

    public init(code: Int, description: String) {
        self.code = code
        self.errorDescription = description
    }

    public var description: String { "\(code):\(errorDescription)" }
}

extension NATSMessage {
    /// The service error this reply carries, if it is an error reply.
    public var serviceError: ServiceReplyError? {
        guard let headers, let code = headers[ServiceReplyError.codeHeader].flatMap({ Int($0) }) else { return nil }
        return ServiceReplyError(code: code, description: headers[ServiceReplyError.descriptionHeader] ?? "")
    }
}
