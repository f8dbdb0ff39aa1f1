import EnnioEvents
import EnnioHTTP
import NATSClient

/// The coordinator's metrics in Prometheus text format, for `GET /metrics`.
enum CoordinatorMetrics {
    static func text(coordinator: Coordinator, http: HTTPAPIStatistics) -> String {
        let statistics = coordinator.statistics
        var out = PrometheusText()

        func counter(_ name: String, _ help: String, _ value: UInt64) {
            out.single(name, .counter, help: help, Double(value))
        }
        func gauge(_ name: String, _ help: String, _ value: Double) {
            out.single(name, .gauge, help: help, value)
        }

        counter("ennio_events_received_total", "Messages received on event subjects.", statistics.received)
        counter("ennio_events_stored_total", "Events stored in the history (new events).", statistics.stored)
        counter("ennio_events_duplicates_total", "Events already stored (same id and timestamp), not stored again.", statistics.duplicates)
        counter("ennio_events_malformed_total", "Payloads that were not valid events.", statistics.malformed)
        counter("ennio_events_mismatched_total", "Valid events on a subject they do not belong to.", statistics.mismatched)
        counter("ennio_store_failures_total", "Events that could not be stored (a database failure).", statistics.storeFailures)
        counter("ennio_events_published_total", "Events the coordinator published itself (all_complete, node_disconnected).", statistics.published)
        counter("ennio_publish_failures_total", "Events the coordinator failed to publish.", statistics.publishFailures)
        counter("ennio_queries_total", "Queries answered, over NATS and HTTP.", statistics.queries)
        counter("ennio_bad_queries_total", "Queries answered with an error.", statistics.badQueries)

        out.metric("ennio_events_stored_by_category_total", .counter, help: "Events stored, per category.")
        for category in EventCategory.allCases {
            out.sample("ennio_events_stored_by_category_total", ["category": category.rawValue], statistics.storedByCategory[category] ?? 0)
        }

        let batches = statistics.storeBatchTimes
        out.metric("ennio_store_batch_seconds", .histogram, help: "Time SQLite took to store one batch (one transaction).")
        for (bound, count) in zip(batches.bounds, batches.cumulativeCounts) {
            out.sample("ennio_store_batch_seconds_bucket", ["le": PrometheusText.format(bound.seconds)], count)
        }
        out.sample("ennio_store_batch_seconds_bucket", ["le": "+Inf"], batches.count)
        out.sample("ennio_store_batch_seconds_sum", [:], batches.sum.seconds)
        out.sample("ennio_store_batch_seconds_count", [:], batches.count)
        gauge("ennio_store_failing", "1 when the last attempt to store a batch failed.", statistics.storeFailing ? 1 : 0)
        gauge("ennio_caught_up", "1 once the coordinator has caught up with the event stream since it started.", statistics.caughtUp ? 1 : 0)
        gauge("ennio_derived_events_held", "Derived events held back while catching up.", Double(statistics.heldEmissions))
        if let lag = statistics.lastCommitLag {
            gauge("ennio_ingest_lag_seconds", "For the last batch stored: commit time minus the newest event's timestamp (publisher clocks).", lag.seconds)
        }
        if let committed = statistics.lastCommit {
            gauge("ennio_last_commit_timestamp_seconds", "When the last batch was committed (Unix time).", Double(committed.nanosecondsSinceEpoch) / 1e9)
        }

        // A copy of the tables (shared until the next change), not sorted: a scrape costs a count.
        let lifecycle = coordinator.state.lifecycle
        gauge("ennio_sessions", "Sessions the coordinator knows.", Double(lifecycle.sessions.count))
        gauge("ennio_sessions_terminal", "Sessions in a terminal state.", Double(lifecycle.sessions.values.reduce(0) { $0 + ($1.terminal ? 1 : 0) }))
        let nodes = lifecycle.nodeList
        let wallClock = EventTimestamp.now()
        gauge("ennio_nodes", "Nodes the coordinator knows.", Double(nodes.count))
        gauge("ennio_nodes_connected", "Nodes connected.", Double(nodes.filter(\.connected).count))
        out.metric("ennio_node_connected", .gauge, help: "1 while the node is connected.")
        for node in nodes { out.sample("ennio_node_connected", ["host": node.host], node.connected ? 1.0 : 0.0) }
        out.metric("ennio_node_seconds_since_last_seen", .gauge, help: "Seconds since the node's last event arrived.")
        for node in nodes { out.sample("ennio_node_seconds_since_last_seen", ["host": node.host], (wallClock - node.lastSeen).seconds) }
        out.metric("ennio_node_seconds_since_health_check", .gauge, help: "Seconds since the timestamp of the node's last health check.")
        for node in nodes {
            guard let check = node.lastHealthCheck else { continue }
            out.sample("ennio_node_seconds_since_health_check", ["host": node.host], (wallClock - check).seconds)
        }

        let buckets = coordinator.stateBuckets.statistics
        counter("ennio_state_bucket_puts_total", "Rows written to the buckets ENNIO_SESSIONS and ENNIO_NODES.", buckets.puts)
        counter("ennio_state_bucket_deletes_total", "Keys deleted from the state buckets (no row has them).", buckets.deletes)
        counter("ennio_state_bucket_resyncs_total", "Comparisons of the state buckets with the whole tables.", buckets.resyncs)
        counter("ennio_state_bucket_overflows_total", "Times more changed rows waited than the limit (a resync instead).", buckets.overflows)
        counter("ennio_state_bucket_failures_total", "Failed attempts to write the state buckets.", buckets.failures)
        gauge("ennio_state_bucket_failing", "1 when the last attempt to write the state buckets failed.", buckets.failing ? 1 : 0)

        let nats = coordinator.connection.statistics
        gauge("ennio_nats_connected", "1 while the coordinator's NATS connection is up.", coordinator.connection.status == .connected ? 1 : 0)
        counter("ennio_nats_in_messages_total", "Messages the NATS connection received.", nats.inMessages)
        counter("ennio_nats_out_messages_total", "Messages the NATS connection sent.", nats.outMessages)
        counter("ennio_nats_in_bytes_total", "Payload bytes the NATS connection received.", nats.inBytes)
        counter("ennio_nats_out_bytes_total", "Payload bytes the NATS connection sent.", nats.outBytes)
        counter("ennio_nats_reconnects_total", "Times the NATS connection reconnected.", nats.reconnects)

        let server = http.server
        counter("ennio_http_connections_total", "HTTP connections accepted.", server.accepted)
        counter("ennio_http_connections_refused_total", "HTTP connections answered 503: too many clients.", server.refused)
        counter("ennio_http_connections_evicted_total", "Idle HTTP connections closed to make room for a new client.", server.evicted)
        counter("ennio_http_requests_total", "HTTP requests handled.", server.requests)
        counter("ennio_http_requests_malformed_total", "HTTP requests refused as malformed or too large.", server.malformed)
        counter("ennio_http_requests_unauthorized_total", "HTTP requests refused for a missing or wrong token.", http.unauthorized)
        counter("ennio_http_request_timeouts_total", "HTTP connections closed because a request did not arrive in time.", server.requestTimeouts)
        counter("ennio_http_idle_timeouts_total", "Kept-alive HTTP connections closed after idling.", server.idleTimeouts)
        counter("ennio_http_write_failures_total", "HTTP responses that could not be written whole.", server.writeFailures)
        gauge("ennio_http_connections_open", "HTTP connections open.", Double(server.openConnections))
        gauge("ennio_http_streams_open", "Event streams open.", Double(http.streams))
        counter("ennio_http_stream_events_sent_total", "Events written to event streams, summed over the streams.", http.streamEventsSent)
        counter("ennio_http_streams_dropped_slow_total", "Event streams dropped because the client read too slowly.", http.streamsDroppedSlow)
        counter("ennio_http_feed_overruns_total", "Times the feed of new events fell behind and dropped every stream.", http.feedOverruns)
        return out.text
    }
}

extension Duration {
    /// In seconds, with the fraction.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
