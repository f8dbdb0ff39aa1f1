#!/usr/bin/env bash
# Runs the README's walkthrough as written, and checks that it shows what the README says.
#
# The README is the single source: this script extracts its fenced blocks marked
# ```sh walkthrough-<name>``` and runs each in order as its own "terminal":
#   setup       in the clone (install the tools, build); skipped when WALKTHROUGH_BUILT=1
#   1 … 4       long-running terminals (server, coordinator, sub, agent), started in the
#               background; each must print what the README says it prints before the next starts
#   5, 6, 7     commands that run to completion; between them the script waits (with a generous
#               limit) for what the README says happens, since a person types more slowly
# Terminal blocks run in a scratch folder that stands in for the clone: `.build/debug` and
# `.build-tools/venv/bin/nats-server` in it are links to the binaries built here. Two things
# differ from a person's run, so that runs on a shared machine cannot collide: the server's
# port 4222 is replaced by a free one in the blocks' text, and NATS_URL names that port.
#
#   bash scripts/walkthrough.sh        (ENNIO_BIN and NATS_SERVER_BIN may name the binaries;
#                                       WALKTHROUGH_SHOW=1 prints what each terminal showed)
# Exit status 0 when every step did what the README says; 1 with the reason and the output.
set -euo pipefail
# Job control: each background terminal is a process group of its own, stopped as a whole.
set -m

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readme="$repo_root/README.md"
work="$(mktemp -d "${TMPDIR:-/tmp}/ennio-walkthrough.XXXXXX")"
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]+"${pids[@]}"}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "walkthrough: $*" >&2
    local log
    for log in "$work"/terminal-*.log; do
        [[ -f "$log" ]] || continue
        echo "----- ${log##*/}" >&2
        tail -n 40 "$log" >&2
    done
    exit 1
}

# The blocks, one file each: ```sh walkthrough-<name> … ```.
blocks="$work/blocks"
mkdir -p "$blocks"
awk -v dir="$blocks" '
    /^```sh walkthrough-[a-z0-9]+$/ { name = substr($2, length("walkthrough-") + 1); file = dir "/" name ".sh"; next }
    /^```$/ && file != "" { close(file); file = ""; next }
    file != "" { print > file }
' "$readme"
for name in setup 1 2 3 4 5 6 7; do
    [[ -s "$blocks/$name.sh" ]] || fail "README.md has no block \`\`\`sh walkthrough-$name"
done

if [[ "${WALKTHROUGH_BUILT:-}" != 1 ]]; then
    echo "walkthrough: setup (in $repo_root)" >&2
    (cd "$repo_root" && bash -euo pipefail "$blocks/setup.sh") || fail "the setup block failed"
fi

ennio="${ENNIO_BIN:-$repo_root/.build/debug/ennio}"
nats_server="${NATS_SERVER_BIN:-$repo_root/.build-tools/venv/bin/nats-server}"
[[ -x "$ennio" ]] || fail "no ennio binary at $ennio"
[[ -x "$nats_server" ]] || fail "no nats-server at $nats_server"

# The scratch clone.
clone="$work/clone"
mkdir -p "$clone/.build" "$clone/.build-tools/venv/bin"
ln -s "$(dirname "$ennio")" "$clone/.build/debug"
ln -s "$nats_server" "$clone/.build-tools/venv/bin/nats-server"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export NATS_URL="nats://127.0.0.1:$port"
for block in "$blocks"/[0-9].sh; do
    sed -i "s/4222/$port/g" "$block"
done

# Waits until `condition` (a shell command) succeeds, for at most `limit` seconds.
wait_for() {  # description limit condition...
    local description="$1" limit="$2"
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${limit} s waiting for $description"
        sleep 0.2
    done
}

# A long-running terminal: its block in the background, then what it must print.
terminal() {  # name ready-text
    local name="$1" ready="$2" log="$work/terminal-$1.log"
    echo "walkthrough: terminal $name" >&2
    (cd "$clone" && exec bash -euo pipefail "$blocks/$name.sh") >"$log" 2>&1 &
    pids+=("$!")
    wait_for "terminal $name to print \"$ready\"" 60 grep -qF -- "$ready" "$log"
}

# A terminal whose commands run to completion.
commands() {  # name
    local name="$1" log="$work/terminal-$1.log"
    echo "walkthrough: terminal $name" >&2
    (cd "$clone" && bash -euo pipefail "$blocks/$name.sh") >"$log" 2>&1 || fail "the commands of terminal $name failed"
}

expect_in() {  # log text
    grep -qF -- "$2" "$work/terminal-$1.log" || fail "terminal $1 does not show \"$2\""
}

history_has() {  # count: whether the coordinator has stored at least that many events of my-app
    local stored
    stored="$("$ennio" history --project my-app --json 2>/dev/null | grep -c '^{' || true)"
    ((stored >= $1))
}

terminal 1 "Server is ready"
terminal 2 "reading stream ENNIO_EVENTS"
terminal 3 "listening on ennio.>"
terminal 4 "running, health check every"

commands 5
wait_for "the two relayed events in the history" 60 history_has 2
expect_in 3 "session_spawned"
expect_in 3 "ci_failing"

commands 6
wait_for "all_complete in terminal 3" 60 grep -qF "all_complete" "$work/terminal-3.log"

commands 7
expect_in 7 "session_spawned"
expect_in 7 "ci_failing"
expect_in 7 "session_exited"
expect_in 7 "events"
expect_in 7 "s-1"
expect_in 7 "build-server"
expect_in 7 "valid pattern: ennio.ci.my-app.*"
expect_in 7 '"event_type":"ci_failing"'
# What the walkthrough promises along the way: the agent filled in ids and times, the watcher
# shows queries as queries and never calls them malformed events.
grep -q '"id":"[0-9a-f-]\{36\}"' "$work/terminal-7.log" || fail "the replayed events have no UUIDs"
expect_in 3 "query    ennio.query.history"
if grep -qi "malformed" "$work/terminal-3.log"; then fail "terminal 3 reports malformed events"; fi

# Stop the long-running terminals as a person would (Ctrl-C), last started first.
for ((index = ${#pids[@]} - 1; index >= 0; index--)); do
    kill -INT -- "-${pids[index]}" 2>/dev/null || true
    wait "${pids[index]}" 2>/dev/null || true
done
pids=()
expect_in 4 "relayed 2, rejected 0"
if [[ "${WALKTHROUGH_SHOW:-}" == 1 ]]; then
    for name in 2 3 4 5 6 7; do
        echo "----- terminal $name" >&2
        cat "$work/terminal-$name.log" >&2
    done
fi
echo "walkthrough: every step did what the README says" >&2
