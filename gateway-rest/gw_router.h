/*
 * gw_router.h - the REST gateway's router: (HTTP method, request target) to
 * the generated route it calls and the path variables it binds.
 *
 * Built once at start-up from a generated rpc_route_table (panthera_routes)
 * into a trie of path segments; immutable after, so every event-loop thread
 * shares one router without a lock. A match splits the query string off,
 * splits the path on '/', checks and percent-decodes each segment, walks the
 * trie (literal segments before variables, '*' before '**', backtracking),
 * and answers one of:
 *   0    the route, its variables (field path and decoded value) and the
 *        raw query string;
 *   400  a path that is not well formed (a bad escape, a decoded NUL or
 *        control character, invalid UTF-8, a "." or ".." segment, a target
 *        that does not start with '/');
 *   404  no route has this path (an empty segment, a trailing slash);
 *   405  routes have this path, none with this method; the match says which
 *        methods would work, for the Allow header.
 * docs/gateway/routing.md describes the rules and the choices behind them
 * (precedence, custom verbs, "%2F", HEAD).
 *
 * A match allocates nothing: decoded values go into a buffer the caller
 * gives (h2o's request pool, an arena, the stack).
 *
 * Thread-safety: gw_router_new() and gw_router_free() are the caller's to
 * order; every other function only reads the router and may run on any
 * number of threads at once.
 */
#ifndef PANTHERA_GW_ROUTER_H
#define PANTHERA_GW_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "gw_http.h"
#include "panthera/rpc_route.h"
#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GW_ROUTER_MAX_VARS     8u  /* path variables of one route */
#define GW_ROUTER_MAX_SEGMENTS 64u /* segments of a template, and of a path */
#define GW_ROUTER_MAX_METHODS  32u /* distinct HTTP methods of a table */
#define GW_ROUTER_MAX_LITERAL  64u /* bytes of a literal segment or a verb */

/* Bytes of Allow text the router may produce: every method, ", " between. */
#define GW_ROUTER_ALLOW_MAX (GW_ROUTER_MAX_METHODS * (GW_ROUTER_MAX_LITERAL + 2))

/* Bytes gw_router_match() needs in its buffer for a target of `len` bytes. */
#define GW_ROUTER_BUF_SIZE(len) ((len) + 1)

typedef struct gw_router gw_router;

/*
 * Build a router from `table`, which must outlive it (generated tables are
 * static). Checks every route: a method that is an HTTP token, segments
 * well formed ('**' last only, literals 1..GW_ROUTER_MAX_LITERAL bytes
 * without '/'), variables within the template and not overlapping, at most
 * GW_ROUTER_MAX_VARS of them, and no two routes with the same method on the
 * same template shape and verb.
 *
 * out:     OUT, the router; NULL on error.
 * err:     OUT, a sentence naming the route at fault on error; err_cap
 *          bytes, NUL-terminated; may be NULL when err_cap is 0.
 * Returns RPC_STATUS_OK, INVALID_ARGUMENT (a NULL argument, a bad or
 * conflicting route, too many methods) or RESOURCE_EXHAUSTED (out of
 * memory).
 */
rpc_status gw_router_new(const rpc_route_table *table, gw_router **out, char *err, size_t err_cap);

/* Free a router no thread uses any more. NULL is harmless. */
void gw_router_free(gw_router *r);

/* A path variable of a match. */
typedef struct gw_path_var {
	/* The request field it sets: the table's dotted proto path. */
	const char *field_path;
	/* Decoded, NUL-terminated, in the caller's buffer. A variable over one
	 * segment ({id}) is fully decoded, "%2F" included, so its value may hold
	 * a '/'. One over several segments ({name=shelves/STAR}, {path=STARSTAR}
	 * where STAR is '*') keeps "%2F" and "%2f" as they came, its segments
	 * joined by '/'. Valid UTF-8, without NUL or control characters. */
	const char *value;
	size_t len;
} gw_path_var;

/* The result of gw_router_match(). */
typedef struct gw_route_match {
	/* The route (status 0), else NULL, and its index in the table. */
	const rpc_http_route *route;
	size_t route_index;
	/* The route's variables, in the table's order (status 0). */
	gw_path_var vars[GW_ROUTER_MAX_VARS];
	size_t n_vars;
	/* The raw query string after '?', not decoded (gw_query_parse());
	 * NULL when the target has no '?'. Points into the target. */
	const char *query;
	size_t query_len;
	/* Status 405: bit i set when method i routes this path
	 * (gw_router_format_allow() writes them). Unspecified otherwise. */
	uint32_t allowed;
} gw_route_match;

/*
 * Route one request.
 *
 * method:  the request method, case-sensitive ("GET"). HEAD and OPTIONS
 *          are not routed unless the table binds them: they get 405.
 * target:  the request target as received: path and query, not decoded
 *          ("/v1/products/p%201?pageSize=5").
 * buf:     room for the decoded variables; buf_cap of at least
 *          GW_ROUTER_BUF_SIZE(target_len). The match points into it.
 * m:       OUT, the match; see gw_route_match for what holds on which
 *          status.
 * res:     OUT, why it did not match: 400, 404 or 405 as above, 500 when
 *          buf_cap is too small.
 * Returns 0 or that HTTP status.
 */
int gw_router_match(const gw_router *r, const char *method, size_t method_len, const char *target,
                    size_t target_len, char *buf, size_t buf_cap, gw_route_match *m,
                    gw_http_result *res);

/*
 * The methods that route `target` (for a CORS preflight, or Allow).
 * allowed: OUT, a mask as gw_route_match.allowed; 0 on error.
 * Returns 0 when some route has this path, else 400 or 404 as
 * gw_router_match() with res filled.
 */
int gw_router_allowed(const gw_router *r, const char *target, size_t target_len, uint32_t *allowed,
                      gw_http_result *res);

/*
 * Write the methods of `allowed` as an Allow header value, "GET, PATCH,
 * DELETE" (GET, HEAD, POST, PUT, PATCH, DELETE first, in that order, then
 * the table's other methods). Truncates to cap - 1 bytes and
 * NUL-terminates when cap > 0; GW_ROUTER_ALLOW_MAX is always enough.
 * Returns the length of the whole value, as snprintf() does.
 */
size_t gw_router_format_allow(const gw_router *r, uint32_t allowed, char *buf, size_t cap);

/* The name of method bit `i` ("GET"), or NULL when there is no such bit. */
const char *gw_router_method_name(const gw_router *r, unsigned i);

/*
 * Which of the route's query_fields a query key names: its first
 * dot-separated component ("shippingAddress" of "shippingAddress.city")
 * equal to the proto name or its lowerCamelCase JSON name. Returns the
 * index into route->query_fields, or -1 (no such field, an empty first
 * component, or a route_index out of range).
 */
int gw_router_query_field(const gw_router *r, size_t route_index, const char *key, size_t key_len);

/*
 * gw_router_query_field() for every pair: 0 when each names a query field
 * of the route, else 400 with a message naming the first key that does
 * not (reason "UNKNOWN_QUERY_PARAMETER").
 */
int gw_router_check_query(const gw_router *r, size_t route_index, const gw_query_param *params,
                          size_t n_params, gw_http_result *res);

/* The table the router was built from. */
const rpc_route_table *gw_router_table(const gw_router *r);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_ROUTER_H */
