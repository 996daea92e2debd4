/*
 * fuzz_gateway_http.c - libFuzzer target of the gateway's request-head
 * checks (gateway-rest/gw_http.c: gw_http_check_head() and the
 * Content-Length and Content-Type readers under it).
 *
 * Input: the first byte picks the limits (even: the defaults; odd: tiny
 * ones taken from the next bytes, so that every limit is reached), then
 * '\n'-separated lines: the method, the target, and header fields, each
 * "name:value" split at its first ':' (a line without one is a name with
 * an empty value). The bytes are used as they are, NUL, CR and all: the
 * checks must stand any header list a server could hand them. Each line
 * is copied into a buffer of its own size so that ASan sees overreads.
 * Besides "no crash", the answer is checked against gw_http.h: a status
 * from the documented list, a body of the announced size within the limit,
 * and a body only with a JSON Content-Type.
 *
 * Build and run: tools/fuzz.sh (make fuzz); replayed by make test through
 * tests/fuzz/corpus.test.sh on tests/fuzz/corpus/fuzz_gateway_http.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_main.h"
#include "gw_http.h"

#define MAX_LINES 160

static char *copy(const uint8_t *p, size_t n)
{
	char *c = malloc(n > 0 ? n : 1);
	if (c != NULL)
		memcpy(c, p, n);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4 || size > 65536)
		return 0;
	gw_http_limits lim = gw_http_limits_default();
	if (data[0] & 1) {
		lim.max_request_line = data[1];
		lim.max_headers = data[2] % 8;
		lim.max_header_bytes = (size_t)data[3] * 2;
		lim.max_body = data[1];
	}
	data += 4;
	size -= 4;

	const uint8_t *line[MAX_LINES];
	size_t len[MAX_LINES], n = 0;
	for (size_t i = 0; i <= size && n < MAX_LINES;) {
		const uint8_t *nl = i < size ? memchr(data + i, '\n', size - i) : NULL;
		size_t l = nl != NULL ? (size_t)(nl - (data + i)) : size - i;
		line[n] = data + i;
		len[n++] = l;
		i += l + 1;
	}
	if (n < 2)
		return 0;

	char *method = copy(line[0], len[0]);
	char *target = copy(line[1], len[1]);
	gw_http_header h[MAX_LINES];
	size_t nh = 0;
	int ok = method != NULL && target != NULL;
	for (size_t i = 2; i < n && ok; i++) {
		const uint8_t *colon = memchr(line[i], ':', len[i]);
		size_t nl = colon != NULL ? (size_t)(colon - line[i]) : len[i];
		size_t vl = colon != NULL ? len[i] - nl - 1 : 0;
		char *name = copy(line[i], nl);
		char *value = copy(colon != NULL ? colon + 1 : line[i], vl);
		h[nh].name = name;
		h[nh].name_len = nl;
		h[nh].value = value;
		h[nh].value_len = vl;
		nh++;
		ok = name != NULL && value != NULL;
	}

	if (ok) {
		gw_http_body_info body;
		gw_http_result res;
		int st =
		    gw_http_check_head(&lim, method, len[0], target, len[1], h, nh, &body, &res);
		if (st != res.status)
			abort();
		switch (st) {
		case 0:
			if (res.reason != NULL || res.message[0] != '\0')
				abort();
			if (body.content_length > lim.max_body ||
			    (body.has_body && body.chunked == 0 && body.content_length == 0))
				abort();
			if (body.has_body) {
				/* A body passes only with a JSON Content-Type. */
				int json = 0;
				for (size_t i = 0; i < nh; i++)
					if (h[i].name_len == 12 &&
					    strncasecmp(h[i].name, "content-type", 12) == 0)
						json |= gw_http_content_type_is_json(
						    h[i].value, h[i].value_len);
				if (!json)
					abort();
			}
			break;
		case 400:
		case 413:
		case 414:
		case 415:
		case 431:
		case 501:
			if (res.reason == NULL || res.message[0] == '\0' ||
			    strlen(res.message) >= GW_HTTP_MESSAGE_MAX)
				abort();
			break;
		default:
			abort();
		}
		/* The readers on every value, alone. */
		for (size_t i = 0; i < nh; i++) {
			uint64_t v;
			gw_http_parse_content_length(h[i].value, h[i].value_len, &v);
			gw_http_content_type_is_json(h[i].value, h[i].value_len);
		}
	}
	for (size_t i = 0; i < nh; i++) {
		free((void *)h[i].name);
		free((void *)h[i].value);
	}
	free(method);
	free(target);
	return 0;
}
