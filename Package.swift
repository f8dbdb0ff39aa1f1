// swift-tools-version: 6.0
import PackageDescription

// Ennio Events: a hand-written NATS client and the event system built on it.
// No package dependencies: only the toolchain's own modules.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "ennio-events",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NATSProtocol", targets: ["NATSProtocol"]),
        .library(name: "NATSClient", targets: ["NATSClient"]),
        .library(name: "EnnioEvents", targets: ["EnnioEvents"]),
        .executable(name: "nats-example", targets: ["NATSExample"]),
    ],
    targets: [
        // The wire protocol: bytes in, operations out. No sockets, no Foundation.
        .target(name: "NATSProtocol", swiftSettings: strictSettings),
        // Sockets, threads, subscriptions, request/reply on top of the protocol.
        .target(name: "NATSClient", dependencies: ["NATSProtocol"], swiftSettings: strictSettings),
        // The event model: types, subjects, JSON, in-process bus, NATS publisher/subscriber.
        .target(name: "EnnioEvents", dependencies: ["NATSClient"], swiftSettings: strictSettings),
        .executableTarget(name: "NATSExample", dependencies: ["NATSClient"], swiftSettings: strictSettings),
        .testTarget(name: "NATSProtocolTests", dependencies: ["NATSProtocol"], swiftSettings: strictSettings),
        // Real nats-server processes and the nats-py peer, for the integration tests.
        .target(
            name: "NATSTestSupport",
            dependencies: ["NATSClient"],
            path: "Tests/NATSTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "NATSClientTests",
            dependencies: ["NATSClient", "NATSProtocol", "NATSTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EnnioEventsTests",
            dependencies: ["EnnioEvents", "NATSClient", "NATSTestSupport"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
