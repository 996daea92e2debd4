/*
 * gw_cors.h - the REST gateway's CORS (the Fetch standard's CORS protocol):
 * which origins may call the API from a browser, the answer to a preflight
 * OPTIONS request, and the headers an actual response carries. Design
 * notes and every choice: docs/gateway/limits.md.
 *
 * Configuration (PANTHERA_CORS_ORIGINS), read once at start-up:
 *   ""              CORS off: no response carries CORS headers and every
 *                   preflight is refused;
 *   "*"             any origin, without credentials: Allow-Origin is "*"
 *                   on every response, Allow-Credentials never sent
 *                   (Fetch forbids "*" with credentials, and browsers
 *                   enforce it);
 *   "https://a.example, capacitor://localhost, ..."
 *                   exactly these origins: a request's Origin, when it is
 *                   one of them, is echoed as Allow-Origin (never "*") with
 *                   Allow-Credentials: true, and every response carries
 *                   Vary: Origin so that caches keep the answers apart.
 *
 * Origins are parsed strictly: scheme "://" host [":" port], nothing after
 * (no path, not even "/"), host a DNS name, an IPv4 address or a bracketed
 * IPv6 one, ASCII only (browsers send IDNs as punycode). Scheme and host
 * compare case-insensitively, the port exactly, and the default port of
 * http (80) and https (443) is the same as none (browsers never send it).
 * "null" (sandboxed frames, file: pages) is allowed only by "*".
 *
 * A preflight is an OPTIONS request with Origin and
 * Access-Control-Request-Method. The caller routes its path first
 * (gw_router_allowed(): a 400 or 404 is answered as for any request), then
 * asks gw_cors_preflight(): 204 with the Access-Control-Allow-* headers,
 * or 403 (AIP-193 body from the gw_http_result, PERMISSION_DENIED, reasons
 * CORS_ORIGIN_NOT_ALLOWED, CORS_METHOD_NOT_ALLOWED,
 * CORS_HEADER_NOT_ALLOWED) without any Access-Control-* header, which is
 * the refusal the Fetch standard's browsers act on; the body tells a
 * developer why.
 *
 * Memory: a gw_cors is built once and immutable; the functions per request
 * allocate nothing: header values point into the gw_cors, the caller's
 * buffer, or the request's own Origin value.
 *
 * Thread-safety: gw_cors_new() and gw_cors_free() are the caller's to
 * order; every other function only reads and may run on any number of
 * threads at once.
 */
#ifndef PANTHERA_GW_CORS_H
#define PANTHERA_GW_CORS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_http.h"
#include "gw_router.h"
#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of an Origin value, and of a normalised one. */
#define GW_CORS_ORIGIN_MAX 320u

/* Bytes of an Access-Control-Request-Headers value. */
#define GW_CORS_REQUEST_HEADERS_MAX 1024u

/* Most configured origins. */
#define GW_CORS_MAX_ORIGINS 256u

/* Most header fields either function below writes. */
#define GW_CORS_MAX_HEADERS 6

/* Default Access-Control-Max-Age, seconds (Chromium caps it at 7200). */
#define GW_CORS_DEFAULT_MAX_AGE 600u

typedef struct gw_cors_opts {
	/* PANTHERA_CORS_ORIGINS as above, NUL-terminated; NULL is "". */
	const char *origins;
	/* Access-Control-Max-Age of a preflight answer: 0 means
	 * GW_CORS_DEFAULT_MAX_AGE; at most 86400. */
	uint32_t max_age_s;
	/* 1: never send Access-Control-Allow-Credentials, even for a list of
	 * origins. The API's tokens travel in Authorization, which is not a
	 * credential in the Fetch sense; credentials matter only to cookies
	 * and TLS client certificates. */
	int no_credentials;
} gw_cors_opts;

typedef struct gw_cors gw_cors;

/*
 * Build the CORS policy.
 * out: OUT, the policy, to free with gw_cors_free(); NULL on error.
 * err: OUT, on error a sentence naming the origin at fault; err_cap bytes,
 *      NUL-terminated; may be NULL when err_cap is 0.
 * Returns RPC_STATUS_OK, INVALID_ARGUMENT (a NULL opts or out, an origin
 * that does not parse, one with a path or a trailing '/', "null", "*"
 * with other origins, an empty entry, more than GW_CORS_MAX_ORIGINS, a
 * max_age_s over 86400) or RESOURCE_EXHAUSTED.
 */
rpc_status gw_cors_new(const gw_cors_opts *opts, gw_cors **out, char *err, size_t err_cap);

/* Free a policy no thread uses any more. NULL is harmless. */
void gw_cors_free(gw_cors *c);

/* 1 when some origin is allowed ("*" or a list), 0 when CORS is off. */
int gw_cors_enabled(const gw_cors *c);

/*
 * Parse and normalise an origin s[0..len) (see the top of this file):
 * lower-case scheme and host, no default port. "null" is not an origin
 * here (-1).
 * norm: OUT, the normal form, NUL-terminated; cap of GW_CORS_ORIGIN_MAX + 1
 *       is always enough; unspecified on error.
 * Returns the normal form's length, or -1 when s is not an origin (or
 * does not fit cap).
 */
int gw_cors_origin_normalize(const char *s, size_t len, char *norm, size_t cap);

/*
 * 1 when the Origin value origin[0..len) is allowed, else 0 (CORS off,
 * no such origin, a value that is not an origin, NULL).
 */
int gw_cors_origin_allowed(const gw_cors *c, const char *origin, size_t len);

/* Room for the header values a preflight answer computes. */
typedef struct gw_cors_buf {
	char allow_methods[GW_ROUTER_ALLOW_MAX];
} gw_cors_buf;

/* A preflight request's CORS headers, as received (surrounding spaces
 * allowed). headers may be NULL when the request had none. */
typedef struct gw_cors_preflight_req {
	const char *origin; /* Origin */
	size_t origin_len;
	const char *method; /* Access-Control-Request-Method */
	size_t method_len;
	const char *headers; /* Access-Control-Request-Headers */
	size_t headers_len;
} gw_cors_preflight_req;

/*
 * Answer a preflight of a path whose routes allow the methods `allowed`
 * (the mask of gw_router_allowed() for router r).
 *
 * 204: out gets access-control-allow-origin (the Origin as received, or
 *      "*"), access-control-allow-credentials "true" (a list, unless
 *      no_credentials), access-control-allow-methods (the path's methods,
 *      as gw_router_format_allow() writes them), access-control-allow-
 *      headers (Authorization, Content-Type, Idempotency-Key,
 *      X-Request-Id, If-None-Match, traceparent), access-control-max-age,
 *      and vary "Origin".
 * 403: res says why: an origin not allowed (or not an origin), a method
 *      that is not an HTTP token or not among `allowed`, a requested
 *      header not in the list above (or a malformed list, or one over
 *      GW_CORS_REQUEST_HEADERS_MAX bytes). out gets vary "Origin" alone
 *      (for a list of origins) or nothing.
 *
 * buf:    where computed values go; must live as long as out's values.
 * out:    room for GW_CORS_MAX_HEADERS fields; lower-case static names;
 *         values in c, buf, or req's strings.
 * n_out:  OUT, the number of fields in out.
 * res:    OUT, gw_http_ok() on 204.
 * Returns 204 or 403; 500 for a NULL argument (res filled when not NULL).
 */
int gw_cors_preflight(const gw_cors *c, const gw_router *r, uint32_t allowed,
                      const gw_cors_preflight_req *req, gw_cors_buf *buf, gw_http_header *out,
                      size_t *n_out, gw_http_result *res);

/*
 * The CORS headers of an actual (non-preflight) response, for a request
 * with Origin origin[0..len) (NULL, 0 when it had none). Add them to every
 * response, errors included, after any response cache (they depend on the
 * request, not the resource):
 *   "*":    access-control-allow-origin "*" and
 *           access-control-expose-headers, whatever the Origin;
 *   a list: vary "Origin" always; and when the Origin is allowed,
 *           access-control-allow-origin (echoed), -allow-credentials
 *           "true" (unless no_credentials), -expose-headers;
 *   off:    nothing.
 * Expose-Headers: X-Request-Id, ETag, RateLimit-Limit,
 * RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After.
 * out: room for GW_CORS_MAX_HEADERS fields.
 * Returns the number of fields written (0 for a NULL c or out).
 */
size_t gw_cors_response_headers(const gw_cors *c, const char *origin, size_t len,
                                gw_http_header *out);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_CORS_H */
