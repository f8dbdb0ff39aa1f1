import EnnioEvents
import NATSClient

/// Tells the user, on standard error, what happens to a long-running command's connection:
/// every disconnect with its cause, reconnects, server errors, lame duck moves, slow
/// consumers. Text that came from the server is escaped with ``TerminalText`` (control
/// characters shown, never sent to the terminal). Runs until the connection closes.
///
/// A permissions violation is said once: the server repeats it for every refused message (an
/// agent's health check every few seconds), so the same text again is only counted, and the
/// count said when the connection closes. At most ``distinctRefusals`` texts are remembered.
func reportConnectionEvents(of connection: NATSConnection, as name: String) -> Task<Void, Never> {
    let events = connection.events()
    return Task {
        var refusals: [String: Int] = [:]
        defer {
            let repeated = refusals.values.reduce(0) { $0 + $1 - 1 }
            if repeated > 0 { printError("\(name): the server refused \(Counted(repeated, "more operation")) as it said above") }
        }
        for await event in events {
            if case .serverError(let text) = event, text.lowercased().contains("permissions violation") {
                if let count = refusals[text] {
                    refusals[text] = count + 1
                    continue
                }
                if refusals.count < distinctRefusals { refusals[text] = 1 }
                printError("\(name): the server refused: \(TerminalText(text)) (said once; this user's role may not do that)")
                continue
            }
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

/// How many distinct permissions violations ``reportConnectionEvents(of:as:)`` remembers.
let distinctRefusals = 64
