import COpenSSL

/// An OpenSSL client context (`SSL_CTX`) made from ``TLSOptions``: trust, client certificate,
/// versions, and the modes ``TLSTransport`` relies on.
///
/// A context is made for each handshake, so that a CA file or client certificate replaced on
/// disk is used from the next reconnect on; each `SSL` keeps its own reference to it.
struct TLSContext: ~Copyable {
    let context: OpaquePointer

    /// - Throws: `.invalidTLSConfiguration` naming the file that cannot be used and why.
    init(_ options: TLSOptions) throws(NATSError) {
        OpenSSLErrors.discard()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw NATSError(.invalidTLSConfiguration, "cannot create a TLS context: \(OpenSSLErrors.take())")
        }
        do {
            try Self.configure(context, options)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        self.context = context
    }

    deinit {
        SSL_CTX_free(context)
    }

    private static func configure(_ context: OpaquePointer, _ options: TLSOptions) throws(NATSError) {
        guard ennio_SSL_CTX_set_min_proto_version(context, options.minimumVersion.protocolNumber) == 1 else {
            throw NATSError(.invalidTLSConfiguration, "OpenSSL refuses \(options.minimumVersion) as the oldest version: \(OpenSSLErrors.take())")
        }
        ennio_SSL_CTX_set_partial_moving_writes(context)
        ennio_SSL_CTX_ignore_unexpected_eof(context)
        // Read whole bursts of records per system call, not one 5-byte header at a time.
        ennio_SSL_CTX_set_read_ahead(context, 1)
        SSL_CTX_set_default_read_buffer_len(context, 64 * 1024)
        // An encrypted key file would make OpenSSL ask for its password on the terminal: fail instead.
        SSL_CTX_set_default_passwd_cb(context) { _, _, _, _ in 0 }

        if options.dangerouslySkipCertificateVerification {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            if let caFile = options.caFile {
                guard SSL_CTX_load_verify_file(context, caFile) == 1 else {
                    throw NATSError(.invalidTLSConfiguration, "cannot load the CA file \(caFile): \(OpenSSLErrors.take())")
                }
            } else if SSL_CTX_set_default_verify_paths(context) != 1 {
                throw NATSError(.invalidTLSConfiguration, "cannot load the system's trust store: \(OpenSSLErrors.take())")
            }
        }

        switch (options.certificateFile, options.keyFile) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw NATSError(.invalidTLSConfiguration, "cannot load the client certificate \(certificate): \(OpenSSLErrors.take())")
            }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                let reasons = OpenSSLErrors.take()
                if reasons.contains("key values mismatch") {
                    throw NATSError(.invalidTLSConfiguration, "the client key \(key) does not belong to the certificate \(certificate)")
                }
                throw NATSError(.invalidTLSConfiguration, "cannot load the client key \(key) (it must be PEM, not encrypted): \(reasons)")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw NATSError(.invalidTLSConfiguration, "the client key \(key) does not belong to the certificate \(certificate)")
            }
        case (_?, nil):
            throw NATSError(.invalidTLSConfiguration, "a client certificate needs its key file too")
        case (nil, _?):
            throw NATSError(.invalidTLSConfiguration, "a client key needs its certificate file too")
        }
    }
}
