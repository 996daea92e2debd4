#!/usr/bin/env bash
# tools/run.sh - `make run`: the platform in the foreground.
#
# Starts a private PostgreSQL cluster in PANTHERA_DATA_DIR (default
# ./.panthera; port PANTHERA_PG_PORT, default 55432) when PANTHERA_DB_URL is
# not set, then runs pantherad, which migrates and serves the services over
# PANTHERA_RPC_URL (default here tcp://127.0.0.1:7070). SIGINT or SIGTERM
# drains pantherad and stops the private PostgreSQL. Running it again, or
# after a crash, reuses the cluster (pg_ctl sees a stale pid file for what
# it is).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${PANTHERA_DATA_DIR:-./.panthera}
port=${PANTHERA_PG_PORT:-55432}
export PANTHERA_RPC_URL=${PANTHERA_RPC_URL:-tcp://127.0.0.1:7070}
export PANTHERA_MIGRATIONS_DIR=${PANTHERA_MIGRATIONS_DIR:-$(pwd)/services}
export PANTHERA_OPENAPI_FILE=${PANTHERA_OPENAPI_FILE:-$(pwd)/gen/panthera.openapi.json}

started_pg=0
daemon=""
cleanup() {
	if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
		kill -TERM "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	if [ $started_pg -eq 1 ]; then
		tools/pg.sh stop "$data" "$port" && echo "run: private PostgreSQL stopped" >&2
	fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if [ -z "${PANTHERA_DB_URL:-}" ]; then
	PANTHERA_DB_URL=$(tools/pg.sh start "$data" "$port")
	started_pg=1
	export PANTHERA_DB_URL
	echo "run: private PostgreSQL at $PANTHERA_DB_URL (data in $data)" >&2
fi
echo "run: pantherad serves RPC on $PANTHERA_RPC_URL (health: grpc.health.v1.Health/Check;" \
	"AuthService, UserService, CatalogService with the demo catalog, InventoryService, CartService," \
	"OrderService, PaymentService, ReviewService, NotificationService, AnalyticsService, AdminService);" \
	"and the REST API of API.md on http://${PANTHERA_HTTP_ADDR:-127.0.0.1:8080}. Ctrl-C stops." >&2
"$build/bin/pantherad" &
daemon=$!
wait "$daemon"
