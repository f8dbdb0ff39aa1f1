import EnnioEvents

/// The members of a reducer's checkpoint row, read back: each accessor throws a
/// ``CheckpointError`` naming the row and the member when it is missing or of the wrong kind, so
/// that a damaged checkpoint is rebuilt from the history rather than misread.
///
/// Instants are kept as integer nanoseconds (`…_ns`), exactly; text as JSON strings.
struct CheckpointFields {
    private let members: [String: JSONValue]
    /// What the row is, for errors ("the rollouts row \"r1\"").
    let context: String

    init(_ value: JSONValue, _ context: String) throws {
        guard let members = value.objectValue else { throw CheckpointError("\(context) is not a JSON object") }
        self.members = members
        self.context = context
    }

    /// Reads a row's `value` or `state` column.
    init(parsing bytes: [UInt8], _ context: String) throws {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw CheckpointError("\(context) is not valid JSON: \(error)")
        }
        try self.init(value, context)
    }

    func invalid(_ name: String) -> CheckpointError {
        CheckpointError("\(context) has no valid \(name)")
    }

    func string(_ name: String) throws -> String {
        guard let text = members[name]?.stringValue else { throw invalid(name) }
        return text
    }

    /// A string, or `nil` for `null` (or a member left out).
    func optionalString(_ name: String) throws -> String? {
        guard let member = members[name], !member.isNull else { return nil }
        guard let text = member.stringValue else { throw invalid(name) }
        return text
    }

    func integer(_ name: String) throws -> Int64 {
        guard let number = members[name]?.intValue else { throw invalid(name) }
        return number
    }

    func optionalInteger(_ name: String) throws -> Int64? {
        guard let member = members[name], !member.isNull else { return nil }
        guard let number = member.intValue else { throw invalid(name) }
        return number
    }

    /// A count: a whole number of at least 0.
    func count(_ name: String) throws -> Int {
        guard let number = Int(exactly: try integer(name)), number >= 0 else { throw invalid(name) }
        return number
    }

    func bool(_ name: String) throws -> Bool {
        guard let flag = members[name]?.boolValue else { throw invalid(name) }
        return flag
    }

    func instant(_ name: String) throws -> EventTimestamp {
        EventTimestamp(nanosecondsSinceEpoch: try integer(name))
    }

    /// One of the values of `Choice`, by its raw value.
    func choice<Choice: RawRepresentable>(_ name: String, _: Choice.Type) throws -> Choice where Choice.RawValue == String {
        guard let choice = Choice(rawValue: try string(name)) else { throw invalid(name) }
        return choice
    }

    func optionalChoice<Choice: RawRepresentable>(_ name: String, _: Choice.Type) throws -> Choice? where Choice.RawValue == String {
        guard let text = try optionalString(name) else { return nil }
        guard let choice = Choice(rawValue: text) else { throw invalid(name) }
        return choice
    }

    func strings(_ name: String) throws -> [String] {
        guard let elements = members[name]?.arrayValue else { throw invalid(name) }
        return try elements.map { element in
            guard let text = element.stringValue else { throw invalid(name) }
            return text
        }
    }

    func counts(_ name: String) throws -> [Int] {
        guard let elements = members[name]?.arrayValue else { throw invalid(name) }
        return try elements.map { element in
            guard let number = element.intValue.flatMap({ Int(exactly: $0) }) else { throw invalid(name) }
            return number
        }
    }

    /// A nested object.
    func fields(_ name: String) throws -> CheckpointFields {
        guard let member = members[name] else { throw invalid(name) }
        return try CheckpointFields(member, "\(context) (\(name))")
    }

    /// A nested object, or `nil` for `null`.
    func optionalFields(_ name: String) throws -> CheckpointFields? {
        guard let member = members[name], !member.isNull else { return nil }
        return try CheckpointFields(member, "\(context) (\(name))")
    }

    /// An array of objects.
    func list(_ name: String) throws -> [CheckpointFields] {
        guard let elements = members[name]?.arrayValue else { throw invalid(name) }
        return try elements.enumerated().map { try CheckpointFields($1, "\(context) (\(name) \($0))") }
    }

    /// An event written whole (``EventCodec``), or `nil` for `null`.
    func optionalEvent(_ name: String) throws -> Event? {
        guard let member = members[name], !member.isNull else { return nil }
        do {
            return try EventCodec.decode(Array(member.jsonString.utf8))
        } catch {
            throw CheckpointError("\(context) has no valid \(name): \(error)")
        }
    }

    /// A violation log, as `JSONWriter.member(_:_:)` writes one.
    func violations(_ name: String) throws -> ViolationLog {
        let log = try fields(name)
        let recent = try log.list("recent").map { flag in
            guard let code = RuleViolation.Code(named: try flag.string("code")) else { throw flag.invalid("code") }
            guard let type = EventType(named: try flag.string("event_type")) else { throw flag.invalid("event_type") }
            return RuleViolation(code, eventId: try flag.string("event_id"), eventType: type, timestamp: try flag.instant("timestamp_ns"), try flag.string("detail"))
        }
        return ViolationLog(recent: recent, count: try log.count("count"))
    }
}

extension JSONWriter {
    /// Writes a member of an object; `nil` as `null`.
    mutating func member(_ name: String, _ text: String?) {
        key(name)
        if let text { string(text) } else { null() }
    }

    mutating func member(_ name: String, _ number: Int64?) {
        key(name)
        if let number { int(number) } else { null() }
    }

    mutating func member(_ name: String, count: Int) {
        key(name)
        int(Int64(count))
    }

    mutating func member(_ name: String, _ flag: Bool) {
        key(name)
        bool(flag)
    }

    /// An instant, as integer nanoseconds.
    mutating func member(_ name: String, _ instant: EventTimestamp) {
        key(name)
        int(instant.nanosecondsSinceEpoch)
    }

    mutating func member(_ name: String, strings: some Sequence<String>) {
        key(name)
        beginArray()
        for text in strings { string(text) }
        endArray()
    }

    /// A violation log: its count and its recent flags.
    mutating func member(_ name: String, _ log: ViolationLog) {
        key(name)
        beginObject()
        member("count", count: log.count)
        key("recent")
        beginArray()
        for flag in log.recent {
            beginObject()
            member("code", flag.code.description)
            member("event_id", flag.eventId)
            member("event_type", flag.eventType.rawValue)
            member("timestamp_ns", flag.timestamp)
            member("detail", flag.detail)
            endObject()
        }
        endArray()
        endObject()
    }

    /// A reducer's counts.
    mutating func member(_ name: String, _ statistics: ReducerStatistics) {
        key(name)
        beginObject()
        for (counter, value) in [("applied", statistics.applied), ("duplicates", statistics.duplicates), ("confirmed", statistics.confirmed), ("violations", statistics.violations), ("emitted", statistics.emitted)] {
            key(counter)
            int(Int64(bitPattern: value))
        }
        endObject()
    }
}

extension CheckpointFields {
    func statistics(_ name: String) throws -> ReducerStatistics {
        let counts = try fields(name)
        func counter(_ name: String) throws -> UInt64 { UInt64(bitPattern: try counts.integer(name)) }
        var statistics = ReducerStatistics()
        statistics.applied = try counter("applied")
        statistics.duplicates = try counter("duplicates")
        statistics.confirmed = try counter("confirmed")
        statistics.violations = try counter("violations")
        statistics.emitted = try counter("emitted")
        return statistics
    }
}
