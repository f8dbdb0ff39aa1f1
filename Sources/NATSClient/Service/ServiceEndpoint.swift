import EnnioSync

/// What handles a service endpoint's requests, one at a time, in the order they come.
public typealias ServiceHandler = @Sendable (ServiceRequest) async throws -> Void

/// One endpoint of a service: its subject, queue group and handler, and what it has done.
final class ServiceEndpoint: Sendable {
    let name: String
    let subject: String
    /// `nil`: no queue group.
    let queueGroup: String?
    let metadata: [String: String]
    let handler: ServiceHandler
    private let statistics = Locked(Statistics())

    struct Statistics: Sendable {
        var requests = 0
        var errors = 0
        var lastError = ""
        var processing: Duration = .zero
    }

    init(name: String, subject: String, queueGroup: String?, metadata: [String: String], handler: @escaping ServiceHandler) {
        self.name = name
        self.subject = subject
        self.queueGroup = queueGroup
        self.metadata = metadata
        self.handler = handler
    }

    /// Runs the handler for `message` and counts the request, its time and its error.
    func handle(_ message: NATSMessage, connection: NATSConnection) async {
        let request = ServiceRequest(message: message, connection: connection, outcome: .init())
        let start = ContinuousClock.now
        do {
            try await handler(request)
        } catch let error as ServiceReplyError {
            if request.outcome.responded {
                request.outcome.record(error)
            } else {
                try? request.respondError(code: error.code, description: error.errorDescription)
            }
        } catch {
            // Only the error's type leaves the process: its text may hold anything.
            let failure = ServiceReplyError(code: 500, description: "the handler failed (\(type(of: error)))")
            if request.outcome.responded {
                request.outcome.record(failure)
            } else {
                try? request.respondError(code: failure.code, description: failure.errorDescription)
            }
        }
        let elapsed = ContinuousClock.now - start
        let error = request.outcome.error
        statistics.withLock { statistics in
            statistics.requests += 1
            statistics.processing += elapsed
            if let error {
                statistics.errors += 1
                statistics.lastError = error.description
            }
        }
    }

    func resetStatistics() {
        statistics.withLock { $0 = Statistics() }
    }

    var info: ServiceEndpointInfo {
        ServiceEndpointInfo(name: name, subject: subject, queueGroup: queueGroup ?? "", metadata: metadata)
    }

    func stats(data: ServiceJSON?) -> ServiceEndpointStats {
        let statistics = statistics.withLock { $0 }
        let total = nanosecondsOf(statistics.processing)
        return ServiceEndpointStats(
            name: name, subject: subject, queueGroup: queueGroup ?? "", numRequests: statistics.requests,
            numErrors: statistics.errors, lastError: statistics.lastError, processingTime: total,
            averageProcessingTime: statistics.requests == 0 ? 0 : total / Int64(statistics.requests), data: data
        )
    }
}
