#!/usr/bin/env bash
# `make install` honours PREFIX and DESTDIR, and a program built with the
# installed panthera.pc compiles against the installed headers (generated
# stubs, route table, runtime contract). Linking waits for the RPC runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s install SANITIZE="${SANITIZE:-0}" BUILD="${BUILD:-build}" DESTDIR="$tmp/root" PREFIX=/opt/panthera >/dev/null
root=$tmp/root/opt/panthera
for f in lib/libpanthera.a lib/libpanthera.so lib/libpanthera.so.0 lib/pkgconfig/panthera.pc \
	bin/protoc-gen-panthera include/panthera/rpc.h include/panthera/rpc_route.h \
	include/panthera/gen/panthera/catalog/v1/catalog.panthera.h include/panthera/gen/panthera_routes.h \
	share/panthera/panthera.openapi.json share/panthera/proto/panthera/api/options.proto; do
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
cc -std=c11 -Wall -Wextra -Werror $cflags -c "$tmp/app.c" -o "$tmp/app.o"
echo "install: files in place, panthera.pc points at them, a client compiles against them"
