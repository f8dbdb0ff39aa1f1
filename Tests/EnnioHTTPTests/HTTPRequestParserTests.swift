@testable import EnnioHTTP
import Testing

/// Every parser test runs three ways: all bytes at once, one byte at a time, and split in two
/// at every position.
private func parseAllWays(_ input: String, limits: HTTPRequestParser.Limits = .init()) -> [Result<[HTTPRequest], HTTPError>] {
    let bytes = Array(input.utf8)
    var splits: [[ArraySlice<UInt8>]] = [[bytes[...]], bytes.indices.map { bytes[$0...$0] }]
    for cut in 1..<max(bytes.count, 1) { splits.append([bytes[..<cut], bytes[cut...]]) }
    return splits.map { chunks in
        var parser = HTTPRequestParser(limits: limits)
        var requests: [HTTPRequest] = []
        do throws(HTTPError) {
            for chunk in chunks {
                parser.append(chunk)
                while let request = try parser.next() { requests.append(request) }
            }
            return .success(requests)
        } catch {
            return .failure(error)
        }
    }
}

private func parse(_ input: String, limits: HTTPRequestParser.Limits = .init(), sourceLocation: SourceLocation = #_sourceLocation) throws -> [HTTPRequest] {
    let results = parseAllWays(input, limits: limits)
    let first = try results[0].get()
    for result in results.dropFirst() {
        #expect(try result.get() == first, "the same requests however the bytes are split", sourceLocation: sourceLocation)
    }
    return first
}

private func expectError(_ code: HTTPError.Code, _ input: String, limits: HTTPRequestParser.Limits = .init(), sourceLocation: SourceLocation = #_sourceLocation) {
    for result in parseAllWays(input, limits: limits) {
        switch result {
        case .success(let requests): Issue.record("expected \(code), got \(requests.count) requests", sourceLocation: sourceLocation)
        case .failure(let error): #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        }
    }
}

@Suite struct HTTPRequestParserTests {
    @Test func aRequestWithHeadersAndAQuery() throws {
        let requests = try parse("GET /api/events?project=my%20app&type=ci_failing&x=a+b&empty= HTTP/1.1\r\nHost: localhost:8080\r\nAccept:  application/json \r\nX-Two: 1\r\nx-two: 2\r\n\r\n")
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request.method == "GET")
        #expect(request.path == "/api/events")
        #expect(request.query.map(\.name) == ["project", "type", "x", "empty"])
        #expect(request.queryValue("project") == "my app")
        #expect(request.queryValue("x") == "a b")
        #expect(request.queryValue("empty") == "")
        #expect(request.headers["accept"] == "application/json")
        #expect(request.headers.values("X-TWO") == ["1", "2"])
        #expect(request.minorVersion == 1)
        #expect(request.keepAlive)
        #expect(request.body.isEmpty)
    }

    @Test func pipelinedRequestsComeOutInOrderWithTheirBodies() throws {
        let requests = try parse(
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.0\r\n\r\n")
        #expect(requests.map(\.path) == ["/a", "/b", "/c"])
        #expect(requests[1].body == Array("hello".utf8))
        #expect(requests[2].minorVersion == 0)
        #expect(!requests[2].keepAlive, "HTTP/1.0 closes unless asked to keep alive")
    }

    @Test func bareLineFeedsLeadingBlankLinesAndAbsoluteTargetsAreAccepted() throws {
        let requests = try parse("\r\n\nGET http://example.com:80/metrics?x=1 HTTP/1.1\nHost: example.com\n\n")
        #expect(requests.map(\.path) == ["/metrics"])
        #expect(requests.first?.queryValue("x") == "1")
        #expect(try parse("GET http://example.com HTTP/1.1\r\nHost: e\r\n\r\n").first?.path == "/")
    }

    @Test func connectionHeadersDecideKeepAlive() throws {
        #expect(try parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Close\r\n\r\n").first?.keepAlive == false)
        #expect(try parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").first?.keepAlive == true)
    }

    @Test func malformedRequestsGetTheirOwnError() {
        expectError(.malformedRequestLine, "GET  / HTTP/1.1\r\n\r\n")
        expectError(.malformedRequestLine, "GET /\r\n\r\n")
        expectError(.malformedRequestLine, "G(T / HTTP/1.1\r\n\r\n")
        expectError(.malformedRequestLine, "GET / HTTP/1.1x\r\n\r\n")
        expectError(.malformedRequestLine, "GET /\u{7F} HTTP/1.1\r\n\r\n")
        expectError(.unsupportedVersion, "GET / HTTP/2.0\r\n\r\n")
        expectError(.malformedHeader, "GET / HTTP/1.1\r\nHost : h\r\n\r\n")
        expectError(.malformedHeader, "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n")
        expectError(.malformedHeader, "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{01}b\r\n\r\n")
        expectError(.malformedHeader, "GET / HTTP/1.1\r\nno colon\r\n\r\n")
        expectError(.missingHost, "GET / HTTP/1.1\r\n\r\n")
        expectError(.missingHost, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        expectError(.invalidContentLength, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n")
        expectError(.invalidContentLength, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        expectError(.invalidContentLength, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n")
        expectError(.unsupportedTransferEncoding, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        expectError(.malformedTarget, "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n")
        expectError(.malformedTarget, "GET /a%00 HTTP/1.1\r\nHost: h\r\n\r\n")
        expectError(.malformedTarget, "GET /a%ff HTTP/1.1\r\nHost: h\r\n\r\n")
        expectError(.malformedTarget, "GET nothing HTTP/1.1\r\nHost: h\r\n\r\n")
        expectError(.malformedQuery, "GET /a?x=%4 HTTP/1.1\r\nHost: h\r\n\r\n")
    }

    @Test func errorsCarryTheStatusTheyAreAnsweredWith() {
        #expect(HTTPError.Code.requestLineTooLong.status.code == 414)
        #expect(HTTPError.Code.headersTooLarge.status.code == 431)
        #expect(HTTPError.Code.tooManyHeaders.status.code == 431)
        #expect(HTTPError.Code.bodyTooLarge.status.code == 413)
        #expect(HTTPError.Code.unsupportedVersion.status.code == 505)
        #expect(HTTPError.Code.unsupportedTransferEncoding.status.code == 501)
        #expect(HTTPError.Code.malformedHeader.status.code == 400)
    }

    @Test func limitsHoldExactlyAtTheirEdge() throws {
        var limits = HTTPRequestParser.Limits()
        limits.requestLine = 40
        limits.headerSection = 120
        limits.headerCount = 3
        limits.body = 4
        let line = "GET /" + String(repeating: "a", count: 40 - 14) + " HTTP/1.1"
        #expect(line.utf8.count == 40)
        #expect(try parse(line + "\r\nHost: h\r\n\r\n", limits: limits).count == 1)
        expectError(.requestLineTooLong, "GET /a" + String(repeating: "a", count: 40 - 14) + " HTTP/1.1\r\nHost: h\r\n\r\n", limits: limits)
        expectError(.tooManyHeaders, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits)
        #expect(try parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd", limits: limits).first?.body.count == 4)
        expectError(.bodyTooLarge, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde", limits: limits)
        let head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 120 - 32) + "\r\n\r\n"
        #expect(head.utf8.count == 120)
        #expect(try parse(head, limits: limits).count == 1)
        expectError(.headersTooLarge, "GET / HTTP/1.1\r\nHost: h\r\nX: v" + String(repeating: "v", count: 120 - 32) + "\r\n\r\n", limits: limits)
    }

    /// A line over its limit is refused before it ends: the server never buffers more than
    /// the limit, however long the client keeps sending.
    @Test func overlongLinesAreRefusedBeforeTheyEnd() {
        var parser = HTTPRequestParser()
        parser.append(Array("GET /".utf8))
        var thrown: HTTPError?
        for _ in 0..<10 {
            parser.append([UInt8](repeating: UInt8(ascii: "a"), count: 1000))
            do { _ = try parser.next() } catch { thrown = error; break }
        }
        #expect(thrown?.code == .requestLineTooLong)
        #expect(parser.bufferedByteCount <= 8192 + 1000)

        var headers = HTTPRequestParser()
        headers.append(Array("GET / HTTP/1.1\r\nHost: h\r\nX-Big: ".utf8))
        var headerError: HTTPError?
        for _ in 0..<100 {
            headers.append([UInt8](repeating: UInt8(ascii: "b"), count: 1000))
            do { _ = try headers.next() } catch { headerError = error; break }
        }
        #expect(headerError?.code == .headersTooLarge)
        #expect(headers.bufferedByteCount <= 16384 + 1000)
    }

    @Test func midRequestIsKnownFromTheFirstByte() throws {
        var parser = HTTPRequestParser()
        #expect(!parser.isMidRequest)
        parser.append(Array("\r\n".utf8))
        #expect(try parser.next() == nil)
        #expect(!parser.isMidRequest, "blank lines before a request are not a request")
        parser.append(Array("G".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.isMidRequest)
        parser.append(Array("ET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(try parser.next()?.path == "/")
        #expect(!parser.isMidRequest)
    }

    @Test func percentEncodingRoundTrips() {
        for text in ["plain-text_1.2~", "a b/c?d&e=f%", "1772738703123456789-5f0c2a4e", "ünïcødé"] {
            #expect(PercentDecoding.decode(Array(PercentDecoding.encode(text).utf8), plusIsSpace: true) == text)
        }
        #expect(PercentDecoding.encode("a b") == "a%20b")
    }
}
