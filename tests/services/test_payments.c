/*
 * test_payments.c - PaymentService through its generated client stubs,
 * over the RPC runtime, on a real PostgreSQL: charges (succeeded, declined,
 * idempotent, concurrent, provider down), refunds, who may read a payment,
 * CreatePayment against a test double of OrderService (ResumePayment) with
 * Idempotency-Key replay, the saga consumer on OrderCreated events written
 * into an "orders" outbox (once, also when delivered or processed twice),
 * the consumer thread, refused input.
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
#include <time.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/orders/v1/orders.panthera.h"
#include "panthera/rpc/v1/rpc.pb-c.h"
#include "payments.h"

#define PAY(x) panthera_payments_v1_payment_service_##x
#define ST(x)  PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__##x

/* ---- a provider that counts, and can be down ---- */

static atomic_int provider_charges, provider_refunds, provider_down;

static rpc_status counting_charge(void *ctx, int64_t amount_cents, const char *currency,
                                  const char *payment_method_id, const char *idempotency_key,
                                  uint32_t timeout_ms, payments_charge_result *out)
{
	(void)ctx;
	if (atomic_load(&provider_down))
		return RPC_STATUS_UNAVAILABLE;
	if (strcmp(payment_method_id, "pm_provider_bug") == 0)
		return RPC_STATUS_INVALID_ARGUMENT; /* neither an answer nor unreachable */
	atomic_fetch_add(&provider_charges, 1);
	const payments_provider *t = payments_test_provider();
	return t->charge(t->ctx, amount_cents, currency, payment_method_id, idempotency_key,
	                 timeout_ms, out);
}

static rpc_status counting_refund(void *ctx, const char *provider_ref, int64_t amount_cents,
                                  const char *currency, const char *idempotency_key,
                                  uint32_t timeout_ms)
{
	(void)ctx;
	if (atomic_load(&provider_down))
		return RPC_STATUS_DEADLINE_EXCEEDED;
	atomic_fetch_add(&provider_refunds, 1);
	const payments_provider *t = payments_test_provider();
	return t->refund(t->ctx, provider_ref, amount_cents, currency, idempotency_key, timeout_ms);
}

static const payments_provider counting_provider = {
    .name = "counting-test",
    .charge = counting_charge,
    .refund = counting_refund,
};

/* ---- a test double of OrderService: ResumePayment over a few orders ---- */

typedef struct fake_order {
	char id[37], user_id[37];
	Panthera__Orders__V1__OrderStatus status;
	const char *total, *currency;
	int short_stock;      /* ResumePayment answers INSUFFICIENT_STOCK */
	char resume_key[128]; /* the idempotency-key of the resume that made it pending */
} fake_order;

static pthread_mutex_t orders_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_order orders[32];
static int n_orders;
static atomic_int resumes;
static char last_resume_key[128]; /* under orders_lock */

static char *arena_str(rpc_call *call, const char *s)
{
	char *d = rpc_call_alloc(call, strlen(s) + 1);
	if (d != NULL)
		strcpy(d, s);
	return d;
}

static rpc_status fake_resume_payment(rpc_call *call,
                                      const Panthera__Orders__V1__ResumePaymentRequest *req,
                                      Panthera__Orders__V1__Order *resp, void *user)
{
	(void)user;
	atomic_fetch_add(&resumes, 1);
	const char *key = rpc_call_metadata(call, "idempotency-key");
	pthread_mutex_lock(&orders_lock);
	snprintf(last_resume_key, sizeof(last_resume_key), "%s", key != NULL ? key : "");
	fake_order *o = NULL;
	for (int i = 0; i < n_orders; i++) {
		if (strcmp(orders[i].id, req->order_id) == 0 &&
		    strcmp(orders[i].user_id, req->user_id) == 0)
			o = &orders[i];
	}
	rpc_status st = RPC_STATUS_OK;
	if (o == NULL) {
		rpc_call_set_error_reason(call, "ORDER_NOT_FOUND", NULL);
		st =
		    rpc_call_error(call, RPC_STATUS_NOT_FOUND, "order %s not found", req->order_id);
	} else if (o->status != PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED &&
	           !(o->status == PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT &&
	             key != NULL && strcmp(key, o->resume_key) == 0)) {
		/* as OrderService: PAYMENT_FAILED, or still pending from the same
		 * attempt (orders.md) */
		rpc_call_set_error_reason(call, "ORDER_NOT_PAYABLE", NULL);
		st = rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
		                    "order %s is not PAYMENT_FAILED", o->id);
	} else if (o->short_stock) {
		rpc_call_set_error_reason(call, "INSUFFICIENT_STOCK", NULL);
		st = rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION, "not enough stock");
	} else {
		o->status = PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT;
		snprintf(o->resume_key, sizeof(o->resume_key), "%s", key != NULL ? key : "");
		resp->id = arena_str(call, o->id);
		resp->user_id = arena_str(call, o->user_id);
		resp->status = o->status;
		resp->subtotal = arena_str(call, o->total);
		resp->total_amount = arena_str(call, o->total);
		resp->currency = arena_str(call, o->currency);
		if (resp->id == NULL || resp->user_id == NULL || resp->subtotal == NULL ||
		    resp->total_amount == NULL || resp->currency == NULL)
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	pthread_mutex_unlock(&orders_lock);
	return st;
}

static const panthera_orders_v1_order_service_handlers fake_orders = {
    .resume_payment = fake_resume_payment,
};

/* A PAYMENT_FAILED order of `user` in the double; its id into id[37]. */
static void add_failed_order(char id[37], const char *user, const char *total, int short_stock)
{
	assert_status(id_uuid4(id), RPC_STATUS_OK);
	pthread_mutex_lock(&orders_lock);
	assert_true(n_orders < 32);
	fake_order *o = &orders[n_orders++];
	snprintf(o->id, sizeof(o->id), "%s", id);
	snprintf(o->user_id, sizeof(o->user_id), "%s", user);
	o->status = PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED;
	o->total = total;
	o->currency = "EUR";
	o->short_stock = short_stock;
	pthread_mutex_unlock(&orders_lock);
}

static void order_status(const char *id, Panthera__Orders__V1__OrderStatus *status,
                         char resume_key[128])
{
	pthread_mutex_lock(&orders_lock);
	for (int i = 0; i < n_orders; i++) {
		if (strcmp(orders[i].id, id) == 0) {
			*status = orders[i].status;
			snprintf(resume_key, 128, "%s", orders[i].resume_key);
		}
	}
	pthread_mutex_unlock(&orders_lock);
}

static void set_order_failed_again(const char *id)
{
	pthread_mutex_lock(&orders_lock);
	for (int i = 0; i < n_orders; i++) {
		if (strcmp(orders[i].id, id) == 0)
			orders[i].status = PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED;
	}
	pthread_mutex_unlock(&orders_lock);
}

/* ---- fixture ---- */

static pgtest pg;
static db_pool *pool, *orders_pool;
static payments_service svc;
static rpc_server *srv, *orders_srv;
static rpc_channel *ch, *orders_ch;

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	if (svctest_pool(&pool, pg.url, "payments", 12, 1) != RPC_STATUS_OK ||
	    svctest_pool(&orders_pool, pg.url, "orders", 4, 0) != RPC_STATUS_OK ||
	    ev_outbox_setup(orders_pool, "orders") != RPC_STATUS_OK)
		return -1;
	if (svctest_server(&orders_srv, 10, 0) != RPC_STATUS_OK ||
	    panthera_orders_v1_order_service_register(orders_srv, &fake_orders, NULL) !=
	        RPC_STATUS_OK ||
	    svctest_start(orders_srv, "inproc://payments-test-orders", &orders_ch) != RPC_STATUS_OK)
		return -1;
	svc.pool = pool;
	svc.orders_events = orders_pool;
	svc.orders = orders_ch;
	svc.provider = &counting_provider;
	if (svctest_server(&srv, 10, 0) != RPC_STATUS_OK ||
	    payments_service_register(srv, &svc) != RPC_STATUS_OK ||
	    svctest_start(srv, "inproc://payments-test", &ch) != RPC_STATUS_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	payments_stop(&svc);
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	rpc_channel_close(orders_ch);
	rpc_server_destroy(orders_srv);
	db_pool_close(orders_pool);
	db_pool_close(pool);
	pgtest_destroy(&pg);
	return 0;
}

/* ---- helpers ---- */

static rpc_status charge(const char *order, const char *user, const char *amount,
                         const char *currency, const char *method, const char *key,
                         rpc_reply **reply_out)
{
	Panthera__Payments__V1__ChargeRequest req = PANTHERA__PAYMENTS__V1__CHARGE_REQUEST__INIT;
	req.order_id = (char *)order;
	req.user_id = (char *)user;
	req.amount = (char *)amount;
	req.currency = (char *)currency;
	req.payment_method_id = (char *)method;
	req.idempotency_key = (char *)key;
	rpc_reply *reply;
	rpc_status st = PAY(charge)(ch, &req, NULL, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

/* Charge with the defaults of a fresh order; the payment id into id[37]. */
static void charge_ok(const char *user, const char *method, char id[37])
{
	char order[37], key[37];
	svctest_new_id(order);
	svctest_new_id(key);
	rpc_reply *reply;
	assert_status(charge(order, user, "20.00", "USD", method, key, &reply), RPC_STATUS_OK);
	snprintf(id, 37, "%s", PAY(charge_response)(reply)->id);
	rpc_reply_free(reply);
}

static rpc_status refund(const char *payment, rpc_reply **reply_out)
{
	Panthera__Payments__V1__RefundRequest req = PANTHERA__PAYMENTS__V1__REFUND_REQUEST__INIT;
	req.payment_id = (char *)payment;
	rpc_reply *reply;
	rpc_status st = PAY(refund)(ch, &req, NULL, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

/* Call options naming a caller (NULL: none), its roles and an
 * Idempotency-Key (NULL: none). `md` holds 3 entries. */
static rpc_call_opts caller_opts(rpc_metadata_entry *md, const char *caller, const char *roles,
                                 const char *key)
{
	size_t n = 0;
	if (caller != NULL)
		md[n++] = (rpc_metadata_entry){"x-caller-id", caller};
	if (roles != NULL)
		md[n++] = (rpc_metadata_entry){"x-caller-roles", roles};
	if (key != NULL)
		md[n++] = (rpc_metadata_entry){"idempotency-key", key};
	return (rpc_call_opts){.metadata = md, .n_metadata = n};
}

static rpc_status get_payment(const char *payment, const char *caller, const char *roles,
                              rpc_reply **reply_out)
{
	Panthera__Payments__V1__GetPaymentRequest req =
	    PANTHERA__PAYMENTS__V1__GET_PAYMENT_REQUEST__INIT;
	req.payment_id = (char *)payment;
	rpc_metadata_entry md[3];
	rpc_call_opts o = caller_opts(md, caller, roles, NULL);
	rpc_reply *reply;
	rpc_status st = PAY(get_payment)(ch, &req, &o, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status create_payment(const char *order, const char *method, const char *caller,
                                 const char *key, rpc_reply **reply_out)
{
	Panthera__Payments__V1__CreatePaymentRequest req =
	    PANTHERA__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
	req.order_id = (char *)order;
	req.payment_method_id = (char *)method;
	rpc_metadata_entry md[3];
	rpc_call_opts o = caller_opts(md, caller, "USER", key);
	rpc_reply *reply;
	rpc_status st = PAY(create_payment)(ch, &req, &o, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

/* One number from SQL on the payments pool, with up to two parameters. */
static long sql_count(const char *sql, const char *p1, const char *p2)
{
	db_conn *c;
	PGresult *r;
	const char *p[2] = {p1, p2};
	int n = p2 != NULL ? 2 : p1 != NULL ? 1 : 0;
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, n, p, &r), RPC_STATUS_OK);
	long v = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(pool, c);
	return v;
}

static void sql_run(db_pool *on, const char *sql, const char *p1)
{
	db_conn *c;
	const char *p[1] = {p1};
	assert_status(db_acquire(on, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, p1 != NULL, p, NULL), RPC_STATUS_OK);
	db_release(on, c);
}

static long events_of(const char *type, const char *payment_id)
{
	return sql_count(
	    "SELECT count(*) FROM payments.outbox WHERE type = $1 AND aggregate_id = $2", type,
	    payment_id);
}

static long payments_of_order(const char *order_id)
{
	return sql_count("SELECT count(*) FROM payments.payments WHERE order_id = $1", order_id,
	                 NULL);
}

/* The payment id and status of an order's only payment. */
static void payment_of_order(const char *order_id, char id[37], char status[16])
{
	db_conn *c;
	PGresult *r;
	const char *p[1] = {order_id};
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL,
	                      "SELECT id, status FROM payments.payments WHERE order_id = $1", 1, p,
	                      &r),
	              RPC_STATUS_OK);
	assert_int_equal(PQntuples(r), 1);
	snprintf(id, 37, "%s", PQgetvalue(r, 0, 0));
	snprintf(status, 16, "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	db_release(pool, c);
}

/* The payload of the only event of `type` about `payment_id`, to free(). */
static uint8_t *event_payload(const char *type, const char *payment_id, size_t *len)
{
	db_conn *c;
	PGresult *r;
	const char *p[2] = {type, payment_id};
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(
	    db_exec(c, NULL,
	            "SELECT payload FROM payments.outbox WHERE type = $1 AND aggregate_id = $2", 2,
	            p, &r),
	    RPC_STATUS_OK);
	assert_int_equal(PQntuples(r), 1);
	size_t n;
	unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &n);
	assert_non_null(bytes);
	uint8_t *copy = malloc(n + 1);
	assert_non_null(copy);
	memcpy(copy, bytes, n);
	*len = n;
	PQfreemem(bytes);
	PQclear(r);
	db_release(pool, c);
	return copy;
}

/* An event into the orders outbox, committed, as the orders service would
 * write it; its id into event_id[37] (may be NULL). */
static void publish_order_event(const char *type, const uint8_t *payload, size_t len,
                                const char *aggregate, char *event_id)
{
	db_conn *c;
	assert_status(db_acquire(orders_pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(ev_publish(c, "orders", type, aggregate, payload, len, event_id),
	              RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(orders_pool, c);
}

static void publish_order_created(const char *order, const char *user, const char *total,
                                  const char *method, char *event_id)
{
	Panthera__Events__V1__OrderLine line = PANTHERA__EVENTS__V1__ORDER_LINE__INIT;
	Panthera__Events__V1__OrderLine *lines[1] = {&line};
	char product[37];
	svctest_new_id(product);
	line.product_id = product;
	line.sku = "TENT-1";
	line.name = "Tent";
	line.quantity = 1;
	line.unit_price = (char *)total;
	line.line_total = (char *)total;
	Panthera__Events__V1__OrderCreated ev = PANTHERA__EVENTS__V1__ORDER_CREATED__INIT;
	ev.order_id = (char *)order;
	ev.user_id = (char *)user;
	ev.items = lines;
	ev.n_items = 1;
	ev.total_amount = (char *)total;
	ev.currency = "USD";
	ev.payment_method_id = (char *)method;
	uint8_t buf[512];
	size_t len = panthera__events__v1__order_created__get_packed_size(&ev);
	assert_true(len <= sizeof(buf));
	panthera__events__v1__order_created__pack(&ev, buf);
	publish_order_event("panthera.events.v1.OrderCreated", buf, len, order, event_id);
}

/* Process until a batch handles nothing; the events handled. */
static unsigned drain_events(void)
{
	unsigned total = 0, n;
	do {
		assert_status(payments_process_events(&svc, &n), RPC_STATUS_OK);
		total += n;
	} while (n > 0);
	return total;
}

/* ---- Charge ---- */

static void test_charge_succeeds_with_its_event(void **state)
{
	(void)state;
	char order[37], user[37], key[37];
	svctest_new_id(order);
	svctest_new_id(user);
	svctest_new_id(key);
	int before = atomic_load(&provider_charges);
	rpc_reply *reply;
	assert_status(charge(order, user, "12.5", "USD", "pm_card_visa", key, &reply),
	              RPC_STATUS_OK);
	const Panthera__Payments__V1__Payment *p = PAY(charge_response)(reply);
	assert_non_null(p);
	assert_true(id_is_uuid(p->id));
	assert_string_equal(p->order_id, order);
	assert_string_equal(p->user_id, user);
	assert_string_equal(p->amount, "12.50");
	assert_string_equal(p->currency, "USD");
	assert_int_equal(p->status, ST(SUCCEEDED));
	assert_string_equal(p->failure_reason, "");
	assert_string_equal(p->refunded_amount, "0.00");
	assert_non_null(p->created_at);
	assert_true(p->created_at->seconds > 1700000000);
	assert_non_null(p->updated_at);
	assert_int_equal(atomic_load(&provider_charges), before + 1);
	char id[37];
	snprintf(id, sizeof(id), "%s", p->id);
	rpc_reply_free(reply);

	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", id), 1);
	assert_int_equal(events_of("panthera.events.v1.PaymentFailed", id), 0);
	size_t len;
	uint8_t *bytes = event_payload("panthera.events.v1.PaymentSucceeded", id, &len);
	Panthera__Events__V1__PaymentSucceeded *ev =
	    panthera__events__v1__payment_succeeded__unpack(NULL, len, bytes);
	assert_non_null(ev);
	assert_string_equal(ev->payment_id, id);
	assert_string_equal(ev->order_id, order);
	assert_string_equal(ev->user_id, user);
	assert_string_equal(ev->amount, "12.50");
	assert_string_equal(ev->currency, "USD");
	panthera__events__v1__payment_succeeded__free_unpacked(ev, NULL);
	free(bytes);
	/* no card data: only the method's token and the provider's reference */
	assert_int_equal(
	    sql_count("SELECT count(*) FROM payments.payments WHERE id = $1"
	              " AND payment_method_id = 'pm_card_visa'"
	              " AND provider = 'counting-test' AND provider_ref LIKE 'ch_test_%'",
	              id, NULL),
	    1);
}

static void test_declined_charges_are_failed_payments(void **state)
{
	(void)state;
	static const struct {
		const char *method, *reason;
	} cases[] = {
	    {"pm_card_declined", "card_declined"},
	    {"pm_card_insufficient_funds", "insufficient_funds"},
	    {"pm_card_unknown", "invalid_payment_method"},
	    {"tok_\xc3\xa9t\xc3\xa9", "invalid_payment_method"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char order[37], user[37], key[37];
		svctest_new_id(order);
		svctest_new_id(user);
		svctest_new_id(key);
		rpc_reply *reply;
		assert_status(charge(order, user, "99.99", "EUR", cases[i].method, key, &reply),
		              RPC_STATUS_OK);
		const Panthera__Payments__V1__Payment *p = PAY(charge_response)(reply);
		assert_int_equal(p->status, ST(FAILED));
		assert_string_equal(p->failure_reason, cases[i].reason);
		char id[37];
		snprintf(id, sizeof(id), "%s", p->id);
		rpc_reply_free(reply);
		assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", id), 0);
		size_t len;
		uint8_t *bytes = event_payload("panthera.events.v1.PaymentFailed", id, &len);
		Panthera__Events__V1__PaymentFailed *ev =
		    panthera__events__v1__payment_failed__unpack(NULL, len, bytes);
		assert_non_null(ev);
		assert_string_equal(ev->reason, cases[i].reason);
		assert_string_equal(ev->order_id, order);
		assert_string_equal(ev->amount, "99.99");
		assert_string_equal(ev->currency, "EUR");
		panthera__events__v1__payment_failed__free_unpacked(ev, NULL);
		free(bytes);
	}
	/* the second test card succeeds too */
	char user[37], id[37];
	svctest_new_id(user);
	charge_ok(user, "pm_card_mastercard", id);
	rpc_reply *reply;
	assert_status(get_payment(id, user, NULL, &reply), RPC_STATUS_OK);
	assert_int_equal(PAY(get_payment_response)(reply)->status, ST(SUCCEEDED));
	rpc_reply_free(reply);
}

static void test_charge_is_idempotent_on_its_key(void **state)
{
	(void)state;
	char order[37], user[37], key[64];
	svctest_new_id(order);
	svctest_new_id(user);
	snprintf(key, sizeof(key), "order-created-%s", order);
	int before = atomic_load(&provider_charges);
	rpc_reply *reply;
	assert_status(charge(order, user, "10.00", "USD", "pm_card_visa", key, &reply),
	              RPC_STATUS_OK);
	char first[37];
	snprintf(first, sizeof(first), "%s", PAY(charge_response)(reply)->id);
	rpc_reply_free(reply);
	/* again, even with other values: the first payment, nothing charged */
	assert_status(charge(order, user, "11.00", "USD", "pm_card_declined", key, &reply),
	              RPC_STATUS_OK);
	const Panthera__Payments__V1__Payment *p = PAY(charge_response)(reply);
	assert_string_equal(p->id, first);
	assert_string_equal(p->amount, "10.00");
	assert_int_equal(p->status, ST(SUCCEEDED));
	rpc_reply_free(reply);
	assert_int_equal(atomic_load(&provider_charges), before + 1);
	assert_int_equal(payments_of_order(order), 1);
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", first), 1);
}

typedef struct racer {
	const char *order, *user, *key;
	rpc_status st;
	char id[37];
} racer;

static void *charge_racer(void *arg)
{
	racer *r = arg;
	rpc_reply *reply;
	r->st = charge(r->order, r->user, "5.00", "USD", "pm_card_visa", r->key, &reply);
	if (r->st == RPC_STATUS_OK)
		snprintf(r->id, sizeof(r->id), "%s", PAY(charge_response)(reply)->id);
	rpc_reply_free(reply);
	return NULL;
}

/* A retried Charge racing its first attempt: one payment, one charge. */
static void test_concurrent_charges_with_one_key_charge_once(void **state)
{
	(void)state;
	char order[37], user[37], key[37];
	svctest_new_id(order);
	svctest_new_id(user);
	svctest_new_id(key);
	int before = atomic_load(&provider_charges);
	racer rs[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		rs[i] = (racer){order, user, key, RPC_STATUS_UNKNOWN, ""};
		assert_int_equal(pthread_create(&t[i], NULL, charge_racer, &rs[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL); /* all of them before any assertion */
	for (int i = 0; i < 8; i++) {
		assert_status(rs[i].st, RPC_STATUS_OK);
		assert_string_equal(rs[i].id, rs[0].id);
	}
	assert_int_equal(atomic_load(&provider_charges), before + 1);
	assert_int_equal(payments_of_order(order), 1);
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", rs[0].id), 1);
}

static void test_provider_down_is_unavailable_not_failed(void **state)
{
	(void)state;
	char order[37], user[37], key[37];
	svctest_new_id(order);
	svctest_new_id(user);
	svctest_new_id(key);
	atomic_store(&provider_down, 1);
	rpc_reply *reply;
	assert_status(charge(order, user, "10.00", "USD", "pm_card_visa", key, &reply),
	              RPC_STATUS_UNAVAILABLE);
	assert_string_equal(rpc_reply_error_reason(reply), "PAYMENT_PROVIDER_UNAVAILABLE");
	rpc_reply_free(reply);
	atomic_store(&provider_down, 0);
	assert_int_equal(payments_of_order(order), 0); /* nothing recorded */
	/* a provider failing otherwise: INTERNAL, nothing recorded either */
	assert_status(charge(order, user, "10.00", "USD", "pm_provider_bug", key, NULL),
	              RPC_STATUS_INTERNAL);
	assert_int_equal(payments_of_order(order), 0);
	/* the same key once the provider is back: charged now */
	assert_status(charge(order, user, "10.00", "USD", "pm_card_visa", key, &reply),
	              RPC_STATUS_OK);
	assert_int_equal(PAY(charge_response)(reply)->status, ST(SUCCEEDED));
	rpc_reply_free(reply);
	assert_int_equal(payments_of_order(order), 1);
}

/* ---- Refund ---- */

static void test_refund_whole_amount_once(void **state)
{
	(void)state;
	char user[37], id[37];
	svctest_new_id(user);
	charge_ok(user, "pm_card_visa", id);
	int before = atomic_load(&provider_refunds);
	rpc_reply *reply;
	assert_status(refund(id, &reply), RPC_STATUS_OK);
	const Panthera__Payments__V1__Payment *p = PAY(refund_response)(reply);
	assert_string_equal(p->id, id);
	assert_int_equal(p->status, ST(REFUNDED));
	assert_string_equal(p->refunded_amount, "20.00");
	assert_string_equal(p->amount, "20.00");
	rpc_reply_free(reply);
	/* twice: returned as it is, nothing refunded again, no second event */
	assert_status(refund(id, &reply), RPC_STATUS_OK);
	assert_int_equal(PAY(refund_response)(reply)->status, ST(REFUNDED));
	rpc_reply_free(reply);
	assert_int_equal(atomic_load(&provider_refunds), before + 1);
	assert_int_equal(events_of("panthera.events.v1.PaymentRefunded", id), 1);
	size_t len;
	uint8_t *bytes = event_payload("panthera.events.v1.PaymentRefunded", id, &len);
	Panthera__Events__V1__PaymentRefunded *ev =
	    panthera__events__v1__payment_refunded__unpack(NULL, len, bytes);
	assert_non_null(ev);
	assert_string_equal(ev->payment_id, id);
	assert_string_equal(ev->user_id, user);
	assert_string_equal(ev->amount, "20.00");
	assert_string_equal(ev->currency, "USD");
	panthera__events__v1__payment_refunded__free_unpacked(ev, NULL);
	free(bytes);
	/* the owner sees it refunded */
	assert_status(get_payment(id, user, NULL, &reply), RPC_STATUS_OK);
	assert_int_equal(PAY(get_payment_response)(reply)->status, ST(REFUNDED));
	rpc_reply_free(reply);
}

static void test_refund_refusals(void **state)
{
	(void)state;
	char user[37], failed[37], ok[37], unknown[37];
	svctest_new_id(user);
	svctest_new_id(unknown);
	charge_ok(user, "pm_card_declined", failed);
	charge_ok(user, "pm_card_visa", ok);
	rpc_reply *reply;
	assert_status(refund(failed, &reply), RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "PAYMENT_NOT_SUCCEEDED");
	assert_non_null(strstr(rpc_reply_message(reply), "FAILED"));
	rpc_reply_free(reply);
	assert_status(refund(unknown, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PAYMENT_NOT_FOUND");
	rpc_reply_free(reply);
	assert_status(refund("not-a-uuid", &reply), RPC_STATUS_INVALID_ARGUMENT);
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	assert_non_null(d);
	assert_string_equal(d->bad_request->field_violations[0]->field, "payment_id");
	rpc_reply_free(reply);
	/* provider down: UNAVAILABLE, the payment stays SUCCEEDED */
	atomic_store(&provider_down, 1);
	assert_status(refund(ok, NULL), RPC_STATUS_UNAVAILABLE);
	atomic_store(&provider_down, 0);
	assert_int_equal(events_of("panthera.events.v1.PaymentRefunded", ok), 0);
	assert_status(get_payment(ok, user, NULL, &reply), RPC_STATUS_OK);
	assert_int_equal(PAY(get_payment_response)(reply)->status, ST(SUCCEEDED));
	rpc_reply_free(reply);
	assert_status(refund(ok, NULL), RPC_STATUS_OK);
	/* the provider refuses (it does not know the charge): SUCCEEDED still */
	char unknown_ref[37];
	charge_ok(user, "pm_card_visa", unknown_ref);
	sql_run(pool, "UPDATE payments.payments SET provider_ref = 'ch_elsewhere' WHERE id = $1",
	        unknown_ref);
	assert_status(refund(unknown_ref, &reply), RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "REFUND_REFUSED");
	rpc_reply_free(reply);
	assert_int_equal(events_of("panthera.events.v1.PaymentRefunded", unknown_ref), 0);
	assert_status(get_payment(unknown_ref, user, NULL, &reply), RPC_STATUS_OK);
	assert_int_equal(PAY(get_payment_response)(reply)->status, ST(SUCCEEDED));
	rpc_reply_free(reply);
}

/* ---- GetPayment ---- */

static void test_get_payment_owner_or_admin_only(void **state)
{
	(void)state;
	char owner[37], other[37], id[37], unknown[37];
	svctest_new_id(owner);
	svctest_new_id(other);
	svctest_new_id(unknown);
	charge_ok(owner, "pm_card_visa", id);
	rpc_reply *reply;
	assert_status(get_payment(id, owner, "USER", &reply), RPC_STATUS_OK);
	const Panthera__Payments__V1__Payment *p = PAY(get_payment_response)(reply);
	assert_string_equal(p->id, id);
	assert_string_equal(p->user_id, owner);
	assert_string_equal(p->amount, "20.00");
	rpc_reply_free(reply);
	/* someone else: as if it did not exist */
	assert_status(get_payment(id, other, "USER", &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PAYMENT_NOT_FOUND");
	rpc_reply_free(reply);
	/* an admin sees any payment */
	assert_status(get_payment(id, other, "USER, ADMIN", &reply), RPC_STATUS_OK);
	assert_string_equal(PAY(get_payment_response)(reply)->user_id, owner);
	rpc_reply_free(reply);
	/* roles without an identity grant nothing; "ADMINS" is not ADMIN */
	assert_status(get_payment(id, NULL, "ADMIN", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(get_payment(id, "not-a-uuid", "ADMIN", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(get_payment(id, other, "ADMINS", NULL), RPC_STATUS_NOT_FOUND);
	assert_status(get_payment(unknown, owner, NULL, NULL), RPC_STATUS_NOT_FOUND);
	assert_status(get_payment(unknown, other, "ADMIN", NULL), RPC_STATUS_NOT_FOUND);
	assert_status(get_payment("12", owner, NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
}

/* ---- refused input ---- */

static void expect_field(rpc_status st, rpc_reply *reply, const char *field)
{
	assert_status(st, RPC_STATUS_INVALID_ARGUMENT);
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	assert_non_null(d);
	assert_non_null(d->bad_request);
	int found = 0;
	for (size_t i = 0; i < d->bad_request->n_field_violations; i++)
		found |= strcmp(d->bad_request->field_violations[i]->field, field) == 0;
	if (!found)
		fail_msg("no violation of %s in: %s", field, rpc_reply_message(reply));
	rpc_reply_free(reply);
}

static void test_bad_input_is_refused_with_the_field(void **state)
{
	(void)state;
	char order[37], user[37], key[37];
	svctest_new_id(order);
	svctest_new_id(user);
	svctest_new_id(key);
	int before = atomic_load(&provider_charges);
	rpc_reply *r;
	rpc_status st;
	st = charge("'); DROP TABLE payments; --", user, "1.00", "USD", "pm_card_visa", key, &r);
	expect_field(st, r, "order_id");
	st = charge(order, "", "1.00", "USD", "pm_card_visa", key, &r);
	expect_field(st, r, "user_id");
	static const char *const amounts[] = {"0.00",           "0",  "-1.00", "1.234", "abc",  "",
	                                      "12345678901.00", "1.", ".50",   "1,00",  " 1.00"};
	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		st = charge(order, user, amounts[i], "USD", "pm_card_visa", key, &r);
		expect_field(st, r, "amount");
	}
	st = charge(order, user, "1.00", "usd", "pm_card_visa", key, &r);
	expect_field(st, r, "currency");
	st = charge(order, user, "1.00", "US", "pm_card_visa", key, &r);
	expect_field(st, r, "currency");
	st = charge(order, user, "1.00", "USD", "", key, &r);
	expect_field(st, r, "payment_method_id");
	st = charge(order, user, "1.00", "USD", "pm_card\nvisa", key, &r);
	expect_field(st, r, "payment_method_id");
	st = charge(order, user, "1.00", "USD", "pm_card_visa", "", &r);
	expect_field(st, r, "idempotency_key");
	char long_key[300];
	memset(long_key, 'k', 256);
	long_key[256] = '\0';
	st = charge(order, user, "1.00", "USD", "pm_card_visa", long_key, &r);
	expect_field(st, r, "idempotency_key");
	long_key[255] = '\0'; /* 255 is allowed */
	assert_status(charge(order, user, "1.00", "USD", "pm_card_visa", long_key, NULL),
	              RPC_STATUS_OK);
	/* every refused field at once */
	assert_status(charge("x", "y", "z", "w", "", "", &r), RPC_STATUS_INVALID_ARGUMENT);
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(r);
	assert_int_equal(d->bad_request->n_field_violations, 6);
	rpc_reply_free(r);
	/* nothing but the valid one reached the provider */
	assert_int_equal(atomic_load(&provider_charges), before + 1);
	assert_int_equal(payments_of_order(order), 1);
	/* the largest amount numeric(12,2) holds */
	char order2[37], key2[37];
	svctest_new_id(order2);
	svctest_new_id(key2);
	assert_status(charge(order2, user, "9999999999.99", "USD", "pm_card_visa", key2, &r),
	              RPC_STATUS_OK);
	assert_string_equal(PAY(charge_response)(r)->amount, "9999999999.99");
	rpc_reply_free(r);
	/* CreatePayment: caller, order id, method, key */
	st = create_payment("nope", "pm_card_visa", user, NULL, &r);
	expect_field(st, r, "order_id");
	st = create_payment(order, "", user, NULL, &r);
	expect_field(st, r, "payment_method_id");
	st = create_payment(order, "pm_card_visa", user, long_key + 0, &r); /* 255: fine */
	assert_status(st, RPC_STATUS_NOT_FOUND);                            /* no such order */
	rpc_reply_free(r);
	long_key[255] = 'k';
	st = create_payment(order, "pm_card_visa", user, long_key, &r);
	expect_field(st, r, "Idempotency-Key");
	assert_status(create_payment(order, "pm_card_visa", NULL, NULL, NULL),
	              RPC_STATUS_UNAUTHENTICATED);
}

/* ---- CreatePayment ---- */

static void test_create_payment_resumes_and_charges(void **state)
{
	(void)state;
	char user[37], order[37];
	svctest_new_id(user);
	add_failed_order(order, user, "45.00", 0);
	int resumed = atomic_load(&resumes), charged = atomic_load(&provider_charges);
	rpc_reply *reply;
	assert_status(create_payment(order, "pm_card_visa", user, NULL, &reply), RPC_STATUS_OK);
	const Panthera__Payments__V1__Payment *p = PAY(create_payment_response)(reply);
	assert_int_equal(p->status, ST(SUCCEEDED));
	assert_string_equal(p->order_id, order);
	assert_string_equal(p->user_id, user);
	assert_string_equal(p->amount, "45.00"); /* the order's total, from orders */
	assert_string_equal(p->currency, "EUR");
	char id[37];
	snprintf(id, sizeof(id), "%s", p->id);
	rpc_reply_free(reply);
	assert_int_equal(atomic_load(&resumes), resumed + 1);
	assert_int_equal(atomic_load(&provider_charges), charged + 1);
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", id), 1);
	/* the order is PENDING_PAYMENT now: orders refuses, and so do we,
	 * with its reason */
	assert_status(create_payment(order, "pm_card_visa", user, NULL, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "ORDER_NOT_PAYABLE");
	assert_non_null(strstr(rpc_reply_message(reply), "PAYMENT_FAILED"));
	rpc_reply_free(reply);
	assert_int_equal(payments_of_order(order), 1);
	/* someone else's order: NOT_FOUND, passed on */
	char other[37];
	svctest_new_id(other);
	set_order_failed_again(order);
	assert_status(create_payment(order, "pm_card_visa", other, NULL, &reply),
	              RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "ORDER_NOT_FOUND");
	rpc_reply_free(reply);
	/* a declined card: a FAILED payment with its event, not an error */
	assert_status(create_payment(order, "pm_card_declined", user, NULL, &reply), RPC_STATUS_OK);
	p = PAY(create_payment_response)(reply);
	assert_int_equal(p->status, ST(FAILED));
	assert_string_equal(p->failure_reason, "card_declined");
	snprintf(id, sizeof(id), "%s", p->id);
	rpc_reply_free(reply);
	assert_int_equal(events_of("panthera.events.v1.PaymentFailed", id), 1);
	assert_int_equal(payments_of_order(order), 2);
	/* stock short when resuming: FAILED_PRECONDITION INSUFFICIENT_STOCK */
	char short_order[37];
	add_failed_order(short_order, user, "10.00", 1);
	charged = atomic_load(&provider_charges);
	assert_status(create_payment(short_order, "pm_card_visa", user, NULL, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "INSUFFICIENT_STOCK");
	rpc_reply_free(reply);
	assert_int_equal(atomic_load(&provider_charges), charged);
	assert_int_equal(payments_of_order(short_order), 0);
}

static void test_create_payment_idempotency_key_replays(void **state)
{
	(void)state;
	char user[37], order[37], other_user[37], other_order[37];
	svctest_new_id(user);
	svctest_new_id(other_user);
	add_failed_order(order, user, "19.99", 0);
	add_failed_order(other_order, other_user, "5.00", 0);
	int resumed = atomic_load(&resumes), charged = atomic_load(&provider_charges);
	rpc_reply *reply;
	assert_status(create_payment(order, "pm_card_visa", user, "key-1", &reply), RPC_STATUS_OK);
	char first[37];
	snprintf(first, sizeof(first), "%s", PAY(create_payment_response)(reply)->id);
	rpc_reply_free(reply);
	/* the same key from the same user: the first result, nothing new */
	for (int i = 0; i < 2; i++) {
		assert_status(create_payment(order, "pm_card_visa", user, "key-1", &reply),
		              RPC_STATUS_OK);
		const Panthera__Payments__V1__Payment *p = PAY(create_payment_response)(reply);
		assert_string_equal(p->id, first);
		assert_string_equal(p->amount, "19.99");
		assert_int_equal(p->status, ST(SUCCEEDED));
		rpc_reply_free(reply);
	}
	assert_int_equal(atomic_load(&resumes), resumed + 1);
	assert_int_equal(atomic_load(&provider_charges), charged + 1);
	assert_int_equal(payments_of_order(order), 1);
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", first), 1);
	/* the same key from another user is another request */
	assert_status(create_payment(other_order, "pm_card_visa", other_user, "key-1", &reply),
	              RPC_STATUS_OK);
	assert_string_not_equal(PAY(create_payment_response)(reply)->id, first);
	rpc_reply_free(reply);
	/* a refused request records nothing: the key still works afterwards */
	char later[37];
	add_failed_order(later, user, "7.00", 0);
	set_order_failed_again(order);
	assert_status(create_payment(later, "pm_card_visa", user, "key-2", &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
	char unknown[37];
	svctest_new_id(unknown);
	assert_status(create_payment(unknown, "pm_card_visa", user, "key-3", NULL),
	              RPC_STATUS_NOT_FOUND);
	assert_status(create_payment(order, "pm_card_visa", user, "key-3", &reply), RPC_STATUS_OK);
	assert_string_equal(PAY(create_payment_response)(reply)->order_id, order);
	rpc_reply_free(reply);
	/* after 24 hours the key replays no more */
	sql_run(pool,
	        "UPDATE payments.idempotency_keys SET created_at = now() - interval '25 hours'"
	        " WHERE key = $1",
	        "key-1");
	set_order_failed_again(order);
	assert_status(create_payment(order, "pm_card_visa", user, "key-1", &reply), RPC_STATUS_OK);
	assert_string_not_equal(PAY(create_payment_response)(reply)->id, first);
	rpc_reply_free(reply);
}

/* The provider down during CreatePayment: UNAVAILABLE, nothing recorded,
 * and the order was left PENDING_PAYMENT by ResumePayment. The retry is the
 * same attempt (the same key to OrderService, which takes it again, and to
 * the provider), so the buyer can pay; once a payment is recorded, the
 * next attempt has a key of its own and the still pending order refuses
 * it. */
static int provider_up(void **state)
{
	(void)state;
	atomic_store(&provider_down, 0); /* also after a failed assertion */
	return 0;
}

static void test_create_payment_after_provider_down_pays_on_retry(void **state)
{
	(void)state;
	char user[37], order[37], key[128], first[128];
	svctest_new_id(user);
	add_failed_order(order, user, "12.00", 0);
	int charged = atomic_load(&provider_charges);
	atomic_store(&provider_down, 1);
	rpc_reply *reply;
	assert_status(create_payment(order, "pm_card_visa", user, NULL, &reply),
	              RPC_STATUS_UNAVAILABLE);
	assert_string_equal(rpc_reply_error_reason(reply), "PAYMENT_PROVIDER_UNAVAILABLE");
	rpc_reply_free(reply);
	assert_int_equal(payments_of_order(order), 0);
	Panthera__Orders__V1__OrderStatus st;
	order_status(order, &st, first);
	assert_int_equal(st, PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT);
	char want[128];
	snprintf(want, sizeof(want), "CreatePayment:%s:0", order);
	assert_string_equal(first, want);
	/* still down: the same attempt, still UNAVAILABLE (not ORDER_NOT_PAYABLE) */
	assert_status(create_payment(order, "pm_card_visa", user, NULL, NULL),
	              RPC_STATUS_UNAVAILABLE);
	atomic_store(&provider_down, 0);
	/* back: the retry pays, under the first attempt's key */
	assert_status(create_payment(order, "pm_card_mastercard", user, "retry-key", &reply),
	              RPC_STATUS_OK);
	const Panthera__Payments__V1__Payment *p = PAY(create_payment_response)(reply);
	assert_int_equal(p->status, ST(SUCCEEDED));
	assert_string_equal(p->amount, "12.00");
	rpc_reply_free(reply);
	assert_int_equal(atomic_load(&provider_charges), charged + 1);
	assert_int_equal(payments_of_order(order), 1);
	assert_int_equal(sql_count("SELECT count(*) FROM payments.payments WHERE order_id = $1"
	                           " AND idempotency_key = $2",
	                           order, first),
	                 1);
	/* the order waits for that payment's event: another attempt (a new
	 * key) is refused, and nothing is charged */
	assert_status(create_payment(order, "pm_card_visa", user, NULL, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "ORDER_NOT_PAYABLE");
	rpc_reply_free(reply);
	pthread_mutex_lock(&orders_lock);
	snprintf(key, sizeof(key), "%s", last_resume_key);
	pthread_mutex_unlock(&orders_lock);
	snprintf(want, sizeof(want), "CreatePayment:%s:1", order);
	assert_string_equal(key, want);
	assert_int_equal(atomic_load(&provider_charges), charged + 1);
	assert_int_equal(payments_of_order(order), 1);
}

/* payments_sweep deletes CreatePayment's Idempotency-Keys past their 24
 * hours, keeps younger ones and every payment. */
static void test_sweep_forgets_expired_idempotency_keys_only(void **state)
{
	(void)state;
	char user[37], old_order[37], young_order[37];
	svctest_new_id(user);
	add_failed_order(old_order, user, "4.00", 0);
	add_failed_order(young_order, user, "5.00", 0);
	assert_status(create_payment(old_order, "pm_card_visa", user, "sweep-old", NULL),
	              RPC_STATUS_OK);
	assert_status(create_payment(young_order, "pm_card_visa", user, "sweep-young", NULL),
	              RPC_STATUS_OK);
	sql_run(pool,
	        "UPDATE payments.idempotency_keys SET created_at = now() - interval '24 hours'"
	        " - interval '1 minute' WHERE key = $1",
	        "sweep-old");
	sql_run(pool,
	        "UPDATE payments.idempotency_keys SET created_at = now() - interval '23 hours'"
	        " WHERE key = $1",
	        "sweep-young");
	long deleted = -1;
	assert_status(payments_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_true(deleted >= 1); /* other tests age keys of their own */
	assert_int_equal(sql_count("SELECT count(*) FROM payments.idempotency_keys"
	                           " WHERE user_id = $1 AND key = $2",
	                           user, "sweep-old"),
	                 0);
	assert_int_equal(sql_count("SELECT count(*) FROM payments.idempotency_keys"
	                           " WHERE user_id = $1 AND key = $2",
	                           user, "sweep-young"),
	                 1);
	assert_int_equal(sql_count("SELECT count(*) FROM payments.idempotency_keys"
	                           " WHERE created_at <= now() - interval '24 hours'",
	                           NULL, NULL),
	                 0);
	assert_int_equal(payments_of_order(old_order), 1);
	assert_int_equal(payments_of_order(young_order), 1);
	assert_status(payments_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_int_equal(deleted, 0);
	assert_status(payments_sweep(NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
}

typedef struct create_racer {
	const char *order, *user;
	rpc_status st;
	char id[37];
} create_racer;

static void *create_racer_main(void *arg)
{
	create_racer *r = arg;
	rpc_reply *reply;
	r->st = create_payment(r->order, "pm_card_visa", r->user, "double-click", &reply);
	if (r->st == RPC_STATUS_OK)
		snprintf(r->id, sizeof(r->id), "%s", PAY(create_payment_response)(reply)->id);
	rpc_reply_free(reply);
	return NULL;
}

/* A double click: two requests with one key at once make one payment. */
static void test_create_payment_same_key_at_once(void **state)
{
	(void)state;
	char user[37], order[37];
	svctest_new_id(user);
	add_failed_order(order, user, "3.00", 0);
	create_racer rs[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		rs[i] = (create_racer){order, user, RPC_STATUS_UNKNOWN, ""};
		assert_int_equal(pthread_create(&t[i], NULL, create_racer_main, &rs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		assert_status(rs[i].st, RPC_STATUS_OK);
		assert_string_equal(rs[i].id, rs[0].id);
	}
	assert_int_equal(payments_of_order(order), 1);
}

static void test_create_payment_without_orders_is_unavailable(void **state)
{
	(void)state;
	char user[37], order[37];
	svctest_new_id(user);
	add_failed_order(order, user, "3.00", 0);
	svc.orders = NULL; /* no call is running: safe to change here */
	rpc_reply *reply;
	assert_status(create_payment(order, "pm_card_visa", user, NULL, &reply),
	              RPC_STATUS_UNAVAILABLE);
	rpc_reply_free(reply);
	svc.orders = orders_ch;
	assert_int_equal(payments_of_order(order), 0);
}

/* ---- the saga consumer ---- */

static void test_order_created_is_charged_once(void **state)
{
	(void)state;
	drain_events();
	char order[37], user[37], event_id[37];
	svctest_new_id(order);
	svctest_new_id(user);
	int charged = atomic_load(&provider_charges);
	publish_order_created(order, user, "30.00", "pm_card_visa", event_id);
	assert_true(drain_events() >= 1);
	assert_int_equal(payments_of_order(order), 1);
	char id[37], status[16];
	payment_of_order(order, id, status);
	assert_string_equal(status, "SUCCEEDED");
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", id), 1);
	size_t len;
	uint8_t *bytes = event_payload("panthera.events.v1.PaymentSucceeded", id, &len);
	Panthera__Events__V1__PaymentSucceeded *ev =
	    panthera__events__v1__payment_succeeded__unpack(NULL, len, bytes);
	assert_non_null(ev);
	assert_string_equal(ev->order_id, order);
	assert_string_equal(ev->user_id, user);
	assert_string_equal(ev->amount, "30.00");
	assert_string_equal(ev->currency, "USD");
	panthera__events__v1__payment_succeeded__free_unpacked(ev, NULL);
	free(bytes);
	/* processed again: nothing more */
	assert_int_equal(drain_events(), 0);
	/* the same OrderCreated published twice (another event id) */
	publish_order_created(order, user, "30.00", "pm_card_visa", NULL);
	assert_true(drain_events() >= 1);
	/* the same event delivered again: its processed record lost, the
	 * cursor back at the start */
	sql_run(pool, "DELETE FROM payments.processed_events WHERE event_id = $1", event_id);
	sql_run(pool,
	        "UPDATE payments.event_cursors SET last_txid = '0', last_seq = 0"
	        " WHERE consumer = $1",
	        PAYMENTS_CONSUMER_ORDER_CREATED);
	assert_true(drain_events() >= 1);
	assert_int_equal(payments_of_order(order), 1);
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", id), 1);
	assert_int_equal(atomic_load(&provider_charges), charged + 1);
	/* the payment is readable by its payer */
	rpc_reply *reply;
	assert_status(get_payment(id, user, NULL, &reply), RPC_STATUS_OK);
	assert_string_equal(PAY(get_payment_response)(reply)->amount, "30.00");
	rpc_reply_free(reply);
}

static void test_order_created_declined_and_other_events(void **state)
{
	(void)state;
	drain_events();
	char order[37], user[37], bad_method_order[37];
	svctest_new_id(order);
	svctest_new_id(user);
	svctest_new_id(bad_method_order);
	/* events the consumer does not act on */
	publish_order_event("panthera.events.v1.OrderPaid", (const uint8_t *)"\x0a\x01x", 3, order,
	                    NULL);
	publish_order_event("test.v1.Unknown", (const uint8_t *)"junk", 4, order, NULL);
	publish_order_created(order, user, "8.25", "pm_card_insufficient_funds", NULL);
	publish_order_created(bad_method_order, user, "1.00", "", NULL);
	assert_true(drain_events() >= 4);
	assert_int_equal(payments_of_order(order), 1);
	char id[37], status[16];
	payment_of_order(order, id, status);
	assert_string_equal(status, "FAILED");
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", id), 0);
	size_t len;
	uint8_t *bytes = event_payload("panthera.events.v1.PaymentFailed", id, &len);
	Panthera__Events__V1__PaymentFailed *ev =
	    panthera__events__v1__payment_failed__unpack(NULL, len, bytes);
	assert_non_null(ev);
	assert_string_equal(ev->reason, "insufficient_funds");
	assert_string_equal(ev->order_id, order);
	assert_string_equal(ev->amount, "8.25");
	panthera__events__v1__payment_failed__free_unpacked(ev, NULL);
	free(bytes);
	payment_of_order(bad_method_order, id, status);
	assert_string_equal(status, "FAILED");
	assert_int_equal(sql_count("SELECT count(*) FROM payments.payments WHERE id = $1"
	                           " AND failure_reason = 'invalid_payment_method'",
	                           id, NULL),
	                 1);
}

static void test_consumer_retries_when_provider_is_down(void **state)
{
	(void)state;
	drain_events();
	char order[37], user[37], event_id[37];
	svctest_new_id(order);
	svctest_new_id(user);
	atomic_store(&provider_down, 1);
	publish_order_created(order, user, "15.00", "pm_card_visa", event_id);
	unsigned n;
	assert_status(payments_process_events(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_int_equal(payments_of_order(order), 0); /* not a FAILED payment */
	assert_int_equal(sql_count("SELECT count(*) FROM payments.event_attempts"
	                           " WHERE event_id = $1 AND consumer = $2",
	                           event_id, PAYMENTS_CONSUMER_ORDER_CREATED),
	                 1);
	atomic_store(&provider_down, 0);
	/* skip the backoff rather than sleeping through it */
	sql_run(pool,
	        "UPDATE payments.event_attempts SET next_attempt_at = now() WHERE event_id = $1",
	        event_id);
	assert_true(drain_events() >= 1);
	char id[37], status[16];
	payment_of_order(order, id, status);
	assert_string_equal(status, "SUCCEEDED");
}

/* A long outage: the event is parked after its attempts, and AdminService's
 * replay (through payments_consumer_open) charges it once the provider is
 * back. */
static void test_parked_order_created_is_replayed(void **state)
{
	(void)state;
	drain_events();
	ev_consumer *admin;
	assert_status(payments_consumer_open(&svc, &admin), RPC_STATUS_OK);
	long parked;
	assert_status(
	    ev_dead_letter_count(pool, "payments", PAYMENTS_CONSUMER_ORDER_CREATED, &parked),
	    RPC_STATUS_OK);
	char order[37], user[37], event_id[37];
	svctest_new_id(order);
	svctest_new_id(user);
	atomic_store(&provider_down, 1);
	publish_order_created(order, user, "4.00", "pm_card_visa", event_id);
	long backlog;
	assert_status(ev_consumer_backlog(admin, &backlog), RPC_STATUS_OK);
	assert_int_equal(backlog, 1);
	unsigned n = 0;
	for (int i = 0; i < 20 && n == 0; i++) {
		/* each attempt at once, rather than after its backoff */
		sql_run(
		    pool,
		    "UPDATE payments.event_attempts SET next_attempt_at = now() WHERE event_id = $1",
		    event_id);
		assert_status(payments_process_events(&svc, &n), RPC_STATUS_OK);
	}
	assert_int_equal(n, 1); /* parked */
	long now_parked;
	assert_status(
	    ev_dead_letter_count(pool, "payments", PAYMENTS_CONSUMER_ORDER_CREATED, &now_parked),
	    RPC_STATUS_OK);
	assert_int_equal(now_parked, parked + 1);
	assert_int_equal(payments_of_order(order), 0);
	atomic_store(&provider_down, 0);
	assert_status(ev_replay_dead_letter(admin, event_id), RPC_STATUS_OK);
	char id[37], status[16];
	payment_of_order(order, id, status);
	assert_string_equal(status, "SUCCEEDED");
	assert_int_equal(events_of("panthera.events.v1.PaymentSucceeded", id), 1);
	assert_status(ev_replay_dead_letter(admin, event_id), RPC_STATUS_NOT_FOUND);
	ev_consumer_close(admin);
	payments_service none = {.pool = pool};
	assert_status(payments_consumer_open(&none, &admin), RPC_STATUS_FAILED_PRECONDITION);
	assert_null(admin);
}

static void test_malformed_order_created_charges_nothing(void **state)
{
	(void)state;
	drain_events();
	char order[37], event_id[37];
	svctest_new_id(order);
	publish_order_event("panthera.events.v1.OrderCreated", (const uint8_t *)"\xff\xff\xff", 3,
	                    order, event_id);
	unsigned n;
	assert_status(payments_process_events(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0); /* failed, to be tried again, then parked */
	assert_int_equal(
	    sql_count("SELECT count(*) FROM payments.event_attempts WHERE event_id = $1", event_id,
	              NULL),
	    1);
	assert_int_equal(payments_of_order(order), 0);
	/* an OrderCreated whose amount is not money: not charged either */
	char bad[37], user[37], bad_event[37];
	svctest_new_id(bad);
	svctest_new_id(user);
	sql_run(orders_pool, "DELETE FROM orders.outbox WHERE id = $1", event_id);
	sql_run(pool, "DELETE FROM payments.event_attempts WHERE event_id = $1", event_id);
	publish_order_created(bad, user, "12.345", "pm_card_visa", bad_event);
	assert_status(payments_process_events(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_int_equal(payments_of_order(bad), 0);
	/* out of the way of the tests that follow */
	sql_run(orders_pool, "DELETE FROM orders.outbox WHERE id = $1", bad_event);
	sql_run(pool, "DELETE FROM payments.event_attempts WHERE event_id = $1", bad_event);
	assert_int_equal(drain_events(), 0);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_consumer_thread_charges_and_stops(void **state)
{
	(void)state;
	drain_events();
	assert_status(payments_start(&svc), RPC_STATUS_OK);
	assert_status(payments_start(&svc), RPC_STATUS_FAILED_PRECONDITION);
	char order[37], user[37];
	svctest_new_id(order);
	svctest_new_id(user);
	publish_order_created(order, user, "60.00", "pm_card_mastercard", NULL);
	int64_t deadline = now_ms() + 10000;
	while (payments_of_order(order) == 0 && now_ms() < deadline) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL); /* polling an outcome, with a deadline */
	}
	assert_int_equal(payments_of_order(order), 1);
	/* a tool's batch while the thread runs is harmless */
	unsigned n;
	assert_status(payments_process_events(&svc, &n), RPC_STATUS_OK);
	int64_t t0 = now_ms();
	payments_stop(&svc);
	assert_true(now_ms() - t0 < 2000);
	payments_stop(&svc); /* twice: harmless */
	assert_null(svc.worker);
	assert_int_equal(payments_of_order(order), 1);
	/* a service without an orders database has no consumer */
	payments_service none = {.pool = pool};
	assert_status(payments_process_events(&none, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_status(payments_start(&none), RPC_STATUS_OK);
	assert_null(none.worker);
	payments_stop(&none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_charge_succeeds_with_its_event),
	    cmocka_unit_test(test_declined_charges_are_failed_payments),
	    cmocka_unit_test(test_charge_is_idempotent_on_its_key),
	    cmocka_unit_test(test_concurrent_charges_with_one_key_charge_once),
	    cmocka_unit_test(test_provider_down_is_unavailable_not_failed),
	    cmocka_unit_test_teardown(test_create_payment_after_provider_down_pays_on_retry,
	                              provider_up),
	    cmocka_unit_test(test_refund_whole_amount_once),
	    cmocka_unit_test(test_refund_refusals),
	    cmocka_unit_test(test_get_payment_owner_or_admin_only),
	    cmocka_unit_test(test_bad_input_is_refused_with_the_field),
	    cmocka_unit_test(test_create_payment_resumes_and_charges),
	    cmocka_unit_test(test_create_payment_idempotency_key_replays),
	    cmocka_unit_test(test_sweep_forgets_expired_idempotency_keys_only),
	    cmocka_unit_test(test_create_payment_same_key_at_once),
	    cmocka_unit_test(test_create_payment_without_orders_is_unavailable),
	    cmocka_unit_test(test_order_created_is_charged_once),
	    cmocka_unit_test(test_order_created_declined_and_other_events),
	    cmocka_unit_test(test_consumer_retries_when_provider_is_down),
	    cmocka_unit_test(test_parked_order_created_is_replayed),
	    cmocka_unit_test(test_malformed_order_created_charges_nothing),
	    cmocka_unit_test(test_consumer_thread_charges_and_stops),
	};
	return cmocka_run_group_tests_name("payments", tests, setup, teardown);
}
