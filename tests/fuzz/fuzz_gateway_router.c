/*
 * fuzz_gateway_router.c - libFuzzer target of the gateway's router and query
 * parser (gateway-rest/gw_router.c, gw_http_query.c, gw_http.c's decoder).
 *
 * Input: the first byte picks the method (from a list that includes HEAD,
 * OPTIONS, a custom method and an empty one), the rest is the request
 * target. The router is built once over the templates of API.md (the same
 * shapes as gen/panthera_routes.c, written out here because the generated
 * table drags in every service's descriptors) plus forms our protos do not
 * use: {name=shelves/STAR}, '**', a verb after '**', a custom method.
 * Besides "no crash, no leak", every answer is checked against what
 * gw_router.h promises (statuses, Allow masks, values NUL-terminated inside
 * the buffer, no NUL inside a value), and the query string of a match goes
 * through gw_query_parse() and gw_router_check_query().
 *
 * Build and run: tools/fuzz.sh (make fuzz); replayed by make test through
 * tests/fuzz/corpus.test.sh on tests/fuzz/corpus/fuzz_gateway_router.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_main.h"
#include "gw_http.h"
#include "gw_router.h"

/* "METHOD template" per route. */
static const char *const spec[] = {
    "GET /v1/reports/sales",
    "GET /v1/users/me",
    "GET /v1/users",
    "GET /v1/users/{user_id}",
    "PATCH /v1/users/{user_id}",
    "DELETE /v1/users/{user_id}",
    "GET /v1/users/{user_id}/addresses",
    "POST /v1/users/{user_id}/addresses",
    "DELETE /v1/users/{user_id}/addresses/{address_id}",
    "POST /v1/auth/register",
    "POST /v1/auth/login",
    "POST /v1/auth/refresh",
    "POST /v1/auth/logout",
    "GET /v1/auth/jwks",
    "POST /v1/auth/password-reset",
    "POST /v1/auth/password-reset:confirm",
    "GET /v1/cart",
    "POST /v1/cart/items",
    "PATCH /v1/cart/items/{product_id}",
    "DELETE /v1/cart/items/{product_id}",
    "DELETE /v1/cart",
    "GET /v1/categories",
    "POST /v1/categories",
    "GET /v1/products",
    "GET /v1/products/{product_id}",
    "POST /v1/products",
    "PATCH /v1/products/{product_id}",
    "DELETE /v1/products/{product_id}",
    "PUT /v1/inventory/{product_id}",
    "GET /v1/users/{user_id}/notifications",
    "POST /v1/orders",
    "GET /v1/orders/{order_id}",
    "GET /v1/users/{user_id}/orders",
    "POST /v1/orders/{order_id}:cancel",
    "POST /v1/orders/{order_id}:ship",
    "POST /v1/orders/{order_id}:deliver",
    "POST /v1/orders/{order_id}:refund",
    "POST /v1/payments",
    "GET /v1/payments/{payment_id}",
    "GET /v1/products/{product_id}/reviews",
    "POST /v1/products/{product_id}/reviews",
    "DELETE /v1/products/{product_id}/reviews/{review_id}",
    /* Forms beyond our protos. */
    "GET /v2/{name=shelves/*/books/*}",
    "POST /v2/{name=shelves/*}:archive",
    "GET /v2/files/{path=**}",
    "GET /v2/{path=files/**}:download",
    "BREW /v2/pots/{pot}",
    "PUT /v2/{book.name=shelves/*}/{rest=**}",
};
#define N_ROUTES (sizeof(spec) / sizeof(spec[0]))

static const char *const list_query[] = {"page",      "page_size", "category", "search",
                                         "min_price", "max_price", "sort_by"};

static rpc_http_route routes[N_ROUTES];
static rpc_path_segment segments[N_ROUTES][16];
static rpc_path_var vars[N_ROUTES][4];
static char text[N_ROUTES][128];
static rpc_route_table table;
static gw_router *router;

/* Parse "/a/{f}/{g=x/STAR}/STARSTAR:verb" into route i, cutting its copy of
 * the text in place. The templates above are trusted: harness code. */
static void parse_template(size_t i)
{
	rpc_http_route *rt = &routes[i];
	char *t = text[i];
	strcpy(t, spec[i]);
	char *p = strchr(t, ' ');
	*p++ = '\0';
	rt->http_method = t;
	rt->path_template = spec[i] + (p - t);
	char *colon = strrchr(p, ':');
	if (colon != NULL && strpbrk(colon, "/}") == NULL) {
		*colon = '\0';
		rt->verb = colon + 1;
	}
	size_t n = 0, nv = 0;
	while (*p == '/') {
		*p++ = '\0'; /* ends the previous segment's text */
		if (*p == '{') {
			char *name = ++p;
			p += strcspn(p, "=}");
			vars[i][nv].field_path = name;
			vars[i][nv].first = (uint16_t)n;
			if (*p == '}') { /* {name}: one segment */
				*p++ = '\0';
				segments[i][n++].kind = RPC_SEGMENT_ANY;
				vars[i][nv++].last = (uint16_t)n;
				continue;
			}
			*p++ = '\0'; /* the '=' */
		}
		char *seg = p;
		size_t len = strcspn(p, "/}");
		p += len;
		if (len == 1 && seg[0] == '*') {
			segments[i][n].kind = RPC_SEGMENT_ANY;
		} else if (len == 2 && seg[0] == '*' && seg[1] == '*') {
			segments[i][n].kind = RPC_SEGMENT_ANY_REST;
		} else {
			segments[i][n].kind = RPC_SEGMENT_LITERAL;
			segments[i][n].literal = seg;
		}
		n++;
		if (*p == '}') { /* the end of {name=...} */
			*p++ = '\0';
			vars[i][nv++].last = (uint16_t)n;
		}
	}
	if (*p != '\0' || n == 0)
		abort();
	rt->segments = segments[i];
	rt->n_segments = n;
	rt->vars = vars[i];
	rt->n_vars = nv;
	rt->access = RPC_ACCESS_PUBLIC;
	rt->success_status = 200;
	if (strcmp(rt->path_template, "/v1/products") == 0 && strcmp(rt->http_method, "GET") == 0) {
		rt->query_fields = list_query;
		rt->n_query_fields = sizeof(list_query) / sizeof(list_query[0]);
	}
}

static void start(void)
{
	for (size_t i = 0; i < N_ROUTES; i++)
		parse_template(i);
	table.routes = routes;
	table.n_routes = N_ROUTES;
	char err[200];
	if (gw_router_new(&table, &router, err, sizeof(err)) != RPC_STATUS_OK)
		abort(); /* the harness itself is broken */
}

static const char *const methods[] = {"GET",     "POST", "PUT",  "PATCH", "DELETE",
                                      "OPTIONS", "HEAD", "BREW", ""};

static int method_bit(const char *m)
{
	for (unsigned i = 0;; i++) {
		const char *name = gw_router_method_name(router, i);
		if (name == NULL)
			return -1;
		if (strcmp(name, m) == 0)
			return (int)i;
	}
}

static void check_query(const gw_route_match *m)
{
	char *buf = malloc(m->query_len + 1);
	gw_query_param params[GW_QUERY_MAX_PARAMS];
	size_t n;
	gw_http_result res;
	if (buf == NULL)
		return;
	int st = gw_query_parse(m->query, m->query_len, buf, m->query_len + 1, params,
	                        GW_QUERY_MAX_PARAMS, &n, &res);
	if (st != 0 && st != 400 && st != 414)
		abort();
	if (st == 0) {
		for (size_t i = 0; i < n; i++) {
			if (params[i].key_len == 0 || params[i].key[params[i].key_len] != '\0' ||
			    params[i].value[params[i].value_len] != '\0' ||
			    strlen(params[i].key) != params[i].key_len ||
			    strlen(params[i].value) != params[i].value_len)
				abort();
			int q = gw_router_query_field(router, m->route_index, params[i].key,
			                              params[i].key_len);
			if (q >= (int)m->route->n_query_fields)
				abort();
		}
		int cq = gw_router_check_query(router, m->route_index, params, n, &res);
		if (cq != 0 && (cq != 400 || strlen(res.message) >= GW_HTTP_MESSAGE_MAX))
			abort();
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (router == NULL)
		start();
	if (size < 1 || size > 16384)
		return 0;
	const char *method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	size_t len = size - 1;
	/* The target in a buffer of its own size, so that ASan sees overreads. */
	char *target = malloc(len > 0 ? len : 1);
	char *buf = malloc(GW_ROUTER_BUF_SIZE(len));
	if (target == NULL || buf == NULL)
		goto out;
	memcpy(target, data + 1, len);

	gw_route_match m;
	gw_http_result res;
	int st = gw_router_match(router, method, strlen(method), target, len, buf,
	                         GW_ROUTER_BUF_SIZE(len), &m, &res);
	if (st != res.status || (st != 0 && (res.reason == NULL || res.message[0] == '\0')))
		abort();
	uint32_t allowed = 0;
	gw_http_result ares;
	int ast = gw_router_allowed(router, target, len, &allowed, &ares);
	int bit = method_bit(method);
	char allow[GW_ROUTER_ALLOW_MAX];
	switch (st) {
	case 0:
		if (m.route == NULL || strcmp(m.route->http_method, method) != 0 ||
		    m.route != &routes[m.route_index] || m.n_vars != m.route->n_vars)
			abort();
		for (size_t v = 0; v < m.n_vars; v++) {
			const char *val = m.vars[v].value;
			if (val < buf || val + m.vars[v].len >= buf + GW_ROUTER_BUF_SIZE(len) ||
			    val[m.vars[v].len] != '\0' || strlen(val) != m.vars[v].len)
				abort();
		}
		/* Whatever routes a method is allowed on its path. */
		if (ast != 0 || bit < 0 || !(allowed & (1u << bit)))
			abort();
		if (m.query != NULL)
			check_query(&m);
		break;
	case 405:
		if (m.route != NULL || m.allowed == 0 || ast != 0 || allowed != m.allowed ||
		    (bit >= 0 && (m.allowed & (1u << bit))))
			abort();
		if (gw_router_format_allow(router, m.allowed, allow, sizeof(allow)) >=
		    sizeof(allow))
			abort();
		gw_router_format_allow(router, m.allowed, allow, 3);
		break;
	case 400:
	case 404:
		if (m.route != NULL || ast != st || allowed != 0)
			abort();
		break;
	default:
		abort();
	}

	/* The whole input as a query string, with a small pair bound too. */
	{
		char *qbuf = malloc(len + 1);
		gw_query_param params[4];
		size_t n;
		if (qbuf != NULL) {
			int qs = gw_query_parse(target, len, qbuf, len + 1, params, 4, &n, &res);
			if (qs != 0 && qs != 400 && qs != 414)
				abort();
			free(qbuf);
		}
	}
out:
	free(target);
	free(buf);
	return 0;
}
