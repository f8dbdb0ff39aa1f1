/// An incremental parser for what a NATS server sends: bytes in, ``ServerOperation``s out.
///
/// Feed it bytes as they arrive with ``append(_:)``, in chunks of any size and split at any
/// byte, then call ``next()`` until it returns `nil` ("need more bytes"). Bytes already
/// searched for a line end are not searched again, and both a control line and an announced
/// payload are checked against their limits as soon as they are known, before the parser waits
/// for (or buffers) more. Malformed input throws a ``ProtocolError``; after that the parser's
/// state is unspecified and the connection it served should be dropped.
public struct ProtocolParser: Sendable {
    /// Longest control line accepted (an `INFO` line of a large cluster can be long).
    public var maximumControlLineLength: Int
    /// Largest payload (headers included) a message may announce.
    public var maximumPayloadLength: Int

    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Where the search for the next line end resumes.
    private var scanIndex = 0
    /// A message whose control line is parsed and whose payload has not fully arrived yet.
    private var pending: PendingMessage?
    /// The subject of the last message read, to share its `String` with the next.
    private var lastSubject = ""

    private struct PendingMessage: Sendable {
        var subject: String
        var sid: UInt64
        var replyTo: String?
        var headerLength: Int
        var totalLength: Int
    }

    public init(maximumControlLineLength: Int = 1 << 20, maximumPayloadLength: Int = 1 << 27) {
        self.maximumControlLineLength = maximumControlLineLength
        self.maximumPayloadLength = maximumPayloadLength
    }

    /// The number of received bytes not yet turned into operations.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Adds bytes received from the server.
    public mutating func append(_ bytes: some Collection<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Adds bytes received from the server, straight from a read buffer.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Forgets everything buffered, as after a reconnect.
    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        readIndex = 0
        scanIndex = 0
        pending = nil
    }

    /// Returns the next complete operation, or `nil` when more bytes are needed.
    public mutating func next() throws(ProtocolError) -> ServerOperation? {
        if let message = pending {
            return try completeMessage(message)
        }
        guard let lineEnd = findLineEnd() else {
            // A CR at the very end may be the first half of the line's CRLF: it is not part of
            // the line, whether its LF comes in this read or the next.
            let unterminated = buffer.count - readIndex - (buffer.last == 0x0D ? 1 : 0)
            if unterminated > maximumControlLineLength {
                throw ProtocolError(.controlLineTooLong, context: buffer[readIndex...])
            }
            return nil
        }
        let contentEnd = lineEnd > readIndex && buffer[lineEnd - 1] == 0x0D ? lineEnd - 1 : lineEnd
        guard contentEnd - readIndex <= maximumControlLineLength else {
            throw ProtocolError(.controlLineTooLong, context: buffer[readIndex..<contentEnd])
        }
        if let message = messageLine(from: readIndex, to: contentEnd) {
            readIndex = lineEnd + 1
            scanIndex = readIndex
            pending = message
            return try completeMessage(message)
        }
        let line = buffer[readIndex..<contentEnd]
        readIndex = lineEnd + 1
        scanIndex = readIndex
        return try parseControlLine(line)
    }

    /// The usual `MSG`/`HMSG` line — upper case, fields separated by single spaces, valid
    /// numbers, within the limits — read straight from the bytes, with no intermediate arrays;
    /// `nil` for anything else, which `parseControlLine` then reads (or rejects with the
    /// right error). A subject equal to the previous message's reuses its `String`.
    private mutating func messageLine(from start: Int, to end: Int) -> PendingMessage? {
        typealias Field = (start: Int, end: Int)
        let fields: (hasHeaders: Bool, fields: [5 of Field], count: Int)? = buffer.withUnsafeBufferPointer { bytes in
            var index = start
            let hasHeaders: Bool
            if end - index > 4, bytes[index] == 0x4D, bytes[index + 1] == 0x53, bytes[index + 2] == 0x47, bytes[index + 3] == 0x20 {
                hasHeaders = false
                index += 4
            } else if end - index > 5, bytes[index] == 0x48, bytes[index + 1] == 0x4D, bytes[index + 2] == 0x53, bytes[index + 3] == 0x47, bytes[index + 4] == 0x20 {
                hasHeaders = true
                index += 5
            } else {
                return nil
            }
            var fields: [5 of Field] = .init(repeating: (0, 0))
            var count = 0
            while index < end {
                guard count < 5 else { return nil }
                let fieldStart = index
                while index < end, bytes[index] != 0x20 {
                    if bytes[index] == 0x09 { return nil }
                    index += 1
                }
                guard index > fieldStart else { return nil }
                fields[count] = (fieldStart, index)
                count += 1
                if index < end {
                    index += 1
                    if index == end { return nil }
                }
            }
            return (hasHeaders, fields, count)
        }
        guard let (hasHeaders, fields, count) = fields else { return nil }
        let sizeCount = hasHeaders ? 2 : 1
        guard count == 2 + sizeCount || count == 3 + sizeCount,
            let sid = decimal(fields[1]),
            let total = decimal(fields[count - 1]), total <= maximumPayloadLength
        else { return nil }
        var headerLength = 0
        if hasHeaders {
            guard let value = decimal(fields[count - 2]), value <= total, value > 0 else { return nil }
            headerLength = value
        }
        let subject = subjectString(fields[0])
        let replyTo: String? = count == 3 + sizeCount ? string(fields[2]) : nil
        return PendingMessage(subject: subject, sid: UInt64(sid), replyTo: replyTo, headerLength: headerLength, totalLength: total)
    }

    /// A decimal number of at most 18 digits in `buffer[field]`, as `parseDecimal` reads it.
    private func decimal(_ field: (start: Int, end: Int)) -> Int? {
        guard field.end > field.start, field.end - field.start <= 18 else { return nil }
        return buffer.withUnsafeBufferPointer { bytes in
            var value = 0
            for index in field.start..<field.end {
                let digit = bytes[index] &- 0x30
                guard digit <= 9 else { return nil }
                value = value &* 10 &+ Int(digit)
            }
            return value
        }
    }

    private func string(_ field: (start: Int, end: Int)) -> String {
        buffer.withUnsafeBufferPointer { bytes in
            String(decoding: UnsafeBufferPointer(rebasing: bytes[field.start..<field.end]), as: UTF8.self)
        }
    }

    /// The subject in `buffer[field]`: the previous message's `String` when the bytes are the
    /// same (a subscription usually receives many messages on one subject), else a new one.
    private mutating func subjectString(_ field: (start: Int, end: Int)) -> String {
        let same: Bool = buffer.withUnsafeBufferPointer { bytes in
            var previous = lastSubject
            return previous.withUTF8 { known in
                guard known.count == field.end - field.start else { return false }
                for offset in 0..<known.count where known[offset] != bytes[field.start + offset] { return false }
                return true
            }
        }
        if same { return lastSubject }
        lastSubject = string(field)
        return lastSubject
    }

    private mutating func compact() {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
        } else if readIndex >= 4096 || readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
        } else {
            return
        }
        scanIndex -= readIndex
        readIndex = 0
    }

    private mutating func findLineEnd() -> Int? {
        let start = Swift.max(scanIndex, readIndex)
        let end = buffer.count
        let found: Int? = buffer.withUnsafeBufferPointer { bytes in
            var index = start
            while index < end {
                if bytes[index] == 0x0A { return index }
                index &+= 1
            }
            return nil
        }
        if found == nil { scanIndex = end }
        return found
    }

    private mutating func parseControlLine(_ line: ArraySlice<UInt8>) throws(ProtocolError) -> ServerOperation? {
        let opEnd = line.firstIndex(where: isSpace) ?? line.endIndex
        let op = line[line.startIndex..<opEnd]
        let rest = line[opEnd...]
        switch op.count {
        case 3 where matches(op, "MSG"):
            return try beginMessage(arguments: rest, hasHeaders: false, line: line)
        case 4 where matches(op, "HMSG"):
            return try beginMessage(arguments: rest, hasHeaders: true, line: line)
        case 4 where matches(op, "PING"):
            try expectNoArguments(rest, line: line)
            return .ping
        case 4 where matches(op, "PONG"):
            try expectNoArguments(rest, line: line)
            return .pong
        case 3 where matches(op, "+OK"):
            try expectNoArguments(rest, line: line)
            return .ok
        case 4 where matches(op, "INFO"):
            let json = rest.trimmingSpaces()
            guard !json.isEmpty else { throw ProtocolError(.malformedArguments, context: line) }
            return .info(String(decoding: json, as: UTF8.self))
        case 4 where matches(op, "-ERR"):
            var text = rest.trimmingSpaces()
            if text.count >= 2, text.first == UInt8(ascii: "'"), text.last == UInt8(ascii: "'") {
                text = text.dropFirst().dropLast()
            }
            return .error(String(decoding: text, as: UTF8.self))
        default:
            throw ProtocolError(.unknownOperation, context: line)
        }
    }

    private mutating func beginMessage(
        arguments: ArraySlice<UInt8>,
        hasHeaders: Bool,
        line: ArraySlice<UInt8>
    ) throws(ProtocolError) -> ServerOperation? {
        let fields = splitFields(arguments)
        let sizeCount = hasHeaders ? 2 : 1
        guard fields.count == 2 + sizeCount || fields.count == 3 + sizeCount,
            let sidValue = parseDecimal(fields[1])
        else { throw ProtocolError(.malformedArguments, context: line) }

        let replyTo: String? = fields.count == 3 + sizeCount ? String(decoding: fields[2], as: UTF8.self) : nil
        let sizes = fields.suffix(sizeCount)
        guard let total = parseDecimal(sizes[sizes.endIndex - 1]) else {
            throw ProtocolError(.malformedArguments, context: line)
        }
        var headerLength = 0
        if hasHeaders {
            guard let value = parseDecimal(sizes[sizes.startIndex]), value <= total, value > 0 else {
                throw ProtocolError(.malformedArguments, context: line)
            }
            headerLength = value
        }
        guard total <= maximumPayloadLength else {
            throw ProtocolError(.payloadTooLarge, context: line)
        }
        let message = PendingMessage(
            subject: String(decoding: fields[0], as: UTF8.self),
            sid: UInt64(sidValue),
            replyTo: replyTo,
            headerLength: headerLength,
            totalLength: total
        )
        pending = message
        return try completeMessage(message)
    }

    private mutating func completeMessage(_ message: PendingMessage) throws(ProtocolError) -> ServerOperation? {
        let payloadStart = readIndex
        let payloadEnd = payloadStart + message.totalLength
        guard buffer.count >= payloadEnd + 2 else { return nil }
        guard buffer[payloadEnd] == 0x0D, buffer[payloadEnd + 1] == 0x0A else {
            throw ProtocolError(.missingPayloadTerminator, context: buffer[payloadEnd..<(payloadEnd + 2)])
        }
        var headers: NATSHeaders?
        if message.headerLength > 0 {
            headers = try NATSHeaders.parse(buffer[payloadStart..<(payloadStart + message.headerLength)])
        }
        let payload = buffer.withUnsafeBufferPointer { bytes in
            Array(UnsafeBufferPointer(rebasing: bytes[(payloadStart + message.headerLength)..<payloadEnd]))
        }
        pending = nil
        readIndex = payloadEnd + 2
        scanIndex = readIndex
        return .message(
            InboundMessage(
                subject: message.subject,
                sid: message.sid,
                replyTo: message.replyTo,
                headers: headers,
                payload: payload
            ))
    }

    private func expectNoArguments(_ rest: ArraySlice<UInt8>, line: ArraySlice<UInt8>) throws(ProtocolError) {
        guard rest.allSatisfy(isSpace) else { throw ProtocolError(.malformedArguments, context: line) }
    }
}

private func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

/// ASCII case-insensitive comparison of an operation name with an upper-case literal.
private func matches(_ bytes: ArraySlice<UInt8>, _ name: StaticString) -> Bool {
    guard bytes.count == name.utf8CodeUnitCount else { return false }
    let expected = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
    var offset = 0
    for byte in bytes {
        let upper = (byte >= 0x61 && byte <= 0x7A) ? byte - 0x20 : byte
        if upper != expected[offset] { return false }
        offset += 1
    }
    return true
}

/// Splits on runs of spaces and tabs. A `MSG`/`HMSG` line has at most five fields; the
/// common case is found without allocating more than the result.
private func splitFields(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
    var fields: [ArraySlice<UInt8>] = []
    fields.reserveCapacity(5)
    var index = bytes.startIndex
    let end = bytes.endIndex
    while index < end {
        while index < end, isSpace(bytes[index]) { index += 1 }
        guard index < end else { break }
        let start = index
        while index < end, !isSpace(bytes[index]) { index += 1 }
        fields.append(bytes[start..<index])
    }
    return fields
}
