import NATSClient

/// Tells the user, on standard error, what happens to a long-running command's connection:
/// every disconnect with its cause, reconnects, server errors, lame duck moves, slow
/// consumers. Text that came from the server is escaped (control characters shown, never
/// sent to the terminal). Runs until the connection closes.
func reportConnectionEvents(of connection: NATSConnection, as name: String) -> Task<Void, Never> {
    let events = connection.events()
    return Task {
        for await event in events {
            switch event {
            case .connected:
                continue
            case .disconnected(let reason):
                printError("\(name): disconnected: \(visible(reason)); reconnecting")
            case .reconnected(let server):
                printError("\(name): reconnected to \(visible(server))")
            case .serverError(let text):
                printError("\(name): the server reported an error: \(visible(text))")
            case .lameDuckMode(let server):
                printError("\(name): \(visible(server)) is shutting down (lame duck mode)")
            case .slowConsumer(let subject, let dropped):
                printError("\(name): falling behind on \(visible(subject)): \(dropped) messages dropped so far")
            case .discoveredServers, .closed:
                continue
            }
        }
    }
}

/// `text` with control characters and quotes escaped as Swift writes them (`\n`, `\u{1B}`),
/// without the surrounding quotes.
private func visible(_ text: String) -> String {
    String(text.debugDescription.dropFirst().dropLast())
}
