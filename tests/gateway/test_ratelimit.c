/*
 * test_ratelimit.c - the gateway's rate limiter and client addresses:
 * buckets that refill exactly over a fake clock, burst, the two classes,
 * per-user and per-address keys (IPv6 by /64, mapped IPv4), eviction that
 * keeps memory fixed under a million distinct keys and follows LRU order,
 * four threads hammering one table (never more allowed than burst plus
 * refill), header values and the 429 body; then addresses, trusted-proxy
 * lists (CIDR, IPv4 and IPv6) and X-Forwarded-For (untrusted peer, chains
 * of proxies, right-most untrusted, garbage, ports, several fields).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_clientip.h"
#include "gw_ratelimit.h"

#define assert_status(expr, want)                                                     \
	do {                                                                          \
		rpc_status got_ = (expr);                                             \
		if (got_ != (want))                                                   \
			fail_msg("%s: got %s, want %s", #expr, rpc_status_name(got_), \
			         rpc_status_name(want));                              \
	} while (0)

static gw_ratelimit *make(uint32_t per_min, uint32_t burst, uint32_t auth_per_min,
                          uint32_t auth_burst, size_t capacity)
{
	gw_ratelimit_opts o = {{{per_min, burst}, {auth_per_min, auth_burst}}, capacity};
	gw_ratelimit *rl = NULL;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_OK);
	assert_non_null(rl);
	return rl;
}

static gw_ratelimit_key user_key(const char *id)
{
	gw_ratelimit_key k;
	assert_status(gw_ratelimit_key_user(&k, id, strlen(id)), RPC_STATUS_OK);
	return k;
}

static gw_ratelimit_key addr_key(const char *text)
{
	gw_ip ip;
	assert_int_equal(gw_ip_parse(text, strlen(text), &ip), 0);
	gw_ratelimit_key k;
	gw_ratelimit_key_addr(&k, &ip);
	return k;
}

static gw_ratelimit_verdict check(gw_ratelimit *rl, gw_ratelimit_class cls,
                                  const gw_ratelimit_key *k, int64_t now)
{
	gw_ratelimit_verdict v;
	assert_status(gw_ratelimit_check(rl, cls, k, now, &v), RPC_STATUS_OK);
	return v;
}

/* Requests allowed at `now` until the first refusal. */
static unsigned drain(gw_ratelimit *rl, gw_ratelimit_class cls, const gw_ratelimit_key *k,
                      int64_t now)
{
	unsigned n = 0;
	while (check(rl, cls, k, now).allowed)
		n++;
	return n;
}

/* ---- options -------------------------------------------------------------- */

static void test_ratelimit_create_rejects_bad_options(void **state)
{
	(void)state;
	gw_ratelimit *rl = (gw_ratelimit *)1;
	gw_ratelimit_opts o = {{{60, 0}, {20, 0}}, 0};
	assert_status(gw_ratelimit_create(NULL, &o), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_ratelimit_create(&rl, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(rl);
	o.classes[GW_RL_AUTH].per_min = 0;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_INVALID_ARGUMENT);
	o.classes[GW_RL_AUTH].per_min = GW_RATELIMIT_MAX_RATE + 1;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_INVALID_ARGUMENT);
	o.classes[GW_RL_AUTH].per_min = 20;
	o.classes[GW_RL_DEFAULT].burst = GW_RATELIMIT_MAX_RATE + 1;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_INVALID_ARGUMENT);
	o.classes[GW_RL_DEFAULT].burst = 0;
	o.capacity = GW_RATELIMIT_MIN_CAPACITY - 1;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_INVALID_ARGUMENT);
	o.capacity = (size_t)GW_RATELIMIT_MAX_CAPACITY + 1;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(rl);

	/* The default capacity, and one rounded up to whole shards. */
	o.capacity = 0;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_OK);
	gw_ratelimit_stats st;
	gw_ratelimit_stats_get(rl, &st);
	assert_true(st.capacity >= GW_RATELIMIT_DEFAULT_CAPACITY);
	assert_true(st.capacity < GW_RATELIMIT_DEFAULT_CAPACITY + GW_RATELIMIT_SHARDS);
	assert_int_equal(st.buckets, 0);
	gw_ratelimit_destroy(rl);
	o.capacity = 100;
	assert_status(gw_ratelimit_create(&rl, &o), RPC_STATUS_OK);
	gw_ratelimit_stats_get(rl, &st);
	assert_int_equal(st.capacity, 128);
	gw_ratelimit_destroy(rl);
	gw_ratelimit_destroy(NULL);
}

static void test_ratelimit_rejects_bad_keys(void **state)
{
	(void)state;
	gw_ratelimit *rl = make(60, 0, 20, 0, 0);
	gw_ratelimit_key k = user_key("u1");
	gw_ratelimit_verdict v;
	v.allowed = 1;
	assert_status(gw_ratelimit_check(rl, (gw_ratelimit_class)2, &k, 0, &v),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(v.allowed, 0);
	assert_status(gw_ratelimit_check(rl, GW_RL_DEFAULT, NULL, 0, &v),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_ratelimit_check(NULL, GW_RL_DEFAULT, &k, 0, &v),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_ratelimit_check(rl, GW_RL_DEFAULT, &k, 0, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	gw_ratelimit_key bad = k;
	bad.kind = 0;
	assert_status(gw_ratelimit_check(rl, GW_RL_DEFAULT, &bad, 0, &v),
	              RPC_STATUS_INVALID_ARGUMENT);
	bad = k;
	bad.len = 0;
	assert_status(gw_ratelimit_check(rl, GW_RL_DEFAULT, &bad, 0, &v),
	              RPC_STATUS_INVALID_ARGUMENT);
	bad.len = GW_RATELIMIT_KEY_MAX + 1;
	assert_status(gw_ratelimit_check(rl, GW_RL_DEFAULT, &bad, 0, &v),
	              RPC_STATUS_INVALID_ARGUMENT);

	char longid[GW_RATELIMIT_KEY_MAX + 2];
	memset(longid, 'a', sizeof(longid));
	assert_status(gw_ratelimit_key_user(&bad, longid, GW_RATELIMIT_KEY_MAX + 1),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(bad.len, 0);
	assert_status(gw_ratelimit_key_user(&bad, longid, GW_RATELIMIT_KEY_MAX), RPC_STATUS_OK);
	assert_status(gw_ratelimit_key_user(&bad, "", 0), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_ratelimit_key_user(&bad, NULL, 3), RPC_STATUS_INVALID_ARGUMENT);
	gw_ratelimit_key_addr(&bad, NULL);
	assert_status(gw_ratelimit_check(rl, GW_RL_DEFAULT, &bad, 0, &v),
	              RPC_STATUS_INVALID_ARGUMENT);
	gw_ratelimit_destroy(rl);
}

/* ---- buckets -------------------------------------------------------------- */

static void test_ratelimit_refills_exactly(void **state)
{
	(void)state;
	/* One token a second, five at most. */
	gw_ratelimit *rl = make(60, 5, 20, 0, 0);
	gw_ratelimit_key k = user_key("alice");
	const int64_t t0 = 1000000;
	for (uint32_t i = 0; i < 5; i++) {
		gw_ratelimit_verdict v = check(rl, GW_RL_DEFAULT, &k, t0);
		assert_true(v.allowed);
		assert_int_equal(v.limit, 5);
		assert_int_equal(v.remaining, 4 - i);
		assert_int_equal(v.reset_s, i + 1); /* i + 1 tokens missing, 1 s each */
		assert_int_equal(v.retry_after_s, 0);
	}
	gw_ratelimit_verdict v = check(rl, GW_RL_DEFAULT, &k, t0);
	assert_false(v.allowed);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(v.retry_after_s, 1);
	assert_int_equal(v.reset_s, 5);

	/* 999 ms: not yet a token; 1000 ms: exactly one. */
	v = check(rl, GW_RL_DEFAULT, &k, t0 + 999);
	assert_false(v.allowed);
	assert_int_equal(v.retry_after_s, 1); /* 1 ms, rounded up */
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, t0 + 1000), 1);
	/* 2.5 s later: two tokens, and half of one that still counts. */
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, t0 + 3500), 2);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, t0 + 3999), 0);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, t0 + 4000), 1);
	/* A long idle time fills the bucket to its burst, no more. */
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, t0 + 3600 * 1000), 5);

	/* A rate that does not divide a minute: 7 a minute is a token every
	 * 8571.43 ms. */
	gw_ratelimit *r7 = make(7, 2, 20, 0, 0);
	assert_int_equal(drain(r7, GW_RL_DEFAULT, &k, 0), 2);
	v = check(r7, GW_RL_DEFAULT, &k, 8571);
	assert_false(v.allowed);
	assert_int_equal(v.retry_after_s, 1);
	assert_int_equal(drain(r7, GW_RL_DEFAULT, &k, 8572), 1);
	/* Seven a minute, exactly, over an hour of steady demand (a burst of
	 * two, so that no fraction of a token is lost at the cap). */
	unsigned total = 0;
	for (int64_t t = 8572; t <= 8572 + 3600 * 1000; t += 100)
		total += drain(r7, GW_RL_DEFAULT, &k, t);
	assert_int_equal(total, 7 * 60);
	gw_ratelimit_destroy(r7);
	gw_ratelimit_destroy(rl);
}

static void test_ratelimit_clock_going_back_is_no_time(void **state)
{
	(void)state;
	gw_ratelimit *rl = make(60, 2, 20, 0, 0);
	gw_ratelimit_key k = addr_key("192.0.2.7");
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, 10000), 2);
	/* Another thread's older reading: no refill, and no debt either. */
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, 5000), 0);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, 10999), 0);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, 11000), 1);
	gw_ratelimit_destroy(rl);
}

static void test_ratelimit_burst_and_headers(void **state)
{
	(void)state;
	/* 600 a minute with a burst of 10: ten at once, then one per 100 ms. */
	gw_ratelimit *rl = make(600, 10, 20, 0, 0);
	gw_ratelimit_key k = addr_key("198.51.100.1");
	gw_ratelimit_verdict v = check(rl, GW_RL_DEFAULT, &k, 0);
	assert_int_equal(v.limit, 10);
	assert_int_equal(v.remaining, 9);
	assert_int_equal(v.reset_s, 1); /* 100 ms to refill, rounded up */
	assert_int_equal(v.window_s, 1);

	gw_ratelimit_header_buf hb;
	gw_http_header h[GW_RATELIMIT_MAX_HEADERS];
	assert_int_equal(gw_ratelimit_headers(&v, &hb, h), 4);
	const char *want_allowed[4][2] = {{"ratelimit-limit", "10"},
	                                  {"ratelimit-remaining", "9"},
	                                  {"ratelimit-reset", "1"},
	                                  {"ratelimit-policy", "10;w=1"}};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(h[i].name_len, strlen(want_allowed[i][0]));
		assert_memory_equal(h[i].name, want_allowed[i][0], h[i].name_len);
		assert_int_equal(h[i].value_len, strlen(want_allowed[i][1]));
		assert_memory_equal(h[i].value, want_allowed[i][1], h[i].value_len);
	}

	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, 0), 9);
	v = check(rl, GW_RL_DEFAULT, &k, 0);
	assert_false(v.allowed);
	assert_int_equal(gw_ratelimit_headers(&v, &hb, h), 5);
	assert_memory_equal(h[1].value, "0", 1);
	assert_memory_equal(h[4].name, "retry-after", 11);
	assert_int_equal(h[4].value_len, 1);
	assert_memory_equal(h[4].value, "1", 1);
	assert_int_equal(gw_ratelimit_headers(NULL, &hb, h), 0);

	/* The default burst is a minute's worth. */
	gw_ratelimit *rd = make(30, 0, 20, 0, 0);
	v = check(rd, GW_RL_DEFAULT, &k, 0);
	assert_int_equal(v.limit, 30);
	assert_int_equal(v.window_s, 60);
	assert_int_equal(v.reset_s, 2); /* one token at 30 a minute */
	assert_int_equal(drain(rd, GW_RL_DEFAULT, &k, 0), 29);
	v = check(rd, GW_RL_DEFAULT, &k, 0);
	assert_int_equal(v.retry_after_s, 2);
	assert_int_equal(v.reset_s, 60);
	assert_int_equal(gw_ratelimit_headers(&v, &hb, h), 5);
	assert_int_equal(h[3].value_len, strlen("30;w=60"));
	assert_memory_equal(h[3].value, "30;w=60", h[3].value_len);
	gw_ratelimit_destroy(rd);
	gw_ratelimit_destroy(rl);
}

static void test_ratelimit_error_body(void **state)
{
	(void)state;
	gw_ratelimit_verdict v = {0, 20, 0, 180, 3, 60};
	gw_json_buf b;
	gw_json_buf_init(&b, 0);
	assert_status(gw_ratelimit_write_error(&b, &v), RPC_STATUS_OK);
	gw_json_buf_put(&b, "", 1);
	const char *body = b.data;
	assert_non_null(strstr(body, "\"code\":429"));
	assert_non_null(strstr(body, "\"status\":\"RESOURCE_EXHAUSTED\""));
	assert_non_null(strstr(body, "\"reason\":\"RATE_LIMITED\""));
	assert_non_null(strstr(body, "retry in 3 s"));
	assert_non_null(strstr(body, "google.rpc.ErrorInfo"));
	assert_status(gw_ratelimit_write_error(NULL, &v), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_ratelimit_write_error(&b, NULL), RPC_STATUS_INVALID_ARGUMENT);
	gw_json_buf_free(&b);
}

static void test_ratelimit_verdict_pick(void **state)
{
	(void)state;
	gw_ratelimit_verdict ok_many = {1, 600, 500, 10, 0, 60};
	gw_ratelimit_verdict ok_few = {1, 600, 3, 50, 0, 60};
	gw_ratelimit_verdict no_short = {0, 20, 0, 60, 2, 60};
	gw_ratelimit_verdict no_long = {0, 20, 0, 60, 9, 60};
	assert_ptr_equal(gw_ratelimit_verdict_pick(&ok_many, &ok_few), &ok_few);
	assert_ptr_equal(gw_ratelimit_verdict_pick(&ok_few, &ok_many), &ok_few);
	assert_ptr_equal(gw_ratelimit_verdict_pick(&ok_few, &no_short), &no_short);
	assert_ptr_equal(gw_ratelimit_verdict_pick(&no_short, &ok_many), &no_short);
	assert_ptr_equal(gw_ratelimit_verdict_pick(&no_short, &no_long), &no_long);
	assert_ptr_equal(gw_ratelimit_verdict_pick(NULL, &ok_few), &ok_few);
	assert_ptr_equal(gw_ratelimit_verdict_pick(&ok_few, NULL), &ok_few);
}

static void test_ratelimit_two_classes(void **state)
{
	(void)state;
	/* Everything 100 a minute; login and register 3 a minute. */
	gw_ratelimit *rl = make(100, 0, 3, 0, 0);
	gw_ratelimit_key k = addr_key("203.0.113.9");
	assert_int_equal(drain(rl, GW_RL_AUTH, &k, 0), 3);
	gw_ratelimit_verdict v = check(rl, GW_RL_AUTH, &k, 0);
	assert_false(v.allowed);
	assert_int_equal(v.limit, 3);
	assert_int_equal(v.retry_after_s, 20);
	/* The same address still has its whole default bucket. */
	v = check(rl, GW_RL_DEFAULT, &k, 0);
	assert_true(v.allowed);
	assert_int_equal(v.limit, 100);
	assert_int_equal(v.remaining, 99);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &k, 0), 99);
	/* ... and exhausting it leaves the auth class alone. */
	assert_int_equal(drain(rl, GW_RL_AUTH, &k, 20000), 1);

	gw_ratelimit_stats st;
	gw_ratelimit_stats_get(rl, &st);
	assert_int_equal(st.allowed[GW_RL_AUTH], 4);
	assert_int_equal(st.refused[GW_RL_AUTH], 3); /* the drains' last calls and one check */
	assert_int_equal(st.allowed[GW_RL_DEFAULT], 100);
	assert_int_equal(st.refused[GW_RL_DEFAULT], 1);
	assert_int_equal(st.buckets, 2);
	gw_ratelimit_destroy(rl);
}

static void test_ratelimit_user_and_address_keys(void **state)
{
	(void)state;
	gw_ratelimit *rl = make(60, 2, 20, 0, 0);
	gw_ratelimit_key u1 = user_key("3f0c8a7e-0000-4000-8000-000000000001");
	gw_ratelimit_key u2 = user_key("3f0c8a7e-0000-4000-8000-000000000002");
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &u1, 0), 2);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &u2, 0), 2);

	/* A user id and an address with the same bytes are different keys. */
	gw_ratelimit_key a = addr_key("1.2.3.4");
	assert_int_equal(a.len, 4);
	gw_ratelimit_key ua;
	assert_status(gw_ratelimit_key_user(&ua, "\x01\x02\x03\x04", 4), RPC_STATUS_OK);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &ua, 0), 2);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &a, 0), 2);

	/* An IPv4-mapped IPv6 address is the IPv4 address. */
	gw_ratelimit_key mapped = addr_key("::ffff:1.2.3.4");
	assert_int_equal(mapped.len, 4);
	assert_memory_equal(mapped.bytes, a.bytes, 4);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &mapped, 0), 0);

	/* IPv6 by /64: the same prefix shares a bucket, the next one not. */
	gw_ratelimit_key v6a = addr_key("2001:db8:1:2::1");
	gw_ratelimit_key v6b = addr_key("2001:db8:1:2:ffff:eeee:dddd:cccc");
	gw_ratelimit_key v6c = addr_key("2001:db8:1:3::1");
	assert_int_equal(v6a.len, 8);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &v6a, 0), 2);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &v6b, 0), 0);
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &v6c, 0), 2);
	gw_ratelimit_destroy(rl);
}

/* ---- memory ---------------------------------------------------------------- */

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return -1;
	long size = 0, resident = 0;
	int n = fscanf(f, "%ld %ld", &size, &resident);
	fclose(f);
	return n == 2 ? resident * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static void test_ratelimit_eviction_is_bounded(void **state)
{
	(void)state;
	/* 60000 a minute: one token a millisecond, a burst of one. */
	gw_ratelimit *rl = make(60000, 1, 20, 0, 1024);
	gw_ratelimit_stats st0, st;
	gw_ratelimit_stats_get(rl, &st0);
	assert_int_equal(st0.capacity, 1024);
	const unsigned n = 1000000;
	char id[32];

	/* Warm up to capacity, then measure: a million more keys must not
	 * grow the process. */
	for (unsigned i = 0; i < 4096; i++) {
		snprintf(id, sizeof(id), "warm-%u", i);
		gw_ratelimit_key k = user_key(id);
		check(rl, GW_RL_DEFAULT, &k, 0);
	}
	long before = rss_kib();
	/* Phase 1: every key once, the clock still: each bucket is left with
	 * a debt, and every eviction forgives one. */
	for (unsigned i = 0; i < n / 2; i++) {
		snprintf(id, sizeof(id), "user-%u", i);
		gw_ratelimit_key k = user_key(id);
		assert_true(check(rl, GW_RL_DEFAULT, &k, 0).allowed);
	}
	gw_ratelimit_stats_get(rl, &st);
	assert_int_equal(st.buckets, 1024);
	assert_int_equal(st.memory_bytes, st0.memory_bytes);
	assert_int_equal(st.evicted, 4096 + n / 2 - 1024);
	assert_int_equal(st.evicted_unfull, st.evicted);

	/* Phase 2: a millisecond between keys, so a bucket is full again by
	 * the time it is evicted: nothing forgiven. */
	for (unsigned i = 0; i < n / 2; i++) {
		snprintf(id, sizeof(id), "addr-%u", i);
		gw_ratelimit_key k = user_key(id);
		check(rl, GW_RL_DEFAULT, &k, 1 + (int64_t)i);
	}
	gw_ratelimit_stats st2;
	gw_ratelimit_stats_get(rl, &st2);
	assert_int_equal(st2.buckets, 1024);
	assert_int_equal(st2.evicted, st.evicted + n / 2);
	/* Only the first few evictions of phase 2 can meet phase 1's
	 * buckets, still at time 0 and now 1 ms later: full again too. */
	assert_int_equal(st2.evicted_unfull, st.evicted_unfull);
	long after = rss_kib();
	if (before > 0 && after > 0)
		assert_true(after - before < 4096); /* KiB: no growth beyond noise */
	gw_ratelimit_destroy(rl);
}

static void test_ratelimit_eviction_follows_lru(void **state)
{
	(void)state;
	/* Two buckets a shard. */
	gw_ratelimit *rl = make(60, 1, 20, 0, 2 * GW_RATELIMIT_SHARDS);
	gw_ratelimit_key hot = user_key("hot");
	assert_int_equal(drain(rl, GW_RL_DEFAULT, &hot, 0), 1);
	char id[32];
	/* A bucket used between every newcomer is never the least recently
	 * used one of its shard: it stays, refused, its debt kept. */
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "flood-%u", i);
		gw_ratelimit_key k = user_key(id);
		check(rl, GW_RL_DEFAULT, &k, 0);
		assert_false(check(rl, GW_RL_DEFAULT, &hot, 0).allowed);
	}
	/* Left alone, it is evicted, and comes back as a new, full bucket. */
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "again-%u", i);
		gw_ratelimit_key k = user_key(id);
		check(rl, GW_RL_DEFAULT, &k, 0);
	}
	assert_true(check(rl, GW_RL_DEFAULT, &hot, 0).allowed);
	gw_ratelimit_destroy(rl);
}

/* ---- threads --------------------------------------------------------------- */

typedef struct hammer_arg {
	gw_ratelimit *rl;
	unsigned id;
	unsigned iterations;
	int advance; /* 1: the clock is the iteration number (ms) */
	unsigned allowed;
	unsigned own_allowed;
	unsigned calls;
	int failed;
} hammer_arg;

static void *hammer(void *p)
{
	hammer_arg *a = p;
	gw_ratelimit_key shared;
	if (gw_ratelimit_key_user(&shared, "shared", 6) != RPC_STATUS_OK)
		a->failed = 1;
	char id[32];
	for (unsigned i = 0; i < a->iterations && !a->failed; i++) {
		int64_t now = a->advance ? (int64_t)i : 0;
		gw_ratelimit_verdict v;
		if (gw_ratelimit_check(a->rl, GW_RL_DEFAULT, &shared, now, &v) != RPC_STATUS_OK)
			a->failed = 1;
		a->allowed += (unsigned)v.allowed;
		/* Keys of its own, more than the table holds: evictions race
		 * with the shared key's checks on every shard. */
		snprintf(id, sizeof(id), "t%u-%u", a->id, i % 5000);
		gw_ratelimit_key own;
		if (gw_ratelimit_key_user(&own, id, strlen(id)) != RPC_STATUS_OK ||
		    gw_ratelimit_check(a->rl, GW_RL_AUTH, &own, now, &v) != RPC_STATUS_OK)
			a->failed = 1;
		a->own_allowed += (unsigned)v.allowed;
		a->calls += 2;
	}
	return NULL;
}

static unsigned run_threads(gw_ratelimit *rl, unsigned iterations, int advance, unsigned *calls)
{
	pthread_t t[4];
	hammer_arg a[4];
	for (unsigned i = 0; i < 4; i++) {
		a[i] = (hammer_arg){rl, i, iterations, advance, 0, 0, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a[i]), 0);
	}
	unsigned total = 0;
	*calls = 0;
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_false(a[i].failed);
		total += a[i].allowed;
		*calls += a[i].calls;
	}
	return total;
}

static void test_ratelimit_threads_never_exceed_the_limit(void **state)
{
	(void)state;
	/* Clock still: four threads share exactly the burst. */
	gw_ratelimit *rl = make(6000, 50, 6000, 1, 1024);
	unsigned calls;
	assert_int_equal(run_threads(rl, 20000, 0, &calls), 50);
	gw_ratelimit_stats st;
	gw_ratelimit_stats_get(rl, &st);
	assert_int_equal(st.allowed[0] + st.refused[0] + st.allowed[1] + st.refused[1], calls);
	assert_true(st.buckets <= 1024);
	gw_ratelimit_destroy(rl);

	/* Clock running, 0..19999 ms in each thread: at most the burst plus
	 * 6000 a minute over 19999 ms, 50 + 1999; and the demand never lets
	 * up, so nearly all of it. */
	rl = make(6000, 50, 6000, 1, 1024);
	unsigned total = run_threads(rl, 20000, 1, &calls);
	assert_true(total <= 50 + 1999);
	assert_true(total >= 50 + 1999 - 10);
	gw_ratelimit_stats_get(rl, &st);
	assert_int_equal(st.allowed[0], total);
	assert_int_equal(st.allowed[0] + st.refused[0] + st.allowed[1] + st.refused[1], calls);
	gw_ratelimit_destroy(rl);
}

/* ---- addresses --------------------------------------------------------------- */

static gw_ip ip_of(const char *s)
{
	gw_ip ip;
	if (gw_ip_parse(s, strlen(s), &ip) != 0)
		fail_msg("gw_ip_parse(\"%s\") failed", s);
	return ip;
}

static void test_clientip_parses_addresses(void **state)
{
	(void)state;
	static const char *const good[] = {"0.0.0.0",
	                                   "1.2.3.4",
	                                   "255.255.255.255",
	                                   "10.0.0.1",
	                                   "::",
	                                   "::1",
	                                   "2001:db8::1",
	                                   "2001:DB8:0:0:0:0:0:1",
	                                   "::ffff:192.0.2.1",
	                                   "fe80::1:2:3:4",
	                                   "1:2:3:4:5:6:7:8"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		gw_ip ip;
		if (gw_ip_parse(good[i], strlen(good[i]), &ip) != 0)
			fail_msg("refused \"%s\"", good[i]);
	}
	static const char *const bad[] = {"",
	                                  "1.2.3",
	                                  "1.2.3.4.5",
	                                  "01.2.3.4",
	                                  "1.2.3.04",
	                                  "256.1.1.1",
	                                  "1.2.3.-1",
	                                  "0x1.2.3.4",
	                                  " 1.2.3.4",
	                                  "1.2.3.4 ",
	                                  "1.2.3.4:80",
	                                  "1.2..4",
	                                  "1234.1.1.1",
	                                  ":::",
	                                  "1:2:3:4:5:6:7:8:9",
	                                  "2001:db8::g",
	                                  "fe80::1%eth0",
	                                  "[::1]",
	                                  "::1 ",
	                                  "localhost",
	                                  "unknown"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		gw_ip ip;
		if (gw_ip_parse(bad[i], strlen(bad[i]), &ip) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* A NUL inside the length is not an end. */
	gw_ip ip;
	assert_int_equal(gw_ip_parse("1.2.3.4\0", 8, &ip), -1);
	assert_int_equal(gw_ip_parse("::1\0abc", 7, &ip), -1);

	/* IPv4-mapped is IPv4. */
	gw_ip a = ip_of("192.0.2.1"), m = ip_of("::ffff:192.0.2.1"), m2 = ip_of("::FFFF:c000:201");
	assert_true(gw_ip_is_v4(&a));
	assert_true(gw_ip_equal(&a, &m));
	assert_true(gw_ip_equal(&a, &m2));
	gw_ip six = ip_of("2001:db8::1");
	assert_false(gw_ip_is_v4(&six));
	assert_false(gw_ip_equal(&a, &six));

	char text[GW_IP_TEXT_MAX];
	assert_int_equal(gw_ip_format(&m, text, sizeof(text)), strlen("192.0.2.1"));
	assert_string_equal(text, "192.0.2.1");
	gw_ip long6 = ip_of("2001:DB8:0:0:1:0:0:1");
	assert_int_equal(gw_ip_format(&long6, text, sizeof(text)), strlen("2001:db8::1:0:0:1"));
	assert_string_equal(text, "2001:db8::1:0:0:1");
	char small[5];
	assert_int_equal(gw_ip_format(&a, small, sizeof(small)), 9);
	assert_string_equal(small, "192.");
}

static void test_clientip_from_sockaddr(void **state)
{
	(void)state;
	gw_ip ip;
	char text[GW_IP_TEXT_MAX];
	struct sockaddr_in in4 = {0};
	in4.sin_family = AF_INET;
	in4.sin_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET, "203.0.113.5", &in4.sin_addr), 1);
	assert_int_equal(gw_ip_from_sockaddr((struct sockaddr *)&in4, sizeof(in4), &ip), 0);
	gw_ip_format(&ip, text, sizeof(text));
	assert_string_equal(text, "203.0.113.5");
	assert_int_equal(gw_ip_from_sockaddr((struct sockaddr *)&in4, sizeof(in4) - 1, &ip), -1);

	struct sockaddr_in6 in6 = {0};
	in6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:203.0.113.5", &in6.sin6_addr), 1);
	gw_ip mapped;
	assert_int_equal(gw_ip_from_sockaddr((struct sockaddr *)&in6, sizeof(in6), &mapped), 0);
	assert_true(gw_ip_equal(&ip, &mapped));
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr), 1);
	assert_int_equal(gw_ip_from_sockaddr((struct sockaddr *)&in6, sizeof(in6), &ip), 0);
	gw_ip_format(&ip, text, sizeof(text));
	assert_string_equal(text, "2001:db8::5");
	assert_int_equal(gw_ip_from_sockaddr((struct sockaddr *)&in6, sizeof(in4), &ip), -1);

	struct sockaddr_un un = {0};
	un.sun_family = AF_UNIX;
	assert_int_equal(gw_ip_from_sockaddr((struct sockaddr *)&un, sizeof(un), &ip), -1);
	assert_int_equal(gw_ip_from_sockaddr(NULL, sizeof(un), &ip), -1);
}

static gw_proxy_list *proxies(const char *spec)
{
	gw_proxy_list *l = NULL;
	char err[200];
	rpc_status st = gw_proxy_list_new(spec, strlen(spec), &l, err, sizeof(err));
	if (st != RPC_STATUS_OK)
		fail_msg("gw_proxy_list_new(\"%s\"): %s", spec, err);
	return l;
}

static int in_list(const gw_proxy_list *l, const char *addr)
{
	gw_ip ip = ip_of(addr);
	return gw_proxy_list_contains(l, &ip);
}

static void test_clientip_proxy_list_cidr(void **state)
{
	(void)state;
	gw_proxy_list *l = proxies(" 10.0.0.0/8, 192.168.1.1 ,\tfd00::/8,::1, 172.16.0.0/12");
	assert_true(in_list(l, "10.0.0.0"));
	assert_true(in_list(l, "10.255.255.255"));
	assert_true(in_list(l, "::ffff:10.1.2.3"));
	assert_false(in_list(l, "11.0.0.0"));
	assert_false(in_list(l, "9.255.255.255"));
	assert_true(in_list(l, "192.168.1.1"));
	assert_false(in_list(l, "192.168.1.2"));
	assert_false(in_list(l, "192.168.1.0"));
	assert_true(in_list(l, "172.31.255.255"));
	assert_false(in_list(l, "172.32.0.0"));
	assert_true(in_list(l, "fd12:3456::1"));
	assert_false(in_list(l, "fe00::1"));
	assert_true(in_list(l, "::1"));
	assert_false(in_list(l, "::2"));
	assert_false(in_list(l, "::"));
	/* 10.0.0.0/8 as IPv4 is not ::a00:0/8 as IPv6. */
	assert_false(in_list(l, "::a00:1"));
	assert_int_equal(gw_proxy_list_ranges(l), 5);
	gw_proxy_list_free(l);

	/* Overlaps merge; the mapped spelling is the same block. */
	l = proxies("10.1.0.0/16,10.0.0.0/8,10.2.3.4,::ffff:10.0.0.0/104");
	assert_int_equal(gw_proxy_list_ranges(l), 1);
	assert_true(in_list(l, "10.200.0.1"));
	gw_proxy_list_free(l);

	/* Everything IPv4, nothing IPv6; everything at all. */
	l = proxies("0.0.0.0/0");
	assert_true(in_list(l, "1.2.3.4"));
	assert_true(in_list(l, "255.255.255.255"));
	assert_false(in_list(l, "2001:db8::1"));
	gw_proxy_list_free(l);
	l = proxies("::/0");
	assert_true(in_list(l, "1.2.3.4"));
	assert_true(in_list(l, "2001:db8::1"));
	gw_proxy_list_free(l);
	l = proxies("2001:db8:abcd:12::/63");
	assert_true(in_list(l, "2001:db8:abcd:13:ffff::1"));
	assert_false(in_list(l, "2001:db8:abcd:14::"));
	gw_proxy_list_free(l);

	/* Empty: valid, trusts no one. */
	l = proxies("  ");
	assert_int_equal(gw_proxy_list_ranges(l), 0);
	assert_false(in_list(l, "10.0.0.1"));
	gw_proxy_list_free(l);
	assert_false(in_list(NULL, "10.0.0.1"));

	static const char *const bad[] = {"10.0.0.1/8",   "10.0.0.0/33",      "::/129",
	                                  "10.0.0.0/",    "10.0.0.0/08",      "10.0.0.0/-1",
	                                  "10.0.0.0/8/8", "a.b.c.d",          ",",
	                                  "10.0.0.0/8,",  "1.2.3.4,,5.6.7.8", "fd00::1/8",
	                                  "10.0.0.0 /8",  "::ffff:10.0.0.0/8"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[200] = "";
		gw_proxy_list *out = (gw_proxy_list *)1;
		assert_status(gw_proxy_list_new(bad[i], strlen(bad[i]), &out, err, sizeof(err)),
		              RPC_STATUS_INVALID_ARGUMENT);
		assert_null(out);
		if (strstr(err, "trusted proxies: entry") == NULL)
			fail_msg("\"%s\": message \"%s\"", bad[i], err);
	}
	char err[200];
	gw_proxy_list *out;
	assert_status(gw_proxy_list_new("10.0.0.1/8", 10, &out, err, sizeof(err)),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(err, "host bits"));
	assert_status(gw_proxy_list_new(NULL, 3, &out, err, sizeof(err)),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_proxy_list_new("1.2.3.4", 7, NULL, NULL, 0), RPC_STATUS_INVALID_ARGUMENT);
}

/* The client of a request from `peer` whose X-Forwarded-For is `xff` (NULL:
 * none), with text and source checked. */
static void expect_client(const gw_proxy_list *l, const char *peer, const char *xff,
                          const char *want, gw_clientip_source want_source)
{
	gw_ip p = ip_of(peer);
	gw_clientip c;
	assert_status(gw_clientip_from_xff(l, &p, xff, xff != NULL ? strlen(xff) : 0, &c),
	              RPC_STATUS_OK);
	char text[GW_IP_TEXT_MAX];
	gw_ip_format(&c.addr, text, sizeof(text));
	if (strcmp(text, want) != 0 || c.source != want_source)
		fail_msg("peer %s, X-Forwarded-For \"%s\": got %s (source %d), want %s (source %d)",
		         peer, xff ? xff : "(none)", text, (int)c.source, want, (int)want_source);
	/* The same through the header list. */
	gw_http_header h[2] = {{"Accept", 6, "*/*", 3}, {"X-Forwarded-For", 15, xff, 0}};
	size_t n = 1;
	if (xff != NULL) {
		h[1].value_len = strlen(xff);
		n = 2;
	}
	gw_clientip c2;
	assert_status(gw_clientip_resolve(l, &p, h, n, &c2), RPC_STATUS_OK);
	assert_true(gw_ip_equal(&c.addr, &c2.addr));
	assert_int_equal(c.source, c2.source);
}

static void test_clientip_forwarded_for(void **state)
{
	(void)state;
	gw_proxy_list *l = proxies("10.0.0.0/8, 2001:db8:ffff::/48");
	const gw_clientip_source PEER = GW_CLIENTIP_PEER, FWD = GW_CLIENTIP_FORWARDED,
	                         BAD = GW_CLIENTIP_PEER_BAD_FORWARD;

	/* An untrusted peer: its header is ignored, whatever it says. */
	expect_client(l, "198.51.100.7", "1.2.3.4", "198.51.100.7", PEER);
	expect_client(l, "198.51.100.7", "garbage", "198.51.100.7", PEER);
	expect_client(NULL, "10.0.0.1", "1.2.3.4", "10.0.0.1", PEER);
	/* A trusted peer without the header, or with only empty elements. */
	expect_client(l, "10.0.0.1", NULL, "10.0.0.1", PEER);
	expect_client(l, "10.0.0.1", "", "10.0.0.1", PEER);
	expect_client(l, "10.0.0.1", " , ,", "10.0.0.1", PEER);

	/* One proxy. */
	expect_client(l, "10.0.0.1", "203.0.113.9", "203.0.113.9", FWD);
	/* The client wrote its own header: the proxy appended the truth. */
	expect_client(l, "10.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9", FWD);
	expect_client(l, "10.0.0.1", "10.9.9.9, 203.0.113.9", "203.0.113.9", FWD);
	/* A chain of proxies: the right-most untrusted address. */
	expect_client(l, "10.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.7, 10.0.0.3", "203.0.113.9",
	              FWD);
	/* Every element trusted: the left-most, the furthest hop known. */
	expect_client(l, "10.0.0.1", "10.0.0.9, 10.0.0.7", "10.0.0.9", FWD);
	/* Garbage the walk never reaches does not matter ... */
	expect_client(l, "10.0.0.1", "<script>, 203.0.113.9", "203.0.113.9", FWD);
	expect_client(l, "10.0.0.1", "unknown,,, 203.0.113.9", "203.0.113.9", FWD);
	/* ... garbage it reaches means the peer. */
	expect_client(l, "10.0.0.1", "203.0.113.9, garbage", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "203.0.113.9, 10.0.0.7 10.0.0.8", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "203.0.113.9;for=x", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "unknown", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "fe80::1%eth0", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "[1.2.3.4]", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "1.2.3.4:65536", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "1.2.3.4:", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "[2001:db8::1", "10.0.0.1", BAD);
	expect_client(l, "10.0.0.1", "[2001:db8::1]x", "10.0.0.1", BAD);

	/* Spaces, tabs, empty elements and ports. */
	expect_client(l, "10.0.0.1", " \t203.0.113.9\t ,, ", "203.0.113.9", FWD);
	expect_client(l, "10.0.0.1", "203.0.113.9:51234", "203.0.113.9", FWD);
	expect_client(l, "10.0.0.1", "[2001:db8::7]:443", "2001:db8::7", FWD);
	expect_client(l, "10.0.0.1", "[2001:db8::7]", "2001:db8::7", FWD);
	/* IPv6: a bare client, a trusted IPv6 proxy, a mapped IPv4 client. */
	expect_client(l, "10.0.0.1", "2001:db8::7", "2001:db8::7", FWD);
	expect_client(l, "2001:db8:ffff:1::2", "2001:db8::7, 2001:db8:ffff::9", "2001:db8::7", FWD);
	expect_client(l, "::ffff:10.0.0.1", "::ffff:203.0.113.9", "203.0.113.9", FWD);
	expect_client(l, "10.0.0.1", "::ffff:10.0.0.5, 10.0.0.4", "10.0.0.5", FWD);

	/* Bounds: one element too long, too many trusted hops. */
	char longel[GW_XFF_MAX_ELEMENT + 40];
	memset(longel, ' ', sizeof(longel));
	memcpy(longel + sizeof(longel) - 12, "203.0.113.9", 12);
	expect_client(l, "10.0.0.1", longel, "10.0.0.1", BAD);
	char hops[GW_XFF_MAX_HOPS * 12 + 32] = "203.0.113.9";
	for (unsigned i = 0; i < GW_XFF_MAX_HOPS; i++)
		strcat(hops, ", 10.0.0.2");
	expect_client(l, "10.0.0.1", hops, "10.0.0.1", BAD);
	/* One hop fewer fits. */
	hops[strlen(hops) - strlen(", 10.0.0.2")] = '\0';
	expect_client(l, "10.0.0.1", hops, "203.0.113.9", FWD);
	/* A huge client-written prefix is never read. */
	size_t big = 1 << 20;
	char *huge = malloc(big + 32);
	assert_non_null(huge);
	memset(huge, 'x', big);
	strcpy(huge + big, ", 203.0.113.9");
	expect_client(l, "10.0.0.1", huge, "203.0.113.9", FWD);
	free(huge);

	/* Several fields are one list, in order: the last field's elements
	 * are the right-most. Names in any case. */
	gw_ip peer = ip_of("10.0.0.1");
	gw_http_header h[4] = {{"x-forwarded-for", 15, "6.6.6.6, 203.0.113.9", 20},
	                       {"Host", 4, "api.example", 11},
	                       {"X-FORWARDED-FOR", 15, "10.0.0.8", 8},
	                       {"X-Forwarded-Host", 16, "1.1.1.1", 7}};
	gw_clientip c;
	assert_status(gw_clientip_resolve(l, &peer, h, 4, &c), RPC_STATUS_OK);
	char text[GW_IP_TEXT_MAX];
	gw_ip_format(&c.addr, text, sizeof(text));
	assert_string_equal(text, "203.0.113.9");
	assert_int_equal(c.source, GW_CLIENTIP_FORWARDED);
	h[2].value = "198.51.100.1";
	h[2].value_len = 12;
	assert_status(gw_clientip_resolve(l, &peer, h, 4, &c), RPC_STATUS_OK);
	gw_ip_format(&c.addr, text, sizeof(text));
	assert_string_equal(text, "198.51.100.1");
	assert_status(gw_clientip_resolve(l, &peer, NULL, 0, &c), RPC_STATUS_OK);
	assert_int_equal(c.source, GW_CLIENTIP_PEER);

	assert_status(gw_clientip_resolve(l, NULL, h, 4, &c), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_clientip_resolve(l, &peer, h, 4, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(gw_clientip_from_xff(l, &peer, NULL, 3, &c), RPC_STATUS_INVALID_ARGUMENT);
	gw_proxy_list_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ratelimit_create_rejects_bad_options),
	    cmocka_unit_test(test_ratelimit_rejects_bad_keys),
	    cmocka_unit_test(test_ratelimit_refills_exactly),
	    cmocka_unit_test(test_ratelimit_clock_going_back_is_no_time),
	    cmocka_unit_test(test_ratelimit_burst_and_headers),
	    cmocka_unit_test(test_ratelimit_error_body),
	    cmocka_unit_test(test_ratelimit_verdict_pick),
	    cmocka_unit_test(test_ratelimit_two_classes),
	    cmocka_unit_test(test_ratelimit_user_and_address_keys),
	    cmocka_unit_test(test_ratelimit_eviction_is_bounded),
	    cmocka_unit_test(test_ratelimit_eviction_follows_lru),
	    cmocka_unit_test(test_ratelimit_threads_never_exceed_the_limit),
	    cmocka_unit_test(test_clientip_parses_addresses),
	    cmocka_unit_test(test_clientip_from_sockaddr),
	    cmocka_unit_test(test_clientip_proxy_list_cidr),
	    cmocka_unit_test(test_clientip_forwarded_for),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
