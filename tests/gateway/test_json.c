/*
 * test_json.c - the gateway's JSON transcoder (gateway-rest/gw_json.h).
 *
 * Real messages of our protos (catalog's Product, orders' CreateOrderRequest,
 * the PATCH requests with an update_mask, the route table as a whole) and a
 * hand-written descriptor, test.AllTypes, with every field type protobuf-c
 * has, maps, a oneof, recursion, explicit presence and the well-known types
 * our gen/ carries, since our protos use only a few of them. Every error
 * test asserts the code and the exact JSON path of the field at fault.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "gw_json.h"
#include "panthera/cart/v1/cart.pb-c.h"
#include "panthera/catalog/v1/catalog.pb-c.h"
#include "panthera/orders/v1/orders.pb-c.h"
#include "panthera/rpc/v1/rpc.pb-c.h"
#include "panthera/users/v1/users.pb-c.h"
#include "panthera/analytics/v1/analytics.pb-c.h"
#include "panthera/auth/v1/auth.pb-c.h"
#include "panthera_routes.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#define assert_status(expr, want)                                                              \
	do {                                                                                   \
		rpc_status got_ = (expr);                                                      \
		if (got_ != (want))                                                            \
			fail_msg("%s: got %s, want %s (%s: %s)", #expr, rpc_status_name(got_), \
			         rpc_status_name(want), err.field, err.description);           \
	} while (0)

/* ---- test.AllTypes: a hand-written descriptor with every type -------------- */

typedef struct TNested {
	ProtobufCMessage base;
	int32_t value;
	char *name;
} TNested;

typedef struct TMapStrI32 {
	ProtobufCMessage base;
	char *key;
	int32_t value;
} TMapStrI32;

typedef struct TMapI32Str {
	ProtobufCMessage base;
	int32_t key;
	char *value;
} TMapI32Str;

typedef struct TMapBoolMsg {
	ProtobufCMessage base;
	protobuf_c_boolean key;
	TNested *value;
} TMapBoolMsg;

typedef struct TAll TAll;
struct TAll {
	ProtobufCMessage base;
	int32_t i32;
	int64_t i64;
	uint32_t u32;
	uint64_t u64;
	int32_t s32;
	int64_t s64;
	uint32_t fx32;
	uint64_t fx64;
	int32_t sfx32;
	int64_t sfx64;
	float fl;
	double db;
	protobuf_c_boolean b;
	char *str;
	ProtobufCBinaryData by;
	int en;
	TNested *nested;
	size_t n_r_i64;
	int64_t *r_i64;
	size_t n_r_str;
	char **r_str;
	size_t n_r_nested;
	TNested **r_nested;
	size_t n_r_en;
	int *r_en;
	size_t n_m_str;
	TMapStrI32 **m_str;
	size_t n_m_i32;
	TMapI32Str **m_i32;
	size_t n_m_bool;
	TMapBoolMsg **m_bool;
	uint32_t choice_case;
	union {
		char *o_str;
		int32_t o_i32;
		TNested *o_msg;
	};
	TAll *child;
	Google__Protobuf__Timestamp *ts;
	Google__Protobuf__Duration *dur;
	Google__Protobuf__FieldMask *mask;
	Google__Protobuf__Int64Value *w_i64;
	Google__Protobuf__StringValue *w_str;
	Google__Protobuf__BoolValue *w_b;
	Google__Protobuf__Empty *empty;
	protobuf_c_boolean has_opt_i32;
	int32_t opt_i32;
	char *opt_str;
	size_t n_r_ts;
	Google__Protobuf__Timestamp **r_ts;
	Google__Protobuf__UInt64Value *w_u64;
	Google__Protobuf__DoubleValue *w_db;
	Google__Protobuf__BytesValue *w_by;
	size_t n_r_b;
	protobuf_c_boolean *r_b;
	size_t n_r_db;
	double *r_db;
	size_t n_r_by;
	ProtobufCBinaryData *r_by;
};

extern const ProtobufCMessageDescriptor t_nested_desc, t_all_desc, t_map_str_i32_desc,
    t_map_i32_str_desc, t_map_bool_msg_desc;

static void t_nested_init(TNested *m)
{
	memset(m, 0, sizeof(*m));
	m->base.descriptor = &t_nested_desc;
	m->name = (char *)protobuf_c_empty_string;
}

static void t_map_str_i32_init(TMapStrI32 *m)
{
	memset(m, 0, sizeof(*m));
	m->base.descriptor = &t_map_str_i32_desc;
	m->key = (char *)protobuf_c_empty_string;
}

static void t_map_i32_str_init(TMapI32Str *m)
{
	memset(m, 0, sizeof(*m));
	m->base.descriptor = &t_map_i32_str_desc;
	m->value = (char *)protobuf_c_empty_string;
}

static void t_map_bool_msg_init(TMapBoolMsg *m)
{
	memset(m, 0, sizeof(*m));
	m->base.descriptor = &t_map_bool_msg_desc;
}

static void t_all_init(TAll *m)
{
	memset(m, 0, sizeof(*m));
	m->base.descriptor = &t_all_desc;
	m->str = (char *)protobuf_c_empty_string;
}

/* Proto3 strings default to "" (protobuf-c's unpack frees what is not the
 * default), everything else has no default. */
#define F(name_, id_, label_, type_, st_, q_, field_, desc_, flags_)                \
	{                                                                           \
		name_, id_, PROTOBUF_C_LABEL_##label_, PROTOBUF_C_TYPE_##type_, q_, \
		    offsetof(st_, field_), desc_,                                   \
		    (PROTOBUF_C_TYPE_##type_ == PROTOBUF_C_TYPE_STRING &&           \
		     PROTOBUF_C_LABEL_##label_ == PROTOBUF_C_LABEL_NONE)            \
		        ? (const void *)&protobuf_c_empty_string                    \
		        : NULL,                                                     \
		    flags_, 0, NULL, NULL                                           \
	}
#define S(name_, id_, type_, st_, field_, desc_) \
	F(name_, id_, NONE, type_, st_, 0, field_, desc_, 0)
#define R(name_, id_, type_, st_, field_, desc_) \
	F(name_, id_, REPEATED, type_, st_, offsetof(st_, n_##field_), field_, desc_, 0)
#define O(name_, id_, type_, field_, desc_)                                          \
	F(name_, id_, NONE, type_, TAll, offsetof(TAll, choice_case), field_, desc_, \
	  PROTOBUF_C_FIELD_FLAG_ONEOF)

static const ProtobufCIntRange ranges2[] = {{1, 0}, {0, 2}};
static const unsigned by_name2[] = {0, 1};

static const ProtobufCFieldDescriptor t_nested_fields[] = {
    S("value", 1, INT32, TNested, value, NULL),
    S("name", 2, STRING, TNested, name, NULL),
};
const ProtobufCMessageDescriptor t_nested_desc = {PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                                  "test.Nested",
                                                  "Nested",
                                                  "TNested",
                                                  "test",
                                                  sizeof(TNested),
                                                  2,
                                                  t_nested_fields,
                                                  (const unsigned[]){1, 0},
                                                  1,
                                                  ranges2,
                                                  (ProtobufCMessageInit)t_nested_init,
                                                  NULL,
                                                  NULL,
                                                  NULL};

static const ProtobufCFieldDescriptor t_map_str_i32_fields[] = {
    S("key", 1, STRING, TMapStrI32, key, NULL),
    S("value", 2, INT32, TMapStrI32, value, NULL),
};
const ProtobufCMessageDescriptor t_map_str_i32_desc = {PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                                       "test.AllTypes.MStrEntry",
                                                       "MStrEntry",
                                                       "TMapStrI32",
                                                       "test",
                                                       sizeof(TMapStrI32),
                                                       2,
                                                       t_map_str_i32_fields,
                                                       by_name2,
                                                       1,
                                                       ranges2,
                                                       (ProtobufCMessageInit)t_map_str_i32_init,
                                                       NULL,
                                                       NULL,
                                                       NULL};

static const ProtobufCFieldDescriptor t_map_i32_str_fields[] = {
    S("key", 1, INT32, TMapI32Str, key, NULL),
    S("value", 2, STRING, TMapI32Str, value, NULL),
};
const ProtobufCMessageDescriptor t_map_i32_str_desc = {PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                                       "test.AllTypes.MI32Entry",
                                                       "MI32Entry",
                                                       "TMapI32Str",
                                                       "test",
                                                       sizeof(TMapI32Str),
                                                       2,
                                                       t_map_i32_str_fields,
                                                       by_name2,
                                                       1,
                                                       ranges2,
                                                       (ProtobufCMessageInit)t_map_i32_str_init,
                                                       NULL,
                                                       NULL,
                                                       NULL};

static const ProtobufCFieldDescriptor t_map_bool_msg_fields[] = {
    S("key", 1, BOOL, TMapBoolMsg, key, NULL),
    S("value", 2, MESSAGE, TMapBoolMsg, value, &t_nested_desc),
};
const ProtobufCMessageDescriptor t_map_bool_msg_desc = {PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                                        "test.AllTypes.MBoolEntry",
                                                        "MBoolEntry",
                                                        "TMapBoolMsg",
                                                        "test",
                                                        sizeof(TMapBoolMsg),
                                                        2,
                                                        t_map_bool_msg_fields,
                                                        by_name2,
                                                        1,
                                                        ranges2,
                                                        (ProtobufCMessageInit)t_map_bool_msg_init,
                                                        NULL,
                                                        NULL,
                                                        NULL};

#define N_ALL 44
static const ProtobufCFieldDescriptor t_all_fields[N_ALL] = {
    S("i32", 1, INT32, TAll, i32, NULL),
    S("i64", 2, INT64, TAll, i64, NULL),
    S("u32", 3, UINT32, TAll, u32, NULL),
    S("u64", 4, UINT64, TAll, u64, NULL),
    S("s32", 5, SINT32, TAll, s32, NULL),
    S("s64", 6, SINT64, TAll, s64, NULL),
    S("fx32", 7, FIXED32, TAll, fx32, NULL),
    S("fx64", 8, FIXED64, TAll, fx64, NULL),
    S("sfx32", 9, SFIXED32, TAll, sfx32, NULL),
    S("sfx64", 10, SFIXED64, TAll, sfx64, NULL),
    S("fl", 11, FLOAT, TAll, fl, NULL),
    S("db", 12, DOUBLE, TAll, db, NULL),
    S("b", 13, BOOL, TAll, b, NULL),
    S("str", 14, STRING, TAll, str, NULL),
    S("by", 15, BYTES, TAll, by, NULL),
    S("en", 16, ENUM, TAll, en, &panthera__orders__v1__order_status__descriptor),
    S("nested", 17, MESSAGE, TAll, nested, &t_nested_desc),
    R("r_i64", 18, INT64, TAll, r_i64, NULL),
    R("r_str", 19, STRING, TAll, r_str, NULL),
    R("r_nested", 20, MESSAGE, TAll, r_nested, &t_nested_desc),
    R("r_en", 21, ENUM, TAll, r_en, &panthera__orders__v1__order_status__descriptor),
    R("m_str", 22, MESSAGE, TAll, m_str, &t_map_str_i32_desc),
    R("m_i32", 23, MESSAGE, TAll, m_i32, &t_map_i32_str_desc),
    R("m_bool", 24, MESSAGE, TAll, m_bool, &t_map_bool_msg_desc),
    O("o_str", 25, STRING, o_str, NULL),
    O("o_i32", 26, INT32, o_i32, NULL),
    O("o_msg", 27, MESSAGE, o_msg, &t_nested_desc),
    S("child", 28, MESSAGE, TAll, child, &t_all_desc),
    S("ts", 29, MESSAGE, TAll, ts, &google__protobuf__timestamp__descriptor),
    S("dur", 30, MESSAGE, TAll, dur, &google__protobuf__duration__descriptor),
    S("mask", 31, MESSAGE, TAll, mask, &google__protobuf__field_mask__descriptor),
    S("w_i64", 32, MESSAGE, TAll, w_i64, &google__protobuf__int64_value__descriptor),
    S("w_str", 33, MESSAGE, TAll, w_str, &google__protobuf__string_value__descriptor),
    S("w_b", 34, MESSAGE, TAll, w_b, &google__protobuf__bool_value__descriptor),
    S("empty", 35, MESSAGE, TAll, empty, &google__protobuf__empty__descriptor),
    F("opt_i32", 36, OPTIONAL, INT32, TAll, offsetof(TAll, has_opt_i32), opt_i32, NULL, 0),
    F("opt_str", 37, OPTIONAL, STRING, TAll, 0, opt_str, NULL, 0),
    R("r_ts", 38, MESSAGE, TAll, r_ts, &google__protobuf__timestamp__descriptor),
    S("w_u64", 39, MESSAGE, TAll, w_u64, &google__protobuf__uint64_value__descriptor),
    S("w_db", 40, MESSAGE, TAll, w_db, &google__protobuf__double_value__descriptor),
    S("w_by", 41, MESSAGE, TAll, w_by, &google__protobuf__bytes_value__descriptor),
    R("r_b", 42, BOOL, TAll, r_b, NULL),
    R("r_db", 43, DOUBLE, TAll, r_db, NULL),
    R("r_by", 44, BYTES, TAll, r_by, NULL),
};
static unsigned t_all_by_name[N_ALL]; /* sorted in the group set-up */
static const ProtobufCIntRange t_all_ranges[] = {{1, 0}, {0, N_ALL}};
const ProtobufCMessageDescriptor t_all_desc = {PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                               "test.AllTypes",
                                               "AllTypes",
                                               "TAll",
                                               "test",
                                               sizeof(TAll),
                                               N_ALL,
                                               t_all_fields,
                                               t_all_by_name,
                                               1,
                                               t_all_ranges,
                                               (ProtobufCMessageInit)t_all_init,
                                               NULL,
                                               NULL,
                                               NULL};

/* ---- fixtures ---------------------------------------------------------------- */

static gw_json_schema *routes; /* from panthera_routes */
static gw_json_schema *all;    /* test.AllTypes and a few real messages */
static rpc_arena arena;
static gw_json_buf buf;
static gw_json_error err;

static int by_name_cmp(const void *a, const void *b)
{
	return strcmp(t_all_fields[*(const unsigned *)a].name,
	              t_all_fields[*(const unsigned *)b].name);
}

static int group_setup(void **state)
{
	(void)state;
	for (unsigned i = 0; i < N_ALL; i++)
		t_all_by_name[i] = i;
	qsort(t_all_by_name, N_ALL, sizeof(unsigned), by_name_cmp);
	if (gw_json_schema_from_routes(&routes, &panthera_routes, NULL, &err) != RPC_STATUS_OK) {
		fprintf(stderr, "schema from routes: %s\n", err.description);
		return -1;
	}
	const ProtobufCMessageDescriptor *roots[] = {
	    &t_all_desc, &panthera__rpc__v1__error_details__descriptor,
	    &panthera__auth__v1__register_user_request__descriptor};
	if (gw_json_schema_new(&all, roots, 3, NULL, &err) != RPC_STATUS_OK) {
		fprintf(stderr, "schema: %s\n", err.description);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	gw_json_schema_free(routes);
	gw_json_schema_free(all);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	rpc_arena_init(&arena, NULL, 0, 64u << 20);
	gw_json_buf_init(&buf, 0);
	memset(&err, 0, sizeof(err));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_arena_destroy(&arena);
	gw_json_buf_free(&buf);
	return 0;
}

static rpc_status decode(const gw_json_schema *s, void *msg, const char *json)
{
	return gw_json_decode(s, msg, NULL, json, strlen(json), &arena.pb, NULL, &err);
}

/* Encode msg and return it as a NUL-terminated string in the buffer. */
static const char *encode(const gw_json_schema *s, const void *msg, unsigned flags)
{
	gw_json_buf_reset(&buf);
	rpc_status st = gw_json_encode(s, msg, NULL, flags, &buf, &err);
	if (st != RPC_STATUS_OK)
		fail_msg("encode: %s: %s", rpc_status_name(st), err.description);
	gw_json_buf_put(&buf, "", 1);
	return buf.data;
}

static void expect_error(const gw_json_schema *s, void *msg, const char *json, rpc_status code,
                         const char *field, const char *description_part)
{
	rpc_status st = decode(s, msg, json);
	if (st != code || strcmp(err.field, field) != 0 ||
	    strstr(err.description, description_part) == NULL)
		fail_msg("%s: got %s field \"%s\" \"%s\"; want %s field \"%s\" \"...%s...\"", json,
		         rpc_status_name(st), err.field, err.description, rpc_status_name(code),
		         field, description_part);
}

static void expect_text_error(void *msg, const char *path, const char *value, const char *field,
                              const char *description_part)
{
	const gw_json_schema *s =
	    ((ProtobufCMessage *)msg)->descriptor == &t_all_desc ? all : routes;
	rpc_status st =
	    gw_json_set_text(s, msg, path, strlen(path), value, strlen(value), &arena.pb, &err);
	if (st != RPC_STATUS_INVALID_ARGUMENT || strcmp(err.field, field) != 0 ||
	    strstr(err.description, description_part) == NULL)
		fail_msg("%s=%s: got %s field \"%s\" \"%s\"; want field \"%s\" \"...%s...\"", path,
		         value, rpc_status_name(st), err.field, err.description, field,
		         description_part);
}

static rpc_status set_text(const gw_json_schema *s, void *msg, const char *path, const char *value)
{
	return gw_json_set_text(s, msg, path, strlen(path), value, strlen(value), &arena.pb, &err);
}

/* protobuf-c packs and unpacks the decoded message, and the copy encodes
 * to the same JSON: the decoder built a structurally valid message. */
static void assert_packs_same(const gw_json_schema *s, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *wire = malloc(n ? n : 1);
	assert_non_null(wire);
	assert_int_equal(protobuf_c_message_pack(m, wire), n);
	ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, n, wire);
	assert_non_null(copy);
	char *a = strdup(encode(s, m, 0));
	const char *b = encode(s, copy, 0);
	assert_string_equal(a, b);
	free(a);
	free(wire);
	protobuf_c_message_free_unpacked(copy, NULL);
}

/* ---- schema -------------------------------------------------------------------- */

static void test_schema_holds_every_route_message(void **state)
{
	(void)state;
	for (size_t i = 0; i < panthera_routes.n_routes; i++) {
		const rpc_method_desc *md = panthera_routes.routes[i].method;
		/* Every request decodes from {} and encodes back to {}. */
		ProtobufCMessage *req = rpc_arena_alloc(&arena, md->input->sizeof_message);
		assert_non_null(req);
		protobuf_c_message_init(md->input, req);
		assert_status(decode(routes, req, "{}"), RPC_STATUS_OK);
		assert_string_equal(encode(routes, req, 0), "{}");
		ProtobufCMessage *resp = rpc_arena_alloc(&arena, md->output->sizeof_message);
		assert_non_null(resp);
		protobuf_c_message_init(md->output, resp);
		encode(routes, resp, GW_JSON_EMIT_UNPOPULATED);
	}
}

static void test_schema_finds_fields_by_both_names(void **state)
{
	(void)state;
	const ProtobufCMessageDescriptor *d =
	    &panthera__catalog__v1__list_products_request__descriptor;
	const ProtobufCFieldDescriptor *a = gw_json_find_field(routes, d, "pageSize", 8);
	const ProtobufCFieldDescriptor *b = gw_json_find_field(routes, d, "page_size", 9);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_string_equal(a->name, "page_size");
	assert_null(gw_json_find_field(routes, d, "pagesize", 8));
	assert_non_null(gw_json_find_field(routes, d, "page", 4));
	assert_null(gw_json_find_field(routes, &t_all_desc, "i32", 3)); /* not in that schema */
}

static void test_schema_rejects_unsupported_types(void **state)
{
	(void)state;
	gw_json_schema *s = (gw_json_schema *)1;
	const ProtobufCMessageDescriptor *st[] = {&google__protobuf__struct__descriptor};
	assert_status(gw_json_schema_new(&s, st, 1, NULL, &err), RPC_STATUS_UNIMPLEMENTED);
	assert_null(s);
	assert_non_null(strstr(err.description, "google.protobuf.Struct"));
	const ProtobufCMessageDescriptor *any[] = {&google__protobuf__any__descriptor};
	assert_status(gw_json_schema_new(&s, any, 1, NULL, &err), RPC_STATUS_UNIMPLEMENTED);
	assert_non_null(strstr(err.description, "google.protobuf.Any"));
	const ProtobufCMessageDescriptor *bad[] = {NULL};
	assert_status(gw_json_schema_new(&s, bad, 1, NULL, &err), RPC_STATUS_INVALID_ARGUMENT);
}

/* ---- real messages ------------------------------------------------------------ */

static void test_product_round_trip(void **state)
{
	(void)state;
	Panthera__Catalog__V1__Product p = PANTHERA__CATALOG__V1__PRODUCT__INIT;
	Google__Protobuf__Timestamp created = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Google__Protobuf__Timestamp updated = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	created.seconds = 1768471200; /* 2026-01-15T10:00:00Z */
	updated.seconds = 1768471200;
	updated.nanos = 250000000;
	p.id = "3f0c7a2e-0000-4000-8000-000000000001";
	p.sku = "SKU-1";
	p.name = "Laptop \"Pro\"";
	p.description = "Fast.\nReally.";
	p.price = "1200.00";
	p.currency = "USD";
	p.category_id = "c1";
	p.stock = 7;
	p.is_active = 1;
	p.rating_average = "4.5";
	p.rating_count = 2;
	p.created_at = &created;
	p.updated_at = &updated;
	const char *want =
	    "{\"id\":\"3f0c7a2e-0000-4000-8000-000000000001\",\"sku\":\"SKU-1\",\"name\":"
	    "\"Laptop \\\"Pro\\\"\",\"description\":\"Fast.\\nReally.\",\"price\":\"1200.00\","
	    "\"currency\":\"USD\",\"categoryId\":\"c1\",\"stock\":7,\"isActive\":true,"
	    "\"ratingAverage\":\"4.5\",\"ratingCount\":2,\"createdAt\":\"2026-01-15T10:00:00Z\","
	    "\"updatedAt\":\"2026-01-15T10:00:00.250Z\"}";
	const char *got = encode(routes, &p, 0);
	assert_string_equal(got, want);

	Panthera__Catalog__V1__Product q = PANTHERA__CATALOG__V1__PRODUCT__INIT;
	assert_status(decode(routes, &q, want), RPC_STATUS_OK);
	assert_string_equal(q.name, "Laptop \"Pro\"");
	assert_string_equal(q.category_id, "c1");
	assert_int_equal(q.stock, 7);
	assert_true(q.is_active);
	assert_int_equal(q.updated_at->seconds, 1768471200);
	assert_int_equal(q.updated_at->nanos, 250000000);
	assert_string_equal(encode(routes, &q, 0), want);
	assert_packs_same(routes, &q.base);

	/* Defaults: left out, or all there with EMIT_UNPOPULATED. */
	Panthera__Catalog__V1__Product empty = PANTHERA__CATALOG__V1__PRODUCT__INIT;
	assert_string_equal(encode(routes, &empty, 0), "{}");
	assert_string_equal(
	    encode(routes, &empty, GW_JSON_EMIT_UNPOPULATED),
	    "{\"id\":\"\",\"sku\":\"\",\"name\":\"\",\"description\":\"\","
	    "\"price\":\"\",\"currency\":\"\",\"categoryId\":\"\",\"imageUrl\":\"\","
	    "\"stock\":0,\"isActive\":false,\"ratingAverage\":\"\","
	    "\"ratingCount\":0}");
}

static void test_list_reply_emits_total_zero(void **state)
{
	(void)state;
	Panthera__Catalog__V1__ListProductsResponse r =
	    PANTHERA__CATALOG__V1__LIST_PRODUCTS_RESPONSE__INIT;
	r.page = 1;
	r.page_size = 20;
	assert_string_equal(encode(routes, &r, 0), "{\"page\":1,\"pageSize\":20}");
	assert_string_equal(encode(routes, &r, GW_JSON_EMIT_UNPOPULATED),
	                    "{\"products\":[],\"total\":0,\"page\":1,\"pageSize\":20}");
}

static void test_create_order_request_decodes(void **state)
{
	(void)state;
	Panthera__Orders__V1__CreateOrderRequest r =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	/* JSON names and proto names mixed, as API.md allows. */
	const char *body =
	    "{\"items\":[{\"productId\":\"p1\",\"quantity\":2},"
	    "{\"product_id\":\"p2\",\"quantity\":\"3\"}],"
	    "\"shipping_address\":{\"street\":\"1 Main St\",\"city\":\"Springfield\","
	    "\"zipCode\":\"12345\",\"country\":\"US\"},"
	    "\"paymentMethodId\":\"pm_card_visa\"}";
	assert_status(decode(routes, &r, body), RPC_STATUS_OK);
	assert_int_equal(r.n_items, 2);
	assert_string_equal(r.items[0]->product_id, "p1");
	assert_int_equal(r.items[0]->quantity, 2);
	assert_string_equal(r.items[1]->product_id, "p2");
	assert_int_equal(r.items[1]->quantity, 3);
	assert_non_null(r.shipping_address);
	assert_string_equal(r.shipping_address->zip_code, "12345");
	assert_string_equal(r.shipping_address->state, "");
	assert_string_equal(r.payment_method_id, "pm_card_visa");
	assert_string_equal(
	    encode(routes, &r, 0),
	    "{\"items\":[{\"productId\":\"p1\",\"quantity\":2},{\"productId\":\"p2\","
	    "\"quantity\":3}],\"shippingAddress\":{\"street\":\"1 Main St\","
	    "\"city\":\"Springfield\",\"zipCode\":\"12345\",\"country\":\"US\"},"
	    "\"paymentMethodId\":\"pm_card_visa\"}");
	assert_packs_same(routes, &r.base);
}

static void test_order_encodes_enum_and_nested(void **state)
{
	(void)state;
	Panthera__Orders__V1__Order o = PANTHERA__ORDERS__V1__ORDER__INIT;
	Panthera__Orders__V1__Shipment sh = PANTHERA__ORDERS__V1__SHIPMENT__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	at.seconds = 0;
	at.nanos = 1000;
	sh.carrier = "UPS";
	sh.shipped_at = &at;
	o.id = "o1";
	o.status = PANTHERA__ORDERS__V1__ORDER_STATUS__SHIPPED;
	o.shipment = &sh;
	assert_string_equal(
	    encode(routes, &o, 0),
	    "{\"id\":\"o1\",\"status\":\"SHIPPED\",\"shipment\":{\"carrier\":\"UPS\","
	    "\"shippedAt\":\"1970-01-01T00:00:00.000001Z\"}}");
	Panthera__Orders__V1__Order back = PANTHERA__ORDERS__V1__ORDER__INIT;
	assert_status(decode(routes, &back, encode(routes, &o, 0)), RPC_STATUS_OK);
	assert_int_equal(back.status, PANTHERA__ORDERS__V1__ORDER_STATUS__SHIPPED);
	assert_int_equal(back.shipment->shipped_at->nanos, 1000);
	/* With EMIT_UNPOPULATED the enum's zero has its name; unset messages stay out. */
	Panthera__Orders__V1__Order z = PANTHERA__ORDERS__V1__ORDER__INIT;
	const char *e = encode(routes, &z, GW_JSON_EMIT_UNPOPULATED);
	assert_non_null(strstr(e, "\"status\":\"ORDER_STATUS_UNSPECIFIED\""));
	assert_non_null(strstr(e, "\"items\":[]"));
	assert_null(strstr(e, "shipment"));
	assert_null(strstr(e, "createdAt"));
}

static void test_sales_report(void **state)
{
	(void)state;
	/* GET /v1/reports/sales?from=...&to=...: the request from the query. */
	Panthera__Analytics__V1__GetSalesReportRequest q =
	    PANTHERA__ANALYTICS__V1__GET_SALES_REPORT_REQUEST__INIT;
	assert_status(set_text(routes, &q, "from", "2026-01-01"), RPC_STATUS_OK);
	assert_status(set_text(routes, &q, "to", "2026-01-31"), RPC_STATUS_OK);
	assert_string_equal(q.from, "2026-01-01");
	expect_text_error(&q, "since", "2026-01-01", "since", "unknown field");
	/* The report: days and top products, zeros written. */
	Panthera__Analytics__V1__DailySales day = PANTHERA__ANALYTICS__V1__DAILY_SALES__INIT;
	day.date = "2026-01-02";
	day.order_count = 3;
	day.revenue = "36.00";
	Panthera__Analytics__V1__DailySales *days[] = {&day};
	Panthera__Analytics__V1__SalesReport r = PANTHERA__ANALYTICS__V1__SALES_REPORT__INIT;
	r.from = "2026-01-01";
	r.to = "2026-01-31";
	r.currency = "USD";
	r.order_count = 3;
	r.revenue = "36.00";
	r.n_days = 1;
	r.days = days;
	assert_string_equal(
	    encode(routes, &r, GW_JSON_EMIT_UNPOPULATED),
	    "{\"from\":\"2026-01-01\",\"to\":\"2026-01-31\",\"currency\":\"USD\","
	    "\"orderCount\":3,\"revenue\":\"36.00\",\"days\":[{\"date\":\"2026-01-02\","
	    "\"orderCount\":3,\"revenue\":\"36.00\"}],\"topProducts\":[]}");
}

static void test_update_mask_filled_from_body_keys(void **state)
{
	(void)state;
	gw_json_presence pres;
	Panthera__Catalog__V1__UpdateProductRequest r =
	    PANTHERA__CATALOG__V1__UPDATE_PRODUCT_REQUEST__INIT;
	const char *body = "{\"name\":\"New\",\"imageUrl\":\"\",\"price\":\"1.00\"}";
	assert_status(
	    gw_json_decode(routes, &r.base, "*", body, strlen(body), &arena.pb, &pres, &err),
	    RPC_STATUS_OK);
	assert_status(set_text(routes, &r, "product_id", "p9"), RPC_STATUS_OK);
	assert_int_equal(pres.n, 3);
	assert_status(
	    gw_json_fill_update_mask(routes, &r.base, "update_mask", &pres, &arena.pb, &err),
	    RPC_STATUS_OK);
	assert_non_null(r.update_mask);
	assert_int_equal(r.update_mask->n_paths, 3);
	assert_string_equal(r.update_mask->paths[0], "name");
	assert_string_equal(r.update_mask->paths[1], "image_url");
	assert_string_equal(r.update_mask->paths[2], "price");
	assert_string_equal(r.product_id, "p9");
	assert_packs_same(routes, &r.base);

	/* A body that sets the mask keeps it, even empty. */
	Panthera__Catalog__V1__UpdateProductRequest m =
	    PANTHERA__CATALOG__V1__UPDATE_PRODUCT_REQUEST__INIT;
	body = "{\"name\":\"New\",\"updateMask\":\"sku,categoryId\"}";
	assert_status(
	    gw_json_decode(routes, &m.base, NULL, body, strlen(body), &arena.pb, &pres, &err),
	    RPC_STATUS_OK);
	assert_status(gw_json_fill_update_mask(routes, &m.base, NULL, &pres, &arena.pb, &err),
	              RPC_STATUS_OK);
	assert_int_equal(m.update_mask->n_paths, 2);
	assert_string_equal(m.update_mask->paths[1], "category_id");

	/* A mask from the query string wins. */
	Panthera__Users__V1__UpdateUserRequest u = PANTHERA__USERS__V1__UPDATE_USER_REQUEST__INIT;
	body = "{\"firstName\":\"Ann\",\"roles\":[\"ADMIN\"],\"status\":\"ACTIVE\"}";
	assert_status(
	    gw_json_decode(routes, &u.base, NULL, body, strlen(body), &arena.pb, &pres, &err),
	    RPC_STATUS_OK);
	assert_status(set_text(routes, &u, "updateMask", "lastName"), RPC_STATUS_OK);
	assert_status(gw_json_fill_update_mask(routes, &u.base, NULL, &pres, &arena.pb, &err),
	              RPC_STATUS_OK);
	assert_int_equal(u.update_mask->n_paths, 1);
	assert_string_equal(u.update_mask->paths[0], "last_name");
	assert_int_equal(u.n_roles, 1);
	assert_int_equal(u.roles[0], PANTHERA__USERS__V1__ROLE__ADMIN);

	/* An empty body leaves the mask unset. */
	Panthera__Cart__V1__UpdateCartItemRequest c =
	    PANTHERA__CART__V1__UPDATE_CART_ITEM_REQUEST__INIT;
	assert_status(gw_json_decode(routes, &c.base, "*", "{}", 2, &arena.pb, &pres, &err),
	              RPC_STATUS_OK);
	assert_int_equal(pres.n, 0);
	assert_status(gw_json_fill_update_mask(routes, &c.base, NULL, &pres, &arena.pb, &err),
	              RPC_STATUS_OK);
	assert_null(c.update_mask);

	/* A field that is no FieldMask is the gateway's mistake. */
	assert_status(gw_json_fill_update_mask(routes, &c.base, "quantity", &pres, &arena.pb, &err),
	              RPC_STATUS_INTERNAL);
}

static void test_presence_one_level_down(void **state)
{
	(void)state;
	gw_json_presence pres;
	TAll t;
	t_all_init(&t);
	const char *body = "{\"nested\":{\"value\":1,\"name\":\"x\"},\"str\":\"s\",\"ts\":"
	                   "\"2026-01-01T00:00:00Z\",\"child\":{},\"wI64\":null}";
	assert_status(
	    gw_json_decode(all, &t.base, NULL, body, strlen(body), &arena.pb, &pres, &err),
	    RPC_STATUS_OK);
	assert_int_equal(pres.n, 6);
	assert_string_equal(pres.fields[0].field->name, "nested");
	assert_string_equal(pres.fields[0].child->name, "value");
	assert_string_equal(pres.fields[1].child->name, "name");
	assert_string_equal(pres.fields[2].field->name, "str");
	assert_null(pres.fields[2].child);
	assert_string_equal(pres.fields[3].field->name, "ts"); /* a WKT is a leaf */
	assert_null(pres.fields[3].child);
	assert_string_equal(pres.fields[4].field->name, "child"); /* {} replaces */
	assert_null(pres.fields[4].child);
	assert_string_equal(pres.fields[5].field->name, "w_i64"); /* null clears */
	assert_status(gw_json_fill_update_mask(all, &t.base, "mask", &pres, &arena.pb, &err),
	              RPC_STATUS_OK);
	assert_int_equal(t.mask->n_paths, 6);
	assert_string_equal(t.mask->paths[0], "nested.value");
	assert_string_equal(t.mask->paths[1], "nested.name");
	assert_string_equal(t.mask->paths[5], "w_i64");
}

/* ---- errors name the field ------------------------------------------------------ */

static void test_unknown_field_is_named(void **state)
{
	(void)state;
	Panthera__Orders__V1__CreateOrderRequest r =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	expect_error(routes, &r, "{\"shippingAddress\":{\"city\":\"x\",\"zipcode\":\"1\"}}",
	             RPC_STATUS_INVALID_ARGUMENT, "shippingAddress.zipcode", "unknown field");
	expect_error(routes, &r, "{\"coupon\":\"FREE\"}", RPC_STATUS_INVALID_ARGUMENT, "coupon",
	             "unknown field");
	expect_error(routes, &r, "{\"items\":[{\"productId\":\"a\"},{\"qty\":1}]}",
	             RPC_STATUS_INVALID_ARGUMENT, "items[1].qty", "unknown field");
	/* Names are matched exactly: no case folding. */
	expect_error(routes, &r, "{\"PaymentMethodId\":\"x\"}", RPC_STATUS_INVALID_ARGUMENT,
	             "PaymentMethodId", "unknown field");
	/* The error body carries it as a BadRequest field violation. */
	gw_json_buf_reset(&buf);
	assert_status(gw_json_write_decode_error(&buf, &err), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(
	    buf.data, "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\",\"message\":"
	              "\"PaymentMethodId: unknown field\",\"details\":[{\"@type\":"
	              "\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":[{"
	              "\"field\":\"PaymentMethodId\",\"description\":\"unknown field\"}]}]}}");
}

static void test_wrong_type_is_named(void **state)
{
	(void)state;
	Panthera__Orders__V1__CreateOrderRequest r =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	expect_error(routes, &r, "{\"items\":[{\"productId\":\"p\",\"quantity\":\"many\"}]}",
	             RPC_STATUS_INVALID_ARGUMENT, "items[0].quantity", "not a number");
	expect_error(routes, &r, "{\"shippingAddress\":\"Main St\"}", RPC_STATUS_INVALID_ARGUMENT,
	             "shippingAddress", "expected an object, got a string");
	expect_error(routes, &r, "{\"paymentMethodId\":5}", RPC_STATUS_INVALID_ARGUMENT,
	             "paymentMethodId", "expected a string, got a number");
	expect_error(routes, &r, "{\"items\":{}}", RPC_STATUS_INVALID_ARGUMENT, "items",
	             "expected an array, got an object");
	expect_error(routes, &r, "{\"items\":[{\"quantity\":true}]}", RPC_STATUS_INVALID_ARGUMENT,
	             "items[0].quantity", "expected an integer (int32), got a boolean");
	expect_error(routes, &r, "{\"items\":[null]}", RPC_STATUS_INVALID_ARGUMENT, "items[0]",
	             "null in an array");
	expect_error(routes, &r, "[1]", RPC_STATUS_INVALID_ARGUMENT, "", "expected an object");
	expect_error(routes, &r, "\"x\"", RPC_STATUS_INVALID_ARGUMENT, "", "expected an object");
	Panthera__Users__V1__UpdateUserRequest u = PANTHERA__USERS__V1__UPDATE_USER_REQUEST__INIT;
	expect_error(routes, &u, "{\"roles\":[\"USER\",\"ROOT\"]}", RPC_STATUS_INVALID_ARGUMENT,
	             "roles[1]", "unknown value \"ROOT\" of enum panthera.users.v1.Role");
	expect_error(routes, &u, "{\"status\":7}", RPC_STATUS_INVALID_ARGUMENT, "status",
	             "unknown number 7 of enum panthera.users.v1.UserStatus");
	expect_error(routes, &u, "{\"status\":{}}", RPC_STATUS_INVALID_ARGUMENT, "status",
	             "expected an enum name");
	expect_error(routes, &u, "{\"updateMask\":[\"a\"]}", RPC_STATUS_INVALID_ARGUMENT,
	             "updateMask", "expected a field mask string");
}

static void test_malformed_json(void **state)
{
	(void)state;
	Panthera__Orders__V1__CreateOrderRequest r =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	expect_error(routes, &r, "{\"paymentMethodId\":", RPC_STATUS_INVALID_ARGUMENT, "",
	             "malformed JSON at line 1");
	expect_error(routes, &r, "{} {}", RPC_STATUS_INVALID_ARGUMENT, "", "malformed JSON");
	expect_error(routes, &r, "{'a':1}", RPC_STATUS_INVALID_ARGUMENT, "", "malformed JSON");
	/* Empty body: nothing set. */
	assert_status(gw_json_decode(routes, &r.base, NULL, "", 0, &arena.pb, NULL, &err),
	              RPC_STATUS_OK);
	assert_int_equal(r.n_items, 0);
}

static void test_duplicate_keys_rejected(void **state)
{
	(void)state;
	Panthera__Auth__V1__RegisterUserRequest r = PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	expect_error(routes, &r, "{\"email\":\"a@x\",\"email\":\"b@x\"}",
	             RPC_STATUS_INVALID_ARGUMENT, "email", "field given twice");
	expect_error(routes, &r, "{\"email\":\"a@x\",\"\\u0065mail\":\"b@x\"}",
	             RPC_STATUS_INVALID_ARGUMENT, "email", "field given twice");
	/* The same field by its two names is a duplicate too. */
	expect_error(routes, &r, "{\"firstName\":\"A\",\"first_name\":\"B\"}",
	             RPC_STATUS_INVALID_ARGUMENT, "first_name", "field given twice");
}

static void test_invalid_utf8_rejected(void **state)
{
	(void)state;
	Panthera__Auth__V1__RegisterUserRequest r = PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	expect_error(routes, &r, "{\"email\":\"a\xff@x\"}", RPC_STATUS_INVALID_ARGUMENT, "",
	             "malformed JSON");
	expect_error(routes, &r, "{\"email\":\"\xc0\xaf\"}", RPC_STATUS_INVALID_ARGUMENT, "",
	             "malformed JSON"); /* overlong '/' */
	expect_error(routes, &r, "{\"email\":\"\xed\xa0\x80\"}", RPC_STATUS_INVALID_ARGUMENT, "",
	             "malformed JSON"); /* a surrogate */
	expect_error(routes, &r, "{\"email\":\"\\ud800\"}", RPC_STATUS_INVALID_ARGUMENT, "",
	             "malformed JSON"); /* a lone escaped surrogate */
	expect_error(routes, &r, "{\"email\":\"a\\u0000b\"}", RPC_STATUS_INVALID_ARGUMENT, "",
	             "malformed JSON"); /* NUL cannot live in a C string */
	assert_status(decode(routes, &r, "{\"email\":\"\\u00e9\xc3\xa9\\ud83d\\ude00\"}"),
	              RPC_STATUS_OK);
	assert_string_equal(r.email, "\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80");
}

static void test_depth_bomb_rejected(void **state)
{
	(void)state;
	/* test.AllTypes nests through `child`: 31 levels pass, 33 do not. */
	char body[4096];
	for (int levels = 31; levels <= 33; levels++) {
		size_t o = 0;
		for (int i = 0; i < levels - 1; i++)
			o += (size_t)sprintf(body + o, "{\"child\":");
		o += (size_t)sprintf(body + o, "{\"i32\":1}");
		for (int i = 0; i < levels - 1; i++)
			body[o++] = '}';
		body[o] = '\0';
		TAll t;
		t_all_init(&t);
		rpc_status st = decode(all, &t, body);
		if (levels <= 32) {
			assert_status(st, RPC_STATUS_OK);
		} else {
			assert_int_equal(st, RPC_STATUS_INVALID_ARGUMENT);
			assert_non_null(strstr(err.description, "nested deeper than 32"));
			assert_int_equal(strncmp(err.field, "child.child.child", 17), 0);
		}
	}
	/* A bracket bomb stops at its second bracket: the reader keeps no
	 * stack, and the decoder goes deeper only where the message does. */
	size_t n = 200000;
	char *bomb = malloc(n);
	assert_non_null(bomb);
	memset(bomb, '[', n);
	TAll t;
	t_all_init(&t);
	assert_int_equal(gw_json_decode(all, &t.base, "r_i64", bomb, n, &arena.pb, NULL, &err),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(err.field, "rI64[0]");
	assert_int_equal(gw_json_decode(all, &t.base, NULL, bomb, n, &arena.pb, NULL, &err),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(err.description, "expected an object, got an array"));
	memset(bomb, '{', n);
	assert_int_equal(gw_json_decode(all, &t.base, NULL, bomb, n, &arena.pb, NULL, &err),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(err.description, "malformed JSON at line 1 column 2"));
	free(bomb);
	/* Arrays nest too: an array inside an array is a type error at once. */
	expect_error(all, &t, "{\"rI64\":[[1]]}", RPC_STATUS_INVALID_ARGUMENT, "rI64[0]",
	             "expected an integer");
}

static void test_huge_array_rejected(void **state)
{
	(void)state;
	size_t n = 70000;
	char *body = malloc(n * 2 + 16);
	assert_non_null(body);
	size_t o = (size_t)sprintf(body, "{\"rI64\":[");
	for (size_t i = 0; i < n; i++) {
		body[o++] = '1';
		body[o++] = ',';
	}
	body[o - 1] = ']';
	body[o++] = '}';
	body[o] = '\0';
	TAll t;
	t_all_init(&t);
	expect_error(all, &t, body, RPC_STATUS_INVALID_ARGUMENT, "rI64[65535]",
	             "more than 65536 values");
	assert_int_equal(t.n_r_i64, 0);
	free(body);

	/* A schema with tighter limits counts every value. */
	gw_json_schema *tight;
	const ProtobufCMessageDescriptor *roots[] = {&t_all_desc};
	gw_json_limits lim = {.max_depth = 3, .max_values = 5};
	assert_status(gw_json_schema_new(&tight, roots, 1, &lim, &err), RPC_STATUS_OK);
	assert_status(decode(tight, &t, "{\"rI64\":[1,2,3],\"i32\":1}"), RPC_STATUS_OK);
	expect_error(tight, &t, "{\"rI64\":[1,2,3],\"i32\":1,\"u32\":2}",
	             RPC_STATUS_INVALID_ARGUMENT, "u32", "more than 5 values");
	expect_error(tight, &t, "{\"child\":{\"child\":{\"child\":{}}}}",
	             RPC_STATUS_INVALID_ARGUMENT, "child.child.child", "nested deeper than 3");
	gw_json_schema_free(tight);
}

/* ---- every type ---------------------------------------------------------------- */

static void test_int32_range_checked(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t, "{\"i32\":2147483647,\"s32\":-2147483648,\"sfx32\":\"-5\"}"),
	              RPC_STATUS_OK);
	assert_int_equal(t.i32, INT32_MAX);
	assert_int_equal(t.s32, INT32_MIN);
	assert_int_equal(t.sfx32, -5);
	expect_error(all, &t, "{\"i32\":2147483648}", RPC_STATUS_INVALID_ARGUMENT, "i32",
	             "out of range for int32");
	expect_error(all, &t, "{\"s32\":-2147483649}", RPC_STATUS_INVALID_ARGUMENT, "s32",
	             "out of range for int32");
	expect_error(all, &t, "{\"i32\":\"2147483648\"}", RPC_STATUS_INVALID_ARGUMENT, "i32",
	             "out of range for int32");
	expect_error(all, &t, "{\"u32\":-1}", RPC_STATUS_INVALID_ARGUMENT, "u32",
	             "out of range for uint32");
	expect_error(all, &t, "{\"fx32\":4294967296}", RPC_STATUS_INVALID_ARGUMENT, "fx32",
	             "out of range for uint32");
	expect_error(all, &t, "{\"i32\":1.5}", RPC_STATUS_INVALID_ARGUMENT, "i32",
	             "not an integer");
	expect_error(all, &t, "{\"i32\":\" 1\"}", RPC_STATUS_INVALID_ARGUMENT, "i32",
	             "not a number");
	expect_error(all, &t, "{\"i32\":\"01\"}", RPC_STATUS_INVALID_ARGUMENT, "i32",
	             "not a number");
	expect_error(all, &t, "{\"i32\":\"0x10\"}", RPC_STATUS_INVALID_ARGUMENT, "i32",
	             "not a number");
	assert_status(decode(all, &t, "{\"i32\":1e3,\"u32\":\"2.0e1\",\"fx32\":4294967295}"),
	              RPC_STATUS_OK);
	assert_int_equal(t.i32, 1000);
	assert_int_equal(t.u32, 20);
	assert_int_equal(t.fx32, UINT32_MAX);
}

static void test_int64_boundaries(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t,
	                     "{\"i64\":\"9223372036854775807\",\"s64\":\"-9223372036854775808\","
	                     "\"sfx64\":-9223372036854775808,\"u64\":\"18446744073709551615\","
	                     "\"fx64\":9223372036854775807}"),
	              RPC_STATUS_OK);
	assert_true(t.i64 == INT64_MAX);
	assert_true(t.s64 == INT64_MIN);
	assert_true(t.sfx64 == INT64_MIN);
	assert_true(t.u64 == UINT64_MAX);
	assert_true(t.fx64 == (uint64_t)INT64_MAX);
	assert_string_equal(encode(all, &t, 0),
	                    "{\"i64\":\"9223372036854775807\",\"u64\":\"18446744073709551615\","
	                    "\"s64\":\"-9223372036854775808\",\"fx64\":\"9223372036854775807\","
	                    "\"sfx64\":\"-9223372036854775808\"}");
	expect_error(all, &t, "{\"i64\":\"9223372036854775808\"}", RPC_STATUS_INVALID_ARGUMENT,
	             "i64", "out of range for int64");
	expect_error(all, &t, "{\"i64\":\"-9223372036854775809\"}", RPC_STATUS_INVALID_ARGUMENT,
	             "i64", "out of range for int64");
	expect_error(all, &t, "{\"u64\":\"18446744073709551616\"}", RPC_STATUS_INVALID_ARGUMENT,
	             "u64", "out of range for uint64");
	expect_error(all, &t, "{\"u64\":-1}", RPC_STATUS_INVALID_ARGUMENT, "u64",
	             "out of range for uint64");
	expect_error(all, &t, "{\"u64\":\"-1\"}", RPC_STATUS_INVALID_ARGUMENT, "u64",
	             "out of range for uint64");
	/* Doubles are exact only below 2^53: 2^53 + 1 would read as 2^53. */
	expect_error(all, &t, "{\"i64\":9007199254740993.0}", RPC_STATUS_INVALID_ARGUMENT, "i64",
	             "send it as a string");
	expect_error(all, &t, "{\"i64\":\"1e19\"}", RPC_STATUS_INVALID_ARGUMENT, "i64",
	             "out of range");
	assert_status(decode(all, &t, "{\"i64\":9007199254740991.0,\"s64\":9007199254740993}"),
	              RPC_STATUS_OK);
	assert_true(t.i64 == 9007199254740991LL);
	assert_true(t.s64 == 9007199254740993LL); /* an integer token is exact */
	/* Integer tokens are read exactly, past int64 too. */
	assert_status(
	    decode(all, &t, "{\"u64\":18446744073709551615,\"i64\":-9223372036854775808}"),
	    RPC_STATUS_OK);
	assert_true(t.u64 == UINT64_MAX);
	assert_true(t.i64 == INT64_MIN);
	expect_error(all, &t, "{\"u64\":18446744073709551616}", RPC_STATUS_INVALID_ARGUMENT, "u64",
	             "out of range for uint64");
	expect_error(all, &t, "{\"i64\":-9223372036854775809}", RPC_STATUS_INVALID_ARGUMENT, "i64",
	             "out of range for int64");
	expect_error(all, &t, "{\"db\":1e400}", RPC_STATUS_INVALID_ARGUMENT, "db",
	             "out of range for double");
}

static void test_floats_and_specials(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t,
	                     "{\"db\":\"NaN\",\"fl\":\"-Infinity\",\"rDb\":[1.5,\"2.25\","
	                     "\"Infinity\",-0.0,1e-300,3]}"),
	              RPC_STATUS_OK);
	assert_true(isnan(t.db));
	assert_true(isinf(t.fl) && t.fl < 0);
	assert_int_equal(t.n_r_db, 6);
	assert_true(t.r_db[1] == 2.25);
	assert_true(isinf(t.r_db[2]));
	assert_true(t.r_db[3] == 0 && signbit(t.r_db[3]));
	assert_string_equal(
	    encode(all, &t, 0),
	    "{\"fl\":\"-Infinity\",\"db\":\"NaN\",\"rDb\":[1.5,2.25,\"Infinity\",-0.0,"
	    "1e-300,3]}");
	expect_error(all, &t, "{\"fl\":3.5e38}", RPC_STATUS_INVALID_ARGUMENT, "fl",
	             "out of range for float");
	expect_error(all, &t, "{\"fl\":\"-3.40282357e38\"}", RPC_STATUS_INVALID_ARGUMENT, "fl",
	             "out of range for float");
	/* FLT_MAX's shortest text is a little past FLT_MAX, and reads back. */
	assert_status(decode(all, &t, "{\"fl\":3.4028235e38,\"rDb\":[]}"), RPC_STATUS_OK);
	assert_true(t.fl == FLT_MAX);
	assert_status(decode(all, &t, "{\"fl\":\"-3.4028235e+38\"}"), RPC_STATUS_OK);
	assert_true(t.fl == -FLT_MAX);
	expect_error(all, &t, "{\"db\":\"1e999\"}", RPC_STATUS_INVALID_ARGUMENT, "db",
	             "out of range for double");
	expect_error(all, &t, "{\"db\":\"nan\"}", RPC_STATUS_INVALID_ARGUMENT, "db",
	             "not a number");
	expect_error(all, &t, "{\"db\":true}", RPC_STATUS_INVALID_ARGUMENT, "db",
	             "expected a number");
	/* Shortest text that reads back. */
	TAll f;
	t_all_init(&f);
	f.fl = 0.1f;
	f.db = 0.1;
	assert_string_equal(encode(all, &f, 0), "{\"fl\":0.1,\"db\":0.1}");
	f.fl = FLT_MAX;
	f.db = DBL_MIN;
	assert_string_equal(encode(all, &f, 0),
	                    "{\"fl\":3.4028235e+38,\"db\":2.2250738585072014e-308}");
}

static void test_bool_string_bytes_enum(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t,
	                     "{\"b\":true,\"str\":\"x\",\"by\":\"aGVsbG8=\",\"en\":\"PAID\","
	                     "\"rEn\":[1,\"REFUNDED\"],\"rB\":[true,false],"
	                     "\"rBy\":[\"aGVsbG8\",\"-_8\",\"\",\"+/8=\"]}"),
	              RPC_STATUS_OK);
	assert_true(t.b);
	assert_int_equal(t.by.len, 5);
	assert_memory_equal(t.by.data, "hello", 5);
	assert_int_equal(t.en, PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	assert_int_equal(t.r_en[0], PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT);
	assert_int_equal(t.r_en[1], PANTHERA__ORDERS__V1__ORDER_STATUS__REFUNDED);
	assert_int_equal(t.n_r_by, 4);
	assert_int_equal(t.r_by[0].len, 5);
	assert_int_equal(t.r_by[1].len, 2);
	assert_memory_equal(t.r_by[1].data, "\xfb\xff", 2);
	assert_int_equal(t.r_by[2].len, 0);
	assert_memory_equal(t.r_by[3].data, "\xfb\xff", 2);
	assert_string_equal(
	    encode(all, &t, 0),
	    "{\"b\":true,\"str\":\"x\",\"by\":\"aGVsbG8=\",\"en\":\"PAID\",\"rEn\":["
	    "\"PENDING_PAYMENT\",\"REFUNDED\"],\"rB\":[true,false],\"rBy\":["
	    "\"aGVsbG8=\",\"+/8=\",\"\",\"+/8=\"]}");
	expect_error(all, &t, "{\"b\":\"true\"}", RPC_STATUS_INVALID_ARGUMENT, "b",
	             "expected true or false, got a string");
	expect_error(all, &t, "{\"b\":1}", RPC_STATUS_INVALID_ARGUMENT, "b",
	             "expected true or false");
	expect_error(all, &t, "{\"by\":\"a===\"}", RPC_STATUS_INVALID_ARGUMENT, "by", "base64");
	expect_error(all, &t, "{\"by\":\"aGVsbG8\\n\"}", RPC_STATUS_INVALID_ARGUMENT, "by",
	             "base64");
	expect_error(all, &t, "{\"by\":\"a\"}", RPC_STATUS_INVALID_ARGUMENT, "by", "base64");
	expect_error(all, &t, "{\"en\":\"paid\"}", RPC_STATUS_INVALID_ARGUMENT, "en",
	             "unknown value");
	expect_error(all, &t, "{\"en\":4294967296}", RPC_STATUS_INVALID_ARGUMENT, "en",
	             "unknown number");
	/* An enum number this build does not know is written as a number. */
	t.en = 42;
	assert_non_null(strstr(encode(all, &t, 0), "\"en\":42"));
}

static void test_repeated_and_maps(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(
	    decode(all, &t,
	           "{\"rI64\":[\"1\",2,-3],\"rStr\":[\"a\",\"\"],\"rNested\":[{\"value\":1},{}],"
	           "\"mStr\":{\"a\":1,\"\":2},\"m_i32\":{\"-7\":\"x\",\"2147483647\":\"y\"},"
	           "\"mBool\":{\"true\":{\"name\":\"t\"},\"false\":{}},"
	           "\"rTs\":[\"2026-01-15T10:00:00Z\"]}"),
	    RPC_STATUS_OK);
	assert_int_equal(t.n_r_i64, 3);
	assert_true(t.r_i64[2] == -3);
	assert_int_equal(t.n_r_str, 2);
	assert_string_equal(t.r_str[1], "");
	assert_int_equal(t.n_r_nested, 2);
	assert_int_equal(t.r_nested[0]->value, 1);
	assert_int_equal(t.n_m_str, 2);
	assert_string_equal(t.m_str[0]->key, "a");
	assert_int_equal(t.m_str[1]->value, 2);
	assert_int_equal(t.m_i32[0]->key, -7);
	assert_string_equal(t.m_i32[1]->value, "y");
	assert_true(t.m_bool[0]->key);
	assert_string_equal(t.m_bool[0]->value->name, "t");
	assert_int_equal(t.r_ts[0]->seconds, 1768471200);
	const char *want =
	    "{\"rI64\":[\"1\",\"2\",\"-3\"],\"rStr\":[\"a\",\"\"],\"rNested\":[{"
	    "\"value\":1},{}],\"mStr\":{\"a\":1,\"\":2},\"mI32\":{\"-7\":\"x\","
	    "\"2147483647\":\"y\"},\"mBool\":{\"true\":{\"name\":\"t\"},\"false\":{}},"
	    "\"rTs\":[\"2026-01-15T10:00:00Z\"]}";
	assert_string_equal(encode(all, &t, 0), want);
	assert_packs_same(all, &t.base);
	expect_error(all, &t, "{\"mI32\":{\"01\":\"x\"}}", RPC_STATUS_INVALID_ARGUMENT, "mI32[01]",
	             "map key is not a decimal int32");
	expect_error(all, &t, "{\"mI32\":{\"2147483648\":\"x\"}}", RPC_STATUS_INVALID_ARGUMENT,
	             "mI32[2147483648]", "map key out of range");
	expect_error(all, &t, "{\"mBool\":{\"yes\":{}}}", RPC_STATUS_INVALID_ARGUMENT, "mBool[yes]",
	             "\"true\" or \"false\"");
	expect_error(all, &t, "{\"mStr\":{\"a\":null}}", RPC_STATUS_INVALID_ARGUMENT, "mStr[a]",
	             "null as a map value");
	expect_error(all, &t, "{\"mStr\":{\"a\":\"x\"}}", RPC_STATUS_INVALID_ARGUMENT, "mStr[a]",
	             "not a number");
	expect_error(all, &t, "{\"mStr\":[1]}", RPC_STATUS_INVALID_ARGUMENT, "mStr",
	             "expected an object (map)");
	expect_error(all, &t, "{\"mBool\":{\"true\":{\"nope\":1}}}", RPC_STATUS_INVALID_ARGUMENT,
	             "mBool[true].nope", "unknown field");
	/* A failed array leaves the field as it was. */
	assert_int_equal(t.n_r_i64, 3);
	expect_error(all, &t, "{\"rI64\":[1,\"x\"]}", RPC_STATUS_INVALID_ARGUMENT, "rI64[1]",
	             "not a number");
	assert_int_equal(t.n_r_i64, 3);
	/* A map entry without its value (as protobuf-c unpacks one) holds
	 * the value type's default. */
	t.m_bool[1]->value = NULL;
	assert_non_null(
	    strstr(encode(all, &t, 0), "\"mBool\":{\"true\":{\"name\":\"t\"},\"false\":{}}"));
	/* Empty ones are written with EMIT_UNPOPULATED. */
	TAll e;
	t_all_init(&e);
	const char *u = encode(all, &e, GW_JSON_EMIT_UNPOPULATED);
	assert_non_null(strstr(u, "\"rI64\":[]"));
	assert_non_null(strstr(u, "\"mStr\":{}"));
	assert_null(strstr(u, "\"optI32\"")); /* explicit presence, unset */
	assert_null(strstr(u, "\"oStr\""));   /* oneof, unset */
	assert_null(strstr(u, "\"ts\""));     /* message, unset */
}

static void test_oneof_one_member(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	expect_error(all, &t, "{\"oStr\":\"a\",\"oI32\":1}", RPC_STATUS_INVALID_ARGUMENT, "oI32",
	             "\"oStr\" and \"oI32\" are members of one oneof");
	t_all_init(&t);
	assert_status(decode(all, &t, "{\"oI32\":0}"), RPC_STATUS_OK);
	assert_int_equal(t.choice_case, 26);
	assert_string_equal(encode(all, &t, 0), "{\"oI32\":0}"); /* set, though zero */
	assert_status(decode(all, &t, "{\"oMsg\":{\"value\":3}}"), RPC_STATUS_OK);
	assert_int_equal(t.choice_case, 27);
	assert_int_equal(t.o_msg->value, 3);
	assert_status(decode(all, &t, "{\"oStr\":\"s\"}"), RPC_STATUS_OK);
	assert_int_equal(t.choice_case, 25);
	assert_string_equal(encode(all, &t, 0), "{\"oStr\":\"s\"}");
	assert_packs_same(all, &t.base);
	assert_status(decode(all, &t, "{\"oMsg\":null}"), RPC_STATUS_OK);
	assert_int_equal(t.choice_case, 25); /* null of another member leaves it */
	assert_status(decode(all, &t, "{\"oStr\":null}"), RPC_STATUS_OK);
	assert_int_equal(t.choice_case, 0);
	assert_string_equal(encode(all, &t, 0), "{}");
	/* A oneof set from text, then the body names another member. */
	assert_status(set_text(all, &t, "oI32", "5"), RPC_STATUS_OK);
	assert_int_equal(t.choice_case, 26);
	assert_status(decode(all, &t, "{\"oMsg\":{}}"), RPC_STATUS_OK);
	assert_int_equal(t.choice_case, 27);
	assert_non_null(t.o_msg);
	assert_int_equal(t.o_msg->value, 0); /* a fresh message, not the int's bytes */
}

static void test_null_clears(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t,
	                     "{\"str\":\"x\",\"i64\":5,\"nested\":{\"value\":1},"
	                     "\"rI64\":[1],\"mStr\":{\"a\":1},\"optI32\":0,\"optStr\":\"\","
	                     "\"by\":\"AA==\",\"wB\":false}"),
	              RPC_STATUS_OK);
	assert_true(t.has_opt_i32);
	assert_string_equal(encode(all, &t, 0),
	                    "{\"i64\":\"5\",\"str\":\"x\",\"by\":\"AA==\",\"nested\":{\"value\":1},"
	                    "\"rI64\":[\"1\"],\"mStr\":{\"a\":1},\"wB\":false,\"optI32\":0,"
	                    "\"optStr\":\"\"}");
	assert_status(decode(all, &t,
	                     "{\"str\":null,\"i64\":null,\"nested\":null,\"rI64\":null,"
	                     "\"mStr\":null,\"optI32\":null,\"optStr\":null,\"by\":null,"
	                     "\"wB\":null}"),
	              RPC_STATUS_OK);
	assert_false(t.has_opt_i32);
	assert_null(t.opt_str);
	assert_null(t.nested);
	assert_string_equal(t.str, "");
	assert_string_equal(encode(all, &t, 0), "{}");
	assert_packs_same(all, &t.base);
}

static void test_timestamps(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	struct {
		const char *in;
		int64_t seconds;
		int32_t nanos;
		const char *out;
	} ok[] = {
	    {"2026-01-15T10:00:00Z", 1768471200, 0, "2026-01-15T10:00:00Z"},
	    {"2026-01-15T12:00:00+02:00", 1768471200, 0, "2026-01-15T10:00:00Z"},
	    {"2026-01-15t10:00:00.5z", 1768471200, 500000000, "2026-01-15T10:00:00.500Z"},
	    {"1970-01-01T00:00:00.000001Z", 0, 1000, "1970-01-01T00:00:00.000001Z"},
	    {"1969-12-31T23:59:59.123456789Z", -1, 123456789, "1969-12-31T23:59:59.123456789Z"},
	    {"2024-02-29T00:00:00Z", 1709164800, 0, "2024-02-29T00:00:00Z"},
	    {"2000-02-29T23:59:59-00:30", 951870599, 0, "2000-03-01T00:29:59Z"},
	    {"0001-01-01T00:00:00Z", -62135596800LL, 0, "0001-01-01T00:00:00Z"},
	    {"9999-12-31T23:59:59.999999999Z", 253402300799LL, 999999999,
	     "9999-12-31T23:59:59.999999999Z"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char body[128];
		snprintf(body, sizeof(body), "{\"ts\":\"%s\"}", ok[i].in);
		assert_status(decode(all, &t, body), RPC_STATUS_OK);
		if (t.ts->seconds != ok[i].seconds || t.ts->nanos != ok[i].nanos)
			fail_msg("%s: %lld %d", ok[i].in, (long long)t.ts->seconds, t.ts->nanos);
		snprintf(body, sizeof(body), "{\"ts\":\"%s\"}", ok[i].out);
		assert_string_equal(encode(all, &t, 0), body);
	}
	const char *bad[] = {
	    "2023-02-29T00:00:00Z",
	    "2026-13-01T00:00:00Z",
	    "2026-01-15T24:00:00Z",
	    "2026-01-15T10:00:60Z",
	    "2026-01-15 10:00:00Z",
	    "2026-01-15T10:00:00",
	    "2026-01-15T10:00:00.Z",
	    "2026-01-15T10:00:00.1234567890Z",
	    "0000-12-31T23:59:59Z",
	    "10000-01-01T00:00:00Z",
	    "9999-12-31T23:59:59-01:00",
	    "0001-01-01T00:00:00+00:01",
	    "2026-01-15T10:00:00+2:00",
	    "2026-01-15T10:00:00+24:00",
	    "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[128];
		snprintf(body, sizeof(body), "{\"ts\":\"%s\"}", bad[i]);
		rpc_status st = decode(all, &t, body);
		if (st != RPC_STATUS_INVALID_ARGUMENT || strcmp(err.field, "ts") != 0)
			fail_msg("%s accepted (%s)", bad[i], rpc_status_name(st));
	}
	expect_error(all, &t, "{\"ts\":1768471200}", RPC_STATUS_INVALID_ARGUMENT, "ts",
	             "expected an RFC 3339 timestamp string, got a number");
	/* Every day of the range reads back as it was written. */
	for (int64_t s = -62135596800LL; s <= 253402300799LL; s += 86400 * 7 + 3601) {
		char txt[GW_JSON_TIMESTAMP_MAX];
		size_t n = gw_json_timestamp_format(s, 0, txt);
		int64_t back;
		int32_t ns;
		const char *why;
		assert_true(n > 0);
		assert_int_equal(gw_json_timestamp_parse(txt, n, &back, &ns, &why), 0);
		if (back != s)
			fail_msg("%lld -> %s -> %lld", (long long)s, txt, (long long)back);
	}
	/* A service's Timestamp out of range is its bug, not the client's. */
	Google__Protobuf__Timestamp far = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	far.seconds = 253402300800LL;
	t.ts = &far;
	gw_json_buf_reset(&buf);
	assert_int_equal(gw_json_encode(all, &t.base, NULL, 0, &buf, &err), RPC_STATUS_INTERNAL);
	far.seconds = 0;
	far.nanos = -1;
	assert_int_equal(gw_json_encode(all, &t.base, NULL, 0, &buf, &err), RPC_STATUS_INTERNAL);
}

static void test_durations(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t, "{\"dur\":\"1.5s\"}"), RPC_STATUS_OK);
	assert_int_equal(t.dur->seconds, 1);
	assert_int_equal(t.dur->nanos, 500000000);
	assert_string_equal(encode(all, &t, 0), "{\"dur\":\"1.500s\"}");
	assert_status(decode(all, &t, "{\"dur\":\"-0.000000001s\"}"), RPC_STATUS_OK);
	assert_int_equal(t.dur->seconds, 0);
	assert_int_equal(t.dur->nanos, -1);
	assert_string_equal(encode(all, &t, 0), "{\"dur\":\"-0.000000001s\"}");
	assert_status(decode(all, &t, "{\"dur\":\"-315576000000s\"}"), RPC_STATUS_OK);
	assert_string_equal(encode(all, &t, 0), "{\"dur\":\"-315576000000s\"}");
	const char *bad[] = {"1",
	                     "1.5",
	                     "s",
	                     "-s",
	                     "1.s",
	                     ".5s",
	                     "1.0000000001s",
	                     "315576000001s",
	                     "1000000000000s",
	                     "+1s",
	                     "1e3s",
	                     " 1s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"dur\":\"%s\"}", bad[i]);
		rpc_status st = decode(all, &t, body);
		if (st != RPC_STATUS_INVALID_ARGUMENT || strcmp(err.field, "dur") != 0)
			fail_msg("%s accepted (%s)", bad[i], rpc_status_name(st));
	}
	Google__Protobuf__Duration mixed = GOOGLE__PROTOBUF__DURATION__INIT;
	mixed.seconds = 1;
	mixed.nanos = -1;
	t.dur = &mixed;
	gw_json_buf_reset(&buf);
	assert_int_equal(gw_json_encode(all, &t.base, NULL, 0, &buf, &err), RPC_STATUS_INTERNAL);
}

static void test_field_masks(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t, "{\"mask\":\"a.bC,dE,shippingAddress.zipCode,f_g\"}"),
	              RPC_STATUS_OK);
	assert_int_equal(t.mask->n_paths, 4);
	assert_string_equal(t.mask->paths[0], "a.b_c");
	assert_string_equal(t.mask->paths[1], "d_e");
	assert_string_equal(t.mask->paths[2], "shipping_address.zip_code");
	assert_string_equal(t.mask->paths[3], "f_g");
	assert_string_equal(encode(all, &t, 0),
	                    "{\"mask\":\"a.bC,dE,shippingAddress.zipCode,fG\"}");
	assert_status(decode(all, &t, "{\"mask\":\"\"}"), RPC_STATUS_OK);
	assert_int_equal(t.mask->n_paths, 0);
	assert_string_equal(encode(all, &t, 0), "{\"mask\":\"\"}");
	expect_error(all, &t, "{\"mask\":\"a,,b\"}", RPC_STATUS_INVALID_ARGUMENT, "mask",
	             "empty field mask path");
	expect_error(all, &t, "{\"mask\":\"a..b\"}", RPC_STATUS_INVALID_ARGUMENT, "mask",
	             "empty component");
	expect_error(all, &t, "{\"mask\":\"a b\"}", RPC_STATUS_INVALID_ARGUMENT, "mask",
	             "not dotted field names");
	expect_error(all, &t, "{\"mask\":\"a.1b\"}", RPC_STATUS_INVALID_ARGUMENT, "mask",
	             "not dotted field names");
	/* Paths the JSON form cannot carry back unchanged are a service's bug. */
	const char *odd[] = {"aB", "a..b", "", "1a", "a-b"};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		char *paths[] = {(char *)odd[i]};
		Google__Protobuf__FieldMask fm = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
		fm.n_paths = 1;
		fm.paths = paths;
		t.mask = &fm;
		gw_json_buf_reset(&buf);
		if (gw_json_encode(all, &t.base, NULL, 0, &buf, &err) != RPC_STATUS_INTERNAL)
			fail_msg("FieldMask path \"%s\" written", odd[i]);
	}
}

static void test_wrappers_and_empty(void **state)
{
	(void)state;
	TAll t;
	t_all_init(&t);
	assert_status(decode(all, &t,
	                     "{\"wI64\":\"-5\",\"wStr\":\"\",\"wB\":false,\"wU64\":7,"
	                     "\"wDb\":\"NaN\",\"wBy\":\"AQI=\",\"empty\":{}}"),
	              RPC_STATUS_OK);
	assert_true(t.w_i64->value == -5);
	assert_string_equal(t.w_str->value, "");
	assert_false(t.w_b->value);
	assert_true(t.w_u64->value == 7);
	assert_int_equal(t.w_by->value.len, 2);
	assert_non_null(t.empty);
	assert_string_equal(
	    encode(all, &t, 0),
	    "{\"wI64\":\"-5\",\"wStr\":\"\",\"wB\":false,\"empty\":{},\"wU64\":\"7\","
	    "\"wDb\":\"NaN\",\"wBy\":\"AQI=\"}");
	assert_packs_same(all, &t.base);
	expect_error(all, &t, "{\"wI64\":{\"value\":1}}", RPC_STATUS_INVALID_ARGUMENT, "wI64",
	             "expected an integer");
	expect_error(all, &t, "{\"empty\":{\"x\":1}}", RPC_STATUS_INVALID_ARGUMENT, "empty.x",
	             "unknown field");
	expect_error(all, &t, "{\"empty\":[]}", RPC_STATUS_INVALID_ARGUMENT, "empty",
	             "expected an object");
	assert_status(decode(all, &t, "{\"wI64\":null,\"empty\":null}"), RPC_STATUS_OK);
	assert_null(t.w_i64);
	assert_null(t.empty);
}

/* ---- body: "field" ------------------------------------------------------------ */

static void test_body_field(void **state)
{
	(void)state;
	gw_json_presence pres;
	TAll t;
	t_all_init(&t);
	const char *b = "{\"value\":4,\"name\":\"n\"}";
	assert_status(gw_json_decode(all, &t.base, "nested", b, strlen(b), &arena.pb, &pres, &err),
	              RPC_STATUS_OK);
	assert_int_equal(t.nested->value, 4);
	assert_int_equal(pres.n, 2); /* keys of the sub-message, as AIP-134 has them */
	assert_string_equal(pres.fields[0].field->name, "value");
	assert_null(pres.fields[0].child);
	b = "{\"value\":4,\"nom\":1}";
	assert_int_equal(
	    gw_json_decode(all, &t.base, "nested", b, strlen(b), &arena.pb, &pres, &err),
	    RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(err.field, "nested.nom");
	b = "[1,\"2\"]";
	assert_status(gw_json_decode(all, &t.base, "r_i64", b, strlen(b), &arena.pb, NULL, &err),
	              RPC_STATUS_OK);
	assert_int_equal(t.n_r_i64, 2);
	b = "[1,\"x\"]";
	assert_int_equal(gw_json_decode(all, &t.base, "r_i64", b, strlen(b), &arena.pb, NULL, &err),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(err.field, "rI64[1]");
	b = "\"just a string\"";
	assert_status(gw_json_decode(all, &t.base, "str", b, strlen(b), &arena.pb, NULL, &err),
	              RPC_STATUS_OK);
	assert_string_equal(t.str, "just a string");
	b = "\"2026-01-15T10:00:00Z\"";
	assert_status(gw_json_decode(all, &t.base, "ts", b, strlen(b), &arena.pb, &pres, &err),
	              RPC_STATUS_OK);
	assert_int_equal(t.ts->seconds, 1768471200);
	/* The field is named by its proto name, as the route table has it. */
	assert_int_equal(gw_json_decode(all, &t.base, "rI64", "[]", 2, &arena.pb, NULL, &err),
	                 RPC_STATUS_INTERNAL);
	assert_int_equal(gw_json_decode(all, &t.base, "nope", "[]", 2, &arena.pb, NULL, &err),
	                 RPC_STATUS_INTERNAL);
	/* And the response side: one field alone. */
	gw_json_buf_reset(&buf);
	assert_status(gw_json_encode(all, &t.base, "r_i64", 0, &buf, &err), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(buf.data, "[\"1\",\"2\"]");
	gw_json_buf_reset(&buf);
	assert_status(gw_json_encode(all, &t.base, "child", 0, &buf, &err), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(buf.data, "null");
	gw_json_buf_reset(&buf);
	assert_status(gw_json_encode(all, &t.base, "i32", 0, &buf, &err), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(buf.data, "0");
	assert_int_equal(gw_json_encode(all, &t.base, "zzz", 0, &buf, &err), RPC_STATUS_INTERNAL);
}

/* ---- text values ------------------------------------------------------------ */

static void test_query_and_path_text(void **state)
{
	(void)state;
	Panthera__Catalog__V1__ListProductsRequest r =
	    PANTHERA__CATALOG__V1__LIST_PRODUCTS_REQUEST__INIT;
	assert_status(set_text(routes, &r, "pageSize", "10"), RPC_STATUS_OK);
	assert_int_equal(r.page_size, 10);
	assert_status(set_text(routes, &r, "page_size", "20"), RPC_STATUS_OK);
	assert_int_equal(r.page_size, 20); /* the last one wins */
	assert_status(set_text(routes, &r, "sortBy", "-price"), RPC_STATUS_OK);
	assert_string_equal(r.sort_by, "-price");
	assert_status(set_text(routes, &r, "minPrice", ""), RPC_STATUS_OK);
	assert_string_equal(r.min_price, "");
	expect_text_error(&r, "pageSiz", "1", "pageSiz", "unknown field");
	expect_text_error(&r, "page", "abc", "page", "not a number for int32");
	expect_text_error(&r, "page", "2147483648", "page", "out of range for int32");
	expect_text_error(&r, "search", "a\xff", "search", "UTF-8");
	static const char nul[] = {'a', '\0', 'b'};
	assert_int_equal(gw_json_set_text(routes, &r.base, "search", 6, nul, 3, &arena.pb, &err),
	                 RPC_STATUS_INVALID_ARGUMENT);
	expect_text_error(&r, "search.x", "1", "search.x", "not a message field");

	TAll t;
	t_all_init(&t);
	assert_status(set_text(all, &t, "nested.value", "3"), RPC_STATUS_OK);
	assert_status(set_text(all, &t, "nested.name", "n"), RPC_STATUS_OK);
	assert_int_equal(t.nested->value, 3);
	assert_string_equal(t.nested->name, "n");
	assert_status(set_text(all, &t, "child.child.str", "deep"), RPC_STATUS_OK);
	assert_string_equal(t.child->child->str, "deep");
	assert_status(set_text(all, &t, "b", "true"), RPC_STATUS_OK);
	assert_true(t.b);
	assert_status(set_text(all, &t, "b", "false"), RPC_STATUS_OK);
	assert_false(t.b);
	expect_text_error(&t, "b", "yes", "b", "expected true or false");
	assert_status(set_text(all, &t, "en", "DELIVERED"), RPC_STATUS_OK);
	assert_int_equal(t.en, 6);
	assert_status(set_text(all, &t, "en", "2"), RPC_STATUS_OK);
	assert_int_equal(t.en, 2);
	expect_text_error(&t, "en", "99", "en", "unknown value \"99\"");
	assert_status(set_text(all, &t, "db", "-Infinity"), RPC_STATUS_OK);
	assert_status(set_text(all, &t, "u64", "18446744073709551615"), RPC_STATUS_OK);
	assert_true(t.u64 == UINT64_MAX);
	assert_status(set_text(all, &t, "by", "_-8"), RPC_STATUS_OK);
	assert_int_equal(t.by.len, 2);
	assert_status(set_text(all, &t, "ts", "2026-01-15T10:00:00Z"), RPC_STATUS_OK);
	assert_int_equal(t.ts->seconds, 1768471200);
	expect_text_error(&t, "ts", "yesterday", "ts", "RFC 3339");
	assert_status(set_text(all, &t, "dur", "2s"), RPC_STATUS_OK);
	assert_status(set_text(all, &t, "wI64", "7"), RPC_STATUS_OK);
	assert_true(t.w_i64->value == 7);
	assert_status(set_text(all, &t, "w_b", "true"), RPC_STATUS_OK);
	assert_true(t.w_b->value);
	assert_status(set_text(all, &t, "optI32", "0"), RPC_STATUS_OK);
	assert_true(t.has_opt_i32);
	assert_status(set_text(all, &t, "mask", "a,bC"), RPC_STATUS_OK);
	assert_status(set_text(all, &t, "mask", "d"), RPC_STATUS_OK);
	assert_int_equal(t.mask->n_paths, 3);
	assert_string_equal(t.mask->paths[1], "b_c");
	expect_text_error(&t, "nested", "x", "nested", "a message field");
	expect_text_error(&t, "empty", "", "empty", "a message field");
	expect_text_error(&t, "mStr", "x", "mStr", "map field");
	expect_text_error(&t, "ts.seconds", "1", "ts.seconds", "not a message field");
	expect_text_error(&t, "rNested.value", "1", "rNested.value", "not a message field");
	expect_text_error(&t, "nested.", "1", "nested.", "unknown field");
	expect_text_error(&t, "", "1", "", "unknown field");

	/* Repeated fields append, one value per call; a bad one appends nothing. */
	for (int i = 0; i < 1000; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", i * 3);
		assert_status(set_text(all, &t, "r_i64", v), RPC_STATUS_OK);
	}
	expect_text_error(&t, "rI64", "x", "rI64", "not a number");
	assert_int_equal(t.n_r_i64, 1000);
	for (int i = 0; i < 1000; i++)
		assert_true(t.r_i64[i] == i * 3);
	assert_status(set_text(all, &t, "rEn", "PAID"), RPC_STATUS_OK);
	assert_status(set_text(all, &t, "rEn", "3"), RPC_STATUS_OK);
	assert_int_equal(t.n_r_en, 2);
	assert_int_equal(t.r_en[1], 3);
	assert_status(set_text(all, &t, "rTs", "2026-01-15T10:00:00Z"), RPC_STATUS_OK);
	assert_status(set_text(all, &t, "rStr", ""), RPC_STATUS_OK);
	assert_status(set_text(all, &t, "rBy", "AA"), RPC_STATUS_OK);
	assert_int_equal(t.n_r_ts, 1);
	assert_packs_same(all, &t.base);
}

/* ---- the reader ------------------------------------------------------------- */

/* Read a whole document with the reader; NULL when accepted, else why. */
static const char *read_all(const char *s, size_t n, unsigned depth)
{
	gw_json_reader r;
	gw_json_token t;
	gw_json_reader_init(&r, s, n);
	if (gw_json_read_value(&r, &t) != 0 || gw_json_skip(&r, &t, depth) != 0 ||
	    gw_json_read_end(&r) != 0)
		return r.error != NULL ? r.error : "(no reason)";
	return NULL;
}

static void test_reader_grammar(void **state)
{
	(void)state;
	const char *good[] = {
	    "{}",
	    "[]",
	    " \t\r\n{ } ",
	    "0",
	    "-0",
	    "1.5e-3",
	    "1E+2",
	    "-12.50",
	    "\"\"",
	    "true",
	    "false",
	    "null",
	    "[1,\"a\",{\"b\":[null,true,false]}]",
	    "{\"a\":{\"b\":{}}}",
	    "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"",
	    "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"",
	    "{\"\":0}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *why = read_all(good[i], strlen(good[i]), 32);
		if (why != NULL)
			fail_msg("refused %s: %s", good[i], why);
	}
	const char *bad[] = {
	    "",
	    " ",
	    "{",
	    "[",
	    "{\"a\"}",
	    "{\"a\" 1}",
	    "{\"a\":1,}",
	    "[1,]",
	    "[,1]",
	    "{,}",
	    "[1 2]",
	    "{\"a\":1 \"b\":2}",
	    "{1:2}",
	    "{'a':1}",
	    "01",
	    "1.",
	    ".5",
	    "-",
	    "+1",
	    "1e",
	    "1e+",
	    "0x10",
	    "tru",
	    "nul",
	    "falsey",
	    "NaN",
	    "Infinity",
	    "\"a",
	    "\"\\\"",
	    "\"\\x\"",
	    "\"\\u12\"",
	    "\"\\u12g4\"",
	    "\"\\u0000\"",
	    "\"\\udc00\"",
	    "\"\\ud800\"",
	    "\"\\ud800\\u0041\"",
	    "\"\\ud800x\"",
	    "\"a\tb\"",
	    "\"\x01\"",
	    "\"\xff\"",
	    "\"\xc0\xaf\"",
	    "\"\xed\xa0\x80\"",
	    "\"\xf4\x90\x80\x80\"",
	    "\"\xe2\x82\"",
	    "{} x",
	    "[]]",
	    "1 2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (read_all(bad[i], strlen(bad[i]), 32) == NULL)
			fail_msg("accepted %s", bad[i]);
	/* A NUL byte is a control character, not an end. */
	assert_non_null(read_all("\"a\0b\"", 5, 32));
	assert_null(read_all("[1] ", 3, 32)); /* the length is the end */
	/* Depth is the caller's bound. */
	assert_null(read_all("[[[]]]", 6, 3));
	assert_string_equal(read_all("[[[[]]]]", 8, 3), "nested too deep");
	/* Errors say where, in lines and columns. */
	gw_json_reader r;
	gw_json_token t;
	const char *doc = "{\n  \"a\": 1,\n  \"b\" 2\n}";
	gw_json_reader_init(&r, doc, strlen(doc));
	assert_int_equal(read_all(doc, strlen(doc), 32) != NULL, 1);
	assert_int_equal(gw_json_read_value(&r, &t), 0);
	assert_int_equal(gw_json_skip(&r, &t, 32), -1);
	int line, column;
	gw_json_reader_position(&r, r.error_at, &line, &column);
	assert_int_equal(line, 3);
	assert_int_equal(column, 7);
	assert_string_equal(r.error, "':' was expected");
	/* The error body of a decode names it too. */
	Panthera__Auth__V1__RegisterUserRequest u = PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	expect_error(routes, &u, "{\"email\":\"a\",\n\"password\" \"x\"}",
	             RPC_STATUS_INVALID_ARGUMENT, "",
	             "malformed JSON at line 2 column 12: ':' was expected");
}

static void test_reader_unescapes(void **state)
{
	(void)state;
	struct {
		const char *in, *out;
	} cases[] = {
	    {"\"plain\"", "plain"},
	    {"\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d"},
	    {"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t"},
	    {"\"\\u0041\\u00e9\\u20AC\\uFFFF\"", "A\xc3\xa9\xe2\x82\xac\xef\xbf\xbf"},
	    {"\"\\uD83D\\uDE00!\"", "\xf0\x9f\x98\x80!"},
	    {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"},
	    {"\"\\u0001\\u007f\"", "\x01\x7f"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gw_json_reader r;
		gw_json_token t;
		gw_json_reader_init(&r, cases[i].in, strlen(cases[i].in));
		assert_int_equal(gw_json_read_value(&r, &t), 0);
		assert_int_equal(t.kind, GW_JSON_STRING);
		char out[64];
		size_t n = t.escaped ? gw_json_unescape(t.text, t.len, out) : t.len;
		if (!t.escaped)
			memcpy(out, t.text, t.len);
		assert_true(n <= t.len);
		out[n] = '\0';
		assert_string_equal(out, cases[i].out);
	}
	/* Through the decoder: keys and values alike. */
	Panthera__Auth__V1__RegisterUserRequest r = PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	assert_status(
	    decode(routes, &r, "{\"\\u0065mail\":\"a\\u0040b\",\"first\\u005fname\":\"\\u00c9\"}"),
	    RPC_STATUS_OK);
	assert_string_equal(r.email, "a@b");
	assert_string_equal(r.first_name, "\xc3\x89");
}

/* ---- writing -------------------------------------------------------------------- */

static void test_string_escaping(void **state)
{
	(void)state;
	static const char in[] = "q\" b\\ n\n t\t c\x01 d\x7f "
	                         "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
	                         "ls\xe2\x80\xa8ps\xe2\x80\xa9 bad\xff\xc3 end";
	gw_json_buf_reset(&buf);
	gw_json_write_string(&buf, in, sizeof(in) - 1);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(buf.data, "\"q\\\" b\\\\ n\\n t\\t c\\u0001 d\x7f "
	                              "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
	                              "ls\\u2028ps\\u2029 bad\\ufffd\\ufffd end\"");
	/* What the writer writes, jansson reads back as the same text. */
	Panthera__Auth__V1__RegisterUserRequest r = PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	r.email = "a\"\\\n\x1f\xe2\x80\xa8\xf4\x8f\xbf\xbf";
	char *json = strdup(encode(routes, &r, 0));
	Panthera__Auth__V1__RegisterUserRequest back =
	    PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	assert_status(decode(routes, &back, json), RPC_STATUS_OK);
	assert_string_equal(back.email, r.email);
	free(json);
}

static void test_buffer_bound_and_growth(void **state)
{
	(void)state;
	gw_json_buf small;
	gw_json_buf_init(&small, 16);
	Panthera__Catalog__V1__Product p = PANTHERA__CATALOG__V1__PRODUCT__INIT;
	p.name = "a name longer than sixteen bytes";
	assert_int_equal(gw_json_encode(routes, &p.base, NULL, 0, &small, &err),
	                 RPC_STATUS_RESOURCE_EXHAUSTED);
	gw_json_buf_reset(&small);
	assert_int_equal(small.failed, 0);
	gw_json_write_string(&small, "ok", 2);
	assert_status(gw_json_buf_status(&small), RPC_STATUS_OK);
	gw_json_buf_free(&small);
	/* A large document grows the buffer as it goes. */
	TAll t;
	t_all_init(&t);
	for (int i = 0; i < 20000; i++)
		assert_status(set_text(all, &t, "rStr", "0123456789abcdef"), RPC_STATUS_OK);
	const char *j = encode(all, &t, 0);
	assert_int_equal(strlen(j), 20000 * 19 + 10);
}

static void test_error_bodies(void **state)
{
	(void)state;
	gw_json_error_reply e = {.code = RPC_STATUS_PERMISSION_DENIED,
	                         .message = "only a buyer may review",
	                         .reason = "NOT_A_BUYER"};
	gw_json_buf_reset(&buf);
	assert_status(gw_json_write_error(&buf, &e), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(
	    buf.data, "{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\",\"message\":"
	              "\"only a buyer may review\",\"details\":[{\"@type\":\"type.googleapis.com/"
	              "google.rpc.ErrorInfo\",\"reason\":\"NOT_A_BUYER\",\"domain\":"
	              "\"panthera.dev\"}]}}");

	/* From a reply's details: ErrorInfo with metadata, field violations. */
	Google__Rpc__ErrorInfo__MetadataEntry md = GOOGLE__RPC__ERROR_INFO__METADATA_ENTRY__INIT;
	md.key = "productId";
	md.value = "p1";
	Google__Rpc__ErrorInfo__MetadataEntry *mds[] = {&md};
	Google__Rpc__ErrorInfo info = GOOGLE__RPC__ERROR_INFO__INIT;
	info.reason = "INSUFFICIENT_STOCK";
	info.domain = "panthera.dev";
	info.n_metadata = 1;
	info.metadata = mds;
	Google__Rpc__BadRequest__FieldViolation v = GOOGLE__RPC__BAD_REQUEST__FIELD_VIOLATION__INIT;
	v.field = "items[0].quantity";
	v.description = "only 2 left";
	Google__Rpc__BadRequest__FieldViolation *vs[] = {&v};
	Google__Rpc__BadRequest bad = GOOGLE__RPC__BAD_REQUEST__INIT;
	bad.n_field_violations = 1;
	bad.field_violations = vs;
	Panthera__Rpc__V1__ErrorDetails det = PANTHERA__RPC__V1__ERROR_DETAILS__INIT;
	det.error_info = &info;
	det.bad_request = &bad;
	gw_json_error_reply r = {.code = RPC_STATUS_FAILED_PRECONDITION,
	                         .message = "not enough stock",
	                         .details = &det.base};
	gw_json_buf_reset(&buf);
	assert_status(gw_json_write_error(&buf, &r), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(
	    buf.data,
	    "{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\",\"message\":\"not enough "
	    "stock\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
	    "\"reason\":\"INSUFFICIENT_STOCK\",\"domain\":\"panthera.dev\",\"metadata\":{"
	    "\"productId\":\"p1\"}},{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\","
	    "\"fieldViolations\":[{\"field\":\"items[0].quantity\",\"description\":\"only 2 "
	    "left\"}]}]}}");

	/* The gateway's own answers: HTTP status given, no details. */
	gw_json_error_reply big = {.http_status = 413,
	                           .code = RPC_STATUS_RESOURCE_EXHAUSTED,
	                           .message = "body over 1048576 bytes"};
	gw_json_buf_reset(&buf);
	assert_status(gw_json_write_error(&buf, &big), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(
	    buf.data, "{\"error\":{\"code\":413,\"status\":\"RESOURCE_EXHAUSTED\",\"message\":"
	              "\"body over 1048576 bytes\",\"details\":[]}}");
	/* Details of another type are ignored; the body is still valid JSON. */
	gw_json_error_reply odd = {.code = RPC_STATUS_INTERNAL, .details = &info.base};
	gw_json_buf_reset(&buf);
	assert_status(gw_json_write_error(&buf, &odd), RPC_STATUS_OK);
	gw_json_buf_put(&buf, "", 1);
	assert_string_equal(buf.data,
	                    "{\"error\":{\"code\":500,\"status\":\"INTERNAL\",\"message\":"
	                    "\"\",\"details\":[]}}");
}

/* API.md's canonical mapping, which rpc_status_http() implements. */
static void test_http_status_mapping(void **state)
{
	(void)state;
	static const struct {
		rpc_status code;
		int http;
	} map[] = {
	    {RPC_STATUS_OK, 200},
	    {RPC_STATUS_INVALID_ARGUMENT, 400},
	    {RPC_STATUS_FAILED_PRECONDITION, 400},
	    {RPC_STATUS_OUT_OF_RANGE, 400},
	    {RPC_STATUS_UNAUTHENTICATED, 401},
	    {RPC_STATUS_PERMISSION_DENIED, 403},
	    {RPC_STATUS_NOT_FOUND, 404},
	    {RPC_STATUS_ALREADY_EXISTS, 409},
	    {RPC_STATUS_ABORTED, 409},
	    {RPC_STATUS_RESOURCE_EXHAUSTED, 429},
	    {RPC_STATUS_CANCELLED, 499},
	    {RPC_STATUS_UNIMPLEMENTED, 501},
	    {RPC_STATUS_UNAVAILABLE, 503},
	    {RPC_STATUS_DEADLINE_EXCEEDED, 504},
	    {RPC_STATUS_UNKNOWN, 500},
	    {RPC_STATUS_INTERNAL, 500},
	    {RPC_STATUS_DATA_LOSS, 500},
	};
	assert_int_equal(sizeof(map) / sizeof(map[0]), RPC_STATUS_COUNT);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		assert_int_equal(rpc_status_http(map[i].code), map[i].http);
}

/* ---- allocation failures -------------------------------------------------------- */

typedef struct budget {
	rpc_arena *arena;
	int left;
} budget;

static void *budget_alloc(void *data, size_t size)
{
	budget *b = data;
	if (b->left-- <= 0)
		return NULL;
	return rpc_arena_alloc(b->arena, size);
}

static void budget_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

/* The budget grows from zero: each failure must be a clean
 * RESOURCE_EXHAUSTED, until the call succeeds. */
static void test_allocation_failures(void **state)
{
	(void)state;
	const char *body = "{\"items\":[{\"productId\":\"p1\",\"quantity\":2}],\"shippingAddress\":"
	                   "{\"street\":\"s\",\"zipCode\":\"1\"},\"paymentMethodId\":\"pm\"}";
	int ok = 0;
	for (int n = 0; n < 100 && !ok; n++) {
		budget b = {&arena, n};
		ProtobufCAllocator a = {budget_alloc, budget_free, &b};
		Panthera__Orders__V1__CreateOrderRequest r =
		    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
		gw_json_presence pres;
		rpc_status st =
		    gw_json_decode(routes, &r.base, NULL, body, strlen(body), &a, &pres, &err);
		if (st == RPC_STATUS_OK) {
			ok = 1;
			assert_string_equal(r.shipping_address->zip_code, "1");
			assert_int_equal(pres.n, 4);
		} else {
			assert_int_equal(st, RPC_STATUS_RESOURCE_EXHAUSTED);
		}
	}
	assert_true(ok);
	ok = 0;
	for (int n = 0; n < 100 && !ok; n++) {
		budget b = {&arena, n};
		ProtobufCAllocator a = {budget_alloc, budget_free, &b};
		TAll t;
		t_all_init(&t);
		rpc_status st = gw_json_set_text(all, &t.base, "child.rTs", 9,
		                                 "2026-01-15T10:00:00Z", 20, &a, &err);
		if (st == RPC_STATUS_OK)
			ok = 1;
		else
			assert_int_equal(st, RPC_STATUS_RESOURCE_EXHAUSTED);
	}
	assert_true(ok);
	/* The arena's own limit ends in the same status. */
	rpc_arena tiny;
	rpc_arena_init(&tiny, NULL, 0, 4096);
	TAll t;
	t_all_init(&t);
	char big[8192];
	size_t o = (size_t)sprintf(big, "{\"str\":\"");
	memset(big + o, 'x', 6000);
	o += 6000;
	strcpy(big + o, "\"}");
	assert_int_equal(gw_json_decode(all, &t.base, NULL, big, strlen(big), &tiny.pb, NULL, &err),
	                 RPC_STATUS_RESOURCE_EXHAUSTED);
	rpc_arena_destroy(&tiny);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_schema_holds_every_route_message),
	    T(test_schema_finds_fields_by_both_names),
	    T(test_schema_rejects_unsupported_types),
	    T(test_product_round_trip),
	    T(test_list_reply_emits_total_zero),
	    T(test_create_order_request_decodes),
	    T(test_order_encodes_enum_and_nested),
	    T(test_sales_report),
	    T(test_update_mask_filled_from_body_keys),
	    T(test_presence_one_level_down),
	    T(test_unknown_field_is_named),
	    T(test_wrong_type_is_named),
	    T(test_malformed_json),
	    T(test_duplicate_keys_rejected),
	    T(test_invalid_utf8_rejected),
	    T(test_depth_bomb_rejected),
	    T(test_huge_array_rejected),
	    T(test_int32_range_checked),
	    T(test_int64_boundaries),
	    T(test_floats_and_specials),
	    T(test_bool_string_bytes_enum),
	    T(test_repeated_and_maps),
	    T(test_oneof_one_member),
	    T(test_null_clears),
	    T(test_timestamps),
	    T(test_durations),
	    T(test_field_masks),
	    T(test_wrappers_and_empty),
	    T(test_body_field),
	    T(test_query_and_path_text),
	    T(test_reader_grammar),
	    T(test_reader_unescapes),
	    T(test_string_escaping),
	    T(test_buffer_bound_and_growth),
	    T(test_error_bodies),
	    T(test_http_status_mapping),
	    T(test_allocation_failures),
#undef T
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
