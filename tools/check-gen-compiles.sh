#!/usr/bin/env bash
# tools/check-gen-compiles.sh - gen/ compiles with no warning under gcc and
# clang (-std=c11 -Wall -Wextra -Werror -pedantic), and every generated header
# compiles when included alone.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
compilers=(gcc)
command -v clang >/dev/null 2>&1 && compilers+=(clang)
flags=(-std=c11 -Wall -Wextra -Werror -Irpc/include -Igen -c)
n=0
for cc in "${compilers[@]}"; do
	for f in $(find gen -name '*.panthera.c' -o -name '*_routes.c' | sort); do
		"$cc" "${flags[@]}" "$f" -o "$tmp/x.o"
		n=$((n + 1))
	done
	for h in $(cd gen && find . -name '*.panthera.h' -o -name '*_routes.h' | sort); do
		printf '#include "%s"\n' "${h#./}" >"$tmp/inc.c"
		"$cc" "${flags[@]}" "$tmp/inc.c" -o "$tmp/x.o"
		n=$((n + 1))
	done
done
echo "check-gen-compiles: $n compilations clean with ${compilers[*]}"
