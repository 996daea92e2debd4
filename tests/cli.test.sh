#!/usr/bin/env bash
# The `panthera` CLI (docs/cli.md) against a live pantherad on a private
# PostgreSQL (tests/gateway/lib.sh starts both; the CLI speaks to the RPC
# URL): list, describe, call, health, --help of each command, and every
# failure's exit status and one-line message: bad usage, bad URL, nobody
# listening, unknown service, method and symbol, bad JSON naming the field,
# an error status from the service, a deadline.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/gateway/lib.sh
cli=$build/bin/panthera
[ -x "$cli" ] || { echo "skip: $cli is not built (make $cli)"; exit 77; }
gw_start PANTHERA_LOG_LEVEL=info
url=tcp://127.0.0.1:$rpc_port

# run_cli RC WHAT ARGS...: run the CLI, fail unless it exits RC; a success
# prints nothing on stderr, a failure exactly one line "panthera: ...".
# Sets $out and $err.
run_cli() {
	local want=$1 what=$2
	shift 2
	"$cli" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	local rc=$?
	out=$(<"$tmp/out")
	err=$(<"$tmp/err")
	[ "$rc" = "$want" ] || fail "$what: exit $rc, want $want: $err"
	if [ "$want" = 0 ]; then
		[ -z "$err" ] || fail "$what: stderr on success: $err"
	else
		if [ "$(wc -l <"$tmp/err")" != 1 ] || [[ $err != "panthera: "* ]]; then
			fail "$what: not one line 'panthera: ...' on stderr: $err"
		fi
	fi
}
has() { # WHAT TEXT PATTERN: fail unless TEXT matches the extended regex
	grep -qE -- "$3" <<<"$2" || fail "$1: no /$3/ in: $2"
}

# help: of the tool and of each command, on stdout, exit 0
run_cli 0 "--help" --help
has "--help" "$out" '^usage: panthera COMMAND'
for c in list describe call health; do
	run_cli 0 "$c --help" "$c" --help
	has "$c --help" "$out" "^usage: panthera $c URL"
done

# list: every service of pantherad, sorted, the built-in ones included
run_cli 0 "list" list "$url"
for s in grpc.health.v1.Health panthera.reflection.v1.ServerReflection \
	panthera.catalog.v1.CatalogService panthera.orders.v1.OrderService \
	panthera.auth.v1.AuthService panthera.cart.v1.CartService; do
	grep -qx "$s" <<<"$out" || fail "list: no $s in: $out"
done
[ "$out" = "$(LC_ALL=C sort <<<"$out")" ] || fail "list is not sorted: $out"

# describe: a service, a method (with its messages), a message, an enum
run_cli 0 "describe a service" describe "$url" panthera.catalog.v1.CatalogService
has "describe service" "$out" '^service panthera\.catalog\.v1\.CatalogService \{'
has "describe service" "$out" '^  rpc GetProduct\(panthera\.catalog\.v1\.GetProductRequest\) returns \(panthera\.catalog\.v1\.Product\);$'
run_cli 0 "describe a method" describe "$url" panthera.catalog.v1.CatalogService/GetProduct
has "describe method" "$out" '^message panthera\.catalog\.v1\.GetProductRequest \{'
has "describe method" "$out" '^  string product_id = 1;$'
has "describe method" "$out" '^  google\.protobuf\.Timestamp created_at = [0-9]+;$'
run_cli 0 "describe Service.Method" describe "$url" panthera.catalog.v1.CatalogService.GetProduct
has "describe Service.Method" "$out" '^message panthera\.catalog\.v1\.Product \{'
run_cli 0 "describe a message" describe "$url" panthera.orders.v1.Order
has "describe message" "$out" '^  repeated panthera\.orders\.v1\.OrderItem items = [0-9]+;$'
run_cli 0 "describe an enum" describe "$url" panthera.orders.v1.OrderStatus
has "describe enum" "$out" '^  PAID = [0-9]+;$'
run_cli 5 "describe an unknown symbol" describe "$url" panthera.catalog.v1.Nope
has "describe unknown" "$err" 'panthera\.catalog\.v1\.Nope'

# call: JSON in and out through the gateway's mapping
run_cli 0 "call ListProducts" call "$url" panthera.catalog.v1.CatalogService/ListProducts -d '{"pageSize": 2}'
read -r n_products page_size product < <(python3 -c 'import sys, json
d = json.loads(sys.argv[1]); print(len(d["products"]), d["pageSize"], d["products"][0]["id"])' "$out") ||
	fail "call ListProducts: not the JSON of a ListProductsResponse: $out"
[ "$n_products $page_size" = "2 2" ] || fail "call ListProducts: pageSize 2 not honoured: $out"
run_cli 0 "call with proto names, Service.Method" call "$url" \
	panthera.catalog.v1.CatalogService.GetProduct -d "{\"product_id\": \"$product\"}"
has "call GetProduct" "$out" "^\\{\"id\":\"$product\",.*\"isActive\":(true|false),.*\"createdAt\":\"[0-9T:.-]+Z\""
echo "{\"productId\": \"$product\"}" >"$tmp/req.json"
run_cli 0 "call -d @file" call "$url" panthera.catalog.v1.CatalogService/GetProduct -d "@$tmp/req.json"
has "call -d @file" "$out" "\"id\":\"$product\""
"$cli" call "$url" panthera.catalog.v1.CatalogService/GetProduct -d @- <"$tmp/req.json" >"$tmp/out" ||
	fail "call -d @-: exit $?"
has "call -d @-" "$(<"$tmp/out")" "\"id\":\"$product\""

# metadata: the cart service wants the caller's identity
run_cli 16 "call without identity" call "$url" panthera.cart.v1.CartService/GetCart
has "UNAUTHENTICATED" "$err" '^panthera: UNAUTHENTICATED: '
user=11111111-1111-4111-8111-111111111111
run_cli 0 "call with -H" call "$url" panthera.cart.v1.CartService/GetCart \
	-H "X-Caller-Id: $user" -H 'x-caller-roles: USER'
has "call with -H" "$out" "\"userId\":\"$user\""
run_cli 3 "-H without a colon" call "$url" panthera.cart.v1.CartService/GetCart -H 'x-caller-id'

# the service's status is the exit status, its message on stderr
run_cli 5 "NOT_FOUND from the service" call "$url" panthera.catalog.v1.CatalogService/GetProduct \
	-d '{"productId": "00000000-0000-4000-8000-000000000000"}'
has "NOT_FOUND" "$err" '^panthera: NOT_FOUND: product .* not found'

# bad JSON: INVALID_ARGUMENT, naming the field
run_cli 3 "unknown field" call "$url" panthera.catalog.v1.CatalogService/GetProduct -d '{"productId": "x", "colour": 1}'
has "unknown field" "$err" 'field colour: unknown field'
run_cli 3 "wrong type" call "$url" panthera.catalog.v1.CatalogService/ListProducts -d '{"pageSize": "many"}'
has "wrong type" "$err" 'field pageSize'
run_cli 3 "malformed JSON" call "$url" panthera.catalog.v1.CatalogService/ListProducts -d '{"pageSize": '
has "malformed JSON" "$err" 'bad JSON'

# unknown service or method: UNIMPLEMENTED, as the server would answer
run_cli 12 "unknown method" call "$url" panthera.catalog.v1.CatalogService/Nope
has "unknown method" "$err" 'has no method Nope'
run_cli 12 "unknown service" call "$url" nope.v1.Service/Call
has "unknown service" "$err" 'service nope\.v1\.Service is not served'
run_cli 3 "not a method name" call "$url" GetProduct

# health
run_cli 0 "health" health "$url"
[ "$out" = SERVING ] || fail "health: $out"
run_cli 0 "health of a service" health "$url" panthera.orders.v1.OrderService
[ "$out" = SERVING ] || fail "health of a service: $out"
run_cli 5 "health of an unknown service" health "$url" nope.v1.Service

# usage, URLs, reachability, deadline
run_cli 3 "no command" 
run_cli 3 "unknown command" frobnicate "$url"
run_cli 3 "missing argument" describe "$url"
run_cli 3 "unknown option" list "$url" --colour
run_cli 3 "bad --timeout" list "$url" --timeout soon
run_cli 3 "bad URL" list "http://127.0.0.1:$rpc_port"
has "bad URL" "$err" "bad URL"
run_cli 3 "tls+tcp without --cacert" list "tls+tcp://127.0.0.1:$rpc_port"
start=$(date +%s%N)
run_cli 14 "nobody listening" list "tcp://127.0.0.1:$((http_port + 2))" --connect-timeout 500
has "nobody listening" "$err" '^panthera: UNAVAILABLE: tcp://'
[ $((($(date +%s%N) - start) / 1000000)) -lt 2500 ] || fail "--connect-timeout 500 did not bound the wait"
# a peer that takes the connection (the SP handshake of a REP socket) and
# never answers: the call's deadline, not the connection wait, ends it
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.recv(8); c.sendall(b"\x00SP\x00\x00\x31\x00\x00"); time.sleep(20)' >"$tmp/mute.port" &
mute=$!
for _ in $(seq 1 50); do [ -s "$tmp/mute.port" ] && break; sleep 0.1; done
run_cli 4 "deadline" list "tcp://127.0.0.1:$(<"$tmp/mute.port")" --timeout 300
has "deadline" "$err" '^panthera: DEADLINE_EXCEEDED'
kill "$mute" 2>/dev/null
wait "$mute" 2>/dev/null

gw_stop
echo "ok: panthera list, describe, call, health and their failures"
