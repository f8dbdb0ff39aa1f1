import NATSProtocol

/// Opening a connection to one server: TCP, then (when asked for) TLS, then `INFO` →
/// `CONNECT` + `PING` → `PONG`, all on the calling thread (the connection's I/O thread).
extension ConnectionCore {
    /// Connects to `server` and completes the handshake within `options.connectTimeout`.
    ///
    /// - Throws: `.connectionFailed` (unreachable, closed during the handshake), `.timeout`,
    ///   `.protocolViolation` (no `INFO`, bad `INFO`), `.authorizationViolation` and other
    ///   server errors, `.tlsNotSupported` / TLS errors from ``secure(_:for:info:)``.
    func handshake(with server: ServerAddress) throws(NATSError) -> Session {
        let socket = try TCPSocket.connect(host: server.host, port: server.port, timeout: options.connectTimeout)
        var transport: any Transport = socket
        do throws(NATSError) {
            let deadline = ContinuousClock.now + options.connectTimeout
            var parser = ProtocolParser(maximumPayloadLength: Self.handshakePayloadLimit)
            var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)

            func nextOperation() throws(NATSError) -> ServerOperation {
                while true {
                    do {
                        if let operation = try parser.next() { return operation }
                    } catch {
                        throw NATSError(.protocolViolation, "bad handshake from \(server)", underlying: error)
                    }
                    guard transport.waitReadable(until: deadline) else {
                        throw NATSError(.timeout, "no handshake from \(server) within \(options.connectTimeout)")
                    }
                    let count = try readBuffer.withUnsafeMutableBytes { bytes in
                        Result { () throws(NATSError) in try transport.read(into: bytes) }
                    }.get()
                    guard count > 0 else { throw NATSError(.connectionFailed, "\(server) closed the connection") }
                    parser.append(readBuffer[0..<count])
                }
            }

            if wantsTLSFirst(server) {
                transport = try secure(socket, for: server, info: nil)
            }
            guard case .info(let json) = try nextOperation() else {
                throw NATSError(.protocolViolation, "\(server) did not start with INFO")
            }
            var info = try ServerInfo(json: json)
            if !(transport is TCPSocket) {
                // Already secured (TLS first).
            } else if wantsTLS(server, info: info) {
                transport = try secure(socket, for: server, info: info)
            }
            var greeting: [UInt8] = []
            ClientEncoder.connect(try connectInfo(for: server, info: info), into: &greeting)
            ClientEncoder.ping(into: &greeting)
            try transport.write(greeting)
            while true {
                switch try nextOperation() {
                case .pong:
                    // From now on nothing larger than the server's own limit can be a message:
                    // a server that announces more is broken or hostile, not a reason to buffer it.
                    parser.maximumPayloadLength = info.maxPayload
                    return Session(socket: transport, parser: parser, info: info, server: server)
                case .ping:
                    try transport.write(Array("PONG\r\n".utf8))
                case .info(let json):
                    info = try ServerInfo(json: json)
                case .ok, .message:
                    continue
                case .error(let text):
                    throw Self.error(fromServer: text)
                }
            }
        } catch {
            transport.shutdown()
            transport.close()
            if transport !== socket { socket.close() }
            throw error
        }
    }

    /// The largest payload accepted before the server's `INFO` has said its `max_payload`.
    static let handshakePayloadLimit = 64 * 1024

    /// Whether to start TLS before the server's `INFO` (TLS-first, `handshake_first`).
    func wantsTLSFirst(_ server: ServerAddress) -> Bool {
        false
    }

    /// Whether to upgrade to TLS after the server's `INFO`: the URL is `tls://`, the options
    /// ask for TLS, or the server requires it.
    func wantsTLS(_ server: ServerAddress, info: ServerInfo) -> Bool {
        server.usesTLS || info.tlsRequired == true
    }

    /// Runs the TLS handshake over `socket` and returns the secured transport (which owns
    /// `socket` from then on). `info` is `nil` for TLS-first.
    func secure(_ socket: TCPSocket, for server: ServerAddress, info: ServerInfo?) throws(NATSError) -> any Transport {
        throw NATSError(.tlsNotSupported, "\(server) requires TLS, which this client does not support yet")
    }

    /// The `CONNECT` options for `server`, whose `INFO` is `info` (its `nonce` is what a
    /// signature signs).
    func connectInfo(for server: ServerAddress, info: ServerInfo) throws(NATSError) -> ConnectInfo {
        var connect = ConnectInfo()
        connect.name = options.name
        connect.version = NATSClientVersion.current
        connect.echo = options.echo
        connect.tlsRequired = server.usesTLS
        if server.user != nil || server.password != nil {
            connect.user = server.user
            connect.password = server.password
        } else if let token = server.token {
            connect.authToken = token
        } else if let token = options.token {
            connect.authToken = token
        } else {
            connect.user = options.user
            connect.password = options.password
        }
        return connect
    }

    static func error(fromServer text: String) -> NATSError {
        let lower = text.lowercased()
        if lower.contains("permissions violation") {
            return NATSError(.permissionViolation, "the server refused: \(text)")
        }
        if lower.contains("authorization violation") || lower.contains("authentication") {
            return NATSError(.authorizationViolation, "the server refused the credentials: \(text)")
        }
        return NATSError(.serverError, text)
    }
}
