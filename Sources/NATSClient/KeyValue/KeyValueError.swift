/// An error of a Key-Value bucket: a typed code, what it concerns, and the JetStream error
/// behind it when there is one.
public struct KeyValueError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case keyNotFound, keyExists, wrongLastSequence, bucketNotFound, bucketExists
            case invalidKey, invalidBucketName, invalidConfiguration, valueTooLarge, perKeyTTLNotEnabled, perKeyTTLNotSupported
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No value for the key: never written, deleted or purged (or not at that revision).
        public static let keyNotFound = Code(.keyNotFound)
        /// `create` found a value for the key.
        public static let keyExists = Code(.keyExists)
        /// `update` (or a delete with a revision) found a newer revision than the one given.
        public static let wrongLastSequence = Code(.wrongLastSequence)
        public static let bucketNotFound = Code(.bucketNotFound)
        /// `createKeyValue` found a bucket of that name with another configuration.
        public static let bucketExists = Code(.bucketExists)
        /// Keys are `[-/_=.a-zA-Z0-9]+`, not starting or ending with `.`; patterns may use `*`
        /// and a final `>`.
        public static let invalidKey = Code(.invalidKey)
        /// Bucket names are `[a-zA-Z0-9_-]+`.
        public static let invalidBucketName = Code(.invalidBucketName)
        /// A history outside 1…64, a limit-marker TTL under a second, a TTL under a second, …
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The value is larger than the bucket's maximum value size.
        public static let valueTooLarge = Code(.valueTooLarge)
        /// A per-key TTL was given for a bucket that does not allow them (see
        /// ``KeyValueConfig/allowsPerKeyTTL``).
        public static let perKeyTTLNotEnabled = Code(.perKeyTTLNotEnabled)
        /// Per-key TTLs or limit markers were asked of a server older than nats-server 2.11.
        public static let perKeyTTLNotSupported = Code(.perKeyTTLNotSupported)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The JetStream API's error, when the server reported one.
    public let underlying: JetStreamError?

    public init(_ code: Code, _ message: String, underlying: JetStreamError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var text = "Key-Value error (\(code)): \(message)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }
}
