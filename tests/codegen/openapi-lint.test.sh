#!/usr/bin/env bash
# The generated OpenAPI documents (the platform's and the test set's) pass a
# third-party validator: Redocly CLI's lint with its recommended rules.
# Skipped (exit 77) with the reason when npm, and so the tool, is absent.
set -u
cd "$(dirname "$0")/../.."
redocly=.tools/npm/node_modules/.bin/redocly
if [ ! -x "$redocly" ]; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "SKIP: npm is not installed, so Redocly CLI is not either (make deps installs both)"
		exit 77
	fi
	echo "FAIL: $redocly missing: run make deps"
	exit 1
fi
rc=0
for doc in gen/panthera.openapi.json "${BUILD:-build}/codegen-test/testapi.openapi.json"; do
	if [ ! -f "$doc" ]; then
		echo "FAIL: $doc missing"
		rc=1
		continue
	fi
	# --format=stylish: one line per problem; warnings count as failures too.
	out=$("$redocly" lint --format=stylish "$doc" 2>&1)
	status=$?
	echo "$out" | grep -v -e '^\s*$' -e '║' -e '╔' -e '╚' | tail -n 20
	if [ $status -ne 0 ] || echo "$out" | grep -qE '^[[:space:]]+[0-9]+:[0-9]+[[:space:]]+(error|warning)'; then
		echo "FAIL: $doc did not pass redocly lint cleanly"
		rc=1
	fi
done
exit $rc
