/*
 * service.c - the notifications service's life: init and fini, the
 * consumer of the orders outbox (render and record, in the consumer's
 * transaction), and the two background threads (consume; deliver).
 *
 * Recording and delivering never wait for each other: the consumer thread
 * only touches databases, the delivery thread does the network, and it is
 * woken when the consumer has recorded something new.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notif_internal.h"
#include "panthera/log.h"

#define NOTIF_IDLE_MS 1000u

/* The consumer's effect: the notification of an order event and its queue
 * row, on the consumer's connection (so in its transaction). */
static rpc_status on_order_event(db_conn *conn, const ev_event *ev, void *arg)
{
	(void)arg;
	notif_rendered r;
	rpc_status st =
	    notif_render_event(ev->type, ev->payload, ev->payload_len, ev->occurred_at, &r);
	if (st == RPC_STATUS_NOT_FOUND)
		return RPC_STATUS_OK; /* not an order event: none of ours */
	if (st != RPC_STATUS_OK) {
		log_write(LOG_WARN, NULL, "notifications.event", "event %s (%s) not rendered: %s",
		          ev->id, ev->type, r.bad != NULL ? r.bad : rpc_status_name(st));
		return st;
	}
	int inserted = 0;
	st = notif_store_record(conn, ev->id, &r, &inserted);
	if (st == RPC_STATUS_OK && inserted)
		log_write(LOG_DEBUG, NULL, "notifications.recorded",
		          "%s notification for user %s, order %s (event %s)", r.template, r.user_id,
		          r.order_id, ev->id);
	notif_rendered_free(&r);
	return st;
}

rpc_status notifications_service_init(notifications_service *svc)
{
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (svc->priv != NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	struct notifications_private *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_condattr_t ca;
	int cond_ok = 0, lock_ok = 0, consume_ok = 0;
	rpc_status st = RPC_STATUS_INTERNAL;
	if (pthread_condattr_init(&ca) == 0) {
		cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
		          pthread_cond_init(&p->wake, &ca) == 0;
		pthread_condattr_destroy(&ca);
	}
	lock_ok = pthread_mutex_init(&p->lock, NULL) == 0;
	consume_ok = pthread_mutex_init(&p->consume_lock, NULL) == 0;
	if (!cond_ok || !lock_ok || !consume_ok)
		goto fail;
	atomic_init(&p->stopping, 0);
	if (svc->sink != NULL) {
		p->sink = svc->sink;
	} else {
		st = notifications_sink_open(&p->own_sink, svc->smtp_url, svc->from,
		                             svc->smtp_timeout_ms);
		if (st != RPC_STATUS_OK) {
			log_write(LOG_ERROR, NULL, "notifications.config",
			          "cannot use the SMTP URL or the from-address: %s",
			          rpc_status_name(st));
			goto fail;
		}
		p->sink = p->own_sink;
	}
	if (svc->orders_events != NULL) {
		ev_consumer_opts o = {.name = NOTIFICATIONS_CONSUMER,
		                      .source = svc->orders_events,
		                      .source_schema = "orders",
		                      .own = svc->pool,
		                      .own_schema = NOTIFICATIONS_SCHEMA,
		                      .handler = on_order_event,
		                      .arg = svc,
		                      /* deployed into a running shop, mail about
		                       * orders from now on, not its whole past */
		                      .start_at_now = 1};
		if ((st = ev_consumer_open(&p->orders, &o)) != RPC_STATUS_OK)
			goto fail;
	}
	log_write(LOG_INFO, NULL, "notifications.config", "emails go to %s%s",
	          svc->sink != NULL       ? "the caller's sink"
	          : svc->smtp_url != NULL ? svc->smtp_url
	                                  : "the log",
	          p->orders != NULL ? "; consuming the orders outbox" : "");
	svc->priv = p;
	return RPC_STATUS_OK;
fail:
	notifications_sink_destroy(p->own_sink);
	if (cond_ok)
		pthread_cond_destroy(&p->wake);
	if (lock_ok)
		pthread_mutex_destroy(&p->lock);
	if (consume_ok)
		pthread_mutex_destroy(&p->consume_lock);
	free(p);
	return st;
}

void notifications_service_fini(notifications_service *svc)
{
	if (svc == NULL || svc->priv == NULL)
		return;
	notifications_stop(svc);
	struct notifications_private *p = svc->priv;
	ev_consumer_close(p->orders);
	notifications_sink_destroy(p->own_sink);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->consume_lock);
	free(p);
	svc->priv = NULL;
}

/* Tell the delivery thread that there is something new to send. */
static void wake_delivery(struct notifications_private *p)
{
	pthread_mutex_lock(&p->lock);
	p->recorded = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

rpc_status notifications_process_events(notifications_service *svc, unsigned *handled)
{
	if (handled != NULL)
		*handled = 0;
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	struct notifications_private *p = svc->priv;
	if (p->orders == NULL)
		return RPC_STATUS_OK;
	unsigned n = 0;
	pthread_mutex_lock(&p->consume_lock);
	rpc_status st = ev_consume_once(p->orders, &n);
	pthread_mutex_unlock(&p->consume_lock);
	if (n > 0)
		wake_delivery(p);
	if (handled != NULL)
		*handled = n;
	return st;
}

rpc_status notifications_deliver_due(notifications_service *svc, unsigned *handled)
{
	if (handled != NULL)
		*handled = 0;
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	return notif_deliver_batch(svc, handled);
}

/* Wait on p->wake up to `ms`, or until stopping (or, for the delivery
 * thread, until something was recorded). */
static void idle(struct notifications_private *p, uint32_t ms, int until_recorded)
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
	while (!atomic_load(&p->stopping) && !(until_recorded && p->recorded)) {
		if (pthread_cond_timedwait(&p->wake, &p->lock, &until) == ETIMEDOUT)
			break;
	}
	if (until_recorded)
		p->recorded = 0;
	pthread_mutex_unlock(&p->lock);
}

static void *consumer_main(void *arg)
{
	notifications_service *svc = arg;
	struct notifications_private *p = svc->priv;
	rpc_status last = RPC_STATUS_OK;
	while (!atomic_load(&p->stopping)) {
		unsigned n = 0;
		rpc_status st = notifications_process_events(svc, &n);
		if (st != last)
			log_write(st == RPC_STATUS_OK ? LOG_INFO : LOG_WARN, NULL,
			          "notifications.consume", "consuming the orders outbox: %s",
			          rpc_status_name(st));
		last = st;
		if (atomic_load(&p->stopping))
			break;
		if (st != RPC_STATUS_OK)
			idle(p, NOTIF_IDLE_MS, 0);
		else if (n == 0 && ev_wait(p->orders, NOTIF_IDLE_MS) != RPC_STATUS_OK)
			idle(p, NOTIF_IDLE_MS, 0); /* the database is away: not a busy loop */
	}
	return NULL;
}

static void *delivery_main(void *arg)
{
	notifications_service *svc = arg;
	struct notifications_private *p = svc->priv;
	rpc_status last = RPC_STATUS_OK;
	while (!atomic_load(&p->stopping)) {
		unsigned n = 0;
		rpc_status st = notif_deliver_batch(svc, &n);
		if (st != last)
			log_write(st == RPC_STATUS_OK ? LOG_INFO : LOG_WARN, NULL,
			          "notifications.deliver", "working the delivery queue: %s",
			          rpc_status_name(st));
		last = st;
		if (n == 0 || st != RPC_STATUS_OK)
			idle(p, NOTIF_IDLE_MS, 1);
	}
	return NULL;
}

rpc_status notifications_start(notifications_service *svc)
{
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	struct notifications_private *p = svc->priv;
	if (p->started)
		return RPC_STATUS_FAILED_PRECONDITION;
	atomic_store(&p->stopping, 0);
	if (pthread_create(&p->delivery_thread, NULL, delivery_main, svc) != 0)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	p->with_consumer = 0;
	if (p->orders != NULL) {
		if (pthread_create(&p->consumer_thread, NULL, consumer_main, svc) != 0) {
			atomic_store(&p->stopping, 1);
			pthread_mutex_lock(&p->lock);
			pthread_cond_broadcast(&p->wake);
			pthread_mutex_unlock(&p->lock);
			pthread_join(p->delivery_thread, NULL);
			atomic_store(&p->stopping, 0);
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		}
		p->with_consumer = 1;
	}
	p->started = 1;
	return RPC_STATUS_OK;
}

void notifications_stop(notifications_service *svc)
{
	if (svc == NULL || svc->priv == NULL || !svc->priv->started)
		return;
	struct notifications_private *p = svc->priv;
	atomic_store(&p->stopping, 1);
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (p->with_consumer)
		pthread_join(p->consumer_thread, NULL);
	pthread_join(p->delivery_thread, NULL);
	p->started = p->with_consumer = 0;
	atomic_store(&p->stopping, 0);
}

rpc_status notifications_delivery_counts(notifications_service *svc, notifications_counts *out)
{
	memset(out, 0, sizeof(*out));
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	db_conn *c;
	rpc_status st = db_acquire(svc->pool, 10000, &c);
	if (st != RPC_STATUS_OK)
		return st;
	st = notif_store_counts(c, out);
	db_release(svc->pool, c);
	return st;
}

void notifications_metrics(admin_metrics *m, void *arg)
{
	notifications_counts n;
	if (notifications_delivery_counts(arg, &n) != RPC_STATUS_OK)
		return;
	static const char name[] = "panthera_notifications_deliveries";
	static const char help[] = "Notifications of the delivery queue, by state";
	admin_metric(m, name, 0, help, (double)n.pending, "state", "pending", NULL, NULL);
	admin_metric(m, name, 0, help, (double)n.sent, "state", "sent", NULL, NULL);
	admin_metric(m, name, 0, help, (double)n.given_up, "state", "given_up", NULL, NULL);
	admin_metric(m, name, 0, help, (double)n.skipped, "state", "skipped", NULL, NULL);
}

ev_consumer *notifications_order_consumer(notifications_service *svc)
{
	return svc != NULL && svc->priv != NULL ? svc->priv->orders : NULL;
}
