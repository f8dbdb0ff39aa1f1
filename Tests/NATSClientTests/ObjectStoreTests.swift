import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

extension ObjectStoreError: CodedError {}

/// Object stores against a real server.
@Suite struct ObjectStoreTests {

    func expectObjectStoreError<T>(_ code: ObjectStoreError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T) async {
        await expectError(ObjectStoreError.self, code, sourceLocation: sourceLocation, body)
    }

    /// `count` bytes that differ from chunk to chunk (a linear congruential sequence).
    static func bytes(_ count: Int, seed: UInt32 = 1) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        var digest = SHA256Digest()
        digest.update(bytes)
        return SHA256Digest.objectStoreForm(digest.finalize())
    }

    @Test func theDigestIsSHA256InBase64URL() {
        // The SHA-256 of "abc" (FIPS 180-2), as nats.go writes it.
        #expect(Self.sha256(Array("abc".utf8)) == "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=")
        #expect(Self.sha256([]) == "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=")
        #expect(Base64URL.encode(Array("hello world".utf8)) == "aGVsbG8gd29ybGQ=")
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8=")
        for count in 0..<8 {
            let bytes = Self.bytes(count, seed: UInt32(count))
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.decode("+/8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("a b") == nil)
        #expect(Base64URL.decode("ab=c") == nil)
    }

    @Test func bucketsAreCreatedFoundListedAndDeleted() async throws {
        let setup = try await JetStreamSetup.start()
        let js = setup.js
        var config = ObjectStoreConfig(bucket: "files", storage: .memory)
        config.description = "build artefacts"
        let store = try await js.createObjectStore(config)
        #expect(store.streamName == "OBJ_files")
        _ = try await js.createObjectStore(config)
        var other = config
        other.maxBytes = 1 << 30
        await expectObjectStoreError(.bucketExists) { try await js.createObjectStore(other) }
        let status = try await js.objectStore("files").status()
        #expect(status.description == "build artefacts")
        #expect(status.storage == .memory)
        #expect(!status.sealed)
        #expect(status.streamInfo.config.subjects == ["$O.files.C.>", "$O.files.M.>"])
        #expect(status.streamInfo.config.allowRollup == true)
        #expect(status.streamInfo.config.allowDirect == true)
        #expect(try await js.objectStoreNames() == ["files"])
        try await js.deleteObjectStore("files")
        await expectObjectStoreError(.bucketNotFound) { try await js.objectStore("files") }
        await expectObjectStoreError(.bucketNotFound) { try await js.deleteObjectStore("files") }
        await expectObjectStoreError(.invalidBucketName) { try await js.objectStore("a.b") }
        await expectObjectStoreError(.invalidBucketName) { try await js.createObjectStore(ObjectStoreConfig(bucket: "a b")) }
        await setup.finish()
    }

    @Test func objectsOfEverySizeRoundTripInChunks() async throws {
        let setup = try await JetStreamSetup.start()
        let store = try await setup.js.createObjectStore(ObjectStoreConfig(bucket: "sizes", storage: .memory))
        let chunk = ObjectStore.defaultChunkSize
        for size in [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + chunk / 2] {
            let data = Self.bytes(size, seed: UInt32(size))
            let name = "object of \(size) bytes/ünïcode"
            let info = try await store.put(name, data: data)
            #expect(info.size == UInt64(size))
            #expect(info.chunks == UInt32((size + chunk - 1) / chunk))
            #expect(info.digest == Self.sha256(data))
            #expect(info.bucket == "sizes")
            #expect(info.meta.chunkSize == chunk)
            #expect(try await store.getBytes(name) == data, "\(size) bytes")
            let read = try await store.info(name)
            #expect(read.nuid == info.nuid)
            #expect(abs(read.modified.timeIntervalSinceNow) < 60)
        }
        var small = ObjectMeta(name: "small chunks", description: "ten bytes a chunk", headers: ["Content-Type": ["text/plain"]])
        small.chunkSize = 10
        let info = try await store.put(small, data: Self.bytes(95))
        #expect(info.chunks == 10)
        let read = try await store.info("small chunks")
        #expect(read.meta.description == "ten bytes a chunk")
        #expect(read.meta.headers == ["Content-Type": ["text/plain"]])
        var pieces = 0
        for try await piece in try await store.get("small chunks") {
            #expect(piece.count <= 10)
            pieces += 1
        }
        #expect(pieces == 10)
        await expectObjectStoreError(.objectNotFound) { try await store.get("nothing here") }
        await expectObjectStoreError(.invalidName) { try await store.put("", data: [1]) }
        await setup.finish()
    }

    @Test func aSequenceOfUnevenPiecesIsStoredInWholeChunks() async throws {
        let setup = try await JetStreamSetup.start()
        let store = try await setup.js.createObjectStore(ObjectStoreConfig(bucket: "pieces", storage: .memory))
        let data = Self.bytes(1000)
        let pieces = AsyncStream<[UInt8]> { continuation in
            var offset = 0
            var length = 1
            while offset < data.count {
                let end = min(data.count, offset + length)
                continuation.yield(Array(data[offset..<end]))
                offset = end
                length = length * 3 % 97 + 1
            }
            continuation.finish()
        }
        var meta = ObjectMeta(name: "uneven")
        meta.chunkSize = 64
        let info = try await store.put(meta, from: pieces)
        #expect(info.chunks == 16)
        #expect(info.size == 1000)
        #expect(try await store.getBytes("uneven") == data)
        await setup.finish()
    }

    @Test func replacingAndDeletingPurgeTheOldChunks() async throws {
        let setup = try await JetStreamSetup.start()
        let store = try await setup.js.createObjectStore(ObjectStoreConfig(bucket: "churn", storage: .memory))
        try await store.put("report", data: Self.bytes(300_000, seed: 1))
        let second = Self.bytes(200_000, seed: 2)
        try await store.put("report", data: second)
        #expect(try await store.getBytes("report") == second)
        // Two chunks of the second version and one info: the first version's three chunks are gone.
        #expect(try await store.status().streamInfo.state.messages == 3)

        try await store.delete("report")
        await expectObjectStoreError(.objectNotFound) { try await store.get("report") }
        await expectObjectStoreError(.objectNotFound) { try await store.info("report") }
        let deleted = try await store.info("report", includingDeleted: true)
        #expect(deleted.deleted)
        #expect(deleted.size == 0)
        #expect(try await store.status().streamInfo.state.messages == 1, "only the deleted info")
        try await store.delete("report")  // already deleted: nothing happens
        await expectObjectStoreError(.objectNotFound) { try await store.delete("never stored") }
        try await store.put("report", data: [1, 2, 3])
        #expect(try await store.getBytes("report") == [1, 2, 3])
        await setup.finish()
    }

    @Test func aWrongDigestOrMissingChunksAreReported() async throws {
        let setup = try await JetStreamSetup.start()
        let js = setup.js
        let store = try await js.createObjectStore(ObjectStoreConfig(bucket: "tamper", storage: .memory))
        var info = try await store.put(ObjectMeta(name: "doc", chunkSize: 4), data: Array("twelve bytes".utf8))
        #expect(info.chunks == 3)
        // Rewrite the info with another digest, as a faulty writer might.
        info.digest = Self.sha256(Array("something else".utf8))
        _ = try await js.publish(Array(try JSONEncoder().encode(info)), to: store.metaSubject("doc"), headers: ["Nats-Rollup": "sub"])
        await expectObjectStoreError(.digestMismatch) { try await store.getBytes("doc") }
        // An info that promises more chunks than there are.
        info.digest = Self.sha256(Array("twelve bytes".utf8))
        info.chunks = 4
        info.size = 16
        _ = try await js.publish(Array(try JSONEncoder().encode(info)), to: store.metaSubject("doc"), headers: ["Nats-Rollup": "sub"])
        await expectObjectStoreError(.incomplete) { try await store.getBytes("doc") }
        _ = try await js.publish(Array("not json".utf8), to: store.metaSubject("junk"))
        await expectObjectStoreError(.badMetadata) { try await store.info("junk") }
        await setup.finish()
    }

    @Test func filesArePutAndGotAChunkAtATime() async throws {
        let setup = try await JetStreamSetup.start()
        let store = try await setup.js.createObjectStore(ObjectStoreConfig(bucket: "disk", storage: .memory))
        let folder = NSTemporaryDirectory() + "ennio-objects-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let data = Self.bytes(1_000_000, seed: 7)
        try Data(data).write(to: URL(fileURLWithPath: folder + "/in.bin"))
        let info = try await store.put(ObjectMeta(name: "in.bin"), fileAt: folder + "/in.bin")
        #expect(info.size == 1_000_000)
        #expect(info.digest == Self.sha256(data))
        let got = try await store.get("in.bin", toFile: folder + "/out.bin")
        #expect(got.nuid == info.nuid)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/out.bin"))) == data)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["in.bin", "out.bin"], "no partial file left")

        await expectObjectStoreError(.fileError) { try await store.put(ObjectMeta(name: "x"), fileAt: folder + "/missing") }
        await expectObjectStoreError(.fileError) { try await store.get("in.bin", toFile: folder + "/no/such/folder/out") }
        // A get that fails its digest check leaves the file it would have replaced alone.
        var info2 = try await store.put("bad", data: Self.bytes(10))
        info2.digest = Self.sha256([1])
        _ = try await setup.js.publish(Array(try JSONEncoder().encode(info2)), to: store.metaSubject("bad"), headers: ["Nats-Rollup": "sub"])
        await expectObjectStoreError(.digestMismatch) { try await store.get("bad", toFile: folder + "/out.bin") }
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/out.bin"))) == data)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["in.bin", "out.bin"])
        await setup.finish()
    }

    @Test func linksToObjectsAndToBuckets() async throws {
        let setup = try await JetStreamSetup.start()
        let js = setup.js
        let store = try await js.createObjectStore(ObjectStoreConfig(bucket: "main", storage: .memory))
        let elsewhere = try await js.createObjectStore(ObjectStoreConfig(bucket: "elsewhere", storage: .memory))
        let target = try await store.put("target", data: Array("linked bytes".utf8))
        let remote = try await elsewhere.put("remote", data: Array("from the other bucket".utf8))

        let link = try await store.addLink("shortcut", to: target)
        #expect(link.isLink)
        #expect(link.meta.link == ObjectLink(bucket: "main", name: "target"))
        #expect(try await store.getBytes("shortcut") == Array("linked bytes".utf8))
        try await store.addLink("across", to: remote)
        #expect(try await store.getBytes("across") == Array("from the other bucket".utf8))
        try await store.addBucketLink("all of elsewhere", to: elsewhere)
        await expectObjectStoreError(.linkIsBucket) { try await store.get("all of elsewhere") }

        await expectObjectStoreError(.linkToLink) { try await store.addLink("chain", to: link) }
        await expectObjectStoreError(.objectExists) { try await store.addLink("target", to: remote) }
        try await store.addLink("shortcut", to: remote)  // a link may replace a link
        #expect(try await store.getBytes("shortcut") == Array("from the other bucket".utf8))
        try await store.delete("target")
        let gone = try await store.info("target", includingDeleted: true)
        await expectObjectStoreError(.linkToDeleted) { try await store.addLink("dead", to: gone) }
        try await store.addLink("target", to: remote)  // onto a deleted object: allowed
        var meta = ObjectMeta(name: "x")
        meta.link = ObjectLink(bucket: "main", name: "target")
        await expectObjectStoreError(.linkNotAllowed) { try await store.put(meta, data: [1]) }
        await setup.finish()
    }

    @Test func listWatchUpdateAndSeal() async throws {
        let setup = try await JetStreamSetup.start()
        let store = try await setup.js.createObjectStore(ObjectStoreConfig(bucket: "catalog", storage: .memory))
        #expect(try await store.list().isEmpty)
        try await store.put("a", data: [1])
        try await store.put("b", data: [2, 2])
        try await store.put("c", data: [3, 3, 3])
        try await store.delete("b")
        #expect(try await store.list().map(\.name) == ["a", "c"])
        #expect(try await store.list(includingDeleted: true).map(\.name) == ["a", "c", "b"], "in the order of their last change")

        var watcher = try await store.watch().makeAsyncIterator()
        func next() async throws -> String {
            switch try await take(1, from: &watcher).first {
            case .info(let info)?: return info.deleted ? "\(info.name) deleted" : "\(info.name) \(info.size)"
            case .initialValuesDone?: return "done"
            case nil: return "end"
            }
        }
        #expect([try await next(), try await next(), try await next(), try await next()] == ["a 1", "c 3", "b deleted", "done"])
        try await store.put("d", data: [4, 4, 4, 4])
        try await store.delete("a")
        #expect([try await next(), try await next()] == ["d 4", "a deleted"])

        try await store.updateMeta("c", ObjectMeta(name: "c renamed", description: "third"))
        await expectObjectStoreError(.objectNotFound) { try await store.info("c") }
        #expect(try await store.info("c renamed").meta.description == "third")
        #expect(try await store.getBytes("c renamed") == [3, 3, 3])
        await expectObjectStoreError(.objectExists) { try await store.updateMeta("c renamed", ObjectMeta(name: "d")) }

        try await store.seal()
        #expect(try await store.status().sealed)
        await #expect(throws: (any Error).self) { try await store.put("e", data: [5]) }
        await setup.finish()
    }
}
