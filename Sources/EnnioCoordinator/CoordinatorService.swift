import EnnioEvents
import NATSClient

/// The coordinator's queries as a NATS service (ADR-32): `ennio-coordinator`, with one endpoint
/// per query subject (`ennio.query.history|sessions|nodes|rollouts|runs`), so that
/// `$SRV.PING.ennio-coordinator` finds every running coordinator, `$SRV.INFO` lists its queries
/// and `$SRV.STATS` counts the requests and errors of each.
///
/// The subjects, requests and replies are those of ``QueryProtocol`` (a public contract,
/// `topics.md`), byte for byte; an error reply's JSON carries the ADR's `Nats-Service-Error`
/// and `Nats-Service-Error-Code` headers as well. The endpoints join the queue group
/// `ennio-coordinator`, as the query subscriptions always did, so one of several coordinators
/// answers each request.
public enum CoordinatorService {
    public static let name = "ennio-coordinator"
    /// The version of the query API.
    public static let version = "1.0.0"
    public static let queueGroup = "ennio-coordinator"
    /// The longest description an error reply's `Nats-Service-Error` header carries, in bytes.
    static let headerDescriptionBytes = 256

    /// The endpoints: each query's name (the last token of its subject) and subject.
    public static var endpoints: [(name: String, subject: String)] {
        ([QueryProtocol.historySubject, QueryProtocol.sessionsSubject, QueryProtocol.nodesSubject] + QueryProtocol.familySubjects).map { subject in
            (String(subject.split(separator: ".").last ?? ""), subject)
        }
    }

    /// The service of `coordinator`, not yet running. Its metadata names the durable consumer
    /// (which tells coordinators apart) and the mode.
    static func make(for coordinator: Coordinator, mode: CoordinatorOptions.Mode) throws -> Service {
        var config = ServiceConfig(
            name: name, version: version,
            description: "Ennio lifecycle coordinator: history, sessions, nodes, rollouts and runs",
            metadata: ["consumer": coordinator.options.consumerName, "mode": mode.rawValue])
        config.queueGroup = .named(queueGroup)
        let service = try Service(connection: coordinator.connection, config: config)
        for endpoint in endpoints {
            try service.addEndpoint(endpoint.name, subject: endpoint.subject) { request in
                try await coordinator.respond(to: request)
            }
        }
        return service
    }
}

extension Coordinator {
    /// Answers one query request (built on the coordinator's query thread) as it always was
    /// answered; an error reply also as a service error, so that the statistics count it. A
    /// request without a reply subject is not answered.
    func respond(to request: ServiceRequest) async throws {
        guard let replyTo = request.message.replyTo, !replyTo.isEmpty else { return }
        let (reply, status) = await self.reply(to: request.subject, body: request.payload, byteLimit: connection.maxPayload)
        do {
            if status == 200 {
                try request.respond(reply)
            } else {
                // The header carries the start of the description: the reply has all of it, and
                // the two together must stay below max_payload.
                var description = (try? JSONValue(parsing: reply))?["error"]?["description"]?.stringValue ?? "error \(status)"
                if description.utf8.count > CoordinatorService.headerDescriptionBytes {
                    description = String(decoding: description.utf8.prefix(CoordinatorService.headerDescriptionBytes), as: UTF8.self)
                    // A character cut in two became U+FFFD: drop it.
                    if description.last == "\u{FFFD}" { description.removeLast() }
                    description += "…"
                }
                try request.respondError(code: status, description: description, data: reply)
            }
        } catch {
            logQueryFailure(error)
            throw error
        }
    }
}
