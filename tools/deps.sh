#!/usr/bin/env bash
# tools/deps.sh - install what Panthera needs on Debian 12, when missing.
#
# Debian packages through apt-get (as root, or through sudo), then the npm
# tools the tests use into .tools/npm (pinned versions; skipped with a
# message when npm is absent). Safe to run again: it installs only what is
# missing.
#
#   tools/deps.sh           what the build and the tests need (CI runs this)
#   tools/deps.sh --bench   the same, plus what only bench/gateway needs:
#                           wrk and nginx-light (nginx runs there as a private
#                           process; installing the package may start a
#                           system nginx on port 80: `service nginx stop`)
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH=0
case ${1:-} in
"") ;;
--bench) BENCH=1 ;;
*)
	echo "usage: $0 [--bench]" >&2
	exit 2
	;;
esac

PACKAGES=(
	build-essential clang clang-format libclang-rt-14-dev pkg-config git ca-certificates
	protobuf-compiler libprotobuf-dev protobuf-c-compiler libprotobuf-c-dev
	libnng-dev libpq-dev libssl-dev libcmocka-dev
	postgresql postgresql-contrib
	libh2o-evloop-dev libjansson-dev
	curl jq openssl python3-aiosmtpd
	libgrpc++-dev protobuf-compiler-grpc
)

# Only for the benchmarks: never installed unless asked for.
BENCH_PACKAGES=(wrk nginx-light)
[ $BENCH -eq 0 ] || PACKAGES+=("${BENCH_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm (for the OpenAPI validator): Debian's packages, unless a
# node and npm are already on the PATH (some images ship their own build,
# which Debian's npm package would conflict with).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	echo "deps: Debian packages present"
fi

# npm tools, pinned, installed into the work tree (ignored by git): the
# OpenAPI validator, and what `make sdk-ts` and tests/sdk-ts.test.sh use to
# generate, compile and run the TypeScript client. Each is checked by a file
# it installs, so a tree that has some gets the rest.
NPM_TOOLS=("@redocly/cli@2.77.0" "openapi-typescript@7.13.0" "openapi-fetch@0.17.0"
	"typescript@5.9.3" "@types/node@20.19.43")
NPM_MARKS=(.bin/redocly .bin/openapi-typescript openapi-fetch/package.json .bin/tsc @types/node/package.json)
K8S_NPM_TOOLS=("kubernetes-models@5.1.0" "yaml@2.9.1")
if command -v npm >/dev/null 2>&1; then
	npm_missing=()
	for i in "${!NPM_TOOLS[@]}"; do
		[ -e ".tools/npm/node_modules/${NPM_MARKS[$i]}" ] || npm_missing+=("${NPM_TOOLS[$i]}")
	done
	if [ ${#npm_missing[@]} -gt 0 ]; then
		mkdir -p .tools/npm
		npm install --prefix .tools/npm --no-audit --no-fund --loglevel=error --save-exact "${npm_missing[@]}"
	fi
	# the Kubernetes schemas of tests/deploy.test.sh, in a folder of their own
	if [ ! -d .tools/k8s/node_modules/kubernetes-models ]; then
		mkdir -p .tools/k8s
		npm install --prefix .tools/k8s --save-exact --no-audit --no-fund --loglevel=error "${K8S_NPM_TOOLS[@]}"
	fi
	echo "deps: npm tools present"
else
	echo "deps: npm not found; the OpenAPI, TypeScript client and manifest validation tests will be skipped"
fi
