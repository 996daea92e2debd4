#!/usr/bin/env bash
# Replays every saved input of tests/fuzz/corpus/<target>/ through its
# fuzz target, built as a plain program (no libFuzzer needed): the inputs
# that once crashed a decoder stay fixed. Under SANITIZE=1 with the
# sanitizers on.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build}
cc=${CC:-cc}
flags=(-std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -DFUZZ_STANDALONE -Irpc/include -Irpc/src -Igen -Itests/fuzz
	-Iservices/common/include -Iservices/auth -Igateway-rest)
sources=(rpc/src/wire.c rpc/src/arena.c rpc/src/rpc_status.c services/auth/jwt.c services/auth/crypto.c
	services/common/src/log.c services/common/src/ids.c
	gen/panthera/orders/v1/orders.pb-c.c gen/panthera/catalog/v1/catalog.pb-c.c gen/panthera/users/v1/users.pb-c.c
	gen/google/protobuf/timestamp.pb-c.c gen/google/protobuf/duration.pb-c.c gen/google/protobuf/field_mask.pb-c.c
	gen/google/protobuf/wrappers.pb-c.c gen/google/rpc/error_details.pb-c.c)
# The gateway's decoders (HTTP requests, JSON, tokens), once they exist.
while IFS= read -r f; do sources+=("$f"); done < <(find gateway-rest -name '*.c' | sort)
[ "${SANITIZE:-0}" != 1 ] || flags+=(-fsanitize=address,undefined -fno-sanitize-recover=all)
mkdir -p "$build/fuzz"
for t in $(find tests/fuzz -name 'fuzz_*.c' | sort); do
	name=$(basename "$t" .c)
	"$cc" "${flags[@]}" "$t" "${sources[@]}" -lprotobuf-c -lh2o-evloop -ljansson -lssl -lcrypto -lpthread \
		-o "$build/fuzz/$name"
	inputs=$(find "tests/fuzz/corpus/$name" -type f | sort)
	[ -n "$inputs" ] || { echo "FAIL: no corpus for $name"; exit 1; }
	# shellcheck disable=SC2086
	"$build/fuzz/$name" $inputs
done
