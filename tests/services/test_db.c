/*
 * test_db.c - the services' common layer against a real PostgreSQL started
 * for this program: statements with hostile text, error statuses, prepared
 * statements, one-row and one-integer answers (db_exec_row, db_exec_int64),
 * transactions and serialization retries, migrations (applied once, refused
 * when changed), a server restart mid-run, pool and statement timeouts; ids
 * and the JSON log.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "panthera/db.h"
#include "panthera/ids.h"
#include "panthera/log.h"

static pgtest pg;

static int setup_cluster(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR); /* keep the test output readable */
	return pgtest_start(&pg);
}

static int teardown_cluster(void **state)
{
	(void)state;
	pgtest_destroy(&pg);
	return 0;
}

static db_pool *open_pool(unsigned size, uint32_t statement_timeout_ms)
{
	db_pool *p = NULL;
	db_pool_opts o = {
	    .url = pg.url, .size = size, .statement_timeout_ms = statement_timeout_ms};
	assert_status(db_pool_open(&p, &o), RPC_STATUS_OK);
	return p;
}

static void exec_ok(db_conn *c, const char *sql)
{
	assert_status(db_exec(c, NULL, sql, 0, NULL, NULL), RPC_STATUS_OK);
}

static void test_hostile_text_round_trips(void **state)
{
	(void)state;
	db_pool *p = open_pool(2, 0);
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL UNIQUE)");
	static const char *const texts[] = {
	    "it's a \"quote\"", "'); DROP TABLE notes; --", "Robert'); --",
	    "ünïcødé ✓ 雪 🐆",   "back\\slash %s %n",        "",
	    "line\nbreak\ttab",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		const char *params[1] = {texts[i]};
		PGresult *r;
		assert_status(db_exec(c, "note_insert",
		                      "INSERT INTO notes (body) VALUES ($1) RETURNING body", 1,
		                      params, &r),
		              RPC_STATUS_OK);
		assert_string_equal(PQgetvalue(r, 0, 0), texts[i]);
		PQclear(r);
	}
	PGresult *r;
	assert_status(db_exec(c, NULL, "SELECT count(*) FROM notes", 0, NULL, &r), RPC_STATUS_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "7"); /* nothing dropped */
	PQclear(r);
	/* duplicates and broken constraints come back as statuses */
	const char *dup[1] = {texts[0]};
	assert_status(db_exec(c, "note_insert",
	                      "INSERT INTO notes (body) VALUES ($1) RETURNING body", 1, dup, NULL),
	              RPC_STATUS_ALREADY_EXISTS);
	assert_string_equal(db_last_sqlstate(c), "23505");
	const char *null_body[1] = {NULL};
	assert_status(db_exec(c, NULL, "INSERT INTO notes (body) VALUES ($1)", 1, null_body, NULL),
	              RPC_STATUS_FAILED_PRECONDITION);
	const char *bad_int[1] = {"twelve"};
	assert_status(db_exec(c, NULL, "SELECT $1::int", 1, bad_int, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(db_exec(c, NULL, "SELEKT 1", 0, NULL, NULL), RPC_STATUS_INTERNAL);
	exec_ok(c, "DROP TABLE notes");
	db_release(p, c);
	db_pool_close(p);
}

static void test_exec_row_finds_one_or_not_found(void **state)
{
	(void)state;
	db_pool *p = open_pool(1, 0);
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "CREATE TABLE kv (k text PRIMARY KEY, v text)");
	const char *kv[2] = {"a", "1"};
	PGresult *r = NULL;
	assert_status(
	    db_exec_row(c, "kv_put", "INSERT INTO kv VALUES ($1, $2) RETURNING v", 2, kv, &r),
	    RPC_STATUS_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "1");
	PQclear(r);
	const char *a[1] = {"a"}, *b[1] = {"b"};
	assert_status(db_exec_row(c, "kv_get", "SELECT v FROM kv WHERE k = $1", 1, a, &r),
	              RPC_STATUS_OK);
	assert_int_equal(PQntuples(r), 1);
	PQclear(r);
	/* none: NOT_FOUND, and no result to clear */
	r = (PGresult *)1;
	assert_status(db_exec_row(c, "kv_get", "SELECT v FROM kv WHERE k = $1", 1, b, &r),
	              RPC_STATUS_NOT_FOUND);
	assert_null(r);
	r = (PGresult *)1;
	assert_status(db_exec_row(c, NULL, "DELETE FROM kv WHERE k = $1 RETURNING v", 1, b, &r),
	              RPC_STATUS_NOT_FOUND);
	assert_null(r);
	/* an error is db_exec's status, with no result either */
	r = (PGresult *)1;
	assert_status(
	    db_exec_row(c, "kv_put", "INSERT INTO kv VALUES ($1, $2) RETURNING v", 2, kv, &r),
	    RPC_STATUS_ALREADY_EXISTS);
	assert_null(r);
	assert_status(db_exec_row(c, NULL, "SELECT 1", 0, NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
	exec_ok(c, "DROP TABLE kv");
	db_release(p, c);
	db_pool_close(p);
}

static void test_exec_int64_reads_one_integer(void **state)
{
	(void)state;
	db_pool *p = open_pool(1, 0);
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "CREATE TABLE tally (n bigint)");
	int64_t v = -1;
	assert_status(db_exec_int64(c, "tally_count", "SELECT count(*) FROM tally", 0, NULL, &v),
	              RPC_STATUS_OK);
	assert_int_equal(v, 0);
	const char *big[1] = {"9223372036854775807"};
	assert_status(
	    db_exec_int64(c, NULL, "INSERT INTO tally VALUES ($1::bigint) RETURNING n", 1, big, &v),
	    RPC_STATUS_OK);
	assert_true(v == INT64_MAX);
	assert_status(db_exec_int64(c, NULL,
	                            "WITH gone AS (DELETE FROM tally RETURNING 1)"
	                            " SELECT count(*) - 3 FROM gone",
	                            0, NULL, &v),
	              RPC_STATUS_OK);
	assert_true(v == -2);
	/* no row, NULL, not an integer: INTERNAL, and *out as it was */
	static const char *const not_one[] = {
	    "SELECT n FROM tally",
	    "SELECT NULL::bigint",
	    "SELECT 'twelve'",
	    "SELECT 1.5",
	    "SELECT '99999999999999999999'",
	    "SELECT ''",
	    "INSERT INTO tally VALUES (1)",
	};
	for (size_t i = 0; i < sizeof(not_one) / sizeof(not_one[0]); i++) {
		v = 42;
		if (db_exec_int64(c, NULL, not_one[i], 0, NULL, &v) != RPC_STATUS_INTERNAL ||
		    v != 42)
			fail_msg("\"%s\" read as an integer", not_one[i]);
	}
	/* a failed statement is db_exec's status */
	const char *bad[1] = {"twelve"};
	assert_status(db_exec_int64(c, NULL, "SELECT $1::int", 1, bad, &v),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(v, 42);
	exec_ok(c, "DROP TABLE tally");
	db_release(p, c);
	db_pool_close(p);
}

static void test_pool_bounds_and_timeouts(void **state)
{
	(void)state;
	db_pool *p = open_pool(1, 200);
	db_conn *c, *c2;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	assert_status(db_acquire(p, 50, &c2), RPC_STATUS_DEADLINE_EXCEEDED);
	/* the statement timeout of the pool's sessions */
	assert_status(db_exec(c, NULL, "SELECT pg_sleep(2)", 0, NULL, NULL),
	              RPC_STATUS_DEADLINE_EXCEEDED);
	db_release(p, c);
	assert_status(db_acquire(p, 50, &c2), RPC_STATUS_OK);
	exec_ok(c2, "SELECT 1");
	db_release(p, c2);
	db_pool_close(p);

	db_pool *bad = NULL;
	db_pool_opts o = {.url = "postgresql:///nope?host=/nonexistent&port=1"};
	assert_status(db_pool_open(&bad, &o), RPC_STATUS_UNAVAILABLE);
	assert_null(bad);
	db_pool_opts o2 = {.url = pg.url, .schema = "Bad Schema"};
	assert_status(db_pool_open(&bad, &o2), RPC_STATUS_INVALID_ARGUMENT);
}

static rpc_status tx_insert_then(db_conn *c, void *arg)
{
	rpc_status want = *(rpc_status *)arg;
	const char *v[1] = {"x"};
	rpc_status st = db_exec(c, NULL, "INSERT INTO txt (v) VALUES ($1)", 1, v, NULL);
	return st != RPC_STATUS_OK ? st : want;
}

static void test_transaction_commits_or_rolls_back(void **state)
{
	(void)state;
	db_pool *p = open_pool(2, 0);
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "CREATE TABLE txt (v text)");
	db_release(p, c);
	rpc_status ok = RPC_STATUS_OK, fail = RPC_STATUS_FAILED_PRECONDITION;
	assert_status(db_transaction(p, 0, 1000, tx_insert_then, &ok), RPC_STATUS_OK);
	assert_status(db_transaction(p, 0, 1000, tx_insert_then, &fail),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	PGresult *r;
	assert_status(db_exec(c, NULL, "SELECT count(*) FROM txt", 0, NULL, &r), RPC_STATUS_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "1");
	PQclear(r);
	exec_ok(c, "DROP TABLE txt");
	db_release(p, c);
	db_pool_close(p);
}

/* Two transaction ids taken by fn: the same inside one transaction,
 * different when each statement is its own (DB_TX_READ). */
static rpc_status tx_two_xids(db_conn *c, void *arg)
{
	int64_t *ids = arg;
	rpc_status st =
	    db_exec_int64(c, NULL, "SELECT pg_current_xact_id()::text::bigint", 0, NULL, &ids[0]);
	if (st == RPC_STATUS_OK)
		st = db_exec_int64(c, NULL, "SELECT pg_current_xact_id()::text::bigint", 0, NULL,
		                   &ids[1]);
	return st;
}

static void test_read_runs_without_a_transaction(void **state)
{
	(void)state;
	db_pool *p = open_pool(1, 0);
	int64_t ids[2];
	assert_status(db_transaction(p, 0, 1000, tx_two_xids, ids), RPC_STATUS_OK);
	assert_true(ids[0] == ids[1]);
	assert_status(db_transaction(p, DB_TX_READ, 1000, tx_two_xids, ids), RPC_STATUS_OK);
	assert_true(ids[0] != ids[1]);
	db_pool_close(p);
}

/* db_purge: more old rows than one batch go in several batches of one
 * call, young rows stay, a failing statement answers its status. */
static void test_purge_deletes_old_rows_in_batches(void **state)
{
	(void)state;
	db_pool *p = open_pool(2, 0);
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "CREATE TABLE purged (id bigint PRIMARY KEY, at timestamptz NOT NULL)");
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO purged SELECT g, now() - interval '2 hours' FROM"
	         " generate_series(1, %d) g",
	         2 * DB_PURGE_BATCH + 7);
	exec_ok(c, sql);
	exec_ok(c, "INSERT INTO purged SELECT g, now() - interval '59 minutes'"
	           " FROM generate_series(-9, 0) g");
	db_release(p, c);
	static const char del[] =
	    "DELETE FROM purged WHERE id IN (SELECT id FROM purged"
	    " WHERE at < now() - $1::int * interval '1 second' LIMIT $2::int)";
	long n = -1;
	assert_status(db_purge(p, del, 3600, &n), RPC_STATUS_OK);
	assert_int_equal(n, 2 * DB_PURGE_BATCH + 7);
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	PGresult *r;
	assert_status(db_exec(c, NULL, "SELECT count(*), min(id) FROM purged", 0, NULL, &r),
	              RPC_STATUS_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "10");
	assert_string_equal(PQgetvalue(r, 0, 1), "-9");
	PQclear(r);
	db_release(p, c);
	assert_status(db_purge(p, del, 3600, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	/* a statement that fails: its status, nothing counted */
	assert_status(db_purge(p, "DELETE FROM no_such_table WHERE $1::int > $2::int", 1, &n),
	              RPC_STATUS_INTERNAL);
	assert_int_equal(n, 0);
	assert_status(db_purge(NULL, del, 1, &n), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "DROP TABLE purged");
	db_release(p, c);
	db_pool_close(p);
}

/* Read-modify-write of one counter from two threads under SERIALIZABLE:
 * conflicts must be retried until every increment lands exactly once. */
typedef struct counter_run {
	db_pool *pool;
	atomic_int attempts;
	int failures;
} counter_run;

static rpc_status bump(db_conn *c, void *arg)
{
	counter_run *run = arg;
	atomic_fetch_add(&run->attempts, 1);
	PGresult *r;
	rpc_status st =
	    db_exec(c, "counter_get", "SELECT n FROM counter WHERE id = 1", 0, NULL, &r);
	if (st != RPC_STATUS_OK)
		return st;
	char next[32];
	snprintf(next, sizeof(next), "%d", atoi(PQgetvalue(r, 0, 0)) + 1);
	PQclear(r);
	usleep(1000); /* widen the window for a conflict */
	const char *params[1] = {next};
	return db_exec(c, "counter_set", "UPDATE counter SET n = $1::int WHERE id = 1", 1, params,
	               NULL);
}

static void *bump_many(void *arg)
{
	counter_run *run = arg;
	for (int i = 0; i < 20; i++) {
		if (db_transaction(run->pool, 1, 5000, bump, run) != RPC_STATUS_OK)
			run->failures++;
	}
	return NULL;
}

static void test_serializable_conflicts_are_retried(void **state)
{
	(void)state;
	db_pool *p = open_pool(4, 0);
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)");
	exec_ok(c, "INSERT INTO counter VALUES (1, 0)");
	db_release(p, c);
	counter_run a = {.pool = p}, b = {.pool = p};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, bump_many, &a);
	pthread_create(&tb, NULL, bump_many, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	PGresult *r;
	assert_status(db_exec(c, NULL, "SELECT n FROM counter", 0, NULL, &r), RPC_STATUS_OK);
	int n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	exec_ok(c, "DROP TABLE counter");
	db_release(p, c);
	db_pool_close(p);
	/* what succeeded landed once each; retries happened */
	assert_int_equal(n, 40 - a.failures - b.failures);
	assert_true(a.failures + b.failures <= 2);
	assert_true(atomic_load(&a.attempts) + atomic_load(&b.attempts) > 40);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_migrations(void **state)
{
	(void)state;
	char dir[] = "/tmp/panthera-mig-XXXXXX";
	assert_non_null(mkdtemp(dir));
	write_file(dir, "001_products.sql",
	           "CREATE TABLE products (id uuid PRIMARY KEY, name text NOT NULL);\n"
	           "CREATE INDEX products_name ON products (name);\n");
	write_file(dir, "002_price.sql", "ALTER TABLE products ADD COLUMN price numeric(12,2);\n");
	write_file(dir, "README", "not a migration");
	db_pool *p = open_pool(2, 0);
	assert_status(db_migrate(p, "catalog_test", dir), RPC_STATUS_OK);
	assert_status(db_migrate(p, "catalog_test", dir), RPC_STATUS_OK); /* twice: nothing new */
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	PGresult *r;
	assert_status(
	    db_exec(c, NULL, "SELECT count(*) FROM catalog_test.schema_migrations", 0, NULL, &r),
	    RPC_STATUS_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "2");
	PQclear(r);
	assert_status(db_exec(c, NULL, "SELECT price FROM catalog_test.products", 0, NULL, NULL),
	              RPC_STATUS_OK);
	db_release(p, c);

	/* a new file is applied; a changed applied file stops everything */
	write_file(dir, "003_sku.sql", "ALTER TABLE products ADD COLUMN sku text UNIQUE;\n");
	assert_status(db_migrate(p, "catalog_test", dir), RPC_STATUS_OK);
	write_file(dir, "002_price.sql", "ALTER TABLE products ADD COLUMN price numeric(14,2);\n");
	assert_status(db_migrate(p, "catalog_test", dir), RPC_STATUS_FAILED_PRECONDITION);
	write_file(dir, "002_price.sql", "ALTER TABLE products ADD COLUMN price numeric(12,2);\n");
	/* two files with one number */
	write_file(dir, "003_other.sql", "SELECT 1;\n");
	assert_status(db_migrate(p, "catalog_test", dir), RPC_STATUS_FAILED_PRECONDITION);
	char path[1024];
	snprintf(path, sizeof(path), "%s/003_other.sql", dir);
	unlink(path);
	/* a migration that fails leaves nothing half-applied */
	write_file(dir, "004_broken.sql",
	           "CREATE TABLE half (id int);\nSELECT nope FROM nowhere;\n");
	assert_status(db_migrate(p, "catalog_test", dir), RPC_STATUS_FAILED_PRECONDITION);
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	assert_status(
	    db_exec(c, NULL, "SELECT to_regclass('catalog_test.half') IS NULL", 0, NULL, &r),
	    RPC_STATUS_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	exec_ok(c, "DROP SCHEMA catalog_test CASCADE");
	db_release(p, c);
	assert_status(db_migrate(p, "Bad-Schema", dir), RPC_STATUS_INVALID_ARGUMENT);
	db_pool_close(p);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_service_roles_keep_to_their_schema(void **state)
{
	(void)state;
	char dir_a[] = "/tmp/panthera-role-a-XXXXXX", dir_b[] = "/tmp/panthera-role-b-XXXXXX";
	assert_non_null(mkdtemp(dir_a));
	assert_non_null(mkdtemp(dir_b));
	write_file(dir_a, "001_a.sql", "CREATE TABLE things (id int PRIMARY KEY);\n");
	write_file(dir_b, "001_b.sql", "CREATE TABLE secrets (id int PRIMARY KEY);\n");
	db_pool *admin = open_pool(2, 0);
	assert_status(db_migrate(admin, "svc_a", dir_a), RPC_STATUS_OK);
	assert_status(db_migrate(admin, "svc_b", dir_b), RPC_STATUS_OK);
	assert_status(db_grant_service_role(admin, "panthera_svc_a", "svc_a"), RPC_STATUS_OK);
	assert_status(db_grant_service_role(admin, "panthera_svc_a", "svc_a"),
	              RPC_STATUS_OK); /* twice */
	assert_status(db_grant_service_role(admin, "panthera_svc_b", "svc_b"), RPC_STATUS_OK);
	assert_status(db_grant_service_role(admin, "Bad Role", "svc_b"),
	              RPC_STATUS_INVALID_ARGUMENT);

	db_pool *a = NULL;
	db_pool_opts o = {.url = pg.url, .size = 1, .schema = "svc_a", .role = "panthera_svc_a"};
	assert_status(db_pool_open(&a, &o), RPC_STATUS_OK);
	db_conn *c;
	assert_status(db_acquire(a, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "INSERT INTO things VALUES (1)");
	exec_ok(c, "CREATE TABLE IF NOT EXISTS extra (id int)"); /* its own schema: allowed */
	assert_status(db_exec(c, NULL, "SELECT * FROM svc_b.secrets", 0, NULL, NULL),
	              RPC_STATUS_PERMISSION_DENIED);
	assert_status(db_exec(c, NULL, "DROP SCHEMA svc_b CASCADE", 0, NULL, NULL),
	              RPC_STATUS_PERMISSION_DENIED);
	db_release(a, c);
	db_pool_close(a);
	db_conn *ac;
	assert_status(db_acquire(admin, 1000, &ac), RPC_STATUS_OK);
	exec_ok(ac, "DROP SCHEMA svc_a CASCADE");
	exec_ok(ac, "DROP SCHEMA svc_b CASCADE");
	db_release(admin, ac);
	db_pool_close(admin);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir_a, dir_b);
	assert_int_equal(system(cmd), 0);
}

static void test_server_restart_fails_then_recovers(void **state)
{
	(void)state;
	db_pool *p = open_pool(2, 0);
	db_conn *c;
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "SELECT 1");
	db_release(p, c);
	assert_int_equal(pgtest_stop_server(&pg), 0);
	/* while it is down: UNAVAILABLE, no crash */
	assert_status(db_acquire(p, 1000, &c),
	              RPC_STATUS_OK); /* the idle connection looks fine... */
	assert_status(db_exec(c, NULL, "SELECT 1", 0, NULL, NULL),
	              RPC_STATUS_UNAVAILABLE); /* ...until used */
	db_release(p, c);
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_UNAVAILABLE);
	assert_int_equal(pgtest_start_server(&pg), 0);
	/* back, without reopening the pool */
	assert_status(db_acquire(p, 1000, &c), RPC_STATUS_OK);
	exec_ok(c, "SELECT 1");
	db_release(p, c);
	db_pool_close(p);
}

static void test_uuid4(void **state)
{
	(void)state;
	char a[ID_UUID_LEN + 1], b[ID_UUID_LEN + 1];
	assert_status(id_uuid4(a), RPC_STATUS_OK);
	assert_status(id_uuid4(b), RPC_STATUS_OK);
	assert_true(id_is_uuid(a));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');                                      /* version */
	assert_true(strchr("89ab", a[19]) != NULL);                        /* variant */
	assert_false(id_is_uuid("3f0c8a2e-1b2c-4d5e-8f90-12345678901"));   /* short */
	assert_false(id_is_uuid("3f0c8a2e-1b2c-4d5e-8f90-1234567890123")); /* long */
	assert_false(id_is_uuid("3f0c8a2e+1b2c-4d5e-8f90-123456789012"));
	assert_false(id_is_uuid(NULL));
	assert_true(id_is_uuid("3F0C8A2E-1B2C-4D5E-8F90-123456789012"));
}

static void test_log_lines_are_json(void **state)
{
	(void)state;
	char path[] = "/tmp/panthera-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	log_set_level(LOG_INFO);
	log_write(LOG_INFO, "req-\"1\"", "test.event",
	          "quote \" backslash \\ newline \n ctl \x01 ✓");
	log_write(LOG_DEBUG, NULL, "test.hidden", "below the level");
	log_set_level(LOG_ERROR);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	char buf[1024] = "";
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(
	    buf, "\"level\":\"info\",\"event\":\"test.event\",\"request_id\":\"req-\\\"1\\\"\""));
	assert_non_null(strstr(buf, "quote \\\" backslash \\\\ newline \\n ctl \\u0001 ✓"));
	assert_null(strstr(buf, "test.hidden"));
	assert_int_equal(buf[n - 1], '\n');
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* one line */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostile_text_round_trips),
	    cmocka_unit_test(test_exec_row_finds_one_or_not_found),
	    cmocka_unit_test(test_exec_int64_reads_one_integer),
	    cmocka_unit_test(test_pool_bounds_and_timeouts),
	    cmocka_unit_test(test_transaction_commits_or_rolls_back),
	    cmocka_unit_test(test_read_runs_without_a_transaction),
	    cmocka_unit_test(test_purge_deletes_old_rows_in_batches),
	    cmocka_unit_test(test_serializable_conflicts_are_retried),
	    cmocka_unit_test(test_migrations),
	    cmocka_unit_test(test_service_roles_keep_to_their_schema),
	    cmocka_unit_test(test_server_restart_fails_then_recovers),
	    cmocka_unit_test(test_uuid4),
	    cmocka_unit_test(test_log_lines_are_json),
	};
	return cmocka_run_group_tests_name("services_common", tests, setup_cluster,
	                                   teardown_cluster);
}
