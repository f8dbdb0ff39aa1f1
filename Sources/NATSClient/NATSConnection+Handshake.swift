import NATSProtocol

/// Opening a connection to one server: TCP, then (when asked for) TLS, then `INFO` →
/// `CONNECT` + `PING` → `PONG`, all on the calling thread (the connection's I/O thread).
extension ConnectionCore {
    /// Connects to `server` and completes the handshake within `options.connectTimeout`.
    ///
    /// - Throws: `.connectionFailed` (unreachable, closed during the handshake), `.timeout`,
    ///   `.protocolViolation` (no `INFO`, bad `INFO`), `.authorizationViolation` and other
    ///   server errors, TLS errors from ``wantsTLS(_:info:)`` and ``secure(_:for:deadline:)``,
    ///   `.invalidCredentials` from ``connectInfo(for:info:secured:)``.
    func handshake(with server: ServerAddress) throws(NATSError) -> Session {
        let deadline = ContinuousClock.now + options.connectTimeout
        let socket = try TCPSocket.connect(host: server.host, port: server.port, timeout: options.connectTimeout)
        var transport: any Transport = socket
        do throws(NATSError) {
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
                transport = try secure(socket, for: server, deadline: deadline)
            }
            guard case .info(let json) = try nextOperation() else {
                throw NATSError(.protocolViolation, "\(server) did not start with INFO")
            }
            var info = try ServerInfo(json: json)
            if transport === socket, try wantsTLS(server, info: info) {
                transport = try secure(socket, for: server, deadline: deadline)
            }
            let secured = transport !== socket
            var greeting: [UInt8] = []
            ClientEncoder.connect(try connectInfo(for: server, info: info, secured: secured), into: &greeting)
            ClientEncoder.ping(into: &greeting)
            try transport.write(greeting)
            while true {
                switch try nextOperation() {
                case .pong:
                    // From now on nothing larger than the server's own limit can be a message:
                    // a server that announces more is broken or hostile, not a reason to buffer it.
                    parser.maximumPayloadLength = info.maxPayload
                    // A secured server is printed as tls:// and lends TLS to the servers it announces.
                    var connected = server
                    connected.usesTLS = secured
                    return Session(socket: transport, parser: parser, info: info, server: connected)
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
        options.tls.handshakeFirst && options.tls.mode != .disabled
    }

    /// Whether to upgrade to TLS after the server's `INFO`: the URL is `tls://`, the options
    /// ask for TLS, or the server requires it.
    ///
    /// - Throws: `.tlsRequiredByServer` when the server requires TLS and the options disable
    ///   it; `.tlsUnavailable` when TLS is wanted and the server offers none.
    func wantsTLS(_ server: ServerAddress, info: ServerInfo) throws(NATSError) -> Bool {
        let required = info.tlsRequired == true
        if options.tls.mode == .disabled {
            if required { throw NATSError(.tlsRequiredByServer, "\(server) requires TLS, and TLS is disabled in the options") }
            return false
        }
        let wanted = server.usesTLS || options.tls.asksForTLS
        if wanted, !required, info.tlsAvailable != true {
            throw NATSError(.tlsUnavailable, "TLS was asked for, and \(server) does not offer it")
        }
        return wanted || required
    }

    /// Runs the TLS handshake over `socket` and returns the secured transport (which owns
    /// `socket` from then on), within `deadline`.
    func secure(_ socket: TCPSocket, for server: ServerAddress, deadline: ContinuousClock.Instant) throws(NATSError) -> any Transport {
        var tls = options.tls
        if tls.serverName == nil { tls.serverName = server.verificationHost }
        return try TLSTransport.secure(socket, options: tls, host: server.host, server: server.description, deadline: deadline)
    }

    /// The `CONNECT` options for `server`, whose `INFO` is `info` (its `nonce` is what a
    /// signature signs); `secured` says whether TLS is in use.
    ///
    /// - Throws: `.authorizationViolation` when NKEY or JWT credentials are set and the server
    ///   sent no nonce (nothing would prove the key); `.invalidCredentials` from the credentials.
    func connectInfo(for server: ServerAddress, info: ServerInfo, secured: Bool) throws(NATSError) -> ConnectInfo {
        var connect = ConnectInfo()
        connect.name = options.name
        connect.version = NATSClientVersion.current
        connect.echo = options.echo
        connect.tlsRequired = secured
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
        if let credentials = options.credentials {
            guard let nonce = info.nonce, !nonce.isEmpty else {
                throw NATSError(
                    .authorizationViolation,
                    "\(server) sent no nonce to sign, so the \(credentials) cannot be used (the server does not expect NKEY or JWT authentication)"
                )
            }
            let proof = try credentials.proof(signing: nonce)
            connect.jwt = proof.jwt
            connect.nkey = proof.nkey
            connect.signature = proof.signature
        }
        return connect
    }

    static func error(fromServer text: String) -> NATSError {
        let lower = text.lowercased()
        if lower.contains("permissions violation") {
            return NATSError(.permissionViolation, "the server refused: \(text)")
        }
        if lower.contains("user authentication expired") {
            return NATSError(.authenticationExpired, "the server ended the connection: the user's credentials expired (\(text))")
        }
        if lower.contains("user authentication revoked") {
            return NATSError(.authenticationRevoked, "the server ended the connection: the user's credentials were revoked (\(text))")
        }
        if lower.contains("account authentication expired") {
            return NATSError(.accountAuthenticationExpired, "the server ended the connection: the account expired (\(text))")
        }
        if lower.contains("secure connection") && lower.contains("tls required") {
            return NATSError(.tlsRequiredByServer, "the server requires TLS: \(text)")
        }
        if lower.contains("authorization violation") || lower.contains("authentication") {
            return NATSError(.authorizationViolation, "the server refused the credentials: \(text)")
        }
        return NATSError(.serverError, text)
    }
}
