/*
 * fuzz_gateway_http_server.c - libFuzzer target of what the gateway's HTTP
 * server parses itself (gateway-rest/gw_server_h1.c): the head of an
 * HTTP/1 request scanned for request smuggling (Content-Length fields that
 * differ, Content-Length with Transfer-Encoding, ...), and the default
 * error body built around a message. The input is the bytes a client sent,
 * as h2o leaves them at the start of the connection's buffer.
 *
 * Checked on every input, beyond the sanitizers: an accepted head ends
 * with a line feed within the input and has no Content-Length together
 * with Transfer-Encoding; a refusal is a 400 with a reason and a message;
 * the error body (the input's first bytes as its message) is valid JSON
 * whenever it fits its buffer, and says so when it does not.
 *
 * libFuzzer (from the repository root; tools/fuzz.sh builds it the same
 * way, with every source of gateway-rest):
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -D_POSIX_C_SOURCE=200809L -Irpc/include -Igen -Igateway-rest \
 *     -Itests/fuzz tests/fuzz/fuzz_gateway_http_server.c \
 *     gateway-rest/gw_server_h1.c -ljansson -o build-fuzz/fuzz_gateway_http_server
 *   build-fuzz/fuzz_gateway_http_server tests/fuzz/corpus/fuzz_gateway_http_server
 * Replay (any compiler): the same with -DFUZZ_STANDALONE instead of
 * -fsanitize=fuzzer, on the files of tests/fuzz/corpus/fuzz_gateway_http_server
 * (make test does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_main.h"
#include "gw_server.h"

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_gateway_http_server: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact copy, so that reading one byte too far is caught. */
	char *buf = malloc(size != 0 ? size : 1);
	if (buf == NULL)
		return 0;
	if (size != 0)
		memcpy(buf, data, size);

	gw_h1_head h;
	int rc = gw_server_scan_h1_head(buf, size, &h);
	if (rc == 0) {
		check(h.head_len >= 2 && h.head_len <= size, "head length outside the input");
		check(buf[h.head_len - 1] == '\n', "head does not end with a line feed");
		check(!(h.has_content_length && h.has_transfer_encoding),
		      "Content-Length with Transfer-Encoding accepted");
	} else {
		check(rc == 400, "refusal other than 400");
		check(h.reason != NULL && h.message != NULL, "refusal without a reason");
	}

	char msg[256], body[GW_SERVER_ERROR_BODY_MAX];
	size_t n = size < sizeof(msg) - 1 ? size : sizeof(msg) - 1;
	memcpy(msg, buf, n);
	msg[n] = '\0';
	int status = 400 + (size != 0 ? (unsigned char)buf[0] % 200 : 0);
	size_t len = gw_server_default_error_body(status, rc != 0 ? h.reason : "FUZZ", msg, body,
	                                          sizeof(body), NULL);
	if (len <= sizeof(body)) {
		json_error_t err;
		json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
		check(j != NULL, "the error body is not JSON");
		json_t *e = json_object_get(j, "error");
		check(json_is_object(e), "no error object");
		check(json_integer_value(json_object_get(e, "code")) == status, "wrong code");
		json_decref(j);
	}
	free(buf);
	return 0;
}
