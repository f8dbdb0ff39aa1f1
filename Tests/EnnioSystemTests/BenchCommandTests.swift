import Foundation
@testable import NATSTestSupport
import Testing

/// `ennio bench` as scripts/bench.sh runs it, with small counts, against a real server: each
/// figure runs to the end and prints its `RESULT` line. What the figures are is never checked —
/// speed is measured by the benchmark script, not asserted by tests.
@Suite struct BenchCommandTests {
    /// The `key=value` fields of the `RESULT <figure> …` line, or `nil` without one.
    private static func result(_ figure: String, in output: String) -> [String: Double]? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("RESULT \(figure) ") }) else { return nil }
        var fields: [String: Double] = [:]
        for field in line.split(separator: " ").dropFirst(2) {
            let parts = field.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1]) else { return nil }
            fields[String(parts[0])] = value
        }
        return fields
    }

    @Test(arguments: [
        (["pub", "--count", "2000", "--size", "16"], "pub16", "msgs_per_sec"),
        (["pub", "--count", "500", "--size", "512"], "pub512", "mb_per_sec"),
        (["pubsub", "--count", "2000", "--size", "16"], "pubsub16", "msgs_per_sec"),
        (["req", "--count", "50", "--size", "16"], "req16", "p50_us"),
    ] as [([String], String, String)])
    func coreFiguresRunAgainstARealServer(arguments: [String], figure: String, key: String) async throws {
        let server = try TestServer()
        let run = try await EnnioProcess.run(["bench"] + arguments + ["--server", server.url])
        #expect(run.status == 0, "\(run.output)")
        let fields = try #require(Self.result(figure, in: run.output), "no RESULT \(figure) line in:\n\(run.output)")
        #expect((fields[key] ?? 0) > 0, "\(fields)")
        #expect(!run.output.contains("dropped"), "\(run.output)")
    }

    @Test func jetStreamPublishIsAcknowledgedAndCleansUp() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try await EnnioProcess.run(["bench", "js", "--count", "300", "--size", "16", "--server", server.url])
        #expect(run.status == 0, "\(run.output)")
        #expect(Self.result("js16", in: run.output)?["msgs_per_sec"] ?? 0 > 0, "\(run.output)")
        // The benchmark's stream is deleted afterwards: a second run starts from an empty one
        // (it checks that the stream holds exactly its own messages).
        let again = try await EnnioProcess.run(["bench", "js", "--count", "300", "--size", "16", "--server", server.url])
        #expect(again.status == 0, "\(again.output)")
    }

    @Test func keyValueRoundTripsAndTheOrderedConsumerRunAndCleanUp() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for _ in 0..<2 {
            // Twice: each run deletes its bucket and stream, and checks every value it reads.
            let kv = try await EnnioProcess.run(["bench", "kv", "--count", "200", "--size", "16", "--server", server.url])
            #expect(kv.status == 0, "\(kv.output)")
            #expect(Self.result("kvput16", in: kv.output)?["p50_us"] ?? 0 > 0, "\(kv.output)")
            #expect(Self.result("kvget16", in: kv.output)?["p50_us"] ?? 0 > 0, "\(kv.output)")
            let ordered = try await EnnioProcess.run(["bench", "ordered", "--count", "2000", "--size", "16", "--server", server.url])
            #expect(ordered.status == 0, "\(ordered.output)")
            #expect(Self.result("ordered16", in: ordered.output)?["msgs_per_sec"] ?? 0 > 0, "\(ordered.output)")
        }
        await stopOffThePool(server)
    }

    @Test func aFiftyMegabyteObjectRoundTripsInBoundedMemory() async throws {
        let (server, directory) = try await onThread { try jetStreamServer() }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try await EnnioProcess.run(["bench", "objects", "--size", String(50 * 1024 * 1024), "--server", server.url])
        #expect(run.status == 0, "\(run.output)")
        let fields = try #require(Self.result("objects", in: run.output), "no RESULT objects line in:\n\(run.output)")
        #expect((fields["get_mb_per_sec"] ?? 0) > 0, "\(fields)")
        let growth = try #require(fields["rss_growth_kb"])
        #expect(growth < 25 * 1024, "resident memory grew by \(growth) KiB for a 50 MiB object")
        await stopOffThePool(server)
    }

    @Test func eventFiguresAndTheCodecRun() async throws {
        let server = try TestServer()
        let events = try await EnnioProcess.run(["bench", "events", "--count", "2000", "--server", server.url])
        #expect(events.status == 0, "\(events.output)")
        #expect(Self.result("events_pub", in: events.output)?["events_per_sec"] ?? 0 > 0, "\(events.output)")
        let codec = try await EnnioProcess.run(["bench", "events", "--codec-only", "--count", "2000"])
        #expect(codec.status == 0, "\(codec.output)")
        #expect(Self.result("codec_encode", in: codec.output) != nil, "\(codec.output)")
        #expect(Self.result("codec_decode", in: codec.output) != nil, "\(codec.output)")
    }

    @Test func ingestStoresEveryEventInBothModes() async throws {
        let (server, directory) = try jetStreamServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try await EnnioProcess.run(["bench", "ingest", "--count", "1500", "--mode", "both", "--server", server.url])
        #expect(run.status == 0, "\(run.output)")
        // The figure is printed only once the coordinator has stored all of them, and any
        // duplicate, malformed or unstored event would be reported.
        #expect(Self.result("ingest", in: run.output)?["events_per_sec"] ?? 0 > 0, "\(run.output)")
        #expect(Self.result("ingest_js", in: run.output)?["events_per_sec"] ?? 0 > 0, "\(run.output)")
        #expect(!run.output.contains("bench ingest:"), "\(run.output)")
        // JetStream ingest writes the state buckets too, and says how much.
        #expect(Self.result("state_buckets", in: run.output)?["puts_per_event"] != nil, "\(run.output)")
        let refused = try await EnnioProcess.run(["bench", "pub", "--no-state-buckets", "--server", server.url])
        #expect(refused.status == 2 && refused.output.contains("--no-state-buckets does not apply"), "\(refused.output)")
    }

    /// On a three-server cluster: ingest through a stream of three copies, and a coordinator
    /// started empty catching up with a stream that holds events already.
    @Test func clusterIngestAndCatchUpStoreEveryEvent() async throws {
        let cluster = try TestCluster(size: 3, jetStream: true)
        let servers = cluster.urls.joined(separator: ",")
        // A cluster just started first elects its JetStream leader (the coordinator waits for it up
        // to a minute); with the whole suite loading the machine, each run gets four.
        func bench(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            let process = try EnnioProcess(["bench"] + arguments + ["--server", servers])
            return (try await process.finish(within: .seconds(240)), process.output)
        }
        let ingest = try await bench(["ingest", "--count", "1500", "--mode", "jetstream", "--replicas", "3"])
        #expect(ingest.status == 0, "\(ingest.output)")
        #expect(Self.result("ingest_js_r3", in: ingest.output)?["events_per_sec"] ?? 0 > 0, "\(ingest.output)")
        #expect(!ingest.output.contains("bench ingest:"), "\(ingest.output)")
        // The figure is printed only once the coordinator caught up with every event stored.
        let catchUp = try await bench(["catchup", "--count", "3000", "--replicas", "3"])
        #expect(catchUp.status == 0, "\(catchUp.output)")
        #expect(Self.result("catchup_fill", in: catchUp.output)?["events_per_sec"] ?? 0 > 0, "\(catchUp.output)")
        #expect(Self.result("catchup_r3", in: catchUp.output)?["events_per_sec"] ?? 0 > 0, "\(catchUp.output)")
        let refused = try await EnnioProcess.run(["bench", "ingest", "--replicas", "3", "--server", servers])
        #expect(refused.status == 2 && refused.output.contains("--replicas applies to"), "\(refused.output)")
    }

    /// The coordinator at scale, at one small size: its rollouts and runs break no rule (the
    /// benchmark checks), and a restart loads them from the checkpoint.
    @Test func theScaleFiguresRunWithRolloutsAndRuns() async throws {
        let server = try TestServer()
        let run = try await EnnioProcess.run(["bench", "scale", "--sizes", "5000", "--sessions", "100", "--hosts", "10", "--server", server.url])
        #expect(run.status == 0, "\(run.output)")
        let scale = try #require(Self.result("scale_5000", in: run.output), "\(run.output)")
        #expect(scale["family_events"] ?? 0 > 0 && scale["family_records"] ?? 0 > 0, "\(scale)")
        #expect(scale["rows_loaded"] ?? 0 > scale["family_records"] ?? 0, "\(scale)")
        #expect(Self.result("terminal_100", in: run.output) != nil, "\(run.output)")
        let fleet = try #require(Self.result("families_10", in: run.output), "\(run.output)")
        #expect(fleet["rows_loaded"] ?? 0 > 0 && fleet["rebuild_ms"] != nil, "\(fleet)")
    }

    @Test func theStoreAloneFillsANewDatabase() async throws {
        let run = try await EnnioProcess.run(["bench", "ingest", "--store-only", "--count", "3000"])
        #expect(run.status == 0, "\(run.output)")
        #expect(Self.result("store", in: run.output)?["events_per_sec"] ?? 0 > 0, "\(run.output)")
    }
}
