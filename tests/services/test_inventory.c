/*
 * test_inventory.c - InventoryService through its generated client stubs,
 * over the RPC runtime, on a real PostgreSQL: stock, reservations and their
 * transitions, all-or-nothing, idempotence, 20 concurrent reservations of
 * a product with 5 units, the expiry sweeper, refused input.
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

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "inventory.h"
#include "panthera/ids.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/log.h"
#include "panthera/rpc/v1/rpc.pb-c.h"

#define INV(x) panthera_inventory_v1_inventory_service_##x

static pgtest pg;
static db_pool *pool;
static inventory_service svc;
static rpc_server *srv;
static rpc_channel *ch;

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	if (svctest_pool(&pool, pg.url, "inventory", 8, 1) != RPC_STATUS_OK)
		return -1;
	svc.pool = pool;
	if (svctest_server(&srv, 8, 0) != RPC_STATUS_OK ||
	    inventory_service_register(srv, &svc) != RPC_STATUS_OK ||
	    svctest_start(srv, "inproc://inventory-test", &ch) != RPC_STATUS_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	db_pool_close(pool);
	pgtest_destroy(&pg);
	return 0;
}

/* The stock of a product, made if new (InitStock, as the catalog does when
 * it creates a product). */
static void set_stock(const char *product, int available)
{
	Panthera__Inventory__V1__SetStockRequest req =
	    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
	req.product_id = (char *)product;
	req.available = available;
	rpc_reply *reply;
	assert_status(INV(init_stock)(ch, &req, NULL, NULL, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
}

static void get_stock(const char *product, int *available, int *reserved)
{
	Panthera__Inventory__V1__GetStockRequest req =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	req.product_id = (char *)product;
	rpc_reply *reply;
	const Panthera__Inventory__V1__Stock *s;
	assert_status(INV(get_stock)(ch, &req, NULL, &s, &reply), RPC_STATUS_OK);
	*available = s->available;
	*reserved = s->reserved;
	rpc_reply_free(reply);
}

static rpc_status reserve(const char *order, const char *const *products, const int *qty, size_t n,
                          int ttl, rpc_reply **reply_out)
{
	Panthera__Inventory__V1__ReserveRequest req =
	    PANTHERA__INVENTORY__V1__RESERVE_REQUEST__INIT;
	Panthera__Inventory__V1__ReservationItem items[8], *ptrs[8];
	for (size_t i = 0; i < n; i++) {
		panthera__inventory__v1__reservation_item__init(&items[i]);
		items[i].product_id = (char *)products[i];
		items[i].quantity = qty[i];
		ptrs[i] = &items[i];
	}
	req.order_id = (char *)order;
	req.items = ptrs;
	req.n_items = n;
	req.ttl_seconds = ttl;
	rpc_reply *reply;
	rpc_status st = INV(reserve)(ch, &req, NULL, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status transition(int which, const char *order)
{
	rpc_reply *reply;
	rpc_status st;
	if (which == 0) {
		Panthera__Inventory__V1__CommitRequest r =
		    PANTHERA__INVENTORY__V1__COMMIT_REQUEST__INIT;
		r.order_id = (char *)order;
		st = INV(commit)(ch, &r, NULL, NULL, &reply);
	} else if (which == 1) {
		Panthera__Inventory__V1__ReleaseRequest r =
		    PANTHERA__INVENTORY__V1__RELEASE_REQUEST__INIT;
		r.order_id = (char *)order;
		st = INV(release)(ch, &r, NULL, NULL, &reply);
	} else {
		Panthera__Inventory__V1__RestockRequest r =
		    PANTHERA__INVENTORY__V1__RESTOCK_REQUEST__INIT;
		r.order_id = (char *)order;
		st = INV(restock)(ch, &r, NULL, NULL, &reply);
	}
	rpc_reply_free(reply);
	return st;
}
#define COMMIT  0
#define RELEASE 1
#define RESTOCK 2

static void test_stock_and_reservation_life_cycle(void **state)
{
	(void)state;
	char p[37], order[37];
	svctest_new_id(p);
	svctest_new_id(order);
	set_stock(p, 10);
	int a, r;
	get_stock(p, &a, &r);
	assert_int_equal(a, 10);
	assert_int_equal(r, 0);
	const char *prods[] = {p};
	int three[] = {3};
	rpc_reply *reply;
	assert_status(reserve(order, prods, three, 1, 0, &reply), RPC_STATUS_OK);
	const Panthera__Inventory__V1__Reservation *res = INV(reserve_response)(reply);
	assert_int_equal(res->status, PANTHERA__INVENTORY__V1__RESERVATION_STATUS__HELD);
	assert_int_equal(res->n_items, 1);
	assert_int_equal(res->items[0]->quantity, 3);
	assert_true(res->expires_at->seconds > 0);
	rpc_reply_free(reply);
	/* idempotent on the order id: nothing is taken twice */
	assert_status(reserve(order, prods, three, 1, 0, NULL), RPC_STATUS_OK);
	get_stock(p, &a, &r);
	assert_int_equal(a, 7);
	assert_int_equal(r, 3);
	assert_status(transition(COMMIT, order), RPC_STATUS_OK);
	assert_status(transition(COMMIT, order), RPC_STATUS_OK); /* again: same answer */
	get_stock(p, &a, &r);
	assert_int_equal(a, 7);
	assert_int_equal(r, 0);
	assert_status(transition(RELEASE, order), RPC_STATUS_FAILED_PRECONDITION); /* committed */
	assert_status(transition(RESTOCK, order), RPC_STATUS_OK); /* a refund before shipping */
	get_stock(p, &a, &r);
	assert_int_equal(a, 10);
	/* release returns held units, and a released order can reserve again */
	char order2[37];
	svctest_new_id(order2);
	assert_status(reserve(order2, prods, three, 1, 0, NULL), RPC_STATUS_OK);
	assert_status(transition(RELEASE, order2), RPC_STATUS_OK);
	assert_status(transition(RELEASE, order2), RPC_STATUS_OK);
	get_stock(p, &a, &r);
	assert_int_equal(a, 10);
	assert_int_equal(r, 0);
	assert_status(transition(COMMIT, order2), RPC_STATUS_FAILED_PRECONDITION);
	assert_status(reserve(order2, prods, three, 1, 0, NULL), RPC_STATUS_OK);
	get_stock(p, &a, &r);
	assert_int_equal(a, 7);
	assert_status(transition(RELEASE, order2), RPC_STATUS_OK);
	char unknown[37];
	svctest_new_id(unknown);
	assert_status(transition(COMMIT, unknown), RPC_STATUS_NOT_FOUND);
}

static void test_reserve_is_all_or_nothing(void **state)
{
	(void)state;
	char p1[37], p2[37], order[37];
	svctest_new_id(p1);
	svctest_new_id(p2);
	svctest_new_id(order);
	set_stock(p1, 5);
	set_stock(p2, 1);
	const char *prods[] = {p1, p2};
	int qty[] = {2, 2};
	rpc_reply *reply;
	assert_status(reserve(order, prods, qty, 2, 0, &reply), RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "INSUFFICIENT_STOCK");
	assert_non_null(strstr(rpc_reply_message(reply), p2));
	rpc_reply_free(reply);
	int a, r;
	get_stock(p1, &a, &r);
	assert_int_equal(a, 5); /* nothing taken from the product that had enough */
	assert_int_equal(r, 0);
	/* nor is the order's reservation left behind */
	assert_status(transition(RELEASE, order), RPC_STATUS_NOT_FOUND);
}

typedef struct racer {
	const char *product;
	rpc_status st;
} racer;

static void *race_one(void *arg)
{
	racer *r = arg;
	char order[37];
	id_uuid4(order);
	const char *prods[] = {r->product};
	int one[] = {1};
	r->st = reserve(order, prods, one, 1, 0, NULL);
	return NULL;
}

static void test_twenty_concurrent_reservations_of_five_units(void **state)
{
	(void)state;
	char p[37];
	svctest_new_id(p);
	set_stock(p, 5);
	racer rs[20];
	pthread_t t[20];
	for (int i = 0; i < 20; i++) {
		rs[i] = (racer){p, RPC_STATUS_OK};
		pthread_create(&t[i], NULL, race_one, &rs[i]);
	}
	int ok = 0, short_ = 0;
	for (int i = 0; i < 20; i++) {
		pthread_join(t[i], NULL);
		ok += rs[i].st == RPC_STATUS_OK;
		short_ += rs[i].st == RPC_STATUS_FAILED_PRECONDITION;
	}
	assert_int_equal(ok, 5);
	assert_int_equal(short_, 15);
	int a, r;
	get_stock(p, &a, &r);
	assert_int_equal(a, 0);
	assert_int_equal(r, 5);
}

typedef struct same_order {
	const char *order, *product;
	rpc_status st;
} same_order;

static void *reserve_same(void *arg)
{
	same_order *r = arg;
	const char *prods[] = {r->product};
	int two[] = {2};
	r->st = reserve(r->order, prods, two, 1, 0, NULL);
	return NULL;
}

/* A retried Reserve racing its first attempt: every one gets the same
 * reservation, and the stock is held once. */
static void test_concurrent_reserves_of_one_order_hold_once(void **state)
{
	(void)state;
	char p[37], order[37];
	svctest_new_id(p);
	svctest_new_id(order);
	set_stock(p, 10);
	same_order rs[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		rs[i] = (same_order){order, p, RPC_STATUS_UNKNOWN};
		pthread_create(&t[i], NULL, reserve_same, &rs[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_status(rs[i].st, RPC_STATUS_OK);
	}
	int a, r;
	get_stock(p, &a, &r);
	assert_int_equal(a, 8);
	assert_int_equal(r, 2);
}

static void test_sweeper_releases_expired_holds(void **state)
{
	(void)state;
	char p[37], order[37];
	svctest_new_id(p);
	svctest_new_id(order);
	set_stock(p, 4);
	const char *prods[] = {p};
	int two[] = {2};
	assert_status(reserve(order, prods, two, 1, 1, NULL), RPC_STATUS_OK);
	unsigned released;
	assert_status(inventory_sweep_expired(&svc, &released), RPC_STATUS_OK);
	int a, r;
	get_stock(p, &a, &r);
	assert_int_equal(a, 2); /* not expired yet */
	/* move the expiry into the past rather than sleeping */
	db_conn *c;
	assert_status(db_acquire(pool, 1000, &c), RPC_STATUS_OK);
	const char *params[1] = {order};
	assert_status(db_exec(c, NULL,
	                      "UPDATE reservations SET expires_at = now() - interval '1 second'"
	                      " WHERE order_id = $1",
	                      1, params, NULL),
	              RPC_STATUS_OK);
	db_release(pool, c);
	assert_status(inventory_sweep_expired(&svc, &released), RPC_STATUS_OK);
	assert_true(released >= 1);
	get_stock(p, &a, &r);
	assert_int_equal(a, 4);
	assert_int_equal(r, 0);
	assert_status(transition(COMMIT, order), RPC_STATUS_FAILED_PRECONDITION); /* released */
}

static void test_bad_input_is_refused_with_the_field(void **state)
{
	(void)state;
	char p[37], order[37];
	svctest_new_id(p);
	svctest_new_id(order);
	Panthera__Inventory__V1__SetStockRequest req =
	    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
	req.product_id = "'); DROP TABLE stock; --";
	req.available = 3;
	rpc_reply *reply;
	assert_status(INV(set_stock)(ch, &req, NULL, NULL, &reply), RPC_STATUS_INVALID_ARGUMENT);
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	assert_non_null(d);
	assert_string_equal(d->bad_request->field_violations[0]->field, "product_id");
	rpc_reply_free(reply);
	req.product_id = p;
	req.available = -1;
	assert_status(INV(set_stock)(ch, &req, NULL, NULL, &reply), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	const char *prods[] = {p, p};
	int qty[] = {1, 1}, zero[] = {0};
	assert_status(reserve(order, prods, qty, 2, 0, NULL),
	              RPC_STATUS_INVALID_ARGUMENT); /* twice */
	/* twice, once in capitals, with another product between them in byte order */
	const char *cased[] = {"ffffffff-0000-4000-8000-000000000001",
	                       "aaaaaaaa-0000-4000-8000-000000000001",
	                       "FFFFFFFF-0000-4000-8000-000000000001"};
	int qty3[] = {1, 1, 1};
	assert_status(reserve(order, cased, qty3, 3, 0, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(reserve(order, prods, zero, 1, 0, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(reserve("not-a-uuid", prods, qty, 1, 0, NULL), RPC_STATUS_INVALID_ARGUMENT);
	Panthera__Inventory__V1__GetStockRequest g =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	g.product_id = p; /* never stocked */
	assert_status(INV(get_stock)(ch, &g, NULL, NULL, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "STOCK_NOT_FOUND");
	rpc_reply_free(reply);
	/* the table is still there */
	set_stock(p, 1);
}

/* SetStock (PUT /v1/inventory/{productId}) changes the stock of a product
 * the catalog made (InitStock); an unknown product is NOT_FOUND and gets
 * no stock row. */
static void test_set_stock_of_an_unknown_product_is_not_found(void **state)
{
	(void)state;
	char p[37];
	svctest_new_id(p);
	Panthera__Inventory__V1__SetStockRequest req =
	    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
	req.product_id = p;
	req.available = 5;
	rpc_reply *reply;
	assert_status(INV(set_stock)(ch, &req, NULL, NULL, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	Panthera__Inventory__V1__GetStockRequest g =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	g.product_id = p;
	assert_status(INV(get_stock)(ch, &g, NULL, NULL, &reply), RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);

	set_stock(p, 5); /* InitStock makes the row */
	const Panthera__Inventory__V1__Stock *s;
	req.available = 7;
	assert_status(INV(set_stock)(ch, &req, NULL, &s, &reply), RPC_STATUS_OK);
	assert_string_equal(s->product_id, p);
	assert_int_equal(s->available, 7);
	assert_int_equal(s->reserved, 0);
	rpc_reply_free(reply);
	set_stock(p, 3); /* InitStock of a product with a row sets it */
	int available, reserved;
	get_stock(p, &available, &reserved);
	assert_int_equal(available, 3);
	assert_int_equal(reserved, 0);
}

static void test_every_stock_change_is_an_event(void **state)
{
	(void)state;
	char p[37], order[37];
	svctest_new_id(p);
	svctest_new_id(order);
	set_stock(p, 6);
	const char *prods[] = {p};
	int two[] = {2};
	assert_status(reserve(order, prods, two, 1, 0, NULL), RPC_STATUS_OK);
	assert_status(reserve(order, prods, two, 1, 0, NULL),
	              RPC_STATUS_OK); /* no change: no event */
	assert_status(transition(COMMIT, order), RPC_STATUS_OK);
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(pool, 1000, &c), RPC_STATUS_OK);
	const char *params[1] = {p};
	assert_status(
	    db_exec(c, NULL,
	            "SELECT count(*) FROM inventory.outbox"
	            " WHERE aggregate_id = $1 AND type = 'panthera.events.v1.StockChanged'",
	            1, params, &r),
	    RPC_STATUS_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "3"); /* set, reserve, commit */
	PQclear(r);
	/* the last one carries the stock as it is now */
	assert_status(
	    db_exec(
	        c, NULL,
	        "SELECT payload FROM inventory.outbox WHERE aggregate_id = $1 ORDER BY seq DESC LIMIT 1",
	        1, params, &r),
	    RPC_STATUS_OK);
	size_t len;
	unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &len);
	Panthera__Events__V1__StockChanged *ev =
	    panthera__events__v1__stock_changed__unpack(NULL, len, bytes);
	assert_non_null(ev);
	assert_string_equal(ev->product_id, p);
	assert_int_equal(ev->available, 4);
	assert_int_equal(ev->reserved, 0);
	panthera__events__v1__stock_changed__free_unpacked(ev, NULL);
	PQfreemem(bytes);
	PQclear(r);
	db_release(pool, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stock_and_reservation_life_cycle),
	    cmocka_unit_test(test_reserve_is_all_or_nothing),
	    cmocka_unit_test(test_twenty_concurrent_reservations_of_five_units),
	    cmocka_unit_test(test_concurrent_reserves_of_one_order_hold_once),
	    cmocka_unit_test(test_sweeper_releases_expired_holds),
	    cmocka_unit_test(test_bad_input_is_refused_with_the_field),
	    cmocka_unit_test(test_set_stock_of_an_unknown_product_is_not_found),
	    cmocka_unit_test(test_every_stock_change_is_an_event),
	};
	return cmocka_run_group_tests_name("inventory", tests, setup, teardown);
}
