/*
 * gw_gateway.h - the REST gateway's request pipeline: an HTTP request of
 * API.md in, an RPC out, its reply back as JSON. The handler a gw_server
 * calls (gw_gateway_handle); everything it knows of the API comes from the
 * generated route table.
 *
 * Per request, on the loop thread that owns it:
 *   1. /healthz, /openapi.json and /metrics are answered at once, /readyz
 *      once every service of the routes has answered its health check
 *      (200, or 503 naming one that is not serving); a CORS preflight
 *      (OPTIONS with Origin and Access-Control-Request-Method) gets 204 or
 *      403 from gw_cors;
 *   2. the route: gw_router_match (404, 405 with Allow, 400);
 *   3. the caller: a Bearer token verified by gw_auth (401 with
 *      WWW-Authenticate when the route is not public and the token is
 *      missing or bad; 503 before the first JWKS), then the route's policy:
 *      ADMIN needs the admin role (403), OWNER needs the path's owner field
 *      to be the caller unless admin (404: existence does not leak);
 *      then the rate limit: login and register by client address in the
 *      auth class, a caller by user id, anyone else by client address
 *      (429 with Retry-After; a bad token still costs its address a
 *      token); the client address is the socket peer, or X-Forwarded-For
 *      behind a trusted proxy (gw_clientip);
 *   4. the request message, in the request's arena: the body (gw_json_decode,
 *      body "*" or one field), then the path variables, then the query
 *      parameters, then a PATCH's update_mask from the body's keys;
 *   5. the RPC, asynchronous, with the caller's identity (x-caller-id,
 *      x-caller-roles), x-request-id, traceparent and, where the route
 *      takes one, idempotency-key as metadata;
 *   6. on completion (a runtime thread): the reply encoded as JSON (every
 *      field, defaults included) with the route's success status, or the
 *      error in the AIP-193 shape with its canonical HTTP status; handed to
 *      gw_respond(), which carries it back to the request's loop.
 * Every reply carries X-Request-Id (the client's when sane, else a new
 * one), the CORS headers for its Origin and the RateLimit-* fields.
 *
 * Every answer is counted in `metrics` (served at GET /metrics) and written
 * as one line to `access_log`, when given.
 *
 * Cacheable GET routes (a proto option's TTL) are answered from `cache`
 * when it holds a fresh reply (after the token, policy and rate limit, so
 * a bad token is still 401 and a limited client 429), and their 200
 * replies stored there; a successful write drops the entries it changes on
 * this replica at once (gw_cache_route_tags), the catalog's events drop
 * them everywhere (the process feeds them to gw_cache_event_tags).
 *
 * Thread-safety: a gateway is read-only once created; any number of loops
 * call gw_gateway_handle at once.
 */
#ifndef PANTHERA_GW_GATEWAY_H
#define PANTHERA_GW_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "gw_accesslog.h"
#include "gw_auth.h"
#include "gw_cache.h"
#include "gw_clientip.h"
#include "gw_cors.h"
#include "gw_metrics.h"
#include "gw_ratelimit.h"
#include "gw_server.h"
#include "panthera/rpc.h"
#include "panthera/rpc_route.h"

typedef struct gw_gateway gw_gateway;

/* The pipeline's own paths, as gw_metrics_config.extra wants them. */
#define GW_GATEWAY_METRICS_EXTRA                                   \
	{                                                          \
		"/healthz", "/openapi.json", "/metrics", "/readyz" \
	}
#define GW_GATEWAY_METRICS_N_EXTRA 4

typedef struct gw_gateway_opts {
	/* The routes; required (&panthera_routes). */
	const rpc_route_table *routes;
	/* Where the services of the table are served: the default channel,
	 * required unless channel_for names one for every service. The gateway
	 * does not own it. */
	rpc_channel *channel;
	/* Where one service is served, when its calls go elsewhere (the gateway
	 * as its own process dials each service over its URL): called at
	 * create only, once per route and once per service of the table, with
	 * the service's full name ("panthera.catalog.v1.CatalogService");
	 * returns that service's channel, or NULL for `channel`. NULL: every
	 * call over `channel`. The channels it returns are not owned and must
	 * outlive the gateway. */
	rpc_channel *(*channel_for)(const char *service_full_name, void *arg);
	void *channel_for_arg;
	/* Token checks; required when a route is not public. Not owned. */
	gw_auth *auth;
	/* Asked for a fresh JWKS when a token names an unknown key; may be
	 * NULL. Not owned. */
	gw_jwks_refresher *refresher;
	/* Rate limits; NULL: none. Not owned. */
	gw_ratelimit *ratelimit;
	/* CORS; NULL: none. Not owned. */
	gw_cors *cors;
	/* Reverse proxies whose X-Forwarded-For is believed; NULL: none. Not
	 * owned. */
	gw_proxy_list *trusted_proxies;
	/* Counters served at /metrics; NULL: none (and /metrics is 404). Its
	 * extra slots must be "/healthz", "/openapi.json", "/metrics",
	 * "/readyz", in that order (GW_GATEWAY_METRICS_EXTRA). Not owned. */
	gw_metrics *metrics;
	/* One JSON line per answer; NULL: none. Not owned. */
	gw_access_log *access_log;
	/* The response cache of the cacheable GET routes; NULL: none. Not
	 * owned; the process feeds it the catalog's change events. */
	gw_cache *cache;
	/* Deadline of each RPC; 0: 10000 ms. */
	uint32_t rpc_timeout_ms;
	/* The OpenAPI document served at GET /openapi.json, read once at
	 * create; NULL: 404 there. */
	const char *openapi_file;
} gw_gateway_opts;

/*
 * Build the router and the JSON schema of every route, read the OpenAPI
 * file. On error *out is NULL and err (errlen bytes, may be NULL) says why:
 * INVALID_ARGUMENT for missing options or a table the router or the
 * schema refuses, NOT_FOUND for an unreadable OpenAPI file,
 * RESOURCE_EXHAUSTED.
 */
rpc_status gw_gateway_create(gw_gateway **out, const gw_gateway_opts *opts, char *err,
                             size_t errlen);

/* Free it; after the server that calls it has stopped. NULL is harmless. */
void gw_gateway_destroy(gw_gateway *g);

/* The gw_handler_fn: arg is the gw_gateway. */
void gw_gateway_handle(gw_request *req, void *arg);

/* A gw_error_body_fn writing the server's own errors (413, 431, ...) in the
 * same AIP-193 shape as the gateway's; arg unused. */
size_t gw_gateway_error_body(int status, const char *reason, const char *message, char *buf,
                             size_t cap, void *arg);

#endif /* PANTHERA_GW_GATEWAY_H */
