#!/usr/bin/env bash
# Checks the README's "Using the package from another package" as written: a new package in a
# temporary folder depends on this one by path (through a folder named ennio-events, as the
# README says to clone it) and builds a target that imports NATSClient.
#
#   bash scripts/use-as-dependency.sh      (about half a minute: it compiles the client once)
# Exit status 0 when the target builds; the build's output otherwise.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ennio-dependency.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# SwiftPM knows a path dependency by its folder's name: the clone is ennio-events.
ln -s "$repo_root" "$work/ennio-events"
mkdir -p "$work/my-tool/Sources/MyTool"
# The manifest and the program, as in the README.
awk '/^```swift dependency-manifest$/ { on = 1; next } /^```$/ { on = 0 } on' "$repo_root/README.md" >"$work/my-tool/Package.swift"
awk '/^```swift dependency-program$/ { on = 1; next } /^```$/ { on = 0 } on' "$repo_root/README.md" >"$work/my-tool/Sources/MyTool/main.swift"
for file in Package.swift Sources/MyTool/main.swift; do
    [[ -s "$work/my-tool/$file" ]] || { echo "use-as-dependency: README.md has no block for $file" >&2; exit 1; }
done
cd "$work/my-tool"
swift build --target MyTool
echo "use-as-dependency: a package that depends on ennio-events by path builds against NATSClient" >&2
