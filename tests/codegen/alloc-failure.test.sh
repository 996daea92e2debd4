#!/usr/bin/env bash
# Every allocation of protoc-gen-panthera may fail: with the Nth one failing
# (tests/codegen/failalloc.c, preloaded), the plugin either exits 1 saying it
# ran out of memory or, when the failure did not matter, answers exactly what
# it answers with memory to spare. Never a crash, never different output.
# The first 300 allocations are each tried, then a stride over the rest.
# Skipped under SANITIZE=1: the sanitizers bring their own allocator.
set -u
cd "$(dirname "$0")/../.."
build=${BUILD:-build}
if [ "${SANITIZE:-0}" = 1 ]; then
	echo "SKIP: the sanitizers' allocator cannot be preloaded over"
	exit 77
fi
plugin=$build/bin/protoc-gen-panthera
shim=$build/tests/failalloc.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Capture the request protoc sends for the golden set, once.
cat >"$tmp/dump" <<DUMP
#!/bin/sh
cat >"$tmp/request.bin"
DUMP
chmod +x "$tmp/dump"
protoc -Itests/codegen/proto -Iproto -I/usr/include --plugin=protoc-gen-panthera="$tmp/dump" \
	--panthera_out="$tmp" --panthera_opt=name=testapi shop/v1/shop.proto shop/v1/types.proto \
	inventory/v2/stock.proto 2>/dev/null
[ -s "$tmp/request.bin" ] || { echo "FAIL: could not capture a request"; exit 1; }

FAILALLOC_COUNT="$tmp/count" LD_PRELOAD="$shim" "$plugin" <"$tmp/request.bin" >"$tmp/want.bin" ||
	{ echo "FAIL: the plugin fails with the shim and no failure"; exit 1; }
total=$(cat "$tmp/count")
stride=$(( (total - 300) / 300 ))
[ "$stride" -ge 1 ] || stride=1
runs=0 oom=0 bad=0
n=1
while [ "$n" -le "$total" ]; do
	FAILALLOC_AT=$n LD_PRELOAD="$shim" "$plugin" <"$tmp/request.bin" >"$tmp/got.bin" 2>"$tmp/err.txt"
	rc=$?
	runs=$((runs + 1))
	if [ $rc -eq 1 ] && grep -q -e 'out of memory' -e 'Cannot allocate memory' "$tmp/err.txt"; then
		oom=$((oom + 1))
	elif [ $rc -eq 0 ] && cmp -s "$tmp/got.bin" "$tmp/want.bin"; then
		:
	else
		echo "FAIL: allocation $n failing: exit $rc, $(head -c 300 "$tmp/err.txt")"
		bad=$((bad + 1))
		[ $bad -lt 5 ] || break
	fi
	if [ "$n" -lt 300 ]; then n=$((n + 1)); else n=$((n + stride)); fi
done
echo "alloc-failure: $runs runs over $total allocations, $oom clean out-of-memory exits, $bad bad"
[ $bad -eq 0 ]
