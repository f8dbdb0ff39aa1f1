#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (swiftc -sanitize=fuzzer, with AddressSanitizer) of
# the code that reads what comes off the wire:
#
#   parser     the NATS protocol parser; also checks that input split at any point parses the
#              same as input in one piece (Tests/Fuzz/ParserFuzz.swift)
#   event      the event JSON decoder; a decoded event must round-trip (EventJSONFuzz.swift)
#   timestamp  the RFC 3339 timestamp parser; a parsed instant must round-trip (TimestampFuzz.swift)
#   http       the HTTP request parser; input split at any point parses the same, and nothing is
#              buffered past the limits (HTTPFuzz.swift)
#
#   bash scripts/fuzz.sh [parser|event|timestamp|http|all] [--seconds N]     (default: all, 60 s each)
#
# The modules are compiled into .build-fuzz/ with swiftc directly (SwiftPM has no fuzzer
# sanitizer): NATSProtocol, EnnioSync, the files of EnnioEvents that do not touch NATS, and the
# files of EnnioHTTP that need neither sockets nor threads.
# Seeds come from Tests/Fuzz/corpus/<target> (kept in the repository); what libFuzzer finds
# goes to .build-fuzz/corpus/<target>, and a crashing input to .build-fuzz/crash-<target>-*.
# Exit status 0 when no target crashed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

targets=()
seconds=60
while (( $# > 0 )); do
    case "$1" in
        parser|event|timestamp|http) targets+=("$1") ;;
        all) targets+=(parser event timestamp http) ;;
        --seconds) seconds="$2"; shift ;;
        *) echo "usage: scripts/fuzz.sh [parser|event|timestamp|http|all] [--seconds N]" >&2; exit 2 ;;
    esac
    shift
done
(( ${#targets[@]} > 0 )) || targets=(parser event timestamp http)

out="$repo_root/.build-fuzz"
mkdir -p "$out/modules"
flags=(-sanitize=fuzzer,address -use-ld=lld -parse-as-library -Onone -g -swift-version 6 -I "$out/modules" -L "$out/modules" -I "$repo_root/Sources/COpenSSL")

# One static library and module per project module.
build_module() {
    local name="$1"; shift
    swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/modules/$name.swiftmodule" \
        -emit-library -static -o "$out/modules/lib$name.a" "$@"
}

echo "fuzz: building the modules in $out" >&2
build_module NATSProtocol Sources/NATSProtocol/*.swift
build_module EnnioSync Sources/EnnioSync/*.swift
# The event model without its NATS-facing files.
mapfile -t event_files < <(grep -L -E '^(public |internal |package )?import (NATSClient|NATSProtocol)' Sources/EnnioEvents/*.swift Sources/EnnioEvents/*/*.swift)
build_module EnnioEvents "${event_files[@]}" -lEnnioSync
# HTTP without the server and the stream queue (sockets, threads).
mapfile -t http_files < <(grep -L -E '^(public |internal |package )?import (EnnioSync|Foundation|Glibc|Synchronization)' Sources/EnnioHTTP/*.swift)
build_module EnnioHTTP "${http_files[@]}"

status=0
for target in "${targets[@]}"; do
    case "$target" in
        parser) source=Tests/Fuzz/ParserFuzz.swift libraries=(-lNATSProtocol) ;;
        event) source=Tests/Fuzz/EventJSONFuzz.swift libraries=(-lEnnioEvents -lEnnioSync) ;;
        timestamp) source=Tests/Fuzz/TimestampFuzz.swift libraries=(-lEnnioEvents -lEnnioSync) ;;
        http) source=Tests/Fuzz/HTTPFuzz.swift libraries=(-lEnnioHTTP) ;;
    esac
    binary="$out/fuzz-$target"
    swiftc "${flags[@]}" -module-name "Fuzz_$target" "$source" "${libraries[@]}" -o "$binary"
    mkdir -p "$out/corpus/$target"
    echo "fuzz: $target for ${seconds}s" >&2
    if ! "$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/crash-$target-" -print_final_stats=1 \
        "$out/corpus/$target" "Tests/Fuzz/corpus/$target" 2> "$out/fuzz-$target.log"; then
        echo "fuzz: $target FAILED (see $out/fuzz-$target.log and $out/crash-$target-*)" >&2
        tail -n 40 "$out/fuzz-$target.log" >&2
        status=1
    else
        grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$out/fuzz-$target.log" | sed "s/^/fuzz: $target: /" >&2 || true
    fi
done
exit "$status"
