import Foundation
@testable import NATSClient
@testable import NATSTestSupport
import Testing

/// Key-Value buckets and object stores shared with nats-py: what one client writes the other
/// reads, and a watcher in one sees the other's changes.
@Suite struct StoreInteropTests {
    static let binary: [UInt8] = Array(0...255) + Array("\r\n$KV.x.y\u{0}".utf8)

    func peer(_ arguments: [String]) throws -> PythonPeer {
        try PythonPeer(arguments: arguments)
    }

    @Test func valuesWrittenByEitherClientAreReadByTheOther() async throws {
        let setup = try await JetStreamSetup.start()
        let kv = try await setup.js.createKeyValue(KeyValueConfig(bucket: "shared", history: 5))
        let url = setup.server.url

        let revision = try await kv.put("config.from-swift", Self.binary)
        let read = try peer(["kv-get", "--url", url, "--bucket", "shared", "--key", "config.from-swift"])
        let seen = try #require(try await read.json(PythonKeyValueLine.self))
        #expect(seen.value == Self.binary)
        #expect(seen.revision == revision)
        #expect(try await read.exitCode(within: .seconds(30)) == 0)

        let written = try peer(["kv-put", "--url", url, "--bucket", "shared", "--key", "config.from-python",
                                "--value-b64", Data(Self.binary.reversed()).base64EncodedString()])
        let put = try #require(try await written.json(PythonKeyValueLine.self))
        #expect(try await written.exitCode(within: .seconds(30)) == 0)
        let entry = try await kv.get("config.from-python")
        #expect(entry.value == Array(Self.binary.reversed()))
        #expect(entry.revision == put.revision)

        // A deletion by us is a missing key to nats-py.
        try await kv.delete("config.from-swift")
        let gone = try peer(["kv-get", "--url", url, "--bucket", "shared", "--key", "config.from-swift"])
        #expect(try await gone.json(PythonKeyValueLine.self)?.missing == true)
        #expect(try await gone.exitCode(within: .seconds(30)) == 0)
        await setup.finish()
    }

    @Test func aNatsPyWatcherSeesOurChanges() async throws {
        let setup = try await JetStreamSetup.start()
        let kv = try await setup.js.createKeyValue(KeyValueConfig(bucket: "watched", history: 5))
        try await kv.put("orders.1", "placed")
        let watcher = try peer(["kv-watch", "--url", setup.server.url, "--bucket", "watched", "--key", "orders.>", "--count", "5"])
        #expect(try await watcher.line(within: .seconds(30)) == "READY")
        var lines: [PythonKeyValueLine] = []
        for _ in 0..<2 { lines.append(try #require(try await watcher.json(PythonKeyValueLine.self))) }
        try await kv.put("orders.2", "placed")
        try await kv.put("orders.1", "paid")
        try await kv.delete("orders.2")
        for _ in 0..<3 { lines.append(try #require(try await watcher.json(PythonKeyValueLine.self))) }
        #expect(try await watcher.exitCode(within: .seconds(30)) == 0)
        let described = lines.map { line -> String in
            if line.initialDone == true { return "done" }
            return "\(line.key ?? "?") \(line.operation ?? "?") \(String(decoding: line.value, as: UTF8.self))"
        }
        #expect(described == ["orders.1 PUT placed", "done", "orders.2 PUT placed", "orders.1 PUT paid", "orders.2 DEL "])
        await setup.finish()
    }

    @Test func ourWatcherSeesNatsPysChanges() async throws {
        let setup = try await JetStreamSetup.start()
        let kv = try await setup.js.createKeyValue(KeyValueConfig(bucket: "mirror"))
        var watcher = try await kv.watch(["sensor.*"]).makeAsyncIterator()
        #expect(try await take(1, from: &watcher) == [.initialValuesDone])
        for (key, value) in [("sensor.a", "21.5"), ("sensor.b", "19.0"), ("other", "ignored"), ("sensor.a", "22.0")] {
            let put = try peer(["kv-put", "--url", setup.server.url, "--bucket", "mirror", "--key", key,
                                "--value-b64", Data(value.utf8).base64EncodedString()])
            #expect(try await put.exitCode(within: .seconds(30)) == 0, "\(put.standardError)")
        }
        let seen = try await take(3, from: &watcher).map { update -> String in
            guard case .entry(let entry) = update else { return "\(update)" }
            return "\(entry.key)=\(entry.string)"
        }
        #expect(seen == ["sensor.a=21.5", "sensor.b=19.0", "sensor.a=22.0"])
        await setup.finish()
    }

    @Test func objectsStoredByEitherClientAreReadByTheOther() async throws {
        let setup = try await JetStreamSetup.start()
        let store = try await setup.js.createObjectStore(ObjectStoreConfig(bucket: "exchange"))
        let folder = NSTemporaryDirectory() + "ennio-interop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let url = setup.server.url

        // Ours, several chunks, read by nats-py (which checks the digest itself).
        let ours = (0..<(3 * 128 * 1024 + 17)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let stored = try await store.put("from swift/report.bin", data: ours)
        let reader = try peer(["obj-get", "--url", url, "--bucket", "exchange", "--name", "from swift/report.bin", "--file", folder + "/py-got.bin"])
        let got = try #require(try await reader.json(PythonObjectLine.self))
        #expect(try await reader.exitCode(within: .seconds(30)) == 0, "\(reader.standardError)")
        #expect(got.size == UInt64(ours.count))
        #expect(got.digest == stored.digest)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/py-got.bin"))) == ours)

        // nats-py's, read by us: the digest it wrote is the one we check.
        let theirs = (0..<(2 * 128 * 1024 + 5)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try Data(theirs).write(to: URL(fileURLWithPath: folder + "/py-put.bin"))
        let writer = try peer(["obj-put", "--url", url, "--bucket", "exchange", "--name", "from python", "--file", folder + "/py-put.bin"])
        let put = try #require(try await writer.json(PythonObjectLine.self))
        #expect(try await writer.exitCode(within: .seconds(30)) == 0, "\(writer.standardError)")
        let info = try await store.info("from python")
        #expect(info.digest == put.digest)
        #expect(info.chunks == 3)
        #expect(try await store.getBytes("from python") == theirs)
        await setup.finish()
    }

    @Test func objectStoreWatchersSeeTheOthersPuts() async throws {
        let setup = try await JetStreamSetup.start()
        let store = try await setup.js.createObjectStore(ObjectStoreConfig(bucket: "seen"))
        let folder = NSTemporaryDirectory() + "ennio-interop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }

        let theirWatch = try peer(["obj-watch", "--url", setup.server.url, "--bucket", "seen", "--count", "2"])
        #expect(try await theirWatch.line(within: .seconds(30)) == "READY")
        #expect(try await theirWatch.json(PythonObjectLine.self)?.initialDone == true)
        var ourWatch = try await store.watch(ObjectStoreWatchOptions(updatesOnly: true)).makeAsyncIterator()
        #expect(try await take(1, from: &ourWatch) == [.initialValuesDone])

        try await store.put("ours", data: Array("from swift".utf8))
        let theySaw = try #require(try await theirWatch.json(PythonObjectLine.self))
        #expect(theySaw.name == "ours")
        #expect(theySaw.size == 10)
        #expect(try await theirWatch.exitCode(within: .seconds(30)) == 0)

        try Data("from python".utf8).write(to: URL(fileURLWithPath: folder + "/theirs"))
        let writer = try peer(["obj-put", "--url", setup.server.url, "--bucket", "seen", "--name", "theirs", "--file", folder + "/theirs"])
        #expect(try await writer.exitCode(within: .seconds(30)) == 0, "\(writer.standardError)")
        let names = try await take(2, from: &ourWatch).map { update -> String in
            guard case .info(let info) = update else { return "\(update)" }
            return info.name
        }
        #expect(names == ["ours", "theirs"])
        await setup.finish()
    }
}
