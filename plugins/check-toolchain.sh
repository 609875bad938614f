#!/usr/bin/env bash
# Proves that plugins/build.sh installs every Debian package the guest build
# uses, as a fresh machine would need it — even on a machine where someone
# installed more by hand.
#
# Usage: bash plugins/check-toolchain.sh      (after bash plugins/build.sh)
#
# How: the Rust guests are built once more, from scratch into a temporary
# target folder, under `strace -f -e trace=execve`. Every program the build
# runs (each link of a symlink chain counted on its own, so /usr/bin/rust-lld
# counts for its own package even though it points into another) is looked
# up with `dpkg -S`. A program that belongs to a Debian package must come from
# a package that a fresh machine has anyway (priority required or important)
# or from build.sh's DEBIAN_PACKAGES and what they depend on (Depends and
# Pre-Depends, recursively; Recommends do not count, since build.sh installs
# with --no-install-recommends). Anything else is named with its package and
# the check fails. Programs of no package (build scripts, rustup, the tools
# virtualenv) are not Debian's business and are left out.
#
# The C plugins are compiled the same way, once more, under strace: their
# programs must come from C_DEBIAN_PACKAGES, what those depend on, or the
# base system.
#
# With rustup's wasm32-wasip2 target the Debian Rust toolchain is not used
# and only the C build is checked.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=build.sh
source "$(dirname "${BASH_SOURCE[0]}")/build.sh"

# Prints the names in a Depends-style field ("a (>= 1), b | c, d:any").
dependency_names() {
    tr ',|' '\n\n' <<<"$1" | sed -e 's/([^)]*)//g' -e 's/:[a-z0-9]*//' -e 's/[[:space:]]//g' | sed '/^$/d'
}

# Prints the installed packages reachable from the arguments through
# Depends and Pre-Depends.
dependency_closure() {
    local -A seen=()
    local queue=("$@") name deps
    while ((${#queue[@]})); do
        name="${queue[0]}"
        queue=("${queue[@]:1}")
        [[ -n "${seen[$name]:-}" ]] && continue
        seen[$name]=1
        deps="$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$name" 2>/dev/null || true)"
        [[ -n "$deps" ]] || continue
        while read -r dep; do
            [[ -n "${seen[$dep]:-}" ]] || queue+=("$dep")
        done < <(dependency_names "$deps")
    done
    printf '%s\n' "${!seen[@]}"
}

# Prints the installed packages of priority required or important.
base_packages() {
    dpkg-query -W -f='${Package} ${Priority} ${db:Status-Status}\n' |
        awk '$3 == "installed" && ($2 == "required" || $2 == "important") { print $1 }'
}

# Prints $1 and every path its symlinks pass through, one a line.
symlink_chain() {
    local path="$1" hops=0 target
    echo "$path"
    while [[ -L "$path" && "$hops" -lt 16 ]]; do
        target="$(readlink "$path")"
        [[ "$target" == /* ]] || target="$(dirname "$path")/$target"
        path="$target"
        echo "$path"
        hops=$((hops + 1))
    done
}

# Prints the Debian package that owns file $1, or nothing.
owner() {
    { dpkg -S "$1" 2>/dev/null || true; } | sed -n '1s/:.*//p' | sed 's/, .*//'
}

# Checks that every Debian program recorded in strace file $1 comes from
# the packages named after it, their dependencies or the base system; $2
# says which build it traced.
check_trace() {
    local trace="$1" what="$2"
    shift 2
    local -A allowed=()
    local name
    while read -r name; do allowed[$name]=1; done < <(dependency_closure "$@")
    while read -r name; do allowed[$name]=1; done < <(base_packages)

    local programs path link package checked=0
    local missing=()
    programs="$(sed -n 's/.*execve("\([^"]*\)".*) = 0$/\1/p' "$trace" | sort -u)"
    [[ -n "$programs" ]] || die "the trace of the $what recorded no program"
    while read -r path; do
        while read -r link; do
            package="$(owner "$link")"
            [[ -n "$package" ]] || continue
            checked=$((checked + 1))
            [[ -n "${allowed[$package]:-}" ]] ||
                missing+=("$link (Debian package $package)")
        done < <(symlink_chain "$path")
    done <<<"$programs"

    if ((${#missing[@]})); then
        log "the $what ran programs from packages build.sh does not install:"
        printf '  %s\n' "${missing[@]}" >&2
        die "add their packages to build.sh ($*)"
    fi
    log "ok: $checked programs the $what ran come from $*, their dependencies or the base system"
}

main_check() {
    local work
    work="$(mktemp -d)"
    trap "rm -rf '$work'" EXIT
    command -v strace >/dev/null 2>&1 || apt_install strace

    if have_wasip2; then
        log "rustup's wasm32-wasip2 target builds the Rust guests; no Debian Rust toolchain to check"
    else
        ensure_debian_toolchain
        log "building the Rust guests from scratch under strace"
        (cd "$PLUGINS_DIR" && PATH="$LLVM_BIN:$PATH" RUSTC="$DEBIAN_RUSTC" RUSTC_BOOTSTRAP=1 \
            strace -f -qq -e trace=execve -e signal=none -o "$work/trace" \
            "$DEBIAN_CARGO" build --workspace --release --quiet \
            --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --target-dir "$work/target" >&2)
        check_trace "$work/trace" "Rust guest build" "${DEBIAN_PACKAGES[@]}"
    fi

    local name lang _kind dir traced=no
    while read -r name lang _kind dir; do
        [[ "$lang" == c ]] || continue
        prepare_c
        log "compiling the C plugin $name under strace"
        strace -f -qq -e trace=execve -e signal=none -o "$work/trace-$name" \
            bash -c "$(declare -f compile_c); C_TARGET='$C_TARGET' C_BINDINGS_DIR='$C_BINDINGS_DIR' compile_c '$dir' '$work/$name.wasm'"
        cat "$work/trace-$name" >>"$work/trace-c"
        traced=yes
    done < <(list_plugins)
    [[ "$traced" == no ]] || check_trace "$work/trace-c" "C guest build" "${C_DEBIAN_PACKAGES[@]}"
}

main_check
