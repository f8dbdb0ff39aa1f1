import EnnioSync
import NATSClient
import Synchronization
@testable import NATSTestSupport
import Testing

@Suite struct ClusterTests {
    /// Publishes probes through `publisher` until `subscription` sees one, proving the
    /// subscription's interest has reached the publisher's server across the routes.
    /// Probes go to `<prefix>.probe`; the subscription must listen on `<prefix>.>`.
    static func waitForInterest(publisher: NATSConnection, prefix: String, subscription: NATSSubscription) async throws {
        try await eventually("interest on \(prefix) to cross the cluster") {
            try publisher.publish("probe", to: prefix + ".probe")
            try await publisher.flush()
            try await Task.sleep(for: .milliseconds(20))
            return subscription.pendingCount > 0
        }
    }

    /// The next `count` messages that are not probes.
    static func takeData(_ count: Int, from subscription: NATSSubscription) async throws -> [String] {
        try await within(.seconds(30), "\(count) data messages") {
            var data: [String] = []
            for await message in subscription where !message.subject.hasSuffix(".probe") {
                data.append(message.string)
                if data.count == count { break }
            }
            return data
        }
    }

    @Test func aClientThatKnowsOneNodeDiscoversTheOthersAndFailsOver() async throws {
        let cluster = try TestCluster(size: 3, startAll: false)
        let first = try cluster.start(0)
        let client = try await NATSConnection.connect(to: first) {
            $0.reconnectWait = .milliseconds(50)
            $0.maxReconnectAttempts = -1
        }
        let events = EventWatcher(client)
        #expect(client.knownServers.count == 1)
        try cluster.start(1)
        try cluster.start(2)
        try await eventually("the other two nodes to be discovered") { client.knownServers.count == 3 }
        #expect(Set(client.knownServers.map(\.port)) == Set(cluster.clientPorts))
        try await events.wait(for: "a discovered-servers event") {
            if case .discoveredServers = $0 { return true } else { return false }
        }

        let observer = try await NATSConnection.connect(to: cluster.node(2))
        let received = try observer.subscribe(to: "failover.>")
        try await observer.flush()
        try await Self.waitForInterest(publisher: client, prefix: "failover", subscription: received)

        first.stop()
        let newServer = try await events.waitForReconnect()
        #expect(newServer != "nats://127.0.0.1:\(first.port)")
        try await Self.waitForInterest(publisher: client, prefix: "failover", subscription: received)
        for index in 0..<200 { try client.publish(String(index), to: "failover.data") }
        try await client.flush()
        #expect(try await Self.takeData(200, from: received) == (0..<200).map(String.init))
        await client.close()
        await observer.close()
    }

    @Test func lameDuckModeMovesTheClientToAnotherNode() async throws {
        let cluster = try TestCluster(size: 2)
        let client = try await NATSConnection.connect(to: cluster.node(0)) {
            $0.reconnectWait = .milliseconds(50)
            $0.maxReconnectAttempts = -1
        }
        let events = EventWatcher(client)
        try await eventually("the second node to be discovered") { client.knownServers.count == 2 }

        cluster.node(0).enterLameDuckMode()
        try await events.wait(for: "lame duck mode") { if case .lameDuckMode = $0 { return true } else { return false } }
        let newServer = try await events.waitForReconnect()
        #expect(newServer == "nats://127.0.0.1:\(cluster.clientPorts[1])")
        try await client.flush()
        #expect(client.connectedServer?.port == cluster.clientPorts[1])
        await client.close()
    }
}
