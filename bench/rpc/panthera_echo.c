/*
 * panthera_echo.c - Panthera's variant of the RPC benchmark: the same echo
 * as the others, through a generated service, rpc_server_* and rpc_channel_*
 * (so the protobuf encoding, the frame header, the worker hand-off and the
 * reply decoding are all counted). Built twice: -DECHO_ROLE_SERVER and
 * -DECHO_ROLE_CLIENT; the command lines are those of echo_bench.h. For an
 * inproc:// URL the client serves in its own process.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "echo_bench.h"
#include "pecho.panthera.h"

#ifndef PANTHERA_INLINE
#define PANTHERA_INLINE 1
#endif

static rpc_status echo_call(rpc_call *call, const Bench__V1__Blob *req, Bench__V1__Blob *resp,
                            void *user)
{
	(void)call;
	(void)user;
	resp->data = req->data; /* the request lives until the reply is encoded */
	return RPC_STATUS_OK;
}

static const bench_v1_echo_handlers handlers = {.call = echo_call};

static rpc_server *serve(const char *url)
{
	rpc_server *srv;
	/* The echo never blocks, so it runs inline (rpc_server_opts); the
	 * panthera_workers_echo build measures the worker-thread default. */
	rpc_server_opts o = {.workers = 2, .queue_len = 256, .inline_handlers = PANTHERA_INLINE};
	if (rpc_server_create(&srv, &o) != RPC_STATUS_OK ||
	    bench_v1_echo_register(srv, &handlers, NULL) != RPC_STATUS_OK ||
	    rpc_server_listen(srv, url) != RPC_STATUS_OK || rpc_server_start(srv) != RPC_STATUS_OK)
		echo_bench_die("cannot serve %s", url);
	return srv;
}

#ifdef ECHO_ROLE_SERVER
int main(int argc, char **argv)
{
	const char *url = echo_bench_server_args(argc, argv);
	sigset_t set;
	echo_bench_block_stop_signals(&set);
	rpc_server *srv = serve(url);
	echo_bench_wait_stop(&set);
	rpc_server_destroy(srv);
	echo_bench_server_report();
	return 0;
}
#else

static uint8_t payload[ECHO_BENCH_PAYLOAD_LEN];

static void check(rpc_status st, const rpc_reply *reply)
{
	const Bench__V1__Blob *b = bench_v1_echo_call_response(reply);
	if (st != RPC_STATUS_OK || b == NULL || !echo_bench_payload_ok(b->data.data, b->data.len))
		echo_bench_die("call failed: %s %s", rpc_status_name(st), rpc_reply_message(reply));
}

/* par mode: each completion records its latency and starts the next call. */
typedef struct par_state {
	rpc_channel *ch;
	Bench__V1__Blob req;
	struct echo_bench_samples *samples;
	size_t measured_from; /* calls before this index are warm-up */
	size_t total;
	atomic_size_t next;
	atomic_size_t done;
	uint64_t *start_ns; /* per call */
	struct call_ctx *ctxs;
} par_state;

typedef struct call_ctx {
	par_state *p;
	size_t index;
} call_ctx;

static void start_call(par_state *p);

static void par_done(rpc_reply *reply, void *arg)
{
	call_ctx *c = arg;
	par_state *p = c->p;
	uint64_t end = echo_bench_now_ns();
	check(rpc_reply_status(reply), reply);
	rpc_reply_free(reply);
	if (c->index >= p->measured_from)
		echo_bench_samples_set(p->samples, c->index - p->measured_from,
		                       end - p->start_ns[c->index]);
	atomic_fetch_add(&p->done, 1);
	start_call(p);
}

static void start_call(par_state *p)
{
	size_t i = atomic_fetch_add(&p->next, 1);
	if (i >= p->total)
		return;
	p->ctxs[i] = (call_ctx){p, i};
	p->start_ns[i] = echo_bench_now_ns();
	rpc_call_opts o = {.timeout_ms = ECHO_BENCH_TIMEOUT_MS};
	rpc_status st = bench_v1_echo_call_async(p->ch, &p->req, &o, par_done, &p->ctxs[i]);
	if (st != RPC_STATUS_OK)
		echo_bench_die("async call: %s", rpc_status_name(st));
}

int main(int argc, char **argv)
{
	struct echo_bench_args a;
	echo_bench_client_args(argc, argv, &a);
	rpc_server *srv = strncmp(a.url, "inproc://", 9) == 0 ? serve(a.url) : NULL;
	rpc_channel *ch;
	rpc_channel_opts co = {.connect_wait_ms = ECHO_BENCH_DIAL_RETRY_MS};
	if (rpc_channel_open(&ch, &a.url, 1, &co) != RPC_STATUS_OK)
		echo_bench_die("cannot open a channel to %s", a.url);
	echo_bench_payload_fill(payload);
	Bench__V1__Blob req = BENCH__V1__BLOB__INIT;
	req.data.data = payload;
	req.data.len = sizeof(payload);
	rpc_call_opts o = {.timeout_ms = ECHO_BENCH_TIMEOUT_MS};
	size_t warm = echo_bench_warmup_calls(a.calls);
	struct echo_bench_samples s;
	echo_bench_samples_init(&s, a.calls);
	uint64_t t0 = 0, t1;

	if (a.mode == ECHO_BENCH_SEQ) {
		for (size_t i = 0; i < warm + a.calls; i++) {
			if (i == warm)
				t0 = echo_bench_now_ns();
			uint64_t c0 = echo_bench_now_ns();
			rpc_reply *reply;
			rpc_status st = bench_v1_echo_call(ch, &req, &o, NULL, &reply);
			check(st, reply);
			rpc_reply_free(reply);
			if (i >= warm)
				echo_bench_samples_set(&s, i - warm, echo_bench_now_ns() - c0);
		}
		t1 = echo_bench_now_ns();
	} else {
		static par_state p;
		p.ch = ch;
		p.req = req;
		p.samples = &s;
		p.measured_from = warm;
		p.total = warm + a.calls;
		p.start_ns = calloc(p.total, sizeof(*p.start_ns));
		p.ctxs = calloc(p.total, sizeof(*p.ctxs));
		if (p.start_ns == NULL || p.ctxs == NULL)
			echo_bench_die("out of memory");
		t0 = echo_bench_now_ns();
		for (size_t k = 0; k < a.inflight; k++)
			start_call(&p);
		uint64_t limit = t0 + (uint64_t)ECHO_BENCH_TIMEOUT_MS * 6000000u;
		while (atomic_load(&p.done) < p.total) {
			struct timespec ts = {0, 200000};
			nanosleep(&ts, NULL);
			if (echo_bench_now_ns() > limit)
				echo_bench_die("par run did not finish");
		}
		t1 = echo_bench_now_ns();
		/* the warm-up calls ran inside the window: count the measured share */
		t1 = t0 + (t1 - t0) * a.calls / p.total;
		free(p.start_ns);
		free(p.ctxs);
	}
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	echo_bench_report(&s, t1 - t0);
	echo_bench_samples_free(&s);
	return 0;
}
#endif
