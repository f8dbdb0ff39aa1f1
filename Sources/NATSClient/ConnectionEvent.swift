/// Something that happened to a connection, for the application to observe.
public enum ConnectionEvent: Sendable, Hashable {
    /// The first connection to `server` succeeded.
    case connected(server: String)
    /// The socket broke; the connection will try to reconnect (unless it closes).
    case disconnected(reason: String)
    /// Connected again, to `server`; subscriptions were restored.
    case reconnected(server: String)
    /// The cluster told us of servers we did not know (from `connect_urls`).
    case discoveredServers([String])
    /// The server is in lame duck mode and will shut down; the client moves to another.
    case lameDuckMode(server: String)
    /// A subscription dropped messages because its consumer fell behind.
    case slowConsumer(subject: String, dropped: UInt64)
    /// The server reported an error (`-ERR`).
    case serverError(String)
    /// The connection is closed for good.
    case closed
}
