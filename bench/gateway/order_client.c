/*
 * order_client.c - the HTTP side of bench/gateway's order placement path:
 * CLIENTS threads, each on one keep-alive connection to the gateway, each
 * placing one order at a time (POST /v1/orders with its user's Bearer token
 * and a fresh Idempotency-Key) and reading it back (GET /v1/orders/{id},
 * every POLL_MS) until it is PAID, for SECONDS seconds. An order is one
 * whole trip through the checkout saga, as one pgbench transaction of
 * bench/orders/saga.sql is; a client waits for its order to settle before
 * it places the next, as pgbench's client does.
 *
 * Why not wrk: its Lua hooks are not told which connection a response
 * belongs to, so it cannot chain an order's POST and the polls of that
 * order on one connection, and its latency is per request, not per order.
 *
 *   order_client HOST:PORT CLIENTS SECONDS TOKENS_FILE PRODUCTS_FILE
 *
 * TOKENS_FILE: one access token a line (client i uses line i modulo their
 * count); PRODUCTS_FILE: one product id a line (each order takes one unit
 * of one of them, picked at random; give them stock that cannot run out).
 * Environment: POLL_MS [5], the pause between two reads of an order.
 *
 * Prints one line, then exits 0:
 *   orders=<n> seconds=<s> orders_per_s=<x> p50_ms=<a> p99_ms=<b> polls=<p>
 * n: orders PAID; s: from the first POST to the last order seen PAID;
 * a, b: nearest-rank percentiles of POST-to-PAID time. Anything else (a
 * refused connection, an answer other than 201 or 200, an order that ends
 * otherwise than PAID or is not PAID within 10 s) is a message on stderr
 * and exit status 1: the benchmark is then broken, not slow.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ORDER_SETTLE_TIMEOUT_S 10.0
#define IO_BUF_SIZE            65536
#define MAX_LINE               4096

typedef struct order_client {
	/* set by main */
	int index;
	const char *host;
	const char *port;
	const char *token;
	char *const *products;
	size_t n_products;
	double deadline; /* stop placing orders at this monotonic time */
	long poll_ms;
	unsigned seed;
	/* results */
	double *lat_ms; /* one sample per order PAID */
	size_t n_lat, cap_lat;
	unsigned long polls;
	double last_paid; /* monotonic time of the last order seen PAID */
	char error[512];  /* empty unless the client failed */
	/* the connection */
	int fd;
	char buf[IO_BUF_SIZE]; /* one response: head and body */
} order_client;

static atomic_int stop_all; /* a client failed: the others stop too */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Records the client's failure (the first one only) and stops every client. */
__attribute__((format(printf, 2, 3))) static int fail(order_client *c, const char *fmt, ...)
{
	if (c->error[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->error, sizeof c->error, fmt, ap);
		va_end(ap);
	}
	atomic_store(&stop_all, 1);
	return -1;
}

static int client_connect(order_client *c)
{
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(c->host, c->port, &hints, &res);
	if (rc != 0)
		return fail(c, "cannot resolve %s: %s", c->host, gai_strerror(rc));
	c->fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (c->fd < 0 || connect(c->fd, res->ai_addr, res->ai_addrlen) != 0) {
		freeaddrinfo(res);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return fail(c, "cannot connect to %s:%s", c->host, c->port);
	}
	freeaddrinfo(res);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return 0;
}

static int send_all(order_client *c, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(c, "send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one response into c->buf: sets *status and *body (NUL-terminated,
 * inside c->buf). Only Content-Length framing: what the gateway sends. */
static int read_response(order_client *c, int *status, const char **body)
{
	size_t have = 0;
	char *head_end = NULL;
	while (head_end == NULL) {
		if (have >= sizeof c->buf - 1)
			return fail(c, "response head over %d bytes", IO_BUF_SIZE - 1);
		ssize_t n = recv(c->fd, c->buf + have, sizeof c->buf - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(c, "connection closed by the gateway (%s)",
			            n < 0 ? strerror(errno) : "EOF");
		have += (size_t)n;
		c->buf[have] = '\0';
		head_end = strstr(c->buf, "\r\n\r\n");
	}
	if (sscanf(c->buf, "HTTP/1.%*d %d", status) != 1)
		return fail(c, "not an HTTP response: %.80s", c->buf);
	long content_length = -1;
	for (char *line = strstr(c->buf, "\r\n"); line != NULL && line < head_end;
	     line = strstr(line + 2, "\r\n")) {
		if (strncasecmp(line + 2, "content-length:", 15) == 0)
			content_length = strtol(line + 17, NULL, 10);
		else if (strncasecmp(line + 2, "transfer-encoding:", 18) == 0)
			return fail(c, "a chunked response: not supported here");
	}
	size_t head_len = (size_t)(head_end + 4 - c->buf);
	if (content_length < 0 || head_len + (size_t)content_length >= sizeof c->buf)
		return fail(c, "response without a usable Content-Length: %.200s", c->buf);
	size_t want = head_len + (size_t)content_length;
	while (have < want) {
		ssize_t n = recv(c->fd, c->buf + have, want - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(c, "connection closed inside a body");
		have += (size_t)n;
	}
	if (have > want)
		return fail(c, "bytes after the response: pipelining is not expected");
	c->buf[want] = '\0';
	*body = c->buf + head_len;
	return 0;
}

/* Copies the string value of the first "key":"..." of json into out. */
static int json_string(const char *json, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const char *p = strstr(json, pat);
	if (p == NULL)
		return -1;
	p += strlen(pat);
	const char *end = strchr(p, '"');
	if (end == NULL || (size_t)(end - p) >= cap)
		return -1;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return 0;
}

static int record_latency(order_client *c, double ms)
{
	if (c->n_lat == c->cap_lat) {
		size_t cap = c->cap_lat ? c->cap_lat * 2 : 1024;
		double *p = realloc(c->lat_ms, cap * sizeof *p);
		if (p == NULL)
			return fail(c, "out of memory");
		c->lat_ms = p;
		c->cap_lat = cap;
	}
	c->lat_ms[c->n_lat++] = ms;
	return 0;
}

/* One order from POST to PAID. */
static int place_one(order_client *c, unsigned long seq)
{
	static const char body_fmt[] =
	    "{\"items\":[{\"productId\":\"%s\",\"quantity\":1}],\"shippingAddress\":{\"street\":"
	    "\"1 Bench Way\",\"city\":\"Benchville\",\"zipCode\":\"12345\",\"country\":\"US\"},"
	    "\"paymentMethodId\":\"pm_card_visa\"}";
	char body[512], req[MAX_LINE], id[64], status_name[32];
	const char *product = c->products[(size_t)rand_r(&c->seed) % c->n_products];
	int body_len = snprintf(body, sizeof body, body_fmt, product);
	int len = snprintf(req, sizeof req,
	                   "POST /v1/orders HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
	                   "Idempotency-Key: bench-%ld-%d-%lu\r\nContent-Type: application/json\r\n"
	                   "Content-Length: %d\r\n\r\n%s",
	                   c->host, c->token, (long)getpid(), c->index, seq, body_len, body);
	if (body_len < 0 || (size_t)body_len >= sizeof body || len < 0 || (size_t)len >= sizeof req)
		return fail(c, "request over %d bytes", MAX_LINE);
	double start = now_s();
	int status;
	const char *reply;
	if (send_all(c, req, (size_t)len) != 0 || read_response(c, &status, &reply) != 0)
		return -1;
	if (status != 201)
		return fail(c, "POST /v1/orders answered %.400s", c->buf);
	if (json_string(reply, "id", id, sizeof id) != 0)
		return fail(c, "POST /v1/orders: no id in %.300s", reply);
	len = snprintf(req, sizeof req,
	               "GET /v1/orders/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
	               id, c->host, c->token);
	if (len < 0 || (size_t)len >= sizeof req)
		return fail(c, "request over %d bytes", MAX_LINE);
	for (;;) {
		if (json_string(reply, "status", status_name, sizeof status_name) != 0)
			return fail(c, "order %s: no status in the reply", id);
		if (strcmp(status_name, "PAID") == 0)
			break;
		if (strcmp(status_name, "PENDING_PAYMENT") != 0)
			return fail(c, "order %s ended %s, not PAID", id, status_name);
		if (now_s() - start > ORDER_SETTLE_TIMEOUT_S)
			return fail(c, "order %s not PAID after %.0f s", id,
			            ORDER_SETTLE_TIMEOUT_S);
		if (atomic_load(&stop_all))
			return -1;
		sleep_ms(c->poll_ms);
		if (send_all(c, req, (size_t)len) != 0 || read_response(c, &status, &reply) != 0)
			return -1;
		c->polls++;
		if (status != 200)
			return fail(c, "GET /v1/orders/%s answered %.400s", id, c->buf);
	}
	c->last_paid = now_s();
	return record_latency(c, (c->last_paid - start) * 1000.0);
}

static void *client_run(void *arg)
{
	order_client *c = arg;
	if (client_connect(c) != 0)
		return NULL;
	for (unsigned long seq = 0; now_s() < c->deadline && !atomic_load(&stop_all); seq++)
		if (place_one(c, seq) != 0)
			break;
	close(c->fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t rank = (size_t)(p * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	return sorted[(rank > n ? n : rank) - 1];
}

/* Reads the non-empty lines of path; *n_out of them, each malloc'ed. */
static char **read_lines(const char *path, size_t *n_out)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char **lines = NULL, line[MAX_LINE];
	size_t n = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		char **grown = realloc(lines, (n + 1) * sizeof *grown);
		char *copy = grown != NULL ? strdup(line) : NULL;
		if (grown != NULL)
			lines = grown;
		if (copy == NULL) {
			for (size_t i = 0; i < n; i++)
				free(lines[i]);
			free(lines);
			fclose(f);
			return NULL;
		}
		lines[n++] = copy;
	}
	fclose(f);
	*n_out = n;
	return lines;
}

static void free_lines(char **lines, size_t n)
{
	for (size_t i = 0; i < n && lines != NULL; i++)
		free(lines[i]);
	free(lines);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s HOST:PORT CLIENTS SECONDS TOKENS_FILE PRODUCTS_FILE\n",
		        argv[0]);
		return 2;
	}
	char host[256];
	const char *colon = strrchr(argv[1], ':');
	int clients = atoi(argv[2]);
	double seconds = atof(argv[3]);
	const char *poll_env = getenv("POLL_MS");
	long poll_ms = poll_env != NULL ? atol(poll_env) : 5;
	if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof host || clients < 1 ||
	    clients > 1024 || seconds <= 0 || poll_ms < 0 || poll_ms > 1000) {
		fprintf(stderr,
		        "order_client: bad arguments (HOST:PORT, CLIENTS 1..1024, SECONDS > 0, "
		        "POLL_MS 0..1000)\n");
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = '\0';

	int rc = 1;
	size_t n_tokens = 0, n_products = 0;
	char **tokens = read_lines(argv[4], &n_tokens);
	char **products = read_lines(argv[5], &n_products);
	order_client *cs = calloc((size_t)clients, sizeof *cs);
	pthread_t *threads = calloc((size_t)clients, sizeof *threads);
	double *all = NULL;
	int started = 0;
	if (tokens == NULL || products == NULL || n_tokens == 0 || n_products == 0) {
		fprintf(stderr, "order_client: cannot read tokens from %s or products from %s\n",
		        argv[4], argv[5]);
		goto out;
	}
	if (cs == NULL || threads == NULL) {
		fprintf(stderr, "order_client: out of memory\n");
		goto out;
	}
	double start = now_s();
	for (int i = 0; i < clients; i++) {
		order_client *c = &cs[i];
		c->index = i;
		c->host = host;
		c->port = colon + 1;
		c->token = tokens[(size_t)i % n_tokens];
		c->products = products;
		c->n_products = n_products;
		c->deadline = start + seconds;
		c->poll_ms = poll_ms;
		c->seed = (unsigned)(i * 7919 + 17) ^ (unsigned)getpid();
		c->fd = -1;
		if (pthread_create(&threads[i], NULL, client_run, c) != 0) {
			fprintf(stderr, "order_client: cannot start a thread\n");
			atomic_store(&stop_all, 1);
			break;
		}
		started++;
	}
	size_t total = 0;
	unsigned long polls = 0;
	double end = start;
	for (int i = 0; i < started; i++) {
		pthread_join(threads[i], NULL);
		total += cs[i].n_lat;
		polls += cs[i].polls;
		if (cs[i].last_paid > end)
			end = cs[i].last_paid;
	}
	for (int i = 0; i < started; i++)
		if (cs[i].error[0] != '\0') {
			fprintf(stderr, "order_client: client %d: %s\n", i, cs[i].error);
			goto out;
		}
	if (started < clients || total == 0) {
		fprintf(stderr, "order_client: no order was PAID\n");
		goto out;
	}
	all = malloc(total * sizeof *all);
	if (all == NULL) {
		fprintf(stderr, "order_client: out of memory\n");
		goto out;
	}
	size_t k = 0;
	for (int i = 0; i < started; i++) {
		memcpy(all + k, cs[i].lat_ms, cs[i].n_lat * sizeof *all);
		k += cs[i].n_lat;
	}
	qsort(all, total, sizeof *all, cmp_double);
	double span = end - start;
	printf("orders=%zu seconds=%.2f orders_per_s=%.1f p50_ms=%.1f p99_ms=%.1f polls=%lu\n",
	       total, span, (double)total / span, percentile(all, total, 0.50),
	       percentile(all, total, 0.99), polls);
	rc = 0;
out:
	for (int i = 0; cs != NULL && i < clients; i++)
		free(cs[i].lat_ms);
	free(all);
	free(cs);
	free(threads);
	free_lines(tokens, n_tokens);
	free_lines(products, n_products);
	return rc;
}
