#!/usr/bin/env bash
# Benchmarks our Swift client (`ennio bench`) side by side with the C client (libnats,
# Benchmarks/c/natsbench.c) against one local nats-server, and prints a table of medians.
#
#   bash scripts/bench.sh                 # 9 rounds (about 4 minutes plus the build)
#   ROUNDS=3 bash scripts/bench.sh        # fewer rounds
#   ONLY=tls bash scripts/bench.sh        # only the TLS figures
#   ONLY=cluster bash scripts/bench.sh    # only the JetStream cluster figures
#
# The TLS figures run against a second nats-server with a TLS block, using certificates of a
# private CA the script makes with openssl in $SCRATCH/tls: `ennio bench … --tlsca` beside
# natsbench with NATS_CA (libnats built with OpenSSL, as Debian's is).
#
# Counts can be changed with PUB16_COUNT, PUB512_COUNT, PUBSUB_COUNT, REQ_COUNT, JS_COUNT,
# KV_COUNT, ORDERED_COUNT, OBJECT_SIZE, EVENTS_COUNT, CODEC_COUNT, INGEST_COUNT, STORE_LARGE_COUNT, REDUCERS_COUNT,
# TLS_PUB16_COUNT, TLS_PUB512_COUNT and TLS_PUBSUB_COUNT. Raw RESULT lines are kept in $SCRATCH/bench-results.txt.
# The coordinator at scale (`ennio bench scale`, once, after the rounds): SCALE_SIZES (events,
# default 10000,100000,1000000,10000000; `none` to skip), SCALE_SESSIONS (default
# 1000,10000,100000) and SCALE_HOSTS (hosts per rollout of the families' restart figure, default
# 10,100,1000,10000). The largest size takes about 5 GB of temporary disk and several minutes.
# The JetStream cluster (after the rounds): three nats-servers clustered on loopback, each with
# JetStream in a temporary directory. CLUSTER_ROUNDS times (default 3) the coordinator's ingest
# of CLUSTER_INGEST_COUNT events (default INGEST_COUNT) through the event stream with three
# copies (ingest_js_r3), with one copy on the same cluster (ingest_js_r1) and on the single
# server (ingest_js); then once a coordinator started empty catching up with CATCHUP_COUNT events
# in the three-copy stream (default 1000000, about 1.5 GB of temporary disk; `none` to skip).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

ROUNDS="${ROUNDS:-9}"
SCRATCH="${SCRATCH:-.build-bench}"
PUB16_COUNT="${PUB16_COUNT:-2000000}"
PUB512_COUNT="${PUB512_COUNT:-500000}"
PUBSUB_COUNT="${PUBSUB_COUNT:-1000000}"
REQ_COUNT="${REQ_COUNT:-10000}"
JS_COUNT="${JS_COUNT:-200000}"
# Key-Value put and get round trips (each), and messages read by an ordered consumer.
KV_COUNT="${KV_COUNT:-10000}"
ORDERED_COUNT="${ORDERED_COUNT:-500000}"
# One object store round trip of this many bytes (Swift only: libnats has no object store).
OBJECT_SIZE="${OBJECT_SIZE:-52428800}"
EVENTS_COUNT="${EVENTS_COUNT:-500000}"
CODEC_COUNT="${CODEC_COUNT:-500000}"
REDUCERS_COUNT="${REDUCERS_COUNT:-1000000}"
INGEST_COUNT="${INGEST_COUNT:-100000}"
# The store alone into a table that grows to this many rows: how insert rates hold up as the
# history grows.
STORE_LARGE_COUNT="${STORE_LARGE_COUNT:-1000000}"
TLS_PUB16_COUNT="${TLS_PUB16_COUNT:-1000000}"
TLS_PUB512_COUNT="${TLS_PUB512_COUNT:-300000}"
TLS_PUBSUB_COUNT="${TLS_PUBSUB_COUNT:-500000}"
ONLY="${ONLY:-all}"
case "$ONLY" in all|tls|cluster) ;; *) echo "bench: ONLY must be all, tls or cluster, not '$ONLY'" >&2; exit 2 ;; esac
CLUSTER_ROUNDS="${CLUSTER_ROUNDS:-3}"
CLUSTER_INGEST_COUNT="${CLUSTER_INGEST_COUNT:-$INGEST_COUNT}"
CATCHUP_COUNT="${CATCHUP_COUNT:-1000000}"
# Rows per transaction for the C store benchmark: the coordinator's default batch size.
STORE_BATCH=8000

# libnats (the C client) from Debian, when missing.
if [[ ! -f /usr/include/nats/nats.h ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "bench: installing libnats-dev from Debian" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnats-dev >/dev/null
    else
        echo "bench: libnats-dev is missing (install it with apt-get as root)" >&2
        exit 1
    fi
fi

bash scripts/install-tools.sh
nats_server="$repo_root/.build-tools/venv/bin/nats-server"

echo "bench: building ennio (release) in $SCRATCH" >&2
swift build -c release --product ennio --scratch-path "$SCRATCH" >&2
ennio="$(swift build -c release --product ennio --scratch-path "$SCRATCH" --show-bin-path)/ennio"

echo "bench: compiling Benchmarks/c/natsbench.c and storebench.c" >&2
mkdir -p "$SCRATCH"
cc -O2 -Wall -o "$SCRATCH/natsbench" Benchmarks/c/natsbench.c -lnats
natsbench="$SCRATCH/natsbench"
cc -O2 -Wall -o "$SCRATCH/storebench" Benchmarks/c/storebench.c -lsqlite3
storebench="$SCRATCH/storebench"

# One nats-server on a free loopback port.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="nats://127.0.0.1:$port"
server_log="$SCRATCH/bench-nats-server.log"
# JetStream on, storing in a temporary directory (the js figure uses a memory stream; the
# coordinator's event stream ENNIO_EVENTS is a file stream).
store_dir="$(mktemp -d)"
"$nats_server" -a 127.0.0.1 -p "$port" -js -sd "$store_dir" >"$server_log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$store_dir"' EXIT
for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# A second server for the TLS figures: a private CA and a server certificate for 127.0.0.1.
tls_dir="$SCRATCH/tls"
mkdir -p "$tls_dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=ennio bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" 2>/dev/null
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' >"$tls_dir/server.ext"
openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" -set_serial 1 -days 30 \
    -extfile "$tls_dir/server.ext" -out "$tls_dir/server.pem" 2>/dev/null
printf 'tls { cert_file: "%s", key_file: "%s", timeout: 5 }\n' "$tls_dir/server.pem" "$tls_dir/server.key" >"$tls_dir/server.conf"
tls_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
tls_url="tls://127.0.0.1:$tls_port"
ca="$tls_dir/ca.pem"
"$nats_server" -a 127.0.0.1 -p "$tls_port" -c "$tls_dir/server.conf" >"$SCRATCH/bench-nats-server-tls.log" 2>&1 &
tls_server_pid=$!
trap 'kill "$server_pid" "$tls_server_pid" 2>/dev/null || true; wait "$server_pid" "$tls_server_pid" 2>/dev/null || true; rm -rf "$store_dir"' EXIT
for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break
    sleep 0.1
done

results="$SCRATCH/bench-results.txt"
: >"$results"

# run <client> <command…>: runs one benchmark, keeps its RESULT lines tagged with the client,
# and records the peak memory (max RSS) of the process. With FIGURE_AS set, the figure is
# recorded under that name (the same program measured at another size).
run() {
    local client="$1"
    shift
    local output
    if ! output="$(/usr/bin/env time -f 'MAXRSS %M' "$@" 2>"$SCRATCH/bench-stderr.txt")"; then
        echo "bench: FAILED: $*" >&2
        cat "$SCRATCH/bench-stderr.txt" >&2
        return 1
    fi
    [[ -n "${FIGURE_AS:-}" ]] && output="$(sed "s/^RESULT [^ ]*/RESULT $FIGURE_AS/" <<<"$output")"
    grep -v '^MAXRSS' "$SCRATCH/bench-stderr.txt" >&2 || true
    local figure
    figure="$(grep '^RESULT ' <<<"$output" | head -1 | awk '{print $2}')"
    grep '^RESULT ' <<<"$output" | sed "s/^RESULT \([^ ]*\) /$client \1 round=$round /" >>"$results"
    local rss
    rss="$(grep '^MAXRSS' "$SCRATCH/bench-stderr.txt" | awk '{print $2}')"
    [[ -n "$rss" ]] && echo "$client $figure round=$round max_rss_kb=$rss" >>"$results"
    grep -v '^RESULT ' <<<"$output" | sed "s/^/  [$client] /" >&2
}

if ! /usr/bin/env time -f '%M' true >/dev/null 2>&1; then
    echo "bench: GNU time is missing; install the Debian package \`time\` to record memory" >&2
    run() {
        local client="$1"
        shift
        local output
        output="$("$@")"
        [[ -n "${FIGURE_AS:-}" ]] && output="$(sed "s/^RESULT [^ ]*/RESULT $FIGURE_AS/" <<<"$output")"
        grep '^RESULT ' <<<"$output" | sed "s/^RESULT \([^ ]*\) /$client \1 round=$round /" >>"$results"
        grep -v '^RESULT ' <<<"$output" | sed "s/^/  [$client] /" >&2
    }
fi

start_time=$(date +%s)
[[ "$ONLY" == cluster ]] && ROUNDS=0
for round in $(seq 1 "$ROUNDS"); do
    echo "bench: round $round of $ROUNDS" >&2
    # TLS: the same programs over TLS, recorded as tls_<figure>.
    for pair in "pub $TLS_PUB16_COUNT 16" "pub $TLS_PUB512_COUNT 512" "pubsub $TLS_PUBSUB_COUNT 16"; do
        read -r mode count size <<<"$pair"
        swift_run=("$ennio" bench "$mode" --count "$count" --size "$size" --server "$tls_url" --tlsca "$ca")
        c_run=(env NATS_CA="$ca" "$natsbench" "$mode" "$tls_url" "$count" "$size")
        if (( round % 2 == 1 )); then
            FIGURE_AS="tls_$mode$size" run swift "${swift_run[@]}"
            FIGURE_AS="tls_$mode$size" run c "${c_run[@]}"
        else
            FIGURE_AS="tls_$mode$size" run c "${c_run[@]}"
            FIGURE_AS="tls_$mode$size" run swift "${swift_run[@]}"
        fi
    done
    [[ "$ONLY" == tls ]] && continue
    # Alternate which client goes first, so neither always gets the warmer server.
    for pair in "pub $PUB16_COUNT 16" "pub $PUB512_COUNT 512" "pubsub $PUBSUB_COUNT 16" "req $REQ_COUNT 16" "js $JS_COUNT 16" "kv $KV_COUNT 16" "ordered $ORDERED_COUNT 16"; do
        read -r mode count size <<<"$pair"
        if (( round % 2 == 1 )); then
            run swift "$ennio" bench "$mode" --count "$count" --size "$size" --server "$url"
            run c "$natsbench" "$mode" "$url" "$count" "$size"
        else
            run c "$natsbench" "$mode" "$url" "$count" "$size"
            run swift "$ennio" bench "$mode" --count "$count" --size "$size" --server "$url"
        fi
    done
    run swift "$ennio" bench objects --size "$OBJECT_SIZE" --server "$url"
    run swift "$ennio" bench events --count "$EVENTS_COUNT" --server "$url"
    run swift "$ennio" bench events --codec-only --count "$CODEC_COUNT"
    run swift "$ennio" bench reducers --count "$REDUCERS_COUNT"
    run swift "$ennio" bench ingest --count "$INGEST_COUNT" --mode both --server "$url"
    if (( round % 2 == 1 )); then
        run swift "$ennio" bench ingest --count "$INGEST_COUNT" --store-only
        run c "$storebench" "$INGEST_COUNT" "$STORE_BATCH"
        FIGURE_AS=store_large run swift "$ennio" bench ingest --count "$STORE_LARGE_COUNT" --store-only
        FIGURE_AS=store_large run c "$storebench" "$STORE_LARGE_COUNT" "$STORE_BATCH"
    else
        run c "$storebench" "$INGEST_COUNT" "$STORE_BATCH"
        run swift "$ennio" bench ingest --count "$INGEST_COUNT" --store-only
        FIGURE_AS=store_large run c "$storebench" "$STORE_LARGE_COUNT" "$STORE_BATCH"
        FIGURE_AS=store_large run swift "$ennio" bench ingest --count "$STORE_LARGE_COUNT" --store-only
    fi
done
SCALE_SIZES="${SCALE_SIZES:-10000,100000,1000000,10000000}"
SCALE_SESSIONS="${SCALE_SESSIONS:-1000,10000,100000}"
SCALE_HOSTS="${SCALE_HOSTS:-10,100,1000,10000}"
if [[ "$SCALE_SIZES" != "none" && "$ONLY" == all ]]; then
    echo "bench: the coordinator at scale (sizes $SCALE_SIZES)" >&2
    round=1
    run swift "$ennio" bench scale --sizes "$SCALE_SIZES" --sessions "$SCALE_SESSIONS" --hosts "$SCALE_HOSTS" --server "$url"
fi

# The JetStream cluster: three servers on loopback, routes between them, JetStream in files.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
cluster_pids=()
cluster_dirs=()
if [[ "$ONLY" != tls ]]; then
    echo "bench: a JetStream cluster of three servers" >&2
    client_ports=() route_ports=() monitor_ports=()
    for i in 0 1 2; do
        client_ports+=("$(free_port)") route_ports+=("$(free_port)") monitor_ports+=("$(free_port)")
    done
    for i in 0 1 2; do
        routes=()
        for j in 0 1 2; do (( j == i )) || routes+=("nats://127.0.0.1:${route_ports[$j]}"); done
        cluster_dirs+=("$(mktemp -d)")
        "$nats_server" -a 127.0.0.1 -p "${client_ports[$i]}" --server_name "bench-$((i + 1))" -js -sd "${cluster_dirs[$i]}" \
            --cluster_name ennio-bench --cluster "nats://127.0.0.1:${route_ports[$i]}" --routes "$(IFS=,; echo "${routes[*]}")" \
            -m "${monitor_ports[$i]}" >"$SCRATCH/bench-cluster-$((i + 1)).log" 2>&1 &
        cluster_pids+=($!)
    done
    trap 'kill "$server_pid" "$tls_server_pid" "${cluster_pids[@]}" 2>/dev/null || true; wait "$server_pid" "$tls_server_pid" "${cluster_pids[@]}" 2>/dev/null || true; rm -rf "$store_dir" "${cluster_dirs[@]}"' EXIT
    cluster_url="nats://127.0.0.1:${client_ports[0]},nats://127.0.0.1:${client_ports[1]},nats://127.0.0.1:${client_ports[2]}"
    # Until the servers have elected a JetStream meta leader, no stream can be made.
    python3 - "${monitor_ports[0]}" <<'PY' || { echo "bench: the cluster elected no JetStream leader" >&2; exit 1; }
import json, sys, time, urllib.request
for _ in range(600):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/jsz" % sys.argv[1], timeout=2) as response:
            if (json.load(response).get("meta_cluster") or {}).get("leader"):
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
    for round in $(seq 1 "$CLUSTER_ROUNDS"); do
        echo "bench: cluster round $round of $CLUSTER_ROUNDS" >&2
        # Alternate the order, so that no figure always gets the warmer machine.
        ingests=("--replicas 3 --server $cluster_url" "--replicas 1 --server $cluster_url" "--server $url")
        (( round % 2 == 0 )) && ingests=("--server $url" "--replicas 1 --server $cluster_url" "--replicas 3 --server $cluster_url")
        for options in "${ingests[@]}"; do
            # shellcheck disable=SC2086 # the options are words
            run swift "$ennio" bench ingest --count "$CLUSTER_INGEST_COUNT" --mode jetstream $options
        done
    done
    if [[ "$CATCHUP_COUNT" != none ]]; then
        echo "bench: a coordinator started empty catches up with $CATCHUP_COUNT events (three copies)" >&2
        round=1
        run swift "$ennio" bench catchup --count "$CATCHUP_COUNT" --replicas 3 --server "$cluster_url"
    fi
fi
elapsed=$(( $(date +%s) - start_time ))

python3 - "$results" "$ROUNDS" "$elapsed" "$STORE_LARGE_COUNT" "$CATCHUP_COUNT" "$CLUSTER_ROUNDS" <<'PY'
import statistics, sys
from collections import defaultdict

path, rounds, elapsed, store_large = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
catchup_count, cluster_rounds = sys.argv[5], sys.argv[6]
values = defaultdict(list)
# (client, figure, key) -> {round: value}, for the ratios of each round's pair of runs.
by_round = defaultdict(dict)
for line in open(path):
    parts = line.split()
    client, figure, round_number = parts[0], parts[1], parts[2].split("=")[1]
    for field in parts[3:]:
        key, value = field.split("=")
        values[(client, figure, key)].append(float(value))
        by_round[(client, figure, key)][round_number] = float(value)

def paired_ratio(figure, key, latency):
    """The median over rounds of Swift/C (C/Swift for latency) within the round: the two runs
    of a round are back to back, so a slow spell of the machine slows both."""
    swift, c = by_round.get(("swift", figure, key), {}), by_round.get(("c", figure, key), {})
    ratios = [(c[r] / swift[r] if latency else swift[r] / c[r]) for r in swift if r in c and swift[r] and c[r]]
    return statistics.median(ratios) if ratios else None

def median(client, figure, key):
    samples = values.get((client, figure, key))
    return statistics.median(samples) if samples else None

def number(value, unit):
    if value is None:
        return "—"
    if unit in ("µs",):
        return f"{value:,.1f}"
    if unit in ("ms", "s"):
        return f"{value:,.2f}"
    if unit == "MiB":
        return f"{value / 1024:,.0f}"
    return f"{value:,.0f}"

rows = [
    ("publish 16 B", "pub16", "msgs_per_sec", "msgs/s", False),
    ("publish 512 B", "pub512", "msgs_per_sec", "msgs/s", False),
    ("publish 512 B", "pub512", "mb_per_sec", "MB/s", False),
    ("pub+sub 16 B (received)", "pubsub16", "msgs_per_sec", "msgs/s", False),
    ("TLS publish 16 B", "tls_pub16", "msgs_per_sec", "msgs/s", False),
    ("TLS publish 512 B", "tls_pub512", "msgs_per_sec", "msgs/s", False),
    ("TLS publish 512 B", "tls_pub512", "mb_per_sec", "MB/s", False),
    ("TLS pub+sub 16 B (received)", "tls_pubsub16", "msgs_per_sec", "msgs/s", False),
    ("request/reply 16 B p50", "req16", "p50_us", "µs", True),
    ("request/reply 16 B p99", "req16", "p99_us", "µs", True),
    ("request/reply 16 B mean", "req16", "mean_us", "µs", True),
    ("JetStream publish 16 B (acknowledged)", "js16", "msgs_per_sec", "msgs/s", False),
    ("Key-Value put 16 B p50", "kvput16", "p50_us", "µs", True),
    ("Key-Value put 16 B mean", "kvput16", "mean_us", "µs", True),
    ("Key-Value get 16 B p50", "kvget16", "p50_us", "µs", True),
    ("Key-Value get 16 B mean", "kvget16", "mean_us", "µs", True),
    ("ordered consumer 16 B (read from a stream)", "ordered16", "msgs_per_sec", "msgs/s", False),
    ("object store 50 MiB put", "objects", "put_mb_per_sec", "MB/s", False),
    ("object store 50 MiB get", "objects", "get_mb_per_sec", "MB/s", False),
    ("events published (EventPublisher)", "events_pub", "events_per_sec", "events/s", False),
    ("EventCodec encode", "codec_encode", "events_per_sec", "events/s", False),
    ("EventCodec decode", "codec_decode", "events_per_sec", "events/s", False),
    ("rollout reducer alone", "reducers_rollouts", "events_per_sec", "events/s", False),
    ("run reducer alone", "reducers_runs", "events_per_sec", "events/s", False),
    ("both reducers, interleaved", "reducers_both", "events_per_sec", "events/s", False),
    ("both reducers, interleaved, per CPU second", "reducers_both", "events_per_cpu_sec", "events/s", False),
    ("coordinator ingest to SQLite, core NATS", "ingest", "events_per_sec", "events/s", False),
    ("coordinator ingest to SQLite, JetStream", "ingest_js", "events_per_sec", "events/s", False),
    ("EventStore.insert alone / the same SQLite inserts in C", "store", "events_per_sec", "events/s", False),
    (f"the same, into a table growing to {store_large:,} rows", "store_large", "events_per_sec", "events/s", False),
]
print()
print(f"Medians of {rounds} rounds ({elapsed} s in all)." if int(rounds) > 0 else f"{elapsed} s in all.")
if int(rounds) > 0:
    print("Ratio: Swift/C for throughput, C/Swift for latency — above 1 means Swift is better;")
    print("of the medians, and the median of each round's ratio (the two runs of a round are back to back).")
    print()
    print("| Figure | Unit | Swift | C (libnats) | Ratio of medians | Median ratio per round |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
for label, figure, key, unit, latency in rows if int(rounds) > 0 else []:
    swift, c = median("swift", figure, key), median("c", figure, key)
    ratio = "—"
    if swift and c:
        ratio = f"{(c / swift if latency else swift / c):.2f}"
    paired = paired_ratio(figure, key, latency)
    paired = f"{paired:.2f}" if paired is not None else "—"
    print(f"| {label} | {unit} | {number(swift, unit)} | {number(c, unit)} | {ratio} | {paired} |")
def scale_table(prefix, keys):
    """One column per size; the last, the largest figure over the smallest (1.00 is flat)."""
    sizes = sorted({int(figure[len(prefix):]) for (client, figure, key) in values if client == "swift" and figure.startswith(prefix) and key != "max_rss_kb"})
    if not sizes:
        return
    print()
    print("| Figure | " + " | ".join(f"{size:,}" for size in sizes) + " | largest / smallest |")
    print("| --- | " + " | ".join("---:" for _ in sizes) + " | ---: |")
    for label, key, unit in keys:
        row = [median("swift", f"{prefix}{size}", key) for size in sizes]
        present = [value for value in row if value]
        ratio = f"{max(present) / min(present):.2f}" if len(present) > 1 else "—"
        print(f"| {label} ({unit}) | " + " | ".join(number(value, unit) if value is not None else "—" for value in row) + f" | {ratio} |")

if any(figure.startswith("scale_") for (_, figure, _) in values):
    print()
    print("The coordinator at scale (`ennio bench scale`), by events stored:")
    scale_table("scale_", [
        ("restart until a query answers", "restart_ms", "ms"),
        ("rollout and run events stored", "family_events", "events"),
        ("checkpoint rows loaded at restart", "rows_loaded", "rows"),
        ("history, last 100 of a project, p50", "project_p50_us", "µs"),
        ("history, last 100 of a project, p99", "project_p99_us", "µs"),
        ("history, last 100 of a session, p50", "session_p50_us", "µs"),
        ("history, last 100 of a session, p99", "session_p99_us", "µs"),
        ("ingest, 80,000 more (store + checkpoint)", "ingest_events_per_sec", "events/s"),
        ("rebuild from the history (linear by design)", "rebuild_s", "s"),
    ])
    print()
    print("Terminal events in one project, by its number of sessions:")
    scale_table("terminal_", [("one terminal event applied", "per_event_us", "µs")])
    print()
    print("Rollouts and runs, 100 of each, by hosts per rollout (every rollout done and pruned):")
    scale_table("families_", [
        ("rollout and run events stored", "events", "events"),
        ("checkpoint rows loaded", "rows_loaded", "rows"),
        ("restart: the checkpoint loaded", "load_ms", "ms"),
        ("before: the reducers rebuilt from their events", "rebuild_ms", "ms"),
    ])

if any(figure.startswith(("ingest_js_r", "catchup")) for (_, figure, _) in values):
    print()
    print(f"The JetStream cluster: three servers on this machine (medians of {cluster_rounds} rounds; the catch-up once):")
    print()
    print("| Figure | events/s | / one server |")
    print("| --- | ---: | ---: |")
    single = median("swift", "ingest_js", "events_per_sec")
    for label, figure in [
        ("coordinator ingest, JetStream, one server", "ingest_js"),
        ("coordinator ingest, JetStream, 3-server cluster, one copy (R1)", "ingest_js_r1"),
        ("coordinator ingest, JetStream, 3-server cluster, three copies (R3)", "ingest_js_r3"),
        ("filling the R3 stream for the catch-up (acknowledged publishes)", "catchup_fill"),
        ("a coordinator started empty catching up (R3)", "catchup_r3"),
    ]:
        rate = median("swift", figure, "events_per_sec")
        if rate is not None:
            relative = f"{rate / single:.2f}" if single and figure.startswith("ingest_js") else "—"
            print(f"| {label} | {number(rate, 'events/s')} | {relative} |")
    rate = median("swift", "catchup_r3", "events_per_sec")
    if rate and catchup_count.isdigit():
        print()
        print(f"Catch-up: {int(catchup_count):,} events in {int(catchup_count) / rate:,.1f} s.")

print()
print("Peak memory (max RSS, MiB, median of rounds):")
print()
print("| Run | Swift | C (libnats) |")
print("| --- | ---: | ---: |")
scale_runs = sorted({figure for (client, figure, key) in values if key == "max_rss_kb" and figure.startswith("scale_")})
for figure in ["pub16", "pub512", "pubsub16", "tls_pub16", "tls_pub512", "tls_pubsub16", "req16", "js16", "kvput16", "ordered16", "objects", "events_pub", "codec_encode", "ingest", "store", "store_large", "ingest_js_r1", "ingest_js_r3", "catchup_fill"] + scale_runs:
    swift, c = median("swift", figure, "max_rss_kb"), median("c", figure, "max_rss_kb")
    if swift is None and c is None:
        continue
    print(f"| {figure} | {number(swift, 'MiB')} | {number(c, 'MiB')} |")
PY
