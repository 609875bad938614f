#!/usr/bin/env bash
# Three plugboard replicas on one PostgreSQL, on this machine:
#
#   bash examples/replicas/run-local.sh
#
# Starts a throwaway PostgreSQL cluster (initdb into a temporary folder,
# listening only on a Unix socket there; as the `postgres` user when run as
# root, since PostgreSQL refuses to run as root) and three replicas of
# plugboard on 127.0.0.1:8081, :8082 and :8083, sharing the database and one
# set of management secrets; each has its own data folder and replica id.
# Put any load balancer in front of the three ports, or send to them in
# turn. Ctrl-C stops everything and removes the temporary folder.
#
# PLUGBOARD_BIN=path/to/plugboard skips the release build; PORTS="9001 9002"
# chooses other ports (and how many replicas).
set -euo pipefail
cd "$(dirname "$0")/../.."

PORTS=${PORTS:-"8081 8082 8083"}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/initdb" ] || { echo "run-local: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
if [ -z "${PLUGBOARD_BIN:-}" ]; then
    cargo build --release --quiet -p plugboard --bin plugboard
    PLUGBOARD_BIN=${CARGO_TARGET_DIR:-target}/release/plugboard
fi
[ -f plugins/dist/connectwise.wasm ] || bash plugins/build.sh

WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    trap - EXIT INT TERM
    echo
    echo "== stopping"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${PIDS[@]}" 2>/dev/null || true
    as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" stop -m fast -w >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "== PostgreSQL (Unix socket in $WORK/pg)"
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$WORK/pg"
as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust --encoding=UTF8 --no-instructions >/dev/null
printf "listen_addresses = ''\nunix_socket_directories = '%s'\n" "$WORK/pg" >>"$WORK/pg/data/postgresql.conf"
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w start >/dev/null
"$PG_BIN/createdb" -h "$WORK/pg" -U postgres plugboard

# Shared by every replica: the database and the management secrets.
export PLUGBOARD_DATABASE_URL="postgres:///plugboard?user=postgres&host=$WORK/pg"
export PLUGBOARD_USER_SECRET="local-user-$RANDOM$RANDOM"
export PLUGBOARD_ORGANIZATION_SECRET="local-org-$RANDOM$RANDOM"
mkdir -p "$WORK/plugins"
cp plugins/dist/*.wasm "$WORK/plugins/"

n=0
for port in $PORTS; do
    n=$((n + 1))
    echo "== replica-$n on 127.0.0.1:$port (log: $WORK/replica-$n.log)"
    # Per replica: its id, its address and its data folder (compiled-plugin cache).
    PLUGBOARD_REPLICA_ID="replica-$n" \
    PLUGBOARD_LISTEN="127.0.0.1:$port" \
    PLUGBOARD_DATA="$WORK/replica-$n" \
    PLUGBOARD_PLUGINS="$WORK/plugins" \
        "$PLUGBOARD_BIN" serve 2>"$WORK/replica-$n.log" &
    PIDS+=($!)
done

echo "== waiting for the replicas (a first start compiles the plugins: up to a few minutes)"
for port in $PORTS; do
    for _ in $(seq 3000); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || {
        echo "run-local: the replica on port $port did not become ready" >&2
        tail -20 "$WORK"/replica-*.log >&2
        exit 1
    }
done

FIRST=${PORTS%% *}
cat <<EOF

Three replicas are ready. Management credentials (the same on every replica):

  AUTH="User $PLUGBOARD_USER_SECRET, Organization $PLUGBOARD_ORGANIZATION_SECRET"

Create an instance on one replica, then use it through any of them:

  curl -s -H "authorization: \$AUTH" -H 'content-type: application/json' \\
       -d '{"element":{"key":"connectwise"},"configuration":{...}}' \\
       http://127.0.0.1:$FIRST/instances
  # webhooks: POST http://127.0.0.1:<any port>/events/connectwise/<base64 of the id>
  curl -s -H "authorization: \$AUTH" http://127.0.0.1:$FIRST/instances
  curl -s http://127.0.0.1:$FIRST/metrics | grep plugboard_

The database: psql -h $WORK/pg -U postgres plugboard

Ctrl-C stops the replicas and PostgreSQL and removes $WORK.
EOF
wait -n "${PIDS[@]}"
echo "run-local: a replica exited; see $WORK/replica-*.log" >&2
tail -5 "$WORK"/replica-*.log >&2
