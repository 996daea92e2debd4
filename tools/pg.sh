#!/usr/bin/env bash
# tools/pg.sh - a private PostgreSQL cluster in a folder of ours.
#
#   tools/pg.sh start DIR [PORT]   initdb DIR/pgdata if needed, start it on a unix
#                                  socket in DIR/run (and 127.0.0.1:PORT, default
#                                  55432), print the connection URL
#   tools/pg.sh stop DIR           stop it (fast shutdown); harmless when stopped
#   tools/pg.sh url DIR [PORT]     print the connection URL
#
# No system service is involved. initdb refuses to run as root, so as root
# the cluster runs as the `postgres` user that Debian's package creates, and
# DIR is handed to it. A stale postmaster.pid left by a crash is handled by
# pg_ctl itself (it checks whether that process lives).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
port=${3:-55432}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|url DIR [PORT]" >&2; exit 2; }
bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pg.sh: PostgreSQL server binaries not found (make deps)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/pgdata
run=$dir/run

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

url() {
	echo "postgresql:///panthera?host=$run&port=$port&user=panthera"
}

case $cmd in
start)
	mkdir -p "$run"
	[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir" "$run"
	if [ ! -f "$data/PG_VERSION" ]; then
		[ "$(id -u)" -ne 0 ] || { mkdir -p "$data" && chown postgres:postgres "$data"; }
		as_owner "$bindir/initdb" -D "$data" -U panthera --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
	fi
	if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
			-o "-k $run -p $port -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
			{ tail -n 20 "$dir/postgres.log" >&2; exit 1; }
	fi
	as_owner "$bindir/psql" -h "$run" -p "$port" -U panthera -d postgres -qAt \
		-c "SELECT 1 FROM pg_database WHERE datname = 'panthera'" | grep -q 1 ||
		as_owner "$bindir/createdb" -h "$run" -p "$port" -U panthera panthera
	url
	;;
stop)
	if [ -f "$data/PG_VERSION" ]; then
		as_owner "$bindir/pg_ctl" -D "$data" -m fast -w status >/dev/null 2>&1 &&
			as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	fi
	true
	;;
url)
	url
	;;
*)
	echo "usage: $0 start|stop|url DIR [PORT]" >&2
	exit 2
	;;
esac
