#!/usr/bin/env bash
# Replays every saved input of tests/fuzz/corpus/<target>/ through its
# fuzz target, built as a plain program (no libFuzzer needed) against the
# libraries `make` built (with the sanitizers under SANITIZE=1): the inputs
# that once crashed a decoder stay fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build}
cc=${CC:-cc}
flags=(-std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -DFUZZ_STANDALONE -Irpc/include -Irpc/src -Igen -Itests/fuzz
	-Iservices/common/include -Iservices/auth -Igateway-rest)
[ "${SANITIZE:-0}" != 1 ] || flags+=(-fsanitize=address,undefined -fno-sanitize-recover=all)
libs=()
for l in panthera_gateway panthera_services panthera; do
	[ ! -f "$build/lib/lib$l.a" ] || libs+=("$build/lib/lib$l.a")
done
[ ${#libs[@]} -gt 0 ] || { echo "FAIL: no libraries in $build/lib: run make first"; exit 1; }
mkdir -p "$build/fuzz"
for t in $(find tests/fuzz -name 'fuzz_*.c' | sort); do
	name=$(basename "$t" .c)
	"$cc" "${flags[@]}" "$t" "${libs[@]}" -lnng -lprotobuf-c -lh2o-evloop -ljansson -lpq -lssl -lcrypto \
		-lpthread -o "$build/fuzz/$name"
	inputs=$(find "tests/fuzz/corpus/$name" -type f | sort)
	[ -n "$inputs" ] || { echo "FAIL: no corpus for $name"; exit 1; }
	# shellcheck disable=SC2086
	"$build/fuzz/$name" $inputs
done
