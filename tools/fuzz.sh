#!/usr/bin/env bash
# tools/fuzz.sh SECONDS - build each libFuzzer target of tests/fuzz/ with
# clang (ASan + UBSan) and run it for SECONDS on its corpus. A crash stops
# the run: the input is left in build-fuzz/ (crash-*); copy it into
# tests/fuzz/corpus/<target>/ so that `make test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
# The project's libraries, instrumented for the fuzzer, in build-fuzz/;
# each target links what it uses of them.
make -s BUILD=build-fuzz CC=clang SANITIZE=1 CFLAGS=-fsanitize=fuzzer-no-link \
	build-fuzz/lib/libpanthera.a build-fuzz/lib/libpanthera_services.a \
	$([ -z "$(find gateway-rest -name '*.c' 2>/dev/null)" ] || echo build-fuzz/lib/libpanthera_gateway.a)
libs=$(ls build-fuzz/lib/libpanthera_gateway.a 2>/dev/null || true)
libs="$libs build-fuzz/lib/libpanthera_services.a build-fuzz/lib/libpanthera.a"
for t in $(find tests/fuzz -name 'fuzz_*.c' | sort); do
	name=$(basename "$t" .c)
	# shellcheck disable=SC2086
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-D_POSIX_C_SOURCE=200809L -Irpc/include -Irpc/src -Igen -Itests/fuzz \
		-Iservices/common/include -Iservices/auth -Igateway-rest \
		"$t" $libs -lnng -lprotobuf-c -lh2o-evloop -ljansson -lpq -lssl -lcrypto -lpthread \
		-o "build-fuzz/$name"
	work="build-fuzz/$name.corpus"
	mkdir -p "$work"
	echo "fuzz: $name for ${seconds}s"
	(cd build-fuzz && "./$name" -max_total_time="$seconds" -print_final_stats=1 \
		"$name.corpus" "../tests/fuzz/corpus/$name")
done
