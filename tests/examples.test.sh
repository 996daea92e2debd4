#!/usr/bin/env bash
# The examples under client-sdk/examples/ build and run: the greeter serves
# and calls its method in one process over inproc, then over tcp.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
out=$(pwd)/$build/examples/greeter
extra=()
[ "${SANITIZE:-0}" != 1 ] || extra=("CFLAGS=-std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined" "LDFLAGS=-fsanitize=address,undefined")
make -s -C client-sdk/examples/greeter OUT="$out" PLUGIN="$(pwd)/$build/bin/protoc-gen-panthera" \
	TOP=../../.. "${extra[@]}" "$out/greeter" >/dev/null
got=$("$out/greeter")
[ "$got" = "Hello, Panthera!" ] || { echo "FAIL: greeter printed '$got'"; exit 1; }
got=""
for try in 1 2 3; do # a port another program holds: try the next
	got=$("$out/greeter" "tcp://127.0.0.1:$((30000 + (RANDOM % 20000)))" "Ada" 2>/dev/null) && break
done
[ "$got" = "Hello, Ada!" ] || { echo "FAIL: greeter over tcp printed '$got'"; exit 1; }
if "$out/greeter" inproc://x "" 2>"$out/err.txt"; then
	echo "FAIL: an empty name was accepted"
	exit 1
fi
grep -q "INVALID_ARGUMENT: name must be 1..100 characters" "$out/err.txt" ||
	{ echo "FAIL: $(cat "$out/err.txt")"; exit 1; }
echo "examples: greeter served and called over inproc and tcp; bad input refused"
