/*
 * gw_http.c - checks of a request head (limits, request smuggling, body size
 * and media type), percent-decoding with UTF-8 validation, and the result
 * type every refusal of the gateway's parsing layer is reported in.
 *
 * The rules follow RFC 9110/9112: a request with two different
 * Content-Length values, or with both Content-Length and Transfer-Encoding,
 * is refused instead of resolved, because a proxy in front of us may have
 * resolved it the other way (request smuggling); a body's size is checked
 * against the limit from its announced length, before a byte of it is read.
 */
#include "gw_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "panthera/text.h"

/* ---- UTF-8 ------------------------------------------------------------------ */

/*
 * Percent-decoding yields its bytes one at a time, so they are checked as
 * they come: the bytes of the sequence under way are kept, and each new one
 * is given with them to text.h's decoder, which refuses a bad byte as soon
 * as it is added (RFC 3629: no overlong forms, surrogates or code points
 * past U+10FFFF).
 */
typedef struct utf8_pending {
	char seq[4];
	size_t have; /* bytes of a sequence not yet complete */
} utf8_pending;

/* 1 when c may follow the pending bytes, else 0. */
static inline int utf8_step(utf8_pending *u, unsigned char c)
{
	if (u->have == 0 && c < 0x80)
		return 1;
	u->seq[u->have++] = (char)c;
	int k = text_utf8_seq_n(u->seq, u->have);
	if (k == 0)
		return 0;
	if (k > 0)
		u->have = 0; /* complete */
	return 1;
}

/* ---- results ---------------------------------------------------------------- */

static rpc_status code_of_http(int status)
{
	switch (status) {
	case 400:
	case 415:
		return RPC_STATUS_INVALID_ARGUMENT;
	case 404:
		return RPC_STATUS_NOT_FOUND;
	case 405:
	case 501:
		return RPC_STATUS_UNIMPLEMENTED;
	case 413:
	case 414:
	case 431:
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	default:
		return RPC_STATUS_INTERNAL;
	}
}

void gw_http_ok(gw_http_result *res)
{
	res->status = 0;
	res->code = RPC_STATUS_OK;
	res->reason = NULL;
	res->message[0] = '\0';
}

int gw_http_fail(gw_http_result *res, int status, const char *reason, const char *fmt, ...)
{
	res->status = status;
	res->code = code_of_http(status);
	res->reason = reason;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	if (n < 0)
		res->message[0] = '\0';
	return status;
}

void gw_http_message_quote(gw_http_result *res, const char *s, size_t n, size_t max)
{
	size_t at = strlen(res->message);
	/* Room for the quotes, "..." and the NUL in any case. */
	if (at + 6 > sizeof(res->message))
		return;
	size_t room = sizeof(res->message) - at - 6;
	if (max > room)
		max = room;
	char *out = res->message + at;
	size_t o = 0, i = 0;
	out[o++] = '"';
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		/* Copied only when it is a whole, valid sequence. */
		int seq = text_utf8_seq_n(s + i, n - i);
		size_t k = seq > 0 ? (size_t)seq : 1;
		if (o - 1 + k > max)
			break;
		if (k == 1) {
			int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
			out[o++] = plain ? (char)c : '?';
		} else {
			memcpy(out + o, s + i, k);
			o += k;
		}
		i += k;
	}
	out[o++] = '"';
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* ---- percent-decoding ------------------------------------------------------ */

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

gw_pct_error gw_pct_decode(const char *in, size_t len, unsigned flags, char *out, size_t *out_len)
{
	utf8_pending u = {{0}, 0};
	/* The common case first: printable ASCII that decodes to itself. */
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (c <= ' ' || c >= 0x7f || c == '%' || c == '#' || c == '+')
			break;
		i++;
	}
	if (out != NULL)
		memcpy(out, in, i);
	size_t o = i;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			if (len - i < 3)
				return GW_PCT_BAD_ESCAPE;
			int h = hex_digit((unsigned char)in[i + 1]);
			int l = hex_digit((unsigned char)in[i + 2]);
			if (h < 0 || l < 0)
				return GW_PCT_BAD_ESCAPE;
			c = (unsigned char)(h << 4 | l);
			if (c == '/' && (flags & GW_PCT_KEEP_SLASH)) {
				if (!utf8_step(&u, '/'))
					return GW_PCT_BAD_UTF8;
				if (out != NULL)
					memcpy(out + o, in + i, 3);
				o += 3;
				i += 2;
				continue;
			}
			i += 2;
			if (c == 0)
				return GW_PCT_NUL;
			if ((c < 0x20 || c == 0x7f) && (flags & GW_PCT_NO_CONTROLS))
				return GW_PCT_CONTROL;
		} else if (c < 0x20 || c == 0x7f || c == ' ' || c == '#') {
			return GW_PCT_BAD_CHAR;
		} else if (c == '+' && (flags & GW_PCT_PLUS_SPACE)) {
			c = ' ';
		}
		if (!utf8_step(&u, c))
			return GW_PCT_BAD_UTF8;
		if (out != NULL)
			out[o] = (char)c;
		o++;
	}
	if (u.have != 0)
		return GW_PCT_BAD_UTF8; /* a sequence cut short */
	if (out_len != NULL)
		*out_len = o;
	return GW_PCT_OK;
}

/* ---- request-head checks ---------------------------------------------------- */

gw_http_limits gw_http_limits_default(void)
{
	gw_http_limits l = {
	    .max_request_line = GW_HTTP_DEFAULT_MAX_REQUEST_LINE,
	    .max_headers = GW_HTTP_DEFAULT_MAX_HEADERS,
	    .max_header_bytes = GW_HTTP_DEFAULT_MAX_HEADER_BYTES,
	    .max_body = GW_HTTP_DEFAULT_MAX_BODY,
	};
	return l;
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* s[0..n) equals the lower-case ASCII `lit`, in any case. */
static int eq_nocase(const char *s, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	if (n != m)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim_ows(const char **s, size_t *n)
{
	while (*n > 0 && is_ows(**s))
		(*s)++, (*n)--;
	while (*n > 0 && is_ows((*s)[*n - 1]))
		(*n)--;
}

int gw_http_parse_content_length(const char *value, size_t len, uint64_t *out)
{
	const char *s = value;
	size_t n = len;
	if (s == NULL)
		return -1;
	trim_ows(&s, &n);
	if (n == 0)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		v = (v > (UINT64_MAX - d) / 10) ? UINT64_MAX : v * 10 + d;
	}
	*out = v;
	return 0;
}

int gw_http_content_type_is_json(const char *value, size_t len)
{
	const char *s = value;
	size_t n = len;
	if (s == NULL)
		return 0;
	trim_ows(&s, &n);
	size_t i = 0;
	while (i < n && s[i] != ';')
		i++;
	const char *type = s;
	size_t type_len = i;
	trim_ows(&type, &type_len);
	if (!eq_nocase(type, type_len, "application/json"))
		return 0;
	/* Parameters: ";" OWS name "=" (token / quoted-string) OWS; only
	 * charset=utf-8 is allowed. Empty ones ("application/json;") pass. */
	while (i < n) {
		i++; /* the ';' */
		while (i < n && is_ows(s[i]))
			i++;
		if (i == n || s[i] == ';')
			continue;
		size_t ns = i;
		while (i < n && is_tchar((unsigned char)s[i]))
			i++;
		const char *name = s + ns;
		size_t name_len = i - ns;
		if (name_len == 0 || i == n || s[i] != '=')
			return 0;
		i++;
		const char *val;
		size_t val_len;
		if (i < n && s[i] == '"') {
			size_t vs = ++i;
			while (i < n && s[i] != '"') {
				if (s[i] == '\\')
					return 0; /* no quoted-pair: no charset needs one */
				i++;
			}
			if (i == n)
				return 0;
			val = s + vs;
			val_len = i - vs;
			i++;
		} else {
			size_t vs = i;
			while (i < n && is_tchar((unsigned char)s[i]))
				i++;
			val = s + vs;
			val_len = i - vs;
		}
		while (i < n && is_ows(s[i]))
			i++;
		if (i < n && s[i] != ';')
			return 0;
		if (!eq_nocase(name, name_len, "charset") || !eq_nocase(val, val_len, "utf-8"))
			return 0;
	}
	return 1;
}

int gw_http_check_head(const gw_http_limits *limits, const char *method, size_t method_len,
                       const char *target, size_t target_len, const gw_http_header *headers,
                       size_t n_headers, gw_http_body_info *body, gw_http_result *res)
{
	gw_http_limits def = gw_http_limits_default();
	const gw_http_limits *lim = limits != NULL ? limits : &def;
	(void)target;

	gw_http_ok(res);
	if (method_len > lim->max_request_line || target_len > lim->max_request_line - method_len ||
	    target_len + method_len + 1 > lim->max_request_line)
		return gw_http_fail(res, 414, "URI_TOO_LONG", "request line longer than %zu bytes",
		                    lim->max_request_line);
	if (method == NULL || !is_token(method, method_len))
		return gw_http_fail(res, 400, "INVALID_REQUEST_HEAD",
		                    "the method is not an HTTP token");
	if (n_headers > lim->max_headers)
		return gw_http_fail(res, 431, "HEADERS_TOO_LARGE", "more than %zu header fields",
		                    lim->max_headers);
	size_t total = 0;
	for (size_t i = 0; i < n_headers; i++) {
		size_t left = lim->max_header_bytes - total;
		if (headers[i].name_len > left || headers[i].value_len > left ||
		    headers[i].name_len + headers[i].value_len + 4 > left)
			return gw_http_fail(res, 431, "HEADERS_TOO_LARGE",
			                    "header fields larger than %zu bytes",
			                    lim->max_header_bytes);
		total += headers[i].name_len + headers[i].value_len + 4;
	}

	int n_cl = 0, n_te = 0, n_ct = 0, n_host = 0;
	uint64_t cl = 0;
	const gw_http_header *te = NULL, *ct = NULL;
	for (size_t i = 0; i < n_headers; i++) {
		const gw_http_header *h = &headers[i];
		if (h->name == NULL || !is_token(h->name, h->name_len))
			return gw_http_fail(res, 400, "INVALID_REQUEST_HEAD",
			                    "a header name is not an HTTP token");
		if (h->value_len > 0 &&
		    (h->value == NULL || memchr(h->value, '\0', h->value_len) ||
		     memchr(h->value, '\r', h->value_len) || memchr(h->value, '\n', h->value_len)))
			return gw_http_fail(res, 400, "INVALID_REQUEST_HEAD",
			                    "a header value holds NUL, CR or LF");
		if (eq_nocase(h->name, h->name_len, "content-length")) {
			uint64_t v;
			if (gw_http_parse_content_length(h->value, h->value_len, &v) != 0)
				return gw_http_fail(res, 400, "INVALID_CONTENT_LENGTH",
				                    "Content-Length is not a decimal number");
			if (n_cl > 0 && v != cl)
				return gw_http_fail(res, 400, "INVALID_CONTENT_LENGTH",
				                    "Content-Length fields disagree");
			cl = v;
			n_cl++;
		} else if (eq_nocase(h->name, h->name_len, "transfer-encoding")) {
			te = h;
			n_te++;
		} else if (eq_nocase(h->name, h->name_len, "content-type")) {
			ct = h;
			n_ct++;
		} else if (eq_nocase(h->name, h->name_len, "host")) {
			n_host++;
		}
	}
	if (n_cl > 0 && n_te > 0)
		return gw_http_fail(
		    res, 400, "INVALID_CONTENT_LENGTH",
		    "a request may not carry both Content-Length and Transfer-Encoding");
	if (n_te > 1)
		return gw_http_fail(res, 400, "INVALID_REQUEST_HEAD",
		                    "more than one Transfer-Encoding field");
	if (n_host > 1)
		return gw_http_fail(res, 400, "INVALID_REQUEST_HEAD", "more than one Host field");
	if (te != NULL) {
		const char *v = te->value;
		size_t vn = te->value_len;
		trim_ows(&v, &vn);
		if (!eq_nocase(v, vn, "chunked"))
			return gw_http_fail(res, 501, "UNSUPPORTED_TRANSFER_ENCODING",
			                    "only the chunked Transfer-Encoding is supported");
	}
	if (cl > lim->max_body)
		return gw_http_fail(res, 413, "PAYLOAD_TOO_LARGE",
		                    "request body larger than %llu bytes",
		                    (unsigned long long)lim->max_body);
	int has_body = te != NULL || cl > 0;
	if (has_body) {
		if (n_ct > 1)
			return gw_http_fail(res, 400, "INVALID_REQUEST_HEAD",
			                    "more than one Content-Type field");
		if (ct == NULL || !gw_http_content_type_is_json(ct->value, ct->value_len))
			return gw_http_fail(res, 415, "UNSUPPORTED_MEDIA_TYPE",
			                    "the body must be application/json");
	}
	if (body != NULL) {
		body->has_body = has_body;
		body->chunked = te != NULL;
		body->content_length = cl;
	}
	return 0;
}
