/*
 * json_bench.c - micro-benchmark of the gateway's JSON transcoder
 * (gateway-rest/gw_json.h): decode + encode of a typical Product and
 * CreateOrderRequest, per second, against baselines measured in the same run
 * on the same bodies: jansson alone (json_loadb, and json_loadb + json_dumpb:
 * a tree that fills no message) and protobuf-c alone (pack + unpack of the
 * decoded message). The last line per case is the ratio of gw_json's whole
 * decode + encode to jansson's parse alone (below 1: faster). Prints
 * numbers; asserts nothing about them.
 *
 * Build and run from the repository root, after `make` (libpanthera):
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Irpc/include -Irpc/src -Igen \
 *     -Igateway-rest -Iservices/common/include bench/gateway/json_bench.c \
 *     gateway-rest/gw_json*.c services/common/src/base64.c services/common/src/text.c \
 *     build/lib/libpanthera.a -ljansson -lnng -lprotobuf-c -lpthread \
 *     -o build/json_bench && build/json_bench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "arena.h"
#include "gw_json.h"
#include "panthera/catalog/v1/catalog.pb-c.h"
#include "panthera/orders/v1/orders.pb-c.h"

static const char product[] =
    "{\"id\":\"3f0c7a2e-5b1d-4c8e-9a77-0d2b6c1e4f10\",\"sku\":\"LAP-PRO-14\","
    "\"name\":\"Laptop Pro 14\",\"description\":\"A fast, light laptop with a 14-inch "
    "screen, 16 GB of memory and a 1 TB disk; ships with a charger.\",\"price\":\"1200.00\","
    "\"currency\":\"USD\",\"categoryId\":\"9b1e4c2a-7d3f-4e5a-8b6c-1f2e3d4c5b6a\","
    "\"imageUrl\":\"https://img.example.com/p/lap-pro-14.png\",\"stock\":42,"
    "\"isActive\":true,\"ratingAverage\":\"4.5\",\"ratingCount\":128,"
    "\"createdAt\":\"2026-01-15T10:00:00Z\",\"updatedAt\":\"2026-01-16T08:30:00.250Z\"}";

static const char order[] =
    "{\"items\":[{\"productId\":\"3f0c7a2e-5b1d-4c8e-9a77-0d2b6c1e4f10\",\"quantity\":1},"
    "{\"productId\":\"7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\",\"quantity\":3},"
    "{\"productId\":\"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\",\"quantity\":2}],"
    "\"shippingAddress\":{\"street\":\"1 Main Street\",\"city\":\"Springfield\","
    "\"state\":\"IL\",\"zipCode\":\"62701\",\"country\":\"US\"},"
    "\"paymentMethodId\":\"pm_card_visa\"}";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct bench_case {
	const char *name;
	const char *body;
	const ProtobufCMessageDescriptor *desc;
} bench_case;

/* One decode + encode through gw_json; -1 on any error. */
static int transcode(const gw_json_schema *s, const bench_case *c, rpc_arena *a, gw_json_buf *b)
{
	gw_json_error err;
	ProtobufCMessage *m = rpc_arena_alloc(a, c->desc->sizeof_message);
	if (m == NULL)
		return -1;
	protobuf_c_message_init(c->desc, m);
	if (gw_json_decode(s, m, NULL, c->body, strlen(c->body), &a->pb, NULL, &err) !=
	        RPC_STATUS_OK ||
	    gw_json_encode(s, m, NULL, 0, b, &err) != RPC_STATUS_OK) {
		fprintf(stderr, "%s: %s: %s\n", c->name, err.field, err.description);
		return -1;
	}
	return 0;
}

int main(void)
{
	const bench_case cases[] = {
	    {"Product", product, &panthera__catalog__v1__product__descriptor},
	    {"CreateOrderRequest", order, &panthera__orders__v1__create_order_request__descriptor},
	};
	const ProtobufCMessageDescriptor *roots[] = {cases[0].desc, cases[1].desc};
	gw_json_schema *s;
	gw_json_error err;
	if (gw_json_schema_new(&s, roots, 2, NULL, &err) != RPC_STATUS_OK) {
		fprintf(stderr, "schema: %s\n", err.description);
		return 1;
	}
	const int n = 200000;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const bench_case *c = &cases[k];
		rpc_arena a;
		gw_json_buf b;
		rpc_arena_init(&a, NULL, 0, 0);
		gw_json_buf_init(&b, 0);

		double t0 = now();
		for (int i = 0; i < n; i++) {
			gw_json_buf_reset(&b);
			rpc_arena_reset(&a);
			if (transcode(s, c, &a, &b) != 0)
				return 1;
		}
		double gw = (now() - t0) / n;

		t0 = now();
		for (int i = 0; i < n; i++) {
			json_t *j =
			    json_loadb(c->body, strlen(c->body), JSON_REJECT_DUPLICATES, NULL);
			char out[4096];
			if (j == NULL || json_dumpb(j, out, sizeof(out), JSON_COMPACT) == 0)
				return 1;
			json_decref(j);
		}
		double js = (now() - t0) / n;

		/* protobuf-c on the message gw_json decoded. */
		rpc_arena_reset(&a);
		ProtobufCMessage *m = rpc_arena_alloc(&a, c->desc->sizeof_message);
		protobuf_c_message_init(c->desc, m);
		gw_json_decode(s, m, NULL, c->body, strlen(c->body), &a.pb, NULL, &err);
		uint8_t wire[4096];
		size_t wn = protobuf_c_message_pack(m, wire);
		t0 = now();
		for (int i = 0; i < n; i++) {
			protobuf_c_message_pack(m, wire);
			ProtobufCMessage *u = protobuf_c_message_unpack(c->desc, NULL, wn, wire);
			if (u == NULL)
				return 1;
			protobuf_c_message_free_unpacked(u, NULL);
		}
		double pb = (now() - t0) / n;

		/* Encode alone, of that message. */
		t0 = now();
		for (int i = 0; i < n; i++) {
			gw_json_buf_reset(&b);
			if (gw_json_encode(s, m, NULL, 0, &b, &err) != RPC_STATUS_OK)
				return 1;
		}
		double enc = (now() - t0) / n;
		/* jansson's parse alone, what decoding through its tree cost at
		 * the least (gw_json used it before it had its reader). */
		t0 = now();
		for (int i = 0; i < n; i++) {
			json_t *j =
			    json_loadb(c->body, strlen(c->body), JSON_REJECT_DUPLICATES, NULL);
			if (j == NULL)
				return 1;
			json_decref(j);
		}
		double parse = (now() - t0) / n;
		printf(
		    "%s (%zu bytes): gw_json decode+encode %.0f ns (%.0f/s), encode alone %.0f ns; "
		    "jansson parse %.0f ns, parse+dump %.0f ns; protobuf-c pack+unpack %.0f ns\n",
		    c->name, strlen(c->body), gw * 1e9, 1 / gw, enc * 1e9, parse * 1e9, js * 1e9,
		    pb * 1e9);
		printf("%s_transcode_vs_jansson_parse=%.2f\n", c->name, gw / parse);
		rpc_arena_destroy(&a);
		gw_json_buf_free(&b);
	}
	gw_json_schema_free(s);
	return 0;
}
