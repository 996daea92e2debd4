/*
 * test_notifications.c - NotificationService through its generated client
 * stubs, over the RPC runtime (inproc), on a real PostgreSQL: every order
 * template rendered and recorded once even when its event comes twice,
 * other events ignored, malformed ones parked; listing with pagination and
 * the owner rule; the delivery queue (recipient from a test-double
 * UserService, retries with backoff, giving up); SendEmail through the sink
 * and recorded nowhere; the log sink keeping secrets out of the log; the
 * SMTP sink against a real SMTP server (Debian's python3-aiosmtpd, started
 * here on a free port; those tests are skipped when it is not installed):
 * the message arrives whole, a refused recipient, header injection refused,
 * timeouts and cancellation, and a server that is down at first: the
 * delivery is retried and succeeds once it is up, while notifications go on
 * being recorded.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "notifications.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/users/v1/users.panthera.h"

#define NOTIF(x) panthera_notifications_v1_notification_service_##x
typedef Panthera__Notifications__V1__ListUserNotificationsResponse list_resp;

static pgtest pg;
static db_pool *pool;   /* the notifications database (schema "notifications") */
static db_pool *orders; /* where the orders outbox lives */
static rpc_server *srv;
static rpc_channel *ch; /* NotificationService and the UserService double */
static notifications_service svc;

static uint64_t now_ms(void)
{
	return notifications_now_ms();
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- a UserService double: BatchGetUsers from a table ---- */

static pthread_mutex_t users_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char id[37], email[64];
	int deactivated; /* the account's status: DEACTIVATED, else ACTIVE */
} users[64];
static size_t n_users;
static int users_down;
static int users_calls;

static void add_user(const char *id, const char *email)
{
	pthread_mutex_lock(&users_lock);
	if (n_users < 64) {
		snprintf(users[n_users].id, sizeof(users[n_users].id), "%s", id);
		snprintf(users[n_users].email, sizeof(users[n_users].email), "%s", email);
		n_users++;
	}
	pthread_mutex_unlock(&users_lock);
}

/* Deactivate (1) or reactivate (0) the account `id`. */
static void set_deactivated(const char *id, int deactivated)
{
	pthread_mutex_lock(&users_lock);
	for (size_t k = 0; k < n_users; k++) {
		if (strcmp(users[k].id, id) == 0)
			users[k].deactivated = deactivated;
	}
	pthread_mutex_unlock(&users_lock);
}

/* A user with an address, id in out[37]. */
static void new_user(char *out, const char *email)
{
	svctest_new_id(out);
	add_user(out, email);
}

static rpc_status batch_get_users(rpc_call *call,
                                  const Panthera__Users__V1__BatchGetUsersRequest *req,
                                  Panthera__Users__V1__BatchGetUsersResponse *resp, void *user)
{
	(void)user;
	pthread_mutex_lock(&users_lock);
	users_calls++;
	if (users_down) {
		pthread_mutex_unlock(&users_lock);
		return rpc_call_error(call, RPC_STATUS_UNAVAILABLE, "users are away");
	}
	resp->users = rpc_call_alloc(call, (req->n_user_ids + 1) * sizeof(*resp->users));
	rpc_status st = resp->users ? RPC_STATUS_OK : RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < req->n_user_ids && st == RPC_STATUS_OK; i++) {
		for (size_t k = 0; k < n_users; k++) {
			if (strcmp(users[k].id, req->user_ids[i]) != 0)
				continue;
			Panthera__Users__V1__User *u = rpc_call_alloc(call, sizeof(*u));
			if (u == NULL) {
				st = RPC_STATUS_RESOURCE_EXHAUSTED;
				break;
			}
			panthera__users__v1__user__init(u);
			u->id = users[k].id;
			u->email = users[k].email;
			u->status = users[k].deactivated
			                ? PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED
			                : PANTHERA__USERS__V1__USER_STATUS__ACTIVE;
			resp->users[resp->n_users++] = u;
		}
	}
	pthread_mutex_unlock(&users_lock);
	return st;
}

static const panthera_users_v1_user_service_handlers users_handlers = {
    .batch_get_users = batch_get_users,
};

/* ---- a recording sink ---- */

typedef struct rec_mail {
	char to[256], subject[512];
	char *body;
	int secret;
} rec_mail;

static struct {
	notifications_sink base;
	pthread_mutex_t lock;
	rec_mail mails[128];
	size_t n;
	rpc_status fail_with; /* OK: accept */
} rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

static rpc_status rec_send(notifications_sink *sink, const notifications_mail *m, char *err,
                           size_t errlen)
{
	(void)sink;
	pthread_mutex_lock(&rec.lock);
	rpc_status st = rec.fail_with;
	if (st != RPC_STATUS_OK) {
		snprintf(err, errlen, "the test sink refuses (%s)", rpc_status_name(st));
	} else if (rec.n < 128) {
		rec_mail *r = &rec.mails[rec.n++];
		snprintf(r->to, sizeof(r->to), "%s", m->to);
		snprintf(r->subject, sizeof(r->subject), "%s", m->subject);
		r->body = strdup(m->body);
		r->secret = m->secret;
	}
	pthread_mutex_unlock(&rec.lock);
	return st;
}

static void rec_set_failure(rpc_status st)
{
	pthread_mutex_lock(&rec.lock);
	rec.fail_with = st;
	pthread_mutex_unlock(&rec.lock);
}

static void rec_clear(void)
{
	pthread_mutex_lock(&rec.lock);
	for (size_t i = 0; i < rec.n; i++)
		free(rec.mails[i].body);
	rec.n = 0;
	rec.fail_with = RPC_STATUS_OK;
	pthread_mutex_unlock(&rec.lock);
}

/* ---- SQL helpers ---- */

/* The first value of `sql` with one optional parameter, as a long. */
static long sql_long(const char *sql, const char *param)
{
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	const char *p[1] = {param};
	assert_status(db_exec(c, NULL, sql, param ? 1 : 0, p, &r), RPC_STATUS_OK);
	long v = PQntuples(r) > 0 ? atol(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	db_release(pool, c);
	return v;
}

/* The first value of `sql` as text (malloc'd; "" for NULL; NULL for no row). */
static char *sql_text(const char *sql, const char *param)
{
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	const char *p[1] = {param};
	assert_status(db_exec(c, NULL, sql, param ? 1 : 0, p, &r), RPC_STATUS_OK);
	char *v = PQntuples(r) > 0 ? strdup(PQgetvalue(r, 0, 0)) : NULL;
	PQclear(r);
	db_release(pool, c);
	return v;
}

static void sql_ok(const char *sql, const char *param)
{
	db_conn *c;
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	const char *p[1] = {param};
	assert_status(db_exec(c, NULL, sql, param ? 1 : 0, p, NULL), RPC_STATUS_OK);
	db_release(pool, c);
}

static long notifications_of_order(const char *order_id)
{
	return sql_long("SELECT count(*) FROM notifications WHERE order_id = $1", order_id);
}

/* ---- events ---- */

static void publish_raw(const char *type, const char *aggregate, const uint8_t *bytes, size_t n)
{
	db_conn *c;
	assert_status(db_acquire(orders, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(ev_publish(c, "orders", type, aggregate, bytes, n, NULL), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(orders, c);
}

static void publish(const char *type, const char *aggregate, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);
	assert_non_null(buf);
	protobuf_c_message_pack(m, buf);
	publish_raw(type, aggregate, buf, n);
	free(buf);
}

/* Two lines: 2 x Blue Mug at 12.50, 1 x Teapot at 30.00; total 55.00 USD. */
static Panthera__Events__V1__OrderLine line_a, line_b;
static Panthera__Events__V1__OrderLine *lines[2] = {&line_a, &line_b};

static void init_lines(void)
{
	panthera__events__v1__order_line__init(&line_a);
	line_a.product_id = "11111111-1111-4111-8111-111111111111";
	line_a.sku = "MUG-BLUE";
	line_a.name = "Blue Mug";
	line_a.quantity = 2;
	line_a.unit_price = "12.5"; /* normalized to 12.50 in the body */
	line_a.line_total = "25.00";
	panthera__events__v1__order_line__init(&line_b);
	line_b.product_id = "22222222-2222-4222-8222-222222222222";
	line_b.sku = "TEA-1";
	line_b.name = "Teapot\nwith a lid"; /* a control character: made a space */
	line_b.quantity = 1;
	line_b.unit_price = "30.00";
	line_b.line_total = "30.00";
}

static void publish_created(const char *order, const char *user)
{
	Panthera__Events__V1__OrderCreated e = PANTHERA__EVENTS__V1__ORDER_CREATED__INIT;
	e.order_id = (char *)order;
	e.user_id = (char *)user;
	e.items = lines;
	e.n_items = 2;
	e.total_amount = "55.00";
	e.currency = "USD";
	e.payment_method_id = "pm_card_visa";
	publish("panthera.events.v1.OrderCreated", order, &e.base);
}

static void publish_paid(const char *order, const char *user, const char *payment)
{
	Panthera__Events__V1__OrderPaid e = PANTHERA__EVENTS__V1__ORDER_PAID__INIT;
	e.order_id = (char *)order;
	e.user_id = (char *)user;
	e.payment_id = (char *)payment;
	e.items = lines;
	e.n_items = 2;
	e.total_amount = "55.00";
	e.currency = "USD";
	publish("panthera.events.v1.OrderPaid", order, &e.base);
}

static void publish_payment_failed(const char *order, const char *user, const char *payment)
{
	Panthera__Events__V1__OrderPaymentFailed e =
	    PANTHERA__EVENTS__V1__ORDER_PAYMENT_FAILED__INIT;
	e.order_id = (char *)order;
	e.user_id = (char *)user;
	e.payment_id = (char *)payment;
	e.reason = "card_declined";
	publish("panthera.events.v1.OrderPaymentFailed", order, &e.base);
}

static void publish_cancelled(const char *order, const char *user)
{
	Panthera__Events__V1__OrderCancelled e = PANTHERA__EVENTS__V1__ORDER_CANCELLED__INIT;
	e.order_id = (char *)order;
	e.user_id = (char *)user;
	publish("panthera.events.v1.OrderCancelled", order, &e.base);
}

static void publish_shipped(const char *order, const char *user)
{
	Panthera__Events__V1__OrderShipped e = PANTHERA__EVENTS__V1__ORDER_SHIPPED__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	at.seconds = 1768471200; /* 2026-01-15T10:00:00Z */
	e.order_id = (char *)order;
	e.user_id = (char *)user;
	e.carrier = "UPS";
	e.tracking_number = "1Z999AA10123456784";
	e.shipped_at = &at;
	publish("panthera.events.v1.OrderShipped", order, &e.base);
}

static void publish_delivered(const char *order, const char *user)
{
	Panthera__Events__V1__OrderDelivered e = PANTHERA__EVENTS__V1__ORDER_DELIVERED__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	at.seconds = 1768647600; /* 2026-01-17T11:00:00Z */
	e.order_id = (char *)order;
	e.user_id = (char *)user;
	e.delivered_at = &at;
	publish("panthera.events.v1.OrderDelivered", order, &e.base);
}

static void publish_refunded(const char *order, const char *user, const char *payment)
{
	Panthera__Events__V1__OrderRefunded e = PANTHERA__EVENTS__V1__ORDER_REFUNDED__INIT;
	e.order_id = (char *)order;
	e.user_id = (char *)user;
	e.payment_id = (char *)payment;
	e.items = lines;
	e.n_items = 2;
	e.amount = "55.00";
	e.currency = "USD";
	e.restocked = 1;
	publish("panthera.events.v1.OrderRefunded", order, &e.base);
}

/* Consume until nothing is left (at most 5 s). */
static void process_all(notifications_service *s)
{
	uint64_t until = now_ms() + 5000;
	for (;;) {
		unsigned n = 0;
		assert_status(notifications_process_events(s, &n), RPC_STATUS_OK);
		if (n == 0)
			break;
		if (now_ms() > until)
			fail_msg("the consumer never ran dry");
	}
}

/* Deliver until nothing is due (at most 5 s). */
static void deliver_all(notifications_service *s)
{
	uint64_t until = now_ms() + 5000;
	for (;;) {
		unsigned n = 0;
		assert_status(notifications_deliver_due(s, &n), RPC_STATUS_OK);
		if (n == 0)
			break;
		if (now_ms() > until)
			fail_msg("the delivery queue never ran dry");
	}
}

/* ---- listing ---- */

static rpc_status list(const char *user, const char *caller, const char *roles, int page, int size,
                       rpc_reply **reply, const list_resp **resp)
{
	Panthera__Notifications__V1__ListUserNotificationsRequest req =
	    PANTHERA__NOTIFICATIONS__V1__LIST_USER_NOTIFICATIONS_REQUEST__INIT;
	req.user_id = (char *)user;
	req.page = page;
	req.page_size = size;
	rpc_metadata_entry md[2];
	size_t n = 0;
	if (caller != NULL)
		md[n++] = (rpc_metadata_entry){"x-caller-id", caller};
	if (roles != NULL)
		md[n++] = (rpc_metadata_entry){"x-caller-roles", roles};
	rpc_call_opts opts = {.metadata = md, .n_metadata = n};
	return NOTIF(list_user_notifications)(ch, &req, &opts, resp, reply);
}

/* ---- setup ---- */

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	init_lines();
	if (pgtest_start(&pg) != 0)
		return -1;
	db_pool_opts oo = {.url = pg.url, .size = 4};
	if (svctest_pool(&pool, pg.url, NOTIFICATIONS_SCHEMA, 8, 1) != RPC_STATUS_OK ||
	    db_pool_open(&orders, &oo) != RPC_STATUS_OK ||
	    ev_outbox_setup(orders, "orders") != RPC_STATUS_OK)
		return -1;
	const char *url = "inproc://notifications-test";
	if (svctest_channel(&ch, url, 0) != RPC_STATUS_OK)
		return -1;
	rec.base.send = rec_send;
	svc = (notifications_service){.pool = pool,
	                              .orders_events = orders,
	                              .users = ch,
	                              .sink = &rec.base,
	                              .max_attempts = 3,
	                              .retry_base_ms = 100};
	if (svctest_server(&srv, 8, 0) != RPC_STATUS_OK ||
	    notifications_service_register(srv, &svc) != RPC_STATUS_OK ||
	    panthera_users_v1_user_service_register(srv, &users_handlers, NULL) != RPC_STATUS_OK ||
	    svctest_start(srv, url, NULL) != RPC_STATUS_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	notifications_service_fini(&svc);
	rec_clear();
	db_pool_close(orders);
	db_pool_close(pool);
	pgtest_destroy(&pg);
	return 0;
}

/* ---- templates and recording ---- */

static void assert_contains(const char *hay, const char *needle)
{
	if (hay == NULL || strstr(hay, needle) == NULL)
		fail_msg("\"%s\" not found in:\n%s", needle, hay ? hay : "(null)");
}

static void test_each_template_recorded_once(void **state)
{
	(void)state;
	char user[37], order[37], pay1[37], pay2[37];
	new_user(user, "ana@example.com");
	svctest_new_id(order);
	svctest_new_id(pay1);
	svctest_new_id(pay2);
	publish_created(order, user);
	publish_payment_failed(order, user, pay1);
	publish_paid(order, user, pay2);
	publish_shipped(order, user);
	publish_delivered(order, user);
	publish_refunded(order, user, pay2);
	publish_cancelled(order, user); /* not a real life cycle: every template once */
	/* events of other types in the same outbox are ignored, not parked */
	Panthera__Events__V1__StockChanged sc = PANTHERA__EVENTS__V1__STOCK_CHANGED__INIT;
	sc.product_id = line_a.product_id;
	publish("panthera.events.v1.StockChanged", sc.product_id, &sc.base);
	publish_raw("test.v1.SomethingElse", order, (const uint8_t *)"\xff\xff", 2);
	process_all(&svc);
	assert_int_equal(notifications_of_order(order), 7);

	rpc_reply *reply;
	const list_resp *r;
	assert_status(list(user, user, "USER", 1, 20, &reply, &r), RPC_STATUS_OK);
	assert_int_equal(r->total, 7);
	assert_int_equal(r->n_notifications, 7);
	/* newest first */
	static const char *const want[] = {
	    "order_cancelled", "order_refunded",       "order_delivered", "order_shipped",
	    "order_paid",      "order_payment_failed", "order_placed"};
	for (size_t i = 0; i < 7; i++) {
		const Panthera__Notifications__V1__Notification *n = r->notifications[i];
		assert_string_equal(n->template_, want[i]);
		assert_string_equal(n->user_id, user);
		assert_int_equal(n->channel,
		                 PANTHERA__NOTIFICATIONS__V1__NOTIFICATION_CHANNEL__EMAIL);
		assert_true(id_is_uuid(n->id));
		assert_non_null(n->created_at);
		assert_true(n->created_at->seconds > 1700000000);
		assert_contains(n->subject, order);
		assert_contains(n->body, order);
	}
	const char *cancelled = r->notifications[0]->body, *refunded = r->notifications[1]->body,
	           *delivered = r->notifications[2]->body, *shipped = r->notifications[3]->body,
	           *paid = r->notifications[4]->body, *failed = r->notifications[5]->body,
	           *placed = r->notifications[6]->body;
	char subject[128];
	snprintf(subject, sizeof(subject), "Your order %s has been placed", order);
	assert_string_equal(r->notifications[6]->subject, subject);
	assert_contains(placed, "2 x Blue Mug (MUG-BLUE), 12.50 USD each: 25.00 USD\n");
	assert_contains(placed, "1 x Teapot with a lid (TEA-1), 30.00 USD each: 30.00 USD\n");
	assert_contains(placed, "Total: 55.00 USD\n");
	snprintf(subject, sizeof(subject), "Payment failed for your order %s", order);
	assert_string_equal(r->notifications[5]->subject, subject);
	assert_contains(failed, "your card was declined");
	assert_contains(failed, pay1);
	assert_contains(paid, "Amount paid: 55.00 USD\n");
	assert_contains(paid, pay2);
	assert_contains(paid, "2 x Blue Mug");
	assert_contains(shipped, "Carrier: UPS\n");
	assert_contains(shipped, "Tracking number: 1Z999AA10123456784\n");
	assert_contains(shipped, "Shipped: 2026-01-15T10:00:00Z\n");
	assert_contains(delivered, "Delivered: 2026-01-17T11:00:00Z\n");
	assert_contains(refunded, "Amount refunded: 55.00 USD\n");
	assert_contains(refunded, "1 x Teapot with a lid");
	assert_contains(cancelled, "cancelled");
	snprintf(subject, sizeof(subject), "Your order %s was cancelled", order);
	assert_string_equal(r->notifications[0]->subject, subject);
	rpc_reply_free(reply);

	/* delivered again: the cursor forgets, the processed ids remember */
	sql_ok("UPDATE event_cursors SET last_txid = '0', last_seq = 0 WHERE consumer = $1",
	       NOTIFICATIONS_CONSUMER);
	process_all(&svc);
	assert_int_equal(notifications_of_order(order), 7);
	/* and even with those forgotten too, each event is recorded once */
	sql_ok("DELETE FROM processed_events WHERE consumer = $1", NOTIFICATIONS_CONSUMER);
	sql_ok("UPDATE event_cursors SET last_txid = '0', last_seq = 0 WHERE consumer = $1",
	       NOTIFICATIONS_CONSUMER);
	process_all(&svc);
	assert_int_equal(notifications_of_order(order), 7);
	assert_int_equal(sql_long("SELECT count(*) FROM deliveries d JOIN notifications n ON n.id ="
	                          " d.notification_id WHERE n.order_id = $1",
	                          order),
	                 7);
	assert_int_equal(sql_long("SELECT count(*) FROM dead_letters", NULL), 0);
	/* each one sent once, to the user's address */
	deliver_all(&svc);
	pthread_mutex_lock(&rec.lock);
	size_t to_ana = 0;
	for (size_t i = 0; i < rec.n; i++)
		to_ana += strcmp(rec.mails[i].to, "ana@example.com") == 0;
	pthread_mutex_unlock(&rec.lock);
	assert_int_equal(to_ana, 7);
	rec_clear();
}

static void test_malformed_events_are_parked(void **state)
{
	(void)state;
	char user[37], order[37];
	new_user(user, "bo@example.com");
	svctest_new_id(order);
	/* bytes that are no OrderPaid */
	publish_raw("panthera.events.v1.OrderPaid", order, (const uint8_t *)"\x0a\xff\xff", 3);
	/* an amount of three decimals */
	Panthera__Events__V1__OrderCreated e = PANTHERA__EVENTS__V1__ORDER_CREATED__INIT;
	e.order_id = order;
	e.user_id = user;
	e.total_amount = "1.005";
	e.currency = "USD";
	publish("panthera.events.v1.OrderCreated", order, &e.base);
	/* a user id that is not a UUID */
	publish_cancelled(order, "not-a-user");
	uint64_t until = now_ms() + 15000;
	while (sql_long("SELECT count(*) FROM dead_letters WHERE consumer = $1",
	                NOTIFICATIONS_CONSUMER) < 3) {
		unsigned n;
		assert_status(notifications_process_events(&svc, &n), RPC_STATUS_OK);
		if (now_ms() > until)
			fail_msg("the malformed events were not parked");
		nap_ms(20);
	}
	assert_int_equal(notifications_of_order(order), 0);
	/* and the events behind them flow */
	char order2[37];
	svctest_new_id(order2);
	publish_cancelled(order2, user);
	process_all(&svc);
	assert_int_equal(notifications_of_order(order2), 1);
	deliver_all(&svc);
	rec_clear();
}

static void test_list_pages_and_owner(void **state)
{
	(void)state;
	char user[37], other[37], order[37];
	new_user(user, "cy@example.com");
	new_user(other, "dee@example.com");
	char orders_of[5][37];
	for (int i = 0; i < 5; i++) {
		svctest_new_id(orders_of[i]);
		publish_cancelled(orders_of[i], user);
	}
	process_all(&svc);
	rpc_reply *reply;
	const list_resp *r;
	/* pages of 2: 2, 2, 1, then none; the total on each; newest first */
	static const int sizes[] = {2, 2, 1, 0};
	char got[6][37] = {{0}};
	int seen = 0;
	for (int page = 1; page <= 4; page++) {
		assert_status(list(user, user, "USER", page, 2, &reply, &r), RPC_STATUS_OK);
		assert_int_equal(r->total, 5);
		assert_int_equal(r->page, page);
		assert_int_equal(r->page_size, 2);
		assert_int_equal(r->n_notifications, sizes[page - 1]);
		for (size_t i = 0; i < r->n_notifications && seen < 5; i++, seen++) {
			const char *o = strstr(r->notifications[i]->body, "Order: ");
			assert_non_null(o);
			snprintf(got[seen], sizeof(got[seen]), "%.36s", o + 7);
		}
		rpc_reply_free(reply);
	}
	assert_int_equal(seen, 5);
	/* newest first: the reverse of the order they were recorded in, each once */
	char *recorded = sql_text("SELECT string_agg(order_id::text, ',' ORDER BY seq DESC)"
	                          " FROM notifications WHERE user_id = $1",
	                          user);
	assert_non_null(recorded);
	char listed[6 * 37] = "";
	for (int i = 0; i < 5; i++) {
		strcat(listed, got[i]);
		if (i < 4)
			strcat(listed, ",");
		int found = 0;
		for (int k = 0; k < 5; k++)
			found += strcmp(got[k], orders_of[i]) == 0;
		assert_int_equal(found, 1);
	}
	assert_string_equal(listed, recorded);
	free(recorded);
	/* the consumer records in the order of the events: say so if not */
	for (int i = 0; i < 5; i++) {
		if (strcmp(got[i], orders_of[4 - i]) == 0)
			continue;
		for (int k = 0; k < 5; k++) {
			char *ev =
			    sql_text("SELECT txid::text || ' seq ' || seq || ' at ' || created_at"
			             " FROM orders.outbox WHERE aggregate_id = $1",
			             orders_of[k]);
			char *note =
			    sql_text("SELECT seq || ' at ' || created_at FROM notifications"
			             " WHERE order_id = $1",
			             orders_of[k]);
			fprintf(stderr,
			        "note: published %d: %s (event txid %s; notification seq %s)\n", k,
			        orders_of[k], ev ? ev : "-", note ? note : "-");
			free(ev);
			free(note);
		}
		break;
	}
	/* defaults: page 1, 20 a page */
	assert_status(list(user, user, NULL, 0, 0, &reply, &r), RPC_STATUS_OK);
	assert_int_equal(r->page, 1);
	assert_int_equal(r->page_size, 20);
	assert_int_equal(r->n_notifications, 5);
	rpc_reply_free(reply);
	/* an admin sees them; another user does not learn they exist */
	assert_status(list(user, other, "USER,ADMIN", 1, 20, &reply, &r), RPC_STATUS_OK);
	assert_int_equal(r->total, 5);
	rpc_reply_free(reply);
	assert_status(list(user, other, "USER", 1, 20, &reply, &r), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "USER_NOT_FOUND");
	rpc_reply_free(reply);
	/* a role without an identity grants nothing */
	assert_status(list(user, NULL, "ADMIN", 1, 20, &reply, &r), RPC_STATUS_UNAUTHENTICATED);
	rpc_reply_free(reply);
	assert_status(list(user, "not-a-uuid", "ADMIN", 1, 20, &reply, &r),
	              RPC_STATUS_UNAUTHENTICATED);
	rpc_reply_free(reply);
	/* the owner with nothing yet */
	assert_status(list(other, other, "USER", 1, 20, &reply, &r), RPC_STATUS_OK);
	assert_int_equal(r->total, 0);
	assert_int_equal(r->n_notifications, 0);
	rpc_reply_free(reply);
	/* refused input */
	svctest_new_id(order);
	assert_status(list("nope", user, "USER", 1, 20, &reply, &r), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(list(user, user, "USER", 1, 101, &reply, &r), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(list(user, user, "USER", -1, 20, &reply, &r), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(list(user, user, "USER", 1, -5, &reply, &r), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	deliver_all(&svc);
	rec_clear();
}

/* ---- the delivery queue ---- */

static long attempts_of_order(const char *order)
{
	return sql_long("SELECT d.attempts FROM deliveries d JOIN notifications n"
	                " ON n.id = d.notification_id WHERE n.order_id = $1",
	                order);
}

static char *delivery_field(const char *field, const char *order)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(d.%s::text, '') FROM deliveries d JOIN notifications n"
	         " ON n.id = d.notification_id WHERE n.order_id = $1",
	         field);
	return sql_text(sql, order);
}

static void assert_delivery(const char *order, const char *status, long attempts)
{
	char *s = delivery_field("status", order);
	assert_non_null(s);
	if (strcmp(s, status) != 0)
		fail_msg("delivery of order %s is %s, want %s", order, s, status);
	free(s);
	assert_int_equal(attempts_of_order(order), attempts);
}

static void test_delivery_sends_to_the_users_address(void **state)
{
	(void)state;
	char user[37], order[37];
	new_user(user, "eve@example.com");
	svctest_new_id(order);
	publish_shipped(order, user);
	process_all(&svc);
	notifications_counts before, after;
	assert_status(notifications_delivery_counts(&svc, &before), RPC_STATUS_OK);
	assert_int_equal(before.pending, 1);
	unsigned n;
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0); /* sent once */
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.n, 1);
	assert_string_equal(rec.mails[0].to, "eve@example.com");
	char *subject = sql_text("SELECT subject FROM notifications WHERE order_id = $1", order);
	char *body = sql_text("SELECT body FROM notifications WHERE order_id = $1", order);
	assert_string_equal(rec.mails[0].subject, subject);
	assert_string_equal(rec.mails[0].body, body);
	assert_int_equal(rec.mails[0].secret, 0);
	pthread_mutex_unlock(&rec.lock);
	free(subject);
	free(body);
	assert_delivery(order, "SENT", 1);
	assert_status(notifications_delivery_counts(&svc, &after), RPC_STATUS_OK);
	assert_int_equal(after.pending, 0);
	assert_int_equal(after.sent, before.sent + 1);
	rec_clear();
}

/* Deliver until the order's notification has made `attempts` attempts. */
static void deliver_until_attempts(const char *order, long attempts, uint64_t max_ms)
{
	uint64_t until = now_ms() + max_ms;
	while (attempts_of_order(order) < attempts) {
		unsigned n;
		assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
		if (now_ms() > until)
			fail_msg("attempt %ld never came", attempts);
		nap_ms(10);
	}
}

static void test_delivery_retries_with_backoff_then_gives_up(void **state)
{
	(void)state;
	char user[37], order[37];
	new_user(user, "fay@example.com");
	svctest_new_id(order);
	publish_delivered(order, user);
	process_all(&svc);
	notifications_counts before, after;
	assert_status(notifications_delivery_counts(&svc, &before), RPC_STATUS_OK);
	rec_set_failure(RPC_STATUS_UNAVAILABLE);
	uint64_t t0 = now_ms();
	unsigned n;
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_delivery(order, "PENDING", 1);
	char *err = delivery_field("last_error", order);
	assert_contains(err, "the test sink refuses");
	free(err);
	/* not due again before its backoff (100 ms, then 200 ms) */
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_true(sql_long("SELECT count(*) FROM deliveries d JOIN notifications n ON n.id ="
	                     " d.notification_id WHERE n.order_id = $1"
	                     " AND d.next_attempt_at > now() + interval '50 milliseconds'",
	                     order) == 1);
	deliver_until_attempts(order, 2, 3000);
	uint64_t t2 = now_ms();
	assert_true(t2 - t0 >= 100);
	assert_delivery(order, "PENDING", 2);
	deliver_until_attempts(order, 3, 3000);
	assert_true(now_ms() - t2 >= 150); /* doubled: 200 ms after attempt 2 */
	/* the third of max_attempts = 3: given up, counted */
	assert_delivery(order, "FAILED", 3);
	assert_status(notifications_delivery_counts(&svc, &after), RPC_STATUS_OK);
	assert_int_equal(after.given_up, before.given_up + 1);
	nap_ms(450);
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);

	/* a refusal for good (an SMTP 5xx) is given up at once */
	char order2[37];
	svctest_new_id(order2);
	publish_delivered(order2, user);
	process_all(&svc);
	rec_set_failure(RPC_STATUS_FAILED_PRECONDITION);
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_delivery(order2, "FAILED", 1);

	/* so is a recipient UserService does not know */
	char stranger[37], order3[37];
	svctest_new_id(stranger);
	svctest_new_id(order3);
	publish_delivered(order3, stranger);
	process_all(&svc);
	rec_set_failure(RPC_STATUS_OK);
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_delivery(order3, "FAILED", 1);
	err = delivery_field("last_error", order3);
	assert_contains(err, "not a known user");
	free(err);

	/* UserService away: tried again later, then sent */
	char order4[37];
	svctest_new_id(order4);
	publish_delivered(order4, user);
	process_all(&svc);
	pthread_mutex_lock(&users_lock);
	users_down = 1;
	pthread_mutex_unlock(&users_lock);
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_delivery(order4, "PENDING", 1);
	err = delivery_field("last_error", order4);
	assert_contains(err, "BatchGetUsers");
	free(err);
	pthread_mutex_lock(&users_lock);
	users_down = 0;
	pthread_mutex_unlock(&users_lock);
	deliver_until_attempts(order4, 2, 3000);
	assert_delivery(order4, "SENT", 2);
	rec_clear();
}

/* How many mails the recording sink took, and the recipients of the first
 * two (read under its lock, asserted after: a failed assertion must not
 * leave the lock taken). */
static void rec_sent(size_t *n, char to[2][256])
{
	pthread_mutex_lock(&rec.lock);
	*n = rec.n;
	for (size_t i = 0; i < 2; i++)
		snprintf(to[i], 256, "%s", i < rec.n ? rec.mails[i].to : "");
	pthread_mutex_unlock(&rec.lock);
}

/* A user whose account was deactivated (API.md: DELETE /v1/users/{userId})
 * gets no order email: the notification is recorded (the user's history,
 * listed as any other) but its delivery is SKIPPED, final and no error,
 * while another user of the same batch gets theirs. Reactivated, the user
 * gets the emails of later events; the skipped one stays skipped. */
static void test_deactivated_user_gets_no_order_email(void **state)
{
	(void)state;
	char active[37], gone[37], order_a[37], order_g[37], later[37], pay[37];
	new_user(active, "jo@example.com");
	new_user(gone, "kim@example.com");
	svctest_new_id(order_a);
	svctest_new_id(order_g);
	svctest_new_id(later);
	svctest_new_id(pay);
	set_deactivated(gone, 1);
	notifications_counts before, after;
	assert_status(notifications_delivery_counts(&svc, &before), RPC_STATUS_OK);
	publish_paid(order_g, gone, pay);
	publish_paid(order_a, active, pay);
	process_all(&svc);
	assert_int_equal(notifications_of_order(order_g), 1);
	assert_int_equal(notifications_of_order(order_a), 1);
	unsigned n;
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 2); /* one batch, one BatchGetUsers */
	size_t mails;
	char to[2][256];
	rec_sent(&mails, to);
	assert_int_equal(mails, 1);
	assert_string_equal(to[0], "jo@example.com");
	assert_delivery(order_a, "SENT", 1);
	assert_delivery(order_g, "SKIPPED", 1);
	char *why = delivery_field("last_error", order_g);
	assert_contains(why, "deactivated");
	free(why);
	assert_status(notifications_delivery_counts(&svc, &after), RPC_STATUS_OK);
	assert_int_equal(after.skipped, before.skipped + 1);
	assert_int_equal(after.given_up, before.given_up);
	assert_int_equal(after.pending, before.pending);
	/* final: never due again */
	assert_status(notifications_deliver_due(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	/* the history still lists it (an admin reads it) */
	rpc_reply *reply;
	const list_resp *resp;
	char admin[37];
	svctest_new_id(admin);
	assert_status(list(gone, admin, "USER,ADMIN", 1, 20, &reply, &resp), RPC_STATUS_OK);
	assert_int_equal(resp->total, 1);
	assert_string_equal(resp->notifications[0]->template_, "order_paid");
	rpc_reply_free(reply);

	/* reactivated: later events are sent again */
	set_deactivated(gone, 0);
	publish_shipped(later, gone);
	process_all(&svc);
	deliver_all(&svc);
	assert_delivery(later, "SENT", 1);
	assert_delivery(order_g, "SKIPPED", 1);
	rec_sent(&mails, to);
	assert_int_equal(mails, 2);
	assert_string_equal(to[1], "kim@example.com");

	/* skipped rows go with the sent ones, after NOTIFICATIONS_SENT_KEEP_S */
	sql_ok("UPDATE deliveries d SET updated_at = now() - interval '3 days 1 minute'"
	       " FROM notifications n WHERE n.id = d.notification_id AND n.order_id = $1",
	       order_g);
	long deleted;
	assert_status(notifications_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_true(deleted >= 1); /* earlier tests leave old rows too */
	why = delivery_field("status", order_g);
	assert_null(why);
	assert_int_equal(notifications_of_order(order_g), 1);
	rec_clear();
}

/* The value of the AdminService sample `name` with label state=`state`;
 * -1 when absent. */
static double admin_sample(rpc_channel *c, const char *name, const char *state)
{
	Panthera__Admin__V1__GetMetricsRequest req = PANTHERA__ADMIN__V1__GET_METRICS_REQUEST__INIT;
	const Panthera__Admin__V1__GetMetricsResponse *resp;
	rpc_reply *reply;
	assert_status(panthera_admin_v1_admin_service_get_metrics(c, &req, NULL, &resp, &reply),
	              RPC_STATUS_OK);
	double value = -1;
	for (size_t i = 0; i < resp->n_metrics; i++) {
		const Panthera__Admin__V1__Metric *m = resp->metrics[i];
		for (size_t l = 0; strcmp(m->name, name) == 0 && l < m->n_labels; l++) {
			if (strcmp(m->labels[l]->key, "state") == 0 &&
			    strcmp(m->labels[l]->value, state) == 0)
				value = m->value;
		}
	}
	rpc_reply_free(reply);
	return value;
}

/* The delivery queue's counts reach AdminService's GetMetrics (what the
 * gateway's /metrics shows) through notifications_metrics, added as
 * pantherad adds it: pending, sent and given up, as they change. */
static void test_delivery_counts_reach_admin_metrics(void **state)
{
	(void)state;
	rpc_server *asrv;
	admin_service *admin;
	rpc_channel *ach;
	assert_status(svctest_server(&asrv, 2, 0), RPC_STATUS_OK);
	assert_status(admin_service_create(&admin, asrv), RPC_STATUS_OK);
	assert_status(admin_service_register(asrv, admin), RPC_STATUS_OK);
	assert_status(admin_add_source(admin, notifications_metrics, &svc), RPC_STATUS_OK);
	assert_status(svctest_start(asrv, "inproc://notifications-test-admin", &ach),
	              RPC_STATUS_OK);

	static const char name[] = "panthera_notifications_deliveries";
	notifications_counts before;
	assert_status(notifications_delivery_counts(&svc, &before), RPC_STATUS_OK);
	assert_true(admin_sample(ach, name, "pending") == (double)before.pending);
	assert_true(admin_sample(ach, name, "sent") == (double)before.sent);
	assert_true(admin_sample(ach, name, "given_up") == (double)before.given_up);
	char user[37], order[37], stranger[37], lost[37];
	new_user(user, "ida@example.com");
	svctest_new_id(order);
	svctest_new_id(stranger);
	svctest_new_id(lost);
	publish_shipped(order, user);
	publish_shipped(lost, stranger); /* nobody UserService knows: given up */
	process_all(&svc);
	assert_true(admin_sample(ach, name, "pending") == (double)before.pending + 2);
	deliver_all(&svc);
	assert_true(admin_sample(ach, name, "pending") == (double)before.pending);
	assert_true(admin_sample(ach, name, "sent") == (double)before.sent + 1);
	assert_true(admin_sample(ach, name, "given_up") == (double)before.given_up + 1);
	assert_true(admin_sample(ach, name, "skipped") == (double)before.skipped);

	rpc_channel_close(ach);
	rpc_server_destroy(asrv);
	admin_service_destroy(admin);
	rec_clear();
}

/* Set one timestamp column of the delivery row of `order` to `age` ago. */
static void age_delivery(const char *order, const char *column, const char *age)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "UPDATE deliveries d SET %s = now() - interval '%s' FROM notifications n"
	         " WHERE n.id = d.notification_id AND n.order_id = $1",
	         column, age);
	sql_ok(sql, order);
}

/* notifications_sweep deletes the delivery rows SENT more than 3 days ago
 * and FAILED more than 14 days ago; younger final rows, PENDING rows
 * however old, and every notification (the user's history) stay. */
static void test_sweep_deletes_old_final_deliveries_only(void **state)
{
	(void)state;
	char user[37], sent_old[37], sent_young[37], failed_old[37], failed_young[37],
	    pending_old[37];
	new_user(user, "gus@example.com");
	char *orders_of[] = {sent_old, sent_young, failed_old, failed_young, pending_old};
	for (int i = 0; i < 5; i++) {
		svctest_new_id(orders_of[i]);
		publish_shipped(orders_of[i], user);
	}
	process_all(&svc);
	/* three sent; the rest refused for good: FAILED */
	sql_ok("UPDATE deliveries d SET next_attempt_at = now() + interval '1 hour'"
	       " FROM notifications n WHERE n.id = d.notification_id AND n.order_id = $1",
	       pending_old);
	for (int i = 2; i < 4; i++)
		sql_ok("UPDATE deliveries d SET next_attempt_at = now() + interval '1 hour'"
		       " FROM notifications n WHERE n.id = d.notification_id AND n.order_id = $1",
		       orders_of[i]);
	deliver_all(&svc);
	assert_delivery(sent_old, "SENT", 1);
	assert_delivery(sent_young, "SENT", 1);
	rec_set_failure(RPC_STATUS_FAILED_PRECONDITION);
	for (int i = 2; i < 4; i++)
		sql_ok("UPDATE deliveries d SET next_attempt_at = now() FROM notifications n"
		       " WHERE n.id = d.notification_id AND n.order_id = $1",
		       orders_of[i]);
	deliver_all(&svc);
	rec_set_failure(RPC_STATUS_OK);
	assert_delivery(failed_old, "FAILED", 1);
	assert_delivery(failed_young, "FAILED", 1);
	assert_delivery(pending_old, "PENDING", 0);
	age_delivery(sent_old, "sent_at", "3 days 1 minute");
	age_delivery(sent_young, "sent_at", "2 days 23 hours");
	age_delivery(failed_old, "updated_at", "14 days 1 minute");
	age_delivery(failed_young, "updated_at", "13 days 23 hours");
	age_delivery(pending_old, "updated_at", "30 days");
	age_delivery(pending_old, "created_at", "30 days");

	long deleted = -1;
	assert_status(notifications_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_int_equal(deleted, 2);
	char *gone = delivery_field("status", sent_old);
	assert_null(gone);
	gone = delivery_field("status", failed_old);
	assert_null(gone);
	assert_delivery(sent_young, "SENT", 1);
	assert_delivery(failed_young, "FAILED", 1);
	assert_delivery(pending_old, "PENDING", 0);
	/* the history is whole */
	for (int i = 0; i < 5; i++)
		assert_int_equal(notifications_of_order(orders_of[i]), 1);
	rpc_reply *reply;
	const list_resp *resp;
	assert_status(list(user, user, "USER", 1, 20, &reply, &resp), RPC_STATUS_OK);
	assert_int_equal(resp->total, 5);
	assert_int_equal(resp->n_notifications, 5);
	rpc_reply_free(reply);
	assert_status(notifications_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_int_equal(deleted, 0);
	assert_status(notifications_sweep(NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
	rec_clear();
}

/* ---- SendEmail ---- */

static rpc_status send_email(const char *to, const char *subject, const char *body,
                             rpc_reply **reply)
{
	Panthera__Notifications__V1__SendEmailRequest req =
	    PANTHERA__NOTIFICATIONS__V1__SEND_EMAIL_REQUEST__INIT;
	req.to = (char *)to;
	req.subject = (char *)subject;
	req.body = (char *)body;
	return NOTIF(send_email)(ch, &req, NULL, NULL, reply);
}

static void test_send_email_is_sent_and_never_recorded(void **state)
{
	(void)state;
	long notes = sql_long("SELECT count(*) FROM notifications", NULL);
	long queue = sql_long("SELECT count(*) FROM deliveries", NULL);
	const char *body = "Your reset token: s3cr3t-t0ken-123\n";
	rpc_reply *reply;
	assert_status(send_email("gus@example.com", "Reset your Panthera password", body, &reply),
	              RPC_STATUS_OK);
	rpc_reply_free(reply);
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.n, 1);
	assert_string_equal(rec.mails[0].to, "gus@example.com");
	assert_string_equal(rec.mails[0].subject, "Reset your Panthera password");
	assert_string_equal(rec.mails[0].body, body);
	assert_int_equal(rec.mails[0].secret, 1);
	pthread_mutex_unlock(&rec.lock);
	assert_int_equal(sql_long("SELECT count(*) FROM notifications", NULL), notes);
	assert_int_equal(sql_long("SELECT count(*) FROM deliveries", NULL), queue);
	assert_int_equal(sql_long("SELECT count(*) FROM notifications WHERE body LIKE"
	                          " '%s3cr3t-t0ken%'",
	                          NULL),
	                 0);
	/* refused input: header injection, empty fields */
	assert_status(send_email("a@example.com\r\nBcc: evil@example.com", "Hi", "x", &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(send_email("a@example.com", "Hi\r\nBcc: evil@example.com", "x", &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(send_email("a@example.com", "Hi\n", "x", &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(send_email("not an address", "Hi", "x", &reply), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(send_email("a@example.com", "", "x", &reply), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(send_email("a@example.com", "Hi", "", &reply), RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	assert_status(send_email("a@example.com", "Hi", "bell\a", &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.n, 1); /* none of those reached the sink */
	pthread_mutex_unlock(&rec.lock);
	/* the sink fails: UNAVAILABLE with a message, still nothing recorded */
	rec_set_failure(RPC_STATUS_UNAVAILABLE);
	assert_status(send_email("gus@example.com", "Reset", body, &reply), RPC_STATUS_UNAVAILABLE);
	assert_string_equal(rpc_reply_error_reason(reply), "EMAIL_NOT_SENT");
	assert_contains(rpc_reply_message(reply), "email not sent");
	assert_null(strstr(rpc_reply_message(reply), "s3cr3t"));
	rpc_reply_free(reply);
	assert_int_equal(sql_long("SELECT count(*) FROM notifications", NULL), notes);
	assert_int_equal(sql_long("SELECT count(*) FROM deliveries", NULL), queue);
	rec_clear();
}

/* Run fn(arg) with standard error going to a file; the text written (malloc'd). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	char path[] = "/tmp/notif-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fd, 2) >= 0);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_true(pread(fd, text, (size_t)n, 0) == n);
	close(fd);
	unlink(path);
	return text;
}

static void log_two_mails(void *arg)
{
	notifications_sink *s = arg;
	char err[256];
	notifications_mail secret = {.to = "hal@example.com",
	                             .subject = "Reset your password",
	                             .body = "token: sup3r-s3cret\n",
	                             .secret = 1};
	notifications_mail plain = {
	    .to = "hal@example.com", .subject = "Your order has shipped", .body = "Carrier: UPS\n"};
	assert_status(notifications_sink_send(s, &secret, err, sizeof(err)), RPC_STATUS_OK);
	assert_status(notifications_sink_send(s, &plain, err, sizeof(err)), RPC_STATUS_OK);
}

static void test_log_sink_never_logs_a_secret(void **state)
{
	(void)state;
	notifications_sink *s;
	assert_status(notifications_sink_open(&s, NULL, NULL, 0), RPC_STATUS_OK);
	log_set_level(LOG_INFO);
	char *text = capture_stderr(log_two_mails, s);
	log_set_level(LOG_ERROR);
	assert_contains(text, "\"event\":\"notifications.email\"");
	assert_contains(text, "to=hal@example.com subject=Reset your password");
	assert_contains(text, "not logged");
	assert_null(strstr(text, "sup3r-s3cret"));
	assert_contains(text, "Carrier: UPS\\n"); /* an order notification is the log's to show */
	assert_contains(text, "Panthera <no-reply@panthera.local>");
	free(text);
	char err[128];
	notifications_mail bad = {
	    .to = "x@example.com\nBcc: y@example.com", .subject = "s", .body = "b"};
	assert_status(notifications_sink_send(s, &bad, err, sizeof(err)),
	              RPC_STATUS_INVALID_ARGUMENT);
	notifications_sink_destroy(s);
	notifications_sink_destroy(NULL);
	/* settings refused */
	static const char *const urls[] = {
	    "http://mail.example.com", "smtp://",       "smtp://h:0",  "smtp://h:65536",
	    "smtp://user@h:25",        "smtp://h:25/x", "smtp://[::1", "smtp://h:2x5"};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		if (notifications_sink_open(&s, urls[i], NULL, 0) != RPC_STATUS_INVALID_ARGUMENT)
			fail_msg("URL %s was taken", urls[i]);
		assert_null(s);
	}
	static const char *const froms[] = {
	    "Evil\r\nBcc: x@example.com <a@example.com>", "a@example.com\r\nBcc: x@example.com",
	    "Name <not-an-address>", "\"Quote\" <a@example.com>", "Name <a@example.com> trailing"};
	for (size_t i = 0; i < sizeof(froms) / sizeof(froms[0]); i++) {
		if (notifications_sink_open(&s, "smtp://127.0.0.1:25", froms[i], 0) !=
		    RPC_STATUS_INVALID_ARGUMENT)
			fail_msg("from %s was taken", froms[i]);
	}
	assert_status(notifications_sink_open(&s, "smtp://[::1]:2525", "shop@example.com", 0),
	              RPC_STATUS_OK);
	notifications_sink_destroy(s);
	notifications_service bad_svc = {.pool = pool, .smtp_url = "smtp://x:y"};
	assert_status(notifications_service_init(&bad_svc), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(bad_svc.priv);
	notifications_service no_pool = {0};
	assert_status(notifications_service_init(&no_pool), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(notifications_process_events(&no_pool, NULL), RPC_STATUS_FAILED_PRECONDITION);
	notifications_service_fini(&no_pool);
}

/* ---- SMTP: servers of our own for failure cases ---- */

static int listen_local(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port with nothing listening (bound and closed). */
static int free_port(void)
{
	int port;
	close(listen_local(&port));
	return port;
}

typedef struct canned {
	int fd;
	const char *reply; /* written after accepting */
} canned;

static void *canned_server(void *arg)
{
	canned *c = arg;
	int conn = accept(c->fd, NULL, NULL);
	if (conn >= 0) {
		if (write(conn, c->reply, strlen(c->reply)) < 0)
			perror("canned write");
		char buf[256];
		while (read(conn, buf, sizeof(buf)) > 0) {
		}
		close(conn);
	}
	return NULL;
}

static rpc_status send_to_port(int port, uint32_t timeout_ms, const atomic_int *cancel, char *err,
                               size_t errlen)
{
	char url[64];
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	notifications_sink *s;
	assert_status(notifications_sink_open(&s, url, NULL, timeout_ms), RPC_STATUS_OK);
	notifications_mail m = {
	    .to = "ivy@example.com", .subject = "Hello", .body = "Hello\n", .cancel = cancel};
	rpc_status st = notifications_sink_send(s, &m, err, errlen);
	notifications_sink_destroy(s);
	return st;
}

typedef struct raiser {
	atomic_int *flag;
	long after_ms;
} raiser;

static void *raise_later(void *arg)
{
	raiser *r = arg;
	nap_ms(r->after_ms);
	atomic_store(r->flag, 1);
	return NULL;
}

static void test_smtp_failures_timeouts_and_cancel(void **state)
{
	(void)state;
	char err[512];
	/* nothing listening: UNAVAILABLE at once */
	uint64_t t = now_ms();
	assert_status(send_to_port(free_port(), 2000, NULL, err, sizeof(err)),
	              RPC_STATUS_UNAVAILABLE);
	assert_contains(err, "cannot connect");
	assert_true(now_ms() - t < 1000);
	/* a server that never says a word: the read times out */
	int port;
	int fd = listen_local(&port);
	t = now_ms();
	assert_status(send_to_port(port, 300, NULL, err, sizeof(err)),
	              RPC_STATUS_DEADLINE_EXCEEDED);
	assert_contains(err, "timed out");
	uint64_t took = now_ms() - t;
	assert_true(took >= 280 && took < 2000);
	/* the same, cancelled: ends within a poll slice of the flag */
	atomic_int flag;
	atomic_init(&flag, 0);
	raiser r = {&flag, 150};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, raise_later, &r), 0);
	t = now_ms();
	assert_status(send_to_port(port, 10000, &flag, err, sizeof(err)), RPC_STATUS_CANCELLED);
	assert_true(now_ms() - t < 1000);
	pthread_join(th, NULL);
	close(fd);
	/* a server refusing service for good, and one that speaks no SMTP */
	static const struct {
		const char *reply;
		rpc_status want;
		const char *says;
	} cases[] = {
	    {"554 5.3.2 no service here\r\n", RPC_STATUS_FAILED_PRECONDITION, "554 5.3.2"},
	    {"421 4.3.2 busy, come back later\r\n", RPC_STATUS_UNAVAILABLE, "421"},
	    {"HTTP/1.1 400 Bad Request\r\n\r\n", RPC_STATUS_UNAVAILABLE, "not an SMTP reply"},
	    {"220-first\r\n250 mixed\r\n", RPC_STATUS_UNAVAILABLE, "mixes codes"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		canned c = {.fd = listen_local(&port), .reply = cases[i].reply};
		assert_int_equal(pthread_create(&th, NULL, canned_server, &c), 0);
		assert_status(send_to_port(port, 2000, NULL, err, sizeof(err)), cases[i].want);
		assert_contains(err, cases[i].says);
		pthread_join(th, NULL);
		close(c.fd);
	}
}

/* ---- SMTP: a real server (python3-aiosmtpd) ---- */

/* Each message is written to <box>/NNNN.eml as the envelope (X-Envelope-*
 * lines) and the DATA as received (after dot-unstuffing, CRLF). Recipients
 * starting with "reject" are refused with 550. */
static const char smtp_server_py[] =
    "import asyncio, os, sys\n"
    "from aiosmtpd.smtp import SMTP\n"
    "port, box = int(sys.argv[1]), sys.argv[2]\n"
    "class Box:\n"
    "    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):\n"
    "        if address.startswith('reject'):\n"
    "            return '550 5.1.1 mailbox unavailable'\n"
    "        envelope.rcpt_tos.append(address)\n"
    "        return '250 OK'\n"
    "    async def handle_DATA(self, server, session, envelope):\n"
    "        n = len([f for f in os.listdir(box) if f.endswith('.eml')])\n"
    "        path = os.path.join(box, '%04d' % n)\n"
    "        with open(path + '.tmp', 'wb') as f:\n"
    "            f.write(('X-Envelope-From: %s\\r\\nX-Envelope-To: %s\\r\\n' % (\n"
    "                envelope.mail_from, ','.join(envelope.rcpt_tos))).encode())\n"
    "            f.write(envelope.original_content)\n"
    "        os.rename(path + '.tmp', path + '.eml')\n"
    "        return '250 Message accepted'\n"
    "async def main():\n"
    "    loop = asyncio.get_running_loop()\n"
    "    srv = await loop.create_server(lambda: SMTP(Box(), hostname='localhost'),\n"
    "                                   '127.0.0.1', port)\n"
    "    await srv.serve_forever()\n"
    "asyncio.run(main())\n";

#define PYTHON "/usr/bin/python3"

static int have_aiosmtpd(void)
{
	static int cached = -1;
	if (cached < 0)
		cached = access(PYTHON, X_OK) == 0 &&
		         system(PYTHON " -c 'import aiosmtpd' >/dev/null 2>&1") == 0;
	return cached;
}

/* Wait until something accepts connections on the port. */
static int port_up(int port, uint64_t max_ms)
{
	uint64_t until = now_ms() + max_ms;
	while (now_ms() < until) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)port),
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return 1;
		nap_ms(50);
	}
	return 0;
}

/* The server a test started, and the service it runs threads of: the
 * per-test teardown stops both even when the test failed half-way. */
static pid_t smtp_pid;
static notifications_service extra;

static pid_t start_smtp_server(int port, const char *box)
{
	char p[16];
	snprintf(p, sizeof(p), "%d", port);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl(PYTHON, "python3", "-c", smtp_server_py, p, box, (char *)NULL);
		_exit(127);
	}
	if (!port_up(port, 15000)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("the SMTP server did not come up on port %d", port);
	}
	smtp_pid = pid;
	return pid;
}

static void stop_smtp_server(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	if (pid == smtp_pid)
		smtp_pid = 0;
}

static char box_dir[64]; /* the folder of the test's SMTP server */

static void make_box(char *dir)
{
	strcpy(dir, "/tmp/notif-smtp-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void remove_box(const char *dir)
{
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		char path[512];
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* The n-th message of the box (waiting up to max_ms for it), malloc'd. */
static char *box_message(const char *dir, int n, uint64_t max_ms)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%04d.eml", dir, n);
	uint64_t until = now_ms() + max_ms;
	FILE *f;
	while ((f = fopen(path, "rb")) == NULL) {
		if (now_ms() > until)
			return NULL;
		nap_ms(20);
	}
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

static void test_smtp_sink_delivers_to_a_real_server(void **state)
{
	(void)state;
	if (!have_aiosmtpd()) {
		fprintf(stderr, "python3-aiosmtpd is not installed (make deps): skipped\n");
		skip();
	}
	char *box = box_dir;
	make_box(box);
	int port = free_port();
	pid_t pid = start_smtp_server(port, box);
	char url[64];
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	notifications_sink *s;
	assert_status(notifications_sink_open(&s, url, "Panthera Shop <shop@panthera.test>", 5000),
	              RPC_STATUS_OK);
	char err[512];
	notifications_mail m = {.to = "ana@example.com",
	                        .subject = "Gr\xc3\xbc\xc3\x9f"
	                                   "e from Panthera",
	                        .body = "Hello\n.\n..dots\r\nline \xe2\x82\xac 3"};
	assert_status(notifications_sink_send(s, &m, err, sizeof(err)), RPC_STATUS_OK);
	char *msg = box_message(box, 0, 5000);
	assert_non_null(msg);
	assert_contains(msg, "X-Envelope-From: shop@panthera.test\r\n");
	assert_contains(msg, "X-Envelope-To: ana@example.com\r\n");
	assert_contains(msg, "\r\nFrom: Panthera Shop <shop@panthera.test>\r\n");
	assert_contains(msg, "\r\nTo: <ana@example.com>\r\n");
	assert_contains(msg, "\r\nSubject: =?UTF-8?B?R3LDvMOfZSBmcm9tIFBhbnRoZXJh?=\r\n");
	assert_contains(msg, "\r\nContent-Type: text/plain; charset=UTF-8\r\n");
	assert_contains(msg, "\r\nMessage-ID: <");
	assert_contains(msg, "@panthera.test>\r\n");
	assert_contains(msg, "\r\nDate: ");
	const char *body = strstr(msg, "\r\n\r\n");
	assert_non_null(body);
	/* the lines "." and "..dots" survive: stuffed on the way, unstuffed there */
	assert_string_equal(body + 4, "Hello\r\n.\r\n..dots\r\nline \xe2\x82\xac 3\r\n");
	free(msg);

	/* a recipient the server refuses: for good, with the server's words */
	notifications_mail rejected = {.to = "reject@example.com", .subject = "x", .body = "x\n"};
	assert_status(notifications_sink_send(s, &rejected, err, sizeof(err)),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_contains(err, "RCPT TO refused: 550");
	/* headers cannot be injected: refused before a byte is sent */
	notifications_mail inject = {
	    .to = "ana@example.com", .subject = "Hi\r\nBcc: evil@example.com", .body = "x\n"};
	assert_status(notifications_sink_send(s, &inject, err, sizeof(err)),
	              RPC_STATUS_INVALID_ARGUMENT);
	inject.subject = "Hi";
	inject.to = "ana@example.com>\r\nRCPT TO:<evil@example.com";
	assert_status(notifications_sink_send(s, &inject, err, sizeof(err)),
	              RPC_STATUS_INVALID_ARGUMENT);
	/* a long line is cut before 998 bytes */
	char *long_body = malloc(3001);
	assert_non_null(long_body);
	memset(long_body, 'x', 3000);
	long_body[3000] = '\0';
	notifications_mail wide = {.to = "ana@example.com", .subject = "wide", .body = long_body};
	assert_status(notifications_sink_send(s, &wide, err, sizeof(err)), RPC_STATUS_OK);
	free(long_body);
	msg = box_message(box, 1, 5000);
	assert_non_null(msg);
	body = strstr(msg, "\r\n\r\n") + 4;
	size_t xs = 0, longest = 0, run = 0;
	for (const char *p = body; *p; p++) {
		if (*p == 'x') {
			xs++;
			run++;
			longest = run > longest ? run : longest;
		} else {
			run = 0;
		}
	}
	assert_int_equal(xs, 3000);
	assert_true(longest <= 998);
	free(msg);
	assert_null(box_message(box, 2, 100)); /* nothing else arrived */
	notifications_sink_destroy(s);
	stop_smtp_server(pid);
	remove_box(box);
}

static long deliveries_sent_for(const char *order)
{
	return sql_long("SELECT count(*) FROM deliveries d JOIN notifications n ON n.id ="
	                " d.notification_id WHERE n.order_id = $1 AND d.status = 'SENT'",
	                order);
}

static void test_smtp_down_then_up_is_retried_without_holding_back_recording(void **state)
{
	(void)state;
	if (!have_aiosmtpd()) {
		fprintf(stderr, "python3-aiosmtpd is not installed (make deps): skipped\n");
		skip();
	}
	deliver_all(&svc); /* the queue is empty of earlier tests' work */
	char *box = box_dir;
	make_box(box);
	int port = free_port();
	char url[64];
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	notifications_service *smtp_svc = &extra;
	*smtp_svc = (notifications_service){.pool = pool,
	                                    .orders_events = orders,
	                                    .users = ch,
	                                    .smtp_url = url,
	                                    .smtp_timeout_ms = 2000,
	                                    .max_attempts = 20,
	                                    .retry_base_ms = 150};
	assert_status(notifications_service_init(smtp_svc), RPC_STATUS_OK);
	assert_status(notifications_start(smtp_svc), RPC_STATUS_OK);
	assert_status(notifications_start(smtp_svc), RPC_STATUS_FAILED_PRECONDITION);
	char user[37], order[37], pay[37];
	new_user(user, "jo@example.com");
	svctest_new_id(order);
	svctest_new_id(pay);
	publish_created(order, user);
	/* recorded by the background consumer while the mail server is down */
	uint64_t until = now_ms() + 5000;
	while (notifications_of_order(order) < 1) {
		if (now_ms() > until)
			fail_msg("OrderCreated was not recorded");
		nap_ms(20);
	}
	/* its delivery fails and is tried again, later each time */
	until = now_ms() + 5000;
	while (attempts_of_order(order) < 2) {
		if (now_ms() > until)
			fail_msg("the delivery was not retried");
		nap_ms(20);
	}
	char *err = delivery_field("last_error", order);
	assert_contains(err, "cannot connect");
	free(err);
	assert_int_equal(deliveries_sent_for(order), 0);
	/* the saga's next step is recorded meanwhile, through the RPC too */
	publish_paid(order, user, pay);
	until = now_ms() + 5000;
	while (notifications_of_order(order) < 2) {
		if (now_ms() > until)
			fail_msg("OrderPaid was not recorded while mail was down");
		nap_ms(20);
	}
	rpc_reply *reply;
	const list_resp *r;
	assert_status(list(user, user, "USER", 1, 20, &reply, &r), RPC_STATUS_OK);
	assert_int_equal(r->total, 2);
	assert_string_equal(r->notifications[0]->template_, "order_paid");
	rpc_reply_free(reply);
	assert_int_equal(deliveries_sent_for(order), 0);
	/* the server comes up: both arrive */
	pid_t pid = start_smtp_server(port, box);
	until = now_ms() + 10000;
	while (deliveries_sent_for(order) < 2) {
		if (now_ms() > until)
			fail_msg("the deliveries did not succeed once the server was up");
		nap_ms(20);
	}
	int placed = 0, paid = 0;
	for (int i = 0; i < 2; i++) {
		char *msg = box_message(box, i, 2000);
		assert_non_null(msg);
		assert_contains(msg, "X-Envelope-To: jo@example.com\r\n");
		assert_contains(msg, "X-Envelope-From: no-reply@panthera.local\r\n");
		assert_contains(msg, order);
		placed += strstr(msg, "has been placed") != NULL;
		paid += strstr(msg, "Amount paid: 55.00 USD") != NULL;
		free(msg);
	}
	assert_int_equal(placed, 1);
	assert_int_equal(paid, 1);
	assert_null(box_message(box, 2, 300)); /* once each */
	uint64_t t = now_ms();
	notifications_stop(smtp_svc);
	assert_true(now_ms() - t < 2500); /* ev_wait is 1 s at most; slack for a loaded machine */
	notifications_stop(smtp_svc);     /* harmless twice */
	notifications_service_fini(smtp_svc);
	stop_smtp_server(pid);
	remove_box(box);
}

static void test_stop_cancels_a_send_and_puts_it_back(void **state)
{
	(void)state;
	deliver_all(&svc);
	int port;
	int fd = listen_local(&port); /* accepts (in the backlog), never speaks */
	char url[64];
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	notifications_service *slow = &extra;
	*slow = (notifications_service){
	    .pool = pool, .users = ch, .smtp_url = url, .smtp_timeout_ms = 20000};
	assert_status(notifications_service_init(slow), RPC_STATUS_OK);
	assert_null(notifications_order_consumer(slow)); /* no orders_events: no consumer */
	assert_non_null(notifications_order_consumer(&svc));
	char user[37], order[37];
	new_user(user, "kim@example.com");
	svctest_new_id(order);
	publish_cancelled(order, user);
	process_all(&svc); /* recorded by the main service */
	assert_status(notifications_start(slow), RPC_STATUS_OK);
	uint64_t until = now_ms() + 5000;
	while (attempts_of_order(order) < 1) { /* claimed: the send is waiting */
		if (now_ms() > until)
			fail_msg("the delivery was never claimed");
		nap_ms(20);
	}
	nap_ms(100);
	uint64_t t = now_ms();
	notifications_stop(slow);
	assert_true(now_ms() - t < 2500); /* ev_wait is 1 s at most; slack for a loaded machine */
	/* put back: due now, the attempt not counted */
	assert_delivery(order, "PENDING", 0);
	assert_int_equal(sql_long("SELECT count(*) FROM deliveries d JOIN notifications n ON n.id ="
	                          " d.notification_id WHERE n.order_id = $1"
	                          " AND d.next_attempt_at <= now()",
	                          order),
	                 1);
	notifications_service_fini(slow);
	close(fd);
	deliver_all(&svc);
	assert_delivery(order, "SENT", 1);
	rec_clear();
}

/* After each test, pass or fail: nothing of it left running or pending. */
static int clean_up(void **state)
{
	(void)state;
	notifications_service_fini(&extra);
	memset(&extra, 0, sizeof(extra));
	if (smtp_pid > 0)
		stop_smtp_server(smtp_pid);
	if (box_dir[0] != '\0')
		remove_box(box_dir);
	box_dir[0] = '\0';
	rec_clear();
	pthread_mutex_lock(&users_lock);
	users_down = 0;
	pthread_mutex_unlock(&users_lock);
	db_conn *c;
	if (db_acquire(pool, 2000, &c) == RPC_STATUS_OK) {
		(void)db_exec(
		    c, NULL,
		    "UPDATE deliveries SET status = 'FAILED', last_error = 'left by a test'"
		    " WHERE status = 'PENDING'",
		    0, NULL, NULL);
		db_release(pool, c);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_each_template_recorded_once, clean_up),
	    cmocka_unit_test_teardown(test_malformed_events_are_parked, clean_up),
	    cmocka_unit_test_teardown(test_list_pages_and_owner, clean_up),
	    cmocka_unit_test_teardown(test_delivery_sends_to_the_users_address, clean_up),
	    cmocka_unit_test_teardown(test_delivery_retries_with_backoff_then_gives_up, clean_up),
	    cmocka_unit_test_teardown(test_sweep_deletes_old_final_deliveries_only, clean_up),
	    cmocka_unit_test_teardown(test_delivery_counts_reach_admin_metrics, clean_up),
	    cmocka_unit_test_teardown(test_deactivated_user_gets_no_order_email, clean_up),
	    cmocka_unit_test_teardown(test_send_email_is_sent_and_never_recorded, clean_up),
	    cmocka_unit_test_teardown(test_log_sink_never_logs_a_secret, clean_up),
	    cmocka_unit_test_teardown(test_smtp_failures_timeouts_and_cancel, clean_up),
	    cmocka_unit_test_teardown(test_smtp_sink_delivers_to_a_real_server, clean_up),
	    cmocka_unit_test_teardown(
	        test_smtp_down_then_up_is_retried_without_holding_back_recording, clean_up),
	    cmocka_unit_test_teardown(test_stop_cancels_a_send_and_puts_it_back, clean_up),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
