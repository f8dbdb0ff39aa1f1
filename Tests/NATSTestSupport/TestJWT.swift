import COpenSSL
import Foundation
import NATSClient

/// NATS JWTs (version 2) as `nsc` writes them, so that tests can run a server in operator
/// mode without nsc: an operator signs its own JWT and its accounts', an account signs its
/// users'. Each is `header.claims.signature`, base64url without padding, signed with Ed25519
/// over `header.claims`; the `jti` is the base32 SHA-512/256 of the claims without it.
enum TestJWT {
    /// The operator's self-signed JWT.
    static func operatorJWT(_ operatorKey: NKey, name: String = "ennio-test-operator") throws -> String {
        try encode(subject: operatorKey.publicKey, name: name, issuer: operatorKey, nats: ["type": "operator", "version": 2])
    }

    /// An account's JWT, signed by its operator; no limits (JetStream included).
    static func accountJWT(_ account: NKey, signedBy operatorKey: NKey, name: String = "ennio-test-account", jetStream: Bool = true) throws -> String {
        var limits: [String: Any] = [
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
        ]
        if jetStream {
            limits["mem_storage"] = -1
            limits["disk_storage"] = -1
            limits["streams"] = -1
            limits["consumer"] = -1
        }
        return try encode(
            subject: account.publicKey, name: name, issuer: operatorKey,
            nats: ["limits": limits, "default_permissions": ["pub": [:], "sub": [:]], "type": "account", "version": 2]
        )
    }

    /// A user's JWT, signed by its account; `expires` in the past makes a user the server refuses.
    static func userJWT(_ user: NKey, signedBy account: NKey, name: String = "ennio-test-user", expires: Date? = nil) throws -> String {
        try encode(
            subject: user.publicKey, name: name, issuer: account, expires: expires,
            nats: ["pub": [:], "sub": [:], "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2]
        )
    }

    /// The text of a `.creds` file holding `jwt` and `user`'s seed.
    static func credentials(jwt: String, user: NKey) -> String {
        """
        -----BEGIN NATS USER JWT-----
        \(jwt)
        ------END NATS USER JWT------

        ************************* IMPORTANT *************************
        NKEY Seed printed below can be used to sign and prove identity.
        NKEYs are sensitive and should be treated as secrets.

        -----BEGIN USER NKEY SEED-----
        \(user.seed)
        ------END USER NKEY SEED------

        *************************************************************

        """
    }

    /// Writes `text` to a new file only its owner can read, and returns the path.
    static func writeSecretFile(_ text: String, suffix: String) throws -> String {
        let path = NSTemporaryDirectory() + "ennio-\(UUID().uuidString)\(suffix)"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TestSupportError(description: "cannot write \(path)")
        }
        return path
    }

    private static func encode(subject: String, name: String, issuer: NKey, expires: Date? = nil, nats: [String: Any]) throws -> String {
        var claims: [String: Any] = [
            "iat": Int(Date().timeIntervalSince1970),
            "iss": issuer.publicKey,
            "name": name,
            "sub": subject,
        ]
        if let expires { claims["exp"] = Int(expires.timeIntervalSince1970) }
        claims["jti"] = NKeyEncoding.base32Encode(try sha512_256(try json(claims)))
        claims["nats"] = nats
        let header = RawBase64URL.encode(try json(["typ": "JWT", "alg": "ed25519-nkey"]))
        let body = RawBase64URL.encode(try json(claims))
        let signature = try issuer.sign(Array("\(header).\(body)".utf8))
        return "\(header).\(body).\(RawBase64URL.encode(signature))"
    }

    private static func json(_ object: [String: Any]) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    private static func sha512_256(_ bytes: [UInt8]) throws -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha512_256(), nil) == 1, length == 32 else {
            throw TestSupportError(description: "SHA-512/256 failed")
        }
        return digest
    }
}
