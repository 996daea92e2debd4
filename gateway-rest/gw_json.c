/*
 * gw_json.c - JSON <-> protobuf-c messages through the descriptors
 * (gw_json.h): the schema built at start-up, decoding of bodies (read with
 * the pull reader of gw_json_read.c straight into the message), path and
 * query text values, the AIP-134 update mask, and encoding with the
 * streaming writer of gw_json_write.c.
 *
 * Design notes.
 *  - Everything that can be computed once is in the schema: per message,
 *    its JSON field names, the `"jsonName":` keys the encoder copies, a hash
 *    index answering both names in one probe, oneof groups, map entries and
 *    the well-known type; per field, the schema entry of its message type.
 *    Per request only the message's own descriptor is looked up (one probe
 *    of a pointer hash).
 *  - The decoder writes only through the caller's allocator (an arena): no
 *    realloc, no free. Repeated fields get arrays of power-of-two capacity,
 *    which is what lets gw_json_set_text() append in amortised O(1) without
 *    storing a capacity anywhere.
 *  - Duplicate keys are caught without a tree: per object, a bit per field
 *    (one field named twice, by one name or both) and per oneof; per map,
 *    its keys sorted once at the end.
 *  - Error paths are built only on failure, from a chain of frames on the C
 *    stack (one per object key, array index or map key), so success pays
 *    nothing for them.
 *  - A repeated field, map or oneof member is committed to the message only
 *    once its value decoded whole; a failure leaves the previous value (or
 *    a fully initialised partial sub-message), never a dangling pointer.
 */
#include "gw_json.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panthera/base64.h"
#include "panthera/text.h"

#define DEFAULT_MAX_DEPTH  32
#define DEFAULT_MAX_VALUES 65536
#define ENCODE_MAX_DEPTH   100
/* Longest number text a string may hold for a float or a non-plain
 * integer ("1e3"); digits past this add nothing a double can hold. */
#define NUMBER_TEXT_MAX 128
/* 2^53: integers up to this are exact as doubles. */
#define EXACT_DOUBLE_MAX 9007199254740992.0
/* `bytes` in the proto3 JSON mapping: read in the standard or the URL-safe
 * alphabet, padded or not (trailing bits ignored); written standard and
 * padded. */
#define BYTES_IN  (BASE64_STD | BASE64_URL | BASE64_PAD_OPTIONAL)
#define BYTES_OUT (BASE64_STD | BASE64_PAD)

/* ---- schema ---------------------------------------------------------------- */

typedef enum wkt_kind {
	WKT_NONE = 0,
	WKT_TIMESTAMP,
	WKT_DURATION,
	WKT_FIELD_MASK,
	WKT_EMPTY,
	WKT_WRAPPER,
} wkt_kind;

typedef struct jmsg jmsg;

typedef struct jfield {
	const ProtobufCFieldDescriptor *fd;
	const jmsg *msg; /* MESSAGE fields: their type (for maps, the entry) */
	char *json_name; /* lowerCamelCase, as protoc derives it */
	size_t json_len;
	size_t name_len;
	char *key; /* "\"jsonName\":", what the encoder copies */
	size_t key_len;
	unsigned oneof; /* 0: not in a oneof; else 1 + its group */
	int is_map;
} jfield;

struct jmsg {
	const ProtobufCMessageDescriptor *desc;
	wkt_kind wkt;
	jfield *fields; /* in descriptor (field number) order */
	unsigned n_fields;
	unsigned n_oneofs;
	uint16_t *index; /* open addressing: 1 + field index, 0 empty */
	uint32_t index_mask;
};

struct gw_json_schema {
	gw_json_limits limits;
	jmsg **msgs;
	size_t n_msgs, cap_msgs;
	jmsg **table; /* descriptor -> message, open addressing */
	size_t table_mask;
};

static void set_error(gw_json_error *err, rpc_status code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(gw_json_error *err, rpc_status code, const char *field, const char *fmt, ...)
{
	if (err == NULL)
		return;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->description, sizeof(err->description), fmt, ap);
	va_end(ap);
}

static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static size_t ptr_hash(const void *p)
{
	uint64_t v = (uint64_t)(uintptr_t)p;
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)v;
}

static const jmsg *schema_lookup(const gw_json_schema *s, const ProtobufCMessageDescriptor *d)
{
	if (s == NULL || d == NULL)
		return NULL;
	for (size_t i = ptr_hash(d) & s->table_mask;; i = (i + 1) & s->table_mask) {
		const jmsg *m = s->table[i];
		if (m == NULL)
			return NULL;
		if (m->desc == d)
			return m;
	}
}

static const jfield *field_lookup(const jmsg *m, const char *name, size_t n)
{
	for (uint32_t i = name_hash(name, n) & m->index_mask;; i = (i + 1) & m->index_mask) {
		unsigned slot = m->index[i];
		if (slot == 0)
			return NULL;
		const jfield *f = &m->fields[slot - 1];
		if ((f->name_len == n && memcmp(f->fd->name, name, n) == 0) ||
		    (f->json_len == n && memcmp(f->json_name, name, n) == 0))
			return f;
	}
}

const ProtobufCFieldDescriptor *gw_json_find_field(const gw_json_schema *s,
                                                   const ProtobufCMessageDescriptor *desc,
                                                   const char *name, size_t len)
{
	const jmsg *m = schema_lookup(s, desc);
	if (m == NULL || name == NULL)
		return NULL;
	const jfield *f = field_lookup(m, name, len);
	return f != NULL ? f->fd : NULL;
}

static void jmsg_free(jmsg *m)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; m->fields != NULL && i < m->n_fields; i++) {
		free(m->fields[i].json_name);
		free(m->fields[i].key);
	}
	free(m->fields);
	free(m->index);
	free(m);
}

void gw_json_schema_free(gw_json_schema *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_msgs; i++)
		jmsg_free(s->msgs[i]);
	free(s->msgs);
	free(s->table);
	free(s);
}

/* Insert into the descriptor table, doubling it past half full. */
static int table_insert(gw_json_schema *s, jmsg *m)
{
	if ((s->n_msgs + 1) * 2 > s->table_mask + 1) {
		size_t size = (s->table_mask + 1) * 2;
		jmsg **t = calloc(size, sizeof(*t));
		if (t == NULL)
			return -1;
		for (size_t i = 0; i <= s->table_mask; i++) {
			jmsg *o = s->table[i];
			if (o == NULL)
				continue;
			size_t j = ptr_hash(o->desc) & (size - 1);
			while (t[j] != NULL)
				j = (j + 1) & (size - 1);
			t[j] = o;
		}
		free(s->table);
		s->table = t;
		s->table_mask = size - 1;
	}
	size_t j = ptr_hash(m->desc) & s->table_mask;
	while (s->table[j] != NULL)
		j = (j + 1) & s->table_mask;
	s->table[j] = m;
	return 0;
}

/* Add `d` (once) to the schema's list and table; its fields come later. */
static rpc_status schema_add(gw_json_schema *s, const ProtobufCMessageDescriptor *d,
                             gw_json_error *err)
{
	if (d == NULL || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) {
		set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL, "not a message descriptor");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (schema_lookup(s, d) != NULL)
		return RPC_STATUS_OK;
	if (s->n_msgs == s->cap_msgs) {
		size_t cap = s->cap_msgs ? s->cap_msgs * 2 : 64;
		jmsg **v = realloc(s->msgs, cap * sizeof(*v));
		if (v == NULL)
			goto oom;
		s->msgs = v;
		s->cap_msgs = cap;
	}
	jmsg *m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto oom;
	m->desc = d;
	if (table_insert(s, m) != 0) {
		free(m);
		goto oom;
	}
	s->msgs[s->n_msgs++] = m;
	return RPC_STATUS_OK;
oom:
	set_error(err, RPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory building the schema");
	return RPC_STATUS_RESOURCE_EXHAUSTED;
}

/* protoc's json_name: underscores dropped, the letter after one upper-cased. */
static char *json_name_of(const char *name, size_t *len)
{
	size_t n = strlen(name);
	char *out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	int upper = 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c == '_') {
			upper = 1;
			continue;
		}
		if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		upper = 0;
		out[o++] = c;
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* The entry type protoc makes for a map field `name`: "<Name>Entry", nested
 * in the field's message, with key = 1 and value = 2. */
static int is_map_entry(const ProtobufCMessageDescriptor *parent,
                        const ProtobufCFieldDescriptor *fd)
{
	const ProtobufCMessageDescriptor *e = fd->descriptor;
	if (fd->label != PROTOBUF_C_LABEL_REPEATED || fd->type != PROTOBUF_C_TYPE_MESSAGE ||
	    e == NULL || e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
	    strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0 ||
	    e->short_name == NULL || e->name == NULL || parent->name == NULL)
		return 0;
	char want[256];
	size_t o = 0;
	int upper = 1;
	for (const char *p = fd->name; *p != '\0'; p++) {
		if (o + 6 >= sizeof(want))
			return 0;
		if (*p == '_') {
			upper = 1;
			continue;
		}
		want[o++] = (upper && *p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
		upper = 0;
	}
	memcpy(want + o, "Entry", 6);
	if (strcmp(e->short_name, want) != 0)
		return 0;
	size_t pn = strlen(parent->name);
	return strncmp(e->name, parent->name, pn) == 0 && e->name[pn] == '.' &&
	       strcmp(e->name + pn + 1, want) == 0;
}

static int field_is(const ProtobufCFieldDescriptor *f, unsigned id, const char *name,
                    ProtobufCType type, ProtobufCLabel label)
{
	return f->id == id && strcmp(f->name, name) == 0 && f->type == type && f->label == label;
}

/* Classify the well-known types by full name; check the shape this code
 * relies on, so a look-alike type cannot make it read the wrong bytes. */
static rpc_status classify(jmsg *m, gw_json_error *err)
{
	static const struct {
		const char *name;
		ProtobufCType type;
	} wrappers[] = {
	    {"google.protobuf.DoubleValue", PROTOBUF_C_TYPE_DOUBLE},
	    {"google.protobuf.FloatValue", PROTOBUF_C_TYPE_FLOAT},
	    {"google.protobuf.Int64Value", PROTOBUF_C_TYPE_INT64},
	    {"google.protobuf.UInt64Value", PROTOBUF_C_TYPE_UINT64},
	    {"google.protobuf.Int32Value", PROTOBUF_C_TYPE_INT32},
	    {"google.protobuf.UInt32Value", PROTOBUF_C_TYPE_UINT32},
	    {"google.protobuf.BoolValue", PROTOBUF_C_TYPE_BOOL},
	    {"google.protobuf.StringValue", PROTOBUF_C_TYPE_STRING},
	    {"google.protobuf.BytesValue", PROTOBUF_C_TYPE_BYTES},
	};
	const ProtobufCMessageDescriptor *d = m->desc;
	const char *name = d->name != NULL ? d->name : "";
	int shape = 1;
	if (strncmp(name, "google.protobuf.", 16) != 0)
		return RPC_STATUS_OK;
	if (strcmp(name, "google.protobuf.Timestamp") == 0 ||
	    strcmp(name, "google.protobuf.Duration") == 0) {
		m->wkt = name[16] == 'T' ? WKT_TIMESTAMP : WKT_DURATION;
		shape = d->n_fields == 2 &&
		        field_is(&d->fields[0], 1, "seconds", PROTOBUF_C_TYPE_INT64,
		                 PROTOBUF_C_LABEL_NONE) &&
		        field_is(&d->fields[1], 2, "nanos", PROTOBUF_C_TYPE_INT32,
		                 PROTOBUF_C_LABEL_NONE);
	} else if (strcmp(name, "google.protobuf.FieldMask") == 0) {
		m->wkt = WKT_FIELD_MASK;
		shape =
		    d->n_fields == 1 && field_is(&d->fields[0], 1, "paths", PROTOBUF_C_TYPE_STRING,
		                                 PROTOBUF_C_LABEL_REPEATED);
	} else if (strcmp(name, "google.protobuf.Empty") == 0) {
		m->wkt = WKT_EMPTY;
		shape = d->n_fields == 0;
	} else if (strcmp(name, "google.protobuf.Struct") == 0 ||
	           strcmp(name, "google.protobuf.Value") == 0 ||
	           strcmp(name, "google.protobuf.ListValue") == 0 ||
	           strcmp(name, "google.protobuf.Any") == 0) {
		set_error(err, RPC_STATUS_UNIMPLEMENTED, NULL,
		          "%s has no JSON mapping in the gateway (see docs/gateway/json.md)", name);
		return RPC_STATUS_UNIMPLEMENTED;
	} else {
		for (size_t i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++) {
			if (strcmp(name, wrappers[i].name) == 0) {
				m->wkt = WKT_WRAPPER;
				shape = d->n_fields == 1 &&
				        field_is(&d->fields[0], 1, "value", wrappers[i].type,
				                 PROTOBUF_C_LABEL_NONE);
			}
		}
	}
	if (!shape) {
		set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL,
		          "%s does not have the fields of the well-known type", name);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	return RPC_STATUS_OK;
}

static int index_insert(jmsg *m, const char *name, size_t n, unsigned field, gw_json_error *err)
{
	for (uint32_t i = name_hash(name, n) & m->index_mask;; i = (i + 1) & m->index_mask) {
		unsigned slot = m->index[i];
		if (slot == 0) {
			m->index[i] = (uint16_t)(field + 1);
			return 0;
		}
		const jfield *o = &m->fields[slot - 1];
		if ((o->name_len == n && memcmp(o->fd->name, name, n) == 0) ||
		    (o->json_len == n && memcmp(o->json_name, name, n) == 0)) {
			if (slot - 1 == field)
				return 0;
			set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL,
			          "%s: fields %s and %s share the JSON name \"%.*s\"",
			          m->desc->name, o->fd->name, m->fields[field].fd->name, (int)n,
			          name);
			return -1;
		}
	}
}

/* Field names go into output keys as they are: [A-Za-z_][A-Za-z0-9_]*. */
static int is_identifier(const char *s)
{
	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* Fill in m's fields and name index; queue the message types they use. */
static rpc_status build_message(gw_json_schema *s, jmsg *m, gw_json_error *err)
{
	const ProtobufCMessageDescriptor *d = m->desc;
	rpc_status st = classify(m, err);
	if (st != RPC_STATUS_OK)
		return st;
	if (d->n_fields > 0xfffe) {
		set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL, "%s has too many fields",
		          d->name);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	m->n_fields = d->n_fields;
	size_t size = 8;
	while (size < (size_t)d->n_fields * 4)
		size *= 2;
	m->fields = calloc(d->n_fields ? d->n_fields : 1, sizeof(*m->fields));
	m->index = calloc(size, sizeof(*m->index));
	if (m->fields == NULL || m->index == NULL)
		goto oom;
	m->index_mask = (uint32_t)(size - 1);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		jfield *f = &m->fields[i];
		if (!is_identifier(fd->name)) {
			set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL,
			          "%s: field name \"%.64s\" is not an identifier", d->name,
			          fd->name != NULL ? fd->name : "");
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		f->fd = fd;
		f->name_len = strlen(fd->name);
		f->json_name = json_name_of(fd->name, &f->json_len);
		if (f->json_name == NULL)
			goto oom;
		f->key_len = f->json_len + 3;
		f->key = malloc(f->key_len + 1);
		if (f->key == NULL)
			goto oom;
		snprintf(f->key, f->key_len + 1, "\"%s\":", f->json_name);
		if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			for (unsigned j = 0; j < i && f->oneof == 0; j++)
				if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
				    d->fields[j].quantifier_offset == fd->quantifier_offset)
					f->oneof = m->fields[j].oneof;
			if (f->oneof == 0)
				f->oneof = ++m->n_oneofs;
		}
		if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			f->is_map = is_map_entry(d, fd);
			st = schema_add(s, fd->descriptor, err);
			if (st != RPC_STATUS_OK)
				return st;
		} else if (fd->type == PROTOBUF_C_TYPE_ENUM && fd->descriptor == NULL) {
			set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL,
			          "%s.%s: enum without descriptor", d->name, fd->name);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		if (index_insert(m, fd->name, f->name_len, i, err) != 0 ||
		    index_insert(m, f->json_name, f->json_len, i, err) != 0)
			return RPC_STATUS_INVALID_ARGUMENT;
	}
	return RPC_STATUS_OK;
oom:
	set_error(err, RPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory building the schema");
	return RPC_STATUS_RESOURCE_EXHAUSTED;
}

/* Map entries must have keys a JSON object key can stand for. */
static rpc_status check_map(const jmsg *m, const jfield *f, gw_json_error *err)
{
	switch (f->msg->fields[0].fd->type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_MESSAGE:
		set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL, "%s.%s: map key type not allowed",
		          m->desc->name, f->fd->name);
		return RPC_STATUS_INVALID_ARGUMENT;
	default:
		return RPC_STATUS_OK;
	}
}

rpc_status gw_json_schema_new(gw_json_schema **out, const ProtobufCMessageDescriptor *const *roots,
                              size_t n_roots, const gw_json_limits *limits, gw_json_error *err)
{
	rpc_status st;
	*out = NULL;
	if (roots == NULL && n_roots > 0) {
		set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL, "no descriptors");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	gw_json_schema *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->table = calloc(64, sizeof(*s->table))) == NULL) {
		free(s);
		set_error(err, RPC_STATUS_RESOURCE_EXHAUSTED, NULL,
		          "out of memory building the schema");
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	s->table_mask = 63;
	s->limits.max_depth = limits && limits->max_depth ? limits->max_depth : DEFAULT_MAX_DEPTH;
	s->limits.max_values =
	    limits && limits->max_values ? limits->max_values : DEFAULT_MAX_VALUES;
	for (size_t i = 0; i < n_roots; i++) {
		st = schema_add(s, roots[i], err);
		if (st != RPC_STATUS_OK)
			goto fail;
	}
	/* Breadth first: build_message() appends the types it meets. */
	for (size_t i = 0; i < s->n_msgs; i++) {
		st = build_message(s, s->msgs[i], err);
		if (st != RPC_STATUS_OK)
			goto fail;
	}
	for (size_t i = 0; i < s->n_msgs; i++) {
		jmsg *m = s->msgs[i];
		for (unsigned j = 0; j < m->n_fields; j++) {
			jfield *f = &m->fields[j];
			if (f->fd->type != PROTOBUF_C_TYPE_MESSAGE)
				continue;
			f->msg = schema_lookup(s, f->fd->descriptor);
			if (f->is_map && (st = check_map(m, f, err)) != RPC_STATUS_OK)
				goto fail;
		}
	}
	*out = s;
	return RPC_STATUS_OK;
fail:
	gw_json_schema_free(s);
	return st;
}

rpc_status gw_json_schema_from_routes(gw_json_schema **out, const rpc_route_table *table,
                                      const gw_json_limits *limits, gw_json_error *err)
{
	*out = NULL;
	if (table == NULL || (table->routes == NULL && table->n_routes > 0)) {
		set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL, "no route table");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	size_t n = 0;
	const ProtobufCMessageDescriptor **roots =
	    malloc((table->n_routes ? table->n_routes : 1) * 2 * sizeof(*roots));
	if (roots == NULL) {
		set_error(err, RPC_STATUS_RESOURCE_EXHAUSTED, NULL,
		          "out of memory building the schema");
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < table->n_routes; i++) {
		const rpc_method_desc *md = table->routes[i].method;
		if (md == NULL || md->input == NULL || md->output == NULL) {
			free(roots);
			set_error(err, RPC_STATUS_INVALID_ARGUMENT, NULL, "route %zu has no method",
			          i);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		roots[n++] = md->input;
		roots[n++] = md->output;
	}
	rpc_status st = gw_json_schema_new(out, roots, n, limits, err);
	free(roots);
	return st;
}

/* ---- shared by decoding and text values -------------------------------- */

/* Bytes one element of a field of this type takes in its array. */
static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(int64_t);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return sizeof(int32_t);
	}
}

static int is_pow2(size_t n)
{
	return (n & (n - 1)) == 0;
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 1;
	while (c < n)
		c *= 2;
	return c;
}

#define AT(msg, off) ((void *)((char *)(msg) + (off)))

static uint32_t *oneof_case(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	return AT(msg, fd->quantifier_offset);
}

/* Record that a singular field was set: its oneof case or has_ flag. */
static void mark_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*oneof_case(msg, fd) = fd->id;
	else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->type != PROTOBUF_C_TYPE_STRING &&
	         fd->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)AT(msg, fd->quantifier_offset) = 1;
}

/* Before a oneof member is set: unless it is the one set, unset the oneof
 * and clear the member's bytes of the union. */
static void oneof_switch(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	if (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || *oneof_case(msg, fd) == fd->id)
		return;
	*oneof_case(msg, fd) = 0;
	memset(AT(msg, fd->offset), 0, elem_size(fd->type));
}

/* JSON null: the field's default, unset. */
static void clear_field(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	void *slot = AT(msg, fd->offset);
	if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
		*(size_t *)AT(msg, fd->quantifier_offset) = 0;
		*(void **)slot = NULL;
		return;
	}
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*oneof_case(msg, fd) == fd->id) {
			*oneof_case(msg, fd) = 0;
			memset(slot, 0, elem_size(fd->type));
		}
		return;
	}
	if (fd->type == PROTOBUF_C_TYPE_STRING) {
		*(char **)slot =
		    fd->label == PROTOBUF_C_LABEL_OPTIONAL ? NULL : (char *)protobuf_c_empty_string;
		return;
	}
	memset(slot, 0, elem_size(fd->type));
	if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)AT(msg, fd->quantifier_offset) = 0;
}

/* Where errors are reported from: a chain of frames on the C stack. */
enum { FRAME_KEY, FRAME_INDEX, FRAME_MAPKEY };
typedef struct frame {
	const struct frame *up;
	int kind;
	const char *key; /* FRAME_KEY, FRAME_MAPKEY */
	size_t key_len;
	size_t index; /* FRAME_INDEX */
} frame;

typedef struct dec {
	const gw_json_schema *s;
	ProtobufCAllocator *a;
	gw_json_error *err;
	size_t values_left;
	unsigned max_depth;
	gw_json_reader r; /* decode only */
} dec;

static void path_append(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (*o >= cap - 1)
		return;
	if (n > cap - 1 - *o)
		n = cap - 1 - *o;
	memcpy(out + *o, s, n);
	*o += n;
}

static void path_write(const frame *f, char *out, size_t cap, size_t *o)
{
	if (f == NULL)
		return;
	path_write(f->up, out, cap, o);
	char tmp[32];
	switch (f->kind) {
	case FRAME_KEY:
		if (*o > 0)
			path_append(out, cap, o, ".", 1);
		path_append(out, cap, o, f->key, f->key_len);
		break;
	case FRAME_INDEX:
		snprintf(tmp, sizeof(tmp), "[%zu]", f->index);
		path_append(out, cap, o, tmp, strlen(tmp));
		break;
	default:
		path_append(out, cap, o, "[", 1);
		path_append(out, cap, o, f->key, f->key_len);
		path_append(out, cap, o, "]", 1);
	}
}

static rpc_status fail(dec *d, const frame *at, rpc_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static rpc_status fail(dec *d, const frame *at, rpc_status code, const char *fmt, ...)
{
	gw_json_error *err = d->err;
	if (err == NULL)
		return code;
	err->code = code;
	size_t o = 0;
	path_write(at, err->field, sizeof(err->field), &o);
	err->field[o] = '\0';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->description, sizeof(err->description), fmt, ap);
	va_end(ap);
	return code;
}

static rpc_status oom(dec *d)
{
	return fail(d, NULL, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory decoding the request");
}

static void *dalloc(dec *d, size_t n)
{
	return d->a->alloc(d->a->allocator_data, n ? n : 1);
}

static void *dalloc_array(dec *d, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return dalloc(d, n * size);
}

static ProtobufCMessage *new_message(dec *d, const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = dalloc(d, desc->sizeof_message);
	if (m != NULL)
		protobuf_c_message_init(desc, m);
	return m;
}

static char *dstrdup(dec *d, const char *s, size_t n)
{
	if (n == 0)
		return (char *)protobuf_c_empty_string;
	char *p = n < SIZE_MAX ? dalloc(d, n + 1) : NULL;
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* One more element slot at the end of repeated field fd, zeroed; NULL when
 * out of memory. Arrays of this module have power-of-two capacities. */
static void *append_slot(dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	size_t *np = AT(msg, fd->quantifier_offset);
	void **ap = AT(msg, fd->offset);
	size_t n = *np, esz = elem_size(fd->type);
	if (n == 0 || is_pow2(n)) {
		size_t cap = n == 0 ? 1 : n * 2;
		void *arr = cap > n ? dalloc_array(d, cap, esz) : NULL;
		if (arr == NULL)
			return NULL;
		if (n > 0)
			memcpy(arr, *ap, n * esz);
		*ap = arr;
	}
	void *slot = (char *)*ap + n * esz;
	memset(slot, 0, esz);
	*np = n + 1;
	return slot;
}

/* JSON number grammar over s[0..n); *plain: no fraction, no exponent. */
static int number_syntax(const char *s, size_t n, int *plain)
{
	size_t i = 0;
	*plain = 1;
	if (i < n && s[i] == '-')
		i++;
	if (i == n)
		return 0;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return 0;
	}
	if (i < n && s[i] == '.') {
		*plain = 0;
		size_t start = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		*plain = 0;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t start = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	return i == n;
}

/* strtod over a number text already checked by number_syntax(). */
static int text_strtod(const char *s, size_t n, double *out)
{
	char tmp[NUMBER_TEXT_MAX + 1];
	if (n > NUMBER_TEXT_MAX)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*out = strtod(tmp, NULL);
	return 0;
}

/*
 * A JSON number with a fraction or exponent ("1e3", "5.0") for an integer
 * field: accepted when its double is an integer below 2^53 in magnitude,
 * where doubles are exact. Returns "" and the value (*is when negative, *us
 * otherwise), NULL when outside [min, max], or why it is not an integer.
 */
static const char *real_to_int(double r, int64_t min, uint64_t max, int64_t *is, uint64_t *us)
{
	if (!isfinite(r) || r != trunc(r))
		return "not an integer";
	if (r < (double)min || r > (double)max)
		return NULL;             /* caller reports the range */
	if (fabs(r) >= EXACT_DOUBLE_MAX) /* 2^53 + 1 reads as 2^53: refuse both */
		return "too large to be exact as a JSON number; send it as a string";
	if (r < 0)
		*is = (int64_t)r;
	else
		*us = (uint64_t)r;
	return "";
}

/*
 * The integer that text s[0..n) stands for, in [min, max] (signed) or
 * [0, umax] (unsigned, min = 0): *why NULL and the value, or *why set.
 */
static void text_to_int(const char *s, size_t n, int64_t min, uint64_t umax, int64_t *iv,
                        uint64_t *uv, const char **why)
{
	int plain;
	*iv = 0;
	*uv = 0;
	if (!number_syntax(s, n, &plain)) {
		*why = "not a number";
		return;
	}
	if (!plain) {
		double r;
		if (text_strtod(s, n, &r) != 0) {
			*why = "number text too long";
			return;
		}
		int64_t is = 0;
		uint64_t us = 0;
		const char *w = real_to_int(r, min, umax, &is, &us);
		if (w == NULL) {
			*why = "out of range";
			return;
		}
		if (w[0] != '\0') {
			*why = w;
			return;
		}
		*iv = r < 0 ? is : 0;
		*uv = r < 0 ? 0 : us;
		*why = NULL;
		return;
	}
	int neg = s[0] == '-';
	uint64_t v = 0;
	for (size_t i = neg; i < n; i++) {
		unsigned dgt = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - dgt) / 10) {
			*why = "out of range";
			return;
		}
		v = v * 10 + dgt;
	}
	if (neg) {
		/* -v >= min, with min <= 0 */
		if (v > (uint64_t)0 - (uint64_t)min) {
			*why = "out of range";
			return;
		}
		*iv = v == 0 ? 0 : (int64_t)(0 - v);
	} else {
		if (v > umax) {
			*why = "out of range";
			return;
		}
		*uv = v;
	}
	*why = NULL;
}

/*
 * Check that the finite double *x has a float value: beyond FLT_MAX but
 * below the midpoint to 2^128 it rounds to FLT_MAX (as "3.4028235e38", the
 * shortest text of FLT_MAX, does), so clamp it there; past that it is out
 * of range. NULL when fine, else why. Converting an out-of-range double to
 * float would be undefined behaviour.
 */
static const char *to_float(double *x)
{
	if (!isfinite(*x) || fabs(*x) <= FLT_MAX)
		return NULL;
	if (fabs(*x) >= 0x1.ffffffp127)
		return "out of range";
	*x = copysign(FLT_MAX, *x);
	return NULL;
}

/* "NaN", "Infinity", "-Infinity" or a JSON number, as a double (float). */
static const char *text_to_double(const char *s, size_t n, int is_float, double *out)
{
	int plain;
	if (n == 3 && memcmp(s, "NaN", 3) == 0) {
		*out = NAN;
		return NULL;
	}
	if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
		*out = INFINITY;
		return NULL;
	}
	if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
		*out = -INFINITY;
		return NULL;
	}
	if (!number_syntax(s, n, &plain))
		return "not a number";
	if (text_strtod(s, n, out) != 0)
		return "number text too long";
	if (isinf(*out))
		return "out of range";
	return is_float ? to_float(out) : NULL;
}

static const char *type_name(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return "int32";
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return "uint32";
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return "int64";
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return "uint64";
	case PROTOBUF_C_TYPE_FLOAT:
		return "float";
	case PROTOBUF_C_TYPE_DOUBLE:
		return "double";
	case PROTOBUF_C_TYPE_BOOL:
		return "bool";
	case PROTOBUF_C_TYPE_ENUM:
		return "enum";
	case PROTOBUF_C_TYPE_STRING:
		return "string";
	case PROTOBUF_C_TYPE_BYTES:
		return "bytes";
	default:
		return "message";
	}
}

/* Store an integer of field type t; the range was checked for t. */
static void store_int(ProtobufCType t, void *slot, int64_t iv, uint64_t uv)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)slot = (int32_t)(iv != 0 ? iv : (int64_t)uv);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)slot = (uint32_t)uv;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)slot = uv;
		break;
	default:
		*(int64_t *)slot = iv != 0 ? iv : (int64_t)uv;
	}
}

static void int_range(ProtobufCType t, int64_t *min, uint64_t *max)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*min = INT32_MIN;
		*max = INT32_MAX;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*min = 0;
		*max = UINT32_MAX;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*min = 0;
		*max = UINT64_MAX;
		break;
	default:
		*min = INT64_MIN;
		*max = INT64_MAX;
	}
}

static int is_integer_type(ProtobufCType t)
{
	return t <= PROTOBUF_C_TYPE_FIXED64;
}

/* Enum value `name` (not NUL-terminated) of ed, or NULL. */
static const ProtobufCEnumValue *enum_by_name(const ProtobufCEnumDescriptor *ed, const char *name,
                                              size_t n)
{
	char tmp[256];
	if (n >= sizeof(tmp) || memchr(name, '\0', n) != NULL)
		return NULL;
	memcpy(tmp, name, n);
	tmp[n] = '\0';
	return protobuf_c_enum_descriptor_get_value_by_name(ed, tmp);
}

/* A FieldMask path as JSON or text has it ("shippingAddress.zipCode"), as
 * the proto path ("shipping_address.zip_code"); NULL and *why when not a
 * path of identifiers. */
static char *mask_path(dec *d, const char *s, size_t n, const char **why)
{
	size_t extra = 0;
	int prev_dot = 1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (c == '.') {
			if (prev_dot) {
				*why = "field mask path with an empty component";
				return NULL;
			}
			prev_dot = 1;
			continue;
		}
		if (!alpha && !(c >= '0' && c <= '9' && !prev_dot)) {
			*why = "field mask path is not dotted field names";
			return NULL;
		}
		prev_dot = 0;
		extra += c >= 'A' && c <= 'Z';
	}
	if (prev_dot) {
		*why = n == 0 ? "empty field mask path" : "field mask path with an empty component";
		return NULL;
	}
	char *out = n + extra < SIZE_MAX ? dalloc(d, n + extra + 1) : NULL;
	if (out == NULL) {
		*why = NULL;
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z') {
			out[o++] = '_';
			c = (char)(c - 'A' + 'a');
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

/* Append the comma-separated paths of s[0..n) to FieldMask `mask`. */
static rpc_status mask_add(dec *d, const frame *at, const jmsg *mm, ProtobufCMessage *mask,
                           const char *s, size_t n)
{
	const ProtobufCFieldDescriptor *fd = mm->fields[0].fd;
	size_t start = 0;
	if (n == 0)
		return RPC_STATUS_OK;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ',')
			continue;
		const char *why = NULL;
		char *p = mask_path(d, s + start, i - start, &why);
		if (p == NULL)
			return why != NULL ? fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "%s", why)
			                   : oom(d);
		char **slot = append_slot(d, mask, fd);
		if (slot == NULL)
			return oom(d);
		*slot = p;
		start = i + 1;
	}
	return RPC_STATUS_OK;
}

static void set_ts(const jmsg *m, ProtobufCMessage *msg, int64_t seconds, int32_t nanos)
{
	*(int64_t *)AT(msg, m->fields[0].fd->offset) = seconds;
	*(int32_t *)AT(msg, m->fields[1].fd->offset) = nanos;
}

/* The value of a well-known message type given as a string (JSON or text)
 * into msg: Timestamp, Duration, FieldMask (whose paths it appends). */
static rpc_status wkt_from_string(dec *d, const frame *at, const jmsg *m, ProtobufCMessage *msg,
                                  const char *s, size_t n)
{
	const char *why = NULL;
	int64_t sec;
	int32_t ns;
	switch (m->wkt) {
	case WKT_TIMESTAMP:
		if (gw_json_timestamp_parse(s, n, &sec, &ns, &why) != 0)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "%s", why);
		set_ts(m, msg, sec, ns);
		return RPC_STATUS_OK;
	case WKT_DURATION:
		if (gw_json_duration_parse(s, n, &sec, &ns, &why) != 0)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "%s", why);
		set_ts(m, msg, sec, ns);
		return RPC_STATUS_OK;
	case WKT_FIELD_MASK:
		return mask_add(d, at, m, msg, s, n);
	default:
		return fail(d, at, RPC_STATUS_INTERNAL, "not a string type");
	}
}

/* ---- decoding JSON ----------------------------------------------------- */

/* The keys of the body, for gw_json_presence: one list, grown in the
 * arena; a context per object level that records into it. */
typedef struct presence_list {
	gw_json_present_field *fields;
	size_t n, cap;
} presence_list;

typedef struct presence_ctx {
	presence_list *list;
	const ProtobufCFieldDescriptor *parent; /* NULL at the top level */
	size_t added;                           /* keys this level recorded */
} presence_ctx;

static rpc_status presence_add(dec *d, presence_ctx *pc, const ProtobufCFieldDescriptor *field,
                               const ProtobufCFieldDescriptor *child)
{
	presence_list *l = pc->list;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		gw_json_present_field *v = dalloc_array(d, cap, sizeof(*v));
		if (v == NULL)
			return oom(d);
		if (l->n > 0)
			memcpy(v, l->fields, l->n * sizeof(*v));
		l->fields = v;
		l->cap = cap;
	}
	l->fields[l->n].field = field;
	l->fields[l->n].child = child;
	l->n++;
	pc->added++;
	return RPC_STATUS_OK;
}

static const char *token_kind(const gw_json_token *t)
{
	switch (t->kind) {
	case GW_JSON_OBJECT:
		return "an object";
	case GW_JSON_ARRAY:
		return "an array";
	case GW_JSON_STRING:
		return "a string";
	case GW_JSON_NUMBER:
		return "a number";
	case GW_JSON_TRUE:
	case GW_JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static rpc_status syntax_error(dec *d)
{
	int line, column;
	gw_json_reader_position(&d->r, d->r.error_at, &line, &column);
	return fail(d, NULL, RPC_STATUS_INVALID_ARGUMENT, "malformed JSON at line %d column %d: %s",
	            line, column, d->r.error != NULL ? d->r.error : "unexpected input");
}

static rpc_status next_value(dec *d, gw_json_token *t)
{
	return gw_json_read_value(&d->r, t) == 0 ? RPC_STATUS_OK : syntax_error(d);
}

/*
 * The value of a string token: its text as is when it has no escapes and
 * `copy` is 0 (then not NUL-terminated), else unescaped into a NUL-terminated
 * copy from the allocator ("" needs none).
 */
static rpc_status token_string(dec *d, const gw_json_token *t, int copy, const char **s, size_t *n)
{
	if (!t->escaped && !copy) {
		*s = t->text;
		*n = t->len;
		return RPC_STATUS_OK;
	}
	if (t->len == 0) {
		*s = protobuf_c_empty_string;
		*n = 0;
		return RPC_STATUS_OK;
	}
	char *p = t->len < SIZE_MAX ? dalloc(d, t->len + 1) : NULL;
	if (p == NULL)
		return oom(d);
	*n = t->escaped ? gw_json_unescape(t->text, t->len, p) : t->len;
	if (!t->escaped)
		memcpy(p, t->text, t->len);
	p[*n] = '\0';
	*s = p;
	return RPC_STATUS_OK;
}

static rpc_status count_value(dec *d, const frame *at)
{
	if (d->values_left == 0)
		return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "more than %zu values in the body",
		            d->s->limits.max_values);
	d->values_left--;
	return RPC_STATUS_OK;
}

static rpc_status check_depth(dec *d, const frame *at, unsigned depth)
{
	if (depth + 1 > d->max_depth)
		return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "nested deeper than %u levels",
		            d->max_depth);
	return RPC_STATUS_OK;
}

static rpc_status decode_message(dec *d, const frame *at, const jmsg *m, ProtobufCMessage *msg,
                                 const gw_json_token *t, unsigned depth, presence_ctx *pc);

static rpc_status decode_scalar(dec *d, const frame *at, const jfield *f, void *slot,
                                const gw_json_token *t)
{
	ProtobufCType type = f->fd->type;
	const char *s;
	size_t n;
	rpc_status st;
	if (is_integer_type(type)) {
		int64_t min, iv;
		uint64_t max, uv;
		const char *why;
		int_range(type, &min, &max);
		if (t->kind == GW_JSON_NUMBER) {
			s = t->text;
			n = t->len;
		} else if (t->kind == GW_JSON_STRING) {
			if ((st = token_string(d, t, 0, &s, &n)) != RPC_STATUS_OK)
				return st;
		} else {
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "expected an integer (%s), got %s", type_name(type),
			            token_kind(t));
		}
		text_to_int(s, n, min, max, &iv, &uv, &why);
		if (why != NULL)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "%s for %s", why,
			            type_name(type));
		store_int(type, slot, iv, uv);
		return RPC_STATUS_OK;
	}
	switch (type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double x;
		if (t->kind == GW_JSON_NUMBER) {
			s = t->text;
			n = t->len;
		} else if (t->kind == GW_JSON_STRING) {
			if ((st = token_string(d, t, 0, &s, &n)) != RPC_STATUS_OK)
				return st;
		} else {
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "expected a number, got %s",
			            token_kind(t));
		}
		const char *why = text_to_double(s, n, type == PROTOBUF_C_TYPE_FLOAT, &x);
		if (why != NULL)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "%s for %s", why,
			            type_name(type));
		if (type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)slot = (float)x;
		else
			*(double *)slot = x;
		return RPC_STATUS_OK;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (t->kind != GW_JSON_TRUE && t->kind != GW_JSON_FALSE)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "expected true or false, got %s", token_kind(t));
		*(protobuf_c_boolean *)slot = t->kind == GW_JSON_TRUE;
		return RPC_STATUS_OK;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->fd->descriptor;
		const ProtobufCEnumValue *ev = NULL;
		if (t->kind == GW_JSON_STRING) {
			if ((st = token_string(d, t, 0, &s, &n)) != RPC_STATUS_OK)
				return st;
			ev = enum_by_name(ed, s, n);
			if (ev == NULL)
				return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
				            "unknown value \"%.*s\" of enum %s",
				            (int)(n > 64 ? 64 : n), s, ed->name);
		} else if (t->kind == GW_JSON_NUMBER) {
			int64_t iv;
			uint64_t uv;
			const char *why;
			text_to_int(t->text, t->len, INT32_MIN, INT32_MAX, &iv, &uv, &why);
			if (why == NULL)
				ev = protobuf_c_enum_descriptor_get_value(
				    ed, (int)(iv != 0 ? iv : (int64_t)uv));
			if (ev == NULL)
				return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
				            "unknown number %.*s of enum %s",
				            (int)(t->len > 32 ? 32 : t->len), t->text, ed->name);
		} else {
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "expected an enum name (string), got %s", token_kind(t));
		}
		*(int *)slot = ev->value;
		return RPC_STATUS_OK;
	}
	case PROTOBUF_C_TYPE_STRING:
		if (t->kind != GW_JSON_STRING)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "expected a string, got %s",
			            token_kind(t));
		if ((st = token_string(d, t, 1, &s, &n)) != RPC_STATUS_OK)
			return st;
		*(char **)slot = (char *)s;
		return RPC_STATUS_OK;
	case PROTOBUF_C_TYPE_BYTES: {
		if (t->kind != GW_JSON_STRING)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "expected a base64 string, got %s", token_kind(t));
		if ((st = token_string(d, t, 0, &s, &n)) != RPC_STATUS_OK)
			return st;
		size_t len = 0, cap = base64_decoded_max(n);
		uint8_t *p = dalloc(d, cap);
		if (p == NULL)
			return oom(d);
		if (base64_decode(s, n, BYTES_IN, p, cap, &len) != 0)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "not valid base64");
		((ProtobufCBinaryData *)slot)->data = p;
		((ProtobufCBinaryData *)slot)->len = len;
		return RPC_STATUS_OK;
	}
	default:
		return fail(d, at, RPC_STATUS_INTERNAL, "unexpected field type");
	}
}

/* One value (not null) of field f into slot: a singular field, an array
 * element or a map value. Message slots are created when NULL. */
static rpc_status decode_value(dec *d, const frame *at, const jfield *f, void *slot,
                               const gw_json_token *t, unsigned depth, presence_ctx *pc)
{
	rpc_status st = count_value(d, at);
	if (st != RPC_STATUS_OK)
		return st;
	if (f->fd->type != PROTOBUF_C_TYPE_MESSAGE)
		return decode_scalar(d, at, f, slot, t);
	ProtobufCMessage **pp = slot;
	if (*pp == NULL && (*pp = new_message(d, f->msg->desc)) == NULL)
		return oom(d);
	return decode_message(d, at, f->msg, *pp, t, depth, pc);
}

/* Room for one more element in an array being built: capacities are powers
 * of two from 4, as append_slot() expects. */
static void *grow(dec *d, void *arr, size_t n, size_t *cap, size_t esz)
{
	if (n < *cap)
		return arr;
	size_t c = *cap ? *cap * 2 : 4;
	void *v = dalloc_array(d, c, esz);
	if (v == NULL)
		return NULL;
	if (n > 0)
		memcpy(v, arr, n * esz);
	*cap = c;
	return v;
}

static rpc_status decode_repeated(dec *d, const frame *at, const jfield *f, ProtobufCMessage *msg,
                                  const gw_json_token *t, unsigned depth)
{
	const ProtobufCFieldDescriptor *fd = f->fd;
	if (t->kind != GW_JSON_ARRAY)
		return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "expected an array, got %s",
		            token_kind(t));
	rpc_status st;
	if ((st = check_depth(d, at, depth)) != RPC_STATUS_OK || (st = count_value(d, at)) != 0)
		return st;
	size_t n = 0, cap = 0, esz = elem_size(fd->type);
	char *arr = NULL;
	int first = 1, k;
	while ((k = gw_json_read_next(&d->r, &first)) == 1) {
		frame el = {at, FRAME_INDEX, NULL, 0, n};
		gw_json_token v;
		if ((st = next_value(d, &v)) != RPC_STATUS_OK)
			return st;
		if (v.kind == GW_JSON_NULL)
			return fail(d, &el, RPC_STATUS_INVALID_ARGUMENT, "null in an array");
		if ((arr = grow(d, arr, n, &cap, esz)) == NULL)
			return oom(d);
		memset(arr + n * esz, 0, esz);
		st = decode_value(d, &el, f, arr + n * esz, &v, depth + 1, NULL);
		if (st != RPC_STATUS_OK)
			return st;
		n++;
	}
	if (k < 0)
		return syntax_error(d);
	/* Committed whole: a failure above left the field as it was. */
	*(size_t *)AT(msg, fd->quantifier_offset) = n;
	*(void **)AT(msg, fd->offset) = n > 0 ? arr : NULL;
	return RPC_STATUS_OK;
}

/* A JSON object key as a map key of field type kf into the entry. */
static rpc_status map_key(dec *d, const frame *at, const jfield *kf, ProtobufCMessage *entry,
                          const char *key, size_t n)
{
	void *slot = AT(entry, kf->fd->offset);
	ProtobufCType t = kf->fd->type;
	if (t == PROTOBUF_C_TYPE_STRING) {
		char *p = dstrdup(d, key, n);
		if (p == NULL)
			return oom(d);
		*(char **)slot = p;
		return RPC_STATUS_OK;
	}
	if (t == PROTOBUF_C_TYPE_BOOL) {
		if (n == 4 && memcmp(key, "true", 4) == 0)
			*(protobuf_c_boolean *)slot = 1;
		else if (n == 5 && memcmp(key, "false", 5) == 0)
			*(protobuf_c_boolean *)slot = 0;
		else
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "map key must be \"true\" or \"false\"");
		return RPC_STATUS_OK;
	}
	/* Integers: canonical decimal only, so that distinct keys are
	 * distinct numbers ("1" and "01" cannot both name entry 1). */
	int64_t min, iv;
	uint64_t max, uv;
	const char *why = NULL;
	int plain = 0;
	int_range(t, &min, &max);
	if (!number_syntax(key, n, &plain) || !plain || (n == 2 && memcmp(key, "-0", 2) == 0))
		return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "map key is not a decimal %s",
		            type_name(t));
	text_to_int(key, n, min, max, &iv, &uv, &why);
	if (why != NULL)
		return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "map key %s for %s", why,
		            type_name(t));
	store_int(t, slot, iv, uv);
	return RPC_STATUS_OK;
}

typedef struct map_seen {
	const char *key;
	size_t len;
} map_seen;

static int map_seen_cmp(const void *a, const void *b)
{
	const map_seen *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->key, y->key, x->len);
}

static rpc_status decode_map(dec *d, const frame *at, const jfield *f, ProtobufCMessage *msg,
                             const gw_json_token *t, unsigned depth)
{
	const ProtobufCFieldDescriptor *fd = f->fd;
	const jmsg *em = f->msg;
	if (t->kind != GW_JSON_OBJECT)
		return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "expected an object (map), got %s",
		            token_kind(t));
	rpc_status st;
	if ((st = check_depth(d, at, depth)) != RPC_STATUS_OK || (st = count_value(d, at)) != 0)
		return st;
	size_t n = 0, cap = 0, kcap = 0;
	ProtobufCMessage **arr = NULL;
	map_seen *keys = NULL;
	int first = 1, k;
	gw_json_token kt, v;
	while ((k = gw_json_read_key(&d->r, &first, &kt)) == 1) {
		const char *key;
		size_t klen;
		if ((st = token_string(d, &kt, 0, &key, &klen)) != RPC_STATUS_OK)
			return st;
		frame kf = {at, FRAME_MAPKEY, key, klen, 0};
		if ((st = next_value(d, &v)) != RPC_STATUS_OK)
			return st;
		if (v.kind == GW_JSON_NULL)
			return fail(d, &kf, RPC_STATUS_INVALID_ARGUMENT, "null as a map value");
		ProtobufCMessage *entry = new_message(d, em->desc);
		if (entry == NULL || (arr = grow(d, arr, n, &cap, sizeof(*arr))) == NULL ||
		    (keys = grow(d, keys, n, &kcap, sizeof(*keys))) == NULL)
			return oom(d);
		if ((st = map_key(d, &kf, &em->fields[0], entry, key, klen)) != RPC_STATUS_OK)
			return st;
		st = decode_value(d, &kf, &em->fields[1], AT(entry, em->fields[1].fd->offset), &v,
		                  depth + 1, NULL);
		if (st != RPC_STATUS_OK)
			return st;
		arr[n] = entry;
		keys[n].key = key;
		keys[n].len = klen;
		n++;
	}
	if (k < 0)
		return syntax_error(d);
	/* Two entries for one key: sorted, they are neighbours. */
	if (n > 1) {
		qsort(keys, n, sizeof(*keys), map_seen_cmp);
		for (size_t i = 1; i < n; i++) {
			if (map_seen_cmp(&keys[i - 1], &keys[i]) == 0) {
				frame kf = {at, FRAME_MAPKEY, keys[i].key, keys[i].len, 0};
				return fail(d, &kf, RPC_STATUS_INVALID_ARGUMENT,
				            "duplicate map key");
			}
		}
	}
	*(size_t *)AT(msg, fd->quantifier_offset) = n;
	*(void **)AT(msg, fd->offset) = n > 0 ? arr : NULL;
	return RPC_STATUS_OK;
}

/* Field f of msg from the value whose token is t (null included). */
static rpc_status decode_field(dec *d, const frame *at, const jfield *f, ProtobufCMessage *msg,
                               const gw_json_token *t, unsigned depth, presence_ctx *pc)
{
	const ProtobufCFieldDescriptor *fd = f->fd;
	if (t->kind == GW_JSON_NULL) {
		clear_field(msg, fd);
		return count_value(d, at);
	}
	if (f->is_map)
		return decode_map(d, at, f, msg, t, depth);
	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return decode_repeated(d, at, f, msg, t, depth);
	oneof_switch(msg, fd);
	rpc_status st = decode_value(d, at, f, AT(msg, fd->offset), t, depth, pc);
	if (st == RPC_STATUS_OK)
		mark_present(msg, fd);
	return st;
}

/* A plain message field (not repeated, map or well-known type), whose keys
 * gw_json_fill_update_mask() may list one level down. */
static int is_plain_message(const jfield *f)
{
	return f->fd->type == PROTOBUF_C_TYPE_MESSAGE &&
	       f->fd->label != PROTOBUF_C_LABEL_REPEATED && f->msg->wkt == WKT_NONE;
}

static rpc_status decode_object(dec *d, const frame *at, const jmsg *m, ProtobufCMessage *msg,
                                const gw_json_token *t, unsigned depth, presence_ctx *pc)
{
	if (t->kind != GW_JSON_OBJECT)
		return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "expected an object, got %s",
		            token_kind(t));
	rpc_status st = check_depth(d, at, depth);
	if (st != RPC_STATUS_OK)
		return st;
	/* Which fields (and oneofs, by the field that set them) this object
	 * named already: a field given twice (by one name or both), two
	 * members of a oneof. */
	uint64_t seen_small[4] = {0};
	unsigned oneof_small[16] = {0};
	uint64_t *seen = seen_small;
	unsigned *oneof_by = oneof_small;
	if (m->n_fields > 256) {
		seen = dalloc_array(d, (m->n_fields + 63) / 64, sizeof(*seen));
		if (seen == NULL)
			return oom(d);
		memset(seen, 0, (m->n_fields + 63) / 64 * sizeof(*seen));
	}
	if (m->n_oneofs > 16) {
		oneof_by = dalloc_array(d, m->n_oneofs, sizeof(*oneof_by));
		if (oneof_by == NULL)
			return oom(d);
		memset(oneof_by, 0, m->n_oneofs * sizeof(*oneof_by));
	}
	int first = 1, k;
	gw_json_token kt, v;
	char kbuf[128];
	while ((k = gw_json_read_key(&d->r, &first, &kt)) == 1) {
		const char *key = kt.text;
		size_t klen = kt.len;
		if (kt.escaped && kt.len <= sizeof(kbuf)) {
			klen = gw_json_unescape(kt.text, kt.len, kbuf);
			key = kbuf;
		} else if (kt.escaped && (st = token_string(d, &kt, 1, &key, &klen)) != 0) {
			return st;
		}
		frame kf = {at, FRAME_KEY, key, klen, 0};
		const jfield *f = field_lookup(m, key, klen);
		if (f == NULL)
			return fail(d, &kf, RPC_STATUS_INVALID_ARGUMENT, "unknown field");
		size_t idx = (size_t)(f - m->fields);
		if (seen[idx / 64] & (1ull << (idx % 64)))
			return fail(d, &kf, RPC_STATUS_INVALID_ARGUMENT,
			            "field given twice (as \"%s\" or \"%s\")", f->json_name,
			            f->fd->name);
		seen[idx / 64] |= 1ull << (idx % 64);
		if (f->oneof != 0) {
			unsigned *by = &oneof_by[f->oneof - 1];
			if (*by != 0)
				return fail(d, &kf, RPC_STATUS_INVALID_ARGUMENT,
				            "\"%s\" and \"%s\" are members of one oneof: set one",
				            m->fields[*by - 1].json_name, f->json_name);
			*by = (unsigned)idx + 1;
		}
		if ((st = next_value(d, &v)) != RPC_STATUS_OK)
			return st;
		presence_ctx child = {NULL, NULL, 0};
		presence_ctx *cpc = NULL;
		if (pc != NULL && pc->parent == NULL) {
			if (is_plain_message(f) && v.kind == GW_JSON_OBJECT) {
				child.list = pc->list;
				child.parent = f->fd;
				cpc = &child;
			} else if ((st = presence_add(d, pc, f->fd, NULL)) != RPC_STATUS_OK) {
				return st;
			}
		} else if (pc != NULL && (st = presence_add(d, pc, pc->parent, f->fd)) != 0) {
			return st;
		}
		if ((st = decode_field(d, &kf, f, msg, &v, depth + 1, cpc)) != RPC_STATUS_OK)
			return st;
		/* {} for a message: the field as a whole. */
		if (cpc != NULL && child.added == 0 &&
		    (st = presence_add(d, pc, f->fd, NULL)) != RPC_STATUS_OK)
			return st;
	}
	return k < 0 ? syntax_error(d) : RPC_STATUS_OK;
}

static rpc_status decode_message(dec *d, const frame *at, const jmsg *m, ProtobufCMessage *msg,
                                 const gw_json_token *t, unsigned depth, presence_ctx *pc)
{
	const char *s;
	size_t n;
	rpc_status st;
	switch (m->wkt) {
	case WKT_TIMESTAMP:
	case WKT_DURATION:
	case WKT_FIELD_MASK:
		if (t->kind != GW_JSON_STRING)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "expected %s string, got %s",
			            m->wkt == WKT_TIMESTAMP  ? "an RFC 3339 timestamp"
			            : m->wkt == WKT_DURATION ? "a duration"
			                                     : "a field mask",
			            token_kind(t));
		if ((st = token_string(d, t, 0, &s, &n)) != RPC_STATUS_OK)
			return st;
		if (m->wkt == WKT_FIELD_MASK) /* the JSON value replaces the mask */
			*(size_t *)AT(msg, m->fields[0].fd->quantifier_offset) = 0;
		return wkt_from_string(d, at, m, msg, s, n);
	case WKT_WRAPPER:
		return decode_scalar(d, at, &m->fields[0], AT(msg, m->fields[0].fd->offset), t);
	default:
		return decode_object(d, at, m, msg, t, depth, pc);
	}
}

rpc_status gw_json_decode(const gw_json_schema *s, ProtobufCMessage *msg, const char *body_field,
                          const char *json, size_t len, ProtobufCAllocator *alloc,
                          gw_json_presence *presence, gw_json_error *err)
{
	dec d = {s, alloc, err, 0, 0, {0}};
	if (presence != NULL) {
		presence->n = 0;
		presence->fields = NULL;
	}
	const jmsg *m = msg != NULL ? schema_lookup(s, msg->descriptor) : NULL;
	if (m == NULL || alloc == NULL || (json == NULL && len > 0))
		return fail(&d, NULL, RPC_STATUS_INTERNAL,
		            "message type %s is not in the JSON schema",
		            msg != NULL && msg->descriptor ? msg->descriptor->name : "(none)");
	d.values_left = s->limits.max_values;
	d.max_depth = s->limits.max_depth;
	const jfield *f = NULL;
	if (body_field != NULL && strcmp(body_field, "*") != 0) {
		f = field_lookup(m, body_field, strlen(body_field));
		if (f == NULL || strcmp(f->fd->name, body_field) != 0)
			return fail(&d, NULL, RPC_STATUS_INTERNAL, "%s has no field %s",
			            m->desc->name, body_field);
	}
	if (len == 0)
		return RPC_STATUS_OK;

	gw_json_reader_init(&d.r, json, len);
	gw_json_token root;
	rpc_status st = next_value(&d, &root);
	if (st != RPC_STATUS_OK)
		return st;
	/* The object whose keys are the presence: the body's. */
	presence_list list = {NULL, 0, 0};
	presence_ctx pc = {&list, NULL, 0};
	presence_ctx *ppc = presence != NULL ? &pc : NULL;
	if (f == NULL) {
		st = decode_message(&d, NULL, m, msg, &root, 0, ppc);
	} else {
		frame top = {NULL, FRAME_KEY, f->json_name, f->json_len, 0};
		st = decode_field(&d, &top, f, msg, &root, 0, is_plain_message(f) ? ppc : NULL);
	}
	if (st == RPC_STATUS_OK && gw_json_read_end(&d.r) != 0)
		st = syntax_error(&d);
	if (st == RPC_STATUS_OK && presence != NULL) {
		presence->n = list.n;
		presence->fields = list.fields;
	}
	return st;
}

/* ---- text values: path variables and query parameters -------------------- */

/* A value of field f from text into slot. */
static rpc_status text_value(dec *d, const frame *at, const jfield *f, void *slot, const char *v,
                             size_t n)
{
	ProtobufCType t = f->fd->type;
	if (is_integer_type(t)) {
		int64_t min, iv;
		uint64_t max, uv;
		const char *why;
		int_range(t, &min, &max);
		text_to_int(v, n, min, max, &iv, &uv, &why);
		if (why != NULL)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "%s for %s", why,
			            type_name(t));
		store_int(t, slot, iv, uv);
		return RPC_STATUS_OK;
	}
	switch (t) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double x;
		const char *why = text_to_double(v, n, t == PROTOBUF_C_TYPE_FLOAT, &x);
		if (why != NULL)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "%s for %s", why,
			            type_name(t));
		if (t == PROTOBUF_C_TYPE_FLOAT)
			*(float *)slot = (float)x;
		else
			*(double *)slot = x;
		return RPC_STATUS_OK;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (n == 4 && memcmp(v, "true", 4) == 0)
			*(protobuf_c_boolean *)slot = 1;
		else if (n == 5 && memcmp(v, "false", 5) == 0)
			*(protobuf_c_boolean *)slot = 0;
		else
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "expected true or false");
		return RPC_STATUS_OK;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->fd->descriptor;
		const ProtobufCEnumValue *ev = enum_by_name(ed, v, n);
		int plain;
		if (ev == NULL && number_syntax(v, n, &plain) && plain) {
			int64_t iv;
			uint64_t uv;
			const char *why;
			text_to_int(v, n, INT32_MIN, INT32_MAX, &iv, &uv, &why);
			if (why == NULL)
				ev = protobuf_c_enum_descriptor_get_value(
				    ed, (int)(iv != 0 ? iv : (int64_t)uv));
		}
		if (ev == NULL)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "unknown value \"%.*s\" of enum %s", (int)(n > 64 ? 64 : n), v,
			            ed->name);
		*(int *)slot = ev->value;
		return RPC_STATUS_OK;
	}
	case PROTOBUF_C_TYPE_STRING: {
		if (memchr(v, '\0', n) != NULL || !text_utf8_valid(v, n))
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "not valid UTF-8 text (or holds NUL)");
		char *p = dstrdup(d, v, n);
		if (p == NULL)
			return oom(d);
		*(char **)slot = p;
		return RPC_STATUS_OK;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		size_t len = 0, cap = base64_decoded_max(n);
		uint8_t *p = dalloc(d, cap);
		if (p == NULL)
			return oom(d);
		if (base64_decode(v, n, BYTES_IN, p, cap, &len) != 0)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT, "not valid base64");
		((ProtobufCBinaryData *)slot)->data = p;
		((ProtobufCBinaryData *)slot)->len = len;
		return RPC_STATUS_OK;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const jmsg *m = f->msg;
		if (m->wkt == WKT_NONE || m->wkt == WKT_EMPTY)
			return fail(d, at, RPC_STATUS_INVALID_ARGUMENT,
			            "a message field: set its fields (name.field) instead");
		ProtobufCMessage **pp = slot;
		if (*pp == NULL && (*pp = new_message(d, m->desc)) == NULL)
			return oom(d);
		if (m->wkt == WKT_WRAPPER)
			return text_value(d, at, &m->fields[0], AT(*pp, m->fields[0].fd->offset), v,
			                  n);
		return wkt_from_string(d, at, m, *pp, v, n);
	}
	default:
		return fail(d, at, RPC_STATUS_INTERNAL, "unexpected field type");
	}
}

rpc_status gw_json_set_text(const gw_json_schema *s, ProtobufCMessage *msg, const char *path,
                            size_t path_len, const char *value, size_t value_len,
                            ProtobufCAllocator *alloc, gw_json_error *err)
{
	dec d = {s, alloc, err, 0, 0, {0}};
	frame at = {NULL, FRAME_KEY, path, path_len, 0};
	const jmsg *m = msg != NULL ? schema_lookup(s, msg->descriptor) : NULL;
	if (m == NULL || alloc == NULL || path == NULL || (value == NULL && value_len > 0))
		return fail(&d, NULL, RPC_STATUS_INTERNAL,
		            "message type %s is not in the JSON schema",
		            msg != NULL && msg->descriptor ? msg->descriptor->name : "(none)");
	if (value == NULL)
		value = "";
	size_t start = 0;
	for (;;) {
		const char *dot = memchr(path + start, '.', path_len - start);
		size_t end = dot != NULL ? (size_t)(dot - path) : path_len;
		const jfield *f = field_lookup(m, path + start, end - start);
		if (f == NULL)
			return fail(&d, &at, RPC_STATUS_INVALID_ARGUMENT, "unknown field");
		const ProtobufCFieldDescriptor *fd = f->fd;
		if (dot == NULL) {
			if (f->is_map)
				return fail(&d, &at, RPC_STATUS_INVALID_ARGUMENT,
				            "a map field cannot be set from text");
			if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
				/* Into a temporary, so a bad value appends nothing. */
				union {
					int64_t i;
					double x;
					void *p;
					ProtobufCBinaryData b;
				} tmp;
				memset(&tmp, 0, sizeof(tmp));
				rpc_status st = text_value(&d, &at, f, &tmp, value, value_len);
				if (st != RPC_STATUS_OK)
					return st;
				void *slot = append_slot(&d, msg, fd);
				if (slot == NULL)
					return oom(&d);
				memcpy(slot, &tmp, elem_size(fd->type));
				return RPC_STATUS_OK;
			}
			oneof_switch(msg, fd);
			rpc_status st =
			    text_value(&d, &at, f, AT(msg, fd->offset), value, value_len);
			if (st == RPC_STATUS_OK)
				mark_present(msg, fd);
			return st;
		}
		if (!is_plain_message(f))
			return fail(&d, &at, RPC_STATUS_INVALID_ARGUMENT,
			            "\"%s\" is not a message field with fields to set",
			            f->json_name);
		oneof_switch(msg, fd);
		ProtobufCMessage **pp = AT(msg, fd->offset);
		if (*pp == NULL && (*pp = new_message(&d, f->msg->desc)) == NULL)
			return oom(&d);
		mark_present(msg, fd);
		msg = *pp;
		m = f->msg;
		start = end + 1;
	}
}

/* ---- AIP-134 update mask ----------------------------------------------- */

rpc_status gw_json_fill_update_mask(const gw_json_schema *s, ProtobufCMessage *msg,
                                    const char *mask_field, const gw_json_presence *presence,
                                    ProtobufCAllocator *alloc, gw_json_error *err)
{
	dec d = {s, alloc, err, 0, 0, {0}};
	const char *name = mask_field != NULL ? mask_field : "update_mask";
	const jmsg *m = msg != NULL ? schema_lookup(s, msg->descriptor) : NULL;
	if (m == NULL || alloc == NULL)
		return fail(&d, NULL, RPC_STATUS_INTERNAL,
		            "message type %s is not in the JSON schema",
		            msg != NULL && msg->descriptor ? msg->descriptor->name : "(none)");
	const jfield *f = field_lookup(m, name, strlen(name));
	if (f == NULL || f->fd->type != PROTOBUF_C_TYPE_MESSAGE ||
	    f->fd->label == PROTOBUF_C_LABEL_REPEATED || f->msg->wkt != WKT_FIELD_MASK)
		return fail(&d, NULL, RPC_STATUS_INTERNAL, "%s has no FieldMask field %s",
		            m->desc->name, name);
	const ProtobufCFieldDescriptor *fd = f->fd;
	const ProtobufCFieldDescriptor *paths_fd = f->msg->fields[0].fd;
	size_t n = 0;
	for (size_t i = 0; presence != NULL && i < presence->n; i++) {
		if (presence->fields[i].field == fd)
			return RPC_STATUS_OK; /* the body set the mask itself */
		n++;
	}
	ProtobufCMessage **pp = AT(msg, fd->offset);
	ProtobufCMessage *mask = *pp;
	if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *oneof_case(msg, fd) != fd->id)
		mask = NULL; /* the union holds another member */
	if (mask != NULL && *(size_t *)AT(mask, paths_fd->quantifier_offset) > 0)
		return RPC_STATUS_OK; /* set from the query string */
	if (n == 0)
		return RPC_STATUS_OK;
	char **paths = dalloc_array(&d, pow2_at_least(n), sizeof(*paths));
	if (paths == NULL)
		return oom(&d);
	size_t k = 0;
	for (size_t i = 0; i < presence->n; i++) {
		const gw_json_present_field *p = &presence->fields[i];
		size_t a = strlen(p->field->name), b = p->child ? strlen(p->child->name) + 1 : 0;
		char *path = dalloc(&d, a + b + 1);
		if (path == NULL)
			return oom(&d);
		memcpy(path, p->field->name, a);
		if (p->child != NULL) {
			path[a] = '.';
			memcpy(path + a + 1, p->child->name, b - 1);
		}
		path[a + b] = '\0';
		paths[k++] = path;
	}
	if (mask == NULL) {
		if ((mask = new_message(&d, f->msg->desc)) == NULL)
			return oom(&d);
		oneof_switch(msg, fd);
		*pp = mask;
	}
	mark_present(msg, fd);
	*(size_t *)AT(mask, paths_fd->quantifier_offset) = k;
	*(char ***)AT(mask, paths_fd->offset) = paths;
	return RPC_STATUS_OK;
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct enc {
	gw_json_buf *b;
	gw_json_error *err;
	unsigned flags;
	rpc_status st;
} enc;

static void enc_fail(enc *e, rpc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void enc_fail(enc *e, rpc_status code, const char *fmt, ...)
{
	if (e->st != RPC_STATUS_OK)
		return;
	e->st = code;
	if (e->err == NULL)
		return;
	e->err->code = code;
	e->err->field[0] = '\0';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->err->description, sizeof(e->err->description), fmt, ap);
	va_end(ap);
}

static void put(enc *e, const char *s, size_t n)
{
	gw_json_buf_put(e->b, s, n);
}

#define PUT_LIT(e, lit) put((e), (lit), sizeof(lit) - 1)

static void enc_message(enc *e, const jmsg *m, const ProtobufCMessage *msg, unsigned depth);
static void enc_default_message(enc *e, const jmsg *m);

static void enc_quoted_int(enc *e, int64_t v)
{
	PUT_LIT(e, "\"");
	gw_json_write_int(e->b, v);
	PUT_LIT(e, "\"");
}

static void enc_bytes(enc *e, const ProtobufCBinaryData *bd)
{
	size_t n = bd->data != NULL ? bd->len : 0;
	size_t out = base64_encoded_len(n, BYTES_OUT);
	/* the quotes; the encoder's NUL goes where the closing one will */
	if (n > SIZE_MAX / 2 || gw_json_buf_grow(e->b, out + 2) != 0)
		return;
	gw_json_buf *b = e->b;
	b->data[b->len++] = '"';
	if (base64_encode(bd->data, n, BYTES_OUT, b->data + b->len, b->cap - b->len, &out) != 0) {
		b->failed = 1; /* not reached: the room was made above */
		return;
	}
	b->len += out;
	b->data[b->len++] = '"';
}

/* A message value that is NULL where a value must stand (a map entry
 * without its value, as protobuf-c unpacks one): the type's default. */
static void enc_default_message(enc *e, const jmsg *m)
{
	switch (m->wkt) {
	case WKT_TIMESTAMP:
		PUT_LIT(e, "\"1970-01-01T00:00:00Z\"");
		return;
	case WKT_DURATION:
		PUT_LIT(e, "\"0s\"");
		return;
	case WKT_FIELD_MASK:
		PUT_LIT(e, "\"\"");
		return;
	case WKT_WRAPPER:
		switch (m->fields[0].fd->type) {
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_UINT64:
			PUT_LIT(e, "\"0\"");
			return;
		case PROTOBUF_C_TYPE_BOOL:
			PUT_LIT(e, "false");
			return;
		case PROTOBUF_C_TYPE_STRING:
		case PROTOBUF_C_TYPE_BYTES:
			PUT_LIT(e, "\"\"");
			return;
		default:
			PUT_LIT(e, "0");
			return;
		}
	default:
		PUT_LIT(e, "{}");
	}
}

/* One value of field f at slot: a singular field, an element, a map value. */
static void enc_value(enc *e, const jfield *f, const void *slot, unsigned depth)
{
	switch (f->fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		gw_json_write_int(e->b, *(const int32_t *)slot);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		gw_json_write_uint(e->b, *(const uint32_t *)slot);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		enc_quoted_int(e, *(const int64_t *)slot);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		PUT_LIT(e, "\"");
		gw_json_write_uint(e->b, *(const uint64_t *)slot);
		PUT_LIT(e, "\"");
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		gw_json_write_float(e->b, *(const float *)slot);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		gw_json_write_double(e->b, *(const double *)slot);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (*(const protobuf_c_boolean *)slot)
			PUT_LIT(e, "true");
		else
			PUT_LIT(e, "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)slot;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->fd->descriptor, v);
		if (ev != NULL)
			gw_json_write_string(e->b, ev->name, strlen(ev->name));
		else
			gw_json_write_int(e->b, v); /* a number this build does not know */
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;
		gw_json_write_string(e->b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		enc_bytes(e, slot);
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
		if (sub == NULL)
			enc_default_message(e, f->msg);
		else
			enc_message(e, f->msg, sub, depth + 1);
		break;
	}
	default:
		enc_fail(e, RPC_STATUS_INTERNAL, "field %s: unexpected type", f->fd->name);
	}
}

static void enc_map_key(enc *e, const jfield *kf, const void *slot)
{
	switch (kf->fd->type) {
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		enc_value(e, kf, slot, 0); /* already a string */
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (*(const protobuf_c_boolean *)slot)
			PUT_LIT(e, "\"true\"");
		else
			PUT_LIT(e, "\"false\"");
		break;
	default:
		PUT_LIT(e, "\"");
		enc_value(e, kf, slot, 0);
		PUT_LIT(e, "\"");
	}
}

/* The whole value of field f of msg: array, map or single value. */
static void enc_field(enc *e, const jfield *f, const ProtobufCMessage *msg, unsigned depth)
{
	const ProtobufCFieldDescriptor *fd = f->fd;
	const void *slot = (const char *)msg + fd->offset;
	if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
		enc_value(e, f, slot, depth);
		return;
	}
	size_t n = *(const size_t *)((const char *)msg + fd->quantifier_offset);
	const char *arr = *(const char *const *)slot;
	if (arr == NULL)
		n = 0;
	if (f->is_map) {
		const jmsg *em = f->msg;
		int first = 1;
		PUT_LIT(e, "{");
		for (size_t i = 0; i < n; i++) {
			const ProtobufCMessage *entry = ((const ProtobufCMessage *const *)arr)[i];
			if (entry == NULL)
				continue;
			if (!first)
				PUT_LIT(e, ",");
			first = 0;
			enc_map_key(e, &em->fields[0],
			            (const char *)entry + em->fields[0].fd->offset);
			PUT_LIT(e, ":");
			enc_value(e, &em->fields[1], (const char *)entry + em->fields[1].fd->offset,
			          depth + 1);
		}
		PUT_LIT(e, "}");
		return;
	}
	size_t esz = elem_size(fd->type);
	PUT_LIT(e, "[");
	for (size_t i = 0; i < n && e->st == RPC_STATUS_OK; i++) {
		if (i > 0)
			PUT_LIT(e, ",");
		enc_value(e, f, arr + i * esz, depth);
	}
	PUT_LIT(e, "]");
}

/* Whether a field without explicit presence holds its default. */
static int is_default(const ProtobufCFieldDescriptor *fd, const void *slot)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)slot == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)slot == 0 && !signbit(*(const float *)slot);
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)slot == 0 && !signbit(*(const double *)slot);
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)slot == 0;
	case PROTOBUF_C_TYPE_ENUM:
		return *(const int *)slot == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;
		return s == NULL || s[0] == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)slot)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)slot == NULL;
	default:
		return *(const uint32_t *)slot == 0;
	}
}

/* Whether field f of msg is written. */
static int enc_wanted(const enc *e, const jfield *f, const ProtobufCMessage *msg)
{
	const ProtobufCFieldDescriptor *fd = f->fd;
	const char *base = (const char *)msg;
	const void *slot = base + fd->offset;
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id &&
		       (fd->type != PROTOBUF_C_TYPE_MESSAGE || *(ProtobufCMessage *const *)slot);
	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(base + fd->quantifier_offset) > 0 ||
		       (e->flags & GW_JSON_EMIT_UNPOPULATED);
	if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(ProtobufCMessage *const *)slot != NULL;
	if (fd->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (fd->type == PROTOBUF_C_TYPE_STRING)
			return *(char *const *)slot != NULL &&
			       *(const void *const *)slot != fd->default_value;
		return *(const protobuf_c_boolean *)(base + fd->quantifier_offset) != 0;
	}
	if (fd->label == PROTOBUF_C_LABEL_REQUIRED)
		return 1;
	return (e->flags & GW_JSON_EMIT_UNPOPULATED) || !is_default(fd, slot);
}

static void enc_ts(enc *e, const jmsg *m, const ProtobufCMessage *msg)
{
	const char *base = (const char *)msg;
	int64_t sec = *(const int64_t *)(base + m->fields[0].fd->offset);
	int32_t ns = *(const int32_t *)(base + m->fields[1].fd->offset);
	char tmp[GW_JSON_TIMESTAMP_MAX > GW_JSON_DURATION_MAX ? GW_JSON_TIMESTAMP_MAX
	                                                      : GW_JSON_DURATION_MAX];
	size_t n = m->wkt == WKT_TIMESTAMP ? gw_json_timestamp_format(sec, ns, tmp)
	                                   : gw_json_duration_format(sec, ns, tmp);
	if (n == 0) {
		enc_fail(e, RPC_STATUS_INTERNAL, "%s out of range (seconds %lld, nanos %d)",
		         m->desc->name, (long long)sec, (int)ns);
		return;
	}
	PUT_LIT(e, "\"");
	put(e, tmp, n);
	PUT_LIT(e, "\"");
}

/* A path of proto field names: dotted [a-z_][a-z0-9_]*, which the JSON
 * form can carry and give back unchanged. */
static int is_proto_path(const char *p)
{
	int start = 1;
	for (; *p != '\0'; p++) {
		if (*p == '.' && !start) {
			start = 1;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || (!start && *p >= '0' && *p <= '9')))
			return 0;
		start = 0;
	}
	return !start;
}

/* "a_b.c_d" paths as "aB.cD", comma-separated. */
static void enc_field_mask(enc *e, const jmsg *m, const ProtobufCMessage *msg)
{
	const ProtobufCFieldDescriptor *fd = m->fields[0].fd;
	const char *base = (const char *)msg;
	size_t n = *(const size_t *)(base + fd->quantifier_offset);
	char *const *paths = *(char *const *const *)(base + fd->offset);
	for (size_t i = 0; paths != NULL && i < n; i++) {
		if (paths[i] == NULL || !is_proto_path(paths[i])) {
			enc_fail(e, RPC_STATUS_INTERNAL,
			         "FieldMask path \"%.64s\" is not a path of proto field names",
			         paths[i] != NULL ? paths[i] : "");
			return;
		}
	}
	PUT_LIT(e, "\"");
	for (size_t i = 0; paths != NULL && i < n; i++) {
		const char *p = paths[i];
		if (i > 0)
			PUT_LIT(e, ",");
		size_t run = 0, k = 0;
		for (; p[k] != '\0'; k++) {
			if (p[k] == '_' && p[k + 1] >= 'a' && p[k + 1] <= 'z') {
				char up = (char)(p[k + 1] - 'a' + 'A');
				gw_json_write_escaped(e->b, p + run, k - run);
				put(e, &up, 1);
				k++;
				run = k + 1;
			}
		}
		gw_json_write_escaped(e->b, p + run, k - run);
	}
	PUT_LIT(e, "\"");
}

static void enc_message(enc *e, const jmsg *m, const ProtobufCMessage *msg, unsigned depth)
{
	if (e->st != RPC_STATUS_OK)
		return;
	if (depth > ENCODE_MAX_DEPTH) {
		enc_fail(e, RPC_STATUS_INTERNAL, "message nested deeper than %d levels",
		         ENCODE_MAX_DEPTH);
		return;
	}
	switch (m->wkt) {
	case WKT_TIMESTAMP:
	case WKT_DURATION:
		enc_ts(e, m, msg);
		return;
	case WKT_FIELD_MASK:
		enc_field_mask(e, m, msg);
		return;
	case WKT_WRAPPER:
		enc_value(e, &m->fields[0], (const char *)msg + m->fields[0].fd->offset, depth);
		return;
	default:
		break;
	}
	PUT_LIT(e, "{");
	int first = 1;
	for (unsigned i = 0; i < m->n_fields && e->st == RPC_STATUS_OK; i++) {
		const jfield *f = &m->fields[i];
		if (!enc_wanted(e, f, msg))
			continue;
		if (!first)
			PUT_LIT(e, ",");
		first = 0;
		put(e, f->key, f->key_len);
		enc_field(e, f, msg, depth);
	}
	PUT_LIT(e, "}");
}

rpc_status gw_json_encode(const gw_json_schema *s, const ProtobufCMessage *msg, const char *field,
                          unsigned flags, gw_json_buf *out, gw_json_error *err)
{
	enc e = {out, err, flags, RPC_STATUS_OK};
	const jmsg *m = msg != NULL ? schema_lookup(s, msg->descriptor) : NULL;
	if (m == NULL) {
		enc_fail(&e, RPC_STATUS_INTERNAL, "message type %s is not in the JSON schema",
		         msg != NULL && msg->descriptor ? msg->descriptor->name : "(none)");
		return e.st;
	}
	if (field == NULL || strcmp(field, "*") == 0) {
		enc_message(&e, m, msg, 0);
	} else {
		const jfield *f = field_lookup(m, field, strlen(field));
		if (f == NULL || strcmp(f->fd->name, field) != 0) {
			enc_fail(&e, RPC_STATUS_INTERNAL, "%s has no field %s", m->desc->name,
			         field);
			return e.st;
		}
		const void *slot = (const char *)msg + f->fd->offset;
		if (((f->fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		     *(const uint32_t *)((const char *)msg + f->fd->quantifier_offset) !=
		         f->fd->id) ||
		    (f->fd->type == PROTOBUF_C_TYPE_MESSAGE &&
		     f->fd->label != PROTOBUF_C_LABEL_REPEATED &&
		     *(ProtobufCMessage *const *)slot == NULL))
			PUT_LIT(&e, "null"); /* unset */
		else
			enc_field(&e, f, msg, 0);
	}
	if (e.st == RPC_STATUS_OK && gw_json_buf_status(out) != RPC_STATUS_OK)
		enc_fail(&e, RPC_STATUS_RESOURCE_EXHAUSTED,
		         "response larger than the buffer allows");
	return e.st;
}
