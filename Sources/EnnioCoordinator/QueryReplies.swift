import EnnioEvents

/// Builds the replies of ``QueryProtocol`` from the store, one row at a time, each below a
/// byte limit: whatever is stored, a reply takes at most that much memory, and a reader always
/// gets a page it can receive and a cursor to the next.
///
/// Events and rows are copied into the reply as stored (their JSON was written once, when they
/// were stored), never decoded and encoded again.
enum QueryReplies {
    /// A page of history for `query`, at most `byteLimit` bytes (and `query.maxBytes`).
    static func history(_ query: HistoryQuery, byteLimit: Int, store: EventStore) throws -> [UInt8] {
        let budget = min(query.maxBytes ?? .max, byteLimit)
        var events: [UInt8] = []
        var subjects: [UInt8] = []
        var count = 0
        var last: HistoryCursor?
        var next: HistoryCursor?
        var partReply: [UInt8]?
        try store.withReader { connection in
            try store.walk(query, in: connection) { row in
                if count == 0, partReply == nil, let after = query.after, let offset = after.partOffset, row.cursor == after.wholeEvent {
                    // The next part of an event too large for one reply.
                    partReply = try part(of: row, from: offset, budget: budget)
                    return false
                }
                guard count < query.limit else {
                    next = last
                    return false
                }
                let subject = jsonString(row.subject)
                let cursor = jsonString(row.cursor.description)
                let size = row.jsonByteCount
                let eventsAfter = events.count + (count > 0 ? 1 : 0) + size
                let subjectsAfter = subjects.count + (count > 0 ? 1 : 0) + subject.count
                guard envelope(events: eventsAfter, subjects: subjectsAfter, count: count + 1, next: cursor.count) <= budget else {
                    if count == 0 {
                        partReply = try part(of: row, from: 0, budget: budget)
                    } else {
                        next = last
                    }
                    return false
                }
                if count > 0 {
                    events.append(UInt8(ascii: ","))
                    subjects.append(UInt8(ascii: ","))
                }
                row.withJSON { events.append(contentsOf: $0) }
                subjects += subject
                count += 1
                last = row.cursor
                return true
            }
        }
        if let partReply { return partReply }
        var reply: [UInt8] = []
        reply.reserveCapacity(envelope(events: events.count, subjects: subjects.count, count: count, next: 0) + 64)
        reply += Array(#"{"events":["#.utf8)
        reply += events
        reply += Array(#"],"subjects":["#.utf8)
        reply += subjects
        reply += Array(#"],"count":\#(count),"next":"#.utf8)
        reply += next.map { jsonString($0.description) } ?? Array("null".utf8)
        reply.append(UInt8(ascii: "}"))
        return reply
    }

    /// The size of a history reply with these parts (`next`: the length of the cursor's JSON).
    static func envelope(events: Int, subjects: Int, count: Int, next: Int) -> Int {
        #"{"events":[],"subjects":[],"count":,"next":}"#.utf8.count + events + subjects + String(count).utf8.count + max(next, 4)
    }

    /// One part of the event in `row`: as much of its JSON, from byte `offset`, as fits in
    /// `budget` with the envelope, as a JSON string cut between two characters.
    static func part(of row: StoredRow, from offset: Int, budget: Int) throws -> [UInt8] {
        try row.withJSON { json -> [UInt8] in
            let size = json.count
            let key = jsonString(row.cursor.description)
            let subject = jsonString(row.subject)
            let whole = row.cursor
            guard offset < size else {
                // Past its end: the event is done, the page goes on after it.
                return Array(#"{"events":[],"subjects":[],"count":0,"next":"#.utf8) + key + [UInt8(ascii: "}")]
            }
            // The longest next cursor this part can have: a part offset as long as the size.
            let longestNext = jsonString(HistoryCursor(timestampNanoseconds: whole.timestampNanoseconds, id: whole.id, partOffset: size).description).count
            let fixed = #"{"events":[],"subjects":[],"count":0,"part":{"key":,"subject":,"size":,"offset":,"data":""},"next":}"#.utf8.count
                + key.count + subject.count + 2 * String(size).utf8.count + longestNext
            let room = budget - fixed
            // Escaped, a byte takes 1 to 6 bytes (stored JSON holds no control characters, so
            // in practice 1, or 2 for `"` and `\`).
            var end = offset
            var used = 0
            while end < size {
                let cost = escapedLength(json[end])
                guard used + cost <= room else { break }
                used += cost
                end += 1
            }
            // Back to the start of a character, so that the piece is valid UTF-8.
            while end > offset, end < size, json[end] & 0xC0 == 0x80 { end -= 1 }
            guard end > offset else {
                throw QueryFailure(code: 500, description: "the event \(whole) cannot be sent in parts of \(budget) bytes: its key and subject leave no room")
            }
            let next = end < size ? HistoryCursor(timestampNanoseconds: whole.timestampNanoseconds, id: whole.id, partOffset: end) : whole
            var reply: [UInt8] = []
            reply.reserveCapacity(fixed + used)
            reply += Array(#"{"events":[],"subjects":[],"count":0,"part":{"key":"#.utf8) + key
            reply += Array(#","subject":"#.utf8) + subject
            reply += Array(#","size":\#(size),"offset":\#(offset),"data":"#.utf8)
            var writer = JSONWriter(bytes: reply)
            writer.string(String(decoding: UnsafeBufferPointer(rebasing: json[offset..<end]), as: UTF8.self))
            reply = writer.bytes
            reply += Array(#"},"next":"#.utf8) + jsonString(next.description) + [UInt8(ascii: "}")]
            return reply
        }
    }

    /// How many bytes `byte` takes inside a JSON string, as ``JSONWriter`` escapes it.
    static func escapedLength(_ byte: UInt8) -> Int {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x09, 0x0A, 0x0C, 0x0D: 2
        case 0..<0x20: 6
        default: 1
        }
    }

    static func jsonString(_ text: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.string(text)
        return writer.bytes
    }

    /// A page of a checkpointed table: `{"<name>":[…],"count":n,"next":"<key>"|null}`, each
    /// row's JSON made by `item` (from the row's stored value). A row too large for a reply by
    /// itself is left out and counted in `"omitted"` (the events it was made from are in the
    /// history); the page then goes on after it.
    static func table(
        _ table: String, named name: String, query: TableQuery, prefix: String? = nil, byteLimit: Int, store: EventStore,
        item: (CheckpointRowView) throws -> [UInt8]
    ) throws -> [UInt8] {
        let budget = min(query.maxBytes ?? .max, byteLimit)
        var items: [UInt8] = []
        var examined = 0
        var count = 0
        var omitted = 0
        var lastKey: String?
        var next: String?
        // `{"<name>":[`, `],"count":n,"omitted":n,"next":` and `}`, with room for the numbers.
        let fixed = name.utf8.count + #"{"":[],"count":,"omitted":,"next":}"#.utf8.count + 40
        try store.withReader { connection in
            try store.walkRows(of: table, after: query.after, prefix: prefix, limit: query.limit + 1, in: connection) { row in
                guard examined < query.limit else {
                    next = lastKey
                    return false
                }
                examined += 1
                let key = row.key
                let bytes = try item(row)
                let keyLength = jsonString(key).count
                if fixed + items.count + 1 + bytes.count + keyLength > budget {
                    guard count == 0, fixed + bytes.count + keyLength > budget else {
                        next = lastKey
                        return false
                    }
                    omitted += 1
                    lastKey = key
                    return true
                }
                if count > 0 { items.append(UInt8(ascii: ",")) }
                items += bytes
                count += 1
                lastKey = key
                return true
            }
        }
        var reply = Array("{\"\(name)\":[".utf8)
        reply += items
        reply += Array(#"],"count":\#(count),"#.utf8)
        if omitted > 0 { reply += Array(#""omitted":\#(omitted),"#.utf8) }
        reply += Array(#""next":"#.utf8)
        reply += next.map(jsonString) ?? Array("null".utf8)
        reply.append(UInt8(ascii: "}"))
        return reply
    }

    /// A page of sessions: rows as stored.
    static func sessions(_ query: TableQuery, byteLimit: Int, store: EventStore) throws -> [UInt8] {
        let prefix = query.projectId.map { LifecycleState.key($0, "") }
        return try table(LifecycleState.sessionsTable, named: "sessions", query: query, prefix: prefix, byteLimit: byteLimit, store: store) { row in
            row.withValue { Array($0) }
        }
    }

    /// A page of nodes: rows as stored, with `connected` and `seconds_since_last_seen` as of
    /// `now` added in front.
    static func nodes(
        _ query: TableQuery, byteLimit: Int, store: EventStore, now: EventTimestamp, missedHealthChecks: Int, watchingSince: EventTimestamp
    ) throws -> [UInt8] {
        try table(LifecycleState.nodesTable, named: "nodes", query: query, byteLimit: byteLimit, store: store) { row in
            try nodeRow(row.row(of: LifecycleState.nodesTable), now: now, missedHealthChecks: missedHealthChecks, watchingSince: watchingSince).row
        }
    }

    /// One node as `ennio.query.nodes` returns it (and the state buckets keep it): `connected`
    /// and `seconds_since_last_seen` as of `now`, then the members of the stored value. Returns
    /// the record too, `nil` for a row without one (its value as stored is the row then).
    static func nodeRow(
        _ row: CheckpointRow, now: EventTimestamp, missedHealthChecks: Int, watchingSince: EventTimestamp
    ) throws -> (row: [UInt8], record: NodeRecord?) {
        let value = row.value ?? []
        var node = LifecycleState(missedHealthChecks: missedHealthChecks, watchingSince: watchingSince)
        try node.load(row)
        guard let record = node.nodes.values.first else { return (value, nil) }
        let connected = record.isConnected(at: now, missedHealthChecks: missedHealthChecks, watchingSince: watchingSince)
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("connected")
        writer.bool(connected)
        writer.key("seconds_since_last_seen")
        writer.double(LifecycleState.seconds(now - record.lastSeen).rounded(toPlaces: 3))
        var bytes = writer.bytes
        // The stored object's members follow: `{` of the value dropped, a `,` instead.
        if value.count > 2 {
            bytes.append(UInt8(ascii: ","))
            bytes += value.dropFirst()
        } else {
            bytes.append(UInt8(ascii: "}"))
        }
        return (bytes, record)
    }
}
