@testable import EnnioCoordinator
import EnnioEvents
import Foundation
import Glibc
import NATSClient
@testable import NATSTestSupport
import Testing

/// The dashboard in a real browser: headless Chromium opens it, events are published, and the
/// page's DOM — built by its own scripts from the live stream and the API — shows them.
@Suite struct HTTPDashboardTests {
    @Test(.enabled(if: HeadlessBrowser.binaryPath != nil || getuid() == 0, "needs chromium, which scripts/install-tools.sh installs as root"))
    func theDashboardShowsPublishedEventsSessionsNodesAndCounts() async throws {
        let system = try await RunningHTTPAPI()
        let browser = try HeadlessBrowser()
        try await browser.open("http://127.0.0.1:\(system.port)/")
        try await eventually("the page to connect to the event stream") {
            try await browser.evaluate("(document.getElementById('connection') || {}).textContent") as? String == "live"
        }
        try await eventually("the stream to join the feed") { system.api.statistics.streams == 1 }

        let events = [
            Event(id: "dash-1", type: .sessionSpawned, sessionId: "s-1", projectId: "web", message: "spawned"),
            Event(id: "dash-2", type: .ciFailing, priority: .urgent, sessionId: "s-1", projectId: "web", message: "CI failing: <b>unit</b>"),
            Event(id: "dash-3", type: .reactionEscalated, priority: .critical, sessionId: "s-2", projectId: "api", message: "asking a person"),
            Event(id: "dash-4", type: .prCreated, priority: .action, sessionId: "s-2", projectId: "api", message: "PR #42"),
        ]
        try await system.publish(events)
        try EventPublisher(connection: system.client, host: "build-7").publish(
            Event(id: "dash-node", type: .nodeHealthCheck, sessionId: "", projectId: "", message: "healthy", data: ["host": "build-7", "load": [0.25, 0.5, 0.75], "uptime_seconds": 7200]))
        try await system.client.flush()

        func rows(_ selector: String, _ fields: String) async throws -> [String] {
            let value = try await browser.evaluate("JSON.stringify([...document.querySelectorAll('\(selector)')].map(row => \(fields)))")
            return (try JSONSerialization.jsonObject(with: Data(((value as? String) ?? "[]").utf8)) as? [String]) ?? []
        }
        try await eventually("the feed to show every event") {
            Set(events.map(\.id) + ["dash-node"]).isSubset(of: Set(try await rows("#feed-body tr.event", "row.dataset.id")))
        }
        let classes = try await rows("#feed-body tr.event", "row.dataset.id + ' ' + row.className")
        #expect(classes.contains("dash-2 event priority-urgent"))
        #expect(classes.contains("dash-3 event priority-critical"))
        #expect(classes.first == "dash-node event priority-info", "the newest first")
        let message = try await browser.evaluate("document.querySelector('tr[data-id=\"dash-2\"] td.message').textContent") as? String
        #expect(message == "CI failing: <b>unit</b>", "text from events is shown as text, not markup")

        try await eventually("the session table to list both sessions") {
            try await rows("#sessions-body tr.session", "row.dataset.project + '/' + row.dataset.session") == ["api/s-2", "web/s-1"]
        }
        try await eventually("the node table to show the node") {
            try await rows("#nodes-body tr.node", "row.dataset.host + ' ' + row.querySelector('.health').textContent") == ["build-7 load 0.25 0.50 0.75, up 2 h"]
        }
        try await eventually("the counts per category") {
            let ci = try await rows("#category-counts li[data-category=ci] .count", "row.textContent")
            let sessions = try await rows("#category-counts li[data-category=sessions] .count", "row.textContent")
            return ci == ["1"] && sessions == ["1"]
        }

        // Filtering by project reconnects the stream with the filter.
        _ = try await browser.evaluate("const field = document.getElementById('filter-project'); field.value = 'api'; field.dispatchEvent(new Event('change')); true")
        try await eventually("the filtered stream to connect") {
            let feed = try await rows("#feed-body tr.event", "row.dataset.project")
            let status = try await browser.evaluate("(document.getElementById('connection') || {}).textContent") as? String
            return feed.allSatisfy { $0 == "api" } && system.api.statistics.streams == 1 && status == "live"
        }
        let more = [
            Event(id: "dash-5", type: .ciPassing, sessionId: "s-1", projectId: "web", message: "passing"),
            Event(id: "dash-6", type: .ciPassing, sessionId: "s-2", projectId: "api", message: "passing"),
        ]
        try await system.publish(more)
        try await eventually("the filtered feed to show the api event") {
            try await rows("#feed-body tr.event", "row.dataset.id").contains("dash-6")
        }
        #expect(!(try await rows("#feed-body tr.event", "row.dataset.id").contains("dash-5")), "web's event is filtered out")

        if let path = ProcessInfo.processInfo.environment["ENNIO_DASHBOARD_SCREENSHOT"] {
            try await browser.screenshot().write(to: URL(fileURLWithPath: path))
        }
        withExtendedLifetime(browser) {}
        await system.stop()
    }
}
