/*
 * gateway_proc.c - the REST gateway of a process (see gateway_proc.h):
 * the settings turned into the gateway-rest/ parts, the channels to the
 * services, the /metrics sections of the RPC client and server.
 */
#include "gateway_proc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "panthera/log.h"
#include "panthera_routes.h"
#include "rpc_cfg.h"

/*
 * Under AddressSanitizer: h2o 2.2.5 keeps per-thread free lists of memory
 * chunks (its request pools, HTTP/2 write buffers) in __thread variables it
 * never empties, so a gateway thread that ends leaves up to 16 chunks a
 * list unreachable. Every such chunk comes from h2o_mem_alloc_recycle(),
 * and nothing of ours does: that frame alone is not reported as a leak (see
 * docs/gateway/server.md). The socket buffers' list, which h2o exports,
 * gw_server empties itself.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:h2o_mem_alloc_recycle\n";
}

/* The setting holding the URL of each service the routes may name. The
 * auth process serves AuthService and UserService: one URL for both. */
static const struct {
	const char *service;
	const char *flag;
} service_urls[] = {
    {"panthera.auth.v1.AuthService", "users-url"},
    {"panthera.users.v1.UserService", "users-url"},
    {"panthera.catalog.v1.CatalogService", "catalog-url"},
    {"panthera.inventory.v1.InventoryService", "inventory-url"},
    {"panthera.cart.v1.CartService", "cart-url"},
    {"panthera.orders.v1.OrderService", "orders-url"},
    {"panthera.payments.v1.PaymentService", "payments-url"},
    {"panthera.reviews.v1.ReviewService", "reviews-url"},
    {"panthera.analytics.v1.AnalyticsService", "analytics-url"},
    {"panthera.notifications.v1.NotificationService", "notifications-url"},
};

#define AUTH_SERVICE "panthera.auth.v1.AuthService"

static const char *url_flag(const char *service)
{
	for (size_t i = 0; i < sizeof(service_urls) / sizeof(service_urls[0]); i++)
		if (strcmp(service_urls[i].service, service) == 0)
			return service_urls[i].flag;
	return NULL;
}

static const char *env_of(const char *flag)
{
	for (size_t i = 0; i < cfg_n_vars; i++)
		if (strcmp(cfg_vars[i].flag, flag) == 0)
			return cfg_vars[i].env;
	return "?";
}

static int is_set(const char *v)
{
	return v != NULL && v[0] != '\0';
}

rpc_status gateway_proc_check(const cfg *c, int dial_services, char *err, size_t errlen)
{
	if (is_set(cfg_get(c, "http-tls-cert")) != is_set(cfg_get(c, "http-tls-key"))) {
		snprintf(err, errlen,
		         "HTTPS needs both PANTHERA_HTTP_TLS_CERT and PANTHERA_HTTP_TLS_KEY "
		         "(--http-tls-cert, --http-tls-key), or neither for HTTP");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (!dial_services)
		return RPC_STATUS_OK;
	const rpc_route_table *t = &panthera_routes;
	if (t->n_services > GATEWAY_PROC_MAX_SERVICES) {
		snprintf(err, errlen, "the routes name %zu services; at most %d", t->n_services,
		         GATEWAY_PROC_MAX_SERVICES);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < t->n_services; i++) {
		const char *flag = url_flag(t->services[i]->name);
		if (flag == NULL) {
			snprintf(err, errlen, "no setting holds the URL of %s (a route calls it)",
			         t->services[i]->name);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		if (!is_set(cfg_get(c, flag))) {
			snprintf(err, errlen, "no URL for %s: give --%s (%s)", t->services[i]->name,
			         flag, env_of(flag));
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	}
	return RPC_STATUS_OK;
}

/* The channel to `url` (a setting's comma-separated URLs): one already open
 * to it, else a new one. */
static rpc_status channel_to(gateway_proc *h, const cfg *c, const char *url, const char **urls,
                             size_t *index, char *err, size_t errlen)
{
	for (size_t i = 0; i < h->n_channels; i++)
		if (strcmp(urls[i], url) == 0) {
			*index = i;
			return RPC_STATUS_OK;
		}
	if (h->n_channels == GATEWAY_PROC_MAX_SERVICES) {
		snprintf(err, errlen, "more than %d channels", GATEWAY_PROC_MAX_SERVICES);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	rpc_status st = rpc_cfg_dial(c, url, NULL, &h->channels[h->n_channels], err, errlen);
	if (st != RPC_STATUS_OK)
		return st;
	urls[h->n_channels] = url;
	*index = h->n_channels++;
	return RPC_STATUS_OK;
}

/* Every service of the routes over rpc-url, or over its own URL. */
static rpc_status open_channels(gateway_proc *h, const cfg *c, int dial_services, char *err,
                                size_t errlen)
{
	const char *urls[GATEWAY_PROC_MAX_SERVICES];
	const rpc_route_table *t = h->routes;
	if (t->n_services > GATEWAY_PROC_MAX_SERVICES) {
		snprintf(err, errlen, "the routes name more than %d services",
		         GATEWAY_PROC_MAX_SERVICES);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (!dial_services) {
		size_t k;
		/* every service_channel is 0 */
		return channel_to(h, c, cfg_get(c, "rpc-url"), urls, &k, err, errlen);
	}
	for (size_t i = 0; i < t->n_services; i++) {
		const char *flag = url_flag(t->services[i]->name);
		const char *url = flag != NULL ? cfg_get(c, flag) : NULL;
		if (!is_set(url)) { /* gateway_proc_check says so first */
			snprintf(err, errlen, "no URL for %s", t->services[i]->name);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		char why[192];
		rpc_status st =
		    channel_to(h, c, url, urls, &h->service_channel[i], why, sizeof(why));
		if (st != RPC_STATUS_OK) {
			snprintf(err, errlen, "--%s: %s", flag, why);
			return st;
		}
	}
	return RPC_STATUS_OK;
}

/* gw_gateway_opts.channel_for: the channel of a service of the routes. */
static rpc_channel *service_channel(const char *service, void *arg)
{
	gateway_proc *h = arg;
	for (size_t i = 0; i < h->routes->n_services; i++)
		if (strcmp(h->routes->services[i]->name, service) == 0)
			return h->channels[h->service_channel[i]];
	return NULL;
}

/* ---- /metrics: the RPC client's and server's counters ------------------------ */

/* One family's samples, from an rpc_metrics_fn walk: the sample is the
 * count of calls (seconds == 0) or their total time. */
typedef struct rpc_family {
	gw_metrics_text *out;
	const char *name;
	int seconds;
	rpc_status st;
} rpc_family;

static void rpc_sample(const char *method, rpc_status status, uint64_t calls, uint64_t total_us,
                       void *arg)
{
	rpc_family *f = arg;
	gw_metrics_label labels[] = {{"method", method[0] ? method : "unknown"},
	                             {"status", rpc_status_name(status)}};
	rpc_status st = f->seconds ? gw_metrics_text_sample_f(f->out, f->name, labels, 2,
	                                                      (double)total_us / 1e6)
	                           : gw_metrics_text_sample(f->out, f->name, labels, 2, calls);
	if (f->st == RPC_STATUS_OK)
		f->st = st;
}

/* The families <prefix>_calls_total and <prefix>_call_seconds_total over
 * the channels (or the server, when channels is NULL). */
static rpc_status rpc_families(gw_metrics_text *out, const char *prefix, const char *what,
                               rpc_channel *const *channels, size_t n, rpc_server *srv)
{
	char name[96], help[160];
	for (int seconds = 0; seconds <= 1; seconds++) {
		snprintf(name, sizeof(name), "%s_%s", prefix,
		         seconds ? "call_seconds_total" : "calls_total");
		snprintf(help, sizeof(help), "%s, by method and final status.",
		         seconds ? (channels ? "Time RPC calls made by the gateway took"
		                             : "Time spent handling RPC calls")
		                 : what);
		rpc_status st = gw_metrics_text_family(out, name, "counter", help);
		if (st != RPC_STATUS_OK)
			return st;
		rpc_family f = {.out = out, .name = name, .seconds = seconds};
		if (channels != NULL)
			for (size_t i = 0; i < n; i++)
				rpc_channel_metrics(channels[i], rpc_sample, &f);
		else
			rpc_server_metrics(srv, rpc_sample, &f);
		if (f.st != RPC_STATUS_OK)
			return f.st;
	}
	return RPC_STATUS_OK;
}

/* A gw_metrics_source_fn: the calls the gateway made, over every channel
 * (each method is called over one channel only: no label set repeats). */
static rpc_status client_metrics(gw_metrics_text *out, void *arg)
{
	gateway_proc *h = arg;
	rpc_status st = rpc_families(out, "panthera_rpc_client", "RPC calls made by the gateway",
	                             h->channels, h->n_channels, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	uint64_t retries = 0;
	for (size_t i = 0; i < h->n_channels; i++)
		retries += rpc_channel_retries(h->channels[i]);
	st = gw_metrics_text_family(out, "panthera_rpc_client_retries_total", "counter",
	                            "RPC requests the gateway sent again after an attempt failed "
	                            "UNAVAILABLE (replica lost; idempotent methods only).");
	return st != RPC_STATUS_OK
	           ? st
	           : gw_metrics_text_sample(out, "panthera_rpc_client_retries_total", NULL, 0,
	                                    retries);
}

/* A gw_metrics_source_fn: the calls this process's RPC server served. */
static rpc_status server_metrics(gw_metrics_text *out, void *arg)
{
	gateway_proc *h = arg;
	return rpc_families(out, "panthera_rpc_server", "RPC calls served", NULL, 0, h->server);
}

/* ---- the response cache's feed ------------------------------------------------ */

/*
 * The change events of the catalog, inventory and reviews into the cache
 * (gw_cache_feed: an event tail per database, gw_cache_event_tags, then
 * the invalidation of those tags), so that every replica drops a changed
 * product as soon as the change commits, whichever replica or service
 * made it. Each service's outbox is in its database (PANTHERA_<SERVICE>_DB_URL,
 * else PANTHERA_DB_URL); without any, a cached reply lives until its TTL
 * after another replica changed it (this replica's own writes still drop
 * it at once), and a line says so.
 */
static rpc_status cache_feed_start(gateway_proc *h, const cfg *c)
{
	static const char *const services[3] = {"CATALOG", "INVENTORY", "REVIEWS"};
	static const char *const schemas[3] = {"catalog", "inventory", "reviews"};
	const char *urls[3];
	for (size_t i = 0; i < 3; i++)
		urls[i] = cfg_db_url(c, services[i]);
	for (size_t i = 0; i < 3; i++) {
		if (!is_set(urls[i])) {
			log_write(LOG_WARN, NULL, "gateway.cache",
			          "no database URL for the %s's events: cached replies it changes "
			          "through another replica live until their TTL",
			          schemas[i]);
			continue;
		}
		size_t first = 0;
		while (first < i && !(is_set(urls[first]) && strcmp(urls[first], urls[i]) == 0))
			first++;
		if (first < i)
			continue; /* that feed follows it already */
		const char *mine[4];
		size_t n = 0;
		for (size_t j = i; j < 3; j++)
			if (is_set(urls[j]) && strcmp(urls[j], urls[i]) == 0)
				mine[n++] = schemas[j];
		mine[n] = NULL;
		gw_cache_feed_opts fo = {.db_url = urls[i], .schemas = mine};
		rpc_status st = gw_cache_feed_start(h->cache, &fo, &h->feeds[h->n_feeds]);
		if (st != RPC_STATUS_OK)
			return st;
		h->n_feeds++;
	}
	return RPC_STATUS_OK;
}

static void cache_feed_stop(gateway_proc *h)
{
	for (size_t i = 0; i < h->n_feeds; i++)
		gw_cache_feed_stop(h->feeds[i]);
	h->n_feeds = 0;
}

/* A gw_metrics_source_fn: what the cache's feeds did. */
static rpc_status feed_metrics(gw_metrics_text *out, void *arg)
{
	gateway_proc *h = arg;
	gw_cache_feed_stats sum = {0};
	for (size_t i = 0; i < h->n_feeds; i++) {
		gw_cache_feed_stats s;
		gw_cache_feed_stats_get(h->feeds[i], &s);
		sum.events += s.events;
		sum.dropped += s.dropped;
		sum.clears += s.clears;
		sum.errors += s.errors;
	}
	static const char *const fam[][2] = {
	    {"panthera_gateway_cache_feed_events_total",
	     "Change events of the catalog, inventory and reviews read by the cache's feed"},
	    {"panthera_gateway_cache_feed_dropped_total",
	     "Cache entries dropped because of those events"},
	    {"panthera_gateway_cache_feed_clears_total",
	     "Whole-cache clears: an event without a product, or a feed that started late"},
	    {"panthera_gateway_cache_feed_errors_total",
	     "Failed connections or reads of the outboxes (retried)"},
	};
	const uint64_t v[4] = {sum.events, sum.dropped, sum.clears, sum.errors};
	rpc_status st = RPC_STATUS_OK;
	for (size_t i = 0; i < 4 && st == RPC_STATUS_OK; i++) {
		st = gw_metrics_text_family(out, fam[i][0], "counter", fam[i][1]);
		if (st == RPC_STATUS_OK)
			st = gw_metrics_text_sample(out, fam[i][0], NULL, 0, v[i]);
	}
	return st;
}

/* ---- life cycle ----------------------------------------------------------------- */

rpc_status gateway_proc_start(gateway_proc *h, const cfg *c, const gateway_proc_opts *o)
{
	char err[256] = "";
	h->routes = &panthera_routes;
	h->server = o->server;
	h->program = o->program;
	const char *cert = cfg_get(c, "http-tls-cert"), *key = cfg_get(c, "http-tls-key");
	int tls = is_set(cert);
	rpc_status st = gateway_proc_check(c, o->dial_services, err, sizeof(err));
	if (st == RPC_STATUS_OK)
		st = open_channels(h, c, o->dial_services, err, sizeof(err));
	gw_auth_opts ao = {.issuer = cfg_get(c, "jwt-issuer")};
	if (st == RPC_STATUS_OK)
		st = gw_auth_create(&h->auth, &ao);
	/* the JWKS comes from the auth service */
	rpc_channel *auth_ch =
	    h->n_channels > 0
	        ? (o->dial_services ? service_channel(AUTH_SERVICE, h) : h->channels[0])
	        : NULL;
	if (st == RPC_STATUS_OK && auth_ch == NULL) {
		snprintf(err, sizeof(err), "the routes do not name %s", AUTH_SERVICE);
		st = RPC_STATUS_INVALID_ARGUMENT;
	}
	if (st == RPC_STATUS_OK)
		st = gw_jwks_refresher_start(&h->refresher, h->auth, gw_jwks_fetch_rpc, auth_ch,
		                             NULL);
	gw_ratelimit_opts ro = {
	    .classes =
	        {[GW_RL_DEFAULT] = {.per_min = (uint32_t)cfg_get_int(c, "rate-limit-per-min"),
	                            .burst = (uint32_t)cfg_get_int(c, "rate-limit-burst")},
	         [GW_RL_AUTH] = {.per_min = (uint32_t)cfg_get_int(c, "auth-rate-limit-per-min"),
	                         .burst = (uint32_t)cfg_get_int(c, "auth-rate-limit-burst")}},
	    .capacity = (size_t)cfg_get_int(c, "rate-limit-buckets")};
	if (st == RPC_STATUS_OK && (st = gw_ratelimit_create(&h->ratelimit, &ro)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "rate limits: bad settings");
	gw_cors_opts co = {.origins = cfg_get(c, "cors-origins")};
	if (st == RPC_STATUS_OK)
		st = gw_cors_new(&co, &h->cors, err, sizeof(err));
	const char *proxies = cfg_get(c, "trusted-proxies");
	if (st == RPC_STATUS_OK && is_set(proxies))
		st = gw_proxy_list_new(proxies, strlen(proxies), &h->proxies, err, sizeof(err));
	/* the response cache: http-cache-mib MiB, 0 for none */
	long cache_mib = cfg_get_int(c, "http-cache-mib");
	gw_cache_config cc = {.max_bytes = (size_t)cache_mib << 20, .routes = h->routes};
	if (st == RPC_STATUS_OK && cache_mib > 0 &&
	    (st = gw_cache_create(&cc, &h->cache)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "response cache of %ld MiB", cache_mib);
	if (st == RPC_STATUS_OK && h->cache != NULL &&
	    (st = cache_feed_start(h, c)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "the cache's feed of catalog events");
	static const char *const extra[] = GW_GATEWAY_METRICS_EXTRA;
	gw_metrics_config mc = {.routes = h->routes,
	                        .extra = extra,
	                        .n_extra = GW_GATEWAY_METRICS_N_EXTRA,
	                        .shards = (unsigned)cfg_get_int(c, "http-threads") + 1,
	                        .cache = h->cache};
	if (mc.shards == 1) /* 0 threads: one per core */
		mc.shards = GW_METRICS_MAX_SHARDS;
	if (st == RPC_STATUS_OK && (st = gw_metrics_create(&mc, &h->metrics)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "metrics");
	if (st == RPC_STATUS_OK &&
	    (st = gw_metrics_add_source(h->metrics, client_metrics, h)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "metrics of the RPC client");
	if (st == RPC_STATUS_OK && h->server != NULL &&
	    (st = gw_metrics_add_source(h->metrics, server_metrics, h)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "metrics of the RPC server");
	if (st == RPC_STATUS_OK && h->n_feeds > 0 &&
	    (st = gw_metrics_add_source(h->metrics, feed_metrics, h)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "metrics of the cache's feed");
	if (st == RPC_STATUS_OK && (st = gw_access_log_open(2, 0, &h->access_log)) != RPC_STATUS_OK)
		snprintf(err, sizeof(err), "access log");
	gw_gateway_opts go = {.routes = h->routes,
	                      .metrics = h->metrics,
	                      .access_log = h->access_log,
	                      .channel = o->dial_services ? NULL : h->channels[0],
	                      .channel_for = o->dial_services ? service_channel : NULL,
	                      .channel_for_arg = h,
	                      .auth = h->auth,
	                      .refresher = h->refresher,
	                      .ratelimit = h->ratelimit,
	                      .cors = h->cors,
	                      .trusted_proxies = h->proxies,
	                      .cache = h->cache,
	                      .openapi_file = cfg_get(c, "openapi-file")};
	if (st == RPC_STATUS_OK)
		st = gw_gateway_create(&h->gateway, &go, err, sizeof(err));
	if (st == RPC_STATUS_OK) {
		gw_server_config sc;
		gw_server_config_init(&sc);
		sc.listen = cfg_get(c, "http-addr");
		sc.threads = (unsigned)cfg_get_int(c, "http-threads");
		sc.tls_cert_file = tls ? cert : NULL;
		sc.tls_key_file = tls ? key : NULL;
		sc.handler = gw_gateway_handle;
		sc.handler_arg = h->gateway;
		sc.error_body = gw_gateway_error_body;
		st = gw_server_start(&sc, &h->server_http, err, sizeof(err));
	}
	char event[64];
	snprintf(event, sizeof(event), "%s.http", h->program ? h->program : "gateway");
	if (st != RPC_STATUS_OK)
		log_write(LOG_ERROR, NULL, event, "cannot serve HTTP on %s: %s%s%s",
		          cfg_get(c, "http-addr"), rpc_status_name(st), err[0] ? ": " : "", err);
	else
		log_write(LOG_INFO, NULL, event, "the REST API of API.md on %s://%s%s",
		          tls ? "https" : "http", cfg_get(c, "http-addr"),
		          tls ? " (HTTP/2 and HTTP/1.1)" : "");
	return st;
}

void gateway_proc_stop(gateway_proc *h)
{
	gw_server_destroy(h->server_http); /* stops first */
	gw_jwks_refresher_stop(h->refresher);
	gw_gateway_destroy(h->gateway);
	cache_feed_stop(h);
	gw_auth_destroy(h->auth);
	gw_ratelimit_destroy(h->ratelimit);
	gw_cors_free(h->cors);
	gw_proxy_list_free(h->proxies);
	gw_metrics_destroy(h->metrics); /* reads the cache and the channels */
	gw_cache_destroy(h->cache);
	gw_access_log_close(h->access_log);
	for (size_t i = 0; i < h->n_channels; i++)
		rpc_channel_close(h->channels[i]);
	*h = (gateway_proc){0};
}
