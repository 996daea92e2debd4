#!/usr/bin/env bash
# tools/fuzz.sh SECONDS - build each libFuzzer target of tests/fuzz/ with
# clang (ASan + UBSan) and run it for SECONDS on its corpus. A crash stops
# the run: the input is left in build-fuzz/ (crash-*); copy it into
# tests/fuzz/corpus/<target>/ so that `make test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
# Every target links the decoders it may need; unused ones cost nothing.
sources="rpc/src/wire.c rpc/src/arena.c rpc/src/rpc_status.c services/auth/jwt.c services/auth/crypto.c
	services/common/src/log.c services/common/src/ids.c $(find gateway-rest -name '*.c' | sort | tr '\n' ' ')
	gen/panthera/orders/v1/orders.pb-c.c gen/panthera/catalog/v1/catalog.pb-c.c gen/panthera/users/v1/users.pb-c.c
	gen/google/protobuf/timestamp.pb-c.c gen/google/protobuf/duration.pb-c.c gen/google/protobuf/field_mask.pb-c.c
	gen/google/protobuf/wrappers.pb-c.c gen/google/rpc/error_details.pb-c.c"
mkdir -p build-fuzz
for t in $(find tests/fuzz -name 'fuzz_*.c' | sort); do
	name=$(basename "$t" .c)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-D_POSIX_C_SOURCE=200809L -Irpc/include -Irpc/src -Igen -Itests/fuzz \
		-Iservices/common/include -Iservices/auth -Igateway-rest \
		"$t" $sources -lprotobuf-c -lh2o-evloop -ljansson -lssl -lcrypto -lpthread -o "build-fuzz/$name"
	work="build-fuzz/$name.corpus"
	mkdir -p "$work"
	echo "fuzz: $name for ${seconds}s"
	(cd build-fuzz && "./$name" -max_total_time="$seconds" -print_final_stats=1 \
		"$name.corpus" "../tests/fuzz/corpus/$name")
done
