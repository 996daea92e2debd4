/*
 * gw_ratelimit.h - the REST gateway's rate limits: token buckets keyed by
 * client address (gw_clientip.h) or by user id, one table for the whole
 * process, shared by every event-loop thread. Design notes:
 * docs/gateway/limits.md.
 *
 * A class (GW_RL_DEFAULT for every route, GW_RL_AUTH for login and
 * register: the caller says which) has a rate per minute and a burst: its
 * buckets hold at most `burst` tokens, refill at `per_min` tokens a minute
 * (exactly: integer arithmetic in 1/60000 of a token), and a request takes
 * one token or is refused. Over any interval of t ms a key is allowed at
 * most burst + floor(per_min * t / 60000) requests.
 *
 * The table has a fixed capacity, allocated at create: the memory never
 * grows with the number of keys. It is split into GW_RATELIMIT_SHARDS
 * shards by a keyed hash (SipHash-2-4 under a per-process random key from
 * OpenSSL), each with its own lock, hash chains and least-recently-used
 * list. A key not in the table gets a new, full bucket; when its shard is
 * full, the shard's least recently used bucket makes room. That bucket has
 * usually been idle long enough to be full again, and dropping a full
 * bucket loses nothing (a new one starts full); dropping one that is not
 * full forgives its debt, and is counted (gw_ratelimit_stats
 * .evicted_unfull) as the sign that the capacity is too small.
 *
 * Every check is O(1): one hash, one short chain, a few list links, under
 * one shard's lock held for a few dozen instructions; it never allocates
 * and never blocks on anything but that lock.
 *
 * Response headers follow draft-ietf-httpapi-ratelimit-headers-06 (the
 * last revision with separate RateLimit-Limit / -Remaining / -Reset
 * fields): Limit is the burst (the most a client can spend at once),
 * Remaining the whole tokens left, Reset the seconds until the bucket is
 * full again, Policy "<burst>;w=<seconds to refill from empty>", and a
 * refusal adds Retry-After, the seconds until one token is back.
 *
 * Thread-safety: gw_ratelimit_create() and gw_ratelimit_destroy() are the
 * caller's to order; every other function may be called from any thread
 * at any time.
 */
#ifndef PANTHERA_GW_RATELIMIT_H
#define PANTHERA_GW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "gw_clientip.h"
#include "gw_http.h"
#include "gw_json.h"
#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Shards of the table: independent locks. */
#define GW_RATELIMIT_SHARDS 64u

/* Default and bounds of the capacity (buckets in the whole table). */
#define GW_RATELIMIT_DEFAULT_CAPACITY 100000u
#define GW_RATELIMIT_MIN_CAPACITY     GW_RATELIMIT_SHARDS
#define GW_RATELIMIT_MAX_CAPACITY     (1u << 24)

/* Largest rate per minute and burst of a class. */
#define GW_RATELIMIT_MAX_RATE 100000000u

/* Bytes of a key: a user id (a UUID, 36 bytes) or an address prefix. */
#define GW_RATELIMIT_KEY_MAX 64u

/* The classes of requests; each has its own limits and its own buckets. */
typedef enum gw_ratelimit_class {
	GW_RL_DEFAULT = 0, /* PANTHERA_RATE_LIMIT_PER_MIN: every route */
	GW_RL_AUTH = 1,    /* PANTHERA_AUTH_RATE_LIMIT_PER_MIN: login, register */
} gw_ratelimit_class;
#define GW_RL_N_CLASSES 2

/* The limits of one class. */
typedef struct gw_ratelimit_limits {
	/* Tokens added per minute: 1..GW_RATELIMIT_MAX_RATE. */
	uint32_t per_min;
	/* Most tokens a bucket holds: 0 means per_min (a minute's worth may
	 * be spent at once), else 1..GW_RATELIMIT_MAX_RATE. */
	uint32_t burst;
} gw_ratelimit_limits;

typedef struct gw_ratelimit_opts {
	gw_ratelimit_limits classes[GW_RL_N_CLASSES];
	/* Buckets the table holds at most, all classes together:
	 * 0 means GW_RATELIMIT_DEFAULT_CAPACITY; else
	 * GW_RATELIMIT_MIN_CAPACITY..GW_RATELIMIT_MAX_CAPACITY, rounded up to
	 * a multiple of GW_RATELIMIT_SHARDS. A bucket takes 104 bytes and
	 * its chain head 4 to 8, reserved at create (10 to 11 MB for the
	 * default) and touched as keys arrive. */
	size_t capacity;
} gw_ratelimit_opts;

typedef struct gw_ratelimit gw_ratelimit;

/*
 * Create the table.
 * out: OUT, the table; NULL on error.
 * Returns RPC_STATUS_OK, INVALID_ARGUMENT (NULL out or opts, a rate or
 * burst out of range, a capacity out of range), RESOURCE_EXHAUSTED (no
 * memory) or INTERNAL (no random key from OpenSSL, a lock that cannot be
 * made).
 */
rpc_status gw_ratelimit_create(gw_ratelimit **out, const gw_ratelimit_opts *opts);

/* Free the table. No call on it may be running or follow. NULL is
 * harmless. */
void gw_ratelimit_destroy(gw_ratelimit *rl);

/* What a bucket is keyed by. */
typedef enum gw_ratelimit_key_kind {
	GW_RL_KEY_ADDR = 1, /* a client address prefix */
	GW_RL_KEY_USER = 2, /* a user id (a verified token's subject) */
} gw_ratelimit_key_kind;

/* A bucket's key: kinds never collide with each other. Filled by the two
 * functions below; a plain value, copied freely. */
typedef struct gw_ratelimit_key {
	uint8_t kind; /* gw_ratelimit_key_kind */
	uint8_t len;  /* bytes of `bytes` used */
	uint8_t bytes[GW_RATELIMIT_KEY_MAX];
} gw_ratelimit_key;

/*
 * The key of a client address: all 4 bytes of an IPv4 address; the /64
 * prefix (8 bytes) of an IPv6 one, as a single subscriber usually holds a
 * whole /64 and could otherwise rotate through 2^64 addresses, each with a
 * fresh bucket.
 */
void gw_ratelimit_key_addr(gw_ratelimit_key *key, const gw_ip *ip);

/*
 * The key of a user id, user[0..len) (a verified token's `sub`).
 * Returns RPC_STATUS_OK, or INVALID_ARGUMENT for a NULL argument, an empty
 * id or one over GW_RATELIMIT_KEY_MAX bytes (key then has len 0).
 */
rpc_status gw_ratelimit_key_user(gw_ratelimit_key *key, const char *user, size_t len);

/* The outcome of one check, and what the response headers say. */
typedef struct gw_ratelimit_verdict {
	int allowed; /* 1: go on; 0: answer 429 */
	/* RateLimit-Limit: the class's burst. */
	uint32_t limit;
	/* RateLimit-Remaining: whole tokens left after this request. */
	uint32_t remaining;
	/* RateLimit-Reset: seconds (rounded up) until the bucket is full. */
	uint64_t reset_s;
	/* Retry-After when refused: seconds (rounded up, at least 1) until a
	 * token is back; 0 when allowed. */
	uint64_t retry_after_s;
	/* RateLimit-Policy's window: seconds (rounded up) a bucket takes to
	 * fill from empty. */
	uint64_t window_s;
} gw_ratelimit_verdict;

/*
 * Take one token from the bucket of (cls, key) at now_ms, a monotonic
 * clock in milliseconds (CLOCK_MONOTONIC; any origin, the same clock on
 * every thread). A time earlier than the bucket's last one counts as no
 * time passed (threads read the clock in one order and lock in another).
 *
 * verdict: OUT, allowed or not and the header values; on error zeroed
 *          (allowed 0).
 * Returns RPC_STATUS_OK (allowed or refused: see verdict->allowed), or
 * INVALID_ARGUMENT (a NULL argument, an unknown class, a key of no kind
 * or with len 0 or over GW_RATELIMIT_KEY_MAX).
 */
rpc_status gw_ratelimit_check(gw_ratelimit *rl, gw_ratelimit_class cls, const gw_ratelimit_key *key,
                              int64_t now_ms, gw_ratelimit_verdict *verdict);

/*
 * When a request went through two checks (its address and its user), the
 * verdict to report: a refusal over an allowance (the longer Retry-After
 * of two refusals), else the one with fewer tokens remaining (the
 * draft's "closest to its limit"). Returns a or b.
 */
const gw_ratelimit_verdict *gw_ratelimit_verdict_pick(const gw_ratelimit_verdict *a,
                                                      const gw_ratelimit_verdict *b);

/* Most header fields gw_ratelimit_headers() writes. */
#define GW_RATELIMIT_MAX_HEADERS 5

/* Room for the header values; one per response, on the stack or in the
 * request's pool. */
typedef struct gw_ratelimit_header_buf {
	char limit[12];
	char remaining[12];
	char reset[24];
	char policy[48];
	char retry_after[24];
} gw_ratelimit_header_buf;

/*
 * The response header fields of a verdict: ratelimit-limit,
 * ratelimit-remaining, ratelimit-reset, ratelimit-policy, and retry-after
 * when refused. Names are lower-case static strings (as HTTP/2 wants
 * them); values point into buf.
 * out:     room for GW_RATELIMIT_MAX_HEADERS fields.
 * Returns the number of fields written (4 or 5; 0 for a NULL argument).
 */
size_t gw_ratelimit_headers(const gw_ratelimit_verdict *v, gw_ratelimit_header_buf *buf,
                            gw_http_header *out);

/*
 * Append the 429 body of a refusal: AIP-193, status RESOURCE_EXHAUSTED,
 * ErrorInfo reason "RATE_LIMITED", a message saying when to retry.
 * Returns gw_json_buf_status(b), or INVALID_ARGUMENT for a NULL argument.
 */
rpc_status gw_ratelimit_write_error(gw_json_buf *b, const gw_ratelimit_verdict *v);

/* Counters for /metrics and capacity planning; monotonic but `buckets`. */
typedef struct gw_ratelimit_stats {
	uint64_t allowed[GW_RL_N_CLASSES];
	uint64_t refused[GW_RL_N_CLASSES]; /* the rate-limited count */
	uint64_t evicted;                  /* buckets dropped to make room */
	uint64_t evicted_unfull;           /* of those, not yet full: a debt forgiven */
	size_t buckets;                    /* buckets in use now */
	size_t capacity;                   /* the table's capacity */
	size_t memory_bytes;               /* reserved at create; never changes */
} gw_ratelimit_stats;

/*
 * Read the counters (relaxed atomic loads: each is exact, the set is not
 * one instant's). stats: OUT; zeroed for a NULL rl.
 */
void gw_ratelimit_stats_get(const gw_ratelimit *rl, gw_ratelimit_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_RATELIMIT_H */
