/*
 * fuzz_gateway_headers.c - libFuzzer target of the gateway's parsers of
 * request header values that the observability and caching modules read:
 * X-Request-Id (gw_request_id), traceparent (gw_traceparent_parse),
 * If-None-Match (gw_if_none_match), and the access log's escaping of what
 * they let through (gw_access_log_format). The first input byte picks the
 * parser (modulo 4); the rest is the field value, copied into a buffer of
 * exactly its size so that any read past it is caught. Each mode checks
 * the parser's promises, not only that it survives:
 *   0  a kept id is the input and sane; a new one is 32 hex digits;
 *   1  an accepted traceparent's parts are lower-case hex, not all zero,
 *      and its value parses again to the same parts;
 *   2  the result is one of the three; a list that starts with the
 *      current ETag matches; "*" matches;
 *   3  the log line is one line of at most GW_ACCESS_LINE_MAX bytes with
 *      no raw control character.
 *
 * libFuzzer: tools/fuzz.sh builds it against build-fuzz/lib (make fuzz).
 * Replay (any compiler): tests/fuzz/corpus.test.sh builds it with
 * -DFUZZ_STANDALONE and runs it on tests/fuzz/corpus/fuzz_gateway_headers
 * (make test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_main.h"
#include "gw_accesslog.h"
#include "gw_cache.h"
#include "gw_reqid.h"

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_gateway_headers: %s\n", what);
		abort(); /* a broken promise: the fuzzer keeps the input */
	}
}

static int all_hex(const char *s, size_t n, int *nonzero)
{
	*nonzero = 0;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		*nonzero |= s[i] != '0';
	}
	return 1;
}

static void fuzz_request_id(const char *v, size_t n)
{
	char out[GW_REQUEST_ID_MAX + 1];
	int kept = -1;
	size_t len = gw_request_id(v, n, out, &kept);
	check(len == strlen(out), "id length");
	if (kept) {
		check(len == n && memcmp(out, v, n) == 0, "kept id is not the input");
		check(gw_request_id_sane(v, n), "kept id is not sane");
	} else {
		int nz;
		check(!gw_request_id_sane(v, n), "sane id not kept");
		check(len == GW_REQUEST_ID_GEN_LEN && all_hex(out, len, &nz), "generated id form");
	}
}

static void fuzz_traceparent(const char *v, size_t n)
{
	gw_traceparent tp;
	if (gw_traceparent_parse(v, n, &tp) != 0)
		return;
	int nz;
	check(all_hex(tp.trace_id, 32, &nz) && nz && tp.trace_id[32] == '\0', "trace id");
	check(all_hex(tp.parent_id, 16, &nz) && nz && tp.parent_id[16] == '\0', "parent id");
	check(strlen(tp.value) == GW_TRACEPARENT_LEN && memcmp(tp.value, "00-", 3) == 0,
	      "value form");
	check(tp.version != 0xff, "version ff accepted");
	gw_traceparent again;
	check(gw_traceparent_parse(tp.value, GW_TRACEPARENT_LEN, &again) == 0, "value reparse");
	check(strcmp(again.trace_id, tp.trace_id) == 0 &&
	          strcmp(again.parent_id, tp.parent_id) == 0 && again.flags == tp.flags,
	      "value reparse differs");
}

static void fuzz_if_none_match(const char *v, size_t n)
{
	static const char etag[] = "\"0123456789abcdef\"";
	gw_inm_result r = gw_if_none_match(v, n, etag, sizeof(etag) - 1);
	check(r == GW_INM_INVALID || r == GW_INM_NO_MATCH || r == GW_INM_MATCH, "result");
	/* the input's own first quoted tag, as the current ETag */
	const char *q = memchr(v, '"', n);
	const char *e = q != NULL ? memchr(q + 1, '"', n - (size_t)(q - v) - 1) : NULL;
	if (e != NULL)
		(void)gw_if_none_match(v, n, q, (size_t)(e - q) + 1);
	(void)gw_if_none_match(v, n, NULL, 0);
	/* "<etag>, <input>" always matches: the scan stops at the match */
	if (n <= GW_INM_MAX_BYTES - sizeof(etag) - 2) {
		char *both = malloc(sizeof(etag) + 1 + n);
		if (both == NULL)
			return;
		memcpy(both, etag, sizeof(etag) - 1);
		both[sizeof(etag) - 1] = ',';
		memcpy(both + sizeof(etag), v, n);
		check(gw_if_none_match(both, sizeof(etag) + n, etag, sizeof(etag) - 1) ==
		          GW_INM_MATCH,
		      "a list starting with the ETag");
		free(both);
	}
	check(gw_if_none_match("*", 1, etag, sizeof(etag) - 1) == GW_INM_MATCH, "star");
}

static void fuzz_access_log(const char *v, size_t n)
{
	/* a NUL-terminated copy: the entry's strings are C strings */
	char *s = malloc(n + 1);
	if (s == NULL)
		return;
	memcpy(s, v, n);
	s[n] = '\0';
	gw_access_entry e = {.start_sec = (int64_t)n * 86399,
	                     .method = s,
	                     .route = s,
	                     .status = (int)n,
	                     .duration_ns = (uint64_t)n * 977,
	                     .request_id = s,
	                     .user_id = s,
	                     .client = s,
	                     .cache = s};
	char *line = malloc(GW_ACCESS_LINE_MAX);
	if (line != NULL) {
		size_t len = gw_access_log_format(&e, line, GW_ACCESS_LINE_MAX);
		check(len > 0 && len <= GW_ACCESS_LINE_MAX && line[len - 1] == '\n', "line bound");
		for (size_t i = 0; i + 1 < len; i++)
			check((unsigned char)line[i] >= 0x20 && line[i] != 0x7f,
			      "raw control byte");
		free(line);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned mode = data[0] % 4;
	size_t n = size - 1;
	char *v = malloc(n ? n : 1); /* exactly the value: reads past it are caught */
	if (v == NULL)
		return 0;
	memcpy(v, data + 1, n);
	switch (mode) {
	case 0:
		fuzz_request_id(v, n);
		break;
	case 1:
		fuzz_traceparent(v, n);
		break;
	case 2:
		fuzz_if_none_match(v, n);
		break;
	default:
		fuzz_access_log(v, n);
		break;
	}
	free(v);
	return 0;
}
