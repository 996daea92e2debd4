/*
 * routes.c - parse and check every HTTP binding into a route.
 *
 * Template grammar (google.api.HttpRule):
 *     Template = "/" Segments [ ":" Verb ]
 *     Segments = Segment { "/" Segment }
 *     Segment  = "*" | "**" | LITERAL | Variable
 *     Variable = "{" FieldPath [ "=" Segments ] "}"
 * `{x}` means `{x=*}`. A rule that cannot be honoured fails generation with
 * the file, the method and the reason: a variable that is not a scalar field
 * of the request, a body field that does not exist, "**" anywhere but last,
 * a body on GET, an owner field that is not a path variable, a cache rule on
 * a method that is not a public GET, or two routes that match the same
 * requests (same HTTP method, same segments up to variable names, same
 * verb).
 */
#include "pgen.h"

#include <string.h>

#include "panthera/rpc.h"

#define MAX_SEGMENTS 64

static int route_fail(pgen *g, const pgen_method *m, const char *tmpl, const char *reason,
                      const char *detail)
{
	return pgen_fail(g, "%s: method %s.%s: \"%s\": %s%s%s", m->service->file->name,
	                 m->service->full_name, m->proto->name, tmpl, reason, detail ? " " : "",
	                 detail ? detail : "");
}

static int literal_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Resolve a dotted field path against `msg`: every step a singular message,
 * the last a singular scalar or enum. Returns the field or NULL with *why. */
static const pgen_field_proto *resolve_path(pgen *g, const pgen_message *msg, const char *path,
                                            const char **why)
{
	const char *p = path;
	const pgen_message *cur = msg;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0) {
			*why = "is not a valid field path";
			return NULL;
		}
		const pgen_field_proto *f = pgen_find_field_n(cur, p, n);
		if (f == NULL) {
			*why = pgen_printf(&g->arena, "names no field of %s", cur->full_name + 1);
			return NULL;
		}
		if (f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) {
			*why = "names a repeated field";
			return NULL;
		}
		if (dot == NULL) {
			if (f->type ==
			        GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
			    f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP ||
			    f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES) {
				*why = "names a message or bytes field, not a scalar";
				return NULL;
			}
			return f;
		}
		if (f->type != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
		    (cur = pgen_find_message(g, f->type_name)) == NULL) {
			*why = "steps through a field that is not a message";
			return NULL;
		}
		p = dot + 1;
	}
}

/* Parse segments from s[0..n) into r->segments (appending). */
static int parse_segments(pgen *g, pgen_method *m, const char *tmpl, const char *s, size_t n,
                          pgen_route *r, int in_var)
{
	size_t i = 0;
	while (i <= n) {
		size_t j = i;
		if (!in_var && j < n && s[j] == '{') {
			const char *close = memchr(s + j, '}', n - j);
			if (close == NULL)
				return route_fail(g, m, tmpl, "unclosed '{'", NULL);
			size_t vlen = (size_t)(close - (s + j)) - 1;
			const char *v = s + j + 1;
			const char *eq = memchr(v, '=', vlen);
			size_t plen = eq ? (size_t)(eq - v) : vlen;
			if (r->n_vars >= MAX_SEGMENTS)
				return route_fail(g, m, tmpl, "too many variables", NULL);
			pgen_var *var = &r->vars[r->n_vars++];
			var->field_path = pgen_strndup(&g->arena, v, plen);
			if (var->field_path == NULL)
				return -1;
			var->first = (unsigned)r->n_segments;
			if (eq) {
				if (parse_segments(g, m, tmpl, eq + 1, vlen - plen - 1, r, 1) != 0)
					return -1;
			} else {
				if (r->n_segments >= MAX_SEGMENTS)
					return route_fail(g, m, tmpl, "too many segments", NULL);
				r->segments[r->n_segments++].kind = 1;
			}
			var->last = (unsigned)r->n_segments;
			j = (size_t)(close - s) + 1;
			if (j < n && s[j] != '/')
				return route_fail(g, m, tmpl,
				                  "a variable must fill its whole segment", NULL);
		} else {
			while (j < n && s[j] != '/')
				j++;
			size_t len = j - i;
			if (r->n_segments >= MAX_SEGMENTS)
				return route_fail(g, m, tmpl, "too many segments", NULL);
			pgen_segment *seg = &r->segments[r->n_segments];
			if (len == 0)
				return route_fail(g, m, tmpl, "empty segment", NULL);
			if (len == 1 && s[i] == '*') {
				seg->kind = 1;
			} else if (len == 2 && s[i] == '*' && s[i + 1] == '*') {
				seg->kind = 2;
			} else {
				/* Clients and proxies remove dot segments before we see the path. */
				if ((len == 1 && s[i] == '.') ||
				    (len == 2 && s[i] == '.' && s[i + 1] == '.'))
					return route_fail(g, m, tmpl,
					                  "'.' and '..' segments can never match",
					                  NULL);
				for (size_t k = i; k < j; k++) {
					if (!literal_char_ok(s[k]))
						return route_fail(
						    g, m, tmpl,
						    "bad character in a literal segment", NULL);
				}
				seg->kind = 0;
				seg->literal = pgen_strndup(&g->arena, s + i, len);
				if (seg->literal == NULL)
					return -1;
			}
			r->n_segments++;
		}
		if (j >= n)
			break;
		i = j + 1; /* skip '/' */
		if (i == n)
			return route_fail(g, m, tmpl, "empty segment", NULL);
	}
	return 0;
}

int pgen_parse_template(pgen *g, pgen_method *m, const char *tmpl, pgen_route *r)
{
	size_t n = strlen(tmpl);
	r->segments = pgen_alloc_array(&g->arena, MAX_SEGMENTS, sizeof(*r->segments));
	r->vars = pgen_alloc_array(&g->arena, MAX_SEGMENTS, sizeof(*r->vars));
	if (r->segments == NULL || r->vars == NULL)
		return -1;
	if (n < 2 || tmpl[0] != '/')
		return route_fail(g, m, tmpl,
		                  "a path template must start with '/' and name a segment", NULL);
	/* The verb: a ':' after the last '/', outside braces. */
	size_t end = n;
	int depth = 0;
	for (size_t i = 0; i < n; i++) {
		if (tmpl[i] == '{')
			depth++;
		else if (tmpl[i] == '}')
			depth--;
		else if (tmpl[i] == '/' && depth == 0)
			end = n; /* a ':' before a later '/' is part of a literal; rejected below */
		else if (tmpl[i] == ':' && depth == 0)
			end = i;
		if (depth < 0 || depth > 1)
			return route_fail(g, m, tmpl, "unbalanced or nested braces", NULL);
	}
	if (depth != 0)
		return route_fail(g, m, tmpl, "unclosed '{'", NULL);
	if (end < n) {
		if (end + 1 == n)
			return route_fail(g, m, tmpl, "empty custom verb", NULL);
		for (size_t k = end + 1; k < n; k++) {
			if (!literal_char_ok(tmpl[k]))
				return route_fail(g, m, tmpl, "bad character in the custom verb",
				                  NULL);
		}
		r->verb = pgen_strndup(&g->arena, tmpl + end + 1, n - end - 1);
		if (r->verb == NULL)
			return -1;
	}
	if (parse_segments(g, m, tmpl, tmpl + 1, end - 1, r, 0) != 0)
		return -1;
	for (size_t i = 0; i + 1 < r->n_segments; i++) {
		if (r->segments[i].kind == 2)
			return route_fail(g, m, tmpl, "'**' may only be the last segment", NULL);
	}
	return 0;
}

static int same_shape(const pgen_route *a, const pgen_route *b)
{
	if (strcmp(a->binding->http_method, b->binding->http_method) != 0)
		return 0;
	if (a->n_segments != b->n_segments)
		return 0;
	if ((a->verb == NULL) != (b->verb == NULL) || (a->verb && strcmp(a->verb, b->verb) != 0))
		return 0;
	for (size_t i = 0; i < a->n_segments; i++) {
		if (a->segments[i].kind != b->segments[i].kind)
			return 0;
		if (a->segments[i].kind == 0 &&
		    strcmp(a->segments[i].literal, b->segments[i].literal) != 0)
			return 0;
	}
	return 1;
}

static int check_route(pgen *g, pgen_method *m, pgen_route *r)
{
	const pgen_http_binding *b = r->binding;
	const char *tmpl = b->path_template;
	for (size_t i = 0; i < r->n_vars; i++) {
		const char *why = NULL;
		if (resolve_path(g, m->input, r->vars[i].field_path, &why) == NULL) {
			if (why == NULL)
				return -1;
			return pgen_fail(g, "%s: method %s.%s: \"%s\": path variable '%s' %s",
			                 m->service->file->name, m->service->full_name,
			                 m->proto->name, tmpl, r->vars[i].field_path, why);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(r->vars[i].field_path, r->vars[j].field_path) == 0)
				return route_fail(g, m, tmpl,
				                  "binds this field twice:", r->vars[i].field_path);
		}
	}
	if (b->body != NULL) {
		if (strcmp(b->http_method, "GET") == 0)
			return route_fail(g, m, tmpl, "a GET binding may not have a body", NULL);
		if (strcmp(b->body, "*") != 0) {
			const pgen_field_proto *f = pgen_find_field(m->input, b->body);
			if (f == NULL)
				return pgen_fail(
				    g,
				    "%s: method %s.%s: \"%s\": body field '%s' is not a field of %s",
				    m->service->file->name, m->service->full_name, m->proto->name,
				    tmpl, b->body, m->input->full_name + 1);
			/* `{book}` with body "book" binds one field twice; `{book.id}`
			 * with body "book" is AIP-134's update form: the path wins. */
			for (size_t i = 0; i < r->n_vars; i++) {
				if (strcmp(r->vars[i].field_path, b->body) == 0)
					return route_fail(
					    g, m, tmpl,
					    "the body field is also bound by the path:", b->body);
			}
		}
	}
	if (b->response_body != NULL && pgen_find_field(m->output, b->response_body) == NULL)
		return pgen_fail(
		    g, "%s: method %s.%s: \"%s\": response_body field '%s' is not a field of %s",
		    m->service->file->name, m->service->full_name, m->proto->name, tmpl,
		    b->response_body, m->output->full_name + 1);
	if (m->owner_field != NULL) {
		int found = 0;
		for (size_t i = 0; i < r->n_vars; i++)
			found |= strcmp(r->vars[i].field_path, m->owner_field) == 0;
		if (!found)
			return pgen_fail(
			    g, "%s: method %s.%s: \"%s\": owner_field '%s' is not a path variable",
			    m->service->file->name, m->service->full_name, m->proto->name, tmpl,
			    m->owner_field);
	}
	/* Query fields: what neither the path nor the body binds. */
	if (b->body == NULL || strcmp(b->body, "*") != 0) {
		const pgen_msg_proto *in = m->input->proto;
		r->query_fields = pgen_alloc_array(&g->arena, in->n_field + 1, sizeof(char *));
		if (r->query_fields == NULL)
			return -1;
		for (size_t i = 0; i < in->n_field; i++) {
			const pgen_field_proto *f = in->field[i];
			const char *name = f->name;
			/* Maps and repeated messages cannot travel in a query string. */
			if (f->label ==
			        GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED &&
			    f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE)
				continue;
			int bound = b->body != NULL && strcmp(name, b->body) == 0;
			/* `{in.id}` binds part of `in`: the query may not set the rest
			 * of it and override the path. */
			size_t nl = strlen(name);
			for (size_t v = 0; v < r->n_vars && !bound; v++) {
				const char *fp = r->vars[v].field_path;
				bound =
				    strncmp(fp, name, nl) == 0 && (fp[nl] == '\0' || fp[nl] == '.');
			}
			if (!bound)
				r->query_fields[r->n_query_fields++] = name;
		}
	}
	return 0;
}

int pgen_build_routes(pgen *g)
{
	size_t total = 0;
	for (size_t s = 0; s < g->n_services; s++) {
		for (size_t i = 0; i < g->services[s].n_methods; i++)
			total += g->services[s].methods[i].n_bindings;
	}
	g->routes = pgen_alloc_array(&g->arena, total + 1, sizeof(*g->routes));
	if (g->routes == NULL)
		return -1;
	for (size_t s = 0; s < g->n_services; s++) {
		pgen_service *svc = &g->services[s];
		for (size_t i = 0; i < svc->n_methods; i++) {
			pgen_method *m = &svc->methods[i];
			int has_get = 0, safe = 0;
			if (m->n_bindings == 0)
				continue;
			m->routes = pgen_alloc_array(&g->arena, m->n_bindings, sizeof(*m->routes));
			if (m->routes == NULL)
				return -1;
			for (size_t k = 0; k < m->n_bindings; k++) {
				pgen_route *r = &m->routes[k];
				r->method = m;
				r->binding = &m->bindings[k];
				if (pgen_parse_template(g, m, r->binding->path_template, r) != 0 ||
				    check_route(g, m, r) != 0)
					return -1;
				for (size_t o = 0; o < g->n_routes; o++) {
					const pgen_route *other = g->routes[o];
					if (same_shape(r, other))
						return pgen_fail(
						    g,
						    "%s: method %s.%s: route %s %s collides with %s %s of method %s.%s (%s)",
						    svc->file->name, svc->full_name, m->proto->name,
						    r->binding->http_method,
						    r->binding->path_template,
						    other->binding->http_method,
						    other->binding->path_template,
						    other->method->service->full_name,
						    other->method->proto->name,
						    other->method->service->file->name);
				}
				r->index = g->n_routes;
				g->routes[g->n_routes++] = r;
				m->n_routes++;
				has_get |= strcmp(r->binding->http_method, "GET") == 0;
				safe |= strcmp(r->binding->http_method, "HEAD") == 0;
			}
			if (has_get || safe) /* HTTP's safe methods */
				m->flags |= RPC_METHOD_IDEMPOTENT | RPC_METHOD_NO_SIDE_EFFECTS;
			if (m->cache_ttl != 0 &&
			    (!has_get ||
			     m->access != PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_PUBLIC))
				return pgen_fail(
				    g,
				    "%s: method %s.%s: panthera.api.cache is only allowed on a public method with a GET binding",
				    svc->file->name, svc->full_name, m->proto->name);
		}
	}
	return 0;
}
