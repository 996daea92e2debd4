#!/usr/bin/env bash
# tools/fuzz.sh SECONDS - build each libFuzzer target in tests/fuzz/ with
# clang and run it for SECONDS. A crash stops the run and leaves its input
# in build-fuzz/; turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
targets=$(find tests/fuzz -name 'fuzz_*.c' 2>/dev/null | sort)
if [ -z "$targets" ]; then
	echo "fuzz: no targets yet (the wire decoders of the RPC runtime bring the first)"
	exit 0
fi
mkdir -p build-fuzz
for t in $targets; do
	name=$(basename "$t" .c)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
		-Irpc/include -Igen "$t" $(find rpc/src -name '*.c') -lprotobuf-c -o "build-fuzz/$name"
	mkdir -p "build-fuzz/$name.corpus"
	"build-fuzz/$name" -max_total_time="$seconds" "build-fuzz/$name.corpus"
done
