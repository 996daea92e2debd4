/*
 * test_events.c - the event log on a real PostgreSQL: an event exists
 * exactly when its transaction commits, is applied once, in commit order;
 * a consumer killed mid-transaction applies it once after restart; a poison
 * event is parked and the events behind it flow; transaction ids are
 * ordered as numbers (9999 before 10000); a parked event can be
 * replayed; producer and consumer in different databases; NOTIFY wakes;
 * pruning never deletes what a reader still needs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "panthera/events.h"
#include "panthera/log.h"

static pgtest pg;
static db_pool *pool;

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	db_pool_opts o = {.url = pg.url, .size = 6};
	return db_pool_open(&pool, &o) == RPC_STATUS_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	db_pool_close(pool);
	pgtest_destroy(&pg);
	return 0;
}

static void sql_ok(db_pool *p, const char *sql)
{
	db_conn *c;
	assert_status(db_acquire(p, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, 0, NULL, NULL), RPC_STATUS_OK);
	db_release(p, c);
}

static long count(db_pool *p, const char *sql)
{
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(p, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, 0, NULL, &r), RPC_STATUS_OK);
	long n = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(p, c);
	return n;
}

/* Publish one event in its own transaction (committed unless `rollback`). */
static void publish(db_pool *p, const char *schema, const char *payload, int rollback)
{
	db_conn *c;
	assert_status(db_acquire(p, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(ev_publish(c, schema, "test.v1.Thing", "agg-1", (const uint8_t *)payload,
	                         strlen(payload), NULL),
	              RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, rollback ? "ROLLBACK" : "COMMIT", 0, NULL, NULL),
	              RPC_STATUS_OK);
	db_release(p, c);
}

/* The effect of an event: a row in <own>.effects, plus an optional fault. */
typedef struct effect_ctx {
	const char *table;  /* "sink.effects" */
	const char *poison; /* payload that always fails, or NULL */
	int die;            /* _exit the process after the effect, before commit */
} effect_ctx;

static rpc_status apply_effect(db_conn *c, const ev_event *ev, void *arg)
{
	effect_ctx *e = arg;
	char payload[256];
	size_t n = ev->payload_len < sizeof(payload) - 1 ? ev->payload_len : sizeof(payload) - 1;
	memcpy(payload, ev->payload, n);
	payload[n] = '\0';
	if (e->poison != NULL && strcmp(payload, e->poison) == 0)
		return RPC_STATUS_INTERNAL;
	/* the commit time, RFC 3339 in UTC: "2026-11-23T10:15:00.123456Z" */
	const char *t = ev->occurred_at;
	if (t == NULL || strlen(t) != 27 || t[4] != '-' || t[10] != 'T' || t[19] != '.' ||
	    t[26] != 'Z')
		return RPC_STATUS_DATA_LOSS;
	char sql[256];
	snprintf(sql, sizeof(sql), "INSERT INTO %s (event_id, payload) VALUES ($1, $2)", e->table);
	const char *p[2] = {ev->id, payload};
	rpc_status st = db_exec(c, NULL, sql, 2, p, NULL);
	if (e->die)
		_exit(3); /* killed between claiming and committing */
	return st;
}

static ev_consumer *consumer(const char *name, db_pool *src, const char *src_schema, db_pool *own,
                             const char *own_schema, effect_ctx *e)
{
	ev_consumer *c;
	ev_consumer_opts o = {.name = name,
	                      .source = src,
	                      .source_schema = src_schema,
	                      .own = own,
	                      .own_schema = own_schema,
	                      .handler = apply_effect,
	                      .arg = e,
	                      .max_attempts = 3,
	                      .backoff_ms = 1};
	assert_status(ev_consumer_open(&c, &o), RPC_STATUS_OK);
	return c;
}

static void test_applied_once_and_only_when_committed(void **state)
{
	(void)state;
	assert_status(ev_outbox_setup(pool, "orders"), RPC_STATUS_OK);
	sql_ok(pool, "CREATE SCHEMA IF NOT EXISTS sink");
	sql_ok(pool, "CREATE TABLE sink.effects (event_id uuid PRIMARY KEY, payload text)");
	effect_ctx e = {.table = "sink.effects"};
	ev_consumer *c = consumer("sink.once", pool, "orders", pool, "sink", &e);
	publish(pool, "orders", "one", 0);
	publish(pool, "orders", "never", 1); /* rolled back: never delivered */
	publish(pool, "orders", "two", 0);
	unsigned n;
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 2);
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.effects"), 2);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.effects WHERE payload = 'never'"),
	                 0);
	ev_consumer_close(c);
}

static void test_commit_order_not_insert_order(void **state)
{
	(void)state;
	sql_ok(pool,
	       "CREATE TABLE sink.ordered (n serial, event_id uuid PRIMARY KEY, payload text)");
	effect_ctx e = {.table = "sink.ordered"};
	ev_consumer *c = consumer("sink.ordered", pool, "orders", pool, "sink", &e);
	unsigned n;
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK); /* skip what earlier tests left */
	/* T1 takes a sequence number first but commits last */
	db_conn *t1;
	assert_status(db_acquire(pool, 2000, &t1), RPC_STATUS_OK);
	assert_status(db_exec(t1, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(
	    ev_publish(t1, "orders", "test.v1.Thing", "", (const uint8_t *)"first-seq", 9, NULL),
	    RPC_STATUS_OK);
	publish(pool, "orders", "second-seq", 0);
	/* T1 still runs: nothing after it may be consumed yet */
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_status(db_exec(t1, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(pool, t1);
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 2);
	assert_int_equal(
	    count(pool, "SELECT count(*) FROM sink.ordered WHERE payload LIKE '%-seq'"), 2);
	/* nothing was skipped: both, in commit order of their transactions */
	assert_int_equal(
	    count(pool, "SELECT count(*) FROM sink.ordered a JOIN sink.ordered b"
	                " ON a.payload = 'first-seq' AND b.payload = 'second-seq' AND a.n < b.n"),
	    1);
	ev_consumer_close(c);
}

/* An event committed while an older transaction (which publishes nothing)
 * still runs is held back; the consumer sees that, and its wait looks
 * again within milliseconds rather than sleeping until a NOTIFY that the
 * older transaction's end never sends. */
static void test_held_back_events_are_looked_at_again_soon(void **state)
{
	(void)state;
	sql_ok(pool, "CREATE TABLE sink.held (event_id uuid PRIMARY KEY, payload text)");
	effect_ctx e = {.table = "sink.held"};
	ev_consumer *c = consumer("sink.held", pool, "orders", pool, "sink", &e);
	unsigned n;
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK); /* what earlier tests left */
	while (n > 0)
		assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(ev_consumer_held_back(c), 0);
	db_conn *t1;
	assert_status(db_acquire(pool, 2000, &t1), RPC_STATUS_OK);
	assert_status(db_exec(t1, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(db_exec(t1, NULL, "SELECT pg_current_xact_id()", 0, NULL, NULL),
	              RPC_STATUS_OK);
	publish(pool, "orders", "held", 0);
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ev_consumer_held_back(c), 1);
	assert_status(ev_wait(c, 50), RPC_STATUS_OK); /* the NOTIFY of "held" */
	assert_status(db_exec(t1, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(pool, t1);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_status(ev_wait(c, 20000), RPC_STATUS_OK); /* no NOTIFY comes now */
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 10); /* not the 20 s timeout */
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ev_consumer_held_back(c), 0);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.held WHERE payload = 'held'"), 1);
	ev_consumer_close(c);
}

/* Burn transaction ids until the next one is at least `target`. */
static void burn_xids_to(long target)
{
	long now = count(pool, "SELECT pg_current_xact_id()::text::bigint");
	if (now + 1 >= target)
		return;
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "DO $$ BEGIN FOR i IN 1..%ld LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP;"
	         " END $$",
	         target - now - 1);
	sql_ok(pool, sql);
}

/* Transaction ids are numbers: 9999 comes before 10000. A batch once took
 * its order from the text of the id, so a consumer reading one event at a
 * time went to 10000 first and moved its cursor past 9999 for good. */
static void test_transaction_ids_past_a_power_of_ten(void **state)
{
	(void)state;
	sql_ok(pool, "CREATE TABLE sink.digits (event_id uuid PRIMARY KEY, payload text)");
	effect_ctx e = {.table = "sink.digits"};
	ev_consumer *c;
	ev_consumer_opts o = {.name = "sink.digits",
	                      .source = pool,
	                      .source_schema = "orders",
	                      .own = pool,
	                      .own_schema = "sink",
	                      .handler = apply_effect,
	                      .arg = &e,
	                      .batch = 1};
	assert_status(ev_consumer_open(&c, &o), RPC_STATUS_OK);
	unsigned n;
	do /* what earlier tests left */
		assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	while (n > 0);
	long next = count(pool, "SELECT pg_current_xact_id()::text::bigint") + 4, p10 = 10;
	while (p10 < next)
		p10 *= 10;
	burn_xids_to(p10 - 2);
	publish(pool, "orders", "below", 0);
	burn_xids_to(p10 + 1);
	publish(pool, "orders", "above", 0);
	/* the two straddle a power of ten, as the test means them to */
	assert_int_equal(count(pool, "SELECT count(*) FROM orders.outbox a JOIN orders.outbox b"
	                             " ON convert_from(a.payload, 'UTF8') = 'below'"
	                             " AND convert_from(b.payload, 'UTF8') = 'above'"
	                             " AND length(a.txid::text) < length(b.txid::text)"),
	                 1);
	long before = count(pool, "SELECT count(*) FROM sink.digits");
	for (int i = 0; i < 4; i++)
		assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.digits"), before + 2);
	assert_int_equal(
	    count(pool, "SELECT count(*) FROM sink.digits WHERE payload IN ('below', 'above')"), 2);
	ev_consumer_close(c);
}

/* A consumer that starts at now skips what the outbox held when it was
 * first opened, and takes what comes after; opened again, it keeps its
 * cursor. */
static void test_a_new_consumer_may_start_at_now(void **state)
{
	(void)state;
	sql_ok(pool, "CREATE TABLE sink.fresh (event_id uuid PRIMARY KEY, payload text)");
	publish(pool, "orders", "old-news", 0);
	effect_ctx e = {.table = "sink.fresh"};
	ev_consumer_opts o = {.name = "sink.fresh",
	                      .source = pool,
	                      .source_schema = "orders",
	                      .own = pool,
	                      .own_schema = "sink",
	                      .handler = apply_effect,
	                      .arg = &e,
	                      .start_at_now = 1};
	ev_consumer *c;
	assert_status(ev_consumer_open(&c, &o), RPC_STATUS_OK);
	unsigned n;
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	publish(pool, "orders", "fresh-news", 0);
	ev_consumer_close(c);
	assert_status(ev_consumer_open(&c, &o), RPC_STATUS_OK); /* keeps its cursor */
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(
	    count(pool, "SELECT count(*) FROM sink.fresh WHERE payload = 'fresh-news'"), 1);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.fresh"), 1);
	ev_consumer_close(c);
}

static void test_killed_consumer_applies_once_after_restart(void **state)
{
	(void)state;
	sql_ok(pool, "CREATE TABLE sink.killed (event_id uuid PRIMARY KEY, payload text)");
	effect_ctx live = {.table = "sink.killed"};
	ev_consumer *c = consumer("sink.killed", pool, "orders", pool, "sink", &live);
	unsigned n;
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK); /* skip the past */
	ev_consumer_close(c);
	publish(pool, "orders", "kill-me", 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* a fresh pool: connections are not shared across fork */
		db_pool *p2;
		db_pool_opts o = {.url = pg.url, .size = 2};
		if (db_pool_open(&p2, &o) != RPC_STATUS_OK)
			_exit(1);
		effect_ctx dying = {.table = "sink.killed", .die = 1};
		ev_consumer *dc;
		ev_consumer_opts co = {.name = "sink.killed",
		                       .source = p2,
		                       .source_schema = "orders",
		                       .own = p2,
		                       .own_schema = "sink",
		                       .handler = apply_effect,
		                       .arg = &dying};
		if (ev_consumer_open(&dc, &co) != RPC_STATUS_OK)
			_exit(1);
		ev_consume_once(dc, NULL);
		_exit(2); /* not reached: the handler dies first */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.killed WHERE payload = 'kill-me'"),
	                 0); /* rolled back */
	c = consumer("sink.killed", pool, "orders", pool, "sink", &live);
	/* the dead session's locks go with it; the event is applied now, once */
	int applied = 0;
	for (int i = 0; i < 50 && !applied; i++) {
		assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
		applied = n > 0;
		if (!applied)
			usleep(20000);
	}
	assert_true(applied);
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.killed WHERE payload = 'kill-me'"),
	                 1);
	ev_consumer_close(c);
}

static void test_poison_is_parked_and_the_rest_flows(void **state)
{
	(void)state;
	sql_ok(pool, "CREATE TABLE sink.poison (event_id uuid PRIMARY KEY, payload text)");
	effect_ctx e = {.table = "sink.poison", .poison = "bad"};
	ev_consumer *c = consumer("sink.poison", pool, "orders", pool, "sink", &e);
	unsigned n;
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK); /* skip the past */
	publish(pool, "orders", "bad", 0);
	publish(pool, "orders", "good", 0);
	/* attempts 1 and 2 wait for their backoff; the third parks it */
	for (int i = 0;
	     i < 40 && count(pool, "SELECT count(*) FROM sink.poison WHERE payload = 'good'") == 0;
	     i++) {
		assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
		usleep(5000);
	}
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.poison WHERE payload = 'good'"), 1);
	long parked;
	assert_status(ev_dead_letter_count(pool, "sink", "sink.poison", &parked), RPC_STATUS_OK);
	assert_int_equal(parked, 1);
	/* fixed, an admin replays it */
	db_conn *q;
	PGresult *r;
	assert_status(db_acquire(pool, 2000, &q), RPC_STATUS_OK);
	assert_status(
	    db_exec(q, NULL, "SELECT event_id::text, attempts FROM sink.dead_letters", 0, NULL, &r),
	    RPC_STATUS_OK);
	char id[64];
	snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
	assert_string_equal(PQgetvalue(r, 0, 1), "3");
	PQclear(r);
	db_release(pool, q);
	e.poison = NULL;
	assert_status(ev_replay_dead_letter(c, id), RPC_STATUS_OK);
	assert_status(ev_replay_dead_letter(c, id), RPC_STATUS_NOT_FOUND);
	assert_status(ev_dead_letter_count(pool, "sink", "sink.poison", &parked), RPC_STATUS_OK);
	assert_int_equal(parked, 0);
	assert_int_equal(
	    count(pool, "SELECT count(*) FROM sink.poison WHERE payload IN ('bad', 'good')"), 2);
	ev_consumer_close(c);
}

static void test_producer_and_consumer_in_different_databases(void **state)
{
	(void)state;
	sql_ok(pool, "CREATE DATABASE panthera_b");
	char url[600];
	snprintf(url, sizeof(url), "%s", pg.url);
	char *db = strstr(url, "///panthera?");
	assert_non_null(db);
	memmove(db + strlen("///panthera_b"), db + strlen("///panthera"),
	        strlen(db + strlen("///panthera")) + 1);
	memcpy(db, "///panthera_b", strlen("///panthera_b"));
	db_pool *other;
	db_pool_opts o = {.url = url, .size = 2};
	assert_status(db_pool_open(&other, &o), RPC_STATUS_OK);
	sql_ok(other, "CREATE SCHEMA sink");
	sql_ok(other, "CREATE TABLE sink.remote (event_id uuid PRIMARY KEY, payload text)");
	effect_ctx e = {.table = "sink.remote"};
	ev_consumer *c = consumer("sink.remote", pool, "orders", other, "sink", &e);
	unsigned n;
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	publish(pool, "orders", "across", 0);
	assert_status(ev_consume_once(c, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(count(other, "SELECT count(*) FROM sink.remote WHERE payload = 'across'"),
	                 1);
	assert_int_equal(
	    count(other,
	          "SELECT count(*) FROM sink.processed_events WHERE consumer = 'sink.remote'"),
	    count(other, "SELECT count(*) FROM sink.remote"));
	/* the reader's position is kept where the producer can see it */
	assert_int_equal(count(pool, "SELECT count(*) FROM orders.outbox_readers"
	                             " WHERE consumer = 'sink.remote' AND last_seq > 0"),
	                 1);
	ev_consumer_close(c);
	db_pool_close(other);
}

static long pruned_outbox(const char *schema, uint32_t keep_s)
{
	long d = -1;
	assert_status(ev_prune_outbox(pool, schema, keep_s, &d), RPC_STATUS_OK);
	return d;
}

static void test_pruning_keeps_what_a_reader_still_needs(void **state)
{
	(void)state;
	assert_status(ev_outbox_setup(pool, "shop"), RPC_STATUS_OK);
	sql_ok(pool, "CREATE TABLE sink.fast (event_id uuid, payload text)");
	sql_ok(pool, "CREATE TABLE sink.slow (event_id uuid, payload text)");
	publish(pool, "shop", "a", 0);
	publish(pool, "shop", "b", 0);
	assert_int_equal(pruned_outbox("shop", 0), 0); /* nobody reads it: kept whole */

	effect_ctx ef = {.table = "sink.fast"}, es = {.table = "sink.slow"};
	ev_consumer *fast = consumer("sink.fast", pool, "shop", pool, "sink", &ef);
	ev_consumer *slow = consumer("sink.slow", pool, "shop", pool, "sink", &es);
	unsigned n;
	assert_status(ev_consume_once(fast, &n), RPC_STATUS_OK);
	assert_int_equal(n, 2);
	assert_int_equal(pruned_outbox("shop", 0), 0); /* slow has read nothing yet */
	assert_status(ev_consume_once(slow, &n), RPC_STATUS_OK);
	assert_int_equal(n, 2);
	assert_int_equal(pruned_outbox("shop", 3600), 0); /* younger than the retention */
	assert_int_equal(pruned_outbox("shop", 0), 2);
	assert_int_equal(count(pool, "SELECT count(*) FROM shop.outbox"), 0);

	/* cursors still work over the gap */
	publish(pool, "shop", "c", 0);
	assert_status(ev_consume_once(fast, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_status(ev_consume_once(slow, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);

	/* processed ids: only past the retention */
	long d = -1;
	assert_status(ev_prune_processed(pool, "sink", 3600, &d), RPC_STATUS_OK);
	assert_int_equal(d, 0);
	assert_status(ev_prune_processed(pool, "sink", 0, &d), RPC_STATUS_OK);
	assert_true(d >= 6);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.processed_events"), 0);

	/* a rewound reader pins the outbox again and reads it from the start */
	assert_status(ev_consumer_rewind(fast), RPC_STATUS_OK);
	assert_int_equal(pruned_outbox("shop", 0), 0);
	assert_status(ev_consume_once(fast, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(count(pool, "SELECT count(*) FROM sink.fast WHERE payload = 'c'"), 2);
	assert_int_equal(pruned_outbox("shop", 0), 1);

	assert_status(ev_prune_outbox(pool, "no such; schema", 0, &d), RPC_STATUS_INVALID_ARGUMENT);
	ev_consumer_close(fast);
	ev_consumer_close(slow);
}

static void *publish_later(void *arg)
{
	(void)arg;
	usleep(200000);
	publish(pool, "orders", "wake", 0);
	return NULL;
}

static void test_notify_wakes_a_waiting_consumer(void **state)
{
	(void)state;
	sql_ok(pool, "CREATE TABLE sink.woken (event_id uuid PRIMARY KEY, payload text)");
	effect_ctx e = {.table = "sink.woken"};
	ev_consumer *c = consumer("sink.woken", pool, "orders", pool, "sink", &e);
	assert_status(ev_wait(c, 10), RPC_STATUS_OK); /* opens the LISTEN connection */
	pthread_t t;
	pthread_create(&t, NULL, publish_later, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_status(ev_wait(c, 5000), RPC_STATUS_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(t, NULL);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 3000); /* woken by the NOTIFY, not by the timeout */
	ev_consumer_close(c);
}

/* What a tail delivered, for the test below. */
typedef struct tail_seen {
	pthread_mutex_t mu;
	char got[16][64]; /* "<schema>/<type>/<payload>" */
	int n;
	int gaps;
} tail_seen;

static void tail_event(const char *schema, const char *type, const uint8_t *payload, size_t len,
                       void *arg)
{
	tail_seen *s = arg;
	pthread_mutex_lock(&s->mu);
	if (s->n < 16)
		snprintf(s->got[s->n++], sizeof(s->got[0]), "%s/%s/%.*s", schema, type, (int)len,
		         (const char *)payload);
	pthread_mutex_unlock(&s->mu);
}

static int tail_count(tail_seen *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Wait (at most 10 s) until the tail has delivered `want` events. */
static void tail_wait_for(tail_seen *s, int want)
{
	for (int i = 0; i < 1000 && tail_count(s) < want; i++)
		usleep(10000);
	assert_int_equal(tail_count(s), want);
}

static void publish_typed(const char *schema, const char *type, const char *payload)
{
	db_conn *c;
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(
	    ev_publish(c, schema, type, "agg-1", (const uint8_t *)payload, strlen(payload), NULL),
	    RPC_STATUS_OK);
	db_release(pool, c);
}

/* A tail sees, in commit order and once, the events of the wanted types
 * committed after it started, in every schema it follows (also one whose
 * outbox is created later); nothing from before, nothing rolled back,
 * nothing of other types; and it writes nothing (no reader row). */
static void test_a_tail_follows_from_now_in_memory(void **state)
{
	(void)state;
	assert_status(ev_outbox_setup(pool, "tail_a"), RPC_STATUS_OK);
	publish_typed("tail_a", "test.v1.Thing", "before");
	tail_seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
	const char *schemas[] = {"tail_a", "tail_b", NULL};
	const char *types[] = {"test.v1.Thing", "test.v1.Other", NULL};
	ev_tail *t;
	ev_tail_opts o = {.url = pg.url,
	                  .schemas = schemas,
	                  .types = types,
	                  .on_event = tail_event,
	                  .arg = &seen,
	                  .poll_ms = 50};
	assert_status(ev_tail_start(&t, &o), RPC_STATUS_OK);

	/* T1 starts first and commits last: its event comes after T2's */
	db_conn *t1;
	assert_status(db_acquire(pool, 2000, &t1), RPC_STATUS_OK);
	assert_status(db_exec(t1, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(
	    ev_publish(t1, "tail_a", "test.v1.Thing", "", (const uint8_t *)"late", 4, NULL),
	    RPC_STATUS_OK);
	publish_typed("tail_a", "test.v1.Thing", "one");
	publish_typed("tail_a", "test.v1.Ignored", "skipped");
	publish(pool, "tail_a", "rolled-back", 1);
	publish_typed("tail_a", "test.v1.Other", "two");
	usleep(200000);
	assert_int_equal(tail_count(&seen), 0); /* T1 still runs: nothing after it yet */
	assert_status(db_exec(t1, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(pool, t1);
	tail_wait_for(&seen, 3);
	assert_string_equal(seen.got[0], "tail_a/test.v1.Thing/late");
	assert_string_equal(seen.got[1], "tail_a/test.v1.Thing/one");
	assert_string_equal(seen.got[2], "tail_a/test.v1.Other/two");

	/* an outbox created after the start is followed once it exists */
	assert_status(ev_outbox_setup(pool, "tail_b"), RPC_STATUS_OK);
	publish_typed("tail_b", "test.v1.Thing", "three");
	tail_wait_for(&seen, 4);
	assert_string_equal(seen.got[3], "tail_b/test.v1.Thing/three");
	usleep(200000);
	assert_int_equal(tail_count(&seen), 4); /* each once */
	uint64_t events, errors;
	ev_tail_counts(t, &events, &errors);
	assert_int_equal(events, 4);
	assert_int_equal(errors, 0);
	assert_int_equal(seen.gaps, 0);
	ev_tail_stop(t);
	assert_int_equal(count(pool, "SELECT count(*) FROM tail_a.outbox_readers"), 0);

	/* bad options */
	const char *bad_schema[] = {"no such", NULL};
	const char *bad_type[] = {"a\"b", NULL};
	ev_tail_opts b = o;
	b.schemas = bad_schema;
	assert_status(ev_tail_start(&t, &b), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(t);
	b = o;
	b.types = bad_type;
	assert_status(ev_tail_start(&t, &b), RPC_STATUS_INVALID_ARGUMENT);
	b = o;
	b.on_event = NULL;
	assert_status(ev_tail_start(&t, &b), RPC_STATUS_INVALID_ARGUMENT);
}

static void tail_gap(void *arg)
{
	tail_seen *s = arg;
	pthread_mutex_lock(&s->mu);
	s->gaps++;
	pthread_mutex_unlock(&s->mu);
}

/* Started while its database is not there, a tail keeps trying; once it
 * is, it says that what came before may have been missed, and follows. */
static void test_a_tail_started_without_database_reports_the_gap(void **state)
{
	(void)state;
	char url[600];
	const char *at = strstr(pg.url, "///panthera?");
	assert_non_null(at);
	snprintf(url, sizeof(url), "%.*s///tail_late?%s", (int)(at - pg.url), pg.url, at + 12);
	tail_seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
	const char *schemas[] = {"tail_c", NULL};
	ev_tail *t;
	ev_tail_opts o = {.url = url,
	                  .schemas = schemas,
	                  .on_event = tail_event,
	                  .on_gap = tail_gap,
	                  .arg = &seen,
	                  .poll_ms = 50};
	assert_status(ev_tail_start(&t, &o), RPC_STATUS_OK);
	usleep(300000);
	uint64_t events, errors;
	ev_tail_counts(t, &events, &errors);
	assert_true(errors >= 1);
	pthread_mutex_lock(&seen.mu);
	assert_int_equal(seen.gaps, 0);
	pthread_mutex_unlock(&seen.mu);

	sql_ok(pool, "CREATE DATABASE tail_late");
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&seen.mu);
		int gaps = seen.gaps;
		pthread_mutex_unlock(&seen.mu);
		if (gaps > 0)
			break;
		usleep(10000);
	}
	pthread_mutex_lock(&seen.mu);
	assert_int_equal(seen.gaps, 1);
	pthread_mutex_unlock(&seen.mu);
	db_pool *late;
	db_pool_opts po = {.url = url, .size = 1};
	assert_status(db_pool_open(&late, &po), RPC_STATUS_OK);
	assert_status(ev_outbox_setup(late, "tail_c"), RPC_STATUS_OK);
	db_conn *c;
	assert_status(db_acquire(late, 2000, &c), RPC_STATUS_OK);
	assert_status(
	    ev_publish(c, "tail_c", "test.v1.Thing", "", (const uint8_t *)"after", 5, NULL),
	    RPC_STATUS_OK);
	db_release(late, c);
	tail_wait_for(&seen, 1);
	assert_string_equal(seen.got[0], "tail_c/test.v1.Thing/after");
	ev_tail_stop(t);
	db_pool_close(late);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_applied_once_and_only_when_committed),
	    cmocka_unit_test(test_commit_order_not_insert_order),
	    cmocka_unit_test(test_held_back_events_are_looked_at_again_soon),
	    cmocka_unit_test(test_transaction_ids_past_a_power_of_ten),
	    cmocka_unit_test(test_a_new_consumer_may_start_at_now),
	    cmocka_unit_test(test_killed_consumer_applies_once_after_restart),
	    cmocka_unit_test(test_poison_is_parked_and_the_rest_flows),
	    cmocka_unit_test(test_producer_and_consumer_in_different_databases),
	    cmocka_unit_test(test_notify_wakes_a_waiting_consumer),
	    cmocka_unit_test(test_pruning_keeps_what_a_reader_still_needs),
	    cmocka_unit_test(test_a_tail_follows_from_now_in_memory),
	    cmocka_unit_test(test_a_tail_started_without_database_reports_the_gap),
	};
	return cmocka_run_group_tests_name("events", tests, setup, teardown);
}
