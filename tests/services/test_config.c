/*
 * test_config.c - settings from flags, environment and defaults, in that
 * order; refusals with a reason; the per-service database URL; help and the
 * operations table printed from the one table.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "panthera/config.h"

static rpc_status load(cfg *c, char *err, size_t errlen, int argc, ...)
{
	static char *argv[16];
	va_list ap;
	va_start(ap, argc);
	argv[0] = "prog";
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return cfg_load(c, argc, argv, err, errlen);
}

static void test_precedence_flag_env_default(void **state)
{
	(void)state;
	cfg c;
	char err[256];
	unsetenv("PANTHERA_RPC_WORKERS");
	assert_int_equal(load(&c, err, sizeof(err), 1), RPC_STATUS_OK);
	assert_int_equal(cfg_get_int(&c, "rpc-workers"), 8);
	assert_string_equal(cfg_get(&c, "http-addr"), "127.0.0.1:8080");
	assert_null(cfg_get(&c, "smtp-url"));
	cfg_free(&c);
	setenv("PANTHERA_RPC_WORKERS", "12", 1);
	assert_int_equal(load(&c, err, sizeof(err), 1), RPC_STATUS_OK);
	assert_int_equal(cfg_get_int(&c, "rpc-workers"), 12);
	cfg_free(&c);
	assert_int_equal(
	    load(&c, err, sizeof(err), 4, "--rpc-workers=7", "--http-addr", "0.0.0.0:9000"),
	    RPC_STATUS_OK);
	assert_int_equal(cfg_get_int(&c, "rpc-workers"), 7);
	assert_string_equal(cfg_get(&c, "http-addr"), "0.0.0.0:9000");
	cfg_free(&c);
	unsetenv("PANTHERA_RPC_WORKERS");
}

static void test_refusals_say_why(void **state)
{
	(void)state;
	cfg c;
	char err[256];
	assert_int_equal(load(&c, err, sizeof(err), 2, "--no-such=1"), RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(err, "unknown flag --no-such"));
	cfg_free(&c);
	assert_int_equal(load(&c, err, sizeof(err), 2, "--rpc-workers=0"),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(err, "rpc-workers must be an integer in 1..256"));
	cfg_free(&c);
	assert_int_equal(load(&c, err, sizeof(err), 2, "--rpc-workers=4x"),
	                 RPC_STATUS_INVALID_ARGUMENT);
	cfg_free(&c);
	assert_int_equal(load(&c, err, sizeof(err), 2, "--rpc-workers"),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(err, "needs a value"));
	cfg_free(&c);
	assert_int_equal(load(&c, err, sizeof(err), 2, "stray"), RPC_STATUS_INVALID_ARGUMENT);
	cfg_free(&c);
	setenv("PANTHERA_MAX_MESSAGE", "-5", 1);
	assert_int_equal(load(&c, err, sizeof(err), 1), RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(err, "PANTHERA_MAX_MESSAGE"));
	cfg_free(&c);
	unsetenv("PANTHERA_MAX_MESSAGE");
	assert_int_equal(load(&c, err, sizeof(err), 2, "--help"), RPC_STATUS_OK);
	assert_true(c.help);
	cfg_free(&c);
}

/* The From address of emails: unset by default (the notifications
 * service's own), from PANTHERA_MAIL_FROM or --mail-from. */
static void test_mail_from(void **state)
{
	(void)state;
	cfg c;
	char err[256];
	unsetenv("PANTHERA_MAIL_FROM");
	assert_int_equal(load(&c, err, sizeof(err), 1), RPC_STATUS_OK);
	assert_null(cfg_get(&c, "mail-from"));
	cfg_free(&c);
	setenv("PANTHERA_MAIL_FROM", "Shop <shop@example.com>", 1);
	assert_int_equal(load(&c, err, sizeof(err), 1), RPC_STATUS_OK);
	assert_string_equal(cfg_get(&c, "mail-from"), "Shop <shop@example.com>");
	cfg_free(&c);
	assert_int_equal(load(&c, err, sizeof(err), 2, "--mail-from=orders@example.com"),
	                 RPC_STATUS_OK);
	assert_string_equal(cfg_get(&c, "mail-from"), "orders@example.com");
	cfg_free(&c);
	unsetenv("PANTHERA_MAIL_FROM");
}

static void test_database_per_service(void **state)
{
	(void)state;
	cfg c;
	char err[256];
	setenv("PANTHERA_DB_URL", "postgresql:///shared", 1);
	setenv("PANTHERA_CATALOG_DB_URL", "postgresql:///catalog", 1);
	assert_int_equal(load(&c, err, sizeof(err), 1), RPC_STATUS_OK);
	assert_string_equal(cfg_db_url(&c, "CATALOG"), "postgresql:///catalog");
	assert_string_equal(cfg_db_url(&c, "ORDERS"), "postgresql:///shared");
	cfg_free(&c);
	unsetenv("PANTHERA_DB_URL");
	unsetenv("PANTHERA_CATALOG_DB_URL");
}

static void test_help_and_docs_list_every_setting(void **state)
{
	(void)state;
	char *help = NULL, *md = NULL;
	size_t hl = 0, ml = 0;
	FILE *f = open_memstream(&help, &hl);
	cfg_print_help(f, "pantherad");
	fclose(f);
	f = open_memstream(&md, &ml);
	cfg_print_markdown(f);
	fclose(f);
	for (size_t i = 0; i < cfg_n_vars; i++) {
		assert_non_null(strstr(help, cfg_vars[i].env));
		assert_non_null(strstr(md, cfg_vars[i].env));
	}
	/* secrets never show a default */
	assert_null(strstr(help, "PANTHERA_BOOTSTRAP_ADMIN_PASSWORD (default"));
	free(help);
	free(md);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_precedence_flag_env_default),
	    cmocka_unit_test(test_refusals_say_why),
	    cmocka_unit_test(test_mail_from),
	    cmocka_unit_test(test_database_per_service),
	    cmocka_unit_test(test_help_and_docs_list_every_setting),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
