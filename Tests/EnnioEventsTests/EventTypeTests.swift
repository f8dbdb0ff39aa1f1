import EnnioEvents
import Testing

/// The table from the issue, written out independently of the code's own table.
let expectedTypes: [(EventType, String, String, EventCategory, String)] = [
    (.sessionSpawned, "SessionSpawned", "session_spawned", .sessions, "spawned"),
    (.sessionWorking, "SessionWorking", "session_working", .sessions, "working"),
    (.sessionExited, "SessionExited", "session_exited", .sessions, "exited"),
    (.sessionKilled, "SessionKilled", "session_killed", .sessions, "killed"),
    (.sessionRestored, "SessionRestored", "session_restored", .sessions, "restored"),
    (.sessionCleaned, "SessionCleaned", "session_cleaned", .sessions, "cleaned"),
    (.statusChanged, "StatusChanged", "status_changed", .sessions, "status_changed"),
    (.activityChanged, "ActivityChanged", "activity_changed", .sessions, "activity_changed"),
    (.tickError, "TickError", "tick_error", .sessions, "tick_error"),
    (.prCreated, "PrCreated", "pr_created", .pr, "created"),
    (.prUpdated, "PrUpdated", "pr_updated", .pr, "updated"),
    (.prMerged, "PrMerged", "pr_merged", .pr, "merged"),
    (.prClosed, "PrClosed", "pr_closed", .pr, "closed"),
    (.ciPassing, "CiPassing", "ci_passing", .ci, "passing"),
    (.ciFailing, "CiFailing", "ci_failing", .ci, "failing"),
    (.ciFixSent, "CiFixSent", "ci_fix_sent", .ci, "fix_sent"),
    (.ciFixFailed, "CiFixFailed", "ci_fix_failed", .ci, "fix_failed"),
    (.reviewPending, "ReviewPending", "review_pending", .review, "pending"),
    (.reviewApproved, "ReviewApproved", "review_approved", .review, "approved"),
    (.reviewChangesRequested, "ReviewChangesRequested", "review_changes_requested", .review, "changes_requested"),
    (.reviewCommentsSent, "ReviewCommentsSent", "review_comments_sent", .review, "comments_sent"),
    (.mergeReady, "MergeReady", "merge_ready", .merge, "ready"),
    (.mergeConflicts, "MergeConflicts", "merge_conflicts", .merge, "conflicts"),
    (.mergeCompleted, "MergeCompleted", "merge_completed", .merge, "completed"),
    (.reactionTriggered, "ReactionTriggered", "reaction_triggered", .reactions, "triggered"),
    (.reactionEscalated, "ReactionEscalated", "reaction_escalated", .reactions, "escalated"),
    (.allComplete, "AllComplete", "all_complete", .lifecycle, "all_complete"),
    (.nodeConnected, "NodeConnected", "node_connected", .node, "connected"),
    (.nodeDisconnected, "NodeDisconnected", "node_disconnected", .node, "disconnected"),
    (.nodeLaunched, "NodeLaunched", "node_launched", .node, "launched"),
    (.nodeHealthCheck, "NodeHealthCheck", "node_health_check", .node, "health_check"),
]

@Suite struct EventTypeTests {
    @Test func theRustImplementationsThirtyTypesPlusMarkedExtensionsAndTheTableCoversEach() {
        #expect(EventFamily.orchestrator.types.filter { !$0.entry.isExtension }.count == 30)
        #expect(EventFamily.orchestrator.types.filter(\.entry.isExtension).contains(.tickError))
        #expect(Set(expectedTypes.map(\.0)) == Set(EventFamily.orchestrator.types))
    }

    @Test(arguments: expectedTypes.map { $0 })
    func nameWireNameCategoryAndAction(type: EventType, name: String, wire: String, category: EventCategory, action: String) {
        #expect(type.name == name)
        #expect(type.rawValue == wire)
        #expect(type.category == category)
        #expect(type.action == action)
        #expect(EventType(named: wire) == type)
        #expect(EventType(named: name) == type)
        #expect(EventType(category: category, action: action) == type)
    }

    @Test(arguments: expectedTypes.map { $0 })
    func subjectOfEveryType(type: EventType, name: String, wire: String, category: EventCategory, action: String) throws {
        let subject = try EventSubject.subject(for: type, projectId: "p1", host: "build-server")
        switch category {
        case .node: #expect(subject == "ennio.node.build-server.\(action)")
        case .lifecycle: #expect(subject == "ennio.lifecycle.\(action)")
        default: #expect(subject == "ennio.\(category.rawValue).p1.\(action)")
        }
        let parsed = try #require(EventSubject.parse(subject))
        #expect(parsed.eventType == type)
        #expect(parsed.action == action)
    }

    @Test func prioritiesAreOrdered() {
        #expect(EventPriority.info < .action)
        #expect(EventPriority.action < .urgent)
        #expect(EventPriority.urgent < .critical)
        #expect(!(EventPriority.critical < .info))
        #expect(EventPriority.allCases.sorted() == [.info, .action, .urgent, .critical])
        #expect(EventPriority.allCases.map(\.rawValue) == ["info", "action", "urgent", "critical"])
    }

    @Test func unknownNamesAreNotTypes() {
        #expect(EventType(named: "session_exploded") == nil)
        #expect(EventType(named: "SESSION_SPAWNED") == nil)
        #expect(EventType(category: .ci, action: "spawned") == nil)
    }
}
