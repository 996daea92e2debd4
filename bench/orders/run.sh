#!/usr/bin/env bash
# run.sh - the orders benchmark of issue 7 (item 9): orders placed and
# settled per second through RPC, against what PostgreSQL sustains for the
# same SQL driven by pgbench, in one run on one private PostgreSQL.
# README.md says what is measured and how to read it.
#
# Environment (defaults in brackets): THREADS [8] concurrent clients on
# both sides, ROUND_S [6] seconds of placing orders per round, ROUNDS [2]
# interleaved rounds of each side. Ends with orders_ratio_vs_pgbench=<x>.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
THREADS=${THREADS:-8}
ROUND_S=${ROUND_S:-6}
ROUNDS=${ROUNDS:-2}

TMP=$(mktemp -d /tmp/panthera-bench-orders.XXXXXX)
chmod 755 "$TMP"
PG_PORT=""
DAEMON=""
cleanup() {
	if [[ -n $DAEMON ]]; then
		kill -TERM "$DAEMON" 2>/dev/null || true
		wait "$DAEMON" 2>/dev/null || true
	fi
	[[ -z $PG_PORT ]] || "$ROOT/tools/pg.sh" stop "$TMP/pg" "$PG_PORT" >/dev/null 2>&1 || true
	[[ -z ${KEEP:-} ]] && rm -rf "$TMP" || echo "bench/orders: kept $TMP" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "bench/orders: $*" >&2
	[[ ! -f $TMP/pantherad.log ]] || tail -n 20 "$TMP/pantherad.log" >&2
	exit 1
}

for tool in pgbench pg_dump psql; do
	command -v "$tool" >/dev/null || die "$tool not found (make deps)"
done
[[ -x $BUILD/bin/pantherad ]] || die "no $BUILD/bin/pantherad: run make first"

# A private PostgreSQL; a random port may be taken, so try a few.
url=""
for _ in 1 2 3 4 5; do
	PG_PORT=$((42000 + RANDOM % 8000))
	url=$("$ROOT/tools/pg.sh" start "$TMP/pg" "$PG_PORT" 2>>"$TMP/pg.err") && break
	url=""
done
[[ -n $url ]] || die "no PostgreSQL: $(tail -n 3 "$TMP/pg.err")"
base_url=${url/\/\/\/panthera\?/\/\/\/panthera_pgbench?}

# The platform: every service in one pantherad, as `make run` serves it.
rpc_port=""
for _ in 1 2 3 4 5; do
	rpc_port=$((50000 + RANDOM % 7000))
	(exec 3<>"/dev/tcp/127.0.0.1/$rpc_port") 2>/dev/null || break
done
rpc_url=tcp://127.0.0.1:$rpc_port
PANTHERA_DB_URL=$url PANTHERA_RPC_URL=$rpc_url PANTHERA_HTTP_ADDR=off PANTHERA_DATA_DIR=$TMP/data \
	PANTHERA_MIGRATIONS_DIR=$ROOT/services \
	"$BUILD/bin/pantherad" >"$TMP/pantherad.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 300); do
	grep -q '"event":"pantherad.ready"' "$TMP/pantherad.log" 2>/dev/null && break
	kill -0 "$DAEMON" 2>/dev/null || die "pantherad exited"
	sleep 0.1
done
grep -q '"event":"pantherad.ready"' "$TMP/pantherad.log" || die "pantherad did not become ready"

# Stock for every product of the demo catalog, then pgbench's copy of the
# whole database: the same tables, indexes and rows, but no consumer of
# pantherad reading what pgbench writes.
nprod=$("$HERE/build/orders_bench" "$rpc_url" stock) || die "setting the stock failed"
psql "$url" -qAtc "CREATE DATABASE panthera_pgbench" >/dev/null
pg_dump "$url" | psql -q "$base_url" >/dev/null 2>"$TMP/restore.err" ||
	die "copying the database failed: $(tail -n 3 "$TMP/restore.err")"

echo "bench/orders: $THREADS clients, $ROUNDS rounds of ${ROUND_S}s, $nprod products," \
	"PostgreSQL $(psql "$url" -qAtc 'SHOW server_version'), $(nproc) cores"
rpc_rates=()
pg_rates=()
for round in $(seq 1 "$ROUNDS"); do
	line=$("$HERE/build/orders_bench" "$rpc_url" run "$THREADS" "$ROUND_S") ||
		die "round $round: RPC clients failed: $line"
	rate=$(sed -n 's/.*orders_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
	rpc_rates+=("$rate")
	echo "  round $round rpc:     $line"
	out=$(pgbench -n -M prepared -c "$THREADS" -j 2 -T "$ROUND_S" -D "nprod=$nprod" \
		-f "$HERE/saga.sql" "$base_url" 2>&1) || die "round $round: pgbench failed: $out"
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	[[ -n $tps ]] || die "round $round: no tps in pgbench's output: $out"
	pg_rates+=("$tps")
	echo "  round $round pgbench: orders_per_s=$tps failed=${failed:-0}"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rpc=$(median "${rpc_rates[@]}")
pg=$(median "${pg_rates[@]}")
printf '%-44s %10s\n' "median orders settled/s" ""
printf '  %-42s %10.1f\n' "Panthera: CreateOrder → saga → PAID (RPC)" "$rpc" \
	"pgbench: the same SQL, one order a script" "$pg"
awk -v a="$rpc" -v b="$pg" 'BEGIN { printf "orders_ratio_vs_pgbench=%.2f\n", (b > 0) ? a / b : 0 }'
