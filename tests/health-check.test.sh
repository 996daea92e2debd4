#!/usr/bin/env bash
# `pantherad --health-check URL`, the exec probe of deploy/k8s: exit 0 while
# the server at URL (panthera-inventory on a private PostgreSQL) answers
# SERVING, 1 with a line naming the URL once it has stopped or when nothing
# listens, 2 for a bad command line. BUILD=build-san runs the sanitizer
# build: any sanitizer report fails the test.
set -u
cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
pg_bin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pg_bin/initdb" ] || pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || {
	echo "skip: PostgreSQL's initdb not found (make deps)"
	exit 77
}
for b in pantherad panthera-inventory; do
	[ -x "$build/bin/$b" ] || {
		echo "FAIL: $build/bin/$b is not built (make all)"
		exit 1
	}
done
for v in $(compgen -e | grep '^PANTHERA_'); do unset "$v"; done

tmp=$(mktemp -d /tmp/panthera-health-XXXXXX)
chmod 755 "$tmp"
pg_port=$((42000 + RANDOM % 8000))
rpc_port=$((50000 + RANDOM % 8000))
url=tcp://127.0.0.1:$rpc_port
pid=
cleanup() {
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null
	[ -z "$pid" ] || wait "$pid" 2>/dev/null
	tools/pg.sh stop "$tmp/data" "$pg_port" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	[ -f "$tmp/server.log" ] && tail -n 12 "$tmp/server.log"
	exit 1
}
# run the health check; its exit status in $rc, its stderr in $err
probe() {
	err=$("$build/bin/$1" "${@:2}" 2>&1 >/dev/null)
	rc=$?
	! grep -q 'Sanitizer' <<<"$err" || fail "a sanitizer report: $err"
}

probe pantherad --health-check
[ $rc -eq 2 ] || fail "--health-check without a URL exited $rc, want 2"
probe pantherad --health-check "$url" extra
[ $rc -eq 2 ] || fail "--health-check with two arguments exited $rc, want 2"
probe pantherad --health-check "$url"
[ $rc -eq 1 ] || fail "--health-check of a URL nobody serves exited $rc, want 1"
grep -q "$url" <<<"$err" || fail "the failure does not name the URL: $err"

db_url=$(tools/pg.sh start "$tmp/data" "$pg_port" | tail -n 1) || fail "PostgreSQL did not start"
PANTHERA_DB_URL=$db_url PANTHERA_RPC_URL=$url PANTHERA_MIGRATIONS_DIR=services \
	"$build/bin/panthera-inventory" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	grep -q '"pantherad.ready"' "$tmp/server.log" && break
	kill -0 "$pid" 2>/dev/null || fail "panthera-inventory exited"
	sleep 0.1
done
grep -q '"pantherad.ready"' "$tmp/server.log" || fail "panthera-inventory not ready in 10 s"
probe panthera-inventory --health-check "$url"
[ $rc -eq 0 ] || fail "--health-check of a serving server exited $rc: $err"
probe pantherad --health-check "$url"
[ $rc -eq 0 ] || fail "pantherad --health-check of a serving server exited $rc: $err"

kill -TERM "$pid"
wait "$pid"
pid=
probe panthera-inventory --health-check "$url"
[ $rc -eq 1 ] || fail "--health-check of a stopped server exited $rc, want 1"
! grep -q 'Sanitizer' "$tmp/server.log" || fail "a sanitizer report in the server's log"
echo "health-check: 0 while serving, 1 stopped or absent, 2 for a bad command line"
