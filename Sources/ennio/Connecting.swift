import NATSClient

/// Connects to the servers the arguments name (`--server`, `NATS_URL`, or the local default).
///
/// Every command fails at once, with what to do, when no server answers (as the nats CLI
/// does). After a connection was established, long-running commands (coordinator, agent, sub)
/// reconnect without limit; the others stop at a lost connection.
func connect(
    _ arguments: Arguments, name: String, longRunning: Bool = false, configure: (inout NATSOptions) -> Void = { _ in }
) async throws -> NATSConnection {
    let servers = arguments.servers()
    var options = try arguments.connectionOptions(name: name)
    configure(&options)
    if longRunning { options.maxReconnectAttempts = -1 }
    do {
        return try await NATSConnection.connect(options)
    } catch let error as NATSError where error.code == .connectionFailed || error.code == .noServers {
        // Server addresses without their credentials (safe to print).
        let addresses = servers.map { (try? ServerAddress(parsing: $0))?.description ?? "?" }.joined(separator: ", ")
        throw CommandFailure(
            "no NATS server answers at \(addresses) (\(error.message)); start one (the README's walkthrough: "
                + ".build-tools/venv/bin/nats-server -js) or name yours with --server or NATS_URL")
    }
}
