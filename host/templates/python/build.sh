#!/usr/bin/env bash
# Builds this element plugin into a WebAssembly component: dist/{{name}}.wasm.
#
# Usage: ./build.sh        (from any directory; no arguments)
#
# The toolchain is detected rather than assumed: componentize-py (the pinned
# version) from PATH, or else from PyPI, installed into a virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools. It packs src/ (entry point
# src/app.py) and a CPython interpreter into one component.
# The output is replaced atomically, so a sidecar watching it never loads a
# half-written file.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="{{name}}"
OUT="$PROJECT_DIR/dist/$NAME.wasm"
COMPONENTIZE_PY_VERSION=0.25.1
TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools"
# The staging copy of src/, removed on exit.
SOURCES=""

log() {
    echo "build.sh: $*" >&2
}

# Runs a command as root: directly when already root, through sudo otherwise.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Prints the path of componentize-py $COMPONENTIZE_PY_VERSION: the one on
# PATH if it is that version, else the tools virtualenv's (installed when
# missing or of another version).
find_componentize_py() {
    local tool
    for tool in "$(command -v componentize-py || true)" "$TOOLS_VENV/bin/componentize-py"; do
        if [[ -n "$tool" && -x "$tool" && "$("$tool" --version 2>/dev/null)" == "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
            echo "$tool"
            return
        fi
    done
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
    fi
    log "installing componentize-py==$COMPONENTIZE_PY_VERSION into $TOOLS_VENV"
    [[ -x "$TOOLS_VENV/bin/pip" ]] || python3 -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
    echo "$TOOLS_VENV/bin/componentize-py"
}

main() {
    local componentize_py
    componentize_py="$(find_componentize_py)"
    # Built from a copy: componentize-py packs every file of the folder and
    # leaves bytecode caches beside the sources.
    SOURCES="$(mktemp -d)"
    trap 'rm -rf "$SOURCES"' EXIT
    cp -R "$PROJECT_DIR/src/." "$SOURCES"
    find "$SOURCES" -name __pycache__ -prune -exec rm -rf {} +
    mkdir -p "$(dirname "$OUT")"
    "$componentize_py" -q -d "$PROJECT_DIR/wit" -w element-plugin componentize \
        -p "$SOURCES" app -o "$OUT.partial" >&2
    mv -f "$OUT.partial" "$OUT"
    echo "$OUT"
}

main "$@"
