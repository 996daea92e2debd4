/*
 * test_cors.c - the gateway's CORS policy: configuration (off, "*", a
 * list, and what a list may not hold), origin parsing and normalisation,
 * preflight answers over the generated routes (204 with every
 * Access-Control-Allow-* header; 403 for an origin, a method or a request
 * header not allowed, with the AIP-193 body), the wildcard (no
 * credentials), and the headers of actual responses, Vary included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_cors.h"
#include "gw_json.h"
#include "gw_router.h"
#include "panthera_routes.h"

#define assert_status(expr, want)                                                     \
	do {                                                                          \
		rpc_status got_ = (expr);                                             \
		if (got_ != (want))                                                   \
			fail_msg("%s: got %s, want %s", #expr, rpc_status_name(got_), \
			         rpc_status_name(want));                              \
	} while (0)

static gw_router *router; /* over panthera_routes */

static int setup(void **state)
{
	(void)state;
	char err[256];
	if (gw_router_new(&panthera_routes, &router, err, sizeof(err)) != RPC_STATUS_OK) {
		fprintf(stderr, "gw_router_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	gw_router_free(router);
	return 0;
}

static gw_cors *policy(const char *origins, int no_credentials)
{
	gw_cors_opts o = {origins, 0, no_credentials};
	gw_cors *c = NULL;
	char err[256];
	rpc_status st = gw_cors_new(&o, &c, err, sizeof(err));
	if (st != RPC_STATUS_OK)
		fail_msg("gw_cors_new(\"%s\"): %s", origins, err);
	return c;
}

/* The value of header `name` in out[0..n), NUL-terminated in a static
 * buffer, or NULL when absent; fails when it appears twice. */
static const char *header(const gw_http_header *out, size_t n, const char *name)
{
	static char value[512];
	const char *found = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strlen(name) != out[i].name_len || memcmp(name, out[i].name, out[i].name_len))
			continue;
		if (found != NULL)
			fail_msg("header %s twice", name);
		assert_true(out[i].value_len < sizeof(value));
		memcpy(value, out[i].value, out[i].value_len);
		value[out[i].value_len] = '\0';
		found = value;
	}
	return found;
}

static void assert_header(const gw_http_header *out, size_t n, const char *name, const char *want)
{
	const char *got = header(out, n, name);
	if (want == NULL) {
		if (got != NULL)
			fail_msg("header %s: \"%s\", want none", name, got);
		return;
	}
	if (got == NULL)
		fail_msg("header %s missing, want \"%s\"", name, want);
	if (strcmp(got, want) != 0)
		fail_msg("header %s: \"%s\", want \"%s\"", name, got, want);
}

static uint32_t allowed_of(const char *path)
{
	uint32_t mask = 0;
	gw_http_result res;
	assert_int_equal(gw_router_allowed(router, path, strlen(path), &mask, &res), 0);
	assert_true(mask != 0);
	return mask;
}

typedef struct preflight {
	int status;
	gw_http_header out[GW_CORS_MAX_HEADERS];
	size_t n;
	gw_cors_buf buf;
	gw_http_result res;
} preflight;

static void run_preflight(const gw_cors *c, const char *path, const char *origin,
                          const char *method, const char *req_headers, preflight *p)
{
	gw_cors_preflight_req req = {origin,      origin ? strlen(origin) : 0,
	                             method,      method ? strlen(method) : 0,
	                             req_headers, req_headers ? strlen(req_headers) : 0};
	p->status =
	    gw_cors_preflight(c, router, allowed_of(path), &req, &p->buf, p->out, &p->n, &p->res);
	assert_true(p->n <= GW_CORS_MAX_HEADERS);
	assert_int_equal(p->status == 204 ? 0 : p->status, p->res.status);
}

static const char *const ALLOW_HEADERS =
    "Authorization, Content-Type, Idempotency-Key, X-Request-Id, If-None-Match, traceparent";
static const char *const EXPOSE_HEADERS = "X-Request-Id, ETag, RateLimit-Limit, "
                                          "RateLimit-Remaining, RateLimit-Reset, "
                                          "RateLimit-Policy, Retry-After";

/* ---- configuration and origins ----------------------------------------- */

static void test_cors_config(void **state)
{
	(void)state;
	gw_cors *c = policy("", 0);
	assert_false(gw_cors_enabled(c));
	gw_cors_free(c);
	c = policy("  ", 0);
	assert_false(gw_cors_enabled(c));
	gw_cors_free(c);
	gw_cors_opts o = {NULL, 0, 0};
	assert_status(gw_cors_new(&o, &c, NULL, 0), RPC_STATUS_OK);
	assert_false(gw_cors_enabled(c));
	gw_cors_free(c);
	c = policy(" * ", 0);
	assert_true(gw_cors_enabled(c));
	gw_cors_free(c);
	c = policy("https://shop.example, capacitor://localhost,http://localhost:5173", 0);
	assert_true(gw_cors_enabled(c));
	gw_cors_free(c);
	gw_cors_free(NULL);

	static const struct {
		const char *spec;
		const char *says;
	} bad[] = {
	    {"https://shop.example/", "trailing '/'"},
	    {"https://shop.example/app", "is not an origin"},
	    {"null", "sandboxed"},
	    {"*, https://shop.example", "cannot be listed"},
	    {"https://a.example,,https://b.example", "empty entry"},
	    {"https://a.example,", "empty entry"},
	    {"shop.example", "is not an origin"},
	    {"https://user@shop.example", "is not an origin"},
	    {"https://shop.example:99999", "is not an origin"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		gw_cors_opts ob = {bad[i].spec, 0, 0};
		gw_cors *out = (gw_cors *)1;
		assert_status(gw_cors_new(&ob, &out, err, sizeof(err)),
		              RPC_STATUS_INVALID_ARGUMENT);
		assert_null(out);
		if (strstr(err, bad[i].says) == NULL)
			fail_msg("\"%s\": message \"%s\", want it to say \"%s\"", bad[i].spec, err,
			         bad[i].says);
	}
	gw_cors_opts big = {"*", 86401, 0};
	assert_status(gw_cors_new(&big, &c, NULL, 0), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_cors_new(NULL, &c, NULL, 0), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_cors_new(&o, NULL, NULL, 0), RPC_STATUS_INVALID_ARGUMENT);
}

static void expect_norm(const char *in, const char *want)
{
	char out[GW_CORS_ORIGIN_MAX + 1];
	int n = gw_cors_origin_normalize(in, strlen(in), out, sizeof(out));
	if (want == NULL) {
		if (n >= 0)
			fail_msg("\"%s\" accepted as \"%s\"", in, out);
		return;
	}
	if (n < 0)
		fail_msg("\"%s\" refused, want \"%s\"", in, want);
	assert_int_equal((size_t)n, strlen(out));
	if (strcmp(out, want) != 0)
		fail_msg("\"%s\" gave \"%s\", want \"%s\"", in, out, want);
}

static void test_cors_origin_parsing(void **state)
{
	(void)state;
	expect_norm("https://shop.example", "https://shop.example");
	expect_norm("HTTPS://Shop.EXAMPLE", "https://shop.example");
	expect_norm("https://shop.example:443", "https://shop.example");
	expect_norm("http://shop.example:80", "http://shop.example");
	expect_norm("https://shop.example:80", "https://shop.example:80");
	expect_norm("http://localhost:5173", "http://localhost:5173");
	expect_norm("capacitor://localhost", "capacitor://localhost");
	expect_norm("chrome-extension://abcdefghijklmnop", "chrome-extension://abcdefghijklmnop");
	expect_norm("http://192.0.2.1:8080", "http://192.0.2.1:8080");
	expect_norm("http://[::1]:3000", "http://[::1]:3000");
	expect_norm("http://[0:0:0:0:0:0:0:1]", "http://[::1]");
	expect_norm("http://[2001:DB8:0:0:1:0:0:1]", "http://[2001:db8::1:0:0:1]");
	expect_norm("http://[1:0:2:3:4:5:6:7]", "http://[1:0:2:3:4:5:6:7]");
	expect_norm("http://[::ffff:1.2.3.4]", "http://[::ffff:102:304]");
	expect_norm("http://xn--bcher-kva.example", "http://xn--bcher-kva.example");

	static const char *const bad[] = {"https://shop.example/",
	                                  "https://shop.example/path",
	                                  "https://shop.example?x=1",
	                                  "https://shop.example#f",
	                                  "https://user@shop.example",
	                                  "https://shop..example",
	                                  "https://.shop.example",
	                                  "https://shop.example.",
	                                  "https://",
	                                  "https:/shop.example",
	                                  "://shop.example",
	                                  "1http://shop.example",
	                                  "https://shop.example:",
	                                  "https://shop.example:0",
	                                  "https://shop.example:080",
	                                  "https://shop.example:65536",
	                                  "https://shop.example:123456",
	                                  "https://b\303\274cher.example",
	                                  "https://shop_x.example",
	                                  "https://[::1",
	                                  "https://[1.2.3.4]",
	                                  "https://[fe80::1%25eth0]",
	                                  "https://shop.example ",
	                                  " https://shop.example",
	                                  "null",
	                                  "*",
	                                  ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_norm(bad[i], NULL);

	/* Bounds: longer than GW_CORS_ORIGIN_MAX, or than the output. */
	char longo[GW_CORS_ORIGIN_MAX + 16] = "https://";
	memset(longo + 8, 'a', sizeof(longo) - 9);
	longo[sizeof(longo) - 1] = '\0';
	expect_norm(longo, NULL);
	char small[10];
	assert_int_equal(gw_cors_origin_normalize("https://shop.example", 20, small, sizeof(small)),
	                 -1);
	assert_int_equal(gw_cors_origin_normalize("https://a\0b", 11, small, sizeof(small)), -1);
	assert_int_equal(gw_cors_origin_normalize(NULL, 3, small, sizeof(small)), -1);
}

static void test_cors_origin_allowed(void **state)
{
	(void)state;
	gw_cors *c =
	    policy("https://shop.example, http://localhost:5173, HTTPS://Admin.Example:443", 0);
	static const char *const yes[] = {"https://shop.example",     "HTTPS://SHOP.example",
	                                  "https://shop.example:443", " https://shop.example\t",
	                                  "http://localhost:5173",    "https://admin.example"};
	static const char *const no[] = {"http://shop.example",
	                                 "https://shop.example:8443",
	                                 "https://evil.example",
	                                 "https://shop.example.evil",
	                                 "https://sub.shop.example",
	                                 "http://localhost:5174",
	                                 "http://localhost",
	                                 "null",
	                                 "https://shop.example/",
	                                 "",
	                                 "garbage"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!gw_cors_origin_allowed(c, yes[i], strlen(yes[i])))
			fail_msg("\"%s\" refused", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (gw_cors_origin_allowed(c, no[i], strlen(no[i])))
			fail_msg("\"%s\" allowed", no[i]);
	assert_false(gw_cors_origin_allowed(c, NULL, 0));
	gw_cors_free(c);

	c = policy("*", 0);
	assert_true(gw_cors_origin_allowed(c, "https://anything.example", 24));
	assert_true(gw_cors_origin_allowed(c, "null", 4));
	assert_false(gw_cors_origin_allowed(c, "garbage", 7));
	gw_cors_free(c);

	c = policy("", 0);
	assert_false(gw_cors_origin_allowed(c, "https://shop.example", 20));
	gw_cors_free(c);
}

/* ---- preflight ------------------------------------------------------------ */

static void test_cors_preflight_allowed(void **state)
{
	(void)state;
	gw_cors *c = policy("https://shop.example", 0);
	preflight p;
	run_preflight(c, "/v1/products/3f0c", "HTTPS://Shop.example", "PATCH",
	              "authorization,content-type", &p);
	assert_int_equal(p.status, 204);
	assert_int_equal(p.res.code, RPC_STATUS_OK);
	assert_int_equal(p.n, 6);
	/* The Origin as the browser sent it: it compares bytes. */
	assert_header(p.out, p.n, "access-control-allow-origin", "HTTPS://Shop.example");
	assert_header(p.out, p.n, "access-control-allow-credentials", "true");
	assert_header(p.out, p.n, "access-control-allow-methods", "GET, PATCH, DELETE");
	assert_header(p.out, p.n, "access-control-allow-headers", ALLOW_HEADERS);
	assert_header(p.out, p.n, "access-control-max-age", "600");
	assert_header(p.out, p.n, "vary", "Origin");

	/* Every allowed header, in any case, with spaces and empty elements;
	 * no Access-Control-Request-Headers at all. */
	run_preflight(c, "/v1/orders", "https://shop.example", "POST",
	              " Authorization , CONTENT-TYPE,, idempotency-key,x-request-id,"
	              "If-None-Match,\ttraceparent ,",
	              &p);
	assert_int_equal(p.status, 204);
	assert_header(p.out, p.n, "access-control-allow-methods", "POST");
	run_preflight(c, "/v1/orders/o1:cancel", "https://shop.example", "POST", NULL, &p);
	assert_int_equal(p.status, 204);
	run_preflight(c, "/v1/cart", "https://shop.example", "DELETE", "", &p);
	assert_int_equal(p.status, 204);
	assert_header(p.out, p.n, "access-control-allow-methods", "GET, DELETE");
	gw_cors_free(c);

	/* Without credentials, and another max age. */
	gw_cors_opts o = {"https://shop.example", 7200, 1};
	assert_status(gw_cors_new(&o, &c, NULL, 0), RPC_STATUS_OK);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "GET", NULL, &p);
	assert_int_equal(p.status, 204);
	assert_int_equal(p.n, 5);
	assert_header(p.out, p.n, "access-control-allow-origin", "https://shop.example");
	assert_header(p.out, p.n, "access-control-allow-credentials", NULL);
	assert_header(p.out, p.n, "access-control-max-age", "7200");
	gw_cors_free(c);
}

static void test_cors_preflight_wildcard(void **state)
{
	(void)state;
	gw_cors *c = policy("*", 0);
	preflight p;
	run_preflight(c, "/v1/products/3f0c", "https://anyone.example", "DELETE", "authorization",
	              &p);
	assert_int_equal(p.status, 204);
	/* No wildcard with credentials: "*" and never Allow-Credentials. */
	assert_header(p.out, p.n, "access-control-allow-origin", "*");
	assert_header(p.out, p.n, "access-control-allow-credentials", NULL);
	assert_header(p.out, p.n, "access-control-allow-methods", "GET, PATCH, DELETE");
	assert_header(p.out, p.n, "vary", "Origin");
	run_preflight(c, "/v1/products", "null", "GET", NULL, &p);
	assert_int_equal(p.status, 204);
	assert_header(p.out, p.n, "access-control-allow-origin", "*");
	/* Credentials asked for with "*": ignored, never sent. */
	gw_cors_free(c);
	c = policy("*", 1);
	run_preflight(c, "/v1/products", "https://x.example", "GET", NULL, &p);
	assert_int_equal(p.status, 204);
	assert_header(p.out, p.n, "access-control-allow-credentials", NULL);
	gw_cors_free(c);
}

static void expect_refusal(const preflight *p, const char *reason, const char *says, int vary)
{
	assert_int_equal(p->status, 403);
	assert_int_equal(p->res.status, 403);
	assert_int_equal(p->res.code, RPC_STATUS_PERMISSION_DENIED);
	assert_string_equal(p->res.reason, reason);
	if (strstr(p->res.message, says) == NULL)
		fail_msg("message \"%s\", want it to say \"%s\"", p->res.message, says);
	/* A refusal carries no Access-Control-* header. */
	for (size_t i = 0; i < p->n; i++)
		assert_false(p->out[i].name_len >= 15 &&
		             memcmp(p->out[i].name, "access-control-", 15) == 0);
	assert_int_equal(p->n, vary ? 1 : 0);
	if (vary)
		assert_header(p->out, p->n, "vary", "Origin");
}

static void test_cors_preflight_refusals(void **state)
{
	(void)state;
	gw_cors *c = policy("https://shop.example", 0);
	preflight p;
	run_preflight(c, "/v1/products/3f0c", "https://evil.example", "GET", NULL, &p);
	expect_refusal(&p, "CORS_ORIGIN_NOT_ALLOWED", "origin is not allowed", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example/", "GET", NULL, &p);
	expect_refusal(&p, "CORS_ORIGIN_NOT_ALLOWED", "origin is not allowed", 1);
	run_preflight(c, "/v1/products/3f0c", NULL, "GET", NULL, &p);
	expect_refusal(&p, "CORS_ORIGIN_NOT_ALLOWED", "origin is not allowed", 1);
	run_preflight(c, "/v1/products/3f0c", "null", "GET", NULL, &p);
	expect_refusal(&p, "CORS_ORIGIN_NOT_ALLOWED", "origin is not allowed", 1);

	/* A method the path does not have; methods are case-sensitive. */
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "PUT", NULL, &p);
	expect_refusal(&p, "CORS_METHOD_NOT_ALLOWED", "method \"PUT\" is not allowed", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "patch", NULL, &p);
	expect_refusal(&p, "CORS_METHOD_NOT_ALLOWED", "\"patch\"", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "GE T", NULL, &p);
	expect_refusal(&p, "CORS_METHOD_NOT_ALLOWED", "not a method", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "", NULL, &p);
	expect_refusal(&p, "CORS_METHOD_NOT_ALLOWED", "not a method", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", NULL, NULL, &p);
	expect_refusal(&p, "CORS_METHOD_NOT_ALLOWED", "not a method", 1);

	/* A header outside the list, a malformed list, one too long. */
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "PATCH",
	              "authorization,x-custom", &p);
	expect_refusal(&p, "CORS_HEADER_NOT_ALLOWED", "request header \"x-custom\"", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "PATCH", "tracestate", &p);
	expect_refusal(&p, "CORS_HEADER_NOT_ALLOWED", "\"tracestate\"", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "PATCH",
	              "authorization content-type", &p);
	expect_refusal(&p, "CORS_HEADER_NOT_ALLOWED", "malformed", 1);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "PATCH", "x-\xc3\xa9", &p);
	expect_refusal(&p, "CORS_HEADER_NOT_ALLOWED", "malformed", 1);
	char longh[GW_CORS_REQUEST_HEADERS_MAX + 20] = "";
	while (strlen(longh) + 14 < sizeof(longh))
		strcat(longh, "authorization,");
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "PATCH", longh, &p);
	expect_refusal(&p, "CORS_HEADER_NOT_ALLOWED", "too long", 1);

	/* The AIP-193 body of a refusal. */
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "PUT", NULL, &p);
	gw_json_buf b;
	gw_json_buf_init(&b, 0);
	gw_json_error_reply e = {p.res.status, p.res.code, p.res.message, p.res.reason, NULL,
	                         NULL,         0,          NULL};
	assert_status(gw_json_write_error(&b, &e), RPC_STATUS_OK);
	gw_json_buf_put(&b, "", 1);
	assert_non_null(strstr(b.data, "\"code\":403"));
	assert_non_null(strstr(b.data, "\"status\":\"PERMISSION_DENIED\""));
	assert_non_null(strstr(b.data, "\"reason\":\"CORS_METHOD_NOT_ALLOWED\""));
	gw_json_buf_free(&b);
	gw_cors_free(c);

	/* Wildcard: no Vary on a refusal either way, and still refusals for
	 * bad methods and headers. */
	c = policy("*", 0);
	run_preflight(c, "/v1/products/3f0c", "https://x.example", "PUT", NULL, &p);
	expect_refusal(&p, "CORS_METHOD_NOT_ALLOWED", "\"PUT\"", 0);
	run_preflight(c, "/v1/products/3f0c", "https://x.example", "GET", "x-custom", &p);
	expect_refusal(&p, "CORS_HEADER_NOT_ALLOWED", "\"x-custom\"", 0);
	run_preflight(c, "/v1/products/3f0c", "not an origin", "GET", NULL, &p);
	expect_refusal(&p, "CORS_ORIGIN_NOT_ALLOWED", "origin is not allowed", 0);
	gw_cors_free(c);

	/* CORS off: every preflight refused, saying so. */
	c = policy("", 0);
	run_preflight(c, "/v1/products/3f0c", "https://shop.example", "GET", NULL, &p);
	expect_refusal(&p, "CORS_ORIGIN_NOT_ALLOWED", "not enabled", 0);
	gw_cors_free(c);

	/* NULL arguments. */
	gw_http_result res;
	size_t n = 7;
	gw_cors_buf buf;
	gw_http_header out[GW_CORS_MAX_HEADERS];
	assert_int_equal(gw_cors_preflight(NULL, router, 1, NULL, &buf, out, &n, &res), 500);
	assert_int_equal(n, 0);
	assert_int_equal(res.status, 500);
}

/* ---- actual responses ------------------------------------------------------ */

static void test_cors_response_headers(void **state)
{
	(void)state;
	gw_http_header out[GW_CORS_MAX_HEADERS];
	gw_cors *c = policy("https://shop.example", 0);
	size_t n = gw_cors_response_headers(c, " https://SHOP.example ", 22, out);
	assert_int_equal(n, 4);
	assert_header(out, n, "vary", "Origin");
	assert_header(out, n, "access-control-allow-origin", "https://SHOP.example");
	assert_header(out, n, "access-control-allow-credentials", "true");
	assert_header(out, n, "access-control-expose-headers", EXPOSE_HEADERS);
	/* Not allowed, or no Origin: Vary alone, so that a cache never hands
	 * this answer to an allowed origin, nor the other way round. */
	n = gw_cors_response_headers(c, "https://evil.example", 20, out);
	assert_int_equal(n, 1);
	assert_header(out, n, "vary", "Origin");
	n = gw_cors_response_headers(c, NULL, 0, out);
	assert_int_equal(n, 1);
	assert_header(out, n, "vary", "Origin");
	gw_cors_free(c);

	c = policy("https://shop.example", 1);
	n = gw_cors_response_headers(c, "https://shop.example", 20, out);
	assert_int_equal(n, 3);
	assert_header(out, n, "access-control-allow-credentials", NULL);
	gw_cors_free(c);

	/* "*": the same headers whatever the Origin, so no Vary. */
	c = policy("*", 0);
	static const char *const origins[] = {"https://a.example", "garbage", "null"};
	for (size_t i = 0; i < 3; i++) {
		n = gw_cors_response_headers(c, origins[i], strlen(origins[i]), out);
		assert_int_equal(n, 2);
		assert_header(out, n, "access-control-allow-origin", "*");
		assert_header(out, n, "access-control-expose-headers", EXPOSE_HEADERS);
		assert_header(out, n, "vary", NULL);
		assert_header(out, n, "access-control-allow-credentials", NULL);
	}
	n = gw_cors_response_headers(c, NULL, 0, out);
	assert_int_equal(n, 2);
	gw_cors_free(c);

	c = policy("", 0);
	assert_int_equal(gw_cors_response_headers(c, "https://shop.example", 20, out), 0);
	gw_cors_free(c);
	assert_int_equal(gw_cors_response_headers(NULL, "https://shop.example", 20, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cors_config),
	    cmocka_unit_test(test_cors_origin_parsing),
	    cmocka_unit_test(test_cors_origin_allowed),
	    cmocka_unit_test(test_cors_preflight_allowed),
	    cmocka_unit_test(test_cors_preflight_wildcard),
	    cmocka_unit_test(test_cors_preflight_refusals),
	    cmocka_unit_test(test_cors_response_headers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
