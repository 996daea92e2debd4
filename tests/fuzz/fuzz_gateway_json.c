/*
 * fuzz_gateway_json.c - libFuzzer target of the gateway's JSON transcoder
 * (gateway-rest/gw_json.c): request bodies as clients send them, decoded
 * into real request messages, then encoded, decoded and encoded again. The
 * two encodings must be equal (a decoded message always encodes to JSON
 * that reads back as the same message), else the target aborts.
 *
 * The first input byte picks the target and the mode; the rest is the
 * input. Bit 7 set: the reader alone, against jansson (differential): both
 * must accept the same documents (but for numbers jansson cannot hold,
 * duplicate keys, the 2048 nesting bound, and a NUL byte after the value,
 * where jansson stops reading) and read the same strings.
 * Bit 7 clear:
 *   bits 0-3: the message (CreateOrderRequest, UpdateProductRequest,
 *             UpdateUserRequest, CreateProductRequest, ListProductsRequest,
 *             google.rpc.ErrorInfo (a map), Int64Value, DoubleValue,
 *             FloatValue, UInt64Value, Timestamp, Duration, FieldMask,
 *             BytesValue, Product);
 *   bits 4-5: 0: the body is the message; 1: the body fills one field
 *             (`body: "field"`), the message's first; 2: the input is
 *             "path=value" lines for gw_json_set_text(); 3: as 0, and the
 *             update mask is filled from the keys (AIP-134).
 *
 * libFuzzer (from the repository root), as tools/fuzz.sh builds it:
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -D_POSIX_C_SOURCE=200809L -Irpc/include -Irpc/src -Igen -Itests/fuzz \
 *     -Igateway-rest -Iservices/common/include tests/fuzz/fuzz_gateway_json.c \
 *     gateway-rest/gw_json*.c services/common/src/base64.c services/common/src/text.c \
 *     rpc/src/arena.c rpc/src/rpc_status.c gen/panthera/orders/v1/orders.pb-c.c \
 *     gen/panthera/catalog/v1/catalog.pb-c.c gen/panthera/users/v1/users.pb-c.c \
 *     gen/google/protobuf/timestamp.pb-c.c gen/google/protobuf/duration.pb-c.c \
 *     gen/google/protobuf/field_mask.pb-c.c gen/google/protobuf/wrappers.pb-c.c \
 *     gen/google/rpc/error_details.pb-c.c -ljansson -lprotobuf-c \
 *     -o build-fuzz/fuzz_gateway_json
 *   build-fuzz/fuzz_gateway_json tests/fuzz/corpus/fuzz_gateway_json
 * Replay (any compiler): the same with -DFUZZ_STANDALONE instead of
 * -fsanitize=fuzzer, on the files of the corpus (make test does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "fuzz_main.h"
#include "gw_json.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "panthera/catalog/v1/catalog.pb-c.h"
#include "panthera/orders/v1/orders.pb-c.h"
#include "panthera/users/v1/users.pb-c.h"

static const ProtobufCMessageDescriptor *const targets[] = {
    &panthera__orders__v1__create_order_request__descriptor,
    &panthera__catalog__v1__update_product_request__descriptor,
    &panthera__users__v1__update_user_request__descriptor,
    &panthera__catalog__v1__create_product_request__descriptor,
    &panthera__catalog__v1__list_products_request__descriptor,
    &google__rpc__error_info__descriptor,
    &google__protobuf__int64_value__descriptor,
    &google__protobuf__double_value__descriptor,
    &google__protobuf__float_value__descriptor,
    &google__protobuf__uint64_value__descriptor,
    &google__protobuf__timestamp__descriptor,
    &google__protobuf__duration__descriptor,
    &google__protobuf__field_mask__descriptor,
    &google__protobuf__bytes_value__descriptor,
    &panthera__catalog__v1__product__descriptor,
};
#define N_TARGETS (sizeof(targets) / sizeof(targets[0]))

static gw_json_schema *schema;

static ProtobufCMessage *new_message(rpc_arena *a, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = rpc_arena_alloc(a, d->sizeof_message);
	if (m != NULL)
		protobuf_c_message_init(d, m);
	return m;
}

/* The message's mask field, if it has one. */
static const char *mask_field(const ProtobufCMessageDescriptor *d)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (strcmp(d->fields[i].name, "update_mask") == 0)
			return "update_mask";
	return NULL;
}

/* Encode m; decode that into a fresh message; encode again: both texts
 * must be equal. */
static void round_trip(rpc_arena *a, const ProtobufCMessage *m)
{
	gw_json_error err;
	gw_json_buf one, two;
	gw_json_buf_init(&one, 0);
	gw_json_buf_init(&two, 0);
	if (gw_json_encode(schema, m, NULL, 0, &one, &err) != RPC_STATUS_OK)
		goto out; /* out-of-range Timestamps set from text, say */
	ProtobufCMessage *again = new_message(a, m->descriptor);
	if (again == NULL)
		goto out;
	rpc_status st = gw_json_decode(schema, again, NULL, one.data, one.len, &a->pb, NULL, &err);
	if (st == RPC_STATUS_RESOURCE_EXHAUSTED)
		goto out;
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "own output refused: %s: %s\n%.*s\n", err.field, err.description,
		        (int)one.len, one.data);
		abort();
	}
	if (gw_json_encode(schema, again, NULL, 0, &two, &err) != RPC_STATUS_OK ||
	    one.len != two.len || memcmp(one.data, two.data, one.len) != 0) {
		fprintf(stderr, "round trip differs:\n%.*s\n%.*s\n", (int)one.len, one.data,
		        (int)two.len, two.data);
		abort();
	}
	/* The error body of whatever a decode said is valid to write. */
	gw_json_buf_reset(&two);
	gw_json_write_decode_error(&two, &err);
out:
	gw_json_buf_free(&one);
	gw_json_buf_free(&two);
}

static void text_lines(rpc_arena *a, ProtobufCMessage *m, const char *p, size_t n)
{
	gw_json_error err;
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t line = nl != NULL ? (size_t)(nl - p) : n;
		const char *eq = memchr(p, '=', line);
		if (eq != NULL) {
			size_t k = (size_t)(eq - p);
			if (gw_json_set_text(schema, m, p, k, eq + 1, line - k - 1, &a->pb, &err) !=
			    RPC_STATUS_OK)
				return;
		}
		if (nl == NULL)
			break;
		p += line + 1;
		n -= line + 1;
	}
	round_trip(a, m);
}

/* Every string of the document (keys and values, in order), each followed
 * by 0xff, as the reader gives them. */
static int reader_strings(gw_json_reader *r, const gw_json_token *t, gw_json_buf *out,
                          unsigned depth)
{
	static char tmp[4096]; /* not on the stack: this recurses 2048 deep */
	if (t->kind == GW_JSON_STRING) {
		if (!t->escaped) {
			gw_json_buf_put(out, t->text, t->len);
		} else {
			char *p = t->len <= sizeof(tmp) ? tmp : malloc(t->len);
			if (p == NULL)
				abort();
			gw_json_buf_put(out, p, gw_json_unescape(t->text, t->len, p));
			if (p != tmp)
				free(p);
		}
		gw_json_buf_put(out, "\xff", 1);
		return 0;
	}
	if (t->kind != GW_JSON_OBJECT && t->kind != GW_JSON_ARRAY)
		return 0;
	if (depth == 0)
		return -1;
	int first = 1, k;
	gw_json_token key, v;
	for (;;) {
		if (t->kind == GW_JSON_OBJECT) {
			k = gw_json_read_key(r, &first, &key);
			if (k == 1)
				reader_strings(r, &key, out, depth);
		} else {
			k = gw_json_read_next(r, &first);
		}
		if (k <= 0)
			return k;
		if (gw_json_read_value(r, &v) != 0 || reader_strings(r, &v, out, depth - 1) != 0)
			return -1;
	}
}

static void jansson_strings(const json_t *j, gw_json_buf *out)
{
	if (json_is_string(j)) {
		gw_json_buf_put(out, json_string_value(j), json_string_length(j));
		gw_json_buf_put(out, "\xff", 1);
	} else if (json_is_object(j)) {
		for (void *it = json_object_iter((json_t *)j); it != NULL;
		     it = json_object_iter_next((json_t *)j, it)) {
			gw_json_buf_put(out, json_object_iter_key(it),
			                json_object_iter_key_len(it));
			gw_json_buf_put(out, "\xff", 1);
			jansson_strings(json_object_iter_value(it), out);
		}
	} else if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++)
			jansson_strings(json_array_get(j, i), out);
	}
}

static void differential(const char *s, size_t n)
{
	gw_json_buf ours, theirs;
	gw_json_buf_init(&ours, 0);
	gw_json_buf_init(&theirs, 0);
	gw_json_reader r;
	gw_json_token t;
	gw_json_reader_init(&r, s, n);
	int ok = gw_json_read_value(&r, &t) == 0 && reader_strings(&r, &t, &ours, 2048) == 0 &&
	         gw_json_read_end(&r) == 0;
	int too_deep = !ok && (r.error == NULL || strstr(r.error, "deep") != NULL);
	json_error_t je;
	json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		enum json_error_code c = json_error_code(&je);
		if (ok && c != json_error_numeric_overflow && c != json_error_duplicate_key &&
		    c != json_error_stack_overflow && c != json_error_out_of_memory) {
			fprintf(stderr, "reader accepts what jansson refuses: %s\n", je.text);
			abort();
		}
	} else {
		/* jansson stops at a NUL byte after the value, as if the text
		 * ended there; the reader refuses it as text after the value. */
		if (!ok && !too_deep && memchr(s, '\0', n) == NULL) {
			fprintf(stderr, "reader refuses what jansson accepts: %s\n", r.error);
			abort();
		}
		if (ok) {
			jansson_strings(j, &theirs);
			if (ours.failed == 0 && theirs.failed == 0 &&
			    (ours.len != theirs.len ||
			     (ours.len > 0 && memcmp(ours.data, theirs.data, ours.len) != 0))) {
				fprintf(stderr, "strings differ\n");
				abort();
			}
		}
		json_decref(j);
	}
	gw_json_buf_free(&ours);
	gw_json_buf_free(&theirs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (schema == NULL) {
		gw_json_error err;
		if (gw_json_schema_new(&schema, targets, N_TARGETS, NULL, &err) != RPC_STATUS_OK) {
			fprintf(stderr, "schema: %s\n", err.description);
			abort(); /* the harness itself is broken */
		}
	}
	if (size == 0)
		return 0;
	if (data[0] & 0x80) {
		differential((const char *)data + 1, size - 1);
		return 0;
	}
	const ProtobufCMessageDescriptor *d = targets[(data[0] & 15) % N_TARGETS];
	int mode = (data[0] >> 4) & 3;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;

	rpc_arena a;
	rpc_arena_init(&a, NULL, 0, 64u << 20);
	ProtobufCMessage *m = new_message(&a, d);
	if (m == NULL)
		goto out;
	gw_json_error err;
	gw_json_presence pres;
	rpc_status st;
	switch (mode) {
	case 1:
		if (d->n_fields == 0)
			break;
		st = gw_json_decode(schema, m, d->fields[0].name, body, len, &a.pb, &pres, &err);
		if (st == RPC_STATUS_OK)
			round_trip(&a, m);
		break;
	case 2:
		text_lines(&a, m, body, len);
		break;
	default:
		st = gw_json_decode(schema, m, "*", body, len, &a.pb, &pres, &err);
		if (st != RPC_STATUS_OK)
			break;
		if (mode == 3 && mask_field(d) != NULL &&
		    gw_json_fill_update_mask(schema, m, NULL, &pres, &a.pb, &err) != RPC_STATUS_OK)
			break;
		round_trip(&a, m);
	}
out:
	rpc_arena_destroy(&a);
	return 0;
}
