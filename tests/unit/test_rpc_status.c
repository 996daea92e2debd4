/*
 * test_rpc_status.c - the canonical status codes: numbers, names, HTTP map,
 * and the service look-up helper.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "panthera/rpc.h"

static void test_status_numbers_are_canonical(void **state)
{
	(void)state;
	/* The numbers travel on the wire: they are google.rpc.Code's. */
	assert_int_equal(RPC_STATUS_OK, 0);
	assert_int_equal(RPC_STATUS_CANCELLED, 1);
	assert_int_equal(RPC_STATUS_INVALID_ARGUMENT, 3);
	assert_int_equal(RPC_STATUS_NOT_FOUND, 5);
	assert_int_equal(RPC_STATUS_RESOURCE_EXHAUSTED, 8);
	assert_int_equal(RPC_STATUS_UNIMPLEMENTED, 12);
	assert_int_equal(RPC_STATUS_UNAVAILABLE, 14);
	assert_int_equal(RPC_STATUS_UNAUTHENTICATED, 16);
	assert_int_equal(RPC_STATUS_COUNT, 17);
}

static void test_status_name_round_trips(void **state)
{
	(void)state;
	for (int i = 0; i < RPC_STATUS_COUNT; i++) {
		rpc_status back = RPC_STATUS_OK;
		const char *name = rpc_status_name((rpc_status)i);
		assert_non_null(name);
		assert_int_equal(rpc_status_from_name(name, &back), 1);
		assert_int_equal(back, i);
	}
	assert_string_equal(rpc_status_name(RPC_STATUS_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
}

static void test_status_name_of_unknown_number_is_unknown(void **state)
{
	(void)state;
	assert_string_equal(rpc_status_name((rpc_status)17), "UNKNOWN");
	assert_string_equal(rpc_status_name((rpc_status)-1), "UNKNOWN");
	assert_int_equal(rpc_status_http((rpc_status)99), 500);
}

static void test_status_from_name_rejects_others(void **state)
{
	(void)state;
	rpc_status st = RPC_STATUS_ABORTED;
	assert_int_equal(rpc_status_from_name("not_found", &st), 0);
	assert_int_equal(rpc_status_from_name("", &st), 0);
	assert_int_equal(rpc_status_from_name(NULL, &st), 0);
	assert_int_equal(st, RPC_STATUS_ABORTED); /* left alone */
}

/* API.md's table, row by row. */
static void test_status_http_mapping_matches_api_md(void **state)
{
	(void)state;
	static const struct {
		rpc_status code;
		int http;
	} rows[] = {
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
	assert_int_equal(sizeof(rows) / sizeof(rows[0]), RPC_STATUS_COUNT);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rpc_status_http(rows[i].code) != rows[i].http)
			fail_msg("%s maps to %d, want %d", rpc_status_name(rows[i].code),
			         rpc_status_http(rows[i].code), rows[i].http);
	}
}

static void test_service_find_method(void **state)
{
	(void)state;
	static const rpc_method_desc methods[] = {
	    {.path = "/t.S/A", .name = "A"},
	    {.path = "/t.S/B", .name = "B"},
	};
	static const rpc_service_desc svc = {.name = "t.S", .methods = methods, .n_methods = 2};
	assert_ptr_equal(rpc_service_find_method(&svc, "B"), &methods[1]);
	assert_null(rpc_service_find_method(&svc, "C"));
	assert_null(rpc_service_find_method(&svc, NULL));
	assert_null(rpc_service_find_method(NULL, "A"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_numbers_are_canonical),
	    cmocka_unit_test(test_status_name_round_trips),
	    cmocka_unit_test(test_status_name_of_unknown_number_is_unknown),
	    cmocka_unit_test(test_status_from_name_rejects_others),
	    cmocka_unit_test(test_status_http_mapping_matches_api_md),
	    cmocka_unit_test(test_service_find_method),
	};
	return cmocka_run_group_tests_name("rpc_status", tests, NULL, NULL);
}
