/*
 * test_orders.c - the order service on a real PostgreSQL, through the
 * generated client stubs over inproc, with the real catalog and inventory
 * on the same server. The payment side of the saga is driven the way the
 * payments service drives it: PaymentSucceeded / PaymentFailed events in a
 * "payments" outbox; refunds go to a small PaymentService double that
 * counts them, and checkout of a cart to a CartService double.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "catalog.h"
#include "inventory.h"
#include "orders.h"
#include "panthera/cart/v1/cart.panthera.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/payments/v1/payments.panthera.h"
#include "payments.h"

#define ORD(x) panthera_orders_v1_order_service_##x
#define CAT(x) panthera_catalog_v1_catalog_service_##x
#define INV(x) panthera_inventory_v1_inventory_service_##x
#define URL    "inproc://orders-test"

typedef Panthera__Orders__V1__Order order;

static pgtest pg;
static db_pool *inv_pool, *cat_pool, *ord_pool, *pay_pool;
static inventory_service inv_svc;
static catalog_service cat_svc;
static orders_service svc;
static rpc_server *srv;
static rpc_channel *ch;
static char category[37];

/* ---- doubles: PaymentService.Refund and the cart ---- */

static pthread_mutex_t dbl_lock = PTHREAD_MUTEX_INITIALIZER;
static int refunds;
static char refunded[64][37];
static const char *cart_products[4];
static int cart_quantities[4];
static size_t cart_n;
static int checkouts;

static rpc_status dbl_refund(rpc_call *call, const Panthera__Payments__V1__RefundRequest *req,
                             Panthera__Payments__V1__Payment *resp, void *user)
{
	(void)call;
	(void)user;
	pthread_mutex_lock(&dbl_lock);
	if (refunds < 64)
		snprintf(refunded[refunds], 37, "%s", req->payment_id);
	refunds++;
	pthread_mutex_unlock(&dbl_lock);
	resp->id = req->payment_id;
	resp->status = PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__REFUNDED;
	return RPC_STATUS_OK;
}

static const panthera_payments_v1_payment_service_handlers pay_handlers = {.refund = dbl_refund};

static rpc_status dbl_get_cart(rpc_call *call, const Panthera__Cart__V1__GetUserCartRequest *req,
                               Panthera__Cart__V1__Cart *resp, void *user)
{
	(void)user;
	resp->user_id = req->user_id;
	resp->items = rpc_call_alloc(call, 4 * sizeof(*resp->items));
	for (size_t i = 0; i < cart_n; i++) {
		Panthera__Cart__V1__CartItem *it = rpc_call_alloc(call, sizeof(*it));
		panthera__cart__v1__cart_item__init(it);
		it->product_id = (char *)cart_products[i];
		it->quantity = cart_quantities[i];
		resp->items[resp->n_items++] = it;
	}
	return RPC_STATUS_OK;
}

static rpc_status dbl_checkout(rpc_call *call,
                               const Panthera__Cart__V1__CompleteCheckoutRequest *req,
                               Panthera__Cart__V1__Cart *resp, void *user)
{
	(void)call;
	(void)req;
	(void)user;
	(void)resp;
	pthread_mutex_lock(&dbl_lock);
	checkouts++;
	cart_n = 0;
	pthread_mutex_unlock(&dbl_lock);
	return RPC_STATUS_OK;
}

static const panthera_cart_v1_cart_service_handlers cart_handlers = {
    .get_user_cart = dbl_get_cart, .complete_checkout = dbl_checkout};

/* ---- the real PaymentService, with a provider that can be down ---- */

static atomic_int provider_down;

static rpc_status flaky_charge(void *ctx, int64_t amount_cents, const char *currency,
                               const char *payment_method_id, const char *idempotency_key,
                               uint32_t timeout_ms, payments_charge_result *out)
{
	(void)ctx;
	if (atomic_load(&provider_down))
		return RPC_STATUS_UNAVAILABLE;
	const payments_provider *t = payments_test_provider();
	return t->charge(t->ctx, amount_cents, currency, payment_method_id, idempotency_key,
	                 timeout_ms, out);
}

static rpc_status flaky_refund(void *ctx, const char *provider_ref, int64_t amount_cents,
                               const char *currency, const char *idempotency_key,
                               uint32_t timeout_ms)
{
	(void)ctx;
	if (atomic_load(&provider_down))
		return RPC_STATUS_UNAVAILABLE;
	const payments_provider *t = payments_test_provider();
	return t->refund(t->ctx, provider_ref, amount_cents, currency, idempotency_key, timeout_ms);
}

static const payments_provider flaky_provider = {
    .name = "flaky-test", .charge = flaky_charge, .refund = flaky_refund};

static payments_service pay_svc;

/* ---- setup ---- */

/* One server per service, as pantherad runs them: a handler that calls
 * another service never waits for a worker of its own pool. */
static rpc_server *srv_cat, *srv_inv, *srv_dbl, *srv_pay;
static rpc_channel *cat_ch, *inv_ch, *dbl_ch, *pay_ch;

static int serve(rpc_server **s)
{
	return svctest_server(s, 8, 128) == RPC_STATUS_OK ? 0 : -1;
}

static int start(rpc_server *s, const char *url, rpc_channel **c)
{
	return svctest_start(s, url, c) == RPC_STATUS_OK ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0 ||
	    svctest_pool(&inv_pool, pg.url, "inventory", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&cat_pool, pg.url, "catalog", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&ord_pool, pg.url, "orders", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&pay_pool, pg.url, "payments", 8, 1) != RPC_STATUS_OK ||
	    ev_outbox_setup(pay_pool, "payments") != RPC_STATUS_OK)
		return -1;
	if (serve(&srv) != 0 || serve(&srv_cat) != 0 || serve(&srv_inv) != 0 ||
	    serve(&srv_dbl) != 0)
		return -1;
	inv_svc.pool = inv_pool;
	if (inventory_service_register(srv_inv, &inv_svc) != RPC_STATUS_OK ||
	    start(srv_inv, URL "-inventory", &inv_ch) != 0)
		return -1;
	cat_svc = (catalog_service){.pool = cat_pool, .inventory = inv_ch};
	if (catalog_service_init(&cat_svc) != RPC_STATUS_OK ||
	    catalog_service_register(srv_cat, &cat_svc) != RPC_STATUS_OK ||
	    start(srv_cat, URL "-catalog", &cat_ch) != 0 ||
	    panthera_payments_v1_payment_service_register(srv_dbl, &pay_handlers, NULL) !=
	        RPC_STATUS_OK ||
	    panthera_cart_v1_cart_service_register(srv_dbl, &cart_handlers, NULL) !=
	        RPC_STATUS_OK ||
	    start(srv_dbl, URL "-doubles", &dbl_ch) != 0)
		return -1;
	svc = (orders_service){.pool = ord_pool,
	                       .payments_events = pay_pool,
	                       .catalog = cat_ch,
	                       .inventory = inv_ch,
	                       .cart = dbl_ch,
	                       .payments = dbl_ch};
	/* the test's own calls go through the public server, which serves all */
	if (orders_service_init(&svc) != RPC_STATUS_OK ||
	    orders_service_register(srv, &svc) != RPC_STATUS_OK ||
	    inventory_service_register(srv, &inv_svc) != RPC_STATUS_OK ||
	    catalog_service_register(srv, &cat_svc) != RPC_STATUS_OK || start(srv, URL, &ch) != 0)
		return -1;
	/* the real payments service, for CreatePayment (it calls orders) */
	pay_svc = (payments_service){.pool = pay_pool, .orders = ch, .provider = &flaky_provider};
	if (serve(&srv_pay) != 0 || payments_service_register(srv_pay, &pay_svc) != RPC_STATUS_OK ||
	    start(srv_pay, URL "-payments", &pay_ch) != 0)
		return -1;
	Panthera__Catalog__V1__CreateCategoryRequest cr =
	    PANTHERA__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
	cr.name = "Orders test";
	cr.description = "Products of the order tests.";
	const Panthera__Catalog__V1__Category *cat;
	rpc_reply *reply;
	if (CAT(create_category)(ch, &cr, NULL, &cat, &reply) != RPC_STATUS_OK)
		return -1;
	snprintf(category, sizeof(category), "%s", cat->id);
	rpc_reply_free(reply);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_server_destroy(srv_pay);
	rpc_channel_close(pay_ch);
	rpc_server_destroy(srv);
	orders_service_fini(&svc);
	rpc_channel_close(ch);
	rpc_server_destroy(srv_dbl);
	rpc_server_destroy(srv_cat);
	rpc_server_destroy(srv_inv);
	rpc_channel_close(dbl_ch);
	rpc_channel_close(cat_ch);
	rpc_channel_close(inv_ch);
	db_pool_close(pay_pool);
	db_pool_close(ord_pool);
	db_pool_close(cat_pool);
	db_pool_close(inv_pool);
	pgtest_destroy(&pg);
	return 0;
}

/* ---- helpers ---- */

/* Call options as `user_id` (an admin when `admin`), with a key or not. */
typedef struct as_caller {
	rpc_metadata_entry md[3];
	rpc_call_opts o;
} as_caller;

static const rpc_call_opts *as(as_caller *a, const char *user_id, int admin, const char *key)
{
	memset(a, 0, sizeof(*a));
	size_t n = 0;
	a->md[n++] = (rpc_metadata_entry){"x-caller-id", user_id};
	a->md[n++] = (rpc_metadata_entry){"x-caller-roles", admin ? "USER,ADMIN" : "USER"};
	if (key != NULL)
		a->md[n++] = (rpc_metadata_entry){"idempotency-key", key};
	a->o.metadata = a->md;
	a->o.n_metadata = n;
	a->o.timeout_ms = 10000;
	return &a->o;
}

static void make_product(const char *price, int stock, char id_out[37])
{
	static int n;
	char sku[32];
	snprintf(sku, sizeof(sku), "ORD-%d", ++n);
	Panthera__Catalog__V1__CreateProductRequest req =
	    PANTHERA__CATALOG__V1__CREATE_PRODUCT_REQUEST__INIT;
	req.sku = sku;
	req.name = "Trail Stove";
	req.description = "A stove for the order tests.";
	req.price = (char *)price;
	req.currency = "USD";
	req.category_id = category;
	req.stock = stock;
	const Panthera__Catalog__V1__Product *p;
	rpc_reply *reply;
	assert_status(CAT(create_product)(ch, &req, NULL, &p, &reply), RPC_STATUS_OK);
	snprintf(id_out, 37, "%s", p->id);
	rpc_reply_free(reply);
}

static void stock_of(const char *product, int *available, int *reserved)
{
	Panthera__Inventory__V1__GetStockRequest req =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	req.product_id = (char *)product;
	const Panthera__Inventory__V1__Stock *s;
	rpc_reply *reply;
	assert_status(INV(get_stock)(ch, &req, NULL, &s, &reply), RPC_STATUS_OK);
	*available = s->available;
	*reserved = s->reserved;
	rpc_reply_free(reply);
}

static Panthera__Orders__V1__ShippingAddress address = {
    PROTOBUF_C_MESSAGE_INIT(&panthera__orders__v1__shipping_address__descriptor),
    "1 Main St",
    "Springfield",
    "IL",
    "62701",
    "US"};

/* CreateOrder of n products (ids, quantities) as `user`; the reply is
 * kept in *reply_out when not NULL (else freed), the order id in id_out. */
static rpc_status place(const char *user, const char *key, const char **products, const int *qty,
                        size_t n, const char *method, char id_out[37], rpc_reply **reply_out)
{
	Panthera__Orders__V1__CheckoutItem items[8], *ptrs[8];
	for (size_t i = 0; i < n; i++) {
		panthera__orders__v1__checkout_item__init(&items[i]);
		items[i].product_id = (char *)products[i];
		items[i].quantity = qty[i];
		ptrs[i] = &items[i];
	}
	Panthera__Orders__V1__CreateOrderRequest req =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	req.items = ptrs;
	req.n_items = n;
	req.shipping_address = &address;
	req.payment_method_id = (char *)method;
	as_caller a;
	const order *o = NULL;
	rpc_reply *reply;
	rpc_status st = ORD(create_order)(ch, &req, as(&a, user, 0, key), &o, &reply);
	if (st == RPC_STATUS_OK && id_out != NULL)
		snprintf(id_out, 37, "%s", o->id);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status get(const char *user, int admin, const char *id, const order **o,
                      rpc_reply **reply)
{
	Panthera__Orders__V1__GetOrderRequest req = PANTHERA__ORDERS__V1__GET_ORDER_REQUEST__INIT;
	req.order_id = (char *)id;
	as_caller a;
	return ORD(get_order)(ch, &req, as(&a, user, admin, NULL), o, reply);
}

static Panthera__Orders__V1__OrderStatus status_of(const char *id)
{
	const order *o;
	rpc_reply *reply;
	assert_status(get(id, 1, id, &o, &reply), RPC_STATUS_OK); /* as an admin */
	Panthera__Orders__V1__OrderStatus s = o->status;
	rpc_reply_free(reply);
	return s;
}

/* What payments would write: PaymentSucceeded or PaymentFailed. */
static void payment_event(const char *order_id, const char *user, int ok, char payment_id[37])
{
	svctest_new_id(payment_id);
	db_conn *c;
	assert_status(db_acquire(pay_pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	uint8_t buf[512];
	size_t len;
	if (ok) {
		Panthera__Events__V1__PaymentSucceeded ev =
		    PANTHERA__EVENTS__V1__PAYMENT_SUCCEEDED__INIT;
		ev.payment_id = payment_id;
		ev.order_id = (char *)order_id;
		ev.user_id = (char *)user;
		ev.amount = "1.00";
		ev.currency = "USD";
		len = protobuf_c_message_pack(&ev.base, buf);
	} else {
		Panthera__Events__V1__PaymentFailed ev = PANTHERA__EVENTS__V1__PAYMENT_FAILED__INIT;
		ev.payment_id = payment_id;
		ev.order_id = (char *)order_id;
		ev.user_id = (char *)user;
		ev.amount = "1.00";
		ev.currency = "USD";
		ev.reason = "card_declined";
		len = protobuf_c_message_pack(&ev.base, buf);
	}
	assert_status(ev_publish(c, "payments",
	                         ok ? "panthera.events.v1.PaymentSucceeded"
	                            : "panthera.events.v1.PaymentFailed",
	                         payment_id, buf, len, NULL),
	              RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(pay_pool, c);
}

static void settle(void)
{
	unsigned n;
	do
		assert_status(orders_process_events(&svc, &n), RPC_STATUS_OK);
	while (n > 0);
}

static long count(const char *sql, const char *param)
{
	db_conn *c;
	PGresult *r;
	const char *p[1] = {param};
	assert_status(db_acquire(ord_pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, param ? 1 : 0, p, &r), RPC_STATUS_OK);
	long v = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(ord_pool, c);
	return v;
}

static long events_of(const char *type, const char *order_id)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM orders.outbox WHERE type = 'panthera.events.v1.%s'"
	         " AND aggregate_id = $1",
	         type);
	return count(sql, order_id);
}

/* ---- tests ---- */

static void test_create_prices_from_catalog_and_reserves(void **state)
{
	(void)state;
	char user[37], p1[37], p2[37], id[37];
	svctest_new_id(user);
	make_product("12.50", 10, p1);
	make_product("0.99", 10, p2);
	const char *prods[] = {p1, p2, p1};
	int qty[] = {2, 3, 1}; /* p1 twice: 3 units in one line */
	rpc_reply *reply;
	assert_status(place(user, NULL, prods, qty, 3, "pm_card_visa", id, &reply), RPC_STATUS_OK);
	const order *o = ORD(create_order_response)(reply);
	assert_int_equal(o->status, PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT);
	assert_string_equal(o->user_id, user);
	assert_int_equal(o->n_items, 2);
	assert_string_equal(o->items[0]->unit_price, "12.50");
	assert_int_equal(o->items[0]->quantity, 3);
	assert_string_equal(o->items[0]->line_total, "37.50");
	assert_string_equal(o->items[1]->line_total, "2.97");
	assert_string_equal(o->subtotal, "40.47");
	assert_string_equal(o->total_amount, "40.47");
	assert_string_equal(o->currency, "USD");
	assert_string_equal(o->shipping_address->city, "Springfield");
	assert_string_equal(o->payment_id, "");
	assert_null(o->shipment);
	rpc_reply_free(reply);
	int av, rs;
	stock_of(p1, &av, &rs);
	assert_int_equal(av, 7);
	assert_int_equal(rs, 3);
	assert_int_equal(events_of("OrderCreated", id), 1);

	/* paid: committed, PAID, OrderPaid */
	char pay[37];
	payment_event(id, user, 1, pay);
	settle();
	const order *got;
	assert_status(get(user, 0, id, &got, &reply), RPC_STATUS_OK);
	assert_int_equal(got->status, PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	assert_string_equal(got->payment_id, pay);
	rpc_reply_free(reply);
	stock_of(p1, &av, &rs);
	assert_int_equal(av, 7);
	assert_int_equal(rs, 0);
	assert_int_equal(events_of("OrderPaid", id), 1);

	/* the same event again (a redelivery): nothing more */
	settle();
	assert_int_equal(events_of("OrderPaid", id), 1);
}

static void test_payment_failure_returns_the_stock(void **state)
{
	(void)state;
	char user[37], p[37], id[37], pay[37];
	svctest_new_id(user);
	make_product("5.00", 4, p);
	const char *prods[] = {p};
	int qty[] = {4};
	assert_status(place(user, NULL, prods, qty, 1, "pm_card_declined", id, NULL),
	              RPC_STATUS_OK);
	int av, rs;
	stock_of(p, &av, &rs);
	assert_int_equal(av, 0);
	payment_event(id, user, 0, pay);
	settle();
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED);
	stock_of(p, &av, &rs);
	assert_int_equal(av, 4);
	assert_int_equal(rs, 0);
	assert_int_equal(events_of("OrderPaymentFailed", id), 1);

	/* paid again: ResumePayment holds the stock again */
	Panthera__Orders__V1__ResumePaymentRequest rr =
	    PANTHERA__ORDERS__V1__RESUME_PAYMENT_REQUEST__INIT;
	rr.order_id = id;
	char other[37];
	svctest_new_id(other);
	rr.user_id = other;
	rpc_reply *reply;
	const order *o;
	assert_status(ORD(resume_payment)(ch, &rr, NULL, &o, &reply), RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);
	rr.user_id = user;
	assert_status(ORD(resume_payment)(ch, &rr, NULL, &o, &reply), RPC_STATUS_OK);
	assert_int_equal(o->status, PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT);
	assert_string_equal(o->total_amount, "20.00");
	rpc_reply_free(reply);
	stock_of(p, &av, &rs);
	assert_int_equal(rs, 4);
	assert_status(ORD(resume_payment)(ch, &rr, NULL, &o, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "ORDER_NOT_PAYABLE");
	rpc_reply_free(reply);
	payment_event(id, user, 1, pay);
	settle();
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
}

static void test_insufficient_stock_creates_nothing(void **state)
{
	(void)state;
	char user[37], p[37], q[37];
	svctest_new_id(user);
	make_product("1.00", 2, p);
	make_product("1.00", 9, q);
	const char *prods[] = {q, p};
	int qty[] = {1, 3};
	long before = count("SELECT count(*) FROM orders.orders", NULL);
	rpc_reply *reply;
	assert_status(place(user, "k-short", prods, qty, 2, "pm_card_visa", NULL, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "INSUFFICIENT_STOCK");
	rpc_reply_free(reply);
	assert_int_equal(count("SELECT count(*) FROM orders.orders", NULL), before);
	int av, rs;
	stock_of(q, &av, &rs);
	assert_int_equal(av, 9);
	assert_int_equal(rs, 0);
	/* the key was given back: a retry with more stock goes through */
	qty[1] = 2;
	char id[37];
	assert_status(place(user, "k-short", prods, qty, 2, "pm_card_visa", id, NULL),
	              RPC_STATUS_OK);
}

typedef struct racer {
	const char *user, *product, *key;
	rpc_status st;
	char id[37];
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	const char *prods[] = {r->product};
	int qty[] = {1};
	r->st = place(r->user, r->key, prods, qty, 1, "pm_card_visa", r->id, NULL);
	return NULL;
}

static void test_twenty_orders_for_five_units(void **state)
{
	(void)state;
	char p[37], users[20][37];
	make_product("3.00", 5, p);
	racer r[20];
	pthread_t t[20];
	for (int i = 0; i < 20; i++) {
		svctest_new_id(users[i]);
		r[i] = (racer){.user = users[i], .product = p};
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	int ok = 0, short_ = 0;
	for (int i = 0; i < 20; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].st == RPC_STATUS_OK;
		short_ += r[i].st == RPC_STATUS_FAILED_PRECONDITION;
		if (r[i].st != RPC_STATUS_OK && r[i].st != RPC_STATUS_FAILED_PRECONDITION)
			print_message("order %d: %s\n", i, rpc_status_name(r[i].st));
	}
	assert_int_equal(ok, 5);
	assert_int_equal(short_, 15);
	int av, rs;
	stock_of(p, &av, &rs);
	assert_int_equal(av, 0);
	assert_int_equal(rs, 5);
}

static void test_idempotency_key_gives_one_order(void **state)
{
	(void)state;
	char user[37], p[37];
	svctest_new_id(user);
	make_product("2.00", 50, p);
	racer r[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (racer){.user = user, .product = p, .key = "checkout-42"};
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	int ok = 0;
	const char *first = NULL;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		/* the losers of the race either replay the order or are told to retry */
		if (r[i].st == RPC_STATUS_OK) {
			ok++;
			if (first == NULL)
				first = r[i].id;
			assert_string_equal(r[i].id, first);
		} else {
			assert_int_equal(r[i].st, RPC_STATUS_ABORTED);
		}
	}
	assert_true(ok >= 1);
	/* once settled, the same key replays the first order */
	char again[37];
	const char *prods[] = {p};
	int qty[] = {1};
	assert_status(place(user, "checkout-42", prods, qty, 1, "pm_card_visa", again, NULL),
	              RPC_STATUS_OK);
	assert_string_equal(again, first);
	assert_int_equal(count("SELECT count(*) FROM orders.orders WHERE user_id = $1", user), 1);
	int av, rs;
	stock_of(p, &av, &rs);
	assert_int_equal(rs, 1);
	/* another user with the same key gets an order of their own */
	char other[37], theirs[37];
	svctest_new_id(other);
	assert_status(place(other, "checkout-42", prods, qty, 1, "pm_card_visa", theirs, NULL),
	              RPC_STATUS_OK);
	assert_string_not_equal(theirs, first);
}

/* A request that dies holding an Idempotency-Key (its transaction, with
 * the key's row and lock, ends with its connection) keeps a retry out only
 * while it lives: ABORTED with IDEMPOTENCY_KEY_IN_USE then, and the order
 * made at once after. */
static void test_key_of_a_dead_request_is_free_at_once(void **state)
{
	(void)state;
	char user[37], p[37], theirs[37], mine[37];
	svctest_new_id(user);
	svctest_new_id(theirs);
	make_product("3.00", 10, p);
	const char *prods[] = {p};
	int qty[] = {1};
	/* what CreateOrder's transaction holds while it prices and reserves */
	db_conn *holder;
	assert_status(db_acquire(ord_pool, 2000, &holder), RPC_STATUS_OK);
	assert_status(db_exec(holder, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	const char *kp[3] = {user, "died-7", theirs};
	assert_status(db_exec(holder, NULL,
	                      "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", 2, kp,
	                      NULL),
	              RPC_STATUS_OK);
	assert_status(db_exec(holder, NULL,
	                      "INSERT INTO orders.idempotency_keys (user_id, key, order_id)"
	                      " VALUES ($1, $2, $3)",
	                      3, kp, NULL),
	              RPC_STATUS_OK);
	rpc_reply *reply;
	assert_status(place(user, "died-7", prods, qty, 1, "pm_card_visa", NULL, &reply),
	              RPC_STATUS_ABORTED);
	assert_string_equal(rpc_reply_error_reason(reply), "IDEMPOTENCY_KEY_IN_USE");
	rpc_reply_free(reply);
	/* the holder's end: what PostgreSQL does when its connection dies */
	assert_status(db_exec(holder, NULL, "ROLLBACK", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(ord_pool, holder);
	assert_status(place(user, "died-7", prods, qty, 1, "pm_card_visa", mine, NULL),
	              RPC_STATUS_OK);
	assert_string_not_equal(mine, theirs);
	assert_int_equal(count("SELECT count(*) FROM orders.orders WHERE user_id = $1", user), 1);
	/* and the key now answers that order */
	char again[37];
	assert_status(place(user, "died-7", prods, qty, 1, "pm_card_visa", again, NULL),
	              RPC_STATUS_OK);
	assert_string_equal(again, mine);
}

/* An UPDATE of the orders database with one parameter. */
static void run_sql(const char *sql, const char *param)
{
	db_conn *c;
	const char *p[1] = {param};
	assert_status(db_acquire(ord_pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, 1, p, NULL), RPC_STATUS_OK);
	db_release(ord_pool, c);
}

/* orders_sweep deletes CreateOrder's Idempotency-Keys past their 24 hours,
 * keeps younger ones and every order; a request with the swept key makes a
 * new order, as it would have before the sweep. */
static void test_sweep_forgets_expired_idempotency_keys_only(void **state)
{
	(void)state;
	char user[37], p[37], first[37], young[37], again[37];
	svctest_new_id(user);
	make_product("1.50", 10, p);
	const char *prods[] = {p};
	int qty[] = {1};
	assert_status(place(user, "sweep-old", prods, qty, 1, "pm_card_visa", first, NULL),
	              RPC_STATUS_OK);
	assert_status(place(user, "sweep-young", prods, qty, 1, "pm_card_visa", young, NULL),
	              RPC_STATUS_OK);
	run_sql("UPDATE orders.idempotency_keys SET created_at = now() - interval '24 hours'"
	        " - interval '1 minute' WHERE key = $1",
	        "sweep-old");
	run_sql("UPDATE orders.idempotency_keys SET created_at = now() - interval '23 hours'"
	        " WHERE key = $1",
	        "sweep-young");
	long deleted = -1;
	assert_status(orders_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(
	    count("SELECT count(*) FROM orders.idempotency_keys WHERE key = $1", "sweep-old"), 0);
	assert_int_equal(
	    count("SELECT count(*) FROM orders.idempotency_keys WHERE key = $1", "sweep-young"), 1);
	assert_int_equal(count("SELECT count(*) FROM orders.orders WHERE user_id = $1", user), 2);
	/* the young key still replays; the swept one makes a new order */
	assert_status(place(user, "sweep-young", prods, qty, 1, "pm_card_visa", again, NULL),
	              RPC_STATUS_OK);
	assert_string_equal(again, young);
	assert_status(place(user, "sweep-old", prods, qty, 1, "pm_card_visa", again, NULL),
	              RPC_STATUS_OK);
	assert_string_not_equal(again, first);
	assert_status(orders_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_int_equal(deleted, 0);
	assert_status(orders_sweep(NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
}

static void test_cancel_releases_and_late_payment_is_refunded(void **state)
{
	(void)state;
	char user[37], p[37], id[37], pay[37];
	svctest_new_id(user);
	make_product("8.00", 3, p);
	const char *prods[] = {p};
	int qty[] = {2};
	assert_status(place(user, NULL, prods, qty, 1, "pm_card_visa", id, NULL), RPC_STATUS_OK);
	Panthera__Orders__V1__CancelOrderRequest req =
	    PANTHERA__ORDERS__V1__CANCEL_ORDER_REQUEST__INIT;
	req.order_id = id;
	char other[37];
	svctest_new_id(other);
	as_caller a;
	const order *o;
	rpc_reply *reply;
	assert_status(ORD(cancel_order)(ch, &req, as(&a, other, 0, NULL), &o, &reply),
	              RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);
	assert_status(ORD(cancel_order)(ch, &req, as(&a, user, 0, NULL), &o, &reply),
	              RPC_STATUS_OK);
	assert_int_equal(o->status, PANTHERA__ORDERS__V1__ORDER_STATUS__CANCELLED);
	rpc_reply_free(reply);
	int av, rs;
	stock_of(p, &av, &rs);
	assert_int_equal(av, 3);
	assert_int_equal(rs, 0);
	assert_int_equal(events_of("OrderCancelled", id), 1);
	assert_status(ORD(cancel_order)(ch, &req, as(&a, user, 0, NULL), &o, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "ORDER_NOT_CANCELLABLE");
	rpc_reply_free(reply);

	/* the payment lands after the cancel: it is refunded, the order stays */
	int before = refunds;
	payment_event(id, user, 1, pay);
	settle();
	assert_int_equal(refunds, before + 1);
	assert_string_equal(refunded[before], pay);
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__CANCELLED);
	stock_of(p, &av, &rs);
	assert_int_equal(av, 3);
}

static rpc_status admin_step(const char *which, const char *id, int admin)
{
	char user[37];
	svctest_new_id(user);
	as_caller a;
	const order *o;
	rpc_reply *reply;
	rpc_status st;
	if (strcmp(which, "ship") == 0) {
		Panthera__Orders__V1__ShipOrderRequest r =
		    PANTHERA__ORDERS__V1__SHIP_ORDER_REQUEST__INIT;
		r.order_id = (char *)id;
		r.carrier = "UPS";
		r.tracking_number = "1Z999";
		st = ORD(ship_order)(ch, &r, as(&a, user, admin, NULL), &o, &reply);
		if (st == RPC_STATUS_OK) {
			assert_non_null(o->shipment);
			assert_string_equal(o->shipment->carrier, "UPS");
			assert_non_null(o->shipment->shipped_at);
		}
	} else if (strcmp(which, "deliver") == 0) {
		Panthera__Orders__V1__DeliverOrderRequest r =
		    PANTHERA__ORDERS__V1__DELIVER_ORDER_REQUEST__INIT;
		r.order_id = (char *)id;
		st = ORD(deliver_order)(ch, &r, as(&a, user, admin, NULL), &o, &reply);
		if (st == RPC_STATUS_OK)
			assert_non_null(o->shipment->delivered_at);
	} else {
		Panthera__Orders__V1__RefundOrderRequest r =
		    PANTHERA__ORDERS__V1__REFUND_ORDER_REQUEST__INIT;
		r.order_id = (char *)id;
		st = ORD(refund_order)(ch, &r, as(&a, user, admin, NULL), &o, &reply);
	}
	rpc_reply_free(reply);
	return st;
}

static void paid_order(const char *user, const char *p, int qty, char id[37], char pay[37])
{
	const char *prods[] = {p};
	int q[] = {qty};
	assert_status(place(user, NULL, prods, q, 1, "pm_card_visa", id, NULL), RPC_STATUS_OK);
	payment_event(id, user, 1, pay);
	settle();
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
}

static void test_fulfilment_and_refunds(void **state)
{
	(void)state;
	char user[37], p[37], a[37], b[37], pay_a[37], pay_b[37];
	svctest_new_id(user);
	make_product("4.00", 10, p);
	paid_order(user, p, 2, a, pay_a);
	paid_order(user, p, 3, b, pay_b);
	int av, rs;
	stock_of(p, &av, &rs);
	assert_int_equal(av, 5);

	assert_status(admin_step("ship", a, 0), RPC_STATUS_PERMISSION_DENIED);
	assert_status(admin_step("deliver", a, 1), RPC_STATUS_FAILED_PRECONDITION);
	assert_status(admin_step("ship", a, 1), RPC_STATUS_OK);
	assert_status(admin_step("ship", a, 1), RPC_STATUS_FAILED_PRECONDITION);
	assert_status(admin_step("deliver", a, 1), RPC_STATUS_OK);
	assert_int_equal(events_of("OrderShipped", a), 1);
	assert_int_equal(events_of("OrderDelivered", a), 1);

	/* refund after delivery: money back, stock not */
	int before = refunds;
	assert_status(admin_step("refund", a, 0), RPC_STATUS_PERMISSION_DENIED);
	assert_status(admin_step("refund", a, 1), RPC_STATUS_OK);
	assert_int_equal(refunds, before + 1);
	assert_string_equal(refunded[before], pay_a);
	assert_int_equal(status_of(a), PANTHERA__ORDERS__V1__ORDER_STATUS__REFUNDED);
	stock_of(p, &av, &rs);
	assert_int_equal(av, 5);
	/* refund before shipping: the units go back to available */
	assert_status(admin_step("refund", b, 1), RPC_STATUS_OK);
	stock_of(p, &av, &rs);
	assert_int_equal(av, 8);
	assert_int_equal(events_of("OrderRefunded", b), 1);
	assert_status(admin_step("refund", b, 1), RPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(count("SELECT count(*) FROM orders.outbox WHERE type ="
	                       " 'panthera.events.v1.OrderRefunded' AND aggregate_id = $1",
	                       a),
	                 1);
}

static void test_reads_ownership_and_purchases(void **state)
{
	(void)state;
	char user[37], other[37], p[37], ids[3][37], pay[37];
	svctest_new_id(user);
	svctest_new_id(other);
	make_product("1.50", 20, p);
	for (int i = 0; i < 3; i++)
		paid_order(user, p, 1, ids[i], pay);
	const order *o;
	rpc_reply *reply;
	assert_status(get(other, 0, ids[0], &o, &reply), RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);
	assert_status(get(other, 1, ids[0], &o, &reply), RPC_STATUS_OK); /* an admin */
	rpc_reply_free(reply);
	char unknown[37];
	svctest_new_id(unknown);
	assert_status(get(user, 0, unknown, &o, &reply), RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);
	assert_status(get(user, 0, "not-an-id", &o, &reply), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);

	Panthera__Orders__V1__ListUserOrdersRequest lr =
	    PANTHERA__ORDERS__V1__LIST_USER_ORDERS_REQUEST__INIT;
	lr.user_id = user;
	lr.page = 1;
	lr.page_size = 2;
	as_caller a;
	const Panthera__Orders__V1__ListUserOrdersResponse *l;
	assert_status(ORD(list_user_orders)(ch, &lr, as(&a, user, 0, NULL), &l, &reply),
	              RPC_STATUS_OK);
	assert_int_equal(l->total, 3);
	assert_int_equal(l->n_orders, 2);
	assert_string_equal(l->orders[0]->id, ids[2]); /* newest first */
	assert_int_equal(l->orders[0]->n_items, 1);
	rpc_reply_free(reply);
	lr.page = 2;
	assert_status(ORD(list_user_orders)(ch, &lr, as(&a, user, 0, NULL), &l, &reply),
	              RPC_STATUS_OK);
	assert_int_equal(l->n_orders, 1);
	assert_string_equal(l->orders[0]->id, ids[0]);
	rpc_reply_free(reply);
	assert_status(ORD(list_user_orders)(ch, &lr, as(&a, other, 0, NULL), &l, &reply),
	              RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);

	Panthera__Orders__V1__HasPurchasedRequest hr =
	    PANTHERA__ORDERS__V1__HAS_PURCHASED_REQUEST__INIT;
	const Panthera__Orders__V1__HasPurchasedResponse *h;
	hr.user_id = user;
	hr.product_id = p;
	assert_status(ORD(has_purchased)(ch, &hr, NULL, &h, &reply), RPC_STATUS_OK);
	assert_true(h->purchased);
	rpc_reply_free(reply);
	hr.user_id = other;
	assert_status(ORD(has_purchased)(ch, &hr, NULL, &h, &reply), RPC_STATUS_OK);
	assert_false(h->purchased);
	rpc_reply_free(reply);
}

static void test_cart_checkout(void **state)
{
	(void)state;
	char user[37], p[37], q[37], id[37];
	svctest_new_id(user);
	make_product("2.25", 10, p);
	make_product("7.00", 10, q);
	rpc_reply *reply;
	cart_n = 0;
	assert_status(place(user, NULL, NULL, NULL, 0, "pm_card_visa", NULL, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "CART_EMPTY");
	rpc_reply_free(reply);
	cart_products[0] = p;
	cart_quantities[0] = 2;
	cart_products[1] = q;
	cart_quantities[1] = 1;
	cart_n = 2;
	int before = checkouts;
	assert_status(place(user, NULL, NULL, NULL, 0, "pm_card_visa", id, &reply), RPC_STATUS_OK);
	const order *o = ORD(create_order_response)(reply);
	assert_int_equal(o->n_items, 2);
	assert_string_equal(o->total_amount, "11.50");
	rpc_reply_free(reply);
	assert_int_equal(checkouts, before + 1);
}

static void test_bad_input(void **state)
{
	(void)state;
	char user[37], p[37], missing[37];
	svctest_new_id(user);
	svctest_new_id(missing);
	make_product("1.00", 5, p);
	const char *prods[] = {p};
	int qty[] = {1}, zero[] = {0}, many[] = {1001};
	rpc_reply *reply;
	assert_status(place(user, NULL, prods, zero, 1, "pm_card_visa", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(place(user, NULL, prods, many, 1, "pm_card_visa", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(place(user, NULL, prods, qty, 1, "", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	const char *bad[] = {"nope"};
	assert_status(place(user, NULL, bad, qty, 1, "pm_card_visa", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	const char *gone[] = {missing};
	assert_status(place(user, NULL, gone, qty, 1, "pm_card_visa", NULL, &reply),
	              RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	/* no caller */
	Panthera__Orders__V1__CreateOrderRequest req =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	req.shipping_address = &address;
	req.payment_method_id = "pm_card_visa";
	const order *o;
	assert_status(ORD(create_order)(ch, &req, NULL, &o, &reply), RPC_STATUS_UNAUTHENTICATED);
	rpc_reply_free(reply);
	/* a bad address names its field */
	Panthera__Orders__V1__ShippingAddress bad_country = address;
	bad_country.country = "usa";
	req.shipping_address = &bad_country;
	as_caller a;
	assert_status(ORD(create_order)(ch, &req, as(&a, user, 0, NULL), &o, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
}

/* Address text is counted in characters, not bytes, and must be UTF-8:
 * a street of 200 two-byte letters fits its 200 characters, a byte that is
 * not UTF-8 is refused naming the field (it never reaches PostgreSQL). */
static void test_address_text_is_utf8_counted_in_characters(void **state)
{
	(void)state;
	char user[37], p[37], id[37];
	svctest_new_id(user);
	make_product("2.00", 5, p);
	const char *prods[] = {p};
	int qty[] = {1};
	char street[2 * 200 + 1];
	for (int i = 0; i < 200; i++)
		memcpy(street + 2 * i, "\xc3\xa9", 2);
	street[400] = '\0';
	Panthera__Orders__V1__ShippingAddress saved = address;
	address.street = street;
	assert_status(place(user, NULL, prods, qty, 1, "pm_card_visa", id, NULL), RPC_STATUS_OK);
	street[398] = '\0'; /* 199 characters and a cut sequence */
	street[397] = '\xc3';
	rpc_reply *reply;
	assert_status(place(user, NULL, prods, qty, 1, "pm_card_visa", NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(rpc_reply_message(reply), "shipping_address.street"));
	rpc_reply_free(reply);
	address.street = "1 Main St";
	char city[] = "Spring-field";
	city[6] = (char)0x85; /* a Latin-1 byte */
	address.city = city;
	assert_status(place(user, NULL, prods, qty, 1, "pm_card_visa", NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(rpc_reply_message(reply), "shipping_address.city"));
	rpc_reply_free(reply);
	address = saved;
}

/* OrderService.ResumePayment as the real payments service calls it: with
 * the attempt in `idempotency-key` (NULL: none). */
static rpc_status resume(const char *id, const char *user, const char *attempt)
{
	Panthera__Orders__V1__ResumePaymentRequest req =
	    PANTHERA__ORDERS__V1__RESUME_PAYMENT_REQUEST__INIT;
	req.order_id = (char *)id;
	req.user_id = (char *)user;
	rpc_metadata_entry md[1] = {{"idempotency-key", attempt}};
	rpc_call_opts o = {.metadata = md, .n_metadata = attempt != NULL, .timeout_ms = 10000};
	rpc_reply *reply;
	rpc_status st = ORD(resume_payment)(ch, &req, &o, NULL, &reply);
	if (st == RPC_STATUS_FAILED_PRECONDITION)
		assert_string_equal(rpc_reply_error_reason(reply), "ORDER_NOT_PAYABLE");
	rpc_reply_free(reply);
	return st;
}

/* A PAYMENT_FAILED order becomes payable with an attempt's key; the same
 * attempt may resume it again while it is still PENDING_PAYMENT from it
 * (its stock stays reserved once), any other attempt, or none, may not. */
static void test_resume_payment_takes_its_own_attempt_again(void **state)
{
	(void)state;
	char user[37], p[37], id[37], pay[37];
	svctest_new_id(user);
	make_product("3.00", 4, p);
	const char *prods[] = {p};
	int qty[] = {3};
	assert_status(place(user, NULL, prods, qty, 1, "pm_card_declined", id, NULL),
	              RPC_STATUS_OK);
	/* fresh from CreateOrder: its charge is under way */
	assert_status(resume(id, user, "attempt-a"), RPC_STATUS_FAILED_PRECONDITION);
	payment_event(id, user, 0, pay);
	settle();
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED);
	assert_status(resume(id, user, "attempt-a"), RPC_STATUS_OK);
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT);
	assert_status(resume(id, user, "attempt-a"), RPC_STATUS_OK);
	int available, reserved;
	stock_of(p, &available, &reserved);
	assert_int_equal(available, 1);
	assert_int_equal(reserved, 3);
	assert_status(resume(id, user, "attempt-b"), RPC_STATUS_FAILED_PRECONDITION);
	assert_status(resume(id, user, NULL), RPC_STATUS_FAILED_PRECONDITION);
	/* someone else's order stays NOT_FOUND, key or not */
	char other[37];
	svctest_new_id(other);
	assert_status(resume(id, other, "attempt-a"), RPC_STATUS_NOT_FOUND);
	/* settled by that attempt's payment: not payable by it any more */
	payment_event(id, user, 1, pay);
	settle();
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	assert_status(resume(id, user, "attempt-a"), RPC_STATUS_FAILED_PRECONDITION);
}

static rpc_status create_payment(const char *user, const char *order_id, const char *method,
                                 rpc_reply **reply)
{
	Panthera__Payments__V1__CreatePaymentRequest req =
	    PANTHERA__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
	req.order_id = (char *)order_id;
	req.payment_method_id = (char *)method;
	as_caller a;
	return panthera_payments_v1_payment_service_create_payment(
	    pay_ch, &req, as(&a, user, 0, NULL), NULL, reply);
}

static int provider_up(void **state)
{
	(void)state;
	atomic_store(&provider_down, 0); /* also after a failed assertion */
	return 0;
}

/* API.md's POST /v1/payments after a failure, with the provider down on the
 * first try: the real PaymentService over this OrderService. The retry
 * after UNAVAILABLE pays, and the order settles PAID. */
static void test_paying_again_after_the_provider_was_down(void **state)
{
	(void)state;
	char user[37], p[37], id[37], pay[37];
	svctest_new_id(user);
	make_product("8.00", 5, p);
	const char *prods[] = {p};
	int qty[] = {2};
	assert_status(place(user, NULL, prods, qty, 1, "pm_card_declined", id, NULL),
	              RPC_STATUS_OK);
	payment_event(id, user, 0, pay); /* the first charge was declined */
	settle();
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED);
	atomic_store(&provider_down, 1);
	rpc_reply *reply;
	assert_status(create_payment(user, id, "pm_card_visa", &reply), RPC_STATUS_UNAVAILABLE);
	assert_string_equal(rpc_reply_error_reason(reply), "PAYMENT_PROVIDER_UNAVAILABLE");
	rpc_reply_free(reply);
	/* the attempt left the order pending, its stock held */
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT);
	int available, reserved;
	stock_of(p, &available, &reserved);
	assert_int_equal(available, 3);
	assert_int_equal(reserved, 2);
	atomic_store(&provider_down, 0);
	assert_status(create_payment(user, id, "pm_card_visa", &reply), RPC_STATUS_OK);
	const Panthera__Payments__V1__Payment *pm =
	    panthera_payments_v1_payment_service_create_payment_response(reply);
	assert_int_equal(pm->status, PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__SUCCEEDED);
	assert_string_equal(pm->amount, "16.00");
	rpc_reply_free(reply);
	settle(); /* the real PaymentSucceeded, from the payments outbox */
	assert_int_equal(status_of(id), PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	stock_of(p, &available, &reserved);
	assert_int_equal(available, 3);
	assert_int_equal(reserved, 0);
	assert_status(create_payment(user, id, "pm_card_visa", &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "ORDER_NOT_PAYABLE");
	rpc_reply_free(reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_prices_from_catalog_and_reserves),
	    cmocka_unit_test(test_payment_failure_returns_the_stock),
	    cmocka_unit_test(test_insufficient_stock_creates_nothing),
	    cmocka_unit_test(test_twenty_orders_for_five_units),
	    cmocka_unit_test(test_idempotency_key_gives_one_order),
	    cmocka_unit_test(test_key_of_a_dead_request_is_free_at_once),
	    cmocka_unit_test(test_sweep_forgets_expired_idempotency_keys_only),
	    cmocka_unit_test(test_cancel_releases_and_late_payment_is_refunded),
	    cmocka_unit_test(test_fulfilment_and_refunds),
	    cmocka_unit_test(test_reads_ownership_and_purchases),
	    cmocka_unit_test(test_cart_checkout),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_address_text_is_utf8_counted_in_characters),
	    cmocka_unit_test(test_resume_payment_takes_its_own_attempt_again),
	    cmocka_unit_test_teardown(test_paying_again_after_the_provider_was_down, provider_up),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
