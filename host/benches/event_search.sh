#!/usr/bin/env bash
# Event-log search on a large store: fills a store with EVENTS (1,000,000)
# event-log entries — 10 instances of two elements, each entry carrying one
# event about one of 200,000 objects of three types, 2 % dead-lettered,
# spread over a week — then times searches through the HTTP API of the
# real binary (each 5 times; the fastest and the slowest are printed).
#
#   host/benches/event_search.sh                      # SQLite
#   PLUGBOARD_DATABASE_URL=postgres://… host/benches/event_search.sh
#
# The PostgreSQL database must be empty (the script lets plugboard create
# its schema, then fills it with psql). PLUGBOARD_BIN picks the binary
# (default: target/release/plugboard; build it with
# `cargo build --release -p plugboard`). Needs sqlite3 or psql, and curl.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PLUGBOARD_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/plugboard}
events=${EVENTS:-1000000}
port=${PORT:-18480}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export PLUGBOARD_USER_SECRET=bench-user PLUGBOARD_ORGANIZATION_SECRET=bench-org
auth="Authorization: User bench-user, Organization bench-org"
base="http://127.0.0.1:$port"
pid=

start() {
    "$bin" serve --listen "127.0.0.1:$port" --plugins "$root/plugins/dist" --data "$work/data" \
        >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        curl -sf "$base/readyz" >/dev/null && return
        sleep 0.1
    done
    cat "$work/log"
    exit 1
}

stop() {
    kill "$pid"
    wait "$pid" || true
}

# The first entry's time, in unix milliseconds; one entry every 600 ms.
t0=$(( ($(date +%s) - 7 * 86400) * 1000 ))

# Rows as plugboard writes them: UUIDv7 ids of the entry's millisecond.
fill_sqlite() {
    sqlite3 "$work/data/plugboard.db" <<SQL
BEGIN;
WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 10)
INSERT INTO instances (id, token, element_key, name, tags, configuration, events_enabled,
                       created_at, updated_at)
SELECT n, 'bench-token-' || n, CASE n % 2 WHEN 0 THEN 'github' ELSE 'connectwise' END,
       'bench-' || n, '[]', '{}', 1, $t0, $t0 FROM i;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $events),
rows AS (SELECT n, $t0 + n * 600 AS ms FROM s)
INSERT INTO notifications (id, instance_id, source, content_type, body, event_count, status,
                           attempts, next_attempt_at, created_at, delivered_at)
SELECT printf('%08x-%04x-7%03x-%04x-%012x', ms / 65536, ms % 65536, n % 4096,
              32768 + n % 16384, n),
       1 + n % 10, 'webhook', 'application/json',
       CAST('{"message":{"events":[{"objectId":"' || (n % 200000) || '"}]}}' AS BLOB), 1,
       CASE WHEN n % 50 = 0 THEN 'dead' ELSE 'delivered' END, 1, ms, ms,
       CASE WHEN n % 50 = 0 THEN NULL ELSE ms + 20 END
FROM rows;
INSERT INTO notification_events (notification_id, object_type, object_id, event_type)
SELECT id, CASE rowid % 3 WHEN 0 THEN 'ticket' WHEN 1 THEN 'contact' ELSE 'company' END,
       CAST(rowid % 200000 AS TEXT),
       CASE rowid % 4 WHEN 0 THEN 'CREATED' WHEN 1 THEN 'UPDATED' WHEN 2 THEN 'DELETED'
                      ELSE 'UNKNOWN' END
FROM notifications;
COMMIT;
ANALYZE;
SQL
}

fill_postgres() {
    psql -q -v ON_ERROR_STOP=1 "$PLUGBOARD_DATABASE_URL" <<SQL
BEGIN;
INSERT INTO instances (id, token, element_key, name, tags, configuration, events_enabled,
                       created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT n, 'bench-token-' || n, CASE n % 2 WHEN 0 THEN 'github' ELSE 'connectwise' END,
       'bench-' || n, '[]', '{}', true, $t0, $t0 FROM generate_series(1, 10) n;
INSERT INTO notifications (id, instance_id, source, content_type, body, event_count, status,
                           attempts, created_at, delivered_at)
SELECT format('%s-%s-7%s-%s-%s', lpad(to_hex(ms / 65536), 8, '0'),
              lpad(to_hex(ms % 65536), 4, '0'), lpad(to_hex(n % 4096), 3, '0'),
              to_hex(32768 + n % 16384), lpad(to_hex(n), 12, '0')),
       1 + n % 10, 'webhook', 'application/json',
       convert_to('{"message":{"events":[{"objectId":"' || (n % 200000) || '"}]}}', 'UTF8'), 1,
       CASE WHEN n % 50 = 0 THEN 'dead' ELSE 'delivered' END, 1, ms,
       CASE WHEN n % 50 = 0 THEN NULL ELSE ms + 20 END
FROM (SELECT n, $t0::bigint + n * 600 AS ms FROM generate_series(1, $events) n) s;
INSERT INTO notification_events (notification_id, object_type, object_id, event_type)
SELECT id, (ARRAY['ticket', 'contact', 'company'])[1 + n % 3], (n % 200000)::text,
       (ARRAY['CREATED', 'UPDATED', 'DELETED', 'UNKNOWN'])[1 + n % 4]
FROM (SELECT id, ('x' || right(id, 12))::bit(48)::bigint AS n FROM notifications) s;
\o /dev/null
SELECT setval(pg_get_serial_sequence('instances', 'id'), 10);
\o
COMMIT;
VACUUM ANALYZE;
SQL
}

iso() { date -u -d "@$(( $1 / 1000 ))" +%Y-%m-%dT%H:%M:%SZ; }

timed() {
    local what=$1 query=$2 times=() count
    answer=$(curl -s -w '\n%{http_code}' -H "$auth" "$base$query")
    if [ "$(echo "$answer" | tail -1)" != 200 ]; then
        echo "$what: $answer" >&2
        return 1
    fi
    count=$(echo "$answer" | grep -o '"eventId"' | wc -l || true)
    for _ in 1 2 3 4 5; do
        times+=("$(curl -sf -o /dev/null -w '%{time_total}' -H "$auth" "$base$query")")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    printf '%-58s %4s found  fastest %6.1f ms  slowest %6.1f ms\n' "$what" "$count" \
        "$(echo "$sorted" | head -1 | awk '{print $1 * 1000}')" \
        "$(echo "$sorted" | tail -1 | awk '{print $1 * 1000}')"
}

mkdir -p "$work/data"
start
stop
echo "filling $events entries..."
started=$(date +%s)
if [ -n "${PLUGBOARD_DATABASE_URL:-}" ]; then fill_postgres; store=PostgreSQL; else fill_sqlite; store=SQLite; fi
echo "filled in $(( $(date +%s) - started )) s"
start
from=$(iso $(( t0 + events * 300 )))
to=$(iso $(( t0 + events * 400 )))
echo "$store, $events entries:"
timed "objectId (5 entries)" "/instances/events?objectId=12345"
timed "objectId + instance + FAILED + from/to" \
    "/instances/events?objectId=12350&instanceId=1&status=FAILED&from=$from&to=$to"
timed "FAILED of an instance between two times (page of 100)" \
    "/instances/events?instanceId=1&status=FAILED&from=$from&to=$to"
timed "objectType + eventType, newest page of 100" \
    "/instances/events?objectType=ticket&eventType=CREATED"
timed "elementKey + from/to, page of 100" \
    "/instances/events?elementKey=github&from=$from&to=$to"
timed "no filter, newest page of 100" "/instances/events"
