/*
 * gw_auth.c - the gateway's verifier: the current key set, the cache of
 * verified tokens, and the helpers around a verification (Bearer header,
 * caller metadata, WWW-Authenticate); see gw_auth.h.
 *
 * Design notes.
 *   - The key set pointer changes rarely (a JWKS refresh that found other
 *     keys) and is read on every cache miss. A reader takes the read lock
 *     only to copy the pointer and add a reference, then verifies without
 *     any lock; install swaps the pointer under the write lock and drops
 *     the old reference, which frees the set once the last reader is done.
 *     `gen` counts the swaps; it changes under the same lock.
 *   - The cache is 16 shards, each a mutex and a fixed array of 4-way sets,
 *     indexed by bits of the token's SHA-256 (uniform, so the shards share
 *     the load). An entry holds the hash, never the token; the claims; the
 *     key-set generation it was verified with (an entry of an older
 *     generation is a miss, so a key dropped from the JWKS stops verifying
 *     at the swap); and `until` = min(exp, verified-at + ttl), past which
 *     it is a miss. A full set evicts its entry that expires first. All
 *     memory is allocated at create: the cache never grows.
 *   - Only valid tokens are cached: a forged token costs a signature check
 *     every time, which the per-client rate limit bounds.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gw_auth.h"
#include "panthera/caller.h"

#define SHARDS      16 /* a power of two */
#define WAYS        4
#define HASH_LEN    32
#define ISSUER_MAX  255
#define DEF_ENTRIES 8192
#define DEF_TTL_S   30

typedef struct cache_entry {
	uint8_t hash[HASH_LEN];
	int64_t until; /* served while now < until; 0: empty */
	uint64_t gen;
	jwt_claims claims;
} cache_entry;

typedef struct cache_shard {
	_Alignas(64) pthread_mutex_t lock;
	uint64_t hits, misses;
	cache_entry *slots; /* sets * WAYS */
} cache_shard;

struct gw_auth {
	char issuer[ISSUER_MAX + 1];
	int64_t ttl_s;
	EVP_MD *sha256; /* fetched once: no provider lookup per request */

	pthread_rwlock_t keys_lock; /* guards keys and gen */
	gw_keyset *keys;            /* one reference held; NULL until installed */
	atomic_uint_fast64_t gen;   /* written under keys_lock, read without */

	size_t sets; /* per shard, a power of two */
	cache_shard *shards;
	cache_entry *entries;
};

/* ---- life cycle ---- */

rpc_status gw_auth_create(gw_auth **out, const gw_auth_opts *opts)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	size_t ilen = opts != NULL && opts->issuer != NULL ? strlen(opts->issuer) : 0;
	if (ilen == 0 || ilen > ISSUER_MAX)
		return RPC_STATUS_INVALID_ARGUMENT;
	size_t want = opts->cache_entries ? opts->cache_entries : DEF_ENTRIES;
	if (want > ((size_t)1 << 24))
		want = (size_t)1 << 24; /* 16 Mi entries is plenty, and keeps sizes in range */
	size_t sets = 1;
	while (sets * SHARDS * WAYS < want)
		sets <<= 1;

	gw_auth *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	memcpy(a->issuer, opts->issuer, ilen + 1);
	a->ttl_s = opts->cache_ttl_s ? opts->cache_ttl_s : DEF_TTL_S;
	a->sets = sets;
	atomic_init(&a->gen, 0);
	int rw = pthread_rwlock_init(&a->keys_lock, NULL) == 0;
	a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	a->shards = aligned_alloc(64, SHARDS * sizeof(cache_shard));
	a->entries = calloc(sets * SHARDS * WAYS, sizeof(cache_entry));
	size_t locks = 0;
	if (rw && a->sha256 != NULL && a->shards != NULL && a->entries != NULL) {
		memset(a->shards, 0, SHARDS * sizeof(cache_shard));
		for (; locks < SHARDS; locks++) {
			if (pthread_mutex_init(&a->shards[locks].lock, NULL) != 0)
				break;
			a->shards[locks].slots = a->entries + locks * sets * WAYS;
		}
	}
	if (locks == SHARDS) {
		*out = a;
		return RPC_STATUS_OK;
	}
	for (size_t i = 0; i < locks; i++)
		pthread_mutex_destroy(&a->shards[i].lock);
	if (rw)
		pthread_rwlock_destroy(&a->keys_lock);
	EVP_MD_free(a->sha256);
	free(a->shards);
	free(a->entries);
	free(a);
	return RPC_STATUS_RESOURCE_EXHAUSTED;
}

void gw_auth_destroy(gw_auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < SHARDS; i++)
		pthread_mutex_destroy(&a->shards[i].lock);
	/* The claims of valid tokens: wiped, as the rest of our secrets. */
	OPENSSL_cleanse(a->entries, a->sets * SHARDS * WAYS * sizeof(cache_entry));
	free(a->entries);
	free(a->shards);
	gw_keyset_release(a->keys);
	pthread_rwlock_destroy(&a->keys_lock);
	EVP_MD_free(a->sha256);
	free(a);
}

/* ---- the key set ---- */

rpc_status gw_auth_install(gw_auth *a, gw_keyset *ks, int *changed)
{
	if (changed != NULL)
		*changed = 0;
	if (a == NULL || ks == NULL) {
		gw_keyset_release(ks);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	gw_keyset *drop = ks;
	pthread_rwlock_wrlock(&a->keys_lock);
	if (a->keys == NULL || !gw_keyset_equal(a->keys, ks)) {
		drop = a->keys;
		a->keys = ks;
		atomic_fetch_add_explicit(&a->gen, 1, memory_order_release);
		if (changed != NULL)
			*changed = 1;
	}
	pthread_rwlock_unlock(&a->keys_lock);
	gw_keyset_release(drop); /* outside the lock: it may free keys */
	return RPC_STATUS_OK;
}

/* The current set and its generation, with a reference. */
static gw_keyset *acquire_keys(gw_auth *a, uint64_t *gen)
{
	pthread_rwlock_rdlock(&a->keys_lock);
	gw_keyset *ks = gw_keyset_ref(a->keys);
	*gen = atomic_load_explicit(&a->gen, memory_order_relaxed);
	pthread_rwlock_unlock(&a->keys_lock);
	return ks;
}

gw_keyset *gw_auth_keys(gw_auth *a)
{
	uint64_t gen;
	return a != NULL ? acquire_keys(a, &gen) : NULL;
}

/* ---- the cache ---- */

static cache_shard *shard_of(gw_auth *a, const uint8_t h[HASH_LEN], cache_entry **set)
{
	cache_shard *s = &a->shards[h[0] & (SHARDS - 1)];
	uint32_t idx =
	    (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
	*set = s->slots + (idx & (a->sets - 1)) * WAYS;
	return s;
}

/* 1 with *out filled when a live entry of generation `gen` holds h. */
static int cache_get(gw_auth *a, const uint8_t h[HASH_LEN], uint64_t gen, int64_t now,
                     jwt_claims *out)
{
	cache_entry *set;
	cache_shard *s = shard_of(a, h, &set);
	int hit = 0;
	pthread_mutex_lock(&s->lock);
	for (int w = 0; w < WAYS; w++) {
		cache_entry *e = &set[w];
		if (e->until > now && e->gen == gen && CRYPTO_memcmp(e->hash, h, HASH_LEN) == 0) {
			*out = e->claims;
			hit = 1;
			break;
		}
	}
	if (hit)
		s->hits++;
	else
		s->misses++;
	pthread_mutex_unlock(&s->lock);
	return hit;
}

static void cache_put(gw_auth *a, const uint8_t h[HASH_LEN], uint64_t gen, int64_t now,
                      const jwt_claims *c)
{
	int64_t until = c->exp;
	if (now < INT64_MAX - a->ttl_s && now + a->ttl_s < until)
		until = now + a->ttl_s;
	if (until <= now)
		return; /* valid only within the leeway: not worth keeping */
	cache_entry *set;
	cache_shard *s = shard_of(a, h, &set);
	pthread_mutex_lock(&s->lock);
	cache_entry *victim = &set[0];
	for (int w = 0; w < WAYS; w++) {
		cache_entry *e = &set[w];
		int dead = e->until <= now || e->gen != gen;
		if (dead || CRYPTO_memcmp(e->hash, h, HASH_LEN) == 0) {
			victim = e; /* a free slot, or the same token again */
			break;
		}
		if (e->until < victim->until)
			victim = e;
	}
	memcpy(victim->hash, h, HASH_LEN);
	victim->until = until;
	victim->gen = gen;
	victim->claims = *c;
	pthread_mutex_unlock(&s->lock);
}

void gw_auth_get_stats(gw_auth *a, gw_auth_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (a == NULL)
		return;
	for (size_t i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&a->shards[i].lock);
		out->cache_hits += a->shards[i].hits;
		out->cache_misses += a->shards[i].misses;
		pthread_mutex_unlock(&a->shards[i].lock);
	}
	gw_keyset *ks = acquire_keys(a, &out->generation);
	out->keys = gw_keyset_count(ks);
	gw_keyset_release(ks);
}

/* ---- verifying ---- */

static int keyset_lookup(void *arg, const char *kid, jwt_key *out)
{
	return gw_keyset_find(arg, kid, out);
}

static rpc_status set_reason(jwt_status *reason, jwt_status r, rpc_status st)
{
	if (reason != NULL)
		*reason = r;
	return st;
}

rpc_status gw_auth_verify(gw_auth *a, const char *token, size_t len, int64_t now, jwt_claims *out,
                          jwt_status *reason)
{
	if (a == NULL || out == NULL)
		return set_reason(reason, JWT_ERR_NO_TOKEN, RPC_STATUS_INVALID_ARGUMENT);
	if (token == NULL || len == 0)
		return set_reason(reason, JWT_ERR_NO_TOKEN, RPC_STATUS_UNAUTHENTICATED);
	if (len > JWT_MAX_LEN) /* before hashing: a huge header costs nothing */
		return set_reason(reason, JWT_ERR_TOO_LONG, RPC_STATUS_UNAUTHENTICATED);

	uint8_t h[HASH_LEN];
	unsigned hn = 0;
	if (EVP_Digest(token, len, h, &hn, a->sha256, NULL) != 1 || hn != HASH_LEN)
		return set_reason(reason, JWT_ERR_INTERNAL, RPC_STATUS_RESOURCE_EXHAUSTED);
	if (cache_get(a, h, atomic_load_explicit(&a->gen, memory_order_acquire), now, out))
		return set_reason(reason, JWT_OK, RPC_STATUS_OK);

	uint64_t gen;
	gw_keyset *ks = acquire_keys(a, &gen);
	if (ks == NULL)
		return set_reason(reason, JWT_ERR_UNKNOWN_KID, RPC_STATUS_UNAVAILABLE);
	jwt_claims c;
	jwt_status js = jwt_verify(token, len, a->issuer, now, keyset_lookup, ks, &c);
	gw_keyset_release(ks);
	if (js == JWT_OK) {
		cache_put(a, h, gen, now, &c);
		*out = c;
		return set_reason(reason, JWT_OK, RPC_STATUS_OK);
	}
	return set_reason(reason, js,
	                  js == JWT_ERR_INTERNAL ? RPC_STATUS_RESOURCE_EXHAUSTED
	                                         : RPC_STATUS_UNAUTHENTICATED);
}

/* ---- HTTP and RPC helpers ---- */

static int b64token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int gw_auth_bearer(const char *value, size_t len, const char **token, size_t *token_len)
{
	if (token != NULL)
		*token = NULL;
	if (token_len != NULL)
		*token_len = 0;
	if (value == NULL)
		return 0;
	size_t i = 0;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	if (len - i < 6 || strncasecmp(value + i, "bearer", 6) != 0)
		return 0;
	i += 6;
	if (i == len)
		return -1; /* "Bearer" alone */
	if (value[i] != ' ')
		return 0; /* "Bearerx": another scheme */
	while (i < len && value[i] == ' ')
		i++;
	size_t start = i;
	while (i < len && b64token_char((unsigned char)value[i]))
		i++;
	if (i == start)
		return -1;
	while (i < len && value[i] == '=')
		i++;
	size_t end = i;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	if (i != len)
		return -1; /* a second token, or a character a token cannot hold */
	if (token != NULL)
		*token = value + start;
	if (token_len != NULL)
		*token_len = end - start;
	return 1;
}

size_t gw_auth_caller_metadata(const jwt_claims *claims, rpc_metadata_entry md[GW_CALLER_MD_MAX])
{
	/* indexed by the role bits */
	static const char *const roles[4] = {NULL, "USER", "ADMIN", "USER,ADMIN"};
	md[0].key = CALLER_MD_ID;
	md[0].value = claims->sub;
	const char *r = roles[claims->roles & (JWT_ROLE_USER | JWT_ROLE_ADMIN)];
	if (r == NULL)
		return 1;
	md[1].key = CALLER_MD_ROLES;
	md[1].value = r;
	return 2;
}

int gw_auth_metadata_reserved(const char *key, size_t len)
{
	static const char id[] = CALLER_MD_ID, roles[] = CALLER_MD_ROLES;
	return key != NULL && ((len == sizeof(id) - 1 && strncasecmp(key, id, len) == 0) ||
	                       (len == sizeof(roles) - 1 && strncasecmp(key, roles, len) == 0));
}

#define CHALLENGE(desc)                                                                          \
	"Bearer realm=\"" GW_AUTH_REALM "\", error=\"invalid_token\", error_description=\"" desc \
	"\""

const char *gw_auth_www_authenticate(int token_sent, jwt_status reason)
{
	if (!token_sent)
		return "Bearer realm=\"" GW_AUTH_REALM "\"";
	switch (reason) {
	case JWT_ERR_EXPIRED:
		return CHALLENGE("The access token expired");
	case JWT_ERR_NOT_YET_VALID:
		return CHALLENGE("The access token is not valid yet");
	case JWT_ERR_NO_TOKEN:
	case JWT_ERR_TOO_LONG:
	case JWT_ERR_FORM:
	case JWT_ERR_HEADER:
	case JWT_ERR_SIG_ENCODING:
	case JWT_ERR_CLAIMS:
	case JWT_ERR_MISSING_CLAIM:
		return CHALLENGE("The access token is malformed");
	default:
		return CHALLENGE("The access token is not valid");
	}
}
