/// A violation of the NATS wire protocol found while parsing what a server sent.
///
/// The parser throws this instead of guessing; the connection treats it as fatal for the
/// socket it came from. `context` holds (a bounded prefix of) the offending bytes.
public struct ProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of violation this is. New codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case unknownOperation
            case malformedArguments
            case controlLineTooLong
            case payloadTooLarge
            case missingPayloadTerminator
            case malformedHeaders
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The line does not start with an operation a server may send.
        public static let unknownOperation = Code(.unknownOperation)
        /// A known operation has the wrong number or kind of arguments.
        public static let malformedArguments = Code(.malformedArguments)
        /// No line terminator within the maximum control-line length.
        public static let controlLineTooLong = Code(.controlLineTooLong)
        /// A message announces more payload bytes than the parser accepts.
        public static let payloadTooLarge = Code(.payloadTooLarge)
        /// The payload is not followed by `\r\n`.
        public static let missingPayloadTerminator = Code(.missingPayloadTerminator)
        /// An `HMSG` header block is not a valid `NATS/1.0` block.
        public static let malformedHeaders = Code(.malformedHeaders)

        public var description: String { base.rawValue }
    }

    /// Longest prefix of the offending bytes kept in `context`.
    public static let maximumContextLength = 256

    public let code: Code
    /// The offending bytes (at most `maximumContextLength` of them).
    public let context: [UInt8]

    public init(_ code: Code, context: some Collection<UInt8>) {
        self.code = code
        self.context = Array(context.prefix(Self.maximumContextLength))
    }

    public var description: String {
        let text = String(decoding: context, as: UTF8.self)
        return "NATS protocol error (\(code)): \(text.debugDescription)"
    }
}
