#!/usr/bin/env bash
# Benchmarks the coordinator's HTTP event stream: `ennio bench sse` with 100 clients reading
# /api/events/stream from one coordinator (core NATS, SQLite in a temporary directory), at a
# few publish rates and as fast as every client takes the events. Prints events/s delivered to
# every client and the publish-to-delivery delay (p50, p99, max).
#
#   bash scripts/bench-sse.sh              # CLIENTS=100, about a minute plus the build
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

CLIENTS="${CLIENTS:-100}"
SCRATCH="${SCRATCH:-.build-bench}"

bash scripts/install-tools.sh
nats_server="$repo_root/.build-tools/venv/bin/nats-server"

echo "bench-sse: building ennio (release) in $SCRATCH" >&2
swift build -c release --product ennio --scratch-path "$SCRATCH" >&2
ennio="$(swift build -c release --product ennio --scratch-path "$SCRATCH" --show-bin-path)/ennio"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
mkdir -p "$SCRATCH"
"$nats_server" -a 127.0.0.1 -p "$port" > "$SCRATCH/bench-sse-nats-server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

url="nats://127.0.0.1:$port"
for run in "--count 20000 --rate 1000" "--count 50000 --rate 5000" "--count 100000 --rate 10000" \
    "--count 150000 --rate 15000" "--count 200000"; do
    # shellcheck disable=SC2086
    "$ennio" bench sse $run --clients "$CLIENTS" --server "$url"
done
