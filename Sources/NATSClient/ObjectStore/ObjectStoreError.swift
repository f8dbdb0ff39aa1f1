/// An error of an object store: a typed code, what it concerns, and the JetStream error
/// behind it when there is one.
public struct ObjectStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case objectNotFound, objectExists, bucketNotFound, bucketExists, invalidBucketName, invalidName
            case digestMismatch, incomplete, badMetadata, linkNotAllowed, linkToDeleted, linkToLink, linkIsBucket, fileError
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No such object, or it was deleted.
        public static let objectNotFound = Code(.objectNotFound)
        /// A link or a rename would replace an object that is not deleted.
        public static let objectExists = Code(.objectExists)
        public static let bucketNotFound = Code(.bucketNotFound)
        /// `createObjectStore` found a bucket of that name with another configuration.
        public static let bucketExists = Code(.bucketExists)
        /// Bucket names are `[a-zA-Z0-9_-]+`.
        public static let invalidBucketName = Code(.invalidBucketName)
        /// Object names must not be empty.
        public static let invalidName = Code(.invalidName)
        /// The chunks read do not have the SHA-256 digest the object's info records.
        public static let digestMismatch = Code(.digestMismatch)
        /// Fewer chunks or bytes came than the object's info records.
        public static let incomplete = Code(.incomplete)
        /// The stored info of an object is not valid JSON of the expected shape.
        public static let badMetadata = Code(.badMetadata)
        /// `put` with a link in its metadata: use `addLink`.
        public static let linkNotAllowed = Code(.linkNotAllowed)
        /// A link to a deleted object.
        public static let linkToDeleted = Code(.linkToDeleted)
        /// A link to a link.
        public static let linkToLink = Code(.linkToLink)
        /// The object is a link to a whole bucket: it has no bytes to get.
        public static let linkIsBucket = Code(.linkIsBucket)
        /// A file to put could not be read, or one to get into could not be written.
        public static let fileError = Code(.fileError)

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
        var text = "object store error (\(code)): \(message)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }
}
