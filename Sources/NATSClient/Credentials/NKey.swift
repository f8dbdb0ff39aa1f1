import COpenSSL

/// An NKEY: an Ed25519 key pair of a NATS user, account, operator, server or cluster, known
/// by its seed (`SU…`, a secret) and its public key (`U…`).
///
/// The seed never appears in ``description`` or a mirror (`dump`, the debugger's summary); only
/// ``seed`` hands it out, for the one who must store it.
public struct NKey: Sendable, CustomStringConvertible, CustomReflectable {
    /// Which kind of entity a key belongs to; the first letter of its public key.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        /// The public key's prefix byte.
        let prefix: UInt8
        public let description: String

        private init(prefix: UInt8, name: String) {
            self.prefix = prefix
            self.description = name
        }

        /// `U…`: a user, who connects.
        public static let user = Kind(prefix: 20 << 3, name: "user")
        /// `A…`: an account, which signs its users' JWTs.
        public static let account = Kind(prefix: 0, name: "account")
        /// `O…`: an operator, which signs its accounts' JWTs.
        public static let `operator` = Kind(prefix: 14 << 3, name: "operator")
        /// `N…`: a server.
        public static let server = Kind(prefix: 13 << 3, name: "server")
        /// `C…`: a cluster.
        public static let cluster = Kind(prefix: 2 << 3, name: "cluster")

        static let all: [Kind] = [.user, .account, .operator, .server, .cluster]

        /// The kind named `user`, `account`, `operator`, `server` or `cluster`.
        public init?(name: String) {
            guard let kind = Self.all.first(where: { $0.description == name }) else { return nil }
            self = kind
        }

        init?(prefix: UInt8) {
            guard let kind = Self.all.first(where: { $0.prefix == prefix }) else { return nil }
            self = kind
        }
    }

    public let kind: Kind
    /// The public key, e.g. `UD…`: safe to share and to log.
    public let publicKey: String
    private let rawSeed: [UInt8]

    /// The key pair of an encoded seed (`SU…`, `SA…`, `SO…`, …).
    /// - Throws: `.invalidCredentials` when the text is not a valid seed (the message never
    ///   quotes it).
    public init(seed: some StringProtocol) throws(NATSError) {
        let (prefix, raw) = try NKeyEncoding.decodeSeed(seed)
        guard let kind = Kind(prefix: prefix) else {
            throw NATSError(.invalidCredentials, "the NKEY seed is of an unknown kind")
        }
        try self.init(kind: kind, rawSeed: raw)
    }

    private init(kind: Kind, rawSeed: [UInt8]) throws(NATSError) {
        self.kind = kind
        self.rawSeed = rawSeed
        let key = try Ed25519Key(seed: rawSeed)
        self.publicKey = NKeyEncoding.encodePublic(prefix: kind.prefix, key: try key.publicKey())
    }

    /// A new key pair from the system's random generator.
    public static func generate(_ kind: Kind) throws(NATSError) -> NKey {
        var seed = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&seed, Int32(seed.count)) == 1 else {
            throw NATSError(.invalidCredentials, "the system's random generator failed: \(OpenSSLErrors.take())")
        }
        return try NKey(kind: kind, rawSeed: seed)
    }

    /// The encoded seed: a secret. Store it in a file only its owner can read.
    public var seed: String {
        NKeyEncoding.encodeSeed(prefix: kind.prefix, seed: rawSeed)
    }

    /// Signs `message` with Ed25519; the signature is 64 bytes.
    public func sign(_ message: [UInt8]) throws(NATSError) -> [UInt8] {
        try Ed25519Key(seed: rawSeed).sign(message)
    }

    /// Whether `signature` is `publicKey`'s Ed25519 signature of `message`.
    public static func verify(_ signature: [UInt8], of message: [UInt8], publicKey: String) -> Bool {
        guard let (_, key) = try? NKeyEncoding.decodePublic(publicKey) else { return false }
        return Ed25519Key.verify(signature, of: message, publicKey: key)
    }

    /// `NKey(user UD…)`: the public key only.
    public var description: String { "NKey(\(kind) \(publicKey))" }

    public var customMirror: Mirror {
        Mirror(self, children: ["kind": kind, "publicKey": publicKey], displayStyle: .struct)
    }
}

/// An Ed25519 private key inside libcrypto, freed when it goes.
private struct Ed25519Key: ~Copyable {
    let key: OpaquePointer

    init(seed: [UInt8]) throws(NATSError) {
        guard seed.count == 32, let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            throw NATSError(.invalidCredentials, "the NKEY seed is not an Ed25519 seed: \(OpenSSLErrors.take())")
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    func publicKey() throws(NATSError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        var length = bytes.count
        guard EVP_PKEY_get_raw_public_key(key, &bytes, &length) == 1, length == 32 else {
            throw NATSError(.invalidCredentials, "cannot derive the NKEY's public key: \(OpenSSLErrors.take())")
        }
        return bytes
    }

    func sign(_ message: [UInt8]) throws(NATSError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw NATSError(.invalidCredentials, "out of memory signing") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
            EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == 64
        else {
            throw NATSError(.invalidCredentials, "Ed25519 signing failed: \(OpenSSLErrors.take())")
        }
        return signature
    }

    static func verify(_ signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, publicKey.count) else {
            OpenSSLErrors.discard()
            return false
        }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        let valid = EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1
            && EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
        OpenSSLErrors.discard()
        return valid
    }
}
