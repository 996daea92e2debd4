/*
 * nng_echo.c - the floor nng itself sets: a bare REQ/REP echo, the 100-byte
 * payload as the whole message (no header, no protobuf).
 *
 * Built twice: with -DECHO_ROLE_SERVER it is nng_echo_server, otherwise
 * nng_echo_client; the command line is echo_bench.h's.
 *
 * Server: a REP socket with NNG_ECHO_SERVER_CTXS contexts, each driven by
 * its own aio callback (recv -> send the same message back -> recv).
 * Client seq: one REQ socket, nng_sendmsg() then nng_recvmsg().
 * Client par: K contexts on one REQ socket, each an aio callback chain
 * (send -> recv -> send the next call) sharing one call counter.
 * REQ's resend is turned off (NNG_OPT_REQ_RESENDTIME infinite) before any
 * context is opened: nothing runs twice, and 1.5.2 arms no timer per request.
 *
 * inproc:// does not cross processes, so for an inproc URL the client starts
 * the server inside its own process; its RSS then covers both.
 */
#include "echo_bench.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Contexts the server keeps receiving on: at least the 64 calls in flight. */
#define NNG_ECHO_SERVER_CTXS 64

/* ---- server ----------------------------------------------------------------- */

enum nng_echo_step { NNG_ECHO_RECV, NNG_ECHO_SEND };

struct nng_echo_worker {
	nng_ctx ctx;             /* one REP context */
	nng_aio *aio;            /* its only aio; callback nng_echo_worker_cb */
	enum nng_echo_step step; /* what the pending aio operation is */
};

struct nng_echo_server {
	nng_socket sock;
	struct nng_echo_worker workers[NNG_ECHO_SERVER_CTXS];
};

/*
 * One step of a worker. Ends the chain on NNG_ECLOSED (the socket is closing)
 * or NNG_ECANCELED (the aio is stopping); any other error only loses that
 * one request, so the worker goes back to receiving.
 */
static void nng_echo_worker_cb(void *arg)
{
	struct nng_echo_worker *w = arg;
	int rv = nng_aio_result(w->aio);

	if (w->step == NNG_ECHO_RECV) {
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		if (rv == 0) {
			/* The request becomes the reply: the aio still holds it. */
			nng_aio_set_msg(w->aio, nng_aio_get_msg(w->aio));
			w->step = NNG_ECHO_SEND;
			nng_ctx_send(w->ctx, w->aio);
			return;
		}
	} else {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(w->aio)); /* still ours on failure */
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
	}
	w->step = NNG_ECHO_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* Stops and frees what nng_echo_server_start() made; the socket must be open or zero. */
static void nng_echo_server_stop(struct nng_echo_server *srv)
{
	/* Closing the socket completes every pending aio with NNG_ECLOSED. */
	if (nng_socket_id(srv->sock) > 0)
		nng_close(srv->sock);
	for (size_t i = 0; i < NNG_ECHO_SERVER_CTXS; i++) {
		if (srv->workers[i].aio != NULL)
			nng_aio_free(srv->workers[i].aio); /* waits for a running callback */
		srv->workers[i].aio = NULL;
	}
}

/* Opens, listens on `url` and starts every worker; exits 1 on failure. */
static void nng_echo_server_start(struct nng_echo_server *srv, const char *url)
{
	int rv;

	memset(srv, 0, sizeof(*srv));
	rv = nng_rep0_open(&srv->sock);
	if (rv != 0)
		echo_bench_die("nng_rep0_open: %s", nng_strerror(rv));
	for (size_t i = 0; i < NNG_ECHO_SERVER_CTXS; i++) {
		struct nng_echo_worker *w = &srv->workers[i];

		rv = nng_aio_alloc(&w->aio, nng_echo_worker_cb, w);
		if (rv != 0)
			echo_bench_die("nng_aio_alloc: %s", nng_strerror(rv));
		rv = nng_ctx_open(&w->ctx, srv->sock);
		if (rv != 0)
			echo_bench_die("nng_ctx_open: %s", nng_strerror(rv));
	}
	rv = nng_listen(srv->sock, url, NULL, 0);
	if (rv != 0)
		echo_bench_die("nng_listen %s: %s", url, nng_strerror(rv));
	for (size_t i = 0; i < NNG_ECHO_SERVER_CTXS; i++) {
		srv->workers[i].step = NNG_ECHO_RECV;
		nng_ctx_recv(srv->workers[i].ctx, srv->workers[i].aio);
	}
}

/* ---- client ----------------------------------------------------------------- */

/* Opens a REQ socket without resend and with bounded waits, dialed to `url`. */
static nng_socket nng_echo_client_open(const char *url)
{
	nng_socket sock;
	uint64_t give_up = echo_bench_now_ns() + (uint64_t)ECHO_BENCH_DIAL_RETRY_MS * 1000000u;
	int rv;

	rv = nng_req0_open(&sock);
	if (rv != 0)
		echo_bench_die("nng_req0_open: %s", nng_strerror(rv));
	/* Before any context is opened: contexts copy it when they are made. */
	rv = nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (rv == 0)
		rv = nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, ECHO_BENCH_TIMEOUT_MS);
	if (rv == 0)
		rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, ECHO_BENCH_TIMEOUT_MS);
	if (rv != 0)
		echo_bench_die("nng_socket_set_ms: %s", nng_strerror(rv));
	for (;;) {
		struct timespec pause = {0, 20 * 1000000};

		rv = nng_dial(sock, url, NULL, 0);
		if (rv == 0)
			break;
		if ((rv != NNG_ECONNREFUSED && rv != NNG_ENOENT) || echo_bench_now_ns() > give_up)
			echo_bench_die("nng_dial %s: %s", url, nng_strerror(rv));
		nanosleep(&pause, NULL);
	}
	return sock;
}

/* A new request message holding the payload; exits 1 when out of memory. */
static nng_msg *nng_echo_request(const uint8_t *payload)
{
	nng_msg *msg;
	int rv;

	rv = nng_msg_alloc(&msg, 0);
	if (rv != 0)
		echo_bench_die("nng_msg_alloc: %s", nng_strerror(rv));
	rv = nng_msg_append(msg, payload, ECHO_BENCH_PAYLOAD_LEN);
	if (rv != 0)
		echo_bench_die("nng_msg_append: %s", nng_strerror(rv));
	return msg;
}

/* Checks and frees a reply; exits 1 if it is not the payload. */
static void nng_echo_check_reply(nng_msg *reply)
{
	int ok = echo_bench_payload_ok(nng_msg_body(reply), nng_msg_len(reply));

	nng_msg_free(reply);
	if (!ok)
		echo_bench_die("reply differs from the request");
}

/* `calls` calls one at a time; records them in `samples` unless it is NULL. */
static void nng_echo_run_seq(nng_socket sock, const uint8_t *payload, size_t calls,
                             struct echo_bench_samples *samples)
{
	for (size_t i = 0; i < calls; i++) {
		uint64_t t0 = echo_bench_now_ns();
		nng_msg *msg = nng_echo_request(payload);
		nng_msg *reply;
		int rv;

		rv = nng_sendmsg(sock, msg, 0);
		if (rv != 0) {
			nng_msg_free(msg); /* still ours on failure */
			echo_bench_die("nng_sendmsg: %s", nng_strerror(rv));
		}
		rv = nng_recvmsg(sock, &reply, 0);
		if (rv != 0)
			echo_bench_die("nng_recvmsg: %s", nng_strerror(rv));
		nng_echo_check_reply(reply);
		if (samples != NULL)
			echo_bench_samples_set(samples, i, echo_bench_now_ns() - t0);
	}
}

/* One run of parallel calls: `total` calls shared by every caller. */
struct nng_echo_run {
	const uint8_t *payload;
	size_t total;
	struct echo_bench_samples *samples; /* NULL: warm-up, not recorded */
	atomic_size_t issued;               /* calls started */
	atomic_size_t done;                 /* calls completed, also the sample index */
	pthread_mutex_t mu;                 /* guards finished and error */
	pthread_cond_t cv;                  /* signalled when finished is set */
	bool finished;                      /* every call done, or one failed */
	const char *error;                  /* the first failure, static text */
	int nng_error;                      /* its nng error, 0 if none */
};

/* One context of the parallel client and its aio callback chain. */
struct nng_echo_caller {
	nng_ctx ctx;
	nng_aio *aio;
	enum nng_echo_step step;  /* what the pending aio operation is */
	uint64_t t0;              /* when the current call started */
	struct nng_echo_run *run; /* set by the main thread while no call is pending */
};

/* Ends the run: every call is done, or `error` (static text) failed it. */
static void nng_echo_run_finish(struct nng_echo_run *run, const char *error, int nng_error)
{
	pthread_mutex_lock(&run->mu);
	if (!run->finished) {
		run->finished = true;
		run->error = error;
		run->nng_error = nng_error;
	}
	pthread_cond_signal(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

/* Starts the caller's next call, if the run has one left. */
static void nng_echo_caller_next(struct nng_echo_caller *c)
{
	struct nng_echo_run *run = c->run;

	if (atomic_fetch_add(&run->issued, 1) >= run->total)
		return;
	c->t0 = echo_bench_now_ns();
	nng_aio_set_msg(c->aio, nng_echo_request(run->payload));
	c->step = NNG_ECHO_SEND;
	nng_ctx_send(c->ctx, c->aio);
}

static void nng_echo_caller_cb(void *arg)
{
	struct nng_echo_caller *c = arg;
	struct nng_echo_run *run = c->run;
	int rv = nng_aio_result(c->aio);
	nng_msg *reply;
	size_t index;

	if (c->step == NNG_ECHO_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio)); /* still ours on failure */
			nng_echo_run_finish(run, "nng_ctx_send", rv);
			return;
		}
		c->step = NNG_ECHO_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (rv != 0) {
		nng_echo_run_finish(run, "nng_ctx_recv", rv);
		return;
	}
	reply = nng_aio_get_msg(c->aio);
	if (!echo_bench_payload_ok(nng_msg_body(reply), nng_msg_len(reply))) {
		nng_msg_free(reply);
		nng_echo_run_finish(run, "reply differs from the request", 0);
		return;
	}
	nng_msg_free(reply);
	index = atomic_fetch_add(&run->done, 1);
	if (run->samples != NULL)
		echo_bench_samples_set(run->samples, index, echo_bench_now_ns() - c->t0);
	if (index + 1 == run->total) {
		nng_echo_run_finish(run, NULL, 0);
		return;
	}
	nng_echo_caller_next(c);
}

/* `calls` calls over `n` callers; records them in `samples` unless it is NULL. */
static void nng_echo_run_par(struct nng_echo_caller *callers, size_t n, const uint8_t *payload,
                             size_t calls, struct echo_bench_samples *samples)
{
	struct nng_echo_run run = {.payload = payload, .total = calls, .samples = samples};
	struct timespec deadline;
	pthread_condattr_t attr;
	int rv = 0;

	atomic_init(&run.issued, 0);
	atomic_init(&run.done, 0);
	if (pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&run.cv, &attr) != 0 || pthread_mutex_init(&run.mu, NULL) != 0)
		echo_bench_die("pthread init failed");
	pthread_condattr_destroy(&attr);
	for (size_t i = 0; i < n; i++)
		callers[i].run = &run;
	for (size_t i = 0; i < n; i++)
		nng_echo_caller_next(&callers[i]);

	/* The whole run may take at most ECHO_BENCH_TIMEOUT_MS per 10,000 calls, at least that. */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)(ECHO_BENCH_TIMEOUT_MS / 1000 * (1 + calls / 10000));
	pthread_mutex_lock(&run.mu);
	while (!run.finished && rv == 0)
		rv = pthread_cond_timedwait(&run.cv, &run.mu, &deadline);
	pthread_mutex_unlock(&run.mu);
	if (!run.finished)
		echo_bench_die("parallel run timed out: %s", strerror(rv));

	/* At once: other callers may be waiting for replies that will never come. */
	if (run.error != NULL)
		echo_bench_die("%s: %s", run.error,
		               run.nng_error ? nng_strerror(run.nng_error) : "");
	/* A callback may still be returning; none touches `run` once this is done. */
	for (size_t i = 0; i < n; i++)
		nng_aio_wait(callers[i].aio);
	pthread_cond_destroy(&run.cv);
	pthread_mutex_destroy(&run.mu);
}

int nng_echo_client_main(int argc, char **argv)
{
	struct echo_bench_args args;
	struct echo_bench_samples samples;
	struct nng_echo_server *inproc_server = NULL;
	struct nng_echo_caller *callers = NULL;
	uint8_t payload[ECHO_BENCH_PAYLOAD_LEN];
	nng_socket sock;
	uint64_t t0, wall;
	int rv;

	echo_bench_client_args(argc, argv, &args);
	echo_bench_payload_fill(payload);
	echo_bench_samples_init(&samples, args.calls);
	if (strncmp(args.url, "inproc://", 9) == 0) {
		inproc_server = calloc(1, sizeof(*inproc_server));
		if (inproc_server == NULL)
			echo_bench_die("out of memory");
		nng_echo_server_start(inproc_server, args.url);
	}
	sock = nng_echo_client_open(args.url);

	if (args.mode == ECHO_BENCH_SEQ) {
		nng_echo_run_seq(sock, payload, echo_bench_warmup_calls(args.calls), NULL);
		t0 = echo_bench_now_ns();
		nng_echo_run_seq(sock, payload, args.calls, &samples);
		wall = echo_bench_now_ns() - t0;
	} else {
		callers = calloc(args.inflight, sizeof(*callers));
		if (callers == NULL)
			echo_bench_die("out of memory");
		for (size_t i = 0; i < args.inflight; i++) {
			rv = nng_aio_alloc(&callers[i].aio, nng_echo_caller_cb, &callers[i]);
			if (rv != 0)
				echo_bench_die("nng_aio_alloc: %s", nng_strerror(rv));
			nng_aio_set_timeout(callers[i].aio, ECHO_BENCH_TIMEOUT_MS);
			rv = nng_ctx_open(&callers[i].ctx, sock);
			if (rv != 0)
				echo_bench_die("nng_ctx_open: %s", nng_strerror(rv));
		}
		nng_echo_run_par(callers, args.inflight, payload,
		                 echo_bench_warmup_calls(args.calls), NULL);
		t0 = echo_bench_now_ns();
		nng_echo_run_par(callers, args.inflight, payload, args.calls, &samples);
		wall = echo_bench_now_ns() - t0;
	}

	rv = nng_close(sock);
	if (rv != 0)
		echo_bench_die("nng_close: %s", nng_strerror(rv));
	if (callers != NULL) {
		for (size_t i = 0; i < args.inflight; i++)
			nng_aio_free(callers[i].aio);
		free(callers);
	}
	if (inproc_server != NULL) {
		nng_echo_server_stop(inproc_server);
		free(inproc_server);
	}
	echo_bench_report(&samples, wall);
	echo_bench_samples_free(&samples);
	return 0;
}

int nng_echo_server_main(int argc, char **argv)
{
	const char *url = echo_bench_server_args(argc, argv);
	struct nng_echo_server *srv;
	sigset_t stop;

	/* Before nng starts its threads, so that they inherit the blocked signals. */
	echo_bench_block_stop_signals(&stop);
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		echo_bench_die("out of memory");
	nng_echo_server_start(srv, url);
	echo_bench_wait_stop(&stop);
	nng_echo_server_stop(srv);
	free(srv);
	echo_bench_server_report();
	return 0;
}

int main(int argc, char **argv)
{
#ifdef ECHO_ROLE_SERVER
	return nng_echo_server_main(argc, argv);
#else
	return nng_echo_client_main(argc, argv);
#endif
}
