#!/usr/bin/env bash
# deploy/local/down.sh - stop the local cluster of deploy/local/up.sh
# (`make cluster-down`).
#
#   deploy/local/down.sh [DIR]   DIR: the cluster's folder, default ./.panthera-local
#
# SIGTERM to every member (each drains its calls and exits), SIGKILL to any
# still there after 20 s, then the private PostgreSQL stops. The throwaway
# CA and certificates are deleted; the logs and the database stay (the next
# up.sh starts on the same data). Exit 1 when a member had to be killed or
# did not log its clean exit, naming it.
set -uo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-./.panthera-local}
[ -d "$dir" ] || { echo "cluster: no cluster in $dir" >&2; exit 0; }
dir=$(cd "$dir" && pwd)
rc=0
declare -A pid from
if [ -f "$dir/members" ]; then
	while read -r name p _; do
		# a recorded pid is signalled only if it is still that member
		grep -qa "panthera-${name%-[0-9]}" "/proc/$p/cmdline" 2>/dev/null || continue
		pid[$name]=$p
		from[$name]=$(($(wc -l <"$dir/logs/$name.log") + 1))
		kill -TERM "$p" 2>/dev/null
	done <"$dir/members"
fi
for _ in $(seq 1 200); do
	left=0
	for m in "${!pid[@]}"; do kill -0 "${pid[$m]}" 2>/dev/null && left=1; done
	[ $left -eq 1 ] || break
	sleep 0.1
done
for m in "${!pid[@]}"; do
	if kill -0 "${pid[$m]}" 2>/dev/null; then
		kill -KILL "${pid[$m]}" 2>/dev/null
		echo "cluster: $m did not stop within 20 s of SIGTERM: killed" >&2
		rc=1
	elif ! tail -n "+${from[$m]}" "$dir/logs/$m.log" | grep -q '"event":"\(pantherad\|gateway\)\.exit"'; then
		echo "cluster: $m stopped without logging its exit (see $dir/logs/$m.log)" >&2
		rc=1
	fi
done
rm -f "$dir/members"
if [ "$(sed -n 's/^private_pg=//p' "$dir/ports" 2>/dev/null)" = 1 ]; then
	tools/pg.sh stop "$dir/pg" >/dev/null 2>&1 || { echo "cluster: PostgreSQL did not stop" >&2; rc=1; }
fi
rm -rf "$dir/tls"
echo "cluster: down (${#pid[@]} processes stopped; logs and data stay in $dir)" >&2
exit $rc
