/*
 * consumer.c - the consumer "analytics.sales": folds the orders outbox's
 * OrderPaid and OrderRefunded into the daily aggregates, rebuilds them from
 * the log when they are empty, and runs in a background thread of its own.
 *
 * Folding one event is one savepoint of the event log's transaction
 * (ev_consume_once): the effect uses the connection the handler receives,
 * so it commits with the event's processed id and the cursor, or not at
 * all. The ledger (sales_orders) adds a second guard keyed by the order:
 * an order's payment and its refund are each folded once whatever the
 * event ids, and whatever the order in which they come.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "analytics_store.h"
#include "analytics_values.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/text.h"

#define AN_TYPE_PAID     "panthera.events.v1.OrderPaid"
#define AN_TYPE_REFUNDED "panthera.events.v1.OrderRefunded"
#define AN_MAX_LINES     1000 /* an order holds at most 100; room for growth */
#define AN_MAX_QUANTITY  1000
#define AN_MAX_NAME      1024 /* bytes; the catalog allows 200 characters */
#define AN_IDLE_WAIT_MS  1000u

struct analytics_private {
	ev_consumer *consumer;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t wake;  /* signalled by analytics_stop */
	pthread_t thread;
	int running; /* the thread was started and not joined yet */
	int stop;    /* asks the thread to end */
};

/* ---- folding ---- */

/* Why an event cannot be folded: logged, and the event fails (retried,
 * then parked in the dead letters with the status). */
static rpc_status refuse_event(const ev_event *ev, const char *why)
{
	log_write(LOG_WARN, NULL, "analytics.event", "%s: event %s (%s) refused: %s",
	          ANALYTICS_CONSUMER, ev->id, ev->type, why);
	return RPC_STATUS_INVALID_ARGUMENT;
}

/* The UTC day of the event, "YYYY-MM-DD", from its occurred_at. */
static int event_day(const ev_event *ev, char day[ANALYTICS_DAY_TEXT])
{
	const char *t = ev->occurred_at;
	int64_t unused;
	if (t == NULL || strnlen(t, ANALYTICS_DAY_TEXT) < ANALYTICS_DAY_TEXT || t[10] != 'T')
		return -1;
	memcpy(day, t, ANALYTICS_DAY_TEXT - 1);
	day[ANALYTICS_DAY_TEXT - 1] = '\0';
	return analytics_day_parse(day, &unused);
}

/* Check an OrderPaid and turn its lines into store lines (normalized line
 * totals in `totals`). NULL when acceptable, else why not. */
static const char *check_paid(const Panthera__Events__V1__OrderPaid *m, analytics_line *lines,
                              char (*totals)[MONEY_TEXT], char amount[MONEY_TEXT])
{
	int64_t cents;
	if (m->order_id == NULL || !id_is_uuid(m->order_id))
		return "order_id is not a UUID";
	if (m->currency == NULL || !money_currency_valid(m->currency))
		return "currency is not an ISO 4217 code";
	if (m->total_amount == NULL || money_parse(m->total_amount, &cents) != 0)
		return "total_amount is not an amount";
	money_format(amount, cents);
	for (size_t i = 0; i < m->n_items; i++) {
		const Panthera__Events__V1__OrderLine *it = m->items[i];
		if (it == NULL || it->product_id == NULL || !id_is_uuid(it->product_id))
			return "an item's product_id is not a UUID";
		if (it->quantity < 1 || it->quantity > AN_MAX_QUANTITY)
			return "an item's quantity is not 1..1000";
		if (it->line_total == NULL || money_parse(it->line_total, &cents) != 0)
			return "an item's line_total is not an amount";
		if (it->name == NULL || text_chars(it->name, AN_MAX_NAME, 0) < 0)
			return "an item's name is not text of at most 1024 bytes";
		money_format(totals[i], cents);
		lines[i] = (analytics_line){it->product_id, it->name, it->quantity, totals[i]};
	}
	return NULL;
}

static rpc_status fold_paid(db_conn *conn, const ev_event *ev, const char *day)
{
	Panthera__Events__V1__OrderPaid *m =
	    panthera__events__v1__order_paid__unpack(NULL, ev->payload_len, ev->payload);
	if (m == NULL)
		return refuse_event(ev, "payload is not an OrderPaid");
	rpc_status st;
	analytics_line *lines = NULL;
	char(*totals)[MONEY_TEXT] = NULL;
	if (m->n_items > AN_MAX_LINES) {
		st = refuse_event(ev, "more than 1000 items");
		goto out;
	}
	/* + 1: calloc(0) may answer NULL */
	lines = calloc(m->n_items + 1, sizeof(*lines));
	totals = calloc(m->n_items + 1, sizeof(*totals));
	if (lines == NULL || totals == NULL) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto out;
	}
	char amount[MONEY_TEXT];
	const char *why = check_paid(m, lines, totals, amount);
	if (why != NULL) {
		st = refuse_event(ev, why);
		goto out;
	}
	analytics_order_state state;
	if ((st = analytics_store_lock_order(conn, m->order_id, &state)) != RPC_STATUS_OK)
		goto out;
	if (state.paid) { /* the same payment under another event id */
		log_write(LOG_INFO, NULL, "analytics.event",
		          "%s: event %s: order %s is folded already", ANALYTICS_CONSUMER, ev->id,
		          m->order_id);
		goto out;
	}
	st = analytics_store_record_paid(conn, m->order_id, day, m->currency, amount, lines,
	                                 m->n_items);
	if (st == RPC_STATUS_OK)
		st = analytics_store_apply_paid(conn, m->order_id);
	/* its refund came first: take it back on the refund's day now */
	if (st == RPC_STATUS_OK && state.refunded)
		st = analytics_store_apply_refund(conn, m->order_id);
out:
	free(lines);
	free(totals);
	panthera__events__v1__order_paid__free_unpacked(m, NULL);
	return st;
}

static rpc_status fold_refunded(db_conn *conn, const ev_event *ev, const char *day)
{
	Panthera__Events__V1__OrderRefunded *m =
	    panthera__events__v1__order_refunded__unpack(NULL, ev->payload_len, ev->payload);
	if (m == NULL)
		return refuse_event(ev, "payload is not an OrderRefunded");
	rpc_status st = RPC_STATUS_OK;
	analytics_order_state state;
	if (m->order_id == NULL || !id_is_uuid(m->order_id)) {
		st = refuse_event(ev, "order_id is not a UUID");
		goto out;
	}
	if ((st = analytics_store_lock_order(conn, m->order_id, &state)) != RPC_STATUS_OK)
		goto out;
	if (state.refunded) /* seen already under another event id */
		goto out;
	if ((st = analytics_store_record_refund(conn, m->order_id, day)) != RPC_STATUS_OK)
		goto out;
	if (!state.paid) { /* applied when its OrderPaid comes */
		log_write(LOG_INFO, NULL, "analytics.event",
		          "%s: event %s: order %s refunded before its payment was seen",
		          ANALYTICS_CONSUMER, ev->id, m->order_id);
		goto out;
	}
	/* refunds are whole: what was paid is what comes back */
	int64_t refunded, paid;
	if (m->amount != NULL && money_parse(m->amount, &refunded) == 0 &&
	    money_parse(state.amount, &paid) == 0 && refunded != paid)
		log_write(
		    LOG_WARN, NULL, "analytics.event",
		    "%s: event %s: order %s refunds %s of %s paid; the paid amount is taken back",
		    ANALYTICS_CONSUMER, ev->id, m->order_id, m->amount, state.amount);
	st = analytics_store_apply_refund(conn, m->order_id);
out:
	panthera__events__v1__order_refunded__free_unpacked(m, NULL);
	return st;
}

static rpc_status on_order_event(db_conn *conn, const ev_event *ev, void *arg)
{
	(void)arg;
	int paid = strcmp(ev->type, AN_TYPE_PAID) == 0;
	if (!paid && strcmp(ev->type, AN_TYPE_REFUNDED) != 0)
		return RPC_STATUS_OK; /* not ours: OrderCreated, OrderShipped, ... */
	char day[ANALYTICS_DAY_TEXT];
	if (event_day(ev, day) != 0) {
		log_write(LOG_WARN, NULL, "analytics.event", "%s: event %s (%s) has no time",
		          ANALYTICS_CONSUMER, ev->id, ev->type);
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	return paid ? fold_paid(conn, ev, day) : fold_refunded(conn, ev, day);
}

/* ---- rebuild ---- */

typedef struct rebuild_op {
	int due;
} rebuild_op;

static rpc_status tx_rebuild(db_conn *c, void *arg)
{
	rebuild_op *op = arg;
	rpc_status st =
	    analytics_store_rebuild_due(c, ANALYTICS_CONSUMER, ANALYTICS_ORDERS_SCHEMA, &op->due);
	if (st == RPC_STATUS_OK && op->due)
		st = analytics_store_clear(c);
	return st;
}

rpc_status analytics_rebuild_if_empty(analytics_service *svc, int *rebuilt)
{
	if (rebuilt != NULL)
		*rebuilt = 0;
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	rebuild_op op = {0};
	rpc_status st = db_transaction(svc->pool, DB_TX_RETRY, 30000, tx_rebuild, &op);
	if (st != RPC_STATUS_OK || !op.due)
		return st;
	/* A batch committed between the two by another instance is folded
	 * again after the rewind: its orders are in the ledger, so nothing
	 * counts twice. */
	if ((st = ev_consumer_rewind(svc->priv->consumer)) != RPC_STATUS_OK) {
		log_write(LOG_ERROR, NULL, "analytics.rebuild",
		          "the aggregates were emptied but the consumer could not rewind: %s",
		          rpc_status_name(st));
		return st;
	}
	log_write(LOG_INFO, NULL, "analytics.rebuild",
	          "aggregates empty: %s rewound to fold the %s outbox again", ANALYTICS_CONSUMER,
	          ANALYTICS_ORDERS_SCHEMA);
	if (rebuilt != NULL)
		*rebuilt = 1;
	return RPC_STATUS_OK;
}

/* ---- life cycle ---- */

static void free_private(struct analytics_private *p)
{
	ev_consumer_close(p->consumer);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

rpc_status analytics_service_init(analytics_service *svc)
{
	if (svc == NULL || svc->pool == NULL || svc->orders_events == NULL ||
	    (svc->currency != NULL && !money_currency_valid(svc->currency)))
		return RPC_STATUS_INVALID_ARGUMENT;
	if (svc->priv != NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	struct analytics_private *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_condattr_t ca;
	int ok = pthread_condattr_init(&ca) == 0;
	/* timed waits on the monotonic clock: a clock step never stretches one */
	if (ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0)
		ok = 0;
	if (ok && pthread_cond_init(&p->wake, &ca) != 0)
		ok = 0;
	pthread_condattr_destroy(&ca);
	if (!ok) {
		free(p);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		pthread_cond_destroy(&p->wake);
		free(p);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	static const char *const types[] = {AN_TYPE_PAID, AN_TYPE_REFUNDED, NULL};
	ev_consumer_opts o = {.name = ANALYTICS_CONSUMER,
	                      .types = types,
	                      .source = svc->orders_events,
	                      .source_schema = ANALYTICS_ORDERS_SCHEMA,
	                      .own = svc->pool,
	                      .own_schema = ANALYTICS_SCHEMA,
	                      .handler = on_order_event,
	                      .arg = svc};
	rpc_status st = ev_consumer_open(&p->consumer, &o);
	if (st != RPC_STATUS_OK) {
		free_private(p);
		return st;
	}
	svc->priv = p;
	if ((st = analytics_rebuild_if_empty(svc, NULL)) != RPC_STATUS_OK) {
		svc->priv = NULL;
		free_private(p);
	}
	return st;
}

rpc_status analytics_process_events(analytics_service *svc, unsigned *handled)
{
	if (handled != NULL)
		*handled = 0;
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	return ev_consume_once(svc->priv->consumer, handled);
}

/* Wait on `wake` up to ms milliseconds; 1 when asked to stop. */
static int pause_unless_stopped(struct analytics_private *p, unsigned ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
		;
	int stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

static int stop_asked(struct analytics_private *p)
{
	pthread_mutex_lock(&p->lock);
	int stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

static void *consumer_main(void *arg)
{
	analytics_service *svc = arg;
	struct analytics_private *p = svc->priv;
	rpc_status last = RPC_STATUS_OK; /* log a failure once, and its end */
	while (!stop_asked(p)) {
		unsigned n = 0;
		rpc_status st = analytics_process_events(svc, &n);
		if (st != last) {
			if (st != RPC_STATUS_OK)
				log_write(LOG_WARN, NULL, "analytics.consume",
				          "%s: consuming failed: %s; retrying every second",
				          ANALYTICS_CONSUMER, rpc_status_name(st));
			else
				log_write(LOG_INFO, NULL, "analytics.consume",
				          "%s: consuming again", ANALYTICS_CONSUMER);
			last = st;
		}
		if (st != RPC_STATUS_OK) {
			pause_unless_stopped(p, AN_IDLE_WAIT_MS);
		} else if (n == 0 && ev_wait(p->consumer, AN_IDLE_WAIT_MS) != RPC_STATUS_OK) {
			/* no LISTEN connection: poll once a second instead */
			pause_unless_stopped(p, AN_IDLE_WAIT_MS);
		}
	}
	return NULL;
}

rpc_status analytics_start(analytics_service *svc)
{
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	struct analytics_private *p = svc->priv;
	pthread_mutex_lock(&p->lock);
	rpc_status st = RPC_STATUS_OK;
	if (p->running) {
		st = RPC_STATUS_FAILED_PRECONDITION;
	} else {
		p->stop = 0;
		if (pthread_create(&p->thread, NULL, consumer_main, svc) == 0)
			p->running = 1;
		else
			st = RPC_STATUS_INTERNAL;
	}
	pthread_mutex_unlock(&p->lock);
	return st;
}

void analytics_stop(analytics_service *svc)
{
	if (svc == NULL || svc->priv == NULL)
		return;
	struct analytics_private *p = svc->priv;
	pthread_mutex_lock(&p->lock);
	int running = p->running;
	p->stop = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (!running)
		return;
	pthread_join(p->thread, NULL);
	pthread_mutex_lock(&p->lock);
	p->running = 0;
	pthread_mutex_unlock(&p->lock);
}

ev_consumer *analytics_consumer(const analytics_service *svc)
{
	return svc != NULL && svc->priv != NULL ? svc->priv->consumer : NULL;
}

void analytics_service_fini(analytics_service *svc)
{
	if (svc == NULL || svc->priv == NULL)
		return;
	analytics_stop(svc);
	free_private(svc->priv);
	svc->priv = NULL;
}
