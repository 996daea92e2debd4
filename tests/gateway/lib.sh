# shellcheck shell=bash
# tests/gateway/lib.sh - what the curl tests of the REST API share, sourced
# by tests/gateway/*.test.sh (not a test itself): a private PostgreSQL and
# pantherad serving HTTP on it, the call helper and the error-shape check.
#
# The sourcing script sets -u, cds to the repository root and then calls:
#   gw_start [VAR=value...]  start PostgreSQL and pantherad (with those extra
#                            settings); sets $tmp, $pid, $base, $data_dir,
#                            $db_url
#   call METHOD PATH [BODY] [curl args...]  sets $status, $body, $headers,
#                            $curl_rc
#   expect STATUS WHAT       fail unless the last call answered STATUS
#   error_shape CODE STATUS  fail unless the body is AIP-193 with those
#   fail WHAT                print FAIL: WHAT and pantherad's log tail, exit 1
#   gw_stop                  stop pantherad: exit 0 and no sanitizer report
#   gw_logs                  print the logs of every process serving
# The EXIT trap stops pantherad and PostgreSQL and removes $tmp (kept when
# GW_KEEP is set). GW_TRACE=FILE appends every call and its answer to FILE.
# GW_CLUSTER=DIR: the same against the local cluster of deploy/local/up.sh
# in DIR (each service its own process over mutual TLS, two replicas of
# catalog and orders, panthera-gateway in front), which gw_start starts
# with the same settings and gw_stop stops (deploy/local/down.sh).
build=${BUILD:-build}
command -v curl >/dev/null || { echo "skip: curl is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 is not installed"; exit 77; }
tmp=$(mktemp -d /tmp/panthera-api-XXXXXX)
chmod 755 "$tmp"
data_dir=$tmp/data
pid=""
pg_port=""
gw_cleanup_hook=""
cluster_up=0
cleanup() {
	[ -z "$gw_cleanup_hook" ] || $gw_cleanup_hook
	[ $cluster_up -eq 0 ] || deploy/local/down.sh "$GW_CLUSTER" >/dev/null 2>&1
	[ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	[ -z "$pg_port" ] || tools/pg.sh stop "$data_dir" "$pg_port" >/dev/null 2>&1
	[ -n "${GW_KEEP-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	if [ -n "${GW_CLUSTER-}" ]; then
		tail -n 12 "$GW_CLUSTER"/logs/*.log
	else
		tail -n 20 "$tmp/pantherad.log"
	fi
	exit 1
}
gw_logs() {
	if [ -n "${GW_CLUSTER-}" ]; then cat "$GW_CLUSTER"/logs/*.log; else cat "$tmp/pantherad.log"; fi
}

# gw_cluster_start [VAR=value...]: deploy/local/up.sh in $GW_CLUSTER with
# those settings and an HTTP port of the kernel's choosing.
gw_cluster_start() {
	local http_port
	http_port=$(tools/free-ports.sh 1)
	cluster_up=1
	env "$@" PANTHERA_HTTP_ADDR="127.0.0.1:$http_port" PANTHERA_HTTP_THREADS=2 BUILD="$build" \
		deploy/local/up.sh "$GW_CLUSTER" >"$tmp/cluster-up.log" 2>&1 ||
		fail "the local cluster did not start: $(tail -n 5 "$tmp/cluster-up.log")"
	base=$(. "$GW_CLUSTER/cluster.env" && echo "$CLUSTER_URL")
	db_url=$(. "$GW_CLUSTER/cluster.env" && echo "$PANTHERA_DB_URL")
	data_dir=$(. "$GW_CLUSTER/cluster.env" && echo "$PANTHERA_DATA_DIR")
}

# gw_start [VAR=value...]: a private PostgreSQL (a random port may be taken:
# a few tries), then pantherad with HTTP and RPC on random ports, the
# settings every test needs, and the caller's extra ones.
gw_start() {
	local url="" up
	[ -z "${GW_CLUSTER-}" ] || { gw_cluster_start "$@"; return; }
	for _ in 1 2 3 4 5; do
		pg_port=$((42000 + RANDOM % 8000))
		url=$(tools/pg.sh start "$data_dir" "$pg_port" 2>>"$tmp/pg.err") && break
		url=""
	done
	[ -n "$url" ] || fail "no PostgreSQL: $(tail -n 3 "$tmp/pg.err")"
	db_url=$url
	for _ in 1 2 3 4 5; do
		# ports the kernel says are free now (random ones collided with
		# other test clusters on a busy machine)
		read -r http_port rpc_port < <(tools/free-ports.sh 2)
		env PANTHERA_DB_URL="$url" PANTHERA_RPC_URL="tcp://127.0.0.1:$rpc_port" \
			PANTHERA_HTTP_ADDR="127.0.0.1:$http_port" PANTHERA_HTTP_THREADS=2 \
			PANTHERA_OPENAPI_FILE="$(pwd)/gen/panthera.openapi.json" PANTHERA_DATA_DIR="$data_dir" \
			PANTHERA_MIGRATIONS_DIR="$(pwd)/services" "$@" \
			"$build/bin/pantherad" >"$tmp/pantherad.log" 2>&1 &
		pid=$!
		up=0
		for _ in $(seq 1 300); do
			grep -q '"event":"pantherad.http","msg":"the REST API' "$tmp/pantherad.log" 2>/dev/null &&
				{ up=1; break; }
			grep -q '"event":"pantherad.http"' "$tmp/pantherad.log" 2>/dev/null && break # cannot serve
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		[ $up -eq 1 ] && break
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		pid=""
	done
	[ -n "$pid" ] || fail "pantherad did not serve HTTP"
	base=http://127.0.0.1:$http_port
}

# gw_stop: SIGTERM, pantherad must exit 0 (a leak report under the
# sanitizer build, BUILD=build-san, makes it exit otherwise) and its log must
# hold no sanitizer report.
gw_stop() {
	if [ -n "${GW_CLUSTER-}" ]; then
		cluster_up=0
		deploy/local/down.sh "$GW_CLUSTER" >"$tmp/cluster-down.log" 2>&1 ||
			fail "the local cluster did not stop cleanly: $(cat "$tmp/cluster-down.log")"
		! grep -qE 'runtime error|Sanitizer' "$GW_CLUSTER"/logs/*.log || fail "a sanitizer report"
		return
	fi
	kill -TERM "$pid"
	wait "$pid" || fail "pantherad did not exit 0 on SIGTERM"
	pid=""
	! grep -qE 'runtime error|Sanitizer' "$tmp/pantherad.log" || fail "a sanitizer report"
}

# call METHOD PATH [BODY] [extra curl args...]: sets $status, $body, $headers
# (headers lower-case names as sent, CR removed)
call() {
	local method=$1 path=$2 data=${3-}
	shift 3 2>/dev/null || shift $#
	local args=(-s -X "$method" -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' "$@")
	[ -z "$data" ] || args+=(-H 'content-type: application/json' --data-binary "$data")
	: >"$tmp/b" # curl leaves the file alone when there is no body
	status=$(curl --max-time 20 "${args[@]}" "$base$path")
	curl_rc=$? # 0, or why there is no status (7: refused, 28: timeout, 52: no reply)
	body=$(<"$tmp/b")
	headers=$(<"$tmp/h")
	headers=${headers//$'\r'/}
	[ -z "${GW_TRACE-}" ] || printf '%s %s %s\n%s\n' "$method" "$path" "$status" "$body" >>"$GW_TRACE"
}
expect() { # STATUS WHAT
	[ "$status" = "$1" ] || fail "$2: got $status, want $1: $body"
}
error_shape() { # STATUS STATUS_NAME
	[ "$(python3 -c 'import sys, json; e = json.load(sys.stdin)["error"]
print(e["code"], e["status"], type(e["details"]).__name__, type(e["message"]).__name__)' \
		<<<"$body" 2>/dev/null)" = "$1 $2 list str" ] ||
		fail "error body of $1 is not the AIP-193 shape: $body"
}
