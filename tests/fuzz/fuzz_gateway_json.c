/*
 * fuzz_gateway_json.c - libFuzzer target of the gateway's JSON transcoder
 * (gateway-rest/gw_json.c): request bodies as clients send them, decoded
 * into real request messages, then encoded, decoded and encoded again. The
 * two encodings must be equal (a decoded message always encodes to JSON
 * that reads back as the same message), else the target aborts.
 *
 * The first input byte picks the target and the mode; the rest is the
 * input:
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
 *     -Igateway-rest tests/fuzz/fuzz_gateway_json.c gateway-rest/gw_json*.c \
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
