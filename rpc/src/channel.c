/*
 * channel.c - the RPC client: one nng REQ socket dialing every URL, a pool
 * of contexts, synchronous and asynchronous calls.
 *
 * Design notes (the invariants everything below keeps):
 *
 * - nng's REQ resend is off (NNG_OPT_REQ_RESENDTIME infinite, set before any
 *   context is opened): a request is sent at most once by nng. A lost peer
 *   fails the call (UNAVAILABLE); only methods marked RPC_METHOD_IDEMPOTENT
 *   are sent again, and only when the caller asked (max_retries).
 * - nng spreads requests over the connected pipes; the channel counts them
 *   (pipe notifications) so that a call with no peer fails UNAVAILABLE after
 *   at most connect_wait_ms instead of waiting out its whole deadline.
 * - A slot (context + aio) serves one call at a time and returns to a free
 *   list afterwards. Reusing a context whose call timed out is safe: a new
 *   request on a REQ context abandons the old one, and a late reply to it is
 *   discarded by nng.
 * - An asynchronous call that started (returned OK) completes exactly once:
 *   its callback runs from nng's thread on success, error, deadline, and
 *   channel close alike, and the slot is back in the pool after it.
 *   Callbacks of aios never free their own aio (nng forbids it); slots are
 *   freed only by rpc_channel_close(), after every call has completed.
 */
#include "rpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#define RPC_DEFAULT_TIMEOUT_MS      10000u
#define RPC_DEFAULT_CONNECT_WAIT_MS 1000u
#define RPC_CLIENT_MAX_INTERCEPTORS 16u
#define RPC_CLIENT_MAX_MD           64u
/* Calls in flight on one channel (each holds an nng context); one more
 * fails at once instead of growing the pool without bound. */
#define RPC_CLIENT_MAX_INFLIGHT 16384u

typedef struct chan_slot chan_slot;

typedef struct chan_stats {
	const rpc_method_desc *method;
	rpc_method_stats stats;
	struct chan_stats *next;
} chan_stats;

typedef struct chan_interceptor {
	rpc_client_before_fn before;
	rpc_client_after_fn after;
	void *arg;
} chan_interceptor;

struct chan_slot {
	rpc_channel *ch;
	nng_ctx ctx;
	nng_aio *aio;
	int async;
	/* an asynchronous call in progress */
	enum { SLOT_SEND, SLOT_RECV } state;
	const rpc_method_desc *method;
	rpc_reply_fn done;
	void *arg;
	nng_msg *retry_copy; /* the request again, when retries are allowed */
	uint32_t retries_left;
	uint64_t start_us, deadline_us;
	chan_slot *next_free;
	chan_slot *next_all;
};

struct rpc_channel {
	nng_socket sock;
	rpc_channel_opts opts;
	pthread_mutex_t lock;
	pthread_cond_t cv; /* async calls finished */
	int n_pipes;
	int closing;
	int started;     /* a call was made: interceptors are fixed now */
	size_t inflight; /* calls holding a slot, sync and async */
	chan_slot *free_sync, *free_async, *all;
	chan_interceptor interceptors[RPC_CLIENT_MAX_INTERCEPTORS];
	size_t n_interceptors;
	chan_stats *stats;
	uint64_t retries; /* requests sent again after a lost peer (under lock) */
};

static void count_retry(rpc_channel *ch)
{
	pthread_mutex_lock(&ch->lock);
	ch->retries++;
	pthread_mutex_unlock(&ch->lock);
}

uint64_t rpc_channel_retries(rpc_channel *ch)
{
	pthread_mutex_lock(&ch->lock);
	uint64_t n = ch->retries;
	pthread_mutex_unlock(&ch->lock);
	return n;
}

rpc_status rpc_status_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return RPC_STATUS_OK;
	case NNG_ETIMEDOUT:
		return RPC_STATUS_DEADLINE_EXCEEDED;
	case NNG_ECANCELED:
		return RPC_STATUS_CANCELLED;
	case NNG_ENOMEM:
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	case NNG_EMSGSIZE:
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	default: /* ECLOSED, ECONNSHUT, ECONNRESET, ECONNREFUSED, ... */
		return RPC_STATUS_UNAVAILABLE;
	}
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	rpc_channel *ch = arg;
	pthread_mutex_lock(&ch->lock);
	if (ev == NNG_PIPE_EV_ADD_POST)
		ch->n_pipes++;
	else if (ev == NNG_PIPE_EV_REM_POST && ch->n_pipes > 0)
		ch->n_pipes--;
	pthread_mutex_unlock(&ch->lock);
}

static int client_tls_config(const rpc_channel_opts *o, const char *url, nng_tls_config **out)
{
	nng_tls_config *cfg;
	int rv;
	*out = NULL;
	if (o->tls_ca_file == NULL)
		return NNG_EINVAL;
	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0)
		return rv;
	rv = nng_tls_config_ca_file(cfg, o->tls_ca_file);
	if (rv == 0)
		rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0 && o->tls_cert_file != NULL && o->tls_key_file != NULL)
		rv = rpc_tls_own_cert(cfg, o->tls_cert_file, o->tls_key_file);
	if (rv == 0) {
		/* The name to check: given, or the URL's host. */
		char host[256] = "";
		if (o->tls_server_name != NULL) {
			if (strlen(o->tls_server_name) < sizeof(host))
				snprintf(host, sizeof(host), "%s", o->tls_server_name);
		} else {
			const char *h = strstr(url, "://");
			h = h ? h + 3 : url;
			size_t n;
			if (*h == '[') { /* [v6 address]:port */
				h++;
				n = strcspn(h, "]");
			} else {
				n = strcspn(h, ":/");
			}
			if (n < sizeof(host)) {
				memcpy(host, h, n);
				host[n] = '\0';
			}
		}
		/* Never without a name to check: any certificate the CA signed
		 * would pass. */
		rv = host[0] != '\0' ? nng_tls_config_server_name(cfg, host) : NNG_EINVAL;
	}
	if (rv != 0) {
		nng_tls_config_free(cfg);
		return rv;
	}
	*out = cfg;
	return 0;
}

rpc_status rpc_channel_open(rpc_channel **out, const char *const *urls, size_t n_urls,
                            const rpc_channel_opts *opts)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	if (urls == NULL || n_urls == 0)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_channel *ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (opts != NULL)
		ch->opts = *opts;
	if (ch->opts.default_timeout_ms == 0)
		ch->opts.default_timeout_ms = RPC_DEFAULT_TIMEOUT_MS;
	if (ch->opts.connect_wait_ms == 0)
		ch->opts.connect_wait_ms = RPC_DEFAULT_CONNECT_WAIT_MS;
	if (ch->opts.max_message == 0)
		ch->opts.max_message = RPC_DEFAULT_MAX_MESSAGE;
	pthread_mutex_init(&ch->lock, NULL);
	pthread_cond_init(&ch->cv, NULL);
	rpc_status st = RPC_STATUS_OK;
	int rv = nng_req0_open(&ch->sock);
	if (rv != 0) {
		pthread_cond_destroy(&ch->cv);
		pthread_mutex_destroy(&ch->lock);
		free(ch);
		return RPC_STATUS_INTERNAL;
	}
	/* Before any context: no resend, so nothing runs twice. */
	nng_socket_set_ms(ch->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(ch->sock, NNG_OPT_RECVMAXSZ, ch->opts.max_message * 2 + (1u << 20));
	nng_socket_set_ms(ch->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(ch->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(ch->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, ch);
	nng_pipe_notify(ch->sock, NNG_PIPE_EV_REM_POST, pipe_cb, ch);
	for (size_t i = 0; i < n_urls && st == RPC_STATUS_OK; i++) {
		nng_dialer d;
		if (urls[i] == NULL || (rv = nng_dialer_create(&d, ch->sock, urls[i])) != 0) {
			st = RPC_STATUS_INVALID_ARGUMENT;
			break;
		}
		if (strncmp(urls[i], "tls+", 4) == 0) {
			nng_tls_config *cfg;
			rv = client_tls_config(&ch->opts, urls[i], &cfg);
			if (rv == 0) {
				rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
				nng_tls_config_free(cfg);
			}
			if (rv != 0) {
				st = RPC_STATUS_INVALID_ARGUMENT;
				break;
			}
		}
		/* In the background: a server not up yet is retried. */
		if (nng_dialer_start(d, NNG_FLAG_NONBLOCK) != 0)
			st = RPC_STATUS_INVALID_ARGUMENT;
	}
	if (st != RPC_STATUS_OK) {
		rpc_channel_close(ch);
		return st;
	}
	*out = ch;
	return RPC_STATUS_OK;
}

rpc_status rpc_channel_add_interceptor(rpc_channel *ch, rpc_client_before_fn before,
                                       rpc_client_after_fn after, void *arg)
{
	if (ch == NULL || (before == NULL && after == NULL))
		return RPC_STATUS_INVALID_ARGUMENT;
	pthread_mutex_lock(&ch->lock);
	rpc_status st = RPC_STATUS_OK;
	if (ch->started)
		st = RPC_STATUS_FAILED_PRECONDITION;
	else if (ch->n_interceptors >= RPC_CLIENT_MAX_INTERCEPTORS)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	else
		ch->interceptors[ch->n_interceptors++] = (chan_interceptor){before, after, arg};
	pthread_mutex_unlock(&ch->lock);
	return st;
}

/* ---- slots ---- */

static void async_cb(void *arg);

static chan_slot *slot_get(rpc_channel *ch, int async)
{
	pthread_mutex_lock(&ch->lock);
	if (ch->closing) {
		pthread_mutex_unlock(&ch->lock);
		return NULL;
	}
	chan_slot **list = async ? &ch->free_async : &ch->free_sync;
	chan_slot *s = *list;
	ch->started = 1;
	if (s != NULL) {
		*list = s->next_free;
		ch->inflight++;
		pthread_mutex_unlock(&ch->lock);
		return s;
	}
	if (ch->inflight >= RPC_CLIENT_MAX_INFLIGHT) {
		pthread_mutex_unlock(&ch->lock);
		return NULL;
	}
	ch->inflight++; /* reserved now, so close waits for this call too */
	pthread_mutex_unlock(&ch->lock);
	s = calloc(1, sizeof(*s));
	if (s != NULL) {
		s->ch = ch;
		s->async = async;
		if (nng_aio_alloc(&s->aio, async ? async_cb : NULL, s) != 0) {
			free(s);
			s = NULL;
		} else if (nng_ctx_open(&s->ctx, ch->sock) != 0) {
			nng_aio_free(s->aio);
			free(s);
			s = NULL;
		}
	}
	pthread_mutex_lock(&ch->lock);
	if (s != NULL) {
		s->next_all = ch->all;
		ch->all = s;
	} else {
		ch->inflight--;
		pthread_cond_broadcast(&ch->cv);
	}
	pthread_mutex_unlock(&ch->lock);
	return s;
}

static void slot_put(rpc_channel *ch, chan_slot *s)
{
	pthread_mutex_lock(&ch->lock);
	if (s->async) {
		s->next_free = ch->free_async;
		ch->free_async = s;
	} else {
		s->next_free = ch->free_sync;
		ch->free_sync = s;
	}
	ch->inflight--;
	pthread_cond_broadcast(&ch->cv);
	pthread_mutex_unlock(&ch->lock);
}

/* ---- metrics ---- */

static rpc_method_stats *stats_for(rpc_channel *ch, const rpc_method_desc *m)
{
	pthread_mutex_lock(&ch->lock);
	chan_stats *s;
	for (s = ch->stats; s != NULL; s = s->next) {
		if (s->method == m)
			break;
	}
	if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
		s->method = m;
		s->stats.method = m->path;
		s->next = ch->stats;
		ch->stats = s;
	}
	pthread_mutex_unlock(&ch->lock);
	return s ? &s->stats : NULL;
}

static void finish(rpc_channel *ch, const rpc_method_desc *m, rpc_status st, uint64_t start_us)
{
	uint64_t us = rpc_now_us() - start_us;
	rpc_method_stats *s = stats_for(ch, m);
	if (s != NULL)
		rpc_stats_record(s, st, us);
	for (size_t i = 0; i < ch->n_interceptors; i++) {
		if (ch->interceptors[i].after != NULL)
			ch->interceptors[i].after(m, st, us, ch->interceptors[i].arg);
	}
}

void rpc_channel_metrics(rpc_channel *ch, rpc_metrics_fn fn, void *arg)
{
	if (ch == NULL || fn == NULL)
		return;
	pthread_mutex_lock(&ch->lock);
	for (chan_stats *s = ch->stats; s != NULL; s = s->next)
		rpc_stats_report(&s->stats, fn, arg);
	pthread_mutex_unlock(&ch->lock);
}

/* ---- building a request ---- */

/*
 * Validate the arguments, run the `before` interceptors, and encode the
 * request frame into *out. On failure returns the status and a static
 * message in *why.
 */
static rpc_status build_request(rpc_channel *ch, const rpc_method_desc *method,
                                const ProtobufCMessage *req, const rpc_call_opts *opts,
                                uint32_t timeout_ms, nng_msg **out, const char **why)
{
	*out = NULL;
	if (req == NULL || req->descriptor != method->input) {
		*why = "request is not a message of the method's input type";
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	rpc_metadata_entry md[RPC_CLIENT_MAX_MD];
	size_t n_md = 0;
	if (opts != NULL && opts->n_metadata > 0) {
		if (opts->metadata == NULL || opts->n_metadata > RPC_CLIENT_MAX_MD) {
			*why = "too many metadata entries";
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		memcpy(md, opts->metadata, opts->n_metadata * sizeof(*md));
		n_md = opts->n_metadata;
	}
	for (size_t i = 0; i < ch->n_interceptors; i++) {
		if (ch->interceptors[i].before != NULL) {
			size_t cap = RPC_CLIENT_MAX_MD - n_md;
			size_t added = ch->interceptors[i].before(method, md + n_md, cap,
			                                          ch->interceptors[i].arg);
			n_md +=
			    added < cap ? added : cap; /* never trust a count past the room given */
		}
	}
	for (size_t i = 0; i < n_md; i++) {
		if (!rpc_wire_metadata_valid(md[i].key, md[i].value)) {
			*why = "invalid metadata key or value";
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	}
	size_t payload = protobuf_c_message_get_packed_size(req);
	if (payload > ch->opts.max_message) {
		*why = "request larger than the message size limit";
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	size_t size = rpc_wire_request_size(method->path, md, n_md, payload);
	if (size == 0) {
		*why = "request cannot be encoded";
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	nng_msg *msg;
	if (nng_msg_alloc(&msg, size) != 0) {
		*why = "out of memory";
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	uint8_t *body = nng_msg_body(msg);
	rpc_wire_encode_request(body, timeout_ms, method->path, md, n_md, payload);
	protobuf_c_message_pack(req, body + size - payload);
	*out = msg;
	return RPC_STATUS_OK;
}

static uint32_t remaining_ms(uint64_t deadline_us)
{
	uint64_t now = rpc_now_us();
	if (now >= deadline_us)
		return 0;
	uint64_t ms = (deadline_us - now + 999) / 1000;
	return ms > INT32_MAX ? INT32_MAX : (uint32_t)ms;
}

/* A resent request tells the server the time left, not the original
 * timeout: patch the frame's timeout field (bytes 4..7, little-endian). */
static void set_frame_timeout(nng_msg *msg, uint32_t ms)
{
	uint8_t *b = nng_msg_body(msg);
	if (nng_msg_len(msg) < RPC_WIRE_REQUEST_FIXED)
		return;
	b[4] = (uint8_t)ms;
	b[5] = (uint8_t)(ms >> 8);
	b[6] = (uint8_t)(ms >> 16);
	b[7] = (uint8_t)(ms >> 24);
}

/* How long a send may wait: no longer than connect_wait when no peer is
 * connected, so a call to nobody fails UNAVAILABLE early. */
static nng_duration send_timeout(rpc_channel *ch, uint64_t deadline_us, int *no_peer)
{
	uint32_t rem = remaining_ms(deadline_us);
	pthread_mutex_lock(&ch->lock);
	*no_peer = ch->n_pipes == 0;
	pthread_mutex_unlock(&ch->lock);
	if (*no_peer && ch->opts.connect_wait_ms < rem)
		rem = ch->opts.connect_wait_ms;
	return (nng_duration)rem;
}

static rpc_status send_error(rpc_channel *ch, int rv, int no_peer, const char **why)
{
	int peers;
	pthread_mutex_lock(&ch->lock);
	peers = ch->n_pipes;
	pthread_mutex_unlock(&ch->lock);
	if (rv == NNG_ETIMEDOUT && (no_peer || peers == 0)) {
		*why = "no server reachable";
		return RPC_STATUS_UNAVAILABLE;
	}
	*why = rv == NNG_ETIMEDOUT ? "deadline exceeded" : nng_strerror(rv);
	return rpc_status_from_nng(rv);
}

/* ---- synchronous calls ---- */

rpc_status rpc_channel_call(rpc_channel *ch, const rpc_method_desc *method,
                            const ProtobufCMessage *req, const rpc_call_opts *opts,
                            rpc_reply **reply)
{
	if (reply == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*reply = NULL;
	if (ch == NULL || method == NULL) {
		*reply = rpc_reply_new_status(RPC_STATUS_INVALID_ARGUMENT, "no channel or method");
		return *reply ? RPC_STATUS_INVALID_ARGUMENT : RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	uint64_t start = rpc_now_us();
	uint32_t timeout =
	    (opts && opts->timeout_ms) ? opts->timeout_ms : ch->opts.default_timeout_ms;
	uint64_t deadline = start + (uint64_t)timeout * 1000u;
	uint32_t retries =
	    (opts && (method->flags & RPC_METHOD_IDEMPOTENT)) ? opts->max_retries : 0;
	const char *why = NULL;
	nng_msg *msg = NULL;
	rpc_status st = build_request(ch, method, req, opts, timeout, &msg, &why);
	rpc_reply *r = NULL;
	chan_slot *s = NULL;
	if (st != RPC_STATUS_OK)
		goto done;
	if ((s = slot_get(ch, 0)) == NULL) {
		st = RPC_STATUS_UNAVAILABLE;
		why = "channel closed, out of memory, or too many calls in flight";
		goto done;
	}
	for (;;) {
		nng_msg *copy = NULL;
		if (retries > 0 && nng_msg_dup(&copy, msg) != 0)
			copy = NULL;
		int no_peer;
		nng_aio_set_timeout(s->aio, send_timeout(ch, deadline, &no_peer));
		nng_aio_set_msg(s->aio, msg);
		msg = NULL;
		nng_ctx_send(s->ctx, s->aio);
		nng_aio_wait(s->aio);
		int rv = nng_aio_result(s->aio);
		if (rv != 0) {
			nng_msg *back = nng_aio_get_msg(s->aio); /* ours again on failure */
			if (back != NULL)
				nng_msg_free(back);
			nng_aio_set_msg(s->aio, NULL);
			st = send_error(ch, rv, no_peer, &why);
		} else {
			nng_aio_set_timeout(s->aio, (nng_duration)remaining_ms(deadline));
			nng_ctx_recv(s->ctx, s->aio);
			nng_aio_wait(s->aio);
			rv = nng_aio_result(s->aio);
			if (rv == 0) {
				nng_msg *rep = nng_aio_get_msg(s->aio);
				nng_aio_set_msg(s->aio, NULL);
				r = rpc_reply_decode(method, nng_msg_body(rep), nng_msg_len(rep),
				                     ch->opts.max_message);
				nng_msg_free(rep);
				st = rpc_reply_status(r);
				why = NULL;
			} else {
				st = rpc_status_from_nng(rv);
				why = rv == NNG_ETIMEDOUT ? "deadline exceeded"
				                          : "connection to the server lost";
			}
		}
		if (st == RPC_STATUS_UNAVAILABLE && r == NULL && rv != NNG_ECLOSED && retries > 0 &&
		    copy != NULL && remaining_ms(deadline) > 0) {
			retries--;
			count_retry(ch);
			msg = copy;
			set_frame_timeout(msg, remaining_ms(deadline));
			continue;
		}
		if (copy != NULL)
			nng_msg_free(copy);
		break;
	}
done:
	if (msg != NULL)
		nng_msg_free(msg);
	if (r == NULL)
		r = rpc_reply_new_status(st, why);
	*reply = r;
	finish(ch, method, st, start);
	/* Last: once the slot is back, rpc_channel_close may free the channel. */
	if (s != NULL)
		slot_put(ch, s);
	return r ? st : RPC_STATUS_RESOURCE_EXHAUSTED;
}

/* ---- asynchronous calls ---- */

static void async_complete(chan_slot *s, rpc_reply *r, rpc_status st, const char *why)
{
	rpc_channel *ch = s->ch;
	rpc_reply_fn done = s->done;
	void *arg = s->arg;
	const rpc_method_desc *m = s->method;
	uint64_t start = s->start_us;
	if (s->retry_copy != NULL) {
		nng_msg_free(s->retry_copy);
		s->retry_copy = NULL;
	}
	if (r == NULL)
		r = rpc_reply_new_status(st, why);
	finish(ch, m, r ? rpc_reply_status(r) : RPC_STATUS_RESOURCE_EXHAUSTED, start);
	/* The slot goes back before the callback: the callback may start
	 * another call, or close nothing. */
	slot_put(ch, s);
	done(r, arg);
}

static void async_send(chan_slot *s, nng_msg *msg)
{
	int no_peer;
	s->state = SLOT_SEND;
	nng_aio_set_timeout(s->aio, send_timeout(s->ch, s->deadline_us, &no_peer));
	nng_aio_set_msg(s->aio, msg);
	nng_ctx_send(s->ctx, s->aio);
}

static void async_cb(void *arg)
{
	chan_slot *s = arg;
	rpc_channel *ch = s->ch;
	int rv = nng_aio_result(s->aio);
	const char *why = NULL;
	rpc_status st;

	if (s->state == SLOT_SEND) {
		if (rv == 0) {
			s->state = SLOT_RECV;
			nng_aio_set_timeout(s->aio, (nng_duration)remaining_ms(s->deadline_us));
			nng_ctx_recv(s->ctx, s->aio);
			return;
		}
		nng_msg *back = nng_aio_get_msg(s->aio); /* ours again on failure */
		if (back != NULL)
			nng_msg_free(back);
		nng_aio_set_msg(s->aio, NULL);
		st = send_error(ch, rv, 0, &why);
	} else {
		if (rv == 0) {
			nng_msg *rep = nng_aio_get_msg(s->aio);
			nng_aio_set_msg(s->aio, NULL);
			rpc_reply *r = rpc_reply_decode(s->method, nng_msg_body(rep),
			                                nng_msg_len(rep), ch->opts.max_message);
			nng_msg_free(rep);
			async_complete(s, r, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		st = rpc_status_from_nng(rv);
		why = rv == NNG_ETIMEDOUT ? "deadline exceeded" : "connection to the server lost";
	}
	if (st == RPC_STATUS_UNAVAILABLE && rv != NNG_ECLOSED && s->retries_left > 0 &&
	    s->retry_copy != NULL && remaining_ms(s->deadline_us) > 0) {
		nng_msg *again = s->retry_copy;
		s->retry_copy = NULL;
		s->retries_left--;
		count_retry(s->ch);
		if (s->retries_left > 0 && nng_msg_dup(&s->retry_copy, again) != 0)
			s->retry_copy = NULL;
		set_frame_timeout(again, remaining_ms(s->deadline_us));
		async_send(s, again);
		return;
	}
	if (rv == NNG_ECLOSED)
		why = "channel closed";
	async_complete(s, NULL, st, why);
}

rpc_status rpc_channel_call_async(rpc_channel *ch, const rpc_method_desc *method,
                                  const ProtobufCMessage *req, const rpc_call_opts *opts,
                                  rpc_reply_fn done, void *arg)
{
	if (ch == NULL || method == NULL || done == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	uint64_t start = rpc_now_us();
	uint32_t timeout =
	    (opts && opts->timeout_ms) ? opts->timeout_ms : ch->opts.default_timeout_ms;
	const char *why;
	nng_msg *msg;
	rpc_status st = build_request(ch, method, req, opts, timeout, &msg, &why);
	if (st != RPC_STATUS_OK)
		return st;
	chan_slot *s = slot_get(ch, 1);
	if (s == NULL) {
		nng_msg_free(msg);
		return RPC_STATUS_UNAVAILABLE;
	}
	s->method = method;
	s->done = done;
	s->arg = arg;
	s->start_us = start;
	s->deadline_us = start + (uint64_t)timeout * 1000u;
	s->retries_left = (opts && (method->flags & RPC_METHOD_IDEMPOTENT)) ? opts->max_retries : 0;
	s->retry_copy = NULL;
	if (s->retries_left > 0 && nng_msg_dup(&s->retry_copy, msg) != 0)
		s->retry_copy = NULL;
	async_send(s, msg);
	return RPC_STATUS_OK;
}

void rpc_channel_close(rpc_channel *ch)
{
	if (ch == NULL)
		return;
	pthread_mutex_lock(&ch->lock);
	ch->closing = 1;
	pthread_mutex_unlock(&ch->lock);
	/* Completes every pending aio with NNG_ECLOSED: their callbacks run. */
	nng_close(ch->sock);
	pthread_mutex_lock(&ch->lock);
	while (ch->inflight > 0)
		pthread_cond_wait(&ch->cv, &ch->lock);
	chan_slot *s = ch->all;
	ch->all = NULL;
	pthread_mutex_unlock(&ch->lock);
	while (s != NULL) {
		chan_slot *next = s->next_all;
		nng_aio_free(s->aio); /* waits for a callback still returning */
		if (s->retry_copy != NULL)
			nng_msg_free(s->retry_copy);
		free(s);
		s = next;
	}
	chan_stats *cs = ch->stats;
	while (cs != NULL) {
		chan_stats *next = cs->next;
		free(cs);
		cs = next;
	}
	pthread_cond_destroy(&ch->cv);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}
