/*
 * model.c - an index over the CodeGeneratorRequest: every message and enum
 * of every file (imports included) by full name, their comments, and the
 * services of the files to generate with their methods' decoded options.
 */
#include "pgen.h"

#include <stdlib.h>
#include <string.h>

#include "panthera/rpc.h"

int pgen_file_is_generated(const pgen *g, const char *file_name)
{
	for (size_t i = 0; i < g->req->n_file_to_generate; i++) {
		if (strcmp(g->req->file_to_generate[i], file_name) == 0)
			return 1;
	}
	return 0;
}

/* Tidy a comment from source info: drop the one space protoc keeps after
 * "//" and trailing blank lines. Returns NULL for an empty comment. */
static const char *tidy_comment(pgen *g, const char *c)
{
	if (c == NULL)
		return NULL;
	pgen_buf out = {0};
	const char *p = c;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		const char *line = p;
		if (n > 0 && line[0] == ' ') {
			line++;
			n--;
		}
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
			n--;
		/* protoc passes comments through even when they are not UTF-8;
		 * everything we emit is, so such bytes become U+FFFD. */
		for (size_t i = 0; i < n;) {
			size_t u = pgen_utf8_len((const unsigned char *)line + i);
			if (u == 0 || i + u > n) {
				pgen_buf_puts(&out, "\xef\xbf\xbd");
				i++;
			} else {
				pgen_buf_putn(&out, line + i, u);
				i += u;
			}
		}
		pgen_buf_putc(&out, '\n');
		p = nl ? nl + 1 : p + strlen(p);
	}
	while (out.len > 0 && out.data[out.len - 1] == '\n')
		out.len--;
	const char *r = NULL;
	if (out.failed)
		g->arena.failed = 1;
	else if (out.len > 0)
		r = pgen_strndup(&g->arena, out.data, out.len);
	pgen_buf_free(&out);
	return r;
}

static const char *find_comment(pgen *g, const pgen_file_proto *f, const int32_t *path, size_t n)
{
	if (f->source_code_info == NULL)
		return NULL;
	for (size_t i = 0; i < f->source_code_info->n_location; i++) {
		const Google__Protobuf__SourceCodeInfo__Location *loc =
		    f->source_code_info->location[i];
		if (loc->n_path == n && memcmp(loc->path, path, n * sizeof(*path)) == 0)
			return tidy_comment(g, loc->leading_comments);
	}
	return NULL;
}

/* Grow an array held in the arena (the old block is simply left behind). */
static void *grow(pgen *g, void *old, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return old;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = pgen_alloc_array(&g->arena, ncap, size);
	if (p == NULL)
		return NULL;
	if (old != NULL)
		memcpy(p, old, n * size);
	*cap = ncap;
	return p;
}

/* protoc nests messages at most 32 deep: two path entries a level, plus
 * a field and its index. */
#define PATH_MAX_DEPTH 80

typedef struct index_state {
	size_t cap_messages, cap_enums;
} index_state;

static int index_enum(pgen *g, index_state *st, const pgen_file_proto *f, const char *scope,
                      const pgen_enum_proto *e, int32_t *path, size_t depth)
{
	pgen_enum *arr = grow(g, g->enums, g->n_enums, &st->cap_enums, sizeof(*arr));
	if (arr == NULL)
		return -1;
	g->enums = arr;
	pgen_enum *pe = &g->enums[g->n_enums++];
	pe->full_name = pgen_printf(&g->arena, "%s.%s", scope, e->name);
	pe->proto = e;
	pe->file = f;
	pe->comment = find_comment(g, f, path, depth);
	pe->value_comments = pgen_alloc_array(&g->arena, e->n_value + 1, sizeof(char *));
	if (pe->full_name == NULL || pe->value_comments == NULL)
		return -1;
	if (depth + 2 > PATH_MAX_DEPTH)
		return 0;
	for (size_t i = 0; i < e->n_value; i++) {
		path[depth] = 2;
		path[depth + 1] = (int32_t)i;
		pe->value_comments[i] = find_comment(g, f, path, depth + 2);
	}
	return 0;
}

static int index_message(pgen *g, index_state *st, const pgen_file_proto *f, const char *scope,
                         const pgen_msg_proto *m, int32_t *path, size_t depth)
{
	pgen_message *arr = grow(g, g->messages, g->n_messages, &st->cap_messages, sizeof(*arr));
	if (arr == NULL)
		return -1;
	g->messages = arr;
	size_t idx = g->n_messages++;
	pgen_message *pm = &g->messages[idx];
	pm->full_name = pgen_printf(&g->arena, "%s.%s", scope, m->name);
	pm->proto = m;
	pm->file = f;
	pm->comment = find_comment(g, f, path, depth);
	pm->is_map_entry = m->options != NULL && m->options->has_map_entry && m->options->map_entry;
	pm->field_comments = pgen_alloc_array(&g->arena, m->n_field + 1, sizeof(char *));
	if (pm->full_name == NULL || pm->field_comments == NULL)
		return -1;
	const char *full = pm->full_name; /* pm may move when the array grows */
	if (depth + 2 > PATH_MAX_DEPTH)
		return 0;
	for (size_t i = 0; i < m->n_field; i++) {
		path[depth] = 2;
		path[depth + 1] = (int32_t)i;
		pm->field_comments[i] = find_comment(g, f, path, depth + 2);
	}
	for (size_t i = 0; i < m->n_enum_type; i++) {
		path[depth] = 4;
		path[depth + 1] = (int32_t)i;
		if (index_enum(g, st, f, full, m->enum_type[i], path, depth + 2) != 0)
			return -1;
	}
	for (size_t i = 0; i < m->n_nested_type; i++) {
		path[depth] = 3;
		path[depth + 1] = (int32_t)i;
		if (index_message(g, st, f, full, m->nested_type[i], path, depth + 2) != 0)
			return -1;
	}
	return 0;
}

const pgen_message *pgen_find_message(const pgen *g, const char *full_name)
{
	for (size_t i = 0; i < g->n_messages; i++) {
		if (strcmp(g->messages[i].full_name, full_name) == 0)
			return &g->messages[i];
	}
	return NULL;
}

const pgen_enum *pgen_find_enum(const pgen *g, const char *full_name)
{
	for (size_t i = 0; i < g->n_enums; i++) {
		if (strcmp(g->enums[i].full_name, full_name) == 0)
			return &g->enums[i];
	}
	return NULL;
}

const pgen_field_proto *pgen_find_field_n(const pgen_message *m, const char *name, size_t n)
{
	for (size_t i = 0; i < m->proto->n_field; i++) {
		const char *f = m->proto->field[i]->name;
		if (strlen(f) == n && strncmp(f, name, n) == 0)
			return m->proto->field[i];
	}
	return NULL;
}

const pgen_field_proto *pgen_find_field(const pgen_message *m, const char *name)
{
	return pgen_find_field_n(m, name, strlen(name));
}

/* protoc always sets these; a request without them did not come from protoc. */
static int check_message_names(pgen *g, const pgen_file_proto *f, const pgen_msg_proto *m)
{
	if (m->name == NULL)
		return pgen_fail(g, "%s: malformed request: a message without a name", f->name);
	for (size_t i = 0; i < m->n_field; i++) {
		const pgen_field_proto *fd = m->field[i];
		int needs_type =
		    fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
		    fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM ||
		    fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP;
		if (fd->name == NULL || !fd->has_type || (needs_type && fd->type_name == NULL))
			return pgen_fail(
			    g, "%s: malformed request: field %zu of %s lacks a name or type",
			    f->name, i, m->name);
	}
	for (size_t i = 0; i < m->n_enum_type; i++) {
		if (m->enum_type[i]->name == NULL)
			return pgen_fail(g, "%s: malformed request: an enum without a name",
			                 f->name);
		for (size_t v = 0; v < m->enum_type[i]->n_value; v++) {
			if (m->enum_type[i]->value[v]->name == NULL)
				return pgen_fail(
				    g, "%s: malformed request: an enum value without a name",
				    f->name);
		}
	}
	for (size_t i = 0; i < m->n_nested_type; i++) {
		if (check_message_names(g, f, m->nested_type[i]) != 0)
			return -1;
	}
	return 0;
}

/* File names end up in #include lines, string literals and comments of the
 * generated C: accept the characters of ordinary paths only. */
static int check_file(pgen *g, const pgen_file_proto *f)
{
	if (f->name == NULL || f->name[0] == '\0')
		return pgen_fail(g, "malformed request: a file without a name");
	for (const char *p = f->name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || c == '/'))
			return pgen_fail(
			    g, "%s: file name not supported: use letters, digits and _ - . / only",
			    f->name);
	}
	for (size_t i = 0; i < f->n_message_type; i++) {
		if (check_message_names(g, f, f->message_type[i]) != 0)
			return -1;
	}
	for (size_t i = 0; i < f->n_enum_type; i++) {
		if (f->enum_type[i]->name == NULL)
			return pgen_fail(g, "%s: malformed request: an enum without a name",
			                 f->name);
		for (size_t v = 0; v < f->enum_type[i]->n_value; v++) {
			if (f->enum_type[i]->value[v]->name == NULL)
				return pgen_fail(
				    g, "%s: malformed request: an enum value without a name",
				    f->name);
		}
	}
	for (size_t i = 0; i < f->n_service; i++) {
		const pgen_svc_proto *sp = f->service[i];
		if (sp->name == NULL)
			return pgen_fail(g, "%s: malformed request: a service without a name",
			                 f->name);
		for (size_t k = 0; k < sp->n_method; k++) {
			const pgen_method_proto *mp = sp->method[k];
			if (mp->name == NULL || mp->input_type == NULL || mp->output_type == NULL)
				return pgen_fail(
				    g,
				    "%s: malformed request: method %zu of %s lacks a name or type",
				    f->name, k, sp->name);
		}
	}
	return 0;
}

static int build_service(pgen *g, const pgen_file_proto *f, size_t si, pgen_service *s)
{
	const pgen_svc_proto *sp = f->service[si];
	s->proto = sp;
	s->file = f;
	s->full_name = (f->package && f->package[0])
	                   ? pgen_printf(&g->arena, "%s.%s", f->package, sp->name)
	                   : pgen_strdup(&g->arena, sp->name);
	int32_t path[4] = {6, (int32_t)si, 2, 0};
	s->comment = find_comment(g, f, path, 2);
	char *pkg = pgen_strdup(&g->arena, f->package ? f->package : "");
	if (s->full_name == NULL || pkg == NULL)
		return -1;
	for (char *p = pkg; *p; p++) {
		if (*p == '.')
			*p = '_';
	}
	char *svc_lower = pgen_camel_to_lower(&g->arena, sp->name);
	if (svc_lower == NULL)
		return -1;
	s->c_prefix = pkg[0] ? pgen_printf(&g->arena, "%s_%s", pkg, svc_lower) : svc_lower;
	s->c_upper = s->c_prefix ? pgen_to_upper(&g->arena, s->c_prefix) : NULL;
	s->n_methods = sp->n_method;
	s->methods = pgen_alloc_array(&g->arena, sp->n_method + 1, sizeof(*s->methods));
	if (s->c_prefix == NULL || s->c_upper == NULL || s->methods == NULL)
		return -1;
	for (size_t mi = 0; mi < sp->n_method; mi++) {
		pgen_method *m = &s->methods[mi];
		m->proto = sp->method[mi];
		m->service = s;
		path[3] = (int32_t)mi;
		m->comment = find_comment(g, f, path, 4);
		m->c_name = pgen_camel_to_lower(&g->arena, m->proto->name);
		m->c_upper = m->c_name ? pgen_to_upper(&g->arena, m->c_name) : NULL;
		if (m->c_name == NULL || m->c_upper == NULL)
			return -1;
		if (m->proto->client_streaming || m->proto->server_streaming)
			return pgen_fail(g, "%s: method %s.%s: streaming methods are not supported",
			                 f->name, s->full_name, m->proto->name);
		m->input = pgen_find_message(g, m->proto->input_type);
		m->output = pgen_find_message(g, m->proto->output_type);
		if (m->input == NULL || m->output == NULL)
			return pgen_fail(g, "%s: method %s.%s: message type %s not found", f->name,
			                 s->full_name, m->proto->name,
			                 m->input == NULL ? m->proto->input_type
			                                  : m->proto->output_type);
		if (m->proto->options != NULL && m->proto->options->has_idempotency_level) {
			if (m->proto->options->idempotency_level ==
			    GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__NO_SIDE_EFFECTS)
				m->flags |= RPC_METHOD_IDEMPOTENT | RPC_METHOD_NO_SIDE_EFFECTS;
			else if (m->proto->options->idempotency_level ==
			         GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__IDEMPOTENT)
				m->flags |= RPC_METHOD_IDEMPOTENT;
		}
		if (m->proto->options != NULL && m->proto->options->has_deprecated &&
		    m->proto->options->deprecated)
			m->flags |= RPC_METHOD_DEPRECATED;
		if (pgen_decode_method_options(g, m) != 0)
			return -1;
	}
	return 0;
}

int pgen_build_model(pgen *g)
{
	index_state st = {0};
	int32_t path[PATH_MAX_DEPTH];
	const Google__Protobuf__Compiler__CodeGeneratorRequest *req = g->req;

	for (size_t fi = 0; fi < req->n_proto_file; fi++) {
		if (check_file(g, req->proto_file[fi]) != 0)
			return -1;
	}
	for (size_t fi = 0; fi < req->n_file_to_generate; fi++) {
		if (req->file_to_generate[fi] == NULL)
			return pgen_fail(g, "malformed request: an empty file_to_generate");
	}
	for (size_t fi = 0; fi < req->n_proto_file; fi++) {
		const pgen_file_proto *f = req->proto_file[fi];
		const char *scope =
		    (f->package && f->package[0]) ? pgen_printf(&g->arena, ".%s", f->package) : "";
		if (scope == NULL)
			return -1;
		for (size_t i = 0; i < f->n_message_type; i++) {
			path[0] = 4;
			path[1] = (int32_t)i;
			if (index_message(g, &st, f, scope, f->message_type[i], path, 2) != 0)
				return -1;
		}
		for (size_t i = 0; i < f->n_enum_type; i++) {
			path[0] = 5;
			path[1] = (int32_t)i;
			if (index_enum(g, &st, f, scope, f->enum_type[i], path, 2) != 0)
				return -1;
		}
	}

	size_t n = 0;
	for (size_t fi = 0; fi < req->n_proto_file; fi++) {
		if (pgen_file_is_generated(g, req->proto_file[fi]->name))
			n += req->proto_file[fi]->n_service;
	}
	g->services = pgen_alloc_array(&g->arena, n + 1, sizeof(*g->services));
	if (g->services == NULL)
		return -1;
	for (size_t fi = 0; fi < req->n_proto_file; fi++) {
		const pgen_file_proto *f = req->proto_file[fi];
		if (!pgen_file_is_generated(g, f->name))
			continue;
		for (size_t si = 0; si < f->n_service; si++) {
			if (build_service(g, f, si, &g->services[g->n_services++]) != 0)
				return -1;
		}
	}
	return 0;
}
