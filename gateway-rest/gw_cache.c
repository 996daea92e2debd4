/*
 * gw_cache.c - the gateway's response cache, ETags, If-None-Match and
 * Cache-Control; see gw_cache.h and docs/gateway/cache.md.
 *
 * Layout: the cache is an array of shards, chosen by bits 32.. of the
 * key's SipHash. A shard has its own mutex, a chained hash table of
 * entries, a doubly linked LRU list (head: most recent), a hash table of
 * tag nodes (one per distinct tag in the shard, holding the list of links
 * of the entries that carry it), its byte count and its counters. An entry
 * is one allocation: the header, then its key, content type and body; its
 * links to tag nodes live in the header. Entries are immutable once
 * linked; only the refcount changes after.
 *
 * Invariants, for each shard under its lock:
 *   - an entry is in the hash table, the LRU list and each of its tag
 *     nodes' lists, or in none of them (in_cache);
 *   - the cache's reference to an entry is held while in_cache; readers
 *     hold one each; the entry is freed when the count reaches 0, outside
 *     any lock;
 *   - a tag node exists while some entry links it, or while an
 *     invalidation walking it has it pinned;
 *   - bytes is the sum of the charges of the entries and tag nodes plus
 *     the two bucket arrays, and is <= limit when the lock is released
 *     (eviction from the LRU tail restores it after every store).
 *
 * Invalidation against in-flight stores: an invalidation first raises the
 * epoch of its tag's slot to a new value of the global counter, then drops
 * the entries shard by shard under each lock; a store checks, under its
 * shard's lock, that no slot of its tags (and no clear) is newer than the
 * ticket its caller took before the RPC. Either the store's check sees the
 * raised epoch, or it completed before the invalidation locked that shard
 * and the entry is dropped with the others.
 */
#include "gw_cache.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>

#include "panthera/events/v1/events.pb-c.h"

#define GW_CACHE_MIN_SHARD_BYTES (64u << 10)
#define GW_CACHE_EPOCH_SLOTS     256u /* invalidation epochs, by tag hash */
#define GW_CACHE_MIN_BUCKETS     16u
#define GW_CACHE_MALLOC_OVERHEAD 16u /* charged per allocation */
#define GW_CACHE_MAX_TTL         86400u
#define GW_CACHE_CTYPE_MAX       255u

/* ---- hashing ------------------------------------------------------------------ */

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64u - r));
}

/* Little-endian loads, whatever the host: ETags must agree across hosts. */
static inline uint64_t load64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

static inline uint64_t load32(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

#define SIPROUND                     \
	do {                         \
		v0 += v1;            \
		v1 = rotl64(v1, 13); \
		v1 ^= v0;            \
		v0 = rotl64(v0, 32); \
		v2 += v3;            \
		v3 = rotl64(v3, 16); \
		v3 ^= v2;            \
		v0 += v3;            \
		v3 = rotl64(v3, 21); \
		v3 ^= v0;            \
		v2 += v1;            \
		v1 = rotl64(v1, 17); \
		v1 ^= v2;            \
		v2 = rotl64(v2, 32); \
	} while (0)

uint64_t gw_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	size_t whole = len & ~(size_t)7;
	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t last = (uint64_t)(len & 0xff) << 56;
	for (size_t i = 0; i < (len & 7); i++)
		last |= (uint64_t)p[whole + i] << (8 * i);
	v3 ^= last;
	SIPROUND;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* Odd constants: the golden ratio, and digits of pi and e for the lanes. */
#define H_M1 0x9e3779b97f4a7c15ull
#define H_M2 0xd6e8feb86659fd93ull
#define H_M3 0xff51afd7ed558ccdull
#define H_M4 0xc4ceb9fe1a85ec53ull

static inline uint64_t hash_lane(uint64_t acc, uint64_t w)
{
	acc += w * H_M2;
	acc = rotl64(acc, 31);
	return acc * H_M1;
}

static inline uint64_t hash_avalanche(uint64_t h)
{
	h ^= h >> 33;
	h *= H_M3;
	h ^= h >> 33;
	h *= H_M4;
	h ^= h >> 33;
	return h;
}

uint64_t gw_hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;
	uint64_t h;
	if (len >= 32) {
		uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull;
		uint64_t c = 0xa4093822299f31d0ull, d = 0x082efa98ec4e6c89ull;
		for (; i + 32 <= len; i += 32) {
			a = hash_lane(a, load64(p + i));
			b = hash_lane(b, load64(p + i + 8));
			c = hash_lane(c, load64(p + i + 16));
			d = hash_lane(d, load64(p + i + 24));
		}
		h = rotl64(a, 1) + rotl64(b, 7) + rotl64(c, 12) + rotl64(d, 18);
		h = (h ^ hash_lane(0, a)) * H_M1 + H_M3;
		h = (h ^ hash_lane(0, b)) * H_M1 + H_M3;
		h = (h ^ hash_lane(0, c)) * H_M1 + H_M3;
		h = (h ^ hash_lane(0, d)) * H_M1 + H_M3;
	} else {
		h = 0xb7e151628aed2a6bull; /* e */
	}
	h += (uint64_t)len;
	for (; i + 8 <= len; i += 8)
		h = rotl64(h ^ hash_lane(0, load64(p + i)), 27) * H_M1 + H_M4;
	if (i + 4 <= len) {
		h = rotl64(h ^ (load32(p + i) * H_M1), 23) * H_M2 + H_M3;
		i += 4;
	}
	for (; i < len; i++)
		h = rotl64(h ^ (p[i] * H_M4), 11) * H_M1;
	return hash_avalanche(h);
}

static const char hex_digits[] = "0123456789abcdef";

void gw_etag(const void *body, size_t len, char out[GW_ETAG_LEN + 1])
{
	uint64_t h = gw_hash64(body, len);
	out[0] = '"';
	for (int i = 0; i < 16; i++)
		out[1 + i] = hex_digits[(h >> (60 - 4 * i)) & 15];
	out[17] = '"';
	out[18] = '\0';
}

/* ---- If-None-Match ------------------------------------------------------------- */

static inline int ows(char c)
{
	return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text (RFC 9110 section 8.8.3) */
static inline int etagc(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* The opaque part of an ETag ("..." without W/), or -1 when malformed. */
static int opaque_of(const char *t, size_t n, const char **o, size_t *on)
{
	if (n >= 2 && t[0] == 'W' && t[1] == '/') {
		t += 2;
		n -= 2;
	}
	if (n < 2 || t[0] != '"' || t[n - 1] != '"')
		return -1;
	for (size_t i = 1; i + 1 < n; i++)
		if (!etagc((unsigned char)t[i]))
			return -1;
	*o = t;
	*on = n;
	return 0;
}

gw_inm_result gw_if_none_match(const char *value, size_t len, const char *etag, size_t etag_len)
{
	if (value == NULL || len > GW_INM_MAX_BYTES)
		return GW_INM_INVALID;
	size_t b = 0, e = len;
	while (b < e && ows(value[b]))
		b++;
	while (e > b && ows(value[e - 1]))
		e--;
	if (b == e)
		return GW_INM_INVALID;
	const char *cur = NULL;
	size_t cur_len = 0;
	int have = etag != NULL && etag_len > 0 && opaque_of(etag, etag_len, &cur, &cur_len) == 0;
	if (e - b == 1 && value[b] == '*')
		return have ? GW_INM_MATCH : GW_INM_NO_MATCH;
	/* #entity-tag: elements separated by commas; empty elements allowed. */
	size_t i = b, tags = 0;
	while (i < e) {
		while (i < e && (ows(value[i]) || value[i] == ','))
			i++;
		if (i == e)
			break;
		size_t start = i;
		if (e - i >= 2 && value[i] == 'W' && value[i + 1] == '/')
			i += 2;
		if (i == e || value[i] != '"')
			return GW_INM_INVALID;
		i++;
		while (i < e && value[i] != '"') {
			if (!etagc((unsigned char)value[i]))
				return GW_INM_INVALID;
			i++;
		}
		if (i == e)
			return GW_INM_INVALID; /* no closing quote */
		i++;
		if (++tags > GW_INM_MAX_TAGS)
			return GW_INM_INVALID;
		const char *o;
		size_t on;
		if (opaque_of(value + start, i - start, &o, &on) != 0)
			return GW_INM_INVALID;
		if (have && on == cur_len && memcmp(o, cur, on) == 0)
			return GW_INM_MATCH;
		while (i < e && ows(value[i]))
			i++;
		if (i < e && value[i] != ',')
			return GW_INM_INVALID; /* two tags without a comma, or junk */
	}
	return tags > 0 ? GW_INM_NO_MATCH : GW_INM_INVALID;
}

/* ---- Cache-Control ----------------------------------------------------------- */

size_t gw_cache_control(int cacheable, int authorized, uint32_t max_age,
                        char buf[GW_CACHE_CONTROL_MAX])
{
	int n;
	if (cacheable)
		n = snprintf(buf, GW_CACHE_CONTROL_MAX, "public, max-age=%lu",
		             (unsigned long)max_age);
	else
		n = snprintf(buf, GW_CACHE_CONTROL_MAX, "%s",
		             authorized ? "private, no-store" : "no-store");
	return n > 0 ? (size_t)n : 0;
}

int gw_cache_route_cacheable(const rpc_http_route *route, const char *method, int status)
{
	return route != NULL && method != NULL && route->cache_ttl_seconds > 0 &&
	       strcmp(method, "GET") == 0 && status == 200;
}

/* ---- tags ---------------------------------------------------------------------- */

rpc_status gw_cache_tags_add(gw_cache_tags *tags, const char *kind, const char *id, size_t id_len)
{
	if (tags == NULL || kind == NULL || kind[0] == '\0' ||
	    (id != NULL && (id_len == 0 || memchr(id, '\0', id_len) != NULL)))
		return RPC_STATUS_INVALID_ARGUMENT;
	if (tags->n >= GW_CACHE_MAX_TAGS)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	size_t kl = strlen(kind);
	size_t total = kl + (id != NULL ? 1 + id_len : 0);
	if (total >= GW_CACHE_TAG_MAX)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	char *t = tags->tag[tags->n];
	memcpy(t, kind, kl);
	if (id != NULL) {
		t[kl] = ':';
		memcpy(t + kl + 1, id, id_len);
	}
	t[total] = '\0';
	tags->n++;
	return RPC_STATUS_OK;
}

/* "product" for "product_id" or "x.product_id"; NULL when not "<stem>_id". */
static const char *id_stem(const char *field_path, size_t *stem_len)
{
	const char *last = strrchr(field_path, '.');
	last = last != NULL ? last + 1 : field_path;
	size_t n = strlen(last);
	if (n <= 3 || memcmp(last + n - 3, "_id", 3) != 0)
		return NULL;
	*stem_len = n - 3;
	return last;
}

/* 1 when `lit` is the plural of stem[0..n): "products" of "product",
 * "addresses" of "address", "categories" of "category". */
static int plural_of(const char *lit, const char *stem, size_t n)
{
	size_t l = strlen(lit);
	if (l == n + 1 && memcmp(lit, stem, n) == 0 && lit[n] == 's')
		return 1;
	if (l == n + 2 && memcmp(lit, stem, n) == 0 && memcmp(lit + n, "es", 2) == 0)
		return 1;
	return n >= 2 && stem[n - 1] == 'y' && l == n + 2 && memcmp(lit, stem, n - 1) == 0 &&
	       memcmp(lit + n - 1, "ies", 3) == 0;
}

static rpc_status add_var_tag(gw_cache_tags *tags, const gw_path_var *v)
{
	size_t sl;
	const char *stem = v->field_path ? id_stem(v->field_path, &sl) : NULL;
	if (stem == NULL || v->value == NULL || v->len == 0)
		return RPC_STATUS_OK;
	if (sl >= GW_CACHE_TAG_MAX)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	char kind[GW_CACHE_TAG_MAX];
	memcpy(kind, stem, sl);
	kind[sl] = '\0';
	rpc_status st = gw_cache_tags_add(tags, kind, v->value, v->len);
	return st == RPC_STATUS_INVALID_ARGUMENT ? RPC_STATUS_RESOURCE_EXHAUSTED : st;
}

rpc_status gw_cache_route_tags(const rpc_http_route *route, const gw_path_var *vars, size_t n_vars,
                               int write, gw_cache_tags *tags)
{
	if (tags != NULL)
		tags->n = 0;
	if (route == NULL || tags == NULL || (vars == NULL && n_vars > 0) ||
	    (route->segments == NULL && route->n_segments > 0))
		return RPC_STATUS_INVALID_ARGUMENT;
	/* The collection: the last literal segment. */
	const char *coll = NULL;
	size_t at = 0;
	for (size_t i = route->n_segments; i > 0; i--)
		if (route->segments[i - 1].kind == RPC_SEGMENT_LITERAL &&
		    route->segments[i - 1].literal != NULL && route->segments[i - 1].literal[0]) {
			coll = route->segments[i - 1].literal;
			at = i - 1;
			break;
		}
	rpc_status st = RPC_STATUS_OK;
	if (!write) {
		/* A reply depends on every resource its path names. */
		for (size_t i = 0; st == RPC_STATUS_OK && i < n_vars; i++)
			st = add_var_tag(tags, &vars[i]);
		if (st == RPC_STATUS_OK && coll != NULL && at + 1 == route->n_segments)
			st = gw_cache_tags_add(tags, coll, NULL, 0);
	} else {
		/* A write changes the item of its collection (the variable
		 * right after the collection's literal, when the literal is
		 * its plural) and the collection; not the other resources its
		 * path names (PATCH /v1/cart/items/{product_id} changes a
		 * cart, not the product). */
		for (size_t i = 0; coll != NULL && st == RPC_STATUS_OK && i < n_vars; i++) {
			size_t sl;
			const rpc_path_var *rv = i < route->n_vars ? &route->vars[i] : NULL;
			const char *stem =
			    vars[i].field_path ? id_stem(vars[i].field_path, &sl) : NULL;
			if (rv != NULL && rv->first == at + 1 && rv->last == at + 2 &&
			    stem != NULL && plural_of(coll, stem, sl))
				st = add_var_tag(tags, &vars[i]);
		}
		if (st == RPC_STATUS_OK && coll != NULL)
			st = gw_cache_tags_add(tags, coll, NULL, 0);
	}
	if (st != RPC_STATUS_OK) {
		tags->n = 0;
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	return RPC_STATUS_OK;
}

/* A bump allocator over a caller's buffer: event payloads are decoded
 * without malloc, and a payload too big for it does not decode. */
typedef struct bump {
	unsigned char *buf;
	size_t cap, used;
} bump;

static void *bump_alloc(void *arg, size_t size)
{
	bump *b = arg;
	size_t at = (b->used + 15u) & ~(size_t)15u;
	if (at > b->cap || size > b->cap - at)
		return NULL;
	b->used = at + size;
	return b->buf + at;
}

static void bump_free(void *arg, void *p)
{
	(void)arg;
	(void)p;
}

rpc_status gw_cache_event_tags(const char *type, const void *payload, size_t len,
                               gw_cache_tags *tags)
{
	if (tags != NULL)
		tags->n = 0;
	if (type == NULL || tags == NULL || (payload == NULL && len > 0))
		return RPC_STATUS_INVALID_ARGUMENT;
	static const struct {
		const char *type;
		const ProtobufCMessageDescriptor *desc;
		int collection; /* the product lists show it too */
	} known[] = {
	    {"panthera.events.v1.ProductChanged",
	     &panthera__events__v1__product_changed__descriptor, 1},
	    {"panthera.events.v1.StockChanged", &panthera__events__v1__stock_changed__descriptor,
	     1},
	    {"panthera.events.v1.ReviewCreated", &panthera__events__v1__review_created__descriptor,
	     0},
	    {"panthera.events.v1.ReviewDeleted", &panthera__events__v1__review_deleted__descriptor,
	     0},
	};
	size_t k = 0;
	while (k < sizeof(known) / sizeof(known[0]) && strcmp(type, known[k].type) != 0)
		k++;
	if (k == sizeof(known) / sizeof(known[0]))
		return RPC_STATUS_OK;

	alignas(16) unsigned char mem[4096];
	bump b = {mem, sizeof(mem), 0};
	ProtobufCAllocator alloc = {bump_alloc, bump_free, &b};
	ProtobufCMessage *m = protobuf_c_message_unpack(known[k].desc, &alloc, len, payload);
	if (m == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	/* Every listed message has product_id; find it by name, not by type. */
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(known[k].desc, "product_id");
	const char *id = NULL;
	if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING)
		memcpy(&id, (const char *)m + f->offset, sizeof(id));
	if (id == NULL || id[0] == '\0')
		return RPC_STATUS_INVALID_ARGUMENT; /* nothing to free: the bump buffer */
	rpc_status st = gw_cache_tags_add(tags, "product", id, strlen(id));
	if (st == RPC_STATUS_OK && known[k].collection)
		st = gw_cache_tags_add(tags, "products", NULL, 0);
	if (st != RPC_STATUS_OK) {
		tags->n = 0;
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	return RPC_STATUS_OK;
}

/* ---- the cache's structures ----------------------------------------------------- */

typedef struct gw_tagnode gw_tagnode;

/* One entry's membership in one tag's list. */
typedef struct gw_taglink {
	gw_tagnode *node;
	gw_cache_entry *entry;
	struct gw_taglink *prev, *next;
} gw_taglink;

struct gw_tagnode {
	gw_tagnode *hnext; /* hash chain */
	uint64_t hash;
	gw_taglink *head; /* the entries with this tag */
	int pinned;       /* an invalidation walks it: do not free */
	size_t charge;
	size_t len;
	char tag[]; /* NUL-terminated */
};

struct gw_cache_entry {
	atomic_uint refs;
	int in_cache;
	uint64_t hash;
	gw_cache_entry *hnext;       /* hash chain, or the free list after removal */
	gw_cache_entry *prev, *next; /* LRU: prev towards the head (newest) */
	uint64_t expires_ms;
	size_t charge;
	size_t n_links;
	gw_taglink links[GW_CACHE_MAX_TAGS];
	int status;
	size_t key_len, ctype_len, body_len;
	char etag[GW_ETAG_LEN + 1];
	const unsigned char *key;
	const char *ctype;
	const unsigned char *body;
	alignas(16) unsigned char data[];
};

typedef struct gw_shard {
	alignas(64) pthread_mutex_t lock;
	gw_cache_entry **buckets;
	size_t n_buckets, count;
	gw_tagnode **tbuckets;
	size_t n_tbuckets, tcount;
	gw_cache_entry *head, *tail;
	size_t bytes, limit;
	/* counters, under the lock */
	uint64_t hits, misses, stores, refused, evictions, expirations, invalidations;
} gw_shard;

struct gw_cache {
	gw_shard *shards;
	unsigned n_shards;
	unsigned shard_shift; /* bits of the hash above 32 that pick the shard */
	size_t max_bytes, max_entry;
	uint64_t k0, k1; /* SipHash key */
	gw_cache_clock_fn clock;
	void *clock_arg;
	/* Query ordering: for route i, group[group_first[i] + q] is the sort
	 * group of its query field q. NULL without a table. */
	const rpc_route_table *routes;
	uint16_t *group;
	size_t *group_first;
	/* Invalidation epochs. */
	atomic_uint_fast64_t epoch;       /* the global counter; tickets read it */
	atomic_uint_fast64_t clear_epoch; /* the last clear */
	atomic_uint_fast64_t slots[GW_CACHE_EPOCH_SLOTS];
	atomic_uint_fast64_t refused_early; /* refusals before any shard was locked */
};

static uint64_t mono_ms(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline uint64_t now_ms(const gw_cache *c)
{
	return c->clock(c->clock_arg);
}

static inline uint64_t key_hash(const gw_cache *c, const void *p, size_t n)
{
	return gw_siphash24(c->k0, c->k1, p, n);
}

static inline gw_shard *shard_of(gw_cache *c, uint64_t h)
{
	return &c->shards[(h >> 32) & (c->n_shards - 1u)];
}

/* ---- creation ---------------------------------------------------------------------- */

/* The sort groups of every route's query fields: a field's own index, or
 * for a member of a oneof, the index of the oneof's first query field. */
static rpc_status build_groups(gw_cache *c, const rpc_route_table *t)
{
	size_t total = 0;
	for (size_t i = 0; i < t->n_routes; i++)
		total += t->routes[i].n_query_fields;
	c->group_first = calloc(t->n_routes + 1, sizeof(size_t));
	c->group = calloc(total ? total : 1, sizeof(uint16_t));
	if (c->group_first == NULL || c->group == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	size_t at = 0;
	for (size_t i = 0; i < t->n_routes; i++) {
		const rpc_http_route *r = &t->routes[i];
		c->group_first[i] = at;
		const ProtobufCMessageDescriptor *in = r->method != NULL ? r->method->input : NULL;
		for (size_t q = 0; q < r->n_query_fields; q++) {
			uint16_t g = (uint16_t)(q < UINT16_MAX ? q : UINT16_MAX);
			const ProtobufCFieldDescriptor *f =
			    in != NULL ? protobuf_c_message_descriptor_get_field_by_name(
			                     in, r->query_fields[q])
			               : NULL;
			if (f != NULL && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
				for (size_t p = 0; p < q; p++) {
					const ProtobufCFieldDescriptor *o =
					    protobuf_c_message_descriptor_get_field_by_name(
					        in, r->query_fields[p]);
					if (o != NULL && (o->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
					    o->quantifier_offset == f->quantifier_offset) {
						g = c->group[at + p];
						break;
					}
				}
			}
			c->group[at + q] = g;
		}
		at += r->n_query_fields;
	}
	c->group_first[t->n_routes] = at;
	return RPC_STATUS_OK;
}

rpc_status gw_cache_create(const gw_cache_config *cfg, gw_cache **out)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	gw_cache_config d = {0};
	if (cfg == NULL)
		cfg = &d;
	size_t max_bytes = cfg->max_bytes ? cfg->max_bytes : GW_CACHE_DEFAULT_MAX_BYTES;
	unsigned shards = cfg->shards ? cfg->shards : GW_CACHE_DEFAULT_SHARDS;
	if ((shards & (shards - 1u)) != 0 || shards > GW_CACHE_MAX_SHARDS ||
	    max_bytes < GW_CACHE_MIN_SHARD_BYTES)
		return RPC_STATUS_INVALID_ARGUMENT;
	while (shards > 1 && max_bytes / shards < GW_CACHE_MIN_SHARD_BYTES)
		shards /= 2;

	gw_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	c->n_shards = shards;
	c->max_bytes = max_bytes;
	size_t per = max_bytes / shards;
	c->max_entry = cfg->max_entry_bytes ? cfg->max_entry_bytes : per / 4;
	if (c->max_entry > per / 2)
		c->max_entry = per / 2; /* room for the entry's own bookkeeping */
	c->clock = cfg->clock ? cfg->clock : mono_ms;
	c->clock_arg = cfg->clock_arg;
	atomic_init(&c->epoch, 0);
	atomic_init(&c->clear_epoch, 0);
	atomic_init(&c->refused_early, 0);
	for (size_t i = 0; i < GW_CACHE_EPOCH_SLOTS; i++)
		atomic_init(&c->slots[i], 0);
	unsigned char k[16];
	if (RAND_bytes(k, sizeof(k)) != 1) {
		/* Not fatal: the table is then keyed by time and address, which
		 * a client cannot read. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
		uint64_t b = (uint64_t)(uintptr_t)c ^ hash_avalanche(a);
		memcpy(k, &a, 8);
		memcpy(k + 8, &b, 8);
	}
	c->k0 = load64(k);
	c->k1 = load64(k + 8);

	rpc_status st = RPC_STATUS_OK;
	if (cfg->routes != NULL) {
		c->routes = cfg->routes;
		st = build_groups(c, cfg->routes);
	}
	size_t bytes = sizeof(gw_shard) * shards;
	c->shards = st == RPC_STATUS_OK ? aligned_alloc(64, bytes) : NULL;
	if (c->shards == NULL) {
		free(c->group);
		free(c->group_first);
		free(c);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	memset(c->shards, 0, bytes);
	unsigned made = 0;
	for (; made < shards; made++) {
		gw_shard *s = &c->shards[made];
		s->limit = per;
		s->n_buckets = GW_CACHE_MIN_BUCKETS;
		s->n_tbuckets = GW_CACHE_MIN_BUCKETS;
		s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
		s->tbuckets = calloc(s->n_tbuckets, sizeof(*s->tbuckets));
		if (s->buckets == NULL || s->tbuckets == NULL ||
		    pthread_mutex_init(&s->lock, NULL) != 0) {
			free(s->buckets);
			free(s->tbuckets);
			break;
		}
		s->bytes = (s->n_buckets + s->n_tbuckets) * sizeof(void *);
	}
	if (made < shards) {
		c->n_shards = made;
		gw_cache_destroy(c);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	*out = c;
	return RPC_STATUS_OK;
}

static void entry_unref(gw_cache_entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		free(e);
}

void gw_cache_release(gw_cache_entry *e)
{
	if (e != NULL)
		entry_unref(e);
}

void gw_cache_destroy(gw_cache *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->n_shards; i++) {
		gw_shard *s = &c->shards[i];
		for (gw_cache_entry *e = s->head, *next; e != NULL; e = next) {
			next = e->next;
			entry_unref(e);
		}
		for (size_t b = 0; b < s->n_tbuckets; b++)
			for (gw_tagnode *t = s->tbuckets[b], *next; t != NULL; t = next) {
				next = t->hnext;
				free(t);
			}
		free(s->buckets);
		free(s->tbuckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c->shards);
	free(c->group);
	free(c->group_first);
	free(c);
}

/* ---- keys ------------------------------------------------------------------------ */

typedef struct keybuf {
	unsigned char *p;
	size_t len, cap;
	int over;
} keybuf;

static void put_varint(keybuf *k, uint64_t v)
{
	do {
		unsigned char b = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b |= 0x80;
		if (k->len < k->cap)
			k->p[k->len++] = b;
		else
			k->over = 1;
	} while (v != 0);
}

static void put_bytes(keybuf *k, const void *p, size_t n)
{
	put_varint(k, n);
	if (n > k->cap - k->len || k->over) {
		k->over = 1;
		return;
	}
	if (n > 0)
		memcpy(k->p + k->len, p, n);
	k->len += n;
}

rpc_status gw_cache_key_build(const gw_cache *c, const gw_router *r, const gw_route_match *m,
                              const gw_query_param *params, size_t n_params, void *buf,
                              size_t buf_cap, size_t *key_len)
{
	if (key_len != NULL)
		*key_len = 0;
	if (c == NULL || r == NULL || m == NULL || m->route == NULL || buf == NULL ||
	    key_len == NULL || (params == NULL && n_params > 0) || n_params > GW_QUERY_MAX_PARAMS ||
	    m->n_vars > GW_ROUTER_MAX_VARS)
		return RPC_STATUS_INVALID_ARGUMENT;
	/* Each parameter's field and sort group. */
	uint16_t field[GW_QUERY_MAX_PARAMS], group[GW_QUERY_MAX_PARAMS];
	uint8_t order[GW_QUERY_MAX_PARAMS];
	const uint16_t *groups = NULL;
	if (c->group != NULL && gw_router_table(r) == c->routes &&
	    m->route_index < c->routes->n_routes)
		groups = c->group + c->group_first[m->route_index];
	for (size_t i = 0; i < n_params; i++) {
		int f = gw_router_query_field(r, m->route_index, params[i].key, params[i].key_len);
		if (f < 0 || f >= UINT16_MAX)
			return RPC_STATUS_INVALID_ARGUMENT;
		field[i] = (uint16_t)f;
		group[i] = groups != NULL ? groups[f] : (uint16_t)f;
		/* Insertion sort by group: stable, and n is small (usually 1..4,
		 * at most GW_QUERY_MAX_PARAMS). */
		size_t j = i;
		while (j > 0 && group[order[j - 1]] > group[i]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = (uint8_t)i;
	}
	keybuf k = {buf, 0, buf_cap, 0};
	put_varint(&k, 1); /* the format's version */
	put_varint(&k, m->route_index);
	put_varint(&k, m->n_vars);
	for (size_t i = 0; i < m->n_vars; i++)
		put_bytes(&k, m->vars[i].value, m->vars[i].len);
	put_varint(&k, n_params);
	for (size_t i = 0; i < n_params; i++) {
		const gw_query_param *p = &params[order[i]];
		/* The field by number (pageSize and page_size alike), then what
		 * follows its name in the key (".city"), then the value. */
		const char *dot = memchr(p->key, '.', p->key_len);
		size_t rest = dot != NULL ? p->key_len - (size_t)(dot - p->key) : 0;
		put_varint(&k, field[order[i]]);
		put_bytes(&k, dot, rest);
		put_bytes(&k, p->value, p->value_len);
	}
	if (k.over)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	*key_len = k.len;
	return RPC_STATUS_OK;
}

/* ---- shard internals (lock held) ------------------------------------------------- */

static void lru_unlink(gw_shard *s, gw_cache_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_head(gw_shard *s, gw_cache_entry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head != NULL)
		s->head->prev = e;
	s->head = e;
	if (s->tail == NULL)
		s->tail = e;
}

static gw_tagnode *tag_find(gw_shard *s, uint64_t h, const char *tag, size_t len)
{
	for (gw_tagnode *t = s->tbuckets[h & (s->n_tbuckets - 1)]; t != NULL; t = t->hnext)
		if (t->hash == h && t->len == len && memcmp(t->tag, tag, len) == 0)
			return t;
	return NULL;
}

static void tag_free(gw_shard *s, gw_tagnode *t)
{
	gw_tagnode **pp = &s->tbuckets[t->hash & (s->n_tbuckets - 1)];
	while (*pp != t)
		pp = &(*pp)->hnext;
	*pp = t->hnext;
	s->tcount--;
	s->bytes -= t->charge;
	free(t);
}

/* Double a bucket array when it is fuller than one item a bucket; on
 * failure keep the old one (chains get longer, nothing breaks). */
static void grow_entries(gw_shard *s)
{
	if (s->count <= s->n_buckets)
		return;
	size_t n = s->n_buckets * 2;
	gw_cache_entry **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < s->n_buckets; i++)
		for (gw_cache_entry *e = s->buckets[i], *next; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(s->buckets);
	s->bytes += (n - s->n_buckets) * sizeof(*b);
	s->buckets = b;
	s->n_buckets = n;
}

static void grow_tags(gw_shard *s)
{
	if (s->tcount <= s->n_tbuckets)
		return;
	size_t n = s->n_tbuckets * 2;
	gw_tagnode **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < s->n_tbuckets; i++)
		for (gw_tagnode *t = s->tbuckets[i], *next; t != NULL; t = next) {
			next = t->hnext;
			t->hnext = b[t->hash & (n - 1)];
			b[t->hash & (n - 1)] = t;
		}
	free(s->tbuckets);
	s->bytes += (n - s->n_tbuckets) * sizeof(*b);
	s->tbuckets = b;
	s->n_tbuckets = n;
}

/* Take e out of the shard; its cache reference goes on *grave, to be
 * dropped once the lock is released. */
static void entry_remove(gw_shard *s, gw_cache_entry *e, gw_cache_entry **grave)
{
	gw_cache_entry **pp = &s->buckets[e->hash & (s->n_buckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(s, e);
	for (size_t i = 0; i < e->n_links; i++) {
		gw_taglink *l = &e->links[i];
		gw_tagnode *t = l->node;
		if (l->prev != NULL)
			l->prev->next = l->next;
		else
			t->head = l->next;
		if (l->next != NULL)
			l->next->prev = l->prev;
		if (t->head == NULL && !t->pinned)
			tag_free(s, t);
	}
	e->n_links = 0;
	s->count--;
	s->bytes -= e->charge;
	e->in_cache = 0;
	e->hnext = *grave;
	*grave = e;
}

static void bury(gw_cache_entry *grave)
{
	while (grave != NULL) {
		gw_cache_entry *next = grave->hnext;
		entry_unref(grave);
		grave = next;
	}
}

static gw_cache_entry *entry_find(gw_shard *s, uint64_t h, const void *key, size_t len)
{
	for (gw_cache_entry *e = s->buckets[h & (s->n_buckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* ---- lookups and stores ------------------------------------------------------------ */

int gw_cache_lookup(gw_cache *c, const void *key, size_t key_len, gw_cache_hit *hit)
{
	if (hit != NULL)
		memset(hit, 0, sizeof(*hit));
	if (c == NULL || key == NULL || hit == NULL || key_len == 0)
		return 0;
	uint64_t h = key_hash(c, key, key_len);
	gw_shard *s = shard_of(c, h);
	uint64_t now = now_ms(c);
	gw_cache_entry *grave = NULL;
	pthread_mutex_lock(&s->lock);
	gw_cache_entry *e = entry_find(s, h, key, key_len);
	if (e != NULL && now >= e->expires_ms) {
		entry_remove(s, e, &grave);
		s->expirations++;
		e = NULL;
	}
	if (e == NULL) {
		s->misses++;
		pthread_mutex_unlock(&s->lock);
		bury(grave);
		return 0;
	}
	if (s->head != e) {
		lru_unlink(s, e);
		lru_push_head(s, e);
	}
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	s->hits++;
	pthread_mutex_unlock(&s->lock);

	hit->entry = e;
	hit->status = e->status;
	hit->content_type = e->ctype;
	hit->content_type_len = e->ctype_len;
	hit->body = e->body;
	hit->body_len = e->body_len;
	hit->etag = e->etag;
	hit->etag_len = GW_ETAG_LEN;
	uint64_t left = (e->expires_ms - now + 999u) / 1000u;
	hit->max_age = left > GW_CACHE_MAX_TTL ? GW_CACHE_MAX_TTL : (uint32_t)left;
	return 1;
}

uint64_t gw_cache_ticket(const gw_cache *c)
{
	return c != NULL ? atomic_load(&((gw_cache *)c)->epoch) : 0;
}

static int etag_well_formed(const char *t)
{
	if (strlen(t) != GW_ETAG_LEN || t[0] != '"' || t[GW_ETAG_LEN - 1] != '"')
		return 0;
	for (size_t i = 1; i + 1 < GW_ETAG_LEN; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return 0;
	return 1;
}

/* 1 when an invalidation of one of these tag hashes, or a clear, is newer
 * than the ticket. */
static int overtaken(gw_cache *c, uint64_t ticket, const uint64_t *th, size_t n)
{
	if (atomic_load(&c->clear_epoch) > ticket)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (atomic_load(&c->slots[th[i] % GW_CACHE_EPOCH_SLOTS]) > ticket)
			return 1;
	return 0;
}

static void refuse_count(gw_cache *c)
{
	atomic_fetch_add_explicit(&c->refused_early, 1, memory_order_relaxed);
}

rpc_status gw_cache_store(gw_cache *c, uint64_t ticket, const void *key, size_t key_len,
                          const gw_cache_tags *tags, const gw_cache_reply *r)
{
	if (c == NULL || key == NULL || r == NULL || key_len == 0 || key_len > GW_CACHE_KEY_MAX ||
	    r->status != 200 || r->ttl_seconds == 0 || r->ttl_seconds > GW_CACHE_MAX_TTL ||
	    r->content_type == NULL || (r->body == NULL && r->body_len > 0) ||
	    (tags != NULL && tags->n > GW_CACHE_MAX_TAGS))
		return RPC_STATUS_INVALID_ARGUMENT;
	size_t ctype_len = strlen(r->content_type);
	if (ctype_len == 0 || ctype_len > GW_CACHE_CTYPE_MAX ||
	    (r->etag != NULL && !etag_well_formed(r->etag)))
		return RPC_STATUS_INVALID_ARGUMENT;
	/* The distinct tags: a tag given twice is linked once. */
	size_t n_tags = 0;
	const char *tag[GW_CACHE_MAX_TAGS];
	size_t tag_len[GW_CACHE_MAX_TAGS];
	uint64_t th[GW_CACHE_MAX_TAGS];
	for (size_t i = 0; tags != NULL && i < tags->n; i++) {
		size_t len = strnlen(tags->tag[i], GW_CACHE_TAG_MAX);
		if (len == 0 || len == GW_CACHE_TAG_MAX)
			return RPC_STATUS_INVALID_ARGUMENT;
		size_t j = 0;
		while (j < n_tags && !(tag_len[j] == len && memcmp(tag[j], tags->tag[i], len) == 0))
			j++;
		if (j < n_tags)
			continue;
		tag[n_tags] = tags->tag[i];
		tag_len[n_tags] = len;
		th[n_tags++] = key_hash(c, tags->tag[i], len);
	}
	if (r->body_len > c->max_entry) {
		refuse_count(c);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	/* An early look, before the copy: most overtaken stores stop here. */
	if (overtaken(c, ticket, th, n_tags)) {
		refuse_count(c);
		return RPC_STATUS_FAILED_PRECONDITION;
	}

	size_t size = sizeof(gw_cache_entry) + key_len + ctype_len + 1 + r->body_len;
	gw_cache_entry *e = malloc(size);
	if (e == NULL) {
		refuse_count(c);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	memset(e, 0, sizeof(*e));
	atomic_init(&e->refs, 1);
	e->hash = key_hash(c, key, key_len);
	e->charge = size + GW_CACHE_MALLOC_OVERHEAD;
	e->status = r->status;
	e->key_len = key_len;
	e->ctype_len = ctype_len;
	e->body_len = r->body_len;
	unsigned char *p = e->data;
	memcpy(p, key, key_len);
	e->key = p;
	p += key_len;
	memcpy(p, r->content_type, ctype_len + 1);
	e->ctype = (const char *)p;
	p += ctype_len + 1;
	if (r->body_len > 0)
		memcpy(p, r->body, r->body_len);
	e->body = p;
	if (r->etag != NULL)
		memcpy(e->etag, r->etag, GW_ETAG_LEN + 1);
	else
		gw_etag(r->body, r->body_len, e->etag);

	gw_shard *s = shard_of(c, e->hash);
	gw_cache_entry *grave = NULL;
	rpc_status st = RPC_STATUS_OK;
	pthread_mutex_lock(&s->lock);
	uint64_t now = now_ms(c);
	e->expires_ms = now + (uint64_t)r->ttl_seconds * 1000u;
	if (overtaken(c, ticket, th, n_tags)) {
		st = RPC_STATUS_FAILED_PRECONDITION;
		goto refused;
	}
	gw_cache_entry *old = entry_find(s, e->hash, key, key_len);
	if (old != NULL)
		entry_remove(s, old, &grave);
	/* Find or make each tag's node; a new node is empty until linked. */
	gw_tagnode *nodes[GW_CACHE_MAX_TAGS];
	size_t made = 0;
	for (size_t i = 0; i < n_tags; i++) {
		gw_tagnode *t = tag_find(s, th[i], tag[i], tag_len[i]);
		if (t == NULL) {
			t = malloc(sizeof(*t) + tag_len[i] + 1);
			if (t == NULL) {
				st = RPC_STATUS_RESOURCE_EXHAUSTED;
				break;
			}
			t->hash = th[i];
			t->head = NULL;
			t->pinned = 1; /* until linked: not freed by an eviction below */
			t->len = tag_len[i];
			t->charge = sizeof(*t) + tag_len[i] + 1 + GW_CACHE_MALLOC_OVERHEAD;
			memcpy(t->tag, tag[i], tag_len[i]);
			t->tag[tag_len[i]] = '\0';
			t->hnext = s->tbuckets[th[i] & (s->n_tbuckets - 1)];
			s->tbuckets[th[i] & (s->n_tbuckets - 1)] = t;
			s->tcount++;
			s->bytes += t->charge;
		}
		nodes[made++] = t;
	}
	if (st != RPC_STATUS_OK) {
		for (size_t i = 0; i < made; i++)
			if (nodes[i]->head == NULL) {
				nodes[i]->pinned = 0;
				tag_free(s, nodes[i]);
			}
		goto refused;
	}
	for (size_t i = 0; i < made; i++) {
		gw_taglink *l = &e->links[i];
		l->node = nodes[i];
		l->entry = e;
		l->prev = NULL;
		l->next = nodes[i]->head;
		if (nodes[i]->head != NULL)
			nodes[i]->head->prev = l;
		nodes[i]->head = l;
		nodes[i]->pinned = 0;
	}
	e->n_links = made;
	e->in_cache = 1;
	e->hnext = s->buckets[e->hash & (s->n_buckets - 1)];
	s->buckets[e->hash & (s->n_buckets - 1)] = e;
	lru_push_head(s, e);
	s->count++;
	s->bytes += e->charge;
	s->stores++;
	grow_entries(s);
	grow_tags(s);
	while (s->bytes > s->limit && s->tail != NULL && s->tail != e) {
		entry_remove(s, s->tail, &grave);
		s->evictions++;
	}
	if (s->bytes > s->limit) {
		/* alone it does not fit (a shard full of tags and tables) */
		entry_remove(s, e, &grave);
		s->stores--;
		s->refused++;
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	pthread_mutex_unlock(&s->lock);
	bury(grave);
	return st;

refused:
	s->refused++;
	pthread_mutex_unlock(&s->lock);
	bury(grave);
	free(e);
	return st;
}

/* ---- invalidation ------------------------------------------------------------------ */

/* Raise an epoch slot to at least v. */
static void epoch_raise(atomic_uint_fast64_t *slot, uint64_t v)
{
	uint_fast64_t cur = atomic_load(slot);
	while (cur < v && !atomic_compare_exchange_weak(slot, &cur, v))
		;
}

size_t gw_cache_invalidate_tag(gw_cache *c, const char *tag)
{
	if (c == NULL || tag == NULL)
		return 0;
	size_t len = strnlen(tag, GW_CACHE_TAG_MAX);
	if (len == 0 || len == GW_CACHE_TAG_MAX)
		return 0; /* no entry can carry it */
	uint64_t h = key_hash(c, tag, len);
	uint64_t v = atomic_fetch_add(&c->epoch, 1) + 1;
	epoch_raise(&c->slots[h % GW_CACHE_EPOCH_SLOTS], v);
	size_t dropped = 0;
	for (unsigned i = 0; i < c->n_shards; i++) {
		gw_shard *s = &c->shards[i];
		gw_cache_entry *grave = NULL;
		pthread_mutex_lock(&s->lock);
		gw_tagnode *t = tag_find(s, h, tag, len);
		if (t != NULL) {
			t->pinned = 1;
			while (t->head != NULL) {
				entry_remove(s, t->head->entry, &grave);
				s->invalidations++;
				dropped++;
			}
			tag_free(s, t);
		}
		pthread_mutex_unlock(&s->lock);
		bury(grave);
	}
	return dropped;
}

size_t gw_cache_invalidate_tags(gw_cache *c, const gw_cache_tags *tags)
{
	size_t n = 0;
	for (size_t i = 0; tags != NULL && i < tags->n && i < GW_CACHE_MAX_TAGS; i++)
		n += gw_cache_invalidate_tag(c, tags->tag[i]);
	return n;
}

size_t gw_cache_clear(gw_cache *c)
{
	if (c == NULL)
		return 0;
	uint64_t v = atomic_fetch_add(&c->epoch, 1) + 1;
	epoch_raise(&c->clear_epoch, v);
	size_t dropped = 0;
	for (unsigned i = 0; i < c->n_shards; i++) {
		gw_shard *s = &c->shards[i];
		gw_cache_entry *grave = NULL;
		pthread_mutex_lock(&s->lock);
		while (s->head != NULL) {
			entry_remove(s, s->head, &grave);
			s->invalidations++;
			dropped++;
		}
		pthread_mutex_unlock(&s->lock);
		bury(grave);
	}
	return dropped;
}

void gw_cache_stats_get(const gw_cache *cc, gw_cache_stats *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (cc == NULL)
		return;
	gw_cache *c = (gw_cache *)cc; /* the locks change; the cache does not */
	out->max_bytes = c->max_bytes;
	out->store_refused = atomic_load(&c->refused_early);
	for (unsigned i = 0; i < c->n_shards; i++) {
		gw_shard *s = &c->shards[i];
		pthread_mutex_lock(&s->lock);
		out->hits += s->hits;
		out->misses += s->misses;
		out->stores += s->stores;
		out->store_refused += s->refused;
		out->evictions += s->evictions;
		out->expirations += s->expirations;
		out->invalidations += s->invalidations;
		out->entries += s->count;
		out->bytes += s->bytes;
		pthread_mutex_unlock(&s->lock);
	}
}
