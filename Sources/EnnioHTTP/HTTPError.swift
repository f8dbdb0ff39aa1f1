/// A request the server cannot take: a typed code, the status it is answered with, and a
/// sentence for the client (never the offending bytes themselves, which may be huge or hostile).
///
/// Codes are static members rather than enum cases, so that new ones do not break callers.
public struct HTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case malformedRequestLine, requestLineTooLong, unsupportedVersion
            case malformedHeader, headersTooLarge, tooManyHeaders, missingHost
            case invalidContentLength, bodyTooLarge, unsupportedTransferEncoding
            case malformedTarget, malformedQuery
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The request line is not `METHOD SP target SP HTTP/x.y`.
        public static let malformedRequestLine = Code(.malformedRequestLine)
        /// The request line is longer than the server accepts (414).
        public static let requestLineTooLong = Code(.requestLineTooLong)
        /// An HTTP version other than 1.0 and 1.1 (505).
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// A header line is not `name: value`, or holds a control character.
        public static let malformedHeader = Code(.malformedHeader)
        /// The request line and headers together are larger than the server accepts (431).
        public static let headersTooLarge = Code(.headersTooLarge)
        /// More header lines than the server accepts (431).
        public static let tooManyHeaders = Code(.tooManyHeaders)
        /// An HTTP/1.1 request without exactly one `Host` header.
        public static let missingHost = Code(.missingHost)
        /// `Content-Length` is not a number, or appears twice with different values.
        public static let invalidContentLength = Code(.invalidContentLength)
        /// A body larger than the server accepts (413).
        public static let bodyTooLarge = Code(.bodyTooLarge)
        /// `Transfer-Encoding` in a request (501): this server takes no chunked bodies.
        public static let unsupportedTransferEncoding = Code(.unsupportedTransferEncoding)
        /// The path has a bad percent escape, or decodes to something that is not text.
        public static let malformedTarget = Code(.malformedTarget)
        /// The query string has a bad percent escape or is not UTF-8.
        public static let malformedQuery = Code(.malformedQuery)

        public var description: String { base.rawValue }

        /// The status a request failing this way is answered with.
        public var status: HTTPStatus {
            switch base {
            case .requestLineTooLong: .uriTooLong
            case .unsupportedVersion: .httpVersionNotSupported
            case .headersTooLarge, .tooManyHeaders: .requestHeaderFieldsTooLarge
            case .bodyTooLarge: .contentTooLarge
            case .unsupportedTransferEncoding: .notImplemented
            default: .badRequest
            }
        }
    }

    public let code: Code
    /// For the client and the log: what was wrong, in a sentence.
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var status: HTTPStatus { code.status }

    public var description: String { "\(code): \(detail)" }
}
