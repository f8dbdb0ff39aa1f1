/// A response: a status, headers, and a body that is either bytes or a stream.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    /// Headers besides `Content-Length` and `Connection`, which the server writes itself.
    public var headers: HTTPHeaders
    public var body: Body

    public enum Body: Sendable {
        case bytes([UInt8])
        /// A body of unknown length (server-sent events): the closure runs on the
        /// connection's own thread, writes through the output until it is done or the client
        /// goes away, and the connection closes when it returns.
        case stream(@Sendable (any HTTPStreamOutput) -> Void)
    }

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON body.
    public static func json(_ bytes: [UInt8], status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: .bytes(bytes))
    }

    /// A body of another type, such as `text/html; charset=utf-8`.
    public static func content(_ bytes: [UInt8], type: String, status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": type], body: .bytes(bytes))
    }

    /// The status line and headers, ending with the blank line. `contentLength` is written
    /// when known; `keepAlive` says whether the connection stays open after the body.
    public func head(contentLength: Int?, keepAlive: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status.code) \(Self.clean(status.reason))\r\n"
        for (name, value) in headers {
            text += "\(Self.clean(name)): \(Self.clean(value))\r\n"
        }
        if let contentLength { text += "Content-Length: \(contentLength)\r\n" }
        text += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        text += "\r\n"
        return Array(text.utf8)
    }

    /// Header text with line breaks (and other control characters) turned into spaces, so
    /// that no value can end the header section or add a header of its own.
    static func clean(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return text }
        return String(decoding: text.utf8.map { $0 < 0x20 || $0 == 0x7F ? 0x20 : $0 }, as: UTF8.self)
    }
}

/// Where a streamed body goes: the client's connection.
public protocol HTTPStreamOutput: Sendable {
    /// Sends `bytes`; false once the client is gone or too slow to take them (the write
    /// timed out), after which the stream should end.
    func write(_ bytes: [UInt8]) -> Bool
    /// Whether the client has closed its side (checked without waiting).
    var peerClosed: Bool { get }
    /// Ends the stream from any thread: a write in progress or any later one returns false.
    func close()
    /// Runs `callback` once when the connection closes, for whatever reason (the server
    /// stops, `close()`, the client leaves); at once if it already has.
    func whenClosed(_ callback: @escaping @Sendable () -> Void)
}
