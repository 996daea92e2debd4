/*
 * gw_reqid.c - request ids and traceparent; see gw_reqid.h.
 *
 * The id generator: each thread keeps a 128-bit random key and a 64-bit
 * counter. An id is two 64-bit halves, each a bijective mix (xor-shift and
 * odd multiplications) of the counter offset by one half of the key, so a
 * thread never repeats an id before 2^64 of them, and two threads collide
 * only if their random keys do. The ids are unique, not secret: nothing in
 * Panthera grants anything for knowing one. A fork() gives the child a new
 * key (pthread_atfork), so parent and child never share a sequence.
 */
#include "gw_reqid.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- X-Request-Id ------------------------------------------------------------- */

static inline int id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == ':';
}

int gw_request_id_sane(const char *v, size_t len)
{
	if (v == NULL || len == 0 || len > GW_REQUEST_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!id_char((unsigned char)v[i]))
			return 0;
	return 1;
}

typedef struct idgen {
	uint64_t k0, k1, counter;
	unsigned generation; /* of fork_generation when seeded; 0: not seeded */
} idgen;

static _Thread_local idgen gen;
static atomic_uint fork_generation = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void)
{
	atomic_fetch_add(&fork_generation, 1);
}

static void register_atfork(void)
{
	/* Without it (ENOMEM) a forked child could repeat its parent's ids
	 * until it reseeds for another reason; pantherad does not fork. */
	(void)pthread_atfork(NULL, NULL, after_fork_child);
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

static void seed(idgen *g, unsigned generation)
{
	unsigned char r[24];
	if (RAND_bytes(r, sizeof(r)) == 1) {
		memcpy(&g->k0, r, 8);
		memcpy(&g->k1, r + 8, 8);
		memcpy(&g->counter, r + 16, 8);
	} else {
		struct timespec a, b;
		clock_gettime(CLOCK_REALTIME, &a);
		clock_gettime(CLOCK_MONOTONIC, &b);
		uint64_t t = (uint64_t)a.tv_sec * 1000000000u + (uint64_t)a.tv_nsec;
		uint64_t m = (uint64_t)b.tv_sec * 1000000000u + (uint64_t)b.tv_nsec;
		uint64_t who = (uint64_t)(uintptr_t)g ^ ((uint64_t)getpid() << 40);
		g->k0 = mix64(t ^ who);
		g->k1 = mix64(m + 0x9e3779b97f4a7c15ull * (who | 1));
		g->counter = mix64(g->k0 ^ g->k1);
	}
	g->generation = generation;
}

void gw_request_id_generate(char out[GW_REQUEST_ID_GEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	pthread_once(&atfork_once, register_atfork);
	unsigned generation = atomic_load_explicit(&fork_generation, memory_order_relaxed);
	idgen *g = &gen;
	if (g->generation != generation)
		seed(g, generation);
	uint64_t c = g->counter++;
	uint64_t h[2] = {mix64(c + g->k0), mix64((c ^ g->k1) * 0x9e3779b97f4a7c15ull)};
	for (int half = 0; half < 2; half++)
		for (int i = 0; i < 16; i++)
			out[half * 16 + i] = hex[(h[half] >> (60 - 4 * i)) & 15];
	out[GW_REQUEST_ID_GEN_LEN] = '\0';
}

size_t gw_request_id(const char *client, size_t len, char out[GW_REQUEST_ID_MAX + 1], int *kept)
{
	if (gw_request_id_sane(client, len)) {
		memcpy(out, client, len);
		out[len] = '\0';
		if (kept != NULL)
			*kept = 1;
		return len;
	}
	gw_request_id_generate(out);
	if (kept != NULL)
		*kept = 0;
	return GW_REQUEST_ID_GEN_LEN;
}

/* ---- traceparent ----------------------------------------------------------------- */

#define GW_TRACEPARENT_MAX_INPUT 512u

static inline int lowhex(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* n lower-case hex digits at p; 0 when they are, and *nonzero says whether
 * any is not '0'. */
static int hex_field(const char *p, size_t n, int *nonzero)
{
	*nonzero = 0;
	for (size_t i = 0; i < n; i++) {
		if (lowhex((unsigned char)p[i]) < 0)
			return -1;
		if (p[i] != '0')
			*nonzero = 1;
	}
	return 0;
}

int gw_traceparent_parse(const char *v, size_t len, gw_traceparent *out)
{
	if (v == NULL || len > GW_TRACEPARENT_MAX_INPUT)
		return -1;
	while (len > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len < GW_TRACEPARENT_LEN)
		return -1;
	int hi = lowhex((unsigned char)v[0]), lo = lowhex((unsigned char)v[1]);
	if (hi < 0 || lo < 0)
		return -1;
	unsigned version = (unsigned)(hi * 16 + lo);
	if (version == 0xff)
		return -1;
	if (version == 0 ? len != GW_TRACEPARENT_LEN
	                 : len > GW_TRACEPARENT_LEN && v[GW_TRACEPARENT_LEN] != '-')
		return -1;
	if (v[2] != '-' || v[35] != '-' || v[52] != '-')
		return -1;
	int trace_nz, parent_nz, flags_nz;
	if (hex_field(v + 3, 32, &trace_nz) != 0 || hex_field(v + 36, 16, &parent_nz) != 0 ||
	    hex_field(v + 53, 2, &flags_nz) != 0 || !trace_nz || !parent_nz)
		return -1;
	if (out != NULL) {
		out->version = (uint8_t)version;
		out->flags =
		    (uint8_t)(lowhex((unsigned char)v[53]) * 16 + lowhex((unsigned char)v[54]));
		memcpy(out->trace_id, v + 3, 32);
		out->trace_id[32] = '\0';
		memcpy(out->parent_id, v + 36, 16);
		out->parent_id[16] = '\0';
		memcpy(out->value, v, GW_TRACEPARENT_LEN);
		out->value[0] = '0';
		out->value[1] = '0';
		out->value[GW_TRACEPARENT_LEN] = '\0';
	}
	return 0;
}

size_t gw_reqid_metadata(const char *request_id, const gw_traceparent *tp,
                         rpc_metadata_entry md[GW_REQID_MD_MAX])
{
	if (request_id == NULL || request_id[0] == '\0' || md == NULL)
		return 0;
	size_t n = 0;
	md[n++] = (rpc_metadata_entry){"x-request-id", request_id};
	if (tp != NULL)
		md[n++] = (rpc_metadata_entry){"traceparent", tp->value};
	return n;
}
