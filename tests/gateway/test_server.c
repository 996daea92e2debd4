/*
 * test_server.c - the gateway's HTTP server core (gateway-rest/gw_server.h)
 * on 127.0.0.1 with a port of its choosing, driven by real clients: the
 * curl binary (HTTP/1.1, HTTPS, HTTP/2) and raw sockets for what curl will
 * not send. The test handler echoes, answers later from a worker thread,
 * holds a request until the test answers it, or answers badly, by path.
 * Covers: echo of method, target, headers, body, peer; header lookup in any
 * case; keep-alive reuse; HEAD and 204; 413 over the body limit (length
 * and chunked) without calling the handler; 431 over the header limits,
 * h2o's own 400 past 100 fields; Content-Length with Transfer-Encoding, two
 * differing Content-Lengths, two Transfer-Encodings, a folded line: 400 and
 * the connection closed, two equal Content-Lengths accepted; a client that
 * trickles bytes cut off after the read timeout; a client gone before its
 * asynchronous answer (HTTP/1 and HTTP/2); answers from another thread,
 * many at once; an invalid answer turned into 500; stop and destroy from a
 * handler refused; a custom error body;
 * graceful shutdown finishing a request in flight, closing idle keep-alive
 * connections at once, answering 503 what is left at the deadline, late
 * answers after stop and after destroy; counters; bind and TLS set-up
 * errors, a port held by another SO_REUSEPORT socket; IPv6; HTTPS with
 * HTTP/1.1 and HTTP/2 through ALPN; no descriptor left open.
 *
 * Under ASan, h2o's per-thread free lists are the one leak suppressed (see
 * __lsan_default_suppressions below).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"
#include "gw_server.h"
#include "panthera/log.h"

extern char **environ;

/*
 * h2o 2.2.5 keeps per-thread free lists of memory chunks in __thread
 * variables it never empties (lib/common/memory.c: mempool_allocator, for
 * request pools; lib/http2/connection.c: wbuf_buffer_prototype, for HTTP/2
 * write buffers). When an event-loop thread ends, the chunks parked there
 * are unreachable: a leak of at most 16 chunks per list and thread, by
 * design of h2o (its server's threads never end). Every such chunk is
 * allocated through h2o_mem_alloc_recycle(), and nothing of ours is, so
 * that one frame is suppressed, for this test program only. (The socket
 * buffers' list, which h2o exports, the server empties itself.)
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:h2o_mem_alloc_recycle\n";
}

/* ---- time ------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- the test handler ---------------------------------------------------------- */

typedef struct job {
	gw_request *req;
	uint64_t due;
	struct job *next;
} job;

#define MAX_HELD 32

typedef struct state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *jobs; /* sorted by due */
	int quit;
	pthread_t worker;
	gw_request *held[MAX_HELD];
	size_t n_held;
	atomic_int calls;
	atomic_int bad_status; /* what gw_respond returned for /bad-header */
	gw_server *srv;        /* for /stop-here */
	unsigned threads;
} state;

static state *st;

/* The worker thread: answers /async requests when they fall due. */
static void *worker_main(void *arg)
{
	state *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->jobs == NULL) {
			if (s->quit)
				break;
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		uint64_t now = now_ms();
		if (s->jobs->due > now) {
			unsigned wait = (unsigned)(s->jobs->due - now < 5 ? s->jobs->due - now : 5);
			pthread_mutex_unlock(&s->mu);
			sleep_ms(wait);
			pthread_mutex_lock(&s->mu);
			continue;
		}
		job *j = s->jobs;
		s->jobs = j->next;
		pthread_mutex_unlock(&s->mu);
		gw_header h = {"Content-Type", 12, "text/plain", 10};
		assert_int_equal(gw_respond(j->req, 200, &h, 1, "async", 5), RPC_STATUS_OK);
		free(j);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void schedule(state *s, gw_request *req, unsigned ms)
{
	job *j = malloc(sizeof(*j));
	assert_non_null(j);
	j->req = req;
	j->due = now_ms() + ms;
	pthread_mutex_lock(&s->mu);
	job **p = &s->jobs;
	while (*p != NULL && (*p)->due <= j->due)
		p = &(*p)->next;
	j->next = *p;
	*p = j;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int path_is(const char *path, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(path, prefix, n) == 0;
}

/* "<METHOD> <target> loop=<i> peer=<addr> x-test=<value>|- body=<body>" */
static void answer_echo(gw_request *req)
{
	size_t mlen, plen, blen;
	const char *m = gw_request_method(req, &mlen);
	const char *p = gw_request_path(req, &plen);
	const char *b = gw_request_body(req, &blen);
	const gw_header *x = gw_request_find_header(req, "X-TEST", 6, NULL);
	const gw_header *x2 = x != NULL ? gw_request_find_header(req, "x-test", 6, x) : NULL;
	socklen_t alen;
	const struct sockaddr *sa = gw_request_peer(req, &alen);
	char addr[64] = "?";
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
		          sizeof(addr));
	size_t cap = mlen + plen + blen + 512;
	char *out = gw_request_alloc(req, cap); /* the arena holds the answer */
	assert_non_null(out);
	int n = snprintf(out, cap,
	                 "%.*s %.*s loop=%u peer=%s v=%x tls=%d x-test=%s%s%s body=", (int)mlen, m,
	                 (int)plen, p, gw_request_loop(req), addr, gw_request_http_version(req),
	                 gw_request_is_tls(req), x != NULL ? x->value : "-", x2 != NULL ? "," : "",
	                 x2 != NULL ? x2->value : "");
	assert_true(n > 0 && (size_t)n + blen < cap);
	memcpy(out + n, b, blen);
	gw_header h[] = {{"Content-Type", 12, "text/plain", 10},
	                 {"X-Echo", 6, "yes", 3},
	                 {"Content-Length", 14, "999", 3} /* the server's: ignored */};
	assert_int_equal(gw_respond(req, 200, h, 3, out, (size_t)n + blen), RPC_STATUS_OK);
}

static void test_handler(gw_request *req, void *arg)
{
	state *s = arg;
	size_t plen;
	const char *path = gw_request_path(req, &plen);
	atomic_fetch_add(&s->calls, 1);
	if (path_is(path, plen, "/async")) {
		unsigned ms = 50;
		const char *q = strstr(path, "ms=");
		if (q != NULL)
			ms = (unsigned)atoi(q + 3);
		schedule(s, req, ms);
	} else if (path_is(path, plen, "/hold")) {
		pthread_mutex_lock(&s->mu);
		assert_true(s->n_held < MAX_HELD);
		s->held[s->n_held++] = req;
		pthread_mutex_unlock(&s->mu);
	} else if (path_is(path, plen, "/bad-header")) {
		gw_header h = {"X-Split", 7, "a\r\nSet-Cookie: x=1", 18};
		atomic_store(&s->bad_status, gw_respond(req, 200, &h, 1, "no", 2));
	} else if (path_is(path, plen, "/stop-here")) {
		gw_server_stop(s->srv); /* from a loop thread: refused */
		gw_server_destroy(s->srv);
		assert_int_equal(gw_respond(req, 200, NULL, 0, "still here", 10), RPC_STATUS_OK);
	} else if (path_is(path, plen, "/status/204")) {
		assert_int_equal(gw_respond(req, 204, NULL, 0, NULL, 0), RPC_STATUS_OK);
	} else if (path_is(path, plen, "/big")) {
		size_t n = 200000;
		char *body = malloc(n);
		assert_non_null(body);
		for (size_t i = 0; i < n; i++)
			body[i] = (char)('a' + i % 26);
		assert_int_equal(gw_respond(req, 200, NULL, 0, body, n), RPC_STATUS_OK);
		free(body); /* copied */
	} else {
		answer_echo(req);
	}
}

/* Wait until the handler has been called `n` times. */
static void wait_calls(state *s, int n, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	while (atomic_load(&s->calls) < n) {
		if (now_ms() > end)
			fail_msg("the handler was called %d times, want %d", atomic_load(&s->calls),
			         n);
		sleep_ms(5);
	}
}

/* Wait until `n` requests are held; returns how many are. */
static size_t wait_held(state *s, size_t n, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		size_t have = s->n_held;
		pthread_mutex_unlock(&s->mu);
		if (have >= n || now_ms() > end)
			return have;
		sleep_ms(5);
	}
}

static gw_request *take_held(state *s)
{
	pthread_mutex_lock(&s->mu);
	gw_request *r = s->n_held > 0 ? s->held[--s->n_held] : NULL;
	pthread_mutex_unlock(&s->mu);
	return r;
}

static state *state_new(void)
{
	state *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	assert_int_equal(pthread_create(&s->worker, NULL, worker_main, s), 0);
	return s;
}

static void state_free(state *s)
{
	pthread_mutex_lock(&s->mu);
	s->quit = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->worker, NULL);
	assert_int_equal(s->n_held, 0);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

/* ---- servers ------------------------------------------------------------------------ */

static void config(gw_server_config *cfg, state *s)
{
	gw_server_config_init(cfg);
	cfg->listen = "127.0.0.1:0";
	cfg->threads = 2;
	cfg->handler = test_handler;
	cfg->handler_arg = s;
	cfg->shutdown_timeout_ms = 5000;
}

static gw_server *start(const gw_server_config *cfg)
{
	gw_server *srv = NULL;
	char err[256] = "";
	rpc_status rc = gw_server_start(cfg, &srv, err, sizeof(err));
	if (rc != RPC_STATUS_OK)
		fail_msg("gw_server_start: %s: %s", rpc_status_name(rc), err);
	assert_non_null(srv);
	assert_int_not_equal(gw_server_port(srv), 0);
	return srv;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void wait_stat(gw_server *srv, size_t offset, uint64_t want, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	gw_server_stats stats;
	for (;;) {
		gw_server_stats_get(srv, &stats);
		uint64_t v = *(uint64_t *)((char *)&stats + offset);
		if (v == want)
			return;
		if (now_ms() > end)
			fail_msg("counter at offset %zu is %llu, want %llu", offset,
			         (unsigned long long)v, (unsigned long long)want);
		sleep_ms(5);
	}
}

/* ---- curl ------------------------------------------------------------------------------ */

typedef struct child {
	pid_t pid;
	int out;
} child;

/* Start curl with args (NULL-terminated after the fixed ones); its stdin
 * gets `in` (may be NULL), its stdout is read by finish(). */
static child curl_start(const char *in, size_t in_len, const char *const *args)
{
	const char *argv[64] = {"curl",       "-s", "-S",        "--no-progress-meter",
	                        "--max-time", "10", "--noproxy", "*"};
	size_t n = 8;
	for (size_t i = 0; args[i] != NULL; i++) {
		assert_true(n < 63);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	int out[2], inp[2];
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(inp), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	posix_spawn_file_actions_addclose(&fa, inp[1]);
	child c = {0, out[0]};
	assert_int_equal(posix_spawnp(&c.pid, "curl", &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(inp[0]);
	if (in != NULL && in_len > 0)
		assert_int_equal(write(inp[1], in, in_len), (ssize_t)in_len);
	close(inp[1]);
	return c;
}

/* Read the child's output into out (NUL-terminated); its exit status. */
static int curl_finish(child c, char *out, size_t cap)
{
	size_t have = 0;
	for (;;) {
		ssize_t r = read(c.out, out + have, cap - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		if (have == cap - 1)
			break;
	}
	out[have] = '\0';
	close(c.out);
	int status;
	assert_int_equal(waitpid(c.pid, &status, 0), c.pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int curl(char *out, size_t cap, const char *in, size_t in_len, ...)
{
	const char *args[48];
	size_t n = 0;
	va_list ap;
	va_start(ap, in_len);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		assert_true(n < 47);
		args[n++] = a;
	}
	va_end(ap);
	args[n] = NULL;
	return curl_finish(curl_start(in, in_len, args), out, cap);
}

static void url(char *buf, size_t cap, gw_server *srv, const char *scheme, const char *path)
{
	snprintf(buf, cap, "%s://127.0.0.1:%u%s", scheme, gw_server_port(srv), path);
}

/* curl's -w suffix: "\n<code> <version>" at the end of out. */
#define WFMT "\n%{http_code} %{http_version}"

static int tail_code(const char *out)
{
	const char *nl = strrchr(out, '\n');
	return nl != NULL ? atoi(nl + 1) : -1;
}

/* ---- raw sockets ----------------------------------------------------------------------- */

static int raw_connect(gw_server *srv)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)gw_server_port(srv));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void raw_send(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

/*
 * Read until EOF, `cap - 1` bytes, or `ms` of silence; NUL-terminated.
 * *eof (may be NULL) tells whether the server closed the connection.
 */
static size_t raw_read(int fd, char *buf, size_t cap, unsigned ms, int *eof)
{
	size_t have = 0;
	if (eof != NULL)
		*eof = 0;
	while (have < cap - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, (int)ms) <= 0)
			break;
		ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
		if (r <= 0) {
			if (eof != NULL)
				*eof = 1;
			break;
		}
		have += (size_t)r;
	}
	buf[have] = '\0';
	return have;
}

/* Read one response whose head has a Content-Length; its length. */
static size_t raw_read_response(int fd, char *buf, size_t cap, unsigned ms)
{
	size_t have = 0;
	uint64_t end = now_ms() + ms;
	for (;;) {
		buf[have] = '\0';
		const char *eoh = strstr(buf, "\r\n\r\n");
		if (eoh != NULL) {
			const char *cl = strcasestr(buf, "content-length:");
			size_t need = (size_t)(eoh + 4 - buf) +
			              (cl != NULL && cl < eoh ? (size_t)atol(cl + 15) : 0);
			if (have >= need)
				return have;
		}
		if (now_ms() > end || have >= cap - 1)
			fail_msg("incomplete response: %s", buf);
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
		if (r <= 0)
			fail_msg("connection closed in a response: %s", buf);
		have += (size_t)r;
	}
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_server_echoes_a_request(void **unused)
{
	(void)unused;
	int fds = count_fds();
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);
	char u[128], out[4096];

	url(u, sizeof(u), srv, "http", "/echo/x?q=1&r=%20");
	assert_int_equal(curl(out, sizeof(out), "hello", 5, "-i", "-H", "X-Test: one", "-H",
	                      "x-TEST: two", "-H", "Content-Type: application/json",
	                      "--data-binary", "@-", u, NULL),
	                 0);
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "\r\nx-echo: yes\r\n"));
	assert_non_null(strstr(out, "\r\nContent-Length: "));
	assert_null(strstr(out, "999"));             /* the handler's Content-Length: ignored */
	assert_null(strcasestr(out, "\r\nserver:")); /* no Server field */
	assert_non_null(strstr(out, "POST /echo/x?q=1&r=%20 loop="));
	assert_non_null(strstr(out, " peer=127.0.0.1 v=101 tls=0 x-test=one,two body=hello"));
	gw_server_stats stats;
	gw_server_stats_get(srv, &stats);
	assert_int_equal(stats.requests, 1);
	assert_int_equal(stats.responses[2], 1);
	assert_int_equal(stats.rejected, 0);
	assert_int_equal(stats.connections_total, 1);
	assert_int_equal(atomic_load(&st->calls), 1);

	gw_server_destroy(srv);
	state_free(st);
	/* Every listener, loop, queue pipe and epoll descriptor is closed. */
	assert_int_equal(count_fds(), fds);
}

static void test_server_keeps_connections_alive(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);
	char u1[128], u2[128], out[4096];

	/* curl: two URLs, one connection. */
	url(u1, sizeof(u1), srv, "http", "/echo/1");
	url(u2, sizeof(u2), srv, "http", "/echo/2");
	assert_int_equal(curl(out, sizeof(out), NULL, 0, u1, u2, NULL), 0);
	assert_non_null(strstr(out, "GET /echo/1 "));
	assert_non_null(strstr(out, "GET /echo/2 "));
	/* a raw socket: three requests, two of them pipelined */
	int fd = raw_connect(srv);
	const char *r1 = "GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_send(fd, r1, strlen(r1));
	raw_read_response(fd, out, sizeof(out), 2000);
	assert_non_null(strstr(out, "Connection: keep-alive"));
	assert_non_null(strstr(out, "GET /echo/a "));
	const char *r2 = "POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	                 "GET /echo/c HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_send(fd, r2, strlen(r2));
	size_t n = raw_read_response(fd, out, sizeof(out), 2000);
	assert_non_null(strstr(out, "POST /echo/b "));
	assert_non_null(strstr(out, "body=abc"));
	if (strstr(out, "GET /echo/c ") == NULL) {
		raw_read_response(fd, out + n, sizeof(out) - n, 2000);
		assert_non_null(strstr(out + n, "GET /echo/c "));
	}
	close(fd);
	gw_server_stats stats;
	gw_server_stats_get(srv, &stats);
	assert_int_equal(stats.connections_total, 2);
	assert_int_equal(stats.requests, 5);

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_head_and_no_content(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);
	char out[4096];
	int fd = raw_connect(srv), eof;

	const char *r = "HEAD /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	raw_send(fd, r, strlen(r));
	raw_read(fd, out, sizeof(out), 2000, &eof);
	assert_true(eof);
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	const char *cl = strstr(out, "Content-Length: ");
	assert_non_null(cl);
	assert_true(atoi(cl + 16) > 0);
	const char *eoh = strstr(out, "\r\n\r\n");
	assert_non_null(eoh);
	assert_string_equal(eoh + 4, ""); /* the length, not the body */
	close(fd);

	fd = raw_connect(srv);
	r = "GET /status/204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	raw_send(fd, r, strlen(r));
	raw_read(fd, out, sizeof(out), 2000, &eof);
	assert_non_null(strstr(out, "HTTP/1.1 204 No Content\r\n"));
	assert_null(strstr(out, "Content-Length"));
	assert_string_equal(strstr(out, "\r\n\r\n") + 4, "");
	close(fd);

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_refuses_a_body_over_the_limit(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	cfg.max_body = 1024;
	gw_server *srv = start(&cfg);
	char u[128], out[8192], body[2048];
	memset(body, 'a', sizeof(body));

	url(u, sizeof(u), srv, "http", "/echo");
	assert_int_equal(
	    curl(out, sizeof(out), body, 1024, "--data-binary", "@-", "-w", WFMT, u, NULL), 0);
	assert_int_equal(tail_code(out), 200); /* exactly the limit */
	assert_int_equal(curl(out, sizeof(out), body, 1025, "-i", "--data-binary", "@-", u, NULL),
	                 0);
	assert_non_null(strstr(out, "HTTP/1.1 413 "));
	assert_non_null(strcasestr(out, "\r\ncontent-type: application/json\r\n"));
	assert_non_null(strstr(out, "{\"error\":{\"code\":413,\"status\":\"RESOURCE_EXHAUSTED\","
	                            "\"message\":\"the request body is larger than 1024 bytes\""));
	assert_non_null(strstr(out, "\"reason\":\"PAYLOAD_TOO_LARGE\""));
	/* chunked, over the limit */
	int fd = raw_connect(srv), eof;
	const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	                   "800\r\n";
	raw_send(fd, head, strlen(head));
	raw_send(fd, body, 0x800);
	raw_send(fd, "\r\n0\r\n\r\n", 7);
	raw_read(fd, out, sizeof(out), 2000, &eof);
	assert_non_null(strstr(out, "HTTP/1.1 413 "));
	assert_non_null(strstr(out, "PAYLOAD_TOO_LARGE"));
	assert_true(eof);
	close(fd);
	assert_int_equal(atomic_load(&st->calls), 1); /* the handler saw the first only */
	gw_server_stats stats;
	gw_server_stats_get(srv, &stats);
	assert_int_equal(stats.responses[4], 2);
	assert_int_equal(stats.rejected, 2);

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_refuses_heads_over_the_limits(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	cfg.max_header_bytes = 1024;
	cfg.max_headers = 8;
	gw_server *srv = start(&cfg);
	char u[128], out[8192], big[2048];

	url(u, sizeof(u), srv, "http", "/echo");
	memset(big, 'b', sizeof(big));
	memcpy(big, "X-Big: ", 7);
	big[1500] = '\0';
	assert_int_equal(curl(out, sizeof(out), NULL, 0, "-i", "-H", big, u, NULL), 0);
	assert_non_null(strstr(out, "HTTP/1.1 431 "));
	assert_non_null(strstr(out, "\"status\":\"RESOURCE_EXHAUSTED\""));
	assert_non_null(strstr(out, "\"reason\":\"HEADERS_TOO_LARGE\""));
	assert_non_null(strstr(out, "larger than 1024 bytes"));
	assert_int_equal(curl(out, sizeof(out), NULL, 0, "-i", "-H", "A: 1", "-H", "B: 2", "-H",
	                      "C: 3", "-H", "D: 4", "-H", "E: 5", "-H", "F: 6", "-H", "G: 7", u,
	                      NULL),
	                 0);
	assert_non_null(strstr(out, "HTTP/1.1 431 "));
	assert_non_null(strstr(out, "more than 8 header fields"));
	assert_int_equal(atomic_load(&st->calls), 0);
	gw_server_destroy(srv);

	/* The default bound, and h2o's own past 100 fields (plain text). */
	config(&cfg, st);
	srv = start(&cfg);
	url(u, sizeof(u), srv, "http", "/echo");
	char huge[GW_SERVER_DEFAULT_MAX_HEADER_BYTES + 100];
	memset(huge, 'h', sizeof(huge));
	memcpy(huge, "X-Huge: ", 8);
	huge[sizeof(huge) - 1] = '\0';
	assert_int_equal(curl(out, sizeof(out), NULL, 0, "-i", "-H", huge, u, NULL), 0);
	assert_non_null(strstr(out, "HTTP/1.1 431 "));
	char many[4096];
	size_t at = (size_t)snprintf(many, sizeof(many), "GET /echo HTTP/1.1\r\n");
	for (int i = 0; i < 101; i++)
		at += (size_t)snprintf(many + at, sizeof(many) - at, "X-%d: v\r\n", i);
	snprintf(many + at, sizeof(many) - at, "\r\n");
	int fd = raw_connect(srv), eof;
	raw_send(fd, many, strlen(many));
	raw_read(fd, out, sizeof(out), 2000, &eof);
	assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(out, "text/plain"));
	close(fd);
	assert_int_equal(atomic_load(&st->calls), 0);
	gw_server_destroy(srv);
	state_free(st);
}

/* Send a raw request; expect 400 with `reason` (in the default JSON body
 * when `json`) and the connection closed. */
static void expect_400(gw_server *srv, const char *request, const char *reason, int json)
{
	char out[4096];
	int eof, fd = raw_connect(srv);
	raw_send(fd, request, strlen(request));
	raw_read(fd, out, sizeof(out), 3000, &eof);
	if (strstr(out, "HTTP/1.1 400 ") == NULL || strstr(out, reason) == NULL)
		fail_msg("want 400 %s for %s, got: %s", reason, request, out);
	assert_non_null(strstr(out, "Connection: close"));
	if (json)
		assert_non_null(
		    strstr(out, "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\""));
	assert_true(eof);
	close(fd);
}

static void test_server_refuses_smuggling(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);

	/* Content-Length + Transfer-Encoding, in both orders: h2o alone takes
	 * the chunked body and serves what follows as a second request. */
	expect_400(
	    srv,
	    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
	    "INVALID_REQUEST_HEAD", 1);
	expect_400(srv,
	           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	           "content-length: 5\r\n\r\n0\r\n\r\n",
	           "INVALID_REQUEST_HEAD", 1);
	/* two differing Content-Lengths: h2o alone takes the first */
	expect_400(srv,
	           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n"
	           "\r\nabcGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
	           "INVALID_CONTENT_LENGTH", 1);
	expect_400(srv,
	           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n"
	           "\r\nabc",
	           "INVALID_CONTENT_LENGTH", 1);
	/* two Transfer-Encodings; a folded line; a space before the colon */
	expect_400(srv,
	           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	           "INVALID_REQUEST_HEAD", 1);
	expect_400(srv, "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",
	           "INVALID_REQUEST_HEAD", 1);
	/* h2o's own 400s, in the same shape */
	expect_400(srv, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
	           "INVALID_REQUEST_HEAD", 1);
	expect_400(srv,
	           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	           "INVALID_REQUEST_HEAD", 1);
	assert_int_equal(atomic_load(&st->calls), 0);

	/* Two equal Content-Lengths are one length (RFC 9110 8.6). */
	char out[4096];
	int fd = raw_connect(srv);
	const char *ok = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	                 "Content-Length: 3\r\n\r\nabc";
	raw_send(fd, ok, strlen(ok));
	raw_read_response(fd, out, sizeof(out), 2000);
	assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
	assert_non_null(strstr(out, "body=abc"));
	close(fd);
	assert_int_equal(atomic_load(&st->calls), 1);

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_cuts_off_a_slow_client(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	cfg.read_timeout_ms = 300;
	gw_server *srv = start(&cfg);

	int fd = raw_connect(srv);
	uint64_t t0 = now_ms(), closed_at = 0;
	const char *start = "GET /echo HTTP/1.1\r\nHost: x\r\n";
	raw_send(fd, start, strlen(start));
	/* a byte every 50 ms: never a whole request */
	while (now_ms() - t0 < 3000) {
		sleep_ms(50);
		if (send(fd, "X", 1, MSG_NOSIGNAL) != 1) {
			closed_at = now_ms();
			break;
		}
		char c;
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 0) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0) {
			closed_at = now_ms();
			break;
		}
	}
	assert_true(closed_at != 0);
	assert_true(closed_at - t0 >= 250);
	assert_true(closed_at - t0 < 1500);
	close(fd);
	assert_int_equal(atomic_load(&st->calls), 0);
	wait_stat(srv, offsetof(gw_server_stats, connections), 0, 2000);

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_answers_from_another_thread(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);
	char u[128], out[16384];

	url(u, sizeof(u), srv, "http", "/async?ms=100");
	uint64_t t0 = now_ms();
	assert_int_equal(curl(out, sizeof(out), NULL, 0, "-w", WFMT, u, NULL), 0);
	assert_true(now_ms() - t0 >= 100);
	assert_string_equal(out, "async\n200 1.1");

	/* 24 at once over parallel connections, answered out of order */
	const char *args[40] = {"-Z", "--parallel-max", "24"};
	char urls[24][128];
	size_t n = 3;
	for (int i = 0; i < 24; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/async?ms=%d", 200 - i * 8);
		url(urls[i], sizeof(urls[i]), srv, "http", path);
		args[n++] = urls[i];
	}
	args[n] = NULL;
	assert_int_equal(curl_finish(curl_start(NULL, 0, args), out, sizeof(out)), 0);
	size_t count = 0;
	for (const char *p = out; (p = strstr(p, "async")) != NULL; p += 5)
		count++;
	assert_int_equal(count, 24);
	wait_stat(srv, offsetof(gw_server_stats, in_flight), 0, 2000);
	gw_server_stats stats;
	gw_server_stats_get(srv, &stats);
	assert_int_equal(stats.responses[2], 25);

	/* big answers come whole */
	url(u, sizeof(u), srv, "http", "/big");
	assert_int_equal(curl(out, sizeof(out), NULL, 0, "-o", "/dev/null", "-w",
	                      "%{http_code} %{size_download}", u, NULL),
	                 0);
	assert_string_equal(out, "200 200000");

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_survives_a_client_gone_before_the_answer(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);

	for (int i = 0; i < 3; i++) {
		int fd = raw_connect(srv);
		const char *r = "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
		raw_send(fd, r, strlen(r));
		assert_int_equal(wait_held(st, 1, 2000), 1);
		close(fd); /* gone */
		sleep_ms(20);
		gw_request *req = take_held(st);
		/* the request is still whole for the handler */
		size_t blen;
		const char *b = gw_request_body(req, &blen);
		assert_int_equal(blen, 4);
		assert_memory_equal(b, "body", 4);
		/* answered from this (foreign) thread: written to a closed socket */
		assert_int_equal(gw_respond(req, 200, NULL, 0, "late", 4), RPC_STATUS_OK);
	}
	wait_stat(srv, offsetof(gw_server_stats, in_flight), 0, 2000);
	wait_stat(srv, offsetof(gw_server_stats, connections), 0, 2000);
	/* and the server goes on */
	char u[128], out[1024];
	url(u, sizeof(u), srv, "http", "/echo");
	assert_int_equal(curl(out, sizeof(out), NULL, 0, "-w", WFMT, u, NULL), 0);
	assert_int_equal(tail_code(out), 200);

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_turns_an_invalid_answer_into_500(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);
	char u[128], out[4096];

	url(u, sizeof(u), srv, "http", "/bad-header");
	assert_int_equal(curl(out, sizeof(out), NULL, 0, "-i", u, NULL), 0);
	assert_non_null(strstr(out, "HTTP/1.1 500 "));
	assert_null(strstr(out, "Set-Cookie"));
	assert_non_null(strstr(out, "\"status\":\"INTERNAL\""));
	assert_non_null(strstr(out, "invalid header value"));
	/* the handler stores what gw_respond returned after the 500 has gone
	 * out: wait for it (up to 5 s) rather than race it */
	for (int i = 0; i < 500 && atomic_load(&st->bad_status) == 0; i++)
		nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
	assert_int_equal(atomic_load(&st->bad_status), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(gw_respond(NULL, 200, NULL, 0, NULL, 0), RPC_STATUS_INVALID_ARGUMENT);
	/* stop and destroy from a handler are refused, not a deadlock */
	st->srv = srv;
	url(u, sizeof(u), srv, "http", "/stop-here");
	assert_int_equal(curl(out, sizeof(out), NULL, 0, u, NULL), 0);
	assert_string_equal(out, "still here");

	gw_server_destroy(srv);
	state_free(st);
}

static size_t custom_body(int status, const char *reason, const char *message, char *buf,
                          size_t cap, void *arg)
{
	(void)message;
	assert_string_equal(arg, "custom-arg");
	return (size_t)snprintf(buf, cap, "custom %d %s", status, reason);
}

static void test_server_uses_the_error_body_callback(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	cfg.max_body = 10;
	cfg.error_body = custom_body;
	cfg.error_body_arg = "custom-arg";
	cfg.error_content_type = "text/plain";
	gw_server *srv = start(&cfg);
	char u[128], out[4096];

	url(u, sizeof(u), srv, "http", "/echo");
	assert_int_equal(
	    curl(out, sizeof(out), "01234567890", 11, "-i", "--data-binary", "@-", u, NULL), 0);
	assert_non_null(strstr(out, "HTTP/1.1 413 "));
	assert_non_null(strcasestr(out, "content-type: text/plain"));
	assert_non_null(strstr(out, "\r\n\r\ncustom 413 PAYLOAD_TOO_LARGE"));
	expect_400(
	    srv,
	    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\na",
	    "custom 400 INVALID_CONTENT_LENGTH", 0);

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_stop_finishes_requests_in_flight(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	gw_server *srv = start(&cfg);
	char u[128], out[1024];

	/* an idle keep-alive connection, and a request in flight */
	int idle = raw_connect(srv), eof;
	const char *r = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_send(idle, r, strlen(r));
	raw_read_response(idle, out, sizeof(out), 2000);
	url(u, sizeof(u), srv, "http", "/async?ms=400");
	const char *args[] = {"-w", WFMT, u, NULL};
	child c = curl_start(NULL, 0, args);
	wait_calls(st, 2, 3000);

	uint64_t t0 = now_ms();
	gw_server_stop(srv);
	uint64_t took = now_ms() - t0;
	/* the idle connection was closed at once, not after the grace period */
	raw_read(idle, out, sizeof(out), 100, &eof);
	assert_true(eof);
	close(idle);
	assert_int_equal(curl_finish(c, out, sizeof(out)), 0);
	assert_string_equal(out, "async\n200 1.1");
	assert_true(took < 3000); /* 400 ms of work, not the 5 s allowed */
	/* nothing listens any more */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)gw_server_port(srv));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	close(fd);
	gw_server_stop(srv); /* idempotent */

	gw_server_destroy(srv);
	state_free(st);
}

static void test_server_stop_answers_503_after_the_deadline(void **unused)
{
	(void)unused;
	for (int destroy_first = 0; destroy_first < 2; destroy_first++) {
		st = state_new();
		gw_server_config cfg;
		config(&cfg, st);
		cfg.shutdown_timeout_ms = 300;
		gw_server *srv = start(&cfg);
		char u[128], out[2048];

		url(u, sizeof(u), srv, "http", "/hold");
		const char *args[] = {"-i", u, NULL};
		child c1 = curl_start(NULL, 0, args), c2 = curl_start(NULL, 0, args);
		assert_int_equal(wait_held(st, 2, 3000), 2);
		uint64_t t0 = now_ms();
		gw_server_stop(srv);
		uint64_t took = now_ms() - t0;
		assert_true(took >= 290);
		assert_true(took < 3000);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(curl_finish(i == 0 ? c1 : c2, out, sizeof(out)), 0);
			assert_non_null(strstr(out, "HTTP/1.1 503 "));
			assert_non_null(strstr(out, "\"status\":\"UNAVAILABLE\""));
			assert_non_null(strstr(out, "\"reason\":\"SHUTTING_DOWN\""));
		}
		gw_server_stats stats;
		gw_server_stats_get(srv, &stats);
		assert_int_equal(stats.responses[5], 2);
		assert_int_equal(stats.in_flight, 0);
		/* The handler answers late: after stop, or even after destroy. */
		if (destroy_first)
			gw_server_destroy(srv);
		gw_request *a = take_held(st), *b = take_held(st);
		size_t plen;
		assert_string_equal(gw_request_path(a, &plen), "/hold");
		assert_int_equal(gw_respond(a, 200, NULL, 0, "late", 4), RPC_STATUS_OK);
		assert_int_equal(gw_respond(b, 200, NULL, 0, "late", 4), RPC_STATUS_OK);
		if (!destroy_first)
			gw_server_destroy(srv);
		state_free(st);
	}
}

static void test_server_reports_start_errors(void **unused)
{
	(void)unused;
	st = state_new();
	gw_server_config cfg;
	gw_server *srv = NULL;
	char err[256];
	const char *bad[] = {"nonsense",     "127.0.0.1:99999", "127.0.0.1:",
	                     "127.0.0.1:8x", "[::1:80",         "no.such.host.invalid:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config(&cfg, st);
		cfg.listen = bad[i];
		assert_int_equal(gw_server_start(&cfg, &srv, err, sizeof(err)),
		                 RPC_STATUS_INVALID_ARGUMENT);
		assert_null(srv);
		assert_true(strlen(err) > 0);
	}
	config(&cfg, st);
	cfg.handler = NULL;
	assert_int_equal(gw_server_start(&cfg, &srv, err, sizeof(err)),
	                 RPC_STATUS_INVALID_ARGUMENT);
	config(&cfg, st);
	cfg.tls_cert_file = "/nonexistent/cert.pem";
	assert_int_equal(gw_server_start(&cfg, &srv, err, sizeof(err)),
	                 RPC_STATUS_INVALID_ARGUMENT);
	cfg.tls_key_file = "/nonexistent/key.pem";
	assert_int_equal(gw_server_start(&cfg, &srv, err, sizeof(err)),
	                 RPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(err, "/nonexistent/cert.pem"));
	config(&cfg, st);
	cfg.threads = GW_SERVER_MAX_THREADS + 1;
	assert_int_equal(gw_server_start(&cfg, &srv, err, sizeof(err)),
	                 RPC_STATUS_INVALID_ARGUMENT);

	/* a port in use, by us or by another SO_REUSEPORT listener */
	config(&cfg, st);
	gw_server *first = start(&cfg);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", gw_server_port(first));
	cfg.listen = addr;
	assert_int_equal(gw_server_start(&cfg, &srv, err, sizeof(err)), RPC_STATUS_UNAVAILABLE);
	assert_non_null(strstr(err, "in use"));
	gw_server_destroy(first);
	int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	socklen_t alen = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	assert_int_equal(gw_server_start(&cfg, &srv, err, sizeof(err)), RPC_STATUS_UNAVAILABLE);
	close(fd);
	state_free(st);
}

static void test_server_listens_on_ipv6(void **unused)
{
	(void)unused;
	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a6 = {0};
	a6.sin6_family = AF_INET6;
	a6.sin6_addr = in6addr_loopback;
	int ok = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof(a6)) == 0;
	if (probe >= 0)
		close(probe);
	if (!ok) {
		print_message("skipped: no IPv6 loopback here\n");
		skip();
	}
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	cfg.listen = "[::1]:0";
	gw_server *srv = start(&cfg);
	char u[128], out[1024];
	snprintf(u, sizeof(u), "http://[::1]:%u/echo", gw_server_port(srv));
	assert_int_equal(curl(out, sizeof(out), NULL, 0, u, NULL), 0);
	assert_non_null(strstr(out, "peer=::1 "));
	gw_server_destroy(srv);
	state_free(st);
}

/* ---- HTTPS ----------------------------------------------------------------------------------- */

static char tls_dir[64];

static void make_cert(char *cert, char *key, size_t cap)
{
	snprintf(tls_dir, sizeof(tls_dir), "/tmp/gw-server-tls-XXXXXX");
	assert_non_null(mkdtemp(tls_dir));
	snprintf(cert, cap, "%s/cert.pem", tls_dir);
	snprintf(key, cap, "%s/key.pem", tls_dir);
	const char *argv[] = {"openssl",
	                      "req",
	                      "-x509",
	                      "-newkey",
	                      "ec",
	                      "-pkeyopt",
	                      "ec_paramgen_curve:prime256v1",
	                      "-nodes",
	                      "-keyout",
	                      key,
	                      "-out",
	                      cert,
	                      "-days",
	                      "1",
	                      "-subj",
	                      "/CN=localhost",
	                      "-addext",
	                      "subjectAltName=DNS:localhost,IP:127.0.0.1",
	                      NULL};
	pid_t pid;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	assert_int_equal(posix_spawnp(&pid, "openssl", &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void remove_cert(const char *cert, const char *key)
{
	unlink(cert);
	unlink(key);
	rmdir(tls_dir);
}

static int curl_has_http2(void)
{
	char out[4096];
	if (curl(out, sizeof(out), NULL, 0, "--version", NULL) != 0)
		return 0;
	return strstr(out, "HTTP2") != NULL;
}

static void test_server_speaks_https_and_http2(void **unused)
{
	(void)unused;
	char cert[128], key[128], u[128], out[4096];
	make_cert(cert, key, sizeof(cert));
	st = state_new();
	gw_server_config cfg;
	config(&cfg, st);
	cfg.tls_cert_file = cert;
	cfg.tls_key_file = key;
	gw_server *srv = start(&cfg);

	url(u, sizeof(u), srv, "https", "/echo/tls");
	assert_int_equal(curl(out, sizeof(out), "x", 1, "-k", "--http1.1", "--data-binary", "@-",
	                      "-w", WFMT, u, NULL),
	                 0);
	assert_non_null(strstr(out, "POST /echo/tls loop="));
	assert_non_null(strstr(out, " v=101 tls=1 "));
	assert_non_null(strstr(out, "\n200 1.1"));
	/* a mismatched key is refused at start */
	gw_server_config bad = cfg;
	char other_cert[128], other_key[128];
	char saved_dir[64];
	memcpy(saved_dir, tls_dir, sizeof(saved_dir));
	make_cert(other_cert, other_key, sizeof(other_cert));
	bad.tls_key_file = other_key;
	gw_server *none = NULL;
	char err[256];
	assert_int_equal(gw_server_start(&bad, &none, err, sizeof(err)),
	                 RPC_STATUS_FAILED_PRECONDITION);
	remove_cert(other_cert, other_key);
	memcpy(tls_dir, saved_dir, sizeof(tls_dir));

	if (!curl_has_http2()) {
		print_message("HTTP/2 part skipped: this curl has no HTTP2 feature\n");
	} else {
		/* HTTP/2 by ALPN: echo, and 431 over the limit */
		assert_int_equal(curl(out, sizeof(out), "y", 1, "-k", "--http2", "-H", "X-Test: h2",
		                      "--data-binary", "@-", "-w", WFMT, u, NULL),
		                 0);
		assert_non_null(strstr(out, "POST /echo/tls loop="));
		assert_non_null(strstr(out, " v=200 tls=1 x-test=h2 body=y"));
		assert_non_null(strstr(out, "\n200 2"));
		url(u, sizeof(u), srv, "https", "/async?ms=30");
		assert_int_equal(
		    curl(out, sizeof(out), NULL, 0, "-k", "--http2", "-w", WFMT, u, u, NULL), 0);
		assert_string_equal(out, "async\n200 2async\n200 2");
		char *big = malloc(GW_SERVER_DEFAULT_MAX_HEADER_BYTES + 100);
		assert_non_null(big);
		memset(big, 'b', GW_SERVER_DEFAULT_MAX_HEADER_BYTES + 99);
		memcpy(big, "X-Big: ", 7);
		big[GW_SERVER_DEFAULT_MAX_HEADER_BYTES + 99] = '\0';
		assert_int_equal(curl(out, sizeof(out), NULL, 0, "-k", "--http2", "-H", big, "-w",
		                      WFMT, u, NULL),
		                 0);
		free(big);
		assert_non_null(strstr(out, "\"reason\":\"HEADERS_TOO_LARGE\""));
		assert_non_null(strstr(out, "\n431 2"));
		/* an HTTP/2 client gone before the answer: h2o disposes the
		 * stream first, the handler answers after */
		url(u, sizeof(u), srv, "https", "/hold");
		const char *args[] = {"-k", "--http2", u, NULL};
		child c = curl_start(NULL, 0, args);
		assert_int_equal(wait_held(st, 1, 3000), 1);
		kill(c.pid, SIGKILL);
		curl_finish(c, out, sizeof(out));
		wait_stat(srv, offsetof(gw_server_stats, in_flight), 0, 3000);
		gw_request *req = take_held(st);
		assert_int_equal(gw_request_http_version(req), 0x200);
		assert_int_equal(gw_respond(req, 200, NULL, 0, "late", 4), RPC_STATUS_OK);
		/* an idle HTTP/2 connection does not hold a shutdown back long */
	}
	uint64_t t0 = now_ms();
	gw_server_stop(srv);
	assert_true(now_ms() - t0 < 3000);
	gw_server_destroy(srv);
	remove_cert(cert, key);
	state_free(st);
}

/* ---- the head scanner alone ----------------------------------------------------------------- */

static void test_server_scans_heads(void **unused)
{
	(void)unused;
	gw_h1_head h;
	const char *ok = "\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length:  12 \r\n\r\nrest";
	assert_int_equal(gw_server_scan_h1_head(ok, strlen(ok), &h), 0);
	assert_int_equal(h.n_fields, 2);
	assert_true(h.has_content_length);
	assert_int_equal(h.content_length, 12);
	assert_int_equal(h.head_len, strlen(ok) - 4);
	const char *lf = "GET / HTTP/1.1\nA: b\n\n";
	assert_int_equal(gw_server_scan_h1_head(lf, strlen(lf), &h), 0);
	assert_int_equal(h.head_len, strlen(lf));
	const char *cut = "GET / HTTP/1.1\r\nA: b\r\n";
	assert_int_equal(gw_server_scan_h1_head(cut, strlen(cut), &h), 400);
	assert_int_equal(gw_server_scan_h1_head(ok, 10, &h), 400);
	assert_int_equal(gw_server_scan_h1_head("", 0, &h), 400);
	const char *big = "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
	assert_int_equal(gw_server_scan_h1_head(big, strlen(big), &h), 400);
	assert_string_equal(h.reason, "INVALID_CONTENT_LENGTH");
	const char *sp = "GET / HTTP/1.1\r\nContent-Length : 1\r\n\r\n";
	assert_int_equal(gw_server_scan_h1_head(sp, strlen(sp), &h), 400);
	assert_string_equal(h.reason, "INVALID_REQUEST_HEAD");
	const char *te = "GET / HTTP/1.1\r\nTRANSFER-encoding: chunked\r\n\r\n";
	assert_int_equal(gw_server_scan_h1_head(te, strlen(te), &h), 0);
	assert_true(h.has_transfer_encoding);
	char body[64];
	size_t n = gw_server_default_error_body(431, "R\"X", "a \"quoted\"\n message", body,
	                                        sizeof(body), NULL);
	assert_true(n > sizeof(body)); /* does not fit: said so */
	char wide[512];
	n = gw_server_default_error_body(431, "R\"X", "a \"quoted\"\n message", wide, sizeof(wide),
	                                 NULL);
	wide[n] = '\0';
	assert_string_equal(wide, "{\"error\":{\"code\":431,\"status\":\"RESOURCE_EXHAUSTED\","
	                          "\"message\":\"a \\\"quoted\\\"\\u000a message\",\"details\":"
	                          "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
	                          "\"reason\":\"R\\\"X\",\"domain\":\"panthera.dev\"}]}}");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_server_scans_heads),
	    cmocka_unit_test(test_server_echoes_a_request),
	    cmocka_unit_test(test_server_keeps_connections_alive),
	    cmocka_unit_test(test_server_head_and_no_content),
	    cmocka_unit_test(test_server_refuses_a_body_over_the_limit),
	    cmocka_unit_test(test_server_refuses_heads_over_the_limits),
	    cmocka_unit_test(test_server_refuses_smuggling),
	    cmocka_unit_test(test_server_cuts_off_a_slow_client),
	    cmocka_unit_test(test_server_answers_from_another_thread),
	    cmocka_unit_test(test_server_survives_a_client_gone_before_the_answer),
	    cmocka_unit_test(test_server_turns_an_invalid_answer_into_500),
	    cmocka_unit_test(test_server_uses_the_error_body_callback),
	    cmocka_unit_test(test_server_stop_finishes_requests_in_flight),
	    cmocka_unit_test(test_server_stop_answers_503_after_the_deadline),
	    cmocka_unit_test(test_server_reports_start_errors),
	    cmocka_unit_test(test_server_listens_on_ipv6),
	    cmocka_unit_test(test_server_speaks_https_and_http2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
