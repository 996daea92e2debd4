#!/usr/bin/env bash
# The services as separate processes: panthera-inventory and panthera-catalog
# each serve their own service over TCP on one private PostgreSQL, the
# catalog reaching inventory by URL; a real client calls both; SIGTERM stops
# both cleanly.
set -u
cd "$(dirname "$0")/.."
build=${BUILD:-build}
tmp=$(mktemp -d /tmp/panthera-split-XXXXXX)
chmod 755 "$tmp"
pg_port=$((42000 + RANDOM % 8000))
inv_port=$((50000 + RANDOM % 7000))
cat_port=$((inv_port + 1))
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	tools/pg.sh stop "$tmp/data" "$pg_port" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 15 "$tmp"/*.log; exit 1; }

# without a way to InventoryService, the catalog refuses to start
env -u PANTHERA_INVENTORY_URL "$build/bin/panthera-catalog" >"$tmp/refused.log" 2>&1
[ $? -eq 2 ] && grep -q 'needs InventoryService' "$tmp/refused.log" ||
	fail "panthera-catalog started without --inventory-url"
# a random port may be taken: try a few
for _ in 1 2 3 4 5; do
	url=$(tools/pg.sh start "$tmp/data" "$pg_port" 2>>"$tmp/pg.err") && break
	url=
	pg_port=$((42000 + RANDOM % 8000))
done
[ -n "$url" ] || fail "no PostgreSQL: $(tail -n 3 "$tmp/pg.err")"
export PANTHERA_DB_URL=$url PANTHERA_MIGRATIONS_DIR=$(pwd)/services PANTHERA_DATA_DIR=$tmp/data
PANTHERA_RPC_URL=tcp://127.0.0.1:$inv_port "$build/bin/panthera-inventory" >"$tmp/inventory.log" 2>&1 &
pids+=($!)
PANTHERA_RPC_URL=tcp://127.0.0.1:$cat_port PANTHERA_INVENTORY_URL=tcp://127.0.0.1:$inv_port \
	"$build/bin/panthera-catalog" >"$tmp/catalog.log" 2>&1 &
pids+=($!)
for log in inventory catalog; do
	ok=0
	for _ in $(seq 1 300); do
		grep -q '"event":"pantherad.ready"' "$tmp/$log.log" 2>/dev/null && { ok=1; break; }
		sleep 0.2
	done
	[ $ok -eq 1 ] || fail "panthera-$log did not become ready"
done
grep -q 'serving InventoryService' "$tmp/inventory.log" || fail "panthera-inventory serves more than inventory"
grep -q 'serving CatalogService' "$tmp/catalog.log" || fail "panthera-catalog serves more than the catalog"
"$build/tests/rpc_probe" "tcp://127.0.0.1:$inv_port" "tcp://127.0.0.1:$cat_port" || fail "the probe failed"
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || fail "a service did not exit 0 on SIGTERM"; done
pids=()
grep -q '"event":"pantherad.exit"' "$tmp/catalog.log" || fail "panthera-catalog did not stop cleanly"
echo "split: panthera-inventory and panthera-catalog served as separate processes and stopped cleanly"
