#!/usr/bin/env bash
# The REST API of API.md end to end: pantherad (every service and the
# gateway) on a private PostgreSQL, driven by curl. So far: health,
# readiness (every service's health check) and OpenAPI, the error shape (404, 405 with Allow, 400 unknown field and
# malformed JSON, 413), X-Request-Id, register and login, 401 with
# WWW-Authenticate (missing, forged, alg none), 403 on an admin route, 404
# for another user's resources, an order placed with an Idempotency-Key that
# settles PAID, read back and listed; ETag, If-None-Match → 304 and
# Cache-Control; CORS (preflight 204 and 403, headers on
# answers); 429 with Retry-After and RateLimit-* once login's limit is spent;
# /metrics with the RPC client's and server's sections.
set -u
cd "$(dirname "$0")/../.."
. tests/gateway/lib.sh
gw_start PANTHERA_CORS_ORIGINS=https://app.example.com PANTHERA_AUTH_RATE_LIMIT_PER_MIN=8

json() { python3 -c "import sys, json; d = json.load(sys.stdin); print($1)" <<<"$body"; }

call GET /healthz ""
expect 200 "healthz"
call GET /readyz ""
expect 200 "readyz: every service serving"
[ "$(json 'd["status"], d["services"] >= 10')" = "SERVING True" ] || fail "readyz: $body"
call GET /openapi.json ""
expect 200 "openapi.json"
[ "$(json 'd["openapi"][:2]')" = "3." ] || fail "openapi.json is not an OpenAPI 3 document"

# the error shape, and request ids
call GET /v1/no-such-thing "" -H 'x-request-id: test-req-1'
expect 404 "unknown path"
error_shape 404 NOT_FOUND
grep -qi '^x-request-id: test-req-1$' <<<"$headers" || fail "X-Request-Id not echoed"
call GET /v1/products "" -H 'x-request-id: bad id with spaces'
grep -qiE '^x-request-id: [0-9a-f]{32}$' <<<"$headers" || fail "an insane X-Request-Id was kept"
call PUT /v1/products ""
expect 405 "wrong method"
error_shape 405 UNIMPLEMENTED
grep -qi '^allow: GET, POST$' <<<"$headers" || fail "405 without Allow: GET, POST: $headers"

# the catalog, public
call GET "/v1/products?pageSize=100" ""
expect 200 "list products"
[ "$(json 'd["pageSize"], d["total"] >= 30')" = "100 True" ] || fail "product list: $body"
product=$(json '[p["id"] for p in d["products"] if p["stock"] > 0][0]')
call GET "/v1/products/$product" ""
expect 200 "get a product"
stock=$(json 'd["stock"]')
first_body=$body
etag=$(sed -n 's/^etag: *//Ip' <<<"$headers")
[ -n "$etag" ] || fail "GET without an ETag: $headers"
grep -qiE '^cache-control: public, max-age=[0-9]+$' <<<"$headers" ||
	fail "a cacheable GET without Cache-Control public: $headers"
# the response cache: the same bytes again, from the cache (counted)
call GET /metrics ""
hits0=$(sed -n 's/^panthera_gateway_cache_hits_total \([0-9]*\)$/\1/p' <<<"$body")
call GET "/v1/products/$product" ""
[ "$body" = "$first_body" ] || fail "the second GET differs from the first"
call GET /metrics ""
hits1=$(sed -n 's/^panthera_gateway_cache_hits_total \([0-9]*\)$/\1/p' <<<"$body")
[ -n "$hits0" ] && [ "$hits1" -gt "$hits0" ] || fail "the second GET was not a cache hit ($hits0 -> $hits1)"
call GET "/v1/products/$product" "" -H "if-none-match: $etag"
expect 304 "If-None-Match with the current ETag"
[ -z "$body" ] || fail "a 304 with a body"
call GET "/v1/products/$product" "" -H 'if-none-match: "0000000000000000"'
expect 200 "If-None-Match with another ETag"
call GET "/v1/products?page_size=2&nope=1" ""
expect 400 "unknown query parameter"
error_shape 400 INVALID_ARGUMENT

# accounts
call POST /v1/auth/register '{"email":"ann@example.com","password":"correct-horse-9","firstName":"Ann","lastName":"Lee"}'
expect 201 "register"
ann=$(json 'd["id"]')
call POST /v1/auth/register '{"email":"bob@example.com","password":"correct-horse-9","firstName":"Bob","lastName":"Ray","age":3}'
expect 400 "unknown field"
error_shape 400 INVALID_ARGUMENT
grep -q '"field":"age"' <<<"$body" || fail "the unknown field is not named: $body"
call POST /v1/auth/register '{"email": "bob@example.com", "password": '
expect 400 "malformed JSON"
error_shape 400 INVALID_ARGUMENT
call POST /v1/auth/register '{"email":"bob@example.com","password":"correct-horse-9","firstName":"Bob","lastName":"Ray"}'
expect 201 "register bob"
call POST /v1/auth/login '{"email":"ann@example.com","password":"correct-horse-9"}'
expect 200 "login"
token=$(json 'd["accessToken"]')
call POST /v1/auth/login '{"email":"bob@example.com","password":"correct-horse-9"}'
bob_token=$(json 'd["accessToken"]')

call GET /v1/users/me ""
expect 401 "no token"
error_shape 401 UNAUTHENTICATED
grep -qi '^www-authenticate: Bearer' <<<"$headers" || fail "401 without WWW-Authenticate"
call GET /v1/users/me "" -H "authorization: Bearer $token"
expect 200 "me"
[ "$(json 'd["email"], d["roles"]')" = "ann@example.com ['USER']" ] || fail "me: $body"
forged="${token%?}A"
[ "$forged" != "$token" ] || forged="${token%?}B"
call GET /v1/users/me "" -H "authorization: Bearer $forged"
expect 401 "forged signature"
grep -qi 'error="invalid_token"' <<<"$headers" || fail "forged: no invalid_token challenge"
none_header=$(printf '{"alg":"none","typ":"JWT"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
claims=$(cut -d. -f2 <<<"$token")
call GET /v1/users/me "" -H "authorization: Bearer $none_header.$claims."
expect 401 "alg none"
call GET /v1/users "" -H "authorization: Bearer $token"
expect 403 "admin route as a user"
error_shape 403 PERMISSION_DENIED
call GET "/v1/users/$ann" "" -H "authorization: Bearer $bob_token"
expect 404 "another user's account"

# an order, paid through the saga
order_body="{\"items\":[{\"productId\":\"$product\",\"quantity\":1}],\"shippingAddress\":{\"street\":\"1 Main St\",\"city\":\"Springfield\",\"zipCode\":\"12345\",\"country\":\"US\"},\"paymentMethodId\":\"pm_card_visa\"}"
call POST /v1/orders "$order_body" -H "authorization: Bearer $token" -H 'idempotency-key: order-1'
expect 201 "place an order"
order=$(json 'd["id"]')
[ "$(json 'd["userId"]')" = "$ann" ] || fail "the order is not the caller's: $body"
call POST /v1/orders "$order_body" -H "authorization: Bearer $token" -H 'idempotency-key: order-1'
[ "$(json 'd["id"]')" = "$order" ] || fail "the same Idempotency-Key made another order"
paid=""
for _ in $(seq 1 50); do
	call GET "/v1/orders/$order" "" -H "authorization: Bearer $token"
	[ "$(json 'd["status"]')" = PAID ] && { paid=1; break; }
	sleep 0.1
done
[ -n "$paid" ] || fail "the order did not settle PAID: $body"
# its stock change reached the cache through inventory's event: the
# product's cached reply (TTL 30 s) is dropped, not served stale
fresh=""
for _ in $(seq 1 50); do
	call GET "/v1/products/$product" ""
	[ "$(json 'd["stock"]')" = "$((stock - 1))" ] && { fresh=1; break; }
	sleep 0.1
done
[ -n "$fresh" ] || fail "the cache served the product's old stock ($stock) after the order: $body"
call GET "/v1/orders/$order" "" -H "authorization: Bearer $bob_token"
expect 404 "another user's order"
call GET "/v1/users/$ann/orders" "" -H "authorization: Bearer $token"
expect 200 "list my orders"
[ "$(json 'd["total"], d["orders"][0]["id"]')" = "1 $order" ] || fail "my orders: $body"

# CORS
call OPTIONS /v1/products "" -H 'origin: https://app.example.com' \
	-H 'access-control-request-method: GET' -H 'access-control-request-headers: authorization'
expect 204 "CORS preflight"
grep -qi '^access-control-allow-origin: https://app.example.com$' <<<"$headers" ||
	fail "preflight without Access-Control-Allow-Origin: $headers"
grep -qi '^access-control-allow-methods: GET, POST$' <<<"$headers" ||
	fail "preflight without the path's methods: $headers"
call OPTIONS /v1/products "" -H 'origin: https://evil.example.com' \
	-H 'access-control-request-method: GET'
expect 403 "CORS preflight from another origin"
grep -qi '^access-control-allow-origin' <<<"$headers" && fail "a refused origin got Allow-Origin"
call GET "/v1/products?pageSize=1" "" -H 'origin: https://app.example.com'
grep -qi '^access-control-allow-origin: https://app.example.com$' <<<"$headers" ||
	fail "an answer without Access-Control-Allow-Origin"
grep -qi '^vary: origin$' <<<"$headers" || fail "an answer without Vary: Origin"
grep -qi '^ratelimit-remaining: [0-9]' <<<"$headers" || fail "an answer without RateLimit-Remaining"

# login's rate limit (8 a minute here; 4 spent above)
limited=""
for _ in $(seq 1 10); do
	call POST /v1/auth/login '{"email":"ann@example.com","password":"wrong-password-1"}'
	[ "$status" = 429 ] && { limited=1; break; }
done
[ -n "$limited" ] || fail "login was never rate limited"
error_shape 429 RESOURCE_EXHAUSTED
grep -qiE '^retry-after: [1-9][0-9]*$' <<<"$headers" || fail "429 without Retry-After: $headers"
grep -qi '^ratelimit-remaining: 0$' <<<"$headers" || fail "429 without RateLimit-Remaining: 0"
call GET "/v1/products?pageSize=1" ""
expect 200 "other routes are limited apart from login"

# metrics and the access log
call GET /metrics ""
expect 200 "metrics"
grep -qi '^content-type: text/plain; version=0.0.4' <<<"$headers" || fail "/metrics content type"
grep -q 'route="/v1/orders"' <<<"$body" || fail "/metrics without the orders route: $(head -c 400 <<<"$body")"
grep -q 'code="429"' <<<"$body" || fail "/metrics without the 429s"
# the RPC client's section (the gateway's calls) and the services' (this
# process's RPC server), each family with its HELP and TYPE
for side in client server; do
	grep -q "^# TYPE panthera_rpc_${side}_calls_total counter$" <<<"$body" &&
		grep -q "^# HELP panthera_rpc_${side}_call_seconds_total " <<<"$body" &&
		grep -q "^panthera_rpc_${side}_calls_total{method=\"/panthera.orders.v1.OrderService/CreateOrder\",status=\"OK\"} [1-9]" <<<"$body" ||
		fail "/metrics without the RPC $side section: $(grep panthera_rpc_ <<<"$body" | head -n 5)"
done
grep -q '"route":"/v1/products/{product_id}"' "$tmp/pantherad.log" ||
	grep -q '"route":"/v1/products/{productId}"' "$tmp/pantherad.log" ||
	fail "no access-log line for GET /v1/products/{id}"
grep '"status":401' "$tmp/pantherad.log" | grep -qi 'bearer' && fail "the access log holds a token"

# a body over 1 MiB
head -c 1100000 /dev/zero | tr '\0' 'x' >"$tmp/big"
status=$(curl -s -o "$tmp/b" -w '%{http_code}' -H 'content-type: application/json' \
	--data-binary @"$tmp/big" "$base/v1/auth/login")
body=$(cat "$tmp/b")
expect 413 "a body over the limit"
error_shape 413 RESOURCE_EXHAUSTED

gw_stop
echo "api: health, OpenAPI, errors, tokens, ownership, an order paid, ETags, metrics, CORS and rate limits, over HTTP"
