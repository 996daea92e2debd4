#!/usr/bin/env bash
# tests/run.sh - run every test program given, then the script tests, and
# close with one line "N passed, N failed[, N skipped]".
#
# A cmocka program counts as one passed suite when it exits 0. Script tests
# (tests/*/*.test.sh) exit 0 to pass, 77 to skip (printing why), anything
# else to fail.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
failures=()
for t in "$@"; do
	echo "==> $t"
	if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$t"); fi
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
