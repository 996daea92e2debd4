/*
 * test_analytics.c - AnalyticsService through its generated client stubs,
 * over the RPC runtime, on a real PostgreSQL, fed by a real orders outbox
 * (ev_outbox_setup + ev_publish into schema "orders", each event's time set
 * by the test): paid and refunded orders summed per UTC day, refunds on
 * their own day, top products, redelivery and repeated events counted once,
 * a refund seen before its payment, other event types ignored, malformed
 * events parked, the rebuild from the log, the background thread, the
 * admin check and refused ranges.
 *
 * Each test works in a year of its own, so the tests share one outbox and
 * one set of aggregates without seeing each other's sales.
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
#include "../support/svctest.h"
#include "analytics.h"
#include "analytics_values.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/rpc/v1/rpc.pb-c.h"
#include "panthera/text.h"

#define AN(x)    panthera_analytics_v1_analytics_service_##x
#define ADMIN_ID "6f1c2a44-8a1e-4c59-9a57-0d7e3f1b2c3d"

static pgtest pg;
static db_pool *pool;   /* analytics' own database, search_path "analytics" */
static db_pool *orders; /* the producer's: orders.outbox */
static analytics_service svc;
static rpc_server *srv;
static rpc_channel *ch;

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	db_pool_opts oo = {.url = pg.url, .size = 4};
	if (svctest_pool(&pool, pg.url, "analytics", 6, 1) != RPC_STATUS_OK ||
	    db_pool_open(&orders, &oo) != RPC_STATUS_OK ||
	    ev_outbox_setup(orders, "orders") != RPC_STATUS_OK)
		return -1;
	svc.pool = pool;
	svc.orders_events = orders;
	if (analytics_service_init(&svc) != RPC_STATUS_OK)
		return -1;
	if (svctest_server(&srv, 4, 0) != RPC_STATUS_OK ||
	    analytics_service_register(srv, &svc) != RPC_STATUS_OK ||
	    svctest_start(srv, "inproc://analytics-test", &ch) != RPC_STATUS_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	analytics_service_fini(&svc);
	db_pool_close(orders);
	db_pool_close(pool);
	pgtest_destroy(&pg);
	return 0;
}

/* ---- the producer's side ---- */

static void sql_ok(db_pool *p, const char *sql)
{
	db_conn *c;
	assert_status(db_acquire(p, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, 0, NULL, NULL), RPC_STATUS_OK);
	db_release(p, c);
}

/* Write one event into orders.outbox as the orders service would, in its
 * own transaction, then date it `at` (any RFC 3339 time). */
static void publish(const char *type, const char *aggregate, const uint8_t *payload, size_t len,
                    const char *at)
{
	db_conn *c;
	char id[37];
	assert_status(db_acquire(orders, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(ev_publish(c, "orders", type, aggregate, payload, len, id), RPC_STATUS_OK);
	const char *p[2] = {id, at};
	assert_status(db_exec(c, NULL,
	                      "UPDATE orders.outbox SET created_at = $2::timestamptz WHERE id = $1",
	                      2, p, NULL),
	              RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(orders, c);
}

typedef struct line {
	const char *product, *name;
	int quantity;
	const char *total;
} line;

static void publish_message(const char *type, const char *order, const ProtobufCMessage *m,
                            const char *at)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	assert_non_null(buf);
	protobuf_c_message_pack(m, buf);
	publish(type, order, buf, len, at);
	free(buf);
}

/* OrderPaid or OrderRefunded (refund) of `order` with these lines. */
static void publish_order(int refund, const char *order, const line *lines, size_t n,
                          const char *amount, const char *currency, const char *at)
{
	Panthera__Events__V1__OrderLine items[16], *ptrs[16];
	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		panthera__events__v1__order_line__init(&items[i]);
		items[i].product_id = (char *)lines[i].product;
		items[i].sku = "SKU";
		items[i].name = (char *)lines[i].name;
		items[i].quantity = lines[i].quantity;
		items[i].unit_price = "0.00"; /* not read */
		items[i].line_total = (char *)lines[i].total;
		ptrs[i] = &items[i];
	}
	char user[37], payment[37];
	svctest_new_id(user);
	svctest_new_id(payment);
	if (refund) {
		Panthera__Events__V1__OrderRefunded m = PANTHERA__EVENTS__V1__ORDER_REFUNDED__INIT;
		m.order_id = (char *)order;
		m.user_id = user;
		m.payment_id = payment;
		m.items = ptrs;
		m.n_items = n;
		m.amount = (char *)amount;
		m.currency = (char *)currency;
		publish_message("panthera.events.v1.OrderRefunded", order, &m.base, at);
	} else {
		Panthera__Events__V1__OrderPaid m = PANTHERA__EVENTS__V1__ORDER_PAID__INIT;
		m.order_id = (char *)order;
		m.user_id = user;
		m.payment_id = payment;
		m.items = ptrs;
		m.n_items = n;
		m.total_amount = (char *)amount;
		m.currency = (char *)currency;
		publish_message("panthera.events.v1.OrderPaid", order, &m.base, at);
	}
}

static void paid(const char *order, const line *lines, size_t n, const char *total, const char *at)
{
	publish_order(0, order, lines, n, total, "USD", at);
}

static void refunded(const char *order, const line *lines, size_t n, const char *amount,
                     const char *at)
{
	publish_order(1, order, lines, n, amount, "USD", at);
}

/* Run batches until nothing is left; the number of events handled. */
static unsigned drain(void)
{
	unsigned total = 0, n = 0;
	for (int i = 0; i < 1000; i++) {
		assert_status(analytics_process_events(&svc, &n), RPC_STATUS_OK);
		if (n == 0)
			return total;
		total += n;
	}
	fail_msg("the consumer never ran dry");
	return total;
}

/* ---- the report ---- */

static const rpc_metadata_entry admin_md[] = {{"x-caller-id", ADMIN_ID},
                                              {"x-caller-roles", "USER,ADMIN"}};

static rpc_status report_as(const rpc_metadata_entry *md, size_t n_md, const char *from,
                            const char *to, const Panthera__Analytics__V1__SalesReport **out,
                            rpc_reply **reply)
{
	Panthera__Analytics__V1__GetSalesReportRequest req =
	    PANTHERA__ANALYTICS__V1__GET_SALES_REPORT_REQUEST__INIT;
	req.from = (char *)from;
	req.to = (char *)to;
	rpc_call_opts opts = {.timeout_ms = 10000, .metadata = md, .n_metadata = n_md};
	return AN(get_sales_report)(ch, &req, &opts, out, reply);
}

/* The report of [from, to] as an admin; free *reply. */
static const Panthera__Analytics__V1__SalesReport *report(const char *from, const char *to,
                                                          rpc_reply **reply)
{
	const Panthera__Analytics__V1__SalesReport *r;
	rpc_status st = report_as(admin_md, 2, from, to, &r, reply);
	if (st != RPC_STATUS_OK)
		fail_msg("report %s..%s: %s %s", from, to, rpc_status_name(st),
		         rpc_reply_message(*reply));
	return r;
}

static void assert_day(const Panthera__Analytics__V1__SalesReport *r, size_t i, const char *date,
                       int orders_paid, const char *revenue)
{
	assert_true(i < r->n_days);
	assert_string_equal(r->days[i]->date, date);
	assert_int_equal(r->days[i]->order_count, orders_paid);
	assert_string_equal(r->days[i]->revenue, revenue);
}

static void assert_product(const Panthera__Analytics__V1__SalesReport *r, size_t i, const char *id,
                           const char *name, int quantity, const char *revenue)
{
	assert_true(i < r->n_top_products);
	assert_string_equal(r->top_products[i]->product_id, id);
	assert_string_equal(r->top_products[i]->name, name);
	assert_int_equal(r->top_products[i]->quantity, quantity);
	assert_string_equal(r->top_products[i]->revenue, revenue);
}

/* The whole report as one line of text, to compare two of them. */
static void report_text(const char *from, const char *to, char *out, size_t cap)
{
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report(from, to, &reply);
	size_t used = 0;
	used += (size_t)snprintf(out + used, cap - used, "%s %s %s %d %s |", r->from, r->to,
	                         r->currency, r->order_count, r->revenue);
	for (size_t i = 0; i < r->n_days && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, " %s:%d:%s", r->days[i]->date,
		                         r->days[i]->order_count, r->days[i]->revenue);
	for (size_t i = 0; i < r->n_top_products && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, " %s:%s:%d:%s",
		                         r->top_products[i]->product_id, r->top_products[i]->name,
		                         r->top_products[i]->quantity, r->top_products[i]->revenue);
	assert_true(used < cap);
	rpc_reply_free(reply);
}

/* ---- tests ---- */

static void test_money_and_days_text(void **state)
{
	(void)state;
	char m[MONEY_TEXT];
	money_format(m, 1250);
	assert_string_equal(m, "12.50");
	money_format(m, -5);
	assert_string_equal(m, "-0.05");
	money_format(m, 0);
	assert_string_equal(m, "0.00");
	money_format(m, INT64_MIN);
	assert_string_equal(m, "-92233720368547758.08");
	int64_t c = 0;
	assert_int_equal(money_parse("12.5", &c), 0);
	assert_int_equal(c, 1250);
	assert_int_equal(money_parse("9999999999.99", &c), 0);
	assert_int_equal(c, 999999999999);
	assert_int_equal(money_parse("10000000000", &c), -1);
	assert_int_equal(money_parse("-1.00", &c), -1);
	assert_int_equal(money_parse("1.", &c), -1);
	assert_int_equal(money_parse("1.001", &c), -1);
	assert_int_equal(money_parse("", &c), -1);
	int64_t d = 0;
	assert_int_equal(analytics_day_parse("1970-01-01", &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(analytics_day_parse("2000-03-01", &d), 0);
	assert_int_equal(d, 11017);
	assert_int_equal(analytics_day_parse("1969-12-31", &d), 0);
	assert_int_equal(d, -1);
	assert_int_equal(analytics_day_parse("2024-02-29", &d), 0);
	assert_int_equal(analytics_day_parse("2023-02-29", &d), -1);
	assert_int_equal(analytics_day_parse("1900-02-29", &d), -1);
	assert_int_equal(analytics_day_parse("2030", &d), -1);
	/* product names of events: panthera/text.h, as the consumer calls it */
	assert_true(text_chars("Trail tent \xc3\xa9t\xc3\xa9", 100, 0) >= 0);
	assert_true(text_chars("bad \xc3", 100, 0) < 0);
	assert_true(text_chars("line\nbreak", 100, 0) < 0);
	assert_true(text_chars("abcdef", 5, 0) < 0);
}

/* Two orders one day, one the third, a refund of one of them on the fourth
 * (its local evening, the next UTC day), the refund of an order of the day
 * before the range inside it, and a day without sales. */
static void test_report_sums_paid_and_refunded_orders(void **state)
{
	(void)state;
	char p1[37], p2[37], p3[37], a[37], b[37], c[37], d[37];
	svctest_new_id(p1);
	svctest_new_id(p2);
	svctest_new_id(p3);
	svctest_new_id(a);
	svctest_new_id(b);
	svctest_new_id(c);
	svctest_new_id(d);
	line la[] = {{p1, "Tent", 2, "20.00"}, {p2, "Lamp", 1, "5.50"}};
	line lb[] = {{p1, "Tent", 1, "10.00"}};
	line lc[] = {{p3, "Stove", 3, "21.75"}};
	line ld[] = {{p2, "Lamp", 4, "22.00"}};
	paid(d, ld, 1, "22.00", "2030-02-28T12:00:00Z");
	paid(a, la, 2, "25.50", "2030-03-01T08:00:00Z");
	paid(b, lb, 1, "10.00", "2030-03-01T23:59:59.999Z");
	refunded(d, ld, 1, "22.00", "2030-03-02T00:00:00Z");
	paid(c, lc, 1, "21.75", "2030-03-03T10:00:00Z");
	refunded(b, lb, 1, "10.00", "2030-03-03T23:30:00-05:00"); /* 2030-03-04 in UTC */
	assert_true(drain() >= 6);

	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report("2030-03-01", "2030-03-05", &reply);
	assert_string_equal(r->from, "2030-03-01");
	assert_string_equal(r->to, "2030-03-05");
	assert_string_equal(r->currency, "USD");
	assert_int_equal(r->order_count, 3);      /* a, b (refunded: still paid that day), c */
	assert_string_equal(r->revenue, "25.25"); /* 25.50 + 10.00 - 22.00 + 21.75 - 10.00 */
	assert_int_equal(r->n_days, 5);
	assert_day(r, 0, "2030-03-01", 2, "35.50");
	assert_day(r, 1, "2030-03-02", 0, "-22.00");
	assert_day(r, 2, "2030-03-03", 1, "21.75");
	assert_day(r, 3, "2030-03-04", 0, "-10.00");
	assert_day(r, 4, "2030-03-05", 0, "0.00");
	/* the lamp is net negative in the range: not a top product */
	assert_int_equal(r->n_top_products, 2);
	assert_product(r, 0, p3, "Stove", 3, "21.75");
	assert_product(r, 1, p1, "Tent", 2, "20.00");
	rpc_reply_free(reply);

	r = report("2030-02-28", "2030-02-28", &reply);
	assert_int_equal(r->order_count, 1);
	assert_string_equal(r->revenue, "22.00");
	assert_int_equal(r->n_days, 1);
	assert_int_equal(r->n_top_products, 1);
	assert_product(r, 0, p2, "Lamp", 4, "22.00");
	rpc_reply_free(reply);

	r = report("2030-02-01", "2030-03-31", &reply);
	assert_int_equal(r->order_count, 4);
	assert_string_equal(r->revenue, "47.25");
	assert_int_equal(r->n_days, 59);
	assert_int_equal(r->n_top_products, 3);
	assert_product(r, 0, p3, "Stove", 3, "21.75");
	assert_product(r, 1, p1, "Tent", 2, "20.00");
	assert_product(r, 2, p2, "Lamp", 1, "5.50");
	rpc_reply_free(reply);

	/* a range without any sale */
	r = report("2030-06-01", "2030-06-02", &reply);
	assert_int_equal(r->order_count, 0);
	assert_string_equal(r->revenue, "0.00");
	assert_int_equal(r->n_days, 2);
	assert_day(r, 1, "2030-06-02", 0, "0.00");
	assert_int_equal(r->n_top_products, 0);
	rpc_reply_free(reply);
}

/* At-least-once delivery: the same events read again (cursor moved back),
 * read again without their processed ids, and the same payment and refund
 * under new event ids, all leave the report as it was. */
static void test_redelivery_counts_once(void **state)
{
	(void)state;
	char p1[37], p2[37], a[37], b[37];
	svctest_new_id(p1);
	svctest_new_id(p2);
	svctest_new_id(a);
	svctest_new_id(b);
	line la[] = {{p1, "Mug", 2, "6.00"}};
	line lb[] = {{p2, "Flask", 1, "4.50"}};
	paid(a, la, 1, "6.00", "2031-05-01T09:00:00Z");
	paid(b, lb, 1, "4.50", "2031-05-01T10:00:00Z");
	refunded(a, la, 1, "6.00", "2031-05-02T09:00:00Z");
	drain();
	char want[2048], got[2048];
	report_text("2031-05-01", "2031-05-02", want, sizeof(want));
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report("2031-05-01", "2031-05-02", &reply);
	assert_int_equal(r->order_count, 2);
	assert_string_equal(r->revenue, "4.50");
	assert_day(r, 0, "2031-05-01", 2, "10.50");
	assert_day(r, 1, "2031-05-02", 0, "-6.00");
	assert_int_equal(r->n_top_products, 1); /* the mug nets 0 */
	assert_product(r, 0, p2, "Flask", 1, "4.50");
	rpc_reply_free(reply);

	/* the cursor back at the start: every event comes again */
	sql_ok(pool, "UPDATE analytics.event_cursors SET last_txid = '0', last_seq = 0"
	             " WHERE consumer = 'analytics.sales'");
	assert_true(drain() >= 3);
	report_text("2031-05-01", "2031-05-02", got, sizeof(got));
	assert_string_equal(got, want);

	/* and again with the processed ids lost: the ledger still knows */
	sql_ok(pool, "UPDATE analytics.event_cursors SET last_txid = '0', last_seq = 0"
	             " WHERE consumer = 'analytics.sales'");
	sql_ok(pool, "DELETE FROM analytics.processed_events WHERE consumer = 'analytics.sales'");
	assert_true(drain() >= 3);
	report_text("2031-05-01", "2031-05-02", got, sizeof(got));
	assert_string_equal(got, want);

	/* the same payment and refund published twice (new event ids) */
	paid(a, la, 1, "6.00", "2031-05-01T11:00:00Z");
	refunded(a, la, 1, "6.00", "2031-05-02T11:00:00Z");
	paid(b, lb, 1, "4.50", "2031-05-02T12:00:00Z");
	assert_int_equal(drain(), 3);
	report_text("2031-05-01", "2031-05-02", got, sizeof(got));
	assert_string_equal(got, want);
}

/* Events carry no order between them: a refund folded before its payment
 * takes the payment back on the refund's day once the payment comes. */
static void test_refund_seen_before_its_payment(void **state)
{
	(void)state;
	char p[37], o[37];
	svctest_new_id(p);
	svctest_new_id(o);
	line l[] = {{p, "Rope", 2, "12.00"}, {p, "Rope", 1, "6.00"}}; /* one product, two lines */
	refunded(o, l, 2, "18.00", "2032-02-03T10:00:00Z");
	assert_int_equal(drain(), 1);
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report("2032-02-01", "2032-02-03", &reply);
	assert_int_equal(r->order_count, 0);
	assert_string_equal(r->revenue, "0.00");
	rpc_reply_free(reply);

	paid(o, l, 2, "18.00", "2032-02-01T10:00:00Z");
	assert_int_equal(drain(), 1);
	r = report("2032-02-01", "2032-02-03", &reply);
	assert_int_equal(r->order_count, 1);
	assert_string_equal(r->revenue, "0.00");
	assert_day(r, 0, "2032-02-01", 1, "18.00");
	assert_day(r, 1, "2032-02-02", 0, "0.00");
	assert_day(r, 2, "2032-02-03", 0, "-18.00");
	assert_int_equal(r->n_top_products, 0);
	rpc_reply_free(reply);
	r = report("2032-02-01", "2032-02-01", &reply);
	assert_int_equal(r->n_top_products, 1);
	assert_product(r, 0, p, "Rope", 3, "18.00"); /* the two lines merged */
	rpc_reply_free(reply);
}

/* Other order events and types nobody knows are consumed and ignored. */
static void test_other_events_are_ignored(void **state)
{
	(void)state;
	char p[37], o[37], user[37];
	svctest_new_id(p);
	svctest_new_id(o);
	svctest_new_id(user);
	Panthera__Events__V1__OrderLine it = PANTHERA__EVENTS__V1__ORDER_LINE__INIT,
	                                *items[] = {&it};
	it.product_id = p;
	it.name = "Axe";
	it.quantity = 1;
	it.line_total = "30.00";
	Panthera__Events__V1__OrderCreated created = PANTHERA__EVENTS__V1__ORDER_CREATED__INIT;
	created.order_id = o;
	created.user_id = user;
	created.items = items;
	created.n_items = 1;
	created.total_amount = "30.00";
	created.currency = "USD";
	publish_message("panthera.events.v1.OrderCreated", o, &created.base,
	                "2033-01-01T10:00:00Z");
	Panthera__Events__V1__OrderShipped shipped = PANTHERA__EVENTS__V1__ORDER_SHIPPED__INIT;
	shipped.order_id = o;
	shipped.user_id = user;
	shipped.carrier = "UPS";
	publish_message("panthera.events.v1.OrderShipped", o, &shipped.base,
	                "2033-01-01T11:00:00Z");
	publish("panthera.events.v1.SomethingNew", o, (const uint8_t *)"\xff\xfe\x01", 3,
	        "2033-01-01T12:00:00Z");
	assert_int_equal(drain(), 3);
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report("2033-01-01", "2033-01-01", &reply);
	assert_int_equal(r->order_count, 0);
	assert_string_equal(r->revenue, "0.00");
	assert_int_equal(r->n_top_products, 0);
	rpc_reply_free(reply);
	long parked = -1;
	assert_status(ev_dead_letter_count(pool, "analytics", "analytics.sales", &parked),
	              RPC_STATUS_OK);
	assert_int_equal(parked, 0);
}

/* Ten products at most, by revenue then units; other currencies apart;
 * the largest amounts exact. */
static void test_top_products_are_the_ten_best(void **state)
{
	(void)state;
	char ids[12][37], names[12][16], totals[12][16], o[37];
	line l[12];
	for (int i = 0; i < 12; i++) {
		svctest_new_id(ids[i]);
		snprintf(names[i], sizeof(names[i]), "Product %d", i);
		snprintf(totals[i], sizeof(totals[i]), "%d.00", i < 11 ? i + 1 : 11);
		l[i] = (line){ids[i], names[i], i < 11 ? 1 : 2, totals[i]};
	}
	svctest_new_id(o);
	paid(o, l, 12, "77.00", "2034-01-01T10:00:00Z");
	char eur[37], big[37], bigp[37];
	svctest_new_id(eur);
	svctest_new_id(big);
	svctest_new_id(bigp);
	publish_order(0, eur, l, 1, "1.00", "EUR", "2034-01-01T11:00:00Z");
	line lb[] = {{bigp, "Yacht", 1, "9999999999.99"}};
	paid(big, lb, 1, "9999999999.99", "2034-01-02T10:00:00Z");
	drain();
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report("2034-01-01", "2034-01-01", &reply);
	assert_int_equal(r->order_count, 1); /* the EUR order is not in a USD report */
	assert_string_equal(r->revenue, "77.00");
	assert_int_equal(r->n_top_products, 10);
	assert_product(r, 0, ids[11], "Product 11", 2, "11.00"); /* the tie: more units first */
	assert_product(r, 1, ids[10], "Product 10", 1, "11.00");
	for (int i = 2; i < 10; i++)
		assert_product(r, (size_t)i, ids[11 - i], names[11 - i], 1, totals[11 - i]);
	rpc_reply_free(reply);
	r = report("2034-01-01", "2034-01-02", &reply);
	assert_int_equal(r->order_count, 2);
	assert_string_equal(r->revenue, "10000000076.99");
	assert_day(r, 1, "2034-01-02", 1, "9999999999.99");
	assert_product(r, 0, bigp, "Yacht", 1, "9999999999.99");
	rpc_reply_free(reply);
}

static void test_report_needs_an_admin(void **state)
{
	(void)state;
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r;
	assert_status(report_as(NULL, 0, "2030-01-01", "2030-01-02", &r, &reply),
	              RPC_STATUS_UNAUTHENTICATED);
	assert_null(r);
	rpc_reply_free(reply);
	const rpc_metadata_entry user[] = {{"x-caller-id", ADMIN_ID}, {"x-caller-roles", "USER"}};
	assert_status(report_as(user, 2, "2030-01-01", "2030-01-02", &r, &reply),
	              RPC_STATUS_PERMISSION_DENIED);
	assert_string_equal(rpc_reply_error_reason(reply), "ADMIN_ONLY");
	rpc_reply_free(reply);
	const rpc_metadata_entry no_roles[] = {{"x-caller-id", ADMIN_ID}};
	assert_status(report_as(no_roles, 1, "2030-01-01", "2030-01-02", &r, &reply),
	              RPC_STATUS_PERMISSION_DENIED);
	rpc_reply_free(reply);
	const rpc_metadata_entry lookalike[] = {{"x-caller-id", ADMIN_ID},
	                                        {"x-caller-roles", "USER,ADMINISTRATOR"}};
	assert_status(report_as(lookalike, 2, "2030-01-01", "2030-01-02", &r, &reply),
	              RPC_STATUS_PERMISSION_DENIED);
	rpc_reply_free(reply);
	const rpc_metadata_entry anonymous_admin[] = {{"x-caller-id", "nobody"},
	                                              {"x-caller-roles", "ADMIN"}};
	assert_status(report_as(anonymous_admin, 2, "2030-01-01", "2030-01-02", &r, &reply),
	              RPC_STATUS_UNAUTHENTICATED);
	rpc_reply_free(reply);
	/* the admin check comes first: a non-admin learns nothing of the range */
	assert_status(report_as(user, 2, "nonsense", "", &r, &reply), RPC_STATUS_PERMISSION_DENIED);
	rpc_reply_free(reply);
	const rpc_metadata_entry spaced[] = {{"x-caller-id", ADMIN_ID},
	                                     {"x-caller-roles", " USER , ADMIN "}};
	assert_status(report_as(spaced, 2, "2030-01-01", "2030-01-02", &r, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
}

/* INVALID_ARGUMENT naming `field` first. */
static void assert_refused(const char *from, const char *to, const char *field, size_t n)
{
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r;
	rpc_status st = report_as(admin_md, 2, from, to, &r, &reply);
	if (st != RPC_STATUS_INVALID_ARGUMENT)
		fail_msg("%s..%s: got %s, want INVALID_ARGUMENT", from ? from : "(null)",
		         to ? to : "(null)", rpc_status_name(st));
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	assert_non_null(d);
	assert_non_null(d->bad_request);
	assert_int_equal(d->bad_request->n_field_violations, n);
	assert_string_equal(d->bad_request->field_violations[0]->field, field);
	assert_non_null(strstr(rpc_reply_message(reply), field));
	rpc_reply_free(reply);
}

static void test_bad_ranges_are_refused(void **state)
{
	(void)state;
	assert_refused("", "", "from", 2);
	assert_refused("2030-01-01", "", "to", 1);
	static const char *const bad[] = {
	    "2030-02-30", "2030-13-01",           "2030-1-01",   "20300101",   "2030-01-00",
	    "0000-01-01", "2030-01-01T00:00:00Z", " 2030-01-01", "2030-01-0a", "2030/01/01"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(bad[i], "2030-12-31", "from", 1);
	assert_refused("2030-01-02", "2030-01-01", "to", 1); /* reversed */
	assert_refused("2030-01-01", "2031-01-02", "to", 1); /* 367 days */
	assert_refused("2032-01-01", "2033-01-01", "to", 1); /* 367 days over a leap year */
	assert_refused("0001-01-01", "9999-12-31", "to", 1);

	/* 366 days, the most: a leap year whole, or 365 days after from */
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report("2032-01-01", "2032-12-31", &reply);
	assert_int_equal(r->n_days, 366);
	assert_string_equal(r->days[59]->date, "2032-02-29");
	assert_string_equal(r->days[365]->date, "2032-12-31");
	rpc_reply_free(reply);
	r = report("2030-01-01", "2031-01-01", &reply);
	assert_int_equal(r->n_days, 366);
	rpc_reply_free(reply);
	r = report("9999-12-31", "9999-12-31", &reply);
	assert_int_equal(r->n_days, 1);
	rpc_reply_free(reply);
}

/* Emptied aggregates are folded again from the outbox at the next start:
 * daily_sales alone emptied, then everything. */
static void test_rebuild_from_the_log(void **state)
{
	(void)state;
	char p[37], q[37], a[37], b[37];
	svctest_new_id(p);
	svctest_new_id(q);
	svctest_new_id(a);
	svctest_new_id(b);
	line la[] = {{p, "Boots", 1, "80.00"}, {q, "Socks", 3, "15.00"}};
	line lb[] = {{q, "Socks", 1, "5.00"}};
	paid(a, la, 2, "95.00", "2035-07-01T10:00:00Z");
	paid(b, lb, 1, "5.00", "2035-07-02T10:00:00Z");
	refunded(b, lb, 1, "5.00", "2035-07-03T10:00:00Z");
	drain();
	static const char *const ranges[][2] = {{"2035-07-01", "2035-07-03"},
	                                        {"2030-02-01", "2030-03-31"},
	                                        {"2031-05-01", "2031-05-02"},
	                                        {"2032-02-01", "2032-02-03"},
	                                        {"2034-01-01", "2034-01-02"}};
	enum { N = sizeof(ranges) / sizeof(ranges[0]) };
	static char want[N][4096], got[4096];
	for (size_t i = 0; i < N; i++)
		report_text(ranges[i][0], ranges[i][1], want[i], sizeof(want[i]));
	assert_non_null(strstr(want[0], " 2 95.00 |")); /* two orders, 95.00 */

	int rebuilt = -1;
	assert_status(analytics_rebuild_if_empty(&svc, &rebuilt), RPC_STATUS_OK);
	assert_int_equal(rebuilt, 0); /* not empty: nothing happens */

	for (int round = 0; round < 2; round++) {
		sql_ok(pool, round == 0
		                 ? "TRUNCATE analytics.daily_sales"
		                 : "TRUNCATE analytics.daily_sales, analytics.daily_product_sales,"
		                   " analytics.sales_order_lines, analytics.sales_orders");
		/* a restart */
		analytics_service_fini(&svc);
		assert_status(analytics_service_init(&svc), RPC_STATUS_OK);
		report_text(ranges[0][0], ranges[0][1], got, sizeof(got));
		assert_non_null(strstr(got, " 0 0.00 |")); /* nothing folded yet */
		assert_true(drain() > 0);
		for (size_t i = 0; i < N; i++) {
			report_text(ranges[i][0], ranges[i][1], got, sizeof(got));
			assert_string_equal(got, want[i]);
		}
	}
	/* rebuilt: a start finds them full again */
	assert_status(analytics_rebuild_if_empty(&svc, &rebuilt), RPC_STATUS_OK);
	assert_int_equal(rebuilt, 0);
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

/* The background thread folds what is published (woken by the NOTIFY) and
 * stops within about a second. */
static void test_background_consumer(void **state)
{
	(void)state;
	assert_status(analytics_start(&svc), RPC_STATUS_OK);
	assert_status(analytics_start(&svc), RPC_STATUS_FAILED_PRECONDITION);
	char p[37], o[37];
	svctest_new_id(p);
	svctest_new_id(o);
	line l[] = {{p, "Compass", 1, "19.99"}};
	pause_ms(100); /* let it reach its wait: the NOTIFY must wake it */
	paid(o, l, 1, "19.99", "2036-04-01T10:00:00Z");
	int seen = 0;
	for (long long until = now_ms() + 10000; !seen && now_ms() < until;) {
		rpc_reply *reply;
		const Panthera__Analytics__V1__SalesReport *r =
		    report("2036-04-01", "2036-04-01", &reply);
		seen = r->order_count == 1 && strcmp(r->revenue, "19.99") == 0;
		rpc_reply_free(reply);
		if (!seen)
			pause_ms(20);
	}
	assert_true(seen);
	long long t0 = now_ms();
	analytics_stop(&svc);
	assert_true(now_ms() - t0 < 2500);
	analytics_stop(&svc); /* harmless again */
	unsigned n = 99;
	assert_status(analytics_process_events(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
}

static void test_init_refuses_bad_configuration(void **state)
{
	(void)state;
	analytics_service bad = {.pool = pool};
	assert_status(analytics_service_init(&bad), RPC_STATUS_INVALID_ARGUMENT);
	bad.orders_events = orders;
	bad.currency = "usd";
	assert_status(analytics_service_init(&bad), RPC_STATUS_INVALID_ARGUMENT);
	bad.currency = "EURO";
	assert_status(analytics_service_init(&bad), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(analytics_service_init(&svc), RPC_STATUS_FAILED_PRECONDITION); /* twice */
	assert_status(analytics_process_events(&bad, NULL), RPC_STATUS_FAILED_PRECONDITION);
	assert_status(analytics_start(&bad), RPC_STATUS_FAILED_PRECONDITION);
	assert_status(analytics_service_register(srv, &bad), RPC_STATUS_FAILED_PRECONDITION);
	assert_null(analytics_consumer(&bad));
	assert_non_null(analytics_consumer(&svc));
	assert_string_equal(ev_consumer_name(analytics_consumer(&svc)), "analytics.sales");
	analytics_service_fini(&bad); /* never initialised: harmless */
}

/* An OrderPaid or OrderRefunded that cannot be folded is retried, then
 * parked in the dead letters; the events behind it are folded. Last: its
 * retries take a few seconds. */
static void test_malformed_events_are_parked(void **state)
{
	(void)state;
	char p[37], o[37], bad[37];
	svctest_new_id(p);
	svctest_new_id(o);
	svctest_new_id(bad);
	publish("panthera.events.v1.OrderPaid", bad, (const uint8_t *)"\xff\xff\xff", 3,
	        "2037-01-01T10:00:00Z");
	line zero[] = {{p, "Tarp", 0, "0.00"}}; /* quantity 0 */
	paid(bad, zero, 1, "0.00", "2037-01-01T10:30:00Z");
	line l[] = {{p, "Tarp", 1, "12.00"}};
	paid(o, l, 1, "12.00", "2037-01-01T11:00:00Z");
	long parked = 0;
	long long until = now_ms() + 20000;
	while (now_ms() < until) {
		drain();
		assert_status(ev_dead_letter_count(pool, "analytics", "analytics.sales", &parked),
		              RPC_STATUS_OK);
		if (parked == 2)
			break;
		pause_ms(50);
	}
	assert_int_equal(parked, 2);
	drain();
	rpc_reply *reply;
	const Panthera__Analytics__V1__SalesReport *r = report("2037-01-01", "2037-01-01", &reply);
	assert_int_equal(r->order_count, 1);
	assert_string_equal(r->revenue, "12.00");
	assert_product(r, 0, p, "Tarp", 1, "12.00");
	rpc_reply_free(reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_money_and_days_text),
	    cmocka_unit_test(test_report_sums_paid_and_refunded_orders),
	    cmocka_unit_test(test_redelivery_counts_once),
	    cmocka_unit_test(test_refund_seen_before_its_payment),
	    cmocka_unit_test(test_other_events_are_ignored),
	    cmocka_unit_test(test_top_products_are_the_ten_best),
	    cmocka_unit_test(test_report_needs_an_admin),
	    cmocka_unit_test(test_bad_ranges_are_refused),
	    cmocka_unit_test(test_rebuild_from_the_log),
	    cmocka_unit_test(test_background_consumer),
	    cmocka_unit_test(test_init_refuses_bad_configuration),
	    cmocka_unit_test(test_malformed_events_are_parked),
	};
	return cmocka_run_group_tests_name("analytics", tests, setup, teardown);
}
