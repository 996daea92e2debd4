/*
 * gw_auth.h - the REST gateway's token checks: access tokens verified
 * against the auth service's JWKS, a cache of verified tokens, and what the
 * gateway derives from a verified token (the caller's RPC metadata, the
 * WWW-Authenticate header of a 401). Design notes: docs/gateway/auth.md.
 *
 * Objects:
 *   gw_keyset   the public keys of one GetJwksResponse (Ed25519 keys with
 *               alg EdDSA, P-256 keys with alg ES256; any other key is
 *               refused alone, the good ones kept). Immutable once built,
 *               reference-counted: readers hold a reference while they
 *               verify, so a new set can replace it at any time.
 *   gw_auth     the verifier: the current key set, swapped atomically by
 *               gw_auth_install(), the expected issuer, and the cache of
 *               verified tokens.
 *   gw_jwks_refresher
 *               a background thread that fetches the JWKS periodically
 *               and on demand (an unknown kid), at most once per
 *               min_interval_ms, and installs what it gets.
 *
 * The event loops call only non-blocking functions: gw_auth_verify(),
 * gw_jwks_refresher_request(), and the pure helpers (gw_auth_bearer,
 * gw_auth_caller_metadata, gw_auth_www_authenticate). Fetching blocks, and
 * runs on the refresher's thread or at start-up.
 *
 * The verification itself is panthera/jwt.h's, the same code the auth
 * service runs: the algorithm comes from the KEY (a header alg other than
 * the key's is refused; "none", HS256 and anything but EdDSA and ES256
 * never pass), no "crit", exp and nbf within JWT_LEEWAY_S, iss == the
 * configured issuer, aud == "panthera".
 *
 * Thread-safety: every function on a gw_auth, a gw_keyset or a refresher
 * may be called from any thread at once, but create/destroy, start/stop.
 */
#ifndef PANTHERA_GW_AUTH_H
#define PANTHERA_GW_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/auth/v1/auth.panthera.h"
#include "panthera/jwt.h"
#include "panthera/rpc.h"

/* ---- key sets ------------------------------------------------------------ */

typedef struct gw_keyset gw_keyset;

/* Most keys taken from one JWKS; further keys are refused (and logged). */
#define GW_JWKS_MAX_KEYS 32

/*
 * Build a key set from a GetJwksResponse. Each key must have kty "OKP",
 * crv "Ed25519", alg "EdDSA" and a 32-byte x; or kty "EC", crv "P-256",
 * alg "ES256" and 32-byte x and y (a point on the curve); a kid of 1..63
 * bytes; use "sig" or none. Any other key is refused and logged (event
 * "gateway.jwks", with its kid), and so are both keys of a kid given twice
 * with different keys; the rest make the set, which may be empty.
 * *n_refused (may be NULL) gets the count refused.
 * OK: *out is the set with one reference, the caller's. INVALID_ARGUMENT
 * for a NULL jwks or out; RESOURCE_EXHAUSTED when memory or OpenSSL fails.
 * On error *out is NULL. The response is only read; it may be freed after.
 */
rpc_status gw_keyset_from_jwks(const Panthera__Auth__V1__GetJwksResponse *jwks, gw_keyset **out,
                               size_t *n_refused);

/* Keys in the set. 0 for NULL. */
size_t gw_keyset_count(const gw_keyset *ks);

/*
 * The key of `kid` (NUL-terminated): 0 with *out filled (valid while the
 * caller holds its reference to ks), or -1. O(log n): the key lookup that
 * gw_auth_verify() gives jwt_verify().
 */
int gw_keyset_find(const gw_keyset *ks, const char *kid, jwt_key *out);

/* 1 when both sets hold the same kids with the same algorithms and public
 * keys (in any order of the JWKS). */
int gw_keyset_equal(const gw_keyset *a, const gw_keyset *b);

/* Take one more reference; returns ks. NULL is harmless. */
gw_keyset *gw_keyset_ref(gw_keyset *ks);

/* Drop one reference; the last one frees the set and its keys. NULL is
 * harmless. */
void gw_keyset_release(gw_keyset *ks);

/* ---- the verifier -------------------------------------------------------- */

typedef struct gw_auth gw_auth;

typedef struct gw_auth_opts {
	/* `iss` that tokens must carry: 1..255 bytes. Required: the auth
	 * service's issuer ("panthera" unless configured otherwise). Copied. */
	const char *issuer;
	/* Verified tokens the cache holds at most. 0: 8192. Rounded up to a
	 * multiple of 64 (16 shards of 4-way sets). Each entry takes about
	 * 160 bytes, allocated once at create. */
	size_t cache_entries;
	/* Longest time a verified token is served from the cache, in seconds;
	 * never past its exp. 0: 30. */
	uint32_t cache_ttl_s;
} gw_auth_opts;

/*
 * Create a verifier with no key set (every verification answers
 * UNAVAILABLE until gw_auth_install()). INVALID_ARGUMENT for a NULL out or
 * opts, or an issuer that is NULL, empty or longer than 255 bytes;
 * RESOURCE_EXHAUSTED without memory. On error *out is NULL.
 */
rpc_status gw_auth_create(gw_auth **out, const gw_auth_opts *opts);

/* Free the verifier, its key set reference and its cache. No call on it may
 * be running or follow; a refresher feeding it must be stopped first. NULL
 * is harmless. */
void gw_auth_destroy(gw_auth *a);

/*
 * Make `ks` the key set (taking over the caller's reference, on every
 * return). When it holds the same keys as the current set, the current one
 * stays and nothing changes; otherwise it replaces the current one
 * atomically, and tokens cached under the old keys are no longer served
 * (so a key dropped from the JWKS stops verifying at once). Verifications
 * running keep the set they started with. *changed (may be NULL) gets 1
 * when the set was replaced. INVALID_ARGUMENT for a NULL a or ks.
 */
rpc_status gw_auth_install(gw_auth *a, gw_keyset *ks, int *changed);

/* The current key set with a reference for the caller (release it), or
 * NULL when none was installed. */
gw_keyset *gw_auth_keys(gw_auth *a);

/*
 * Verify token[0..len) (the credentials of "Authorization: Bearer", not
 * NUL-terminated) at `now` (Unix seconds). Never blocks on I/O; the
 * locks it takes are held for a few instructions (a cache shard's, the
 * key set pointer's).
 *
 * A token verified before, with the current key set, within the cache
 * TTL and before its exp, is answered from the cache (its SHA-256 is the
 * key; the token text is never stored). Otherwise jwt_verify() runs and a
 * valid result is cached.
 *
 * Returns, with *reason (may be NULL) the check that decided:
 *   OK               *out holds the claims (sub, sid, roles, exp, ...);
 *   UNAUTHENTICATED  the token is not valid; *reason says why. Reason
 *                    JWT_ERR_UNKNOWN_KID means no key of the current set
 *                    has its kid: the JWKS may have rotated, so the caller
 *                    should gw_jwks_refresher_request() (rate-limited
 *                    there) and may verify again once it completes;
 *   UNAVAILABLE      no key set was installed yet (the JWKS could not be
 *                    fetched so far): not the client's fault (answer 503),
 *                    *reason JWT_ERR_UNKNOWN_KID, so a refresh is asked for
 *                    in the same way;
 *   RESOURCE_EXHAUSTED  OpenSSL could not allocate (*reason
 *                    JWT_ERR_INTERNAL);
 *   INVALID_ARGUMENT a or out is NULL.
 * *out is written only on OK.
 */
rpc_status gw_auth_verify(gw_auth *a, const char *token, size_t len, int64_t now, jwt_claims *out,
                          jwt_status *reason);

typedef struct gw_auth_stats {
	uint64_t cache_hits;   /* verifications answered from the cache */
	uint64_t cache_misses; /* verifications that ran jwt_verify() */
	uint64_t generation;   /* key sets installed that changed the keys */
	size_t keys;           /* keys in the current set */
} gw_auth_stats;

/* Counters for /metrics (each shard's read under its lock). */
void gw_auth_get_stats(gw_auth *a, gw_auth_stats *out);

/* ---- HTTP and RPC helpers (pure) -------------------------------------- */

/*
 * The token of an Authorization header value (RFC 6750 §2.1): the scheme
 * "Bearer" in any case, one or more spaces, a b64token (letters, digits,
 * "-._~+/", then "=" padding), optional trailing spaces or tabs.
 *   1   a Bearer token: *token points into value, *token_len its length;
 *   0   no Bearer credentials (NULL or empty value, another scheme): answer
 *       as to a request without a token;
 *  -1   "Bearer" with a missing or malformed token: an invalid token.
 */
int gw_auth_bearer(const char *value, size_t len, const char **token, size_t *token_len);

/* Entries gw_auth_caller_metadata() may write. */
#define GW_CALLER_MD_MAX 2

/*
 * The caller's identity for the services (docs/wire-protocol.md §4.6,
 * panthera/caller.h): md[0] = {"x-caller-id", claims->sub}, and, when the
 * token has roles, md[1] = {"x-caller-roles", "USER" | "ADMIN" |
 * "USER,ADMIN"}. Returns the count written (1 or 2). The id points into
 * *claims, the rest is static: keep claims alive until the call is started
 * (rpc_call_opts metadata is copied then). The gateway must drop any
 * x-caller-* a client sent (gw_auth_metadata_reserved).
 */
size_t gw_auth_caller_metadata(const jwt_claims *claims, rpc_metadata_entry md[GW_CALLER_MD_MAX]);

/* 1 when key[0..len) (a header name or metadata key, any case) is one the
 * gateway alone may set: x-caller-id, x-caller-roles. */
int gw_auth_metadata_reserved(const char *key, size_t len);

/* The realm of the WWW-Authenticate challenges. */
#define GW_AUTH_REALM "panthera"

/*
 * The value of the WWW-Authenticate header of a 401 (RFC 6750 §3), static:
 *   no token sent:   Bearer realm="panthera"
 *   a token sent:    Bearer realm="panthera", error="invalid_token",
 *                    error_description="<short text>"
 * where the text depends on the reason only coarsely: "The access token
 * expired", "... is not valid yet", "... is malformed", or "... is not
 * valid" (a bad signature, an unknown key, a wrong issuer: which check
 * failed goes to the log, with jwt_status_text(), not to the client).
 */
const char *gw_auth_www_authenticate(int token_sent, jwt_status reason);

/* The ErrorInfo reason of a 401 for a bad token (as the auth service's
 * VerifyToken), and for a missing one. */
#define GW_AUTH_REASON_INVALID "INVALID_ACCESS_TOKEN"
#define GW_AUTH_REASON_MISSING "MISSING_ACCESS_TOKEN"

/* ---- fetching and refreshing the JWKS ------------------------------------ */

/*
 * Fetch a key set. Blocks. OK: *out is a new set with one reference, the
 * caller's; otherwise *out is NULL and err[0..errlen) says why (errlen may
 * be 0). The refresher calls it on its own thread.
 */
typedef rpc_status (*gw_jwks_fetch_fn)(void *arg, gw_keyset **out, char *err, size_t errlen);

/* Deadline of gw_jwks_fetch_rpc(). */
#define GW_JWKS_FETCH_TIMEOUT_MS 5000

/*
 * Fetch the JWKS through the generated AuthService client on `ch`
 * (GetJwks, deadline timeout_ms; 0: GW_JWKS_FETCH_TIMEOUT_MS; one retry
 * when no server answered) and build its key set. Blocks: for start-up and
 * the refresher's thread, never an event loop. OK: *out as
 * gw_keyset_from_jwks() makes it; otherwise the call's status (UNAVAILABLE,
 * DEADLINE_EXCEEDED, ...) or the build's, *out NULL, err the message.
 *
 * Inline, so that only programs that fetch link the RPC client: the fuzz
 * targets compile every gateway-rest source file without the runtime's channel.
 */
static inline rpc_status gw_jwks_fetch(rpc_channel *ch, uint32_t timeout_ms, gw_keyset **out,
                                       char *err, size_t errlen)
{
	Panthera__Auth__V1__GetJwksRequest req = PANTHERA__AUTH__V1__GET_JWKS_REQUEST__INIT;
	rpc_call_opts opts = {.timeout_ms = timeout_ms ? timeout_ms : GW_JWKS_FETCH_TIMEOUT_MS,
	                      .max_retries = 1};
	const Panthera__Auth__V1__GetJwksResponse *resp = NULL;
	rpc_reply *reply = NULL;
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	rpc_status st =
	    ch == NULL ? RPC_STATUS_INVALID_ARGUMENT
	               : panthera_auth_v1_auth_service_get_jwks(ch, &req, &opts, &resp, &reply);
	const char *msg = ch == NULL ? "no channel" : rpc_reply_message(reply);
	if (st == RPC_STATUS_OK) {
		st = gw_keyset_from_jwks(resp, out, NULL);
		msg = st == RPC_STATUS_OK ? "" : "cannot build the key set";
	}
	if (errlen > 0) {
		size_t n = 0;
		for (; msg[n] != '\0' && n + 1 < errlen; n++)
			err[n] = msg[n];
		err[n] = '\0';
	}
	rpc_reply_free(reply);
	return st;
}

/* gw_jwks_fetch() as a gw_jwks_fetch_fn: `arg` is the rpc_channel. */
static inline rpc_status gw_jwks_fetch_rpc(void *arg, gw_keyset **out, char *err, size_t errlen)
{
	return gw_jwks_fetch((rpc_channel *)arg, 0, out, err, errlen);
}

typedef struct gw_jwks_refresher gw_jwks_refresher;

typedef struct gw_jwks_refresher_opts {
	/* Time between two periodic fetches, ms. 0: 300000 (5 minutes). */
	uint32_t period_ms;
	/* Least time between the starts of two fetches on demand, ms: a flood
	 * of tokens with random kids makes at most one fetch per interval.
	 * 0: 5000. */
	uint32_t min_interval_ms;
	/* Requests with a callback that may wait for the next fetch at once;
	 * more are refused (RESOURCE_EXHAUSTED, the fetch still scheduled).
	 * 0: 1024. */
	uint32_t max_waiters;
} gw_jwks_refresher_opts;

/*
 * Completion of a refresh request: called once, on the refresher's thread
 * (never an event loop's: hand it back to the loop), with the status of the
 * first fetch that started after the request (OK when a key set was
 * installed, changed or not), or CANCELLED when the refresher stopped
 * first. The refresher's stats count that fetch already. Must not call
 * gw_jwks_refresher_stop().
 */
typedef void (*gw_jwks_done_fn)(void *arg, rpc_status st);

/*
 * Start the refresher's thread for `auth` with `fetch` (and its arg; both
 * must outlive the refresher). The first fetch runs at once when auth has
 * no key set yet, else after period_ms. A fetch that fails is retried after
 * min_interval_ms, doubling up to a minute (never past period_ms); a fetch
 * whose JWKS has no usable key installs nothing (the previous set stays).
 * `opts` may be NULL. INVALID_ARGUMENT for a NULL out, auth or fetch;
 * RESOURCE_EXHAUSTED when memory or a thread cannot be had. On error *out
 * is NULL.
 */
rpc_status gw_jwks_refresher_start(gw_jwks_refresher **out, gw_auth *auth, gw_jwks_fetch_fn fetch,
                                   void *fetch_arg, const gw_jwks_refresher_opts *opts);

/*
 * Ask for a fetch soon (an unknown kid was seen). Never blocks: the fetch
 * starts on the refresher's thread once min_interval_ms have passed since
 * the previous one started (requests in between share that one fetch).
 * `done` (may be NULL) is called once, as gw_jwks_done_fn says, when this
 * returns OK; never on any other return:
 *   OK                  scheduled;
 *   RESOURCE_EXHAUSTED  max_waiters callbacks wait already: the fetch is
 *                       scheduled all the same, `done` will not be called;
 *   UNAVAILABLE         the refresher is stopping;
 *   INVALID_ARGUMENT    r is NULL.
 */
rpc_status gw_jwks_refresher_request(gw_jwks_refresher *r, gw_jwks_done_fn done, void *arg);

typedef struct gw_jwks_refresher_stats {
	uint64_t fetches;       /* fetches started */
	uint64_t failures;      /* fetches that installed nothing */
	int64_t last_ok;        /* Unix seconds of the last fetch that installed a set; 0: none */
	rpc_status last_status; /* of the last fetch finished (OK before any) */
} gw_jwks_refresher_stats;

void gw_jwks_refresher_get_stats(gw_jwks_refresher *r, gw_jwks_refresher_stats *out);

/*
 * Stop the thread (waiting for a fetch in progress, at most its deadline),
 * call every waiting `done` with CANCELLED, and free the refresher. Not
 * from a done callback. NULL is harmless.
 */
void gw_jwks_refresher_stop(gw_jwks_refresher *r);

#endif /* PANTHERA_GW_AUTH_H */
