#!/usr/bin/env bash
# Makes a private certificate authority and the NATS server's certificate, for a first try of
# a deployment with TLS. For production use certificates from your own CA or a public one (see
# the README's deployment section): the server needs a certificate and key, the clients the CA
# that signed it.
#
#   deploy/make-certs.sh [--out DIR] [--days N] NAME...
#
# NAME...: every name and address clients use to reach the server (DNS names and IP
# addresses, e.g. nats nats.example.com 10.0.0.5); localhost and 127.0.0.1 are always added.
# DIR (default deploy/secrets/tls), created with mode 0700:
#
#   ca.pem          the CA certificate: give it to every client (--tlsca)
#   ca-key.pem      the CA's private key: keep it, only to make certificates again
#   server-cert.pem the server's certificate (its names as subject alternative names)
#   server-key.pem  the server's private key: on the server's machine only
#
# An existing CA is kept, so the server's certificate can be made again (for more names)
# without giving every client a new CA. Needs the openssl command.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo_root/deploy/secrets/tls"
days=825
names=()

usage() {
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

while (($# > 0)); do
    case "$1" in
        --out) (($# >= 2)) || usage; out="$2"; shift 2 ;;
        --days) (($# >= 2)) || usage; days="$2"; shift 2 ;;
        --help | -h) usage ;;
        -*) echo "make-certs: unknown option $1" >&2; exit 2 ;;
        *) names+=("$1"); shift ;;
    esac
done
((${#names[@]} > 0)) || { echo "make-certs: name the server (deploy/make-certs.sh --help)" >&2; exit 2; }
[[ "$days" =~ ^[0-9]{1,5}$ && "$days" -gt 0 ]] || { echo "make-certs: --days must be a number of days" >&2; exit 2; }
command -v openssl > /dev/null || { echo "make-certs: the openssl command is not installed" >&2; exit 1; }

alternative_names="DNS:localhost,IP:127.0.0.1"
for name in "${names[@]}"; do
    if [[ "$name" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || "$name" == *:* ]]; then
        alternative_names+=",IP:$name"
    elif [[ "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]]; then
        alternative_names+=",DNS:$name"
    else
        echo "make-certs: $name is neither a DNS name nor an IP address" >&2
        exit 2
    fi
done

umask 077
mkdir -p "$out"
chmod 700 "$out"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

if [[ ! -s "$out/ca.pem" || ! -s "$out/ca-key.pem" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
        -days "$days" -subj "/CN=Ennio Events CA" \
        -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$out/ca-key.pem" -out "$out/ca.pem" 2> "$scratch/log" \
        || { cat "$scratch/log" >&2; exit 1; }
    echo "make-certs: made the CA ($out/ca.pem)" >&2
fi

cat > "$scratch/server.ext" << EOF
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $alternative_names
EOF
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "/CN=${names[0]}" -keyout "$scratch/server-key.pem" -out "$scratch/server.csr" 2> "$scratch/log" \
    || { cat "$scratch/log" >&2; exit 1; }
openssl x509 -req -in "$scratch/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
    -CAserial "$scratch/ca.srl" -days "$days" -sha256 -extfile "$scratch/server.ext" -out "$scratch/server-cert.pem" 2> "$scratch/log" \
    || { cat "$scratch/log" >&2; exit 1; }
mv "$scratch/server-key.pem" "$out/server-key.pem"
mv "$scratch/server-cert.pem" "$out/server-cert.pem"
# The server's container reads them as its own user; the directory keeps others out here.
chmod 644 "$out/ca.pem" "$out/server-cert.pem" "$out/server-key.pem"
echo "make-certs: made the server's certificate for $alternative_names ($out/server-cert.pem)" >&2
