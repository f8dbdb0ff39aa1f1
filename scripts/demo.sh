#!/usr/bin/env bash
# The main job on a fresh machine: start a local nats-server on a free loopback port and run the
# example program against it (subscribe, publish with headers, request/reply), then stop.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-tools.sh >/dev/null
server_bin="$root/.build-tools/venv/bin/nats-server"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$server_bin" -a 127.0.0.1 -p "$port" >"$root/.build-tools/demo-server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.05
done
swift build --product nats-example >/dev/null
"$(swift build --show-bin-path)/nats-example" "nats://127.0.0.1:$port"
