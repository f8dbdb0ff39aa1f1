/// Generates `topics.md`, the public contract of subjects and JSON, from the event table.
///
/// A test fails when the committed file differs from this output; regenerate it with
/// `swift run ennio topics --markdown > topics.md`.
public enum TopicsDocument {
    /// A fixed, realistic example event of each category, for the document.
    public static func example(for category: EventCategory) -> (event: Event, subject: String) {
        let timestamp = EventTimestamp(nanosecondsSinceEpoch: 1_772_738_703_123_456_789)
        let event: Event
        let host: String?
        switch category {
        case .sessions:
            host = nil
            event = Event(
                id: "5f0c2a4e-8d1b-4c3e-9a7f-1b2c3d4e5f60", type: .statusChanged, priority: .info,
                sessionId: "s-1", projectId: "my-app", timestamp: timestamp, message: "status changed: working → pr_open",
                data: ["from": "working", "to": "pr_open"])
        case .pr:
            host = nil
            event = Event(
                id: "0b6f5c1e-2f44-4b9a-8e0d-7c1a2b3c4d5e", type: .prCreated, priority: .action,
                sessionId: "s-1", projectId: "my-app", timestamp: timestamp, message: "pull request #42 opened",
                data: ["number": 42, "url": "https://example.com/acme/my-app/pull/42"])
        case .ci:
            host = nil
            event = Event(
                id: "9a3e1d2c-4b5a-4f6e-8d7c-0a1b2c3d4e5f", type: .ciFailing, priority: .urgent,
                sessionId: "s-1", projectId: "my-app", timestamp: timestamp, message: "CI failing: unit tests",
                data: ["checks": ["unit", "lint"], "attempt": 2])
        case .review:
            host = nil
            event = Event(
                id: "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a", type: .reviewChangesRequested, priority: .action,
                sessionId: "s-1", projectId: "my-app", timestamp: timestamp, message: "changes requested by alice",
                data: ["reviewer": "alice", "comments": 3])
        case .merge:
            host = nil
            event = Event(
                id: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", type: .mergeCompleted, priority: .info,
                sessionId: "s-1", projectId: "my-app", timestamp: timestamp, message: "merged into main",
                data: ["sha": "4f2a9c1"])
        case .reactions:
            host = nil
            event = Event(
                id: "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b", type: .reactionEscalated, priority: .critical,
                sessionId: "s-1", projectId: "my-app", timestamp: timestamp, message: "CI fix failed twice; asking a person",
                data: ["reaction": "ci-failed", "attempts": 2])
        case .lifecycle:
            host = nil
            event = Event(
                id: "a0b1c2d3-e4f5-4a6b-8c7d-8e9f0a1b2c3d", type: .allComplete, priority: .action,
                sessionId: "", projectId: "my-app", timestamp: timestamp, message: "all 3 sessions of my-app are done",
                data: ["sessions": 3])
        case .node:
            host = "build-server"
            event = Event(
                id: "f0e1d2c3-b4a5-4968-8776-655443322110", type: .nodeHealthCheck, priority: .info,
                sessionId: "", projectId: "my-app", timestamp: timestamp, message: "healthy",
                data: ["host": "build-server", "load": [0.42, 0.38, 0.3], "uptime_seconds": 86400])
        case .rollout:
            host = nil
            event = Event(
                id: "c2d3e4f5-a6b7-4c8d-9e0f-a1b2c3d4e5f6", type: .hostStateChanged, priority: .info,
                sessionId: "r-2026-03-05", projectId: "stable", timestamp: timestamp, message: "web-7: soaking → soaked",
                data: ["rollout_id": "r-2026-03-05", "host_id": "web-7", "from": "soaking", "to": "soaked", "at": "2026-03-05T19:25:03.123456789Z"])
        case .run:
            host = nil
            event = Event(
                id: "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f7a", type: .stateEntered, priority: .info,
                sessionId: "op-8812", projectId: "billing", timestamp: timestamp, message: "charge: attempt 2",
                data: ["state_id": "charge", "attempt": 2, "base_snapshot_id": "snap-41"])
        }
        // The examples use valid segments, so building their subjects cannot fail.
        let subject = (try? EventSubject.subject(for: event, host: host)) ?? "?"
        return (event, subject)
    }

    /// A family's part of the document: what the envelope holds, its types, the members of their
    /// `data`, and the family's own paragraphs (its state machines).
    static func section(of family: EventFamily) -> [String] {
        var lines = ["### \(family.title) (family `\(family.name)`)", ""]
        if family != .orchestrator {
            lines += ["`project_id` holds the \(family.projectRole) (the subject's third token), `session_id` \(family.sessionRole).", ""]
        }
        let types = family.types
        lines += table(["Type", "`event_type`", "Subject", "Meaning"], types.map { type in
            [type.name, "`\(type.rawValue)`", "`\(EventSubject.template(for: type))`", type.entry.summary + (type.entry.isExtension ? " **Extension.**" : "")]
        })
        lines.append("")
        if types.contains(where: \.entry.isExtension) {
            lines += [
                "Types marked **Extension** go beyond the Rust implementation's 30 event types; consumers",
                "written against those 30 can ignore them (their subjects follow the same scheme).", "",
            ]
        }
        if types.contains(where: { !$0.entry.fields.isEmpty }) {
            lines += ["Members of `data`:", ""]
            lines += table(["Type", "Member", "JSON", "Meaning"], types.flatMap { type in
                type.entry.fields.map { field in
                    [type.name, "`\(field.name)`", field.kindDescription + (field.isRequired ? "" : " (optional)"), field.summary]
                }
            })
            lines.append("")
        }
        let own = family.documentation()
        if !own.isEmpty { lines += own + [""] }
        return lines
    }

    /// A Markdown table: the header, the separator, one line per row.
    static func table(_ columns: [String], _ rows: [[String]]) -> [String] {
        ["| " + columns.joined(separator: " | ") + " |", "|" + String(repeating: " --- |", count: columns.count)]
            + rows.map { "| " + $0.joined(separator: " | ") + " |" }
    }

    /// The whole document.
    public static var markdown: String {
        var lines: [String] = []
        func add(_ line: String = "") { lines.append(line) }

        add("# Ennio event topics")
        add()
        add("The subjects and JSON that node agents, the coordinator and any other NATS client use to")
        add("exchange events. This file is generated from the event table in")
        add("`Sources/EnnioEvents/EventType.swift` and the families of `Sources/EnnioEvents/EventFamily.swift`")
        add("(`swift run ennio topics --markdown > topics.md`); a test fails when the two differ.")
        add()
        add("## Subjects")
        add()
        add("| Events | Subject |")
        add("| --- | --- |")
        add("| sessions, pr, ci, review, merge, reactions | `ennio.<category>.<project_id>.<action>` |")
        add("| lifecycle | `ennio.lifecycle.<action>` (the project is in the event's `project_id`) |")
        add("| node | `ennio.node.<host>.<action>` (the host that emitted the event) |")
        add("| rollout | `ennio.rollout.<channel>.<action>` (the channel is the event's `project_id`) |")
        add("| run | `ennio.run.<project>.<action>` (the workflow's project is the event's `project_id`) |")
        add("| commands | `ennio.commands.<command>` |")
        add("| metrics | `ennio.metrics.<action>` |")
        add("| dashboard | `ennio.dashboard.<action>` |")
        add()
        add("Every variable segment (project id, host, command, action) is 1 to \(SubjectSegment.maximumLength) bytes of ASCII")
        add("letters, digits, `_` and `-`. Anything else — a dot, a space, `*`, `>`, non-ASCII, an empty")
        add("segment — is refused with an error naming the segment; nothing is escaped or rewritten.")
        add()
        add("## Event types")
        add()
        add("Three families share the envelope (see JSON below), the subjects, the stream and the history;")
        add("they differ in what `project_id` and `session_id` hold, in the members of `data`, and in the")
        add("rules the coordinator applies. Wire names are the types' names in snake_case and unique across")
        add("families.")
        add()
        for family in EventFamily.all {
            lines += section(of: family)
        }
        add("## Session events from node agents")
        add()
        add("A node agent's lifecycle loop watches the sessions of its host (`ennio session start`) and")
        add("publishes these on `ennio.sessions.<project_id>.<action>`; every `data` also has `host`.")
        add()
        add("| `event_type` | When | `data` |")
        add("| --- | --- | --- |")
        add("| `session_spawned` | a session is first seen | `pid`, `log_file` |")
        add("| `session_restored` | a restarted agent finds a session that was there before it started (once per agent run) | `pid`, `status` (as on disk) |")
        add("| `status_changed` | the status changes (`spawning` → `working`); never from a status to itself | `from`, `to` |")
        add("| `activity_changed` | `active` (output in its log), `idle` (none for the idle limit), `exited` | `prev` (null the first time), `next` |")
        add("| `session_exited` | its process ended by itself (once, also across agent restarts) | `pid`; `exit_status` or `exit_signal` when known |")
        add("| `session_killed` | its process ended after a kill request (once; then never `session_exited`) | `pid`; `exit_signal` when known |")
        add("| `tick_error` | a record cannot be read or used, a probe or a write failed (once until it changes) | `file`, `error` |")
        add()
        add("Events of one probe are a nanosecond apart, so readers that order by `timestamp` keep their order.")
        add()
        add("## Subscribing")
        add()
        add("NATS wildcards work on these subjects: `*` matches one token, `>` the rest.")
        add()
        add("| Pattern | Receives |")
        add("| --- | --- |")
        add("| `ennio.>` | everything |")
        add("| `ennio.ci.my-app.*` | every CI event of project `my-app` |")
        add("| `ennio.*.my-app.*` | every project-scoped event of `my-app` (and node events of a host named `my-app`) |")
        add("| `ennio.*.*.failing` | CI failing, for every project |")
        add("| `ennio.node.build-server.*` | every event of the node `build-server` |")
        add("| `ennio.node.*.health_check` | every node's health checks |")
        add("| `ennio.lifecycle.*` | lifecycle events (`all_complete`) |")
        add("| `ennio.rollout.stable.*` | every rollout event of the channel `stable` |")
        add("| `ennio.run.*.state_failed` | every failed attempt, in every project's runs |")
        add()
        add("A pattern that can match no event subject is an error, with the reason, in")
        add("`EventPattern(validating:)`, `ennio sub` and `ennio topics check`: a category's subjects have")
        add("a fixed number of tokens (`ennio.ci.*` matches nothing, `ennio.ci.*.*` every CI event), the")
        add("category and a literal action must exist, `>` can only be the last token.")
        add()
        add("Commands (`ennio.commands.*`), queries (`ennio.query.*`), `ennio.metrics.*` and")
        add("`ennio.dashboard.*` carry no events. `ennio.>` matches them too: `ennio sub` shows them as")
        add("commands and queries (and leaves them out with `--json`), the coordinator skips them.")
        add()
        add("With the `nats` CLI: `nats sub 'ennio.ci.my-app.*'`. With this package:")
        add("`EventSubscription(connection:pattern:)` and `EventPattern`.")
        add()
        add("## JSON")
        add()
        add("Each message's payload is one JSON object, the same as the Rust implementation's")
        add("`OrchestratorEvent`:")
        add()
        add("| Key | Type | Notes |")
        add("| --- | --- | --- |")
        add("| `id` | string | unique per event (a UUID); publishers also send it as the `Nats-Msg-Id` header |")
        add("| `event_type` | string | the type's name in snake_case, from the table above |")
        add("| `priority` | string | `info`, `action`, `urgent` or `critical` (in increasing order) |")
        add("| `session_id` | string | may be empty for events about a project or node; the rollout id for rollouts, the `op_id` for runs |")
        add("| `project_id` | string | the channel for rollouts |")
        add("| `timestamp` | string | RFC 3339 in UTC (`Z`); readers accept 0 to 9 fractional digits and numeric offsets |")
        add("| `message` | string | for people |")
        add("| `data` | any JSON | `null` when there is nothing; objects are written with sorted keys; rollout and run events: an object with the members of their type (above) |")
        add()
        add("All eight keys are required; unknown extra keys are ignored; an unknown `event_type` or")
        add("`priority` is an error. Node events carry their `host` in `data` as well as in the subject.")
        add("A rollout or run event whose `data` lacks a member, or holds the wrong kind of value, is still")
        add("a valid event: it is stored, and the reducer flags and counts it without applying it.")
        add("Numbers in `data` are kept as they were written: `1e14` is stored and published again as")
        add("`1e14`, integers stay integers.")
        add()
        add("The node agent relays one such object per line of its input (`ennio agent --events-from`):")
        add("there `id` and `timestamp` may be left out, and the agent fills in a new UUID and the time it")
        add("read the line, so the smallest line is")
        add()
        add("```json")
        add(#"{"event_type":"session_spawned","priority":"info","session_id":"s-1","project_id":"my-app","message":"","data":null}"#)
        add("```")
        add()
        add("A line longer than 1 MiB, or not valid UTF-8, or not a valid event, is rejected and counted")
        add("(`rejected` in the agent's statistics) and logged; nothing is replaced or guessed.")
        add()
        add("### Node events from other publishers")
        add()
        add("The coordinator keeps a node — and reports it with `node_disconnected` when its health checks")
        add("stop — only for node events whose `data.host` names it (a valid host segment, equal to the")
        add("subject's), as this package's agents and the coordinator publish them. Other node events, such")
        add("as the Rust implementation's `node_health_check`, sent once per session on")
        add("`ennio.node.<project_id>.health_check` with `data: null` and the session in `session_id`, are")
        add("stored and shown like any event (`ennio history`, `ennio sub`, `ennio replay`, which")
        add("re-publishes them on the subject they came on), but make no node and no alarm — the same")
        add("rule when events arrive and when the coordinator restarts or rebuilds its tables.")
        add()
        add("## Durability: the event stream")
        add()
        add("Where the server has JetStream, events are also kept in the stream `\(EventStream.name)` (file storage),")
        add("which captures the event categories' subjects:")
        add()
        add("`" + EventStream.subjects.joined(separator: "` `") + "`")
        add()
        add("Publishers wait for the stream's acknowledgement and retry; the `Nats-Msg-Id` header is the")
        add("event id, so a retried or replayed event is stored once within the 10-minute duplicate window.")
        add("The coordinator reads the stream through the durable pull consumer `ennio-coordinator` and")
        add("acknowledges an event only after it is committed to its history. Commands and queries are")
        add("not in the stream. Plain subscribers see every event as before.")
        add()
        add("Several coordinators (`ennio coordinator --name NAME`) each read the whole stream through a")
        add("durable consumer of their own, `ennio-coordinator-NAME`, and keep the whole history; on a")
        add("JetStream cluster the stream keeps `--replicas N` copies (3: losing any one server loses")
        add("nothing). What a coordinator derives is the same on every one, so the stream and every")
        add("history keep it once: `all_complete` has the `timestamp` of the event that made the")
        add("project's last session terminal and the id derived from the name `<project_id> <that event's")
        add("id>`; `node_disconnected` for a silence has the `timestamp` of the node's last event plus the")
        add("timeout and the id derived from `<host> <that event's id>` (`data.last_event_id`). A derived")
        add("id is a UUID (version 8) made of the first 16 bytes of SHA-256(`ennio-derived-event-id` ‖")
        add("0x00 ‖ the event type ‖ 0x00 ‖ the name). A coordinator that starts late or was down first")
        add("catches up with the stream: until then it answers no query and publishes nothing it derives.")
        add()
        add("The stream is a buffer for the coordinator, not the record (the history is), and it has")
        add("limits: by default it keeps events for 7 days and at most 1 GiB (`ennio coordinator")
        add("--stream-max-age 7d --stream-max-bytes 1GiB`, set when the coordinator creates the stream")
        add("or starts). Past either limit the oldest events are deleted from the stream, whether the")
        add("coordinator has read them or not: the limits must cover the longest time it may be down.")
        add("Publishers that may not create the stream (an agent's role in a deployment with")
        add("permissions) wait for the coordinator to create it, retrying.")
        add()
        add("The coordinator's history holds each event once. It knows an event by its `id` and")
        add("`timestamp` together: a redelivered, retried or replayed event (the same JSON) is stored once,")
        add("in either mode; a new event needs a new `id`.")
        add()
        add("## Commands")
        add()
        add("Node agents listen on `ennio.commands.*`. The body is empty or a JSON object; a body with")
        add("`\"host\"` addresses one node (`{\"host\":\"build-server\"}`), otherwise every node obeys.")
        add("`ennio command shutdown|health-check|kill [--host H] [--session S]` sends them. In a deployment")
        add("with permissions only the operator role may (see the README).")
        add()
        add("| Subject | Effect |")
        add("| --- | --- |")
        add("| `ennio.commands.shutdown` | the agent publishes `node_disconnected` and stops |")
        add("| `ennio.commands.health_check` | the agent publishes a `node_health_check` at once |")
        add("| `ennio.commands.kill` | body `{\"host\":…,\"session\":…}`: the agent on that host kills the session's process (`SIGTERM`, `SIGKILL` after a grace period) and publishes `session_killed` once |")
        add()
        add("## Queries to the coordinator")
        add()
        add("Request/reply (e.g. `nats request ennio.query.history '{\"project_id\":\"my-app\"}'`); the")
        add("coordinators form the queue group `ennio-coordinator`, so one of them answers. The queries")
        add("are the endpoints of the NATS service (ADR-32) `ennio-coordinator`, version 1.0.0, one")
        add("endpoint per subject, named after its last token (`history`, `sessions`, `nodes`, `rollouts`,")
        add("`runs`): `nats micro list`, `$SRV.PING.ennio-coordinator` (every coordinator answers, with its")
        add("id and the metadata `consumer` and `mode`), `$SRV.INFO` and `$SRV.STATS` (requests, errors")
        add("and processing time per query), also `$SRV.<VERB>.ennio-coordinator.<id>` for one of them.")
        add()
        add("| Subject | Request | Reply |")
        add("| --- | --- | --- |")
        add("| `ennio.query.history` | JSON object, every key optional: `project_id`, `session_id`, `event_type`, `category`, `min_priority`, `since` (inclusive), `until` (exclusive), `order` (`oldest_first`, the default, or `newest_first`), `after` (a cursor: the previous reply's `next`), `limit` (events per reply, 1–1000, default 100), `max_bytes` (at least 512) | `{\"events\":[…],\"subjects\":[…],\"count\":n,\"next\":\"<cursor>\" or null}` — `subjects[i]` is the subject `events[i]` came on |")
        add("| `ennio.query.sessions` | empty, or `{\"project_id\",\"after\",\"limit\",\"max_bytes\"}` (limit 1–10000, default 1000) | `{\"sessions\":[{\"project_id\",\"session_id\",\"status\",\"activity\",\"last_event_type\",\"last_event_at\",\"terminal\",\"event_count\"}],\"count\":n,\"next\":\"<key>\" or null}` |")
        add("| `ennio.query.nodes` | empty, or `{\"after\",\"limit\",\"max_bytes\"}` | `{\"nodes\":[{\"host\",\"connected\",\"seconds_since_last_seen\",\"last_seen\",\"last_health_check\",\"health_interval_seconds\",\"health\"}],\"count\":n,\"next\":\"<host>\" or null}` |")
        add("| `ennio.query.rollouts` | JSON object, every key optional: `channel`, `state`, `rollout_id`, `limit` (1–1000, default 1000), `offset` | `{\"rollouts\":[{\"rollout_id\",\"channel\",\"target_ref\",\"state\",\"current_wave\",\"host_count\",\"host_states\",\"supersedes\",\"superseded_by\",\"terminal_event_id\",\"opened_at\",\"updated_at\",\"event_count\",\"violation_count\"}],\"count\":n,\"next_offset\":n or null}`, by rollout id; with `rollout_id`, that rollout with `hosts`, `clearances` and `violations` too (404 if unknown) |")
        add("| `ennio.query.runs` | JSON object, every key optional: `project_id`, `status`, `op_id`, `limit` (1–1000, default 1000), `offset` | `{\"runs\":[{\"op_id\",\"project_id\",\"manifest_id\",\"initial_snapshot_id\",\"status\",\"final_snapshot_id\",\"current_state\",\"attempts\",\"resume_point\",\"started_at\",\"updated_at\",\"event_count\",\"violation_count\"}],\"count\":n,\"next_offset\":n or null}`, by op id; `resume_point` is `{\"reason\",\"state_id\",\"after_state_id\",\"snapshot_id\",\"next_attempt\"}` or null; with `op_id`, that run with `states` and `violations` too (404 if unknown) |")
        add()
        add("Replies of history, sessions and nodes are pages below the server's `max_payload` (and `max_bytes`): pass their")
        add("`next` back as `after` for the following page, until `next` is `null`. A history cursor is")
        add("the key of the page's last event, `<timestamp_ns>:<id>` (the id may contain `:`; only the first")
        add("separates), so a page costs the same at the start and the end of the history and events stored")
        add("meanwhile neither shift nor repeat it; `offset` is refused. A session's key is")
        add("`<project_id> <session_id>` (a space between), a node's its host.")
        add()
        add("An event too large to fit in a reply with the envelope comes in parts, one per reply: `events`")
        add("is empty and `part` is `{\"key\":\"<cursor>\",\"subject\",\"size\":n,\"offset\":k,\"data\":\"…\"}`,")
        add("`data` being bytes `k…` of the event's JSON as a JSON string (cut between characters); the")
        add("reply's `next` (`<timestamp_ns>+<byte>:<id>`) asks for the next part, and after the last part")
        add("the history goes on. Join the parts' bytes in order and read the event when `size` bytes are")
        add("there (`ennio history` and `QueryClient` do). A session or node row too large for a reply by")
        add("itself (an absurd session id) is left out and counted in `\"omitted\":n`; the events are in")
        add("the history. A node's `health` is its last health check's `data`, or `{\"omitted_bytes\":n}`")
        add("past 16 KiB; `status` and `activity` are cut at 1 KiB.")
        add()
        add("A bad request (not JSON, an unknown key, a wrong type, an unknown event type or state, a limit out")
        add("of range, a cursor that is not one) is answered `{\"error\":{\"code\":400,\"description\":\"…\"}}`; a")
        add("failure to read the history `{\"error\":{\"code\":500,…}}`. An error reply also carries the")
        add("service error headers `Nats-Service-Error-Code` (the code) and `Nats-Service-Error` (the")
        add("description); a reply without them is an answer.")
        add()
        add("## The tables in Key-Value buckets")
        add()
        add("With JetStream the coordinator also keeps its session and node tables in two Key-Value")
        add("buckets, one row a key, so that a program can take a consistent snapshot of the tables and")
        add("then see every change, with nothing missed between the two — a KV watch (`nats kv watch")
        add("\(StateBucket.sessions)`, `kv.watch()` in any NATS client) delivers every current value, a")
        add("marker, then each change as it is written. In core mode there are no buckets.")
        add()
        add("| Bucket | Key | Value |")
        add("| --- | --- | --- |")
        add("| `\(StateBucket.sessions)` | `<project_id>.<session_id>` | the session's row, as `ennio.query.sessions` returns it: `{\"project_id\",\"session_id\",\"status\",\"activity\",\"last_event_type\",\"last_event_at\",\"terminal\",\"event_count\"}` |")
        add("| `\(StateBucket.nodes)` | `<host>` | the node's row, as `ennio.query.nodes` returns it: `{\"connected\",\"seconds_since_last_seen\",\"host\",\"last_seen\",\"last_health_check\",\"health_interval_seconds\",\"health\"}`, `connected` and `seconds_since_last_seen` as of the write |")
        add()
        add("- **Keys.** Project ids and hosts are subject segments and are their key token as they are;")
        add("  so is a session id of ASCII letters, digits, `_` and `-`. Any other byte of an id is")
        add("  written `=` and two uppercase hexadecimal digits (`build #7` → `build=20=237`, `s.1` →")
        add("  `s=2E1`), an empty id `=`: every session has one key of two tokens, and keys never")
        add("  collide. Read the ids from the value. A row whose key would be longer than")
        add("  \(StateBucket.maximumKeyBytes) bytes is not kept (the query has it).")
        add("- **Values** are written after the batch that changed them is committed to the history,")
        add("  the latest value of a key once however often it changed meanwhile; every value is a row")
        add("  the coordinator committed. The rows of a batch are written one after another, so a")
        add("  snapshot taken meanwhile holds some of them, and the changes after it the rest. A node's value is")
        add("  written again when its `connected` changes with time (its health checks stop), not for")
        add("  `seconds_since_last_seen` alone: compute the age from `last_seen`.")
        add("- **Deletions.** Sessions and nodes do not leave the tables; a key no row has (written by")
        add("  someone else, or left from another database) is deleted at the comparison below, so a")
        add("  watcher sees it go.")
        add("- **Configuration**: one value per key (history 1), file storage, as many replicas as")
        add("  `\(EventStream.name)`; the coordinator makes the buckets, or brings theirs to this.")
        add("- **Convergence.** At every start, after a write that failed and when more changed rows")
        add("  wait than it keeps (50,000 by default), the coordinator compares the buckets with its tables and")
        add("  writes only what differs, so the buckets converge to the tables, after a restart to the")
        add("  checkpointed ones. Ingest never waits for the buckets.")
        add()
        add("## The coordinator over HTTP")
        add()
        add("`ennio coordinator --http 127.0.0.1:8080` (off by default; loopback unless another address")
        add("is named) answers the same queries over HTTP, from the same code, with the same JSON, and")
        add("streams events as they are stored. With `--http-token FILE`, every path but `/` and")
        add("`/healthz` needs `Authorization: Bearer <token>` (or the cookie `ennio_token`, which the")
        add("dashboard sets); otherwise 401.")
        add()
        add("| Request | Answer |")
        add("| --- | --- |")
        add("| `GET /api/events?project=&session=&type=&category=&min_priority=&since=&until=&limit=&after=&order=` | a page of history, as `ennio.query.history` answers it; every parameter optional (`type` is an `event_type`); the next page: `after=` the reply's `next` (percent-encoded) |")
        add("| `GET /api/events/stream?project=&session=&type=&category=&min_priority=&after=&backlog=` | `text/event-stream`: each event stored from now on that matches, as one message, `id:` its cursor and `data:` its JSON; with `Last-Event-ID` (or `after`) first every matching event stored after that one, in the order stored, then the live tail, none missing and none twice; `backlog=N` (up to 1000, without a cursor) starts with the last N |")
        add("| `GET /api/sessions?project=&after=&limit=`, `GET /api/nodes?after=&limit=` | a page, as `ennio.query.sessions` and `ennio.query.nodes` answer it; the next: `after=` the reply's `next` |")
        add("| `GET /api/rollouts?channel=&state=&rollout_id=&limit=&offset=` | as `ennio.query.rollouts` answers that body |")
        add("| `GET /api/runs?project_id=&status=&op_id=&limit=&offset=` | as `ennio.query.runs` answers that body |")
        add("| `GET /api/stats` | `{\"received\",\"stored\",\"duplicates\",\"malformed\",\"mismatched\",\"stored_by_category\":{\"ci\":n,…},\"streams\",\"published\",\"caught_up\",\"last_seq\"}`: counted since the coordinator started, but `last_seq`, the number of the newest event in its history (events are numbered as stored, from 1: as many as it holds unless `--retain` deleted old ones); `caught_up`, whether it has caught up with the stream since it started |")
        add("| `GET /metrics` | Prometheus text: `ennio_events_*`, `ennio_store_*`, `ennio_ingest_lag_seconds`, `ennio_node_*{host}`, `ennio_state_bucket_*`, `ennio_nats_*`, `ennio_http_*` |")
        add("| `GET /healthz` | 200 `{\"status\":\"ok\",\"nats\":\"connected\",\"store\":\"ok\",\"caught_up\":true}` when connected to NATS, storing and caught up with the stream; 503 otherwise, with `\"status\":\"catching_up\"` while it catches up |")
        add("| `GET /` | the dashboard |")
        add()
        add("A bad parameter (unknown, repeated, of the wrong form) is answered 400 with the error")
        add("object above; an unknown path 404; a method other than GET and HEAD 405; a request line over")
        add("8 KiB 414; headers over 16 KiB 431. A stream that falls more than 50,000 events behind is")
        add("closed (and counted); its client reconnects with `Last-Event-ID` and loses nothing.")
        add()
        add("### One example per category")
        add()
        for category in EventCategory.allCases {
            let example = example(for: category)
            add("**\(category.rawValue)** — `\(example.subject)`")
            add()
            add("```json")
            add(example.event.jsonString)
            add("```")
            add()
        }
        return lines.joined(separator: "\n")
    }
}
