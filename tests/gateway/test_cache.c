/*
 * test_cache.c - the gateway's response cache (gw_cache.h): hashing and
 * ETags, the If-None-Match matrix, Cache-Control, keys over the generated
 * routes (escapes, parameter names and order, oneofs), route and event
 * tags, hit / miss / TTL on a fake clock, the byte bound with LRU order,
 * invalidation by tag (and against stores in flight), entries that stay
 * valid while held, and four threads reading, writing and invalidating at
 * once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "google/protobuf/struct.pb-c.h"
#include "gw_cache.h"
#include "gw_router.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera_routes.h"

#define JSON "application/json"

/* ---- helpers -------------------------------------------------------------------- */

static atomic_uint_fast64_t fake_now = 1000000;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return atomic_load(&fake_now);
}

static gw_cache *new_cache(size_t max_bytes, unsigned shards)
{
	gw_cache_config cfg = {.max_bytes = max_bytes,
	                       .shards = shards,
	                       .clock = fake_clock,
	                       .routes = &panthera_routes};
	gw_cache *c = NULL;
	assert_int_equal(gw_cache_create(&cfg, &c), RPC_STATUS_OK);
	assert_non_null(c);
	return c;
}

static rpc_status store(gw_cache *c, const char *key, const char *body, uint32_t ttl,
                        const gw_cache_tags *tags)
{
	gw_cache_reply r = {.status = 200,
	                    .content_type = JSON,
	                    .body = body,
	                    .body_len = strlen(body),
	                    .ttl_seconds = ttl};
	return gw_cache_store(c, gw_cache_ticket(c), key, strlen(key), tags, &r);
}

/* 1 when `key` hits with exactly `body`. */
static int has(gw_cache *c, const char *key, const char *body)
{
	gw_cache_hit h;
	if (!gw_cache_lookup(c, key, strlen(key), &h))
		return 0;
	int same = h.body_len == strlen(body) && memcmp(h.body, body, h.body_len) == 0;
	gw_cache_release(h.entry);
	return same;
}

static gw_cache_tags tags_of(const char *a, const char *b)
{
	gw_cache_tags t = {0};
	if (a != NULL)
		assert_int_equal(gw_cache_tags_add(&t, a, NULL, 0), RPC_STATUS_OK);
	if (b != NULL)
		assert_int_equal(gw_cache_tags_add(&t, b, NULL, 0), RPC_STATUS_OK);
	return t;
}

static size_t route_index(const char *method, const char *template)
{
	for (size_t i = 0; i < panthera_routes.n_routes; i++)
		if (strcmp(panthera_routes.routes[i].http_method, method) == 0 &&
		    strcmp(panthera_routes.routes[i].path_template, template) == 0)
			return i;
	fail_msg("no route %s %s", method, template);
	return 0;
}

/* The cache key of `GET target` through router r; returns its status. */
static rpc_status key_of(const gw_cache *c, const gw_router *r, const char *target,
                         unsigned char *key, size_t cap, size_t *len)
{
	char vbuf[1024], qbuf[1024];
	gw_route_match m;
	gw_http_result res;
	int st = gw_router_match(r, "GET", 3, target, strlen(target), vbuf, sizeof(vbuf), &m, &res);
	if (st != 0)
		fail_msg("%s: router says %d", target, st);
	gw_query_param params[GW_QUERY_MAX_PARAMS];
	size_t n = 0;
	if (m.query != NULL)
		assert_int_equal(gw_query_parse(m.query, m.query_len, qbuf, sizeof(qbuf), params,
		                                GW_QUERY_MAX_PARAMS, &n, &res),
		                 0);
	return gw_cache_key_build(c, r, &m, params, n, key, cap, len);
}

static void expect_same_key(const gw_cache *c, const gw_router *r, const char *a, const char *b,
                            int same)
{
	unsigned char ka[GW_CACHE_KEY_MAX], kb[GW_CACHE_KEY_MAX];
	size_t la, lb;
	assert_int_equal(key_of(c, r, a, ka, sizeof(ka), &la), RPC_STATUS_OK);
	assert_int_equal(key_of(c, r, b, kb, sizeof(kb), &lb), RPC_STATUS_OK);
	int eq = la == lb && memcmp(ka, kb, la) == 0;
	if (eq != same)
		fail_msg("keys of %s and %s: %s, want %s", a, b, eq ? "same" : "different",
		         same ? "same" : "different");
}

/* ---- hashing and ETags --------------------------------------------------------------- */

static void test_siphash_vectors(void **state)
{
	(void)state;
	/* The reference vectors of SipHash-2-4: key 00..0f, messages 00..(n-1). */
	unsigned char msg[64];
	for (int i = 0; i < 64; i++)
		msg[i] = (unsigned char)i;
	uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
	assert_true(gw_siphash24(k0, k1, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(gw_siphash24(k0, k1, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(gw_siphash24(k0, k1, NULL, 0) == 0x726fdb47dd0e0e31ull);
	/* another key, another value */
	assert_true(gw_siphash24(k0 + 1, k1, msg, 15) != 0xa129ca6149be45e5ull);
}

static void test_hash64_and_etag(void **state)
{
	(void)state;
	/* Every length 0..200 (each tail path), and every single-bit change of
	 * a 100-byte buffer, gives a distinct value. */
	unsigned char buf[256];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	uint64_t seen[201 + 800];
	size_t n = 0;
	for (size_t len = 0; len <= 200; len++)
		seen[n++] = gw_hash64(buf, len);
	for (size_t bit = 0; bit < 800; bit++) {
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		seen[n++] = gw_hash64(buf, 100);
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (seen[i] == seen[j])
				fail_msg("hash values %zu and %zu collide", i, j);
	/* Stable: the same bytes at another address hash the same. */
	unsigned char copy[256];
	memcpy(copy + 3, buf, 100);
	assert_true(gw_hash64(copy + 3, 100) == gw_hash64(buf, 100));
	assert_true(gw_hash64(NULL, 0) == gw_hash64(buf, 0));

	char etag[GW_ETAG_LEN + 1], again[GW_ETAG_LEN + 1], other[GW_ETAG_LEN + 1];
	gw_etag("{\"id\":1}", 8, etag);
	gw_etag("{\"id\":1}", 8, again);
	gw_etag("{\"id\":2}", 8, other);
	assert_int_equal(strlen(etag), GW_ETAG_LEN);
	assert_int_equal(etag[0], '"');
	assert_int_equal(etag[GW_ETAG_LEN - 1], '"');
	for (size_t i = 1; i + 1 < GW_ETAG_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", etag[i]));
	assert_string_equal(etag, again);
	assert_string_not_equal(etag, other);
	/* the value is the documented one: gw_hash64 in hex */
	char want[GW_ETAG_LEN + 1];
	snprintf(want, sizeof(want), "\"%016llx\"", (unsigned long long)gw_hash64("{\"id\":1}", 8));
	assert_string_equal(etag, want);
}

/* ---- If-None-Match -------------------------------------------------------------------- */

static gw_inm_result inm(const char *value, const char *etag)
{
	return gw_if_none_match(value, value ? strlen(value) : 0, etag, etag ? strlen(etag) : 0);
}

static void test_if_none_match_matrix(void **state)
{
	(void)state;
	const char *cur = "\"0123456789abcdef\"";
	static const struct {
		const char *value;
		gw_inm_result want;
	} rows[] = {
	    {"\"0123456789abcdef\"", GW_INM_MATCH},
	    {"W/\"0123456789abcdef\"", GW_INM_MATCH}, /* weak comparison */
	    {"  \"0123456789abcdef\"\t", GW_INM_MATCH},
	    {"\"x\", \"0123456789abcdef\"", GW_INM_MATCH},
	    {"\"x\",W/\"0123456789abcdef\" , \"y\"", GW_INM_MATCH},
	    {", ,\"x\",, \"0123456789abcdef\",", GW_INM_MATCH}, /* empty elements */
	    {"*", GW_INM_MATCH},
	    {" * ", GW_INM_MATCH},
	    {"\"0123456789abcdeF\"", GW_INM_NO_MATCH}, /* case matters */
	    {"\"0123456789abcde\"", GW_INM_NO_MATCH},
	    {"\"x\"", GW_INM_NO_MATCH},
	    {"W/\"x\", \"y\"", GW_INM_NO_MATCH},
	    {"\"\"", GW_INM_NO_MATCH}, /* an empty opaque tag is valid */
	    {"", GW_INM_INVALID},
	    {"   ", GW_INM_INVALID},
	    {",", GW_INM_INVALID},
	    {"0123456789abcdef", GW_INM_INVALID}, /* unquoted */
	    {"\"0123456789abcdef", GW_INM_INVALID},
	    {"w/\"0123456789abcdef\"", GW_INM_INVALID}, /* W is upper-case */
	    {"W/ \"x\"", GW_INM_INVALID},
	    {"\"a\" \"b\"", GW_INM_INVALID}, /* no comma */
	    {"\"a\"x", GW_INM_INVALID},
	    {"\"a\", *", GW_INM_INVALID}, /* '*' only alone */
	    {"**", GW_INM_INVALID},
	    {"\"a b\"", GW_INM_INVALID}, /* space is not etagc */
	    {"\"a\x01\"", GW_INM_INVALID},
	    {"\"a\x7f\"", GW_INM_INVALID},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		gw_inm_result got = inm(rows[i].value, cur);
		if (got != rows[i].want)
			fail_msg("If-None-Match '%s': %d, want %d", rows[i].value, got,
			         rows[i].want);
	}
	/* A match found before a later syntax error still matches (the scan
	 * stops); a current weak ETag compares weakly too. */
	assert_int_equal(inm("\"0123456789abcdef\", junk", cur), GW_INM_MATCH);
	assert_int_equal(inm("\"0123456789abcdef\"", "W/\"0123456789abcdef\""), GW_INM_MATCH);
	/* obs-text is allowed inside a tag */
	assert_int_equal(inm("\"caf\xc3\xa9\"", "\"caf\xc3\xa9\""), GW_INM_MATCH);
	/* No current representation: "*" and tags do not match. */
	assert_int_equal(inm("*", NULL), GW_INM_NO_MATCH);
	assert_int_equal(inm("\"a\"", NULL), GW_INM_NO_MATCH);
	assert_int_equal(gw_if_none_match(NULL, 0, cur, strlen(cur)), GW_INM_INVALID);
	/* Bounds: GW_INM_MAX_TAGS tags are read, one more is refused; a value
	 * over GW_INM_MAX_BYTES is refused. */
	char many[GW_INM_MAX_TAGS * 5 + 40];
	size_t n = 0;
	for (unsigned i = 0; i < GW_INM_MAX_TAGS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%s\"%c\"", i ? "," : "",
		                      'a' + (int)(i % 26));
	assert_int_equal(gw_if_none_match(many, n, cur, strlen(cur)), GW_INM_NO_MATCH);
	n += (size_t)snprintf(many + n, sizeof(many) - n, ",\"z\"");
	assert_int_equal(gw_if_none_match(many, n, cur, strlen(cur)), GW_INM_INVALID);
	char *big = malloc(GW_INM_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, ' ', GW_INM_MAX_BYTES + 1);
	memcpy(big, cur, strlen(cur));
	assert_int_equal(gw_if_none_match(big, GW_INM_MAX_BYTES, cur, strlen(cur)), GW_INM_MATCH);
	assert_int_equal(gw_if_none_match(big, GW_INM_MAX_BYTES + 1, cur, strlen(cur)),
	                 GW_INM_INVALID);
	free(big);
}

/* ---- Cache-Control and what may be cached --------------------------------------------- */

static void test_cache_control(void **state)
{
	(void)state;
	char buf[GW_CACHE_CONTROL_MAX];
	assert_int_equal(gw_cache_control(1, 0, 30, buf), strlen("public, max-age=30"));
	assert_string_equal(buf, "public, max-age=30");
	gw_cache_control(1, 1, 7, buf);
	assert_string_equal(buf, "public, max-age=7");
	gw_cache_control(0, 1, 30, buf);
	assert_string_equal(buf, "private, no-store");
	gw_cache_control(0, 0, 30, buf);
	assert_string_equal(buf, "no-store");
	assert_true(gw_cache_control(1, 0, UINT32_MAX, buf) < GW_CACHE_CONTROL_MAX);
	assert_string_equal(buf, "public, max-age=4294967295");

	const rpc_http_route *get =
	    &panthera_routes.routes[route_index("GET", "/v1/products/{product_id}")];
	const rpc_http_route *list = &panthera_routes.routes[route_index("GET", "/v1/products")];
	const rpc_http_route *cats = &panthera_routes.routes[route_index("GET", "/v1/categories")];
	const rpc_http_route *patch =
	    &panthera_routes.routes[route_index("PATCH", "/v1/products/{product_id}")];
	const rpc_http_route *me = &panthera_routes.routes[route_index("GET", "/v1/users/me")];
	assert_true(gw_cache_route_cacheable(get, "GET", 200));
	assert_true(gw_cache_route_cacheable(list, "GET", 200));
	assert_true(gw_cache_route_cacheable(cats, "GET", 200));
	assert_false(gw_cache_route_cacheable(get, "GET", 404));
	assert_false(gw_cache_route_cacheable(get, "HEAD", 200));
	assert_false(gw_cache_route_cacheable(patch, "PATCH", 200));
	assert_false(gw_cache_route_cacheable(me, "GET", 200));
	assert_false(gw_cache_route_cacheable(NULL, "GET", 200));
	assert_false(gw_cache_route_cacheable(get, NULL, 200));
}

/* ---- keys -------------------------------------------------------------------------------- */

static void test_key_normalisation(void **state)
{
	(void)state;
	gw_router *r;
	assert_int_equal(gw_router_new(&panthera_routes, &r, NULL, 0), RPC_STATUS_OK);
	gw_cache *c = new_cache(1u << 20, 1);
	const char *id = "3f0c8a4e-1111-4222-8333-944455556666";
	char a[200], b[200];
	snprintf(a, sizeof(a), "/v1/products/%s", id);
	snprintf(b, sizeof(b), "/v1/products/%%33f0c8a4e-1111-4222-8333-94445555666%%36");
	expect_same_key(c, r, a, b, 1); /* escapes decode to the same id */
	expect_same_key(c, r, a, "/v1/products/3f0c8a4e-1111-4222-8333-944455556667", 0);
	/* parameter names, order of different fields, '+' and %20 */
	expect_same_key(c, r, "/v1/products?pageSize=10&page=2", "/v1/products?page=2&page_size=10",
	                1);
	expect_same_key(c, r, "/v1/products?search=red+shoe&sortBy=-price",
	                "/v1/products?sort_by=-price&search=red%20shoe", 1);
	expect_same_key(c, r, "/v1/products", "/v1/products?", 1);
	expect_same_key(c, r, "/v1/products?page=2", "/v1/products?page=3", 0);
	expect_same_key(c, r, "/v1/products?page=2", "/v1/products?pageSize=2", 0);
	expect_same_key(c, r, "/v1/products?search=a", "/v1/products?search=a&search=a", 0);
	/* the values of one field keep their order (last one wins, or a list) */
	expect_same_key(c, r, "/v1/products?page=1&page=2", "/v1/products?page=2&page=1", 0);
	/* another route, the same values */
	expect_same_key(c, r, "/v1/products", "/v1/categories", 0);
	/* a value boundary cannot move: "ab"+"c" vs "a"+"bc" */
	expect_same_key(c, r, "/v1/products?search=ab&category=c",
	                "/v1/products?search=a&category=bc", 0);

	/* A key longer than the buffer: RESOURCE_EXHAUSTED, length 0. */
	unsigned char small[16];
	size_t len = 99;
	assert_int_equal(key_of(c, r, a, small, sizeof(small), &len),
	                 RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(len, 0);
	/* A parameter no query field of the route has: INVALID_ARGUMENT. */
	gw_route_match m;
	gw_http_result res;
	char vbuf[256];
	assert_int_equal(
	    gw_router_match(r, "GET", 3, "/v1/products", 12, vbuf, sizeof(vbuf), &m, &res), 0);
	gw_query_param bad = {"nope", 4, "1", 1};
	unsigned char key[GW_CACHE_KEY_MAX];
	assert_int_equal(gw_cache_key_build(c, r, &m, &bad, 1, key, sizeof(key), &len),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_cache_key_build(NULL, r, &m, NULL, 0, key, sizeof(key), &len),
	                 RPC_STATUS_INVALID_ARGUMENT);
	gw_cache_destroy(c);
	gw_router_free(r);
}

/* A table of our own whose request has a oneof (google.protobuf.Value's
 * kind): the order of its members must survive the key. */
static const rpc_method_desc value_method = {"/test.T/Get",
                                             "Get",
                                             &google__protobuf__value__descriptor,
                                             &google__protobuf__value__descriptor,
                                             0,
                                             NULL};
static const rpc_path_segment value_segs[] = {{RPC_SEGMENT_LITERAL, "v1"},
                                              {RPC_SEGMENT_LITERAL, "values"}};
static const char *const value_query[] = {"string_value", "page", "number_value"};
static const rpc_http_route value_routes[] = {{
    .method = &value_method,
    .http_method = "GET",
    .path_template = "/v1/values",
    .segments = value_segs,
    .n_segments = 2,
    .query_fields = value_query,
    .n_query_fields = 3,
    .access = RPC_ACCESS_PUBLIC,
    .success_status = 200,
    .cache_ttl_seconds = 5,
}};
static const rpc_route_table value_table = {value_routes, 1, NULL, 0};

static void test_key_oneof_order(void **state)
{
	(void)state;
	gw_router *r;
	assert_int_equal(gw_router_new(&value_table, &r, NULL, 0), RPC_STATUS_OK);
	gw_cache_config cfg = {.max_bytes = 1u << 20, .routes = &value_table};
	gw_cache *c;
	assert_int_equal(gw_cache_create(&cfg, &c), RPC_STATUS_OK);
	/* page moves freely; the two oneof members keep their order */
	expect_same_key(c, r, "/v1/values?numberValue=1&page=2&stringValue=x",
	                "/v1/values?page=2&number_value=1&string_value=x", 1);
	expect_same_key(c, r, "/v1/values?numberValue=1&stringValue=x&page=2",
	                "/v1/values?stringValue=x&numberValue=1&page=2", 0);
	gw_cache_destroy(c);
	/* Without the table the cache cannot know: fields are ordered by
	 * field alone, and the members' order is lost. */
	gw_cache_config plain = {.max_bytes = 1u << 20};
	assert_int_equal(gw_cache_create(&plain, &c), RPC_STATUS_OK);
	expect_same_key(c, r, "/v1/values?numberValue=1&stringValue=x",
	                "/v1/values?stringValue=x&numberValue=1", 1);
	gw_cache_destroy(c);
	gw_router_free(r);
}

/* ---- tags ------------------------------------------------------------------------------ */

static void test_route_tags(void **state)
{
	(void)state;
	const char *id = "3f0c8a4e-1111-4222-8333-944455556666";
	gw_path_var pv = {"product_id", id, strlen(id)};
	gw_cache_tags t;
	const rpc_route_table *rt = &panthera_routes;
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("GET", "/v1/products/{product_id}")], &pv,
	                        1, 0, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.tag[0], "product:3f0c8a4e-1111-4222-8333-944455556666");
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("GET", "/v1/products")], NULL, 0, 0, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.tag[0], "products");
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("GET", "/v1/categories")], NULL, 0, 0, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.tag[0], "categories");
	/* a write: the item and its collection */
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("PATCH", "/v1/products/{product_id}")], &pv,
	                        1, 1, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tag[0], "product:3f0c8a4e-1111-4222-8333-944455556666");
	assert_string_equal(t.tag[1], "products");
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("POST", "/v1/categories")], NULL, 0, 1, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.tag[0], "categories");
	/* two variables, a custom verb */
	gw_path_var two[] = {{"product_id", "p1", 2}, {"review_id", "r9", 2}};
	assert_int_equal(
	    gw_cache_route_tags(
	        &rt->routes[route_index("DELETE", "/v1/products/{product_id}/reviews/{review_id}")],
	        two, 2, 1, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 2); /* the review, not its product */
	assert_string_equal(t.tag[0], "review:r9");
	assert_string_equal(t.tag[1], "reviews");
	/* the same path read: it depends on both */
	static const rpc_path_segment rs[] = {{RPC_SEGMENT_LITERAL, "v1"},
	                                      {RPC_SEGMENT_LITERAL, "products"},
	                                      {RPC_SEGMENT_ANY, NULL},
	                                      {RPC_SEGMENT_LITERAL, "reviews"},
	                                      {RPC_SEGMENT_ANY, NULL}};
	static const rpc_path_var rv[] = {{"product_id", 2, 3}, {"review_id", 4, 5}};
	rpc_http_route get_review = {.http_method = "GET",
	                             .path_template =
	                                 "/v1/products/{product_id}/reviews/{review_id}",
	                             .segments = rs,
	                             .n_segments = 5,
	                             .vars = rv,
	                             .n_vars = 2};
	assert_int_equal(gw_cache_route_tags(&get_review, two, 2, 0, &t), RPC_STATUS_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tag[0], "product:p1");
	assert_string_equal(t.tag[1], "review:r9");
	/* a cart write names a product but does not change it */
	gw_path_var item = {"product_id", "p1", 2};
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("PATCH", "/v1/cart/items/{product_id}")],
	                        &item, 1, 1, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.tag[0], "items");
	/* plurals in -es and -ies */
	gw_path_var addr[] = {{"user_id", "u1", 2}, {"address_id", "a1", 2}};
	assert_int_equal(
	    gw_cache_route_tags(
	        &rt->routes[route_index("DELETE", "/v1/users/{user_id}/addresses/{address_id}")],
	        addr, 2, 1, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tag[0], "address:a1");
	assert_string_equal(t.tag[1], "addresses");
	static const rpc_path_segment cs[] = {{RPC_SEGMENT_LITERAL, "v1"},
	                                      {RPC_SEGMENT_LITERAL, "categories"},
	                                      {RPC_SEGMENT_ANY, NULL}};
	static const rpc_path_var cv[] = {{"category_id", 2, 3}};
	rpc_http_route patch_cat = {.http_method = "PATCH",
	                            .path_template = "/v1/categories/{category_id}",
	                            .segments = cs,
	                            .n_segments = 3,
	                            .vars = cv,
	                            .n_vars = 1};
	gw_path_var cat = {"category_id", "c1", 2};
	assert_int_equal(gw_cache_route_tags(&patch_cat, &cat, 1, 1, &t), RPC_STATUS_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tag[0], "category:c1");
	assert_string_equal(t.tag[1], "categories");
	gw_path_var order = {"order_id", "o1", 2};
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("POST", "/v1/orders/{order_id}:cancel")],
	                        &order, 1, 1, &t),
	    RPC_STATUS_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tag[0], "order:o1");
	assert_string_equal(t.tag[1], "orders");
	/* an id too long for a tag: not cacheable */
	char longid[GW_CACHE_TAG_MAX + 10];
	memset(longid, 'a', sizeof(longid));
	gw_path_var lv = {"product_id", longid, sizeof(longid)};
	assert_int_equal(
	    gw_cache_route_tags(&rt->routes[route_index("GET", "/v1/products/{product_id}")], &lv,
	                        1, 0, &t),
	    RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(t.n, 0);
	assert_int_equal(gw_cache_route_tags(NULL, NULL, 0, 0, &t), RPC_STATUS_INVALID_ARGUMENT);

	/* gw_cache_tags_add's bounds */
	gw_cache_tags x = {0};
	assert_int_equal(gw_cache_tags_add(&x, "", NULL, 0), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_cache_tags_add(&x, "k", "", 0), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_cache_tags_add(&x, "k", "a\0b", 3), RPC_STATUS_INVALID_ARGUMENT);
	for (unsigned i = 0; i < GW_CACHE_MAX_TAGS; i++)
		assert_int_equal(gw_cache_tags_add(&x, "k", "1", 1), RPC_STATUS_OK);
	assert_int_equal(gw_cache_tags_add(&x, "k", "1", 1), RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(x.n, GW_CACHE_MAX_TAGS);
}

static size_t pack_event(const ProtobufCMessage *m, uint8_t *buf)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	assert_true(n < 512);
	return protobuf_c_message_pack(m, buf);
}

static void test_event_tags(void **state)
{
	(void)state;
	uint8_t buf[512];
	gw_cache_tags t;
	const char *id = "3f0c8a4e-1111-4222-8333-944455556666";

	Panthera__Events__V1__ProductChanged pc = PANTHERA__EVENTS__V1__PRODUCT_CHANGED__INIT;
	pc.product_id = (char *)id;
	pc.kind = PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__UPDATED;
	size_t n = pack_event(&pc.base, buf);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.ProductChanged", buf, n, &t),
	                 RPC_STATUS_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tag[0], "product:3f0c8a4e-1111-4222-8333-944455556666");
	assert_string_equal(t.tag[1], "products");

	Panthera__Events__V1__StockChanged sc = PANTHERA__EVENTS__V1__STOCK_CHANGED__INIT;
	sc.product_id = (char *)id;
	sc.available = 3;
	n = pack_event(&sc.base, buf);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.StockChanged", buf, n, &t),
	                 RPC_STATUS_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tag[0], "product:3f0c8a4e-1111-4222-8333-944455556666");
	assert_string_equal(t.tag[1], "products");

	Panthera__Events__V1__ReviewCreated rc = PANTHERA__EVENTS__V1__REVIEW_CREATED__INIT;
	rc.review_id = "r";
	rc.product_id = (char *)id;
	rc.user_id = "u";
	rc.rating = 4;
	n = pack_event(&rc.base, buf);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.ReviewCreated", buf, n, &t),
	                 RPC_STATUS_OK);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.tag[0], "product:3f0c8a4e-1111-4222-8333-944455556666");
	Panthera__Events__V1__ReviewDeleted rd = PANTHERA__EVENTS__V1__REVIEW_DELETED__INIT;
	rd.product_id = (char *)id;
	n = pack_event(&rd.base, buf);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.ReviewDeleted", buf, n, &t),
	                 RPC_STATUS_OK);
	assert_int_equal(t.n, 1);

	/* other types: no tag, even with a payload that would not decode */
	Panthera__Events__V1__OrderPaid op = PANTHERA__EVENTS__V1__ORDER_PAID__INIT;
	op.order_id = "o";
	n = pack_event(&op.base, buf);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.OrderPaid", buf, n, &t),
	                 RPC_STATUS_OK);
	assert_int_equal(t.n, 0);
	assert_int_equal(gw_cache_event_tags("x.Unknown", "\xff\xff", 2, &t), RPC_STATUS_OK);
	assert_int_equal(t.n, 0);

	/* a listed type that does not decode, or names no product */
	assert_int_equal(
	    gw_cache_event_tags("panthera.events.v1.ProductChanged", "\x0a\xff", 2, &t),
	    RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(t.n, 0);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.StockChanged", NULL, 0, &t),
	                 RPC_STATUS_INVALID_ARGUMENT);
	/* a payload too big for the decoder's fixed memory */
	static uint8_t huge[8192];
	huge[0] = 0x0a; /* field 1, length-delimited */
	huge[1] = 0xe0;
	huge[2] = 0x3f; /* 8160 bytes */
	memset(huge + 3, 'a', 8160);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.ProductChanged", huge, 8163, &t),
	                 RPC_STATUS_INVALID_ARGUMENT);
	/* an id too long for a tag */
	char longid[300];
	memset(longid, 'b', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	pc.product_id = longid;
	n = protobuf_c_message_pack(&pc.base, huge);
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.ProductChanged", huge, n, &t),
	                 RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(t.n, 0);
	assert_int_equal(gw_cache_event_tags(NULL, buf, n, &t), RPC_STATUS_INVALID_ARGUMENT);
}

/* ---- hits, misses, TTL -------------------------------------------------------------------- */

static void test_hit_miss_ttl(void **state)
{
	(void)state;
	gw_cache *c = new_cache(1u << 20, 4);
	gw_cache_hit h;
	assert_int_equal(gw_cache_lookup(c, "k1", 2, &h), 0);
	assert_null(h.entry);
	gw_cache_tags t = tags_of("products", NULL);
	const char *body = "{\"products\":[]}";
	gw_cache_reply r = {.status = 200,
	                    .content_type = JSON,
	                    .body = body,
	                    .body_len = strlen(body),
	                    .ttl_seconds = 30};
	assert_int_equal(gw_cache_store(c, gw_cache_ticket(c), "k1", 2, &t, &r), RPC_STATUS_OK);
	assert_int_equal(gw_cache_lookup(c, "k1", 2, &h), 1);
	assert_int_equal(h.status, 200);
	assert_string_equal(h.content_type, JSON);
	assert_int_equal(h.content_type_len, strlen(JSON));
	assert_int_equal(h.body_len, strlen(body));
	assert_memory_equal(h.body, body, h.body_len);
	char etag[GW_ETAG_LEN + 1];
	gw_etag(body, strlen(body), etag);
	assert_string_equal(h.etag, etag); /* computed when not given */
	assert_int_equal(h.etag_len, GW_ETAG_LEN);
	assert_int_equal(h.max_age, 30);
	gw_cache_release(h.entry);
	/* a key that is a prefix is another key */
	assert_int_equal(gw_cache_lookup(c, "k", 1, &h), 0);

	/* max-age counts down, rounded up */
	atomic_fetch_add(&fake_now, 10500);
	assert_int_equal(gw_cache_lookup(c, "k1", 2, &h), 1);
	assert_int_equal(h.max_age, 20);
	gw_cache_release(h.entry);
	atomic_fetch_add(&fake_now, 19499);
	assert_int_equal(gw_cache_lookup(c, "k1", 2, &h), 1);
	assert_int_equal(h.max_age, 1);
	gw_cache_release(h.entry);
	/* at the expiry: a miss, and the entry is gone */
	atomic_fetch_add(&fake_now, 1);
	assert_int_equal(gw_cache_lookup(c, "k1", 2, &h), 0);
	gw_cache_stats s;
	gw_cache_stats_get(c, &s);
	assert_int_equal(s.hits, 3);
	assert_int_equal(s.misses, 3);
	assert_int_equal(s.stores, 1);
	assert_int_equal(s.expirations, 1);
	assert_int_equal(s.entries, 0);

	/* a given ETag is kept; a store replaces the entry of its key */
	r.etag = "\"00000000000000aa\"";
	assert_int_equal(gw_cache_store(c, gw_cache_ticket(c), "k1", 2, &t, &r), RPC_STATUS_OK);
	r.body = "{\"products\":[1]}";
	r.body_len = strlen(r.body);
	r.etag = NULL;
	assert_int_equal(gw_cache_store(c, gw_cache_ticket(c), "k1", 2, &t, &r), RPC_STATUS_OK);
	assert_true(has(c, "k1", "{\"products\":[1]}"));
	gw_cache_stats_get(c, &s);
	assert_int_equal(s.entries, 1);
	r.etag = "\"00000000000000aa\"";
	assert_int_equal(gw_cache_store(c, gw_cache_ticket(c), "k2", 2, NULL, &r), RPC_STATUS_OK);
	assert_int_equal(gw_cache_lookup(c, "k2", 2, &h), 1);
	assert_string_equal(h.etag, "\"00000000000000aa\"");
	gw_cache_release(h.entry);

	/* what store refuses */
	gw_cache_reply bad = r;
	bad.status = 201;
	assert_int_equal(gw_cache_store(c, 0, "k3", 2, NULL, &bad), RPC_STATUS_INVALID_ARGUMENT);
	bad = r;
	bad.ttl_seconds = 0;
	assert_int_equal(gw_cache_store(c, 0, "k3", 2, NULL, &bad), RPC_STATUS_INVALID_ARGUMENT);
	bad.ttl_seconds = 86401;
	assert_int_equal(gw_cache_store(c, 0, "k3", 2, NULL, &bad), RPC_STATUS_INVALID_ARGUMENT);
	bad = r;
	bad.etag = "\"xyz\"";
	assert_int_equal(gw_cache_store(c, 0, "k3", 2, NULL, &bad), RPC_STATUS_INVALID_ARGUMENT);
	bad = r;
	bad.content_type = "";
	assert_int_equal(gw_cache_store(c, 0, "k3", 2, NULL, &bad), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_cache_store(c, 0, "", 0, NULL, &r), RPC_STATUS_INVALID_ARGUMENT);
	static char bigkey[GW_CACHE_KEY_MAX + 1];
	assert_int_equal(gw_cache_store(c, 0, bigkey, sizeof(bigkey), NULL, &r),
	                 RPC_STATUS_INVALID_ARGUMENT);
	/* a body over max_entry_bytes (1 MiB / 4 shards / 4 = 64 KiB) */
	char *big = calloc(1, 70000);
	assert_non_null(big);
	bad = r;
	bad.body = big;
	bad.body_len = 70000;
	bad.etag = NULL;
	assert_int_equal(gw_cache_store(c, 0, "k3", 2, NULL, &bad), RPC_STATUS_RESOURCE_EXHAUSTED);
	free(big);
	assert_int_equal(gw_cache_lookup(c, "k3", 2, &h), 0);
	/* NULLs */
	assert_int_equal(gw_cache_lookup(NULL, "k1", 2, &h), 0);
	assert_int_equal(gw_cache_lookup(c, NULL, 2, &h), 0);
	assert_int_equal(gw_cache_store(NULL, 0, "k", 1, NULL, &r), RPC_STATUS_INVALID_ARGUMENT);
	gw_cache_release(NULL);
	gw_cache_destroy(c);
	gw_cache_destroy(NULL);

	/* configuration checks */
	gw_cache_config cfg = {.shards = 3};
	assert_int_equal(gw_cache_create(&cfg, &c), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(c);
	cfg = (gw_cache_config){.max_bytes = 1000};
	assert_int_equal(gw_cache_create(&cfg, &c), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_cache_create(NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_cache_create(NULL, &c), RPC_STATUS_OK); /* every default */
	gw_cache_stats_get(c, &s);
	assert_int_equal(s.max_bytes, GW_CACHE_DEFAULT_MAX_BYTES);
	gw_cache_destroy(c);
}

/* ---- the byte bound and LRU ----------------------------------------------------------------- */

static void test_lru_bound(void **state)
{
	(void)state;
	const size_t max = 256u << 10;
	gw_cache *c = new_cache(max, 1);
	char body[1000], key[32];
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	gw_cache_tags t = tags_of("products", NULL);
	/* "hot" is read between every store: it stays while older keys go */
	assert_int_equal(store(c, "hot", "{}", 60, &t), RPC_STATUS_OK);
	gw_cache_stats s;
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		gw_cache_tags kt = {0};
		assert_int_equal(gw_cache_tags_add(&kt, "product", key, strlen(key)),
		                 RPC_STATUS_OK);
		assert_int_equal(gw_cache_tags_add(&kt, "products", NULL, 0), RPC_STATUS_OK);
		assert_int_equal(store(c, key, body, 60, &kt), RPC_STATUS_OK);
		assert_true(has(c, "hot", "{}"));
		gw_cache_stats_get(c, &s);
		assert_true(s.bytes <= max);
	}
	gw_cache_stats_get(c, &s);
	assert_true(s.evictions > 4000);
	assert_true(s.entries > 100); /* ~1.4 KiB each with the bookkeeping */
	assert_int_equal(s.entries + s.evictions, 5001);
	/* the newest are there, the oldest are gone */
	assert_true(has(c, "key-4999", body));
	assert_true(has(c, "key-4900", body));
	assert_false(has(c, "key-0", body));
	assert_false(has(c, "key-3000", body));
	/* evicted entries took their tags along: the tag of one that is gone
	 * drops nothing; the shared one drops every survivor */
	assert_int_equal(gw_cache_invalidate_tag(c, "product:key-0"), 0);
	assert_int_equal(gw_cache_invalidate_tag(c, "product:key-4999"), 1);
	assert_int_equal(gw_cache_invalidate_tag(c, "products"), s.entries - 1);
	gw_cache_stats_get(c, &s);
	assert_int_equal(s.entries, 0);
	/* with nothing stored only the bucket arrays are charged */
	assert_true(s.bytes < 64u << 10);
	gw_cache_destroy(c);

	/* several shards: the bound holds for the whole */
	c = new_cache(max, 4);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(store(c, key, body, 60, NULL), RPC_STATUS_OK);
	}
	gw_cache_stats_get(c, &s);
	assert_true(s.bytes <= max);
	assert_true(s.evictions > 0);
	gw_cache_destroy(c);
}

/* ---- invalidation ---------------------------------------------------------------------------- */

static void test_invalidate_by_tag(void **state)
{
	(void)state;
	gw_cache *c = new_cache(1u << 20, 8);
	gw_cache_tags p1 = tags_of("product:1", NULL), p2 = tags_of("product:2", NULL);
	gw_cache_tags list = tags_of("products", NULL), cats = tags_of("categories", NULL);
	assert_int_equal(store(c, "get/1", "{\"id\":\"1\"}", 30, &p1), RPC_STATUS_OK);
	assert_int_equal(store(c, "get/2", "{\"id\":\"2\"}", 30, &p2), RPC_STATUS_OK);
	assert_int_equal(store(c, "list?page=1", "{\"products\":[1,2]}", 30, &list), RPC_STATUS_OK);
	assert_int_equal(store(c, "list?page=2", "{\"products\":[]}", 30, &list), RPC_STATUS_OK);
	assert_int_equal(store(c, "categories", "{\"categories\":[]}", 30, &cats), RPC_STATUS_OK);

	/* product 1 changed: the event's tags drop its entry and the lists */
	uint8_t buf[128];
	Panthera__Events__V1__ProductChanged pc = PANTHERA__EVENTS__V1__PRODUCT_CHANGED__INIT;
	pc.product_id = "1";
	pc.kind = PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__UPDATED;
	size_t n = pack_event(&pc.base, buf);
	gw_cache_tags ev;
	assert_int_equal(gw_cache_event_tags("panthera.events.v1.ProductChanged", buf, n, &ev),
	                 RPC_STATUS_OK);
	assert_int_equal(gw_cache_invalidate_tags(c, &ev), 3);
	assert_false(has(c, "get/1", "{\"id\":\"1\"}"));
	assert_false(has(c, "list?page=1", "{\"products\":[1,2]}"));
	assert_false(has(c, "list?page=2", "{\"products\":[]}"));
	assert_true(has(c, "get/2", "{\"id\":\"2\"}"));
	assert_true(has(c, "categories", "{\"categories\":[]}"));
	/* again: nothing left to drop */
	assert_int_equal(gw_cache_invalidate_tags(c, &ev), 0);
	assert_int_equal(gw_cache_invalidate_tag(c, "nothing"), 0);
	assert_int_equal(gw_cache_invalidate_tag(c, ""), 0);
	assert_int_equal(gw_cache_invalidate_tag(NULL, "x"), 0);
	assert_int_equal(gw_cache_invalidate_tag(c, NULL), 0);

	/* an entry with two tags goes with either, and its other tag's list
	 * stays consistent; the same tag twice is linked once */
	gw_cache_tags both = tags_of("product:3", "products");
	assert_int_equal(gw_cache_tags_add(&both, "product:3", NULL, 0), RPC_STATUS_OK);
	assert_int_equal(store(c, "get/3", "{}", 30, &both), RPC_STATUS_OK);
	assert_int_equal(store(c, "list?page=3", "[]", 30, &both), RPC_STATUS_OK);
	assert_int_equal(gw_cache_invalidate_tag(c, "product:3"), 2);
	assert_int_equal(gw_cache_invalidate_tag(c, "products"), 0);

	/* clear drops everything */
	assert_int_equal(gw_cache_clear(c), 2);
	gw_cache_stats s;
	gw_cache_stats_get(c, &s);
	assert_int_equal(s.entries, 0);
	assert_int_equal(s.invalidations, 3 + 2 + 2);
	assert_int_equal(gw_cache_clear(NULL), 0);
	gw_cache_destroy(c);
}

static void test_store_overtaken(void **state)
{
	(void)state;
	gw_cache *c = new_cache(1u << 20, 4);
	gw_cache_tags p1 = tags_of("product:1", "products");
	gw_cache_reply r = {
	    .status = 200, .content_type = JSON, .body = "{}", .body_len = 2, .ttl_seconds = 30};
	/* the ticket is taken before the RPC; the change event comes while
	 * the RPC runs: the (old) reply must not be stored */
	uint64_t ticket = gw_cache_ticket(c);
	gw_cache_invalidate_tag(c, "product:1");
	assert_int_equal(gw_cache_store(c, ticket, "get/1", 5, &p1, &r),
	                 RPC_STATUS_FAILED_PRECONDITION);
	assert_false(has(c, "get/1", "{}"));
	/* with a ticket taken after the invalidation: stored */
	gw_cache_tags p2 = tags_of("product:2", NULL);
	assert_int_equal(gw_cache_store(c, gw_cache_ticket(c), "get/2", 5, &p2, &r), RPC_STATUS_OK);
	/* the same for the invalidated tag */
	assert_int_equal(gw_cache_store(c, gw_cache_ticket(c), "get/1", 5, &p1, &r), RPC_STATUS_OK);
	assert_true(has(c, "get/1", "{}"));
	/* a clear overtakes every older ticket, tags or not */
	ticket = gw_cache_ticket(c);
	gw_cache_clear(c);
	assert_int_equal(gw_cache_store(c, ticket, "x", 1, NULL, &r),
	                 RPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(gw_cache_store(c, gw_cache_ticket(c), "x", 1, NULL, &r), RPC_STATUS_OK);
	gw_cache_stats s;
	gw_cache_stats_get(c, &s);
	assert_int_equal(s.store_refused, 2);
	gw_cache_destroy(c);
}

/* ---- entries held by readers ----------------------------------------------------------------- */

static void test_held_entry_outlives_removal(void **state)
{
	(void)state;
	gw_cache *c = new_cache(256u << 10, 1);
	gw_cache_tags t = tags_of("product:1", NULL);
	char body[2000];
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	gw_cache_hit a, b, d, e;

	/* evicted while held */
	assert_int_equal(store(c, "a", body, 30, &t), RPC_STATUS_OK);
	assert_int_equal(gw_cache_lookup(c, "a", 1, &a), 1);
	char key[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		assert_int_equal(store(c, key, body, 30, NULL), RPC_STATUS_OK);
	}
	assert_false(has(c, "a", body));
	/* invalidated while held */
	assert_int_equal(store(c, "b", body, 30, &t), RPC_STATUS_OK);
	assert_int_equal(gw_cache_lookup(c, "b", 1, &b), 1);
	assert_int_equal(gw_cache_invalidate_tag(c, "product:1"), 1);
	/* replaced while held */
	assert_int_equal(store(c, "d", "old", 30, NULL), RPC_STATUS_OK);
	assert_int_equal(gw_cache_lookup(c, "d", 1, &d), 1);
	assert_int_equal(store(c, "d", "new", 30, NULL), RPC_STATUS_OK);
	assert_true(has(c, "d", "new"));
	/* expired while held, then the cache destroyed while held */
	assert_int_equal(store(c, "e", body, 1, NULL), RPC_STATUS_OK);
	assert_int_equal(gw_cache_lookup(c, "e", 1, &e), 1);
	atomic_fetch_add(&fake_now, 2000);
	assert_false(has(c, "e", body));
	gw_cache_destroy(c);

	/* every hit still reads its own bytes (ASan checks the memory) */
	assert_memory_equal(a.body, body, a.body_len);
	assert_memory_equal(b.body, body, b.body_len);
	assert_int_equal(d.body_len, 3);
	assert_memory_equal(d.body, "old", 3);
	assert_memory_equal(e.body, body, e.body_len);
	assert_string_equal(a.content_type, JSON);
	gw_cache_release(a.entry);
	gw_cache_release(b.entry);
	gw_cache_release(d.entry);
	gw_cache_release(e.entry);

	/* two readers of one entry: the first release does not free it */
	c = new_cache(256u << 10, 1);
	assert_int_equal(store(c, "s", body, 30, NULL), RPC_STATUS_OK);
	assert_int_equal(gw_cache_lookup(c, "s", 1, &a), 1);
	assert_int_equal(gw_cache_lookup(c, "s", 1, &b), 1);
	assert_ptr_equal(a.entry, b.entry);
	gw_cache_clear(c);
	gw_cache_release(a.entry);
	assert_memory_equal(b.body, body, b.body_len);
	gw_cache_release(b.entry);
	gw_cache_destroy(c);
}

/* ---- concurrency -------------------------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS  20000
#define KEYS    300

typedef struct worker {
	gw_cache *c;
	int id;
	atomic_int *bad;
} worker;

/* The body of key i: its number, repeated: a reader checks it got the
 * body of the key it asked for, whole. */
static size_t body_of(int i, char *out, size_t cap)
{
	size_t n = (size_t)(i % 50 + 1) * 8;
	if (n + 1 > cap)
		n = cap - 1;
	for (size_t k = 0; k < n; k++)
		out[k] = (char)('a' + (i + (int)k) % 26);
	out[n] = '\0';
	return n;
}

static void *work(void *arg)
{
	worker *w = arg;
	uint32_t x = 2463534242u + (uint32_t)w->id * 7919u;
	char key[32], body[512], tag[32];
	for (int r = 0; r < ROUNDS; r++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		int i = (int)(x % KEYS);
		snprintf(key, sizeof(key), "key/%d", i);
		unsigned op = (x >> 16) % 16;
		if (op < 10) {
			gw_cache_hit h;
			if (gw_cache_lookup(w->c, key, strlen(key), &h)) {
				size_t n = body_of(i, body, sizeof(body));
				if (h.body_len != n || memcmp(h.body, body, n) != 0)
					atomic_fetch_add(w->bad, 1);
				gw_cache_release(h.entry);
			}
		} else if (op < 14) {
			gw_cache_tags t = {0};
			snprintf(tag, sizeof(tag), "%d", i % 10);
			gw_cache_tags_add(&t, "group", tag, strlen(tag));
			gw_cache_tags_add(&t, "all", NULL, 0);
			size_t n = body_of(i, body, sizeof(body));
			gw_cache_reply rep = {.status = 200,
			                      .content_type = JSON,
			                      .body = body,
			                      .body_len = n,
			                      .ttl_seconds = 60};
			rpc_status st =
			    gw_cache_store(w->c, gw_cache_ticket(w->c), key, strlen(key), &t, &rep);
			if (st != RPC_STATUS_OK && st != RPC_STATUS_FAILED_PRECONDITION)
				atomic_fetch_add(w->bad, 1);
		} else if (op == 14) {
			snprintf(tag, sizeof(tag), "group:%d", i % 10);
			gw_cache_invalidate_tag(w->c, tag);
		} else if (r % 1000 == 0) {
			gw_cache_clear(w->c);
		}
	}
	return NULL;
}

static void test_concurrent_readers_writers(void **state)
{
	(void)state;
	/* small, so that eviction runs all the time too */
	gw_cache_config cfg = {.max_bytes = 128u << 10, .shards = 2};
	gw_cache *c;
	assert_int_equal(gw_cache_create(&cfg, &c), RPC_STATUS_OK);
	atomic_int bad = 0;
	pthread_t th[THREADS];
	worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){c, i, &bad};
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(atomic_load(&bad), 0);
	gw_cache_stats s;
	gw_cache_stats_get(c, &s);
	assert_true(s.bytes <= cfg.max_bytes);
	assert_true(s.hits > 0);
	assert_true(s.stores > 0);
	assert_true(s.hits + s.misses > (uint64_t)THREADS * ROUNDS / 2);
	/* the tag index is consistent: "all" drops every entry left */
	size_t left = s.entries;
	assert_int_equal(gw_cache_invalidate_tag(c, "all"), left);
	gw_cache_stats_get(c, &s);
	assert_int_equal(s.entries, 0);
	gw_cache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_siphash_vectors),
	    cmocka_unit_test(test_hash64_and_etag),
	    cmocka_unit_test(test_if_none_match_matrix),
	    cmocka_unit_test(test_cache_control),
	    cmocka_unit_test(test_key_normalisation),
	    cmocka_unit_test(test_key_oneof_order),
	    cmocka_unit_test(test_route_tags),
	    cmocka_unit_test(test_event_tags),
	    cmocka_unit_test(test_hit_miss_ttl),
	    cmocka_unit_test(test_lru_bound),
	    cmocka_unit_test(test_invalidate_by_tag),
	    cmocka_unit_test(test_store_overtaken),
	    cmocka_unit_test(test_held_entry_outlives_removal),
	    cmocka_unit_test(test_concurrent_readers_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
