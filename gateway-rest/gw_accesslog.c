/*
 * gw_accesslog.c - the access log's JSON lines; see gw_accesslog.h.
 *
 * Bounds: each string field is cut at a byte limit on a UTF-8 character
 * boundary, and escaping turns a byte into at most 6 bytes ("\u00XX", or
 * "\ufffd" for a byte that is not part of valid UTF-8). The limits sum to
 * 560 bytes of input, so 3360 bytes of escaped text plus the fixed text and
 * six numbers always fit GW_ACCESS_LINE_MAX: a line is never cut.
 */
#include "gw_accesslog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CUT_METHOD     32u
#define CUT_ROUTE      256u
#define CUT_REQUEST_ID 128u
#define CUT_USER_ID    64u
#define CUT_CLIENT     64u
#define CUT_CACHE      16u

struct gw_access_log {
	int fd;
	int own;
	atomic_uint_fast64_t dropped;
};

/* ---- writing into a bounded buffer ------------------------------------------------ */

typedef struct out {
	char *p;
	size_t len, cap;
} out;

static inline void put(out *o, const char *s, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len; /* cannot happen within the bounds above */
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

#define PUT_LIT(o, s) put((o), (s), sizeof(s) - 1)

static void put_u64(out *o, uint64_t v)
{
	char d[20];
	size_t n = 0;
	do {
		d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	put(o, d + sizeof(d) - n, n);
}

static void put_pad(out *o, unsigned v, size_t width)
{
	char d[8];
	for (size_t i = width; i > 0; i--) {
		d[i - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	put(o, d, width);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

/* s[0..n) as the content of a JSON string, at most `max` input bytes: a
 * longer string is cut before the character that straddles the limit. */
static void put_escaped(out *o, const char *str, size_t n, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	if (n > max) {
		size_t cut = max;
		while (cut > 0 && max - cut < 3 && (s[cut] & 0xc0) == 0x80)
			cut--;
		n = (s[cut] & 0xc0) == 0x80 ? max : cut;
	}
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		put(o, str + i, run - i);
		i = run;
		if (i == n)
			break;
		unsigned char c = s[i];
		size_t k;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(o, e, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put(o, e, 6);
			i++;
		} else if ((k = utf8_seq(s + i, n - i)) > 0) {
			put(o, str + i, k);
			i += k;
		} else {
			PUT_LIT(o, "\\ufffd");
			i++;
		}
	}
}

static void put_string_field(out *o, const char *name_with_quotes, size_t nl, const char *s,
                             size_t n, size_t max)
{
	put(o, name_with_quotes, nl);
	put(o, "\"", 1);
	put_escaped(o, s, n, max);
	put(o, "\"", 1);
}

#define STR_FIELD(o, lit, s, n, max) put_string_field((o), (lit), sizeof(lit) - 1, (s), (n), (max))

/* ---- the timestamp ----------------------------------------------------------------- */

/* "2026-01-15T10:00:00" of the last second this thread formatted. */
static _Thread_local struct {
	int64_t sec;
	int valid;
	char text[20];
} ts_cache;

static void put_ts(out *o, int64_t sec, long nsec)
{
	if (!ts_cache.valid || ts_cache.sec != sec) {
		time_t t = (time_t)sec;
		struct tm tm;
		if (gmtime_r(&t, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		out w = {ts_cache.text, 0, sizeof(ts_cache.text)};
		put_pad(&w, (unsigned)(tm.tm_year + 1900) % 10000u, 4);
		PUT_LIT(&w, "-");
		put_pad(&w, (unsigned)tm.tm_mon + 1, 2);
		PUT_LIT(&w, "-");
		put_pad(&w, (unsigned)tm.tm_mday, 2);
		PUT_LIT(&w, "T");
		put_pad(&w, (unsigned)tm.tm_hour, 2);
		PUT_LIT(&w, ":");
		put_pad(&w, (unsigned)tm.tm_min, 2);
		PUT_LIT(&w, ":");
		put_pad(&w, (unsigned)tm.tm_sec, 2);
		ts_cache.sec = sec;
		ts_cache.valid = 1;
	}
	put(o, ts_cache.text, 19);
	PUT_LIT(o, ".");
	put_pad(o, (unsigned)((nsec / 1000000L) % 1000), 3);
	PUT_LIT(o, "Z");
}

/* ---- the line ------------------------------------------------------------------------ */

size_t gw_access_log_format(const gw_access_entry *e, char *buf, size_t cap)
{
	if (e == NULL || buf == NULL || cap < GW_ACCESS_LINE_MAX)
		return 0;
	out o = {buf, 0, GW_ACCESS_LINE_MAX - 1}; /* room for the '\n' */
	int64_t sec = e->start_sec;
	long nsec = e->start_nsec;
	if (sec == 0 && nsec == 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		sec = now.tv_sec;
		nsec = now.tv_nsec;
	}
	if (nsec < 0 || nsec >= 1000000000L)
		nsec = 0;
	PUT_LIT(&o, "{\"ts\":\"");
	put_ts(&o, sec, nsec);
	PUT_LIT(&o, "\",\"level\":\"info\",\"event\":\"http.access\"");
	if (e->request_id != NULL)
		STR_FIELD(&o, ",\"request_id\":", e->request_id,
		          strnlen(e->request_id, CUT_REQUEST_ID + 1), CUT_REQUEST_ID);
	const char *method = e->method != NULL ? e->method : "";
	STR_FIELD(&o, ",\"method\":", method, strnlen(method, CUT_METHOD + 1), CUT_METHOD);
	const char *route = e->route != NULL ? e->route : "";
	STR_FIELD(&o, ",\"route\":", route, strnlen(route, CUT_ROUTE + 1), CUT_ROUTE);
	PUT_LIT(&o, ",\"status\":");
	put_u64(&o, e->status >= 0 ? (uint64_t)e->status : 0);
	/* milliseconds with three decimals: microseconds, rounded down */
	uint64_t us = e->duration_ns / 1000u;
	PUT_LIT(&o, ",\"duration_ms\":");
	put_u64(&o, us / 1000u);
	PUT_LIT(&o, ".");
	put_pad(&o, (unsigned)(us % 1000u), 3);
	PUT_LIT(&o, ",\"bytes_in\":");
	put_u64(&o, e->bytes_in);
	PUT_LIT(&o, ",\"bytes_out\":");
	put_u64(&o, e->bytes_out);
	if (e->client != NULL)
		STR_FIELD(&o, ",\"client\":", e->client, strnlen(e->client, CUT_CLIENT + 1),
		          CUT_CLIENT);
	if (e->user_id != NULL)
		STR_FIELD(&o, ",\"user_id\":", e->user_id, strnlen(e->user_id, CUT_USER_ID + 1),
		          CUT_USER_ID);
	if (e->cache != NULL)
		STR_FIELD(&o, ",\"cache\":", e->cache, strnlen(e->cache, CUT_CACHE + 1), CUT_CACHE);
	PUT_LIT(&o, "}");
	o.cap = GW_ACCESS_LINE_MAX;
	PUT_LIT(&o, "\n");
	if (o.len < cap)
		buf[o.len] = '\0';
	return o.len;
}

size_t gw_access_format_addr(const struct sockaddr *sa, socklen_t len, char buf[GW_ACCESS_ADDR_MAX])
{
	buf[0] = '\0';
	if (sa == NULL)
		return 0;
	const char *r = NULL;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		r = inet_ntop(AF_INET, &in->sin_addr, buf, GW_ACCESS_ADDR_MAX);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			r = inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, buf,
			              GW_ACCESS_ADDR_MAX);
		else
			r = inet_ntop(AF_INET6, &in6->sin6_addr, buf, GW_ACCESS_ADDR_MAX);
	}
	if (r == NULL) {
		buf[0] = '\0';
		return 0;
	}
	return strlen(buf);
}

/* ---- the log ----------------------------------------------------------------------- */

rpc_status gw_access_log_open(int fd, int own, gw_access_log **out)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	if (fd < 0)
		return RPC_STATUS_INVALID_ARGUMENT;
	gw_access_log *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	l->fd = fd;
	l->own = own != 0;
	atomic_init(&l->dropped, 0);
	*out = l;
	return RPC_STATUS_OK;
}

void gw_access_log_close(gw_access_log *log)
{
	if (log == NULL)
		return;
	if (log->own)
		close(log->fd);
	free(log);
}

rpc_status gw_access_log_write(gw_access_log *log, const gw_access_entry *e)
{
	if (log == NULL || e == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	char line[GW_ACCESS_LINE_MAX];
	size_t n = gw_access_log_format(e, line, sizeof(line));
	ssize_t w;
	do
		w = write(log->fd, line, n);
	while (w < 0 && errno == EINTR);
	if (w < 0 || (size_t)w != n) {
		atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed);
		return RPC_STATUS_UNAVAILABLE;
	}
	return RPC_STATUS_OK;
}

uint64_t gw_access_log_dropped(const gw_access_log *log)
{
	return log != NULL ? atomic_load(&((gw_access_log *)log)->dropped) : 0;
}
