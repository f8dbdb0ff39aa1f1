/// How a ``NATSConnection`` connects and behaves. Defaults follow nats.go and nats.c.
public struct NATSOptions: Sendable, CustomReflectable {
    /// Seed server URLs, `nats://[user:pass@|token@]host[:port]`.
    public var servers: [String] = ["nats://127.0.0.1:4222"]
    /// Try the servers in the given order instead of shuffling them.
    public var noRandomize = false
    /// A name for this connection, shown by the server's monitoring.
    public var name: String?
    /// User and password, if not given in the URL.
    public var user: String?
    public var password: String?
    /// An authentication token, if not given in the URL.
    public var token: String?
    /// NKEY or JWT credentials: a seed, a `.creds` file, or a JWT or public key with a signing
    /// callback (see ``NATSCredentials``).
    public var credentials: NATSCredentials?
    /// TLS: when to use it, what to trust, the client certificate (see ``TLSOptions``).
    public var tls = TLSOptions()
    /// Whether the server may send this connection's own publishes back to its subscriptions.
    public var echo = true
    /// Time to open a TCP connection and complete the handshake with one server.
    public var connectTimeout: Duration = .seconds(2)
    /// Default time `flush()` waits for the server's `PONG`.
    public var flushTimeout: Duration = .seconds(10)
    /// Default time a request waits for its reply.
    public var requestTimeout: Duration = .seconds(5)
    /// Prefix of reply subjects used by requests.
    public var inboxPrefix = "_INBOX"
    /// Per-subscription limits on messages received but not yet consumed; past either one,
    /// new messages for that subscription are dropped and counted (a slow consumer).
    public var pendingMessageLimit = 65_536
    public var pendingByteLimit = 64 * 1024 * 1024
    /// Reconnect when the connection breaks (server gone, socket error, stale connection).
    public var allowReconnect = true
    /// Attempts per server before it leaves the pool; a negative number means no limit.
    public var maxReconnectAttempts = 60
    /// Least time between two attempts on the same server.
    public var reconnectWait: Duration = .seconds(2)
    /// A random extra wait of up to this much, so that many clients do not reconnect in step.
    public var reconnectJitter: Duration = .milliseconds(100)
    /// Bytes published while disconnected that are kept for the next connection; past this,
    /// publishing fails with ``NATSError/Code/reconnectBufferFull``.
    public var reconnectBufferSize = 8 * 1024 * 1024
    /// A server that refuses the credentials twice in a row leaves the pool (and when none is
    /// left the connection closes with `.authorizationViolation`), as in nats.go: retrying
    /// the same credentials does not change them. `false` keeps retrying (nats.go's
    /// `IgnoreAuthErrorAbort`), for servers whose accounts change while clients wait.
    public var abortOnRepeatedAuthorizationError = true
    /// Ignore `connect_urls` announced by the cluster.
    public var ignoreDiscoveredServers = false
    /// How often to send a keep-alive `PING`.
    public var pingInterval: Duration = .seconds(120)
    /// Unanswered keep-alive `PING`s after which the connection is stale.
    public var maxPingsOutstanding = 2
    /// How long ``NATSConnection/drain(timeout:)`` waits for consumers by default.
    public var drainTimeout: Duration = .seconds(30)
    /// Most bytes waiting for the socket while connected; past this `publish` fails with
    /// ``NATSError/Code/outboundBufferFull`` (and `publishWaitingForRoom` waits).
    public var writeBufferLimit = 8 * 1024 * 1024
    /// How long `close()` lets buffered messages go out before it closes the socket anyway.
    public var closeTimeout: Duration = .seconds(2)

    public init() {}

    public init(servers: [String]) {
        self.servers = servers
    }

    /// The options as `dump` and debuggers show them: passwords and tokens (also inside
    /// server URLs) replaced by `***`, credentials by where they come from.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "servers": servers.map(ServerAddress.redacted),
                "name": name as Any,
                "user": user as Any,
                "password": password.map { _ in "***" } as Any,
                "token": token.map { _ in "***" } as Any,
                "credentials": credentials.map(\.description) as Any,
                "tls": tls,
                "allowReconnect": allowReconnect,
                "maxReconnectAttempts": maxReconnectAttempts,
            ],
            displayStyle: .struct
        )
    }
}

/// How much may wait for a subscription's consumer before new messages are dropped (and
/// counted): at most `messages` messages and `bytes` bytes of headers and payloads.
public struct PendingLimits: Sendable, Hashable {
    public var messages: Int
    public var bytes: Int

    public init(messages: Int, bytes: Int) {
        self.messages = messages
        self.bytes = bytes
    }

    /// The connection's defaults.
    public init(_ options: NATSOptions) {
        self.init(messages: options.pendingMessageLimit, bytes: options.pendingByteLimit)
    }
}
