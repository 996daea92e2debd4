/*
 * test_wire.c - the frame codec of the RPC protocol: round trips, every
 * truncation, lying lengths and counts, bad strings, and memory exhaustion
 * at every step of decoding (an arena limit growing from zero).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "wire.h"

static const rpc_metadata_entry md[] = {
    {"x-request-id", "req-1"},
    {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    {"x-caller", "user 7 ✓"},
};

static uint8_t *make_request(size_t *len)
{
	const char *path = "/panthera.catalog.v1.CatalogService/GetProduct";
	size_t size = rpc_wire_request_size(path, md, 3, 5);
	assert_true(size > 0);
	uint8_t *f = malloc(size);
	rpc_wire_encode_request(f, 1500, path, md, 3, 5);
	memcpy(f + size - 5, "hello", 5);
	*len = size;
	return f;
}

static uint8_t *make_reply(size_t *len)
{
	const uint8_t details[] = {0x0a, 0x00};
	size_t size = rpc_wire_reply_size("not found ✗", md, 2, sizeof(details), 3);
	assert_true(size > 0);
	uint8_t *f = malloc(size);
	rpc_wire_encode_reply(f, RPC_STATUS_NOT_FOUND, "not found ✗", md, 2, details,
	                      sizeof(details), 3);
	memcpy(f + size - 3, "abc", 3);
	*len = size;
	return f;
}

static void test_request_round_trip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_request(&len);
	rpc_arena a;
	rpc_arena_init(&a, NULL, 0, 0);
	rpc_wire_request r;
	assert_int_equal(rpc_wire_decode_request(f, len, &a, &r), RPC_WIRE_OK);
	assert_int_equal(r.timeout_ms, 1500);
	assert_string_equal(r.method, "/panthera.catalog.v1.CatalogService/GetProduct");
	assert_int_equal(r.n_metadata, 3);
	assert_string_equal(r.metadata[2].key, "x-caller");
	assert_string_equal(r.metadata[2].value, "user 7 ✓");
	assert_int_equal(r.payload_len, 5);
	assert_memory_equal(r.payload, "hello", 5);
	rpc_arena_destroy(&a);
	free(f);
}

static void test_reply_round_trip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_reply(&len);
	rpc_arena a;
	rpc_arena_init(&a, NULL, 0, 0);
	rpc_wire_reply r;
	assert_int_equal(rpc_wire_decode_reply(f, len, &a, &r), RPC_WIRE_OK);
	assert_int_equal(r.status, RPC_STATUS_NOT_FOUND);
	assert_string_equal(r.message, "not found ✗");
	assert_int_equal(r.n_metadata, 2);
	assert_int_equal(r.details_len, 2);
	assert_int_equal(r.payload_len, 3);
	rpc_arena_destroy(&a);
	free(f);
}

static void test_every_truncation_is_an_error(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_request(&len);
	rpc_arena a;
	rpc_arena_init(&a, NULL, 0, 0);
	rpc_wire_request r;
	for (size_t cut = 0; cut < len; cut++) {
		/* a copy of exactly `cut` bytes, so ASan sees any read past it */
		uint8_t *c = malloc(cut ? cut : 1);
		memcpy(c, f, cut);
		rpc_wire_error e = rpc_wire_decode_request(c, cut, &a, &r);
		if (e == RPC_WIRE_OK)
			fail_msg("a frame cut at %zu of %zu bytes decoded", cut, len);
		free(c);
		rpc_arena_reset(&a);
	}
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, f, len);
	longer[len] = 0;
	assert_int_equal(rpc_wire_decode_request(longer, len + 1, &a, &r), RPC_WIRE_TRAILING);
	free(longer);
	size_t rlen;
	uint8_t *rf = make_reply(&rlen);
	rpc_wire_reply rr;
	for (size_t cut = 0; cut < rlen; cut++) {
		uint8_t *c = malloc(cut ? cut : 1);
		memcpy(c, rf, cut);
		assert_int_not_equal(rpc_wire_decode_reply(c, cut, &a, &rr), RPC_WIRE_OK);
		free(c);
		rpc_arena_reset(&a);
	}
	rpc_arena_destroy(&a);
	free(rf);
	free(f);
}

static void test_lies_and_bad_strings(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_request(&len);
	rpc_arena a;
	rpc_arena_init(&a, NULL, 0, 0);
	rpc_wire_request r;
	uint8_t *c = malloc(len);
	/* header fields */
	memcpy(c, f, len);
	c[0] = 'X';
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_MAGIC);
	memcpy(c, f, len);
	c[1] = 2;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_VERSION);
	memcpy(c, f, len);
	c[2] = RPC_WIRE_KIND_REPLY;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_KIND);
	memcpy(c, f, len);
	c[3] = 1;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_FLAGS);
	/* a method length past the limit, then past the frame */
	memcpy(c, f, len);
	c[8] = 0xff, c[9] = 0xff;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_METHOD);
	memcpy(c, f, len);
	c[8] = 0xf0, c[9] = 0x00;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_TRUNCATED);
	/* a method that is not /Service/Method */
	memcpy(c, f, len);
	c[10] = 'p';
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_METHOD);
	/* the metadata count: over the limit, then more than fits */
	size_t mdoff = 10 + strlen("/panthera.catalog.v1.CatalogService/GetProduct");
	memcpy(c, f, len);
	c[mdoff] = 65, c[mdoff + 1] = 0;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_METADATA);
	memcpy(c, f, len);
	c[mdoff] = 40, c[mdoff + 1] = 0;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_TRUNCATED);
	/* a key with an upper-case letter, a value with a control byte */
	memcpy(c, f, len);
	c[mdoff + 4] = 'X';
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_METADATA);
	memcpy(c, f, len);
	c[mdoff + 2 + 2 + 12 + 4] = 0x01;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_BAD_METADATA);
	/* a payload length larger than the rest */
	memcpy(c, f, len);
	c[len - 9] = 0xff;
	assert_int_equal(rpc_wire_decode_request(c, len, &a, &r), RPC_WIRE_TRUNCATED);
	free(c);
	free(f);

	/* replies: an unknown status code, a message that is not UTF-8 */
	f = make_reply(&len);
	c = malloc(len);
	rpc_wire_reply rr;
	memcpy(c, f, len);
	c[4] = 17;
	assert_int_equal(rpc_wire_decode_reply(c, len, &a, &rr), RPC_WIRE_BAD_STATUS);
	memcpy(c, f, len);
	c[12] = 0xc0;
	assert_int_equal(rpc_wire_decode_reply(c, len, &a, &rr), RPC_WIRE_BAD_MESSAGE);
	free(c);
	free(f);
	rpc_arena_destroy(&a);
}

/* The arena's limit grows from 0 until decoding succeeds; every failure
 * before must be a clean NO_MEMORY (the libuv loop-oom idea). */
static void test_decode_under_memory_limits(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_request(&len);
	rpc_wire_request r;
	size_t limit;
	int ok = 0;
	for (limit = 0; limit < 65536 && !ok; limit += 8) {
		rpc_arena a;
		rpc_arena_init(&a, NULL, 0, limit);
		rpc_wire_error e = rpc_wire_decode_request(f, len, &a, &r);
		if (e == RPC_WIRE_OK)
			ok = 1;
		else if (e != RPC_WIRE_NO_MEMORY)
			fail_msg("limit %zu: %s", limit, rpc_wire_strerror(e));
		rpc_arena_destroy(&a);
	}
	assert_true(ok);
	free(f);
}

static int *hook_log, *hook_n;

static void note_hook(void *arg)
{
	*(int *)arg = ++*hook_n;
	(void)hook_log;
}

static void test_arena_basics(void **state)
{
	(void)state;
	unsigned char first[64];
	rpc_arena a;
	rpc_arena_init(&a, first, sizeof(first), 1 << 20);
	void *p = rpc_arena_alloc(&a, 10);
	assert_true((unsigned char *)p >= first && (unsigned char *)p < first + sizeof(first));
	assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
	void *big = rpc_arena_alloc(&a, 100000);
	assert_non_null(big);
	memset(big, 1, 100000);
	assert_null(rpc_arena_alloc(&a, 2 << 20));          /* over the limit */
	assert_null(rpc_arena_calloc(&a, SIZE_MAX / 2, 4)); /* overflow */
	/* cleanup hooks run at reset, newest first */
	static int seen[2], n_seen;
	assert_int_equal(rpc_arena_on_reset(&a, note_hook, &seen[0]), 0);
	assert_int_equal(rpc_arena_on_reset(&a, note_hook, &seen[1]), 0);
	n_seen = 0;
	hook_log = seen;
	hook_n = &n_seen;
	rpc_arena_reset(&a);
	assert_int_equal(n_seen, 2);
	assert_int_equal(seen[1], 1); /* the later hook ran first */
	assert_int_equal(seen[0], 2);
	/* reusable after reset, the first block again */
	p = rpc_arena_alloc(&a, 10);
	assert_true((unsigned char *)p >= first && (unsigned char *)p < first + sizeof(first));
	rpc_arena_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_round_trip),
	    cmocka_unit_test(test_reply_round_trip),
	    cmocka_unit_test(test_every_truncation_is_an_error),
	    cmocka_unit_test(test_lies_and_bad_strings),
	    cmocka_unit_test(test_decode_under_memory_limits),
	    cmocka_unit_test(test_arena_basics),
	};
	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
