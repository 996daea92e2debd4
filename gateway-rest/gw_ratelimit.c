/*
 * gw_ratelimit.c - the sharded, fixed-capacity table of token buckets; see
 * gw_ratelimit.h.
 *
 * Layout: one array of buckets and one array of hash-chain heads, both
 * allocated at create and cut into GW_RATELIMIT_SHARDS equal slices. Links
 * (chains and the LRU list) are 32-bit indices into the shard's slice plus
 * one, so that 0 means "none" and calloc's zeroed pages need no
 * initialisation: memory is touched only as keys arrive. A shard hands its
 * slots out in order; once all are used, a new key takes the slot of the
 * least recently used bucket.
 *
 * Tokens are counted in units of 1/60000 token: a class of R tokens a
 * minute then refills exactly R units per millisecond, and every header
 * value is an integer division, with no drift however the clock advances.
 */
#include "gw_ratelimit.h"

#include "gw_cache.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

/* Units of one token, and ms in a minute: equal by design. */
#define UNIT 60000

/* 0 in a link: no bucket. */
#define NIL 0u

typedef struct rl_bucket {
	uint64_t hash;
	int64_t units;   /* tokens * UNIT, 0..cap_units of the class */
	int64_t last_ms; /* the time units were last brought up to date */
	uint32_t chain;  /* next bucket in the hash chain */
	uint32_t prev;   /* LRU neighbours: prev is more recent */
	uint32_t next;
	uint8_t cls;
	uint8_t kind;
	uint8_t len;
	uint8_t key[GW_RATELIMIT_KEY_MAX];
} rl_bucket;

/* A counter written under the shard's lock and read without it. */
typedef atomic_uint_fast64_t rl_counter;

typedef struct rl_shard {
	_Alignas(64) pthread_mutex_t lock;
	uint32_t used; /* slots handed out: they are in use from then on */
	uint32_t head; /* most recently used */
	uint32_t tail; /* least recently used */
	uint32_t *heads;
	rl_bucket *slots;
	rl_counter allowed[GW_RL_N_CLASSES];
	rl_counter refused[GW_RL_N_CLASSES];
	rl_counter evicted;
	rl_counter evicted_unfull;
	atomic_uint_fast32_t n_buckets; /* a copy of used, for stats */
} rl_shard;

typedef struct rl_class {
	int64_t per_min;   /* units per ms */
	int64_t burst;     /* tokens */
	int64_t cap_units; /* burst * UNIT */
	uint64_t window_s; /* seconds to fill from empty, rounded up */
} rl_class;

struct gw_ratelimit {
	uint64_t k0, k1;     /* SipHash key */
	uint32_t slots_per;  /* buckets per shard */
	uint32_t heads_mask; /* heads per shard - 1 */
	rl_class classes[GW_RL_N_CLASSES];
	size_t memory_bytes;
	rl_shard *shards;
	uint32_t *heads;
	rl_bucket *slots;
};

/* The keyed hash of the table is gw_cache.h's SipHash-2-4 (gw_siphash24). */

/* ---- life cycle --------------------------------------------------------------- */

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static int class_from_opts(const gw_ratelimit_limits *in, rl_class *out)
{
	uint32_t burst = in->burst != 0 ? in->burst : in->per_min;
	if (in->per_min == 0 || in->per_min > GW_RATELIMIT_MAX_RATE ||
	    burst > GW_RATELIMIT_MAX_RATE)
		return -1;
	out->per_min = in->per_min;
	out->burst = burst;
	out->cap_units = (int64_t)burst * UNIT;
	out->window_s = ceil_div((uint64_t)out->cap_units, (uint64_t)in->per_min * 1000);
	return 0;
}

rpc_status gw_ratelimit_create(gw_ratelimit **out, const gw_ratelimit_opts *opts)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	if (opts == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rl_class classes[GW_RL_N_CLASSES];
	for (int c = 0; c < GW_RL_N_CLASSES; c++)
		if (class_from_opts(&opts->classes[c], &classes[c]) != 0)
			return RPC_STATUS_INVALID_ARGUMENT;
	size_t capacity = opts->capacity != 0 ? opts->capacity : GW_RATELIMIT_DEFAULT_CAPACITY;
	if (capacity < GW_RATELIMIT_MIN_CAPACITY || capacity > GW_RATELIMIT_MAX_CAPACITY)
		return RPC_STATUS_INVALID_ARGUMENT;
	uint32_t per = (uint32_t)ceil_div(capacity, GW_RATELIMIT_SHARDS);
	uint32_t heads = 1;
	while (heads < per)
		heads <<= 1;

	gw_ratelimit *rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	memcpy(rl->classes, classes, sizeof(classes));
	rl->slots_per = per;
	rl->heads_mask = heads - 1;
	uint8_t seed[16];
	if (RAND_bytes(seed, sizeof(seed)) != 1) {
		free(rl);
		return RPC_STATUS_INTERNAL;
	}
	memcpy(&rl->k0, seed, 8); /* any 128 random bits make the key */
	memcpy(&rl->k1, seed + 8, 8);

	rl->shards = aligned_alloc(64, GW_RATELIMIT_SHARDS * sizeof(rl_shard));
	rl->heads = calloc((size_t)heads * GW_RATELIMIT_SHARDS, sizeof(uint32_t));
	rl->slots = calloc((size_t)per * GW_RATELIMIT_SHARDS, sizeof(rl_bucket));
	if (rl->shards == NULL || rl->heads == NULL || rl->slots == NULL) {
		free(rl->shards);
		free(rl->heads);
		free(rl->slots);
		free(rl);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	memset(rl->shards, 0, GW_RATELIMIT_SHARDS * sizeof(rl_shard));
	unsigned locks = 0;
	for (; locks < GW_RATELIMIT_SHARDS; locks++) {
		rl_shard *s = &rl->shards[locks];
		if (pthread_mutex_init(&s->lock, NULL) != 0)
			break;
		s->heads = rl->heads + (size_t)locks * heads;
		s->slots = rl->slots + (size_t)locks * per;
		for (int c = 0; c < GW_RL_N_CLASSES; c++) {
			atomic_init(&s->allowed[c], 0);
			atomic_init(&s->refused[c], 0);
		}
		atomic_init(&s->evicted, 0);
		atomic_init(&s->evicted_unfull, 0);
		atomic_init(&s->n_buckets, 0);
	}
	if (locks < GW_RATELIMIT_SHARDS) {
		for (unsigned i = 0; i < locks; i++)
			pthread_mutex_destroy(&rl->shards[i].lock);
		free(rl->shards);
		free(rl->heads);
		free(rl->slots);
		free(rl);
		return RPC_STATUS_INTERNAL;
	}
	rl->memory_bytes = sizeof(*rl) + GW_RATELIMIT_SHARDS * sizeof(rl_shard) +
	                   (size_t)heads * GW_RATELIMIT_SHARDS * sizeof(uint32_t) +
	                   (size_t)per * GW_RATELIMIT_SHARDS * sizeof(rl_bucket);
	*out = rl;
	return RPC_STATUS_OK;
}

void gw_ratelimit_destroy(gw_ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (unsigned i = 0; i < GW_RATELIMIT_SHARDS; i++)
		pthread_mutex_destroy(&rl->shards[i].lock);
	free(rl->shards);
	free(rl->heads);
	free(rl->slots);
	free(rl);
}

/* ---- keys ------------------------------------------------------------------------ */

void gw_ratelimit_key_addr(gw_ratelimit_key *key, const gw_ip *ip)
{
	if (key == NULL)
		return;
	memset(key, 0, sizeof(*key));
	key->kind = GW_RL_KEY_ADDR;
	if (ip == NULL)
		return; /* len 0: refused by gw_ratelimit_check() */
	if (gw_ip_is_v4(ip)) {
		memcpy(key->bytes, ip->b + 12, 4);
		key->len = 4;
	} else {
		memcpy(key->bytes, ip->b, 8); /* the /64 */
		key->len = 8;
	}
}

rpc_status gw_ratelimit_key_user(gw_ratelimit_key *key, const char *user, size_t len)
{
	if (key == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	memset(key, 0, sizeof(*key));
	key->kind = GW_RL_KEY_USER;
	if (user == NULL || len == 0 || len > GW_RATELIMIT_KEY_MAX)
		return RPC_STATUS_INVALID_ARGUMENT;
	memcpy(key->bytes, user, len);
	key->len = (uint8_t)len;
	return RPC_STATUS_OK;
}

/* ---- the check -------------------------------------------------------------------- */

static void counter_inc(rl_counter *c)
{
	/* Only the lock holder writes: a relaxed load and store suffice. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

/* Bring b's tokens up to now_ms. */
static void refill(rl_bucket *b, const rl_class *c, int64_t now_ms)
{
	if (now_ms <= b->last_ms)
		return;
	int64_t elapsed = now_ms - b->last_ms;
	int64_t missing = c->cap_units - b->units;
	/* elapsed * per_min overflows only long after the bucket is full. */
	if (elapsed >= missing / c->per_min + 1)
		b->units = c->cap_units;
	else
		b->units += elapsed * c->per_min;
	if (b->units > c->cap_units)
		b->units = c->cap_units;
	b->last_ms = now_ms;
}

static void lru_unlink(rl_shard *s, uint32_t i)
{
	rl_bucket *b = &s->slots[i - 1];
	if (b->prev != NIL)
		s->slots[b->prev - 1].next = b->next;
	else
		s->head = b->next;
	if (b->next != NIL)
		s->slots[b->next - 1].prev = b->prev;
	else
		s->tail = b->prev;
	b->prev = b->next = NIL;
}

static void lru_push_front(rl_shard *s, uint32_t i)
{
	rl_bucket *b = &s->slots[i - 1];
	b->prev = NIL;
	b->next = s->head;
	if (s->head != NIL)
		s->slots[s->head - 1].prev = i;
	s->head = i;
	if (s->tail == NIL)
		s->tail = i;
}

static void chain_unlink(const gw_ratelimit *rl, rl_shard *s, uint32_t i)
{
	rl_bucket *b = &s->slots[i - 1];
	uint32_t *link = &s->heads[b->hash & rl->heads_mask];
	while (*link != NIL && *link != i)
		link = &s->slots[*link - 1].chain;
	if (*link == i)
		*link = b->chain;
	b->chain = NIL;
}

/* The bucket of the key in shard s, made (or taken from the LRU end) when
 * absent. Called under s->lock. */
static rl_bucket *find_or_make(gw_ratelimit *rl, rl_shard *s, uint64_t h, uint8_t cls,
                               const gw_ratelimit_key *key, int64_t now_ms)
{
	uint32_t *head = &s->heads[h & rl->heads_mask];
	for (uint32_t i = *head; i != NIL;) {
		rl_bucket *b = &s->slots[i - 1];
		if (b->hash == h && b->cls == cls && b->kind == key->kind && b->len == key->len &&
		    memcmp(b->key, key->bytes, key->len) == 0) {
			lru_unlink(s, i);
			lru_push_front(s, i);
			return b;
		}
		i = b->chain;
	}
	uint32_t i;
	if (s->used < rl->slots_per) {
		i = ++s->used;
		atomic_store_explicit(&s->n_buckets, s->used, memory_order_relaxed);
	} else {
		i = s->tail;
		rl_bucket *old = &s->slots[i - 1];
		const rl_class *oc = &rl->classes[old->cls];
		refill(old, oc, now_ms);
		counter_inc(&s->evicted);
		if (old->units < oc->cap_units)
			counter_inc(&s->evicted_unfull);
		lru_unlink(s, i);
		chain_unlink(rl, s, i);
	}
	rl_bucket *b = &s->slots[i - 1];
	b->hash = h;
	b->cls = cls;
	b->kind = key->kind;
	b->len = key->len;
	memcpy(b->key, key->bytes, key->len);
	b->units = rl->classes[cls].cap_units;
	b->last_ms = now_ms;
	b->chain = *head;
	*head = i;
	lru_push_front(s, i);
	return b;
}

rpc_status gw_ratelimit_check(gw_ratelimit *rl, gw_ratelimit_class cls, const gw_ratelimit_key *key,
                              int64_t now_ms, gw_ratelimit_verdict *verdict)
{
	if (verdict == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	memset(verdict, 0, sizeof(*verdict));
	if (rl == NULL || key == NULL || (unsigned)cls >= GW_RL_N_CLASSES ||
	    (key->kind != GW_RL_KEY_ADDR && key->kind != GW_RL_KEY_USER) || key->len == 0 ||
	    key->len > GW_RATELIMIT_KEY_MAX)
		return RPC_STATUS_INVALID_ARGUMENT;

	uint8_t msg[3 + GW_RATELIMIT_KEY_MAX];
	msg[0] = (uint8_t)cls;
	msg[1] = key->kind;
	msg[2] = key->len;
	memcpy(msg + 3, key->bytes, key->len);
	uint64_t h = gw_siphash24(rl->k0, rl->k1, msg, 3 + (size_t)key->len);
	/* The top bits pick the shard, the low bits the chain. */
	rl_shard *s = &rl->shards[h >> 58];
	const rl_class *c = &rl->classes[cls];

	pthread_mutex_lock(&s->lock);
	rl_bucket *b = find_or_make(rl, s, h, (uint8_t)cls, key, now_ms);
	refill(b, c, now_ms);
	int allowed = b->units >= UNIT;
	if (allowed)
		b->units -= UNIT;
	int64_t units = b->units;
	counter_inc(allowed ? &s->allowed[cls] : &s->refused[cls]);
	pthread_mutex_unlock(&s->lock);

	uint64_t per_s = (uint64_t)c->per_min * 1000; /* units per second */
	verdict->allowed = allowed;
	verdict->limit = (uint32_t)c->burst;
	verdict->remaining = (uint32_t)(units / UNIT);
	verdict->reset_s = ceil_div((uint64_t)(c->cap_units - units), per_s);
	verdict->retry_after_s = allowed ? 0 : ceil_div((uint64_t)(UNIT - units), per_s);
	verdict->window_s = c->window_s;
	return RPC_STATUS_OK;
}

const gw_ratelimit_verdict *gw_ratelimit_verdict_pick(const gw_ratelimit_verdict *a,
                                                      const gw_ratelimit_verdict *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	if (a->allowed != b->allowed)
		return a->allowed ? b : a;
	if (!a->allowed)
		return b->retry_after_s > a->retry_after_s ? b : a;
	return b->remaining < a->remaining ? b : a;
}

/* ---- headers and the 429 body ---------------------------------------------------- */

size_t gw_ratelimit_headers(const gw_ratelimit_verdict *v, gw_ratelimit_header_buf *buf,
                            gw_http_header *out)
{
	if (v == NULL || buf == NULL || out == NULL)
		return 0;
	int n[5];
	n[0] = snprintf(buf->limit, sizeof(buf->limit), "%" PRIu32, v->limit);
	n[1] = snprintf(buf->remaining, sizeof(buf->remaining), "%" PRIu32, v->remaining);
	n[2] = snprintf(buf->reset, sizeof(buf->reset), "%" PRIu64, v->reset_s);
	n[3] = snprintf(buf->policy, sizeof(buf->policy), "%" PRIu32 ";w=%" PRIu64, v->limit,
	                v->window_s);
	n[4] = snprintf(buf->retry_after, sizeof(buf->retry_after), "%" PRIu64, v->retry_after_s);
	static const char *const names[5] = {"ratelimit-limit", "ratelimit-remaining",
	                                     "ratelimit-reset", "ratelimit-policy", "retry-after"};
	const char *values[5] = {buf->limit, buf->remaining, buf->reset, buf->policy,
	                         buf->retry_after};
	size_t count = v->allowed ? 4 : 5;
	for (size_t i = 0; i < count; i++) {
		out[i].name = names[i];
		out[i].name_len = strlen(names[i]);
		out[i].value = values[i];
		/* Every value fits its buffer: 20 digits at most, and the policy
		 * 10 + 3 + 20. */
		out[i].value_len = n[i] > 0 ? (size_t)n[i] : 0;
	}
	return count;
}

rpc_status gw_ratelimit_write_error(gw_json_buf *b, const gw_ratelimit_verdict *v)
{
	if (b == NULL || v == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	char message[96];
	snprintf(message, sizeof(message), "too many requests: retry in %" PRIu64 " s",
	         v->retry_after_s > 0 ? v->retry_after_s : 1);
	gw_json_error_reply e = {0};
	e.http_status = 429;
	e.code = RPC_STATUS_RESOURCE_EXHAUSTED;
	e.message = message;
	e.reason = "RATE_LIMITED";
	return gw_json_write_error(b, &e);
}

/* ---- stats ------------------------------------------------------------------------ */

void gw_ratelimit_stats_get(const gw_ratelimit *rl, gw_ratelimit_stats *stats)
{
	if (stats == NULL)
		return;
	memset(stats, 0, sizeof(*stats));
	if (rl == NULL)
		return;
	for (unsigned i = 0; i < GW_RATELIMIT_SHARDS; i++) {
		rl_shard *s = &rl->shards[i];
		for (int c = 0; c < GW_RL_N_CLASSES; c++) {
			stats->allowed[c] +=
			    atomic_load_explicit(&s->allowed[c], memory_order_relaxed);
			stats->refused[c] +=
			    atomic_load_explicit(&s->refused[c], memory_order_relaxed);
		}
		stats->evicted += atomic_load_explicit(&s->evicted, memory_order_relaxed);
		stats->evicted_unfull +=
		    atomic_load_explicit(&s->evicted_unfull, memory_order_relaxed);
		stats->buckets += atomic_load_explicit(&s->n_buckets, memory_order_relaxed);
	}
	stats->capacity = (size_t)rl->slots_per * GW_RATELIMIT_SHARDS;
	stats->memory_bytes = rl->memory_bytes;
}
