/*
 * test_observe.c - the gateway's observability modules: request ids (which
 * client ids are kept, generated ids' form and uniqueness across threads),
 * W3C traceparent (valid and invalid values, later versions), the RPC
 * metadata they become, the access log (every field, JSON escaping of
 * hostile strings, cuts, nothing but the documented keys, the write to a
 * descriptor), and the Prometheus exposition (HELP/TYPE, label escaping,
 * cumulative histogram buckets, in-flight, rate-limited, the cache's
 * section, other sections as text, exact totals from four threads).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gw_accesslog.h"
#include "gw_cache.h"
#include "gw_metrics.h"
#include "gw_reqid.h"
#include "panthera_routes.h"

/* ---- request ids --------------------------------------------------------------------- */

static void test_request_id_sanity(void **state)
{
	(void)state;
	static const char *const kept[] = {"a",
	                                   "abc-123",
	                                   "3f0c8a4e-1111-4222-8333-944455556666",
	                                   "svc:1234.5_x",
	                                   "01HZX3JQ5Y2W8E9R7T6U5I4O3P",
	                                   "ABCdef..::--__"};
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		char out[GW_REQUEST_ID_MAX + 1];
		int k = -1;
		size_t n = gw_request_id(kept[i], strlen(kept[i]), out, &k);
		assert_int_equal(k, 1);
		assert_int_equal(n, strlen(kept[i]));
		assert_string_equal(out, kept[i]);
	}
	static const char *const refused[] = {"",     "a b",  "a\"b",        "a\\b",     "a/b",
	                                      "a\nb", "a\tb", "caf\xc3\xa9", "<script>", "a,b",
	                                      "a;b",  "a=b",  "%41",         "a\x7f"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_false(gw_request_id_sane(refused[i], strlen(refused[i])));
		char out[GW_REQUEST_ID_MAX + 1];
		int k = -1;
		size_t n = gw_request_id(refused[i], strlen(refused[i]), out, &k);
		assert_int_equal(k, 0);
		assert_int_equal(n, GW_REQUEST_ID_GEN_LEN);
		assert_int_equal(strlen(out), GW_REQUEST_ID_GEN_LEN);
	}
	/* a NUL inside the given length is refused */
	assert_false(gw_request_id_sane("ab\0cd", 5));
	/* the length bound: 128 kept, 129 not */
	char longid[GW_REQUEST_ID_MAX + 2];
	memset(longid, 'x', sizeof(longid));
	assert_true(gw_request_id_sane(longid, GW_REQUEST_ID_MAX));
	assert_false(gw_request_id_sane(longid, GW_REQUEST_ID_MAX + 1));
	char out[GW_REQUEST_ID_MAX + 1];
	assert_int_equal(gw_request_id(longid, GW_REQUEST_ID_MAX, out, NULL), GW_REQUEST_ID_MAX);
	assert_memory_equal(out, longid, GW_REQUEST_ID_MAX);
	assert_int_equal(out[GW_REQUEST_ID_MAX], '\0');
	assert_false(gw_request_id_sane(NULL, 3));
	/* absent: generated */
	int k = -1;
	assert_int_equal(gw_request_id(NULL, 0, out, &k), GW_REQUEST_ID_GEN_LEN);
	assert_int_equal(k, 0);
}

#define IDS_PER_THREAD 20000
#define ID_THREADS     4

static char ids[ID_THREADS * IDS_PER_THREAD][GW_REQUEST_ID_GEN_LEN + 1];

static void *make_ids(void *arg)
{
	size_t t = (size_t)(uintptr_t)arg;
	for (size_t i = 0; i < IDS_PER_THREAD; i++)
		gw_request_id_generate(ids[t * IDS_PER_THREAD + i]);
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, GW_REQUEST_ID_GEN_LEN);
}

static void test_request_id_generation(void **state)
{
	(void)state;
	pthread_t th[ID_THREADS];
	for (size_t t = 0; t < ID_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, make_ids, (void *)(uintptr_t)t), 0);
	for (size_t t = 0; t < ID_THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	size_t n = ID_THREADS * IDS_PER_THREAD;
	/* the form: 32 lower-case hex digits; every hex digit appears in
	 * every position over many ids (no stuck nibble) */
	unsigned seen[GW_REQUEST_ID_GEN_LEN] = {0};
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(strlen(ids[i]), GW_REQUEST_ID_GEN_LEN);
		assert_true(gw_request_id_sane(ids[i], GW_REQUEST_ID_GEN_LEN));
		for (size_t p = 0; p < GW_REQUEST_ID_GEN_LEN; p++) {
			const char *d = strchr("0123456789abcdef", ids[i][p]);
			assert_non_null(d);
			seen[p] |= 1u << (d - "0123456789abcdef");
		}
	}
	for (size_t p = 0; p < GW_REQUEST_ID_GEN_LEN; p++)
		assert_int_equal(seen[p], 0xffffu);
	/* unique, within and across threads */
	qsort(ids, n, sizeof(ids[0]), cmp_id);
	for (size_t i = 1; i < n; i++)
		if (memcmp(ids[i - 1], ids[i], GW_REQUEST_ID_GEN_LEN) == 0)
			fail_msg("id %s generated twice", ids[i]);
}

/* ---- traceparent ------------------------------------------------------------------------ */

static void test_traceparent(void **state)
{
	(void)state;
	const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	gw_traceparent tp;
	assert_int_equal(gw_traceparent_parse(ok, strlen(ok), &tp), 0);
	assert_int_equal(tp.version, 0);
	assert_int_equal(tp.flags, 1);
	assert_string_equal(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(tp.parent_id, "00f067aa0ba902b7");
	assert_string_equal(tp.value, ok);
	/* surrounding whitespace, any flags */
	const char *spaced = " \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff ";
	assert_int_equal(gw_traceparent_parse(spaced, strlen(spaced), &tp), 0);
	assert_int_equal(tp.flags, 0xff);
	assert_string_equal(tp.value, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff");
	/* a later version: read as 00, passed on as 00, future fields dropped */
	const char *v1 = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-whatever";
	assert_int_equal(gw_traceparent_parse(v1, strlen(v1), &tp), 0);
	assert_int_equal(tp.version, 0xcc);
	assert_string_equal(tp.value, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
	const char *v1short = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
	assert_int_equal(gw_traceparent_parse(v1short, strlen(v1short), NULL), 0);

	static const char *const bad[] = {
	    "",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",     /* short */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",   /* 00 with more */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",   /* 00 with more */
	    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* version ff */
	    "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* not hex */
	    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    /* zero trace */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    /* zero parent */
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    /* upper case */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",    /* upper case */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",    /* upper case */
	    "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* separator */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",    /* separator */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",    /* separator */
	    "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",    /* misplaced dash */
	    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   /* later, no dash */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\x01", /* control */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (gw_traceparent_parse(bad[i], strlen(bad[i]), &tp) == 0)
			fail_msg("traceparent '%s' accepted", bad[i]);
	assert_int_equal(gw_traceparent_parse(NULL, 0, &tp), -1);
	/* a NUL inside: refused */
	char nul[56];
	memcpy(nul, ok, 56);
	nul[10] = '\0';
	assert_int_equal(gw_traceparent_parse(nul, 55, &tp), -1);
	/* too long to be read at all */
	char *big = malloc(600);
	assert_non_null(big);
	memcpy(big, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", 56);
	memset(big + 56, 'a', 600 - 56);
	assert_int_equal(gw_traceparent_parse(big, 512, NULL), 0);
	assert_int_equal(gw_traceparent_parse(big, 513, NULL), -1);
	free(big);
}

static void test_metadata(void **state)
{
	(void)state;
	gw_traceparent tp;
	const char *v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	assert_int_equal(gw_traceparent_parse(v, strlen(v), &tp), 0);
	rpc_metadata_entry md[GW_REQID_MD_MAX];
	assert_int_equal(gw_reqid_metadata("rid-1", &tp, md), 2);
	assert_string_equal(md[0].key, "x-request-id");
	assert_string_equal(md[0].value, "rid-1");
	assert_string_equal(md[1].key, "traceparent");
	assert_string_equal(md[1].value, v);
	assert_int_equal(gw_reqid_metadata("rid-1", NULL, md), 1);
	assert_int_equal(gw_reqid_metadata("", &tp, md), 0);
	assert_int_equal(gw_reqid_metadata(NULL, &tp, md), 0);
}

/* ---- access log ---------------------------------------------------------------------------- */

static json_t *parse_line(const char *line, size_t n)
{
	assert_true(n > 0);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1)); /* one line */
	json_error_t err;
	json_t *j = json_loadb(line, n - 1, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		fail_msg("not JSON (%s): %.*s", err.text, (int)n, line);
	return j;
}

static const char *str_of(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	if (v == NULL || !json_is_string(v))
		fail_msg("no string %s", key);
	return json_string_value(v);
}

static void test_access_log_line(void **state)
{
	(void)state;
	char buf[GW_ACCESS_LINE_MAX];
	gw_access_entry e = {.start_sec = 1768471200, /* 2026-01-15T10:00:00Z */
	                     .start_nsec = 123456789,
	                     .method = "GET",
	                     .route = "/v1/products/{product_id}",
	                     .status = 200,
	                     .duration_ns = 1234567,
	                     .request_id = "4bf92f3577b34da6a3ce929d0e0e4736",
	                     .user_id = "3f0c8a4e-1111-4222-8333-944455556666",
	                     .bytes_in = 0,
	                     .bytes_out = 512,
	                     .client = "203.0.113.7",
	                     .cache = "hit"};
	size_t n = gw_access_log_format(&e, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(
	    buf,
	    "{\"ts\":\"2026-01-15T10:00:00.123Z\",\"level\":\"info\",\"event\":\"http.access\","
	    "\"request_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"method\":\"GET\","
	    "\"route\":\"/v1/products/{product_id}\",\"status\":200,\"duration_ms\":1.234,"
	    "\"bytes_in\":0,\"bytes_out\":512,\"client\":\"203.0.113.7\","
	    "\"user_id\":\"3f0c8a4e-1111-4222-8333-944455556666\",\"cache\":\"hit\"}\n");
	json_t *j = parse_line(buf, n);
	/* exactly the documented keys: no header, no body, ever */
	static const char *const keys[] = {
	    "ts",          "level",    "event",     "request_id", "method",  "route", "status",
	    "duration_ms", "bytes_in", "bytes_out", "client",     "user_id", "cache"};
	assert_int_equal(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(json_object_get(j, keys[i]));
	assert_true(json_is_real(json_object_get(j, "duration_ms")));
	json_decref(j);

	/* anonymous, no route, optional fields absent; durations' precision */
	gw_access_entry a = {.start_sec = 1768471200,
	                     .start_nsec = 999999999,
	                     .method = "DELETE",
	                     .status = 404,
	                     .duration_ns = 999,
	                     .bytes_in = 17};
	n = gw_access_log_format(&a, buf, sizeof(buf));
	j = parse_line(buf, n);
	assert_string_equal(str_of(j, "route"), "");
	assert_string_equal(str_of(j, "ts"), "2026-01-15T10:00:00.999Z");
	assert_null(json_object_get(j, "user_id"));
	assert_null(json_object_get(j, "request_id"));
	assert_null(json_object_get(j, "client"));
	assert_null(json_object_get(j, "cache"));
	assert_non_null(strstr(buf, "\"duration_ms\":0.000,"));
	assert_int_equal(json_integer_value(json_object_get(j, "bytes_in")), 17);
	json_decref(j);
	a.duration_ns = 12345678901ull;
	gw_access_log_format(&a, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"duration_ms\":12345.678,"));
	a.method = NULL;
	gw_access_log_format(&a, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"method\":\"\""));

	/* now, when no start is given */
	a.start_sec = 0;
	a.start_nsec = 0;
	n = gw_access_log_format(&a, buf, sizeof(buf));
	j = parse_line(buf, n);
	assert_int_equal(strlen(str_of(j, "ts")), 24);
	json_decref(j);
	/* a buffer under the bound: refused */
	char small[100];
	assert_int_equal(gw_access_log_format(&a, small, sizeof(small)), 0);
	assert_int_equal(gw_access_log_format(NULL, buf, sizeof(buf)), 0);
}

static void test_access_log_escaping(void **state)
{
	(void)state;
	char buf[GW_ACCESS_LINE_MAX];
	/* hostile strings: quotes, backslashes, control characters, a forged
	 * second line, invalid UTF-8, valid UTF-8 */
	gw_access_entry e = {.start_sec = 1,
	                     .method = "G\"ET",
	                     .route = "/v1/\\x",
	                     .status = 200,
	                     .request_id = "a\"b\\c",
	                     .user_id = "u\n{\"level\":\"error\"}\r\t\x01\x7f",
	                     .client = "caf\xc3\xa9 \xff\xc3(\xe2\x82",
	                     .cache = "miss"};
	size_t n = gw_access_log_format(&e, buf, sizeof(buf));
	json_t *j = parse_line(buf, n);
	assert_string_equal(str_of(j, "method"), "G\"ET");
	assert_string_equal(str_of(j, "route"), "/v1/\\x");
	assert_string_equal(str_of(j, "request_id"), "a\"b\\c");
	assert_string_equal(str_of(j, "user_id"), "u\n{\"level\":\"error\"}\r\t\x01\x7f");
	assert_string_equal(str_of(j, "client"),
	                    "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(str_of(j, "level"), "info");
	assert_non_null(strstr(buf, "\\u0001\\u007f"));
	json_decref(j);
	/* overlong forms and surrogates are not UTF-8 */
	e.client = "\xc0\xaf\xed\xa0\x80";
	n = gw_access_log_format(&e, buf, sizeof(buf));
	j = parse_line(buf, n);
	assert_string_equal(str_of(j, "client"),
	                    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);

	/* the worst case: every field at its bound, every byte escaped to six:
	 * the line stays whole, within GW_ACCESS_LINE_MAX, valid JSON */
	static char worst[1024];
	memset(worst, '\x01', sizeof(worst) - 1);
	gw_access_entry w = {.start_sec = 1,
	                     .method = worst,
	                     .route = worst,
	                     .status = 599,
	                     .duration_ns = UINT64_MAX,
	                     .request_id = worst,
	                     .user_id = worst,
	                     .bytes_in = INT64_MAX, /* jansson reads up to this */
	                     .bytes_out = INT64_MAX,
	                     .client = worst,
	                     .cache = worst};
	n = gw_access_log_format(&w, buf, sizeof(buf));
	assert_true(n <= GW_ACCESS_LINE_MAX);
	j = parse_line(buf, n);
	assert_int_equal(strlen(str_of(j, "method")), 32);
	assert_int_equal(strlen(str_of(j, "route")), 256);
	assert_int_equal(strlen(str_of(j, "request_id")), 128);
	assert_int_equal(strlen(str_of(j, "user_id")), 64);
	assert_int_equal(strlen(str_of(j, "client")), 64);
	assert_int_equal(strlen(str_of(j, "cache")), 16);
	json_decref(j);
	/* a cut never splits a character: 127 'a' then 'é' cut at 128 */
	char id[200];
	memset(id, 'a', 127);
	memcpy(id + 127, "\xc3\xa9zz", 5);
	e.request_id = id;
	e.client = NULL;
	n = gw_access_log_format(&e, buf, sizeof(buf));
	j = parse_line(buf, n);
	assert_int_equal(strlen(str_of(j, "request_id")), 127);
	json_decref(j);
}

static void test_access_log_write(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	gw_access_log *log;
	assert_int_equal(gw_access_log_open(p[1], 1, &log), RPC_STATUS_OK);
	gw_access_entry e = {.method = "GET", .route = "/healthz", .status = 200};
	assert_int_equal(gw_access_log_write(log, &e), RPC_STATUS_OK);
	assert_int_equal(gw_access_log_write(log, &e), RPC_STATUS_OK);
	char buf[2 * GW_ACCESS_LINE_MAX];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	char *second = strchr(buf, '\n');
	assert_non_null(second);
	second++;
	json_t *j = parse_line(buf, (size_t)(second - buf));
	assert_string_equal(str_of(j, "route"), "/healthz");
	json_decref(j);
	j = parse_line(second, strlen(second));
	json_decref(j);
	assert_int_equal(gw_access_log_dropped(log), 0);
	gw_access_log_close(log); /* closes p[1] */
	/* a write that fails is counted */
	close(p[0]);
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	assert_int_equal(gw_access_log_open(p[1], 0, &log), RPC_STATUS_OK);
	assert_int_equal(gw_access_log_write(log, &e), RPC_STATUS_UNAVAILABLE);
	assert_int_equal(gw_access_log_dropped(log), 1);
	gw_access_log_close(log);
	signal(SIGPIPE, old);
	assert_int_equal(fcntl(p[1], F_GETFD), 0); /* not owned: still open */
	close(p[1]);
	assert_int_equal(gw_access_log_open(-1, 0, &log), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(log);
	assert_int_equal(gw_access_log_write(NULL, &e), RPC_STATUS_INVALID_ARGUMENT);
	gw_access_log_close(NULL);

	/* addresses */
	char a[GW_ACCESS_ADDR_MAX];
	struct sockaddr_in in4 = {.sin_family = AF_INET};
	in4.sin_addr.s_addr = htonl(0xcb007107); /* 203.0.113.7 */
	assert_int_equal(gw_access_format_addr((struct sockaddr *)&in4, sizeof(in4), a), 11);
	assert_string_equal(a, "203.0.113.7");
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	in6.sin6_addr.s6_addr[0] = 0x20;
	in6.sin6_addr.s6_addr[1] = 0x01;
	in6.sin6_addr.s6_addr[2] = 0x0d;
	in6.sin6_addr.s6_addr[3] = 0xb8;
	in6.sin6_addr.s6_addr[15] = 1;
	gw_access_format_addr((struct sockaddr *)&in6, sizeof(in6), a);
	assert_string_equal(a, "2001:db8::1");
	struct sockaddr_in6 mapped = {.sin6_family = AF_INET6};
	mapped.sin6_addr.s6_addr[10] = 0xff;
	mapped.sin6_addr.s6_addr[11] = 0xff;
	memcpy(mapped.sin6_addr.s6_addr + 12, "\x7f\x00\x00\x01", 4);
	gw_access_format_addr((struct sockaddr *)&mapped, sizeof(mapped), a);
	assert_string_equal(a, "127.0.0.1");
	assert_int_equal(gw_access_format_addr(NULL, 0, a), 0);
	assert_string_equal(a, "");
	assert_int_equal(gw_access_format_addr((struct sockaddr *)&in4, 4, a), 0); /* short */
}

/* ---- metrics --------------------------------------------------------------------------------- */

static size_t route_slot(const char *method, const char *template)
{
	for (size_t i = 0; i < panthera_routes.n_routes; i++)
		if (strcmp(panthera_routes.routes[i].http_method, method) == 0 &&
		    strcmp(panthera_routes.routes[i].path_template, template) == 0)
			return i;
	fail_msg("no route %s %s", method, template);
	return 0;
}

/* 1 when `line` is a whole line of text t. */
static int has_line(const gw_metrics_text *t, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = t->data; p != NULL && *p;) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, line, n) == 0)
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

#define EXPECT_LINE(t, l)                                                 \
	do {                                                              \
		if (!has_line((t), (l)))                                  \
			fail_msg("no line '%s' in:\n%s", (l), (t)->data); \
	} while (0)

static rpc_status source_ok(gw_metrics_text *out, void *arg)
{
	const char *text = arg;
	return gw_metrics_text_append(out, text, strlen(text));
}

static rpc_status source_fails(gw_metrics_text *out, void *arg)
{
	(void)arg;
	gw_metrics_text_append(out, "half_written 1", 14);
	return RPC_STATUS_UNAVAILABLE;
}

/* Every line ends with a newline; every sample of the gateway's families
 * comes after its family's TYPE line. */
static void check_format(const gw_metrics_text *t)
{
	char typed[64][128];
	size_t n_typed = 0;
	for (const char *p = t->data; *p;) {
		const char *end = strchr(p, '\n');
		assert_non_null(end); /* the text ends with a newline */
		char line[1024];
		size_t len = (size_t)(end - p);
		assert_true(len < sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p = end + 1;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char *sp = strchr(line + 7, ' ');
			assert_non_null(sp);
			*sp = '\0';
			assert_true(n_typed < 64);
			size_t tl = strlen(line + 7);
			assert_true(tl < sizeof(typed[0]));
			memcpy(typed[n_typed++], line + 7, tl + 1);
			continue;
		}
		if (line[0] == '#' || line[0] == '\0' ||
		    strncmp(line, "panthera_gateway_", 17) != 0)
			continue; /* other sections answer for themselves */
		size_t name_len = strcspn(line, "{ ");
		int found = 0;
		for (size_t i = 0; i < n_typed && !found; i++) {
			size_t tl = strlen(typed[i]);
			found = strncmp(line, typed[i], tl) == 0 &&
			        (name_len == tl || (name_len > tl && line[tl] == '_'));
		}
		if (!found)
			fail_msg("sample before its TYPE: %s", line);
	}
}

static void test_metrics_exposition(void **state)
{
	(void)state;
	gw_cache *cache;
	assert_int_equal(gw_cache_create(NULL, &cache), RPC_STATUS_OK);
	static const char *const extra[] = {"/healthz", "/x\"y\\z\nw"};
	gw_metrics_config cfg = {
	    .routes = &panthera_routes, .extra = extra, .n_extra = 2, .shards = 3, .cache = cache};
	gw_metrics *m;
	assert_int_equal(gw_metrics_create(&cfg, &m), RPC_STATUS_OK);
	size_t get = route_slot("GET", "/v1/products/{product_id}");
	size_t post = route_slot("POST", "/v1/products");
	/* 3 GETs: 200 in 0.3 ms and 2 ms (two shards), 304 in 40 ms; one 201;
	 * one unmatched 404; one 418 (a class); one /healthz; one in flight */
	for (int i = 0; i < 7; i++)
		gw_metrics_request_begin(m, (unsigned)i);
	gw_metrics_request_end(m, 0, get, 200, 300000);
	gw_metrics_request_end(m, 4, get, 200, 2000000); /* shard 4 % 3 */
	gw_metrics_request_end(m, 2, get, 304, 40000000);
	gw_metrics_request_end(m, 1, post, 201, 1000000); /* exactly on a bound: le="0.001" */
	gw_metrics_request_end(m, 0, GW_METRICS_UNMATCHED, 404, 50000);
	gw_metrics_request_end(m, 0, gw_metrics_extra_slot(m, 1), 418, 20000000000ull);
	gw_metrics_rate_limited(m, 1);
	gw_metrics_rate_limited(m, 2);
	gw_cache_hit h;
	gw_cache_lookup(cache, "k", 1, &h); /* a miss */

	gw_metrics_text t;
	gw_metrics_text_init(&t, 0);
	assert_int_equal(gw_metrics_add_source(m, source_ok,
	                                       "# HELP rpc_client_calls_total Calls.\n"
	                                       "# TYPE rpc_client_calls_total counter\n"
	                                       "rpc_client_calls_total 5"),
	                 RPC_STATUS_OK);
	assert_int_equal(gw_metrics_add_source(m, source_fails, NULL), RPC_STATUS_OK);
	assert_int_equal(gw_metrics_add_source(m, source_ok, "svc_up 1\n"), RPC_STATUS_OK);
	assert_int_equal(gw_metrics_render(m, &t), RPC_STATUS_OK);
	assert_int_equal(strlen(t.data), t.len);

	EXPECT_LINE(&t, "# HELP panthera_gateway_http_requests_total HTTP requests answered, by "
	                "route template and status code.");
	EXPECT_LINE(&t, "# TYPE panthera_gateway_http_requests_total counter");
	EXPECT_LINE(&t, "panthera_gateway_http_requests_total{method=\"GET\",route=\"/v1/products/"
	                "{product_id}\",code=\"200\"} 2");
	EXPECT_LINE(&t, "panthera_gateway_http_requests_total{method=\"GET\",route=\"/v1/products/"
	                "{product_id}\",code=\"304\"} 1");
	EXPECT_LINE(&t, "panthera_gateway_http_requests_total{method=\"POST\",route=\"/v1/"
	                "products\",code=\"201\"} 1");
	EXPECT_LINE(&t, "panthera_gateway_http_requests_total{route=\"unmatched\",code=\"404\"} 1");
	/* label escaping: backslash, quote, newline */
	EXPECT_LINE(&t, "panthera_gateway_http_requests_total{route=\"/x\\\"y\\\\z\\nw\","
	                "code=\"4xx\"} 1");
	/* pairs never seen are not written */
	assert_null(strstr(t.data, "code=\"500\""));
	assert_null(strstr(t.data, "route=\"/healthz\""));

	/* the histogram: cumulative buckets, +Inf = count, sum in seconds */
	EXPECT_LINE(&t, "# TYPE panthera_gateway_http_request_duration_seconds histogram");
	const char *g = "panthera_gateway_http_request_duration_seconds_bucket{method=\"GET\","
	                "route=\"/v1/products/{product_id}\",le=";
	static const struct {
		const char *le;
		int count;
	} want[] = {{"0.0001", 0}, {"0.00025", 0}, {"0.0005", 1}, {"0.001", 1}, {"0.0025", 2},
	            {"0.005", 2},  {"0.01", 2},    {"0.025", 2},  {"0.05", 3},  {"0.1", 3},
	            {"0.25", 3},   {"0.5", 3},     {"1", 3},      {"2.5", 3},   {"5", 3},
	            {"10", 3},     {"+Inf", 3}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), "%s\"%s\"} %d", g, want[i].le, want[i].count);
		EXPECT_LINE(&t, line);
	}
	EXPECT_LINE(&t, "panthera_gateway_http_request_duration_seconds_sum{method=\"GET\","
	                "route=\"/v1/products/{product_id}\"} 0.042300000");
	EXPECT_LINE(&t, "panthera_gateway_http_request_duration_seconds_count{method=\"GET\","
	                "route=\"/v1/products/{product_id}\"} 3");
	EXPECT_LINE(&t, "panthera_gateway_http_request_duration_seconds_bucket{method=\"POST\","
	                "route=\"/v1/products\",le=\"0.001\"} 1");
	EXPECT_LINE(&t, "panthera_gateway_http_request_duration_seconds_bucket{method=\"POST\","
	                "route=\"/v1/products\",le=\"0.0005\"} 0");
	EXPECT_LINE(
	    &t, "panthera_gateway_http_request_duration_seconds_bucket{route=\"/x\\\"y\\\\z\\nw\","
	        "le=\"10\"} 0");
	EXPECT_LINE(
	    &t, "panthera_gateway_http_request_duration_seconds_bucket{route=\"/x\\\"y\\\\z\\nw\","
	        "le=\"+Inf\"} 1");
	EXPECT_LINE(&t,
	            "panthera_gateway_http_request_duration_seconds_sum{route=\"/x\\\"y\\\\z\\nw\"}"
	            " 20.000000000");

	EXPECT_LINE(&t, "# TYPE panthera_gateway_http_requests_in_flight gauge");
	EXPECT_LINE(&t, "panthera_gateway_http_requests_in_flight 1");
	EXPECT_LINE(&t, "# TYPE panthera_gateway_rate_limited_total counter");
	EXPECT_LINE(&t, "panthera_gateway_rate_limited_total 2");
	EXPECT_LINE(&t, "# TYPE panthera_gateway_cache_hits_total counter");
	EXPECT_LINE(&t, "panthera_gateway_cache_hits_total 0");
	EXPECT_LINE(&t, "panthera_gateway_cache_misses_total 1");
	EXPECT_LINE(&t, "panthera_gateway_cache_evictions_total 0");
	EXPECT_LINE(&t, "# TYPE panthera_gateway_cache_bytes gauge");
	EXPECT_LINE(&t, "panthera_gateway_cache_max_bytes 67108864");
	/* the sources: the first as given plus its newline, the failing one
	 * left out, the third after it */
	EXPECT_LINE(&t, "# TYPE rpc_client_calls_total counter");
	EXPECT_LINE(&t, "rpc_client_calls_total 5");
	EXPECT_LINE(&t, "svc_up 1");
	assert_null(strstr(t.data, "half_written"));
	assert_true(strstr(t.data, "rpc_client_calls_total 5") < strstr(t.data, "svc_up 1"));
	check_format(&t);
	gw_metrics_text_free(&t);

	/* a bound too small for the text: RESOURCE_EXHAUSTED */
	gw_metrics_text_init(&t, 100);
	assert_int_equal(gw_metrics_render(m, &t), RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_true(t.failed);
	gw_metrics_text_free(&t);
	gw_metrics_text_free(NULL);
	gw_metrics_destroy(m);
	gw_cache_destroy(cache);
}

static void test_metrics_text_helpers(void **state)
{
	(void)state;
	gw_metrics_text t;
	gw_metrics_text_init(&t, 0);
	assert_int_equal(gw_metrics_text_family(&t, "a_b:c", "gauge", "Line one\nback\\slash"),
	                 RPC_STATUS_OK);
	EXPECT_LINE(&t, "# HELP a_b:c Line one\\nback\\\\slash");
	EXPECT_LINE(&t, "# TYPE a_b:c gauge");
	gw_metrics_label l[] = {{"k", "v"}, {"_x2", "a\"b"}};
	assert_int_equal(gw_metrics_text_sample(&t, "a_b:c", l, 2, 18446744073709551615ull),
	                 RPC_STATUS_OK);
	EXPECT_LINE(&t, "a_b:c{k=\"v\",_x2=\"a\\\"b\"} 18446744073709551615");
	assert_int_equal(gw_metrics_text_sample_f(&t, "f", NULL, 0, 0.25), RPC_STATUS_OK);
	EXPECT_LINE(&t, "f 0.25");
	gw_metrics_text_sample_f(&t, "f", NULL, 0, INFINITY);
	EXPECT_LINE(&t, "f +Inf");
	gw_metrics_text_sample_f(&t, "f", NULL, 0, -INFINITY);
	EXPECT_LINE(&t, "f -Inf");
	gw_metrics_text_sample_f(&t, "f", NULL, 0, NAN);
	EXPECT_LINE(&t, "f NaN");
	/* what is refused, leaving the text as it was */
	size_t len = t.len;
	assert_int_equal(gw_metrics_text_family(&t, "9x", "gauge", ""),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_metrics_text_family(&t, "x-y", "gauge", ""),
	                 RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_metrics_text_family(&t, "x", "counterish", ""),
	                 RPC_STATUS_INVALID_ARGUMENT);
	gw_metrics_label bad[] = {{"a:b", "v"}};
	assert_int_equal(gw_metrics_text_sample(&t, "x", bad, 1, 1), RPC_STATUS_INVALID_ARGUMENT);
	gw_metrics_label nullv[] = {{"a", NULL}};
	assert_int_equal(gw_metrics_text_sample(&t, "x", nullv, 1, 1), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_metrics_text_append(&t, "a\0b", 3), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(t.len, len);
	assert_int_equal(gw_metrics_text_append(&t, "", 0), RPC_STATUS_OK);
	assert_int_equal(t.len, len);
	gw_metrics_text_free(&t);

	/* configuration checks */
	gw_metrics *m;
	gw_metrics_config cfg = {.shards = GW_METRICS_MAX_SHARDS + 1};
	assert_int_equal(gw_metrics_create(&cfg, &m), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(m);
	static const char *const empty[] = {""};
	cfg = (gw_metrics_config){.extra = empty, .n_extra = 1};
	assert_int_equal(gw_metrics_create(&cfg, &m), RPC_STATUS_INVALID_ARGUMENT);
	static const char *const notutf8[] = {"/a\xff"};
	cfg = (gw_metrics_config){.extra = notutf8, .n_extra = 1};
	assert_int_equal(gw_metrics_create(&cfg, &m), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_metrics_create(NULL, &m), RPC_STATUS_OK);
	/* no table: only "unmatched"; an out-of-range slot counts there */
	gw_metrics_request_begin(m, 9);
	gw_metrics_request_end(m, 9, 12345, 700, 1);
	assert_int_equal(gw_metrics_extra_slot(m, 0), GW_METRICS_UNMATCHED);
	for (unsigned i = 0; i < GW_METRICS_MAX_SOURCES; i++)
		assert_int_equal(gw_metrics_add_source(m, source_ok, "x 1\n"), RPC_STATUS_OK);
	assert_int_equal(gw_metrics_add_source(m, source_ok, "x 1\n"),
	                 RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(gw_metrics_add_source(m, NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
	gw_metrics_text_init(&t, 0);
	assert_int_equal(gw_metrics_render(m, &t), RPC_STATUS_OK);
	EXPECT_LINE(&t,
	            "panthera_gateway_http_requests_total{route=\"unmatched\",code=\"other\"} 1");
	EXPECT_LINE(&t, "panthera_gateway_http_requests_in_flight 0");
	assert_null(strstr(t.data, "panthera_gateway_cache_")); /* no cache given */
	gw_metrics_text_free(&t);
	gw_metrics_destroy(m);
	gw_metrics_destroy(NULL);
}

#define M_THREADS 4
#define M_ROUNDS  50000

typedef struct mworker {
	gw_metrics *m;
	unsigned id;
	size_t slot;
} mworker;

static void *count_requests(void *arg)
{
	mworker *w = arg;
	for (unsigned i = 0; i < M_ROUNDS; i++) {
		/* every thread counts on every shard: relaxed atomics lose nothing */
		gw_metrics_request_begin(w->m, i);
		gw_metrics_request_end(w->m, i + w->id, w->slot, i % 2 ? 200 : 503, i);
		if (i % 10 == 0)
			gw_metrics_rate_limited(w->m, i);
	}
	return NULL;
}

static void test_metrics_concurrent(void **state)
{
	(void)state;
	gw_metrics_config cfg = {.routes = &panthera_routes, .shards = 2};
	gw_metrics *m;
	assert_int_equal(gw_metrics_create(&cfg, &m), RPC_STATUS_OK);
	size_t slot = route_slot("GET", "/v1/categories");
	pthread_t th[M_THREADS];
	mworker w[M_THREADS];
	for (unsigned i = 0; i < M_THREADS; i++) {
		w[i] = (mworker){m, i, slot};
		assert_int_equal(pthread_create(&th[i], NULL, count_requests, &w[i]), 0);
	}
	for (unsigned i = 0; i < M_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	gw_metrics_text t;
	gw_metrics_text_init(&t, 0);
	assert_int_equal(gw_metrics_render(m, &t), RPC_STATUS_OK);
	char line[256];
	snprintf(line, sizeof(line),
	         "panthera_gateway_http_requests_total{method=\"GET\",route=\"/v1/categories\","
	         "code=\"200\"} %d",
	         M_THREADS * M_ROUNDS / 2);
	EXPECT_LINE(&t, line);
	snprintf(line, sizeof(line),
	         "panthera_gateway_http_request_duration_seconds_count{method=\"GET\","
	         "route=\"/v1/categories\"} %d",
	         M_THREADS * M_ROUNDS);
	EXPECT_LINE(&t, line);
	snprintf(line, sizeof(line), "panthera_gateway_rate_limited_total %d",
	         M_THREADS * M_ROUNDS / 10);
	EXPECT_LINE(&t, line);
	EXPECT_LINE(&t, "panthera_gateway_http_requests_in_flight 0");
	gw_metrics_text_free(&t);
	gw_metrics_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_id_sanity),
	    cmocka_unit_test(test_request_id_generation),
	    cmocka_unit_test(test_traceparent),
	    cmocka_unit_test(test_metadata),
	    cmocka_unit_test(test_access_log_line),
	    cmocka_unit_test(test_access_log_escaping),
	    cmocka_unit_test(test_access_log_write),
	    cmocka_unit_test(test_metrics_exposition),
	    cmocka_unit_test(test_metrics_text_helpers),
	    cmocka_unit_test(test_metrics_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
