#!/usr/bin/env bash
# The plugboard demo, end to end on this machine, in one command:
#
#   bash examples/demo.sh
#
# Starts a fake ConnectWise (signed callbacks, and its signing key served over
# HTTPS with a throwaway CA), a receiver that verifies every notification's
# signatures on its own (Python's hmac), and plugboard between them; creates a
# ConnectWise instance; has the vendor send callbacks (and one forged one);
# then shows the events arriving at the receiver, plugboard's event log and a
# few metrics. Everything runs on 127.0.0.1 and stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -f plugins/dist/connectwise.wasm ] || bash plugins/build.sh
cargo build --release --quiet -p plugboard --bin plugboard --example demo_vendor
BIN=target/release
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for WHAT COMMAND...: retries for 60 s
    local what=$1; shift
    for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "demo: $what did not come up" >&2
    [ -f "$WORK/plugboard.log" ] && tail -20 "$WORK/plugboard.log" >&2
    exit 1
}

SIGNATURE_KEY="demo-signature-key-$RANDOM$RANDOM"
PORT=$(free_port)
RECEIVER_PORT=$(free_port)
AUTH="User demo-user, Organization demo-org"

echo "== fake ConnectWise"
"$BIN/examples/demo_vendor" keys --dir "$WORK" & PIDS+=($!)
wait_for "the vendor" test -s "$WORK/vendor.port"
VENDOR_PORT=$(cat "$WORK/vendor.port")

echo "== receiver (verifies signatures itself)"
python3 examples/receiver.py "$RECEIVER_PORT" "$SIGNATURE_KEY" & PIDS+=($!)

echo "== plugboard"
mkdir -p "$WORK/plugins"
cp plugins/dist/connectwise.wasm "$WORK/plugins/"
PLUGBOARD_CONFIG=examples/plugboard.toml \
PLUGBOARD_LISTEN="127.0.0.1:$PORT" \
PLUGBOARD_PLUGINS="$WORK/plugins" \
PLUGBOARD_DATA="$WORK/data" \
PLUGBOARD_USER_SECRET=demo-user \
PLUGBOARD_ORGANIZATION_SECRET=demo-org \
PLUGBOARD_OUTBOUND_ALLOW_PRIVATE=127.0.0.0/8 \
PLUGBOARD_OUTBOUND_CA_FILE="$WORK/ca.pem" \
PLUGBOARD_PLUGIN_FETCH_PORTS="$VENDOR_PORT" \
    "$BIN/plugboard" serve 2> "$WORK/plugboard.log" & PIDS+=($!)
wait_for "plugboard" curl -sf "http://127.0.0.1:$PORT/readyz"
curl -s "http://127.0.0.1:$PORT/readyz"; echo

echo "== create a ConnectWise instance"
INSTANCE=$(curl -sf "http://127.0.0.1:$PORT/instances" -H "Authorization: $AUTH" \
    -H 'content-type: application/json' -d '{
  "element": {"key": "connectwise"}, "name": "ACME helpdesk", "tags": ["demo"],
  "configuration": {
    "helpdesk.connectwise.server.url": "https://localhost:'"$VENDOR_PORT"'",
    "helpdesk.connectwise.company": "acme",
    "event.notification.enabled": "true",
    "event.vendor.type": "webhooks",
    "event.notification.callback.url": "http://127.0.0.1:'"$RECEIVER_PORT"'/plugboard",
    "event.notification.signature.key": "'"$SIGNATURE_KEY"'"}}')
ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$INSTANCE")
WEBHOOK="http://127.0.0.1:$PORT$(python3 -c 'import json,sys; print(json.load(sys.stdin)["webhook"]["path"])' <<<"$INSTANCE")"
echo "instance $ID; ConnectWise calls $WEBHOOK"

echo "== the vendor sends callbacks"
"$BIN/examples/demo_vendor" send --to "$WEBHOOK" --port "$VENDOR_PORT" --count 2

events_delivered() {
    curl -sf "http://127.0.0.1:$PORT/metrics" | grep -q '^plugboard_deliveries_total{outcome="delivered"} 6'
}
wait_for "the deliveries" events_delivered

echo "== plugboard's event log"
curl -sf "http://127.0.0.1:$PORT/instances/$ID/events" -H "Authorization: $AUTH" |
    python3 -c 'import json,sys
for e in json.load(sys.stdin)["events"]:
    print(e["eventId"], e["status"], [(x["eventType"], x["objectType"], x["objectId"]) for x in e["events"]])'

echo "== a few metrics"
curl -sf "http://127.0.0.1:$PORT/metrics" |
    grep -E '^plugboard_(webhooks_received|webhooks_rejected|deliveries|outbox_pending)' || true
echo "== done (plugboard's log: $WORK/plugboard.log, removed on exit)"
