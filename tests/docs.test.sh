#!/usr/bin/env bash
# docs/operations.md's settings table is what pantherad prints from the code's
# own table: a setting added without `make docs` fails here.
set -u
cd "$(dirname "$0")/.."
build=${BUILD:-build}
want=$("$build/bin/pantherad" --help-markdown) || { echo "FAIL: pantherad --help-markdown"; exit 1; }
got=$(sed -n '/<!-- settings:begin -->/,/<!-- settings:end -->/p' docs/operations.md | sed '1d;$d')
if [ "$want" != "$got" ]; then
	echo "FAIL: docs/operations.md is stale: run make docs"
	diff <(echo "$want") <(echo "$got") | head -n 20
	exit 1
fi
echo "docs: the settings table of docs/operations.md matches the code"
