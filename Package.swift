// swift-tools-version: 6.0
import PackageDescription

// Ennio Events: a hand-written NATS client and the event system built on it.
// No package dependencies: only the toolchain's own modules and Debian's C libraries.
// Linux only: the code uses Glibc, pthreads and Linux's /proc directly (no Darwin variants),
// so no Apple platform is claimed.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "ennio-events",
    products: [
        .library(name: "NATSProtocol", targets: ["NATSProtocol"]),
        .library(name: "NATSClient", targets: ["NATSClient"]),
        .library(name: "EnnioEvents", targets: ["EnnioEvents"]),
        .library(name: "EnnioHTTP", targets: ["EnnioHTTP"]),
        .library(name: "EnnioCoordinator", targets: ["EnnioCoordinator"]),
        .library(name: "EnnioAgent", targets: ["EnnioAgent"]),
        .executable(name: "ennio", targets: ["ennio"]),
        .executable(name: "nats-example", targets: ["NATSExample"]),
    ],
    targets: [
        // The wire protocol: bytes in, operations out. No sockets, no Foundation.
        .target(name: "NATSProtocol", swiftSettings: strictSettings),
        // Locks and waiters for every module; sanitizer builds back them with pthreads.
        .target(name: "EnnioSync", swiftSettings: strictSettings),
        // The system OpenSSL 3 (libssl-dev): TLS, Ed25519 for NKEYs, SHA-256; through a module map.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", providers: [.apt(["libssl-dev"])]),
        // Sockets, threads, subscriptions, request/reply on top of the protocol.
        .target(name: "NATSClient", dependencies: ["NATSProtocol", "EnnioSync", "COpenSSL"], swiftSettings: strictSettings),
        // The event model: types, subjects, JSON, in-process bus, NATS publisher/subscriber.
        .target(name: "EnnioEvents", dependencies: ["NATSClient", "EnnioSync", "COpenSSL"], swiftSettings: strictSettings),
        // The system SQLite library (libsqlite3-dev), through a module map.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // HTTP/1.1 written here: a request parser (bytes in, requests out), responses,
        // server-sent events, and a small server over POSIX sockets on threads of its own.
        .target(name: "EnnioHTTP", dependencies: ["EnnioSync"], swiftSettings: strictSettings),
        // The lifecycle coordinator: wildcard subscriptions, state, SQLite history, queries,
        // the HTTP API and dashboard.
        .target(
            name: "EnnioCoordinator",
            dependencies: ["EnnioEvents", "NATSClient", "EnnioSync", "CSQLite", "EnnioHTTP"],
            swiftSettings: strictSettings
        ),
        // The node agent: lifecycle events, health checks, relaying local events, commands.
        .target(name: "EnnioAgent", dependencies: ["EnnioEvents", "NATSClient", "EnnioSync"], swiftSettings: strictSettings),
        // The `ennio` command: thin subcommands over the libraries.
        .executableTarget(
            name: "ennio",
            dependencies: ["EnnioEvents", "NATSClient", "EnnioCoordinator", "EnnioAgent"],
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "NATSExample", dependencies: ["NATSClient"], swiftSettings: strictSettings),
        .testTarget(name: "NATSProtocolTests", dependencies: ["NATSProtocol"], swiftSettings: strictSettings),
        .testTarget(name: "EnnioHTTPTests", dependencies: ["EnnioHTTP", "EnnioSync", "NATSTestSupport"], swiftSettings: strictSettings),
        // Real nats-server processes and the nats-py peer, for the integration tests.
        .target(
            name: "NATSTestSupport",
            dependencies: ["NATSClient", "EnnioSync", "COpenSSL"],
            path: "Tests/NATSTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "NATSClientTests",
            dependencies: ["NATSClient", "NATSProtocol", "EnnioSync", "NATSTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EnnioEventsTests",
            dependencies: ["EnnioEvents", "NATSClient", "NATSTestSupport"],
            swiftSettings: strictSettings
        ),
        // The lifecycle loop's rules without processes; records, probes and launches with real ones.
        .testTarget(
            name: "EnnioAgentTests",
            dependencies: ["EnnioAgent", "EnnioEvents", "NATSTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EnnioCoordinatorTests",
            dependencies: ["EnnioCoordinator", "EnnioAgent", "EnnioEvents", "EnnioHTTP", "EnnioSync", "NATSClient", "NATSTestSupport"],
            swiftSettings: strictSettings
        ),
        // The programs as a user runs them: the `ennio` binary, the demo, several network hosts.
        .testTarget(
            name: "EnnioSystemTests",
            dependencies: ["EnnioEvents", "EnnioCoordinator", "EnnioSync", "NATSClient", "NATSTestSupport"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
