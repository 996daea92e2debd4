#!/usr/bin/env bash
# `make install` honours PREFIX and DESTDIR, and a program built with the
# installed panthera.pc compiles against the installed headers (generated
# stubs, route table, runtime contract). Linking waits for the RPC runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
cc=${CC:-cc}
san=()
[ "${SANITIZE:-0}" != 1 ] || san=(-fsanitize=address,undefined)
trap 'rm -rf "$tmp"' EXIT
make -s install SANITIZE="${SANITIZE:-0}" BUILD="${BUILD:-build}" DESTDIR="$tmp/root" PREFIX=/opt/panthera >/dev/null
root=$tmp/root/opt/panthera
for f in lib/libpanthera.a lib/libpanthera.so lib/libpanthera.so.0 lib/pkgconfig/panthera.pc \
	bin/protoc-gen-panthera include/panthera/rpc.h include/panthera/rpc_route.h \
	include/panthera/gen/panthera/catalog/v1/catalog.panthera.h include/panthera/gen/panthera_routes.h \
	share/panthera/panthera.openapi.json share/panthera/proto/panthera/api/options.proto \
	share/panthera/services/catalog/migrations/001_catalog.sql bin/panthera-gateway; do
	[ -e "$root/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
grep -q '^prefix=/opt/panthera$' "$root/lib/pkgconfig/panthera.pc" || { echo "FAIL: panthera.pc prefix"; exit 1; }
cflags=$(PKG_CONFIG_PATH="$root/lib/pkgconfig" pkg-config --define-variable=prefix="$root" --cflags panthera)
case $cflags in *"$root/include"*) ;; *) echo "FAIL: pkg-config --cflags gave '$cflags'"; exit 1 ;; esac
cat >"$tmp/app.c" <<'C'
#include <panthera/rpc_route.h>
#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera_routes.h"
int app_route_count(void);
int app_route_count(void)
{
	Panthera__Catalog__V1__GetProductRequest req = PANTHERA__CATALOG__V1__GET_PRODUCT_REQUEST__INIT;
	(void)req;
	return (int)panthera_routes.n_routes + PANTHERA_CATALOG_V1_CATALOG_SERVICE_METHOD_COUNT;
}
C
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Werror $cflags -c "$tmp/app.c" -o "$tmp/app.o"

# A program that serves and calls the health service, linked against the
# installed static library only.
cat >"$tmp/health.c" <<'C'
#include <stdio.h>
#include "grpc/health/v1/health.panthera.h"
int main(void)
{
	const char *url = "inproc://installed";
	rpc_server *srv;
	rpc_channel *ch;
	rpc_reply *reply = NULL;
	const Grpc__Health__V1__HealthCheckResponse *resp;
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	if (rpc_server_create(&srv, NULL) || rpc_server_listen(srv, url) || rpc_server_start(srv) ||
	    rpc_channel_open(&ch, &url, 1, NULL))
		return 1;
	rpc_status st = grpc_health_v1_health_check(ch, &req, NULL, &resp, &reply);
	printf("%s %d\n", rpc_status_name(st), st == RPC_STATUS_OK ? (int)resp->status : -1);
	rpc_reply_free(reply);
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	return st != RPC_STATUS_OK;
}
C
libs=$(PKG_CONFIG_PATH="$root/lib/pkgconfig" pkg-config --define-variable=prefix="$root" --libs --static panthera)
# shellcheck disable=SC2086
"$cc" "${san[@]}" -std=c11 -Wall -Wextra -Werror $cflags "$tmp/health.c" -o "$tmp/health" \
	$(echo " $libs " | sed "s| -lpanthera | $root/lib/libpanthera.a |")
got=$("$tmp/health")
[ "$got" = "OK 1" ] || { echo "FAIL: the installed library's health check said '$got'"; exit 1; }
echo "install: files in place, panthera.pc points at them, a client builds and calls with them"
