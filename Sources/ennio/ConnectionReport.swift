import EnnioEvents
import NATSClient

/// Tells the user, on standard error, what happens to a long-running command's connection:
/// every disconnect with its cause, reconnects, server errors, lame duck moves, slow
/// consumers. Text that came from the server is escaped with ``TerminalText`` (control
/// characters shown, never sent to the terminal). Runs until the connection closes.
func reportConnectionEvents(of connection: NATSConnection, as name: String) -> Task<Void, Never> {
    let events = connection.events()
    return Task {
        for await event in events {
            switch event {
            case .connected:
                continue
            case .disconnected(let reason):
                printError("\(name): disconnected: \(TerminalText(reason)); reconnecting")
            case .reconnected(let server):
                printError("\(name): reconnected to \(TerminalText(server))")
            case .serverError(let text):
                printError("\(name): the server reported an error: \(TerminalText(text))")
            case .lameDuckMode(let server):
                printError("\(name): \(TerminalText(server)) is shutting down (lame duck mode)")
            case .slowConsumer(let subject, let dropped):
                printError("\(name): falling behind on \(TerminalText(subject)): \(dropped) messages dropped so far")
            case .discoveredServers, .closed:
                continue
            }
        }
    }
}
