/*
 * test_saga.c - the checkout saga end to end on a real PostgreSQL, every
 * service real: catalog, inventory, orders, payments (its test provider)
 * and analytics, each on a server of its own, as pantherad runs them; the
 * consumers driven one batch at a time. Orders paid with a good card
 * settle PAID with their stock committed; a declined card settles
 * PAYMENT_FAILED with the stock back; paying again settles PAID; the sales
 * report matches the orders that were paid and refunded.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "analytics.h"
#include "catalog.h"
#include "inventory.h"
#include "orders.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "payments.h"

#define assert_status(expr, want)                                                     \
	do {                                                                          \
		rpc_status got_ = (expr);                                             \
		if (got_ != (want))                                                   \
			fail_msg("%s: got %s, want %s", #expr, rpc_status_name(got_), \
			         rpc_status_name(want));                              \
	} while (0)

#define ORD(x) panthera_orders_v1_order_service_##x
#define CAT(x) panthera_catalog_v1_catalog_service_##x
#define INV(x) panthera_inventory_v1_inventory_service_##x
#define PAY(x) panthera_payments_v1_payment_service_##x
#define ANA(x) panthera_analytics_v1_analytics_service_##x

static pgtest pg;
static db_pool *inv_pool, *cat_pool, *ord_pool, *pay_pool, *ana_pool;
static inventory_service inv;
static catalog_service cat;
static orders_service ord;
static payments_service pay;
static analytics_service ana;
static rpc_server *servers[5];
static rpc_channel *inv_ch, *cat_ch, *ord_ch, *pay_ch, *ana_ch;
static char category[37];

static int open_pool(db_pool **p, const char *schema)
{
	db_pool_opts o = {.url = pg.url, .size = 6, .schema = schema};
	char dir[512];
	snprintf(dir, sizeof(dir), SRC_DIR "/services/%s/migrations", schema);
	return db_pool_open(p, &o) == RPC_STATUS_OK && db_migrate(*p, schema, dir) == RPC_STATUS_OK
	           ? 0
	           : -1;
}

typedef rpc_status (*reg_fn)(rpc_server *, void *);
static rpc_status reg_inv(rpc_server *s, void *v)
{
	return inventory_service_register(s, v);
}
static rpc_status reg_cat(rpc_server *s, void *v)
{
	return catalog_service_register(s, v);
}
static rpc_status reg_ord(rpc_server *s, void *v)
{
	return orders_service_register(s, v);
}
static rpc_status reg_pay(rpc_server *s, void *v)
{
	return payments_service_register(s, v);
}
static rpc_status reg_ana(rpc_server *s, void *v)
{
	return analytics_service_register(s, v);
}

/* Serve one service at inproc://saga-<name>; *ch dials it. */
static int serve(int k, const char *name, reg_fn reg, void *svc, rpc_channel **ch)
{
	char url[64];
	snprintf(url, sizeof(url), "inproc://saga-%s", name);
	const char *u = url;
	rpc_server_opts so = {.workers = 8, .queue_len = 64};
	return rpc_server_create(&servers[k], &so) == RPC_STATUS_OK &&
	               reg(servers[k], svc) == RPC_STATUS_OK &&
	               rpc_server_listen(servers[k], url) == RPC_STATUS_OK &&
	               rpc_server_start(servers[k]) == RPC_STATUS_OK &&
	               rpc_channel_open(ch, &u, 1, NULL) == RPC_STATUS_OK
	           ? 0
	           : -1;
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0 || open_pool(&inv_pool, "inventory") != 0 ||
	    open_pool(&cat_pool, "catalog") != 0 || open_pool(&ord_pool, "orders") != 0 ||
	    open_pool(&pay_pool, "payments") != 0 || open_pool(&ana_pool, "analytics") != 0)
		return -1;
	inv.pool = inv_pool;
	if (serve(0, "inventory", reg_inv, &inv, &inv_ch) != 0)
		return -1;
	cat = (catalog_service){.pool = cat_pool, .inventory = inv_ch};
	if (catalog_service_init(&cat) != RPC_STATUS_OK ||
	    serve(1, "catalog", reg_cat, &cat, &cat_ch) != 0)
		return -1;
	/* payments and orders call each other: servers first, channels set after */
	pay = (payments_service){.pool = pay_pool, .orders_events = ord_pool};
	ord = (orders_service){
	    .pool = ord_pool, .payments_events = pay_pool, .catalog = cat_ch, .inventory = inv_ch};
	if (orders_service_init(&ord) != RPC_STATUS_OK ||
	    serve(2, "payments", reg_pay, &pay, &pay_ch) != 0)
		return -1;
	ord.payments = pay_ch;
	if (serve(3, "orders", reg_ord, &ord, &ord_ch) != 0)
		return -1;
	pay.orders = ord_ch;
	ana = (analytics_service){.pool = ana_pool, .orders_events = ord_pool};
	if (analytics_service_init(&ana) != RPC_STATUS_OK ||
	    serve(4, "analytics", reg_ana, &ana, &ana_ch) != 0)
		return -1;
	Panthera__Catalog__V1__CreateCategoryRequest cr =
	    PANTHERA__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
	cr.name = "Saga";
	cr.description = "Products of the saga test.";
	const Panthera__Catalog__V1__Category *c;
	rpc_reply *reply;
	if (CAT(create_category)(cat_ch, &cr, NULL, &c, &reply) != RPC_STATUS_OK)
		return -1;
	snprintf(category, sizeof(category), "%s", c->id);
	rpc_reply_free(reply);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 4; i >= 0; i--)
		rpc_server_destroy(servers[i]);
	orders_service_fini(&ord);
	analytics_service_fini(&ana);
	rpc_channel_close(inv_ch);
	rpc_channel_close(cat_ch);
	rpc_channel_close(ord_ch);
	rpc_channel_close(pay_ch);
	rpc_channel_close(ana_ch);
	db_pool_close(ana_pool);
	db_pool_close(pay_pool);
	db_pool_close(ord_pool);
	db_pool_close(cat_pool);
	db_pool_close(inv_pool);
	pgtest_destroy(&pg);
	return 0;
}

/* ---- helpers ---- */

typedef struct as_caller {
	rpc_metadata_entry md[2];
	rpc_call_opts o;
} as_caller;

static const rpc_call_opts *as(as_caller *a, const char *user, int admin)
{
	memset(a, 0, sizeof(*a));
	a->md[0] = (rpc_metadata_entry){"x-caller-id", user};
	a->md[1] = (rpc_metadata_entry){"x-caller-roles", admin ? "USER,ADMIN" : "USER"};
	a->o.metadata = a->md;
	a->o.n_metadata = 2;
	a->o.timeout_ms = 10000;
	return &a->o;
}

static void make_product(const char *sku, const char *price, int stock, char id[37])
{
	Panthera__Catalog__V1__CreateProductRequest req =
	    PANTHERA__CATALOG__V1__CREATE_PRODUCT_REQUEST__INIT;
	req.sku = (char *)sku;
	req.name = (char *)sku;
	req.description = "A product of the saga test.";
	req.price = (char *)price;
	req.currency = "USD";
	req.category_id = category;
	req.stock = stock;
	const Panthera__Catalog__V1__Product *p;
	rpc_reply *reply;
	assert_status(CAT(create_product)(cat_ch, &req, NULL, &p, &reply), RPC_STATUS_OK);
	snprintf(id, 37, "%s", p->id);
	rpc_reply_free(reply);
}

static int available(const char *product)
{
	Panthera__Inventory__V1__GetStockRequest req =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	req.product_id = (char *)product;
	const Panthera__Inventory__V1__Stock *s;
	rpc_reply *reply;
	assert_status(INV(get_stock)(inv_ch, &req, NULL, &s, &reply), RPC_STATUS_OK);
	int n = s->available;
	rpc_reply_free(reply);
	return n;
}

static Panthera__Orders__V1__ShippingAddress address = {
    PROTOBUF_C_MESSAGE_INIT(&panthera__orders__v1__shipping_address__descriptor),
    "2 Market St",
    "Portland",
    "OR",
    "97201",
    "US"};

static void place(const char *user, const char *product, int qty, const char *method, char id[37])
{
	Panthera__Orders__V1__CheckoutItem item = PANTHERA__ORDERS__V1__CHECKOUT_ITEM__INIT;
	Panthera__Orders__V1__CheckoutItem *items[1] = {&item};
	item.product_id = (char *)product;
	item.quantity = qty;
	Panthera__Orders__V1__CreateOrderRequest req =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	req.items = items;
	req.n_items = 1;
	req.shipping_address = &address;
	req.payment_method_id = (char *)method;
	as_caller a;
	const Panthera__Orders__V1__Order *o;
	rpc_reply *reply;
	assert_status(ORD(create_order)(ord_ch, &req, as(&a, user, 0), &o, &reply), RPC_STATUS_OK);
	snprintf(id, 37, "%s", o->id);
	rpc_reply_free(reply);
}

/* Run every consumer until none has anything left. */
static void settle(void)
{
	for (int round = 0; round < 50; round++) {
		unsigned a = 0, b = 0, c = 0;
		assert_status(payments_process_events(&pay, &a), RPC_STATUS_OK);
		assert_status(orders_process_events(&ord, &b), RPC_STATUS_OK);
		assert_status(analytics_process_events(&ana, &c), RPC_STATUS_OK);
		if (a + b + c == 0)
			return;
	}
	fail_msg("the saga did not settle in 50 rounds");
}

static const Panthera__Orders__V1__Order *get(const char *id, rpc_reply **reply)
{
	Panthera__Orders__V1__GetOrderRequest req = PANTHERA__ORDERS__V1__GET_ORDER_REQUEST__INIT;
	req.order_id = (char *)id;
	as_caller a;
	const Panthera__Orders__V1__Order *o;
	assert_status(ORD(get_order)(ord_ch, &req, as(&a, id, 1), &o, reply), RPC_STATUS_OK);
	return o;
}

static Panthera__Orders__V1__OrderStatus status_of(const char *id)
{
	rpc_reply *reply;
	Panthera__Orders__V1__OrderStatus s = get(id, &reply)->status;
	rpc_reply_free(reply);
	return s;
}

/* ---- the test ---- */

static void test_orders_settle_through_the_real_services(void **state)
{
	(void)state;
	char user[37], tent[37], lamp[37];
	assert_status(id_uuid4(user), RPC_STATUS_OK);
	make_product("SAGA-TENT", "120.00", 10, tent);
	make_product("SAGA-LAMP", "15.50", 10, lamp);

	char good[37], good2[37], declined[37], broke[37];
	place(user, tent, 2, "pm_card_visa", good);
	place(user, lamp, 4, "pm_card_mastercard", good2);
	place(user, tent, 3, "pm_card_declined", declined);
	place(user, lamp, 1, "pm_card_insufficient_funds", broke);
	assert_int_equal(available(tent), 5);
	settle();

	rpc_reply *reply;
	const Panthera__Orders__V1__Order *o = get(good, &reply);
	assert_int_equal(o->status, PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	assert_true(id_is_uuid(o->payment_id));
	/* the payment the saga made, as its owner sees it */
	Panthera__Payments__V1__GetPaymentRequest gp =
	    PANTHERA__PAYMENTS__V1__GET_PAYMENT_REQUEST__INIT;
	gp.payment_id = o->payment_id;
	as_caller a;
	const Panthera__Payments__V1__Payment *p;
	rpc_reply *preply;
	assert_status(PAY(get_payment)(pay_ch, &gp, as(&a, user, 0), &p, &preply), RPC_STATUS_OK);
	assert_int_equal(p->status, PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__SUCCEEDED);
	assert_string_equal(p->amount, "240.00");
	rpc_reply_free(preply);
	rpc_reply_free(reply);
	assert_int_equal(status_of(good2), PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	assert_int_equal(status_of(declined), PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED);
	assert_int_equal(status_of(broke), PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED);
	/* paid: committed (gone); failed: back to available */
	assert_int_equal(available(tent), 8);
	assert_int_equal(available(lamp), 6);

	/* paying the declined order again, with a good card */
	Panthera__Payments__V1__CreatePaymentRequest cp =
	    PANTHERA__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
	cp.order_id = declined;
	cp.payment_method_id = "pm_card_visa";
	assert_status(PAY(create_payment)(pay_ch, &cp, as(&a, user, 0), &p, &preply),
	              RPC_STATUS_OK);
	assert_int_equal(p->status, PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__SUCCEEDED);
	rpc_reply_free(preply);
	settle();
	assert_int_equal(status_of(declined), PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	assert_int_equal(available(tent), 5);

	/* a refund before shipping: the money and the units come back */
	Panthera__Orders__V1__RefundOrderRequest rr =
	    PANTHERA__ORDERS__V1__REFUND_ORDER_REQUEST__INIT;
	rr.order_id = good2;
	assert_status(ORD(refund_order)(ord_ch, &rr, as(&a, user, 1), &o, &reply), RPC_STATUS_OK);
	assert_int_equal(o->status, PANTHERA__ORDERS__V1__ORDER_STATUS__REFUNDED);
	rpc_reply_free(reply);
	assert_int_equal(available(lamp), 10);
	settle();

	/* the sales report: 3 orders paid (240 + 62 + 360), one of them refunded */
	char today[16];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	Panthera__Analytics__V1__GetSalesReportRequest sr =
	    PANTHERA__ANALYTICS__V1__GET_SALES_REPORT_REQUEST__INIT;
	sr.from = today;
	sr.to = today;
	const Panthera__Analytics__V1__SalesReport *rep;
	assert_status(ANA(get_sales_report)(ana_ch, &sr, as(&a, user, 1), &rep, &reply),
	              RPC_STATUS_OK);
	assert_int_equal(rep->order_count, 3);
	assert_string_equal(rep->revenue, "600.00"); /* 240 + 62 + 360 - 62 */
	assert_true(rep->n_top_products >= 1);
	assert_string_equal(rep->top_products[0]->product_id, tent);
	assert_string_equal(rep->top_products[0]->revenue, "600.00");
	rpc_reply_free(reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_orders_settle_through_the_real_services),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
