/*
 * test_router.c - the gateway's router over the generated route table
 * (every route reached by a path made from its template, 405 with the
 * right Allow set, 404s) and over small tables of its own for what our
 * protos do not use ({name=segments/STAR} and '**' variables, custom
 * methods, precedence with backtracking); percent-decoding, verbs, query
 * keys, the errors of a bad table, a buffer too small. Ends with a short
 * benchmark that prints ns per match and asserts nothing about speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gw_router.h"
#include "panthera_routes.h"

static gw_router *router; /* over panthera_routes, built once */

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
	router = NULL;
	return 0;
}

/* Route `method target` with a buffer of exactly the size documented, on
 * the heap so that ASan sees any write past it. Returns the status; the
 * caller frees *buf (NULL on no match is fine). */
static int route(const gw_router *r, const char *method, const char *target, gw_route_match *m,
                 gw_http_result *res, char **buf)
{
	size_t len = strlen(target);
	*buf = malloc(GW_ROUTER_BUF_SIZE(len));
	assert_non_null(*buf);
	return gw_router_match(r, method, strlen(method), target, len, *buf,
	                       GW_ROUTER_BUF_SIZE(len), m, res);
}

/* Assert `method target` calls the route of `template` with `http_method`
 * and binds the given field=value pairs (NULL-terminated list). */
static void expect_route(const gw_router *r, const char *method, const char *target,
                         const char *http_method, const char *template, ...)
{
	gw_route_match m;
	gw_http_result res;
	char *buf;
	int st = route(r, method, target, &m, &res, &buf);
	if (st != 0)
		fail_msg("%s %s: status %d (%s), want %s %s", method, target, st, res.message,
		         http_method, template);
	assert_int_equal(res.status, 0);
	assert_non_null(m.route);
	assert_ptr_equal(m.route, &gw_router_table(r)->routes[m.route_index]);
	if (strcmp(m.route->path_template, template) != 0 ||
	    strcmp(m.route->http_method, http_method) != 0)
		fail_msg("%s %s: routed to %s %s, want %s %s", method, target, m.route->http_method,
		         m.route->path_template, http_method, template);
	va_list ap;
	va_start(ap, template);
	size_t k = 0;
	for (const char *field; (field = va_arg(ap, const char *)) != NULL; k++) {
		const char *value = va_arg(ap, const char *);
		assert_true(k < m.n_vars);
		assert_string_equal(m.vars[k].field_path, field);
		assert_string_equal(m.vars[k].value, value);
		assert_int_equal(m.vars[k].len, strlen(value));
	}
	va_end(ap);
	assert_int_equal(m.n_vars, k);
	free(buf);
}

/* Assert `method target` is refused with `status` (and for 405, that Allow
 * reads `allow`). */
static void expect_status(const gw_router *r, const char *method, const char *target, int status,
                          const char *allow)
{
	gw_route_match m;
	gw_http_result res;
	char *buf;
	int st = route(r, method, target, &m, &res, &buf);
	free(buf);
	if (st != status)
		fail_msg("%s %s: status %d (%s), want %d", method, target, st,
		         st ? res.message : m.route->path_template, status);
	assert_int_equal(res.status, status);
	assert_null(m.route);
	assert_non_null(res.reason);
	assert_true(res.message[0] != '\0');
	if (status == 405) {
		char got[GW_ROUTER_ALLOW_MAX];
		gw_router_format_allow(r, m.allowed, got, sizeof(got));
		if (strcmp(got, allow) != 0)
			fail_msg("%s %s: Allow \"%s\", want \"%s\"", method, target, got, allow);
		assert_int_equal(res.code, RPC_STATUS_UNIMPLEMENTED);
		assert_string_equal(res.reason, "METHOD_NOT_ALLOWED");
	} else if (status == 404) {
		assert_int_equal(res.code, RPC_STATUS_NOT_FOUND);
		assert_string_equal(res.reason, "ROUTE_NOT_FOUND");
	} else if (status == 400) {
		assert_int_equal(res.code, RPC_STATUS_INVALID_ARGUMENT);
		assert_string_equal(res.reason, "INVALID_PATH");
	}
}

/* ---- paths made from the templates ----------------------------------------- */

/* A concrete path for route i: literals as they are, "v<i>s<j>" for '*',
 * "r<i>/tail" for '**', then ":verb". The value each variable should get
 * goes to values[v]. */
static void path_of(const rpc_http_route *rt, size_t i, char *out, size_t cap, char values[][128])
{
	char seg[GW_ROUTER_MAX_SEGMENTS][64];
	size_t o = 0;
	out[0] = '\0';
	for (size_t j = 0; j < rt->n_segments; j++) {
		const rpc_path_segment *s = &rt->segments[j];
		if (s->kind == RPC_SEGMENT_LITERAL)
			snprintf(seg[j], sizeof(seg[j]), "%s", s->literal);
		else if (s->kind == RPC_SEGMENT_ANY)
			snprintf(seg[j], sizeof(seg[j]), "v%zus%zu", i, j);
		else
			snprintf(seg[j], sizeof(seg[j]), "r%zu/tail", i);
		o += (size_t)snprintf(out + o, cap - o, "/%s", seg[j]);
	}
	if (rt->n_segments == 0)
		o += (size_t)snprintf(out + o, cap - o, "/");
	if (rt->verb != NULL)
		snprintf(out + o, cap - o, ":%s", rt->verb);
	for (size_t v = 0; v < rt->n_vars; v++) {
		size_t vo = 0;
		values[v][0] = '\0';
		for (size_t j = rt->vars[v].first; j < rt->vars[v].last; j++)
			vo += (size_t)snprintf(values[v] + vo, 128 - vo, "%s%s",
			                       j > rt->vars[v].first ? "/" : "", seg[j]);
	}
}

/* The test's own reading of a template, for the 405 oracle: does route rt
 * take the path segs[0..n) with `verb` (NULL: none)? Literal or any
 * segment one for one, '**' the rest. */
static int template_takes(const rpc_http_route *rt, char segs[][64], size_t n, const char *verb)
{
	if ((rt->verb == NULL) != (verb == NULL) || (verb != NULL && strcmp(rt->verb, verb) != 0))
		return 0;
	size_t tn = rt->n_segments;
	int rest = tn > 0 && rt->segments[tn - 1].kind == RPC_SEGMENT_ANY_REST;
	if (rest ? n < tn - 1 : n != tn)
		return 0;
	for (size_t j = 0; j < tn; j++) {
		if (rt->segments[j].kind == RPC_SEGMENT_ANY_REST)
			return 1;
		if (rt->segments[j].kind == RPC_SEGMENT_LITERAL &&
		    strcmp(rt->segments[j].literal, segs[j]) != 0)
			return 0;
	}
	return 1;
}

/* The methods of every route that takes `path` (no escapes in it), under
 * both readings of a ':' in the last segment, as "A, B" in Allow's order. */
static void oracle_allow(const rpc_route_table *t, const char *path, char *out, size_t cap)
{
	char segs[GW_ROUTER_MAX_SEGMENTS][64];
	size_t n = 0;
	for (const char *p = path + 1; *p != '\0' && n < GW_ROUTER_MAX_SEGMENTS; n++) {
		size_t len = strcspn(p, "/");
		snprintf(segs[n], sizeof(segs[n]), "%.*s", (int)len, p);
		p += len + (p[len] == '/');
	}
	char whole[64] = "", verb[64] = "";
	int has_verb = 0;
	if (n > 0) {
		snprintf(whole, sizeof(whole), "%s", segs[n - 1]);
		char *c = strrchr(segs[n - 1], ':');
		if (c != NULL && c > segs[n - 1] && c[1] != '\0') {
			snprintf(verb, sizeof(verb), "%s", c + 1);
			*c = '\0';
			has_verb = 1;
		}
	}
	int takes[64] = {0};
	assert_true(t->n_routes <= 64);
	for (size_t j = 0; j < t->n_routes; j++) {
		if (has_verb && template_takes(&t->routes[j], segs, n, verb))
			takes[j] = 1;
		if (n > 0)
			snprintf(segs[n - 1], sizeof(segs[n - 1]), "%s", whole);
		if (template_takes(&t->routes[j], segs, n, NULL))
			takes[j] = 1;
		if (has_verb)
			*strrchr(segs[n - 1], ':') = '\0';
	}
	static const char *const order[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
	size_t o = 0;
	out[0] = '\0';
	for (size_t k = 0; k < 6; k++)
		for (size_t j = 0; j < t->n_routes; j++)
			if (takes[j] && strcmp(t->routes[j].http_method, order[k]) == 0) {
				o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? ", " : "",
				                      order[k]);
				break;
			}
}

/* `method` is one of the ", "-separated names of `allow`. */
static int allow_has(const char *allow, const char *method)
{
	size_t n = strlen(method);
	for (const char *p = allow; *p != '\0';) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, method, n) == 0)
			return 1;
		p += len;
		p += strspn(p, ", ");
	}
	return 0;
}

static void test_router_every_route_matches_its_template(void **state)
{
	(void)state;
	const rpc_route_table *t = &panthera_routes;
	assert_true(t->n_routes >= 42);
	for (size_t i = 0; i < t->n_routes; i++) {
		const rpc_http_route *rt = &t->routes[i];
		char path[512], target[600], values[GW_ROUTER_MAX_VARS][128];
		path_of(rt, i, path, sizeof(path), values);
		snprintf(target, sizeof(target), "%s?pageSize=5", path);
		gw_route_match m;
		gw_http_result res;
		char *buf;
		int st = route(router, rt->http_method, target, &m, &res, &buf);
		if (st != 0 || m.route_index != i)
			fail_msg("%s %s: status %d, route %zu, want route %zu (%s)",
			         rt->http_method, target, st, st ? 0 : m.route_index, i,
			         rt->path_template);
		assert_ptr_equal(m.route, rt);
		assert_int_equal(m.n_vars, rt->n_vars);
		for (size_t v = 0; v < rt->n_vars; v++) {
			assert_string_equal(m.vars[v].field_path, rt->vars[v].field_path);
			assert_string_equal(m.vars[v].value, values[v]);
		}
		assert_int_equal(m.query_len, strlen("pageSize=5"));
		assert_memory_equal(m.query, "pageSize=5", m.query_len);
		free(buf);
	}
}

static void test_router_wrong_method_is_405_with_allow(void **state)
{
	(void)state;
	const rpc_route_table *t = &panthera_routes;
	static const char *const methods[] = {"GET",  "POST",    "PUT",   "PATCH", "DELETE",
	                                      "HEAD", "OPTIONS", "TRACE", "get"};
	size_t checked = 0;
	for (size_t i = 0; i < t->n_routes; i++) {
		const rpc_http_route *rt = &t->routes[i];
		char path[512], values[GW_ROUTER_MAX_VARS][128], allow[256];
		path_of(rt, i, path, sizeof(path), values);
		oracle_allow(t, path, allow, sizeof(allow));
		assert_non_null(strstr(allow, rt->http_method));
		for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
			if (allow_has(allow, methods[k]))
				continue; /* only the methods no route takes */
			expect_status(router, methods[k], path, 405, allow);
			uint32_t mask;
			gw_http_result res;
			assert_int_equal(gw_router_allowed(router, path, strlen(path), &mask, &res),
			                 0);
			char got[GW_ROUTER_ALLOW_MAX];
			gw_router_format_allow(router, mask, got, sizeof(got));
			assert_string_equal(got, allow);
			checked++;
		}
	}
	assert_true(checked > t->n_routes);
}

static void test_router_unknown_paths_are_404(void **state)
{
	(void)state;
	static const char *const paths[] = {
	    "/",
	    "/v1",
	    "/v2/products",
	    "/v1/nothing",
	    "/v1/products/p1/reviews/r1/more",
	    "/v1/products/p1/images",
	    "/V1/products",
	    "/v1/orders/o1:cancel/x",
	    "/v1/reports",
	    "/v1/reports/sales/2026",
	    "/v1/users/u1/addresses/a1/x",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		expect_status(router, "GET", paths[i], 404, NULL);
		expect_status(router, "POST", paths[i], 404, NULL);
		uint32_t mask = 1;
		gw_http_result res;
		assert_int_equal(gw_router_allowed(router, paths[i], strlen(paths[i]), &mask, &res),
		                 404);
		assert_int_equal(mask, 0);
	}
}

static void test_router_trailing_slash_and_empty_segments_are_404(void **state)
{
	(void)state;
	static const char *const paths[] = {
	    "/v1/products/",
	    "//v1/products",
	    "/v1//products",
	    "/v1/products//",
	    "/v1/products/p1/",
	    "/v1/users/me/",
	    "/v1/cart/",
	    "/v1/products/?page=1",
	    "//",
	    "/v1/orders/o1/:cancel",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		expect_status(router, "GET", paths[i], 404, NULL);
	/* The same paths without the slash route. */
	expect_route(router, "GET", "/v1/products", "GET", "/v1/products", NULL);
	expect_route(router, "GET", "/v1/products?page=1", "GET", "/v1/products", NULL);
}

static void test_router_literal_beats_variable(void **state)
{
	(void)state;
	expect_route(router, "GET", "/v1/users/me", "GET", "/v1/users/me", NULL);
	expect_route(router, "GET", "/v1/users/u-1", "GET", "/v1/users/{user_id}", "user_id", "u-1",
	             NULL);
	/* Method first, then path: PATCH has no literal "me" route, so the
	 * variable takes it, as in grpc-gateway. */
	expect_route(router, "PATCH", "/v1/users/me", "PATCH", "/v1/users/{user_id}", "user_id",
	             "me", NULL);
	expect_route(router, "DELETE", "/v1/users/me", "DELETE", "/v1/users/{user_id}", "user_id",
	             "me", NULL);
	expect_status(router, "PUT", "/v1/users/me", 405, "GET, PATCH, DELETE");
	/* An escaped literal is the literal (RFC 3986 6.2.2.2). */
	expect_route(router, "GET", "/v1/users/%6De", "GET", "/v1/users/me", NULL);
	expect_route(router, "GET", "/%76%31/%70roducts", "GET", "/v1/products", NULL);
}

static void test_router_percent_decoding(void **state)
{
	(void)state;
	const char *tpl = "/v1/products/{product_id}";
	expect_route(router, "GET", "/v1/products/a%20b", "GET", tpl, "product_id", "a b", NULL);
	expect_route(router, "GET", "/v1/products/a+b", "GET", tpl, "product_id", "a+b", NULL);
	expect_route(router, "GET", "/v1/products/caf%C3%A9", "GET", tpl, "product_id", "café",
	             NULL);
	expect_route(router, "GET", "/v1/products/caf\xc3\xa9", "GET", tpl, "product_id", "café",
	             NULL);
	expect_route(router, "GET", "/v1/products/%e2%9c%93", "GET", tpl, "product_id", "✓", NULL);
	/* "%2F" does not split a segment; a one-segment variable decodes it. */
	expect_route(router, "GET", "/v1/products/a%2Fb", "GET", tpl, "product_id", "a/b", NULL);
	expect_route(router, "GET", "/v1/products/a%2fb/reviews", "GET",
	             "/v1/products/{product_id}/reviews", "product_id", "a/b", NULL);
	expect_route(router, "GET", "/v1/products/%3A", "GET", tpl, "product_id", ":", NULL);
	expect_route(router, "GET", "/v1/products/%25", "GET", tpl, "product_id", "%", NULL);
	expect_route(router, "GET", "/v1/products/%3F?x", "GET", tpl, "product_id", "?", NULL);

	static const char *const bad[] = {
	    "/v1/products/%",
	    "/v1/products/%4",
	    "/v1/products/%zz",
	    "/v1/products/%4g",
	    "/v1/products/a%",
	    "/v1/products/%00",
	    "/v1/products/a%00b",
	    "/v1/products/%0A",
	    "/v1/products/%7F",
	    "/v1/products/%C3",
	    "/v1/products/%C3%28",
	    "/v1/products/%C0%AF",
	    "/v1/products/%ED%A0%80",
	    "/v1/products/%F4%90%80%80",
	    "/v1/products/%FF",
	    "/v1/products/\xc3",
	    "/v1/products/a b",
	    "/v1/products/a\tb",
	    "/v1/products/a#b",
	    "/v1/products/.",
	    "/v1/products/..",
	    "/v1/products/%2E",
	    "/v1/products/%2e%2E",
	    "/v1/./products",
	    "/v1/../v1/products",
	    "v1/products",
	    "*",
	    "?x=1",
	    "/v1/orders/..:cancel",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_status(router, "GET", bad[i], 400, NULL);
	/* A bad escape is a 400 even on a path that would be a 404. */
	expect_status(router, "GET", "/v9/%zz", 400, NULL);
	/* "..." is an ordinary segment. */
	expect_route(router, "GET", "/v1/products/...", "GET", tpl, "product_id", "...", NULL);
	/* An empty target. */
	gw_route_match m;
	gw_http_result res;
	char b[4];
	assert_int_equal(gw_router_match(router, "GET", 3, "", 0, b, sizeof(b), &m, &res), 400);
}

static void test_router_custom_verbs(void **state)
{
	(void)state;
	static const char *const verbs[] = {"cancel", "ship", "deliver", "refund"};
	for (size_t i = 0; i < 4; i++) {
		char target[64], tpl[64];
		snprintf(target, sizeof(target), "/v1/orders/o-1:%s", verbs[i]);
		snprintf(tpl, sizeof(tpl), "/v1/orders/{order_id}:%s", verbs[i]);
		expect_route(router, "POST", target, "POST", tpl, "order_id", "o-1", NULL);
	}
	expect_route(router, "POST", "/v1/auth/password-reset:confirm", "POST",
	             "/v1/auth/password-reset:confirm", NULL);
	expect_route(router, "POST", "/v1/auth/password-reset", "POST", "/v1/auth/password-reset",
	             NULL);
	/* The verb is after the last ':'; earlier ones belong to the value. */
	expect_route(router, "POST", "/v1/orders/a:b:cancel", "POST",
	             "/v1/orders/{order_id}:cancel", "order_id", "a:b", NULL);
	/* An escaped verb is the verb. */
	expect_route(router, "POST", "/v1/orders/o1:%63ancel", "POST",
	             "/v1/orders/{order_id}:cancel", "order_id", "o1", NULL);
	/* No route has this verb: the whole segment is the value, for GET. */
	expect_route(router, "GET", "/v1/orders/o1:bogus", "GET", "/v1/orders/{order_id}",
	             "order_id", "o1:bogus", NULL);
	expect_route(router, "GET", "/v1/orders/o1:cancel", "GET", "/v1/orders/{order_id}",
	             "order_id", "o1:cancel", NULL);
	expect_status(router, "POST", "/v1/orders/o1:bogus", 405, "GET");
	/* Both readings count for Allow. */
	expect_status(router, "DELETE", "/v1/orders/o1:cancel", 405, "GET, POST");
	/* An escaped ':' is not a verb separator. */
	expect_status(router, "POST", "/v1/orders/o1%3Acancel", 405, "GET");
	expect_route(router, "GET", "/v1/orders/o1%3Acancel", "GET", "/v1/orders/{order_id}",
	             "order_id", "o1:cancel", NULL);
	/* A ':' first or last is no verb. */
	expect_route(router, "GET", "/v1/orders/:cancel", "GET", "/v1/orders/{order_id}",
	             "order_id", ":cancel", NULL);
	expect_route(router, "GET", "/v1/orders/o1:", "GET", "/v1/orders/{order_id}", "order_id",
	             "o1:", NULL);
	/* A verb on a path without verbs. */
	expect_status(router, "POST", "/v1/auth/login:x", 404, NULL);
	expect_status(router, "POST", "/v1/orders:cancel", 404, NULL);
	expect_status(router, "POST", "/v1/orders/o1:CANCEL", 405, "GET");
}

static void test_router_head_and_options(void **state)
{
	(void)state;
	/* HEAD is not routed: 405 naming what is. */
	expect_status(router, "HEAD", "/v1/products/p1", 405, "GET, PATCH, DELETE");
	expect_status(router, "HEAD", "/v1/products", 405, "GET, POST");
	expect_status(router, "OPTIONS", "/v1/cart", 405, "GET, DELETE");
	uint32_t mask;
	gw_http_result res;
	assert_int_equal(gw_router_allowed(router, "/v1/cart/items/p1?x=1", 21, &mask, &res), 0);
	char allow[GW_ROUTER_ALLOW_MAX];
	assert_int_equal(gw_router_format_allow(router, mask, allow, sizeof(allow)), 13);
	assert_string_equal(allow, "PATCH, DELETE");
	assert_int_equal(gw_router_allowed(router, "/v1/%zz", 7, &mask, &res), 400);
	assert_int_equal(mask, 0);
	/* A method of no route, or of the wrong case, is a 405 as well. */
	expect_status(router, "get", "/v1/products", 405, "GET, POST");
	expect_status(router, "BREW", "/v1/products", 405, "GET, POST");
	expect_status(router, "", "/v1/products", 405, "GET, POST");
}

static void test_router_format_allow_truncates(void **state)
{
	(void)state;
	uint32_t all = 0;
	for (unsigned i = 0; gw_router_method_name(router, i) != NULL; i++)
		all |= 1u << i;
	assert_string_equal(gw_router_method_name(router, 0), "GET");
	assert_null(gw_router_method_name(router, 31));
	char buf[64];
	size_t n = gw_router_format_allow(router, all, buf, sizeof(buf));
	assert_string_equal(buf, "GET, POST, PUT, PATCH, DELETE");
	assert_int_equal(n, strlen(buf));
	for (size_t cap = 0; cap <= n + 1; cap++) {
		char small[64];
		memset(small, 'x', sizeof(small));
		assert_int_equal(gw_router_format_allow(router, all, small, cap), n);
		if (cap > 0) {
			assert_int_equal(strlen(small), cap - 1 < n ? cap - 1 : n);
			assert_memory_equal(small, buf, strlen(small));
		}
		if (cap < sizeof(small))
			assert_int_equal(small[cap], 'x'); /* nothing written past cap */
	}
	assert_int_equal(gw_router_format_allow(router, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

/* ---- a table of our own ------------------------------------------------------ */

#define LIT(s)                         \
	{                              \
		RPC_SEGMENT_LITERAL, s \
	}
#define ANY                           \
	{                             \
		RPC_SEGMENT_ANY, NULL \
	}
#define REST                               \
	{                                  \
		RPC_SEGMENT_ANY_REST, NULL \
	}
#define ROUTE(m_, tpl_, segs_, vars_, verb_)                                   \
	{                                                                      \
		.http_method = m_, .path_template = tpl_, .segments = segs_,   \
		.n_segments = sizeof(segs_) / sizeof(segs_[0]), .vars = vars_, \
		.n_vars = sizeof(vars_) / sizeof(vars_[0]), .verb = verb_,     \
		.access = RPC_ACCESS_PUBLIC, .success_status = 200,            \
	}

static const rpc_path_segment s_book[] = {LIT("v1"), LIT("shelves"), ANY, LIT("books"), ANY};
static const rpc_path_var v_book[] = {{"name", 1, 5}};
static const rpc_path_segment s_shelf[] = {LIT("v1"), LIT("shelves"), ANY};
static const rpc_path_var v_shelf[] = {{"name", 1, 3}};
static const rpc_path_var v_shelf_parts[] = {{"parent", 1, 2}, {"shelf.id", 2, 3}};
static const rpc_path_segment s_files[] = {LIT("v1"), LIT("files"), REST};
static const rpc_path_var v_files[] = {{"path", 2, 3}};
static const rpc_path_var v_files_all[] = {{"path", 1, 3}};
static const rpc_path_segment s_axc[] = {LIT("a"), ANY, LIT("c")};
static const rpc_path_var v_axc[] = {{"x", 1, 2}};
static const rpc_path_segment s_aby[] = {LIT("a"), LIT("b"), ANY};
static const rpc_path_var v_aby[] = {{"y", 2, 3}};
static const rpc_path_segment s_pots[] = {LIT("pots"), ANY};
static const rpc_path_var v_pots[] = {{"pot", 1, 2}};
static const rpc_path_segment s_all[] = {REST};
static const rpc_path_var v_all[] = {{"rest", 0, 1}};

static const rpc_http_route own_routes[] = {
    ROUTE("GET", "/v1/{name=shelves/*/books/*}", s_book, v_book, NULL),
    ROUTE("POST", "/v1/{name=shelves/*}:archive", s_shelf, v_shelf, "archive"),
    ROUTE("PATCH", "/v1/{parent=shelves}/{shelf.id}", s_shelf, v_shelf_parts, NULL),
    ROUTE("GET", "/v1/files/{path=**}", s_files, v_files, NULL),
    ROUTE("GET", "/v1/{path=files/**}:download", s_files, v_files_all, "download"),
    ROUTE("GET", "/a/{x}/c", s_axc, v_axc, NULL),
    ROUTE("POST", "/a/{x}/c", s_axc, v_axc, NULL),
    ROUTE("GET", "/a/b/{y}", s_aby, v_aby, NULL),
    ROUTE("BREW", "/pots/{pot}", s_pots, v_pots, NULL),
    ROUTE("PUT", "/{rest=**}", s_all, v_all, NULL),
};
static const rpc_route_table own_table = {own_routes, sizeof(own_routes) / sizeof(own_routes[0]),
                                          NULL, 0};

static void test_router_multi_segment_variables(void **state)
{
	(void)state;
	gw_router *r;
	char err[200];
	assert_int_equal(gw_router_new(&own_table, &r, err, sizeof(err)), RPC_STATUS_OK);
	const char *book = "/v1/{name=shelves/*/books/*}";
	expect_route(r, "GET", "/v1/shelves/s1/books/b1", "GET", book, "name",
	             "shelves/s1/books/b1", NULL);
	/* Over several segments "%2F" stays encoded; the rest is decoded. */
	expect_route(r, "GET", "/v1/shelves/s%201/books/b%2F1", "GET", book, "name",
	             "shelves/s 1/books/b%2F1", NULL);
	expect_route(r, "GET", "/v1/%73helves/s%2f1/books/b", "GET", book, "name",
	             "shelves/s%2f1/books/b", NULL);
	expect_route(r, "POST", "/v1/shelves/s1:archive", "POST", "/v1/{name=shelves/*}:archive",
	             "name", "shelves/s1", NULL);
	/* Two variables, a nested field. */
	expect_route(r, "PATCH", "/v1/shelves/s%2F1", "PATCH", "/v1/{parent=shelves}/{shelf.id}",
	             "parent", "shelves", "shelf.id", "s/1", NULL);
	/* '**': zero or more segments. */
	const char *files = "/v1/files/{path=**}";
	expect_route(r, "GET", "/v1/files/a/b/c.txt", "GET", files, "path", "a/b/c.txt", NULL);
	expect_route(r, "GET", "/v1/files/a", "GET", files, "path", "a", NULL);
	expect_route(r, "GET", "/v1/files", "GET", files, "path", "", NULL);
	expect_route(r, "GET", "/v1/files/a%2Fb/%C3%A9", "GET", files, "path", "a%2Fb/é", NULL);
	expect_route(r, "GET", "/v1/files/a/b:download", "GET", "/v1/{path=files/**}:download",
	             "path", "files/a/b", NULL);
	expect_route(r, "GET", "/v1/files:download", "GET", "/v1/{path=files/**}:download", "path",
	             "files", NULL);
	/* Empty segments are not "zero segments". */
	expect_status(r, "GET", "/v1/files/a//b", 404, NULL);
	expect_status(r, "GET", "/v1/files/", 404, NULL);
	/* A catch-all at the root for PUT. */
	expect_route(r, "PUT", "/x/y", "PUT", "/{rest=**}", "rest", "x/y", NULL);
	expect_route(r, "PUT", "/", "PUT", "/{rest=**}", "rest", "", NULL);
	expect_route(r, "PUT", "/v1/files/a", "PUT", "/{rest=**}", "rest", "v1/files/a", NULL);
	expect_status(r, "GET", "/x/y", 405, "PUT");
	gw_router_free(r);
}

static void test_router_precedence_backtracks(void **state)
{
	(void)state;
	gw_router *r;
	assert_int_equal(gw_router_new(&own_table, &r, NULL, 0), RPC_STATUS_OK);
	/* Literal "b" before the variable at depth 1. */
	expect_route(r, "GET", "/a/b/c", "GET", "/a/b/{y}", "y", "c", NULL);
	/* No POST under /a/b/...: back up and take the variable. */
	expect_route(r, "POST", "/a/b/c", "POST", "/a/{x}/c", "x", "b", NULL);
	expect_route(r, "GET", "/a/z/c", "GET", "/a/{x}/c", "x", "z", NULL);
	expect_route(r, "GET", "/a/b/d", "GET", "/a/b/{y}", "y", "d", NULL);
	expect_status(r, "POST", "/a/b/d", 405, "GET, PUT");
	expect_status(r, "DELETE", "/a/b/c", 405, "GET, POST, PUT");
	/* Custom methods come after the usual ones in Allow. */
	expect_route(r, "BREW", "/pots/p1", "BREW", "/pots/{pot}", "pot", "p1", NULL);
	expect_status(r, "GET", "/pots/p1", 405, "PUT, BREW");
	gw_router_free(r);
}

static void test_router_buffer_too_small(void **state)
{
	(void)state;
	const char *target = "/v1/products/p%201/reviews/r%2F2?x=1";
	size_t len = strlen(target), cap = 0;
	gw_route_match m;
	gw_http_result res;
	for (;; cap++) {
		char *buf = cap > 0 ? malloc(cap) : NULL;
		int st = gw_router_match(router, "DELETE", 6, target, len, buf, cap, &m, &res);
		free(buf);
		if (st == 0)
			break;
		assert_int_equal(st, 500);
		assert_int_equal(res.code, RPC_STATUS_INTERNAL);
		assert_null(m.route);
		assert_int_equal(m.n_vars, 0);
	}
	assert_true(cap <= GW_ROUTER_BUF_SIZE(len));
	assert_true(cap >= strlen("p 1") + 1 + strlen("r/2") + 1);
	char *buf = malloc(cap);
	assert_int_equal(gw_router_match(router, "DELETE", 6, target, len, buf, cap, &m, &res), 0);
	assert_string_equal(m.vars[0].value, "p 1");
	assert_string_equal(m.vars[1].value, "r/2");
	free(buf);
	/* NULL arguments are errors, not crashes. */
	char b[64];
	assert_int_equal(gw_router_match(NULL, "GET", 3, "/v1/cart", 8, b, sizeof(b), &m, &res),
	                 500);
	assert_int_equal(gw_router_match(router, "GET", 3, NULL, 0, b, sizeof(b), &m, &res), 500);
	assert_int_equal(gw_router_match(router, "GET", 3, "/v1/cart", 8, b, sizeof(b), NULL, &res),
	                 500);
	uint32_t mask;
	assert_int_equal(gw_router_allowed(router, "/v1/cart", 8, NULL, &res), 500);
	assert_int_equal(gw_router_allowed(NULL, "/v1/cart", 8, &mask, &res), 500);
}

static void test_router_many_segments(void **state)
{
	(void)state;
	char target[1024] = "";
	for (int i = 0; i < 65; i++)
		strcat(target, "/a");
	expect_status(router, "GET", target, 404, NULL);
	gw_router *r;
	assert_int_equal(gw_router_new(&own_table, &r, NULL, 0), RPC_STATUS_OK);
	/* 64 segments reach the catch-all, 65 do not. */
	expect_status(r, "PUT", target, 404, NULL);
	target[strlen(target) - 2] = '\0';
	gw_route_match m;
	gw_http_result res;
	char *buf;
	assert_int_equal(route(r, "PUT", target, &m, &res, &buf), 0);
	assert_int_equal(m.vars[0].len, strlen(target) - 1);
	free(buf);
	gw_router_free(r);
}

/* ---- query keys -------------------------------------------------------------- */

static size_t route_index_of(const char *method, const char *tpl)
{
	for (size_t i = 0; i < panthera_routes.n_routes; i++)
		if (strcmp(panthera_routes.routes[i].http_method, method) == 0 &&
		    strcmp(panthera_routes.routes[i].path_template, tpl) == 0)
			return i;
	fail_msg("no route %s %s", method, tpl);
	return 0;
}

static void test_router_query_fields(void **state)
{
	(void)state;
	size_t list = route_index_of("GET", "/v1/products");
	const rpc_http_route *rt = &panthera_routes.routes[list];
	for (size_t q = 0; q < rt->n_query_fields; q++) {
		const char *f = rt->query_fields[q];
		assert_int_equal(gw_router_query_field(router, list, f, strlen(f)), (int)q);
	}
	int ps = gw_router_query_field(router, list, "page_size", 9);
	assert_true(ps >= 0);
	assert_string_equal(rt->query_fields[ps], "page_size");
	assert_int_equal(gw_router_query_field(router, list, "pageSize", 8), ps);
	assert_int_equal(gw_router_query_field(router, list, "pageSize.x.y", 12), ps);
	int mp = gw_router_query_field(router, list, "minPrice", 8);
	assert_true(mp >= 0);
	assert_string_equal(rt->query_fields[mp], "min_price");
	assert_int_equal(gw_router_query_field(router, list, "min_price", 9), mp);
	static const char *const unknown[] = {"pagesize", "PageSize",  "page_Size", "page-size",
	                                      "",         ".page",     "pageSizeX", "x.pageSize",
	                                      "pag",      "page_size_"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		assert_int_equal(
		    gw_router_query_field(router, list, unknown[i], strlen(unknown[i])), -1);
	/* The key's length counts, not its NUL. */
	assert_int_equal(gw_router_query_field(router, list, "pageSize", 4),
	                 gw_router_query_field(router, list, "page", 4));
	assert_int_equal(gw_router_query_field(router, list, "page_sizes", 9), ps);
	/* Out of range, NULL. */
	assert_int_equal(gw_router_query_field(router, 100000, "page", 4), -1);
	assert_int_equal(gw_router_query_field(NULL, list, "page", 4), -1);
	/* A body:"*" route has no query fields. */
	size_t login = route_index_of("POST", "/v1/auth/login");
	assert_int_equal(gw_router_query_field(router, login, "email", 5), -1);

	gw_query_param ok[] = {
	    {"page", 4, "2", 1}, {"sortBy", 6, "-price", 6}, {"search", 6, "red shoes", 9}};
	gw_http_result res;
	assert_int_equal(gw_router_check_query(router, list, ok, 3, &res), 0);
	assert_int_equal(res.status, 0);
	gw_query_param bad[] = {{"page", 4, "2", 1}, {"callback\n\"x\"", 12, "", 0}};
	assert_int_equal(gw_router_check_query(router, list, bad, 2, &res), 400);
	assert_int_equal(res.code, RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(res.reason, "UNKNOWN_QUERY_PARAMETER");
	assert_string_equal(res.message, "unknown query parameter \"callback??x?\"");
	char longkey[300];
	memset(longkey, 'k', sizeof(longkey));
	gw_query_param lk[] = {{longkey, sizeof(longkey), "", 0}};
	assert_int_equal(gw_router_check_query(router, list, lk, 1, &res), 400);
	assert_true(strlen(res.message) < GW_HTTP_MESSAGE_MAX);
	assert_non_null(strstr(res.message, "kkk\"..."));
	/* The reports route: from and to. */
	size_t sales = route_index_of("GET", "/v1/reports/sales");
	gw_query_param span[] = {{"from", 4, "2026-01-01", 10}, {"to", 2, "2026-01-31", 10}};
	assert_int_equal(gw_router_check_query(router, sales, span, 2, &res), 0);
}

/* ---- building ------------------------------------------------------------------ */

static void expect_build_error(const rpc_http_route *routes, size_t n, const char *needle)
{
	rpc_route_table t = {routes, n, NULL, 0};
	gw_router *r = (gw_router *)&r;
	char err[256];
	assert_int_equal(gw_router_new(&t, &r, err, sizeof(err)), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(r);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, needle);
}

static void test_router_rejects_bad_tables(void **state)
{
	(void)state;
	static const rpc_path_segment s_a[] = {LIT("v1"), ANY};
	static const rpc_path_var v_a[] = {{"a", 1, 2}};
	static const rpc_path_var v_b[] = {{"b", 1, 2}};
	static const rpc_path_var v_out[] = {{"a", 1, 3}};
	static const rpc_path_var v_empty[] = {{"a", 1, 1}};
	static const rpc_path_var v_null[] = {{NULL, 1, 2}};
	static const rpc_path_segment s_two[] = {LIT("v1"), ANY, ANY};
	static const rpc_path_var v_overlap[] = {{"a", 1, 3}, {"b", 2, 3}};
	static const rpc_path_segment s_rest_mid[] = {LIT("v1"), REST, ANY};
	static const rpc_path_var v_rest_mid[] = {{"a", 1, 2}};
	static const rpc_path_segment s_empty_lit[] = {LIT("v1"), LIT("")};
	static const rpc_path_segment s_slash_lit[] = {LIT("v1"), LIT("a/b")};
	static const rpc_path_segment s_null_lit[] = {LIT("v1"), LIT(NULL)};
	static const rpc_path_segment s_kind[] = {LIT("v1"), {(rpc_path_segment_kind)7, NULL}};
	static const rpc_path_var v_none[1] = {{"unused", 0, 1}};

	rpc_http_route conflict[] = {ROUTE("GET", "/v1/{a}", s_a, v_a, NULL),
	                             ROUTE("GET", "/v1/{b}", s_a, v_b, NULL)};
	expect_build_error(conflict, 2, "match the same requests");
	rpc_http_route same_verb[] = {ROUTE("POST", "/v1/{a}:x", s_a, v_a, "x"),
	                              ROUTE("POST", "/v1/{b}:x", s_a, v_b, "x")};
	expect_build_error(same_verb, 2, "match the same requests");
	/* Same shape, other verb or method: fine. */
	rpc_http_route fine[] = {
	    ROUTE("POST", "/v1/{a}:x", s_a, v_a, "x"), ROUTE("POST", "/v1/{b}:y", s_a, v_b, "y"),
	    ROUTE("GET", "/v1/{b}", s_a, v_b, NULL), ROUTE("POST", "/v1/{b}", s_a, v_b, NULL)};
	rpc_route_table ft = {fine, 4, NULL, 0};
	gw_router *r;
	assert_int_equal(gw_router_new(&ft, &r, NULL, 0), RPC_STATUS_OK);
	gw_router_free(r);

	rpc_http_route out[] = {ROUTE("GET", "/v1/{a}", s_a, v_out, NULL)};
	expect_build_error(out, 1, "outside the template");
	rpc_http_route empty[] = {ROUTE("GET", "/v1/{a}", s_a, v_empty, NULL)};
	expect_build_error(empty, 1, "outside the template");
	rpc_http_route nullf[] = {ROUTE("GET", "/v1/{a}", s_a, v_null, NULL)};
	expect_build_error(nullf, 1, "no field");
	rpc_http_route overlap[] = {ROUTE("GET", "/v1/{a=*/*}", s_two, v_overlap, NULL)};
	expect_build_error(overlap, 1, "overlap");
	rpc_http_route rest_mid[] = {ROUTE("GET", "/v1/**/x", s_rest_mid, v_rest_mid, NULL)};
	expect_build_error(rest_mid, 1, "not the last segment");
	rpc_http_route lit1[] = {ROUTE("GET", "/v1/", s_empty_lit, v_none, NULL)};
	lit1[0].n_vars = 0;
	expect_build_error(lit1, 1, "not a literal");
	rpc_http_route lit2[] = {ROUTE("GET", "/v1/a/b", s_slash_lit, v_none, NULL)};
	lit2[0].n_vars = 0;
	expect_build_error(lit2, 1, "not a literal");
	rpc_http_route lit3[] = {ROUTE("GET", "/v1/?", s_null_lit, v_none, NULL)};
	lit3[0].n_vars = 0;
	expect_build_error(lit3, 1, "not a literal");
	rpc_http_route kind[] = {ROUTE("GET", "/v1/?", s_kind, v_none, NULL)};
	kind[0].n_vars = 0;
	expect_build_error(kind, 1, "unknown kind");
	rpc_http_route verb[] = {ROUTE("POST", "/v1/{a}:", s_a, v_a, "")};
	expect_build_error(verb, 1, "verb");
	rpc_http_route verb2[] = {ROUTE("POST", "/v1/{a}:a:b", s_a, v_a, "a:b")};
	expect_build_error(verb2, 1, "verb");
	rpc_http_route meth[] = {ROUTE("GE T", "/v1/{a}", s_a, v_a, NULL)};
	expect_build_error(meth, 1, "not a token");
	rpc_http_route meth2[] = {ROUTE("", "/v1/{a}", s_a, v_a, NULL)};
	expect_build_error(meth2, 1, "empty");
	rpc_http_route meth3[] = {ROUTE(NULL, "/v1/{a}", s_a, v_a, NULL)};
	expect_build_error(meth3, 1, "empty");
	rpc_http_route query[] = {ROUTE("GET", "/v1/{a}", s_a, v_a, NULL)};
	query[0].n_query_fields = 1;
	expect_build_error(query, 1, "no query fields");
	static const char *const empty_q[] = {"page", ""};
	query[0].query_fields = empty_q;
	query[0].n_query_fields = 2;
	expect_build_error(query, 1, "query field 1 is empty");

	/* Too many methods for the mask. */
	rpc_http_route many[40];
	char names[40][8];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "M%d", i);
		rpc_http_route one = ROUTE(names[i], "/v1/{a}", s_a, v_a, NULL);
		many[i] = one;
	}
	expect_build_error(many, 40, "more than 32 HTTP methods");
	rpc_route_table t32 = {many, 32, NULL, 0};
	assert_int_equal(gw_router_new(&t32, &r, NULL, 0), RPC_STATUS_OK);
	expect_status(r, "GET", "/v1/x", 405,
	              "M0, M1, M2, M3, M4, M5, M6, M7, M8, M9, M10, M11, "
	              "M12, M13, M14, M15, M16, M17, M18, M19, M20, M21, "
	              "M22, M23, M24, M25, M26, M27, M28, M29, M30, M31");
	expect_route(r, "M31", "/v1/x", "M31", "/v1/{a}", "a", "x", NULL);
	gw_router_free(r);

	/* NULL arguments. */
	char err[64];
	assert_int_equal(gw_router_new(NULL, &r, err, sizeof(err)), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(r);
	assert_int_equal(gw_router_new(&panthera_routes, NULL, err, sizeof(err)),
	                 RPC_STATUS_INVALID_ARGUMENT);
	gw_router_free(NULL);
	/* An empty table routes nothing. */
	rpc_route_table none = {NULL, 0, NULL, 0};
	assert_int_equal(gw_router_new(&none, &r, NULL, 0), RPC_STATUS_OK);
	expect_status(r, "GET", "/", 404, NULL);
	expect_status(r, "GET", "/v1", 404, NULL);
	gw_router_free(r);
}

/* ---- speed (printed, not asserted) ------------------------------------------ */

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void test_router_bench(void **state)
{
	(void)state;
	const rpc_route_table *t = &panthera_routes;
	char paths[64][512];
	size_t n = t->n_routes < 64 ? t->n_routes : 64;
	for (size_t i = 0; i < n; i++) {
		char values[GW_ROUTER_MAX_VARS][128];
		path_of(&t->routes[i], i, paths[i], sizeof(paths[i]), values);
	}
	char buf[600];
	gw_route_match m;
	gw_http_result res;
	const int rounds = 20000;
	size_t hits = 0;
	double t0 = now_ns();
	for (int k = 0; k < rounds; k++)
		for (size_t i = 0; i < n; i++)
			hits += gw_router_match(router, t->routes[i].http_method,
			                        strlen(t->routes[i].http_method), paths[i],
			                        strlen(paths[i]), buf, sizeof(buf), &m, &res) == 0;
	double t1 = now_ns();
	assert_int_equal(hits, (size_t)rounds * n);
	const char *miss = "/v1/products/p1/reviews/r1";
	for (int k = 0; k < rounds; k++)
		hits += gw_router_match(router, "PUT", 3, miss, strlen(miss), buf, sizeof(buf), &m,
		                        &res) == 405;
	double t2 = now_ns();
	printf("router bench: %.0f ns/match over the %zu routes' paths, %.0f ns per 405\n",
	       (t1 - t0) / ((double)rounds * (double)n), n, (t2 - t1) / rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_router_every_route_matches_its_template),
	    cmocka_unit_test(test_router_wrong_method_is_405_with_allow),
	    cmocka_unit_test(test_router_unknown_paths_are_404),
	    cmocka_unit_test(test_router_trailing_slash_and_empty_segments_are_404),
	    cmocka_unit_test(test_router_literal_beats_variable),
	    cmocka_unit_test(test_router_percent_decoding),
	    cmocka_unit_test(test_router_custom_verbs),
	    cmocka_unit_test(test_router_head_and_options),
	    cmocka_unit_test(test_router_format_allow_truncates),
	    cmocka_unit_test(test_router_multi_segment_variables),
	    cmocka_unit_test(test_router_precedence_backtracks),
	    cmocka_unit_test(test_router_buffer_too_small),
	    cmocka_unit_test(test_router_many_segments),
	    cmocka_unit_test(test_router_query_fields),
	    cmocka_unit_test(test_router_rejects_bad_tables),
	    cmocka_unit_test(test_router_bench),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
