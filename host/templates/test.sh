#!/usr/bin/env bash
# Runs every sample request of tests/ through the built component, offline,
# and compares what the host would do with its expectation:
#   tests/NAME.http             the request (request line, headers, empty line, body)
#   tests/NAME.expected.json    what `plugboard plugins run` must print
#   tests/config.json           the instance configuration, for every request
#
# Usage: ./build.sh && ./test.sh      (PLUGBOARD=/path/to/plugboard to pick the binary)
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGBOARD="${PLUGBOARD:-plugboard}"
COMPONENT="$PROJECT_DIR/dist/{{name}}.wasm"

[[ -f "$COMPONENT" ]] || { echo "test.sh: $COMPONENT is missing; run ./build.sh first" >&2; exit 1; }
failed=0
for request in "$PROJECT_DIR"/tests/*.http; do
    case="${request%.http}"
    if "$PLUGBOARD" plugins run "$COMPONENT" --request "$request" \
        --config "$PROJECT_DIR/tests/config.json" --expect "$case.expected.json" >/dev/null; then
        echo "ok      $(basename "$case")"
    else
        echo "FAILED  $(basename "$case")"
        failed=1
    fi
done
exit "$failed"
