/*
 * gw_http_query.c - the query string of a request as (key, value) pairs.
 *
 * application/x-www-form-urlencoded as browsers and grpc-gateway read it:
 * pairs split on '&', key from value on the first '=', '+' a space, then
 * percent-decoding. Stricter than a browser: a bad escape, a decoded NUL or
 * invalid UTF-8 is an error rather than replaced, and the count and length
 * are bounded. Which request field a key names is the transcoder's
 * business; gw_router_check_query() only checks the first component.
 */
#include "gw_http.h"

#include <stdio.h>
#include <string.h>

static const char *pct_reason(gw_pct_error e)
{
	switch (e) {
	case GW_PCT_BAD_ESCAPE:
		return "an invalid percent-escape";
	case GW_PCT_BAD_CHAR:
		return "a character that must be percent-encoded";
	case GW_PCT_NUL:
		return "an encoded NUL";
	case GW_PCT_CONTROL:
		return "an encoded control character";
	default:
		return "bytes that are not UTF-8 once decoded";
	}
}

int gw_query_parse(const char *query, size_t len, char *buf, size_t buf_cap, gw_query_param *params,
                   size_t max_params, size_t *n_params, gw_http_result *res)
{
	gw_http_ok(res);
	*n_params = 0;
	if (len == 0)
		return 0;
	if (len > GW_QUERY_MAX_BYTES)
		return gw_http_fail(res, 414, "URI_TOO_LONG", "query string longer than %u bytes",
		                    GW_QUERY_MAX_BYTES);
	if (query == NULL || buf == NULL || buf_cap < len + 1 || (params == NULL && max_params > 0))
		return gw_http_fail(res, 500, "INTERNAL", "query parser called without room");

	size_t n = 0, o = 0, i = 0;
	while (i < len) {
		const char *piece = query + i;
		const char *amp = memchr(piece, '&', len - i);
		size_t plen = amp != NULL ? (size_t)(amp - piece) : len - i;
		i += plen + 1;
		if (plen == 0)
			continue;
		const char *eq = memchr(piece, '=', plen);
		size_t klen = eq != NULL ? (size_t)(eq - piece) : plen;
		if (klen == 0)
			return gw_http_fail(res, 400, "INVALID_QUERY",
			                    "a query parameter has an empty name");
		if (n == max_params)
			return gw_http_fail(res, 400, "INVALID_QUERY",
			                    "more than %zu query parameters", max_params);
		gw_query_param *p = &params[n];
		size_t dlen;
		gw_pct_error e = gw_pct_decode(piece, klen, GW_PCT_PLUS_SPACE, buf + o, &dlen);
		if (e != GW_PCT_OK)
			return gw_http_fail(res, 400, "INVALID_QUERY",
			                    "a query parameter name holds %s", pct_reason(e));
		p->key = buf + o;
		p->key_len = dlen;
		o += dlen;
		buf[o++] = '\0';
		if (eq == NULL) {
			p->value = "";
			p->value_len = 0;
		} else {
			e = gw_pct_decode(eq + 1, plen - klen - 1, GW_PCT_PLUS_SPACE, buf + o,
			                  &dlen);
			if (e != GW_PCT_OK) {
				gw_http_fail(res, 400, "INVALID_QUERY", "the value of ");
				gw_http_message_quote(res, p->key, p->key_len, 48);
				size_t at = strlen(res->message);
				/* 13 + at most 53 quoted + 44: within the message. */
				snprintf(res->message + at, sizeof(res->message) - at, " holds %s",
				         pct_reason(e));
				return 400;
			}
			p->value = buf + o;
			p->value_len = dlen;
			o += dlen;
			buf[o++] = '\0';
		}
		n++;
	}
	*n_params = n;
	return 0;
}
