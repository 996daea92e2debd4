/*
 * test_http_parse.c - the gateway's pure parsing of a request: percent-
 * decoding with UTF-8 checks, the query-string parser (pairs, '+', bounds,
 * every kind of bad input, a buffer of exactly the documented size), and
 * the request-head checks (limits 414/431, request smuggling 400, body
 * size 413, media type 415, unknown transfer coding 501), each refusal
 * with its status, canonical code and reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_http.h"

/* ---- percent-decoding ------------------------------------------------------ */

static gw_pct_error decode(const char *in, unsigned flags, char *out)
{
	size_t n = strlen(in), dlen = 12345;
	char *buf = malloc(n + 1);
	assert_non_null(buf);
	gw_pct_error e = gw_pct_decode(in, n, flags, buf, &dlen);
	/* Validating alone gives the same verdict and length. */
	size_t vlen = 54321;
	assert_int_equal(gw_pct_decode(in, n, flags, NULL, &vlen), e);
	if (e == GW_PCT_OK) {
		assert_true(dlen <= n);
		assert_int_equal(vlen, dlen);
		memcpy(out, buf, dlen);
		out[dlen] = '\0';
	} else {
		assert_int_equal(dlen, 12345); /* untouched on error */
	}
	free(buf);
	return e;
}

static void test_pct_decodes(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(decode("plain-text_0.9~", 0, out), GW_PCT_OK);
	assert_string_equal(out, "plain-text_0.9~");
	assert_int_equal(decode("", 0, out), GW_PCT_OK);
	assert_string_equal(out, "");
	assert_int_equal(decode("a%20b%2Fc%2fd%41%7e", 0, out), GW_PCT_OK);
	assert_string_equal(out, "a b/c/dA~");
	assert_int_equal(decode("a+b", 0, out), GW_PCT_OK);
	assert_string_equal(out, "a+b");
	assert_int_equal(decode("a+b%2B", GW_PCT_PLUS_SPACE, out), GW_PCT_OK);
	assert_string_equal(out, "a b+");
	assert_int_equal(decode("a%2Fb%2fc%20", GW_PCT_KEEP_SLASH, out), GW_PCT_OK);
	assert_string_equal(out, "a%2Fb%2fc ");
	assert_int_equal(decode("caf%C3%A9 \xe2\x9c\x93", 0, out), GW_PCT_BAD_CHAR);
	assert_int_equal(decode("caf%C3%A9\xe2\x9c\x93%F0%9F%98%80", 0, out), GW_PCT_OK);
	assert_string_equal(out, "café✓😀");
	/* Control characters: allowed unless asked, NUL never. */
	assert_int_equal(decode("a%0Ab%09", 0, out), GW_PCT_OK);
	assert_string_equal(out, "a\nb\t");
	assert_int_equal(decode("a%0Ab", GW_PCT_NO_CONTROLS, out), GW_PCT_CONTROL);
	assert_int_equal(decode("a%7F", GW_PCT_NO_CONTROLS, out), GW_PCT_CONTROL);
	assert_int_equal(decode("a%00", 0, out), GW_PCT_NUL);
	assert_int_equal(decode("%00", GW_PCT_NO_CONTROLS, out), GW_PCT_NUL);
}

static void test_pct_rejects(void **state)
{
	(void)state;
	char out[64];
	static const char *const bad_escape[] = {"%",   "%4",  "a%",   "%zz",
	                                         "%4g", "%g4", "%%41", "%-1"};
	for (size_t i = 0; i < sizeof(bad_escape) / sizeof(bad_escape[0]); i++)
		assert_int_equal(decode(bad_escape[i], 0, out), GW_PCT_BAD_ESCAPE);
	static const char *const bad_char[] = {"a b", "a\tb", "a\nb", "a\x7f", "a#b", "\x01"};
	for (size_t i = 0; i < sizeof(bad_char) / sizeof(bad_char[0]); i++)
		assert_int_equal(decode(bad_char[i], GW_PCT_PLUS_SPACE, out), GW_PCT_BAD_CHAR);
	/* RFC 3629: overlong forms, surrogates, beyond U+10FFFF, stray and
	 * missing continuation bytes, raw or escaped alike. */
	static const char *const bad_utf8[] = {
	    "%C0%AF",       "%C1%BF",       "%E0%80%AF",    "%E0%9F%BF",
	    "%ED%A0%80",    "%ED%BF%BF",    "%F0%80%80%AF", "%F0%8F%BF%BF",
	    "%F4%90%80%80", "%F5%80%80%80", "%FF",          "%FE",
	    "%80",          "%BF",          "%C3",          "%C3%28",
	    "%E2%82",       "%E2%28%A1",    "%F0%9F%98",    "\xc3",
	    "\xed\xa0\x80", "a\xe2\x9c",    "%C3\xa9\xa9",  "\xf8\x88\x80\x80\x80",
	};
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++)
		if (decode(bad_utf8[i], 0, out) != GW_PCT_BAD_UTF8)
			fail_msg("\"%s\" passed as UTF-8", bad_utf8[i]);
	/* A bad byte is refused where it stands, before a later error... */
	assert_int_equal(decode("%E0%80%zz", 0, out), GW_PCT_BAD_UTF8);
	assert_int_equal(decode("%ED%A0 x", 0, out), GW_PCT_BAD_UTF8);
	assert_int_equal(decode("%F4%90\x80%00", 0, out), GW_PCT_BAD_UTF8);
	/* ... and a good start is not, until it ends wrong. */
	assert_int_equal(decode("%E2%82%zz", 0, out), GW_PCT_BAD_ESCAPE);
	assert_int_equal(decode("%F0%9F%98 ", 0, out), GW_PCT_BAD_CHAR);
	assert_int_equal(decode("%E2%82%2F", GW_PCT_KEEP_SLASH, out), GW_PCT_BAD_UTF8);
	/* Escaped and raw bytes make one sequence together. */
	assert_int_equal(decode("%C3\xa9", 0, out), GW_PCT_OK);
	assert_string_equal(out, "é");
	/* The edges that are valid. */
	assert_int_equal(decode("%ED%9F%BF%EE%80%80%F4%8F%BF%BF%C2%80", 0, out), GW_PCT_OK);
	/* NULL out_len is fine. */
	assert_int_equal(gw_pct_decode("a%20", 4, 0, NULL, NULL), GW_PCT_OK);
}

/* ---- query strings ---------------------------------------------------------- */

typedef struct parsed {
	int status;
	size_t n;
	gw_query_param p[GW_QUERY_MAX_PARAMS + 1];
	gw_http_result res;
	char *buf;
} parsed;

/* Parse with a heap buffer of exactly len + 1 bytes (ASan sees overruns). */
static void parse(const char *q, size_t max_params, parsed *out)
{
	size_t len = strlen(q);
	out->buf = malloc(len + 1);
	assert_non_null(out->buf);
	out->n = 999;
	out->status =
	    gw_query_parse(q, len, out->buf, len + 1, out->p, max_params, &out->n, &out->res);
	assert_int_equal(out->res.status, out->status);
	if (out->status != 0)
		assert_int_equal(out->n, 0);
}

static void expect_pair(const parsed *pq, size_t i, const char *key, const char *value)
{
	assert_true(i < pq->n);
	assert_int_equal(pq->p[i].key_len, strlen(key));
	assert_memory_equal(pq->p[i].key, key, pq->p[i].key_len);
	assert_int_equal(pq->p[i].key[pq->p[i].key_len], '\0');
	assert_int_equal(pq->p[i].value_len, strlen(value));
	assert_memory_equal(pq->p[i].value, value, pq->p[i].value_len);
	assert_int_equal(pq->p[i].value[pq->p[i].value_len], '\0');
}

static void test_query_pairs(void **state)
{
	(void)state;
	parsed q;
	parse("page=2&pageSize=10&search=red+shoes%21&sortBy=-price", GW_QUERY_MAX_PARAMS, &q);
	assert_int_equal(q.status, 0);
	assert_int_equal(q.n, 4);
	expect_pair(&q, 0, "page", "2");
	expect_pair(&q, 1, "pageSize", "10");
	expect_pair(&q, 2, "search", "red shoes!");
	expect_pair(&q, 3, "sortBy", "-price");
	free(q.buf);

	/* Keys decode too; '=' in a value; a key alone; empty pieces. */
	parse("&&a%5Fb=x%3Dy=z&flag&empty=&&c+d=%2B&", GW_QUERY_MAX_PARAMS, &q);
	assert_int_equal(q.status, 0);
	assert_int_equal(q.n, 4);
	expect_pair(&q, 0, "a_b", "x=y=z");
	expect_pair(&q, 1, "flag", "");
	expect_pair(&q, 2, "empty", "");
	expect_pair(&q, 3, "c d", "+");
	free(q.buf);

	/* Repetition gives one pair each, in order (repeated fields). */
	parse("tag=a&tag=b&tag=a", GW_QUERY_MAX_PARAMS, &q);
	assert_int_equal(q.n, 3);
	expect_pair(&q, 0, "tag", "a");
	expect_pair(&q, 1, "tag", "b");
	expect_pair(&q, 2, "tag", "a");
	free(q.buf);

	/* UTF-8, controls other than NUL are data; '?' and '/' are fine raw. */
	parse("q=caf%C3%A9+%E2%9C%93&nl=a%0Ab&path=/x?y", GW_QUERY_MAX_PARAMS, &q);
	assert_int_equal(q.status, 0);
	expect_pair(&q, 0, "q", "café ✓");
	expect_pair(&q, 1, "nl", "a\nb");
	expect_pair(&q, 2, "path", "/x?y");
	free(q.buf);

	/* Nothing at all. */
	parse("", GW_QUERY_MAX_PARAMS, &q);
	assert_int_equal(q.status, 0);
	assert_int_equal(q.n, 0);
	free(q.buf);
	parse("&&&", GW_QUERY_MAX_PARAMS, &q);
	assert_int_equal(q.status, 0);
	assert_int_equal(q.n, 0);
	free(q.buf);
	size_t n = 7;
	gw_http_result res;
	assert_int_equal(gw_query_parse(NULL, 0, NULL, 0, NULL, 0, &n, &res), 0);
	assert_int_equal(n, 0);
}

static void expect_query_error(const char *q, int status, const char *needle)
{
	parsed pq;
	parse(q, GW_QUERY_MAX_PARAMS, &pq);
	free(pq.buf);
	if (pq.status != status)
		fail_msg("query \"%s\": status %d, want %d", q, pq.status, status);
	if (status == 400) {
		assert_int_equal(pq.res.code, RPC_STATUS_INVALID_ARGUMENT);
		assert_string_equal(pq.res.reason, "INVALID_QUERY");
	}
	if (strstr(pq.res.message, needle) == NULL)
		fail_msg("query \"%s\": message \"%s\" lacks \"%s\"", q, pq.res.message, needle);
}

static void test_query_rejects(void **state)
{
	(void)state;
	expect_query_error("=v", 400, "empty name");
	expect_query_error("a=1&=2", 400, "empty name");
	expect_query_error("a=%zz", 400, "value of \"a\" holds an invalid percent-escape");
	expect_query_error("a=%4", 400, "invalid percent-escape");
	expect_query_error("a=%", 400, "invalid percent-escape");
	expect_query_error("a%=1", 400, "name holds an invalid percent-escape");
	expect_query_error("a=%00", 400, "encoded NUL");
	expect_query_error("a%00=1", 400, "name holds an encoded NUL");
	expect_query_error("a=%C3", 400, "not UTF-8");
	expect_query_error("a=%ED%A0%80", 400, "not UTF-8");
	expect_query_error("a=x y", 400, "must be percent-encoded");
	expect_query_error("a=x\x01", 400, "must be percent-encoded");
	expect_query_error("a=x#frag", 400, "must be percent-encoded");
	/* The key in the message is sanitized and cut. */
	expect_query_error("k%22%0A%5C=%zz", 400, "value of \"k???\"");
	char big[200];
	memset(big, 'k', sizeof(big));
	memcpy(big + sizeof(big) - 5, "=%zz", 5);
	parsed pq;
	parse(big, GW_QUERY_MAX_PARAMS, &pq);
	free(pq.buf);
	assert_int_equal(pq.status, 400);
	assert_non_null(strstr(pq.res.message, "kkk\"... holds"));
	assert_true(strlen(pq.res.message) < GW_HTTP_MESSAGE_MAX);
}

static void test_query_bounds(void **state)
{
	(void)state;
	/* 64 pairs pass, 65 do not. */
	char q[1024];
	size_t o = 0;
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(q + o, sizeof(q) - o, "%sk%d=%d", i ? "&" : "", i, i);
	parsed pq;
	parse(q, GW_QUERY_MAX_PARAMS, &pq);
	free(pq.buf);
	assert_int_equal(pq.status, 400);
	assert_non_null(strstr(pq.res.message, "more than 64 query parameters"));
	*strrchr(q, '&') = '\0';
	parse(q, GW_QUERY_MAX_PARAMS, &pq);
	assert_int_equal(pq.status, 0);
	assert_int_equal(pq.n, 64);
	expect_pair(&pq, 63, "k63", "63");
	free(pq.buf);
	/* The caller's own bound. */
	parse("a=1&b=2&c=3", 2, &pq);
	free(pq.buf);
	assert_int_equal(pq.status, 400);
	parse("a=1&b=2", 2, &pq);
	free(pq.buf);
	assert_int_equal(pq.status, 0);
	parse("a", 0, &pq);
	free(pq.buf);
	assert_int_equal(pq.status, 400);

	/* Length: GW_QUERY_MAX_BYTES passes, one more is 414. */
	char *long_q = malloc(GW_QUERY_MAX_BYTES + 2);
	assert_non_null(long_q);
	long_q[0] = 'k';
	long_q[1] = '=';
	memset(long_q + 2, 'v', GW_QUERY_MAX_BYTES - 2);
	long_q[GW_QUERY_MAX_BYTES] = '\0';
	parse(long_q, GW_QUERY_MAX_PARAMS, &pq);
	free(pq.buf);
	assert_int_equal(pq.status, 0);
	assert_int_equal(pq.p[0].value_len, GW_QUERY_MAX_BYTES - 2);
	long_q[GW_QUERY_MAX_BYTES] = 'v';
	long_q[GW_QUERY_MAX_BYTES + 1] = '\0';
	parse(long_q, GW_QUERY_MAX_PARAMS, &pq);
	free(pq.buf);
	assert_int_equal(pq.status, 414);
	assert_int_equal(pq.res.code, RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(pq.res.reason, "URI_TOO_LONG");
	free(long_q);

	/* The buffer must hold len + 1: one byte less is refused, not overrun. */
	static const char *const worst[] = {"a", "a=b", "a&b", "a=&b=", "a=b&c=d", "ab=c"};
	for (size_t i = 0; i < sizeof(worst) / sizeof(worst[0]); i++) {
		size_t len = strlen(worst[i]), n;
		gw_query_param p[8];
		gw_http_result res;
		char *buf = malloc(len);
		assert_int_equal(gw_query_parse(worst[i], len, buf, len, p, 8, &n, &res), 500);
		assert_int_equal(res.code, RPC_STATUS_INTERNAL);
		free(buf);
		buf = malloc(len + 1);
		assert_int_equal(gw_query_parse(worst[i], len, buf, len + 1, p, 8, &n, &res), 0);
		free(buf);
	}
}

/* ---- request-head checks ---------------------------------------------------- */

#define H(n, v)                                    \
	{                                          \
		n, sizeof(n) - 1, v, sizeof(v) - 1 \
	}

static int head(const gw_http_limits *lim, const char *method, const char *target,
                const gw_http_header *h, size_t n, gw_http_body_info *body, gw_http_result *res)
{
	int st = gw_http_check_head(lim, method, strlen(method), target, strlen(target), h, n, body,
	                            res);
	assert_int_equal(res->status, st);
	if (st == 0) {
		assert_null(res->reason);
		assert_string_equal(res->message, "");
	} else {
		assert_non_null(res->reason);
		assert_true(res->message[0] != '\0');
	}
	return st;
}

static void expect_head(const gw_http_header *h, size_t n, int status, const char *reason)
{
	gw_http_result res;
	gw_http_body_info body;
	int st = head(NULL, "POST", "/v1/orders", h, n, &body, &res);
	if (st != status)
		fail_msg("status %d (%s), want %d", st, res.message, status);
	if (reason != NULL)
		assert_string_equal(res.reason, reason);
}

static void test_head_accepts(void **state)
{
	(void)state;
	gw_http_result res;
	gw_http_body_info body;
	gw_http_header get[] = {H("Host", "example.com"), H("Accept", "application/json")};
	assert_int_equal(head(NULL, "GET", "/v1/products?page=1", get, 2, &body, &res), 0);
	assert_int_equal(body.has_body, 0);
	assert_int_equal(body.chunked, 0);
	assert_int_equal(body.content_length, 0);
	assert_int_equal(head(NULL, "GET", "/", NULL, 0, NULL, &res), 0);

	gw_http_header post[] = {H("host", "x"), H("content-length", "17"),
	                         H("content-type", "application/json")};
	assert_int_equal(head(NULL, "POST", "/v1/orders", post, 3, &body, &res), 0);
	assert_int_equal(body.has_body, 1);
	assert_int_equal(body.content_length, 17);
	/* Chunked, any case, with spaces around. */
	gw_http_header chunked[] = {H("Transfer-Encoding", " Chunked "),
	                            H("Content-Type", "application/json; charset=utf-8")};
	assert_int_equal(head(NULL, "POST", "/v1/orders", chunked, 2, &body, &res), 0);
	assert_int_equal(body.has_body, 1);
	assert_int_equal(body.chunked, 1);
	/* Content-Length: 0 is no body: no Content-Type needed. */
	gw_http_header zero[] = {H("Content-Length", "0")};
	assert_int_equal(head(NULL, "POST", "/v1/orders/o1:cancel", zero, 1, &body, &res), 0);
	assert_int_equal(body.has_body, 0);
	/* Two equal Content-Lengths are one (RFC 9110 8.6). */
	gw_http_header twice[] = {H("Content-Length", "5"), H("Content-Length", " 005"),
	                          H("Content-Type", "application/json")};
	assert_int_equal(head(NULL, "POST", "/v1/orders", twice, 3, &body, &res), 0);
	assert_int_equal(body.content_length, 5);
}

static void test_head_smuggling(void **state)
{
	(void)state;
	gw_http_header differ[] = {H("Content-Length", "5"), H("Content-Length", "6"),
	                           H("Content-Type", "application/json")};
	expect_head(differ, 3, 400, "INVALID_CONTENT_LENGTH");
	gw_http_header both[] = {H("Content-Length", "5"), H("Transfer-Encoding", "chunked"),
	                         H("Content-Type", "application/json")};
	expect_head(both, 3, 400, "INVALID_CONTENT_LENGTH");
	gw_http_header both0[] = {H("Transfer-Encoding", "chunked"), H("content-length", "0")};
	expect_head(both0, 2, 400, "INVALID_CONTENT_LENGTH");
	static const char *const bad_cl[] = {"",    " ",   "abc", "+5",  "-1", "5 5",
	                                     "5,5", "0x1", "1e3", "5.0", "\t", "٣"};
	for (size_t i = 0; i < sizeof(bad_cl) / sizeof(bad_cl[0]); i++) {
		gw_http_header h[] = {{"Content-Length", 14, bad_cl[i], strlen(bad_cl[i])},
		                      H("Content-Type", "application/json")};
		gw_http_result res;
		if (head(NULL, "POST", "/v1/orders", h, 2, NULL, &res) != 400)
			fail_msg("Content-Length \"%s\" passed", bad_cl[i]);
		assert_string_equal(res.reason, "INVALID_CONTENT_LENGTH");
		assert_int_equal(res.code, RPC_STATUS_INVALID_ARGUMENT);
	}
	gw_http_header two_te[] = {H("Transfer-Encoding", "chunked"),
	                           H("Transfer-Encoding", "chunked"),
	                           H("Content-Type", "application/json")};
	expect_head(two_te, 3, 400, "INVALID_REQUEST_HEAD");
	gw_http_header gzip[] = {H("Transfer-Encoding", "gzip, chunked"),
	                         H("Content-Type", "application/json")};
	expect_head(gzip, 2, 501, "UNSUPPORTED_TRANSFER_ENCODING");
	gw_http_header identity[] = {H("Transfer-Encoding", "identity")};
	expect_head(identity, 1, 501, "UNSUPPORTED_TRANSFER_ENCODING");
	gw_http_header hosts[] = {H("Host", "a"), H("host", "b")};
	expect_head(hosts, 2, 400, "INVALID_REQUEST_HEAD");
	gw_http_result res;
	head(NULL, "POST", "/", gzip, 2, NULL, &res);
	assert_int_equal(res.code, RPC_STATUS_UNIMPLEMENTED);
}

static void test_head_body_limit(void **state)
{
	(void)state;
	gw_http_header at[] = {H("Content-Length", "1048576"),
	                       H("Content-Type", "application/json")};
	expect_head(at, 2, 0, NULL);
	gw_http_header over[] = {H("Content-Length", "1048577"),
	                         H("Content-Type", "application/json")};
	expect_head(over, 2, 413, "PAYLOAD_TOO_LARGE");
	gw_http_header huge[] = {H("Content-Length", "99999999999999999999999999"),
	                         H("Content-Type", "application/json")};
	expect_head(huge, 2, 413, "PAYLOAD_TOO_LARGE");
	/* 413 before 415: the size is refused whatever the type. */
	gw_http_header over_text[] = {H("Content-Length", "2000000"),
	                              H("Content-Type", "text/plain")};
	expect_head(over_text, 2, 413, NULL);
	/* A limit of the caller's own. */
	gw_http_limits lim = gw_http_limits_default();
	assert_int_equal(lim.max_body, 1048576);
	lim.max_body = 10;
	gw_http_header eleven[] = {H("Content-Length", "11"),
	                           H("Content-Type", "application/json")};
	gw_http_result res;
	assert_int_equal(head(&lim, "PUT", "/v1/inventory/p1", eleven, 2, NULL, &res), 413);
	assert_int_equal(res.code, RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_string_equal(res.message, "request body larger than 10 bytes");
	gw_http_header ten[] = {H("Content-Length", "10"), H("Content-Type", "application/json")};
	assert_int_equal(head(&lim, "PUT", "/v1/inventory/p1", ten, 2, NULL, &res), 0);
	uint64_t v = 0;
	assert_int_equal(gw_http_parse_content_length("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(gw_http_parse_content_length("18446744073709551616", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(gw_http_parse_content_length("18446744073709551614", 20, &v), 0);
	assert_true(v == UINT64_MAX - 1);
	assert_int_equal(gw_http_parse_content_length(NULL, 0, &v), -1);
}

static void test_head_content_type(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "application/json",
	    "Application/JSON",
	    "application/json; charset=utf-8",
	    "application/json;charset=UTF-8",
	    "application/json ;  charset=\"utf-8\"  ",
	    "application/json;",
	    " application/json ",
	    "application/json; charset=utf-8;",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!gw_http_content_type_is_json(good[i], strlen(good[i])))
			fail_msg("\"%s\" refused", good[i]);
		gw_http_header h[] = {H("Content-Length", "2"),
		                      {"Content-Type", 12, good[i], strlen(good[i])}};
		expect_head(h, 2, 0, NULL);
	}
	static const char *const bad[] = {
	    "",
	    "text/plain",
	    "application/jsonx",
	    "application/json-patch+json",
	    "application/x-www-form-urlencoded",
	    "multipart/form-data; boundary=x",
	    "application/json; charset=latin1",
	    "application/json; charset=utf-16",
	    "application/json; charset = utf-8",
	    "application/json; charset=\"utf-8",
	    "application/json; charset=\"utf\\-8\"",
	    "application/json; foo=bar",
	    "application/json; charset",
	    "application/json; charset=utf-8 x",
	    "application/json, text/plain",
	    "application / json",
	    "*/*",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (gw_http_content_type_is_json(bad[i], strlen(bad[i])))
			fail_msg("\"%s\" accepted", bad[i]);
		gw_http_header h[] = {H("Content-Length", "2"),
		                      {"Content-Type", 12, bad[i], strlen(bad[i])}};
		expect_head(h, 2, 415, "UNSUPPORTED_MEDIA_TYPE");
	}
	assert_int_equal(gw_http_content_type_is_json(NULL, 0), 0);
	/* A body without Content-Type, chunked or not. */
	gw_http_header none[] = {H("Content-Length", "2")};
	expect_head(none, 1, 415, "UNSUPPORTED_MEDIA_TYPE");
	gw_http_header chunked[] = {H("Transfer-Encoding", "chunked")};
	expect_head(chunked, 1, 415, NULL);
	gw_http_result res;
	head(NULL, "POST", "/", none, 1, NULL, &res);
	assert_int_equal(res.code, RPC_STATUS_INVALID_ARGUMENT);
	/* Two of them with a body. */
	gw_http_header two[] = {H("Content-Length", "2"), H("Content-Type", "application/json"),
	                        H("Content-Type", "application/json")};
	expect_head(two, 3, 400, "INVALID_REQUEST_HEAD");
	/* Without a body the type is not looked at. */
	gw_http_header nobody[] = {H("Content-Type", "text/plain")};
	expect_head(nobody, 1, 0, NULL);
}

static void test_head_limits(void **state)
{
	(void)state;
	gw_http_result res;
	/* Request line: method + ' ' + target. */
	size_t tlen = GW_HTTP_DEFAULT_MAX_REQUEST_LINE - 4;
	char *target = malloc(tlen + 2);
	assert_non_null(target);
	target[0] = '/';
	memset(target + 1, 'a', tlen - 1);
	target[tlen] = '\0';
	assert_int_equal(head(NULL, "GET", target, NULL, 0, NULL, &res), 0);
	target[tlen] = 'a';
	target[tlen + 1] = '\0';
	assert_int_equal(head(NULL, "GET", target, NULL, 0, NULL, &res), 414);
	assert_string_equal(res.reason, "URI_TOO_LONG");
	assert_int_equal(res.code, RPC_STATUS_RESOURCE_EXHAUSTED);
	free(target);
	assert_int_equal(gw_http_check_head(NULL, "GET", 3, "/", SIZE_MAX, NULL, 0, NULL, &res),
	                 414);
	assert_int_equal(gw_http_check_head(NULL, "GET", SIZE_MAX, "/", 1, NULL, 0, NULL, &res),
	                 414);

	/* Header count. */
	gw_http_header many[GW_HTTP_DEFAULT_MAX_HEADERS + 1];
	for (size_t i = 0; i < GW_HTTP_DEFAULT_MAX_HEADERS + 1; i++) {
		gw_http_header h = H("X-A", "1");
		many[i] = h;
	}
	assert_int_equal(head(NULL, "GET", "/", many, GW_HTTP_DEFAULT_MAX_HEADERS, NULL, &res), 0);
	assert_int_equal(head(NULL, "GET", "/", many, GW_HTTP_DEFAULT_MAX_HEADERS + 1, NULL, &res),
	                 431);
	assert_string_equal(res.reason, "HEADERS_TOO_LARGE");
	assert_int_equal(res.code, RPC_STATUS_RESOURCE_EXHAUSTED);

	/* Header bytes: name + value + 4 each. */
	size_t vlen = GW_HTTP_DEFAULT_MAX_HEADER_BYTES - 4 - 5;
	char *value = malloc(vlen + 1);
	assert_non_null(value);
	memset(value, 'v', vlen + 1);
	gw_http_header big[] = {{"X-Big", 5, value, vlen}};
	assert_int_equal(head(NULL, "GET", "/", big, 1, NULL, &res), 0);
	big[0].value_len++;
	assert_int_equal(head(NULL, "GET", "/", big, 1, NULL, &res), 431);
	gw_http_header two[] = {{"X-Big", 5, value, vlen}, H("a", "")};
	assert_int_equal(head(NULL, "GET", "/", two, 2, NULL, &res), 431);
	gw_http_header huge[] = {{"X-Big", 5, value, SIZE_MAX}};
	assert_int_equal(head(NULL, "GET", "/", huge, 1, NULL, &res), 431);
	free(value);

	/* Limits of the caller's own. */
	gw_http_limits lim = {
	    .max_request_line = 10, .max_headers = 1, .max_header_bytes = 20, .max_body = 0};
	gw_http_header one[] = {H("Host", "h")};
	assert_int_equal(head(&lim, "GET", "/12345", one, 1, NULL, &res), 0);
	assert_int_equal(head(&lim, "GET", "/123456", one, 1, NULL, &res), 414);
	gw_http_header twoh[] = {H("Host", "h"), H("X", "y")};
	assert_int_equal(head(&lim, "GET", "/", twoh, 2, NULL, &res), 431);
	gw_http_header longh[] = {H("X-Long-Name", "0123456789")}; /* 11 + 10 + 4 */
	assert_int_equal(head(&lim, "GET", "/", longh, 1, NULL, &res), 431);
	gw_http_header body[] = {H("Content-Length", "1")}; /* 14 + 1 + 4 */
	assert_int_equal(head(&lim, "GET", "/", body, 1, NULL, &res), 413);
}

static void test_head_syntax(void **state)
{
	(void)state;
	gw_http_result res;
	static const char *const bad_methods[] = {"", "GE T", "GET\r", "G(ET", "GET/", "\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad_methods) / sizeof(bad_methods[0]); i++) {
		if (head(NULL, bad_methods[i], "/", NULL, 0, NULL, &res) != 400)
			fail_msg("method \"%s\" passed", bad_methods[i]);
		assert_string_equal(res.reason, "INVALID_REQUEST_HEAD");
	}
	assert_int_equal(head(NULL, "M-SEARCH", "/", NULL, 0, NULL, &res), 0);
	assert_int_equal(gw_http_check_head(NULL, NULL, 0, "/", 1, NULL, 0, NULL, &res), 400);
	gw_http_header bad_name[] = {H("Bad Name", "x")};
	expect_head(bad_name, 1, 400, "INVALID_REQUEST_HEAD");
	gw_http_header colon[] = {H(":path", "/")};
	expect_head(colon, 1, 400, "INVALID_REQUEST_HEAD");
	gw_http_header empty_name[] = {H("", "x")};
	expect_head(empty_name, 1, 400, "INVALID_REQUEST_HEAD");
	gw_http_header cr[] = {H("X-A", "a\rb")};
	expect_head(cr, 1, 400, "INVALID_REQUEST_HEAD");
	gw_http_header lf[] = {H("X-A", "a\nContent-Length: 5")};
	expect_head(lf, 1, 400, "INVALID_REQUEST_HEAD");
	gw_http_header nul[] = {{"X-A", 3, "a\0b", 3}};
	expect_head(nul, 1, 400, "INVALID_REQUEST_HEAD");
	gw_http_header nullv[] = {{"X-A", 3, NULL, 3}};
	expect_head(nullv, 1, 400, "INVALID_REQUEST_HEAD");
	gw_http_header nulln[] = {{NULL, 3, "x", 1}};
	expect_head(nulln, 1, 400, "INVALID_REQUEST_HEAD");
	/* Tabs and UTF-8 in values are fine; an empty value too. */
	gw_http_header fine[] = {H("X-A", "a\tb \xc3\xa9"), H("X-B", ""), {"X-C", 3, NULL, 0}};
	expect_head(fine, 3, 0, NULL);
}

static void test_result_helpers(void **state)
{
	(void)state;
	gw_http_result res;
	static const struct {
		int status;
		rpc_status code;
	} map[] = {{400, RPC_STATUS_INVALID_ARGUMENT},   {404, RPC_STATUS_NOT_FOUND},
	           {405, RPC_STATUS_UNIMPLEMENTED},      {413, RPC_STATUS_RESOURCE_EXHAUSTED},
	           {414, RPC_STATUS_RESOURCE_EXHAUSTED}, {415, RPC_STATUS_INVALID_ARGUMENT},
	           {431, RPC_STATUS_RESOURCE_EXHAUSTED}, {500, RPC_STATUS_INTERNAL},
	           {501, RPC_STATUS_UNIMPLEMENTED}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		assert_int_equal(gw_http_fail(&res, map[i].status, "R", "m %d", 1), map[i].status);
		assert_int_equal(res.code, map[i].code);
		assert_string_equal(res.message, "m 1");
	}
	gw_http_ok(&res);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.code, RPC_STATUS_OK);
	assert_null(res.reason);
	/* A long message is cut, NUL-terminated. */
	char longs[400];
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	gw_http_fail(&res, 400, "R", "%s", longs);
	assert_int_equal(strlen(res.message), GW_HTTP_MESSAGE_MAX - 1);
	/* Quoting cuts at a character boundary and marks the cut. */
	gw_http_fail(&res, 400, "R", "key ");
	gw_http_message_quote(&res, "ééééé", 10, 5);
	assert_string_equal(res.message, "key \"éé\"...");
	gw_http_fail(&res, 400, "R", "key ");
	gw_http_message_quote(&res, "ab\xc3", 3, 10); /* not UTF-8: '?' */
	assert_string_equal(res.message, "key \"ab?\"");
	gw_http_fail(&res, 400, "R", "key ");
	gw_http_message_quote(&res, "\xe2\x9c\x93", 3, 10);
	assert_string_equal(res.message, "key \"✓\"");
	/* No room left: nothing appended, still terminated. */
	gw_http_fail(&res, 400, "R", "%s", longs);
	gw_http_message_quote(&res, "abc", 3, 10);
	assert_int_equal(strlen(res.message), GW_HTTP_MESSAGE_MAX - 1);
	gw_http_fail(&res, 400, "R", "%.*s", GW_HTTP_MESSAGE_MAX - 10, longs);
	gw_http_message_quote(&res, "abcdefghij", 10, 100);
	assert_true(strlen(res.message) < GW_HTTP_MESSAGE_MAX);
	assert_non_null(strstr(res.message, "\"abcd\"..."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pct_decodes),       cmocka_unit_test(test_pct_rejects),
	    cmocka_unit_test(test_query_pairs),       cmocka_unit_test(test_query_rejects),
	    cmocka_unit_test(test_query_bounds),      cmocka_unit_test(test_head_accepts),
	    cmocka_unit_test(test_head_smuggling),    cmocka_unit_test(test_head_body_limit),
	    cmocka_unit_test(test_head_content_type), cmocka_unit_test(test_head_limits),
	    cmocka_unit_test(test_head_syntax),       cmocka_unit_test(test_result_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
