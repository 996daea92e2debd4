/*
 * gw_cache_feed.c - the response cache fed by the catalog's, inventory's
 * and reviews' change events; see gw_cache.h.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "gw_cache.h"
#include "panthera/events.h"
#include "panthera/log.h"

struct gw_cache_feed {
	gw_cache *cache;
	ev_tail *tail;
	atomic_uint_fast64_t dropped, clears;
};

static const char *const default_schemas[] = {"catalog", "inventory", "reviews", NULL};
static const char *const feed_types[] = {
    "panthera.events.v1.ProductChanged", "panthera.events.v1.StockChanged",
    "panthera.events.v1.ReviewCreated", "panthera.events.v1.ReviewDeleted", NULL};

static void feed_clear(gw_cache_feed *f)
{
	atomic_fetch_add(&f->clears, 1);
	atomic_fetch_add(&f->dropped, gw_cache_clear(f->cache));
}

static void on_event(const char *schema, const char *type, const uint8_t *payload, size_t len,
                     void *arg)
{
	gw_cache_feed *f = arg;
	gw_cache_tags tags;
	rpc_status st = gw_cache_event_tags(type, payload, len, &tags);
	if (st != RPC_STATUS_OK) {
		/* it cannot say what changed: drop it all */
		log_write(LOG_WARN, NULL, "gateway.cache",
		          "%s.outbox: a %s event without a product (%s): the cache is cleared",
		          schema, type, rpc_status_name(st));
		feed_clear(f);
		return;
	}
	atomic_fetch_add(&f->dropped, gw_cache_invalidate_tags(f->cache, &tags));
}

static void on_gap(void *arg)
{
	feed_clear(arg);
}

rpc_status gw_cache_feed_start(gw_cache *c, const gw_cache_feed_opts *o, gw_cache_feed **out)
{
	if (out != NULL)
		*out = NULL;
	if (c == NULL || o == NULL || o->db_url == NULL || out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	gw_cache_feed *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	f->cache = c;
	ev_tail_opts to = {.url = o->db_url,
	                   .schemas = o->schemas ? o->schemas : default_schemas,
	                   .types = feed_types,
	                   .on_event = on_event,
	                   .on_gap = on_gap,
	                   .arg = f,
	                   .poll_ms = o->poll_ms};
	rpc_status st = ev_tail_start(&f->tail, &to);
	if (st != RPC_STATUS_OK) {
		free(f);
		return st;
	}
	*out = f;
	return RPC_STATUS_OK;
}

void gw_cache_feed_stats_get(const gw_cache_feed *f, gw_cache_feed_stats *out)
{
	*out = (gw_cache_feed_stats){0};
	if (f == NULL)
		return;
	ev_tail_counts(f->tail, &out->events, &out->errors);
	out->dropped = atomic_load(&f->dropped);
	out->clears = atomic_load(&f->clears);
}

void gw_cache_feed_stop(gw_cache_feed *f)
{
	if (f == NULL)
		return;
	ev_tail_stop(f->tail);
	free(f);
}
