/*
 * pantherad - Panthera's services in one process.
 *
 * Reads the configuration (flags and PANTHERA_* variables, --help lists
 * them), opens each service's database pool (PANTHERA_<SERVICE>_DB_URL or
 * PANTHERA_DB_URL), applies its migrations, registers every service on one
 * RPC server listening on --rpc-url, and serves until SIGINT or SIGTERM,
 * when it drains the server and exits 0. --services picks some of them;
 * built as panthera-<service> (-DPANTHERA_DEFAULT_SERVICES="<service>") the
 * same main serves one service alone by default, over any URL.
 *
 * Services today: auth and users (signing keys in <data-dir>/keys, the
 * bootstrap admin when both PANTHERA_BOOTSTRAP_ADMIN_* are set), catalog
 * (the demo catalog is loaded into an empty database), inventory, and
 * AdminService (metrics, dead-letter replay) on every process. pantherad
 * itself (every service, not a panthera-<service> binary) also serves the
 * REST gateway on --http-addr (gateway_proc.c, shared with
 * panthera-gateway, which serves the gateway alone).
 *
 * `pantherad --health-check URL` (any panthera-<service> binary too) asks
 * the server at URL for its health and exits 0 when it answers SERVING, 1
 * otherwise (a line on stderr says why), 2 for a bad command line: the
 * exec probe of deploy/k8s, whose images have no other RPC client.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "catalog.h"
#include "inventory.h"
#include "orders.h"
#include "payments.h"
#include "cart.h"
#include "analytics.h"
#include "reviews.h"
#include "notifications.h"
#include "panthera/admin.h"
#include "panthera/config.h"
#include "panthera/events.h"
#include "panthera/log.h"
#include "gateway_proc.h"
#include "rpc_cfg.h"
#include "grpc/health/v1/health.panthera.h"

/* A schema whose event tables the sweeper prunes: its outbox (a
 * producer) and/or its processed ids (a consumer). */
typedef struct prune_target {
	db_pool *pool;
	const char *schema;
	int outbox, processed;
} prune_target;

#define MAX_PRUNE_TARGETS 16
#define PRUNE_EVERY_S     600 /* pruning scans: not every sweep */

typedef struct sweeper {
	inventory_service *svc;
	auth_service *auth;
	/* their purges of what is past its retention (each: when served here) */
	orders_service *orders;
	payments_service *payments;
	cart_service *cart;
	notifications_service *notifications;
	unsigned interval_s;
	uint32_t retention_s; /* 0: never prune */
	prune_target prune[MAX_PRUNE_TARGETS];
	int n_prune;
	time_t last_prune;
	pthread_mutex_t lock;
	pthread_cond_t stop_cv;
	int stop;
} sweeper;

static void sweeper_add(sweeper *s, db_pool *pool, const char *schema, int outbox, int processed)
{
	if (pool != NULL && s->n_prune < MAX_PRUNE_TARGETS)
		s->prune[s->n_prune++] = (prune_target){pool, schema, outbox, processed};
}

/* One service's purge: log what it did. */
static void purged(const char *event, const char *what, rpc_status st, long n)
{
	if (st != RPC_STATUS_OK)
		log_write(LOG_WARN, NULL, event, "purge failed: %s", rpc_status_name(st));
	else if (n > 0)
		log_write(LOG_INFO, NULL, event, "deleted %ld %s", n, what);
}

/* What the services keep only for a while (Idempotency-Keys, checkouts
 * applied, delivered emails' queue rows), past their retention. */
static void purge_services(sweeper *s)
{
	long n = 0;
	rpc_status st;
	if (s->orders->pool != NULL) {
		st = orders_sweep(s->orders, &n);
		purged("orders.sweep", "expired Idempotency-Keys", st, n);
	}
	if (s->payments->pool != NULL) {
		st = payments_sweep(s->payments, &n);
		purged("payments.sweep", "expired Idempotency-Keys", st, n);
	}
	if (s->cart->pool != NULL) {
		st = cart_sweep(s->cart, &n);
		purged("cart.sweep", "old checkouts", st, n);
	}
	if (s->notifications->pool != NULL) {
		st = notifications_sweep(s->notifications, &n);
		purged("notifications.sweep", "old delivery rows", st, n);
	}
}

/* Every PRUNE_EVERY_S: the services' purges, then the events every reader
 * has passed and old processed ids, past the retention (see events.h). */
static void prune_events(sweeper *s)
{
	time_t now = time(NULL);
	if (s->last_prune != 0 && now - s->last_prune < PRUNE_EVERY_S)
		return;
	s->last_prune = now;
	purge_services(s);
	if (s->retention_s == 0)
		return;
	for (int i = 0; i < s->n_prune; i++) {
		prune_target *t = &s->prune[i];
		long out = 0, done = 0;
		rpc_status st = RPC_STATUS_OK;
		if (t->outbox)
			st = ev_prune_outbox(t->pool, t->schema, s->retention_s, &out);
		if (st == RPC_STATUS_OK && t->processed)
			st = ev_prune_processed(t->pool, t->schema, s->retention_s, &done);
		if (st != RPC_STATUS_OK)
			log_write(LOG_WARN, NULL, "events.prune", "%s: pruning failed: %s",
			          t->schema, rpc_status_name(st));
		else if (out + done > 0)
			log_write(LOG_INFO, NULL, "events.prune",
			          "%s: pruned %ld events and %ld processed ids", t->schema, out,
			          done);
	}
}

/* Release expired reservations every interval until told to stop. */
static void *sweeper_main(void *arg)
{
	sweeper *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += s->interval_s;
		pthread_cond_timedwait(&s->stop_cv, &s->lock, &until);
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->lock);
		unsigned n = 0;
		rpc_status st;
		if (s->svc->pool != NULL) { /* inventory is served here */
			st = inventory_sweep_expired(s->svc, &n);
			if (st != RPC_STATUS_OK)
				log_write(LOG_WARN, NULL, "inventory.sweep", "sweep failed: %s",
				          rpc_status_name(st));
			else if (n > 0)
				log_write(LOG_INFO, NULL, "inventory.sweep",
				          "released %u expired reservations", n);
		}
		if (s->auth->pool != NULL) { /* auth is served here */
			st = auth_sweep_expired(s->auth, &n);
			if (st != RPC_STATUS_OK)
				log_write(LOG_WARN, NULL, "auth.sweep", "sweep failed: %s",
				          rpc_status_name(st));
			else if (n > 0)
				log_write(LOG_INFO, NULL, "auth.sweep",
				          "removed %u dead sessions and reset tokens", n);
		}
		prune_events(s);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/*
 * A service's pool: migrate its schema and grant its role (panthera_<schema>)
 * with the URL's own user, then serve with a pool whose connections SET ROLE
 * to it, so the service reaches only its own schema.
 */
static db_pool *open_service_pool(const cfg *c, const char *service, const char *schema)
{
	const char *url = cfg_db_url(c, service);
	if (url == NULL) {
		log_write(
		    LOG_ERROR, NULL, "pantherad.config",
		    "no database: set PANTHERA_DB_URL or PANTHERA_%s_DB_URL (make run starts one)",
		    service);
		return NULL;
	}
	char role[80], dir[1024];
	snprintf(role, sizeof(role), "panthera_%s", schema);
	snprintf(dir, sizeof(dir), "%s/%s/migrations", cfg_get(c, "migrations-dir"), schema);
	db_pool *setup, *pool = NULL;
	db_pool_opts o = {.url = url, .size = 1};
	rpc_status st = db_pool_open(&setup, &o);
	if (st != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "pantherad.db", "%s: cannot open the database: %s",
		          service, rpc_status_name(st));
		return NULL;
	}
	if ((st = db_migrate(setup, schema, dir)) != RPC_STATUS_OK)
		log_write(LOG_ERROR, NULL, "pantherad.db", "%s: migrations failed: %s", service,
		          rpc_status_name(st));
	else if ((st = db_grant_service_role(setup, role, schema)) != RPC_STATUS_OK)
		log_write(LOG_ERROR, NULL, "pantherad.db", "%s: cannot grant role %s: %s", service,
		          role, rpc_status_name(st));
	db_pool_close(setup);
	if (st != RPC_STATUS_OK)
		return NULL;
	db_pool_opts so = {.url = url,
	                   .size = (unsigned)cfg_get_int(c, "db-pool-size"),
	                   .schema = schema,
	                   .role = role};
	if ((st = db_pool_open(&pool, &so)) != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "pantherad.db", "%s: cannot open the database as %s: %s",
		          service, role, rpc_status_name(st));
		return NULL;
	}
	return pool;
}

/*
 * The server's log line per call: method, status, duration and the caller's
 * request id, at debug level for successes and info for failures (so a
 * failure can be followed across services by its request id).
 */
static _Thread_local uint64_t call_started_us;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static rpc_status log_call_start(rpc_call *call, void *arg)
{
	(void)call;
	(void)arg;
	call_started_us = now_us(); /* handlers run on one thread from before to after */
	return RPC_STATUS_OK;
}

static void log_call_end(rpc_call *call, rpc_status st, void *arg)
{
	(void)arg;
	log_write(st == RPC_STATUS_OK ? LOG_DEBUG : LOG_INFO,
	          rpc_call_metadata(call, "x-request-id"), "rpc.call", "%s %s %lluus",
	          rpc_call_method(call)->path, rpc_status_name(st),
	          (unsigned long long)(now_us() - call_started_us));
}

#ifndef PANTHERA_DEFAULT_SERVICES
#define PANTHERA_DEFAULT_SERVICES "all"
#endif

/* Whether `name` is among the services this process serves. */
static int serves(const char *list, const char *name)
{
	if (strcmp(list, "all") == 0)
		return 1;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* A list naming only known services; "all" counts. */
static int services_valid(const char *list)
{
	static const char *const known[] = {"auth",      "catalog",  "inventory",
	                                    "orders",    "payments", "cart",
	                                    "analytics", "reviews",  "notifications"};
	if (strcmp(list, "all") == 0)
		return 1;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		int ok = 0;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok |= len == strlen(known[k]) && strncmp(p, known[k], len) == 0;
		if (!ok)
			return 0;
		p += len;
		if (*p == ',')
			p++;
	}
	return list[0] != '\0';
}

typedef rpc_status (*register_fn)(rpc_server *srv, void *svc);

static rpc_status reg_inventory(rpc_server *srv, void *svc)
{
	return inventory_service_register(srv, svc);
}

static rpc_status reg_catalog(rpc_server *srv, void *svc)
{
	return catalog_service_register(srv, svc);
}

static rpc_status reg_orders(rpc_server *srv, void *svc)
{
	return orders_service_register(srv, svc);
}

static rpc_status reg_auth(rpc_server *srv, void *svc)
{
	return auth_service_register(srv, svc);
}

static rpc_status reg_notifications(rpc_server *srv, void *svc)
{
	return notifications_service_register(srv, svc);
}

static rpc_status reg_cart(rpc_server *srv, void *svc)
{
	return cart_service_register(srv, svc);
}

static rpc_status reg_payments(rpc_server *srv, void *svc)
{
	return payments_service_register(srv, svc);
}

/*
 * A pool on another service's database, to read its outbox: as that
 * service's role, its schema migrated and the role granted first (what
 * open_service_pool does; both are idempotent, under advisory locks). The
 * consumer creates the outbox when its producer has not yet, and it must
 * then be the producer's role that owns it: created as the URL's user, the
 * producer's own setup later fails PERMISSION_DENIED (CREATE INDEX IF NOT
 * EXISTS wants the owner), so in split mode the second of orders and
 * payments to start could never start.
 */
static db_pool *events_pool(const cfg *c, const char *service, const char *schema)
{
	db_pool *p = open_service_pool(c, service, schema);
	if (p == NULL)
		log_write(LOG_ERROR, NULL, "pantherad.db",
		          "cannot open the %s database for its events", schema);
	return p;
}

/* A channel to the URLs of setting `flag` (comma-separated replicas, TLS
 * from the rpc-tls-* settings); a failure is logged with its reason. */
static rpc_status dial(const cfg *c, rpc_channel **ch, const char *flag)
{
	char err[512];
	rpc_status st = rpc_cfg_dial(c, cfg_get(c, flag), NULL, ch, err, sizeof(err));
	if (st != RPC_STATUS_OK)
		log_write(LOG_ERROR, NULL, "pantherad.rpc", "--%s: %s", flag, err);
	return st;
}

/* Serve one service on a server of its own at inproc://pantherad/<name>,
 * for the calls of the other services in this process; *ch dials it. */
static rpc_status inner_server(const rpc_server_opts *so, const char *name, rpc_server **srv,
                               rpc_channel **ch, register_fn reg, void *svc)
{
	char url[96];
	snprintf(url, sizeof(url), "inproc://pantherad/%s", name);
	rpc_status st = rpc_server_create(srv, so);
	if (st == RPC_STATUS_OK)
		st = reg(*srv, svc);
	if (st == RPC_STATUS_OK)
		st = rpc_server_listen(*srv, url);
	if (st == RPC_STATUS_OK)
		st = rpc_server_start(*srv);
	if (st == RPC_STATUS_OK)
		st = rpc_channel_open(ch, (const char *const[]){url}, 1, NULL);
	return st;
}

/* --health-check URL: grpc.health.v1.Health/Check of the whole server
 * (service ""), within 2 s; a tls+tcp:// URL with the PANTHERA_RPC_TLS_*
 * settings of the environment, as the process itself dials. */
static int health_check(const char *prog, const char *url)
{
	cfg c;
	char err[256];
	char *args[] = {(char *)prog, NULL};
	if (cfg_load(&c, 1, args, err, sizeof(err)) != RPC_STATUS_OK) {
		fprintf(stderr, "%s: --health-check: %s\n", prog, err);
		cfg_free(&c);
		return 2;
	}
	rpc_channel *ch = NULL;
	rpc_reply *reply = NULL;
	rpc_channel_opts co = {.default_timeout_ms = 2000, .connect_wait_ms = 2000};
	rpc_status st = rpc_cfg_dial(&c, url, &co, &ch, err, sizeof(err));
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "%s: --health-check %s: %s\n", prog, url, err);
		cfg_free(&c);
		return 1;
	}
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	req.service = "";
	const Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	st = grpc_health_v1_health_check(ch, &req, NULL, &resp, &reply);
	int rc = 0;
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "%s: --health-check %s: %s %s\n", prog, url, rpc_status_name(st),
		        reply != NULL ? rpc_reply_message(reply) : "");
		rc = 1;
	} else if (resp->status !=
	           GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
		fprintf(stderr, "%s: --health-check %s: not serving\n", prog, url);
		rc = 1;
	}
	rpc_reply_free(reply);
	rpc_channel_close(ch);
	cfg_free(&c);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--health-check") == 0) {
		if (argc != 3) {
			fprintf(stderr, "usage: %s --health-check URL\n", argv[0]);
			return 2;
		}
		return health_check(argv[0], argv[2]);
	}
	cfg c;
	char err[256];
	int rc = 1;
	if (cfg_load(&c, argc, argv, err, sizeof(err)) != RPC_STATUS_OK) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		cfg_free(&c);
		return 2;
	}
	if (c.help) {
		if (c.help == 2)
			cfg_print_markdown(stdout);
		else
			cfg_print_help(stdout, argv[0]);
		cfg_free(&c);
		return 0;
	}
	log_level level;
	if (log_level_parse(cfg_get(&c, "log-level"), &level) == 0)
		log_set_level(level);
	/* panthera-<service> binaries serve their service unless told otherwise */
	const char *services = cfg_get(&c, "services");
	if (strcmp(services, "all") == 0)
		services = PANTHERA_DEFAULT_SERVICES;
	if (!services_valid(services)) {
		fprintf(
		    stderr,
		    "%s: --services=%s: use all, or a list of auth, catalog, inventory, orders, payments, cart,"
		    " analytics, reviews, notifications\n",
		    argv[0], services);
		cfg_free(&c);
		return 2;
	}
	int with_auth = serves(services, "auth"), with_catalog = serves(services, "catalog"),
	    with_inventory = serves(services, "inventory"),
	    with_orders = serves(services, "orders"), with_payments = serves(services, "payments"),
	    with_cart = serves(services, "cart"), with_analytics = serves(services, "analytics"),
	    with_reviews = serves(services, "reviews"),
	    with_notifications = serves(services, "notifications");
	if (with_reviews && ((!with_catalog && cfg_get(&c, "catalog-url") == NULL) ||
	                     (!with_orders && cfg_get(&c, "orders-url") == NULL) ||
	                     (!with_auth && cfg_get(&c, "users-url") == NULL))) {
		fprintf(stderr,
		        "%s: reviews need CatalogService, OrderService and UserService: serve them"
		        " here too, or give --catalog-url, --orders-url and --users-url\n",
		        argv[0]);
		cfg_free(&c);
		return 2;
	}
	if (with_cart && !with_catalog && cfg_get(&c, "catalog-url") == NULL) {
		fprintf(
		    stderr,
		    "%s: the cart needs CatalogService: serve it here too, or give --catalog-url\n",
		    argv[0]);
		cfg_free(&c);
		return 2;
	}
	if (with_orders && ((!with_inventory && cfg_get(&c, "inventory-url") == NULL) ||
	                    (!with_catalog && cfg_get(&c, "catalog-url") == NULL))) {
		fprintf(stderr,
		        "%s: orders need CatalogService and InventoryService: serve them here too,"
		        " or give --catalog-url and --inventory-url\n",
		        argv[0]);
		cfg_free(&c);
		return 2;
	}
	if (with_catalog && !with_inventory && cfg_get(&c, "inventory-url") == NULL) {
		fprintf(stderr,
		        "%s: the catalog needs InventoryService: serve it here too, or give"
		        " --inventory-url (PANTHERA_INVENTORY_URL)\n",
		        argv[0]);
		cfg_free(&c);
		return 2;
	}
	rpc_server_opts tls_opts = {0};
	if (rpc_cfg_server_tls(&c, cfg_get(&c, "rpc-url"), &tls_opts, err, sizeof(err)) !=
	    RPC_STATUS_OK) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		cfg_free(&c);
		return 2;
	}
	const char *http_addr = cfg_get(&c, "http-addr");
	int with_http = strcmp(PANTHERA_DEFAULT_SERVICES, "all") == 0 &&
	                strcmp(services, "all") == 0 && http_addr != NULL && http_addr[0] != '\0' &&
	                strcmp(http_addr, "off") != 0;
	if (with_http && gateway_proc_check(&c, 0, err, sizeof(err)) != RPC_STATUS_OK) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		cfg_free(&c);
		return 2;
	}

	/* SIGINT and SIGTERM are taken by sigwait below, in this thread only:
	 * block them before any other thread starts. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	rpc_server *srv = NULL;
	admin_service *admin = NULL;
	inventory_service inventory = {0};
	catalog_service catalog = {0};
	auth_service auth = {0};
	rpc_channel *inventory_ch = NULL;
	orders_service orders = {0};
	payments_service payments = {0};
	db_pool *payments_events = NULL, *orders_events = NULL;
	rpc_server *inner_orders = NULL, *inner_payments = NULL;
	rpc_channel *orders_ch = NULL;
	int payments_running = 0, analytics_ready = 0, analytics_running = 0;
	cart_service cart = {0};
	analytics_service analytics = {0};
	rpc_server *inner_cart = NULL, *inner_auth = NULL;
	reviews_service reviews = {0};
	rpc_channel *users_ch = NULL;
	int reviews_running = 0, notifications_ready = 0, notifications_running = 0;
	notifications_service notifications = {0};
	rpc_server *inner_notifications = NULL;
	rpc_channel *notifications_ch = NULL;
	int orders_ready = 0;
	/* Each service that others call here gets a server of its own (its own
	 * workers) on an inproc URL, and service-to-service calls go there: a
	 * handler waiting on another service never waits for a worker of the
	 * pool it holds one of (which, all on one server, deadlocks under load
	 * until the deadline). */
	rpc_server *inner_inventory = NULL, *inner_catalog = NULL;
	rpc_channel *catalog_ch = NULL, *cart_ch = NULL, *payments_ch = NULL;
	sweeper sw = {.svc = &inventory,
	              .auth = &auth,
	              .orders = &orders,
	              .payments = &payments,
	              .cart = &cart,
	              .notifications = &notifications,
	              .interval_s = (unsigned)cfg_get_int(&c, "sweep-interval-s")};
	pthread_t sweep_thread;
	int sweeping = 0;
	pthread_mutex_init(&sw.lock, NULL);
	pthread_cond_init(&sw.stop_cv, NULL);

	if ((with_inventory &&
	     (inventory.pool = open_service_pool(&c, "INVENTORY", "inventory")) == NULL) ||
	    (with_catalog &&
	     (catalog.pool = open_service_pool(&c, "CATALOG", "catalog")) == NULL) ||
	    (with_auth && (auth.pool = open_service_pool(&c, "AUTH", "auth")) == NULL) ||
	    (with_orders && (orders.pool = open_service_pool(&c, "ORDERS", "orders")) == NULL) ||
	    (with_payments &&
	     (payments.pool = open_service_pool(&c, "PAYMENTS", "payments")) == NULL) ||
	    (with_cart && (cart.pool = open_service_pool(&c, "CART", "cart")) == NULL) ||
	    (with_analytics &&
	     (analytics.pool = open_service_pool(&c, "ANALYTICS", "analytics")) == NULL) ||
	    (with_reviews &&
	     (reviews.pool = open_service_pool(&c, "REVIEWS", "reviews")) == NULL) ||
	    (with_notifications && (notifications.pool = open_service_pool(
	                                &c, "NOTIFICATIONS", "notifications")) == NULL))
		goto out;
	/* The saga's consumers read each other's outbox: with the producer's own
	 * pool when it is served here, else a pool on its database. */
	if ((with_orders && !with_payments &&
	     (payments_events = events_pool(&c, "PAYMENTS", "payments")) == NULL) ||
	    ((with_payments || with_analytics || with_notifications) && !with_orders &&
	     (orders_events = events_pool(&c, "ORDERS", "orders")) == NULL))
		goto out;
	if (with_catalog && catalog_service_init(&catalog) != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "pantherad.catalog",
		          "cannot set up the catalog's outbox");
		goto out;
	}
	/* Signing keys live in <data-dir>/keys; reset emails go to the log
	 * (never the token) until NotificationService is served here. */
	auth.data_dir = cfg_get(&c, "data-dir");
	auth.issuer = cfg_get(&c, "jwt-issuer");
	if (with_auth && auth_service_init(&auth) != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "pantherad.auth",
		          "cannot set up the auth service (signing keys, outbox)");
		goto out;
	}
	const char *admin_email = cfg_get(&c, "bootstrap-admin-email");
	const char *admin_password = cfg_get(&c, "bootstrap-admin-password");
	if (with_auth && admin_email != NULL && admin_password != NULL &&
	    auth_bootstrap_admin(&auth, admin_email, admin_password) != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "pantherad.auth", "cannot bootstrap the admin account");
		goto out;
	}
	rpc_server_opts so = {.workers = (uint32_t)cfg_get_int(&c, "rpc-workers"),
	                      .queue_len = (uint32_t)cfg_get_int(&c, "rpc-queue"),
	                      .max_message = (size_t)cfg_get_int(&c, "max-message")};
	/* TLS on the served URL only: the inner servers are inproc:// */
	rpc_server_opts main_opts = so;
	main_opts.tls_cert_file = tls_opts.tls_cert_file;
	main_opts.tls_key_file = tls_opts.tls_key_file;
	main_opts.tls_client_ca_file = tls_opts.tls_client_ca_file;
	rpc_status st = rpc_server_create(&srv, &main_opts);
	if (st == RPC_STATUS_OK)
		st = rpc_server_add_interceptor(srv, log_call_start, log_call_end, NULL);
	if (st == RPC_STATUS_OK && with_inventory)
		st = inventory_service_register(srv, &inventory);
	/* The catalog reads and sets stock through InventoryService, orders
	 * call both: their inner servers here, else the URLs given. */
	if (st == RPC_STATUS_OK && with_inventory)
		st = inner_server(&so, "inventory", &inner_inventory, &inventory_ch, reg_inventory,
		                  &inventory);
	else if (st == RPC_STATUS_OK && (with_catalog || with_orders))
		st = dial(&c, &inventory_ch, "inventory-url");
	catalog.inventory = inventory_ch;
	if (st == RPC_STATUS_OK && with_catalog)
		st = catalog_service_register(srv, &catalog);
	if (st == RPC_STATUS_OK && with_catalog && (with_orders || with_cart || with_reviews))
		st = inner_server(&so, "catalog", &inner_catalog, &catalog_ch, reg_catalog,
		                  &catalog);
	else if (st == RPC_STATUS_OK && (with_orders || with_cart || with_reviews))
		st = dial(&c, &catalog_ch, "catalog-url");
	cart.catalog = catalog_ch;
	if (st == RPC_STATUS_OK && with_cart) {
		st = cart_service_register(srv, &cart);
		if (st == RPC_STATUS_OK && with_orders)
			st = inner_server(&so, "cart", &inner_cart, &cart_ch, reg_cart, &cart);
	} else if (st == RPC_STATUS_OK && with_orders && cfg_get(&c, "cart-url") != NULL) {
		st = dial(&c, &cart_ch, "cart-url");
	}
	if (st == RPC_STATUS_OK && with_analytics) {
		analytics.orders_events = with_orders ? orders.pool : orders_events;
		if ((st = analytics_service_init(&analytics)) == RPC_STATUS_OK)
			analytics_ready = 1;
		if (st == RPC_STATUS_OK)
			st = analytics_service_register(srv, &analytics);
	}
	/* payments and orders call each other (CreatePayment → ResumePayment,
	 * RefundOrder → Refund): both inner servers first, channels after */
	if (st == RPC_STATUS_OK && with_payments) {
		payments.orders_events = with_orders ? orders.pool : orders_events;
		st = inner_server(&so, "payments", &inner_payments, &payments_ch, reg_payments,
		                  &payments);
		if (st == RPC_STATUS_OK)
			st = payments_service_register(srv, &payments);
	} else if (st == RPC_STATUS_OK && with_orders && cfg_get(&c, "payments-url") != NULL) {
		st = dial(&c, &payments_ch, "payments-url");
	}
	if (st == RPC_STATUS_OK && with_orders) {
		orders.payments_events = with_payments ? payments.pool : payments_events;
		orders.catalog = catalog_ch;
		orders.inventory = inventory_ch;
		orders.cart = cart_ch;
		orders.payments = payments_ch;
		if (st == RPC_STATUS_OK && (st = orders_service_init(&orders)) == RPC_STATUS_OK)
			orders_ready = 1;
		if (st == RPC_STATUS_OK)
			st = orders_service_register(srv, &orders);
		if (st == RPC_STATUS_OK && (with_payments || with_reviews))
			st = inner_server(&so, "orders", &inner_orders, &orders_ch, reg_orders,
			                  &orders);
	} else if (st == RPC_STATUS_OK && (with_payments || with_reviews) &&
	           cfg_get(&c, "orders-url") != NULL) {
		st = dial(&c, &orders_ch, "orders-url");
	}
	payments.orders = orders_ch;
	if (st == RPC_STATUS_OK && (with_reviews || with_notifications)) {
		if (with_auth)
			st = inner_server(&so, "auth", &inner_auth, &users_ch, reg_auth, &auth);
		else if (cfg_get(&c, "users-url") != NULL)
			st = dial(&c, &users_ch, "users-url");
	}
	/* order emails; and the reset emails of auth, which go to the log until
	 * NotificationService is served here or reachable */
	if (st == RPC_STATUS_OK && with_notifications) {
		notifications.orders_events = with_orders ? orders.pool : orders_events;
		notifications.users = users_ch;
		notifications.smtp_url = cfg_get(&c, "smtp-url");
		notifications.from = cfg_get(&c, "mail-from"); /* NULL: the service's default */
		if ((st = notifications_service_init(&notifications)) == RPC_STATUS_OK)
			notifications_ready = 1;
		if (st == RPC_STATUS_OK)
			st = notifications_service_register(srv, &notifications);
		if (st == RPC_STATUS_OK && with_auth)
			st = inner_server(&so, "notifications", &inner_notifications,
			                  &notifications_ch, reg_notifications, &notifications);
	} else if (st == RPC_STATUS_OK && with_auth && cfg_get(&c, "notifications-url") != NULL) {
		st = dial(&c, &notifications_ch, "notifications-url");
	}
	auth.notifications = notifications_ch;
	if (st == RPC_STATUS_OK && with_reviews) {
		reviews.catalog = catalog_ch;
		reviews.orders = orders_ch;
		reviews.users = users_ch;
		if (st == RPC_STATUS_OK)
			st = reviews_service_register(srv, &reviews);
	}
	if (st == RPC_STATUS_OK && with_auth)
		st = auth_service_register(srv, &auth);
	if (st == RPC_STATUS_OK)
		st = admin_service_create(&admin, srv);
	if (st == RPC_STATUS_OK)
		st = admin_service_register(srv, admin);
	if (st == RPC_STATUS_OK && with_inventory)
		st = admin_add_pool(admin, "inventory", inventory.pool);
	if (st == RPC_STATUS_OK && with_catalog)
		st = admin_add_pool(admin, "catalog", catalog.pool);
	if (st == RPC_STATUS_OK && with_auth)
		st = admin_add_pool(admin, "auth", auth.pool);
	if (st == RPC_STATUS_OK && with_orders)
		st = admin_add_pool(admin, "orders", orders.pool);
	if (st == RPC_STATUS_OK && with_payments)
		st = admin_add_pool(admin, "payments", payments.pool);
	if (st == RPC_STATUS_OK && with_cart)
		st = admin_add_pool(admin, "cart", cart.pool);
	if (st == RPC_STATUS_OK && with_analytics)
		st = admin_add_pool(admin, "analytics", analytics.pool);
	if (st == RPC_STATUS_OK && with_analytics)
		st = admin_add_consumer(admin, analytics_consumer(&analytics), analytics.pool,
		                        "analytics");
	if (st == RPC_STATUS_OK && with_reviews)
		st = admin_add_pool(admin, "reviews", reviews.pool);
	if (st == RPC_STATUS_OK && with_notifications)
		st = admin_add_pool(admin, "notifications", notifications.pool);
	if (st == RPC_STATUS_OK && with_notifications && with_orders)
		st = admin_add_consumer(admin, notifications_order_consumer(&notifications),
		                        notifications.pool, "notifications");
	if (st == RPC_STATUS_OK && with_notifications) /* the delivery queue's counts */
		st = admin_add_source(admin, notifications_metrics, &notifications);
	if (st == RPC_STATUS_OK && with_reviews)
		st = admin_add_consumer(admin, reviews_rating_consumer(&reviews), reviews.pool,
		                        "reviews");
	if (st == RPC_STATUS_OK)
		st = rpc_server_listen(srv, cfg_get(&c, "rpc-url"));
	if (st == RPC_STATUS_OK)
		st = rpc_server_start(srv);
	if (st != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "pantherad.rpc", "cannot serve on %s: %s",
		          cfg_get(&c, "rpc-url"), rpc_status_name(st));
		goto out;
	}
	sw.retention_s = (uint32_t)cfg_get_int(&c, "event-retention-s");
	sweeper_add(&sw, inventory.pool, "inventory", 1, 0);
	sweeper_add(&sw, catalog.pool, "catalog", 1, 0);
	sweeper_add(&sw, auth.pool, "auth", 1, 0);
	sweeper_add(&sw, orders.pool, "orders", 1, 1);
	sweeper_add(&sw, payments.pool, "payments", 1, 1);
	if (with_orders && orders_start(&orders) != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "pantherad.orders", "cannot start the saga's consumer");
		goto out;
	}
	if (with_payments) {
		if (payments_start(&payments) != RPC_STATUS_OK) {
			log_write(LOG_ERROR, NULL, "pantherad.payments",
			          "cannot start the consumer of OrderCreated");
			goto out;
		}
		payments_running = 1;
	}
	sweeper_add(&sw, analytics.pool, "analytics", 0, 1);
	if (with_analytics) {
		if (analytics_start(&analytics) != RPC_STATUS_OK) {
			log_write(LOG_ERROR, NULL, "pantherad.analytics",
			          "cannot start the consumer of order events");
			goto out;
		}
		analytics_running = 1;
	}
	sweeper_add(&sw, reviews.pool, "reviews", 1, 1);
	if (with_reviews) {
		if (reviews_start(&reviews) != RPC_STATUS_OK) {
			log_write(LOG_ERROR, NULL, "pantherad.reviews",
			          "cannot start the consumer that keeps ratings current");
			goto out;
		}
		reviews_running = 1;
	}
	sweeper_add(&sw, notifications.pool, "notifications", 0, 1);
	if (with_notifications) {
		if (notifications_start(&notifications) != RPC_STATUS_OK) {
			log_write(LOG_ERROR, NULL, "pantherad.notifications",
			          "cannot start the notification threads");
			goto out;
		}
		notifications_running = 1;
	}
	sweeping = pthread_create(&sweep_thread, NULL, sweeper_main, &sw) == 0;
	if (with_catalog && cfg_get_bool(&c, "seed-demo")) {
		/* after start: the seed sets stock through InventoryService */
		int created = 0;
		st = catalog_seed_demo(&catalog, &created);
		if (st != RPC_STATUS_OK)
			log_write(LOG_WARN, NULL, "pantherad.seed", "demo catalog not loaded: %s",
			          rpc_status_name(st));
		else if (created > 0)
			log_write(LOG_INFO, NULL, "pantherad.seed",
			          "demo catalog loaded: %d products", created);
	}
	/* every service served here: in split mode, the one of this binary */
	const struct {
		int on;
		const char *names;
	} served[] = {
	    {with_auth, "AuthService, UserService"},     {with_catalog, "CatalogService"},
	    {with_inventory, "InventoryService"},        {with_orders, "OrderService"},
	    {with_payments, "PaymentService"},           {with_cart, "CartService"},
	    {with_analytics, "AnalyticsService"},        {with_reviews, "ReviewService"},
	    {with_notifications, "NotificationService"},
	};
	char serving[256] = "";
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
		size_t used = strlen(serving);
		if (served[i].on)
			snprintf(serving + used, sizeof(serving) - used, "%s%s", used ? ", " : "",
			         served[i].names);
	}
	log_write(LOG_INFO, NULL, "pantherad.ready", "serving %s (and AdminService, health) on %s",
	          serving, cfg_get(&c, "rpc-url"));

	/* pantherad itself (every service here) also serves the REST API */
	gateway_proc http = {0};
	gateway_proc_opts ho = {.server = srv, .program = "pantherad"};
	if (with_http && gateway_proc_start(&http, &c, &ho) != RPC_STATUS_OK) {
		gateway_proc_stop(&http);
		goto out;
	}

	int sig = 0;
	sigwait(&stop_signals, &sig);
	log_write(LOG_INFO, NULL, "pantherad.stop", "signal %d: draining", sig);
	gateway_proc_stop(&http); /* requests in flight still reach the services */
	rpc_server_stop(srv, 5000);
	rc = 0;
out:
	if (sweeping) {
		pthread_mutex_lock(&sw.lock);
		sw.stop = 1;
		pthread_cond_signal(&sw.stop_cv);
		pthread_mutex_unlock(&sw.lock);
		pthread_join(sweep_thread, NULL);
	}
	if (notifications_running)
		notifications_stop(&notifications);
	if (reviews_running)
		reviews_stop(&reviews);
	if (analytics_running)
		analytics_stop(&analytics);
	if (payments_running)
		payments_stop(&payments);
	if (orders_ready)
		orders_service_fini(&orders); /* stops its consumer first */
	rpc_server_destroy(srv);
	rpc_server_destroy(inner_orders);
	rpc_server_destroy(inner_payments);
	rpc_server_destroy(inner_cart);
	rpc_server_destroy(inner_auth);
	rpc_server_destroy(inner_notifications);
	rpc_channel_close(notifications_ch);
	rpc_channel_close(users_ch);
	rpc_channel_close(orders_ch);
	admin_service_destroy(admin);
	admin = NULL;
	if (analytics_ready)
		analytics_service_fini(&analytics);
	reviews_service_close(&reviews);
	if (notifications_ready)
		notifications_service_fini(&notifications);
	db_pool_close(notifications.pool);
	db_pool_close(reviews.pool);
	db_pool_close(analytics.pool);
	db_pool_close(cart.pool);
	db_pool_close(orders_events);
	db_pool_close(payments.pool);
	rpc_server_destroy(inner_catalog);
	rpc_server_destroy(inner_inventory);
	rpc_channel_close(inventory_ch);
	rpc_channel_close(catalog_ch);
	rpc_channel_close(cart_ch);
	rpc_channel_close(payments_ch);
	db_pool_close(payments_events);
	db_pool_close(orders.pool);
	admin_service_destroy(admin);
	if (with_auth)
		auth_service_fini(&auth);
	db_pool_close(auth.pool);
	db_pool_close(catalog.pool);
	db_pool_close(inventory.pool);
	pthread_cond_destroy(&sw.stop_cv);
	pthread_mutex_destroy(&sw.lock);
	log_write(LOG_INFO, NULL, "pantherad.exit", "stopped");
	cfg_free(&c);
	return rc;
}
