/*
 * server.c - the RPC server: nng REP contexts, a bounded queue, worker
 * threads.
 *
 * Design notes (the invariants everything below keeps):
 *
 * - The socket has W + Q + R contexts (workers, queue length, rejecters),
 *   each a small state machine driven by its aio's callback on nng's
 *   threads: RECV -> (a request arrived) -> either QUEUED for a worker, or
 *   answered at once (RESOURCE_EXHAUSTED when W + Q calls are running or
 *   waiting, UNAVAILABLE while draining) -> SEND -> RECV again. The callback
 *   never blocks and never runs a handler: handlers may block on the
 *   database, so they run on the W worker threads, which pop contexts from
 *   the queue.
 * - A context is owned by exactly one party at a time: nng (while its aio
 *   is pending), the queue, or one worker. So the per-call state in it needs
 *   no lock; only the queue and the counters do (srv->lock).
 * - running + queued <= W + Q at all times; the R extra contexts exist so
 *   that a request past that bound is received and refused instead of
 *   waiting unseen in nng's buffers.
 * - A request whose deadline has passed when a worker takes it is answered
 *   DEADLINE_EXCEEDED without running.
 * - Stop: state becomes DRAINING (new requests get UNAVAILABLE), workers
 *   finish the queue and what they run, sends complete, then the socket is
 *   closed, which completes every pending aio with NNG_ECLOSED; callbacks
 *   seeing that do nothing more. Only then are contexts freed.
 */
#include "rpc_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include "grpc/health/v1/health.panthera.h"

#define RPC_DEFAULT_WORKERS  4u
#define RPC_DEFAULT_QUEUE    64u
#define RPC_REJECTERS        4u
#define RPC_MAX_INTERCEPTORS 16u
#define RPC_MAX_HEALTH       128u

enum srv_state { SRV_CREATED, SRV_STARTING, SRV_RUNNING, SRV_DRAINING, SRV_STOPPED };
enum ctx_state { CTX_RECV, CTX_QUEUED, CTX_SEND };

typedef struct srv_method {
	const char *path;
	const rpc_method_desc *method;
	const void *handlers;
	void *user;
	rpc_method_stats *stats;
} srv_method;

typedef struct srv_ctx {
	rpc_server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	enum ctx_state state;
	nng_msg *req;         /* the request a worker will handle */
	uint64_t received_us; /* when it arrived */
	rpc_call call;
} srv_ctx;

typedef struct srv_health {
	char *service;
	int serving;
} srv_health;

typedef struct srv_interceptor {
	rpc_server_before_fn before;
	rpc_server_after_fn after;
	void *arg;
} srv_interceptor;

struct rpc_server {
	nng_socket sock;
	rpc_server_opts opts;
	size_t max_call_memory;
	/* registration (before start only) */
	struct {
		const rpc_service_desc *svc;
		const void *handlers;
		void *user;
	} services[RPC_MAX_SERVICES];
	size_t n_services;
	srv_interceptor interceptors[RPC_MAX_INTERCEPTORS];
	size_t n_interceptors;
	/* dispatch table, built at start, sorted by path */
	srv_method *methods;
	size_t n_methods;
	rpc_method_stats *stats; /* n_methods + 1; the last for unknown methods */
	/* contexts and workers */
	srv_ctx *ctxs;
	size_t n_ctxs;
	pthread_t *threads;
	size_t n_threads;
	/* guarded by lock */
	pthread_mutex_t lock;
	pthread_cond_t work; /* the queue has an entry, or the state changed */
	pthread_cond_t idle; /* a worker finished a call or a send completed */
	enum srv_state state;
	srv_ctx **queue; /* ring of capacity W + Q */
	size_t q_head, q_len, q_cap;
	size_t running; /* calls taken by workers */
	size_t sending; /* replies handed to nng, not yet sent */
	int stopping;   /* an rpc_server_stop is at work; others wait on `stopped` */
	int closed;     /* the socket is closed */
	pthread_cond_t stopped;
	srv_health health[RPC_MAX_HEALTH];
	size_t n_health;
	int listening;
};

static rpc_status health_check(rpc_call *call, const Grpc__Health__V1__HealthCheckRequest *req,
                               Grpc__Health__V1__HealthCheckResponse *resp, void *user);

static const grpc_health_v1_health_handlers health_handlers = {.check = health_check};

/* ---- small helpers ---- */

static rpc_status status_from_nng_listen(int rv)
{
	switch (rv) {
	case NNG_EADDRINUSE:
		return RPC_STATUS_UNAVAILABLE;
	case NNG_ENOMEM:
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EINVAL:
		return RPC_STATUS_INVALID_ARGUMENT;
	default:
		return RPC_STATUS_INTERNAL;
	}
}

static int cmp_method(const void *a, const void *b)
{
	return strcmp(((const srv_method *)a)->path, ((const srv_method *)b)->path);
}

static const srv_method *find_method(const rpc_server *srv, const char *path)
{
	size_t lo = 0, hi = srv->n_methods;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(srv->methods[mid].path, path);
		if (c == 0)
			return &srv->methods[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- creation and registration ---- */

rpc_status rpc_server_create(rpc_server **out, const rpc_server_opts *opts)
{
	*out = NULL;
	rpc_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (opts != NULL)
		srv->opts = *opts;
	if (srv->opts.workers == 0)
		srv->opts.workers = RPC_DEFAULT_WORKERS;
	if (srv->opts.queue_len == 0)
		srv->opts.queue_len = RPC_DEFAULT_QUEUE;
	if (srv->opts.max_message == 0)
		srv->opts.max_message = RPC_DEFAULT_MAX_MESSAGE;
	srv->max_call_memory = srv->opts.max_call_memory;
	if (srv->max_call_memory == 0)
		srv->max_call_memory = srv->opts.max_message > (SIZE_MAX - (1u << 20)) / 8
		                           ? SIZE_MAX
		                           : 8 * srv->opts.max_message + (1u << 20);
	if (pthread_mutex_init(&srv->lock, NULL) != 0) {
		free(srv);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	/* The drain waits on `idle` against the monotonic clock, so a step of
	 * the wall clock neither cuts nor stretches it. */
	pthread_condattr_t ca;
	int ok = pthread_condattr_init(&ca) == 0;
	ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
	ok = ok && pthread_cond_init(&srv->idle, &ca) == 0;
	ok = ok && pthread_cond_init(&srv->work, NULL) == 0;
	ok = ok && pthread_cond_init(&srv->stopped, NULL) == 0;
	int rv = ok ? nng_rep0_open(&srv->sock) : NNG_ENOMEM;
	if (rv != 0) {
		/* condition variables hold no resources on Linux: freeing is enough */
		pthread_mutex_destroy(&srv->lock);
		free(srv);
		return rv == NNG_ENOMEM ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_INTERNAL;
	}
	/* nng drops larger messages outright (and closes the stream); keep
	 * room above the limit so an oversize request is seen and refused. */
	size_t hard = srv->opts.max_message > (SIZE_MAX - (1u << 20)) / 2
	                  ? SIZE_MAX
	                  : srv->opts.max_message * 2 + (1u << 20); /* headers reach ~540 KB */
	nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, hard);
	srv->state = SRV_CREATED;
	rpc_status st = grpc_health_v1_health_register(srv, &health_handlers, srv);
	if (st == RPC_STATUS_OK)
		st = rpc_reflection_register(srv);
	if (st == RPC_STATUS_OK)
		st = rpc_server_set_serving(srv, "", 0);
	if (st != RPC_STATUS_OK) {
		rpc_server_destroy(srv);
		return st;
	}
	*out = srv;
	return RPC_STATUS_OK;
}

rpc_status rpc_server_add_service(rpc_server *srv, const rpc_service_desc *svc,
                                  const void *handlers, void *user)
{
	if (srv == NULL || svc == NULL || handlers == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	pthread_mutex_lock(&srv->lock);
	rpc_status st = RPC_STATUS_OK;
	if (srv->state != SRV_CREATED) {
		st = RPC_STATUS_FAILED_PRECONDITION;
	} else if (srv->n_services >= RPC_MAX_SERVICES) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	} else {
		for (size_t i = 0; i < srv->n_services; i++) {
			if (strcmp(srv->services[i].svc->name, svc->name) == 0)
				st = RPC_STATUS_ALREADY_EXISTS;
		}
	}
	if (st == RPC_STATUS_OK) {
		srv->services[srv->n_services].svc = svc;
		srv->services[srv->n_services].handlers = handlers;
		srv->services[srv->n_services].user = user;
		srv->n_services++;
	}
	pthread_mutex_unlock(&srv->lock);
	return st;
}

size_t rpc_server_services(rpc_server *srv, const rpc_service_desc **out, size_t cap)
{
	pthread_mutex_lock(&srv->lock);
	size_t n = srv->n_services;
	for (size_t i = 0; i < n && i < cap; i++)
		out[i] = srv->services[i].svc;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

rpc_status rpc_server_add_interceptor(rpc_server *srv, rpc_server_before_fn before,
                                      rpc_server_after_fn after, void *arg)
{
	if (srv == NULL || (before == NULL && after == NULL))
		return RPC_STATUS_INVALID_ARGUMENT;
	pthread_mutex_lock(&srv->lock);
	rpc_status st = RPC_STATUS_OK;
	if (srv->state != SRV_CREATED)
		st = RPC_STATUS_FAILED_PRECONDITION;
	else if (srv->n_interceptors >= RPC_MAX_INTERCEPTORS)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	else
		srv->interceptors[srv->n_interceptors++] = (srv_interceptor){before, after, arg};
	pthread_mutex_unlock(&srv->lock);
	return st;
}

rpc_status rpc_server_set_serving(rpc_server *srv, const char *service, int serving)
{
	if (srv == NULL || service == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = RPC_STATUS_OK;
	pthread_mutex_lock(&srv->lock);
	size_t i;
	for (i = 0; i < srv->n_health; i++) {
		if (strcmp(srv->health[i].service, service) == 0)
			break;
	}
	if (i == srv->n_health) {
		char *copy = strdup(service);
		if (copy == NULL || srv->n_health >= RPC_MAX_HEALTH) {
			free(copy);
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
		} else {
			srv->health[i].service = copy;
			srv->n_health++;
		}
	}
	if (st == RPC_STATUS_OK)
		srv->health[i].serving = serving ? 1 : 0;
	pthread_mutex_unlock(&srv->lock);
	return st;
}

static rpc_status health_check(rpc_call *call, const Grpc__Health__V1__HealthCheckRequest *req,
                               Grpc__Health__V1__HealthCheckResponse *resp, void *user)
{
	rpc_server *srv = user;
	const char *name = req->service ? req->service : "";
	int found = 0, serving = 0;
	pthread_mutex_lock(&srv->lock);
	for (size_t i = 0; i < srv->n_health; i++) {
		if (strcmp(srv->health[i].service, name) == 0) {
			found = 1;
			serving = srv->health[i].serving && srv->state == SRV_RUNNING;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	if (!found)
		return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "service %s is not served here",
		                      name);
	resp->status = serving
	                   ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
	                   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	return RPC_STATUS_OK;
}

/* ---- TLS ---- */

static int server_tls_config(rpc_server *srv, nng_tls_config **out)
{
	nng_tls_config *cfg;
	int rv;
	*out = NULL;
	if (srv->opts.tls_cert_file == NULL || srv->opts.tls_key_file == NULL)
		return NNG_EINVAL;
	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0)
		return rv;
	rv = rpc_tls_own_cert(cfg, srv->opts.tls_cert_file, srv->opts.tls_key_file);
	if (rv == 0 && srv->opts.tls_client_ca_file != NULL) {
		rv = nng_tls_config_ca_file(cfg, srv->opts.tls_client_ca_file);
		if (rv == 0)
			rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	}
	if (rv != 0) {
		nng_tls_config_free(cfg);
		return rv;
	}
	*out = cfg;
	return 0;
}

rpc_status rpc_server_listen(rpc_server *srv, const char *url)
{
	if (srv == NULL || url == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	pthread_mutex_lock(&srv->lock);
	enum srv_state state = srv->state;
	pthread_mutex_unlock(&srv->lock);
	if (state == SRV_DRAINING || state == SRV_STOPPED)
		return RPC_STATUS_FAILED_PRECONDITION;
	nng_listener l;
	int rv = nng_listener_create(&l, srv->sock, url);
	if (rv != 0)
		return status_from_nng_listen(rv);
	if (strncmp(url, "tls+", 4) == 0) {
		nng_tls_config *cfg;
		rv = server_tls_config(srv, &cfg);
		if (rv == 0) {
			rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
			nng_tls_config_free(cfg); /* the listener holds its own reference */
		}
		if (rv != 0) {
			nng_listener_close(l);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	}
	rv = nng_listener_start(l, 0);
	if (rv != 0) {
		nng_listener_close(l);
		return status_from_nng_listen(rv);
	}
	return RPC_STATUS_OK;
}

static void handle(rpc_server *srv, srv_ctx *c);

/* ---- the context state machine ---- */

/* A reply that cannot be handed to its connection within this time (a
 * client that stopped reading) is dropped, so such clients cannot hold every
 * context of the server. */
#define RPC_REPLY_SEND_TIMEOUT_MS 10000

static void ctx_recv(srv_ctx *c)
{
	c->state = CTX_RECV;
	nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(c->ctx, c->aio);
}

static void ctx_send(srv_ctx *c, nng_msg *msg)
{
	rpc_server *srv = c->srv;
	if (msg == NULL) {
		/* Not even a small error frame could be made: the caller's
		 * deadline will tell it; go back to receiving. */
		rpc_call_reset(&c->call);
		ctx_recv(c);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	srv->sending++;
	pthread_mutex_unlock(&srv->lock);
	c->state = CTX_SEND;
	nng_aio_set_msg(c->aio, msg);
	nng_aio_set_timeout(c->aio, RPC_REPLY_SEND_TIMEOUT_MS);
	nng_ctx_send(c->ctx, c->aio);
}

static void ctx_cb(void *arg)
{
	srv_ctx *c = arg;
	rpc_server *srv = c->srv;
	int rv = nng_aio_result(c->aio);

	if (c->state == CTX_SEND) {
		if (rv != 0) { /* nng gives the message back on failure */
			nng_msg *back = nng_aio_get_msg(c->aio);
			if (back != NULL)
				nng_msg_free(back);
			nng_aio_set_msg(c->aio, NULL);
		}
		rpc_call_reset(&c->call);
		pthread_mutex_lock(&srv->lock);
		srv->sending--;
		pthread_cond_broadcast(&srv->idle);
		int stopped = srv->state == SRV_STOPPED;
		pthread_mutex_unlock(&srv->lock);
		if (rv == NNG_ECLOSED || stopped)
			return;
		ctx_recv(c);
		return;
	}

	/* CTX_RECV */
	if (rv != 0) {
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		ctx_recv(c); /* a transient error: keep going */
		return;
	}
	nng_msg *msg = nng_aio_get_msg(c->aio);
	nng_aio_set_msg(c->aio, NULL);
	pthread_mutex_lock(&srv->lock);
	if (srv->state != SRV_RUNNING) {
		pthread_mutex_unlock(&srv->lock);
		nng_msg_free(msg);
		ctx_send(
		    c, rpc_encode_status_reply(RPC_STATUS_UNAVAILABLE, "server is shutting down"));
		return;
	}
	if (srv->running + srv->q_len >= srv->q_cap) {
		pthread_mutex_unlock(&srv->lock);
		nng_msg_free(msg);
		rpc_stats_record(&srv->stats[srv->n_methods], RPC_STATUS_RESOURCE_EXHAUSTED, 0);
		ctx_send(c, rpc_encode_status_reply(RPC_STATUS_RESOURCE_EXHAUSTED,
		                                    "server overloaded: too many calls waiting"));
		return;
	}
	c->req = msg;
	c->received_us = rpc_now_us();
	if (srv->opts.inline_handlers) {
		srv->running++;
		pthread_mutex_unlock(&srv->lock);
		handle(srv, c);
		pthread_mutex_lock(&srv->lock);
		srv->running--;
		pthread_cond_broadcast(&srv->idle);
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	c->state = CTX_QUEUED;
	srv->queue[(srv->q_head + srv->q_len) % srv->q_cap] = c;
	srv->q_len++;
	pthread_cond_signal(&srv->work);
	pthread_mutex_unlock(&srv->lock);
}

/* ---- handling one call (worker thread) ---- */

static rpc_status run_handler(rpc_server *srv, srv_ctx *c, const srv_method *m,
                              const rpc_wire_request *wr, ProtobufCMessage **resp_out)
{
	rpc_call *call = &c->call;
	if (wr->payload_len > srv->opts.max_message)
		return rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED,
		                      "request of %zu bytes exceeds the limit of %zu",
		                      wr->payload_len, srv->opts.max_message);
	ProtobufCMessage *req = protobuf_c_message_unpack(m->method->input, &call->arena.pb,
	                                                  wr->payload_len, wr->payload);
	if (req == NULL && call->arena.exhausted)
		return rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED,
		                      "request needs more memory than a call may take");
	if (req == NULL)
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT,
		                      "request payload is not a valid %s", m->method->input->name);
	ProtobufCMessage *resp = rpc_arena_alloc(&call->arena, m->method->output->sizeof_message);
	if (resp == NULL)
		return rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	protobuf_c_message_init(m->method->output, resp);
	*resp_out = resp;

	size_t i;
	rpc_status st = RPC_STATUS_OK;
	for (i = 0; i < srv->n_interceptors && st == RPC_STATUS_OK; i++) {
		if (srv->interceptors[i].before != NULL)
			st = srv->interceptors[i].before(call, srv->interceptors[i].arg);
	}
	if (st == RPC_STATUS_OK) {
		st = m->method->invoke(m->handlers, m->user, call, req, resp);
		if (st == RPC_STATUS_UNIMPLEMENTED && call->message == NULL)
			rpc_call_error(call, st, "method %s is not implemented", m->path);
	}
	if ((unsigned)st >= RPC_STATUS_COUNT)
		st = rpc_call_error(call, RPC_STATUS_UNKNOWN, "handler returned an unknown status");
	return st;
}

static void handle(rpc_server *srv, srv_ctx *c)
{
	rpc_call *call = &c->call;
	nng_msg *msg = c->req;
	c->req = NULL;
	rpc_wire_request wr;
	const srv_method *m = NULL;
	ProtobufCMessage *resp = NULL;
	rpc_status st;
	int ran = 0;
	uint64_t start = rpc_now_us();

	rpc_wire_error we =
	    rpc_wire_decode_request(nng_msg_body(msg), nng_msg_len(msg), &call->arena, &wr);
	if (we != RPC_WIRE_OK) {
		st = rpc_call_error(call,
		                    we == RPC_WIRE_NO_MEMORY ? RPC_STATUS_RESOURCE_EXHAUSTED
		                                             : RPC_STATUS_INVALID_ARGUMENT,
		                    "bad request frame: %s", rpc_wire_strerror(we));
		goto reply;
	}
	call->metadata = wr.metadata;
	call->n_metadata = wr.n_metadata;
	if (wr.timeout_ms != 0)
		call->deadline_us = c->received_us + (uint64_t)wr.timeout_ms * 1000u;
	m = find_method(srv, wr.method);
	if (m == NULL) {
		st = rpc_call_error(call, RPC_STATUS_UNIMPLEMENTED, "unknown method %s", wr.method);
		goto reply;
	}
	call->method = m->method;
	if (call->deadline_us != 0 && start >= call->deadline_us) {
		st = rpc_call_error(call, RPC_STATUS_DEADLINE_EXCEEDED,
		                    "deadline passed before the call started");
		goto reply;
	}
	st = run_handler(srv, c, m, &wr, &resp);
	ran = 1;
reply:;
	/* The status sent may differ from the handler's (a reply over the
	 * size limit, no memory): interceptors and counters see the one sent. */
	rpc_status sent = st;
	nng_msg *out = rpc_call_encode_reply(call, st, st == RPC_STATUS_OK ? resp : NULL,
	                                     srv->opts.max_message, &sent);
	if (ran) {
		for (size_t i = 0; i < srv->n_interceptors; i++) {
			if (srv->interceptors[i].after != NULL)
				srv->interceptors[i].after(call, sent, srv->interceptors[i].arg);
		}
	}
	nng_msg_free(msg); /* the request frame: payload views into it are dead now */
	rpc_stats_record(m ? m->stats : &srv->stats[srv->n_methods], sent, rpc_now_us() - start);
	ctx_send(c, out);
}

static void *worker_main(void *arg)
{
	rpc_server *srv = arg;
	pthread_mutex_lock(&srv->lock);
	for (;;) {
		while (srv->q_len == 0 && srv->state != SRV_STOPPED)
			pthread_cond_wait(&srv->work, &srv->lock);
		/* Once stopped, queued calls are not started: their replies could
		 * no longer be sent, and a side effect without a reply is worse
		 * than none. rpc_server_stop() frees them. */
		if (srv->state == SRV_STOPPED)
			break;
		srv_ctx *c = srv->queue[srv->q_head];
		srv->q_head = (srv->q_head + 1) % srv->q_cap;
		srv->q_len--;
		srv->running++;
		pthread_mutex_unlock(&srv->lock);
		handle(srv, c);
		pthread_mutex_lock(&srv->lock);
		srv->running--;
		pthread_cond_broadcast(&srv->idle);
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* ---- start, stop, destroy ---- */

static rpc_status build_dispatch(rpc_server *srv)
{
	size_t n = 0;
	for (size_t i = 0; i < srv->n_services; i++)
		n += srv->services[i].svc->n_methods;
	srv->methods = calloc(n ? n : 1, sizeof(*srv->methods));
	srv->stats = calloc(n + 1, sizeof(*srv->stats));
	if (srv->methods == NULL || srv->stats == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < srv->n_services; i++) {
		const rpc_service_desc *svc = srv->services[i].svc;
		for (size_t k = 0; k < svc->n_methods; k++) {
			srv_method *m = &srv->methods[srv->n_methods++];
			m->path = svc->methods[k].path;
			m->method = &svc->methods[k];
			m->handlers = srv->services[i].handlers;
			m->user = srv->services[i].user;
		}
	}
	qsort(srv->methods, srv->n_methods, sizeof(*srv->methods), cmp_method);
	for (size_t i = 0; i < srv->n_methods; i++) {
		if (i > 0 && strcmp(srv->methods[i - 1].path, srv->methods[i].path) == 0)
			return RPC_STATUS_ALREADY_EXISTS;
		srv->stats[i].method = srv->methods[i].path;
		srv->methods[i].stats = &srv->stats[i];
	}
	srv->stats[srv->n_methods].method = "";
	return RPC_STATUS_OK;
}

/* A start that failed half-way: close the socket and stop the workers that
 * were started; the server can then only be destroyed. */
static rpc_status start_failed(rpc_server *srv, rpc_status st)
{
	pthread_mutex_lock(&srv->lock);
	srv->state = SRV_STOPPED;
	srv->closed = 1;
	pthread_cond_broadcast(&srv->work);
	pthread_mutex_unlock(&srv->lock);
	nng_close(srv->sock);
	for (size_t i = 0; i < srv->n_threads; i++)
		pthread_join(srv->threads[i], NULL);
	srv->n_threads = 0;
	return st;
}

rpc_status rpc_server_start(rpc_server *srv)
{
	if (srv == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	pthread_mutex_lock(&srv->lock);
	enum srv_state state = srv->state;
	if (state == SRV_CREATED)
		srv->state = SRV_STARTING; /* one start only, even from two threads */
	pthread_mutex_unlock(&srv->lock);
	if (state != SRV_CREATED)
		return RPC_STATUS_FAILED_PRECONDITION;

	rpc_status st = build_dispatch(srv);
	if (st != RPC_STATUS_OK)
		return start_failed(srv, st);
	for (size_t i = 0; i < srv->n_services; i++) {
		if ((st = rpc_server_set_serving(srv, srv->services[i].svc->name, 1)) !=
		    RPC_STATUS_OK)
			return start_failed(srv, st);
	}
	if ((st = rpc_server_set_serving(srv, "", 1)) != RPC_STATUS_OK)
		return start_failed(srv, st);

	srv->q_cap = srv->opts.workers + srv->opts.queue_len;
	srv->queue = calloc(srv->q_cap, sizeof(*srv->queue));
	srv->ctxs = calloc(srv->q_cap + RPC_REJECTERS, sizeof(*srv->ctxs));
	srv->threads = calloc(srv->opts.workers, sizeof(*srv->threads));
	if (srv->queue == NULL || srv->ctxs == NULL || srv->threads == NULL)
		return start_failed(srv, RPC_STATUS_RESOURCE_EXHAUSTED);
	for (size_t i = 0; i < srv->q_cap + RPC_REJECTERS; i++) {
		srv_ctx *c = &srv->ctxs[i];
		c->srv = srv;
		rpc_call_init(&c->call, srv->max_call_memory);
		srv->n_ctxs = i + 1; /* destroy frees what was set up */
		if (nng_aio_alloc(&c->aio, ctx_cb, c) != 0 || nng_ctx_open(&c->ctx, srv->sock) != 0)
			return start_failed(srv, RPC_STATUS_RESOURCE_EXHAUSTED);
	}
	pthread_mutex_lock(&srv->lock);
	srv->state = SRV_RUNNING;
	pthread_mutex_unlock(&srv->lock);
	for (size_t i = 0; i < srv->opts.workers; i++) {
		if (pthread_create(&srv->threads[i], NULL, worker_main, srv) != 0)
			return start_failed(srv, RPC_STATUS_RESOURCE_EXHAUSTED);
		srv->n_threads++;
	}
	for (size_t i = 0; i < srv->n_ctxs; i++)
		ctx_recv(&srv->ctxs[i]);
	return RPC_STATUS_OK;
}

/* After the last reply is handed to nng, the socket stays open this much
 * longer (within drain_ms) so that its bytes reach the wire: nng 1.5 has no
 * linger of its own. Best effort. */
#define RPC_DRAIN_LINGER_MS 200

void rpc_server_stop(rpc_server *srv, uint32_t drain_ms)
{
	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->lock);
	while (srv->stopping) /* another thread is stopping it: wait for that */
		pthread_cond_wait(&srv->stopped, &srv->lock);
	if (srv->state != SRV_RUNNING) {
		/* never started, failed to start, or stopped already */
		int close_now = !srv->closed;
		srv->state = SRV_STOPPED;
		srv->closed = 1;
		pthread_mutex_unlock(&srv->lock);
		if (close_now)
			nng_close(srv->sock);
		return;
	}
	srv->stopping = 1;
	srv->state = SRV_DRAINING;
	/* Wait for the queue, the running calls and their sends. */
	struct timespec now, until;
	clock_gettime(CLOCK_MONOTONIC, &now);
	until = now;
	until.tv_sec += drain_ms / 1000u;
	until.tv_nsec += (long)(drain_ms % 1000u) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (srv->q_len > 0 || srv->running > 0 || srv->sending > 0) {
		if (pthread_cond_timedwait(&srv->idle, &srv->lock, &until) != 0)
			break;
	}
	pthread_mutex_unlock(&srv->lock);
	clock_gettime(CLOCK_MONOTONIC, &now);
	long left_ms =
	    (long)(until.tv_sec - now.tv_sec) * 1000L + (until.tv_nsec - now.tv_nsec) / 1000000L;
	if (left_ms > 0) {
		long linger = left_ms < RPC_DRAIN_LINGER_MS ? left_ms : RPC_DRAIN_LINGER_MS;
		struct timespec ts = {linger / 1000, (linger % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&srv->lock);
	srv->state = SRV_STOPPED; /* workers take nothing more from the queue */
	pthread_cond_broadcast(&srv->work);
	/* A handler still running will hand its reply to nng: the socket must
	 * outlive that, whatever drain_ms said (closing it under nng_ctx_send
	 * is a crash inside nng). */
	while (srv->running > 0)
		pthread_cond_wait(&srv->idle, &srv->lock);
	srv->closed = 1;
	pthread_mutex_unlock(&srv->lock);
	/* Closing completes every pending aio with NNG_ECLOSED. Queued calls
	 * not taken in time are dropped with their requests, unrun. */
	nng_close(srv->sock);
	for (size_t i = 0; i < srv->n_threads; i++)
		pthread_join(srv->threads[i], NULL);
	srv->n_threads = 0;
	pthread_mutex_lock(&srv->lock);
	while (srv->q_len > 0) {
		srv_ctx *c = srv->queue[srv->q_head];
		srv->q_head = (srv->q_head + 1) % srv->q_cap;
		srv->q_len--;
		if (c->req != NULL)
			nng_msg_free(c->req);
		c->req = NULL;
	}
	srv->stopping = 0;
	pthread_cond_broadcast(&srv->stopped);
	pthread_mutex_unlock(&srv->lock);
}

void rpc_server_destroy(rpc_server *srv)
{
	if (srv == NULL)
		return;
	rpc_server_stop(srv, 0);
	for (size_t i = 0; i < srv->n_ctxs; i++) {
		srv_ctx *c = &srv->ctxs[i];
		if (c->aio != NULL) {
			nng_aio_stop(c->aio); /* waits for a running callback */
			/* A reply nng never took (a send cut short by the close
			 * without its callback freeing it) is still ours. nng clears
			 * the aio's message when it takes one. */
			nng_msg *left = nng_aio_get_msg(c->aio);
			if (left != NULL)
				nng_msg_free(left);
			nng_aio_free(c->aio);
		}
		if (c->req != NULL)
			nng_msg_free(c->req);
		rpc_arena_destroy(&c->call.arena);
	}
	for (size_t i = 0; i < srv->n_health; i++)
		free(srv->health[i].service);
	free(srv->ctxs);
	free(srv->queue);
	free(srv->threads);
	free(srv->methods);
	free(srv->stats);
	pthread_cond_destroy(&srv->work);
	pthread_cond_destroy(&srv->idle);
	pthread_cond_destroy(&srv->stopped);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

void rpc_server_metrics(rpc_server *srv, rpc_metrics_fn fn, void *arg)
{
	if (srv == NULL || fn == NULL || srv->stats == NULL)
		return;
	for (size_t i = 0; i <= srv->n_methods; i++)
		rpc_stats_report(&srv->stats[i], fn, arg);
}
