public import EnnioEvents

/// The queries about rollouts and runs, over request/reply like the others (see `topics.md`):
///
/// - `ennio.query.rollouts`: body `{"channel","state","rollout_id","limit","offset"}`, every key
///   optional; reply `{"rollouts":[…],"count":n,"next_offset":n|null,"statistics":{…},
///   "orphan_violations":[…]}`. With `rollout_id`, that rollout in full (hosts, clearances,
///   violations), or a 404 error.
/// - `ennio.query.runs`: body `{"project_id","status","op_id","limit","offset"}`; reply
///   `{"runs":[…],…}` likewise, each with its `resume_point`.
extension QueryProtocol {
    public static let rolloutsSubject = "ennio.query.rollouts"
    public static let runsSubject = "ennio.query.runs"

    /// The family queries' subjects.
    public static let familySubjects = [rolloutsSubject, runsSubject]

    /// Answers a family query from the reducers' state: the reply, and its status (200, or the
    /// error's code).
    public static func answer(_ subject: String, body: [UInt8], from reducers: FamilyReducers) -> (reply: [UInt8], status: Int) {
        do throws(FamilyQueryError) {
            let reply: JSONValue
            if subject == rolloutsSubject {
                reply = try rolloutsReply(to: RolloutQuery(body: body), reducers.rollouts)
            } else {
                reply = try runsReply(to: RunQuery(body: body), reducers.runs)
            }
            return (Array(reply.jsonString.utf8), 200)
        } catch {
            return (errorReply(code: error.code, description: error.message), error.code)
        }
    }

    static func rolloutsReply(to query: RolloutQuery, _ reducer: RolloutReducer) throws(FamilyQueryError) -> JSONValue {
        if let id = query.rolloutId {
            guard let rollout = reducer.rollouts[id], query.channel.map({ $0 == rollout.channel }) ?? true else {
                throw FamilyQueryError(code: 404, "no rollout \(id.debugDescription)")
            }
            return ["rollouts": [json(rollout, detail: true)], "count": 1, "next_offset": nil]
        }
        let matching = reducer.rolloutList.filter { rollout in
            (query.channel.map { $0 == rollout.channel } ?? true) && (query.state.map { $0 == rollout.state } ?? true)
        }
        var reply = page(matching, query.page, key: "rollouts") { json($0, detail: false) }
        reply["statistics"] = json(reducer.statistics)
        reply["orphan_violations"] = .array(reducer.orphans.recent.map(json))
        return .object(reply)
    }

    static func runsReply(to query: RunQuery, _ reducer: RunReducer) throws(FamilyQueryError) -> JSONValue {
        if let id = query.opId {
            guard let run = reducer.runs[id], query.projectId.map({ $0 == run.projectId }) ?? true else {
                throw FamilyQueryError(code: 404, "no run \(id.debugDescription)")
            }
            return ["runs": [json(run, detail: true)], "count": 1, "next_offset": nil]
        }
        let matching = reducer.runList.filter { run in
            (query.projectId.map { $0 == run.projectId } ?? true) && (query.status.map { $0 == run.status } ?? true)
        }
        var reply = page(matching, query.page, key: "runs") { json($0, detail: false) }
        reply["statistics"] = json(reducer.statistics)
        reply["orphan_violations"] = .array(reducer.orphans.recent.map(json))
        return .object(reply)
    }

    private static func page<Record>(_ records: [Record], _ page: QueryPage, key: String, _ json: (Record) -> JSONValue) -> [String: JSONValue] {
        let start = min(page.offset, records.count)
        let end = min(start + page.limit, records.count)
        return [
            key: .array(records[start..<end].map(json)),
            "count": .int(Int64(end - start)),
            "next_offset": end < records.count ? .int(Int64(end)) : .null,
        ]
    }

    // MARK: - JSON of the records

    static func json(_ rollout: RolloutRecord, detail: Bool) -> JSONValue {
        var object: [String: JSONValue] = [
            "rollout_id": .string(rollout.rolloutId),
            "channel": .string(rollout.channel),
            "target_ref": rollout.targetRef.map(JSONValue.string) ?? .null,
            "state": .string(rollout.state.rawValue),
            "current_wave": rollout.currentWave.map(JSONValue.int) ?? .null,
            "host_count": .int(Int64(rollout.hostCount)),
            "host_states": .object(Dictionary(uniqueKeysWithValues: RolloutHostState.allCases.map { ($0.rawValue, .int(Int64(rollout.hostCount(in: $0)))) })),
            "supersedes": rollout.supersedes.map(JSONValue.string) ?? .null,
            "superseded_by": rollout.supersededBy.map(JSONValue.string) ?? .null,
            "terminal_event_id": rollout.terminalEvent.map { .string($0.id) } ?? .null,
            "opened_at": .string(rollout.openedAt.rfc3339),
            "updated_at": .string(rollout.updatedAt.rfc3339),
            "event_count": .int(Int64(rollout.eventCount)),
            "violation_count": .int(Int64(rollout.violations.count)),
        ]
        guard detail else { return .object(object) }
        object["hosts"] = .array(rollout.hosts.values.sorted { ($0.wave, $0.hostId) < ($1.wave, $1.hostId) }.map { host in
            [
                "host_id": .string(host.hostId), "wave": .int(host.wave), "state": .string(host.state.rawValue),
                "excused": .bool(host.excused), "joined_at": .string(host.joinedAt.rfc3339),
                "changed_at": .string(host.changedAt.rfc3339), "moves": .int(Int64(host.moves.count - 1)),
            ]
        })
        object["clearances"] = .array(rollout.clearances.map { clearance in
            [
                "operator": .string(clearance.operatorName), "reason": .string(clearance.reason),
                "at": .string(clearance.at.rfc3339), "excused": .array(clearance.excused.map(JSONValue.string)),
            ]
        })
        object["violations"] = .array(rollout.violations.recent.map(json))
        return .object(object)
    }

    static func json(_ run: RunRecord, detail: Bool) -> JSONValue {
        var object: [String: JSONValue] = [
            "op_id": .string(run.opId),
            "project_id": .string(run.projectId),
            "manifest_id": .string(run.manifestId),
            "initial_snapshot_id": .string(run.initialSnapshotId),
            "status": .string(run.status.rawValue),
            "final_snapshot_id": run.finalSnapshotId.map(JSONValue.string) ?? .null,
            "current_state": run.openState.map(JSONValue.string) ?? .null,
            "attempts": .object(run.attemptCounts.mapValues { .int(Int64($0)) }),
            "resume_point": run.resumePoint.map(json) ?? .null,
            "started_at": .string(run.startedAt.rfc3339),
            "updated_at": .string(run.updatedAt.rfc3339),
            "event_count": .int(Int64(run.eventCount)),
            "violation_count": .int(Int64(run.violations.count)),
        ]
        guard detail else { return .object(object) }
        object["states"] = .array(run.stateOrder.map { state in
            [
                "state_id": .string(state),
                "attempts": .array((run.states[state] ?? []).map { attempt in
                    var members: [String: JSONValue] = [
                        "attempt": .int(attempt.number), "base_snapshot_id": .string(attempt.baseSnapshotId),
                        "outcome": .string(attempt.outcome.name), "context_snapshot_id": .null, "failure_snapshot_id": .null, "error": .null,
                    ]
                    switch attempt.outcome {
                    case .completed(let context): members["context_snapshot_id"] = .string(context)
                    case .failed(let error, let snapshot):
                        members["error"] = .string(error)
                        members["failure_snapshot_id"] = snapshot.map(JSONValue.string) ?? .null
                    case .open, .interrupted: break
                    }
                    return .object(members)
                }),
            ]
        })
        object["violations"] = .array(run.violations.recent.map(json))
        return .object(object)
    }

    static func json(_ point: ResumePoint) -> JSONValue {
        [
            "reason": .string(point.reason.rawValue),
            "state_id": point.stateId.map(JSONValue.string) ?? .null,
            "after_state_id": point.afterStateId.map(JSONValue.string) ?? .null,
            "snapshot_id": .string(point.snapshotId),
            "next_attempt": point.nextAttempt.map(JSONValue.int) ?? .null,
        ]
    }

    static func json(_ violation: RuleViolation) -> JSONValue {
        [
            "event_id": .string(violation.eventId), "event_type": .string(violation.eventType.rawValue),
            "code": .string(violation.code.description), "timestamp": .string(violation.timestamp.rfc3339),
            "detail": .string(violation.detail),
        ]
    }

    static func json(_ statistics: ReducerStatistics) -> JSONValue {
        [
            "applied": .int(Int64(statistics.applied)), "duplicates": .int(Int64(statistics.duplicates)),
            "confirmed": .int(Int64(statistics.confirmed)), "violations": .int(Int64(statistics.violations)),
            "emitted": .int(Int64(statistics.emitted)),
        ]
    }
}

/// Which rollouts to list (`ennio.query.rollouts`).
public struct RolloutQuery: Sendable, Hashable {
    public var channel: String?
    public var state: RolloutState?
    /// One rollout, in full.
    public var rolloutId: String?
    public var page = QueryPage()

    public init(channel: String? = nil, state: RolloutState? = nil, rolloutId: String? = nil) {
        self.channel = channel
        self.state = state
        self.rolloutId = rolloutId
    }

    /// Reads a request body; an empty one asks for the first page of every rollout.
    public init(body: [UInt8]) throws(FamilyQueryError) {
        let request = try QueryRequest(body, keys: ["channel", "state", "rollout_id", "limit", "offset"])
        channel = try request.string("channel")
        rolloutId = try request.string("rollout_id")
        state = try request.choice("state", of: RolloutState.self)
        page = try QueryPage(request)
    }

    /// The request body (what `ennio rollouts` sends).
    public var body: [UInt8] {
        var object = page.members
        if let channel { object["channel"] = .string(channel) }
        if let state { object["state"] = .string(state.rawValue) }
        if let rolloutId { object["rollout_id"] = .string(rolloutId) }
        return Array(JSONValue.object(object).jsonString.utf8)
    }
}

/// Which runs to list (`ennio.query.runs`).
public struct RunQuery: Sendable, Hashable {
    public var projectId: String?
    public var status: RunStatus?
    /// One run, in full.
    public var opId: String?
    public var page = QueryPage()

    public init(projectId: String? = nil, status: RunStatus? = nil, opId: String? = nil) {
        self.projectId = projectId
        self.status = status
        self.opId = opId
    }

    public init(body: [UInt8]) throws(FamilyQueryError) {
        let request = try QueryRequest(body, keys: ["project_id", "status", "op_id", "limit", "offset"])
        projectId = try request.string("project_id")
        opId = try request.string("op_id")
        status = try request.choice("status", of: RunStatus.self)
        page = try QueryPage(request)
    }

    public var body: [UInt8] {
        var object = page.members
        if let projectId { object["project_id"] = .string(projectId) }
        if let status { object["status"] = .string(status.rawValue) }
        if let opId { object["op_id"] = .string(opId) }
        return Array(JSONValue.object(object).jsonString.utf8)
    }
}

/// A page of a list: `limit` (1–1000, default 1000) records from `offset`.
public struct QueryPage: Sendable, Hashable {
    public static let maximumLimit = 1000

    public var limit = QueryPage.maximumLimit
    public var offset = 0

    public init(limit: Int = QueryPage.maximumLimit, offset: Int = 0) {
        self.limit = limit
        self.offset = offset
    }

    init(_ request: QueryRequest) throws(FamilyQueryError) {
        if let limit = try request.integer("limit") {
            guard (1...Self.maximumLimit).contains(limit) else { throw FamilyQueryError(code: 400, "limit must be between 1 and \(Self.maximumLimit), not \(limit)") }
            self.limit = limit
        }
        if let offset = try request.integer("offset") {
            guard offset >= 0 else { throw FamilyQueryError(code: 400, "offset must not be negative, not \(offset)") }
            self.offset = offset
        }
    }

    var members: [String: JSONValue] {
        ["limit": .int(Int64(limit)), "offset": .int(Int64(offset))]
    }
}

/// A query request body: empty, or a JSON object of known keys.
struct QueryRequest {
    private let members: [String: JSONValue]

    init(_ body: [UInt8], keys: Set<String>) throws(FamilyQueryError) {
        guard body.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else {
            members = [:]
            return
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: body)
        } catch {
            throw FamilyQueryError(code: 400, "the request is not valid JSON: \(error.detail)")
        }
        guard let object = value.objectValue else { throw FamilyQueryError(code: 400, "the request must be a JSON object") }
        if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) {
            throw FamilyQueryError(code: 400, "unknown key \(unknown.debugDescription); known keys: \(keys.sorted().joined(separator: ", "))")
        }
        members = object
    }

    func string(_ key: String) throws(FamilyQueryError) -> String? {
        guard let member = members[key], !member.isNull else { return nil }
        guard let text = member.stringValue else { throw FamilyQueryError(code: 400, "\(key) must be a string") }
        return text
    }

    /// One of the values of `Choice`, by its wire name.
    func choice<Choice: RawRepresentable & CaseIterable>(_ key: String, of _: Choice.Type) throws(FamilyQueryError) -> Choice? where Choice.RawValue == String {
        guard let name = try string(key) else { return nil }
        guard let value = Choice(rawValue: name) else {
            throw FamilyQueryError(code: 400, "unknown \(key) \(name.debugDescription); known: \(Choice.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    func integer(_ key: String) throws(FamilyQueryError) -> Int? {
        guard let member = members[key], !member.isNull else { return nil }
        guard let number = member.intValue, let value = Int(exactly: number) else { throw FamilyQueryError(code: 400, "\(key) must be an integer") }
        return value
    }
}

/// A rollout or run query that cannot be answered as asked: 400 for a bad request, 404 for a
/// rollout or run the coordinator does not know.
public struct FamilyQueryError: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Int
    public let message: String

    public init(code: Int, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
