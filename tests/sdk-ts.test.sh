#!/usr/bin/env bash
# The TypeScript client generated from the OpenAPI document, used as a
# project would use it: tools/sdk-ts.sh (what `make sdk-ts` runs:
# openapi-typescript + openapi-fetch, compiled with tsc) into a temporary
# folder; client-sdk/typescript/example.ts compiled by tsc (strict) in a
# project that depends on that package, and wrong calls refused by its
# types; then run with node against the live
# gateway of pantherad on a private PostgreSQL: register, log in, list
# products, place an order, read it back until PAID; the same with a
# declined card ends PAYMENT_FAILED (exit 2). Skipped (77) without node,
# npm, or the npm tools of make deps.
set -u
cd "$(dirname "$0")/.." || exit 1
command -v node >/dev/null || { echo "skip: node is not installed"; exit 77; }
command -v npm >/dev/null || { echo "skip: npm is not installed"; exit 77; }
npm_dir=$(pwd)/.tools/npm
for tool in openapi-typescript tsc; do
	[ -x "$npm_dir/node_modules/.bin/$tool" ] || { echo "skip: $tool not in .tools/npm (make deps)"; exit 77; }
done
[ -d "$npm_dir/node_modules/@types/node" ] || { echo "skip: @types/node not in .tools/npm (make deps)"; exit 77; }
. tests/gateway/lib.sh

tools/sdk-ts.sh "$tmp/sdk-ts" >"$tmp/sdk-ts.log" 2>&1 || fail "tools/sdk-ts.sh: $(cat "$tmp/sdk-ts.log")"
for f in package.json src/schema.ts dist/index.js dist/index.d.ts dist/schema.d.ts; do
	[ -s "$tmp/sdk-ts/$f" ] || fail "the generated client has no $f"
done
grep -q '"/v1/orders/{orderId}": {' "$tmp/sdk-ts/src/schema.ts" || fail "schema.ts has no GET /v1/orders/{orderId}"

# A project of a user's: depends on the generated package, compiled strict.
app=$tmp/app
mkdir -p "$app/node_modules/@types"
cp client-sdk/typescript/example.ts "$app/"
ln -s "$tmp/sdk-ts" "$app/node_modules/panthera-client"
ln -s "$npm_dir/node_modules/@types/node" "$app/node_modules/@types/node"
echo '{"type": "module", "private": true}' >"$app/package.json"
cat >"$app/tsconfig.json" <<'JSON'
{"compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
 "strict": true, "noEmitOnError": true, "types": ["node"], "outDir": "dist"},
 "files": ["example.ts"]}
JSON
"$npm_dir/node_modules/.bin/tsc" -p "$app/tsconfig.json" >"$tmp/tsc.log" 2>&1 ||
	fail "tsc on example.ts: $(cat "$tmp/tsc.log")"
# The generated types constrain calls: each line below must not compile.
cat >"$app/wrong.ts" <<'TS'
import { createPantheraClient } from "panthera-client";
const api = createPantheraClient({ baseUrl: "http://127.0.0.1:1" });
// @ts-expect-error an unknown path
await api.GET("/v1/product");
// @ts-expect-error a path parameter missing
await api.GET("/v1/orders/{orderId}", {});
// @ts-expect-error an unknown query parameter
await api.GET("/v1/products", { params: { query: { pagesize: 10 } } });
// @ts-expect-error a number where the API takes a string
await api.POST("/v1/auth/login", { body: { email: 1, password: "x" } });
const r = await api.GET("/v1/products");
// @ts-expect-error a field no product has
console.log(r.data?.products?.[0].prize);
TS
sed 's/"example.ts"/"wrong.ts"/' "$app/tsconfig.json" >"$app/wrong.json"
"$npm_dir/node_modules/.bin/tsc" -p "$app/wrong.json" --noEmit >"$tmp/tsc.log" 2>&1 ||
	fail "a wrong call compiled (an unused @ts-expect-error) or the check broke: $(cat "$tmp/tsc.log")"

gw_start
out=$(node "$app/dist/example.js" "$base" ts@example.com 2>"$tmp/err")
rc=$?
[ $rc -eq 0 ] || fail "example.js exited $rc: $out $(cat "$tmp/err")"
user=$(sed -n 's/^user \([0-9a-f-]\{36\}\)$/\1/p' <<<"$out")
[ -n "$user" ] || fail "no user: $out"
grep -qE '^products [0-9]+$' <<<"$out" || fail "no product list: $out"
[ "$(sed -n 's/^products //p' <<<"$out")" -gt 0 ] || fail "an empty product list: $out"
grep -qE '^product [0-9a-f-]{36} .+' <<<"$out" || fail "no product picked: $out"
order=$(sed -n 's/^order \([0-9a-f-]\{36\}\) placed$/\1/p' <<<"$out")
[ -n "$order" ] || fail "no order placed: $out"
grep -qE "^order $order PAID total [0-9]+\.[0-9]{2} [A-Z]{3}$" <<<"$out" || fail "the order did not settle PAID: $out"
grep -qE '^item .+ 1 x [0-9]+\.[0-9]{2} = [0-9]+\.[0-9]{2}$' <<<"$out" || fail "no order line: $out"
# the same account again (register answers 409, login works), a declined card
out=$(node "$app/dist/example.js" "$base" ts@example.com pm_card_declined 2>"$tmp/err")
rc=$?
[ $rc -eq 2 ] || fail "a declined card: example.js exited $rc, want 2: $out $(cat "$tmp/err")"
grep -q "^user $user$" <<<"$out" || fail "the second run is another user: $out"
grep -qE '^order [0-9a-f-]{36} PAYMENT_FAILED total ' <<<"$out" || fail "a declined card: $out"
# an API error reaches the caller as the typed error body
node "$app/dist/example.js" "$base/nowhere" >/dev/null 2>"$tmp/err" && fail "example.js worked against a wrong base URL"
grep -q '^example: register: 404 NOT_FOUND: ' "$tmp/err" || fail "a 404: $(cat "$tmp/err")"
gw_stop
echo "sdk-ts: client generated and compiled; register, login, products, an order PAID and read back, a declined card PAYMENT_FAILED, a 404's error body"
