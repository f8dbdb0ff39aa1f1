import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// NKEY seeds, keys and signatures, `.creds` parsing, and secrets kept out of text: no sockets.
@Suite struct NKeyTests {
    /// A user seed and the public key its `.creds` JWT names (nats-io/nkeys' test data).
    static let knownSeed = "SUAOTBNEUHZDFJT3EUMELT7MQTP24JF3XVCXQNDSCU74G5IU6VAJBKH5LI"
    static let knownPublicKey = "UDE6WTGLTTPCRJRJCKBJRGVNZTLIVR7LEEELR4CYWWWBKJS7XYIKXDUU"

    @Test func crc16IsXmodem() {
        #expect(NKeyEncoding.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(NKeyEncoding.crc16([UInt8]()) == 0)
    }

    @Test func base32RoundTripsAtEveryLength() {
        for length in 0...40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = NKeyEncoding.base32Encode(bytes)
            #expect(!text.contains("="))
            #expect(NKeyEncoding.base32Decode(text) == bytes, "length \(length)")
        }
        #expect(NKeyEncoding.base32Encode(Array("foobar".utf8)) == "MZXW6YTBOI")
        #expect(NKeyEncoding.base32Decode("MZXW6YTBOI======") == Array("foobar".utf8))
        #expect(NKeyEncoding.base32Decode("mzxw6ytboi") == nil)
        #expect(NKeyEncoding.base32Decode("MZXW1") == nil)
    }

    @Test func aKnownSeedGivesItsKnownPublicKey() throws {
        let key = try NKey(seed: Self.knownSeed)
        #expect(key.kind == .user)
        #expect(key.publicKey == Self.knownPublicKey)
        #expect(key.seed == Self.knownSeed)
        #expect(try NKey(seed: "  \(Self.knownSeed)\n").publicKey == Self.knownPublicKey)
    }

    @Test func generatedKeysOfEveryKindStartWithTheirLetters() throws {
        for (kind, seedPrefix, keyPrefix) in [(NKey.Kind.user, "SU", "U"), (.account, "SA", "A"), (.operator, "SO", "O"), (.server, "SN", "N"), (.cluster, "SC", "C")] {
            let key = try NKey.generate(kind)
            #expect(key.seed.hasPrefix(seedPrefix))
            #expect(key.seed.count == 58)
            #expect(key.publicKey.hasPrefix(keyPrefix))
            #expect(key.publicKey.count == 56)
            let again = try NKey(seed: key.seed)
            #expect(again.kind == kind)
            #expect(again.publicKey == key.publicKey)
        }
        #expect(try NKey.generate(.user).seed != NKey.generate(.user).seed)
    }

    @Test func signaturesVerifyOnlyForTheirMessageAndKey() throws {
        let key = try NKey(seed: Self.knownSeed)
        let message = Array("the server's nonce".utf8)
        let signature = try key.sign(message)
        #expect(signature.count == 64)
        #expect(NKey.verify(signature, of: message, publicKey: key.publicKey))
        #expect(!NKey.verify(signature, of: message + [0], publicKey: key.publicKey))
        #expect(!NKey.verify(signature, of: message, publicKey: try NKey.generate(.user).publicKey))
        #expect(!NKey.verify(signature, of: message, publicKey: "UNOTAKEY"))
    }

    @Test func badSeedsAreInvalidCredentialsAndNeverQuoted() {
        var corrupted = Array(Self.knownSeed)
        corrupted[20] = corrupted[20] == "A" ? "B" : "A"
        for text in [String(corrupted), Self.knownPublicKey, "SUAOTBNEUHZDFJT3", "not a seed at all", Self.knownSeed.lowercased(), ""] {
            do {
                _ = try NKey(seed: text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.code == .invalidCredentials)
                if text.count > 8 { #expect(!error.description.contains(text)) }
            }
        }
    }

    @Test func keysAndCredentialsNeverPrintTheirSecrets() throws {
        let key = try NKey(seed: Self.knownSeed)
        let credentials = NATSCredentials.nkeySeed(Self.knownSeed)
        var options = NATSOptions(servers: ["nats://alice:hunter2@h:1", "nats://t0ken@h:2"])
        options.password = "hunter3"
        options.token = "t0ken4"
        options.credentials = credentials
        var dumped = ""
        dump(options, to: &dumped)
        dump(key, to: &dumped)
        dump(try ServerAddress(parsing: "nats://alice:hunter2@h:1"), to: &dumped)
        let texts = [
            key.description, String(reflecting: key), credentials.description, String(reflecting: credentials),
            String(describing: options), String(reflecting: options), dumped,
        ]
        for text in texts {
            for secret in [Self.knownSeed, "hunter2", "hunter3", "t0ken", "t0ken4"] {
                #expect(!text.contains(secret), "\(secret) in \(text)")
            }
        }
        #expect(key.description.contains(Self.knownPublicKey))
        #expect(dumped.contains("alice"))
    }

    @Test func badURLsAreQuotedWithoutTheirSecrets() {
        for url in ["nats://alice:hunter2@h:99999", "nats://hunter2@h:abc", "ftp://alice:hunter2@h"] {
            do {
                _ = try ServerAddress(parsing: url)
                Issue.record("accepted \(url)")
            } catch {
                #expect(error.code == .invalidURL)
                #expect(!error.description.contains("hunter2"), "\(error)")
            }
        }
        #expect(ServerAddress.redacted("nats://alice:hunter2@h:1") == "nats://alice:***@h:1")
        #expect(ServerAddress.redacted("tls://hunter2@h") == "tls://***@h")
        #expect(ServerAddress.redacted("h:4222") == "h:4222")
    }

    static let credsJWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVIn0.c2ln"

    @Test func credsFilesAsNscWritesThemAndWithWindowsLineBreaks() throws {
        let text = TestJWT.credentials(jwt: Self.credsJWT, user: try NKey(seed: Self.knownSeed))
        for variant in [text, text.replacingOccurrences(of: "\n", with: "\r\n")] {
            let path = NSTemporaryDirectory() + "ennio-test-\(UUID().uuidString).creds"
            try variant.write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let file = try CredentialsFile(path: path)
            #expect(file.jwt == Self.credsJWT)
            #expect(file.seed == Self.knownSeed)
            #expect(try CredentialsFile.seed(inFile: path) == Self.knownSeed)
        }
    }

    @Test func credsFilesWithoutASeedOrJWTAreRefusedByName() throws {
        let onlyJWT = "-----BEGIN NATS USER JWT-----\n\(Self.credsJWT)\n------END NATS USER JWT------\n"
        let path = NSTemporaryDirectory() + "ennio-test-\(UUID().uuidString).creds"
        try onlyJWT.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: NATSError.self) { try CredentialsFile(path: path) }
        do {
            _ = try CredentialsFile(path: "/nonexistent/user.creds")
            Issue.record("read a missing file")
        } catch {
            #expect(error.code == .invalidCredentials)
            #expect(error.message.contains("/nonexistent/user.creds"))
        }
    }

    @Test func aPlainSeedFileIsReadByItsSULine() throws {
        let path = NSTemporaryDirectory() + "ennio-test-\(UUID().uuidString).nk"
        try "# my user\n\(Self.knownSeed)\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try CredentialsFile.seed(inFile: path) == Self.knownSeed)
    }

    @Test func theProofSignsTheNonceWithTheSeedsKey() throws {
        let proof = try NATSCredentials.nkeySeed(Self.knownSeed).proof(signing: "abc123")
        #expect(proof.jwt == nil)
        #expect(proof.nkey == Self.knownPublicKey)
        let signature = try #require(RawBase64URL.decode(proof.signature))
        #expect(!proof.signature.contains("=") && !proof.signature.contains("+") && !proof.signature.contains("/"))
        #expect(NKey.verify(signature, of: Array("abc123".utf8), publicKey: Self.knownPublicKey))

        let key = try NKey(seed: Self.knownSeed)
        let viaCallback = try NATSCredentials.jwt("eyJ.x.y") { try key.sign($0) }.proof(signing: "abc123")
        #expect(viaCallback.jwt == "eyJ.x.y")
        #expect(viaCallback.nkey == nil)
        #expect(viaCallback.signature == proof.signature)

        struct Refused: Error {}
        #expect(throws: NATSError.self) { try NATSCredentials.jwt("eyJ.x.y") { _ in throw Refused() }.proof(signing: "n") }
    }
}
