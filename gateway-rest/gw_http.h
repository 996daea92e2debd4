/*
 * gw_http.h - the REST gateway's checks of a request head, its query-string
 * parser, and the percent-decoding both it and the router use.
 *
 * Everything here is a pure function over bytes the caller holds: no h2o,
 * no allocation, no global state. The HTTP server calls gw_http_check_head()
 * once the head of a request is parsed and before it reads the body; the
 * router (gw_router.h) decodes paths with gw_pct_decode(); the transcoder
 * gets (key, value) pairs from gw_query_parse(). docs/gateway/routing.md
 * says why each rule is what it is.
 *
 * Errors: a function that can refuse a request returns 0 when it accepts it,
 * or the HTTP status it refuses it with, and fills a gw_http_result: the
 * status again, the canonical code and ErrorInfo reason of the AIP-193 error
 * body, and a message fit for that body (it never echoes more than a short,
 * sanitized excerpt of the request).
 *
 * Thread-safety: every function may be called from any thread at any time;
 * none keeps state between calls.
 */
#ifndef PANTHERA_GW_HTTP_H
#define PANTHERA_GW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of gw_http_result.message, its NUL included. */
#define GW_HTTP_MESSAGE_MAX 160

/*
 * Why a request is refused. Filled by every function below that returns a
 * non-zero status; on success `status` is 0, `code` RPC_STATUS_OK, `reason`
 * NULL and `message` empty.
 */
typedef struct gw_http_result {
	/* The HTTP status to answer: 400, 404, 405, 413, 414, 415, 431, 500 or
	 * 501; the same value the function returned. */
	int status;
	/* The canonical code the error body names as "status": 400 and 415
	 * INVALID_ARGUMENT, 404 NOT_FOUND, 405 and 501 UNIMPLEMENTED, 413, 414
	 * and 431 RESOURCE_EXHAUSTED, 500 INTERNAL. */
	rpc_status code;
	/* The ErrorInfo reason, a static string such as "ROUTE_NOT_FOUND"
	 * (every one is listed in docs/gateway/routing.md). */
	const char *reason;
	/* One English sentence without a trailing period, NUL-terminated,
	 * valid UTF-8 without control characters. */
	char message[GW_HTTP_MESSAGE_MAX];
} gw_http_result;

/* ---- percent-decoding ------------------------------------------------------ */

/* Flags of gw_pct_decode(). */
enum {
	/* '+' decodes to a space (application/x-www-form-urlencoded). */
	GW_PCT_PLUS_SPACE = 1u << 0,
	/* "%2F" and "%2f" stay as they are, three bytes (a path variable over
	 * several segments, as google.api.http specifies). */
	GW_PCT_KEEP_SLASH = 1u << 1,
	/* A decoded control character (U+0001..U+001F, U+007F) is an error;
	 * a decoded NUL always is. */
	GW_PCT_NO_CONTROLS = 1u << 2,
};

typedef enum gw_pct_error {
	GW_PCT_OK = 0,
	GW_PCT_BAD_ESCAPE, /* '%' not followed by two hexadecimal digits */
	GW_PCT_BAD_CHAR,   /* a raw control character, space or '#' */
	GW_PCT_NUL,        /* decodes to NUL */
	GW_PCT_CONTROL,    /* decodes to a control character (GW_PCT_NO_CONTROLS) */
	GW_PCT_BAD_UTF8,   /* the decoded bytes are not UTF-8 */
} gw_pct_error;

/*
 * Percent-decode in[0..len) into out and check the result: every escape
 * well formed, no raw control character, space or '#', no decoded NUL,
 * and the decoded bytes valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). Raw bytes >= 0x80 are accepted as
 * part of the UTF-8 text.
 *
 * out:     at least `len` bytes, or NULL to validate only. Not
 *          NUL-terminated. Its contents are unspecified on error.
 * out_len: OUT, the decoded length (also when out is NULL); unchanged on
 *          error. May be NULL.
 * Returns GW_PCT_OK or the first error met.
 */
gw_pct_error gw_pct_decode(const char *in, size_t len, unsigned flags, char *out, size_t *out_len);

/* ---- query strings ---------------------------------------------------------- */

#define GW_QUERY_MAX_PARAMS 64u   /* pairs a query string may hold */
#define GW_QUERY_MAX_BYTES  8192u /* bytes of a query string, before decoding */

/* One key=value pair, decoded; both NUL-terminated. */
typedef struct gw_query_param {
	const char *key; /* never empty */
	size_t key_len;
	const char *value; /* "" for "key" and "key=" */
	size_t value_len;
} gw_query_param;

/*
 * Split a query string (the bytes after '?', without it) into its pairs in
 * order, and percent-decode each key and value with '+' as a space
 * (application/x-www-form-urlencoded). Empty pieces ("a=1&&b=2", a leading
 * or trailing '&') are skipped; a key without '=' has the value "". A key
 * may repeat: each occurrence is a pair (repeated fields).
 *
 * query:      may be NULL when len is 0.
 * buf:        where the decoded keys and values go; buf_cap must be at
 *             least len + 1 (decoding never needs more). The params point
 *             into it, so it must outlive them.
 * params:     room for max_params pairs (GW_QUERY_MAX_PARAMS is the usual
 *             bound).
 * n_params:   OUT, the number of pairs; 0 on error.
 * res:        OUT, why the query was refused; may not be NULL.
 * Returns 0, or: 414 (longer than GW_QUERY_MAX_BYTES), 400 (more than
 * max_params pairs, an empty key, a bad escape, a decoded NUL, invalid
 * UTF-8, a raw control character), 500 (buf_cap too small: a bug of the
 * caller).
 */
int gw_query_parse(const char *query, size_t len, char *buf, size_t buf_cap, gw_query_param *params,
                   size_t max_params, size_t *n_params, gw_http_result *res);

/* ---- request-head checks ---------------------------------------------------- */

#define GW_HTTP_DEFAULT_MAX_REQUEST_LINE 8192u
#define GW_HTTP_DEFAULT_MAX_HEADERS      100u
#define GW_HTTP_DEFAULT_MAX_HEADER_BYTES 32768u
#define GW_HTTP_DEFAULT_MAX_BODY         1048576u

/* The limits gw_http_check_head() enforces. */
typedef struct gw_http_limits {
	/* Bytes of the method, one space and the request target (the request
	 * line without its version; HTTP/2's :method and :path alike). */
	size_t max_request_line;
	/* Header fields in the request. */
	size_t max_headers;
	/* Sum over the header fields of name + value + 4 (": " and CRLF, as
	 * on the wire in HTTP/1.1). */
	size_t max_header_bytes;
	/* Bytes of the body a request may announce or send. */
	uint64_t max_body;
} gw_http_limits;

/* The defaults above. */
gw_http_limits gw_http_limits_default(void);

/* A header field as the server received it; names in any case. */
typedef struct gw_http_header {
	const char *name;
	size_t name_len;
	const char *value; /* without surrounding whitespace, or with it: both work */
	size_t value_len;
} gw_http_header;

/* What gw_http_check_head() learnt about the body. */
typedef struct gw_http_body_info {
	/* 1 when the request has a body: Content-Length above 0, or chunked. */
	int has_body;
	/* 1 for Transfer-Encoding: chunked. The length is then unknown: the
	 * server must stop reading at limits->max_body and answer 413. */
	int chunked;
	/* The Content-Length, when one was sent; 0 otherwise. */
	uint64_t content_length;
} gw_http_body_info;

/*
 * Check a request's head before its body is read. In this order:
 *   414 method + target longer than max_request_line;
 *   400 a method that is not an HTTP token;
 *   431 more than max_headers fields, or more than max_header_bytes;
 *   400 a header name that is not a token, a value with NUL, CR or LF;
 *   400 Content-Length not a plain decimal (digits only, surrounding
 *       spaces allowed), two Content-Length fields of different values,
 *       Content-Length together with Transfer-Encoding (request
 *       smuggling), more than one Transfer-Encoding or Host field,
 *       more than one Content-Type field when there is a body;
 *   501 a Transfer-Encoding other than "chunked";
 *   413 a Content-Length above max_body;
 *   415 a body without Content-Type application/json (parameters: only
 *       charset=utf-8, any case, optionally quoted).
 *
 * limits:  NULL for gw_http_limits_default().
 * method, target: as received (the target with its query string).
 * headers: n_headers fields; may be NULL when n_headers is 0.
 * body:    OUT, filled when the function returns 0; may be NULL.
 * res:     OUT, may not be NULL.
 * Returns 0 or the HTTP status.
 */
int gw_http_check_head(const gw_http_limits *limits, const char *method, size_t method_len,
                       const char *target, size_t target_len, const gw_http_header *headers,
                       size_t n_headers, gw_http_body_info *body, gw_http_result *res);

/*
 * 1 when a Content-Type value is application/json with no parameter but
 * an optional charset=utf-8 (case-insensitive; quoted or not), else 0.
 */
int gw_http_content_type_is_json(const char *value, size_t len);

/*
 * Parse a Content-Length value: optional spaces or tabs, one or more ASCII
 * digits, optional spaces or tabs. Returns 0 and sets *out (saturated at
 * UINT64_MAX when the number is larger), or -1 leaving *out alone.
 */
int gw_http_parse_content_length(const char *value, size_t len, uint64_t *out);

/*
 * Fill res with `status`, its canonical code (see gw_http_result), `reason`
 * and the printf-style message (truncated to fit). Returns `status`, so
 * that a check can end with `return gw_http_fail(res, 400, ...)`.
 */
int gw_http_fail(gw_http_result *res, int status, const char *reason, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Set res to success: status 0, RPC_STATUS_OK, no reason, empty message. */
void gw_http_ok(gw_http_result *res);

/*
 * Append to res->message at most `max` bytes of s[0..n) between double
 * quotes, cut at a UTF-8 boundary, control characters, '"' and '\' shown
 * as '?', and "..." when cut: how a message names a key the client sent.
 * s must be valid UTF-8.
 */
void gw_http_message_quote(gw_http_result *res, const char *s, size_t n, size_t max);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_HTTP_H */
