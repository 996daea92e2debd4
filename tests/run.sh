#!/usr/bin/env bash
# tests/run.sh - run every test program given, then the script tests, and
# close with one line "N passed, N failed[, N skipped]".
#
# cmocka programs count each of their tests; one that dies before its
# summary counts as one failure. Script tests
# (tests/*/*.test.sh) exit 0 to pass, 77 to skip (printing why), anything
# else to fail.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
failures=()
# cmocka programs: count their tests from cmocka's own summary lines.
for t in "$@"; do
	echo "==> $t"
	log=$(mktemp)
	"$t" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	ok=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | tail -n 1)
	bad=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$log" | tail -n 1)
	rm -f "$log"
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${bad:-0}))
	if [ "$rc" -ne 0 ]; then
		failures+=("$t")
		[ -n "$bad" ] || failed=$((failed + 1)) # crashed before its summary
	fi
done
for s in $(find tests -name '*.test.sh' | sort); do
	echo "==> $s"
	bash "$s"
	rc=$?
	case $rc in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)); failures+=("$s") ;;
	esac
done
[ ${#failures[@]} -eq 0 ] || printf 'FAILED: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
