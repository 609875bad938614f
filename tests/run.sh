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

echo "== host tests (the console's browser test is tests/e2e/console.rs)"
cargo test --workspace --all-targets
