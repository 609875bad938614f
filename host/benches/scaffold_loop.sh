#!/usr/bin/env bash
# Machine time from an empty folder to a tested, checked and hot-loaded
# element, per language, following the guide's loop (docs/plugins.md, "Start
# a plugin"): `plugins new`, `./build.sh`, `./test.sh`, `plugins check`, then a
# copy into the folder a running `plugboard serve` watches, timed until
# `GET /plugins` lists the element. Each language's toolchain must be
# installed (plugins/build.sh installs them).
#
# Run: PB=target/release/plugboard bash host/benches/scaffold_loop.sh
set -euo pipefail
PB=${PB:?set PB to the plugboard binary}
export PLUGBOARD=$PB
root=$(mktemp -d); cd "$root"; mkdir plugins data
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
PLUGBOARD_LISTEN=127.0.0.1:$port PLUGBOARD_PLUGINS=$root/plugins PLUGBOARD_DATA=$root/data \
  PLUGBOARD_USER_SECRET=u PLUGBOARD_ORGANIZATION_SECRET=o RUST_LOG=warn "$PB" serve >host.log 2>&1 &
host=$!; trap 'kill $host; rm -rf "$root"' EXIT
for lang in rust js python c; do
  name=acme-$lang
  t0=$(date +%s.%N)
  "$PB" plugins new --lang $lang $name >/dev/null
  t1=$(date +%s.%N)
  (cd $name && ./build.sh >/dev/null 2>&1)
  t2=$(date +%s.%N)
  (cd $name && ./test.sh >/dev/null 2>&1)
  t3=$(date +%s.%N)
  "$PB" plugins check $name/dist/$name.wasm >/dev/null
  t4=$(date +%s.%N)
  cp $name/dist/$name.wasm plugins/
  until curl -sf -H "authorization: User u, Organization o" http://127.0.0.1:$port/plugins | grep -q "\"key\":\"$name\""; do sleep 0.1; done
  t5=$(date +%s.%N)
  python3 - "$lang" $t0 $t1 $t2 $t3 $t4 $t5 <<'PY'
import sys
l=sys.argv[1]; t=[float(x) for x in sys.argv[2:]]
d=lambda a,b: t[b]-t[a]
print(f"{l:7s} new {d(0,1):5.1f} s  build {d(1,2):6.1f} s  test {d(2,3):5.1f} s  check {d(3,4):5.1f} s  hot-load {d(4,5):5.1f} s  total {d(0,5):6.1f} s")
PY
done
