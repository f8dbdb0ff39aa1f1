import EnnioEvents

/// Reads the JSON of the family reducers' checkpoint rows as it goes (``JSONReader``), without
/// building a tree of it: a restart reads a row per rollout and run kept, so the cost of a row
/// is the cost of a restart. A row that is not what its table holds — invalid JSON, a member
/// missing or of the wrong kind, a state that does not exist — is refused with a
/// ``CheckpointError`` naming it, so that a damaged checkpoint is rebuilt from the history
/// rather than misread.
///
/// Instants are written as integer nanoseconds (`…_ns`), exactly; text as JSON strings.
struct CheckpointDecoder {
    /// The first thing found wrong that JSON does not see (a missing member, an unknown state).
    private(set) var problem: String?

    /// Notes that `what` is missing or invalid (the first such note is the one reported).
    mutating func invalid(_ what: String) {
        if problem == nil { problem = what }
    }

    /// `value`, or a note that `what` is missing.
    mutating func required<Value>(_ value: Value?, _ what: String) -> Value? {
        if value == nil { invalid(what) }
        return value
    }

    /// One of the values of `Choice` by its raw value, or a note that `what` is invalid.
    mutating func choice<Choice: RawRepresentable>(_ text: String?, _: Choice.Type, _ what: String) -> Choice? where Choice.RawValue == String {
        guard let text, let choice = Choice(rawValue: text) else {
            invalid(what)
            return nil
        }
        return choice
    }

    /// Reads `bytes`, the `value` or `state` of `row`, with `body`, which reads the one JSON value
    /// there and returns what it makes of it (`nil` after noting what is wrong).
    static func decode<Value>(_ bytes: [UInt8], of row: CheckpointRow, _ body: (inout JSONReader, inout CheckpointDecoder) throws(JSONError) -> Value?) throws -> Value {
        var decoder = CheckpointDecoder()
        let value: Value?
        do {
            value = try bytes.withUnsafeBufferPointer { buffer throws(JSONError) -> Value? in
                var reader = JSONReader(bytes: buffer)
                let value = try body(&reader, &decoder)
                try reader.expectEnd()
                return value
            }
        } catch {
            throw CheckpointError("\(row.name) is not valid: \(error)")
        }
        if let problem = decoder.problem { throw CheckpointError("\(row.name) has no valid \(problem)") }
        guard let value else { throw CheckpointError("\(row.name) is not valid") }
        return value
    }

    /// A violation log, as `JSONWriter.member(_:_:)` writes one.
    mutating func violations(_ reader: inout JSONReader) throws(JSONError) -> ViolationLog {
        var count: Int64?
        var recent: [RuleViolation] = []
        try reader.readObject { key, reader throws(JSONError) in
            switch key {
            case "count": count = try reader.readInt()
            case "recent":
                try reader.readArray { reader throws(JSONError) in
                    var code: RuleViolation.Code?, eventId: String?, type: EventType?, timestamp: Int64?, detail: String?
                    try reader.readObject { key, reader throws(JSONError) in
                        switch key {
                        case "code": code = RuleViolation.Code(named: try reader.readString())
                        case "event_id": eventId = try reader.readString()
                        case "event_type": type = EventType(named: try reader.readString())
                        case "timestamp_ns": timestamp = try reader.readInt()
                        case "detail": detail = try reader.readString()
                        default: try reader.skipValue()
                        }
                    }
                    guard let code, let eventId, let type, let timestamp, let detail else { return invalid("violation") }
                    recent.append(RuleViolation(code, eventId: eventId, eventType: type, timestamp: EventTimestamp(nanosecondsSinceEpoch: timestamp), detail))
                }
            default: try reader.skipValue()
            }
        }
        guard let count = required(count.flatMap { Int(exactly: $0) }, "violation count") else { return ViolationLog() }
        return ViolationLog(recent: recent, count: count)
    }

    /// A reducer's counts, as `JSONWriter.member(_:_:)` writes them.
    mutating func statistics(_ reader: inout JSONReader) throws(JSONError) -> ReducerStatistics {
        var statistics = ReducerStatistics()
        var seen = 0
        try reader.readObject { key, reader throws(JSONError) in
            let path: WritableKeyPath<ReducerStatistics, UInt64>? = switch key {
            case "applied": \.applied
            case "duplicates": \.duplicates
            case "confirmed": \.confirmed
            case "violations": \.violations
            case "emitted": \.emitted
            default: nil
            }
            guard let path else { return try reader.skipValue() }
            statistics[keyPath: path] = UInt64(bitPattern: try reader.readInt())
            seen += 1
        }
        if seen != 5 { invalid("statistics") }
        return statistics
    }
}

extension CheckpointRow {
    /// The row, for errors.
    var name: String { "the \(table) row \(key.debugDescription)" }
}

extension JSONReader {
    /// A string, or `nil` for `null`.
    mutating func readOptionalString() throws(JSONError) -> String? {
        try readNull() ? nil : try readString()
    }

    /// An integer, or `nil` for `null`.
    mutating func readOptionalInt() throws(JSONError) -> Int64? {
        try readNull() ? nil : try readInt()
    }

    /// An array of strings.
    mutating func readStrings() throws(JSONError) -> [String] {
        var strings: [String] = []
        try readArray { reader throws(JSONError) in strings.append(try reader.readString()) }
        return strings
    }

    /// An instant written as integer nanoseconds.
    mutating func readInstant() throws(JSONError) -> EventTimestamp {
        EventTimestamp(nanosecondsSinceEpoch: try readInt())
    }

    /// A count: a whole number of at least 0 (`nil` for any other number).
    mutating func readCount() throws(JSONError) -> Int? {
        let number = try readInt()
        return number >= 0 ? Int(exactly: number) : nil
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

