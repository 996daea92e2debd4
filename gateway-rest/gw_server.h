/*
 * gw_server.h - the REST gateway's HTTP server core, on h2o.
 *
 * It accepts HTTP/1.1 (and, with TLS, HTTP/2 chosen by ALPN) on one address,
 * reads each request in full (head and body, up to the configured limits),
 * and hands it to one callback. It knows nothing of routes, JSON or tokens:
 * the callback does. The answer may come at once, from the callback, or
 * later from any other thread (an RPC completion): the server carries it
 * back to the event loop that owns the request. Design notes, h2o's own
 * behaviour and the reasons for each choice: docs/gateway/server.md.
 *
 * Threads: N event loops, one per thread, each with its own listening socket
 * on the same port (SO_REUSEPORT: the kernel spreads new connections over
 * the loops by a hash of the client's address and port). A connection stays
 * on the loop that accepted it; so do its requests.
 *
 * Objects:
 *   gw_server   the server: its loops, its threads, its configuration.
 *   gw_request  one request, from the moment its body is complete until the
 *               handler has answered it AND h2o is done with it.
 *
 * Lifetimes and ownership:
 *   - The handler is called once per request, on the request's loop thread.
 *     From then on the request belongs to the handler until it calls
 *     gw_respond() (exactly once, from any thread). After gw_respond()
 *     returns, `req` must not be used again.
 *   - Everything a gw_request hands out (method, path, headers, body, the
 *     peer, memory from its arena) stays valid until gw_respond(), even
 *     when the client has gone away in the meantime: the request is a copy
 *     in the request's own arena, not a view of h2o's buffers.
 *   - A request whose client disconnects before the answer is still
 *     answered by the handler as usual; the answer is then dropped.
 *   - A request the handler has not answered when a graceful shutdown runs
 *     out of time is answered 503 by the server; the handler must still
 *     call gw_respond() later (it is dropped), even after gw_server_stop()
 *     or gw_server_destroy() returned: the request keeps what it needs
 *     alive until then.
 *
 * Errors the server answers itself, before or instead of the handler, all
 * in the shape of the configured error-body callback (by default the AIP-193
 * JSON {"error":{"code":...,"status":"...","message":"..."}}):
 *   400 two Content-Length fields that differ, Content-Length together with
 *       Transfer-Encoding, Transfer-Encoding twice, a folded header line,
 *       whitespace in a header name (HTTP/1.x; the connection is closed);
 *       h2o's own 400s (a bad Content-Length, a broken chunked body);
 *   413 a body over max_body (h2o's limit: the handler is not called);
 *   431 more than max_headers header fields or max_header_bytes of head;
 *   503 a request still unanswered when a graceful shutdown times out;
 *   500 gw_respond() given an invalid status or header, or out of memory.
 * Two cases h2o answers on its own, without our shape (see server.md):
 * an HTTP/1 head of more than 100 fields or over 408 KiB (400, plain text),
 * and an HTTP/2 body over max_body (the stream is reset).
 *
 * Thread-safety: gw_server_start/stop/destroy from one controlling thread
 * (stop may be that of a signal-handling thread: it is not async-signal
 * safe, call it from a thread that waits in sigwait(), never from a signal
 * handler, and never from a loop thread). gw_server_stats() and
 * gw_server_port() from any thread at any time. A gw_request is used by one
 * thread at a time: the loop's while the handler runs, then whichever
 * thread the handler passed it to; gw_respond() may run on any thread.
 *
 * Memory: h2o itself aborts when malloc fails (h2o_mem_alloc); this module
 * returns errors for its own allocations and answers 500/503 instead.
 */
#ifndef PANTHERA_GW_SERVER_H
#define PANTHERA_GW_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gw_server gw_server;
typedef struct gw_request gw_request;
struct rpc_arena; /* rpc/src/arena.h */

/* One header field. In a request, `name` is lower-case (h2o folds HTTP/1
 * names; HTTP/2 sends them so); in a response, any case. Neither is
 * NUL-terminated unless said otherwise. */
typedef struct gw_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
} gw_header;

/*
 * The request handler: called on the loop thread that owns the request, with
 * the request complete. It must not block (it runs the loop). It answers
 * with gw_respond(), now or later, from this thread or another one.
 */
typedef void (*gw_handler_fn)(gw_request *req, void *arg);

/*
 * Writes the body of an error the server answers itself: `status` (400, 413,
 * 431, 500, 503, or one of h2o's own 4xx), `reason` (an ErrorInfo reason such
 * as "PAYLOAD_TOO_LARGE", never NULL) and `message` (one English sentence,
 * printable ASCII). Writes at most `cap` bytes to buf and returns how many;
 * a return above cap is taken as a failure and the default body is sent.
 * Called on a loop thread; must not block; may be called concurrently from
 * several loops.
 */
typedef size_t (*gw_error_body_fn)(int status, const char *reason, const char *message, char *buf,
                                   size_t cap, void *arg);

/* Room gw_error_body_fn gets. */
#define GW_SERVER_ERROR_BODY_MAX 1024u

/* Defaults (gw_server_config_init). */
#define GW_SERVER_DEFAULT_MAX_HEADER_BYTES 32768u
#define GW_SERVER_DEFAULT_MAX_HEADERS      100u     /* h2o's own HTTP/1 field bound */
#define GW_SERVER_DEFAULT_MAX_BODY         1048576u /* 1 MiB, API.md */
#define GW_SERVER_DEFAULT_READ_TIMEOUT_MS  10000u
#define GW_SERVER_DEFAULT_IDLE_TIMEOUT_MS  60000u
#define GW_SERVER_DEFAULT_SHUTDOWN_MS      10000u
#define GW_SERVER_DEFAULT_ARENA_LIMIT      (16u << 20)
#define GW_SERVER_MAX_THREADS              256u

typedef struct gw_server_config {
	/* "host:port": "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8080",
	 * "localhost:8080"; "*:8080" or ":8080" listen on every IPv4 address.
	 * Port 0 picks a free port (gw_server_port() tells which). Required. */
	const char *listen;
	/* Event loops (threads); 0: the number of online CPUs. At most
	 * GW_SERVER_MAX_THREADS. PANTHERA_HTTP_THREADS is the caller's. */
	unsigned threads;
	/* Bytes of a request's head: its request line and header fields as
	 * sent (HTTP/2: method, path, authority and every field's name and
	 * value plus 4). Over it: 431. (h2o refuses an HTTP/1 head over
	 * H2O_MAX_REQLEN, 408 KiB, itself: 400.) */
	size_t max_header_bytes;
	/* Header fields in a request. Over it: 431. h2o refuses an HTTP/1
	 * request of more than 100 fields itself (400). */
	size_t max_headers;
	/* Bytes of a request body. Over it: 413, and the handler is not
	 * called. HTTP/2: h2o resets the stream instead. */
	size_t max_body;
	/* HTTP/1: how long the server waits for a whole request (head and
	 * body) from when it starts waiting for it, so a client that trickles
	 * bytes is cut off; also the TLS handshake's limit. h2o 2.2.5 runs one
	 * timer for the wait before a request and the request itself, so an
	 * idle HTTP/1 keep-alive connection is closed after
	 * min(read_timeout_ms, idle_timeout_ms). */
	unsigned read_timeout_ms;
	/* HTTP/2: an idle connection is closed after this. See above for
	 * HTTP/1. */
	unsigned idle_timeout_ms;
	/* gw_server_stop(): how long requests in flight may take to finish
	 * before the server answers them 503 and closes their connections. */
	unsigned shutdown_timeout_ms;
	/* PEM files of the certificate (chain) and its private key: both set
	 * for HTTPS (ALPN: h2, then http/1.1), both NULL for plain HTTP/1.1. */
	const char *tls_cert_file;
	const char *tls_key_file;
	/* Bytes a request's arena may hold (the request's copy, what the
	 * handler allocates, the response); 0: no bound. */
	size_t arena_limit;
	/* The handler and its argument. Required. */
	gw_handler_fn handler;
	void *handler_arg;
	/* The error-body writer and the Content-Type of what it writes; NULL
	 * for the default JSON (application/json). */
	gw_error_body_fn error_body;
	void *error_body_arg;
	const char *error_content_type;
} gw_server_config;

/* Fill cfg with the defaults above, no listen address, no handler. */
void gw_server_config_init(gw_server_config *cfg);

/*
 * Bind, then start the loops. On return the server is accepting.
 *
 * cfg:    read only during the call (strings are copied).
 * out:    OUT, the server; NULL on error.
 * err:    OUT, an English message on error (may be NULL); errlen its size.
 * Returns OK; INVALID_ARGUMENT for a bad configuration (no handler, an
 * unparsable address, one TLS file without the other, a limit of 0,
 * threads above the maximum); FAILED_PRECONDITION when TLS files cannot be
 * loaded or do not match; UNAVAILABLE when the address cannot be bound
 * (in use, even by a process that also uses SO_REUSEPORT, or not local);
 * RESOURCE_EXHAUSTED when memory, descriptors or threads run out.
 */
rpc_status gw_server_start(const gw_server_config *cfg, gw_server **out, char *err, size_t errlen);

/* The port the server listens on (useful after port 0). 0 for NULL. */
unsigned gw_server_port(const gw_server *s);

/*
 * Graceful shutdown: stop accepting; close idle keep-alive connections;
 * let requests in flight finish (their HTTP/1 connections are closed after
 * the answer; HTTP/2 clients get GOAWAY) for up to shutdown_timeout_ms;
 * then answer those still waiting 503 and close every connection; join
 * the threads. Returns when the threads are gone. Idempotent; NULL is
 * ignored. Must not be called from a loop thread (a handler): there it
 * logs an error and does nothing.
 */
void gw_server_stop(gw_server *s);

/*
 * Stop (if not yet) and free the server. Requests still held by a handler
 * stay valid until it calls gw_respond() (the answer is dropped). NULL is
 * ignored; so is a call from a loop thread (logged).
 */
void gw_server_destroy(gw_server *s);

/* Counters, summed over the loops when read (each loop writes its own). */
typedef struct gw_server_stats {
	uint64_t requests;          /* requests complete and taken by the server */
	uint64_t in_flight;         /* of those, not yet done (answer not sent) */
	uint64_t responses[6];      /* by status class: [1] 1xx .. [5] 5xx */
	uint64_t rejected;          /* answered by the server, not the handler */
	uint64_t connections;       /* open now */
	uint64_t connections_total; /* accepted since start */
} gw_server_stats;

/* Read the counters; may run concurrently with the loops (each value is
 * consistent on its own, not with the others). Zeroes for NULL. */
void gw_server_stats_get(const gw_server *s, gw_server_stats *out);

/* ---- the request ---------------------------------------------------------- */

/* The method as sent ("GET"), NUL-terminated; *len its length. */
const char *gw_request_method(const gw_request *req, size_t *len);

/* The request target as sent, with its query string ("/v1/x?a=1"), raw
 * (no decoding, no normalisation); NUL-terminated; *len its length. */
const char *gw_request_path(const gw_request *req, size_t *len);

/* The Host (HTTP/1) or :authority (HTTP/2), NUL-terminated; "" when none. */
const char *gw_request_authority(const gw_request *req, size_t *len);

/* The header fields in the order received, names lower-case; *n their
 * count. Host, Content-Length, Transfer-Encoding, Expect and Upgrade are
 * not among them (h2o consumes them; see gw_request_authority). Values are
 * NUL-terminated. */
const gw_header *gw_request_headers(const gw_request *req, size_t *n);

/*
 * The next field named `name` (any case; name_len bytes) after `after`
 * (NULL: the first). NULL when there is none. Repeated fields are found in
 * order: for (h = find(r, n, l, NULL); h; h = find(r, n, l, h)).
 */
const gw_header *gw_request_find_header(const gw_request *req, const char *name, size_t name_len,
                                        const gw_header *after);

/* The body, complete (possibly empty: then non-NULL with *len 0). */
const void *gw_request_body(const gw_request *req, size_t *len);

/* The client's address (the TCP peer; X-Forwarded-For is the caller's
 * business), *len its length; family AF_INET or AF_INET6. */
const struct sockaddr *gw_request_peer(const gw_request *req, socklen_t *len);

/* 0x100, 0x101 (HTTP/1.x) or 0x200 (HTTP/2). */
int gw_request_http_version(const gw_request *req);

/* 1 when the request came over TLS. */
int gw_request_is_tls(const gw_request *req);

/* Index of the loop (thread) that owns the request, 0 .. threads-1: the
 * key to per-loop state of the handler's. */
unsigned gw_request_loop(const gw_request *req);

/*
 * The request's arena (rpc/src/arena.h): memory for the handler, freed
 * when the request is done (answered and sent, or dropped). Its pb member
 * is a ProtobufCAllocator. Used by one thread at a time, like the request.
 */
struct rpc_arena *gw_request_arena(gw_request *req);

/* n bytes from the arena, aligned for any type; NULL when out of memory or
 * over arena_limit. */
void *gw_request_alloc(gw_request *req, size_t n);

/*
 * Answer the request: status 200..599, n header fields (names any case,
 * lower-cased when sent; Content-Length, Transfer-Encoding, Connection,
 * Keep-Alive, Upgrade, Proxy-Connection, Date and Server are the server's
 * and ignored here), and the body (len bytes; NULL when len is 0). Every
 * byte is copied, so the caller's buffers may be reused at once. Callable
 * from any thread, once per request; `req` is invalid after it returns.
 * Responses to HEAD carry the Content-Length of the body but not the body;
 * 204 and 304 never carry one.
 *
 * Returns OK; INVALID_ARGUMENT for a NULL req (nothing done), a status out
 * of range, or a header name that is not an HTTP token or a value with CR,
 * LF or NUL (the client then gets a 500 instead); RESOURCE_EXHAUSTED when
 * the copy does not fit the arena (500 instead). The request is consumed
 * in every case but NULL.
 */
rpc_status gw_respond(gw_request *req, int status, const gw_header *headers, size_t n,
                      const void *body, size_t len);

/* ---- internal, for tests and fuzzing --------------------------------------- */

/* What gw_server_scan_h1_head() found. */
typedef struct gw_h1_head {
	size_t head_len; /* bytes up to and including the empty line */
	size_t n_fields; /* header fields */
	int has_content_length;
	uint64_t content_length; /* the value, when has_content_length */
	int has_transfer_encoding;
	const char *reason;  /* on refusal: the ErrorInfo reason */
	const char *message; /* on refusal: why, for the error body */
} gw_h1_head;

/*
 * Scan the head of an HTTP/1 request that h2o has already parsed, at the
 * start of buf[0..len) (leading empty lines are skipped), for what h2o
 * lets through: Content-Length fields that differ, Content-Length with
 * Transfer-Encoding, Transfer-Encoding twice, an obsolete folded line, a
 * header name with whitespace or control bytes. Reads at most len bytes.
 * Returns 0 (h filled), or 400 with h->reason and h->message set, also when
 * the head does not end within len bytes.
 */
int gw_server_scan_h1_head(const char *buf, size_t len, gw_h1_head *h);

/* The default error body (the AIP-193 shape with an ErrorInfo detail);
 * a gw_error_body_fn. */
size_t gw_server_default_error_body(int status, const char *reason, const char *message, char *buf,
                                    size_t cap, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_SERVER_H */
