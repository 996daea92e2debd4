#!/usr/bin/env bash
# tools/run.sh - `make run`: run what the platform serves so far.
#
# Today (the generator issue): a private PostgreSQL cluster in
# PANTHERA_DATA_DIR (default ./.panthera) when PANTHERA_DB_URL is not set,
# and a summary of the generated API (routes, OpenAPI document). The RPC
# services and the HTTP gateway join here as their issues land. Stops the
# private PostgreSQL on SIGINT/SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${PANTHERA_DATA_DIR:-./.panthera}

started_pg=0
cleanup() {
	if [ $started_pg -eq 1 ]; then
		tools/pg.sh stop "$data" && echo "run: private PostgreSQL stopped"
	fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if [ -z "${PANTHERA_DB_URL:-}" ]; then
	PANTHERA_DB_URL=$(tools/pg.sh start "$data")
	started_pg=1
	export PANTHERA_DB_URL
	echo "run: private PostgreSQL at $PANTHERA_DB_URL (data in $data)"
fi
psql "$PANTHERA_DB_URL" -qAt -c "SELECT 'run: database answers: ' || version()"

echo "run: generated API: $(grep -c '\.http_method = ' gen/panthera_routes.c) HTTP routes over" \
	"$(grep -c '^	&' gen/panthera_routes.c) services; OpenAPI document: gen/panthera.openapi.json"
grep -o '\.http_method = "[A-Z]*",\|\.path_template = "[^"]*"' gen/panthera_routes.c |
	sed -e 's/.*= "\(.*\)",*/\1/' | paste - - | sed 's/^/  /'
echo "run: protoc-gen-panthera at $build/bin/protoc-gen-panthera; the RPC services and the gateway arrive with their issues."
echo "run: serving until Ctrl-C"
while true; do sleep 3600 & wait $!; done
