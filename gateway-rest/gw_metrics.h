/*
 * gw_metrics.h - the REST gateway's metrics and their Prometheus text
 * exposition (format 0.0.4) for GET /metrics.
 *
 * Counted here, by the request pipeline:
 *   panthera_gateway_http_requests_total{method,route,code}       counter
 *   panthera_gateway_http_request_duration_seconds{method,route}  histogram
 *   panthera_gateway_http_requests_in_flight                      gauge
 *   panthera_gateway_rate_limited_total                           counter
 * and, from a gw_cache given at create, its hits, misses, stores, refused
 * stores, evictions, expirations, invalidations, entries and bytes
 * (panthera_gateway_cache_*). Other sections (the RPC client's, the
 * services', the HTTP server's) are appended as text by sources registered
 * at start-up. docs/gateway/observability.md lists every metric.
 *
 * Bounded: "route" is a template of the route table or one of the names
 * the pipeline gives at create for its own paths ("/healthz"), or
 * "unmatched"; "code" is one of a fixed set of statuses or its class
 * ("4xx"). Counters are fixed arrays of atomics, route x code slot, in one
 * shard per event-loop thread (the caller says which), so the loops do not
 * share cache lines; a scrape sums the shards.
 *
 * Thread-safety: gw_metrics_create/destroy and gw_metrics_add_source are
 * the start-up's (before any other call, and destroy after every other
 * call). The counting functions and gw_metrics_render may run on any
 * number of threads at once (relaxed atomics: each value read is exact,
 * the set of values is not a snapshot). gw_metrics_text is one thread's.
 */
#ifndef PANTHERA_GW_METRICS_H
#define PANTHERA_GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_cache.h"
#include "panthera/rpc_route.h"
#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The Content-Type of the exposition. */
#define GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define GW_METRICS_MAX_SHARDS  256u
#define GW_METRICS_MAX_EXTRA   32u
#define GW_METRICS_MAX_SOURCES 16u
#define GW_METRICS_TEXT_MAX    (16u << 20) /* default bound of a rendered text */

/* The route slot of a request no route took (404, 405, 400 on the path). */
#define GW_METRICS_UNMATCHED SIZE_MAX

/* ---- text ---------------------------------------------------------------------- */

/* A growing text buffer with a bound; once an append fails, every later
 * append fails too (check once at the end). */
typedef struct gw_metrics_text {
	char *data; /* NUL-terminated when not NULL */
	size_t len, cap;
	size_t max; /* bytes it may grow to */
	int failed; /* an append failed: out of memory or over max */
} gw_metrics_text;

/* Start an empty text of at most max bytes (0: GW_METRICS_TEXT_MAX). */
void gw_metrics_text_init(gw_metrics_text *t, size_t max);

/* Free its memory; it may be initialised again. NULL is harmless. */
void gw_metrics_text_free(gw_metrics_text *t);

/*
 * Append n bytes of exposition text as given (another module's section),
 * and a '\n' when it does not end with one. The text is not checked: its
 * producer answers for its format. NUL bytes are refused.
 * Returns OK, INVALID_ARGUMENT (NULL, a NUL byte) or RESOURCE_EXHAUSTED.
 */
rpc_status gw_metrics_text_append(gw_metrics_text *t, const char *s, size_t n);

/* A label of a sample: the name [a-zA-Z_][a-zA-Z0-9_]*, any UTF-8 value
 * (escaped as the format asks: backslash, double quote, newline). */
typedef struct gw_metrics_label {
	const char *name;
	const char *value;
} gw_metrics_label;

/*
 * Append the "# HELP" and "# TYPE" lines of a metric family. name:
 * [a-zA-Z_:][a-zA-Z0-9_:]*; type: "counter", "gauge", "histogram",
 * "summary" or "untyped"; help: any text (backslash and newline escaped).
 * Returns OK, INVALID_ARGUMENT (a bad name or type) or RESOURCE_EXHAUSTED.
 */
rpc_status gw_metrics_text_family(gw_metrics_text *t, const char *name, const char *type,
                                  const char *help);

/* Append one sample line `name{labels} value` with an integer value. */
rpc_status gw_metrics_text_sample(gw_metrics_text *t, const char *name,
                                  const gw_metrics_label *labels, size_t n_labels, uint64_t value);

/* The same with a floating value (NaN, +Inf, -Inf as the format spells them). */
rpc_status gw_metrics_text_sample_f(gw_metrics_text *t, const char *name,
                                    const gw_metrics_label *labels, size_t n_labels, double value);

/* ---- the metrics -------------------------------------------------------------- */

typedef struct gw_metrics gw_metrics;

/* A section of text added to each scrape; returns OK or an error (its
 * text is then left out of the scrape). */
typedef rpc_status (*gw_metrics_source_fn)(gw_metrics_text *out, void *arg);

typedef struct gw_metrics_config {
	/* The routes the pipeline serves (slot i is route i); may be NULL.
	 * Must outlive the metrics. */
	const rpc_route_table *routes;
	/* Names of the pipeline's own paths ("/healthz", "/readyz",
	 * "/metrics", "/openapi.json"): slot n_routes + i; at most
	 * GW_METRICS_MAX_EXTRA. Copied. */
	const char *const *extra;
	size_t n_extra;
	/* Counter shards: the number of event-loop threads (+1 when other
	 * threads count too); 0: 1. At most GW_METRICS_MAX_SHARDS. */
	unsigned shards;
	/* Its statistics go into each scrape; may be NULL. Must outlive the
	 * metrics. */
	const gw_cache *cache;
} gw_metrics_config;

/* Create; *out NULL on error. Returns OK, INVALID_ARGUMENT (NULL out, too
 * many shards or extra names, an empty or non-UTF-8 extra name) or
 * RESOURCE_EXHAUSTED. */
rpc_status gw_metrics_create(const gw_metrics_config *cfg, gw_metrics **out);

/* Free. NULL is harmless. */
void gw_metrics_destroy(gw_metrics *m);

/* Add a section source, called by every render after the built-in sections,
 * in the order added. Returns OK, INVALID_ARGUMENT or RESOURCE_EXHAUSTED
 * (more than GW_METRICS_MAX_SOURCES). */
rpc_status gw_metrics_add_source(gw_metrics *m, gw_metrics_source_fn fn, void *arg);

/* The slot of extra name i (n_routes + i). */
size_t gw_metrics_extra_slot(const gw_metrics *m, size_t i);

/* A request has arrived (in-flight + 1). shard: the request's loop index
 * (taken modulo the shard count). */
void gw_metrics_request_begin(gw_metrics *m, unsigned shard);

/*
 * A request was answered (in-flight - 1): counted by route slot and status,
 * and its duration in the route's histogram.
 * slot:   a route index, gw_metrics_extra_slot(), or GW_METRICS_UNMATCHED
 *         (anything else counts as unmatched).
 * status: the HTTP status sent; a status outside the fixed set counts
 *         under its class ("4xx"), one outside 100..599 under "other".
 */
void gw_metrics_request_end(gw_metrics *m, unsigned shard, size_t slot, int status,
                            uint64_t duration_ns);

/* A request was refused by the rate limiter (429). */
void gw_metrics_rate_limited(gw_metrics *m, unsigned shard);

/*
 * Append the whole exposition to `out`: the gateway's families, the
 * cache's, then each source's text. Families with no sample yet have their
 * HELP and TYPE only; only (route, code) pairs seen are written, and
 * histograms of routes that had a request.
 * Returns OK or RESOURCE_EXHAUSTED (out of memory or over out->max; the
 * text is then unusable).
 */
rpc_status gw_metrics_render(const gw_metrics *m, gw_metrics_text *out);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_METRICS_H */
