import NATSProtocol

/// Endpoints of a service under a common subject prefix (ADR-32 groups), with their own
/// default queue group. Groups nest: a group's group adds its prefix after this one's.
public struct ServiceGroup: Sendable {
    public let service: Service
    /// The subject prefix of every endpoint in the group.
    public let prefix: String
    /// Queue group choices from this group outwards (its own first).
    let queueGroups: [ServiceQueueGroup]

    init(service: Service, prefix: String, queueGroup: ServiceQueueGroup, outer: [ServiceQueueGroup] = []) throws(ServiceError) {
        guard !prefix.contains(">") else { throw ServiceError(.invalidSubject, "a group prefix may not hold >: \(prefix.debugDescription)") }
        do {
            try Subject.validatePattern(prefix)
        } catch {
            throw ServiceError(.invalidSubject, "invalid group prefix: \(error)")
        }
        self.service = service
        self.prefix = prefix
        self.queueGroups = [queueGroup] + outer
        _ = try Service.queueGroup(queueGroups + [service.config.queueGroup])
    }

    /// Adds an endpoint on `<prefix>.<subject>` (the subject is its name by default).
    public func addEndpoint(
        _ name: String,
        subject: String? = nil,
        queueGroup: ServiceQueueGroup = .inherited,
        metadata: [String: String] = [:],
        handler: @escaping ServiceHandler
    ) throws {
        try service.addEndpoint(name, subject: subject, prefix: prefix, queueGroups: [queueGroup] + queueGroups, metadata: metadata, handler: handler)
    }

    /// A group inside this one, on `<prefix>.<name>`.
    public func addGroup(_ name: String, queueGroup: ServiceQueueGroup = .inherited) throws(ServiceError) -> ServiceGroup {
        try ServiceGroup(service: service, prefix: "\(prefix).\(name)", queueGroup: queueGroup, outer: queueGroups)
    }
}
