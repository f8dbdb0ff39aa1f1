@testable import EnnioCoordinator
import EnnioEvents
import Foundation
@testable import NATSTestSupport
import Testing

/// A reader of the Prometheus text format (0.0.4) strict enough to refuse any line it does not
/// understand: every line is a `# HELP`, a `# TYPE` or a sample of the family typed last.
struct PrometheusExposition {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var types: [String: String] = [:]
    var samples: [Sample] = []

    init(parsing text: String) throws {
        guard text.hasSuffix("\n") else { throw TestSupportError(description: "the exposition must end with a line break") }
        var family: String?
        var helped: Set<String> = []
        for line in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("# HELP ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
                guard parts.count == 2, Self.isMetricName(String(parts[0])), helped.insert(String(parts[0])).inserted else {
                    throw TestSupportError(description: "bad HELP line: \(line)")
                }
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2, Self.isMetricName(String(parts[0])), ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]),
                    types[String(parts[0])] == nil
                else { throw TestSupportError(description: "bad TYPE line: \(line)") }
                family = String(parts[0])
                types[String(parts[0])] = String(parts[1])
            } else {
                let sample = try Self.sample(line)
                guard let family, sample.name == family || (types[family] == "histogram" && ["_bucket", "_sum", "_count"].contains { sample.name == family + $0 }) else {
                    throw TestSupportError(description: "a sample outside its family: \(line)")
                }
                if types[family] == "counter", !sample.name.hasSuffix("_total") {
                    throw TestSupportError(description: "a counter not named _total: \(line)")
                }
                samples.append(sample)
            }
        }
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || first == "_" || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) || $0 == "_" || $0 == ":" }
    }

    /// `name{label="value",…} number`, values escaped with `\\`, `\"`, `\n`.
    static func sample(_ line: String) throws -> Sample {
        let characters = Array(line)
        var index = 0
        var name = ""
        while index < characters.count, characters[index] != "{", characters[index] != " " {
            name.append(characters[index])
            index += 1
        }
        guard isMetricName(name) else { throw TestSupportError(description: "bad metric name in: \(line)") }
        var labels: [String: String] = [:]
        if index < characters.count, characters[index] == "{" {
            index += 1
            while characters[index] != "}" {
                var label = ""
                while characters[index] != "=" {
                    label.append(characters[index])
                    index += 1
                }
                guard isMetricName(label), characters[index + 1] == "\"" else { throw TestSupportError(description: "bad label in: \(line)") }
                index += 2
                var value = ""
                while characters[index] != "\"" {
                    if characters[index] == "\\" {
                        index += 1
                        switch characters[index] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw TestSupportError(description: "bad escape in: \(line)")
                        }
                    } else {
                        value.append(characters[index])
                    }
                    index += 1
                }
                index += 1
                labels[label] = value
                if characters[index] == "," { index += 1 } else if characters[index] != "}" {
                    throw TestSupportError(description: "bad label list in: \(line)")
                }
            }
            index += 1
        }
        guard index < characters.count, characters[index] == " " else { throw TestSupportError(description: "no value in: \(line)") }
        let text = String(characters[(index + 1)...])
        let value: Double? = switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
        guard let value, !text.contains(" ") else { throw TestSupportError(description: "bad value in: \(line)") }
        return Sample(name: name, labels: labels, value: value)
    }
}

@Suite struct HTTPMetricsTests {
    @Test func metricsParseAsPrometheusTextAndMoveWhenEventsFlow() async throws {
        let system = try await RunningHTTPAPI()
        try EventPublisher(connection: system.client, host: "build-1").publish(
            Event(type: .nodeHealthCheck, sessionId: "", projectId: "", message: "healthy", data: ["host": "build-1", "load": [0.5, 0.4, 0.3]]))
        try await system.client.flush()
        try await system.running.waitForReceived(1)
        let before = try await PrometheusExposition(parsing: system.get("/metrics").text)
        #expect(try await system.get("/metrics").header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        for family in ["ennio_events_received_total", "ennio_events_stored_total", "ennio_events_duplicates_total", "ennio_events_malformed_total",
            "ennio_events_stored_by_category_total", "ennio_store_batch_seconds", "ennio_ingest_lag_seconds", "ennio_nodes_connected",
            "ennio_node_seconds_since_health_check", "ennio_nats_in_messages_total", "ennio_http_requests_total", "ennio_http_streams_open"] {
            #expect(before.types[family] != nil, "\(family) is exposed")
        }
        #expect(before.value("ennio_node_connected", ["host": "build-1"]) == 1)
        #expect(before.value("ennio_node_seconds_since_health_check", ["host": "build-1"]) != nil)

        let events = sampleEvents(count: 20, start: .now())
        try await system.publish(events)
        try system.client.publish(Array("not json".utf8), to: "ennio.ci.p1.failing")
        try await system.client.flush()
        try await system.running.waitForReceived(before.value("ennio_events_received_total").map { UInt64($0) + 21 } ?? 0)
        let after = try await PrometheusExposition(parsing: system.get("/metrics").text)
        func moved(_ name: String, _ labels: [String: String] = [:]) -> Double {
            (after.value(name, labels) ?? .nan) - (before.value(name, labels) ?? .nan)
        }
        #expect(moved("ennio_events_received_total") == 21)
        #expect(moved("ennio_events_stored_total") == 20)
        #expect(moved("ennio_events_malformed_total") == 1)
        let ci = Double(events.filter { $0.eventType.category == .ci }.count)
        #expect(moved("ennio_events_stored_by_category_total", ["category": "ci"]) == ci)
        #expect(moved("ennio_store_batch_seconds_count") >= 1)
        #expect(after.value("ennio_store_batch_seconds_bucket", ["le": "+Inf"]) == after.value("ennio_store_batch_seconds_count"))
        #expect(moved("ennio_http_requests_total") >= 1)
        await system.stop()
    }

    @Test func labelValuesAreEscaped() async throws {
        var text = EnnioHTTP.PrometheusText()
        text.metric("ennio_test", .gauge, help: "a \\ help\nline")
        text.sample("ennio_test", ["host": "a\"b\\c\nd"], 1.5)
        let parsed = try PrometheusExposition(parsing: text.text)
        #expect(parsed.value("ennio_test", ["host": "a\"b\\c\nd"]) == 1.5)
        #expect(text.text.split(separator: "\n").count == 3)
    }
}

import EnnioHTTP
