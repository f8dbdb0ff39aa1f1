import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// Key-Value buckets against a real server (nats-server 2.12: per-key TTLs and limit markers).
@Suite struct KeyValueTests {

    func expectKeyValueError<T>(_ code: KeyValueError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T) async {
        await expectError(KeyValueError.self, code, sourceLocation: sourceLocation, body)
    }

    /// The next `count` updates of a watcher.
    func updates(_ count: Int, _ iterator: inout KeyValueWatcher.Iterator) async throws -> [KeyValueUpdate] {
        try await take(count, from: &iterator)
    }

    /// An update as `key=value` (`key:DEL`, `key:PURGE`), or `done`, to compare whole sequences.
    func text(_ update: KeyValueUpdate) -> String {
        switch update {
        case .initialValuesDone: return "done"
        case .entry(let entry) where entry.operation == .put: return "\(entry.key)=\(entry.string)"
        case .entry(let entry): return "\(entry.key):\(entry.operation.rawValue)"
        }
    }

    @Test func bucketsAreCreatedFoundUpdatedListedAndDeleted() async throws {
        let setup = try await JetStreamSetup.start()
        let js = setup.js
        var config = KeyValueConfig(bucket: "settings", history: 3, storage: .memory)
        config.description = "what the app reads at start"
        config.maxValueSize = 1024
        let created = try await js.createKeyValue(config)
        #expect(created.streamName == "KV_settings")
        _ = try await js.createKeyValue(config)  // the same configuration: found, not an error
        var other = config
        other.history = 7
        await expectKeyValueError(.bucketExists) { try await js.createKeyValue(other) }

        let status = try await js.keyValue("settings").status()
        #expect(status.history == 3)
        #expect(status.config.maxValueSize == 1024)
        #expect(status.config.description == "what the app reads at start")
        #expect(status.backingStore == "JetStream")
        #expect(status.streamInfo.config.discard == "new")
        #expect(status.streamInfo.config.allowRollup == true)
        #expect(status.streamInfo.config.denyDelete == true)
        #expect(status.streamInfo.config.allowDirect == true)

        #expect(try await js.updateKeyValue(other).status().history == 7)
        var fresh = KeyValueConfig(bucket: "fresh")
        fresh.ttl = .seconds(3600)
        fresh.compression = true
        let made = try await js.createOrUpdateKeyValue(fresh)
        let freshStatus = try await made.status()
        #expect(freshStatus.ttl == .seconds(3600))
        #expect(freshStatus.isCompressed)
        #expect(freshStatus.streamInfo.config.duplicateWindow == 120_000_000_000)
        #expect(try await js.keyValueBucketNames().sorted() == ["fresh", "settings"])

        try await js.deleteKeyValue("fresh")
        await expectKeyValueError(.bucketNotFound) { try await js.deleteKeyValue("fresh") }
        await expectKeyValueError(.bucketNotFound) { try await js.keyValue("fresh") }
        await expectKeyValueError(.bucketNotFound) { try await js.updateKeyValue(KeyValueConfig(bucket: "never")) }
        _ = try await js.createStream(StreamConfig(name: "KV_plain", subjects: ["plain"], storage: .memory))
        await expectKeyValueError(.bucketNotFound) { try await js.keyValue("plain") }
        await expectKeyValueError(.invalidBucketName) { try await js.keyValue("no.dots") }
        await expectKeyValueError(.invalidBucketName) { try await js.createKeyValue(KeyValueConfig(bucket: "")) }
        await expectKeyValueError(.invalidConfiguration) { try await js.createKeyValue(KeyValueConfig(bucket: "deep", history: 65)) }
        await expectKeyValueError(.invalidConfiguration) { try await js.createKeyValue(KeyValueConfig(bucket: "none", history: 0)) }
        var markers = KeyValueConfig(bucket: "markers")
        markers.limitMarkerTTL = .milliseconds(500)
        await expectKeyValueError(.invalidConfiguration) { try await js.createKeyValue(markers) }
        await setup.finish()
    }

    @Test func putGetCreateUpdateDeleteAndPurgeWithTheirTypedErrors() async throws {
        let setup = try await JetStreamSetup.start()
        let kv = try await setup.js.createKeyValue(KeyValueConfig(bucket: "app", history: 5, storage: .memory))
        let first = try await kv.put("db.url", "postgres://a")
        let second = try await kv.put("db.url", "postgres://b")
        #expect(second == first + 1)
        let latest = try await kv.get("db.url")
        #expect(latest.string == "postgres://b")
        #expect(latest.revision == second)
        #expect(latest.bucket == "app")
        #expect(latest.key == "db.url")
        #expect(latest.operation == .put)
        #expect(abs(latest.created.timeIntervalSinceNow) < 60)
        #expect(try await kv.get("db.url", revision: first).string == "postgres://a")

        let other = try await kv.put("other", [0, 1, 2])
        await expectKeyValueError(.keyNotFound) { try await kv.get("db.url", revision: other) }
        await expectKeyValueError(.keyNotFound) { try await kv.get("db.url", revision: 999) }
        await expectKeyValueError(.keyNotFound) { try await kv.get("missing") }

        // create: only without a value; update: only at the given revision.
        await expectKeyValueError(.keyExists) { try await kv.create("db.url", Array("c".utf8)) }
        let created = try await kv.create("new.key", Array("n".utf8))
        await expectKeyValueError(.wrongLastSequence) { try await kv.update("new.key", Array("x".utf8), revision: created - 1) }
        let updated = try await kv.update("new.key", Array("u".utf8), revision: created)
        #expect(try await kv.get("new.key").string == "u")
        await expectKeyValueError(.wrongLastSequence) { try await kv.update("never.written", Array("x".utf8), revision: 1) }

        // delete keeps history; a deleted key can be created again.
        await expectKeyValueError(.wrongLastSequence) { try await kv.delete("new.key", revision: created) }
        try await kv.delete("new.key", revision: updated)
        await expectKeyValueError(.keyNotFound) { try await kv.get("new.key") }
        #expect(try await kv.history("new.key").map(\.operation) == [.put, .put, .delete])
        let again = try await kv.create("new.key", Array("again".utf8))
        #expect(try await kv.get("new.key").revision == again)

        // purge leaves one marker.
        try await kv.purge("db.url")
        await expectKeyValueError(.keyNotFound) { try await kv.get("db.url") }
        let purged = try await kv.history("db.url")
        #expect(purged.map(\.operation) == [.purge])
        #expect(purged.first?.delta == 0)
        _ = try await kv.create("db.url", Array("after purge".utf8))

        for bad in ["", ".a", "a.", "a b", "a*", "a>", "ä", "a..b"] {
            await expectKeyValueError(.invalidKey) { try await kv.put(bad, "x") }
            await expectKeyValueError(.invalidKey) { try await kv.get(bad) }
        }
        #expect(try await kv.put("a-b_c/d=e.F9", "every allowed character") > 0)
        await setup.finish()
    }

    @Test func aValueOverTheBucketsLimitIsRefused() async throws {
        let setup = try await JetStreamSetup.start()
        var config = KeyValueConfig(bucket: "small", storage: .memory)
        config.maxValueSize = 16
        let kv = try await setup.js.createKeyValue(config)
        _ = try await kv.put("fits", [UInt8](repeating: 1, count: 16))
        await expectKeyValueError(.valueTooLarge) { try await kv.put("big", [UInt8](repeating: 1, count: 17)) }
        await expectKeyValueError(.keyNotFound) { try await kv.get("big") }
        await setup.finish()
    }

    @Test func keysAndHistory() async throws {
        let setup = try await JetStreamSetup.start()
        let kv = try await setup.js.createKeyValue(KeyValueConfig(bucket: "inventory", history: 3, storage: .memory))
        #expect(try await kv.keys().isEmpty)
        for (key, value) in [("fruit.apple", "1"), ("fruit.pear", "2"), ("veg.leek", "3"), ("fruit.apple", "4"), ("fruit.fig", "5")] {
            try await kv.put(key, value)
        }
        try await kv.delete("fruit.pear")
        #expect(try await kv.keys() == ["veg.leek", "fruit.apple", "fruit.fig"])
        #expect(try await kv.keys(matching: ["fruit.*"]) == ["fruit.apple", "fruit.fig"])
        #expect(try await kv.keys(matching: ["veg.>", "fruit.fig"]) == ["veg.leek", "fruit.fig"])
        for value in ["6", "7", "8"] { try await kv.put("fruit.apple", value) }
        let history = try await kv.history("fruit.apple")
        #expect(history.map(\.string) == ["6", "7", "8"], "history 3: the oldest are gone")
        #expect(history.map(\.delta) == [2, 1, 0])
        await expectKeyValueError(.keyNotFound) { try await kv.history("fruit.kiwi") }
        await expectKeyValueError(.invalidKey) { try await kv.keys(matching: ["a.>.b"]) }
        await setup.finish()
    }

    @Test func watchSendsCurrentValuesThenTheMarkerThenChanges() async throws {
        let setup = try await JetStreamSetup.start()
        let kv = try await setup.js.createKeyValue(KeyValueConfig(bucket: "live", history: 10, storage: .memory))
        try await kv.put("a", "1")
        try await kv.put("b", "2")
        try await kv.put("a", "3")
        try await kv.delete("b")

        var all = try await kv.watch().makeAsyncIterator()
        #expect(try await updates(3, &all).map(text) == ["a=3", "b:DEL", "done"])
        var history = try await kv.watch(options: KeyValueWatchOptions(includeHistory: true)).makeAsyncIterator()
        #expect(try await updates(5, &history).map(text) == ["a=1", "b=2", "a=3", "b:DEL", "done"])
        var puts = try await kv.watch(options: KeyValueWatchOptions(ignoreDeletes: true)).makeAsyncIterator()
        #expect(try await updates(2, &puts).map(text) == ["a=3", "done"])
        var later = try await kv.watch(options: KeyValueWatchOptions(updatesOnly: true)).makeAsyncIterator()
        #expect(try await updates(1, &later).map(text) == ["done"])
        var quiet = try await kv.watch(options: KeyValueWatchOptions(metadataOnly: true)).makeAsyncIterator()
        let meta = try await updates(3, &quiet)
        #expect(meta.map(text) == ["a=", "b:DEL", "done"])

        try await kv.put("c.x", "4")
        try await kv.purge("a")
        #expect(try await updates(2, &all).map(text) == ["c.x=4", "a:PURGE"])
        #expect(try await updates(2, &history).map(text) == ["c.x=4", "a:PURGE"])
        #expect(try await updates(1, &puts).map(text) == ["c.x=4"], "the purge is left out")
        #expect(try await updates(2, &later).map(text) == ["c.x=4", "a:PURGE"])
        await setup.finish()
    }

    @Test func watchesOfPatternsAndOfAnEmptyBucket() async throws {
        let setup = try await JetStreamSetup.start()
        let kv = try await setup.js.createKeyValue(KeyValueConfig(bucket: "tree", storage: .memory))
        var empty = try await kv.watch().makeAsyncIterator()
        #expect(try await updates(1, &empty).map(text) == ["done"], "the marker also comes when there is nothing")
        try await kv.put("org.a.name", "A")
        try await kv.put("org.b.name", "B")
        try await kv.put("org.a.size", "10")
        var names = try await kv.watch(["org.*.name"]).makeAsyncIterator()
        #expect(try await updates(3, &names).map(text) == ["org.a.name=A", "org.b.name=B", "done"])
        var orgA = try await kv.watch(["org.a.>"]).makeAsyncIterator()
        #expect(try await updates(3, &orgA).map(text) == ["org.a.name=A", "org.a.size=10", "done"])
        #expect(try await updates(1, &empty).map(text) == ["org.a.name=A"])
        try await kv.put("org.c.name", "C")
        try await kv.put("org.c.size", "3")
        #expect(try await updates(1, &names).map(text) == ["org.c.name=C"])
        await expectKeyValueError(.invalidKey) { try await kv.watch(["bad key"]) }
        await setup.finish()
    }

    @Test func perKeyTTLsAndLimitMarkers() async throws {
        let setup = try await JetStreamSetup.start()
        let js = setup.js
        #expect(try await js.accountInfo().api?.level ?? 0 >= 1, "nats-server 2.12 offers per-message TTLs")
        var config = KeyValueConfig(bucket: "sessions", storage: .memory)
        config.limitMarkerTTL = .seconds(60)
        let kv = try await js.createKeyValue(config)
        let status = try await kv.status()
        #expect(status.limitMarkerTTL == .seconds(60))
        #expect(status.config.allowsPerKeyTTL)

        var watcher = try await kv.watch(options: KeyValueWatchOptions(updatesOnly: true)).makeAsyncIterator()
        #expect(try await updates(1, &watcher).map(text) == ["done"])
        try await kv.create("token", Array("abc".utf8), ttl: .seconds(1))
        try await kv.put("kept", "forever")
        // (Not read back with get: a slow machine may pass the second first. The watcher
        // received it as it was stored.)
        #expect(try await updates(2, &watcher).map(text) == ["token=abc", "kept=forever"])
        // After its second the value is gone, and the server leaves a marker that watchers see.
        let removal = try await updates(1, &watcher)
        #expect(removal.map(text) == ["token:PURGE"])
        await expectKeyValueError(.keyNotFound) { try await kv.get("token") }
        #expect(try await kv.get("kept").string == "forever")
        _ = try await kv.create("token", Array("again".utf8), ttl: .seconds(3600))
        try await kv.purge("kept", ttl: .seconds(60))
        await expectKeyValueError(.keyNotFound) { try await kv.get("kept") }

        await expectKeyValueError(.invalidConfiguration) { try await kv.create("short", Array("x".utf8), ttl: .milliseconds(500)) }
        let plain = try await js.createKeyValue(KeyValueConfig(bucket: "plain", storage: .memory))
        await expectKeyValueError(.perKeyTTLNotEnabled) { try await plain.create("k", Array("v".utf8), ttl: .seconds(5)) }
        await setup.finish()
    }

    @Test func aBucketTTLRemovesOldValues() async throws {
        let setup = try await JetStreamSetup.start()
        var config = KeyValueConfig(bucket: "brief", ttl: .seconds(1), storage: .memory)
        config.limitMarkerTTL = .seconds(5)
        let kv = try await setup.js.createKeyValue(config)
        #expect(try await kv.status().streamInfo.config.duplicateWindow == 1_000_000_000, "at most the TTL")
        // Watching first: the value reaches the watcher as it is stored, however slow the
        // machine, then its age marker.
        var watcher = try await kv.watch().makeAsyncIterator()
        #expect(try await updates(1, &watcher).map(text) == ["done"])
        try await kv.put("flash", "gone soon")
        let seen = try await updates(2, &watcher)
        #expect(seen.map(text) == ["flash=gone soon", "flash:PURGE"])
        await expectKeyValueError(.keyNotFound) { try await kv.get("flash") }
        await setup.finish()
    }
}
