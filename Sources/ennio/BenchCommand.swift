import EnnioCoordinator
import EnnioEvents
import Foundation
import NATSClient
import Synchronization

/// `ennio bench`: throughput and latency figures, shaped like `nats bench`.
///
/// Every figure is printed for people and once more as a machine-readable line,
/// `RESULT <figure> <key>=<value> …`, which `scripts/bench.sh` collects.
enum BenchCommand {
    static let help = """
        usage: ennio bench <pub|sub|pubsub|req|js|kv|ordered|objects|events|ingest|catchup|sse|reducers|scale> [options]

          pub     --count N --size S [--subject X]   publish N messages of S bytes, flush; msgs/s and MB/s
          sub     --count N [--subject X]            wait for N messages; msgs/s from the first to the last
          pubsub  --count N --size S [--subject X]   a publisher and a subscriber connection; msgs/s received
          req     --count N --size S [--subject X]   sequential request/reply round trips; p50/p99/mean in µs
          js      --count N --size S [--subject X]   JetStream publish with acknowledgements (publishAll,
                                                     256 pending) to a memory stream it creates; msgs/s acked
          kv      --count N --size S                 Key-Value: N sequential puts, then N gets, on a memory
                                                     bucket it creates (keys k0…k999); p50/p99/mean in µs
          ordered --count N --size S                 N messages stored in a memory stream, then read by an
                                                     ordered consumer; msgs/s from its creation to the last
          objects [--size S]                         one object of S bytes (default 50 MiB), made a piece at
                                                     a time, put to a file object store it creates and read
                                                     back (digest checked); MB/s each way, and how much the
                                                     process's resident memory grew
          events  --count N [--codec-only]           Event values as JSON through EventPublisher; events/s
                                                     (--codec-only: EventCodec encode and decode rates alone)
          ingest  --count N [--db PATH] [--mode M] [--store-only] [--no-state-buckets] [--replicas R]
                                                     events published, received, decoded and stored in
                                                     SQLite by the coordinator; events/s stored
                                                     (M: core, jetstream or both; default core;
                                                     jetstream deletes and recreates the stream
                                                     ENNIO_EVENTS: only on a scratch server, with R
                                                     copies on a cluster (figure ingest_js_rR), and
                                                     writes the state buckets, with the puts per
                                                     event, unless --no-state-buckets;
                                                     --store-only: EventStore.insert alone, no server)
          catchup --count N [--replicas R]           N events put in the stream ENNIO_EVENTS (made
                                                     again with R copies: only on a scratch server),
                                                     then a coordinator started empty reads them all:
                                                     its time to catch up, and events/s
          sse     --count N [--clients C] [--rate R] a coordinator with its HTTP API and C (default 100)
                                                     event-stream clients; events/s delivered to every
                                                     client, publish-to-delivery p50/p99/max in ms
                                                     (R events/s; default 0: as fast as it takes them)
          reducers --count N                         the rollout and run reducers alone, no server;
                                                     events/s for rollouts, runs and both

          scale   [--sizes N,…] [--sessions N,…]     the coordinator as its history grows: restart,
                                                     history pages, ingest, rebuild per size
                                                     (`ennio bench scale --help`)

        Common options: --server URL (or NATS_URL; default nats://127.0.0.1:4222).
        Every figure is also printed as one line `RESULT <figure> key=value …`.
        """

    static func run(_ raw: [String]) async throws -> Int32 {
        if raw.isEmpty || raw.contains("--help") || raw.contains("-h") {
            print(help)
            return raw.isEmpty ? 2 : 0
        }
        let mode = raw[0]
        if mode == "scale" { return try await ScaleBench.run(Array(raw.dropFirst())) }
        let arguments = try Arguments(Array(raw.dropFirst()), options: ["count", "size", "subject", "server", "db", "mode", "clients", "rate", "replicas"], flags: ["codec-only", "store-only", "no-state-buckets"], connecting: true)
        let count = try arguments.integer("count", range: 1...1_000_000_000) ?? 100_000
        let size = try arguments.integer("size", range: 0...64 * 1024 * 1024) ?? 16
        let subject = arguments.value("subject") ?? "ennio.bench"
        guard NATSProtocolCheck.isValidSubject(subject) else { throw UsageError("--subject \(subject.debugDescription) is not a valid subject") }
        if mode != "sse" {
            for name in ["clients", "rate"] where arguments.value(name) != nil {
                throw UsageError("--\(name) does not apply to `bench \(mode)`")
            }
        }
        if mode != "ingest", arguments.flag("no-state-buckets") {
            throw UsageError("--no-state-buckets does not apply to `bench \(mode)`")
        }
        let replicas = try arguments.replicas()
        if replicas != nil, mode != "catchup", mode != "ingest" || arguments.value("mode") != "jetstream" {
            throw UsageError("--replicas applies to `bench catchup` and `bench ingest --mode jetstream` only")
        }
        func refuse(_ names: [String]) throws {
            for name in names where arguments.value(name) != nil || ((name == "codec-only" || name == "store-only") && arguments.flag(name)) {
                throw UsageError("--\(name) does not apply to `bench \(mode)`")
            }
        }
        switch mode {
        case "pub":
            try refuse(["db", "codec-only", "store-only", "mode"])
            try await publish(arguments, count: count, size: size, subject: subject)
        case "sub":
            try refuse(["db", "codec-only", "store-only", "size", "mode"])
            try await subscribe(arguments, count: count, subject: subject)
        case "pubsub":
            try refuse(["db", "codec-only", "store-only", "mode"])
            try await publishSubscribe(arguments, count: count, size: size, subject: subject)
        case "req":
            try refuse(["db", "codec-only", "store-only", "mode"])
            try await request(arguments, count: count, size: size, subject: subject)
        case "js":
            try refuse(["db", "codec-only", "store-only", "mode"])
            try await jetStreamPublish(arguments, count: count, size: size, subject: arguments.value("subject") ?? "bench.js")
        case "kv":
            try refuse(["db", "codec-only", "store-only", "mode", "subject"])
            try await keyValue(arguments, count: count, size: size)
        case "ordered":
            try refuse(["db", "codec-only", "store-only", "mode", "subject"])
            try await ordered(arguments, count: count, size: size)
        case "objects":
            try refuse(["db", "codec-only", "store-only", "mode", "subject", "count"])
            try await objects(arguments, size: arguments.value("size") == nil ? 50 * 1024 * 1024 : max(1, size))
        case "events":
            try refuse(["db", "size", "subject", "mode", "store-only"])
            if arguments.flag("codec-only") {
                codec(count: count)
            } else {
                try await events(arguments, count: count)
            }
        case "ingest":
            try refuse(["codec-only", "size", "subject"])
            if arguments.flag("store-only") {
                try refuse(["mode", "server"])
                try store(arguments, count: count)
                return 0
            }
            let which = arguments.value("mode") ?? "core"
            switch which {
            case "core": try await ingest(arguments, count: count, mode: .core)
            case "jetstream": try await ingest(arguments, count: count, mode: .jetStream, replicas: replicas)
            case "both":
                try await ingest(arguments, count: count, mode: .core)
                try await ingest(arguments, count: count, mode: .jetStream)
            default: throw UsageError("--mode must be core, jetstream or both, not \(which.debugDescription)")
            }
        case "catchup":
            try refuse(["db", "codec-only", "store-only", "size", "subject", "mode"])
            try await catchUp(arguments, count: count, replicas: replicas)
        case "sse":
            try refuse(["db", "codec-only", "store-only", "size", "subject", "mode"])
            try await StreamBenchmark.run(arguments, count: count)
        case "reducers":
            try refuse(["db", "codec-only", "store-only", "size", "subject", "mode", "server"])
            reducers(count: count)
        default:
            throw UsageError("unknown benchmark \(mode.debugDescription) (pub, sub, pubsub, req, js, kv, ordered, objects, events, ingest, catchup, sse, reducers, scale)")
        }
        return 0
    }

    // MARK: - Output

    static func seconds(_ duration: Duration) -> Double {
        let (whole, attoseconds) = duration.components
        return Double(whole) + Double(attoseconds) / 1e18
    }

    static func report(_ figure: String, _ human: String, _ values: [(String, Double)]) {
        print("\(figure): \(human)")
        let fields = values.map { "\($0.0)=\(format($0.1))" }.joined(separator: " ")
        print("RESULT \(figure) \(fields)")
    }

    static func format(_ value: Double) -> String {
        value >= 1000 ? String(Int64(value.rounded())) : String(format: "%.2f", value)
    }

    /// The p50, p99 and mean of round trips measured in µs.
    static func latencyReport(_ figure: String, _ samples: [Double]) {
        let samples = samples.sorted()
        let p50 = samples[samples.count / 2]
        let p99 = samples[min(samples.count - 1, samples.count * 99 / 100)]
        let mean = samples.reduce(0, +) / Double(samples.count)
        report(
            figure,
            "\(samples.count) round trips: p50 \(String(format: "%.1f", p50)) µs, p99 \(String(format: "%.1f", p99)) µs, mean \(String(format: "%.1f", mean)) µs",
            [("p50_us", p50), ("p99_us", p99), ("mean_us", mean)]
        )
    }

    static func rateReport(_ figure: String, count: Int, bytes: Int, elapsed: Duration, unit: String = "msgs") {
        let time = max(seconds(elapsed), 1e-9)
        let rate = Double(count) / time
        let megabytes = Double(count * bytes) / time / 1_000_000
        report(
            figure,
            "\(count) \(unit) in \(String(format: "%.3f", time)) s: \(Int64(rate)) \(unit)/s, \(String(format: "%.1f", megabytes)) MB/s",
            [("\(unit)_per_sec", rate), ("mb_per_sec", megabytes)]
        )
    }

    static func connection(_ arguments: Arguments, name: String, subscriberLimits: Bool = false) async throws -> NATSConnection {
        var options = try arguments.connectionOptions(name: name)
        options.allowReconnect = false
        if subscriberLimits {
            // A subscriber that falls behind keeps up to this much before dropping (bounded).
            options.pendingMessageLimit = 1 << 20
            options.pendingByteLimit = 256 * 1024 * 1024
        }
        return try await NATSConnection.connect(options)
    }

    /// Publishes without waiting; false (nothing published) when the buffer is full.
    @inline(__always)
    static func published(_ bytes: [UInt8], to subject: String, on connection: NATSConnection) throws(NATSError) -> Bool {
        do {
            try connection.publish(bytes, to: subject)
            return true
        } catch {
            guard error.code == .outboundBufferFull else { throw error }
            return false
        }
    }

    /// Publishes an event without waiting; false (nothing published) when the buffer is full.
    @inline(__always)
    static func published(_ event: Event, with publisher: EventPublisher) throws -> Bool {
        do {
            try publisher.publish(event)
            return true
        } catch let error as NATSError where error.code == .outboundBufferFull {
            return false
        }
    }

    static func payload(size: Int) -> [UInt8] {
        (0..<size).map { UInt8(ascii: "a") + UInt8($0 % 26) }
    }

    // MARK: - Core NATS

    static func publish(_ arguments: Arguments, count: Int, size: Int, subject: String) async throws {
        let connection = try await connection(arguments, name: "ennio bench pub")
        let bytes = payload(size: size)
        let start = ContinuousClock.now
        for _ in 0..<count where try !published(bytes, to: subject, on: connection) {
            // The server fell behind: wait for room (libnats's publish blocks then).
            try await connection.publishWaitingForRoom(bytes, to: subject)
        }
        try await connection.flush(timeout: .seconds(120))
        let elapsed = ContinuousClock.now - start
        rateReport("pub\(size)", count: count, bytes: size, elapsed: elapsed)
        await connection.close()
    }

    /// Receives `count` messages; returns the time from the first to the last, and how many
    /// were dropped on the way.
    static func receive(_ subscription: NATSSubscription, count: Int, timeout: Duration) async -> (first: ContinuousClock.Instant, last: ContinuousClock.Instant, received: Int) {
        let clock = ContinuousClock()
        var first = clock.now
        var received = 0
        let deadline = clock.now + timeout
        for await _ in subscription {
            if received == 0 { first = clock.now }
            received += 1
            if received == count { break }
            if received & 0xFFFF == 0, clock.now > deadline { break }
        }
        return (first, clock.now, received)
    }

    static func subscribe(_ arguments: Arguments, count: Int, subject: String) async throws {
        let connection = try await connection(arguments, name: "ennio bench sub", subscriberLimits: true)
        let subscription = try connection.subscribe(to: subject)
        try await connection.flush()
        print("bench sub: waiting for \(count) messages on \(subject)")
        let (first, last, received) = await receive(subscription, count: count, timeout: .seconds(3600))
        rateReport("sub", count: received, bytes: 0, elapsed: last - first)
        if subscription.droppedCount > 0 { printError("bench sub: \(subscription.droppedCount) messages dropped (slow consumer)") }
        await connection.close()
    }

    static func publishSubscribe(_ arguments: Arguments, count: Int, size: Int, subject: String) async throws {
        let subscriber = try await connection(arguments, name: "ennio bench subscriber", subscriberLimits: true)
        let publisher = try await connection(arguments, name: "ennio bench publisher")
        let subscription = try subscriber.subscribe(to: subject)
        try await subscriber.flush()
        let consumer = Task { await receive(subscription, count: count, timeout: .seconds(300)) }
        let bytes = payload(size: size)
        let start = ContinuousClock.now
        for _ in 0..<count where try !published(bytes, to: subject, on: publisher) {
            try await publisher.publishWaitingForRoom(bytes, to: subject)
        }
        try await publisher.flush(timeout: .seconds(120))
        // Everything published has reached the server; wait for the rest to arrive, or for
        // the subscription to have dropped what it could not keep.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            try? subscription.unsubscribe()
        }
        let (_, last, received) = await consumer.value
        watchdog.cancel()
        let dropped = subscription.droppedCount
        rateReport("pubsub\(size)", count: received, bytes: size, elapsed: last - start)
        if received < count {
            printError("bench pubsub: received \(received) of \(count) (\(dropped) dropped by the client as a slow consumer)")
        }
        await publisher.close()
        await subscriber.close()
    }

    static func request(_ arguments: Arguments, count: Int, size: Int, subject: String) async throws {
        let responder = try await connection(arguments, name: "ennio bench responder")
        let requester = try await connection(arguments, name: "ennio bench requester")
        let requests = try responder.subscribe(to: subject)
        try await responder.flush()
        let answering = Task {
            for await request in requests {
                guard let replyTo = request.replyTo else { continue }
                try? responder.publish(request.payload, to: replyTo)
            }
        }
        let bytes = payload(size: size)
        // A few round trips first, so that both sides have their reply subscription in place.
        for _ in 0..<min(100, count) { _ = try await requester.request(bytes, to: subject, timeout: .seconds(5)) }
        let clock = ContinuousClock()
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let start = clock.now
            _ = try await requester.request(bytes, to: subject, timeout: .seconds(5))
            samples.append(seconds(clock.now - start) * 1e6)
        }
        latencyReport("req\(size)", samples)
        answering.cancel()
        await requester.close()
        await responder.close()
    }

    // MARK: - JetStream

    /// The stream `bench js` publishes to: created for the run (memory storage), deleted after.
    static let jetStreamBenchStream = "ENNIO_BENCH_JS"

    static func jetStreamPublish(_ arguments: Arguments, count: Int, size: Int, subject: String) async throws {
        let connection = try await connection(arguments, name: "ennio bench js")
        let jetStream = JetStream(connection: connection, timeout: .seconds(30))
        try? await jetStream.deleteStream(jetStreamBenchStream)
        _ = try await jetStream.createStream(StreamConfig(name: jetStreamBenchStream, subjects: [subject], storage: .memory))
        let bytes = payload(size: size)
        let messages = [(subject: String, payload: [UInt8], messageID: String?)](repeating: (subject, bytes, nil), count: count)
        let start = ContinuousClock.now
        let acks = try await jetStream.publishAll(messages, maxPending: 256)
        let elapsed = ContinuousClock.now - start
        let info = try await jetStream.streamInfo(jetStreamBenchStream)
        try? await jetStream.deleteStream(jetStreamBenchStream)
        guard acks.count == count, info.state.messages == UInt64(count) else {
            throw BenchError("bench js: \(acks.count) acknowledgements, \(info.state.messages) messages in the stream, expected \(count)")
        }
        rateReport("js\(size)", count: count, bytes: size, elapsed: elapsed)
        await connection.close()
    }

    /// The bucket `bench kv` uses: created for the run (memory storage), deleted after.
    static let keyValueBenchBucket = "ENNIO_BENCH_KV"

    static func keyValue(_ arguments: Arguments, count: Int, size: Int) async throws {
        let connection = try await connection(arguments, name: "ennio bench kv")
        let jetStream = JetStream(connection: connection, timeout: .seconds(30))
        try? await jetStream.deleteKeyValue(keyValueBenchBucket)
        let kv = try await jetStream.createKeyValue(KeyValueConfig(bucket: keyValueBenchBucket, storage: .memory))
        let bytes = payload(size: size)
        let keys = (0..<min(1000, count)).map { "k\($0)" }
        // A few first, so that the reply subscription is in place.
        for index in 0..<min(100, count) { try await kv.put(keys[index % keys.count], bytes) }
        let clock = ContinuousClock()
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for index in 0..<count {
            let start = clock.now
            try await kv.put(keys[index % keys.count], bytes)
            samples.append(seconds(clock.now - start) * 1e6)
        }
        latencyReport("kvput\(size)", samples)
        samples.removeAll(keepingCapacity: true)
        for index in 0..<count {
            let start = clock.now
            let entry = try await kv.get(keys[index % keys.count])
            samples.append(seconds(clock.now - start) * 1e6)
            guard entry.value.count == size else { throw BenchError("bench kv: a value of \(entry.value.count) bytes, expected \(size)") }
        }
        latencyReport("kvget\(size)", samples)
        try? await jetStream.deleteKeyValue(keyValueBenchBucket)
        await connection.close()
    }

    /// The stream `bench ordered` reads: created for the run (memory storage), deleted after.
    static let orderedBenchStream = "ENNIO_BENCH_ORDERED"

    static func ordered(_ arguments: Arguments, count: Int, size: Int) async throws {
        let connection = try await connection(arguments, name: "ennio bench ordered")
        let jetStream = JetStream(connection: connection, timeout: .seconds(30))
        try? await jetStream.deleteStream(orderedBenchStream)
        _ = try await jetStream.createStream(StreamConfig(name: orderedBenchStream, subjects: ["bench.ordered"], storage: .memory))
        let bytes = payload(size: size)
        var stored = 0
        while stored < count {
            let batch = min(50_000, count - stored)
            _ = try await jetStream.publishAll(Array(repeating: ("bench.ordered", bytes, nil), count: batch), maxPending: 256)
            stored += batch
        }
        let start = ContinuousClock.now
        let consumer = try await jetStream.orderedConsumer(stream: orderedBenchStream)
        var received = 0
        for try await message in consumer {
            guard message.payload.count == size else { throw BenchError("bench ordered: a message of \(message.payload.count) bytes, expected \(size)") }
            received += 1
            if received == count { break }
        }
        let elapsed = ContinuousClock.now - start
        guard received == count else { throw BenchError("bench ordered: \(received) of \(count) messages") }
        rateReport("ordered\(size)", count: count, bytes: size, elapsed: elapsed)
        if consumer.recreations > 0 { printError("bench ordered: the consumer was made again \(consumer.recreations) times") }
        consumer.stop()
        try? await jetStream.deleteStream(orderedBenchStream)
        await connection.close()
    }

    /// The object store `bench objects` uses: created for the run (file storage), deleted after.
    static let objectBenchBucket = "ENNIO_BENCH_OBJECTS"

    /// This process's resident memory now, in KiB (`VmRSS` of `/proc/self/status`).
    static func residentKilobytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Pieces of an object made one by one as they are asked for: the source never holds more
    /// than one (each a byte repeated, its index at its start, so that no two are alike).
    struct ObjectPieces: AsyncSequence, Sendable {
        let size: Int
        static let pieceSize = 256 * 1024

        struct AsyncIterator: AsyncIteratorProtocol {
            let size: Int
            var offset = 0

            mutating func next() async -> [UInt8]? {
                guard offset < size else { return nil }
                let index = offset / ObjectPieces.pieceSize
                var piece = [UInt8](repeating: UInt8(truncatingIfNeeded: index &* 31), count: Swift.min(ObjectPieces.pieceSize, size - offset))
                piece[0] = UInt8(truncatingIfNeeded: index)
                offset += piece.count
                return piece
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(size: size) }
    }

    static func objects(_ arguments: Arguments, size: Int) async throws {
        let connection = try await connection(arguments, name: "ennio bench objects")
        let jetStream = JetStream(connection: connection, timeout: .seconds(30))
        try? await jetStream.deleteObjectStore(objectBenchBucket)
        let store = try await jetStream.createObjectStore(ObjectStoreConfig(bucket: objectBenchBucket, storage: .file))
        let baseline = residentKilobytes()
        var peak = baseline
        let putStart = ContinuousClock.now
        let info = try await store.put(ObjectMeta(name: "bench.bin"), from: ObjectPieces(size: size))
        let putTime = ContinuousClock.now - putStart
        peak = max(peak, residentKilobytes())
        guard info.size == UInt64(size) else { throw BenchError("bench objects: stored \(info.size) bytes, not \(size)") }
        let getStart = ContinuousClock.now
        var received = 0
        // The reader checks the SHA-256 digest recorded at the put when the last chunk is read.
        for try await chunk in try await store.get("bench.bin") {
            received += chunk.count
            if received % (1024 * 1024) < chunk.count { peak = max(peak, residentKilobytes()) }
        }
        let getTime = ContinuousClock.now - getStart
        guard received == size else { throw BenchError("bench objects: read \(received) bytes, not \(size)") }
        try? await jetStream.deleteObjectStore(objectBenchBucket)
        let megabytes = Double(size) / 1_000_000
        let putRate = megabytes / max(seconds(putTime), 1e-9)
        let getRate = megabytes / max(seconds(getTime), 1e-9)
        report(
            "objects",
            "\(size) bytes put at \(String(format: "%.1f", putRate)) MB/s, read back at \(String(format: "%.1f", getRate)) MB/s; resident memory grew by \(peak - baseline) KiB",
            [("put_mb_per_sec", putRate), ("get_mb_per_sec", getRate), ("rss_growth_kb", Double(peak - baseline))]
        )
        await connection.close()
    }

    // MARK: - Events

    /// A realistic mix of events (several types, projects and sessions, data of a few kinds).
    /// Ids are random version 4 UUIDs, as real producers make them (so the store's id index
    /// takes inserts all over, not appends).
    static func sampleEvents(_ count: Int, offset: Int = 0) -> [Event] {
        let types: [EventType] = [.ciPassing, .ciFailing, .prCreated, .reviewPending, .mergeReady, .reactionTriggered]
        let data: [JSONValue] = [
            .null,
            ["attempt": 3, "branch": "feature/faster-publish"],
            ["url": "https://example.com/pr/42", "checks": ["unit", "lint"], "passed": true],
        ]
        let base = EventTimestamp.now().nanosecondsSinceEpoch
        return (0..<count).map { index in
            let number = offset + index
            return Event(
                id: EventID.random(),
                type: types[number % types.count],
                priority: number % 7 == 0 ? .urgent : .info,
                sessionId: "session-\(number % 50)",
                projectId: "project-\(number % 5)",
                timestamp: EventTimestamp(nanosecondsSinceEpoch: base + Int64(number) * 1000),
                message: "benchmark event \(number): CI for branch feature/faster-publish",
                data: data[number % data.count]
            )
        }
    }

    static func codec(count: Int) {
        let events = sampleEvents(1024)
        let clock = ContinuousClock()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1024)
        var total = 0
        var start = clock.now
        for index in 0..<count {
            buffer.removeAll(keepingCapacity: true)
            EventCodec.encode(events[index & 1023], into: &buffer)
            total &+= buffer.count
        }
        let encodeTime = clock.now - start
        let encoded = events.map { EventCodec.encode($0) }
        var checksum = 0
        start = clock.now
        for index in 0..<count {
            if let event = try? EventCodec.decode(encoded[index & 1023]) { checksum &+= event.message.utf8.count }
        }
        let decodeTime = clock.now - start
        precondition(checksum > 0 && total > 0)
        rateReport("codec_encode", count: count, bytes: total / count, elapsed: encodeTime, unit: "events")
        rateReport("codec_decode", count: count, bytes: total / count, elapsed: decodeTime, unit: "events")
    }

    static func events(_ arguments: Arguments, count: Int) async throws {
        let connection = try await connection(arguments, name: "ennio bench events")
        let publisher = try EventPublisher(connection: connection)
        let events = sampleEvents(1024)
        let averageSize = events.map { EventCodec.encode($0).count }.reduce(0, +) / events.count
        let start = ContinuousClock.now
        for index in 0..<count where try !published(events[index & 1023], with: publisher) {
            try await publisher.publishWaitingForRoom(events[index & 1023])
        }
        try await connection.flush(timeout: .seconds(120))
        let elapsed = ContinuousClock.now - start
        rateReport("events_pub", count: count, bytes: averageSize, elapsed: elapsed, unit: "events")
        await connection.close()
    }

    /// The SQLite part of ingest alone: `count` events inserted into a fresh store in batches
    /// of the coordinator's batch size, one transaction each.
    static func store(_ arguments: Arguments, count: Int) throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try EventStore(path: arguments.value("db") ?? directory.appendingPathComponent("store.sqlite").path)
        defer { store.close() }
        let batchSize = CoordinatorOptions().batchSize
        var stored = 0
        var elapsed = Duration.zero
        while stored < count {
            let batch = try sampleEvents(min(batchSize, count - stored), offset: stored).map { event in
                (event: event, subject: try EventSubject.subject(for: event))
            }
            let start = ContinuousClock.now
            let inserted = try store.insert(batch)
            elapsed += ContinuousClock.now - start
            guard inserted.allSatisfy({ $0 }) else { throw BenchError("bench ingest --store-only: an event was not new") }
            stored += batch.count
        }
        let total = try store.count()
        guard total == count else { throw BenchError("bench ingest --store-only: \(total) rows stored, not \(count)") }
        rateReport("store", count: count, bytes: 0, elapsed: elapsed, unit: "events")
    }

    static func ingest(_ arguments: Arguments, count: Int, mode: CoordinatorOptions.Mode, replicas: Int? = nil) async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = arguments.value("db") ?? directory.appendingPathComponent("ingest.sqlite").path
        let store = try EventStore(path: path)
        defer { store.close() }
        let coordinatorConnection = try await connection(arguments, name: "ennio bench coordinator", subscriberLimits: true)
        var options = CoordinatorOptions()
        options.mode = mode
        options.stateBuckets = !arguments.flag("no-state-buckets")
        options.replicas = replicas
        if mode == .jetStream {
            guard coordinatorConnection.serverInfo?.jetStream == true else {
                printError("bench ingest: the server has no JetStream; jetstream mode skipped")
                await coordinatorConnection.close()
                return
            }
            // A fresh stream and consumer, so that nothing from earlier runs is replayed.
            let jetStream = JetStream(connection: coordinatorConnection)
            try? await jetStream.deleteStream(EventStream.name)
        }
        let coordinator = try Coordinator(connection: coordinatorConnection, store: store, options: options)
        let alreadyStored = coordinator.statistics.stored
        let running = try await started(coordinator)

        let connection = try await connection(arguments, name: "ennio bench ingest publisher")
        let publisher = try EventPublisher(connection: connection)
        // At most this many events in flight (published, not yet stored): bounded memory.
        let window = 50_000
        let chunk = 5_000
        let templateCount = 4096
        var published = 0
        func waitFor(_ target: Int) async throws {
            try await watch(coordinator, storing: count) { Int(coordinator.statistics.stored - alreadyStored) >= target }
        }
        // The events are made from templates (made before the clock starts), each with a new id
        // and timestamp, as a producer stamps an event: the figure is the coordinator's, not
        // the cost of composing sample messages.
        let templates = sampleEvents(templateCount)
        let base = EventTimestamp.now().nanosecondsSinceEpoch
        let start = ContinuousClock.now
        while published < count {
            let batch = stamped(templates, published..<min(published + chunk, count), base: base)
            try await waitFor(published + batch.count - window)
            if mode == .jetStream {
                try await publishAcknowledged(batch, on: connection)
            } else {
                for event in batch { try await publisher.publishWaitingForRoom(event) }
            }
            published += batch.count
        }
        try await connection.flush(timeout: .seconds(120))
        try await waitFor(count)
        let elapsed = ContinuousClock.now - start
        rateReport(mode == .core ? "ingest" : replicas.map { "ingest_js_r\($0)" } ?? "ingest_js", count: count, bytes: 0, elapsed: elapsed, unit: "events")
        if mode == .jetStream, options.stateBuckets {
            let buckets = coordinator.stateBuckets.statistics
            report(
                "state_buckets",
                "\(buckets.puts) rows written to the state buckets for \(count) events (\(coordinator.sessions.count) sessions): "
                    + String(format: "%.4f", Double(buckets.puts) / Double(count)) + " per event; \(buckets.resyncs) resyncs, \(buckets.overflows) overflows, \(buckets.failures) failures",
                [("puts", Double(buckets.puts)), ("puts_per_event", Double(buckets.puts) / Double(count))])
        }
        let statistics = coordinator.statistics
        if statistics.duplicates + statistics.malformed + statistics.mismatched + statistics.storeFailures > 0 {
            printError("bench ingest: \(statistics)")
        }
        running.cancel()
        _ = try? await running.value
        if mode == .jetStream { try? await JetStream(connection: connection).deleteStream(EventStream.name) }
        await connection.close()
        await coordinatorConnection.close()
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Subject checks for the command line without importing the protocol module everywhere.
enum NATSProtocolCheck {
    static func isValidSubject(_ subject: String) -> Bool {
        !subject.isEmpty && !subject.utf8.contains { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: ">") }
            && !subject.split(separator: ".", omittingEmptySubsequences: false).contains { $0.isEmpty }
    }
}
