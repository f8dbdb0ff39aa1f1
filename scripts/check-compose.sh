#!/usr/bin/env bash
# Validates docker-compose.yml with `docker-compose config -q` (no Docker engine needed), then
# checks what it deploys with scripts/check-compose.py (JetStream on a named volume, TLS, a user
# per service).
# Installs Debian's docker-compose package first when it is missing and we are root.
# COMPOSE_ROOT names another folder to check (with docker-compose.yml and deploy/ in it).
# Exit status: 0 when the file is valid and deploys what it must, non-zero (with a message) otherwise.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# COMPOSE_ROOT: another folder holding docker-compose.yml and deploy/ to check (for the tests).
root="${COMPOSE_ROOT:-$repo_root}"
cd "$root" || exit 1
compose_file="$root/docker-compose.yml"

if [[ ! -f "$compose_file" ]]; then
    echo "FAIL: $compose_file does not exist" >&2
    exit 1
fi

if ! command -v docker-compose > /dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get > /dev/null 2>&1; then
        echo "docker-compose is not installed: installing Debian's docker-compose package"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose; }; then
            echo "FAIL: could not install docker-compose with apt-get" >&2
            exit 1
        fi
        hash -r
    else
        echo "FAIL: docker-compose is not installed (as root: apt-get install docker-compose)" >&2
        exit 1
    fi
fi

if ! command -v docker-compose > /dev/null 2>&1; then
    echo "FAIL: docker-compose is still not on PATH after installing it" >&2
    exit 1
fi

if ! output="$(docker-compose -f "$compose_file" config -q 2>&1)"; then
    echo "FAIL: docker-compose config rejects $compose_file:" >&2
    echo "$output" >&2
    exit 1
fi
[[ -n "$output" ]] && echo "$output"
echo "PASS: $compose_file is valid ($(docker-compose version --short 2>/dev/null || echo docker-compose))"

# What it deploys: JetStream on a named volume, TLS, a user per service (docker-compose is
# written in Python, so its YAML reader is at hand).
if ! docker-compose -f "$compose_file" config 2> /dev/null | /usr/bin/python3 "$repo_root/scripts/check-compose.py" "$root"; then
    echo "FAIL: $compose_file does not deploy JetStream, TLS and authorization as it must" >&2
    exit 1
fi
echo "PASS: $compose_file deploys JetStream on a named volume, TLS and a user per service"
exit 0
