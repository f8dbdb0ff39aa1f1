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
