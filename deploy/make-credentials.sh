#!/usr/bin/env bash
# Makes the credentials of a deployment: one NKEY user per role, and the server's authorization
# block that gives each its permissions.
#
#   deploy/make-credentials.sh [--out DIR] HOST...
#
# HOST...: the hosts that run a node agent (letters, digits, _ and -), one user each.
# DIR (default deploy/secrets): where it writes, creating it with mode 0700:
#
#   coordinator.nk  operator.nk  reader.nk  agent-HOST.nk   NKEY seeds (secrets: each goes to
#                                                            the machine of its user only)
#   *.pub                                                   their public keys
#   auth.conf                                               authorization { users = [...] },
#                                                            included by deploy/nats-server.conf
#
# Seeds that exist already are kept, so running it again with one more host adds that host and
# changes no one else's key; delete a seed to replace it. auth.conf is always written anew, from
# the seeds present and the hosts named (an agent left out is no longer let in).
#
# The keys are made by `ennio keys generate`: $ENNIO if set (a command, e.g.
# ENNIO="docker run --rm ennio-events"), else .build/release/ennio, .build/debug/ennio or
# ennio on PATH.
#
# The roles (each connects with its own --nkey FILE and --inbox-prefix _INBOX.USER):
#   coordinator    reads the stream through its durable consumer, subscribes to ennio.>,
#                  publishes events of its own (all_complete, node_disconnected, replays) and
#                  query replies; the only user that may subscribe to ennio.query.>
#   agent-HOST     publishes ennio.node.HOST.> and the categories whose subjects carry a project
#                  (sessions, pr, ci, review, merge, reactions, rollout, run; not the rollout
#                  events only the coordinator or an operator make), subscribes to
#                  ennio.commands.>; may not publish commands
#   operator       publishes ennio.commands.>, queries and rollout clearances; subscribes to
#                  ennio.> (not queries)
#   reader         subscribes to ennio.> (not queries) and queries; publishes nothing else
#   (operator and reader also watch and read the state buckets and find the service; only the
#   coordinator writes the buckets and answers the service's $SRV requests)
# Each user receives replies only on its own inbox prefix, _INBOX.USER.>, so that no one reads
# the answers, acknowledgements and stream deliveries meant for someone else.
set -euo pipefail
set -f  # subjects are not file names

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo_root/deploy/secrets"
hosts=()

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

while (($# > 0)); do
    case "$1" in
        --out) (($# >= 2)) || usage; out="$2"; shift 2 ;;
        --help | -h) usage ;;
        -*) echo "make-credentials: unknown option $1" >&2; exit 2 ;;
        *) hosts+=("$1"); shift ;;
    esac
done
((${#hosts[@]} > 0)) || { echo "make-credentials: name the agents' hosts (deploy/make-credentials.sh --help)" >&2; exit 2; }
for host in "${hosts[@]}"; do
    [[ "$host" =~ ^[A-Za-z0-9_-]{1,100}$ ]] || { echo "make-credentials: $host is not a host name (letters, digits, _ and -)" >&2; exit 2; }
done

if [[ -n "${ENNIO:-}" ]]; then
    read -r -a ennio <<< "$ENNIO"
elif [[ -x "$repo_root/.build/release/ennio" ]]; then
    ennio=("$repo_root/.build/release/ennio")
elif [[ -x "$repo_root/.build/debug/ennio" ]]; then
    ennio=("$repo_root/.build/debug/ennio")
elif command -v ennio > /dev/null; then
    ennio=(ennio)
else
    echo "make-credentials: no ennio to make keys with: build it (swift build) or set ENNIO" >&2
    exit 1
fi

umask 077
mkdir -p "$out"
chmod 700 "$out"

# A user's seed and public key, made once.
user_key() {  # user
    local user=$1 key
    if [[ ! -s "$out/$user.nk" || ! -s "$out/$user.pub" ]]; then
        key="$("${ennio[@]}" keys generate --kind user)" || { echo "make-credentials: ennio keys generate failed" >&2; exit 1; }
        [[ "$(sed -n 1p <<< "$key")" == SU* && "$(sed -n 2p <<< "$key")" == U* ]] \
            || { echo "make-credentials: ennio keys generate printed no user key" >&2; exit 1; }
        sed -n 1p <<< "$key" > "$out/$user.nk"
        sed -n 2p <<< "$key" > "$out/$user.pub"
        # Readable by the unprivileged user of a container it is mounted into (the directory
        # keeps everyone else out on this machine).
        chmod 644 "$out/$user.nk" "$out/$user.pub"
        echo "make-credentials: made $user ($out/$user.nk)" >&2
    fi
    cat "$out/$user.pub"
}

quoted_list() {  # subject...
    local first=1 subject
    printf '['
    for subject in "$@"; do
        ((first)) || printf ', '
        printf '"%s"' "$subject"
        first=0
    done
    printf ']'
}

# The event categories whose subjects carry a project (a session's, a rollout's channel, a
# run's): what agents publish. Only the coordinator's reducer publishes rollout_terminal, and
# only an operator an operator_clearance.
project_categories=(sessions pr ci review merge reactions rollout run)
reserved_for_coordinator=("ennio.rollout.*.terminal")
reserved_for_operator=("ennio.rollout.*.operator_clearance")
stream=ENNIO_EVENTS
# The coordinators' durable consumers: ennio-coordinator, or ennio-coordinator-NAME for each
# of several (`ennio coordinator --name NAME`). A subject token cannot be matched by prefix, so
# the coordinator user may use any consumer of the event stream (and delete one, which a
# coordinator does to read the stream again in order after a gap).
consumer='*'
# The coordinator's tables as Key-Value buckets (see the README): it makes and writes them; the
# operator and readers watch and read them.
buckets=(ENNIO_SESSIONS ENNIO_NODES)
bucket_read=""   # a bucket's info, a watch (an ordered consumer and its flow control), a get
bucket_write=""  # making it, bringing its configuration to ours, its values
for bucket in "${buckets[@]}"; do
    kv="KV_$bucket"
    bucket_read+="\$JS.API.STREAM.INFO.$kv \$JS.API.CONSUMER.CREATE.$kv \$JS.API.CONSUMER.CREATE.$kv.> \$JS.API.CONSUMER.DELETE.$kv.> \$JS.API.DIRECT.GET.$kv.> \$JS.API.STREAM.MSG.GET.$kv \$JS.FC.$kv.> "
    bucket_write+="\$JS.API.STREAM.CREATE.$kv \$JS.API.STREAM.UPDATE.$kv \$KV.$bucket.> "
done
# The queries are the NATS service ennio-coordinator: its discovery subjects ($SRV.PING, INFO,
# STATS) are the coordinator's to answer and everyone else's to ask.
service_discovery="\$SRV.>"

# An entry of authorization.users: the user's key, the subjects it may publish to (and those it
# may not among them), those it may subscribe to (and not), whether it may answer requests.
user_entry() {  # user, publish, publish denied, subscribe, subscribe denied, responses
    local user=$1 publish=$2 publish_deny=$3 subscribe=$4 subscribe_deny=$5 responses=$6 key
    key="$(user_key "$user")"
    # shellcheck disable=SC2086 # word splitting of the subject lists is intended
    {
        echo "    # $user"
        echo "    { nkey: \"$key\", permissions: {"
        echo "        publish: { allow: $(quoted_list $publish)$([[ -n "$publish_deny" ]] && echo ", deny: $(quoted_list $publish_deny)") },"
        echo "        subscribe: { allow: $(quoted_list $subscribe)$([[ -n "$subscribe_deny" ]] && echo ", deny: $(quoted_list $subscribe_deny)") },"
        echo "        allow_responses: $responses } }"
    }
}

events=""
for category in "${project_categories[@]}"; do events+="ennio.$category.> "; done
{
    echo "# The users of an Ennio Events deployment and their permissions, written by"
    echo "# deploy/make-credentials.sh $(date -u +%Y-%m-%dT%H:%M:%SZ); included by nats-server.conf."
    echo "# Regenerate it rather than editing it: deploy/make-credentials.sh [--out DIR] HOST..."
    echo "authorization {"
    echo "  users = ["
    user_entry coordinator \
        "$events ennio.lifecycle.> ennio.node.> \
\$JS.API.STREAM.INFO.$stream \$JS.API.STREAM.CREATE.$stream \$JS.API.STREAM.UPDATE.$stream \
\$JS.API.CONSUMER.CREATE.$stream.$consumer \$JS.API.CONSUMER.INFO.$stream.$consumer \
\$JS.API.CONSUMER.DELETE.$stream.$consumer \
\$JS.API.CONSUMER.MSG.NEXT.$stream.$consumer \$JS.ACK.$stream.$consumer.> $bucket_read $bucket_write" "" \
        "ennio.> _INBOX.coordinator.> $service_discovery" "" true
    for host in "${hosts[@]}"; do
        user_entry "agent-$host" \
            "ennio.node.$host.> $events \$JS.API.STREAM.INFO.$stream" "${reserved_for_coordinator[*]} ${reserved_for_operator[*]}" \
            "ennio.commands.> _INBOX.agent-$host.>" "" false
    done
    user_entry operator "ennio.commands.> ennio.query.> ${reserved_for_operator[*]} $bucket_read $service_discovery" "" "ennio.> _INBOX.operator.>" "ennio.query.>" false
    user_entry reader "ennio.query.> $bucket_read $service_discovery" "" "ennio.> _INBOX.reader.>" "ennio.query.>" false
    echo "  ]"
    echo "}"
} > "$out/auth.conf.new"
chmod 644 "$out/auth.conf.new"
mv "$out/auth.conf.new" "$out/auth.conf"
echo "make-credentials: wrote $out/auth.conf (coordinator, ${hosts[*]/#/agent-}, operator, reader)" >&2
