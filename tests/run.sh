#!/usr/bin/env bash
# Runs every test of plugboard on a fresh machine: installs and detects the
# guest toolchain, builds the plugins into components, then runs the guest
# unit tests and the host's unit, end-to-end and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash plugins/build.sh

echo "== guest toolchain: every Debian program the build runs is installed by build.sh"
bash plugins/check-toolchain.sh

echo "== guest unit tests"
bash plugins/test.sh

echo "== browser test tools (chromium, playwright-core)"
bash tests/browser/setup.sh

echo "== PostgreSQL (the store's PostgreSQL tests start throwaway clusters of it)"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then as_root=(); else as_root=(sudo); fi
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi

echo "== host tests (the console's browser test is tests/e2e/console.rs)"
cargo test --workspace --all-targets

echo "== the end-to-end suites that use the store, again on PostgreSQL"
PLUGBOARD_TEST_STORE=postgres cargo test -p plugboard --test e2e -- \
    ingress:: delivery:: polling:: crash:: shutdown:: console:: \
    --skip console::console_in_headless_chromium
# The browser test waits on wall-clock UI steps; it runs on its own rather
# than beside 29 tests that each start a PostgreSQL cluster on 2 cores.
PLUGBOARD_TEST_STORE=postgres cargo test -p plugboard --test e2e -- \
    console::console_in_headless_chromium
