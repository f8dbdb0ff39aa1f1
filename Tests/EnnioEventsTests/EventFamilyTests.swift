import EnnioEvents
import Testing

/// The new families' types, written out independently of the code's table.
let familyTypes: [(EventType, String, String, EventCategory, String)] = [
    (.rolloutOpened, "RolloutOpened", "rollout_opened", .rollout, "opened"),
    (.hostJoined, "HostJoined", "host_joined", .rollout, "host_joined"),
    (.hostStateChanged, "HostStateChanged", "host_state_changed", .rollout, "host_state_changed"),
    (.waveAdvanced, "WaveAdvanced", "wave_advanced", .rollout, "wave_advanced"),
    (.rolloutTerminal, "RolloutTerminal", "rollout_terminal", .rollout, "terminal"),
    (.successorOpened, "SuccessorOpened", "successor_opened", .rollout, "successor_opened"),
    (.retentionExpired, "RetentionExpired", "retention_expired", .rollout, "retention_expired"),
    (.operatorClearance, "OperatorClearance", "operator_clearance", .rollout, "operator_clearance"),
    (.runStarted, "RunStarted", "run_started", .run, "started"),
    (.stateEntered, "StateEntered", "state_entered", .run, "state_entered"),
    (.stateCompleted, "StateCompleted", "state_completed", .run, "state_completed"),
    (.stateFailed, "StateFailed", "state_failed", .run, "state_failed"),
    (.runCompleted, "RunCompleted", "run_completed", .run, "completed"),
]

/// One valid `data` per new type, as a publisher in another language writes it.
let validFamilyData: [EventType: String] = [
    .rolloutOpened: #"{"rollout_id":"r1","channel":"stable","target_ref":"v2","at":"2026-03-05T19:25:03Z"}"#,
    .hostJoined: #"{"rollout_id":"r1","host_id":"web-1","wave":0,"at":"2026-03-05T19:25:03Z"}"#,
    .hostStateChanged: #"{"rollout_id":"r1","host_id":"web-1","from":"dispatched","to":"soaking","at":"2026-03-05T19:25:03Z"}"#,
    .waveAdvanced: #"{"rollout_id":"r1","from_wave":0,"to_wave":1,"at":"2026-03-05T19:25:03Z"}"#,
    .rolloutTerminal: #"{"rollout_id":"r1","at":"2026-03-05T19:25:03Z"}"#,
    .successorOpened: #"{"superseded_rollout_id":"r0","successor_rollout_id":"r1","at":"2026-03-05T19:25:03Z"}"#,
    .retentionExpired: #"{"rollout_id":"r1","at":"2026-03-05T19:25:03+01:00"}"#,
    .operatorClearance: #"{"rollout_id":"r1","operator":"alice","reason":"","at":"2026-03-05T19:25:03Z"}"#,
    .runStarted: #"{"op_id":"r1","manifest_id":"m","initial_snapshot_id":"s0"}"#,
    .stateEntered: #"{"state_id":"a","attempt":1,"base_snapshot_id":"s0"}"#,
    .stateCompleted: #"{"state_id":"a","context_snapshot_id":"s1"}"#,
    .stateFailed: #"{"state_id":"a","error":"boom","failure_snapshot_id":null}"#,
    .runCompleted: #"{"status":"cancelled"}"#,
]

private func familyEvent(_ type: EventType, data: String, session: String = "r1", project: String = "stable") throws -> Event {
    Event(type: type, sessionId: session, projectId: project, message: "m", data: try JSONValue(parsing: data))
}

@Suite struct EventFamilyTests {
    @Test func theRegistryHasTheOrchestratorFirstAndEveryTypeOnce() {
        #expect(EventFamily.all.map(\.name) == ["orchestrator", "rollouts", "runs"])
        #expect(EventFamily.orchestrator.types == expectedTypes.map(\.0))
        #expect(EventFamily.rollouts.types == familyTypes.filter { $0.3 == .rollout }.map(\.0))
        #expect(EventFamily.runs.types == familyTypes.filter { $0.3 == .run }.map(\.0))
        #expect(EventFamily.all.flatMap(\.types) == EventType.allCases)
        #expect(EventFamily.rollouts.categories == [.rollout])
        #expect(EventFamily.runs.categories == [.run])
        #expect(Set(EventType.allCases.map(\.rawValue)).count == EventType.allCases.count, "wire names are unique across families")
        #expect(Set(EventType.allCases.map(\.name)).count == EventType.allCases.count)
        #expect(EventFamily.orchestrator.types.allSatisfy { $0.entry.fields.isEmpty }, "the orchestrator's data stays free")
    }

    @Test(arguments: familyTypes.map { $0 })
    func namesSubjectsAndLookUps(type: EventType, name: String, wire: String, category: EventCategory, action: String) throws {
        #expect(type.name == name)
        #expect(type.rawValue == wire)
        #expect(type.category == category)
        #expect(type.action == action)
        #expect(EventType(named: wire) == type)
        #expect(EventType(named: name) == type)
        #expect(EventType(category: category, action: action) == type)
        let subject = try EventSubject.subject(for: type, projectId: "stable")
        #expect(subject == "ennio.\(category.rawValue).stable.\(action)")
        #expect(EventSubject.parse(subject)?.eventType == type)
        let role = category == .rollout ? "channel" : "project"
        #expect(EventSubject.template(for: type) == "ennio.\(category.rawValue).<\(role)>.\(action)")
    }

    @Test func bothCategoriesAreInTheDurableStream() {
        #expect(EventStream.subjects.contains("ennio.rollout.>"))
        #expect(EventStream.subjects.contains("ennio.run.>"))
    }

    @Test func oneEnvelopeDecodesEveryFamily() throws {
        let json = #"{"id":"e1","event_type":"host_joined","priority":"info","session_id":"r1","project_id":"stable","timestamp":"2026-03-05T19:25:03Z","message":"web-1 joined","data":{"at":"2026-03-05T19:25:03Z","host_id":"web-1","rollout_id":"r1","wave":0}}"#
        let event = try Event(json: json)
        #expect(event.eventType == .hostJoined)
        #expect(event.jsonString == json)
        #expect(throws: Never.self) { try event.validateData() }
    }

    @Test(arguments: familyTypes.map(\.0))
    func theDocumentedDataIsValidAndEveryRequiredMemberIsNeeded(type: EventType) throws {
        let text = try #require(validFamilyData[type])
        let valid = try familyEvent(type, data: text)
        try valid.validateData()
        let members = try #require(valid.data.objectValue)
        for field in type.entry.fields {
            var without = members
            without[field.name] = nil
            var event = valid
            event.data = .object(without)
            if field.isRequired {
                #expect(throws: EventDataError.self) { try event.validateData() }
                do {
                    try event.validateData()
                } catch {
                    #expect(error.code == .missingField)
                    #expect(error.field == field.name)
                    #expect(error.description.contains(type.rawValue))
                }
            } else {
                #expect(throws: Never.self, "\(field.name) is optional") { try event.validateData() }
            }
            // A number where a string belongs, or a string where a number does.
            var wrong = members
            if case .integer = field.kind { wrong[field.name] = "7" } else { wrong[field.name] = 7 }
            event.data = .object(wrong)
            #expect(throws: EventDataError.self, "\(type) \(field.name)") { try event.validateData() }
        }
        var extra = members
        extra["comment"] = "extra members are allowed"
        var event = valid
        event.data = .object(extra)
        try event.validateData()
        event.data = .null
        #expect(throws: EventDataError.self) { try event.validateData() }
    }

    @Test func membersThatRepeatTheEnvelopeMustAgreeWithIt() throws {
        let joined = try familyEvent(.hostJoined, data: validFamilyData[.hostJoined]!, session: "r2")
        #expect(throws: EventDataError.self) { try joined.validateData() }
        do {
            try joined.validateData()
        } catch {
            #expect(error.code == .disagreesWithEnvelope)
            #expect(error.field == "rollout_id")
        }
        let opened = try familyEvent(.rolloutOpened, data: validFamilyData[.rolloutOpened]!, project: "beta")
        #expect(throws: EventDataError.self) { try opened.validateData() }
        let started = try familyEvent(.runStarted, data: validFamilyData[.runStarted]!, session: "op-2")
        #expect(throws: EventDataError.self) { try started.validateData() }
    }

    @Test(arguments: [
        (EventType.hostJoined, #"{"rollout_id":"r1","host_id":"web-1","wave":-1,"at":"2026-03-05T19:25:03Z"}"#, "wave"),
        (.hostJoined, #"{"rollout_id":"r1","host_id":"web-1","wave":1.5,"at":"2026-03-05T19:25:03Z"}"#, "wave"),
        (.hostJoined, #"{"rollout_id":"r1","host_id":"","wave":1,"at":"2026-03-05T19:25:03Z"}"#, "host_id"),
        (.hostJoined, #"{"rollout_id":"r1","host_id":"a\nb","wave":1,"at":"2026-03-05T19:25:03Z"}"#, "host_id"),
        (.hostJoined, #"{"rollout_id":"r1","host_id":"web-1","wave":1,"at":"March 5th"}"#, "at"),
        (.hostStateChanged, #"{"rollout_id":"r1","host_id":"web-1","from":"Soaked","to":"converged","at":"2026-03-05T19:25:03Z"}"#, "from"),
        (.stateEntered, #"{"state_id":"a","attempt":0,"base_snapshot_id":"s0"}"#, "attempt"),
        (.runCompleted, #"{"status":"running"}"#, "status"),
    ])
    func badValuesAreNamed(type: EventType, data: String, field: String) throws {
        let event = try familyEvent(type, data: data)
        do {
            try event.validateData()
            Issue.record("\(data) was accepted")
        } catch {
            #expect(error.field == field)
            #expect(error.code == .invalidValue || error.code == .wrongType)
        }
    }

    @Test func orchestratorEventsTakeAnyData() throws {
        for type in EventFamily.orchestrator.types {
            for data: JSONValue in [.null, "text", [1, 2], ["anything": true]] {
                try Event(type: type, sessionId: "s", projectId: "p", message: "m", data: data).validateData()
            }
        }
    }

    @Test func derivedIdsAreNameBasedVersion8UUIDs() {
        // SHA-256 worked out independently (Python's hashlib) for this name.
        #expect(EventID.derived(kind: "rollout_terminal", name: "r-2026-03-05") == "d01b2feb-d58d-89eb-9e11-4af5b4ce345b")
        let id = EventID.derived(kind: "rollout_terminal", name: "r1")
        #expect(id == EventID.derived(kind: "rollout_terminal", name: "r1"))
        #expect(id != EventID.derived(kind: "rollout_terminal", name: "r2"))
        #expect(id != EventID.derived(kind: "rollout_terminaL", name: "r1"))
        #expect(EventID.derived(kind: "a", name: "bc") != EventID.derived(kind: "ab", name: "c"), "the separator keeps kind and name apart")
        let characters = Array(id)
        #expect(characters.count == 36)
        #expect(characters[14] == "8", "version 8")
        #expect("89ab".contains(characters[19]), "the RFC 9562 variant")
        // Random ids are unchanged: version 4.
        #expect(Array(EventID.random())[14] == "4")
    }

    @Test func theHostTransitionTableIsTheDocumentedOne() {
        let legal: [RolloutHostState: Set<RolloutHostState>] = [
            .dispatched: [.soaking, .failed, .reverting], .soaking: [.soaked, .failed, .reverting],
            .soaked: [.converged, .failed, .reverting], .converged: [.reverting], .failed: [.dispatched, .reverting],
            .reverting: [.reverted, .failed], .reverted: [],
        ]
        for from in RolloutHostState.allCases {
            for to in RolloutHostState.allCases {
                #expect(from.canMove(to: to) == legal[from]!.contains(to), "\(from) → \(to)")
            }
        }
        let text = TopicsDocument.markdown
        #expect(text.contains("| `soaked` | observed long enough without trouble | `converged`, `failed`, `reverting` |"))
        for state in RolloutState.allCases { #expect(text.contains("| `\(state.rawValue)` |")) }
        for reason in ResumeReason.allCases { #expect(text.contains("| `\(reason.rawValue)` |")) }
    }
}
