#!/usr/bin/env bash
# The local cluster of deploy/local/ (every service its own process over
# tls+tcp:// with mutual TLS, two replicas of catalog and of orders,
# panthera-gateway dialing all of them), surviving the loss of replicas:
#
# 1. the RPC transport settings refuse what cannot work, at once, with the
#    setting named: a tls+tcp:// RPC URL without its certificate, a
#    tls+tcp:// service URL without a CA, a URL list with an empty element;
# 2. the gateway's end-to-end suite (tests/gateway/endpoints.test.sh: every
#    row of API.md) passes against the cluster, which then stops cleanly;
# 3. the cluster starts again (same data, a new CA), and while a bounded load
#    runs through the gateway (tests/support/loadgen.py: reads, and orders
#    with an Idempotency-Key, each failed attempt retried as a client
#    retries a safe call) one catalog replica and then one orders replica
#    are killed (SIGKILL), and up.sh brings them back: no request may fail
#    beyond the client's retries, no order is lost or placed twice (checked
#    through the API and in the database), every order settles PAID, the
#    restarted replicas serve calls again, and a client without the
#    cluster's certificate is refused by a service;
# 4. deploy/local/down.sh stops every process with its clean exit logged.
# The load's numbers (requests, failures, retries, orders) are printed.
# BUILD=build-san runs the sanitizer build: any sanitizer report in a log
# fails the test. CLUSTER_RATE (requests a second, default 400),
# CLUSTER_READERS (6) and CLUSTER_BUYERS (4) shape the load.
set -u
cd "$(dirname "$0")/.."
build=${BUILD:-build}
for tool in curl jq openssl psql python3; do
	command -v $tool >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done
pg_bin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pg_bin/initdb" ] || pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || { echo "skip: PostgreSQL's initdb not found (make deps)"; exit 77; }
for b in gateway inventory catalog orders auth payments cart analytics reviews notifications; do
	[ -x "$build/bin/panthera-$b" ] || { echo "FAIL: $build/bin/panthera-$b is not built (make all)"; exit 1; }
done
[ -x "$build/bin/panthera" ] || { echo "FAIL: $build/bin/panthera is not built (make all)"; exit 1; }
for v in $(compgen -e | grep '^PANTHERA_'); do unset "$v"; done

tmp=$(mktemp -d /tmp/panthera-cluster-XXXXXX)
chmod 755 "$tmp"
cluster=$tmp/cluster
load_pid=""
cleanup() {
	[ -z "$load_pid" ] || { kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null; }
	deploy/local/down.sh "$cluster" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for f in "$cluster"/logs/*.log "$tmp"/*.log; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 8 "$f"; }
	done
	exit 1
}

# ---- 1. settings that cannot work are refused at once ----
refused() { # WANT_RC MESSAGE WHAT -- command...
	local want=$1 msg=$2 what=$3 rc=0
	shift 4
	"$@" >"$tmp/refused.log" 2>&1 || rc=$?
	[ $rc -eq "$want" ] && grep -qF -- "$msg" "$tmp/refused.log" ||
		fail "$what: exit $rc, want $want and \"$msg\": $(head -c 400 "$tmp/refused.log")"
}
refused 2 'serving tls+tcp://127.0.0.1:1 needs PANTHERA_RPC_TLS_CERT and PANTHERA_RPC_TLS_KEY' \
	'a tls+tcp:// RPC URL without a certificate' -- \
	env PANTHERA_RPC_URL=tls+tcp://127.0.0.1:1 "$build/bin/panthera-inventory"
gateway_urls=()
for s in USERS CATALOG INVENTORY CART ORDERS PAYMENTS REVIEWS ANALYTICS NOTIFICATIONS; do
	gateway_urls+=("PANTHERA_${s}_URL=tcp://127.0.0.1:1")
done
refused 1 'dialing tls+tcp://127.0.0.1:2 needs PANTHERA_RPC_TLS_CA' \
	'a tls+tcp:// service URL without a CA' -- \
	env "${gateway_urls[@]}" PANTHERA_CATALOG_URL=tcp://127.0.0.1:1,tls+tcp://127.0.0.1:2 \
	PANTHERA_HTTP_ADDR=127.0.0.1:0 "$build/bin/panthera-gateway"
refused 1 '--orders-url: an empty URL in' 'an empty URL in a list' -- \
	env "${gateway_urls[@]}" PANTHERA_ORDERS_URL=tcp://127.0.0.1:1,,tcp://127.0.0.1:2 \
	PANTHERA_HTTP_ADDR=127.0.0.1:0 "$build/bin/panthera-gateway"

# ---- 2. the end-to-end suite of the gateway against the cluster ----
GW_CLUSTER=$cluster BUILD=$build tests/gateway/endpoints.test.sh >"$tmp/endpoints.log" 2>&1 ||
	fail "tests/gateway/endpoints.test.sh against the cluster: $(tail -n 30 "$tmp/endpoints.log")"
echo "cluster: $(tail -n 1 "$tmp/endpoints.log")"

# ---- 3. replicas killed under load ----
admin_email=admin@example.com admin_password=admin-password-1 # endpoints.test.sh's
env PANTHERA_RATE_LIMIT_PER_MIN=100000 PANTHERA_AUTH_RATE_LIMIT_PER_MIN=1000 PANTHERA_HTTP_CACHE_MIB=0 \
	PANTHERA_BOOTSTRAP_ADMIN_EMAIL=$admin_email PANTHERA_BOOTSTRAP_ADMIN_PASSWORD=$admin_password \
	PANTHERA_HTTP_THREADS=2 PANTHERA_HTTP_ADDR="127.0.0.1:$(tools/free-ports.sh 1)" BUILD="$build" deploy/local/up.sh "$cluster" >"$tmp/up.log" 2>&1 ||
	fail "the cluster did not start again: $(tail -n 5 "$tmp/up.log")"
. "$cluster/cluster.env"
member_pid() { awk -v m="$1" '$1 == m { print $2 }' "$cluster/members"; }
member_port() { awk -v m="$1" '$1 == m { print $3 }' "$cluster/members"; }
tls=(--cacert "$cluster/tls/ca.pem" --servername panthera.internal)
# a service takes no caller without a certificate of the cluster's CA
rc=0
"$build/bin/panthera" health "tls+tcp://127.0.0.1:$(member_port inventory)" "${tls[@]}" \
	--connect-timeout 1000 >"$tmp/anon.log" 2>&1 || rc=$?
[ $rc -eq 14 ] || fail "a client without a certificate: exit $rc, want 14 (UNAVAILABLE): $(cat "$tmp/anon.log")"
# --health-check, the probe, over mutual TLS with a process's own settings
env PANTHERA_RPC_TLS_CA="$cluster/tls/ca.pem" PANTHERA_RPC_TLS_SERVER_NAME=panthera.internal \
	PANTHERA_RPC_TLS_CERT="$cluster/tls/catalog-2.pem" PANTHERA_RPC_TLS_KEY="$cluster/tls/catalog-2.key" \
	"$build/bin/pantherad" --health-check "tls+tcp://127.0.0.1:$(member_port catalog-2)" >"$tmp/hc.log" 2>&1 ||
	fail "--health-check over mutual TLS: $(cat "$tmp/hc.log")"
# calls of METHOD a member served (AdminService.GetMetrics, over mutual TLS)
served() { # MEMBER METHOD
	"$build/bin/panthera" call "tls+tcp://127.0.0.1:$(member_port "$1")" \
		panthera.admin.v1.AdminService/GetMetrics "${tls[@]}" --cert "$cluster/tls/gateway.pem" \
		--key "$cluster/tls/gateway.key" -H 'x-caller-role: ADMIN' 2>>"$tmp/served.err" |
		jq -r --arg m "$2" '[.metrics[] | select(.name == "panthera_rpc_server_calls_total" and
			any(.labels[]; .key == "method" and (.value | endswith($m)))) | .value] | add // 0'
}

python3 tests/support/loadgen.py --base "$CLUSTER_URL" --duration 24 \
	--admin-email "$admin_email" --admin-password "$admin_password" --readers "${CLUSTER_READERS:-6}" \
	--buyers "${CLUSTER_BUYERS:-4}" --rate "${CLUSTER_RATE:-400}" --report "$tmp/load.json" >"$tmp/load.log" 2>&1 &
load_pid=$!
for _ in $(seq 1 300); do
	grep -q 'loadgen: load started' "$tmp/load.log" && break
	kill -0 $load_pid 2>/dev/null || fail "loadgen did not start: $(tail -n 5 "$tmp/load.log")"
	sleep 0.1
done
grep -q 'loadgen: load started' "$tmp/load.log" || fail "loadgen did not start within 30 s"
sleep 4
kill -KILL "$(member_pid catalog-1)" || fail "no catalog-1 to kill"
echo "cluster: catalog-1 killed (SIGKILL) under load"
sleep 4
kill -KILL "$(member_pid orders-1)" || fail "no orders-1 to kill"
echo "cluster: orders-1 killed (SIGKILL) under load"
sleep 4
BUILD=$build deploy/local/up.sh "$cluster" >"$tmp/up-again.log" 2>&1 ||
	fail "up.sh did not bring the killed replicas back: $(tail -n 5 "$tmp/up-again.log")"
echo "cluster: up.sh restarted catalog-1 and orders-1 under load"
rc=0
wait $load_pid || rc=$?
load_pid=""
cat "$tmp/load.log"
gw_retries=$(curl -s "$CLUSTER_URL/metrics" | sed -n 's/^panthera_rpc_client_retries_total \([0-9]*\)$/\1/p')
[ -n "$gw_retries" ] || fail "the gateway's /metrics has no panthera_rpc_client_retries_total"
gw_503=$(grep -c '"status":503' "$cluster/logs/gateway.log")
echo "cluster: the gateway sent $gw_retries idempotent calls again after a lost replica, and answered $gw_503 requests 503"
[ $rc -eq 0 ] || fail "the load saw lost requests or orders (loadgen exit $rc)"
# the restarted replicas took calls again (their counters start at 0)
c1=$(($(served catalog-1 /ListProducts) + $(served catalog-1 /GetProduct)))
o1=$(($(served orders-1 /CreateOrder) + $(served orders-1 /GetOrder)))
[ "$c1" -gt 0 ] || fail "catalog-1 served nothing after its restart ($(cat "$tmp/served.err"))"
[ "$o1" -gt 0 ] || fail "orders-1 served nothing after its restart ($(cat "$tmp/served.err"))"
echo "cluster: after their restart, catalog-1 served $c1 reads and orders-1 $o1 calls"
# in the database: one order per Idempotency-Key of the load's user
user_id=$(jq -r .user_id "$tmp/load.json")
read -r n_orders n_keys < <(psql -X -q -A -t -F ' ' "$PANTHERA_DB_URL" -v ON_ERROR_STOP=1 -c "
	SELECT count(*), count(DISTINCT k.key) FROM orders.orders o
	LEFT JOIN orders.idempotency_keys k ON k.order_id = o.id WHERE o.user_id::text = '$user_id'" 2>&1)
placed=$(jq -r '.orders_placed + .orphans' "$tmp/load.json")
[ "$n_orders" = "$placed" ] && [ "$n_keys" = "$n_orders" ] ||
	fail "the database holds $n_orders orders under $n_keys keys for the load's user; the client placed $placed"

# ---- 4. every process stops cleanly ----
deploy/local/down.sh "$cluster" >"$tmp/down.log" 2>&1 || fail "down.sh: $(cat "$tmp/down.log")"
! grep -lE 'runtime error|Sanitizer' "$cluster"/logs/*.log || fail "a sanitizer report"
echo "cluster: endpoints suite passed; catalog-1 and orders-1 killed and restarted under load;" \
	"gateway: $gw_retries RPC retries, $gw_503 answers 503; client: $(jq -r '"\(.requests) requests, \(.failures) failed attempts, \(.retries) retries, \(.gave_up) given up, \(.orders_placed) orders placed, \(.orders_paid) paid, \(.duplicates) duplicates, \(.lost) lost"' "$tmp/load.json")"
