/*
 * emit_openapi.c - one OpenAPI 3.0 document for every HTTP route of the set:
 * <name>.openapi.json.
 *
 * Schemas follow the proto3 JSON mapping: lowerCamelCase names (json_name),
 * 64-bit integers as strings, enums by value name, bytes as base64,
 * Timestamp as RFC 3339, wrappers as nullable scalars, maps as objects.
 * Paths use the JSON names of their variables (`/v1/users/{userId}`); a
 * variable over several segments (`{name=shelves/ *}`) becomes one parameter.
 * Errors are the AIP-193 shape of API.md; non-public operations require the
 * bearer token. Comments of the protos become descriptions.
 *
 * Output is deterministic: paths in route order, schemas sorted by name.
 * Custom HTTP methods OpenAPI cannot name (anything but HEAD, OPTIONS and
 * TRACE) are left out of the document; they stay in the route table.
 */
#include "pgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panthera/rpc.h"

#define JW_MAX_DEPTH    64
#define QUERY_MAX_DEPTH 4

/* ---- a small pretty-printing JSON writer ---- */

typedef struct jw {
	pgen_buf *b;
	int depth;
	int count[JW_MAX_DEPTH]; /* members written at each level */
	int after_key;
} jw;

static void jw_indent(jw *w)
{
	pgen_buf_putc(w->b, '\n');
	for (int i = 0; i < w->depth; i++)
		pgen_buf_puts(w->b, "  ");
}

/* Before any value or key: a comma and a new line unless it follows a key. */
static void jw_pre(jw *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (w->depth > 0) {
		if (w->count[w->depth]++ > 0)
			pgen_buf_putc(w->b, ',');
		jw_indent(w);
	}
}

/* A JSON string. Control characters are escaped; bytes that are not UTF-8
 * (protoc lets them through in comments) become U+FFFD. A NULL string is
 * an allocation that failed upstream: mark the buffer failed. */
static void jw_raw_string(pgen_buf *b, const char *s)
{
	if (s == NULL) {
		b->failed = 1;
		return;
	}
	pgen_buf_putc(b, '"');
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		switch (*p) {
		case '"':
			pgen_buf_puts(b, "\\\"");
			break;
		case '\\':
			pgen_buf_puts(b, "\\\\");
			break;
		case '\n':
			pgen_buf_puts(b, "\\n");
			break;
		case '\t':
			pgen_buf_puts(b, "\\t");
			break;
		case '\r':
			pgen_buf_puts(b, "\\r");
			break;
		default:
			if (*p < 0x20) {
				pgen_buf_printf(b, "\\u%04x", *p);
			} else {
				size_t n = pgen_utf8_len(p);
				if (n == 0) {
					pgen_buf_puts(b, "\\ufffd");
				} else {
					pgen_buf_putn(b, (const char *)p, n);
					p += n;
					continue;
				}
			}
		}
		p++;
	}
	pgen_buf_putc(b, '"');
}

static void jw_open(jw *w, char c)
{
	jw_pre(w);
	pgen_buf_putc(w->b, c);
	if (w->depth + 1 < JW_MAX_DEPTH) {
		w->depth++;
		w->count[w->depth] = 0;
	} else {
		w->b->failed = 1;
	}
}

static void jw_close(jw *w, char c)
{
	int had = w->count[w->depth] > 0;
	w->depth--;
	if (had)
		jw_indent(w);
	pgen_buf_putc(w->b, c);
}

static void jw_obj(jw *w)
{
	jw_open(w, '{');
}
static void jw_end(jw *w)
{
	jw_close(w, '}');
}
static void jw_arr(jw *w)
{
	jw_open(w, '[');
}
static void jw_arr_end(jw *w)
{
	jw_close(w, ']');
}

static void jw_key(jw *w, const char *k)
{
	jw_pre(w);
	jw_raw_string(w->b, k);
	pgen_buf_puts(w->b, ": ");
	w->after_key = 1;
}

static void jw_str(jw *w, const char *s)
{
	jw_pre(w);
	jw_raw_string(w->b, s);
}

static void jw_num(jw *w, long long n)
{
	jw_pre(w);
	pgen_buf_printf(w->b, "%lld", n);
}

static void jw_bool(jw *w, int v)
{
	jw_pre(w);
	pgen_buf_puts(w->b, v ? "true" : "false");
}

static void jw_kv_str(jw *w, const char *k, const char *v)
{
	jw_key(w, k);
	jw_str(w, v);
}

/* ---- the document ---- */

typedef struct oa {
	pgen *g;
	jw w;
	/* messages and enums the document refers to (full names, leading dot) */
	const char **refs;
	size_t n_refs, cap_refs;
} oa;

static int is_wkt(const char *type_name, const char *short_name)
{
	static const char pfx[] = ".google.protobuf.";
	return strncmp(type_name, pfx, sizeof(pfx) - 1) == 0 &&
	       strcmp(type_name + sizeof(pfx) - 1, short_name) == 0;
}

static void add_ref(oa *o, const char *full_name)
{
	for (size_t i = 0; i < o->n_refs; i++) {
		if (strcmp(o->refs[i], full_name) == 0)
			return;
	}
	if (o->n_refs == o->cap_refs) {
		size_t cap = o->cap_refs ? o->cap_refs * 2 : 32;
		const char **p = pgen_alloc_array(&o->g->arena, cap, sizeof(*p));
		if (p == NULL) {
			o->w.b->failed = 1;
			return;
		}
		if (o->refs)
			memcpy(p, o->refs, o->n_refs * sizeof(*p));
		o->refs = p;
		o->cap_refs = cap;
	}
	o->refs[o->n_refs++] = full_name;
}

/* A reference to a component schema. OpenAPI 3.0 ignores the siblings of
 * $ref, so a description wraps the reference in allOf. */
static void put_ref(oa *o, const char *full_name, const char *desc)
{
	const char *ref = pgen_printf(&o->g->arena, "#/components/schemas/%s", full_name + 1);
	if (desc != NULL) {
		jw_obj(&o->w);
		jw_kv_str(&o->w, "description", desc);
		jw_key(&o->w, "allOf");
		jw_arr(&o->w);
	}
	jw_obj(&o->w);
	jw_kv_str(&o->w, "$ref", ref);
	jw_end(&o->w);
	if (desc != NULL) {
		jw_arr_end(&o->w);
		jw_end(&o->w);
	}
	add_ref(o, full_name);
}

/* Well-known types with a JSON form of their own. Returns 1 when written. */
static int put_wkt(oa *o, const char *t, const char *desc)
{
	jw *w = &o->w;
	static const struct {
		const char *name, *type, *format;
		int nullable;
	} simple[] = {
	    {"Timestamp", "string", "date-time", 0}, {"Duration", "string", NULL, 0},
	    {"FieldMask", "string", NULL, 0},        {"DoubleValue", "number", "double", 1},
	    {"FloatValue", "number", "float", 1},    {"Int64Value", "string", "int64", 1},
	    {"UInt64Value", "string", "uint64", 1},  {"Int32Value", "integer", "int32", 1},
	    {"UInt32Value", "integer", "int64", 1},  {"BoolValue", "boolean", NULL, 1},
	    {"StringValue", "string", NULL, 1},      {"BytesValue", "string", "byte", 1},
	};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (!is_wkt(t, simple[i].name))
			continue;
		jw_obj(w);
		jw_kv_str(w, "type", simple[i].type);
		if (simple[i].format)
			jw_kv_str(w, "format", simple[i].format);
		if (simple[i].nullable) {
			jw_key(w, "nullable");
			jw_bool(w, 1);
		}
		if (desc != NULL)
			jw_kv_str(w, "description", desc);
		else if (is_wkt(t, "Duration"))
			jw_kv_str(
			    w, "description",
			    "Seconds with up to 9 fractional digits and an \"s\" suffix, e.g. \"1.5s\".");
		else if (is_wkt(t, "FieldMask"))
			jw_kv_str(
			    w, "description",
			    "Comma-separated lowerCamelCase field paths, e.g. \"firstName,lastName\".");
		jw_end(w);
		return 1;
	}
	if (is_wkt(t, "Empty")) {
		jw_obj(w);
		jw_kv_str(w, "type", "object");
		if (desc != NULL)
			jw_kv_str(w, "description", desc);
		jw_end(w);
		return 1;
	}
	if (is_wkt(t, "Struct") || is_wkt(t, "Any")) {
		jw_obj(w);
		jw_kv_str(w, "type", "object");
		if (desc != NULL)
			jw_kv_str(w, "description", desc);
		if (is_wkt(t, "Any")) {
			jw_key(w, "properties");
			jw_obj(w);
			jw_key(w, "@type");
			jw_obj(w);
			jw_kv_str(w, "type", "string");
			jw_end(w);
			jw_end(w);
		}
		jw_key(w, "additionalProperties");
		jw_bool(w, 1);
		jw_end(w);
		return 1;
	}
	if (is_wkt(t, "Value")) {
		jw_obj(w);
		jw_kv_str(w, "description", desc != NULL ? desc : "Any JSON value.");
		jw_end(w);
		return 1;
	}
	if (is_wkt(t, "ListValue")) {
		jw_obj(w);
		jw_kv_str(w, "type", "array");
		if (desc != NULL)
			jw_kv_str(w, "description", desc);
		jw_key(w, "items");
		jw_obj(w);
		jw_end(w);
		jw_end(w);
		return 1;
	}
	return 0;
}

/* The schema of one value of field `f` (ignoring `repeated`), with `desc`
 * (may be NULL) as its description. */
static void put_value_schema(oa *o, const pgen_field_proto *f, const char *desc)
{
	jw *w = &o->w;
	const char *type = NULL, *format = NULL;
	int unsigned32 = 0;
	switch (f->type) {
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
		type = "number", format = "double";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
		type = "number", format = "float";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
		type = "integer", format = "int32";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
		type = "integer", format = "int64", unsigned32 = 1;
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64:
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
		type = "string", format = "int64";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64:
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
		type = "string", format = "uint64";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
		type = "boolean";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
		type = "string";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
		type = "string", format = "byte";
		break;
	case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM:
		put_ref(o, f->type_name, desc);
		return;
	default: /* message or group */
		if (put_wkt(o, f->type_name, desc))
			return;
		put_ref(o, f->type_name, desc);
		return;
	}
	jw_obj(w);
	jw_kv_str(w, "type", type);
	if (format)
		jw_kv_str(w, "format", format);
	if (desc != NULL)
		jw_kv_str(w, "description", desc);
	if (unsigned32) {
		jw_key(w, "minimum");
		jw_num(w, 0);
		jw_key(w, "maximum");
		jw_num(w, 4294967295LL);
	}
	jw_end(w);
}

static int field_is_repeated(const pgen_field_proto *f)
{
	return f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
}

static const pgen_message *map_entry_of(oa *o, const pgen_field_proto *f)
{
	if (!field_is_repeated(f) ||
	    f->type != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE)
		return NULL;
	const pgen_message *m = pgen_find_message(o->g, f->type_name);
	return (m != NULL && m->is_map_entry && m->proto->n_field == 2) ? m : NULL;
}

static const char *json_name_of(oa *o, const pgen_field_proto *f)
{
	if (f->json_name != NULL && f->json_name[0] != '\0')
		return f->json_name;
	const char *n = pgen_json_name(&o->g->arena, f->name);
	if (n == NULL) {
		o->w.b->failed = 1;
		return f->name;
	}
	return n;
}

/* The oneof note of a field, or NULL. */
static const char *oneof_note(oa *o, const pgen_message *m, const pgen_field_proto *f)
{
	if (!f->has_oneof_index || f->oneof_index < 0 ||
	    (size_t)f->oneof_index >= m->proto->n_oneof_decl)
		return NULL;
	pgen_buf b = {0};
	pgen_buf_printf(&b, "Part of oneof `%s`: at most one of ",
	                m->proto->oneof_decl[f->oneof_index]->name);
	int first = 1;
	for (size_t i = 0; i < m->proto->n_field; i++) {
		const pgen_field_proto *x = m->proto->field[i];
		if (x->has_oneof_index && x->oneof_index == f->oneof_index) {
			pgen_buf_printf(&b, "%s`%s`", first ? "" : ", ", json_name_of(o, x));
			first = 0;
		}
	}
	pgen_buf_puts(&b, " is set.");
	const char *r = b.failed ? NULL : pgen_strndup(&o->g->arena, b.data, b.len);
	if (r == NULL)
		o->w.b->failed = 1;
	pgen_buf_free(&b);
	return r;
}

static const char *join_desc(oa *o, const char *a, const char *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	const char *r = pgen_printf(&o->g->arena, "%s\n\n%s", a, b);
	if (r == NULL)
		o->w.b->failed = 1;
	return r;
}

/* The schema of field `f` of message `m`, with its description. */
static void put_field_schema(oa *o, const pgen_message *m, size_t fi)
{
	jw *w = &o->w;
	const pgen_field_proto *f = m->proto->field[fi];
	const char *desc = join_desc(o, m->field_comments[fi], oneof_note(o, m, f));
	const pgen_message *entry = map_entry_of(o, f);
	if (entry != NULL) {
		jw_obj(w);
		jw_kv_str(w, "type", "object");
		if (desc)
			jw_kv_str(w, "description", desc);
		jw_key(w, "additionalProperties");
		put_value_schema(o, entry->proto->field[1], NULL);
		jw_end(w);
		return;
	}
	if (field_is_repeated(f)) {
		jw_obj(w);
		jw_kv_str(w, "type", "array");
		if (desc)
			jw_kv_str(w, "description", desc);
		jw_key(w, "items");
		put_value_schema(o, f, NULL);
		jw_end(w);
		return;
	}
	put_value_schema(o, f, desc);
}

static int path_var_binds(const pgen_route *r, const char *field)
{
	for (size_t v = 0; v < r->n_vars; v++) {
		if (strcmp(r->vars[v].field_path, field) == 0)
			return 1;
	}
	return 0;
}

static int is_patch_mask(const pgen_route *r, const pgen_field_proto *f)
{
	return strcmp(r->binding->http_method, "PATCH") == 0 &&
	       strcmp(f->name, "update_mask") == 0 && f->type_name != NULL &&
	       is_wkt(f->type_name, "FieldMask");
}

/* An object schema of `m`'s fields, less those the route binds elsewhere. */
static void put_message_body(oa *o, const pgen_message *m, const pgen_route *r)
{
	jw *w = &o->w;
	jw_obj(w);
	jw_kv_str(w, "type", "object");
	if (m->comment)
		jw_kv_str(w, "description", m->comment);
	jw_key(w, "properties");
	jw_obj(w);
	for (size_t i = 0; i < m->proto->n_field; i++) {
		const pgen_field_proto *f = m->proto->field[i];
		if (r != NULL && (path_var_binds(r, f->name) || is_patch_mask(r, f)))
			continue;
		jw_key(w, json_name_of(o, f));
		put_field_schema(o, m, i);
	}
	jw_end(w);
	if (r != NULL) {
		jw_key(w, "additionalProperties");
		jw_bool(w, 0);
	}
	jw_end(w);
}

static void put_enum_schema(oa *o, const pgen_enum *e)
{
	jw *w = &o->w;
	jw_obj(w);
	jw_kv_str(w, "type", "string");
	pgen_buf d = {0};
	if (e->comment)
		pgen_buf_printf(&d, "%s\n\n", e->comment);
	for (size_t i = 0; i < e->proto->n_value; i++) {
		const char *vc = e->value_comments[i];
		pgen_buf_printf(&d, "- `%s`%s", e->proto->value[i]->name, vc ? ": " : "");
		if (vc) {
			for (const char *p = vc; *p; p++)
				pgen_buf_putc(&d, *p == '\n' ? ' ' : *p);
		}
		pgen_buf_putc(&d, '\n');
	}
	if (d.failed)
		w->b->failed = 1;
	else if (d.len > 0) {
		d.data[d.len - 1] = '\0';
		jw_kv_str(w, "description", d.data);
	}
	pgen_buf_free(&d);
	jw_key(w, "enum");
	jw_arr(w);
	for (size_t i = 0; i < e->proto->n_value; i++)
		jw_str(w, e->proto->value[i]->name);
	jw_arr_end(w);
	jw_end(w);
}

/* ---- parameters ---- */

static const char *var_json_path(oa *o, const pgen_message *in, const char *field_path)
{
	pgen_buf b = {0};
	const pgen_message *cur = in;
	const char *p = field_path;
	while (*p && cur != NULL) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		const pgen_field_proto *f = pgen_find_field_n(cur, p, n);
		if (f == NULL)
			break;
		pgen_buf_printf(&b, "%s%s", b.len ? "." : "", json_name_of(o, f));
		cur = f->type_name ? pgen_find_message(o->g, f->type_name) : NULL;
		p = dot ? dot + 1 : p + n;
	}
	const char *r = b.failed ? NULL : pgen_strndup(&o->g->arena, b.data ? b.data : "", b.len);
	if (r == NULL)
		o->w.b->failed = 1;
	pgen_buf_free(&b);
	return r ? r : field_path;
}

static const pgen_field_proto *field_at_path(oa *o, const pgen_message *in, const char *field_path,
                                             const pgen_message **owner, size_t *index)
{
	const pgen_message *cur = in;
	const char *p = field_path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		for (size_t i = 0; i < cur->proto->n_field; i++) {
			const pgen_field_proto *f = cur->proto->field[i];
			if (strlen(f->name) == n && strncmp(f->name, p, n) == 0) {
				if (dot == NULL) {
					*owner = cur;
					*index = i;
					return f;
				}
				cur = pgen_find_message(o->g, f->type_name);
				if (cur == NULL)
					return NULL;
				p = dot + 1;
				goto next;
			}
		}
		return NULL;
	next:;
	}
}

static void put_param(oa *o, const char *name, const char *in, int required, const pgen_message *m,
                      size_t fi, const char *note)
{
	jw *w = &o->w;
	jw_obj(w);
	jw_kv_str(w, "name", name);
	jw_kv_str(w, "in", in);
	if (required) {
		jw_key(w, "required");
		jw_bool(w, 1);
	}
	const char *desc = join_desc(o, m->field_comments[fi], note);
	if (desc)
		jw_kv_str(w, "description", desc);
	jw_key(w, "schema");
	const pgen_field_proto *f = m->proto->field[fi];
	if (field_is_repeated(f)) {
		jw_obj(w);
		jw_kv_str(w, "type", "array");
		jw_key(w, "items");
		put_value_schema(o, f, NULL);
		jw_end(w);
	} else {
		put_value_schema(o, f, NULL);
	}
	jw_end(w);
}

/* Query parameters for the fields of `m`, recursing into plain messages
 * with dotted names (`filter.minPrice`), as the gateway reads them. */
static void put_query_params(oa *o, const pgen_message *m, const char *prefix,
                             const char *const *only, size_t n_only, const pgen_route *r, int depth)
{
	for (size_t i = 0; i < m->proto->n_field; i++) {
		const pgen_field_proto *f = m->proto->field[i];
		if (only != NULL) {
			int listed = 0;
			for (size_t k = 0; k < n_only && !listed; k++)
				listed = strcmp(only[k], f->name) == 0;
			if (!listed)
				continue;
		}
		if (is_patch_mask(r, f) || map_entry_of(o, f) != NULL)
			continue;
		const char *name =
		    prefix ? pgen_printf(&o->g->arena, "%s.%s", prefix, json_name_of(o, f))
		           : json_name_of(o, f);
		if (name == NULL) {
			o->w.b->failed = 1;
			return;
		}
		int plain_msg =
		    f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE &&
		    strncmp(f->type_name, ".google.protobuf.", 17) != 0;
		if (plain_msg) {
			const pgen_message *sub = pgen_find_message(o->g, f->type_name);
			if (sub != NULL && !field_is_repeated(f) && depth < QUERY_MAX_DEPTH)
				put_query_params(o, sub, name, NULL, 0, r, depth + 1);
			continue; /* repeated messages cannot travel in a query string */
		}
		if (f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE &&
		    field_is_repeated(f))
			continue;
		put_param(o, name, "query", 0, m, i, NULL);
	}
}

/* ---- operations ---- */

/* The OpenAPI path of a route: variables as {jsonName}. With `shape` set,
 * every variable is written {} instead, so routes that differ only by the
 * names of their variables (GET /v1/books/{book_id} and PATCH
 * /v1/books/{book.id}) share one path key. */
static const char *openapi_path(oa *o, const pgen_route *r, int shape)
{
	pgen_buf b = {0};
	size_t s = 0;
	while (s < r->n_segments) {
		const pgen_var *var = NULL;
		for (size_t v = 0; v < r->n_vars; v++) {
			if (r->vars[v].first == s)
				var = &r->vars[v];
		}
		pgen_buf_putc(&b, '/');
		if (var != NULL) {
			if (shape)
				pgen_buf_puts(&b, "{}");
			else
				pgen_buf_printf(
				    &b, "{%s}",
				    var_json_path(o, r->method->input, var->field_path));
			s = var->last > s ? var->last : s + 1;
		} else {
			const pgen_segment *seg = &r->segments[s];
			pgen_buf_puts(&b, seg->kind == 0   ? seg->literal
			                  : seg->kind == 1 ? "*"
			                                   : "**");
			s++;
		}
	}
	if (r->verb)
		pgen_buf_printf(&b, ":%s", r->verb);
	const char *p = b.failed ? NULL : pgen_strndup(&o->g->arena, b.data ? b.data : "", b.len);
	if (p == NULL)
		o->w.b->failed = 1;
	pgen_buf_free(&b);
	return p ? p : "";
}

static const char *openapi_verb(const char *http_method)
{
	static const char *const known[][2] = {
	    {"GET", "get"},     {"PUT", "put"},   {"POST", "post"},       {"DELETE", "delete"},
	    {"PATCH", "patch"}, {"HEAD", "head"}, {"OPTIONS", "options"}, {"TRACE", "trace"}};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(known[i][0], http_method) == 0)
			return known[i][1];
	}
	return NULL;
}

static const char *access_text(const pgen_method *m)
{
	switch (m->access) {
	case PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_PUBLIC:
		return "public";
	case PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_OWNER:
		return "owner";
	case PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_ADMIN:
		return "admin";
	default:
		return "user";
	}
}

static void put_error_response(oa *o, const char *code)
{
	jw *w = &o->w;
	jw_key(w, code);
	jw_obj(w);
	jw_kv_str(w, "$ref", "#/components/responses/Error");
	jw_end(w);
}

/* A service's tag and operationId prefix: its short name, or its full name
 * when another service of the set has the same short name. */
static const char *service_label(oa *o, const pgen_service *s)
{
	for (size_t i = 0; i < o->g->n_services; i++) {
		const pgen_service *x = &o->g->services[i];
		if (x != s && strcmp(x->proto->name, s->proto->name) == 0)
			return s->full_name;
	}
	return s->proto->name;
}

/* The first sentence of a comment, on one line: the operation summary. */
static const char *first_sentence(oa *o, const char *comment)
{
	size_t n = strlen(comment);
	char *s = pgen_strndup(&o->g->arena, comment, n);
	if (s == NULL) {
		o->w.b->failed = 1;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n' && i + 1 < n && s[i + 1] == '\n') {
			s[i] = '\0'; /* end of the first paragraph */
			break;
		}
		if (s[i] == '\n')
			s[i] = ' ';
		if (s[i] == '.' && (i + 1 == n || s[i + 1] == ' ' || s[i + 1] == '\n')) {
			s[i + 1] = '\0';
			break;
		}
	}
	return s;
}

/* `key_route`: the first route of the same path shape, whose variable
 * names name the path parameters (see openapi_path). */
static void put_operation(oa *o, const pgen_route *r, const pgen_route *key_route)
{
	jw *w = &o->w;
	const pgen_method *m = r->method;
	const pgen_service *s = m->service;
	int is_public = m->access == PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_PUBLIC;

	jw_obj(w);
	jw_key(w, "tags");
	jw_arr(w);
	jw_str(w, service_label(o, s));
	jw_arr_end(w);
	if (m->comment) {
		const char *summary = first_sentence(o, m->comment);
		if (summary != NULL)
			jw_kv_str(w, "summary", summary);
	}
	{
		const char *owner = NULL;
		if (m->access == PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_OWNER)
			owner =
			    m->owner_field
			        ? pgen_printf(&o->g->arena,
			                      "Access: the user named by `%s`, or an admin.",
			                      var_json_path(o, m->input, m->owner_field))
			        : "Access: the owner of the resource, or an admin; another caller gets 404.";
		else if (m->access == PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_ADMIN)
			owner = "Access: admins only.";
		else if (m->access == PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_USER)
			owner = "Access: any signed-in user.";
		else
			owner = "Access: public.";
		const char *extra = NULL;
		if (strcmp(r->binding->http_method, "PATCH") == 0)
			extra = "Only the fields present in the body are changed.";
		const char *d = join_desc(o, m->comment, join_desc(o, extra, owner));
		if (d)
			jw_kv_str(w, "description", d);
	}
	const char *label = service_label(o, s);
	const char *opid = m->n_routes > 1 && r != &m->routes[0]
	                       ? pgen_printf(&o->g->arena, "%s_%s_%zu", label, m->proto->name,
	                                     (size_t)(r - m->routes) + 1)
	                       : pgen_printf(&o->g->arena, "%s_%s", label, m->proto->name);
	jw_kv_str(w, "operationId", opid);
	if (m->flags & RPC_METHOD_DEPRECATED) {
		jw_key(w, "deprecated");
		jw_bool(w, 1);
	}

	/* parameters: path, then query, then headers */
	int any_param = r->n_vars > 0 || r->n_query_fields > 0 || m->idempotency_key;
	if (any_param) {
		jw_key(w, "parameters");
		jw_arr(w);
		for (size_t v = 0; v < r->n_vars; v++) {
			const pgen_message *owner;
			size_t fi;
			if (field_at_path(o, m->input, r->vars[v].field_path, &owner, &fi) == NULL)
				continue;
			const char *own = var_json_path(o, m->input, r->vars[v].field_path);
			const char *key = var_json_path(o, key_route->method->input,
			                                key_route->vars[v].field_path);
			put_param(
			    o, key, "path", 1, owner, fi,
			    strcmp(own, key) != 0
			        ? pgen_printf(&o->g->arena, "Sets the request field `%s`.", own)
			        : NULL);
		}
		if (r->n_query_fields > 0)
			put_query_params(o, m->input, NULL, r->query_fields, r->n_query_fields, r,
			                 0);
		if (m->idempotency_key) {
			jw_obj(w);
			jw_kv_str(w, "name", "Idempotency-Key");
			jw_kv_str(w, "in", "header");
			jw_kv_str(
			    w, "description",
			    "A key unique to this operation (1..255 printable characters, e.g. a UUID). "
			    "The same key from the same user within 24 hours returns the first result "
			    "and creates nothing new.");
			jw_key(w, "schema");
			jw_obj(w);
			jw_kv_str(w, "type", "string");
			jw_key(w, "maxLength");
			jw_num(w, 255);
			jw_end(w);
			jw_end(w);
		}
		jw_arr_end(w);
	}

	if (r->binding->body != NULL) {
		jw_key(w, "requestBody");
		jw_obj(w);
		jw_key(w, "required");
		jw_bool(w, 1);
		jw_key(w, "content");
		jw_obj(w);
		jw_key(w, "application/json");
		jw_obj(w);
		jw_key(w, "schema");
		if (strcmp(r->binding->body, "*") == 0) {
			put_message_body(o, m->input, r);
		} else {
			for (size_t i = 0; i < m->input->proto->n_field; i++) {
				if (strcmp(m->input->proto->field[i]->name, r->binding->body) == 0)
					put_field_schema(o, m->input, i);
			}
		}
		jw_end(w);
		jw_end(w);
		jw_end(w);
	}

	jw_key(w, "responses");
	jw_obj(w);
	char code[8];
	snprintf(code, sizeof(code), "%u", m->success_status);
	jw_key(w, code);
	jw_obj(w);
	jw_kv_str(w, "description",
	          m->success_status == 201   ? "Created."
	          : m->success_status == 202 ? "Accepted."
	          : m->success_status == 204 ? "No content."
	                                     : "OK.");
	if (m->success_status != 204) {
		jw_key(w, "content");
		jw_obj(w);
		jw_key(w, "application/json");
		jw_obj(w);
		jw_key(w, "schema");
		if (r->binding->response_body != NULL) {
			for (size_t i = 0; i < m->output->proto->n_field; i++) {
				if (strcmp(m->output->proto->field[i]->name,
				           r->binding->response_body) == 0)
					put_field_schema(o, m->output, i);
			}
		} else if (!put_wkt(o, m->output->full_name, NULL)) {
			put_ref(o, m->output->full_name, NULL);
		}
		jw_end(w);
		jw_end(w);
	}
	jw_end(w);
	if (r->binding->body != NULL || r->n_query_fields > 0 || r->n_vars > 0)
		put_error_response(o, "400");
	if (!is_public) {
		put_error_response(o, "401");
		put_error_response(o, "403");
	}
	if (r->n_vars > 0 || m->access == PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_OWNER)
		put_error_response(o, "404");
	put_error_response(o, "429");
	put_error_response(o, "default");
	jw_end(w);

	jw_key(w, "security");
	jw_arr(w);
	if (!is_public) {
		jw_obj(w);
		jw_key(w, "bearerAuth");
		jw_arr(w);
		jw_arr_end(w);
		jw_end(w);
	}
	jw_arr_end(w);
	jw_kv_str(w, "x-panthera-rpc",
	          pgen_printf(&o->g->arena, "/%s/%s", s->full_name, m->proto->name));
	jw_kv_str(w, "x-panthera-access", access_text(m));
	if (m->cache_ttl) {
		jw_key(w, "x-panthera-cache-ttl-seconds");
		jw_num(w, m->cache_ttl);
	}
	jw_end(w);
}

/* ---- fixed components: the AIP-193 error ---- */

static void put_prop(jw *w, const char *name, const char *type, const char *desc)
{
	jw_key(w, name);
	jw_obj(w);
	jw_kv_str(w, "type", type);
	if (desc)
		jw_kv_str(w, "description", desc);
	jw_end(w);
}

static void put_error_schemas(oa *o)
{
	jw *w = &o->w;
	jw_key(w, "Error");
	jw_obj(w);
	jw_kv_str(w, "type", "object");
	jw_kv_str(w, "description", "Every error answer (Google AIP-193).");
	jw_key(w, "required");
	jw_arr(w);
	jw_str(w, "error");
	jw_arr_end(w);
	jw_key(w, "properties");
	jw_obj(w);
	jw_key(w, "error");
	jw_obj(w);
	jw_kv_str(w, "$ref", "#/components/schemas/ErrorStatus");
	jw_end(w);
	jw_end(w);
	jw_end(w);

	jw_key(w, "ErrorStatus");
	jw_obj(w);
	jw_kv_str(w, "type", "object");
	jw_key(w, "required");
	jw_arr(w);
	jw_str(w, "code");
	jw_str(w, "status");
	jw_str(w, "message");
	jw_arr_end(w);
	jw_key(w, "properties");
	jw_obj(w);
	put_prop(w, "code", "integer", "The HTTP status code.");
	jw_key(w, "status");
	jw_obj(w);
	jw_kv_str(w, "type", "string");
	jw_kv_str(w, "description", "The canonical status code name.");
	jw_key(w, "enum");
	jw_arr(w);
	static const char *const codes[] = {"OK",
	                                    "CANCELLED",
	                                    "UNKNOWN",
	                                    "INVALID_ARGUMENT",
	                                    "DEADLINE_EXCEEDED",
	                                    "NOT_FOUND",
	                                    "ALREADY_EXISTS",
	                                    "PERMISSION_DENIED",
	                                    "RESOURCE_EXHAUSTED",
	                                    "FAILED_PRECONDITION",
	                                    "ABORTED",
	                                    "OUT_OF_RANGE",
	                                    "UNIMPLEMENTED",
	                                    "INTERNAL",
	                                    "UNAVAILABLE",
	                                    "DATA_LOSS",
	                                    "UNAUTHENTICATED"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		jw_str(w, codes[i]);
	jw_arr_end(w);
	jw_end(w);
	put_prop(w, "message", "string",
	         "What went wrong, for a developer; never a stack, SQL or secret.");
	jw_key(w, "details");
	jw_obj(w);
	jw_kv_str(w, "type", "array");
	jw_key(w, "items");
	jw_obj(w);
	jw_kv_str(w, "$ref", "#/components/schemas/ErrorDetail");
	jw_end(w);
	jw_end(w);
	jw_end(w);
	jw_end(w);

	jw_key(w, "ErrorDetail");
	jw_obj(w);
	jw_kv_str(w, "type", "object");
	jw_kv_str(w, "description",
	          "A typed detail: google.rpc.ErrorInfo (reason, domain, metadata) or "
	          "google.rpc.BadRequest (fieldViolations).");
	jw_key(w, "required");
	jw_arr(w);
	jw_str(w, "@type");
	jw_arr_end(w);
	jw_key(w, "properties");
	jw_obj(w);
	put_prop(
	    w, "@type", "string",
	    "type.googleapis.com/google.rpc.ErrorInfo or type.googleapis.com/google.rpc.BadRequest");
	put_prop(w, "reason", "string",
	         "ErrorInfo: a machine-readable reason, e.g. PRODUCT_NOT_FOUND.");
	put_prop(w, "domain", "string", "ErrorInfo: the domain of the reason, e.g. panthera.dev.");
	jw_key(w, "metadata");
	jw_obj(w);
	jw_kv_str(w, "type", "object");
	jw_kv_str(w, "description", "ErrorInfo: more context, as string pairs.");
	jw_key(w, "additionalProperties");
	jw_obj(w);
	jw_kv_str(w, "type", "string");
	jw_end(w);
	jw_end(w);
	jw_key(w, "fieldViolations");
	jw_obj(w);
	jw_kv_str(w, "type", "array");
	jw_kv_str(w, "description", "BadRequest: one entry per invalid field.");
	jw_key(w, "items");
	jw_obj(w);
	jw_kv_str(w, "type", "object");
	jw_key(w, "properties");
	jw_obj(w);
	put_prop(w, "field", "string", "The field, as a JSON path (e.g. items[0].quantity).");
	put_prop(w, "description", "string", "Why the value was refused.");
	jw_end(w);
	jw_end(w);
	jw_end(w);
	jw_end(w);
	jw_key(w, "additionalProperties");
	jw_bool(w, 1);
	jw_end(w);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Write component schemas for every referenced message and enum, following
 * references until none is new, then emit in name order. Each schema is
 * rendered into its own buffer first, since rendering finds more refs. */
static int put_component_schemas(oa *o)
{
	pgen_buf **bodies = NULL;
	size_t done = 0, cap = 0;
	jw saved = o->w;
	int rc = -1;
	while (done < o->n_refs) {
		const char *name = o->refs[done];
		if (done >= cap) {
			size_t ncap = cap ? cap * 2 : 64;
			pgen_buf **nb = pgen_alloc_array(&o->g->arena, ncap, sizeof(*nb));
			if (nb == NULL)
				goto out;
			if (bodies)
				memcpy(nb, bodies, cap * sizeof(*nb));
			bodies = nb;
			cap = ncap;
		}
		pgen_buf *b = pgen_alloc(&o->g->arena, sizeof(*b));
		if (b == NULL)
			goto out;
		bodies[done] = b;
		memset(&o->w, 0, sizeof(o->w));
		o->w.b = b;
		o->w.depth = 3; /* components / schemas / <name> */
		o->w.after_key = 1;
		const pgen_message *m = pgen_find_message(o->g, name);
		const pgen_enum *e = m ? NULL : pgen_find_enum(o->g, name);
		if (m != NULL)
			put_message_body(o, m, NULL);
		else if (e != NULL)
			put_enum_schema(o, e);
		else
			pgen_buf_puts(b, "{}");
		done++;
	}
	o->w = saved;
	/* sort an index by name */
	size_t n = o->n_refs;
	const char **order = pgen_alloc_array(&o->g->arena, n + 1, sizeof(*order));
	if (order == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		order[i] = o->refs[i];
	qsort(order, n, sizeof(*order), cmp_str);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (o->refs[k] != order[i])
			k++;
		if (strcmp(order[i] + 1, "Error") == 0 ||
		    strcmp(order[i] + 1, "ErrorStatus") == 0 ||
		    strcmp(order[i] + 1, "ErrorDetail") == 0) {
			const pgen_message *cm = pgen_find_message(o->g, order[i]);
			const pgen_enum *ce = pgen_find_enum(o->g, order[i]);
			pgen_fail(
			    o->g,
			    "%s: %s %s: its OpenAPI schema name is taken by the AIP-193 error schema; give its file a package",
			    cm   ? cm->file->name
			    : ce ? ce->file->name
			         : "?",
			    cm ? "message" : "enum", order[i] + 1);
			goto out;
		}
		jw_key(&o->w, order[i] + 1);
		o->w.after_key = 0;
		if (bodies[k]->failed)
			goto out;
		pgen_buf_putn(o->w.b, bodies[k]->data, bodies[k]->len);
	}
	rc = 0;
out:
	for (size_t i = 0; i < done && bodies; i++)
		pgen_buf_free(bodies[i]);
	if (rc != 0)
		o->w.b->failed = 1;
	return rc;
}

int pgen_emit_openapi(pgen *g)
{
	pgen_buf out = {0};
	oa o = {.g = g};
	o.w.b = &out;
	jw *w = &o.w;
	int rc = -1;

	jw_obj(w);
	jw_kv_str(w, "openapi", "3.0.3");
	jw_key(w, "info");
	jw_obj(w);
	jw_kv_str(w, "title", g->openapi_title);
	jw_kv_str(w, "version", g->openapi_version);
	jw_kv_str(w, "description",
	          "Generated by protoc-gen-panthera from the .proto files of the services. "
	          "Field names follow the proto3 JSON mapping; errors have the AIP-193 shape.");
	jw_key(w, "license");
	jw_obj(w);
	jw_kv_str(w, "name", "Proprietary");
	jw_kv_str(w, "url", "https://panthera.dev/license");
	jw_end(w);
	jw_end(w);
	jw_key(w, "servers");
	jw_arr(w);
	jw_obj(w);
	jw_kv_str(w, "url", g->openapi_server);
	jw_end(w);
	jw_arr_end(w);

	jw_key(w, "tags");
	jw_arr(w);
	for (size_t i = 0; i < g->n_services; i++) {
		const pgen_service *s = &g->services[i];
		int has = 0;
		for (size_t k = 0; k < s->n_methods && !has; k++)
			has = s->methods[k].n_routes > 0;
		if (!has)
			continue;
		jw_obj(w);
		jw_kv_str(w, "name", service_label(&o, s));
		if (s->comment)
			jw_kv_str(w, "description", s->comment);
		jw_end(w);
	}
	jw_arr_end(w);

	/* paths: group routes by OpenAPI path, in order of first appearance */
	const char **paths = pgen_alloc_array(&g->arena, g->n_routes + 1, sizeof(*paths));
	if (paths == NULL)
		goto out;
	for (size_t i = 0; i < g->n_routes; i++)
		paths[i] = openapi_path(&o, g->routes[i], 1);
	/* Routes the collision check lets through can still be one OpenAPI
	 * operation: /v1/{name=shelves/ *} and /v1/{name=books/ *} are both
	 * GET /v1/{name}. OpenAPI cannot tell them apart: refuse. */
	for (size_t i = 0; i < g->n_routes; i++) {
		for (size_t k = 0; k < i; k++) {
			const pgen_route *a = g->routes[k], *b = g->routes[i];
			if (strcmp(paths[k], paths[i]) != 0 ||
			    strcmp(a->binding->http_method, b->binding->http_method) != 0)
				continue;
			pgen_fail(
			    g,
			    "%s: method %s.%s: route %s %s is the same OpenAPI operation (%s %s) as route %s of method %s.%s",
			    b->method->service->file->name, b->method->service->full_name,
			    b->method->proto->name, b->binding->http_method,
			    b->binding->path_template, b->binding->http_method,
			    openapi_path(&o, b, 0), a->binding->path_template,
			    a->method->service->full_name, a->method->proto->name);
			goto out;
		}
	}
	jw_key(w, "paths");
	jw_obj(w);
	for (size_t i = 0; i < g->n_routes; i++) {
		int seen = 0;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(paths[k], paths[i]) == 0;
		if (seen)
			continue;
		/* The first route of a shape names the path and its parameters. */
		jw_key(w, openapi_path(&o, g->routes[i], 0));
		jw_obj(w);
		for (size_t k = i; k < g->n_routes; k++) {
			const char *verb = openapi_verb(g->routes[k]->binding->http_method);
			if (strcmp(paths[k], paths[i]) != 0 || verb == NULL)
				continue;
			jw_key(w, verb);
			put_operation(&o, g->routes[k], g->routes[i]);
		}
		jw_end(w);
	}
	jw_end(w);

	jw_key(w, "components");
	jw_obj(w);
	jw_key(w, "schemas");
	jw_obj(w);
	put_error_schemas(&o);
	if (put_component_schemas(&o) != 0)
		goto out;
	jw_end(w);
	jw_key(w, "responses");
	jw_obj(w);
	jw_key(w, "Error");
	jw_obj(w);
	jw_kv_str(w, "description", "An error, in the AIP-193 shape.");
	jw_key(w, "content");
	jw_obj(w);
	jw_key(w, "application/json");
	jw_obj(w);
	jw_key(w, "schema");
	jw_obj(w);
	jw_kv_str(w, "$ref", "#/components/schemas/Error");
	jw_end(w);
	jw_end(w);
	jw_end(w);
	jw_end(w);
	jw_end(w);
	jw_key(w, "securitySchemes");
	jw_obj(w);
	jw_key(w, "bearerAuth");
	jw_obj(w);
	jw_kv_str(w, "type", "http");
	jw_kv_str(w, "scheme", "bearer");
	jw_kv_str(w, "bearerFormat", "JWT");
	jw_kv_str(w, "description", "An access token from POST /v1/auth/login.");
	jw_end(w);
	jw_end(w);
	jw_end(w);
	jw_end(w);
	pgen_buf_putc(&out, '\n');

	char *name = pgen_printf(&g->arena, "%s.openapi.json", g->name);
	if (name == NULL || out.failed || pgen_add_file(g, name, &out) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0 && g->error == NULL)
		g->arena.failed = 1;
	pgen_buf_free(&out);
	return rc;
}
