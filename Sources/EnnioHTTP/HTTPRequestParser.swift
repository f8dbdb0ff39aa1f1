/// An incremental HTTP/1.x request parser: bytes in, requests out.
///
/// Feed it bytes as they arrive with ``append(_:)``, in chunks of any size and split at any
/// byte, then call ``next()`` until it returns `nil` ("need more bytes"). Bytes already
/// searched for a line end are not searched again. The request line and the header section
/// are checked against their limits as soon as they are too long — before the line ends — so
/// a client cannot make the server buffer more than the limits. A malformed request throws an
/// ``HTTPError``, whose status the connection answers with before it closes; the parser is not
/// used after that.
///
/// Lines end with CRLF; a bare LF is accepted too (RFC 9112 §2.2). Empty lines before a
/// request line are skipped. Bodies need `Content-Length`; `Transfer-Encoding` is refused.
public struct HTTPRequestParser: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Longest request line, in bytes, without its line end (414 past it).
        public var requestLine = 8192
        /// Largest request head — request line, headers, their line ends and the blank line
        /// after them — in bytes (431 past it).
        public var headerSection = 16384
        /// Most header lines (431 past it).
        public var headerCount = 100
        /// Largest body (413 past it).
        public var body = 65536

        public init() {}
    }

    public let limits: Limits

    private var buffer: [UInt8] = []
    /// Where the request being parsed starts (everything before it is done with).
    private var requestStart = 0
    /// Where the line being read starts.
    private var lineStart = 0
    /// Where the search for the next line end resumes.
    private var scanIndex = 0
    private var state = State.requestLine

    private enum State: Sendable {
        case requestLine
        case headers(Head)
        case body(Head, length: Int)
    }

    private struct Head: Sendable {
        var method: String
        var target: String
        var minorVersion: Int
        var headers = HTTPHeaders()
    }

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes received and not yet returned as part of a request.
    public var bufferedByteCount: Int { buffer.count - requestStart }

    /// Whether part of a request has arrived (its first byte or more, beyond blank lines).
    public var isMidRequest: Bool {
        if case .requestLine = state { return buffer[lineStart...].contains { $0 != 0x0D && $0 != 0x0A } }
        return true
    }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The next complete request, or `nil` when more bytes are needed.
    public mutating func next() throws(HTTPError) -> HTTPRequest? {
        while true {
            switch state {
            case .body(let head, let length):
                guard buffer.count - lineStart >= length else { return nil }
                let body = Array(buffer[lineStart..<(lineStart + length)])
                lineStart += length
                return try finish(head, body: body)
            case .requestLine, .headers:
                guard let lineEnd = buffer[scanIndex...].firstIndex(of: 0x0A) else {
                    scanIndex = buffer.count
                    try checkLength(ofLineEndingAt: buffer.count)
                    return nil
                }
                try checkLength(ofLineEndingAt: lineEnd)
                var end = lineEnd
                if end > lineStart, buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[lineStart..<end]
                lineStart = lineEnd + 1
                scanIndex = lineStart
                if let request = try take(line) { return request }
            }
        }
    }

    /// Handles one complete line; returns a request when it was the last line of one.
    private mutating func take(_ line: ArraySlice<UInt8>) throws(HTTPError) -> HTTPRequest? {
        switch state {
        case .requestLine:
            if line.isEmpty {
                // Blank lines before a request are skipped; they still count against the limit.
                return nil
            }
            state = .headers(try Self.parseRequestLine(line))
            return nil
        case .headers(var head):
            guard !line.isEmpty else { return try headersEnded(head) }
            guard head.headers.count < limits.headerCount else {
                throw HTTPError(.tooManyHeaders, "more than \(limits.headerCount) header lines")
            }
            let (name, value) = try Self.parseHeader(line)
            head.headers.add(name, value)
            state = .headers(head)
            return nil
        case .body:
            return nil
        }
    }

    private mutating func headersEnded(_ head: Head) throws(HTTPError) -> HTTPRequest? {
        if head.minorVersion >= 1, head.headers.values("Host").count != 1 {
            throw HTTPError(.missingHost, "an HTTP/1.1 request needs exactly one Host header")
        }
        if !head.headers.values("Transfer-Encoding").isEmpty {
            throw HTTPError(.unsupportedTransferEncoding, "request bodies with Transfer-Encoding are not supported")
        }
        let lengths = head.headers.values("Content-Length").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
        var length = 0
        if let first = lengths.first {
            let text = String(first).trimmingSpaces
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), text.utf8.count <= 18, let value = Int(text) else {
                throw HTTPError(.invalidContentLength, "Content-Length must be a decimal number")
            }
            guard lengths.allSatisfy({ String($0).trimmingSpaces == text }) else {
                throw HTTPError(.invalidContentLength, "Content-Length appears with different values")
            }
            guard value <= limits.body else {
                throw HTTPError(.bodyTooLarge, "the body is \(value) bytes; at most \(limits.body) are accepted")
            }
            length = value
        }
        if length > 0 {
            state = .body(head, length: length)
            return nil
        }
        return try finish(head, body: [])
    }

    private mutating func finish(_ head: Head, body: [UInt8]) throws(HTTPError) -> HTTPRequest {
        state = .requestLine
        requestStart = lineStart
        scanIndex = lineStart
        return try HTTPRequest(method: head.method, target: head.target, minorVersion: head.minorVersion, headers: head.headers, body: body)
    }

    /// Throws if the line running up to `end` (exclusive), or the head it belongs to, is over
    /// its limit.
    private func checkLength(ofLineEndingAt end: Int) throws(HTTPError) {
        if case .requestLine = state {
            // Blank lines before the request line do not make the line itself long.
            let start = buffer[lineStart..<end].firstIndex { $0 != 0x0D && $0 != 0x0A } ?? end
            var length = end - start
            if end > start, buffer[end - 1] == 0x0D { length -= 1 }
            if length > limits.requestLine {
                throw HTTPError(.requestLineTooLong, "the request line is longer than \(limits.requestLine) bytes")
            }
        }
        // The head counts whole, line ends and the closing blank line included; a line still
        // arriving counts as far as it has come.
        if (end < buffer.count ? end + 1 : end) - requestStart > limits.headerSection {
            throw HTTPError(.headersTooLarge, "the request line and headers are longer than \(limits.headerSection) bytes")
        }
    }

    /// Drops the bytes of requests already returned, when that saves enough to be worth a copy.
    private mutating func compact() {
        guard requestStart > 0, requestStart == buffer.count || requestStart >= 4096 else { return }
        buffer.removeSubrange(0..<requestStart)
        lineStart -= requestStart
        scanIndex -= requestStart
        requestStart = 0
    }

    // MARK: - Lines

    /// `method SP request-target SP HTTP-version`.
    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPError) -> Head {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw HTTPError(.malformedRequestLine, "the request line must be METHOD, target and version separated by single spaces")
        }
        guard parts[0].allSatisfy(isTokenByte) else {
            throw HTTPError(.malformedRequestLine, "the method is not a token")
        }
        guard parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPError(.malformedRequestLine, "the request target holds a space, a control character or a non-ASCII byte")
        }
        let version = Array(parts[2])
        let prefix = Array("HTTP/".utf8)
        guard version.count == 8, version.starts(with: prefix), isDigit(version[5]), version[6] == UInt8(ascii: "."), isDigit(version[7]) else {
            throw HTTPError(.malformedRequestLine, "the version must be HTTP/<digit>.<digit>")
        }
        guard version[5] == UInt8(ascii: "1"), version[7] <= UInt8(ascii: "1") else {
            throw HTTPError(.unsupportedVersion, "only HTTP/1.0 and HTTP/1.1 are served")
        }
        return Head(
            method: String(decoding: parts[0], as: UTF8.self),
            target: String(decoding: parts[1], as: UTF8.self),
            minorVersion: Int(version[7] - UInt8(ascii: "0")))
    }

    /// `field-name ":" OWS field-value OWS`.
    static func parseHeader(_ line: ArraySlice<UInt8>) throws(HTTPError) -> (String, String) {
        if line.first == 0x20 || line.first == 0x09 {
            throw HTTPError(.malformedHeader, "folded header lines are not accepted")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
            throw HTTPError(.malformedHeader, "a header line must be name: value")
        }
        let name = line[..<colon]
        guard name.allSatisfy(isTokenByte) else {
            throw HTTPError(.malformedHeader, "a header name must be a token, with no space before the colon")
        }
        var value = line[(colon + 1)...]
        while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
            throw HTTPError(.malformedHeader, "a header value holds a control character")
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// `tchar` of RFC 9110: letters, digits and ``!#$%&'*+-.^_`|~``.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            tokenPunctuation.contains(byte)
        }
    }

    private static let tokenPunctuation = Set("!#$%&'*+-.^_`|~".utf8)
}
