/*
 * gw_server.c - the gateway's HTTP server on h2o 2.2.5 (libh2o-evloop):
 * listeners, one event loop per thread, the request wrapper and its
 * hand-off between threads, the server's own error answers, graceful
 * shutdown and counters. The public contract is gw_server.h; why it is
 * built this way is docs/gateway/server.md.
 *
 * Design notes (the invariants the code keeps):
 *
 *   - A gw_request has two references: h2o's (dropped by a dispose hook on
 *     the h2o request's memory pool, when h2o is done with the request) and
 *     the handler's (dropped when its answer has been handled on the loop).
 *     The wrapper, its arena and the copy of the request inside it live
 *     until both are gone, so neither side can see freed memory: the
 *     handler may answer after the client left, and h2o may still be
 *     writing the answer (which lies in the arena) after the handler is
 *     done. While the loop runs, both references are counted by the loop
 *     thread alone: an answer from another thread travels to the loop
 *     through h2o's multithread queue (the gw_request carries the message)
 *     and is handled there. No h2o call is ever made off the loop thread.
 *   - `w->h2o` is the live h2o request or NULL; only the loop thread reads
 *     or writes it, and it is cleared by the dispose hook.
 *   - A loop that has finished (gw_server_stop) sets `closed` under
 *     post_mu; an answer arriving after that cannot be queued, so the
 *     answering thread drops it and releases the handler's reference
 *     itself, then one reference to the server, which lives until every
 *     such late answer has come (server.refs = 1 + requests still held by
 *     handlers when their loop closed).
 *   - Connections are tracked (gw_conn, through the socket's on_close hook)
 *     so that a shutdown can tell idle ones from busy ones, and cut the
 *     rest with shutdown(2): h2o then sees an error on its own socket and
 *     tears the connection down itself; the server never frees h2o's
 *     objects behind its back.
 *   - Counters are per loop, written by their loop thread only (relaxed
 *     atomic load + store, no locked instruction), summed when read.
 */
#define _DEFAULT_SOURCE   /* SO_REUSEPORT */
#define H2O_USE_LIBUV   0 /* Debian's libh2o-evloop: h2o's own event loop */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "arena.h"
#include "gw_server.h"
#include "panthera/log.h"

/* First block of a request's arena, inside the wrapper: the copy of a
 * typical request and its answer fit without a malloc. */
#define GW_REQ_INLINE 2048
/* Wrappers a loop keeps for reuse. */
#define GW_FREE_MAX 64
/* Connections accepted per readiness event of a listener. */
#define GW_ACCEPT_BURST 64
/* After the grace period: how long the 503s get to be written, then how
 * long cut connections get to be torn down by h2o. */
#define GW_FLUSH_MS 250
#define GW_CUT_MS   2000

typedef struct gw_loop gw_loop;
typedef struct gw_conn gw_conn;

/* A loop's counters; one writer (the loop thread), any readers. */
typedef struct gw_counters {
	_Atomic uint64_t requests;
	_Atomic uint64_t admitted; /* wrappers handed to the handler */
	_Atomic uint64_t finished; /* of those, disposed by h2o */
	_Atomic uint64_t responses[6];
	_Atomic uint64_t rejected;
	_Atomic uint64_t accepted;
	_Atomic uint64_t closed;
} gw_counters;

struct gw_conn {
	h2o_linklist_t link; /* loop->conns */
	gw_loop *loop;
	h2o_socket_t *sock; /* NULL once closed */
	unsigned refs;      /* the socket's, and one per request on it */
	unsigned active;    /* requests handed to the handler, not yet disposed */
};

struct gw_request {
	/* the request, copied into the arena */
	const char *method;
	size_t method_len;
	const char *path;
	size_t path_len;
	const char *authority;
	size_t authority_len;
	gw_header *headers;
	size_t n_headers;
	const char *body;
	size_t body_len;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int version;
	int tls;
	/* ownership */
	gw_loop *loop;
	gw_conn *conn;                 /* NULL when not tracked, or disposed */
	h2o_req_t *h2o;                /* NULL once h2o disposed it (loop thread) */
	h2o_linklist_t awaiting;       /* in loop->awaiting: live, unanswered */
	h2o_multithread_message_t msg; /* the answer's trip from another thread */
	unsigned refs;                 /* h2o's and the handler's */
	int server_answered;           /* the server answered it (503 at shutdown) */
	/* the answer, in the arena */
	int status;
	gw_header *resp_headers;
	size_t n_resp_headers;
	const char *resp_body;
	size_t resp_len;
	const char *fail; /* non-NULL: answer 500 with this message instead */
	gw_request *next_free;
	rpc_arena arena;
	_Alignas(max_align_t) unsigned char first[GW_REQ_INLINE];
};

enum { PHASE_RUN = 0, PHASE_GRACE, PHASE_CUT };

struct gw_loop {
	gw_server *server;
	unsigned index;
	pthread_t thread;
	int thread_started;
	int listen_fd; /* until the loop wraps it in listener */
	h2o_evloop_t *evloop;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	h2o_socket_t *listener;
	h2o_timeout_t accept_pause; /* after EMFILE and the like */
	h2o_timeout_entry_t accept_pause_entry;
	uint64_t accept_logged_at;
	h2o_multithread_receiver_t receiver; /* answers from other threads */
	h2o_linklist_t conns;
	size_t n_conns;
	h2o_linklist_t awaiting;
	size_t live; /* wrappers not freed */
	size_t held; /* wrappers the handler has not answered */
	gw_request *free_list;
	size_t n_free;
	int phase;
	uint64_t received; /* answers taken from the queue */
	int torn_down;
	/* shared with other threads */
	pthread_mutex_t post_mu;
	int closed;      /* under post_mu: no more answers through the queue */
	uint64_t posted; /* under post_mu */
	atomic_int stop;
	gw_counters c;
};

typedef struct gw_h2o_handler {
	h2o_handler_t super;
	gw_server *server;
} gw_h2o_handler;

typedef struct gw_h2o_filter {
	h2o_filter_t super;
	gw_server *server;
} gw_h2o_filter;

struct gw_server {
	gw_server_config cfg; /* strings point to the copies below */
	char *listen;
	char *cert;
	char *key;
	char *content_type;
	size_t content_type_len;
	h2o_globalconf_t conf;
	int conf_inited;
	SSL_CTX *ssl;
	gw_loop *loops;
	unsigned n_loops;
	unsigned port;
	atomic_uint refs;
	int stopped;
	pthread_mutex_t start_mu;
	pthread_cond_t start_cv;
	unsigned n_ready;
};

/* The loop this thread runs, if any: gw_respond's test for "on the loop". */
static _Thread_local gw_loop *tls_loop;
/* The request whose answer this thread is starting: the filter leaves it. */
static _Thread_local h2o_req_t *tls_responding;
/* Never called: every answer is sent whole (H2O_SEND_STATE_FINAL). */
static h2o_generator_t gw_generator = {NULL, NULL};

/* ---- small helpers ----------------------------------------------------------- */

static void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

/* *acc += n; 0 on overflow (then *acc is unspecified). */
static int add_size(size_t *acc, size_t n)
{
	if (n > SIZE_MAX - *acc)
		return 0;
	*acc += n;
	return 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, fmt, arg != NULL ? arg : "");
}

static char *dup_str(const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 499:
		return "Client Closed Request";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "";
	}
}

static int is_head(h2o_req_t *req)
{
	return h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
}

static gw_loop *loop_of_ctx(h2o_context_t *ctx)
{
	return H2O_STRUCT_FROM_MEMBER(gw_loop, ctx, ctx);
}

/* ---- connections ----------------------------------------------------------- */

static void conn_unref(gw_conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void conn_on_close(void *data)
{
	gw_conn *c = data;
	gw_loop *l = c->loop;
	h2o_linklist_unlink(&c->link);
	l->n_conns--;
	bump(&l->c.closed);
	c->sock = NULL;
	conn_unref(c);
}

static gw_conn *conn_of(h2o_req_t *req)
{
	if (req->conn->callbacks->get_socket == NULL)
		return NULL;
	h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
	if (sock == NULL || sock->on_close.cb != conn_on_close)
		return NULL;
	return sock->on_close.data;
}

static int conn_is_h2(gw_conn *c)
{
	if (c->sock == NULL || c->sock->ssl == NULL)
		return 0; /* no h2c: a plain connection speaks HTTP/1 */
	h2o_iovec_t p = h2o_socket_ssl_get_selected_protocol(c->sock);
	return p.len >= 2 && p.base[0] == 'h' && p.base[1] == '2';
}

/* Let h2o find the connection broken and tear it down itself. */
static void conn_cut(gw_conn *c)
{
	if (c->sock != NULL)
		shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
}

static void on_accept_resume(h2o_timeout_entry_t *entry);
static void on_accept(h2o_socket_t *listener, const char *err);

static void on_accept(h2o_socket_t *listener, const char *err)
{
	gw_loop *l = listener->data;
	if (err != NULL)
		return;
	for (int i = 0; i < GW_ACCEPT_BURST; i++) {
		h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
		if (sock == NULL) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* The connection stays queued and the listener readable:
				 * pause instead of spinning. */
				uint64_t now = now_ms();
				if (now - l->accept_logged_at >= 10000) { /* one line per 10 s */
					l->accept_logged_at = now;
					log_write(
					    LOG_WARN, NULL, "gateway.accept",
					    "accept failed (%s); pausing the listener for %u ms",
					    strerror(errno), (unsigned)l->accept_pause.timeout);
				}
				h2o_socket_read_stop(listener);
				h2o_timeout_link(l->evloop, &l->accept_pause,
				                 &l->accept_pause_entry);
			}
			return;
		}
		gw_conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			h2o_socket_close(sock);
			continue;
		}
		c->loop = l;
		c->sock = sock;
		c->refs = 1;
		c->active = 0;
		h2o_linklist_insert(&l->conns, &c->link);
		l->n_conns++;
		bump(&l->c.accepted);
		sock->on_close.cb = conn_on_close;
		sock->on_close.data = c;
		h2o_accept(&l->accept_ctx, sock);
	}
}

static void on_accept_resume(h2o_timeout_entry_t *entry)
{
	gw_loop *l = H2O_STRUCT_FROM_MEMBER(gw_loop, accept_pause_entry, entry);
	if (l->listener != NULL)
		h2o_socket_read_start(l->listener, on_accept);
}

/* ---- answers the server gives itself ---------------------------------------- */

static h2o_iovec_t error_body(gw_server *s, h2o_req_t *req, int status, const char *reason,
                              const char *message)
{
	char *buf = h2o_mem_alloc_pool(&req->pool, GW_SERVER_ERROR_BODY_MAX);
	size_t n = s->cfg.error_body(status, reason, message, buf, GW_SERVER_ERROR_BODY_MAX,
	                             s->cfg.error_body_arg);
	if (n > GW_SERVER_ERROR_BODY_MAX)
		n = gw_server_default_error_body(status, reason, message, buf,
		                                 GW_SERVER_ERROR_BODY_MAX, NULL);
	if (n > GW_SERVER_ERROR_BODY_MAX)
		n = 0;
	return h2o_iovec_init(buf, n);
}

/*
 * Answer `req` with an error in the configured shape, on its loop thread.
 * `close_conn`: end an HTTP/1 connection after it (after a refused head the
 * framing of what follows cannot be trusted).
 */
static void send_error(gw_loop *l, h2o_req_t *req, int status, const char *reason,
                       const char *message, int close_conn)
{
	gw_server *s = l->server;
	h2o_iovec_t body = error_body(s, req, status, reason, message);
	req->res.status = status;
	req->res.reason = reason_phrase(status);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, s->content_type,
	               s->content_type_len);
	req->res.content_length = body.len;
	if (close_conn || l->phase != PHASE_RUN)
		req->http1_is_persistent = 0;
	bump(&l->c.rejected);
	tls_responding = req;
	h2o_start_response(req, &gw_generator);
	tls_responding = NULL;
	if (is_head(req) || body.len == 0)
		h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
	else
		h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

/*
 * The filter every answer passes through (it is the only one on the only
 * path): it counts the status class, and gives the errors h2o answers on
 * its own (413 over max_body, 400 for a broken chunked body or
 * Content-Length, 417) the configured error shape instead of h2o's text.
 */
typedef struct gw_rewrite {
	h2o_ostream_t super;
	h2o_iovec_t body;
	int head;
} gw_rewrite;

static void rewrite_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                            h2o_send_state_t state)
{
	gw_rewrite *o = (gw_rewrite *)self;
	(void)bufs;
	(void)n;
	if (h2o_send_state_is_in_progress(state)) {
		h2o_ostream_send_next(self, req, NULL, 0, state); /* h2o's text: dropped */
		return;
	}
	if (o->head || o->body.len == 0)
		h2o_ostream_send_next(self, req, NULL, 0, state);
	else
		h2o_ostream_send_next(self, req, &o->body, 1, state);
}

static const char *builtin_error_message(int status, size_t max_body, char *buf, size_t cap)
{
	switch (status) {
	case 413:
		snprintf(buf, cap, "the request body is larger than %zu bytes", max_body);
		return buf;
	case 400:
		return "the request is malformed (its Content-Length or chunked body)";
	case 417:
		return "only the Expect value 100-continue is supported";
	default:
		return "the request cannot be served";
	}
}

static const char *builtin_error_reason(int status)
{
	switch (status) {
	case 413:
		return "PAYLOAD_TOO_LARGE";
	case 400:
		return "INVALID_REQUEST_HEAD";
	default:
		return "INVALID_REQUEST";
	}
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	gw_server *s = ((gw_h2o_filter *)self)->server;
	gw_loop *l = loop_of_ctx(req->conn->ctx);
	int status = req->res.status;
	if (status >= 100 && status < 600)
		bump(&l->c.responses[status / 100]);
	if (req != tls_responding && status >= 400 && req->res.content_length != SIZE_MAX) {
		char msg[96];
		const char *message =
		    builtin_error_message(status, s->cfg.max_body, msg, sizeof(msg));
		gw_rewrite *o = (gw_rewrite *)h2o_add_ostream(req, sizeof(*o), slot);
		o->super.do_send = rewrite_do_send;
		o->body = error_body(s, req, status, builtin_error_reason(status), message);
		o->head = is_head(req);
		req->res.content_length = o->body.len;
		h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
		               s->content_type, s->content_type_len, 1);
		bump(&l->c.rejected);
		slot = &o->super.next;
	}
	h2o_setup_next_ostream(req, slot);
}

/* ---- request wrappers --------------------------------------------------------- */

static gw_request *request_new(gw_loop *l)
{
	gw_request *w = l->free_list;
	if (w != NULL) {
		l->free_list = w->next_free;
		l->n_free--;
	} else {
		w = malloc(sizeof(*w));
		if (w == NULL)
			return NULL;
		rpc_arena_init(&w->arena, w->first, sizeof(w->first), l->server->cfg.arena_limit);
	}
	memset(w, 0, offsetof(gw_request, next_free));
	w->loop = l;
	l->live++;
	return w;
}

/* Last reference gone, on the loop thread. */
static void request_free_on_loop(gw_request *w)
{
	gw_loop *l = w->loop;
	l->live--;
	if (l->n_free < GW_FREE_MAX && !l->torn_down) {
		rpc_arena_reset(&w->arena);
		w->next_free = l->free_list;
		l->free_list = w;
		l->n_free++;
	} else {
		rpc_arena_destroy(&w->arena);
		free(w);
	}
}

static void request_unref(gw_request *w)
{
	if (--w->refs == 0)
		request_free_on_loop(w);
}

static void server_unref(gw_server *s);

/* h2o is done with the request (answered and sent, or the client left). */
static void on_req_dispose(void *p)
{
	gw_request *w = *(gw_request **)p;
	gw_loop *l = w->loop;
	w->h2o = NULL;
	if (h2o_linklist_is_linked(&w->awaiting))
		h2o_linklist_unlink(&w->awaiting);
	if (w->conn != NULL) {
		w->conn->active--;
		conn_unref(w->conn);
		w->conn = NULL;
	}
	bump(&l->c.finished);
	request_unref(w);
}

/* Copy what the handler may read into the arena; -1 when it does not fit. */
static int request_copy(gw_request *w, h2o_req_t *req)
{
	size_t n = req->headers.size, bytes = 4;
	int ok = add_size(&bytes, req->input.method.len) && add_size(&bytes, req->input.path.len) &&
	         add_size(&bytes, req->input.authority.len) && add_size(&bytes, req->entity.len);
	for (size_t i = 0; ok && i < n; i++) {
		const h2o_header_t *h = req->headers.entries + i;
		ok = add_size(&bytes, h->name->len) && add_size(&bytes, h->value.len) &&
		     add_size(&bytes, 2);
	}
	if (!ok)
		return -1;
	gw_header *hs = rpc_arena_calloc(&w->arena, n != 0 ? n : 1, sizeof(*hs));
	char *p = rpc_arena_alloc(&w->arena, bytes);
	if (hs == NULL || p == NULL)
		return -1;
#define GW_COPY(dst, dst_len, src, len)          \
	do {                                     \
		if ((len) != 0)                  \
			memcpy(p, (src), (len)); \
		p[(len)] = '\0';                 \
		(dst) = p;                       \
		(dst_len) = (len);               \
		p += (len) + 1;                  \
	} while (0)
	GW_COPY(w->method, w->method_len, req->input.method.base, req->input.method.len);
	GW_COPY(w->path, w->path_len, req->input.path.base, req->input.path.len);
	GW_COPY(w->authority, w->authority_len, req->input.authority.base,
	        req->input.authority.len);
	GW_COPY(w->body, w->body_len, req->entity.base, req->entity.len);
	for (size_t i = 0; i < n; i++) {
		const h2o_header_t *h = req->headers.entries + i;
		GW_COPY(hs[i].name, hs[i].name_len, h->name->base, h->name->len);
		GW_COPY(hs[i].value, hs[i].value_len, h->value.base, h->value.len);
	}
#undef GW_COPY
	w->headers = hs;
	w->n_headers = n;
	return 0;
}

/* The head's size and field count as the limits count them (HTTP/2). */
static size_t h2_head_bytes(h2o_req_t *req)
{
	size_t bytes = req->input.method.len + req->input.path.len + req->input.authority.len;
	for (size_t i = 0; i < req->headers.size; i++)
		bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
	return bytes;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	gw_server *s = ((gw_h2o_handler *)self)->server;
	gw_loop *l = loop_of_ctx(req->conn->ctx);
	char msg[128];
	size_t head_bytes, n_fields;

	bump(&l->c.requests);
	if (req->version < 0x200) {
		/* h2o has parsed the head; its bytes are still at the start of the
		 * connection's input buffer (gw_server_h1.c says why we look). */
		h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL
		                         ? req->conn->callbacks->get_socket(req->conn)
		                         : NULL;
		gw_h1_head h;
		if (sock == NULL || sock->input == NULL) {
			send_error(l, req, 500, "INTERNAL", "the request head cannot be checked",
			           1);
			return 0;
		}
		if (gw_server_scan_h1_head(sock->input->bytes, sock->input->size, &h) != 0) {
			send_error(l, req, 400, h.reason, h.message, 1);
			return 0;
		}
		head_bytes = h.head_len;
		n_fields = h.n_fields;
	} else {
		head_bytes = h2_head_bytes(req);
		n_fields = req->headers.size;
	}
	if (n_fields > s->cfg.max_headers) {
		snprintf(msg, sizeof(msg), "the request has more than %zu header fields",
		         s->cfg.max_headers);
		send_error(l, req, 431, "HEADERS_TOO_LARGE", msg, 1);
		return 0;
	}
	if (head_bytes > s->cfg.max_header_bytes) {
		snprintf(msg, sizeof(msg), "the request head is larger than %zu bytes",
		         s->cfg.max_header_bytes);
		send_error(l, req, 431, "HEADERS_TOO_LARGE", msg, 1);
		return 0;
	}
	if (l->phase == PHASE_CUT) {
		send_error(l, req, 503, "SHUTTING_DOWN", "the server is shutting down", 1);
		return 0;
	}

	gw_request *w = request_new(l);
	if (w == NULL) {
		send_error(l, req, 503, "OVERLOADED", "the server is out of memory", 1);
		return 0;
	}
	if (request_copy(w, req) != 0) {
		request_free_on_loop(w);
		send_error(l, req, 503, "OVERLOADED", "the request does not fit in memory", 1);
		return 0;
	}
	socklen_t plen = 0;
	if (req->conn->callbacks->get_peername != NULL)
		plen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&w->peer);
	w->peer_len = plen <= sizeof(w->peer) ? plen : 0;
	w->version = req->version;
	w->tls = req->input.scheme == &H2O_URL_SCHEME_HTTPS;
	w->h2o = req;
	w->refs = 2;
	w->conn = conn_of(req);
	if (w->conn != NULL) {
		w->conn->refs++;
		w->conn->active++;
	}
	gw_request **hook = h2o_mem_alloc_shared(&req->pool, sizeof(*hook), on_req_dispose);
	*hook = w;
	h2o_linklist_insert(&l->awaiting, &w->awaiting);
	l->held++;
	bump(&l->c.admitted);
	s->cfg.handler(w, s->cfg.handler_arg);
	return 0;
}

/* ---- answers ------------------------------------------------------------------- */

/* Send the handler's answer (loop thread; w->h2o alive). */
static void send_answer(gw_request *w)
{
	gw_loop *l = w->loop;
	h2o_req_t *req = w->h2o;
	if (w->fail != NULL) {
		send_error(l, req, 500, "INTERNAL", w->fail, 0);
		return;
	}
	req->res.status = w->status;
	req->res.reason = reason_phrase(w->status);
	for (size_t i = 0; i < w->n_resp_headers; i++) {
		const gw_header *h = w->resp_headers + i;
		h2o_add_header_by_str(&req->pool, &req->res.headers, h->name, h->name_len, 1, NULL,
		                      h->value, h->value_len);
	}
	int no_body = w->status == 204 || w->status == 304;
	req->res.content_length = no_body ? SIZE_MAX : w->resp_len;
	if (l->phase != PHASE_RUN)
		req->http1_is_persistent = 0;
	tls_responding = req;
	h2o_start_response(req, &gw_generator);
	tls_responding = NULL;
	if (no_body || w->resp_len == 0 || is_head(req)) {
		h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
	} else {
		h2o_iovec_t b = h2o_iovec_init(w->resp_body, w->resp_len);
		h2o_send(req, &b, 1, H2O_SEND_STATE_FINAL);
	}
}

/* The handler's answer reached the loop. */
static void deliver(gw_request *w)
{
	gw_loop *l = w->loop;
	if (w->h2o != NULL && !w->server_answered) {
		h2o_linklist_unlink(&w->awaiting);
		send_answer(w); /* w->h2o may be disposed from here on */
	}
	l->held--;
	request_unref(w);
}

static void on_answers(h2o_multithread_receiver_t *r, h2o_linklist_t *messages)
{
	gw_loop *l = H2O_STRUCT_FROM_MEMBER(gw_loop, receiver, r);
	while (!h2o_linklist_is_empty(messages)) {
		gw_request *w = H2O_STRUCT_FROM_MEMBER(gw_request, msg.link, messages->next);
		h2o_linklist_unlink(&w->msg.link);
		l->received++;
		deliver(w);
	}
}

static int is_token(const char *s, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c != '\0' && memchr(extra, c, sizeof(extra) - 1) != NULL)))
			return 0;
	}
	return 1;
}

static int lower_equals(const char *a, size_t n, const char *lower)
{
	size_t m = strlen(lower);
	if (n != m)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = a[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lower[i])
			return 0;
	}
	return 1;
}

/* Fields the server (or h2o) writes itself; a handler's are ignored. */
static int server_owned(const char *name, size_t n)
{
	static const char *const owned[] = {
	    "content-length", "transfer-encoding", "connection", "keep-alive",
	    "upgrade",        "proxy-connection",  "date",       "server"};
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		if (lower_equals(name, n, owned[i]))
			return 1;
	return 0;
}

/* Copy the answer into the arena (whatever thread the caller is on). */
static rpc_status copy_answer(gw_request *w, int status, const gw_header *headers, size_t n,
                              const void *body, size_t len)
{
	if (status < 200 || status > 599) {
		w->fail = "the handler answered with an invalid status";
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if ((n != 0 && headers == NULL) || (len != 0 && body == NULL)) {
		w->fail = "the handler answered with a missing buffer";
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	size_t bytes = len, kept = 0;
	for (size_t i = 0; i < n; i++) {
		const gw_header *h = headers + i;
		if (h->name == NULL || !is_token(h->name, h->name_len) ||
		    (h->value_len != 0 && h->value == NULL)) {
			w->fail = "the handler answered with an invalid header name";
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		for (size_t j = 0; j < h->value_len; j++) {
			char c = h->value[j];
			if (c == '\r' || c == '\n' || c == '\0') {
				w->fail = "the handler answered with an invalid header value";
				return RPC_STATUS_INVALID_ARGUMENT;
			}
		}
		if (server_owned(h->name, h->name_len))
			continue;
		kept++;
		if (!add_size(&bytes, h->name_len) || !add_size(&bytes, h->value_len)) {
			w->fail = "the answer does not fit in the request's memory";
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		}
	}
	gw_header *hs = kept != 0 ? rpc_arena_calloc(&w->arena, kept, sizeof(*hs)) : NULL;
	char *p = rpc_arena_alloc(&w->arena, bytes);
	if ((kept != 0 && hs == NULL) || p == NULL) {
		w->fail = "the answer does not fit in the request's memory";
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const gw_header *h = headers + i;
		if (server_owned(h->name, h->name_len))
			continue;
		for (size_t j = 0; j < h->name_len; j++) {
			char c = h->name[j];
			p[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		hs[k].name = p;
		hs[k].name_len = h->name_len;
		p += h->name_len;
		if (h->value_len != 0)
			memcpy(p, h->value, h->value_len);
		hs[k].value = p;
		hs[k].value_len = h->value_len;
		p += h->value_len;
		k++;
	}
	if (len != 0)
		memcpy(p, body, len);
	w->status = status;
	w->resp_headers = hs;
	w->n_resp_headers = kept;
	w->resp_body = p;
	w->resp_len = len;
	return RPC_STATUS_OK;
}

rpc_status gw_respond(gw_request *w, int status, const gw_header *headers, size_t n,
                      const void *body, size_t len)
{
	if (w == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = copy_answer(w, status, headers, n, body, len);
	gw_loop *l = w->loop;
	if (tls_loop == l) {
		deliver(w);
		return st;
	}
	pthread_mutex_lock(&l->post_mu);
	if (!l->closed) {
		l->posted++;
		h2o_multithread_send_message(&l->receiver, &w->msg);
		pthread_mutex_unlock(&l->post_mu);
		return st;
	}
	pthread_mutex_unlock(&l->post_mu);
	/* The loop has finished: nobody to answer. The loop thread no longer
	 * touches this request (closed was set under post_mu), so its
	 * references are ours; the server waits for this one. */
	gw_server *s = l->server;
	if (--w->refs == 0) {
		rpc_arena_destroy(&w->arena);
		free(w);
	}
	server_unref(s);
	return st;
}

/* ---- the request view ------------------------------------------------------------ */

const char *gw_request_method(const gw_request *r, size_t *len)
{
	if (len != NULL)
		*len = r->method_len;
	return r->method;
}

const char *gw_request_path(const gw_request *r, size_t *len)
{
	if (len != NULL)
		*len = r->path_len;
	return r->path;
}

const char *gw_request_authority(const gw_request *r, size_t *len)
{
	if (len != NULL)
		*len = r->authority_len;
	return r->authority;
}

const gw_header *gw_request_headers(const gw_request *r, size_t *n)
{
	if (n != NULL)
		*n = r->n_headers;
	return r->headers;
}

const gw_header *gw_request_find_header(const gw_request *r, const char *name, size_t name_len,
                                        const gw_header *after)
{
	size_t i = after != NULL ? (size_t)(after - r->headers) + 1 : 0;
	for (; i < r->n_headers; i++) {
		const gw_header *h = r->headers + i;
		if (h->name_len != name_len)
			continue;
		size_t j = 0;
		for (; j < name_len; j++) {
			char c = name[j];
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (c != h->name[j])
				break;
		}
		if (j == name_len)
			return h;
	}
	return NULL;
}

const void *gw_request_body(const gw_request *r, size_t *len)
{
	if (len != NULL)
		*len = r->body_len;
	return r->body;
}

const struct sockaddr *gw_request_peer(const gw_request *r, socklen_t *len)
{
	if (len != NULL)
		*len = r->peer_len;
	return (const struct sockaddr *)&r->peer;
}

int gw_request_http_version(const gw_request *r)
{
	return r->version;
}

int gw_request_is_tls(const gw_request *r)
{
	return r->tls;
}

unsigned gw_request_loop(const gw_request *r)
{
	return r->loop->index;
}

struct rpc_arena *gw_request_arena(gw_request *r)
{
	return &r->arena;
}

void *gw_request_alloc(gw_request *r, size_t n)
{
	return rpc_arena_alloc(&r->arena, n);
}

/* ---- the loops --------------------------------------------------------------------- */

/* Close idle connections (no request handed to the handler). HTTP/2 ones
 * are left to h2o's GOAWAY sequence, which closes them once idle: cutting
 * one could drop an answer still in its write buffer. */
static void close_idle(gw_loop *l)
{
	for (h2o_linklist_t *n = l->conns.next; n != &l->conns; n = n->next) {
		gw_conn *c = H2O_STRUCT_FROM_MEMBER(gw_conn, link, n);
		if (c->active == 0 && !conn_is_h2(c))
			conn_cut(c);
	}
}

static void run_until(gw_loop *l, uint64_t deadline, int (*done)(gw_loop *))
{
	for (;;) {
		if (done(l))
			return;
		uint64_t now = now_ms();
		if (now >= deadline)
			return;
		uint64_t wait = deadline - now;
		h2o_evloop_run(l->evloop, (int32_t)(wait < INT32_MAX ? wait : INT32_MAX));
	}
}

static int no_conns(gw_loop *l)
{
	return l->n_conns == 0;
}

static int grace_step(gw_loop *l)
{
	if (l->n_conns == 0)
		return 1;
	close_idle(l); /* connections whose last request just ended */
	return 0;
}

static int answers_in(gw_loop *l)
{
	return l->received >= l->posted; /* posted is final once closed */
}

static void drain(gw_loop *l)
{
	gw_server *s = l->server;
	uint64_t deadline = now_ms() + s->cfg.shutdown_timeout_ms;

	/* 1. Stop accepting; HTTP/2 clients get GOAWAY; an HTTP/1 request
	 *    parsed from now on gets "Connection: close". */
	l->phase = PHASE_GRACE;
	if (l->listener != NULL) {
		h2o_socket_read_stop(l->listener);
		h2o_socket_close(l->listener);
		l->listener = NULL;
	}
	h2o_timeout_unlink(&l->accept_pause_entry);
	h2o_context_request_shutdown(&l->ctx);
	/* 2. Close idle connections; let the others finish. */
	close_idle(l);
	run_until(l, deadline, grace_step);
	/* 3. Out of time: the server answers what is left, then cuts. */
	l->phase = PHASE_CUT;
	size_t late = 0;
	while (!h2o_linklist_is_empty(&l->awaiting)) {
		gw_request *w = H2O_STRUCT_FROM_MEMBER(gw_request, awaiting, l->awaiting.next);
		h2o_linklist_unlink(&w->awaiting);
		w->server_answered = 1;
		late++;
		send_error(l, w->h2o, 503, "SHUTTING_DOWN",
		           "the server shut down before the request was answered", 1);
	}
	if (late != 0)
		log_write(LOG_WARN, NULL, "gateway.shutdown",
		          "loop %u: %zu requests unanswered after %u ms, answered 503", l->index,
		          late, s->cfg.shutdown_timeout_ms);
	run_until(l, now_ms() + GW_FLUSH_MS, no_conns);
	for (h2o_linklist_t *n = l->conns.next; n != &l->conns; n = n->next)
		conn_cut(H2O_STRUCT_FROM_MEMBER(gw_conn, link, n));
	run_until(l, now_ms() + GW_CUT_MS, no_conns);
	/* 4. No more answers through the queue. Each request a handler still
	 *    holds, but for those whose answer is already queued, now keeps
	 *    the server alive until gw_respond() drops it: counted before any
	 *    such answer can see `closed`. Then take in the queued ones. */
	pthread_mutex_lock(&l->post_mu);
	l->closed = 1;
	size_t orphans = l->held - (size_t)(l->posted - l->received);
	if (orphans != 0)
		atomic_fetch_add(&s->refs, (unsigned)orphans);
	pthread_mutex_unlock(&l->post_mu);
	run_until(l, now_ms() + GW_CUT_MS, answers_in);
}

static int ctx_idle(h2o_context_t *ctx)
{
	h2o_timeout_t *t[] = {&ctx->zero_timeout,
	                      &ctx->one_sec_timeout,
	                      &ctx->hundred_ms_timeout,
	                      &ctx->handshake_timeout,
	                      &ctx->http1.req_timeout,
	                      &ctx->http2.idle_timeout,
	                      &ctx->http2.graceful_shutdown_timeout};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!h2o_linklist_is_empty(&t[i]->_entries))
			return 0;
	return h2o_linklist_is_empty(&ctx->http1._conns) &&
	       h2o_linklist_is_empty(&ctx->http2._conns);
}

/*
 * h2o 2.2.5's h2o_evloop_destroy() frees the loop but not its epoll
 * descriptor (lib/common/socket/evloop/epoll.c.h keeps it in a struct of
 * its own right after the public h2o_evloop_t). Close it, but only when the
 * descriptor found there is indeed an epoll instance.
 */
struct gw_epoll_layout {
	h2o_evloop_t super;
	int ep;
};

static void close_epoll_fd(h2o_evloop_t *loop)
{
	int fd = ((struct gw_epoll_layout *)loop)->ep;
	char path[64], target[64];
	if (fd < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:[eventpoll]") == 0)
		close(fd);
}

static void teardown(gw_loop *l)
{
	h2o_timeout_unlink(&l->ctx.http2._graceful_shutdown_timeout);
	h2o_evloop_run(l->evloop, 0); /* deferred actions, sockets closed above */
	if (l->n_conns != 0 || !ctx_idle(&l->ctx) || l->received < l->posted) {
		/* A connection h2o would not let go: leave the loop's memory
		 * rather than free what h2o still points at. */
		log_write(LOG_ERROR, NULL, "gateway.shutdown",
		          "loop %u: %zu connections still open after shutdown; leaking the loop",
		          l->index, l->n_conns);
		return;
	}
	l->torn_down = 1;
	while (l->free_list != NULL) {
		gw_request *w = l->free_list;
		l->free_list = w->next_free;
		rpc_arena_destroy(&w->arena);
		free(w);
	}
	l->n_free = 0;
	h2o_multithread_unregister_receiver(l->ctx.queue, &l->receiver);
	h2o_timeout_dispose(l->evloop, &l->accept_pause);
	h2o_multithread_queue_t *queue = l->ctx.queue;
	h2o_context_dispose(&l->ctx);
	free(queue); /* h2o 2.2.5's evloop build does not free it */
	/* This thread's spare socket buffers (h2o keeps them per thread). */
	h2o_mem_recycle_t *spare = &h2o_socket_buffer_prototype.allocator;
	while (spare->cnt > 0)
		free(h2o_mem_alloc_recycle(spare, 1));
	close_epoll_fd(l->evloop);
	h2o_evloop_destroy(l->evloop);
	l->evloop = NULL;
}

static void *loop_main(void *arg)
{
	gw_loop *l = arg;
	gw_server *s = l->server;
	tls_loop = l;
	l->evloop = h2o_evloop_create();
	h2o_context_init(&l->ctx, l->evloop, &s->conf);
	h2o_multithread_register_receiver(l->ctx.queue, &l->receiver, on_answers);
	h2o_timeout_init(l->evloop, &l->accept_pause, 100);
	l->accept_pause_entry.cb = on_accept_resume;
	l->accept_ctx.ctx = &l->ctx;
	l->accept_ctx.hosts = s->conf.hosts;
	l->accept_ctx.ssl_ctx = s->ssl;
	l->listener = h2o_evloop_socket_create(l->evloop, l->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
	l->listen_fd = -1; /* the listener's now */
	l->listener->data = l;
	h2o_socket_read_start(l->listener, on_accept);

	pthread_mutex_lock(&s->start_mu);
	s->n_ready++;
	pthread_cond_broadcast(&s->start_cv);
	pthread_mutex_unlock(&s->start_mu);

	while (!atomic_load_explicit(&l->stop, memory_order_acquire))
		h2o_evloop_run(l->evloop, INT32_MAX);
	drain(l);
	teardown(l);
	tls_loop = NULL;
	return NULL;
}

/* ---- listening ------------------------------------------------------------------------ */

/* Split "host:port" / "[v6]:port"; host "" or "*" is any IPv4 address. */
static int parse_listen(const char *spec, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon;
	size_t hlen;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		hlen = (size_t)(close - spec - 1);
		if (hlen == 0 || hlen >= hcap)
			return -1;
		memcpy(host, spec + 1, hlen);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - spec);
		if (hlen >= hcap || memchr(spec, ':', hlen) != NULL)
			return -1;
		memcpy(host, spec, hlen);
	}
	host[hlen] = '\0';
	if (strcmp(host, "*") == 0 || host[0] == '\0')
		snprintf(host, hcap, "0.0.0.0");
	const char *p = colon + 1;
	size_t plen = strlen(p);
	if (plen == 0 || plen >= pcap || strspn(p, "0123456789") != plen)
		return -1;
	unsigned long v = strtoul(p, NULL, 10);
	if (v > 65535)
		return -1;
	memcpy(port, p, plen + 1);
	return 0;
}

static int listen_socket(const struct sockaddr *sa, socklen_t len, int reuseport)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) ||
	    bind(fd, sa, len) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * One listening socket per loop, all on the same port with SO_REUSEPORT.
 * A probe socket bound first WITHOUT SO_REUSEPORT makes a port already
 * listened on (even by another process that uses SO_REUSEPORT, which would
 * otherwise share it silently) fail with EADDRINUSE, and fixes the port
 * when 0 was asked; it is closed once the loops' sockets are bound.
 */
static rpc_status open_listeners(gw_server *s, char *err, size_t errlen)
{
	char host[256], port[8], msg[512];
	struct addrinfo hints, *ai = NULL;
	if (parse_listen(s->listen, host, sizeof(host), port, sizeof(port)) != 0) {
		set_err(err, errlen, "invalid listen address \"%s\" (want host:port)", s->listen);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		snprintf(msg, sizeof(msg), "%s: %s", s->listen, gai_strerror(rc));
		set_err(err, errlen, "cannot resolve the listen address %s", msg);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	struct sockaddr_storage addr;
	socklen_t alen = (socklen_t)ai->ai_addrlen;
	memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);

	int probe = listen_socket((struct sockaddr *)&addr, alen, 0);
	if (probe < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", s->listen, strerror(errno));
		set_err(err, errlen, "cannot bind %s", msg);
		return errno == EMFILE || errno == ENFILE || errno == ENOMEM
		           ? RPC_STATUS_RESOURCE_EXHAUSTED
		           : RPC_STATUS_UNAVAILABLE;
	}
	socklen_t blen = sizeof(addr);
	if (getsockname(probe, (struct sockaddr *)&addr, &blen) != 0) {
		close(probe);
		set_err(err, errlen, "getsockname: %s", strerror(errno));
		return RPC_STATUS_UNAVAILABLE;
	}
	s->port = addr.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&addr)->sin6_port)
	                                     : ntohs(((struct sockaddr_in *)&addr)->sin_port);
	rpc_status st = RPC_STATUS_OK;
	for (unsigned i = 0; i < s->n_loops; i++) {
		int fd = listen_socket((struct sockaddr *)&addr, blen, 1);
		if (fd < 0 || listen(fd, SOMAXCONN) != 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			snprintf(msg, sizeof(msg), "%s: %s", s->listen, strerror(e));
			set_err(err, errlen, "cannot listen on %s", msg);
			st = e == EMFILE || e == ENFILE || e == ENOMEM
			         ? RPC_STATUS_RESOURCE_EXHAUSTED
			         : RPC_STATUS_UNAVAILABLE;
			break;
		}
		s->loops[i].listen_fd = fd;
	}
	close(probe);
	return st;
}

/* ---- TLS ---------------------------------------------------------------------------- */

static rpc_status tls_setup(gw_server *s, char *err, size_t errlen)
{
	char detail[256] = "";
	const char *what = NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		set_err(err, errlen, "cannot create the TLS context%s", "");
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, s->cert) != 1)
		what = s->cert;
	else if (SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM) != 1)
		what = s->key;
	else if (SSL_CTX_check_private_key(ctx) != 1)
		what = "the key does not match the certificate";
	if (what != NULL) {
		char buf[512];
		ERR_error_string_n(ERR_get_error(), detail, sizeof(detail));
		ERR_clear_error();
		snprintf(buf, sizeof(buf), "%s (%s)", what, detail);
		set_err(err, errlen, "TLS set-up failed: %s", buf);
		SSL_CTX_free(ctx);
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
	s->ssl = ctx;
	return RPC_STATUS_OK;
}

/* ---- the server ---------------------------------------------------------------------- */

void gw_server_config_init(gw_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_header_bytes = GW_SERVER_DEFAULT_MAX_HEADER_BYTES;
	cfg->max_headers = GW_SERVER_DEFAULT_MAX_HEADERS;
	cfg->max_body = GW_SERVER_DEFAULT_MAX_BODY;
	cfg->read_timeout_ms = GW_SERVER_DEFAULT_READ_TIMEOUT_MS;
	cfg->idle_timeout_ms = GW_SERVER_DEFAULT_IDLE_TIMEOUT_MS;
	cfg->shutdown_timeout_ms = GW_SERVER_DEFAULT_SHUTDOWN_MS;
	cfg->arena_limit = GW_SERVER_DEFAULT_ARENA_LIMIT;
}

static void server_free(gw_server *s)
{
	if (s->loops != NULL) {
		for (unsigned i = 0; i < s->n_loops; i++)
			pthread_mutex_destroy(&s->loops[i].post_mu);
		free(s->loops);
	}
	free(s->listen);
	free(s->cert);
	free(s->key);
	free(s->content_type);
	pthread_mutex_destroy(&s->start_mu);
	pthread_cond_destroy(&s->start_cv);
	free(s);
}

static void server_unref(gw_server *s)
{
	if (atomic_fetch_sub(&s->refs, 1) == 1)
		server_free(s);
}

/* Everything but the wrappers' memory: the threads must be gone. */
static void server_release_h2o(gw_server *s)
{
	for (unsigned i = 0; s->loops != NULL && i < s->n_loops; i++) {
		if (s->loops[i].listen_fd >= 0)
			close(s->loops[i].listen_fd);
		s->loops[i].listen_fd = -1;
	}
	if (s->conf_inited)
		h2o_config_dispose(&s->conf);
	s->conf_inited = 0;
	if (s->ssl != NULL)
		SSL_CTX_free(s->ssl);
	s->ssl = NULL;
}

static void stop_loops(gw_server *s)
{
	for (unsigned i = 0; i < s->n_loops; i++) {
		gw_loop *l = &s->loops[i];
		if (!l->thread_started)
			continue;
		pthread_mutex_lock(&l->post_mu);
		atomic_store_explicit(&l->stop, 1, memory_order_release);
		if (!l->closed)
			h2o_multithread_send_message(&l->receiver, NULL); /* wake it */
		pthread_mutex_unlock(&l->post_mu);
	}
	for (unsigned i = 0; i < s->n_loops; i++) {
		gw_loop *l = &s->loops[i];
		if (l->thread_started)
			pthread_join(l->thread, NULL);
		l->thread_started = 0;
	}
}

static rpc_status check_config(const gw_server_config *cfg, char *err, size_t errlen)
{
	if (cfg->listen == NULL || cfg->handler == NULL) {
		set_err(err, errlen, "the listen address and the handler are required%s", "");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL)) {
		set_err(err, errlen, "TLS needs both a certificate and a key file%s", "");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (cfg->max_header_bytes == 0 || cfg->max_headers == 0 || cfg->max_body == 0 ||
	    cfg->read_timeout_ms == 0 || cfg->idle_timeout_ms == 0) {
		set_err(err, errlen, "limits and timeouts must be above 0%s", "");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (cfg->threads > GW_SERVER_MAX_THREADS) {
		set_err(err, errlen, "too many threads (at most 256)%s", "");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	return RPC_STATUS_OK;
}

static void init_h2o_conf(gw_server *s)
{
	h2o_config_init(&s->conf);
	s->conf_inited = 1;
	h2o_hostconf_t *host =
	    h2o_config_register_host(&s->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	/* Every request reaches one handler and one filter: the fallback path
	 * is used for every path, and for the errors h2o answers itself. */
	gw_h2o_handler *h = (gw_h2o_handler *)h2o_create_handler(&host->fallback_path, sizeof(*h));
	h->super.on_req = on_req;
	h->server = s;
	gw_h2o_filter *f = (gw_h2o_filter *)h2o_create_filter(&host->fallback_path, sizeof(*f));
	f->super.on_setup_ostream = on_setup_ostream;
	f->server = s;
	s->conf.server_name = h2o_iovec_init(H2O_STRLIT("")); /* no Server: field */
	s->conf.max_request_entity_size = s->cfg.max_body;
	s->conf.handshake_timeout = s->cfg.read_timeout_ms;
	s->conf.http1.req_timeout = s->cfg.read_timeout_ms < s->cfg.idle_timeout_ms
	                                ? s->cfg.read_timeout_ms
	                                : s->cfg.idle_timeout_ms;
	s->conf.http1.upgrade_to_http2 = 0; /* no h2c */
	s->conf.http2.idle_timeout = s->cfg.idle_timeout_ms;
	/* The server's own deadline ends a shutdown, with 503s, not h2o's. */
	s->conf.http2.graceful_shutdown_timeout = 0;
}

rpc_status gw_server_start(const gw_server_config *cfg, gw_server **out, char *err, size_t errlen)
{
	if (out != NULL)
		*out = NULL;
	if (cfg == NULL || out == NULL) {
		set_err(err, errlen, "no configuration%s", "");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	rpc_status st = check_config(cfg, err, errlen);
	if (st != RPC_STATUS_OK)
		return st;
	gw_server *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		set_err(err, errlen, "out of memory%s", "");
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->start_mu, NULL);
	pthread_cond_init(&s->start_cv, NULL);
	s->cfg = *cfg;
	if (s->cfg.error_body == NULL) {
		s->cfg.error_body = gw_server_default_error_body;
		s->cfg.error_body_arg = NULL;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	s->n_loops = cfg->threads != 0
	                 ? cfg->threads
	                 : (cpus < 1 ? 1u
	                             : (cpus > (long)GW_SERVER_MAX_THREADS ? GW_SERVER_MAX_THREADS
	                                                                   : (unsigned)cpus));
	s->listen = dup_str(cfg->listen);
	s->cert = dup_str(cfg->tls_cert_file);
	s->key = dup_str(cfg->tls_key_file);
	s->content_type =
	    dup_str(cfg->error_content_type != NULL ? cfg->error_content_type : "application/json");
	s->loops = calloc(s->n_loops, sizeof(*s->loops));
	if (s->listen == NULL || s->content_type == NULL || s->loops == NULL ||
	    (cfg->tls_cert_file != NULL && (s->cert == NULL || s->key == NULL))) {
		set_err(err, errlen, "out of memory%s", "");
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto fail;
	}
	s->content_type_len = strlen(s->content_type);
	s->cfg.listen = s->listen;
	s->cfg.tls_cert_file = s->cert;
	s->cfg.tls_key_file = s->key;
	s->cfg.error_content_type = s->content_type;
	for (unsigned i = 0; i < s->n_loops; i++) {
		gw_loop *l = &s->loops[i];
		l->server = s;
		l->index = i;
		l->listen_fd = -1;
		h2o_linklist_init_anchor(&l->conns);
		h2o_linklist_init_anchor(&l->awaiting);
		pthread_mutex_init(&l->post_mu, NULL);
		atomic_init(&l->stop, 0);
	}
	if (s->cert != NULL && (st = tls_setup(s, err, errlen)) != RPC_STATUS_OK)
		goto fail;
	if ((st = open_listeners(s, err, errlen)) != RPC_STATUS_OK)
		goto fail;
	init_h2o_conf(s);

	/* Loop threads take no process signals: they go to the caller's
	 * threads (a sigwait() thread); SIGPIPE from a write to a closed
	 * socket stays pending on the loop thread instead of killing us. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < s->n_loops; i++) {
		int rc = pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]);
		if (rc != 0) {
			set_err(err, errlen, "cannot start a loop thread: %s", strerror(rc));
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
			break;
		}
		s->loops[i].thread_started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	unsigned started = 0;
	for (unsigned i = 0; i < s->n_loops; i++)
		started += (unsigned)s->loops[i].thread_started;
	pthread_mutex_lock(&s->start_mu);
	while (s->n_ready < started)
		pthread_cond_wait(&s->start_cv, &s->start_mu);
	pthread_mutex_unlock(&s->start_mu);
	if (st != RPC_STATUS_OK) {
		stop_loops(s);
		goto fail;
	}
	*out = s;
	return RPC_STATUS_OK;
fail:
	server_release_h2o(s);
	server_unref(s);
	return st;
}

unsigned gw_server_port(const gw_server *s)
{
	return s != NULL ? s->port : 0;
}

void gw_server_stop(gw_server *s)
{
	if (s == NULL || s->stopped)
		return;
	if (tls_loop != NULL) {
		/* A loop thread would wait for itself. */
		log_write(LOG_ERROR, NULL, "gateway.shutdown",
		          "gw_server_stop() called from a loop thread; ignored");
		return;
	}
	stop_loops(s);
	s->stopped = 1;
}

void gw_server_destroy(gw_server *s)
{
	if (s == NULL)
		return;
	if (tls_loop != NULL) {
		log_write(LOG_ERROR, NULL, "gateway.shutdown",
		          "gw_server_destroy() called from a loop thread; ignored");
		return;
	}
	gw_server_stop(s);
	server_release_h2o(s);
	server_unref(s);
}

void gw_server_stats_get(const gw_server *s, gw_server_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->n_loops; i++) {
		const gw_counters *c = &s->loops[i].c;
#define GW_LOAD(x) atomic_load_explicit(&c->x, memory_order_relaxed)
		out->requests += GW_LOAD(requests);
		uint64_t admitted = GW_LOAD(admitted), finished = GW_LOAD(finished);
		out->in_flight += admitted > finished ? admitted - finished : 0;
		for (int k = 0; k < 6; k++)
			out->responses[k] += GW_LOAD(responses[k]);
		out->rejected += GW_LOAD(rejected);
		uint64_t accepted = GW_LOAD(accepted), closed = GW_LOAD(closed);
		out->connections += accepted > closed ? accepted - closed : 0;
		out->connections_total += accepted;
#undef GW_LOAD
	}
}
