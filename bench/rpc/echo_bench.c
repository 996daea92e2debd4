/*
 * echo_bench.c - the helpers every echo program shares; see echo_bench.h.
 */
#include "echo_bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Set once from argv[0] at start; only names the program in messages. */
static const char *echo_bench_prog = "echo_bench";

static void echo_bench_set_prog(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	echo_bench_prog = slash != NULL ? slash + 1 : argv0;
}

void echo_bench_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", echo_bench_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Parses a positive decimal count; 0 on anything else. */
static size_t echo_bench_parse_count(const char *s)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > SIZE_MAX / 8)
		return 0;
	return (size_t)v;
}

static void echo_bench_client_usage(void)
{
	echo_bench_die("usage: %s URL seq N | %s URL par N INFLIGHT", echo_bench_prog,
	               echo_bench_prog);
}

void echo_bench_client_args(int argc, char **argv, struct echo_bench_args *out)
{
	echo_bench_set_prog(argc > 0 ? argv[0] : "echo_client");
	if (argc == 4 && strcmp(argv[2], "seq") == 0) {
		out->mode = ECHO_BENCH_SEQ;
		out->inflight = 1;
	} else if (argc == 5 && strcmp(argv[2], "par") == 0) {
		out->mode = ECHO_BENCH_PAR;
		out->inflight = echo_bench_parse_count(argv[4]);
		if (out->inflight == 0)
			echo_bench_client_usage();
	} else {
		echo_bench_client_usage();
	}
	out->url = argv[1];
	out->calls = echo_bench_parse_count(argv[3]);
	if (out->calls == 0)
		echo_bench_client_usage();
}

const char *echo_bench_server_args(int argc, char **argv)
{
	echo_bench_set_prog(argc > 0 ? argv[0] : "echo_server");
	if (argc != 2)
		echo_bench_die("usage: %s URL", echo_bench_prog);
	return argv[1];
}

/* Byte i of the payload; any fixed pattern would do, this one is not all zeros. */
static uint8_t echo_bench_payload_byte(size_t i)
{
	return (uint8_t)('A' + (i * 7) % 26);
}

void echo_bench_payload_fill(uint8_t *buf)
{
	for (size_t i = 0; i < ECHO_BENCH_PAYLOAD_LEN; i++)
		buf[i] = echo_bench_payload_byte(i);
}

int echo_bench_payload_ok(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (len != ECHO_BENCH_PAYLOAD_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != echo_bench_payload_byte(i))
			return 0;
	}
	return 1;
}

uint64_t echo_bench_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux; a failure would leave ts zero. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		echo_bench_die("clock_gettime: %s", strerror(errno));
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

long echo_bench_rss_kib(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss; /* KiB on Linux */
}

size_t echo_bench_warmup_calls(size_t calls)
{
	size_t n = calls / 10;

	if (n < 1)
		n = 1;
	if (n > 1000)
		n = 1000;
	return n;
}

void echo_bench_samples_init(struct echo_bench_samples *s, size_t count)
{
	s->ns = calloc(count, sizeof(s->ns[0]));
	if (s->ns == NULL)
		echo_bench_die("out of memory for %zu samples", count);
	s->count = count;
}

void echo_bench_samples_set(struct echo_bench_samples *s, size_t i, uint64_t ns)
{
	s->ns[i] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

void echo_bench_samples_free(struct echo_bench_samples *s)
{
	free(s->ns);
	s->ns = NULL;
	s->count = 0;
}

static int echo_bench_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a;
	uint32_t y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples: the smallest value >= pct% of them. */
static double echo_bench_percentile_us(const struct echo_bench_samples *s, unsigned pct)
{
	size_t rank = (s->count * pct + 99) / 100;

	if (rank == 0)
		rank = 1;
	return s->ns[rank - 1] / 1000.0;
}

void echo_bench_report(struct echo_bench_samples *s, uint64_t wall_ns)
{
	double secs = wall_ns / 1e9;

	qsort(s->ns, s->count, sizeof(s->ns[0]), echo_bench_cmp_u32);
	if (printf("p50_us=%.1f p99_us=%.1f rps=%.0f rss_kib=%ld\n",
	           echo_bench_percentile_us(s, 50), echo_bench_percentile_us(s, 99),
	           secs > 0 ? s->count / secs : 0.0, echo_bench_rss_kib()) < 0 ||
	    fflush(stdout) != 0)
		echo_bench_die("writing the result: %s", strerror(errno));
}

void echo_bench_block_stop_signals(sigset_t *set)
{
	int rv;

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		echo_bench_die("ignoring SIGPIPE: %s", strerror(errno));
	if (sigemptyset(set) != 0 || sigaddset(set, SIGTERM) != 0 || sigaddset(set, SIGINT) != 0)
		echo_bench_die("sigset: %s", strerror(errno));
	rv = pthread_sigmask(SIG_BLOCK, set, NULL);
	if (rv != 0)
		echo_bench_die("pthread_sigmask: %s", strerror(rv));
}

void echo_bench_wait_stop(const sigset_t *set)
{
	int sig;
	int rv;

	do {
		rv = sigwait(set, &sig);
	} while (rv == EINTR);
	if (rv != 0)
		echo_bench_die("sigwait: %s", strerror(rv));
}

void echo_bench_server_report(void)
{
	if (printf("rss_kib=%ld\n", echo_bench_rss_kib()) < 0 || fflush(stdout) != 0)
		echo_bench_die("writing the result: %s", strerror(errno));
}
