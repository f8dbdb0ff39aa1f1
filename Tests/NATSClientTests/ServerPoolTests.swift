@testable import NATSClient
import Testing

@Suite struct ServerAddressTests {
    @Test(arguments: [
        ("nats://127.0.0.1:4222", "127.0.0.1", 4222, nil, nil, nil),
        ("nats://example.com", "example.com", 4222, nil, nil, nil),
        ("localhost:5000", "localhost", 5000, nil, nil, nil),
        ("demo.nats.io", "demo.nats.io", 4222, nil, nil, nil),
        ("nats://alice:secret@host:1", "host", 1, "alice", "secret", nil),
        ("nats://s3cret@host:2", "host", 2, nil, nil, "s3cret"),
        ("nats://al%40ice:p%3Aw@host", "host", 4222, "al@ice", "p:w", nil),
        ("nats://[::1]:4333", "::1", 4333, nil, nil, nil),
        ("  nats://h:7/  ", "h", 7, nil, nil, nil),
    ] as [(String, String, Int, String?, String?, String?)])
    func parses(url: String, host: String, port: Int, user: String?, password: String?, token: String?) throws {
        let address = try ServerAddress(parsing: url)
        #expect(address.host == host)
        #expect(address.port == port)
        #expect(address.user == user)
        #expect(address.password == password)
        #expect(address.token == token)
        #expect(!address.description.contains("secret"), "credentials never appear in descriptions")
    }

    @Test(arguments: ["http://h:1", "nats://:4222", "nats://h:0", "nats://h:65536", "nats://h:x", "nats://[::1", ""])
    func rejects(url: String) {
        #expect(throws: NATSError.self) { try ServerAddress(parsing: url) }
    }

    @Test func tlsURLsAskForTLSAndSayItWhenPrinted() throws {
        let secured = try ServerAddress(parsing: "tls://user:secret@h:1")
        #expect(secured.usesTLS)
        #expect(secured.description == "tls://h:1")
        #expect(try ServerAddress(parsing: "nats://h:1").usesTLS == false)
    }
}

@Suite struct ServerPoolTests {
    @Test func keepsOrderWhenNotRandomizedAndSplitsCommaLists() throws {
        let pool = try ServerPool(urls: ["nats://a:1,nats://b:2", "c:3"], randomize: false)
        #expect(pool.servers.map(\.host) == ["a", "b", "c"])
    }

    @Test func randomizingKeepsEveryServer() throws {
        let urls = (1...20).map { "nats://h\($0):\($0)" }
        let pool = try ServerPool(urls: urls, randomize: true)
        #expect(Set(pool.servers.map(\.host)) == Set((1...20).map { "h\($0)" }))
    }

    @Test func reconnectRotatesAndDropsServersOutOfAttempts() throws {
        var pool = try ServerPool(urls: ["a:1", "b:2"], randomize: false)
        #expect(pool.nextForReconnect(maximumAttempts: 2)?.address.host == "a")
        pool.recordFailure(try ServerAddress(parsing: "a:1"))
        #expect(pool.nextForReconnect(maximumAttempts: 2)?.address.host == "b")
        pool.recordFailure(try ServerAddress(parsing: "a:1"))
        // a has used its 2 attempts: it leaves the pool.
        #expect(pool.nextForReconnect(maximumAttempts: 2)?.address.host == "b")
        #expect(pool.servers.map(\.host) == ["b"])
        pool.recordFailure(try ServerAddress(parsing: "b:2"))
        pool.recordFailure(try ServerAddress(parsing: "b:2"))
        #expect(pool.nextForReconnect(maximumAttempts: 2) == nil)
    }

    @Test func unlimitedAttemptsNeverEmptyThePool() throws {
        var pool = try ServerPool(urls: ["a:1"], randomize: false)
        for _ in 0..<1000 {
            pool.recordFailure(try ServerAddress(parsing: "a:1"))
            #expect(pool.nextForReconnect(maximumAttempts: -1)?.address.host == "a")
        }
    }

    @Test func successResetsTheAttemptCount() throws {
        var pool = try ServerPool(urls: ["a:1"], randomize: false)
        let a = try ServerAddress(parsing: "a:1")
        pool.recordFailure(a)
        pool.recordSuccess(a)
        pool.recordFailure(a)
        #expect(pool.nextForReconnect(maximumAttempts: 2) != nil)
    }

    @Test func discoveredServersJoinOnceWithTheSeedsCredentials() throws {
        var pool = try ServerPool(urls: ["nats://u:p@10.0.0.1:4222"], randomize: false)
        let seed = pool.servers[0]
        let added = pool.addDiscovered(["10.0.0.2:4222", "10.0.0.1:4222", "10.0.0.3:4223", "not a url:x"], credentialsFrom: seed)
        #expect(added.map(\.host) == ["10.0.0.2", "10.0.0.3"])
        #expect(added.allSatisfy { $0.user == "u" && $0.password == "p" })
        #expect(pool.addDiscovered(["10.0.0.2:4222"], credentialsFrom: seed).isEmpty)
        #expect(pool.servers.count == 3)
    }

    @Test func movingToBackTriesOthersFirst() throws {
        var pool = try ServerPool(urls: ["a:1", "b:2", "c:3"], randomize: false)
        pool.moveToBack(try ServerAddress(parsing: "a:1"))
        #expect(pool.nextForReconnect(maximumAttempts: 60)?.address.host == "b")
    }
}

@Suite struct ServerPoolSecurityTests {
    @Test func announcedServersKeepTLSAndAreCheckedAgainstTheSeedsName() throws {
        var pool = try ServerPool(urls: ["tls://nats.example.com:4222"], randomize: false)
        var seed = pool.servers[0]
        let added = pool.addDiscovered(["10.0.0.2:4222", "other.example.com:4222"], credentialsFrom: seed)
        #expect(added.map(\.description) == ["tls://10.0.0.2:4222", "tls://other.example.com:4222"])
        #expect(added[0].verificationHost == "nats.example.com")
        #expect(added[1].verificationHost == nil)

        // A plain seed secured because its server required TLS lends TLS all the same.
        var plain = try ServerPool(urls: ["nats://127.0.0.1:4222"], randomize: false)
        seed = plain.servers[0]
        seed.usesTLS = true
        #expect(plain.addDiscovered(["127.0.0.1:4223"], credentialsFrom: seed).map(\.description) == ["tls://127.0.0.1:4223"])
        var insecure = try ServerPool(urls: ["nats://127.0.0.1:4222"], randomize: false)
        #expect(insecure.addDiscovered(["127.0.0.1:4223"], credentialsFrom: insecure.servers[0]).map(\.usesTLS) == [false])
    }
}
