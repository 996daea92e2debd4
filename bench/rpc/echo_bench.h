/*
 * echo_bench.h - what every echo program of bench/rpc shares: the command
 * line, the 100-byte payload, the clock, latency samples and the one result
 * line the harness (run.sh) parses.
 *
 * The contract each variant keeps (README.md says it in full):
 *
 *   <variant>_server URL               echo until SIGTERM or SIGINT, then print
 *                                      "rss_kib=<n>" on stdout and exit 0.
 *   <variant>_client URL seq N         N calls one after the other.
 *   <variant>_client URL par N K       N calls, K outstanding at all times.
 *
 * A client prints exactly one line on stdout,
 * "p50_us=<a> p99_us=<b> rps=<c> rss_kib=<d>", and exits 0; on any failure it
 * prints a message on stderr and exits 1 (echo_bench_die()).
 *
 * Usable from C and C++. Not thread-safe but where a function says so.
 */
#ifndef ECHO_BENCH_H
#define ECHO_BENCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The request, and so the reply, is this many bytes of echo_bench_payload_fill(). */
#define ECHO_BENCH_PAYLOAD_LEN 100

/* No call, connection or wait of a client may take longer than this. */
#define ECHO_BENCH_TIMEOUT_MS 10000

/* How long a client keeps retrying a refused dial (the server may still be starting). */
#define ECHO_BENCH_DIAL_RETRY_MS 3000

enum echo_bench_mode {
	ECHO_BENCH_SEQ, /* one call at a time */
	ECHO_BENCH_PAR, /* `inflight` calls outstanding at all times */
};

struct echo_bench_args {
	const char *url;           /* argv[1], not copied */
	enum echo_bench_mode mode; /* seq or par */
	size_t calls;              /* N, >= 1 */
	size_t inflight;           /* K for par, >= 1; 1 for seq */
};

/*
 * Parses a client's command line into *out. On a bad command line prints the
 * usage on stderr and exits 1; never returns an error.
 */
void echo_bench_client_args(int argc, char **argv, struct echo_bench_args *out);

/* Parses a server's command line and returns its URL (argv[1]); exits 1 on a bad one. */
const char *echo_bench_server_args(int argc, char **argv);

/* Prints "<program>: <formatted message>\n" on stderr and exits 1. */
void echo_bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Fills buf with the fixed request pattern (ECHO_BENCH_PAYLOAD_LEN bytes). */
void echo_bench_payload_fill(uint8_t *buf);

/* 1 if buf holds exactly the request pattern (len must be ECHO_BENCH_PAYLOAD_LEN), else 0. */
int echo_bench_payload_ok(const void *buf, size_t len);

/* CLOCK_MONOTONIC in nanoseconds. Thread-safe. */
uint64_t echo_bench_now_ns(void);

/* Peak resident set of this process in KiB (getrusage ru_maxrss). Thread-safe. */
long echo_bench_rss_kib(void);

/*
 * Calls not measured before the measured ones, to open connections and warm
 * caches: a tenth of `calls`, at least 1, at most 1000.
 */
size_t echo_bench_warmup_calls(size_t calls);

/*
 * Latency of each measured call, in nanoseconds (saturated at UINT32_MAX).
 * Distinct indexes may be set from distinct threads at once.
 */
struct echo_bench_samples {
	uint32_t *ns; /* `count` entries */
	size_t count;
};

/* Allocates room for `count` samples; exits 1 when out of memory. */
void echo_bench_samples_init(struct echo_bench_samples *s, size_t count);

/* Records sample `i` (< count). */
void echo_bench_samples_set(struct echo_bench_samples *s, size_t i, uint64_t ns);

/* Frees the samples; harmless on a zeroed struct. */
void echo_bench_samples_free(struct echo_bench_samples *s);

/*
 * Sorts the samples and prints the client's result line on stdout:
 * nearest-rank p50 and p99 in microseconds, rps = count / wall time, and the
 * peak RSS. Exits 1 if stdout cannot be written.
 */
void echo_bench_report(struct echo_bench_samples *s, uint64_t wall_ns);

/*
 * For servers, before any thread starts (threads inherit the mask): blocks
 * SIGTERM and SIGINT so that only echo_bench_wait_stop() receives them, and
 * ignores SIGPIPE (a peer gone mid-write is an error return, not a death).
 * Fills *set for echo_bench_wait_stop(). Exits 1 on failure.
 */
void echo_bench_block_stop_signals(sigset_t *set);

/* Waits for SIGTERM or SIGINT, blocked beforehand with echo_bench_block_stop_signals(). */
void echo_bench_wait_stop(const sigset_t *set);

/* Prints the server's exit line "rss_kib=<n>" on stdout; exits 1 if it cannot. */
void echo_bench_server_report(void);

#ifdef __cplusplus
}
#endif

#endif /* ECHO_BENCH_H */
