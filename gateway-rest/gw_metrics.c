/*
 * gw_metrics.c - counters and the Prometheus exposition; see gw_metrics.h.
 *
 * Layout: one block of shards, each a multiple of 64 bytes long so that two
 * shards never share a cache line. A shard holds, per route slot (table
 * routes, then the extra names, then "unmatched"), one counter per status
 * slot, one per histogram bucket (not cumulative: the render sums them),
 * and the sum of durations in nanoseconds; then the started, finished and
 * rate-limited counters. Every counter is an atomic updated with relaxed
 * order: the only thing asked of them is that no increment is lost.
 */
#include "gw_metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statuses counted under their own code; others under their class. */
static const int fixed_codes[] = {200, 201, 202, 204, 301, 302, 304, 400, 401,
                                  403, 404, 405, 408, 409, 412, 413, 414, 415,
                                  422, 429, 431, 499, 500, 501, 502, 503, 504};
#define N_FIXED   (sizeof(fixed_codes) / sizeof(fixed_codes[0]))
#define N_CLASSES 6u /* 1xx..5xx, then "other" */
#define N_CODES   (N_FIXED + N_CLASSES)

/* Histogram bounds in nanoseconds and as the "le" label, ascending; a last
 * bucket (+Inf) follows. */
static const uint64_t bucket_ns[] = {100000u,     250000u,     500000u,     1000000u,
                                     2500000u,    5000000u,    10000000u,   25000000u,
                                     50000000u,   100000000u,  250000000u,  500000000u,
                                     1000000000u, 2500000000u, 5000000000u, 10000000000u};
static const char *const bucket_le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                        "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                        "1",      "2.5",     "5",      "10"};
#define N_BOUNDS  (sizeof(bucket_ns) / sizeof(bucket_ns[0]))
#define N_BUCKETS (N_BOUNDS + 1u)

typedef atomic_uint_fast64_t counter;

/* Per route slot, inside a shard. */
typedef struct slot_counters {
	counter codes[N_CODES];
	counter buckets[N_BUCKETS];
	counter sum_ns;
} slot_counters;

typedef struct shard_tail {
	counter started, finished, rate_limited;
} shard_tail;

typedef struct source {
	gw_metrics_source_fn fn;
	void *arg;
} source;

struct gw_metrics {
	const rpc_route_table *routes;
	size_t n_routes, n_extra, n_slots; /* n_slots = n_routes + n_extra + 1 */
	char *extra[GW_METRICS_MAX_EXTRA];
	unsigned n_shards;
	size_t shard_stride; /* bytes */
	unsigned char *shards;
	uint8_t code_slot[600]; /* status -> code slot, for 0..599 */
	const gw_cache *cache;
	source sources[GW_METRICS_MAX_SOURCES];
	size_t n_sources;
};

static inline slot_counters *slots_of(const gw_metrics *m, unsigned shard)
{
	return (slot_counters *)(m->shards + (size_t)shard * m->shard_stride);
}

static inline shard_tail *tail_of(const gw_metrics *m, unsigned shard)
{
	return (shard_tail *)(m->shards + (size_t)shard * m->shard_stride +
	                      m->n_slots * sizeof(slot_counters));
}

/* ---- text ------------------------------------------------------------------------ */

void gw_metrics_text_init(gw_metrics_text *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max ? max : GW_METRICS_TEXT_MAX;
}

void gw_metrics_text_free(gw_metrics_text *t)
{
	if (t == NULL)
		return;
	free(t->data);
	t->data = NULL;
	t->len = t->cap = 0;
	t->failed = 0;
}

static int text_put(gw_metrics_text *t, const char *s, size_t n)
{
	if (t->failed)
		return -1;
	if (n > t->max || t->len > t->max - n) {
		t->failed = 1;
		return -1;
	}
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		if (cap > t->max + 1)
			cap = t->max + 1;
		char *d = realloc(t->data, cap);
		if (d == NULL) {
			t->failed = 1;
			return -1;
		}
		t->data = d;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
	return 0;
}

#define TEXT_LIT(t, s) text_put((t), (s), sizeof(s) - 1)

static int text_u64(gw_metrics_text *t, uint64_t v)
{
	char d[24];
	int n = snprintf(d, sizeof(d), "%llu", (unsigned long long)v);
	return text_put(t, d, (size_t)n);
}

rpc_status gw_metrics_text_append(gw_metrics_text *t, const char *s, size_t n)
{
	if (t == NULL || (s == NULL && n > 0) || (n > 0 && memchr(s, '\0', n) != NULL))
		return RPC_STATUS_INVALID_ARGUMENT;
	if (n == 0)
		return t->failed ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_OK;
	text_put(t, s, n);
	if (s[n - 1] != '\n')
		TEXT_LIT(t, "\n");
	return t->failed ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_OK;
}

static int name_ok(const char *s, int colon)
{
	if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon && c == ':')))
			return 0;
	}
	return 1;
}

/* Escape for HELP (label == 0: backslash, newline) or a label value
 * (label == 1: also the double quote). */
static int text_escaped(gw_metrics_text *t, const char *s, int label)
{
	const char *run = s;
	for (const char *p = s;; p++) {
		char c = *p;
		const char *rep = c == '\\'             ? "\\\\"
		                  : c == '\n'           ? "\\n"
		                  : (label && c == '"') ? "\\\""
		                                        : NULL;
		if (c != '\0' && rep == NULL)
			continue;
		if (text_put(t, run, (size_t)(p - run)) != 0)
			return -1;
		if (c == '\0')
			return 0;
		if (text_put(t, rep, 2) != 0)
			return -1;
		run = p + 1;
	}
}

rpc_status gw_metrics_text_family(gw_metrics_text *t, const char *name, const char *type,
                                  const char *help)
{
	static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
	int known = 0;
	for (size_t i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		known |= strcmp(type, types[i]) == 0;
	if (t == NULL || !name_ok(name, 1) || !known)
		return RPC_STATUS_INVALID_ARGUMENT;
	TEXT_LIT(t, "# HELP ");
	text_put(t, name, strlen(name));
	TEXT_LIT(t, " ");
	text_escaped(t, help != NULL ? help : "", 0);
	TEXT_LIT(t, "\n# TYPE ");
	text_put(t, name, strlen(name));
	TEXT_LIT(t, " ");
	text_put(t, type, strlen(type));
	TEXT_LIT(t, "\n");
	return t->failed ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_OK;
}

static rpc_status sample_head(gw_metrics_text *t, const char *name, const gw_metrics_label *labels,
                              size_t n_labels)
{
	if (t == NULL || !name_ok(name, 1) || (labels == NULL && n_labels > 0))
		return RPC_STATUS_INVALID_ARGUMENT;
	for (size_t i = 0; i < n_labels; i++)
		if (!name_ok(labels[i].name, 0) || labels[i].value == NULL)
			return RPC_STATUS_INVALID_ARGUMENT;
	text_put(t, name, strlen(name));
	if (n_labels > 0) {
		TEXT_LIT(t, "{");
		for (size_t i = 0; i < n_labels; i++) {
			if (i > 0)
				TEXT_LIT(t, ",");
			text_put(t, labels[i].name, strlen(labels[i].name));
			TEXT_LIT(t, "=\"");
			text_escaped(t, labels[i].value, 1);
			TEXT_LIT(t, "\"");
		}
		TEXT_LIT(t, "}");
	}
	TEXT_LIT(t, " ");
	return RPC_STATUS_OK;
}

rpc_status gw_metrics_text_sample(gw_metrics_text *t, const char *name,
                                  const gw_metrics_label *labels, size_t n_labels, uint64_t value)
{
	rpc_status st = sample_head(t, name, labels, n_labels);
	if (st != RPC_STATUS_OK)
		return st;
	text_u64(t, value);
	TEXT_LIT(t, "\n");
	return t->failed ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_OK;
}

rpc_status gw_metrics_text_sample_f(gw_metrics_text *t, const char *name,
                                    const gw_metrics_label *labels, size_t n_labels, double value)
{
	rpc_status st = sample_head(t, name, labels, n_labels);
	if (st != RPC_STATUS_OK)
		return st;
	if (isnan(value)) {
		TEXT_LIT(t, "NaN");
	} else if (isinf(value)) {
		if (value > 0)
			TEXT_LIT(t, "+Inf");
		else
			TEXT_LIT(t, "-Inf");
	} else {
		char d[40];
		int n = snprintf(d, sizeof(d), "%.17g", value);
		text_put(t, d, (size_t)n);
	}
	TEXT_LIT(t, "\n");
	return t->failed ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_OK;
}

/* ---- creation ---------------------------------------------------------------------- */

static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned char c = *p;
		size_t need = c < 0x80                   ? 1
		              : (c >= 0xc2 && c <= 0xdf) ? 2
		              : (c >= 0xe0 && c <= 0xef) ? 3
		              : (c >= 0xf0 && c <= 0xf4) ? 4
		                                         : 0;
		if (need == 0)
			return 0;
		for (size_t i = 1; i < need; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
		    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		p += need;
	}
	return 1;
}

rpc_status gw_metrics_create(const gw_metrics_config *cfg, gw_metrics **out)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	gw_metrics_config d = {0};
	if (cfg == NULL)
		cfg = &d;
	unsigned shards = cfg->shards ? cfg->shards : 1u;
	if (shards > GW_METRICS_MAX_SHARDS || cfg->n_extra > GW_METRICS_MAX_EXTRA ||
	    (cfg->extra == NULL && cfg->n_extra > 0))
		return RPC_STATUS_INVALID_ARGUMENT;
	for (size_t i = 0; i < cfg->n_extra; i++)
		if (cfg->extra[i] == NULL || cfg->extra[i][0] == '\0' || !utf8_ok(cfg->extra[i]))
			return RPC_STATUS_INVALID_ARGUMENT;
	gw_metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	m->routes = cfg->routes;
	m->n_routes = cfg->routes != NULL ? cfg->routes->n_routes : 0;
	m->n_extra = cfg->n_extra;
	m->n_slots = m->n_routes + m->n_extra + 1;
	m->n_shards = shards;
	m->cache = cfg->cache;
	for (size_t i = 0; i < cfg->n_extra; i++) {
		m->extra[i] = strdup(cfg->extra[i]);
		if (m->extra[i] == NULL) {
			gw_metrics_destroy(m);
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		}
	}
	size_t stride = m->n_slots * sizeof(slot_counters) + sizeof(shard_tail);
	stride = (stride + 63u) & ~(size_t)63u;
	m->shard_stride = stride;
	m->shards = aligned_alloc(64, stride * shards);
	if (m->shards == NULL) {
		gw_metrics_destroy(m);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	for (unsigned s = 0; s < shards; s++) {
		slot_counters *sc = slots_of(m, s);
		for (size_t i = 0; i < m->n_slots; i++) {
			for (size_t k = 0; k < N_CODES; k++)
				atomic_init(&sc[i].codes[k], 0);
			for (size_t k = 0; k < N_BUCKETS; k++)
				atomic_init(&sc[i].buckets[k], 0);
			atomic_init(&sc[i].sum_ns, 0);
		}
		shard_tail *t = tail_of(m, s);
		atomic_init(&t->started, 0);
		atomic_init(&t->finished, 0);
		atomic_init(&t->rate_limited, 0);
	}
	for (int st = 0; st < 600; st++) {
		uint8_t slot = (uint8_t)(N_FIXED + 5); /* "other" */
		if (st >= 100)
			slot = (uint8_t)(N_FIXED + (unsigned)(st / 100 - 1));
		for (size_t k = 0; k < N_FIXED; k++)
			if (fixed_codes[k] == st)
				slot = (uint8_t)k;
		m->code_slot[st] = slot;
	}
	*out = m;
	return RPC_STATUS_OK;
}

void gw_metrics_destroy(gw_metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_extra; i++)
		free(m->extra[i]);
	free(m->shards);
	free(m);
}

rpc_status gw_metrics_add_source(gw_metrics *m, gw_metrics_source_fn fn, void *arg)
{
	if (m == NULL || fn == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (m->n_sources == GW_METRICS_MAX_SOURCES)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	m->sources[m->n_sources++] = (source){fn, arg};
	return RPC_STATUS_OK;
}

size_t gw_metrics_extra_slot(const gw_metrics *m, size_t i)
{
	return m != NULL && i < m->n_extra ? m->n_routes + i : GW_METRICS_UNMATCHED;
}

/* ---- counting ---------------------------------------------------------------------- */

static inline void bump(counter *c, uint64_t by)
{
	atomic_fetch_add_explicit(c, by, memory_order_relaxed);
}

void gw_metrics_request_begin(gw_metrics *m, unsigned shard)
{
	if (m != NULL)
		bump(&tail_of(m, shard % m->n_shards)->started, 1);
}

void gw_metrics_request_end(gw_metrics *m, unsigned shard, size_t slot, int status,
                            uint64_t duration_ns)
{
	if (m == NULL)
		return;
	shard %= m->n_shards;
	if (slot >= m->n_slots - 1)
		slot = m->n_slots - 1; /* unmatched */
	slot_counters *sc = &slots_of(m, shard)[slot];
	unsigned code = status >= 0 && status < 600 ? m->code_slot[status] : N_FIXED + 5;
	bump(&sc->codes[code], 1);
	size_t b = 0;
	while (b < N_BOUNDS && duration_ns > bucket_ns[b])
		b++;
	bump(&sc->buckets[b], 1);
	bump(&sc->sum_ns, duration_ns);
	bump(&tail_of(m, shard)->finished, 1);
}

void gw_metrics_rate_limited(gw_metrics *m, unsigned shard)
{
	if (m != NULL)
		bump(&tail_of(m, shard % m->n_shards)->rate_limited, 1);
}

/* ---- rendering ----------------------------------------------------------------------- */

static inline uint64_t load(const counter *c)
{
	return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

/* The method and route labels of a slot; *n 2 for a table route, else 1
 * (the pipeline's own paths and "unmatched" have no method). */
static size_t slot_labels(const gw_metrics *m, size_t slot, gw_metrics_label l[3])
{
	if (slot < m->n_routes) {
		const rpc_http_route *r = &m->routes->routes[slot];
		l[0] = (gw_metrics_label){"method", r->http_method ? r->http_method : ""};
		l[1] = (gw_metrics_label){"route", r->path_template ? r->path_template : ""};
		return 2;
	}
	l[0] = (gw_metrics_label){
	    "route", slot < m->n_routes + m->n_extra ? m->extra[slot - m->n_routes] : "unmatched"};
	return 1;
}

static void code_text(size_t k, char buf[8])
{
	if (k < N_FIXED)
		snprintf(buf, 8, "%d", fixed_codes[k]);
	else if (k < N_FIXED + 5)
		snprintf(buf, 8, "%zuxx", k - N_FIXED + 1);
	else
		snprintf(buf, 8, "other");
}

static void sum_ns_text(uint64_t ns, char buf[32])
{
	snprintf(buf, 32, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
	         (unsigned long long)(ns % 1000000000u));
}

static void render_requests(const gw_metrics *m, gw_metrics_text *t)
{
	gw_metrics_text_family(t, "panthera_gateway_http_requests_total", "counter",
	                       "HTTP requests answered, by route template and status code.");
	for (size_t s = 0; s < m->n_slots; s++)
		for (size_t k = 0; k < N_CODES; k++) {
			uint64_t v = 0;
			for (unsigned sh = 0; sh < m->n_shards; sh++)
				v += load(&slots_of(m, sh)[s].codes[k]);
			if (v == 0)
				continue;
			gw_metrics_label l[3];
			size_t n = slot_labels(m, s, l);
			char code[8];
			code_text(k, code);
			l[n++] = (gw_metrics_label){"code", code};
			gw_metrics_text_sample(t, "panthera_gateway_http_requests_total", l, n, v);
		}
}

static void render_durations(const gw_metrics *m, gw_metrics_text *t)
{
	static const char *const name = "panthera_gateway_http_request_duration_seconds";
	gw_metrics_text_family(t, name, "histogram",
	                       "Time from a request's arrival to its answer, by route template.");
	for (size_t s = 0; s < m->n_slots; s++) {
		uint64_t b[N_BUCKETS] = {0}, total = 0, sum = 0;
		for (unsigned sh = 0; sh < m->n_shards; sh++) {
			const slot_counters *sc = &slots_of(m, sh)[s];
			for (size_t k = 0; k < N_BUCKETS; k++)
				b[k] += load(&sc->buckets[k]);
			sum += load(&sc->sum_ns);
		}
		for (size_t k = 0; k < N_BUCKETS; k++)
			total += b[k];
		if (total == 0)
			continue;
		gw_metrics_label l[3];
		size_t n = slot_labels(m, s, l);
		uint64_t cumulative = 0;
		for (size_t k = 0; k < N_BUCKETS; k++) {
			cumulative += b[k];
			l[n] = (gw_metrics_label){"le", k < N_BOUNDS ? bucket_le[k] : "+Inf"};
			gw_metrics_text_sample(
			    t, "panthera_gateway_http_request_duration_seconds_bucket", l, n + 1,
			    cumulative);
		}
		char sum_text[32];
		sum_ns_text(sum, sum_text);
		sample_head(t, "panthera_gateway_http_request_duration_seconds_sum", l, n);
		text_put(t, sum_text, strlen(sum_text));
		TEXT_LIT(t, "\n");
		gw_metrics_text_sample(t, "panthera_gateway_http_request_duration_seconds_count", l,
		                       n, total);
	}
}

static void render_totals(const gw_metrics *m, gw_metrics_text *t)
{
	uint64_t finished = 0, started = 0, limited = 0;
	/* finished first: read later, started is never the smaller of the two
	 * for requests that ended before this scrape */
	for (unsigned sh = 0; sh < m->n_shards; sh++)
		finished += atomic_load(&tail_of(m, sh)->finished);
	for (unsigned sh = 0; sh < m->n_shards; sh++) {
		started += atomic_load(&tail_of(m, sh)->started);
		limited += load(&tail_of(m, sh)->rate_limited);
	}
	gw_metrics_text_family(t, "panthera_gateway_http_requests_in_flight", "gauge",
	                       "HTTP requests received and not yet answered.");
	gw_metrics_text_sample(t, "panthera_gateway_http_requests_in_flight", NULL, 0,
	                       started > finished ? started - finished : 0);
	gw_metrics_text_family(t, "panthera_gateway_rate_limited_total", "counter",
	                       "Requests refused by the rate limiter (429).");
	gw_metrics_text_sample(t, "panthera_gateway_rate_limited_total", NULL, 0, limited);
}

static void render_cache(const gw_cache *c, gw_metrics_text *t)
{
	gw_cache_stats s;
	gw_cache_stats_get(c, &s);
	static const struct {
		const char *name, *type, *help;
		size_t offset;
	} rows[] = {
	    {"panthera_gateway_cache_hits_total", "counter",
	     "Response cache lookups that found a fresh entry.", offsetof(gw_cache_stats, hits)},
	    {"panthera_gateway_cache_misses_total", "counter",
	     "Response cache lookups that found none (expired entries included).",
	     offsetof(gw_cache_stats, misses)},
	    {"panthera_gateway_cache_stores_total", "counter",
	     "Replies stored in the response cache.", offsetof(gw_cache_stats, stores)},
	    {"panthera_gateway_cache_store_refused_total", "counter",
	     "Replies not stored: invalidated while in flight, too large, or out of memory.",
	     offsetof(gw_cache_stats, store_refused)},
	    {"panthera_gateway_cache_evictions_total", "counter",
	     "Entries evicted (least recently used) to stay within the byte limit.",
	     offsetof(gw_cache_stats, evictions)},
	    {"panthera_gateway_cache_expirations_total", "counter",
	     "Entries dropped because their TTL ran out.", offsetof(gw_cache_stats, expirations)},
	    {"panthera_gateway_cache_invalidations_total", "counter",
	     "Entries dropped by a change event or a write (tags), or a clear.",
	     offsetof(gw_cache_stats, invalidations)},
	    {"panthera_gateway_cache_entries", "gauge", "Entries in the response cache.",
	     offsetof(gw_cache_stats, entries)},
	    {"panthera_gateway_cache_bytes", "gauge", "Bytes the response cache holds.",
	     offsetof(gw_cache_stats, bytes)},
	    {"panthera_gateway_cache_max_bytes", "gauge", "The response cache's byte limit.",
	     offsetof(gw_cache_stats, max_bytes)},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t v;
		memcpy(&v, (const char *)&s + rows[i].offset, sizeof(v));
		gw_metrics_text_family(t, rows[i].name, rows[i].type, rows[i].help);
		gw_metrics_text_sample(t, rows[i].name, NULL, 0, v);
	}
}

rpc_status gw_metrics_render(const gw_metrics *m, gw_metrics_text *out)
{
	if (m == NULL || out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	render_requests(m, out);
	render_durations(m, out);
	render_totals(m, out);
	if (m->cache != NULL)
		render_cache(m->cache, out);
	for (size_t i = 0; i < m->n_sources && !out->failed; i++) {
		size_t before = out->len;
		rpc_status st = m->sources[i].fn(out, m->sources[i].arg);
		if (out->failed)
			break;
		if (st != RPC_STATUS_OK) {
			out->len = before; /* leave its partial text out */
			if (out->data != NULL)
				out->data[before] = '\0';
		} else if (out->len > before && out->data[out->len - 1] != '\n') {
			TEXT_LIT(out, "\n");
		}
	}
	return out->failed ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_OK;
}
