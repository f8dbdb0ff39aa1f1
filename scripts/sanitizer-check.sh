#!/usr/bin/env bash
# Shows that the ThreadSanitizer builds can see a real race, and that the project's lock does
# not make them cry wolf: Tests/Sanitizers/Racy.swift increments a counter from four threads,
# once without a lock (TSan must report a data race) and once through `Locked` from EnnioSync,
# backed by a pthread mutex as in every sanitizer build (TSan must report nothing).
#
#   bash scripts/sanitizer-check.sh        exit status 0 when both hold
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo_root/.build-sanitizer-check"
mkdir -p "$out"
flags=(-sanitize=thread -swift-version 6 -D ENNIO_PTHREAD_LOCKS -I "$out" -L "$out")
swiftc "${flags[@]}" -parse-as-library -module-name EnnioSync -emit-module -emit-module-path "$out/EnnioSync.swiftmodule" \
    -emit-library -static -o "$out/libEnnioSync.a" "$repo_root"/Sources/EnnioSync/*.swift
swiftc "${flags[@]}" "$repo_root/Tests/Sanitizers/Racy.swift" -lEnnioSync -o "$out/racy"
swiftc "${flags[@]}" -D GUARDED "$repo_root/Tests/Sanitizers/Racy.swift" -lEnnioSync -o "$out/guarded"

status=0
TSAN_OPTIONS="halt_on_error=0 exitcode=0" "$out/racy" > "$out/racy.log" 2>&1 || true
if grep -q -E "WARNING: ThreadSanitizer: (data race|Swift access race)" "$out/racy.log"; then
    echo "sanitizer-check: the unguarded counter is reported as a race (as it must be)"
else
    echo "sanitizer-check: FAILED: ThreadSanitizer did not see the deliberate race" >&2
    status=1
fi
if TSAN_OPTIONS="exitcode=66" "$out/guarded" > "$out/guarded.log" 2>&1 && ! grep -q "ThreadSanitizer" "$out/guarded.log"; then
    echo "sanitizer-check: the counter behind Locked gives no report"
else
    echo "sanitizer-check: FAILED: a report for the counter behind Locked:" >&2
    cat "$out/guarded.log" >&2
    status=1
fi
exit "$status"
