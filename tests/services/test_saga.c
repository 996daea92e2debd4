/*
 * test_saga.c - the checkout saga end to end on a real PostgreSQL, every
 * service real: catalog, inventory, orders, payments (its test provider,
 * every charge it is asked for written down), analytics, auth and
 * notifications, each on a server of its own as pantherad runs them; the
 * consumers driven one batch at a time.
 *
 * - An order's emails reach a real SMTP server (python3-aiosmtpd, started
 *   here; skipped when it is not installed): "order placed" and "order
 *   paid", addressed to the buyer's email as auth tells it.
 * - Orders paid with a good card settle PAID with their stock committed; a
 *   declined card settles PAYMENT_FAILED with the stock back; paying again
 *   settles PAID; the sales report matches what was paid and refunded.
 * - A consumer of the saga killed mid-stream: payments.on_order_created
 *   dies after the provider charged and before the payment committed,
 *   orders.on_payment after inventory committed the stock and before the
 *   order settled; each in a process of its own, past a first batch it
 *   committed. Run again, every order settles exactly once: one payment
 *   per order, every charge the provider saw for an order under that
 *   order's one key, stock committed once per paid order and released for
 *   the others, each paid order counted once by the sales report.
 *
 * The killed consumers run in a child that re-executes this program
 * (CHILD_FLAG): nng panics in a forked copy of a process that used it
 * ("not fork-reentrant safe"), and orders.on_payment calls inventory over
 * RPC; a new image has its own nng, pools and connections, nothing shared
 * with the parent.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "analytics.h"
#include "auth.h"
#include "catalog.h"
#include "inventory.h"
#include "notifications.h"
#include "orders.h"
#include "panthera/events.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/money.h"
#include "payments.h"

#define assert_status(expr, want)                                                     \
	do {                                                                          \
		rpc_status got_ = (expr);                                             \
		if (got_ != (want))                                                   \
			fail_msg("%s: got %s, want %s", #expr, rpc_status_name(got_), \
			         rpc_status_name(want));                              \
	} while (0)

#define assert_contains(text, part)                                                     \
	do {                                                                            \
		if (strstr((text), (part)) == NULL)                                     \
			fail_msg("%s lacks \"%s\"; it is:\n%s", #text, (part), (text)); \
	} while (0)

#define ORD(x)  panthera_orders_v1_order_service_##x
#define CAT(x)  panthera_catalog_v1_catalog_service_##x
#define INV(x)  panthera_inventory_v1_inventory_service_##x
#define PAY(x)  panthera_payments_v1_payment_service_##x
#define ANA(x)  panthera_analytics_v1_analytics_service_##x
#define AUTH(x) panthera_auth_v1_auth_service_##x

/* The re-executed program runs one consumer until it dies (child_main). */
#define CHILD_FLAG "--saga-consumer-child"
/* The child's sessions carry this application_name, so the parent can wait
 * for PostgreSQL to end them (and roll back what they held). */
#define CHILD_APP "panthera_saga_child"
enum { CHILD_KILLED = 42, CHILD_DRAINED = 43, CHILD_BROKEN = 44 };

static pgtest pg;
static db_pool *inv_pool, *cat_pool, *ord_pool, *pay_pool, *ana_pool, *auth_pool, *notif_pool;
static inventory_service inv;
static catalog_service cat;
static orders_service ord;
static payments_service pay;
static analytics_service ana;
static auth_service auth;
static rpc_server *servers[6];
static rpc_channel *inv_ch, *cat_ch, *ord_ch, *pay_ch, *ana_ch, *auth_ch;
static char category[37];
static char work_dir[64];    /* auth's keys and the charge log, removed at the end */
static char charge_log[128]; /* <work_dir>/charges.log */
static char child_url[sizeof(pg.url) + 64];

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the payment provider, every charge written down ---- */

/*
 * The built-in test provider, with each charge it answers appended to the
 * charge log as one line "<idempotency key> <cents> captured|refused\n" by
 * this process and by the consumer children alike (O_APPEND, one write a
 * line). A provider is idempotent per key (payments_provider.h): what a
 * real one would have moved is one charge per distinct key, so the log
 * tells whether a charge repeated after a crash kept its key.
 */
typedef struct charge_recorder {
	int fd;           /* the charge log, open for appending */
	unsigned kill_at; /* a child: _exit(CHILD_KILLED) after this charge; 0: never */
	atomic_uint charges;
} charge_recorder;

static rpc_status recorded_charge(void *ctx, int64_t amount_cents, const char *currency,
                                  const char *payment_method_id, const char *idempotency_key,
                                  uint32_t timeout_ms, payments_charge_result *out)
{
	charge_recorder *r = ctx;
	const payments_provider *real = payments_test_provider();
	rpc_status st = real->charge(real->ctx, amount_cents, currency, payment_method_id,
	                             idempotency_key, timeout_ms, out);
	if (st != RPC_STATUS_OK)
		return st;
	char line[320]; /* a key (at most 255 bytes), cents, outcome */
	int n = snprintf(line, sizeof(line), "%s %lld %s\n", idempotency_key,
	                 (long long)amount_cents, out->succeeded ? "captured" : "refused");
	if (n <= 0 || (size_t)n >= sizeof(line) || write(r->fd, line, (size_t)n) != n)
		return RPC_STATUS_INTERNAL; /* not written down: the charge fails, is retried */
	if (r->kill_at != 0 && atomic_fetch_add(&r->charges, 1) + 1 == r->kill_at)
		_exit(CHILD_KILLED); /* charged, and the payment not committed */
	return RPC_STATUS_OK;
}

static rpc_status recorded_refund(void *ctx, const char *provider_ref, int64_t amount_cents,
                                  const char *currency, const char *idempotency_key,
                                  uint32_t timeout_ms)
{
	(void)ctx;
	const payments_provider *real = payments_test_provider();
	return real->refund(real->ctx, provider_ref, amount_cents, currency, idempotency_key,
	                    timeout_ms);
}

static charge_recorder parent_charges = {.fd = -1};
static const payments_provider recorded_provider = {
    .name = "test", .ctx = &parent_charges, .charge = recorded_charge, .refund = recorded_refund};

/* ---- serving ---- */

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
static rpc_status reg_auth(rpc_server *s, void *v)
{
	return auth_service_register(s, v);
}

/* Serve one service at inproc://saga-<name> on *srv; *ch dials it. */
static int serve(rpc_server **srv, const char *name, reg_fn reg, void *svc, rpc_channel **ch)
{
	char url[64];
	snprintf(url, sizeof(url), "inproc://saga-%s", name);
	const char *u = url;
	rpc_server_opts so = {.workers = 8, .queue_len = 64};
	return rpc_server_create(srv, &so) == RPC_STATUS_OK && reg(*srv, svc) == RPC_STATUS_OK &&
	               rpc_server_listen(*srv, url) == RPC_STATUS_OK &&
	               rpc_server_start(*srv) == RPC_STATUS_OK &&
	               rpc_channel_open(ch, &u, 1, NULL) == RPC_STATUS_OK
	           ? 0
	           : -1;
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	snprintf(work_dir, sizeof(work_dir), "/tmp/panthera-saga-XXXXXX");
	if (mkdtemp(work_dir) == NULL)
		return -1;
	snprintf(charge_log, sizeof(charge_log), "%s/charges.log", work_dir);
	parent_charges.fd = open(charge_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (parent_charges.fd < 0)
		return -1;
	if (pgtest_start(&pg) != 0 || open_pool(&inv_pool, "inventory") != 0 ||
	    open_pool(&cat_pool, "catalog") != 0 || open_pool(&ord_pool, "orders") != 0 ||
	    open_pool(&pay_pool, "payments") != 0 || open_pool(&ana_pool, "analytics") != 0 ||
	    open_pool(&auth_pool, "auth") != 0 || open_pool(&notif_pool, "notifications") != 0)
		return -1;
	snprintf(child_url, sizeof(child_url), "%s&application_name=" CHILD_APP, pg.url);
	inv.pool = inv_pool;
	if (serve(&servers[0], "inventory", reg_inv, &inv, &inv_ch) != 0)
		return -1;
	cat = (catalog_service){.pool = cat_pool, .inventory = inv_ch};
	if (catalog_service_init(&cat) != RPC_STATUS_OK ||
	    serve(&servers[1], "catalog", reg_cat, &cat, &cat_ch) != 0)
		return -1;
	/* payments and orders call each other: servers first, channels set after */
	pay = (payments_service){
	    .pool = pay_pool, .orders_events = ord_pool, .provider = &recorded_provider};
	ord = (orders_service){
	    .pool = ord_pool, .payments_events = pay_pool, .catalog = cat_ch, .inventory = inv_ch};
	if (orders_service_init(&ord) != RPC_STATUS_OK ||
	    serve(&servers[2], "payments", reg_pay, &pay, &pay_ch) != 0)
		return -1;
	ord.payments = pay_ch;
	if (serve(&servers[3], "orders", reg_ord, &ord, &ord_ch) != 0)
		return -1;
	pay.orders = ord_ch;
	ana = (analytics_service){.pool = ana_pool, .orders_events = ord_pool};
	if (analytics_service_init(&ana) != RPC_STATUS_OK ||
	    serve(&servers[4], "analytics", reg_ana, &ana, &ana_ch) != 0)
		return -1;
	/* UserService (BatchGetUsers): where notifications learn the addresses */
	auth = (auth_service){.pool = auth_pool, .data_dir = work_dir, .scrypt_log_n = 10};
	if (auth_service_init(&auth) != RPC_STATUS_OK ||
	    serve(&servers[5], "auth", reg_auth, &auth, &auth_ch) != 0)
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
	for (int i = 5; i >= 0; i--)
		rpc_server_destroy(servers[i]);
	auth_service_fini(&auth);
	orders_service_fini(&ord);
	analytics_service_fini(&ana);
	rpc_channel_close(auth_ch);
	rpc_channel_close(inv_ch);
	rpc_channel_close(cat_ch);
	rpc_channel_close(ord_ch);
	rpc_channel_close(pay_ch);
	rpc_channel_close(ana_ch);
	db_pool_close(notif_pool);
	db_pool_close(auth_pool);
	db_pool_close(ana_pool);
	db_pool_close(pay_pool);
	db_pool_close(ord_pool);
	db_pool_close(cat_pool);
	db_pool_close(inv_pool);
	pgtest_destroy(&pg);
	if (parent_charges.fd >= 0)
		close(parent_charges.fd);
	if (work_dir[0] != '\0') {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "test_saga: could not remove %s\n", work_dir);
	}
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

/* Units of `product` that can be bought (and, if `held` is not NULL, the
 * units reserved for unpaid orders), as InventoryService tells. */
static int stock_of(const char *product, int *held)
{
	Panthera__Inventory__V1__GetStockRequest req =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	req.product_id = (char *)product;
	const Panthera__Inventory__V1__Stock *s;
	rpc_reply *reply;
	assert_status(INV(get_stock)(inv_ch, &req, NULL, &s, &reply), RPC_STATUS_OK);
	int n = s->available;
	if (held != NULL)
		*held = s->reserved;
	rpc_reply_free(reply);
	return n;
}

static int available(const char *product)
{
	return stock_of(product, NULL);
}

static Panthera__Orders__V1__ShippingAddress address = {
    PROTOBUF_C_MESSAGE_INIT(&panthera__orders__v1__shipping_address__descriptor),
    "2 Market St",
    "Portland",
    "OR",
    "97201",
    "US"};

/* Place an order of `qty` x `product` as `user`: its id into id[37], its
 * total in cents into *total (when not NULL). */
static void place_order(const char *user, const char *product, int qty, const char *method,
                        char id[37], int64_t *total)
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
	if (total != NULL && money_parse(o->total_amount, total) != 0)
		fail_msg("order %s: total \"%s\" is not an amount", o->id, o->total_amount);
	rpc_reply_free(reply);
}

static void place(const char *user, const char *product, int qty, const char *method, char id[37])
{
	place_order(user, product, qty, method, id, NULL);
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

static const char *status_name(Panthera__Orders__V1__OrderStatus s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &panthera__orders__v1__order_status__descriptor, s);
	return v != NULL ? v->name : "an unknown status";
}

static Panthera__Orders__V1__OrderStatus status_of(const char *id)
{
	rpc_reply *reply;
	Panthera__Orders__V1__OrderStatus s = get(id, &reply)->status;
	rpc_reply_free(reply);
	return s;
}

/* A UTC day "YYYY-MM-DD", `days` from today. */
static void utc_day(char out[16], int days)
{
	time_t t = time(NULL) + (time_t)days * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

/* What the sales report says from yesterday to tomorrow (so that midnight
 * falling inside a test changes nothing): orders paid, revenue in cents,
 * and, for `product` (may be NULL), its rank among the top products (1 the
 * best seller), units and revenue in cents (all 0 when it is not there). */
typedef struct sales {
	int orders;
	int64_t revenue;
	int rank, units;
	int64_t product_revenue;
} sales;

static sales sales_report(const char *product)
{
	char from[16], to[16];
	utc_day(from, -1);
	utc_day(to, 1);
	Panthera__Analytics__V1__GetSalesReportRequest req =
	    PANTHERA__ANALYTICS__V1__GET_SALES_REPORT_REQUEST__INIT;
	req.from = from;
	req.to = to;
	as_caller a;
	char admin[37];
	assert_status(id_uuid4(admin), RPC_STATUS_OK);
	const Panthera__Analytics__V1__SalesReport *rep;
	rpc_reply *reply;
	assert_status(ANA(get_sales_report)(ana_ch, &req, as(&a, admin, 1), &rep, &reply),
	              RPC_STATUS_OK);
	sales s = {.orders = rep->order_count};
	if (money_parse(rep->revenue, &s.revenue) != 0)
		fail_msg("revenue \"%s\" is not an amount", rep->revenue);
	for (size_t i = 0; product != NULL && i < rep->n_top_products; i++) {
		if (strcmp(rep->top_products[i]->product_id, product) != 0)
			continue;
		s.rank = (int)i + 1;
		s.units = rep->top_products[i]->quantity;
		if (money_parse(rep->top_products[i]->revenue, &s.product_revenue) != 0)
			fail_msg("product revenue \"%s\" is not an amount",
			         rep->top_products[i]->revenue);
	}
	rpc_reply_free(reply);
	return s;
}

/* The first value of `sql` (one text parameter, or none) as a number. */
static long sql_long(db_pool *p, const char *sql, const char *param)
{
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(p, 5000, &c), RPC_STATUS_OK);
	const char *v[1] = {param};
	assert_status(db_exec(c, NULL, sql, param != NULL ? 1 : 0, v, &r), RPC_STATUS_OK);
	long n = PQntuples(r) > 0 ? atol(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	db_release(p, c);
	return n;
}

/* ---- an order's emails, through a real SMTP server ---- */

#define PYTHON "/usr/bin/python3"

/* An SMTP server on 127.0.0.1 and a port the system picks, printed on
 * stdout once it listens; each message it accepts becomes
 * <folder>/mail-NNN.eml: a line "X-Rcpt-To: <recipients>", then the DATA
 * as received. */
static const char smtp_sink_py[] =
    "import asyncio, os, sys\n"
    "from aiosmtpd.smtp import SMTP\n"
    "class Folder:\n"
    "    def __init__(self, path):\n"
    "        self.path, self.count = path, 0\n"
    "    async def handle_DATA(self, server, session, envelope):\n"
    "        self.count += 1\n"
    "        name = os.path.join(self.path, 'mail-%03d' % self.count)\n"
    "        with open(name + '.part', 'wb') as out:\n"
    "            out.write(b'X-Rcpt-To: ' + ','.join(envelope.rcpt_tos).encode() + b'\\r\\n')\n"
    "            out.write(envelope.content)\n"
    "        os.replace(name + '.part', name + '.eml')\n"
    "        return '250 2.0.0 stored'\n"
    "async def serve(path):\n"
    "    folder = Folder(path)\n"
    "    server = await asyncio.get_running_loop().create_server(\n"
    "        lambda: SMTP(folder, hostname='saga.test'), '127.0.0.1', 0)\n"
    "    print(server.sockets[0].getsockname()[1], flush=True)\n"
    "    await server.serve_forever()\n"
    "asyncio.run(serve(sys.argv[1]))\n";

/* What the email test started, for its teardown to stop even after a
 * failure half-way. */
static struct {
	pid_t smtp;      /* the SMTP server, 0: none */
	char folder[64]; /* its messages, "" when none */
	notifications_service svc;
	int svc_ready;
} mail;

static int have_aiosmtpd(void)
{
	return access(PYTHON, X_OK) == 0 &&
	       system(PYTHON " -c 'import aiosmtpd' >/dev/null 2>&1") == 0;
}

/* Start the SMTP server on mail.folder; its port. */
static int start_smtp_sink(void)
{
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (dup2(out[1], 1) < 0 || null < 0 || dup2(null, 2) < 0)
			_exit(127);
		execl(PYTHON, "python3", "-c", smtp_sink_py, mail.folder, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	mail.smtp = pid;
	char line[16] = "";
	size_t got = 0;
	uint64_t until = now_ms() + 15000;
	while (got < sizeof(line) - 1 && strchr(line, '\n') == NULL) {
		struct pollfd p = {.fd = out[0], .events = POLLIN};
		uint64_t now = now_ms();
		if (now >= until || poll(&p, 1, (int)(until - now)) <= 0)
			break;
		ssize_t n = read(out[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		line[got] = '\0';
	}
	close(out[0]);
	int port = atoi(line);
	if (strchr(line, '\n') == NULL || port <= 0 || port > 65535)
		fail_msg("the SMTP server did not tell its port (it printed \"%s\")", line);
	return port;
}

/* The messages the SMTP server stored, each malloc'd, in the order it
 * accepted them; their count. */
static size_t smtp_messages(char *msgs[], size_t cap)
{
	size_t n = 0;
	for (size_t k = 1; n < cap; k++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/mail-%03zu.eml", mail.folder, k);
		FILE *f = fopen(path, "rb");
		if (f == NULL)
			break;
		char *text = calloc(1, 65536);
		assert_non_null(text);
		size_t len = fread(text, 1, 65535, f);
		assert_true(len > 0);
		fclose(f);
		msgs[n++] = text;
	}
	return n;
}

static int stop_email_test(void **state)
{
	(void)state;
	if (mail.svc_ready)
		notifications_service_fini(&mail.svc);
	mail.svc_ready = 0;
	if (mail.smtp > 0) {
		kill(mail.smtp, SIGTERM);
		waitpid(mail.smtp, NULL, 0);
	}
	mail.smtp = 0;
	if (mail.folder[0] != '\0') {
		DIR *d = opendir(mail.folder);
		struct dirent *e;
		while (d != NULL && (e = readdir(d)) != NULL) {
			char path[512];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", mail.folder, e->d_name);
			unlink(path);
		}
		if (d != NULL)
			closedir(d);
		rmdir(mail.folder);
	}
	mail.folder[0] = '\0';
	return 0;
}

/* A user of the real auth service: id into user[37], the email as auth
 * keeps it into email[128]. */
static void register_buyer(const char *address, char user[37], char email[128])
{
	Panthera__Auth__V1__RegisterUserRequest req =
	    PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	req.email = (char *)address;
	req.password = "saga-password-1";
	req.first_name = "Sam";
	req.last_name = "Saga";
	const Panthera__Users__V1__User *u;
	rpc_reply *reply;
	assert_status(AUTH(register_user)(auth_ch, &req, NULL, &u, &reply), RPC_STATUS_OK);
	snprintf(user, 37, "%s", u->id);
	snprintf(email, 128, "%s", u->email);
	rpc_reply_free(reply);
}

/* Run the notifications consumer, then the delivery queue, until both are
 * done. */
static void send_notifications(void)
{
	uint64_t until = now_ms() + 20000;
	unsigned n;
	do {
		assert_status(notifications_process_events(&mail.svc, &n), RPC_STATUS_OK);
		assert_true(now_ms() < until);
	} while (n > 0);
	do {
		assert_status(notifications_deliver_due(&mail.svc, &n), RPC_STATUS_OK);
		assert_true(now_ms() < until);
	} while (n > 0);
}

static void test_order_emails_reach_the_local_smtp_server(void **state)
{
	(void)state;
	if (!have_aiosmtpd()) {
		fprintf(stderr, "python3-aiosmtpd is not installed (make deps): the SMTP part of"
		                " the saga is skipped\n");
		skip();
	}
	snprintf(mail.folder, sizeof(mail.folder), "/tmp/panthera-saga-smtp-XXXXXX");
	assert_non_null(mkdtemp(mail.folder));
	int port = start_smtp_sink();
	char url[64];
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	/* as pantherad wires it: the orders outbox, UserService of auth, SMTP */
	mail.svc = (notifications_service){.pool = notif_pool,
	                                   .orders_events = ord_pool,
	                                   .users = auth_ch,
	                                   .smtp_url = url,
	                                   .smtp_timeout_ms = 5000};
	assert_status(notifications_service_init(&mail.svc), RPC_STATUS_OK);
	mail.svc_ready = 1;

	char user[37], email[128], mug[37], order[37];
	register_buyer("sam.saga@example.com", user, email);
	make_product("SAGA-MUG", "9.25", 5, mug);
	place(user, mug, 2, "pm_card_visa", order);
	settle();
	assert_int_equal(status_of(order), PANTHERA__ORDERS__V1__ORDER_STATUS__PAID);
	send_notifications();

	notifications_counts counts;
	assert_status(notifications_delivery_counts(&mail.svc, &counts), RPC_STATUS_OK);
	assert_int_equal(counts.sent, 2);
	assert_int_equal(counts.pending, 0);
	assert_int_equal(counts.given_up, 0);
	char *msgs[4];
	size_t n = smtp_messages(msgs, 4);
	assert_int_equal(n, 2);
	char rcpt[160], placed[160], paid[160];
	snprintf(rcpt, sizeof(rcpt), "X-Rcpt-To: %s\r\n", email);
	snprintf(placed, sizeof(placed), "\r\nSubject: Your order %s has been placed\r\n", order);
	snprintf(paid, sizeof(paid), "\r\nSubject: Your order %s is paid\r\n", order);
	int saw_placed = 0, saw_paid = 0;
	for (size_t i = 0; i < n; i++) {
		/* to the buyer, and nobody else */
		assert_int_equal(strncmp(msgs[i], rcpt, strlen(rcpt)), 0);
		const char *body = strstr(msgs[i], "\r\n\r\n");
		assert_non_null(body);
		assert_contains(body, order);
		assert_contains(body, "18.50");
		saw_placed += strstr(msgs[i], placed) != NULL;
		saw_paid += strstr(msgs[i], paid) != NULL;
		free(msgs[i]);
	}
	assert_int_equal(saw_placed, 1);
	assert_int_equal(saw_paid, 1);
}
/* ---- the saga, every card ---- */

static void test_orders_settle_through_the_real_services(void **state)
{
	(void)state;
	char user[37], tent[37], lamp[37];
	assert_status(id_uuid4(user), RPC_STATUS_OK);
	make_product("SAGA-TENT", "120.00", 10, tent);
	make_product("SAGA-LAMP", "15.50", 10, lamp);
	sales before = sales_report(tent); /* what the tests before this one sold */

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
	sales after = sales_report(tent);
	assert_int_equal(after.orders - before.orders, 3);
	assert_int_equal(after.revenue - before.revenue, 60000); /* 240 + 62 + 360 - 62 */
	assert_int_equal(after.rank, 1);                         /* the best seller */
	assert_int_equal(after.product_revenue, 60000);
}

/* ---- consumers killed mid-stream ---- */

/*
 * The child (this program run again with CHILD_FLAG ROLE URL KILL_AT LOG):
 * one consumer of the saga on pools of its own, a batch after another,
 * until it dies at the KILL_AT-th step it makes outside its transaction:
 *   payments  payments.on_order_created; dies once the provider answered
 *             its KILL_AT-th charge, before the payment commits;
 *   orders    orders.on_payment, InventoryService served here on the same
 *             database; dies once inventory answered its KILL_AT-th Commit
 *             or Release, before the order settles.
 * It ends with _exit: CHILD_KILLED as planned, CHILD_DRAINED when it ran out
 * of events first, CHILD_BROKEN when it could not start or a batch failed.
 */
static db_pool *child_pool(const char *url, const char *schema)
{
	db_pool *p;
	db_pool_opts o = {.url = url, .size = 2, .schema = schema};
	if (db_pool_open(&p, &o) != RPC_STATUS_OK)
		_exit(CHILD_BROKEN);
	return p;
}

static _Noreturn void child_run_payments(const char *url, unsigned kill_at, const char *log_path)
{
	static charge_recorder rec;
	rec.fd = open(log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	rec.kill_at = kill_at;
	if (rec.fd < 0)
		_exit(CHILD_BROKEN);
	static const payments_provider dying = {
	    .name = "test", .ctx = &rec, .charge = recorded_charge, .refund = recorded_refund};
	static payments_service svc;
	svc.pool = child_pool(url, "payments");
	svc.orders_events = child_pool(url, "orders");
	svc.provider = &dying;
	for (int batch = 0; batch < 1000; batch++) {
		unsigned n = 0;
		if (payments_process_events(&svc, &n) != RPC_STATUS_OK)
			_exit(CHILD_BROKEN);
		if (n == 0)
			break;
	}
	_exit(CHILD_DRAINED);
}

static atomic_uint child_steps;
static unsigned child_kill_at;

/* A client interceptor of the child's inventory channel. */
static void die_after_inventory_step(const rpc_method_desc *m, rpc_status st, uint64_t us,
                                     void *arg)
{
	(void)us;
	(void)arg;
	if (st == RPC_STATUS_OK &&
	    (strcmp(m->name, "Commit") == 0 || strcmp(m->name, "Release") == 0) &&
	    atomic_fetch_add(&child_steps, 1) + 1 == child_kill_at)
		_exit(CHILD_KILLED); /* the stock moved; the order has not settled */
}

static _Noreturn void child_run_orders(const char *url, unsigned kill_at)
{
	child_kill_at = kill_at;
	static inventory_service inv_here;
	static orders_service ord_here;
	inv_here.pool = child_pool(url, "inventory");
	rpc_server *srv;
	rpc_channel *inv_here_ch;
	if (serve(&srv, "child-inventory", reg_inv, &inv_here, &inv_here_ch) != 0 ||
	    rpc_channel_add_interceptor(inv_here_ch, NULL, die_after_inventory_step, NULL) !=
	        RPC_STATUS_OK)
		_exit(CHILD_BROKEN);
	ord_here.pool = child_pool(url, "orders");
	ord_here.payments_events = child_pool(url, "payments");
	ord_here.inventory = inv_here_ch;
	if (orders_service_init(&ord_here) != RPC_STATUS_OK)
		_exit(CHILD_BROKEN);
	for (int batch = 0; batch < 1000; batch++) {
		unsigned n = 0;
		if (orders_process_events(&ord_here, &n) != RPC_STATUS_OK)
			_exit(CHILD_BROKEN);
		if (n == 0)
			break;
	}
	_exit(CHILD_DRAINED);
}

static _Noreturn void child_main(int argc, char **argv)
{
	log_set_level(LOG_ERROR);
	if (argc != 6)
		_exit(CHILD_BROKEN);
	unsigned kill_at = (unsigned)strtoul(argv[4], NULL, 10);
	if (strcmp(argv[2], "payments") == 0)
		child_run_payments(argv[3], kill_at, argv[5]);
	if (strcmp(argv[2], "orders") == 0)
		child_run_orders(argv[3], kill_at);
	_exit(CHILD_BROKEN);
}

/* Run `role`'s consumer in a child that dies at its kill_at-th step, and
 * check that it did. Its sessions are gone when this returns, and with
 * them what they had not committed. */
static void kill_consumer_midstream(const char *role, unsigned kill_at)
{
	char k[16];
	snprintf(k, sizeof(k), "%u", kill_at);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_saga", CHILD_FLAG, role, child_url, k, charge_log,
		      (char *)NULL);
		_exit(127);
	}
	int status = 0;
	uint64_t until = now_ms() + 20000;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0)
			fail_msg("waitpid: %s", strerror(errno));
		if (now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("the %s consumer child did not end within 20 s", role);
		}
		nap_ms(10);
	}
	if (!WIFEXITED(status))
		fail_msg("the %s consumer child died of signal %d", role, WTERMSIG(status));
	/* PostgreSQL ends a session whose client is gone, rolling back its
	 * transaction and dropping its locks (the consumer's cursor row) */
	until = now_ms() + 10000;
	while (sql_long(pay_pool,
	                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
	                CHILD_APP) > 0) {
		if (now_ms() > until)
			fail_msg("the sessions of the dead %s consumer are still there", role);
		nap_ms(10);
	}
	int code = WEXITSTATUS(status);
	if (code != CHILD_KILLED)
		fail_msg("the %s consumer child ended with %d, not killed at step %u: %s", role,
		         code, kill_at,
		         code == CHILD_DRAINED  ? "it ran out of events first"
		         : code == CHILD_BROKEN ? "it could not start, or a batch failed"
		                                : "it could not be run");
}

#define CRASH_ORDERS 80
/* Past the first batch of each consumer (64 events, one transaction): the
 * child commits that batch, then dies in the middle of the next one. */
#define CRASH_KILL_AT 70

typedef struct crash_order {
	char id[37];
	const char *user;
	int product; /* 0 or 1 */
	int qty;
	int good; /* paid with a good card; else declined */
	int64_t total;
} crash_order;

static crash_order crash[CRASH_ORDERS];

/* How many of the crash orders have a payment recorded. Read from the
 * payments schema: PaymentService has no call that lists an order's
 * payments. */
static long payments_recorded(void)
{
	char ids[CRASH_ORDERS * 37 + 3] = "{";
	for (int i = 0; i < CRASH_ORDERS; i++) {
		strcat(ids, crash[i].id);
		strcat(ids, i + 1 < CRASH_ORDERS ? "," : "}");
	}
	return sql_long(pay_pool,
	                "SELECT count(*) FROM payments.payments WHERE order_id = ANY($1::uuid[])",
	                ids);
}

static int count_orders_in(Panthera__Orders__V1__OrderStatus s)
{
	int n = 0;
	for (int i = 0; i < CRASH_ORDERS; i++)
		n += status_of(crash[i].id) == s;
	return n;
}

/* The charge log, whole, malloc'd. */
static char *read_charge_log(void)
{
	FILE *f = fopen(charge_log, "rb");
	assert_non_null(f);
	size_t cap = 1 << 16, len = 0;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t n;
	while ((n = fread(text + len, 1, cap - 1 - len, f)) > 0) {
		len += n;
		if (len == cap - 1) {
			char *more = realloc(text, cap *= 2);
			assert_non_null(more);
			text = more;
		}
	}
	fclose(f);
	text[len] = '\0';
	return text;
}

/*
 * The provider's side of the crash orders: every charge asked for one of
 * them must carry that order's saga key and its total, and none may have
 * been asked more than twice (once by the killed child, once again after).
 * Returns the charges asked; *twice gets the orders asked twice, *never
 * those not asked yet.
 */
static int charges_asked(int *twice, int *never)
{
	char *log = read_charge_log();
	size_t len = strlen(log);
	for (char *nl = log; (nl = strchr(nl, '\n')) != NULL; nl++)
		*nl = '\0'; /* one string a line */
	int total = 0;
	*twice = *never = 0;
	for (int i = 0; i < CRASH_ORDERS; i++) {
		char want[160];
		snprintf(want, sizeof(want), "OrderCreated:%.36s %lld %s", crash[i].id,
		         (long long)crash[i].total, crash[i].good ? "captured" : "refused");
		int asked = 0;
		for (char *line = log; line < log + len; line += strlen(line) + 1) {
			if (strstr(line, crash[i].id) == NULL)
				continue;
			if (strcasecmp(line, want) != 0)
				fail_msg("order %s charged as \"%s\", want \"%s\"", crash[i].id,
				         line, want);
			asked++;
		}
		if (asked > 2)
			fail_msg("order %s: the provider was asked %d times", crash[i].id, asked);
		*twice += asked == 2;
		*never += asked == 0;
		total += asked;
	}
	free(log);
	return total;
}

static void test_killed_consumers_settle_every_order_exactly_once(void **state)
{
	(void)state;
	settle(); /* nothing of the tests before is left waiting */
	char product[2][37];
	const char *price[2] = {"20.00", "35.00"};
	make_product("CRASH-KETTLE", price[0], 1000, product[0]);
	make_product("CRASH-STOVE", price[1], 1000, product[1]);
	char users[4][37];
	for (int u = 0; u < 4; u++)
		assert_status(id_uuid4(users[u]), RPC_STATUS_OK);
	sales before = sales_report(NULL);

	int held[2] = {0, 0}, paid_units[2] = {0, 0}, paid_orders = 0;
	int64_t paid_cents[2] = {0, 0};
	for (int i = 0; i < CRASH_ORDERS; i++) {
		crash_order *o = &crash[i];
		o->user = users[i % 4];
		o->product = i % 2;
		o->qty = 1 + i % 3;
		o->good = i % 5 != 4;
		place_order(o->user, product[o->product], o->qty,
		            o->good ? "pm_card_visa" : "pm_card_declined", o->id, &o->total);
		held[o->product] += o->qty;
		if (o->good) {
			paid_units[o->product] += o->qty;
			paid_cents[o->product] += o->total;
			paid_orders++;
		}
	}
	for (int p = 0; p < 2; p++) {
		int reserved;
		assert_int_equal(stock_of(product[p], &reserved), 1000 - held[p]);
		assert_int_equal(reserved, held[p]);
	}

	/* 1. payments.on_order_created dies between a charge and its commit */
	kill_consumer_midstream("payments", CRASH_KILL_AT);
	long committed = payments_recorded();
	if (committed <= 0 || committed >= CRASH_KILL_AT)
		fail_msg("%ld payments committed before the kill: want a first batch committed and"
		         " the kill in the next one (is a batch still 64 events?)",
		         committed);
	int twice, never;
	assert_int_equal(charges_asked(&twice, &never), CRASH_KILL_AT); /* the child's, so far */
	assert_int_equal(twice, 0);
	assert_int_equal(never, CRASH_ORDERS - CRASH_KILL_AT);
	/* the consumer runs again: what the kill rolled back is charged again */
	uint64_t until = now_ms() + 20000;
	unsigned n;
	do {
		assert_status(payments_process_events(&pay, &n), RPC_STATUS_OK);
		assert_true(now_ms() < until);
	} while (n > 0);
	assert_int_equal(payments_recorded(), CRASH_ORDERS);
	/* under the same key each time: a real provider moves the money once */
	assert_int_equal(charges_asked(&twice, &never), CRASH_ORDERS + (CRASH_KILL_AT - committed));
	assert_int_equal(twice, CRASH_KILL_AT - committed);
	assert_int_equal(never, 0);
	assert_int_equal(count_orders_in(PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT),
	                 CRASH_ORDERS);

	/* 2. orders.on_payment dies between inventory's step and the order's commit */
	kill_consumer_midstream("orders", CRASH_KILL_AT);
	int pending = count_orders_in(PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT);
	int settled = CRASH_ORDERS - pending;
	if (settled <= 0 || settled >= CRASH_KILL_AT)
		fail_msg("%d orders settled before the kill: want a first batch committed and the"
		         " kill in the next one (is a batch still 64 events?)",
		         settled);
	/* the units of the orders inventory moved for although they did not settle */
	int pending_units = 0, reserved_units = 0;
	for (int i = 0; i < CRASH_ORDERS; i++) {
		if (status_of(crash[i].id) == PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT)
			pending_units += crash[i].qty;
	}
	for (int p = 0; p < 2; p++) {
		int reserved;
		stock_of(product[p], &reserved);
		reserved_units += reserved;
	}
	assert_true(pending_units - reserved_units >= CRASH_KILL_AT - settled);

	/* 3. everything runs again, to the end */
	settle();
	for (int i = 0; i < CRASH_ORDERS; i++) {
		crash_order *o = &crash[i];
		rpc_reply *reply;
		const Panthera__Orders__V1__Order *got = get(o->id, &reply);
		Panthera__Orders__V1__OrderStatus want =
		    o->good ? PANTHERA__ORDERS__V1__ORDER_STATUS__PAID
		            : PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED;
		if (got->status != want)
			fail_msg("order %s (%s card) is %s, want %s", o->id,
			         o->good ? "good" : "declined", status_name(got->status),
			         status_name(want));
		/* its one payment, as its owner sees it */
		assert_int_equal(
		    sql_long(pay_pool, "SELECT count(*) FROM payments.payments WHERE order_id = $1",
		             o->id),
		    1);
		Panthera__Payments__V1__GetPaymentRequest gp =
		    PANTHERA__PAYMENTS__V1__GET_PAYMENT_REQUEST__INIT;
		gp.payment_id = got->payment_id;
		as_caller a;
		const Panthera__Payments__V1__Payment *p;
		rpc_reply *preply;
		assert_status(PAY(get_payment)(pay_ch, &gp, as(&a, o->user, 0), &p, &preply),
		              RPC_STATUS_OK);
		assert_string_equal(p->order_id, o->id);
		assert_int_equal(p->status, o->good
		                                ? PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__SUCCEEDED
		                                : PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__FAILED);
		int64_t amount;
		assert_int_equal(money_parse(p->amount, &amount), 0);
		assert_int_equal(amount, o->total);
		rpc_reply_free(preply);
		rpc_reply_free(reply);
	}
	/* the provider was asked nothing more */
	assert_int_equal(charges_asked(&twice, &never), CRASH_ORDERS + (CRASH_KILL_AT - committed));
	/* stock: committed once per paid order, released for the others */
	for (int p = 0; p < 2; p++) {
		int reserved;
		assert_int_equal(stock_of(product[p], &reserved), 1000 - paid_units[p]);
		assert_int_equal(reserved, 0);
	}
	/* nothing parked on the way */
	long parked;
	assert_status(
	    ev_dead_letter_count(pay_pool, "payments", PAYMENTS_CONSUMER_ORDER_CREATED, &parked),
	    RPC_STATUS_OK);
	assert_int_equal(parked, 0);
	assert_status(ev_dead_letter_count(ord_pool, "orders", "orders.on_payment", &parked),
	              RPC_STATUS_OK);
	assert_int_equal(parked, 0);
	/* the sales report: each paid order once */
	for (int p = 0; p < 2; p++) {
		sales s = sales_report(product[p]);
		assert_int_equal(s.orders - before.orders, paid_orders);
		assert_int_equal(s.revenue - before.revenue, paid_cents[0] + paid_cents[1]);
		assert_int_equal(s.units, paid_units[p]);
		assert_int_equal(s.product_revenue, paid_cents[p]);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], CHILD_FLAG) == 0)
		child_main(argc, argv);
	const struct CMUnitTest tests[] = {
	    /* first: its consumer of the orders outbox starts from the beginning,
	     * and every order before it would be mailed (to users auth does not
	     * know, given up, logged as errors) */
	    cmocka_unit_test_teardown(test_order_emails_reach_the_local_smtp_server,
	                              stop_email_test),
	    cmocka_unit_test(test_orders_settle_through_the_real_services),
	    cmocka_unit_test(test_killed_consumers_settle_every_order_exactly_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
