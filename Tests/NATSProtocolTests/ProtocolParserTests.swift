import NATSProtocol
import Testing

/// A server stream holding one of every operation, and the operations it must parse into.
let everyOperationStream: [UInt8] = Array(
    (
        "INFO {\"server_id\":\"S1\",\"max_payload\":1048576}\r\n"
        + "MSG foo.bar 9 5\r\nhello\r\n"
        + "MSG foo.bar 10 _INBOX.abc 0\r\n\r\n"
        + "HMSG foo 3 24 29\r\nNATS/1.0\r\nA: 1\r\nA: 2\r\n\r\nworld\r\n"
        + "HMSG _INBOX.x.1 4 reply.to 30 30\r\nNATS/1.0 503 No Responders\r\n\r\n\r\n"
        + "PING\r\nPONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\n"
        + "MSG bin 1 4\r\n\r\n\u{0}\u{1}\r\n"
    ).utf8)

let everyOperationExpected: [ServerOperation] = [
    .info("{\"server_id\":\"S1\",\"max_payload\":1048576}"),
    .message(InboundMessage(subject: "foo.bar", sid: 9, payload: Array("hello".utf8))),
    .message(InboundMessage(subject: "foo.bar", sid: 10, replyTo: "_INBOX.abc", payload: [])),
    .message(InboundMessage(subject: "foo", sid: 3, headers: ["A": "1", "A": "2"], payload: Array("world".utf8))),
    .message(
        InboundMessage(
            subject: "_INBOX.x.1",
            sid: 4,
            replyTo: "reply.to",
            headers: {
                var headers = NATSHeaders()
                headers.status = 503
                headers.statusDescription = "No Responders"
                return headers
            }(),
            payload: []
        )),
    .ping, .pong, .ok,
    .error("Authorization Violation"),
    .message(InboundMessage(subject: "bin", sid: 1, payload: [0x0D, 0x0A, 0x00, 0x01])),
]

/// Feeds `chunks` one after another, collecting every operation.
func parse(chunks: [ArraySlice<UInt8>], parser: inout ProtocolParser) throws -> [ServerOperation] {
    var operations: [ServerOperation] = []
    for chunk in chunks {
        parser.append(chunk)
        while let operation = try parser.next() { operations.append(operation) }
    }
    return operations
}

func parseAll(_ chunks: [ArraySlice<UInt8>]) throws -> [ServerOperation] {
    var parser = ProtocolParser()
    let operations = try parse(chunks: chunks, parser: &parser)
    #expect(parser.bufferedByteCount == 0)
    return operations
}

@Suite struct ProtocolParserTests {
    @Test func parsesEveryOperationInOneRead() throws {
        #expect(try parseAll([everyOperationStream[...]]) == everyOperationExpected)
    }

    @Test func parsesOneByteAtATime() throws {
        let chunks = everyOperationStream.indices.map { everyOperationStream[$0...$0] }
        #expect(try parseAll(chunks) == everyOperationExpected)
    }

    @Test func parsesWhenSplitAtEveryPosition() throws {
        for split in 0...everyOperationStream.count {
            let chunks = [everyOperationStream[..<split], everyOperationStream[split...]]
            #expect(try parseAll(chunks) == everyOperationExpected, "split at \(split)")
        }
    }

    @Test func parsesWhenSplitAtEveryPairOfPositions() throws {
        let stream = everyOperationStream
        for first in stride(from: 0, through: stream.count, by: 3) {
            for second in first...stream.count {
                let chunks = [stream[..<first], stream[first..<second], stream[second...]]
                #expect(try parseAll(chunks) == everyOperationExpected, "split at \(first) and \(second)")
            }
        }
    }

    @Test func acceptsLowerCaseOperationsAndExtraWhitespace() throws {
        let stream = Array("ping\r\npong\r\nmsg  a.b\t7   2\r\nhi\r\n+ok\r\n".utf8)
        #expect(
            try parseAll([stream[...]]) == [
                .ping, .pong, .message(InboundMessage(subject: "a.b", sid: 7, payload: Array("hi".utf8))), .ok,
            ])
    }

    /// The usual `MSG`/`HMSG` lines take a shortcut; the same messages written unusually
    /// (lower case, tabs, runs of spaces, a trailing space) take the general path, and both
    /// must read the same. Consecutive messages on one subject, and a different one between.
    @Test func usualAndUnusualMessageLinesReadTheSame() throws {
        let usual = "MSG a.b 7 2\r\nhi\r\nMSG a.b 7 r.1 2\r\nho\r\nMSG c 8 0\r\n\r\nHMSG a.b 9 r 12 14\r\nNATS/1.0\r\n\r\nok\r\nMSG a.b 7 1\r\n!\r\n"
        let unusual = "msg a.b 7 2\r\nhi\r\nMSG  a.b\t7 r.1 2\r\nho\r\nMSG c 8 0 \r\n\r\nhmsg a.b 9 r 12   14\r\nNATS/1.0\r\n\r\nok\r\nMSG\ta.b 7 1\r\n!\r\n"
        let expected: [ServerOperation] = [
            .message(InboundMessage(subject: "a.b", sid: 7, payload: Array("hi".utf8))),
            .message(InboundMessage(subject: "a.b", sid: 7, replyTo: "r.1", payload: Array("ho".utf8))),
            .message(InboundMessage(subject: "c", sid: 8, payload: [])),
            .message(InboundMessage(subject: "a.b", sid: 9, replyTo: "r", headers: NATSHeaders(), payload: Array("ok".utf8))),
            .message(InboundMessage(subject: "a.b", sid: 7, payload: Array("!".utf8))),
        ]
        #expect(try parseAll([Array(usual.utf8)[...]]) == expected)
        #expect(try parseAll([Array(unusual.utf8)[...]]) == expected)
    }

    /// Lines the shortcut declines because they are wrong get the general path's errors.
    @Test(arguments: [
        ("MSG a x 2\r\nhi\r\n", ProtocolError.Code.malformedArguments),
        ("MSG a 1 2 3 4\r\nhi\r\n", .malformedArguments),
        ("MSG a 1\r\n", .malformedArguments),
        ("HMSG a 1 9 2\r\nhi\r\n", .malformedArguments),
        ("HMSG a 1 0 2\r\nhi\r\n", .malformedArguments),
        ("MSG a 1 1234567890123456789\r\n", .malformedArguments),
        ("MSG a 1 1\r\nhi\r\n", .missingPayloadTerminator),
    ])
    func wrongMessageLinesAreRejected(stream: String, code: ProtocolError.Code) {
        var parser = ProtocolParser()
        parser.append(Array(stream.utf8))
        let error = #expect(throws: ProtocolError.self) {
            while try parser.next() != nil {}
        }
        #expect(error?.code == code)
    }

    @Test func returnsNilUntilPayloadIsComplete() throws {
        var parser = ProtocolParser()
        parser.append(Array("MSG a 1 5\r\nhel".utf8))
        #expect(try parser.next() == nil)
        parser.append(Array("lo\r".utf8))
        #expect(try parser.next() == nil)
        parser.append(Array("\n".utf8))
        #expect(try parser.next() == .message(InboundMessage(subject: "a", sid: 1, payload: Array("hello".utf8))))
        #expect(try parser.next() == nil)
    }

    @Test func keepsStateAcrossManyMessagesAndCompaction() throws {
        var stream: [UInt8] = []
        for index in 0..<5000 {
            stream += Array("MSG s.\(index) \(index) 3\r\nabc\r\n".utf8)
        }
        var parser = ProtocolParser()
        var count = 0
        var offset = 0
        while offset < stream.count {
            let end = min(stream.count, offset + 1000)
            parser.append(stream[offset..<end])
            while case .message(let message)? = try parser.next() {
                #expect(message.subject == "s.\(count)")
                #expect(message.sid == UInt64(count))
                count += 1
            }
            offset = end
        }
        #expect(count == 5000)
    }

    @Test(arguments: [
        ("FOO bar\r\n", ProtocolError.Code.unknownOperation),
        ("\r\n", .unknownOperation),
        ("MSG\r\n", .malformedArguments),
        ("MSG a 1\r\n", .malformedArguments),
        ("MSG a b 1\r\n", .malformedArguments),
        ("MSG a 1 x\r\n", .malformedArguments),
        ("MSG a 1 -3\r\n", .malformedArguments),
        ("MSG a 1 r 2 3\r\n", .malformedArguments),
        ("HMSG a 1 5\r\n", .malformedArguments),
        ("HMSG a 1 9 5\r\n", .malformedArguments),
        ("HMSG a 1 0 5\r\n", .malformedArguments),
        ("PING extra\r\n", .malformedArguments),
        ("INFO\r\n", .malformedArguments),
        ("MSG a 1 3\r\nabcXY", .missingPayloadTerminator),
        ("HMSG a 1 15 15\r\nNATS/1.0\r\nX\r\n\r\n\r\n", .malformedHeaders),
        ("HMSG a 1 12 12\r\nHTTP/1.1\r\n\r\n\r\n", .malformedHeaders),
        ("HMSG a 1 16 16\r\nNATS/1.0\r\nA: 1\r\n\r\n", .malformedHeaders),
        ("MSG a 1 999999999999\r\n", .payloadTooLarge),
        ("MSG a 1 99999999999999999999999\r\n", .malformedArguments),
    ])
    func rejectsMalformedInput(input: String, code: ProtocolError.Code) {
        var parser = ProtocolParser()
        parser.append(Array(input.utf8))
        #expect {
            while try parser.next() != nil {}
        } throws: { error in
            (error as? ProtocolError)?.code == code
        }
    }

    @Test func rejectsMalformedInputSplitAtEveryByte() {
        let input = Array("PING\r\nMSG a 1 3\r\nabcXY".utf8)
        var parser = ProtocolParser()
        var sawPing = false
        #expect(throws: ProtocolError(.missingPayloadTerminator, context: Array("XY".utf8))) {
            for byte in input {
                parser.append([byte])
                while let operation = try parser.next() { sawPing = sawPing || operation == .ping }
            }
        }
        #expect(sawPing)
    }

    @Test func rejectsAControlLineWithoutEndBeforeItGrowsPastTheLimit() {
        var parser = ProtocolParser(maximumControlLineLength: 64)
        parser.append(Array(repeating: UInt8(ascii: "A"), count: 65))
        #expect(throws: ProtocolError.self) { try parser.next() }
    }

    /// A control line of exactly the maximum length is accepted however its CR and LF arrive:
    /// together, or split between two reads (found by fuzzing: the CR used to be counted as
    /// part of the line while its LF was still missing). One byte longer is refused either way.
    @Test func aLineOfExactlyTheLimitIsAcceptedWhereverTheInputIsSplit() throws {
        let limit = 64
        let exact = Array("-ERR '".utf8) + Array(repeating: UInt8(ascii: "x"), count: limit - 7) + Array("'\r\n".utf8)
        #expect(exact.count == limit + 2)
        for split in 0...exact.count {
            var parser = ProtocolParser(maximumControlLineLength: limit)
            let operations = try parse(chunks: [exact[..<split], exact[split...]], parser: &parser)
            #expect(operations == [.error(String(repeating: "x", count: limit - 7))], "split at \(split)")
        }
        let tooLong = Array("-ERR '".utf8) + Array(repeating: UInt8(ascii: "x"), count: limit - 6) + Array("'\r\n".utf8)
        for split in 0...tooLong.count {
            var parser = ProtocolParser(maximumControlLineLength: limit)
            #expect(throws: ProtocolError.self, "split at \(split)") { _ = try parse(chunks: [tooLong[..<split], tooLong[split...]], parser: &parser) }
        }
    }

    @Test func rejectsAnAnnouncedPayloadOverTheLimitBeforeItArrives() {
        var parser = ProtocolParser(maximumPayloadLength: 10)
        parser.append(Array("MSG a 1 11\r\n".utf8))
        #expect {
            try parser.next()
        } throws: { ($0 as? ProtocolError)?.code == .payloadTooLarge }
    }

    @Test func errorKeepsTheOffendingBytes() {
        var parser = ProtocolParser()
        parser.append(Array("BOGUS line\r\n".utf8))
        #expect(throws: ProtocolError(.unknownOperation, context: Array("BOGUS line".utf8))) { try parser.next() }
    }

    @Test func neverCrashesOnRandomBytes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("MSGHPINFOK+-ER 0123456789\r\n.ab".utf8)
        for _ in 0..<2000 {
            var parser = ProtocolParser(maximumControlLineLength: 128, maximumPayloadLength: 64)
            let length = Int(generator.next(upperBound: UInt(200)))
            let bytes = (0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] }
            parser.append(bytes)
            var steps = 0
            while steps < 1000, (try? parser.next()) != nil { steps += 1 }
            #expect(steps < 1000)
        }
    }
}
