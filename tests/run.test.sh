#!/usr/bin/env bash
# `make run`'s script end to end: a private PostgreSQL is started, pantherad
# migrates and serves, a real RPC client calls it over TCP, curl reads the
# REST API over HTTP, SIGTERM stops both cleanly; a second run on the same
# data folder works the same.
set -u
cd "$(dirname "$0")/.."
build=${BUILD:-build}
probe=$build/tests/rpc_probe
tmp=$(mktemp -d /tmp/panthera-run-XXXXXX)
chmod 755 "$tmp"
# three TCP ports the kernel says are free now (random ones collided with
# other test clusters on a busy machine)
read -r pg_port rpc_port http_port < <(tools/free-ports.sh 3)
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && tail -n 20 "$tmp/log"; tools/pg.sh stop "$tmp/data" "$pg_port" >/dev/null 2>&1; rm -rf "$tmp"; exit 1; }

run_once() {
	PANTHERA_DATA_DIR=$tmp/data PANTHERA_PG_PORT=$pg_port PANTHERA_RPC_URL=tcp://127.0.0.1:$rpc_port \
		PANTHERA_HTTP_ADDR=127.0.0.1:$http_port PANTHERA_DB_URL= tools/run.sh "$build" >"$tmp/log" 2>&1 &
	local pid=$!
	local ready=0
	for _ in $(seq 1 300); do
		if grep -q '"event":"pantherad.http"' "$tmp/log" 2>/dev/null; then ready=1; break; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	[ $ready -eq 1 ] || fail "pantherad did not become ready"
	"$probe" "tcp://127.0.0.1:$rpc_port" --order || fail "the RPC probe failed"
	if command -v curl >/dev/null; then
		curl -sf "http://127.0.0.1:$http_port/v1/products?pageSize=1" | grep -q '"products":\[{' ||
			fail "GET /v1/products over HTTP did not list a product"
	fi
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	[ $rc -eq 0 ] || fail "run.sh exited $rc after SIGTERM"
	grep -q '"event":"pantherad.exit"' "$tmp/log" || fail "pantherad did not stop cleanly"
	grep -q 'private PostgreSQL stopped' "$tmp/log" || fail "PostgreSQL was not stopped"
}
run_once
run_once # a second time, on the same cluster
rm -rf "$tmp"
echo "run: make run's script served RPC over TCP and the REST API over HTTP on a private PostgreSQL, twice, and stopped cleanly"
