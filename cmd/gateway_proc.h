/*
 * gateway_proc.h - the REST gateway as a process runs it: the one set-up
 * that pantherad (every service and the gateway in one process) and
 * panthera-gateway (the gateway alone, dialing the services over their
 * URLs) share. It reads the settings (config.c), opens the RPC channels,
 * builds the gateway's parts (token checks and the JWKS refresher, rate
 * limits, CORS, trusted proxies, metrics, access log, response cache),
 * and serves HTTP or HTTPS on PANTHERA_HTTP_ADDR.
 *
 * /metrics carries, after the gateway's own families, the RPC client's
 * counters over every channel the gateway opened
 * (panthera_rpc_client_*), and, when the process serves the services
 * itself, its RPC server's (panthera_rpc_server_*); see
 * docs/gateway/observability.md.
 *
 * Thread-safety: start and stop are the main thread's, once each.
 */
#ifndef PANTHERA_GATEWAY_PROC_H
#define PANTHERA_GATEWAY_PROC_H

#include <stddef.h>

#include "gw_accesslog.h"
#include "gw_auth.h"
#include "gw_cache.h"
#include "gw_clientip.h"
#include "gw_cors.h"
#include "gw_gateway.h"
#include "gw_metrics.h"
#include "gw_ratelimit.h"
#include "gw_server.h"
#include "panthera/config.h"
#include "panthera/rpc.h"
#include "panthera/rpc_route.h"

/* Services of a route table, and distinct channels, one process handles. */
#define GATEWAY_PROC_MAX_SERVICES 16

typedef struct gateway_proc_opts {
	/* 0: every service over one channel to rpc-url (pantherad, whose RPC
	 * server serves them all); 1: each service of the route table over its
	 * own URL setting (catalog-url, users-url, ...; panthera-gateway). */
	int dial_services;
	/* The process's RPC server, whose per-method counters /metrics shows
	 * (panthera_rpc_server_*); NULL when the services run elsewhere. Must
	 * outlive the gateway. */
	rpc_server *server;
	/* First word of the log events ("pantherad": pantherad.http). */
	const char *program;
} gateway_proc_opts;

/* Everything the gateway of a process holds; zero it before start. */
typedef struct gateway_proc {
	const rpc_route_table *routes;
	rpc_server *server;
	const char *program;
	/* the channels opened, one per distinct URL, and the one of each
	 * service of the route table (an index into `channels`) */
	rpc_channel *channels[GATEWAY_PROC_MAX_SERVICES];
	size_t n_channels;
	size_t service_channel[GATEWAY_PROC_MAX_SERVICES];
	gw_cache *cache;
	/* the cache's feeds of change events, one per distinct database of
	 * the catalog, inventory and reviews */
	gw_cache_feed *feeds[3];
	size_t n_feeds;
	gw_ratelimit *ratelimit;
	gw_cors *cors;
	gw_proxy_list *proxies;
	gw_metrics *metrics;
	gw_access_log *access_log;
	gw_auth *auth;
	gw_jwks_refresher *refresher;
	gw_gateway *gateway;
	gw_server *server_http;
} gateway_proc;

/*
 * Whether the settings let the gateway start, before anything is opened:
 * PANTHERA_HTTP_TLS_CERT and PANTHERA_HTTP_TLS_KEY both set or both unset;
 * with dial_services, a URL setting for every service of panthera_routes.
 * Returns OK, or INVALID_ARGUMENT with one sentence in err (errlen bytes)
 * naming the setting to give.
 */
rpc_status gateway_proc_check(const cfg *c, int dial_services, char *err, size_t errlen);

/*
 * Open the channels, build the gateway and serve HTTP on http-addr. Logs
 * "<program>.http" with the URL served, or the reason it could not.
 * On error, call gateway_proc_stop() to free what was made.
 */
rpc_status gateway_proc_start(gateway_proc *h, const cfg *c, const gateway_proc_opts *o);

/* Stop taking requests, finish those in flight, free everything; the
 * struct is zeroed. Harmless on a zeroed struct or after a failed start. */
void gateway_proc_stop(gateway_proc *h);

#endif /* PANTHERA_GATEWAY_PROC_H */
