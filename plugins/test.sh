#!/usr/bin/env bash
# Runs the unit tests of every element plugin in plugins/, each in its own
# language, with the toolchains build.sh finds:
#   * Rust: `cargo test` of the plugins workspace, on the build machine, with
#     a fake host behind each element's `Host` trait;
#   * JavaScript: `node --test` in the plugin's folder, with a fake host;
#   * Python: `python3 -m unittest discover tests` in the plugin's folder,
#     against the WIT bindings build.sh writes to plugins/target/python-bindings.
# A JavaScript plugin without a test/ folder, or a Python one without tests/
# (the test-only probes, exercised by the host's own tests), is skipped.
#
# Usage: bash plugins/test.sh        (after bash plugins/build.sh)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=build.sh
source "$(dirname "${BASH_SOURCE[0]}")/build.sh"

run_tests() {
    local plugins name lang _kind dir
    plugins="$(list_plugins)"
    if grep -q ' rust ' <<<"$plugins"; then
        log "cargo test (Rust plugins)"
        (cd "$PLUGINS_DIR" && cargo test --quiet)
    fi
    while read -r name lang _kind dir; do
        case "$lang" in
        js)
            if [[ ! -d "$dir/test" ]]; then
                log "$name has no unit tests (no test/ folder)"
                continue
            fi
            [[ -n "$NODE" ]] || find_node
            log "node --test ($name)"
            (cd "$dir" && "$NODE" --test </dev/null)
            ;;
        python)
            if [[ ! -d "$dir/tests" ]]; then
                log "$name has no unit tests (no tests/ folder)"
                continue
            fi
            log "python3 -m unittest ($name)"
            (cd "$dir" && python3 -B -m unittest discover tests </dev/null)
            ;;
        esac
    done <<<"$plugins"
}

run_tests
