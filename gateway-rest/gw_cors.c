/*
 * gw_cors.c - the CORS policy: parsing and normalising origins, the
 * preflight answer and the headers of actual responses; see gw_cors.h.
 *
 * The configured origins are kept normalised, sorted, in one allocation:
 * a request's Origin is normalised into a stack buffer and looked up by
 * bisection. Every constant header value is written once, at build time.
 */
#include "gw_cors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_clientip.h"

#define MAX_AGE_LIMIT 86400u

/* The request headers a preflight may ask for (compared ignoring case),
 * and the value of Access-Control-Allow-Headers that lists them. */
static const char *const allowed_request_headers[] = {
    "authorization", "content-type",  "idempotency-key",
    "x-request-id",  "if-none-match", "traceparent",
};
#define N_ALLOWED_REQUEST_HEADERS \
	(sizeof(allowed_request_headers) / sizeof(allowed_request_headers[0]))
static const char allow_headers_value[] =
    "Authorization, Content-Type, Idempotency-Key, X-Request-Id, If-None-Match, traceparent";

/* The response headers a script may read beyond the CORS-safelisted ones. */
static const char expose_headers_value[] = "X-Request-Id, ETag, RateLimit-Limit, "
                                           "RateLimit-Remaining, RateLimit-Reset, "
                                           "RateLimit-Policy, Retry-After";

typedef enum cors_mode { CORS_OFF = 0, CORS_ANY, CORS_LIST } cors_mode;

struct gw_cors {
	cors_mode mode;
	int credentials; /* send Allow-Credentials: a list, and not no_credentials */
	char max_age[12];
	size_t max_age_len;
	size_t n_origins;
	const char **origins; /* sorted (strcmp), normalised, distinct */
	char *text;           /* the strings origins point into */
};

/* ---- origins -------------------------------------------------------------- */

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_ows((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_ows((*s)[*len - 1]))
		(*len)--;
}

/* An IPv6 address as the URL standard serialises it: lower-case hex
 * pieces without leading zeros, the first longest run of two or more zero
 * pieces as "::", never a dotted IPv4 tail. Returns the length written
 * (at most 39 bytes; out needs 40). */
static size_t ipv6_serialize(const uint8_t b[16], char *out)
{
	unsigned piece[8];
	for (int i = 0; i < 8; i++)
		piece[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
	int best = -1, best_len = 1;
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && piece[j] == 0)
			j++;
		if (j - i > best_len) {
			best = i;
			best_len = j - i;
		}
		i = j > i ? j : i + 1;
	}
	size_t o = 0;
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			out[o++] = ':';
			if (i == 0)
				out[o++] = ':';
			i += best_len - 1;
			continue;
		}
		o += (size_t)snprintf(out + o, 40 - o, "%x", piece[i]);
		if (i < 7)
			out[o++] = ':';
	}
	out[o] = '\0';
	return o;
}

int gw_cors_origin_normalize(const char *s, size_t len, char *norm, size_t cap)
{
	if (s == NULL || norm == NULL || len == 0 || len > GW_CORS_ORIGIN_MAX)
		return -1;
	size_t i = 0, o = 0;
#define PUT(ch)                    \
	do {                       \
		if (o + 1 >= cap)  \
			return -1; \
		norm[o++] = (ch);  \
	} while (0)

	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	if (!is_alpha(s[0]))
		return -1;
	while (i < len &&
	       (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
		PUT(lower(s[i]));
		i++;
	}
	size_t scheme_len = i;
	if (len - i < 3 || memcmp(s + i, "://", 3) != 0)
		return -1;
	for (int k = 0; k < 3; k++)
		PUT(s[i + (size_t)k]);
	i += 3;

	if (i < len && s[i] == '[') {
		const char *close = memchr(s + i, ']', len - i);
		if (close == NULL)
			return -1;
		size_t in = (size_t)(close - (s + i)) - 1;
		gw_ip ip;
		if (memchr(s + i + 1, ':', in) == NULL || gw_ip_parse(s + i + 1, in, &ip) != 0)
			return -1;
		char text[40];
		size_t n = ipv6_serialize(ip.b, text);
		PUT('[');
		for (size_t k = 0; k < n; k++)
			PUT(text[k]);
		PUT(']');
		i += in + 2;
	} else {
		/* A DNS name or an IPv4 address: labels of letters, digits and
		 * '-', separated by single dots. */
		size_t start = i;
		while (i < len &&
		       (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '.')) {
			if (s[i] == '.' && (i == start || s[i - 1] == '.'))
				return -1;
			PUT(lower(s[i]));
			i++;
		}
		if (i == start || s[i - 1] == '.' || i - start > 253)
			return -1;
	}

	if (i < len && s[i] == ':') {
		i++;
		size_t start = i;
		unsigned port = 0;
		while (i < len && i - start < 5 && is_digit(s[i]))
			port = port * 10 + (unsigned)(s[i++] - '0');
		if (i == start || s[start] == '0' || port > 65535)
			return -1;
		int is_default = (scheme_len == 4 && memcmp(norm, "http", 4) == 0 && port == 80) ||
		                 (scheme_len == 5 && memcmp(norm, "https", 5) == 0 && port == 443);
		if (!is_default) {
			PUT(':');
			for (size_t k = start; k < i; k++)
				PUT(s[k]);
		}
	}
	if (i != len)
		return -1;
	norm[o] = '\0';
#undef PUT
	return (int)o;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_null_origin(const char *s, size_t len)
{
	return len == 4 && memcmp(s, "null", 4) == 0;
}

static void set_err(char *err, size_t err_cap, const char *what, const char *s, size_t len)
{
	if (err == NULL || err_cap == 0)
		return;
	char shown[64];
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < sizeof(shown); i++)
		shown[n++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	shown[n] = '\0';
	snprintf(err, err_cap, "PANTHERA_CORS_ORIGINS: \"%s\" %s", shown, what);
}

rpc_status gw_cors_new(const gw_cors_opts *opts, gw_cors **out, char *err, size_t err_cap)
{
	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (out == NULL || opts == NULL) {
		if (err != NULL && err_cap > 0)
			snprintf(err, err_cap, "CORS: NULL argument");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	*out = NULL;
	if (opts->max_age_s > MAX_AGE_LIMIT) {
		if (err != NULL && err_cap > 0)
			snprintf(err, err_cap, "CORS: max age over %u s", MAX_AGE_LIMIT);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	const char *spec = opts->origins != NULL ? opts->origins : "";
	size_t spec_len = strlen(spec);
	const char *all = spec;
	size_t all_len = spec_len;
	trim(&all, &all_len);

	gw_cors *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	c->max_age_len =
	    (size_t)snprintf(c->max_age, sizeof(c->max_age), "%u",
	                     opts->max_age_s ? opts->max_age_s : GW_CORS_DEFAULT_MAX_AGE);
	if (all_len == 0) {
		c->mode = CORS_OFF;
		*out = c;
		return RPC_STATUS_OK;
	}
	if (all_len == 1 && all[0] == '*') {
		c->mode = CORS_ANY;
		*out = c;
		return RPC_STATUS_OK;
	}

	size_t entries = 1;
	for (size_t i = 0; i < spec_len; i++)
		entries += spec[i] == ',';
	if (entries > GW_CORS_MAX_ORIGINS) {
		if (err != NULL && err_cap > 0)
			snprintf(err, err_cap, "PANTHERA_CORS_ORIGINS: more than %u origins",
			         GW_CORS_MAX_ORIGINS);
		free(c);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	c->mode = CORS_LIST;
	c->credentials = !opts->no_credentials;
	c->origins = calloc(entries, sizeof(*c->origins));
	c->text = malloc(entries * (GW_CORS_ORIGIN_MAX + 1));
	if (c->origins == NULL || c->text == NULL) {
		gw_cors_free(c);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	for (size_t at = 0; at <= spec_len;) {
		const char *comma = memchr(spec + at, ',', spec_len - at);
		size_t end = comma != NULL ? (size_t)(comma - spec) : spec_len;
		const char *e = spec + at;
		size_t elen = end - at;
		trim(&e, &elen);
		const char *why = NULL;
		char *norm = c->text + c->n_origins * (GW_CORS_ORIGIN_MAX + 1);
		if (elen == 0)
			why = "is an empty entry";
		else if (elen == 1 && e[0] == '*')
			why = "cannot be listed with other origins";
		else if (is_null_origin(e, elen))
			why = "is not allowed: any sandboxed frame or local file sends it";
		else if (gw_cors_origin_normalize(e, elen, norm, GW_CORS_ORIGIN_MAX + 1) < 0)
			why = (elen > 1 && e[elen - 1] == '/' &&
			       gw_cors_origin_normalize(e, elen - 1, norm,
			                                GW_CORS_ORIGIN_MAX + 1) >= 0)
			          ? "has a trailing '/': an origin has no path"
			          : "is not an origin (scheme://host[:port], nothing after)";
		if (why != NULL) {
			set_err(err, err_cap, why, e, elen);
			gw_cors_free(c);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		c->origins[c->n_origins++] = norm;
		at = end + 1;
	}
	qsort(c->origins, c->n_origins, sizeof(*c->origins), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < c->n_origins; i++)
		if (w == 0 || strcmp(c->origins[w - 1], c->origins[i]) != 0)
			c->origins[w++] = c->origins[i];
	c->n_origins = w;
	*out = c;
	return RPC_STATUS_OK;
}

void gw_cors_free(gw_cors *c)
{
	if (c == NULL)
		return;
	free(c->origins);
	free(c->text);
	free(c);
}

int gw_cors_enabled(const gw_cors *c)
{
	return c != NULL && c->mode != CORS_OFF;
}

int gw_cors_origin_allowed(const gw_cors *c, const char *origin, size_t len)
{
	if (c == NULL || origin == NULL || c->mode == CORS_OFF)
		return 0;
	trim(&origin, &len);
	if (c->mode == CORS_ANY) {
		char norm[GW_CORS_ORIGIN_MAX + 1];
		return is_null_origin(origin, len) ||
		       gw_cors_origin_normalize(origin, len, norm, sizeof(norm)) >= 0;
	}
	char norm[GW_CORS_ORIGIN_MAX + 1];
	if (gw_cors_origin_normalize(origin, len, norm, sizeof(norm)) < 0)
		return 0;
	const char *key = norm;
	return bsearch(&key, c->origins, c->n_origins, sizeof(*c->origins), cmp_str) != NULL;
}

/* ---- headers ----------------------------------------------------------------- */

static void put(gw_http_header *out, size_t *n, const char *name, const char *value,
                size_t value_len)
{
	out[*n].name = name;
	out[*n].name_len = strlen(name);
	out[*n].value = value;
	out[*n].value_len = value_len;
	(*n)++;
}

/* Allow-Origin (and Allow-Credentials) for an allowed, trimmed Origin. */
static void put_allow_origin(const gw_cors *c, const char *origin, size_t len, gw_http_header *out,
                             size_t *n)
{
	if (c->mode == CORS_ANY) {
		put(out, n, "access-control-allow-origin", "*", 1);
		return;
	}
	put(out, n, "access-control-allow-origin", origin, len);
	if (c->credentials)
		put(out, n, "access-control-allow-credentials", "true", 4);
}

size_t gw_cors_response_headers(const gw_cors *c, const char *origin, size_t len,
                                gw_http_header *out)
{
	size_t n = 0;
	if (c == NULL || out == NULL || c->mode == CORS_OFF)
		return 0;
	if (c->mode == CORS_ANY) {
		put_allow_origin(c, NULL, 0, out, &n);
	} else {
		put(out, &n, "vary", "Origin", 6);
		if (origin == NULL || !gw_cors_origin_allowed(c, origin, len))
			return n;
		trim(&origin, &len);
		put_allow_origin(c, origin, len, out, &n);
	}
	put(out, &n, "access-control-expose-headers", expose_headers_value,
	    sizeof(expose_headers_value) - 1);
	return n;
}

/* ---- preflight ------------------------------------------------------------------ */

static int is_tchar(char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_tchar(s[i]))
			return 0;
	return 1;
}

static int refuse(gw_http_result *res, const char *reason, const char *what, const char *quoted,
                  size_t quoted_len, const char *tail)
{
	gw_http_fail(res, 403, reason, "CORS preflight refused: %s", what);
	res->code = RPC_STATUS_PERMISSION_DENIED;
	if (quoted != NULL) {
		gw_http_message_quote(res, quoted, quoted_len, 40);
		size_t at = strlen(res->message);
		snprintf(res->message + at, sizeof(res->message) - at, "%s", tail);
	}
	return 403;
}

/* 0 when every name of Access-Control-Request-Headers is allowed, else
 * 403 with res filled. */
static int check_request_headers(const char *s, size_t len, gw_http_result *res)
{
	if (s == NULL || len == 0)
		return 0;
	if (len > GW_CORS_REQUEST_HEADERS_MAX)
		return refuse(res, "CORS_HEADER_NOT_ALLOWED",
		              "Access-Control-Request-Headers is too long", NULL, 0, "");
	for (size_t at = 0; at <= len;) {
		const char *comma = memchr(s + at, ',', len - at);
		size_t end = comma != NULL ? (size_t)(comma - s) : len;
		const char *e = s + at;
		size_t elen = end - at;
		trim(&e, &elen);
		at = end + 1;
		if (elen == 0)
			continue; /* RFC 9110 lists may hold empty elements */
		if (!is_token(e, elen))
			return refuse(res, "CORS_HEADER_NOT_ALLOWED",
			              "Access-Control-Request-Headers is malformed", NULL, 0, "");
		size_t k = 0;
		while (k < N_ALLOWED_REQUEST_HEADERS &&
		       !(strlen(allowed_request_headers[k]) == elen &&
		         strncasecmp(allowed_request_headers[k], e, elen) == 0))
			k++;
		if (k == N_ALLOWED_REQUEST_HEADERS)
			return refuse(res, "CORS_HEADER_NOT_ALLOWED", "request header ", e, elen,
			              " is not allowed");
	}
	return 0;
}

int gw_cors_preflight(const gw_cors *c, const gw_router *r, uint32_t allowed,
                      const gw_cors_preflight_req *req, gw_cors_buf *buf, gw_http_header *out,
                      size_t *n_out, gw_http_result *res)
{
	if (n_out != NULL)
		*n_out = 0;
	if (c == NULL || r == NULL || req == NULL || buf == NULL || out == NULL || n_out == NULL ||
	    res == NULL) {
		if (res != NULL)
			gw_http_fail(res, 500, "INTERNAL", "CORS preflight: NULL argument");
		return 500;
	}
	size_t n = 0;
	if (c->mode == CORS_LIST)
		put(out, &n, "vary", "Origin", 6);
	*n_out = n;

	const char *origin = req->origin;
	size_t origin_len = origin != NULL ? req->origin_len : 0;
	trim(&origin, &origin_len);
	if (origin == NULL || !gw_cors_origin_allowed(c, origin, origin_len)) {
		return refuse(res, "CORS_ORIGIN_NOT_ALLOWED",
		              c->mode == CORS_OFF ? "CORS is not enabled on this server"
		                                  : "the origin is not allowed",
		              NULL, 0, "");
	}

	const char *method = req->method;
	size_t method_len = method != NULL ? req->method_len : 0;
	trim(&method, &method_len);
	if (method == NULL || !is_token(method, method_len) || method_len > GW_ROUTER_MAX_LITERAL)
		return refuse(res, "CORS_METHOD_NOT_ALLOWED",
		              "Access-Control-Request-Method is not a method", NULL, 0, "");
	int found = 0;
	for (unsigned i = 0; i < 32 && !found; i++) {
		if (!(allowed & (UINT32_C(1) << i)))
			continue;
		const char *name = gw_router_method_name(r, i);
		found = name != NULL && strlen(name) == method_len &&
		        memcmp(name, method, method_len) == 0;
	}
	if (!found)
		return refuse(res, "CORS_METHOD_NOT_ALLOWED", "method ", method, method_len,
		              " is not allowed on this path");

	if (check_request_headers(req->headers, req->headers != NULL ? req->headers_len : 0, res) !=
	    0)
		return 403;

	n = 0;
	put_allow_origin(c, origin, origin_len, out, &n);
	size_t mlen =
	    gw_router_format_allow(r, allowed, buf->allow_methods, sizeof(buf->allow_methods));
	if (mlen >= sizeof(buf->allow_methods))
		mlen = sizeof(buf->allow_methods) - 1;
	put(out, &n, "access-control-allow-methods", buf->allow_methods, mlen);
	put(out, &n, "access-control-allow-headers", allow_headers_value,
	    sizeof(allow_headers_value) - 1);
	put(out, &n, "access-control-max-age", c->max_age, c->max_age_len);
	put(out, &n, "vary", "Origin", 6);
	*n_out = n;
	gw_http_ok(res);
	return 204;
}
