/*
 * test_cache_feed.c - the response cache fed by the event log, on a real
 * PostgreSQL: a ProductChanged in the catalog's outbox drops the product's
 * entries and the product lists, a StockChanged in inventory's the
 * product's, a review event the product's; an event that does not decode
 * clears the cache; events of other types drop nothing; a feed started
 * before its database exists clears the cache once it follows.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "gw_cache.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/log.h"

static pgtest pg;
static db_pool *pool;

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	db_pool_opts o = {.url = pg.url, .size = 2};
	if (db_pool_open(&pool, &o) != RPC_STATUS_OK)
		return -1;
	const char *schemas[] = {"catalog", "inventory", "reviews"};
	for (size_t i = 0; i < 3; i++)
		if (ev_outbox_setup(pool, schemas[i]) != RPC_STATUS_OK)
			return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	db_pool_close(pool);
	pgtest_destroy(&pg);
	return 0;
}

/* Store `key` with the tags "product:<product>" (when not NULL) and
 * "products" (when `list`). */
static void put(gw_cache *c, const char *key, const char *product, int list)
{
	gw_cache_tags tags = {0};
	if (product != NULL)
		assert_status(gw_cache_tags_add(&tags, "product", product, strlen(product)),
		              RPC_STATUS_OK);
	if (list)
		assert_status(gw_cache_tags_add(&tags, "products", NULL, 0), RPC_STATUS_OK);
	gw_cache_reply r = {.status = 200,
	                    .content_type = "application/json",
	                    .body = "{}",
	                    .body_len = 2,
	                    .ttl_seconds = 600};
	assert_status(gw_cache_store(c, gw_cache_ticket(c), key, strlen(key), &tags, &r),
	              RPC_STATUS_OK);
}

static int has(gw_cache *c, const char *key)
{
	gw_cache_hit hit;
	if (!gw_cache_lookup(c, key, strlen(key), &hit))
		return 0;
	gw_cache_release(hit.entry);
	return 1;
}

/* Wait (at most 10 s) until `key` has left the cache. */
static void wait_gone(gw_cache *c, const char *key)
{
	for (int i = 0; i < 1000 && has(c, key); i++)
		usleep(10000);
	assert_false(has(c, key));
}

static void publish(const char *schema, const char *type, const void *payload, size_t len)
{
	db_conn *conn;
	assert_status(db_acquire(pool, 2000, &conn), RPC_STATUS_OK);
	assert_status(ev_publish(conn, schema, type, "", payload, len, NULL), RPC_STATUS_OK);
	db_release(pool, conn);
}

static void product_changed(const char *id)
{
	Panthera__Events__V1__ProductChanged m = PANTHERA__EVENTS__V1__PRODUCT_CHANGED__INIT;
	m.product_id = (char *)id;
	uint8_t buf[256];
	size_t n = panthera__events__v1__product_changed__pack(&m, buf);
	publish("catalog", "panthera.events.v1.ProductChanged", buf, n);
}

static void stock_changed(const char *id)
{
	Panthera__Events__V1__StockChanged m = PANTHERA__EVENTS__V1__STOCK_CHANGED__INIT;
	m.product_id = (char *)id;
	uint8_t buf[256];
	size_t n = panthera__events__v1__stock_changed__pack(&m, buf);
	publish("inventory", "panthera.events.v1.StockChanged", buf, n);
}

static void test_change_events_drop_their_entries(void **state)
{
	(void)state;
	gw_cache *c;
	assert_status(gw_cache_create(NULL, &c), RPC_STATUS_OK);
	gw_cache_feed *f;
	gw_cache_feed_opts o = {.db_url = pg.url, .poll_ms = 50};
	assert_status(gw_cache_feed_start(c, &o, &f), RPC_STATUS_OK);
	put(c, "p1", "P1", 0);
	put(c, "p2", "P2", 0);
	put(c, "p3", "P3", 0);
	put(c, "list", NULL, 1);

	/* the product and every list */
	product_changed("P1");
	wait_gone(c, "p1");
	wait_gone(c, "list");
	assert_true(has(c, "p2"));
	assert_true(has(c, "p3"));

	/* stock, from inventory's outbox */
	stock_changed("P2");
	wait_gone(c, "p2");
	assert_true(has(c, "p3"));

	/* other types drop nothing; a review's event drops its product */
	publish("catalog", "panthera.events.v1.OrderCreated", "x", 1);
	Panthera__Events__V1__ReviewCreated rc = PANTHERA__EVENTS__V1__REVIEW_CREATED__INIT;
	rc.product_id = "P3";
	uint8_t buf[256];
	size_t n = panthera__events__v1__review_created__pack(&rc, buf);
	put(c, "p4", "P4", 0);
	publish("reviews", "panthera.events.v1.ReviewCreated", buf, n);
	wait_gone(c, "p3");
	assert_true(has(c, "p4"));

	/* a product event that does not decode: everything goes */
	put(c, "p5", "P5", 1);
	publish("catalog", "panthera.events.v1.ProductChanged", "\xff\xff\xff", 3);
	wait_gone(c, "p4");
	wait_gone(c, "p5");

	gw_cache_feed_stats s;
	gw_cache_feed_stats_get(f, &s);
	assert_int_equal(s.events, 4); /* OrderCreated is not read */
	assert_int_equal(s.clears, 1);
	assert_int_equal(s.errors, 0);
	assert_true(s.dropped >= 6);
	gw_cache_feed_stop(f);
	gw_cache_destroy(c);
}

/* A feed whose database is not there yet clears the cache once it is:
 * the changes of the time between are unknown. */
static void test_a_late_feed_clears_the_cache(void **state)
{
	(void)state;
	char url[600];
	const char *at = strstr(pg.url, "///panthera?");
	assert_non_null(at);
	snprintf(url, sizeof(url), "%.*s///feed_late?%s", (int)(at - pg.url), pg.url, at + 12);
	gw_cache *c;
	assert_status(gw_cache_create(NULL, &c), RPC_STATUS_OK);
	gw_cache_feed *f;
	gw_cache_feed_opts o = {.db_url = url, .poll_ms = 50};
	assert_status(gw_cache_feed_start(c, &o, &f), RPC_STATUS_OK);
	put(c, "early", "E", 0);
	usleep(200000);
	assert_true(has(c, "early"));
	db_conn *conn;
	assert_status(db_acquire(pool, 2000, &conn), RPC_STATUS_OK);
	assert_status(db_exec(conn, NULL, "CREATE DATABASE feed_late", 0, NULL, NULL),
	              RPC_STATUS_OK);
	db_release(pool, conn);
	wait_gone(c, "early");
	gw_cache_feed_stats s;
	gw_cache_feed_stats_get(f, &s);
	assert_int_equal(s.clears, 1);
	assert_true(s.errors >= 1);
	gw_cache_feed_stop(f);
	gw_cache_destroy(c);

	/* bad options */
	assert_status(gw_cache_feed_start(NULL, &o, &f), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_change_events_drop_their_entries),
	    cmocka_unit_test(test_a_late_feed_clears_the_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
