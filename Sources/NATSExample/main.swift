// A small program over the NATS client: subscribe, publish, receive; answer a request.
//
//     swift run nats-example [nats://host:port]
//
// The server URL comes from the first argument, else NATS_URL, else nats://127.0.0.1:4222.
import Foundation
import NATSClient

let url = CommandLine.arguments.dropFirst().first ?? ProcessInfo.processInfo.environment["NATS_URL"] ?? "nats://127.0.0.1:4222"

do {
    let connection = try await NATSConnection.connect(NATSOptions(servers: [url]))
    print("connected to \(connection.connectedServer.map(String.init(describing:)) ?? url)")

    // Publish and subscribe.
    let greetings = try connection.subscribe(to: "greetings.>")
    try connection.publish("hello from Swift", to: "greetings.world", headers: ["Sender": "nats-example"])
    for await message in greetings {
        print("received on \(message.subject): \(message.string) (Sender: \(message.headers?["Sender"] ?? "-"))")
        break
    }

    // Request/reply: a responder answers with the request's text upper-cased.
    let service = try connection.subscribe(to: "upper")
    try await connection.flush()
    async let responder: Void = {
        for await request in service {
            if let reply = request.replyTo { try? connection.publish(request.string.uppercased(), to: reply) }
            break
        }
    }()
    let answer = try await connection.request("shout", to: "upper", timeout: .seconds(2))
    print("request 'shout' answered: \(answer.string)")
    await responder
    await connection.close()
    print("statistics: \(connection.statistics)")
} catch {
    print("nats-example failed: \(error)")
    exit(1)
}
