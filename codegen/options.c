/*
 * options.c - decode a method's google.api.http rule and Panthera options.
 *
 * protobuf-c does not know the extensions of MethodOptions, so it keeps them
 * as unknown fields: tag, wire type and raw bytes. For a length-delimited
 * field those bytes begin with the field's varint length (protobuf-c 1.4.1
 * stores everything after the tag), which is checked against the stored
 * size and skipped before the embedded message is unpacked with the
 * protoc-c generated code for http.proto and options.proto. Several
 * occurrences of one message-typed extension are concatenated first, which is
 * how protobuf merges repeated occurrences of a message field.
 */
#include "pgen.h"

#include <string.h>

#define EXT_GOOGLE_API_HTTP          72295728u
#define EXT_PANTHERA_ACCESS          51001u
#define EXT_PANTHERA_SUCCESS_STATUS  51002u
#define EXT_PANTHERA_CACHE           51003u
#define EXT_PANTHERA_IDEMPOTENCY_KEY 51004u
#define EXT_PANTHERA_RATE_LIMIT      51005u

/* Read a varint from data[0..len). Returns bytes used, 0 when malformed. */
static size_t read_varint(const uint8_t *data, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < len && i < 10; i++) {
		v |= (uint64_t)(data[i] & 0x7f) << (7 * i);
		if ((data[i] & 0x80) == 0) {
			*out = v;
			return i + 1;
		}
	}
	return 0;
}

static void *arena_pb_alloc(void *data, size_t size)
{
	return pgen_alloc(data, size);
}

static void arena_pb_free(void *data, void *ptr)
{
	(void)data; /* the arena frees everything at exit */
	(void)ptr;
}

/*
 * Gather the payload bytes of every occurrence of extension `tag` (length-
 * delimited). Sets *out (arena memory) and *out_len; *out is NULL when the
 * extension is absent. Returns -1 on malformed bytes or no memory.
 */
static int gather_message(pgen *g, pgen_method *m, uint32_t tag, const char *what, uint8_t **out,
                          size_t *out_len)
{
	const Google__Protobuf__MethodOptions *o = m->proto->options;
	size_t total = 0;
	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < o->base.n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &o->base.unknown_fields[i];
		if (u->tag != tag)
			continue;
		uint64_t n = 0;
		size_t used;
		if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED ||
		    (used = read_varint(u->data, u->len, &n)) == 0 || n != u->len - used)
			return pgen_fail(g, "%s: method %s.%s: option %s: malformed bytes",
			                 m->service->file->name, m->service->full_name,
			                 m->proto->name, what);
		total += (size_t)n;
	}
	if (total == 0) {
		/* absent, or present but empty: an empty message decodes as defaults */
		for (size_t i = 0; i < o->base.n_unknown_fields; i++) {
			if (o->base.unknown_fields[i].tag == tag) {
				*out = (uint8_t *)"";
				return 0;
			}
		}
		return 0;
	}
	uint8_t *buf = pgen_alloc(&g->arena, total);
	if (buf == NULL)
		return -1;
	size_t off = 0;
	for (size_t i = 0; i < o->base.n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &o->base.unknown_fields[i];
		if (u->tag != tag)
			continue;
		uint64_t n = 0;
		size_t used = read_varint(u->data, u->len, &n);
		memcpy(buf + off, u->data + used, (size_t)n);
		off += (size_t)n;
	}
	*out = buf;
	*out_len = total;
	return 0;
}

static int method_fail(pgen *g, const pgen_method *m, const char *reason)
{
	return pgen_fail(g, "%s: method %s.%s: %s", m->service->file->name, m->service->full_name,
	                 m->proto->name, reason);
}

/* Turn one HttpRule (no nesting) into a binding. */
static int rule_to_binding(pgen *g, pgen_method *m, const Google__Api__HttpRule *r,
                           pgen_http_binding *b)
{
	switch (r->pattern_case) {
	case GOOGLE__API__HTTP_RULE__PATTERN_GET:
		b->http_method = "GET";
		b->path_template = r->get;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_PUT:
		b->http_method = "PUT";
		b->path_template = r->put;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_POST:
		b->http_method = "POST";
		b->path_template = r->post;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_DELETE:
		b->http_method = "DELETE";
		b->path_template = r->delete_;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_PATCH:
		b->http_method = "PATCH";
		b->path_template = r->patch;
		break;
	case GOOGLE__API__HTTP_RULE__PATTERN_CUSTOM:
		if (r->custom == NULL || r->custom->kind == NULL || r->custom->kind[0] == '\0')
			return method_fail(g, m, "google.api.http: custom pattern without a kind");
		for (const char *p = r->custom->kind; *p; p++) {
			if (!(*p >= 'A' && *p <= 'Z'))
				return method_fail(
				    g, m,
				    "google.api.http: custom kind must be an upper-case HTTP method");
		}
		b->http_method = r->custom->kind;
		b->path_template = r->custom->path;
		break;
	default:
		return method_fail(
		    g, m,
		    "google.api.http: no HTTP method and path (get, put, post, delete, patch or custom)");
	}
	if (b->path_template == NULL || b->path_template[0] == '\0')
		return method_fail(g, m, "google.api.http: empty path template");
	b->body = (r->body && r->body[0]) ? r->body : NULL;
	b->response_body = (r->response_body && r->response_body[0]) ? r->response_body : NULL;
	return 0;
}

int pgen_decode_method_options(pgen *g, pgen_method *m)
{
	m->access = PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_USER;
	m->success_status = 200;
	if (m->proto->options == NULL)
		return 0;
	ProtobufCAllocator alloc = {arena_pb_alloc, arena_pb_free, &g->arena};
	uint8_t *bytes;
	size_t len;

	if (gather_message(g, m, EXT_GOOGLE_API_HTTP, "google.api.http", &bytes, &len) != 0)
		return -1;
	if (bytes != NULL) {
		Google__Api__HttpRule *rule = google__api__http_rule__unpack(&alloc, len, bytes);
		if (rule == NULL)
			return g->arena.failed
			           ? -1
			           : method_fail(g, m, "google.api.http: undecodable HttpRule");
		m->n_bindings = 1 + rule->n_additional_bindings;
		m->bindings = pgen_alloc_array(&g->arena, m->n_bindings, sizeof(*m->bindings));
		if (m->bindings == NULL)
			return -1;
		if (rule_to_binding(g, m, rule, &m->bindings[0]) != 0)
			return -1;
		for (size_t i = 0; i < rule->n_additional_bindings; i++) {
			const Google__Api__HttpRule *ab = rule->additional_bindings[i];
			if (ab->n_additional_bindings > 0)
				return method_fail(
				    g, m, "google.api.http: additional_bindings may not nest");
			if (rule_to_binding(g, m, ab, &m->bindings[1 + i]) != 0)
				return -1;
		}
	}

	if (gather_message(g, m, EXT_PANTHERA_ACCESS, "panthera.api.access", &bytes, &len) != 0)
		return -1;
	if (bytes != NULL) {
		Panthera__Api__AccessRule *ar =
		    panthera__api__access_rule__unpack(&alloc, len, bytes);
		if (ar == NULL)
			return g->arena.failed
			           ? -1
			           : method_fail(g, m,
			                         "panthera.api.access: undecodable AccessRule");
		int p = (int)ar->policy;
		if (p < PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_UNSPECIFIED ||
		    p > PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_ADMIN)
			return pgen_fail(
			    g, "%s: method %s.%s: panthera.api.access: unknown policy value %d",
			    m->service->file->name, m->service->full_name, m->proto->name, p);
		if (p != PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_UNSPECIFIED)
			m->access = p;
		if (ar->owner_field && ar->owner_field[0]) {
			if (m->access != PANTHERA__API__ACCESS_POLICY__ACCESS_POLICY_OWNER)
				return method_fail(
				    g, m,
				    "panthera.api.access: owner_field is only allowed with ACCESS_POLICY_OWNER");
			m->owner_field = ar->owner_field;
		}
	}

	if (gather_message(g, m, EXT_PANTHERA_CACHE, "panthera.api.cache", &bytes, &len) != 0)
		return -1;
	if (bytes != NULL) {
		Panthera__Api__CacheRule *cr =
		    panthera__api__cache_rule__unpack(&alloc, len, bytes);
		if (cr == NULL)
			return g->arena.failed
			           ? -1
			           : method_fail(g, m, "panthera.api.cache: undecodable CacheRule");
		if (cr->ttl_seconds < 1 || cr->ttl_seconds > 86400)
			return pgen_fail(
			    g,
			    "%s: method %s.%s: panthera.api.cache: ttl_seconds %u is outside 1..86400",
			    m->service->file->name, m->service->full_name, m->proto->name,
			    (unsigned)cr->ttl_seconds);
		m->cache_ttl = cr->ttl_seconds;
	}

	const Google__Protobuf__MethodOptions *o = m->proto->options;
	for (size_t i = 0; i < o->base.n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &o->base.unknown_fields[i];
		uint64_t v = 0;
		if (u->tag == EXT_PANTHERA_IDEMPOTENCY_KEY) {
			if (u->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT ||
			    read_varint(u->data, u->len, &v) != u->len || v > 1)
				return method_fail(g, m,
				                   "panthera.api.idempotency_key: malformed bytes");
			m->idempotency_key = (int)v;
			continue;
		}
		if (u->tag == EXT_PANTHERA_RATE_LIMIT) {
			if (u->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT ||
			    read_varint(u->data, u->len, &v) != u->len)
				return method_fail(g, m,
				                   "panthera.api.rate_limit: malformed bytes");
			if (v > 1) /* RateLimitClass: DEFAULT or AUTH */
				return pgen_fail(
				    g,
				    "%s: method %s.%s: panthera.api.rate_limit: unknown class %llu",
				    m->service->file->name, m->service->full_name, m->proto->name,
				    (unsigned long long)v);
			m->rate_limit_class = (int)v;
			continue;
		}
		if (u->tag != EXT_PANTHERA_SUCCESS_STATUS)
			continue;
		if (u->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT ||
		    read_varint(u->data, u->len, &v) != u->len)
			return method_fail(g, m, "panthera.api.success_status: malformed bytes");
		if (v != 200 && v != 201 && v != 202 && v != 204)
			return pgen_fail(
			    g,
			    "%s: method %s.%s: panthera.api.success_status: unknown value %llu (allowed: 200, 201, 202, 204)",
			    m->service->file->name, m->service->full_name, m->proto->name,
			    (unsigned long long)v);
		m->success_status = (unsigned)v;
	}
	return 0;
}
