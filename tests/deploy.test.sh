#!/usr/bin/env bash
# tests/deploy.test.sh - the deployment files of deploy/, checked offline:
#   - deploy/docker/Dockerfile: two stages on Debian 12, the runtime stage
#     runs as a non-root USER, exposes 8080 and 7070, holds the binaries,
#     migrations and OpenAPI file where its PANTHERA_* defaults point, installs
#     a runtime package for every library the binaries link, no ADD, no
#     secret copied or set;
#   - every PANTHERA_* variable named in deploy/ (manifests, units, env files,
#     Dockerfile) is a setting of services/common/src/config.c's table, or a
#     PANTHERA_<SERVICE>_DB_URL;
#   - deploy/systemd: `systemd-analyze verify` of pantherad.service and of
#     panthera@<name> for every binary (pointed at the built binaries), and
#     the hardening every unit must carry;
#   - deploy/k8s: every file a kustomization.yaml lists exists; every object
#     passes its Kubernetes schema (kubernetes-models from npm, in
#     .tools/k8s) and the consistency checks of tests/deploy/k8s-check.mjs;
#     when kubectl is installed, the same on `kubectl kustomize` of the base
#     and of the trial overlay (patches applied).
# Each checker is first shown a broken copy it must reject.
# Exit 77 (skip) when node or the npm tools are missing and all else passed;
# systemd-analyze and kubectl, when missing, skip their part with a line.
set -u
cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
models=.tools/k8s
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
fail() {
	echo "FAIL: $*"
	rc=1
}

# ---- the Dockerfile ---------------------------------------------------------
df=deploy/docker/Dockerfile
# instructions only: comments dropped, continuation lines joined
sed -e '/^[[:space:]]*#/d' "$df" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' >"$tmp/df"
froms=$(grep -ciE '^FROM ' "$tmp/df")
[ "$froms" -ge 2 ] || fail "Dockerfile: $froms stage(s), want a build and a runtime stage"
grep -qiE '^FROM debian:12 AS builder$' "$tmp/df" || fail "Dockerfile: the first stage is not FROM debian:12 AS builder"
last_from=$(grep -niE '^FROM ' "$tmp/df" | tail -n 1 | cut -d: -f1)
sed -n "${last_from},\$p" "$tmp/df" >"$tmp/runtime"
grep -qiE '^FROM debian:12(-slim)? ' "$tmp/runtime" || fail "Dockerfile: the runtime stage is not on debian:12"
user=$(grep -iE '^USER ' "$tmp/runtime" | tail -n 1 | awk '{print $2}')
case ${user%%:*} in
"" | root | 0) fail "Dockerfile: the runtime stage runs as '${user:-root}'" ;;
esac
for port in 8080 7070; do
	grep -qiE "^EXPOSE .*\b$port\b" "$tmp/runtime" || fail "Dockerfile: no EXPOSE $port"
done
! grep -qiE '^ADD ' "$tmp/df" || fail "Dockerfile: ADD (use COPY: no remote or archive sources)"
grep -iE '^COPY ' "$tmp/df" | grep -iE '\.pem|\.key\b|\.env\b|secret|id_rsa|\.panthera' &&
	fail "Dockerfile: a COPY of what looks like a secret"
grep -iE '^(ENV|ARG) ' "$tmp/df" | grep -iE 'PASSWORD|SECRET|TOKEN|DB_URL' &&
	fail "Dockerfile: a secret in ENV or ARG"
grep -iE '^RUN .*apt-get install' "$tmp/runtime" | grep -qE -- '-dev\b|build-essential' &&
	fail "Dockerfile: the runtime stage installs build packages"
for v in PANTHERA_MIGRATIONS_DIR PANTHERA_OPENAPI_FILE; do
	val=$(grep -oE "$v=[^ ]+" "$tmp/runtime" | head -n 1 | cut -d= -f2)
	[ -n "$val" ] || {
		fail "Dockerfile: the runtime stage sets no $v"
		continue
	}
	grep -iE '^COPY ' "$tmp/runtime" | grep -qE " $val/?\$" || fail "Dockerfile: $v=$val, but nothing is copied there"
done
grep -iE '^COPY --from=builder' "$tmp/runtime" | grep -qE '/bin/panthera\*? ' ||
	fail "Dockerfile: the binaries (panthera*) are not copied into the runtime stage"
if ! grep -qE '^build$' .dockerignore || ! grep -qE '^\.git$' .dockerignore; then
	fail ".dockerignore: build/ and .git must stay out of the build context"
fi
# every library the binaries link comes from a package the runtime stage installs;
# the image is built from a release build (a sanitizer build links more: libgcc_s)
runtime_pkgs=$(grep -iE '^RUN .*apt-get install' "$tmp/runtime")
release=build
if [ -x "$release/bin/pantherad" ] && command -v readelf >/dev/null && command -v dpkg >/dev/null; then
	for lib in $(readelf -d "$release/bin/pantherad" "$release/bin/panthera-gateway" 2>/dev/null |
		sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u); do
		case $lib in libc.so.* | libm.so.* | libpthread.so.* | ld-linux*) continue ;; esac
		file=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
		# dpkg records /lib or /usr/lib paths, whichever the package ships (merged /usr)
		real=$(readlink -f "$file")
		pkg=""
		for path in "$file" "$real" "${real#/usr}" "/usr$file"; do
			pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
			[ -z "$pkg" ] || break
		done
		[ -n "$pkg" ] || {
			fail "Dockerfile: no Debian package owns $lib"
			continue
		}
		grep -qw -- "$pkg" <<<"$runtime_pkgs" || fail "Dockerfile: $lib ($pkg) is not installed in the runtime stage"
	done
else
	echo "deploy: $release/bin/pantherad not built: the runtime libraries were not checked"
fi

# ---- PANTHERA_* names ----------------------------------------------------------
known=$(grep -oE '"PANTHERA_[A-Z0-9_]+"' services/common/src/config.c | tr -d '"' | sort -u)
[ "$(wc -l <<<"$known")" -ge 30 ] || fail "the settings table of config.c was not found"
per_service='^PANTHERA_(AUTH|CATALOG|INVENTORY|ORDERS|PAYMENTS|CART|ANALYTICS|REVIEWS|NOTIFICATIONS)_DB_URL$'
# The names in the given files that are not settings.
unknown_settings() {
	grep -rhoE 'PANTHERA_[A-Z0-9_]+' "$@" | sort -u | while read -r v; do
		grep -qx -- "$v" <<<"$known" || grep -qE "$per_service" <<<"$v" || echo "$v"
	done
}
echo "PANTHERA_NO_SUCH_SETTING=1 PANTHERA_CATALOG_DB_URL=x" >"$tmp/vars"
[ "$(unknown_settings "$tmp/vars")" = PANTHERA_NO_SUCH_SETTING ] ||
	fail "the settings check does not tell a setting from a stranger"
bad=$(unknown_settings deploy .dockerignore)
[ -z "$bad" ] || fail "deploy/ names variables that are no setting of config.c: ${bad//$'\n'/ }"
nvars=$(grep -rhoE 'PANTHERA_[A-Z0-9_]+' deploy | sort -u | wc -l)

# ---- systemd units ----------------------------------------------------------
binaries="auth catalog inventory orders payments cart analytics reviews notifications gateway"
for u in deploy/systemd/pantherad.service deploy/systemd/panthera@.service; do
	for opt in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
		'CapabilityBoundingSet=$' 'EnvironmentFile=/etc/panthera/panthera.env' Restart=on-failure; do
		grep -qE "^$opt" "$u" || fail "$u: no ${opt%$}"
	done
done
for b in $binaries; do
	[ -f "deploy/systemd/env/$b.env" ] || fail "deploy/systemd/env/$b.env missing (panthera@$b reads it)"
done
if ! command -v systemd-analyze >/dev/null; then
	echo "deploy: systemd-analyze not installed: the units were not verified"
elif [ ! -x "$build/bin/pantherad" ]; then
	echo "deploy: $build/bin/pantherad not built: the units were not verified"
else
	units=$tmp/units
	mkdir -p "$units"
	cp deploy/systemd/*.service deploy/systemd/*.target "$units/"
	sed -i "s|/usr/local/bin/|$PWD/$build/bin/|" "$units"/*.service
	# a unit of a binary that does not exist: verify must complain
	cp "$units/panthera@.service" "$units/panthera@nope.service"
	out=$(cd "$units" && systemd-analyze verify --man=no ./panthera@nope.service 2>&1)
	[ -n "$out" ] || fail "systemd-analyze verify accepts a unit whose binary is missing"
	rm "$units/panthera@nope.service"
	list=(./pantherad.service ./panthera.target)
	for b in $binaries; do
		[ -x "$build/bin/panthera-$b" ] || fail "panthera@$b: $build/bin/panthera-$b not built"
		cp "$units/panthera@.service" "$units/panthera@$b.service"
		list+=("./panthera@$b.service")
	done
	out=$(cd "$units" && systemd-analyze verify --man=no "${list[@]}" 2>&1)
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
fi

# ---- Kubernetes manifests ---------------------------------------------------
if ! command -v node >/dev/null || [ ! -d "$models/node_modules/kubernetes-models" ]; then
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
		[ $rc -eq 0 ] || exit 1
		echo "SKIP: node or npm missing, so the manifests' schemas were not checked (make deps installs them)"
		exit 77
	fi
	echo "FAIL: $models/node_modules/kubernetes-models missing: run make deps"
	exit 1
fi
check=tests/deploy/k8s-check.mjs
# broken copies first: each must be rejected, for the reason given
mutate() { # name file sed-expression expected-message
	rm -rf "$tmp/k8s" && cp -r deploy/k8s "$tmp/k8s"
	sed -i "$3" "$tmp/k8s/$2"
	out=$(node "$check" "$models" kustomize "$tmp/k8s" 2>&1)
	grep -q -- "$4" <<<"$out" || fail "k8s-check did not reject $1 ($4): $out"
}
mutate "a port that is no integer" base/inventory.yaml 's/containerPort: 7070/containerPort: seven/' "must be integer"
mutate "a missing resource file" base/kustomization.yaml 's/- pdb.yaml/- no-such-file.yaml/' "no-such-file.yaml does not exist"
mutate "an unknown ConfigMap" base/gateway.yaml 's/name: panthera-config/name: panthera-conf/' "ConfigMap not defined here"
mutate "a Service selecting nothing" base/cart.yaml '/^kind: Service/,$ s/name: panthera-cart$/name: panthera-kart/' "matches no pods"
node "$check" "$models" kustomize deploy/k8s || fail "deploy/k8s: see above"
if command -v kubectl >/dev/null; then
	for k in base overlays/trial; do
		out=$tmp/${k//\//-}.yaml
		if kubectl kustomize "deploy/k8s/$k" >"$out" 2>"$tmp/err"; then
			node "$check" "$models" rendered "$out" || fail "kubectl kustomize deploy/k8s/$k: see above"
		else
			fail "kubectl kustomize deploy/k8s/$k: $(cat "$tmp/err")"
		fi
	done
else
	echo "deploy: kubectl not installed: the kustomizations were not rendered"
fi
[ $rc -eq 0 ] && echo "deploy: Dockerfile, $nvars PANTHERA_* names, systemd units and Kubernetes manifests pass"
exit $rc
