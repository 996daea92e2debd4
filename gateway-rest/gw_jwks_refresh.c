/*
 * gw_jwks_refresh.c - the JWKS refresher: one thread that fetches the auth
 * service's keys periodically and on demand, and installs them into a
 * gw_auth; see gw_auth.h.
 *
 * Design notes.
 *   - The event loops only ever take `lock` for a few instructions (to set
 *     `pending` and queue a callback); the thread never holds it while it
 *     fetches, so a slow or dead auth service cannot stall a request.
 *   - Rate limit: a fetch on demand starts no sooner than min_interval_ms
 *     after the previous fetch started. Requests in between only set
 *     `pending`: however many there are, they cost one fetch at the end of
 *     the interval. Periodic fetches (and retries after a failure) follow
 *     their own schedule, `next_due`.
 *   - A callback waits for the first fetch that starts after its request
 *     (a fetch already running may have read the JWKS before the key that
 *     request wants was published). Two arrays of max_waiters entries
 *     alternate: `waiting` collects requests while `batch` (the previous
 *     `waiting`) is being answered by the fetch in progress.
 *   - Every callback runs exactly once: with the status of its fetch, or
 *     CANCELLED at stop.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_auth.h"
#include "panthera/log.h"

#define DEF_PERIOD_MS   300000
#define DEF_INTERVAL_MS 5000
#define DEF_WAITERS     1024
#define MAX_RETRY_MS    60000 /* longest wait after a failed fetch */

typedef struct waiter {
	gw_jwks_done_fn done;
	void *arg;
} waiter;

struct gw_jwks_refresher {
	gw_auth *auth;
	gw_jwks_fetch_fn fetch;
	void *fetch_arg;
	int64_t period_ms, interval_ms;
	size_t max_waiters;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t wake;
	pthread_t thread;
	int stopping;
	int pending;           /* a request waits for a fetch */
	int started_once;      /* last_start_ms is meaningful */
	int64_t last_start_ms; /* monotonic start of the latest fetch */
	int64_t next_due_ms;   /* monotonic time of the next periodic fetch */
	unsigned failed_in_row;
	waiter *waiting; /* for the next fetch to start */
	size_t n_waiting;
	waiter *spare; /* the other array; NULL while a fetch answers it */
	gw_jwks_refresher_stats stats;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_until(gw_jwks_refresher *r, int64_t due_ms)
{
	struct timespec ts = {.tv_sec = due_ms / 1000, .tv_nsec = (due_ms % 1000) * 1000000};
	pthread_cond_timedwait(&r->wake, &r->lock, &ts);
}

/* The wait after the n-th failure in a row: interval, doubling, capped. */
static int64_t retry_ms(const gw_jwks_refresher *r)
{
	int64_t cap = r->period_ms < MAX_RETRY_MS ? r->period_ms : MAX_RETRY_MS;
	int64_t d = r->interval_ms;
	for (unsigned i = 1; i < r->failed_in_row && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

/* One fetch, unlocked; returns its status. */
static rpc_status fetch_and_install(gw_jwks_refresher *r)
{
	gw_keyset *ks = NULL;
	char err[256] = "";
	rpc_status st = r->fetch(r->fetch_arg, &ks, err, sizeof(err));
	if (st == RPC_STATUS_OK && gw_keyset_count(ks) == 0) {
		gw_keyset_release(ks);
		st = RPC_STATUS_FAILED_PRECONDITION;
		snprintf(err, sizeof(err), "the JWKS has no usable key; the previous keys stay");
	} else if (st == RPC_STATUS_OK) {
		int changed = 0;
		size_t n = gw_keyset_count(ks);
		st = gw_auth_install(r->auth, ks, &changed);
		if (st == RPC_STATUS_OK && changed)
			log_write(LOG_INFO, NULL, "gateway.jwks", "installed %zu signing keys", n);
	} else {
		gw_keyset_release(ks); /* a fetch that failed should have left none */
	}
	if (st != RPC_STATUS_OK)
		log_write(LOG_WARN, NULL, "gateway.jwks", "JWKS fetch failed: %s: %s",
		          rpc_status_name(st), err[0] ? err : "no message");
	return st;
}

static void *refresher_main(void *arg)
{
	gw_jwks_refresher *r = arg;
	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		int64_t now = mono_ms(), due = r->next_due_ms;
		if (r->pending) {
			int64_t soonest = r->started_once ? r->last_start_ms + r->interval_ms : now;
			if (soonest < due)
				due = soonest;
		}
		if (now < due) {
			wait_until(r, due);
			continue;
		}
		r->pending = 0;
		waiter *batch = r->waiting;
		size_t n = r->n_waiting;
		r->waiting = r->spare;
		r->spare = NULL;
		r->n_waiting = 0;
		r->last_start_ms = now;
		r->started_once = 1;
		r->stats.fetches++;
		pthread_mutex_unlock(&r->lock);

		rpc_status st = fetch_and_install(r);

		/* the outcome is in the stats before any callback runs */
		pthread_mutex_lock(&r->lock);
		r->stats.last_status = st;
		if (st == RPC_STATUS_OK) {
			r->stats.last_ok = (int64_t)time(NULL);
			r->failed_in_row = 0;
			r->next_due_ms = mono_ms() + r->period_ms;
		} else {
			r->stats.failures++;
			r->failed_in_row++;
			r->next_due_ms = mono_ms() + retry_ms(r);
		}
		pthread_mutex_unlock(&r->lock);
		for (size_t i = 0; i < n; i++)
			batch[i].done(batch[i].arg, st);
		pthread_mutex_lock(&r->lock);
		r->spare = batch;
	}
	waiter *left = r->waiting;
	size_t n = r->n_waiting;
	r->n_waiting = 0;
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < n; i++)
		left[i].done(left[i].arg, RPC_STATUS_CANCELLED);
	return NULL;
}

rpc_status gw_jwks_refresher_start(gw_jwks_refresher **out, gw_auth *auth, gw_jwks_fetch_fn fetch,
                                   void *fetch_arg, const gw_jwks_refresher_opts *opts)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	if (auth == NULL || fetch == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	gw_jwks_refresher *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	r->auth = auth;
	r->fetch = fetch;
	r->fetch_arg = fetch_arg;
	r->period_ms = opts && opts->period_ms ? opts->period_ms : DEF_PERIOD_MS;
	r->interval_ms = opts && opts->min_interval_ms ? opts->min_interval_ms : DEF_INTERVAL_MS;
	r->max_waiters = opts && opts->max_waiters ? opts->max_waiters : DEF_WAITERS;
	r->stats.last_status = RPC_STATUS_OK;
	r->waiting = calloc(r->max_waiters, sizeof(waiter));
	r->spare = calloc(r->max_waiters, sizeof(waiter));
	gw_keyset *have = gw_auth_keys(auth);
	r->next_due_ms = mono_ms() + (have != NULL ? r->period_ms : 0);
	gw_keyset_release(have);

	pthread_condattr_t ca;
	int locks = 0;
	if (r->waiting != NULL && r->spare != NULL && pthread_mutex_init(&r->lock, NULL) == 0) {
		locks = 1;
		if (pthread_condattr_init(&ca) == 0) {
			if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
			    pthread_cond_init(&r->wake, &ca) == 0)
				locks = 2;
			pthread_condattr_destroy(&ca);
		}
	}
	if (locks == 2 && pthread_create(&r->thread, NULL, refresher_main, r) == 0) {
		*out = r;
		return RPC_STATUS_OK;
	}
	if (locks == 2)
		pthread_cond_destroy(&r->wake);
	if (locks >= 1)
		pthread_mutex_destroy(&r->lock);
	free(r->waiting);
	free(r->spare);
	free(r);
	return RPC_STATUS_RESOURCE_EXHAUSTED;
}

rpc_status gw_jwks_refresher_request(gw_jwks_refresher *r, gw_jwks_done_fn done, void *arg)
{
	if (r == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = RPC_STATUS_OK;
	pthread_mutex_lock(&r->lock);
	if (r->stopping) {
		st = RPC_STATUS_UNAVAILABLE;
	} else {
		if (!r->pending) {
			r->pending = 1;
			pthread_cond_signal(&r->wake);
		}
		if (done != NULL && r->n_waiting == r->max_waiters)
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
		else if (done != NULL)
			r->waiting[r->n_waiting++] = (waiter){done, arg};
	}
	pthread_mutex_unlock(&r->lock);
	return st;
}

void gw_jwks_refresher_get_stats(gw_jwks_refresher *r, gw_jwks_refresher_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}

void gw_jwks_refresher_stop(gw_jwks_refresher *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r->waiting);
	free(r->spare);
	free(r);
}
