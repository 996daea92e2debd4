/*
 * gw_cache.h - the REST gateway's response cache, its ETags and conditional
 * GETs (If-None-Match -> 304), and the Cache-Control value of each reply.
 *
 * The cache keeps the JSON replies of the GET routes that a proto option
 * marks cacheable (rpc_http_route.cache_ttl_seconds > 0: GET /v1/products,
 * GET /v1/products/{product_id}, GET /v1/categories), for that many seconds
 * at most, in memory bounded by a total number of bytes with LRU eviction.
 * Entries are found by a key built from the route, its decoded path
 * variables and its query parameters in a canonical order
 * (gw_cache_key_build), and dropped early by tags: each entry carries the
 * ids of the resources it shows ("product:<id>") and, for lists, the name
 * of its collection ("products"); gw_cache_invalidate_tag() drops every
 * entry with a tag when the catalog says that resource changed
 * (gw_cache_event_tags() maps an event of the log to its tags).
 * docs/gateway/cache.md has the design, the key normalisation, the tag
 * rules and the event table, and the order in which the pipeline calls
 * these functions.
 *
 * Memory and ownership: the cache owns copies of what it stores. A lookup
 * hands out a reference to an immutable entry (refcount): the body, content
 * type and ETag stay valid until gw_cache_release(), even when the entry is
 * evicted, invalidated or replaced meanwhile (nothing is copied under a
 * lock). Entries held by readers after they left the cache no longer count
 * towards max_bytes; they are freed by the last release.
 *
 * Thread-safety: gw_cache_create() and gw_cache_destroy() are the caller's
 * to order (destroy once no thread calls into the cache; hits still held
 * stay valid until released). Every other function may be called from any number of threads
 * at once: the entries are spread over shards by the hash of their key,
 * each shard with its own mutex held only for a hash-table probe and a few
 * pointer moves; counters are atomics. The pure helpers (keys, tags, ETags,
 * If-None-Match, Cache-Control) keep no state.
 *
 * Errors: functions that can fail return an rpc_status: INVALID_ARGUMENT
 * for arguments outside their contract, RESOURCE_EXHAUSTED when out of
 * memory or over a bound, FAILED_PRECONDITION for a store that an
 * invalidation overtook. A failure of the cache never needs to fail the
 * request: the pipeline answers from the RPC as if there were no cache.
 */
#ifndef PANTHERA_GW_CACHE_H
#define PANTHERA_GW_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gw_http.h"
#include "gw_router.h"
#include "panthera/rpc_route.h"
#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GW_CACHE_DEFAULT_MAX_BYTES (64u << 20) /* 64 MiB */
#define GW_CACHE_DEFAULT_SHARDS    16u
#define GW_CACHE_MAX_SHARDS        1024u
#define GW_CACHE_KEY_MAX           2048u /* bytes of a key; longer requests are not cached */
#define GW_CACHE_MAX_TAGS          (GW_ROUTER_MAX_VARS + 1u) /* tags of one entry */
#define GW_CACHE_TAG_MAX           128u                      /* bytes of a tag, its NUL included */

/* ---- hashing and ETags ------------------------------------------------------ */

/*
 * SipHash-2-4 of data[0..len) under the 128-bit key (k0, k1): the hash of
 * the cache's tables, keyed at random per cache so that no client can
 * choose keys that collide. data may be NULL when len is 0.
 */
uint64_t gw_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);

/*
 * A fast 64-bit hash of data[0..len) (32 bytes a round on four lanes,
 * multiply-rotate mixing, a final avalanche), not keyed: the same body
 * gives the same value in every process and on every host, so ETags agree
 * between gateway replicas. Not for tables fed by clients (gw_siphash24).
 */
uint64_t gw_hash64(const void *data, size_t len);

/* Bytes of an ETag as gw_etag() writes it: '"', 16 hex digits, '"'. */
#define GW_ETAG_LEN 18u

/*
 * The strong ETag of a reply body: gw_hash64 of the bytes, as 16 lower-case
 * hex digits between double quotes, NUL-terminated (GW_ETAG_LEN + 1 bytes).
 * Strong because it changes with any byte of the body: the gateway sends
 * bodies as they are (no content coding). body may be NULL when len is 0.
 */
void gw_etag(const void *body, size_t len, char out[GW_ETAG_LEN + 1]);

/* The result of gw_if_none_match(). */
typedef enum gw_inm_result {
	GW_INM_INVALID = -1, /* malformed or over the bounds: ignore the field */
	GW_INM_NO_MATCH = 0, /* no tag matches: answer as usual */
	GW_INM_MATCH = 1,    /* a tag matches, or "*": answer 304 to a GET */
} gw_inm_result;

#define GW_INM_MAX_BYTES 8192u /* longest If-None-Match value parsed */
#define GW_INM_MAX_TAGS  64u   /* entity-tags one value may list */

/*
 * Evaluate an If-None-Match field value against the current ETag of the
 * resource (RFC 9110 section 13.1.2): "*", or a comma-separated list of
 * entity-tags (optional whitespace around the commas, empty list elements
 * allowed), each `"opaque"` or `W/"opaque"`, compared weakly (a W/ prefix on
 * either side does not matter; the opaque parts must be equal byte for
 * byte). A request with several If-None-Match fields is the list of all
 * their values: call this once per field and 304 when any call matches.
 *
 * value:  the field value; surrounding spaces and tabs are ignored. May be
 *         NULL when len is 0 (an empty value is GW_INM_INVALID).
 * etag:   the current ETag as gw_etag() writes it, quoted, optionally with
 *         W/; etag_len its length. NULL or empty: the resource has no
 *         current representation, and nothing matches, not even "*".
 * Returns GW_INM_MATCH, GW_INM_NO_MATCH, or GW_INM_INVALID for a value that
 * is not the grammar's (an unquoted tag, a bad character, '*' in a list),
 * longer than GW_INM_MAX_BYTES or with more than GW_INM_MAX_TAGS tags. The
 * scan is linear in len and stops at the first match.
 */
gw_inm_result gw_if_none_match(const char *value, size_t len, const char *etag, size_t etag_len);

/* ---- Cache-Control ---------------------------------------------------------- */

#define GW_CACHE_CONTROL_MAX 40u /* bytes gw_cache_control() may write, NUL included */

/*
 * The Cache-Control value of a reply:
 *   "public, max-age=<max_age>" when `cacheable`: a 200 (or its 304) of a
 *       GET route with cache_ttl_seconds > 0; max_age the seconds of
 *       freshness left (a hit's max_age, the route's TTL for a fresh
 *       reply). Sent whether or not the request had an Authorization
 *       field: a cacheable method promises that its reply is the same for
 *       every caller (docs/gateway/cache.md);
 *   "private, no-store" for any other reply to a request that carried an
 *       Authorization field (`authorized`): nothing a user's token
 *       unlocked is stored by a cache, shared or not;
 *   "no-store" for every other reply (errors, writes, tokens of
 *       POST /v1/auth/login, GETs not marked cacheable).
 * buf: at least GW_CACHE_CONTROL_MAX bytes; NUL-terminated.
 * Returns the length written.
 */
size_t gw_cache_control(int cacheable, int authorized, uint32_t max_age,
                        char buf[GW_CACHE_CONTROL_MAX]);

/*
 * 1 when a reply may be stored and served by the cache: the route has a
 * TTL, the method is GET (exactly), and the status is 200. 0 otherwise and
 * for a NULL route or method.
 */
int gw_cache_route_cacheable(const rpc_http_route *route, const char *method, int status);

/* ---- keys and tags ---------------------------------------------------------- */

/*
 * The tags an entry carries, or that a write invalidates: NUL-terminated
 * strings, at most GW_CACHE_MAX_TAGS.
 */
typedef struct gw_cache_tags {
	size_t n;
	char tag[GW_CACHE_MAX_TAGS][GW_CACHE_TAG_MAX];
} gw_cache_tags;

/*
 * Append one tag: "<kind>:<id>" when id is not NULL, else "<kind>" alone.
 * Returns OK, or INVALID_ARGUMENT (kind NULL or empty, an id empty or with
 * a NUL) or RESOURCE_EXHAUSTED (GW_CACHE_MAX_TAGS tags already, or longer
 * than GW_CACHE_TAG_MAX - 1 bytes); tags is unchanged on error.
 */
rpc_status gw_cache_tags_add(gw_cache_tags *tags, const char *kind, const char *id, size_t id_len);

/*
 * The tags of a route called with these path variables, from names alone
 * (nothing per endpoint). A variable whose field path's last component is
 * "<stem>_id" names the resource "<stem>:<value>" ("product_id" ->
 * "product:<id>"); the route's last literal segment is its collection
 * ("products" for /v1/products and /v1/products/{product_id}).
 *   - A GET (`write` 0), the tags its stored reply carries: every resource
 *     its path names, and the collection when the template ends with it
 *     (a list).
 *   - A write (`write` 1), the tags to invalidate once it succeeded: the
 *     collection, and the item of the collection, the variable right after
 *     the collection's literal when that literal is the plural of its stem
 *     ("products"/"product", "addresses"/"address", "categories"/
 *     "category"). Other resources the path names are not changed by the
 *     write: PATCH /v1/cart/items/{product_id} gives "items" alone, not
 *     the product.
 * The pipeline stores a GET reply with the first set, and after a
 * successful write invalidates the second (on this replica at once; the
 * catalog's events reach every replica).
 *
 * vars: the match's variables in the route's order (gw_route_match.vars,
 *       n_vars of them).
 * Returns OK, INVALID_ARGUMENT for a NULL route or tags, or
 * RESOURCE_EXHAUSTED when a tag would be too long (an id of more than
 * GW_CACHE_TAG_MAX bytes) or too many: the reply must then not be cached,
 * or, for a write, the whole cache cleared.
 */
rpc_status gw_cache_route_tags(const rpc_http_route *route, const gw_path_var *vars, size_t n_vars,
                               int write, gw_cache_tags *tags);

/*
 * The tags a change event of the log invalidates (docs/gateway/cache.md has
 * the table):
 *   panthera.events.v1.ProductChanged  product:<product_id>, products
 *   panthera.events.v1.StockChanged    product:<product_id>, products
 *   panthera.events.v1.ReviewCreated   product:<product_id>
 *   panthera.events.v1.ReviewDeleted   product:<product_id>
 * every other type: no tag (OK with tags->n 0).
 *
 * type:    the envelope's type (Event.type), NUL-terminated.
 * payload: the envelope's payload, len bytes (NULL when 0).
 * Returns OK; INVALID_ARGUMENT for a NULL type or tags, or a payload of a
 * listed type that does not decode or names no product (the caller should
 * then clear the cache: it cannot know what changed); RESOURCE_EXHAUSTED
 * when out of memory or the id is too long for a tag.
 */
rpc_status gw_cache_event_tags(const char *type, const void *payload, size_t len,
                               gw_cache_tags *tags);

/* ---- the cache -------------------------------------------------------------- */

typedef struct gw_cache gw_cache;

/* A clock in milliseconds, for tests; any monotonic origin. */
typedef uint64_t (*gw_cache_clock_fn)(void *arg);

typedef struct gw_cache_config {
	/* Bytes the cache may hold: entries (their key, body, content type,
	 * tags and bookkeeping) and the shards' hash tables. 0: 64 MiB. Each
	 * shard holds at most max_bytes / shards. */
	size_t max_bytes;
	/* Shards: a power of two, 1..GW_CACHE_MAX_SHARDS; 0: 16. Lowered so
	 * that each shard has at least 64 KiB. */
	unsigned shards;
	/* Largest body stored; 0: max_bytes / shards / 4; at most half a
	 * shard. A larger reply is not stored (RESOURCE_EXHAUSTED). */
	size_t max_entry_bytes;
	/* The clock; NULL: CLOCK_MONOTONIC. */
	gw_cache_clock_fn clock;
	void *clock_arg;
	/* The key building uses it to order query parameters; may be NULL,
	 * and then parameters are ordered by their field only. Must outlive
	 * the cache. Read once at create. */
	const rpc_route_table *routes;
} gw_cache_config;

/*
 * Create a cache.
 * cfg: NULL for every default.
 * out: OUT, the cache; NULL on error.
 * Returns OK, INVALID_ARGUMENT (shards not a power of two or over
 * GW_CACHE_MAX_SHARDS, max_bytes under 64 KiB) or RESOURCE_EXHAUSTED.
 */
rpc_status gw_cache_create(const gw_cache_config *cfg, gw_cache **out);

/* Free the cache and every entry no reader holds; entries still held are
 * freed by their last gw_cache_release(). NULL is harmless. */
void gw_cache_destroy(gw_cache *c);

/*
 * The key of a request to a cacheable route, written into buf: the route's
 * index in the table, each decoded path variable, then the decoded query
 * parameters in a canonical order. Two requests get the same key exactly
 * when they call the same route with the same variables and the same
 * parameters, whatever their escaping ("%41" or "A", '+' or "%20"), their
 * parameter names (pageSize or page_size) or the order of different
 * fields; the order of the values of one field (repeated fields), and of
 * the members of one oneof, is kept. docs/gateway/cache.md describes it.
 *
 * r, m:    the router and its match of the request (status 0).
 * params:  the request's query parameters as gw_query_parse() gave them
 *          (n_params; NULL when 0), each naming a query field of the route
 *          (gw_router_check_query() passed).
 * buf:     at least GW_CACHE_KEY_MAX bytes is always enough; binary, not
 *          NUL-terminated.
 * key_len: OUT, the key's length; 0 on error.
 * Returns OK, INVALID_ARGUMENT (NULL arguments, a parameter that names no
 * query field of the route) or RESOURCE_EXHAUSTED (the key is longer than
 * buf_cap: do not cache this request).
 */
rpc_status gw_cache_key_build(const gw_cache *c, const gw_router *r, const gw_route_match *m,
                              const gw_query_param *params, size_t n_params, void *buf,
                              size_t buf_cap, size_t *key_len);

/* An entry handed out by gw_cache_lookup(). */
typedef struct gw_cache_entry gw_cache_entry;

/* What a lookup found: views into the entry, valid until its release. */
typedef struct gw_cache_hit {
	gw_cache_entry *entry;    /* give to gw_cache_release() */
	int status;               /* 200 */
	const char *content_type; /* NUL-terminated */
	size_t content_type_len;
	const void *body;
	size_t body_len;
	const char *etag; /* as gw_etag(), NUL-terminated */
	size_t etag_len;
	uint32_t max_age; /* whole seconds of freshness left, for Cache-Control */
} gw_cache_hit;

/*
 * Find the fresh entry of `key`. An entry past its expiry is dropped and
 * counts as a miss. A hit becomes the most recently used entry of its shard.
 * hit: OUT, filled on a hit (the caller then owns one reference and must
 * release it); zeroed on a miss.
 * Returns 1 on a hit, 0 on a miss (also for NULL arguments).
 */
int gw_cache_lookup(gw_cache *c, const void *key, size_t key_len, gw_cache_hit *hit);

/* Give back the reference of a hit; the entry is freed when it has left the
 * cache and this was the last reference. NULL is harmless. */
void gw_cache_release(gw_cache_entry *e);

/*
 * The cache's invalidation counter, to take before the RPC whose reply
 * will be stored: gw_cache_store() refuses the reply when one of its tags
 * was invalidated (or the cache cleared) after the ticket was taken, since
 * the service may have answered from before the change.
 */
uint64_t gw_cache_ticket(const gw_cache *c);

/* A reply to store. */
typedef struct gw_cache_reply {
	int status;               /* must be 200 */
	const char *content_type; /* NUL-terminated, 1..255 bytes */
	const void *body;         /* body_len bytes; NULL when 0 */
	size_t body_len;
	const char *etag;     /* the body's ETag as gw_etag(), or NULL to compute it */
	uint32_t ttl_seconds; /* the route's, 1..86400 */
} gw_cache_reply;

/*
 * Store a copy of a reply under `key` with `tags` (may be NULL: no tag),
 * replacing any entry of the same key, then evict least recently used
 * entries of the shard until it is within its bytes. The copy is made
 * before the shard is locked.
 * Returns OK; FAILED_PRECONDITION when a tag of the entry was invalidated,
 * or the cache cleared, after `ticket` (nothing stored); INVALID_ARGUMENT
 * for NULL arguments, an empty key or one over GW_CACHE_KEY_MAX, a status
 * other than 200, a TTL of 0 or over a day, a bad content type or ETag, an
 * empty tag or one without its NUL; RESOURCE_EXHAUSTED for a body over
 * max_entry_bytes, an entry that does not fit its shard, or out of memory.
 */
rpc_status gw_cache_store(gw_cache *c, uint64_t ticket, const void *key, size_t key_len,
                          const gw_cache_tags *tags, const gw_cache_reply *reply);

/*
 * Drop every entry that carries `tag` (NUL-terminated), in every shard,
 * and make stores with an older ticket of an entry with that tag fail.
 * Linear in the entries dropped and the shards, never in the cache's size.
 * Returns the number of entries dropped.
 */
size_t gw_cache_invalidate_tag(gw_cache *c, const char *tag);

/* gw_cache_invalidate_tag() for each tag of `tags`; the total dropped. */
size_t gw_cache_invalidate_tags(gw_cache *c, const gw_cache_tags *tags);

/* Drop every entry, and make stores with an older ticket fail. Returns the
 * number of entries dropped. */
size_t gw_cache_clear(gw_cache *c);

/* Counters and sizes of a cache, for /metrics. */
typedef struct gw_cache_stats {
	uint64_t hits;          /* lookups that found a fresh entry */
	uint64_t misses;        /* lookups that did not (expired ones included) */
	uint64_t stores;        /* entries stored */
	uint64_t store_refused; /* stores refused: invalidated meanwhile, too big, no memory */
	uint64_t evictions;     /* entries dropped to stay within max_bytes */
	uint64_t expirations;   /* entries dropped because their TTL ran out */
	uint64_t invalidations; /* entries dropped by a tag or a clear */
	uint64_t entries;       /* entries in the cache now */
	uint64_t bytes;         /* bytes charged now (<= max_bytes) */
	uint64_t max_bytes;     /* the limit */
} gw_cache_stats;

/* Read the stats; each counter is exact on its own, not a snapshot of all.
 * Zeroes for a NULL cache. */
void gw_cache_stats_get(const gw_cache *c, gw_cache_stats *out);

/* ---- the change events that drop entries ------------------------------------ */

/*
 * A cache fed by the event log: a thread tails (events.h, ev_tail) the
 * outboxes of the catalog, inventory and reviews from the moment it starts,
 * and for each ProductChanged, StockChanged, ReviewCreated or ReviewDeleted
 * drops the entries of gw_cache_event_tags(); an event that does not
 * decode, or a start while the database did not answer (events of the
 * time between may be lost), clears the whole cache. Every replica of the
 * gateway runs its own: a change made through any of them, or by a service
 * directly, reaches all of them within the tail's read (a NOTIFY at commit,
 * or poll_ms at worst once older transactions have ended).
 */
typedef struct gw_cache_feed gw_cache_feed;

typedef struct gw_cache_feed_opts {
	/* The database of the services' outboxes (libpq URL); required. */
	const char *db_url;
	/* The schemas to follow, NULL-terminated; NULL: "catalog",
	 * "inventory", "reviews". */
	const char *const *schemas;
	/* Longest wait between two reads; 0: 1000 ms. */
	uint32_t poll_ms;
} gw_cache_feed_opts;

/*
 * Start feeding `c` (which must outlive the feed). Returns OK,
 * INVALID_ARGUMENT or RESOURCE_EXHAUSTED. A database that does not answer
 * is not an error: the feed keeps trying and clears the cache once it
 * follows.
 */
rpc_status gw_cache_feed_start(gw_cache *c, const gw_cache_feed_opts *o, gw_cache_feed **out);

/* Events applied, entries they dropped, clears, and failed reads. */
typedef struct gw_cache_feed_stats {
	uint64_t events;
	uint64_t dropped;
	uint64_t clears;
	uint64_t errors;
} gw_cache_feed_stats;

void gw_cache_feed_stats_get(const gw_cache_feed *f, gw_cache_feed_stats *out);

/* Stop the thread and free the feed; NULL is harmless. */
void gw_cache_feed_stop(gw_cache_feed *f);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_CACHE_H */
