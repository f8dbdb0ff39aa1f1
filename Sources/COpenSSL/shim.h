// The system OpenSSL 3 (Debian: libssl-dev), reached through this module map; no Swift package.
// TLS (libssl), Ed25519 signatures for NKEYs, SHA-256 for the object store (libcrypto).
// Functions OpenSSL defines as macros, which Swift cannot call, get small inline wrappers here.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>

// Macros of libssl and libbio, as functions Swift can call.
static inline int ennio_SSL_CTX_set_min_proto_version(SSL_CTX *context, int version) {
    return (int)SSL_CTX_set_min_proto_version(context, version);
}

// Partial writes (a write may take part of the bytes) and retries from another address (the
// caller's buffer moves between a write that could not finish and the next one).
static inline void ennio_SSL_CTX_set_partial_moving_writes(SSL_CTX *context) {
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static inline void ennio_SSL_CTX_set_read_ahead(SSL_CTX *context, int yes) {
    SSL_CTX_set_read_ahead(context, yes);
}

// A peer closing the socket without close_notify reads as the end of the stream, as over TCP.
static inline void ennio_SSL_CTX_ignore_unexpected_eof(SSL_CTX *context) {
    SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

static inline int ennio_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

// The first certificate the peer sent (its own), also when verifying it failed; not owned.
static inline X509 *ennio_SSL_peer_leaf_certificate(const SSL *ssl) {
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    if (chain == NULL || sk_X509_num(chain) < 1) return NULL;
    return sk_X509_value(chain, 0);
}

static inline void ennio_BIO_set_retry_read(BIO *bio) { BIO_set_retry_read(bio); }
static inline void ennio_BIO_set_retry_write(BIO *bio) { BIO_set_retry_write(bio); }
static inline void ennio_BIO_clear_retry_flags(BIO *bio) { BIO_clear_retry_flags(bio); }

// XN_FLAG_RFC2253 is built from casts Swift cannot import.
static inline unsigned long ennio_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
