import COpenSSL
import EnnioSync
import Glibc

/// TLS over a ``TCPSocket``: the secured ``Transport``, on the system's OpenSSL 3.
///
/// OpenSSL's `SSL` object must not be used by two threads at once, and the reader thread reads
/// while the writer (or a publisher) writes; so every call into it holds `connection`'s lock,
/// and none blocks: the socket is reached through a BIO of our own that never waits
/// (`MSG_DONTWAIT`, and `MSG_NOSIGNAL` so that a peer gone away is an error, not a SIGPIPE).
/// When OpenSSL wants to read or write more, the lock is released and the thread waits in
/// `poll`, so a reader waiting for the server never holds up a writer.
///
/// Writes may take part of the bytes (`SSL_MODE_ENABLE_PARTIAL_WRITE`), and a write that could
/// not finish may be continued from another address (`SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER`):
/// the outbound buffer moves the unsent bytes to its front, and they are sent next.
final class TLSTransport: Transport {
    private let socket: TCPSocket
    private let connection: Locked<Connection>

    /// What `connection`'s lock guards. `@unchecked Sendable`: its pointers are only used with
    /// the lock held (or, before the transport exists, by the one thread making it).
    private struct Connection: @unchecked Sendable {
        /// The `SSL`, `nil` once closed.
        var ssl: OpaquePointer?
        var method: OpaquePointer?
        var socketState: UnsafeMutablePointer<SocketState>
        /// The server has sent application data: the handshake is confirmed. Until then (TLS
        /// 1.3 lets a server refuse a client certificate after the client's last handshake
        /// message) a TLS failure is a failed handshake.
        var confirmed = false
        /// A failure met while looking for readable bytes, for the next `read` to report.
        var failure: NATSError?
        /// What the last write that stopped early waited for (`POLLIN` only while OpenSSL
        /// must read before it can write).
        var writeWaitsFor = Int16(POLLOUT)
    }

    /// What the BIO callbacks know of the socket.
    private struct SocketState {
        var descriptor: Int32
        var endOfStream = false
        var lastErrno: Int32 = 0
    }

    /// Where the server's name and the host come from, for messages.
    private let server: String

    private init(socket: TCPSocket, connection: Connection, server: String) {
        self.socket = socket
        self.connection = Locked(connection)
        self.server = server
    }

    /// Runs the TLS handshake over `socket` and returns the secured transport, which owns the
    /// socket from then on. On failure the socket is left to the caller.
    ///
    /// - Parameters:
    ///   - host: The host connected to: sent as SNI (unless it is an IP address) and checked
    ///     against the certificate, unless `options.serverName` names another.
    ///   - server: The server as it is printed in messages.
    /// - Throws: `.tlsCertificateNotTrusted`, `.tlsHostnameMismatch`, `.tlsHandshakeFailed`,
    ///   `.invalidTLSConfiguration`, `.timeout`.
    static func secure(
        _ socket: TCPSocket,
        options: TLSOptions,
        host: String,
        server: String,
        deadline: ContinuousClock.Instant
    ) throws(NATSError) -> TLSTransport {
        let context = try TLSContext(options)
        guard let ssl = SSL_new(context.context) else {
            throw NATSError(.invalidTLSConfiguration, "cannot create a TLS session: \(OpenSSLErrors.take())")
        }
        let state = UnsafeMutablePointer<SocketState>.allocate(capacity: 1)
        state.initialize(to: SocketState(descriptor: socket.descriptor))
        let method = makeSocketMethod()
        var connection = Connection(ssl: ssl, method: method, socketState: state)
        guard let method, let bio = BIO_new(method) else {
            Self.release(&connection)
            throw NATSError(.invalidTLSConfiguration, "cannot create the TLS session's socket BIO: \(OpenSSLErrors.take())")
        }
        BIO_set_data(bio, UnsafeMutableRawPointer(state))
        BIO_set_init(bio, 1)
        SSL_set_bio(ssl, bio, bio)

        let name = options.serverName ?? host
        let isAddress = name.isIPAddress
        if !isAddress { _ = ennio_SSL_set_tlsext_host_name(ssl, name) }
        if !options.dangerouslySkipCertificateVerification {
            let parameters = SSL_get0_param(ssl)
            X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            let named = isAddress ? X509_VERIFY_PARAM_set1_ip_asc(parameters, name) : X509_VERIFY_PARAM_set1_host(parameters, name, 0)
            guard named == 1 else {
                Self.release(&connection)
                throw NATSError(.invalidTLSConfiguration, "cannot check certificates for the name \(name.debugDescription)")
            }
        }
        SSL_set_connect_state(ssl)

        while true {
            OpenSSLErrors.discard()
            let result = SSL_do_handshake(ssl)
            if result == 1 { break }
            let events: Int16
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
            case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
            default:
                let error = Self.handshakeError(ssl, state: state.pointee, options: options, name: name, server: server)
                Self.release(&connection)
                throw error
            }
            guard TCPSocket.poll(socket.descriptor, events: events, until: deadline) else {
                Self.release(&connection)
                throw NATSError(.timeout, "the TLS handshake with \(server) did not complete in time")
            }
        }
        return TLSTransport(socket: socket, connection: connection, server: server)
    }

    // MARK: - Transport

    func waitReadable(until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            // Peeking decrypts what has arrived: the bytes on the socket may be a partial record
            // or records without application data (session tickets), which are not "readable".
            let wait = connection.withLock { connection -> Int16? in
                guard let ssl = connection.ssl, connection.failure == nil else { return nil }
                if SSL_pending(ssl) > 0 { return nil }
                var byte: UInt8 = 0
                OpenSSLErrors.discard()
                let result = SSL_peek(ssl, &byte, 1)
                if result > 0 { return nil }
                switch SSL_get_error(ssl, result) {
                case SSL_ERROR_WANT_READ: return Int16(POLLIN)
                case SSL_ERROR_WANT_WRITE: return Int16(POLLOUT)
                case SSL_ERROR_ZERO_RETURN: return nil
                case let code:
                    connection.failure = failure(connection, code: code, during: "reading")
                    return nil
                }
            }
            guard let wait else { return true }
            guard TCPSocket.poll(socket.descriptor, events: wait, until: deadline) else { return false }
        }
    }

    func waitWritable(until deadline: ContinuousClock.Instant) -> Bool {
        let events = connection.withLock { $0.writeWaitsFor }
        return TCPSocket.poll(socket.descriptor, events: events, until: deadline)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(NATSError) -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            let outcome = connection.withLock { connection -> IOOutcome in
                guard let ssl = connection.ssl else { return .endOfStream }
                if let failure = connection.failure { return .failed(failure) }
                var total = 0
                while total < buffer.count {
                    OpenSSLErrors.discard()
                    let chunk = Int32(clamping: buffer.count - total)
                    let result = SSL_read(ssl, buffer.baseAddress! + total, chunk)
                    if result > 0 {
                        total += Int(result)
                        connection.confirmed = true
                        // More only while decrypted or buffered bytes remain: no system call
                        // that would find nothing.
                        if SSL_has_pending(ssl) == 0 { break }
                        continue
                    }
                    if total > 0 { break }
                    switch SSL_get_error(ssl, result) {
                    case SSL_ERROR_WANT_READ: return .wait(Int16(POLLIN))
                    case SSL_ERROR_WANT_WRITE: return .wait(Int16(POLLOUT))
                    case SSL_ERROR_ZERO_RETURN: return .endOfStream
                    case let code:
                        let error = failure(connection, code: code, during: "reading")
                        connection.failure = error
                        return .failed(error)
                    }
                }
                return .done(total)
            }
            switch outcome {
            case .done(let count): return count
            case .endOfStream: return 0
            case .failed(let error): throw error
            case .wait(let events): _ = TCPSocket.poll(socket.descriptor, events: events, until: .now + .seconds(3600))
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(NATSError) {
        var offset = 0
        while offset < bytes.count {
            let outcome = try writeSome(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            offset += outcome.written
            if let events = outcome.wait {
                _ = TCPSocket.poll(socket.descriptor, events: events, until: .now + .seconds(3600))
            }
        }
    }

    func writeAvailable(_ bytes: UnsafeRawBufferPointer) throws(NATSError) -> Int {
        try writeSome(bytes).written
    }

    func shutdown() {
        socket.shutdown()
    }

    func close() {
        connection.withLock { Self.release(&$0) }
        socket.close()
    }

    // MARK: - Internals

    private enum IOOutcome {
        case done(Int)
        case wait(Int16)
        case endOfStream
        case failed(NATSError)
    }

    /// Writes records until OpenSSL takes no more without blocking; returns how many bytes it
    /// took and, if it stopped early, what to wait for.
    private func writeSome(_ bytes: UnsafeRawBufferPointer) throws(NATSError) -> (written: Int, wait: Int16?) {
        guard bytes.count > 0 else { return (0, nil) }
        return try connection.withLock { connection throws(NATSError) -> (written: Int, wait: Int16?) in
            guard let ssl = connection.ssl else { throw NATSError(.connectionClosed, "write failed: the TLS connection is closed") }
            var written = 0
            while written < bytes.count {
                OpenSSLErrors.discard()
                let result = SSL_write(ssl, bytes.baseAddress! + written, Int32(clamping: bytes.count - written))
                if result > 0 {
                    written += Int(result)
                    continue
                }
                switch SSL_get_error(ssl, result) {
                case SSL_ERROR_WANT_WRITE:
                    connection.writeWaitsFor = Int16(POLLOUT)
                    return (written, Int16(POLLOUT))
                case SSL_ERROR_WANT_READ:
                    connection.writeWaitsFor = Int16(POLLIN)
                    return (written, Int16(POLLIN))
                case let code: throw failure(connection, code: code, during: "writing")
                }
            }
            return (written, nil)
        }
    }

    /// The error for a failed `SSL_read`, `SSL_peek` or `SSL_write`.
    private func failure(_ connection: borrowing Connection, code: Int32, during action: String) -> NATSError {
        let errnoValue = connection.socketState.pointee.lastErrno
        if code == SSL_ERROR_SYSCALL {
            let reason = errnoValue != 0 ? String(cString: strerror(errnoValue)) : "the connection was closed"
            return NATSError(.connectionClosed, "\(action) failed: \(reason)")
        }
        let reason = OpenSSLErrors.take()
        if !connection.confirmed {
            return NATSError(.tlsHandshakeFailed, "\(server) refused the TLS connection: \(reason)")
        }
        return NATSError(.connectionClosed, "\(action) failed: TLS error: \(reason)")
    }

    /// Frees the `SSL` (and with it the BIO), the BIO method and the socket state. Idempotent.
    private static func release(_ connection: inout Connection) {
        guard connection.method != nil || connection.ssl != nil else { return }
        if let ssl = connection.ssl { SSL_free(ssl) }
        if let method = connection.method { BIO_meth_free(method) }
        connection.ssl = nil
        connection.method = nil
        connection.socketState.deinitialize(count: 1)
        connection.socketState.deallocate()
    }

    /// Why a handshake failed: the certificate check's verdict if it failed, else OpenSSL's reasons.
    private static func handshakeError(
        _ ssl: OpaquePointer,
        state: SocketState,
        options: TLSOptions,
        name: String,
        server: String
    ) -> NATSError {
        let reasons = OpenSSLErrors.take(fallback: state.lastErrno != 0 ? String(cString: strerror(state.lastErrno)) : "the server closed the connection")
        let verdict = Int32(SSL_get_verify_result(ssl))
        if !options.dangerouslySkipCertificateVerification, verdict != X509_V_OK {
            let leaf = ennio_SSL_peer_leaf_certificate(ssl)
            let subject = leaf.map { describe(X509_get_subject_name($0)) } ?? "(no certificate)"
            let issuer = leaf.map { describe(X509_get_issuer_name($0)) } ?? "(unknown)"
            let why = String(cString: X509_verify_cert_error_string(Int(verdict)))
            if verdict == X509_V_ERR_HOSTNAME_MISMATCH || verdict == X509_V_ERR_IP_ADDRESS_MISMATCH {
                return NATSError(
                    .tlsHostnameMismatch,
                    "the certificate of \(server), \(subject), is not valid for \(name.debugDescription)"
                )
            }
            return NATSError(
                .tlsCertificateNotTrusted,
                "the certificate of \(server), \(subject) issued by \(issuer), is not trusted: \(why)"
            )
        }
        var message = "the TLS handshake with \(server) failed: \(reasons)"
        if options.handshakeFirst {
            message += " (TLS first: is the server's tls block set to handshake_first?)"
        } else if reasons.contains("wrong version number") || reasons.contains("packet length too long") {
            message += " (the server does not speak TLS here)"
        }
        return NATSError(.tlsHandshakeFailed, message)
    }

    /// A certificate name as RFC 2253 text, with anything unprintable escaped (it comes from
    /// the network).
    private static func describe(_ name: OpaquePointer?) -> String {
        guard let name, let memory = BIO_new(BIO_s_mem()) else { return "(no name)" }
        defer { BIO_free(memory) }
        guard X509_NAME_print_ex(memory, name, 0, ennio_XN_FLAG_RFC2253()) >= 0 else { return "(unreadable name)" }
        var bytes = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(memory)))
        let count = bytes.withUnsafeMutableBytes { BIO_read(memory, $0.baseAddress, Int32($0.count)) }
        let text = String(decoding: bytes.prefix(max(0, Int(count))), as: UTF8.self)
        return text.debugDescription
    }

    /// A BIO method over a socket descriptor that never blocks and never raises SIGPIPE.
    private static func makeSocketMethod() -> OpaquePointer? {
        guard let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ennio socket") else { return nil }
        BIO_meth_set_read_ex(method) { bio, buffer, length, readBytes in
            TLSTransport.transfer(bio, readBytes, retry: ennio_BIO_set_retry_read) { descriptor, state in
                let count = recv(descriptor, buffer, length, Int32(MSG_DONTWAIT))
                if count == 0 { state.pointee.endOfStream = true }
                return count
            }
        }
        BIO_meth_set_write_ex(method) { bio, buffer, length, written in
            TLSTransport.transfer(bio, written, retry: ennio_BIO_set_retry_write) { descriptor, _ in
                send(descriptor, buffer, length, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
        }
        BIO_meth_set_ctrl(method) { bio, command, _, _ in
            switch command {
            case BIO_CTRL_FLUSH: return 1
            case BIO_CTRL_EOF:
                guard let bio, let state = BIO_get_data(bio)?.assumingMemoryBound(to: SocketState.self) else { return 1 }
                return state.pointee.endOfStream ? 1 : 0
            default: return 0
            }
        }
        return method
    }

    /// One read or write of a BIO callback: `call` makes the system call (retried on EINTR);
    /// a socket that would block sets the BIO's retry flag, any other error is kept for the
    /// message. Returns 1 with the count in `done`, or 0.
    private static func transfer(
        _ bio: OpaquePointer?,
        _ done: UnsafeMutablePointer<Int>?,
        retry: (OpaquePointer?) -> Void,
        _ call: (Int32, UnsafeMutablePointer<SocketState>) -> Int
    ) -> Int32 {
        done?.pointee = 0
        guard let bio, let state = BIO_get_data(bio)?.assumingMemoryBound(to: SocketState.self) else { return 0 }
        ennio_BIO_clear_retry_flags(bio)
        state.pointee.lastErrno = 0
        while true {
            let count = call(state.pointee.descriptor, state)
            if count > 0 {
                done?.pointee = count
                return 1
            }
            if count == 0 { return 0 }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                retry(bio)
            } else {
                state.pointee.lastErrno = errno
            }
            return 0
        }
    }
}
