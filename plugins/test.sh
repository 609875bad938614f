#!/usr/bin/env bash
# Runs the unit tests of every element plugin in plugins/, each in its own
# language, with the toolchains build.sh finds:
#   * Rust: `cargo test` of the plugins workspace, on the build machine, with
#     a fake host behind each element's `Host` trait;
#   * JavaScript: `node --test` in the plugin's folder, with a fake host;
#   * Python: `python3 -m unittest discover tests` in the plugin's folder,
#     against the WIT bindings build.sh writes to plugins/target/python-bindings;
#   * C: each test/NAME_test.c, compiled for the build machine with the
#     plugin's src/NAME.c by Debian's clang (build.sh installs it), and run.
# A JavaScript or C plugin without a test/ folder, or a Python one without tests/
# (the test-only probes, exercised by the host's own tests), is skipped.
#
# Usage: bash plugins/test.sh        (after bash plugins/build.sh)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=build.sh
source "$(dirname "${BASH_SOURCE[0]}")/build.sh"

# Compiles and runs each test/NAME_test.c of C plugin $1 (folder $2) with
# its src/NAME.c, for the build machine.
run_c_tests() {
    local name="$1" dir="$2" test stem binary
    ensure_c_toolchain
    mkdir -p "$TARGET_DIR/c-tests/$name"
    for test in "$dir"/test/*_test.c; do
        stem="$(basename "${test%_test.c}")"
        [[ -f "$dir/src/$stem.c" ]] || die "$test tests src/$stem.c, which is missing"
        binary="$TARGET_DIR/c-tests/$name/${stem}_test"
        log "$name: test/$(basename "$test")"
        clang -std=c11 -Wall -Wextra -Werror -g -o "$binary" "$test" "$dir/src/$stem.c"
        "$binary" </dev/null
    done
}

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
        c)
            if [[ ! -d "$dir/test" ]]; then
                log "$name has no unit tests (no test/ folder)"
                continue
            fi
            run_c_tests "$name" "$dir"
            ;;
        esac
    done <<<"$plugins"
}

run_tests
