#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium (with apt-get, as
# root or through sudo) and playwright-core from package-lock.json (npm ci).
# Playwright's own browser download is never used: the tests launch
# /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "browser tests: installing ${missing[*]} with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# npm ci again only when the lock file changed since the last install.
stamp=node_modules/.package-lock.json
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt "$stamp" ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
echo "browser tests: $(chromium --version 2>/dev/null), playwright-core $(node -p "require('./node_modules/playwright-core/package.json').version")"
