#!/usr/bin/env bash
# tools/sdk-ts.sh OUT - the TypeScript client of the REST API, into OUT
# (`make sdk-ts`: build/sdk-ts).
#
# openapi-typescript turns gen/panthera.openapi.json into OUT/src/schema.ts
# (types only); client-sdk/typescript/index.ts, copied beside it, types an
# openapi-fetch client with them; tsc compiles both into OUT/dist. OUT is then
# an npm package, "panthera-client" (OUT/package.json), that a project
# installs with `npm install path/to/OUT`. OUT/node_modules links to the
# build's own npm tools so that tsc and node resolve openapi-fetch here.
#
# The generator, openapi-fetch and tsc are the pinned versions that
# tools/deps.sh (make deps) installs into .tools/npm; without them this
# exits 77 with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-}
[ -n "$out" ] || { echo "usage: $0 OUT" >&2; exit 2; }
version=${VERSION:-$(sed -n 's/^VERSION := //p' Makefile)}
npm_dir=$(pwd)/.tools/npm
for tool in openapi-typescript tsc; do
	[ -x "$npm_dir/node_modules/.bin/$tool" ] ||
		{ echo "sdk-ts: $tool is not installed in .tools/npm: run make deps (needs node and npm)" >&2; exit 77; }
done
[ -f "$npm_dir/node_modules/openapi-fetch/package.json" ] ||
	{ echo "sdk-ts: openapi-fetch is not installed in .tools/npm: run make deps" >&2; exit 77; }
command -v node >/dev/null || { echo "sdk-ts: node is not installed" >&2; exit 77; }

rm -rf "$out/src" "$out/dist"
mkdir -p "$out/src"
"$npm_dir/node_modules/.bin/openapi-typescript" gen/panthera.openapi.json -o "$out/src/schema.ts" --silent
cp client-sdk/typescript/index.ts "$out/src/index.ts"
cp client-sdk/typescript/tsconfig.json "$out/tsconfig.json"
sed "s/@VERSION@/$version/" client-sdk/typescript/package.json >"$out/package.json"
ln -sfn "$npm_dir/node_modules" "$out/node_modules"
"$npm_dir/node_modules/.bin/tsc" -p "$out/tsconfig.json"
echo "sdk-ts: $out (package panthera-client $version: dist/index.js, dist/index.d.ts)"
