#!/usr/bin/env bash
# deploy/local/up.sh - Panthera as a local cluster of processes (`make cluster`).
#
#   deploy/local/up.sh [DIR]     start it (DIR: the cluster's folder, default
#                                ./.panthera-local); deploy/local/down.sh stops it
#
# What runs, each its own process in the background, logging to DIR/logs:
#   - a private PostgreSQL in DIR/pg (unless PANTHERA_DB_URL is given);
#   - every service's binary, panthera-<service>, serving RPC over
#     tls+tcp://127.0.0.1:<port> with mutual TLS: a throwaway CA made at
#     start (DIR/tls) signs one certificate per process, for the name
#     panthera.internal that every process checks (PANTHERA_RPC_TLS_CA,
#     PANTHERA_RPC_TLS_SERVER_NAME, PANTHERA_RPC_TLS_CERT, PANTHERA_RPC_TLS_KEY);
#   - two replicas of the catalog and of orders (catalog-1, catalog-2,
#     orders-1, orders-2): each service's URL setting lists its replicas,
#     comma-separated, and every channel spreads its calls over those up;
#   - panthera-gateway, dialing all of them, serving the REST API of API.md
#     on PANTHERA_HTTP_ADDR (default 127.0.0.1:8080).
#
# Running it again while the cluster runs starts only the members that are
# not running (a killed replica comes back on its port, with the same CA).
# PANTHERA_* settings in the environment reach every process (rate limits,
# PANTHERA_SMTP_URL, PANTHERA_BOOTSTRAP_ADMIN_EMAIL...; kept in DIR/settings.env
# for members started again); the transport ones (RPC URL, TLS, service
# URLs) are the cluster's. CLUSTER_PG_PORT
# picks PostgreSQL's port (default: one that is free). BUILD=build-san runs
# the sanitizer build. DIR/cluster.env tells the gateway's URL, the
# database URL and the data folder (`. DIR/cluster.env`); DIR/members lists
# each member's name, pid and RPC port.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
build=${BUILD:-build}
dir=${1:-./.panthera-local}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
members=(inventory auth orders-1 catalog-1 payments cart analytics reviews notifications orders-2
	catalog-2 gateway)
# Waves, each started once the one before is ready: the catalog seeds its
# demo stock through inventory, and orders create the outbox that payments,
# analytics and notifications read; a second catalog replica starts after
# the first has seeded (both would seed an empty catalog); the gateway last.
waves=("inventory auth orders-1" "catalog-1 payments cart analytics reviews notifications orders-2"
	"catalog-2" "gateway")

say() { echo "cluster: $*" >&2; }
die() {
	say "$*"
	exit 1
}
command -v openssl >/dev/null || die "openssl is not installed (make deps)"
command -v python3 >/dev/null || die "python3 is not installed (make deps)"
for m in "${members[@]}"; do
	[ -x "$build/bin/panthera-${m%-[0-9]}" ] || die "$build/bin/panthera-${m%-[0-9]} is not built (make all)"
done

declare -A port pid
# the members file of a cluster started before: name pid port
if [ -f "$dir/members" ]; then
	while read -r name p rpc; do
		port[$name]=$rpc
		pid[$name]=$p
	done <"$dir/members"
fi
alive() { # NAME: its recorded process runs, and is one of ours
	local p=${pid[$1]:-}
	[ -n "$p" ] && grep -qa "panthera-${1%-[0-9]}" "/proc/$p/cmdline" 2>/dev/null
}
running=0
for m in "${members[@]}"; do alive "$m" && running=$((running + 1)); done
[ $running -lt ${#members[@]} ] || { say "already running (deploy/local/down.sh $dir stops it)"; exit 0; }

# The caller's settings: kept at a first start, so that a member started
# again later runs with the same ones (a cluster's settings are those of its
# first start; stop it to change them).
if [ $running -eq 0 ]; then
	(umask 077 && export -p | grep '^declare -x PANTHERA_' >"$dir/settings.env" || true)
else
	for v in $(compgen -e | grep '^PANTHERA_'); do unset "$v"; done
	# shellcheck disable=SC1091
	. "$dir/settings.env"
fi
if [ $running -eq 0 ]; then
	read -r -a fresh <<<"$(tools/free-ports.sh $((${#members[@]} + 1)))"
	i=0
	for m in "${members[@]}"; do
		port[$m]=${fresh[$i]}
		i=$((i + 1))
	done
	port[pg]=${CLUSTER_PG_PORT:-${fresh[$i]}}
	pid=()
else
	port[pg]=$(sed -n 's/^pg_port=//p' "$dir/ports" 2>/dev/null || true)
fi

# The throwaway CA and one certificate per member, made when nothing runs.
tls=$dir/tls
if [ $running -eq 0 ] || [ ! -f "$tls/ca.pem" ]; then
	rm -rf "$tls"
	mkdir -p "$tls"
	chmod 700 "$tls"
	(
		cd "$tls"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
			-out ca.pem -days 30 -subj "/CN=panthera local cluster CA" >/dev/null 2>&1
		for m in "${members[@]}"; do
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$m.key" \
				-out "$m.csr" -subj "/CN=$m.panthera.internal" >/dev/null 2>&1
			printf 'subjectAltName=DNS:panthera.internal,DNS:%s.panthera.internal\n' "$m" >"$m.ext"
			openssl x509 -req -in "$m.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
				-extfile "$m.ext" -out "$m.pem" >/dev/null 2>&1
			rm -f "$m.csr" "$m.ext"
		done
	) || die "openssl could not make the cluster's certificates"
fi

# The database: the one given, or a private PostgreSQL.
if [ -n "${PANTHERA_DB_URL:-}" ]; then
	db_url=$PANTHERA_DB_URL
	private_pg=0
else
	db_url=$(tools/pg.sh start "$dir/pg" "${port[pg]}") ||
		die "no PostgreSQL (port ${port[pg]}; CLUSTER_PG_PORT picks another)"
	private_pg=1
fi
printf 'pg_port=%s\nprivate_pg=%s\n' "${port[pg]}" "$private_pg" >"$dir/ports"

url_of() { # SERVICE: the comma-separated URLs of its replicas
	local m list=""
	for m in "${members[@]}"; do
		[ "${m%-[0-9]}" = "$1" ] || continue
		list+="${list:+,}tls+tcp://127.0.0.1:${port[$m]}"
	done
	echo "$list"
}
# What every member shares; each adds its own RPC URL and certificate.
export PANTHERA_DB_URL=$db_url
export PANTHERA_DATA_DIR=$dir/data
export PANTHERA_MIGRATIONS_DIR=$root/services
export PANTHERA_OPENAPI_FILE=${PANTHERA_OPENAPI_FILE:-$root/gen/panthera.openapi.json}
export PANTHERA_HTTP_ADDR=${PANTHERA_HTTP_ADDR:-127.0.0.1:8080}
export PANTHERA_RPC_TLS_CA=$tls/ca.pem PANTHERA_RPC_TLS_SERVER_NAME=panthera.internal
export PANTHERA_INVENTORY_URL=$(url_of inventory) PANTHERA_CATALOG_URL=$(url_of catalog)
export PANTHERA_USERS_URL=$(url_of auth) PANTHERA_ORDERS_URL=$(url_of orders)
export PANTHERA_PAYMENTS_URL=$(url_of payments) PANTHERA_CART_URL=$(url_of cart)
export PANTHERA_ANALYTICS_URL=$(url_of analytics) PANTHERA_REVIEWS_URL=$(url_of reviews)
export PANTHERA_NOTIFICATIONS_URL=$(url_of notifications)
mkdir -p "$dir/logs" "$PANTHERA_DATA_DIR"

save_members() {
	local m
	: >"$dir/members.tmp"
	for m in "${members[@]}"; do
		echo "$m ${pid[$m]:-0} ${port[$m]}" >>"$dir/members.tmp"
	done
	mv "$dir/members.tmp" "$dir/members"
}
declare -A from # the line of each member's log its present start begins at
launch() { # MEMBER: in its own session, so that a terminal's Ctrl-C leaves it be
	local m=$1 log=$dir/logs/$1.log
	touch "$log"
	from[$m]=$(($(wc -l <"$log") + 1))
	PANTHERA_RPC_URL=tls+tcp://127.0.0.1:${port[$m]} PANTHERA_RPC_TLS_CERT=$tls/$m.pem \
		PANTHERA_RPC_TLS_KEY=$tls/$m.key setsid "$build/bin/panthera-${m%-[0-9]}" \
		>>"$log" 2>&1 </dev/null &
	pid[$m]=$!
}
ready() { # MEMBER: 0 once it logged, since its start, that it serves
	local want='"event":"pantherad.ready"'
	[ "$1" != gateway ] || want='"event":"gateway.http","msg":"the REST API'
	tail -n "+${from[$1]}" "$dir/logs/$1.log" | grep -q "$want"
}
await() { # MEMBER...: each ready within 90 s, else the reason and exit 1
	local m i
	for m in "$@"; do
		for i in $(seq 1 900); do
			ready "$m" && continue 2
			kill -0 "${pid[$m]}" 2>/dev/null || break
			sleep 0.1
		done
		save_members
		tail -n "+${from[$m]}" "$dir/logs/$m.log" | tail -n 15 >&2
		die "$m did not start (log above: $dir/logs/$m.log); deploy/local/down.sh $dir stops the rest"
	done
}
for wave in "${waves[@]}"; do
	started=()
	for m in $wave; do
		alive "$m" && continue
		launch "$m"
		started+=("$m")
	done
	save_members
	[ ${#started[@]} -eq 0 ] || await "${started[@]}"
done

cat >"$dir/cluster.env" <<EOF
CLUSTER_URL=http://$PANTHERA_HTTP_ADDR
PANTHERA_DB_URL='$db_url'
PANTHERA_DATA_DIR=$PANTHERA_DATA_DIR
EOF
say "up: the REST API on http://$PANTHERA_HTTP_ADDR; $((${#members[@]} - 1)) service processes over" \
	"tls+tcp:// (mutual TLS, CA $tls/ca.pem): catalog and orders twice each; database $db_url"
say "logs in $dir/logs; members (name pid port) in $dir/members; stop: deploy/local/down.sh $dir"
