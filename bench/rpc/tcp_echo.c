/*
 * tcp_echo.c - the floor the kernel sets: raw TCP ping-pong of the 100-byte
 * payload, no framing (every message has the same length).
 *
 * Built twice: with -DECHO_ROLE_SERVER it is tcp_echo_server, otherwise
 * tcp_echo_client; the command line is echo_bench.h's, URL tcp://IPV4:PORT.
 *
 * Server: one thread, epoll (level-triggered), non-blocking sockets; it
 * echoes whatever bytes arrive, so it needs no notion of a message. A reply
 * the kernel does not take at once waits in the connection's buffer, and the
 * connection is not read until that buffer is flushed.
 * Client seq: one blocking socket with TCP_NODELAY: write 100 bytes, read 100.
 * Client par: K connections, each with one call outstanding (ping-pong, never
 * pipelined), all driven by epoll in one thread. Each call is then its own
 * write and read on both ends, as an RPC is; pipelining K requests on one
 * connection would batch them into few system calls and measure streaming.
 */
#include "echo_bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TCP_ECHO_MAX_EVENTS 64
#define TCP_ECHO_BUF        16384

/* Parses tcp://A.B.C.D:PORT into *sa; exits 1 on anything else. */
static void tcp_echo_parse_url(const char *url, struct sockaddr_in *sa)
{
	char host[INET_ADDRSTRLEN];
	const char *rest, *colon;
	char *end;
	unsigned long port;

	if (strncmp(url, "tcp://", 6) != 0)
		echo_bench_die("URL must be tcp://A.B.C.D:PORT, not %s", url);
	rest = url + 6;
	colon = strrchr(rest, ':');
	if (colon == NULL || (size_t)(colon - rest) >= sizeof(host))
		echo_bench_die("URL must be tcp://A.B.C.D:PORT, not %s", url);
	memcpy(host, rest, (size_t)(colon - rest));
	host[colon - rest] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port == 0 || port > 65535)
		echo_bench_die("bad port in %s", url);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		echo_bench_die("bad IPv4 address in %s", url);
}

static void tcp_echo_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		echo_bench_die("TCP_NODELAY: %s", strerror(errno));
}

static void tcp_echo_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
		echo_bench_die("O_NONBLOCK: %s", strerror(errno));
}

/* ---- server ----------------------------------------------------------------- */

enum tcp_echo_kind { TCP_ECHO_LISTENER, TCP_ECHO_SIGNALS, TCP_ECHO_CONN };

/* What an epoll event points at. */
struct tcp_echo_conn {
	enum tcp_echo_kind kind;
	int fd;
	struct tcp_echo_conn *prev, *next; /* every open connection, to close at exit */
	size_t out_off, out_len;           /* unsent part of buf: [out_off, out_len) */
	unsigned char buf[TCP_ECHO_BUF];   /* connections only */
};

struct tcp_echo_server {
	int epfd;
	struct tcp_echo_conn listener, signals; /* buf unused */
	struct tcp_echo_conn *conns;
};

static void tcp_echo_server_watch(struct tcp_echo_server *srv, struct tcp_echo_conn *c, int op,
                                  uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	if (epoll_ctl(srv->epfd, op, c->fd, &ev) != 0)
		echo_bench_die("epoll_ctl: %s", strerror(errno));
}

static void tcp_echo_server_close(struct tcp_echo_server *srv, struct tcp_echo_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	close(c->fd); /* also leaves the epoll set */
	free(c);
}

static void tcp_echo_server_accept(struct tcp_echo_server *srv)
{
	struct tcp_echo_conn *c;
	int fd = accept(srv->listener.fd, NULL, NULL);

	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED ||
		    errno == EINTR)
			return;
		echo_bench_die("accept: %s", strerror(errno));
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		echo_bench_die("out of memory");
	c->kind = TCP_ECHO_CONN;
	c->fd = fd;
	tcp_echo_nonblock(fd);
	tcp_echo_nodelay(fd);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	tcp_echo_server_watch(srv, c, EPOLL_CTL_ADD, EPOLLIN);
}

/* Sends what is left of c's buffer; 0 when all of it went, 1 when some waits, -1 on error. */
static int tcp_echo_server_flush(struct tcp_echo_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->buf + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Handles events on one connection; closes it on EOF or error. */
static void tcp_echo_server_serve(struct tcp_echo_server *srv, struct tcp_echo_conn *c,
                                  uint32_t events)
{
	ssize_t n;
	int rv;

	if (c->out_len > 0) {
		/* Waiting for EPOLLOUT: nothing is read until the echo is out. */
		rv = tcp_echo_server_flush(c);
		if (rv < 0) {
			tcp_echo_server_close(srv, c);
		} else if (rv == 0) {
			tcp_echo_server_watch(srv, c, EPOLL_CTL_MOD, EPOLLIN);
		}
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0)
		return;
	n = recv(c->fd, c->buf, sizeof(c->buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF, or a reset: the client is gone, which is how every run ends. */
		tcp_echo_server_close(srv, c);
		return;
	}
	c->out_off = 0;
	c->out_len = (size_t)n;
	rv = tcp_echo_server_flush(c);
	if (rv < 0)
		tcp_echo_server_close(srv, c);
	else if (rv > 0)
		tcp_echo_server_watch(srv, c, EPOLL_CTL_MOD, EPOLLOUT);
}

int tcp_echo_server_main(int argc, char **argv)
{
	const char *url = echo_bench_server_args(argc, argv);
	struct tcp_echo_server srv = {.epfd = -1};
	struct epoll_event events[TCP_ECHO_MAX_EVENTS];
	struct sockaddr_in sa;
	sigset_t stop;
	bool stopping = false;
	int one = 1;

	tcp_echo_parse_url(url, &sa);
	echo_bench_block_stop_signals(&stop);
	srv.signals.kind = TCP_ECHO_SIGNALS;
	srv.signals.fd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (srv.signals.fd < 0)
		echo_bench_die("signalfd: %s", strerror(errno));
	srv.listener.kind = TCP_ECHO_LISTENER;
	srv.listener.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv.listener.fd < 0)
		echo_bench_die("socket: %s", strerror(errno));
	if (setsockopt(srv.listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		echo_bench_die("SO_REUSEADDR: %s", strerror(errno));
	if (bind(srv.listener.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		echo_bench_die("bind %s: %s", url, strerror(errno));
	if (listen(srv.listener.fd, 256) != 0)
		echo_bench_die("listen %s: %s", url, strerror(errno));
	tcp_echo_nonblock(srv.listener.fd);
	srv.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv.epfd < 0)
		echo_bench_die("epoll_create1: %s", strerror(errno));
	tcp_echo_server_watch(&srv, &srv.listener, EPOLL_CTL_ADD, EPOLLIN);
	tcp_echo_server_watch(&srv, &srv.signals, EPOLL_CTL_ADD, EPOLLIN);

	while (!stopping) {
		int n = epoll_wait(srv.epfd, events, TCP_ECHO_MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			echo_bench_die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n && !stopping; i++) {
			struct tcp_echo_conn *c = events[i].data.ptr;

			if (c->kind == TCP_ECHO_LISTENER)
				tcp_echo_server_accept(&srv);
			else if (c->kind == TCP_ECHO_SIGNALS)
				stopping = true;
			else
				tcp_echo_server_serve(&srv, c, events[i].events);
		}
	}

	while (srv.conns != NULL)
		tcp_echo_server_close(&srv, srv.conns);
	close(srv.listener.fd);
	close(srv.signals.fd);
	close(srv.epfd);
	echo_bench_server_report();
	return 0;
}

/* ---- client ----------------------------------------------------------------- */

/*
 * A blocking, TCP_NODELAY socket connected to *sa, with send and receive
 * timeouts; a refused connect is retried for ECHO_BENCH_DIAL_RETRY_MS.
 */
static int tcp_echo_connect(const struct sockaddr_in *sa)
{
	uint64_t give_up = echo_bench_now_ns() + (uint64_t)ECHO_BENCH_DIAL_RETRY_MS * 1000000u;
	struct timeval tv = {ECHO_BENCH_TIMEOUT_MS / 1000, 0};

	for (;;) {
		struct timespec pause = {0, 20 * 1000000};
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0)
			echo_bench_die("socket: %s", strerror(errno));
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
			echo_bench_die("socket timeouts: %s", strerror(errno));
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
			tcp_echo_nodelay(fd);
			return fd;
		}
		if (errno != ECONNREFUSED || echo_bench_now_ns() > give_up)
			echo_bench_die("connect: %s", strerror(errno));
		close(fd);
		nanosleep(&pause, NULL);
	}
}

/* Writes all `len` bytes (the blocking socket's timeout bounds it); exits 1 on failure. */
static void tcp_echo_write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			echo_bench_die("send: %s", strerror(errno));
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Reads some bytes into buf[*got..len); exits 1 on EOF, error or timeout. */
static void tcp_echo_read_some(int fd, uint8_t *buf, size_t *got, size_t len)
{
	ssize_t n;

	do {
		n = recv(fd, buf + *got, len - *got, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		echo_bench_die("recv: %s", strerror(errno));
	if (n == 0)
		echo_bench_die("server closed the connection");
	*got += (size_t)n;
}

/* `calls` calls one at a time; records them in `samples` unless it is NULL. */
static void tcp_echo_run_seq(int fd, const uint8_t *payload, size_t calls,
                             struct echo_bench_samples *samples)
{
	uint8_t reply[ECHO_BENCH_PAYLOAD_LEN];

	for (size_t i = 0; i < calls; i++) {
		uint64_t t0 = echo_bench_now_ns();
		size_t got = 0;

		tcp_echo_write_all(fd, payload, ECHO_BENCH_PAYLOAD_LEN);
		while (got < sizeof(reply))
			tcp_echo_read_some(fd, reply, &got, sizeof(reply));
		if (!echo_bench_payload_ok(reply, got))
			echo_bench_die("reply differs from the request");
		if (samples != NULL)
			echo_bench_samples_set(samples, i, echo_bench_now_ns() - t0);
	}
}

/* One connection of the parallel client, with at most one call outstanding. */
struct tcp_echo_caller {
	int fd;
	uint64_t t0; /* when the current call started */
	size_t got;  /* reply bytes read so far */
	uint8_t reply[ECHO_BENCH_PAYLOAD_LEN];
};

/*
 * `calls` calls over the `n` connections in `callers`, all watched by epfd;
 * records them in `samples` unless it is NULL. Every call ends before it returns.
 */
static void tcp_echo_run_par(int epfd, struct tcp_echo_caller *callers, size_t n,
                             const uint8_t *payload, size_t calls,
                             struct echo_bench_samples *samples)
{
	struct epoll_event events[TCP_ECHO_MAX_EVENTS];
	size_t issued = 0, done = 0;

	for (size_t i = 0; i < n && issued < calls; i++, issued++) {
		callers[i].got = 0;
		callers[i].t0 = echo_bench_now_ns();
		tcp_echo_write_all(callers[i].fd, payload, ECHO_BENCH_PAYLOAD_LEN);
	}
	while (done < calls) {
		int ready = epoll_wait(epfd, events, TCP_ECHO_MAX_EVENTS, ECHO_BENCH_TIMEOUT_MS);

		if (ready < 0) {
			if (errno == EINTR)
				continue;
			echo_bench_die("epoll_wait: %s", strerror(errno));
		}
		if (ready == 0)
			echo_bench_die("no reply for %d ms", ECHO_BENCH_TIMEOUT_MS);
		for (int e = 0; e < ready; e++) {
			struct tcp_echo_caller *c = events[e].data.ptr;

			/* Readable, so the blocking recv returns at once. */
			tcp_echo_read_some(c->fd, c->reply, &c->got, sizeof(c->reply));
			if (c->got < sizeof(c->reply))
				continue;
			if (!echo_bench_payload_ok(c->reply, c->got))
				echo_bench_die("reply differs from the request");
			if (samples != NULL)
				echo_bench_samples_set(samples, done, echo_bench_now_ns() - c->t0);
			done++;
			if (issued < calls) {
				issued++;
				c->got = 0;
				c->t0 = echo_bench_now_ns();
				tcp_echo_write_all(c->fd, payload, ECHO_BENCH_PAYLOAD_LEN);
			}
		}
	}
}

int tcp_echo_client_main(int argc, char **argv)
{
	struct echo_bench_args args;
	struct echo_bench_samples samples;
	struct tcp_echo_caller *callers;
	uint8_t payload[ECHO_BENCH_PAYLOAD_LEN];
	struct sockaddr_in sa;
	uint64_t t0, wall;
	int epfd = -1;

	echo_bench_client_args(argc, argv, &args);
	tcp_echo_parse_url(args.url, &sa);
	echo_bench_payload_fill(payload);
	echo_bench_samples_init(&samples, args.calls);
	callers = calloc(args.inflight, sizeof(*callers));
	if (callers == NULL)
		echo_bench_die("out of memory");
	for (size_t i = 0; i < args.inflight; i++)
		callers[i].fd = tcp_echo_connect(&sa);

	if (args.mode == ECHO_BENCH_SEQ) {
		tcp_echo_run_seq(callers[0].fd, payload, echo_bench_warmup_calls(args.calls), NULL);
		t0 = echo_bench_now_ns();
		tcp_echo_run_seq(callers[0].fd, payload, args.calls, &samples);
		wall = echo_bench_now_ns() - t0;
	} else {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			echo_bench_die("epoll_create1: %s", strerror(errno));
		for (size_t i = 0; i < args.inflight; i++) {
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &callers[i]};

			if (epoll_ctl(epfd, EPOLL_CTL_ADD, callers[i].fd, &ev) != 0)
				echo_bench_die("epoll_ctl: %s", strerror(errno));
		}
		tcp_echo_run_par(epfd, callers, args.inflight, payload,
		                 echo_bench_warmup_calls(args.calls), NULL);
		t0 = echo_bench_now_ns();
		tcp_echo_run_par(epfd, callers, args.inflight, payload, args.calls, &samples);
		wall = echo_bench_now_ns() - t0;
		close(epfd);
	}

	for (size_t i = 0; i < args.inflight; i++)
		close(callers[i].fd);
	free(callers);
	echo_bench_report(&samples, wall);
	echo_bench_samples_free(&samples);
	return 0;
}

int main(int argc, char **argv)
{
#ifdef ECHO_ROLE_SERVER
	return tcp_echo_server_main(argc, argv);
#else
	return tcp_echo_client_main(argc, argv);
#endif
}
