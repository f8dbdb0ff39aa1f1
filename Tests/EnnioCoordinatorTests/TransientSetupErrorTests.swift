@testable import EnnioCoordinator
import NATSClient
import Testing

/// Which JetStream failures the coordinator's setup waits through (a cluster forming) and which
/// end it at once.
@Suite struct TransientSetupErrorTests {
    @Test func aClusterStillFormingIsWaitedForAndARefusalIsNot() {
        #expect(Coordinator.isTransient(NATSError(.timeout, "no answer")))
        #expect(Coordinator.isTransient(NATSError(.noResponders, "no JetStream yet")))
        #expect(Coordinator.isTransient(JetStreamError(code: 503, errorCode: 10008, description: "JetStream system temporarily unavailable")))
        #expect(Coordinator.isTransient(JetStreamError(code: 400, errorCode: JetStreamError.noSuitablePeers, description: "no suitable peers for placement")))
        #expect(!Coordinator.isTransient(NATSError(.permissionViolation, "Permissions Violation")))
        #expect(!Coordinator.isTransient(JetStreamError(code: 400, errorCode: 10058, description: "stream name already in use")))
    }
}
