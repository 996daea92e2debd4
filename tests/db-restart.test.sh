#!/usr/bin/env bash
# PostgreSQL restarted under a running pantherad: calls fail with
# UNAVAILABLE while it is down, then succeed again without restarting
# anything; pantherad never crashes.
set -u
cd "$(dirname "$0")/.."
build=${BUILD:-build}
tmp=$(mktemp -d /tmp/panthera-dbr-XXXXXX)
chmod 755 "$tmp"
pg_port=$((42000 + RANDOM % 8000))
rpc_port=$((50000 + RANDOM % 7000))
daemon=""
cleanup() {
	[ -z "$daemon" ] || { kill -TERM "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; }
	tools/pg.sh stop "$tmp/data" "$pg_port" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 15 "$tmp/pantherad.log"; exit 1; }

# a random port may be taken: try a few
for _ in 1 2 3 4 5; do
	url=$(tools/pg.sh start "$tmp/data" "$pg_port" 2>>"$tmp/pg.err") && break
	url=
	pg_port=$((42000 + RANDOM % 8000))
done
[ -n "$url" ] || fail "no PostgreSQL: $(tail -n 3 "$tmp/pg.err")"
PANTHERA_DB_URL=$url PANTHERA_MIGRATIONS_DIR=$(pwd)/services PANTHERA_DATA_DIR=$tmp/data \
	PANTHERA_RPC_URL=tcp://127.0.0.1:$rpc_port PANTHERA_SEED_DEMO=false \
	"$build/bin/panthera-inventory" >"$tmp/pantherad.log" 2>&1 &
daemon=$!
for _ in $(seq 1 300); do
	grep -q '"event":"pantherad.ready"' "$tmp/pantherad.log" 2>/dev/null && break
	sleep 0.2
done
probe() { "$build/tests/rpc_probe" "tcp://127.0.0.1:$rpc_port" --stock-only; }
probe >/dev/null || fail "the first call failed"
tools/pg.sh stop "$tmp/data" "$pg_port" || fail "could not stop PostgreSQL"
out=$(probe 2>&1) && fail "a call succeeded with the database down"
echo "$out" | grep -q UNAVAILABLE || fail "want UNAVAILABLE while the database is down, got: $out"
kill -0 "$daemon" || fail "pantherad died with the database"
# the failed call is in the log under the caller's request id
grep -q '"request_id":"rpc-probe","msg":"/panthera.inventory.v1.InventoryService/InitStock UNAVAILABLE' \
	"$tmp/pantherad.log" || fail "the failed call is not logged with its request id"
tools/pg.sh start "$tmp/data" "$pg_port" >/dev/null || fail "could not restart PostgreSQL"
ok=0
for _ in $(seq 1 50); do
	probe >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.2
done
[ $ok -eq 1 ] || fail "calls did not succeed again after the database came back"
kill -TERM "$daemon"
wait "$daemon" || fail "pantherad did not exit 0"
daemon=""
echo "db-restart: UNAVAILABLE while PostgreSQL was down, served again after it came back"
