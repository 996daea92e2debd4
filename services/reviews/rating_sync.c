/*
 * rating_sync.c - the consumer "reviews.rating_sync": keeps each product's
 * rating average and count in the catalog equal to what the reviews table
 * says, and the thread that runs it.
 *
 * For every ReviewCreated or ReviewDeleted event of reviews.outbox it
 * recomputes the product's count and average from the reviews table (on
 * the consumer's connection, so from committed reviews only) and sets
 * them with CatalogService.SetProductRating. Absolute values make the
 * effect idempotent and independent of the order of events: a redelivered
 * or late event sets what is true now. When the catalog fails, the
 * handler fails and the event log retries the event with its backoff;
 * the events behind it wait, so the last value set is always the newest.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "reviews.h"
#include "reviews_remote.h"
#include "reviews_store.h"

#define RV_DEFAULT_ATTEMPTS   20u
#define RV_DEFAULT_BACKOFF_MS 500u
#define RV_IDLE_WAIT_MS       1000u

struct reviews_state {
	ev_consumer *rating;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* signalled by reviews_stop */
	pthread_t thread;
	int running; /* a thread was started and not yet joined */
	int stop;    /* the thread must leave its loop */
};

/* ---- the handler ---- */

/* The product named by a review event; 0 for other types and for a
 * payload that does not decode (which no retry would mend). */
static int event_product(const ev_event *ev, char out[ID_UUID_LEN + 1])
{
	const ProtobufCMessageDescriptor *d;
	if (strcmp(ev->type, "panthera.events.v1.ReviewCreated") == 0)
		d = &panthera__events__v1__review_created__descriptor;
	else if (strcmp(ev->type, "panthera.events.v1.ReviewDeleted") == 0)
		d = &panthera__events__v1__review_deleted__descriptor;
	else
		return 0; /* not ours to know */
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, ev->payload_len, ev->payload);
	const char *product = NULL;
	if (m != NULL)
		product = d == &panthera__events__v1__review_created__descriptor
		              ? ((Panthera__Events__V1__ReviewCreated *)m)->product_id
		              : ((Panthera__Events__V1__ReviewDeleted *)m)->product_id;
	int ok = product != NULL && id_is_uuid(product);
	if (ok)
		snprintf(out, ID_UUID_LEN + 1, "%s", product);
	else
		log_write(LOG_ERROR, NULL, "reviews.rating_sync",
		          "event %s (%s) names no product: skipped", ev->id, ev->type);
	protobuf_c_message_free_unpacked(m, NULL);
	return ok;
}

/* The mean of `count` ratings summing to `sum` with one decimal place,
 * rounded half up: "4.5"; "0.0" without ratings. */
static void format_average(char out[8], int64_t count, int64_t sum)
{
	int64_t tenths = count > 0 ? (sum * 20 + count) / (2 * count) : 0;
	snprintf(out, 8, "%d.%d", (int)(tenths / 10), (int)(tenths % 10));
}

static rpc_status rating_apply(db_conn *conn, const ev_event *ev, void *arg)
{
	reviews_service *svc = arg;
	char product[ID_UUID_LEN + 1];
	if (!event_product(ev, product))
		return RPC_STATUS_OK;
	int64_t count, sum;
	rpc_status st = reviews_store_summary(conn, product, &count, &sum);
	if (st != RPC_STATUS_OK)
		return st;
	if (count > INT32_MAX) /* not with one review per user */
		return RPC_STATUS_OUT_OF_RANGE;
	char average[8];
	format_average(average, count, sum);
	st = reviews_remote_set_rating(svc->catalog, product, average, (int32_t)count);
	if (st == RPC_STATUS_NOT_FOUND) {
		/* products are only soft-deleted: a product the catalog never had
		 * has nothing to show a rating on */
		log_write(LOG_WARN, NULL, "reviews.rating_sync",
		          "product %s is unknown to the catalog: rating not set", product);
		return RPC_STATUS_OK;
	}
	if (st != RPC_STATUS_OK)
		log_write(LOG_WARN, NULL, "reviews.rating_sync",
		          "SetProductRating(%s, %s, %d) answered %s: retried later", product,
		          average, (int)count, rpc_status_name(st));
	return st;
}

/* ---- set-up ---- */

rpc_status reviews_service_init(reviews_service *svc)
{
	if (svc == NULL || svc->pool == NULL || svc->catalog == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (svc->state != NULL)
		return RPC_STATUS_OK;
	rpc_status st = ev_outbox_setup(svc->pool, REVIEWS_SCHEMA);
	if (st != RPC_STATUS_OK)
		return st;
	reviews_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0) {
		free(s);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int cond_ok = pthread_cond_init(&s->wake, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!cond_ok) {
		free(s);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		pthread_cond_destroy(&s->wake);
		free(s);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	ev_consumer_opts o = {
	    .name = REVIEWS_RATING_CONSUMER,
	    .source = svc->pool,
	    .source_schema = REVIEWS_SCHEMA,
	    .own = svc->pool,
	    .own_schema = REVIEWS_SCHEMA,
	    .handler = rating_apply,
	    .arg = svc,
	    .max_attempts =
	        svc->rating_max_attempts ? svc->rating_max_attempts : RV_DEFAULT_ATTEMPTS,
	    .backoff_ms = svc->rating_backoff_ms ? svc->rating_backoff_ms : RV_DEFAULT_BACKOFF_MS,
	};
	if ((st = ev_consumer_open(&s->rating, &o)) != RPC_STATUS_OK) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->wake);
		free(s);
		return st;
	}
	svc->state = s;
	return RPC_STATUS_OK;
}

ev_consumer *reviews_rating_consumer(reviews_service *svc)
{
	return svc != NULL && svc->state != NULL ? svc->state->rating : NULL;
}

void reviews_service_close(reviews_service *svc)
{
	if (svc == NULL || svc->state == NULL)
		return;
	reviews_stop(svc);
	reviews_state *s = svc->state;
	ev_consumer_close(s->rating);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
	svc->state = NULL;
}

/* ---- running ---- */

rpc_status reviews_process_events(reviews_service *svc, unsigned *handled)
{
	if (handled != NULL)
		*handled = 0;
	if (svc == NULL || svc->state == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	reviews_state *s = svc->state;
	pthread_mutex_lock(&s->lock);
	int running = s->running;
	pthread_mutex_unlock(&s->lock);
	if (running)
		return RPC_STATUS_FAILED_PRECONDITION;
	return ev_consume_once(s->rating, handled);
}

/* Sleep `ms` or until reviews_stop(); 1 when told to stop. */
static int pause_unless_stopped(reviews_state *s, uint32_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->lock);
	while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &until) == 0)
		;
	int stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

static int stopping(reviews_state *s)
{
	pthread_mutex_lock(&s->lock);
	int stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

static void *rating_loop(void *arg)
{
	reviews_state *s = arg;
	while (!stopping(s)) {
		unsigned n = 0;
		rpc_status st = ev_consume_once(s->rating, &n);
		if (st != RPC_STATUS_OK) {
			log_write(LOG_WARN, NULL, "reviews.rating_sync", "consumer failed: %s",
			          rpc_status_name(st));
			pause_unless_stopped(s, RV_IDLE_WAIT_MS);
		} else if (n == 0 && ev_wait(s->rating, RV_IDLE_WAIT_MS) != RPC_STATUS_OK) {
			pause_unless_stopped(s, RV_IDLE_WAIT_MS); /* no LISTEN: poll */
		}
	}
	return NULL;
}

rpc_status reviews_start(reviews_service *svc)
{
	if (svc == NULL || svc->state == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	reviews_state *s = svc->state;
	pthread_mutex_lock(&s->lock);
	rpc_status st = RPC_STATUS_OK;
	if (s->running) {
		st = RPC_STATUS_FAILED_PRECONDITION;
	} else {
		s->stop = 0;
		if (pthread_create(&s->thread, NULL, rating_loop, s) != 0)
			st = RPC_STATUS_INTERNAL;
		else
			s->running = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return st;
}

void reviews_stop(reviews_service *svc)
{
	if (svc == NULL || svc->state == NULL)
		return;
	reviews_state *s = svc->state;
	pthread_mutex_lock(&s->lock);
	if (!s->running) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->stop = 1;
	pthread_cond_broadcast(&s->wake);
	pthread_t t = s->thread;
	pthread_mutex_unlock(&s->lock);
	pthread_join(t, NULL);
	pthread_mutex_lock(&s->lock);
	s->running = 0;
	s->stop = 0;
	pthread_mutex_unlock(&s->lock);
}
