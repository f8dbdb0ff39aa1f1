import NATSProtocol
import Testing

func encoded(_ body: (inout [UInt8]) -> Void) -> String {
    var buffer: [UInt8] = []
    body(&buffer)
    return String(decoding: buffer, as: UTF8.self)
}

@Suite struct ClientEncoderTests {
    @Test func publish() {
        #expect(encoded { ClientEncoder.publish(subject: "a.b", payload: Array("hello".utf8), into: &$0) } == "PUB a.b 5\r\nhello\r\n")
        #expect(encoded { ClientEncoder.publish(subject: "a", replyTo: "r.1", payload: [UInt8](), into: &$0) } == "PUB a r.1 0\r\n\r\n")
    }

    @Test func publishWithHeaders() {
        let headers: NATSHeaders = ["A": "1", "A": "2", "Nats-Msg-Id": "x"]
        let text = encoded { ClientEncoder.publish(subject: "s", replyTo: "r", headers: headers, payload: Array("hi".utf8), into: &$0) }
        let block = "NATS/1.0\r\nA: 1\r\nA: 2\r\nNats-Msg-Id: x\r\n\r\n"
        #expect(text == "HPUB s r \(block.utf8.count) \(block.utf8.count + 2)\r\n\(block)hi\r\n")
        #expect(headers.encodedCount == block.utf8.count)
    }

    @Test func headersRoundTripThroughTheParser() throws {
        var headers: NATSHeaders = ["X-Multi": "one", "X-Multi": "two", "Empty": ""]
        headers.status = 408
        headers.statusDescription = "Request Timeout"
        var parser = ProtocolParser()
        var buffer: [UInt8] = []
        ClientEncoder.publish(subject: "s", headers: headers, payload: Array("p".utf8), into: &buffer)
        // A server turns HPUB into HMSG with a sid; rewrite the verb to parse it back.
        #expect(buffer.starts(with: Array("HPUB s ".utf8)))
        parser.append(Array("HMSG s 1 ".utf8) + buffer.dropFirst(7))
        guard case .message(let message)? = try parser.next() else {
            Issue.record("no message parsed")
            return
        }
        #expect(message.headers == headers)
        #expect(message.headers?.values(for: "X-Multi") == ["one", "two"])
        #expect(message.payload == Array("p".utf8))
    }

    @Test func subscribeAndUnsubscribe() {
        #expect(encoded { ClientEncoder.subscribe(subject: "a.*", sid: 1, into: &$0) } == "SUB a.* 1\r\n")
        #expect(encoded { ClientEncoder.subscribe(subject: "a.>", queueGroup: "workers", sid: 42, into: &$0) } == "SUB a.> workers 42\r\n")
        #expect(encoded { ClientEncoder.unsubscribe(sid: 42, into: &$0) } == "UNSUB 42\r\n")
        #expect(encoded { ClientEncoder.unsubscribe(sid: 7, max: 10, into: &$0) } == "UNSUB 7 10\r\n")
    }

    @Test func pingPong() {
        #expect(encoded { ClientEncoder.ping(into: &$0) } == "PING\r\n")
        #expect(encoded { ClientEncoder.pong(into: &$0) } == "PONG\r\n")
    }

    @Test(arguments: [0, 1, 9, 10, 99, 100, 12345, 1_048_576, Int(Int32.max), Int.max])
    func decimalSizes(value: Int) {
        #expect(encoded { ClientEncoder.publish(subject: "s", payload: [UInt8](), into: &$0) } == "PUB s 0\r\n\r\n")
        #expect(encoded { ClientEncoder.unsubscribe(sid: 1, max: value, into: &$0) } == "UNSUB 1 \(value)\r\n")
    }

    @Test func connectCarriesEveryOption() {
        var info = ConnectInfo()
        info.name = "svc \"one\""
        info.user = "u"
        info.password = "p\\w"
        info.echo = false
        let text = encoded { ClientEncoder.connect(info, into: &$0) }
        #expect(text.hasPrefix("CONNECT {") && text.hasSuffix("}\r\n"))
        for field in [
            "\"verbose\":false", "\"pedantic\":false", "\"name\":\"svc \\\"one\\\"\"", "\"lang\":\"swift\"",
            "\"protocol\":1", "\"headers\":true", "\"no_responders\":true", "\"echo\":false",
            "\"user\":\"u\"", "\"pass\":\"p\\\\w\"",
        ] {
            #expect(text.contains(field), "missing \(field) in \(text)")
        }
        #expect(!text.contains("auth_token"))
    }

    @Test func invalidHeaderFieldsAreFound() {
        #expect(NATSHeaders([("Good", "value")]).firstInvalidField == nil)
        #expect(NATSHeaders([("Bad Name", "v")]).firstInvalidField?.name == "Bad Name")
        #expect(NATSHeaders([("Colon:", "v")]).firstInvalidField != nil)
        #expect(NATSHeaders([("", "v")]).firstInvalidField != nil)
        #expect(NATSHeaders([("N", "line\r\nInjected: yes")]).firstInvalidField?.name == "N")
    }
}


@Suite struct ConnectCredentialsTests {
    @Test func jwtNkeyAndSignatureGoInConnect() {
        var info = ConnectInfo()
        info.jwt = "eyJ.a.b"
        info.nkey = "UABC"
        info.signature = "c2ln"
        let json = info.json
        #expect(json.contains("\"jwt\":\"eyJ.a.b\""))
        #expect(json.contains("\"nkey\":\"UABC\""))
        #expect(json.contains("\"sig\":\"c2ln\""))
        #expect(!ConnectInfo().json.contains("sig"))
    }
}
