/// How a connection proves who it is with an NKEY: the server sends a nonce in its `INFO`,
/// the client signs it with the user's Ed25519 key and sends the signature in `CONNECT`,
/// with the user's public key (NKEY authentication) or the user's JWT (decentralised, JWT
/// authentication).
///
/// Files are read again at every connect and reconnect, so rotated credentials are picked
/// up. Secrets never appear in ``description``, in a mirror (`dump`) or in an error.
public struct NATSCredentials: Sendable, CustomStringConvertible, CustomReflectable {
    /// Signs the server's nonce with the user's NKEY; returns the 64-byte Ed25519 signature.
    public typealias Signer = @Sendable (_ nonce: [UInt8]) throws -> [UInt8]

    private enum Source: Sendable {
        case seed(String)
        case seedFile(String)
        case credentialsFile(String)
        case jwt(String, Signer)
        case nkey(publicKey: String, Signer)
    }

    private let source: Source

    private init(_ source: Source) {
        self.source = source
    }

    /// NKEY authentication with the user's seed (`SU…`), given in code.
    public static func nkeySeed(_ seed: String) -> NATSCredentials {
        NATSCredentials(.seed(seed))
    }

    /// NKEY authentication with the seed in a file (as `nats --nkey FILE` reads it: the first
    /// line starting with `SU`, or an armoured block).
    public static func nkeySeedFile(_ path: String) -> NATSCredentials {
        NATSCredentials(.seedFile(path))
    }

    /// JWT authentication with a `.creds` file (the user's JWT and seed, as `nsc` writes it).
    public static func credentialsFile(_ path: String) -> NATSCredentials {
        NATSCredentials(.credentialsFile(path))
    }

    /// JWT authentication where the seed is kept elsewhere (a vault, a hardware key): `jwt` is
    /// the user's JWT and `sign` signs the server's nonce with the user's key.
    public static func jwt(_ jwt: String, sign: @escaping Signer) -> NATSCredentials {
        NATSCredentials(.jwt(jwt, sign))
    }

    /// NKEY authentication where the seed is kept elsewhere: `publicKey` is the user's (`U…`)
    /// and `sign` signs the server's nonce with its private key.
    public static func nkey(publicKey: String, sign: @escaping Signer) -> NATSCredentials {
        NATSCredentials(.nkey(publicKey: publicKey, sign))
    }

    /// What goes into `CONNECT`: the JWT or the public key, and the signature of `nonce`.
    ///
    /// - Throws: `.invalidCredentials` when a file cannot be read, a seed is not valid or the
    ///   signer fails.
    func proof(signing nonce: String) throws(NATSError) -> (jwt: String?, nkey: String?, signature: String) {
        let message = Array(nonce.utf8)
        switch source {
        case .seed(let seed):
            let key = try NKey(seed: seed)
            return (nil, key.publicKey, RawBase64URL.encode(try key.sign(message)))
        case .seedFile(let path):
            let key = try NKey(seed: try CredentialsFile.seed(inFile: path))
            return (nil, key.publicKey, RawBase64URL.encode(try key.sign(message)))
        case .credentialsFile(let path):
            let file = try CredentialsFile(path: path)
            let key = try NKey(seed: file.seed)
            return (file.jwt, nil, RawBase64URL.encode(try key.sign(message)))
        case .jwt(let jwt, let sign):
            return (jwt, nil, RawBase64URL.encode(try Self.call(sign, message)))
        case .nkey(let publicKey, let sign):
            return (nil, publicKey, RawBase64URL.encode(try Self.call(sign, message)))
        }
    }

    private static func call(_ sign: Signer, _ message: [UInt8]) throws(NATSError) -> [UInt8] {
        do {
            return try sign(message)
        } catch {
            throw NATSError(.invalidCredentials, "the signing callback failed", underlying: error)
        }
    }

    /// What kind of credentials these are and where they come from; never a secret.
    public var description: String {
        switch source {
        case .seed: return "NKEY seed (given in code)"
        case .seedFile(let path): return "NKEY seed file \(path)"
        case .credentialsFile(let path): return "credentials file \(path)"
        case .jwt: return "user JWT with a signing callback"
        case .nkey(let publicKey, _): return "NKEY \(publicKey) with a signing callback"
        }
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["source": description], displayStyle: .struct)
    }
}
