/*
 * gw_router.c - routes requests through a trie built from the generated
 * route table.
 *
 * The trie has one node per distinct template prefix. A node's literal
 * children sit in one sorted array (by length, then bytes) searched by
 * bisection; a node has at most one '*' child and one '**' child, and a list
 * of "ends": per custom verb (or none), which methods end a template there
 * and the route each calls. Matching is a depth-first walk, literal child
 * first, then '*', then '**', that stops at the first end holding the
 * request's method; each node is visited at most once per walk, so a match
 * costs O(segments * log fan-out) in the common case and O(nodes) at worst
 * (a 405 or 404 visits every node the path reaches).
 *
 * The ':verb' of a custom method is on the last segment, after its last raw
 * ':'. A path whose last segment has one is walked twice at most: with the
 * verb split off, then, if no route of the method took it, with the whole
 * segment (a variable may hold a ':'), as grpc-gateway does.
 *
 * Everything is built into one allocation at start-up and never written
 * again; a match only reads it and the caller's buffers.
 */
#include "gw_router.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How path segments are decoded and checked. */
#define PATH_PCT_FLAGS GW_PCT_NO_CONTROLS

/* A literal child of a node. */
typedef struct gw_edge {
	const char *lit; /* the table's string */
	uint32_t len;
	uint32_t child; /* node index */
} gw_edge;

/* The templates that end at a node with one verb. */
typedef struct gw_end {
	const char *verb; /* NULL: no verb */
	uint32_t verb_len;
	uint32_t methods;                      /* bit per method id */
	uint16_t route[GW_ROUTER_MAX_METHODS]; /* route index per method id */
} gw_end;

typedef struct gw_node {
	uint32_t edge_first, n_edges; /* into router->edges, sorted */
	int32_t any;                  /* '*' child, or -1 */
	int32_t rest;                 /* '**' child (a leaf), or -1 */
	uint32_t end_first, n_ends;   /* into router->ends */
} gw_node;

/* A query field of a route under both of its names. */
typedef struct gw_qname {
	const char *proto;
	size_t proto_len;
	const char *camel;
	size_t camel_len;
} gw_qname;

typedef struct gw_method {
	const char *name;
	size_t len;
} gw_method;

struct gw_router {
	const rpc_route_table *table;
	gw_node *nodes;
	size_t n_nodes;
	gw_edge *edges;
	gw_end *ends;
	gw_method methods[GW_ROUTER_MAX_METHODS];
	size_t n_methods;
	size_t *q_first; /* per route: its first entry of qnames */
	gw_qname *qnames;
	size_t max_literal; /* longest literal or verb, to skip decoding */
};

/* ---- building ---------------------------------------------------------------- */

/* The state of a build, and the linked lists it sorts out at the end. */
typedef struct builder {
	gw_router *r;
	gw_edge *tedges; /* in creation order */
	uint32_t *edge_next, *node_edges;
	gw_end *tends;
	uint32_t *end_next, *node_ends;
	size_t n_edges, n_ends;
	char *err;
	size_t err_cap;
} builder;

#define NONE UINT32_MAX

static rpc_status build_fail(builder *b, rpc_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static rpc_status build_fail(builder *b, rpc_status st, const char *fmt, ...)
{
	if (b->err != NULL && b->err_cap > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(b->err, b->err_cap, fmt, ap);
		va_end(ap);
	}
	return st;
}

static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int method_id(const gw_router *r, const char *name, size_t len)
{
	for (size_t i = 0; i < r->n_methods; i++)
		if (r->methods[i].len == len && memcmp(r->methods[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* Give every method of the table an id: the usual ones in a fixed order,
 * so that Allow reads the same whatever the table's order, then the rest. */
static rpc_status assign_methods(builder *b, const rpc_route_table *t)
{
	static const char *const usual[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
	gw_router *r = b->r;
	for (size_t i = 0; i < t->n_routes; i++) {
		const char *m = t->routes[i].http_method;
		size_t len = m != NULL ? strlen(m) : 0;
		if (len == 0 || len > GW_ROUTER_MAX_LITERAL)
			return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
			                  "route %zu: the HTTP method is empty or too long", i);
		for (size_t k = 0; k < len; k++)
			if (!is_tchar((unsigned char)m[k]))
				return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
				                  "route %zu: the HTTP method is not a token", i);
	}
	size_t n_usual = sizeof(usual) / sizeof(usual[0]);
	/* Pass p < n_usual takes usual[p]; the last pass every other method. */
	for (size_t pass = 0; pass <= n_usual; pass++) {
		for (size_t i = 0; i < t->n_routes; i++) {
			const char *m = t->routes[i].http_method;
			size_t u = 0;
			while (u < n_usual && strcmp(m, usual[u]) != 0)
				u++;
			if (pass < n_usual ? u != pass : u < n_usual)
				continue;
			size_t len = strlen(m);
			if (method_id(r, m, len) >= 0)
				continue;
			if (r->n_methods == GW_ROUTER_MAX_METHODS)
				return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
				                  "more than %u HTTP methods",
				                  GW_ROUTER_MAX_METHODS);
			r->methods[r->n_methods].name = m;
			r->methods[r->n_methods].len = len;
			r->n_methods++;
		}
	}
	return RPC_STATUS_OK;
}

static rpc_status check_route(builder *b, size_t i, const rpc_http_route *rt)
{
	const char *tpl = rt->path_template != NULL ? rt->path_template : "?";
	if (rt->n_segments > GW_ROUTER_MAX_SEGMENTS || (rt->n_segments > 0 && rt->segments == NULL))
		return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
		                  "route %zu (%s): no segments, or more than %u", i, tpl,
		                  GW_ROUTER_MAX_SEGMENTS);
	for (size_t j = 0; j < rt->n_segments; j++) {
		const rpc_path_segment *s = &rt->segments[j];
		switch (s->kind) {
		case RPC_SEGMENT_LITERAL: {
			size_t len = s->literal != NULL ? strlen(s->literal) : 0;
			if (len == 0 || len > GW_ROUTER_MAX_LITERAL || memchr(s->literal, '/', len))
				return build_fail(
				    b, RPC_STATUS_INVALID_ARGUMENT,
				    "route %zu (%s): segment %zu is not a literal of 1..%u bytes without '/'",
				    i, tpl, j, GW_ROUTER_MAX_LITERAL);
			break;
		}
		case RPC_SEGMENT_ANY:
			break;
		case RPC_SEGMENT_ANY_REST:
			if (j + 1 != rt->n_segments)
				return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
				                  "route %zu (%s): '**' is not the last segment", i,
				                  tpl);
			break;
		default:
			return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
			                  "route %zu (%s): segment %zu has an unknown kind", i, tpl,
			                  j);
		}
	}
	if (rt->n_vars > GW_ROUTER_MAX_VARS || (rt->n_vars > 0 && rt->vars == NULL))
		return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
		                  "route %zu (%s): more than %u variables", i, tpl,
		                  GW_ROUTER_MAX_VARS);
	for (size_t v = 0; v < rt->n_vars; v++) {
		const rpc_path_var *pv = &rt->vars[v];
		if (pv->field_path == NULL || pv->first >= pv->last || pv->last > rt->n_segments)
			return build_fail(
			    b, RPC_STATUS_INVALID_ARGUMENT,
			    "route %zu (%s): variable %zu has no field or is outside the template",
			    i, tpl, v);
		for (size_t w = 0; w < v; w++)
			if (pv->first < rt->vars[w].last && rt->vars[w].first < pv->last)
				return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
				                  "route %zu (%s): variables %zu and %zu overlap",
				                  i, tpl, w, v);
	}
	if (rt->verb != NULL) {
		size_t len = strlen(rt->verb);
		if (len == 0 || len > GW_ROUTER_MAX_LITERAL || strpbrk(rt->verb, "/:") != NULL)
			return build_fail(
			    b, RPC_STATUS_INVALID_ARGUMENT,
			    "route %zu (%s): the verb is not 1..%u bytes without '/' or ':'", i,
			    tpl, GW_ROUTER_MAX_LITERAL);
	}
	if (rt->n_query_fields > 0 && rt->query_fields == NULL)
		return build_fail(b, RPC_STATUS_INVALID_ARGUMENT, "route %zu (%s): no query fields",
		                  i, tpl);
	for (size_t q = 0; q < rt->n_query_fields; q++)
		if (rt->query_fields[q] == NULL || rt->query_fields[q][0] == '\0')
			return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
			                  "route %zu (%s): query field %zu is empty", i, tpl, q);
	return RPC_STATUS_OK;
}

static uint32_t new_node(builder *b)
{
	gw_router *r = b->r;
	uint32_t n = (uint32_t)r->n_nodes++;
	r->nodes[n].any = -1;
	r->nodes[n].rest = -1;
	b->node_edges[n] = NONE;
	b->node_ends[n] = NONE;
	return n;
}

static uint32_t literal_child(builder *b, uint32_t node, const char *lit)
{
	size_t len = strlen(lit);
	for (uint32_t e = b->node_edges[node]; e != NONE; e = b->edge_next[e])
		if (b->tedges[e].len == len && memcmp(b->tedges[e].lit, lit, len) == 0)
			return b->tedges[e].child;
	uint32_t child = new_node(b);
	uint32_t e = (uint32_t)b->n_edges++;
	b->tedges[e].lit = lit;
	b->tedges[e].len = (uint32_t)len;
	b->tedges[e].child = child;
	b->edge_next[e] = b->node_edges[node];
	b->node_edges[node] = e;
	return child;
}

static rpc_status insert_route(builder *b, const rpc_route_table *t, size_t i)
{
	gw_router *r = b->r;
	const rpc_http_route *rt = &t->routes[i];
	uint32_t node = 0;
	for (size_t j = 0; j < rt->n_segments; j++) {
		const rpc_path_segment *s = &rt->segments[j];
		if (s->kind == RPC_SEGMENT_LITERAL) {
			node = literal_child(b, node, s->literal);
			size_t len = strlen(s->literal);
			if (len > r->max_literal)
				r->max_literal = len;
		} else if (s->kind == RPC_SEGMENT_ANY) {
			if (r->nodes[node].any < 0) {
				uint32_t c = new_node(b);
				r->nodes[node].any = (int32_t)c;
			}
			node = (uint32_t)r->nodes[node].any;
		} else {
			if (r->nodes[node].rest < 0) {
				uint32_t c = new_node(b);
				r->nodes[node].rest = (int32_t)c;
			}
			node = (uint32_t)r->nodes[node].rest;
		}
	}
	size_t verb_len = rt->verb != NULL ? strlen(rt->verb) : 0;
	if (verb_len > r->max_literal)
		r->max_literal = verb_len;
	gw_end *end = NULL;
	for (uint32_t e = b->node_ends[node]; e != NONE; e = b->end_next[e]) {
		const char *v = b->tends[e].verb;
		if ((v == NULL && rt->verb == NULL) ||
		    (v != NULL && rt->verb != NULL && strcmp(v, rt->verb) == 0)) {
			end = &b->tends[e];
			break;
		}
	}
	if (end == NULL) {
		uint32_t e = (uint32_t)b->n_ends++;
		end = &b->tends[e];
		end->verb = rt->verb;
		end->verb_len = (uint32_t)verb_len;
		b->end_next[e] = b->node_ends[node];
		b->node_ends[node] = e;
	}
	int mid = method_id(r, rt->http_method, strlen(rt->http_method));
	if (end->methods & (1u << mid)) {
		const rpc_http_route *other = &t->routes[end->route[mid]];
		return build_fail(b, RPC_STATUS_INVALID_ARGUMENT,
		                  "routes %u (%s %s) and %zu (%s %s) match the same requests",
		                  (unsigned)end->route[mid], other->http_method,
		                  other->path_template ? other->path_template : "?", i,
		                  rt->http_method, rt->path_template ? rt->path_template : "?");
	}
	end->methods |= 1u << mid;
	end->route[mid] = (uint16_t)i;
	return RPC_STATUS_OK;
}

static int edge_cmp(const void *a, const void *b)
{
	const gw_edge *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->lit, y->lit, x->len);
}

/* Lay each node's edges and ends out contiguously, edges sorted. */
static void compact(builder *b)
{
	gw_router *r = b->r;
	size_t ne = 0, nd = 0;
	for (size_t n = 0; n < r->n_nodes; n++) {
		gw_node *node = &r->nodes[n];
		node->edge_first = (uint32_t)ne;
		for (uint32_t e = b->node_edges[n]; e != NONE; e = b->edge_next[e])
			r->edges[ne++] = b->tedges[e];
		node->n_edges = (uint32_t)(ne - node->edge_first);
		qsort(r->edges + node->edge_first, node->n_edges, sizeof(gw_edge), edge_cmp);
		node->end_first = (uint32_t)nd;
		for (uint32_t e = b->node_ends[n]; e != NONE; e = b->end_next[e])
			r->ends[nd++] = b->tends[e];
		node->n_ends = (uint32_t)(nd - node->end_first);
	}
}

/* protoc's JSON name: drop each '_' and upper-case the letter after it. */
static size_t camel_case(const char *in, char *out)
{
	size_t o = 0;
	int up = 0;
	for (; *in != '\0'; in++) {
		if (*in == '_') {
			up = 1;
			continue;
		}
		out[o++] = (up && *in >= 'a' && *in <= 'z') ? (char)(*in - 32) : *in;
		up = 0;
	}
	out[o] = '\0';
	return o;
}

/* Offset of the next `align`-aligned object of `size` bytes at *at. */
static size_t carve(size_t *at, size_t size, size_t align)
{
	size_t off = (*at + align - 1) / align * align;
	*at = off + size;
	return off;
}

rpc_status gw_router_new(const rpc_route_table *table, gw_router **out, char *err, size_t err_cap)
{
	builder b = {.err = err, .err_cap = err_cap};
	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (out == NULL)
		return build_fail(&b, RPC_STATUS_INVALID_ARGUMENT, "no place for the router");
	*out = NULL;
	if (table == NULL || (table->n_routes > 0 && table->routes == NULL))
		return build_fail(&b, RPC_STATUS_INVALID_ARGUMENT, "no route table");
	if (table->n_routes > UINT16_MAX)
		return build_fail(&b, RPC_STATUS_INVALID_ARGUMENT, "more than %u routes",
		                  UINT16_MAX);

	/* Bounds: a node and an edge per segment at most, an end per route. */
	size_t n_routes = table->n_routes, max_nodes = 1, max_edges = 0, n_q = 0, camel_bytes = 0;
	for (size_t i = 0; i < n_routes; i++) {
		rpc_status st = check_route(&b, i, &table->routes[i]);
		if (st != RPC_STATUS_OK)
			return st;
		max_nodes += table->routes[i].n_segments;
		max_edges += table->routes[i].n_segments;
		n_q += table->routes[i].n_query_fields;
		for (size_t q = 0; q < table->routes[i].n_query_fields; q++)
			camel_bytes += strlen(table->routes[i].query_fields[q]) + 1;
	}
	size_t max_ends = n_routes > 0 ? n_routes : 1;

	/* The router and its arrays in one block. */
	size_t size = 0;
	size_t o_router = carve(&size, sizeof(gw_router), _Alignof(gw_router));
	size_t o_nodes = carve(&size, max_nodes * sizeof(gw_node), _Alignof(gw_node));
	size_t o_edges = carve(&size, (max_edges + 1) * sizeof(gw_edge), _Alignof(gw_edge));
	size_t o_ends = carve(&size, max_ends * sizeof(gw_end), _Alignof(gw_end));
	size_t o_qfirst = carve(&size, (n_routes + 1) * sizeof(size_t), _Alignof(size_t));
	size_t o_qnames = carve(&size, (n_q + 1) * sizeof(gw_qname), _Alignof(gw_qname));
	size_t o_camel = carve(&size, camel_bytes + 1, 1);
	char *block = calloc(1, size);
	/* The build's scratch: edges and ends in creation order, their lists. */
	size_t tsize = 0;
	size_t o_tedges = carve(&tsize, (max_edges + 1) * sizeof(gw_edge), _Alignof(gw_edge));
	size_t o_tends = carve(&tsize, max_ends * sizeof(gw_end), _Alignof(gw_end));
	size_t o_lists =
	    carve(&tsize, (max_edges + 1 + 2 * max_nodes + max_ends) * sizeof(uint32_t),
	          _Alignof(uint32_t));
	char *scratch = calloc(1, tsize);
	if (block == NULL || scratch == NULL) {
		free(block);
		free(scratch);
		return build_fail(&b, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	gw_router *r = (gw_router *)(void *)(block + o_router);
	r->table = table;
	r->nodes = (gw_node *)(void *)(block + o_nodes);
	r->edges = (gw_edge *)(void *)(block + o_edges);
	r->ends = (gw_end *)(void *)(block + o_ends);
	r->q_first = (size_t *)(void *)(block + o_qfirst);
	r->qnames = (gw_qname *)(void *)(block + o_qnames);
	char *camel = block + o_camel;
	b.r = r;
	b.tedges = (gw_edge *)(void *)(scratch + o_tedges);
	b.tends = (gw_end *)(void *)(scratch + o_tends);
	uint32_t *lists = (uint32_t *)(void *)(scratch + o_lists);
	b.edge_next = lists;
	b.node_edges = lists + max_edges + 1;
	b.node_ends = b.node_edges + max_nodes;
	b.end_next = b.node_ends + max_nodes;

	rpc_status st = assign_methods(&b, table);
	if (st != RPC_STATUS_OK)
		goto fail;
	new_node(&b); /* the root */
	for (size_t i = 0; i < n_routes; i++) {
		st = insert_route(&b, table, i);
		if (st != RPC_STATUS_OK)
			goto fail;
	}
	compact(&b);

	size_t qi = 0;
	for (size_t i = 0; i < n_routes; i++) {
		const rpc_http_route *rt = &table->routes[i];
		r->q_first[i] = qi;
		for (size_t q = 0; q < rt->n_query_fields; q++, qi++) {
			gw_qname *qn = &r->qnames[qi];
			qn->proto = rt->query_fields[q];
			qn->proto_len = strlen(qn->proto);
			qn->camel = camel;
			qn->camel_len = camel_case(qn->proto, camel);
			camel += qn->camel_len + 1;
		}
	}
	r->q_first[n_routes] = qi;
	free(scratch);
	*out = r;
	return RPC_STATUS_OK;
fail:
	free(scratch);
	free(block);
	return st;
}

void gw_router_free(gw_router *r)
{
	/* The router is the start of its block (o_router is 0). */
	free(r);
}

const rpc_route_table *gw_router_table(const gw_router *r)
{
	return r != NULL ? r->table : NULL;
}

/* ---- matching ---------------------------------------------------------------- */

/* A path segment as received, checked. */
typedef struct seg {
	const char *p; /* raw, into the target */
	size_t len;
	size_t dlen; /* decoded length */
	int pct;     /* holds a '%': compare decoded */
} seg;

typedef struct walk {
	const gw_router *r;
	const seg *segs;
	size_t n;
	const char *verb; /* decoded; NULL: none */
	size_t verb_len;
	int method; /* -1: collect every allowed method */
	uint32_t allowed;
	int route; /* found, or -1 */
} walk;

static const char *pct_what(gw_pct_error e)
{
	switch (e) {
	case GW_PCT_BAD_ESCAPE:
		return "the path has an invalid percent-escape";
	case GW_PCT_BAD_CHAR:
		return "the path has a character that must be percent-encoded";
	case GW_PCT_NUL:
	case GW_PCT_CONTROL:
		return "the path has an encoded NUL or control character";
	default:
		return "the path is not UTF-8 once decoded";
	}
}

/* Check p[0..len) as a segment: decodes, and is not "." or "..". */
static int check_segment(const char *p, size_t len, seg *s, gw_http_result *res)
{
	gw_pct_error e = gw_pct_decode(p, len, PATH_PCT_FLAGS, NULL, &s->dlen);
	if (e != GW_PCT_OK)
		return gw_http_fail(res, 400, "INVALID_PATH", "%s", pct_what(e));
	s->p = p;
	s->len = len;
	s->pct = s->dlen != len; /* each escape shortens it */
	if (s->dlen <= 2) {
		char d[GW_ROUTER_MAX_LITERAL];
		const char *q = p;
		if (s->pct) {
			gw_pct_decode(p, len, PATH_PCT_FLAGS, d, NULL);
			q = d;
		}
		if ((s->dlen == 1 && q[0] == '.') || (s->dlen == 2 && q[0] == '.' && q[1] == '.'))
			return gw_http_fail(res, 400, "INVALID_PATH",
			                    "the path has a \".\" or \"..\" segment");
	}
	return 0;
}

static int find_literal(const gw_router *r, const gw_node *nd, const seg *s, uint32_t *child)
{
	if (nd->n_edges == 0 || s->dlen > r->max_literal)
		return 0;
	char d[GW_ROUTER_MAX_LITERAL];
	const char *p = s->p;
	size_t n = s->len;
	if (s->pct) {
		gw_pct_decode(s->p, s->len, PATH_PCT_FLAGS, d, &n);
		p = d;
	}
	size_t lo = nd->edge_first, hi = nd->edge_first + nd->n_edges;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const gw_edge *e = &r->edges[mid];
		int c = e->len != n ? (e->len < n ? -1 : 1) : memcmp(e->lit, p, n);
		if (c == 0) {
			*child = e->child;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int check_ends(walk *w, const gw_node *nd)
{
	for (uint32_t k = 0; k < nd->n_ends; k++) {
		const gw_end *e = &w->r->ends[nd->end_first + k];
		if (e->verb == NULL ? w->verb != NULL
		                    : (w->verb == NULL || e->verb_len != w->verb_len ||
		                       memcmp(e->verb, w->verb, w->verb_len) != 0))
			continue;
		w->allowed |= e->methods;
		if (w->method >= 0 && (e->methods & (1u << w->method))) {
			w->route = e->route[w->method];
			return 1;
		}
	}
	return 0;
}

/* Depth-first from node `ni` at segment i: literal, then '*', then '**'. */
static int walk_node(walk *w, uint32_t ni, size_t i)
{
	const gw_node *nd = &w->r->nodes[ni];
	if (i == w->n) {
		if (check_ends(w, nd))
			return 1;
	} else {
		uint32_t child;
		if (find_literal(w->r, nd, &w->segs[i], &child) && walk_node(w, child, i + 1))
			return 1;
		if (nd->any >= 0 && walk_node(w, (uint32_t)nd->any, i + 1))
			return 1;
	}
	if (nd->rest >= 0 && check_ends(w, &w->r->nodes[nd->rest]))
		return 1;
	return 0;
}

/* Decode the route's variables into buf. -1 when buf is too small. */
static int bind_vars(const rpc_http_route *rt, const seg *segs, size_t n, char *buf, size_t cap,
                     gw_route_match *m)
{
	size_t tn = rt->n_segments, o = 0;
	int has_rest = tn > 0 && rt->segments[tn - 1].kind == RPC_SEGMENT_ANY_REST;
	for (size_t v = 0; v < rt->n_vars; v++) {
		const rpc_path_var *pv = &rt->vars[v];
		int to_rest = has_rest && pv->last == tn;
		size_t first = pv->first, last = to_rest ? n : pv->last;
		int multi = to_rest || last - first != 1;
		const char *raw = "";
		size_t raw_len = 0, dlen = 0;
		if (first < last) {
			raw = segs[first].p;
			raw_len = (size_t)(segs[last - 1].p + segs[last - 1].len - raw);
		}
		if (cap - o < raw_len + 1)
			return -1;
		unsigned flags = PATH_PCT_FLAGS | (multi ? GW_PCT_KEEP_SLASH : 0u);
		if (gw_pct_decode(raw, raw_len, flags, buf + o, &dlen) != GW_PCT_OK)
			return -1; /* checked segment by segment before: cannot happen */
		buf[o + dlen] = '\0';
		m->vars[v].field_path = pv->field_path;
		m->vars[v].value = buf + o;
		m->vars[v].len = dlen;
		o += dlen + 1;
	}
	m->n_vars = rt->n_vars;
	return 0;
}

/*
 * Split and check the path of `target`, then walk it once or twice (see
 * the top of the file). Fills w->allowed, w->route and the segments the
 * route was found with. Returns 0 (w->route may still be -1) or 400/404.
 */
static int route_path(const gw_router *r, int method, const char *target, size_t target_len,
                      seg *segs, size_t *n_segs, walk *w, gw_route_match *m, gw_http_result *res)
{
	size_t plen = target_len;
	const char *q = target != NULL ? memchr(target, '?', target_len) : NULL;
	if (q != NULL) {
		plen = (size_t)(q - target);
		m->query = q + 1;
		m->query_len = target_len - plen - 1;
	}
	if (plen == 0 || target[0] != '/')
		return gw_http_fail(res, 400, "INVALID_PATH",
		                    "the request target must start with '/'");
	size_t n = 0;
	for (size_t i = 1; i < plen || (i == plen && plen > 1);) {
		const char *s = target + i;
		const char *slash = memchr(s, '/', plen - i);
		size_t len = slash != NULL ? (size_t)(slash - s) : plen - i;
		if (len == 0)
			return gw_http_fail(
			    res, 404, "ROUTE_NOT_FOUND",
			    "no route for this path (an empty segment or trailing '/')");
		if (n == GW_ROUTER_MAX_SEGMENTS)
			return gw_http_fail(res, 404, "ROUTE_NOT_FOUND",
			                    "no route for this path (more than %u segments)",
			                    GW_ROUTER_MAX_SEGMENTS);
		int st = check_segment(s, len, &segs[n], res);
		if (st != 0)
			return st;
		n++;
		if (slash == NULL)
			break;
		i += len + 1;
	}
	*n_segs = n;

	w->r = r;
	w->segs = segs;
	w->n = n;
	w->method = method;
	w->allowed = 0;
	w->route = -1;

	/* With the verb split off the last segment, when it has one. */
	if (n > 0) {
		seg whole = segs[n - 1];
		size_t c = whole.len;
		while (c > 0 && whole.p[c - 1] != ':')
			c--;
		if (c > 1 && c < whole.len) {
			int st = check_segment(whole.p, c - 1, &segs[n - 1], res);
			if (st != 0)
				return st;
			/* The verb decodes: the whole segment did. */
			const char *vp = whole.p + c;
			size_t vlen = 0;
			gw_pct_decode(vp, whole.len - c, PATH_PCT_FLAGS, NULL, &vlen);
			if (vlen <= r->max_literal) {
				char vd[GW_ROUTER_MAX_LITERAL];
				gw_pct_decode(vp, whole.len - c, PATH_PCT_FLAGS, vd, &vlen);
				w->verb = vd;
				w->verb_len = vlen;
				walk_node(w, 0, 0);
				w->verb = NULL;
				if (w->route >= 0)
					return 0;
			}
			segs[n - 1] = whole;
		}
	}
	w->verb = NULL;
	w->verb_len = 0;
	walk_node(w, 0, 0);
	return 0;
}

int gw_router_match(const gw_router *r, const char *method, size_t method_len, const char *target,
                    size_t target_len, char *buf, size_t buf_cap, gw_route_match *m,
                    gw_http_result *res)
{
	gw_http_ok(res);
	if (m == NULL)
		return gw_http_fail(res, 500, "INTERNAL", "router called without a match");
	memset(m, 0, offsetof(gw_route_match, vars));
	m->n_vars = 0;
	m->query = NULL;
	m->query_len = 0;
	m->allowed = 0;
	if (r == NULL || target == NULL || (method == NULL && method_len > 0))
		return gw_http_fail(res, 500, "INTERNAL",
		                    "router called without a router or target");
	int mid = method != NULL ? method_id(r, method, method_len) : -1;
	seg segs[GW_ROUTER_MAX_SEGMENTS];
	size_t n = 0;
	walk w;
	int st = route_path(r, mid, target, target_len, segs, &n, &w, m, res);
	if (st != 0)
		return st;
	if (w.route < 0) {
		if (w.allowed == 0)
			return gw_http_fail(res, 404, "ROUTE_NOT_FOUND", "no route for this path");
		m->allowed = w.allowed;
		char allow[GW_ROUTER_ALLOW_MAX];
		gw_router_format_allow(r, w.allowed, allow, sizeof(allow));
		return gw_http_fail(res, 405, "METHOD_NOT_ALLOWED",
		                    "the method is not allowed on this path; allowed: %s", allow);
	}
	const rpc_http_route *rt = &r->table->routes[w.route];
	if (buf == NULL || bind_vars(rt, segs, n, buf, buf_cap, m) != 0) {
		m->n_vars = 0;
		return gw_http_fail(res, 500, "INTERNAL", "router buffer too small for the path");
	}
	m->route = rt;
	m->route_index = (size_t)w.route;
	return 0;
}

int gw_router_allowed(const gw_router *r, const char *target, size_t target_len, uint32_t *allowed,
                      gw_http_result *res)
{
	gw_http_ok(res);
	if (allowed != NULL)
		*allowed = 0;
	if (r == NULL || target == NULL || allowed == NULL)
		return gw_http_fail(res, 500, "INTERNAL",
		                    "router called without a router or target");
	seg segs[GW_ROUTER_MAX_SEGMENTS];
	size_t n = 0;
	walk w;
	gw_route_match m;
	int st = route_path(r, -1, target, target_len, segs, &n, &w, &m, res);
	if (st != 0)
		return st;
	if (w.allowed == 0)
		return gw_http_fail(res, 404, "ROUTE_NOT_FOUND", "no route for this path");
	*allowed = w.allowed;
	return 0;
}

size_t gw_router_format_allow(const gw_router *r, uint32_t allowed, char *buf, size_t cap)
{
	size_t o = 0;
	if (cap > 0)
		buf[0] = '\0';
	if (r == NULL)
		return 0;
	for (size_t i = 0; i < r->n_methods; i++) {
		if (!(allowed & (1u << i)))
			continue;
		const char *parts[2] = {", ", r->methods[i].name};
		size_t lens[2] = {2, r->methods[i].len};
		for (int k = o == 0 ? 1 : 0; k < 2; k++) {
			if (cap > 0 && o < cap - 1) {
				size_t room = cap - 1 - o;
				size_t take = lens[k] < room ? lens[k] : room;
				memcpy(buf + o, parts[k], take);
				buf[o + take] = '\0';
			}
			o += lens[k];
		}
	}
	return o;
}

const char *gw_router_method_name(const gw_router *r, unsigned i)
{
	if (r == NULL || i >= r->n_methods)
		return NULL;
	return r->methods[i].name;
}

int gw_router_query_field(const gw_router *r, size_t route_index, const char *key, size_t key_len)
{
	if (r == NULL || route_index >= r->table->n_routes || key == NULL)
		return -1;
	const char *dot = memchr(key, '.', key_len);
	size_t n = dot != NULL ? (size_t)(dot - key) : key_len;
	if (n == 0)
		return -1;
	size_t first = r->q_first[route_index], end = r->q_first[route_index + 1];
	for (size_t q = first; q < end; q++) {
		const gw_qname *qn = &r->qnames[q];
		if ((qn->proto_len == n && memcmp(qn->proto, key, n) == 0) ||
		    (qn->camel_len == n && memcmp(qn->camel, key, n) == 0))
			return (int)(q - first);
	}
	return -1;
}

int gw_router_check_query(const gw_router *r, size_t route_index, const gw_query_param *params,
                          size_t n_params, gw_http_result *res)
{
	gw_http_ok(res);
	for (size_t i = 0; i < n_params; i++) {
		if (gw_router_query_field(r, route_index, params[i].key, params[i].key_len) >= 0)
			continue;
		gw_http_fail(res, 400, "UNKNOWN_QUERY_PARAMETER", "unknown query parameter ");
		gw_http_message_quote(res, params[i].key, params[i].key_len, 64);
		return 400;
	}
	return 0;
}
