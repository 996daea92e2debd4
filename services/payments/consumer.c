/*
 * consumer.c - the payments step of the checkout saga: the consumer
 * "payments.on_order_created" reads the orders outbox and charges each
 * OrderCreated, writing the payment and its PaymentSucceeded or
 * PaymentFailed event with the connection of the consumer's transaction,
 * so the effect commits together with the event's "processed" record.
 *
 * The charge's idempotency key is "OrderCreated:<order id>": an event
 * delivered again is skipped by its id, and an OrderCreated published twice
 * for one order finds the payment made for the first.
 *
 * A provider that does not answer fails the event (nothing recorded), which
 * the event log tries again with backoff, and parks after
 * PAY_CONSUMER_ATTEMPTS (about half a minute): a short outage costs a delay,
 * a long one leaves dead letters to replay (AdminService).
 *
 * The thread of payments_start() owns one ev_consumer; payments_process_events
 * opens one of its own per call. Both may run at once: the cursor's row
 * lock lets one of them work.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/log.h"
#include "panthera/text.h"
#include "payments_internal.h"

#define PAY_CONSUMER_ATTEMPTS   8
#define PAY_CONSUMER_BACKOFF_MS 250u
#define PAY_WAIT_MS             1000u

struct payments_worker {
	ev_consumer *consumer;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* signalled by payments_stop() */
	atomic_int stop;
};

/* "OrderCreated:<order id in lower case>" into key[]. */
static void saga_key(char key[sizeof("OrderCreated:") + ID_UUID_LEN], const char *order_id)
{
	memcpy(key, "OrderCreated:", sizeof("OrderCreated:") - 1);
	char *p = key + sizeof("OrderCreated:") - 1;
	for (size_t i = 0; i < ID_UUID_LEN; i++) {
		char ch = order_id[i];
		p[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
	}
	p[ID_UUID_LEN] = '\0';
}

static rpc_status charge_order(db_conn *c, payments_service *svc, const ev_event *ev,
                               const Panthera__Events__V1__OrderCreated *oc)
{
	int64_t cents;
	if (!id_is_uuid(oc->order_id) || !id_is_uuid(oc->user_id) ||
	    money_parse(oc->total_amount, &cents) != 0 || cents <= 0 ||
	    !money_currency_valid(oc->currency)) {
		log_write(LOG_ERROR, NULL, "payments.on_order_created",
		          "event %s: OrderCreated without a valid order, user, amount or currency",
		          ev->id);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	char key[sizeof("OrderCreated:") + ID_UUID_LEN];
	saga_key(key, oc->order_id);
	/* a method id we could not store is no method: the provider refuses "" */
	const char *method =
	    text_valid(oc->payment_method_id, 1, PAY_KEY_MAX, 0) ? oc->payment_method_id : "";
	pay_charge_req req = {.order_id = oc->order_id,
	                      .user_id = oc->user_id,
	                      .amount_cents = cents,
	                      .currency = oc->currency,
	                      .payment_method_id = method,
	                      .idempotency_key = key};
	pay_record rec;
	int created;
	pay_fault fault;
	rpc_status st = pay_charge(c, pay_provider_of(svc), &req, &rec, &created, &fault);
	if (st != RPC_STATUS_OK) {
		log_write(LOG_WARN, NULL, "payments.on_order_created",
		          "event %s, order %s: charge failed (%s%s); will try again", ev->id,
		          oc->order_id, rpc_status_name(st),
		          fault == PAY_FAULT_PROVIDER_DOWN ? ", provider unavailable" : "");
		return st;
	}
	if (created)
		log_write(LOG_INFO, NULL, "payments.on_order_created",
		          "order %s: payment %s %s%s%s", rec.order_id, rec.id, rec.status,
		          rec.failure_reason[0] ? " " : "", rec.failure_reason);
	return RPC_STATUS_OK;
}

static rpc_status on_order_created(db_conn *c, const ev_event *ev, void *arg)
{
	if (ev->type == NULL || strcmp(ev->type, "panthera.events.v1.OrderCreated") != 0)
		return RPC_STATUS_OK; /* not ours to act on */
	Panthera__Events__V1__OrderCreated *oc =
	    panthera__events__v1__order_created__unpack(NULL, ev->payload_len, ev->payload);
	if (oc == NULL) {
		log_write(LOG_ERROR, NULL, "payments.on_order_created",
		          "event %s: payload is not an OrderCreated", ev->id);
		return RPC_STATUS_DATA_LOSS;
	}
	rpc_status st = charge_order(c, arg, ev, oc);
	panthera__events__v1__order_created__free_unpacked(oc, NULL);
	return st;
}

static const char *const consumed_types[] = {"panthera.events.v1.OrderCreated", NULL};

static rpc_status open_consumer(payments_service *svc, ev_consumer **out)
{
	ev_consumer_opts o = {.name = PAYMENTS_CONSUMER_ORDER_CREATED,
	                      .types = consumed_types,
	                      .source = svc->orders_events,
	                      .source_schema = "orders",
	                      .own = svc->pool,
	                      .own_schema = PAYMENTS_SCHEMA,
	                      .handler = on_order_created,
	                      .arg = svc,
	                      .max_attempts = PAY_CONSUMER_ATTEMPTS,
	                      .backoff_ms = PAY_CONSUMER_BACKOFF_MS};
	return ev_consumer_open(out, &o);
}

rpc_status payments_consumer_open(payments_service *svc, ev_consumer **out)
{
	*out = NULL;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (svc->orders_events == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	return open_consumer(svc, out);
}

rpc_status payments_process_events(payments_service *svc, unsigned *handled)
{
	if (handled != NULL)
		*handled = 0;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (svc->orders_events == NULL)
		return RPC_STATUS_OK;
	ev_consumer *c;
	rpc_status st = open_consumer(svc, &c);
	if (st != RPC_STATUS_OK)
		return st;
	st = ev_consume_once(c, handled);
	ev_consumer_close(c);
	return st;
}

/* Wait on the worker's condition for up to `ms`, or until stopped. */
static void worker_pause(struct payments_worker *w, uint32_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->stop)) {
		if (pthread_cond_timedwait(&w->wake, &w->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
	struct payments_worker *w = arg;
	while (!atomic_load(&w->stop)) {
		unsigned n = 0;
		rpc_status st = ev_consume_once(w->consumer, &n);
		if (st != RPC_STATUS_OK) {
			log_write(LOG_WARN, NULL, "payments.consumer", "%s: %s",
			          PAYMENTS_CONSUMER_ORDER_CREATED, rpc_status_name(st));
			worker_pause(w, PAY_WAIT_MS); /* the database is away: do not spin */
			continue;
		}
		if (n == 0 && !atomic_load(&w->stop) &&
		    ev_wait(w->consumer, PAY_WAIT_MS) != RPC_STATUS_OK)
			worker_pause(w, PAY_WAIT_MS);
	}
	return NULL;
}

rpc_status payments_start(payments_service *svc)
{
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (svc->worker != NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	if (svc->orders_events == NULL)
		return RPC_STATUS_OK;
	struct payments_worker *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	atomic_init(&w->stop, 0);
	rpc_status st = open_consumer(svc, &w->consumer);
	if (st != RPC_STATUS_OK) {
		free(w);
		return st;
	}
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		ev_consumer_close(w->consumer);
		free(w);
		return RPC_STATUS_INTERNAL;
	}
	if (pthread_cond_init(&w->wake, NULL) != 0) {
		pthread_mutex_destroy(&w->lock);
		ev_consumer_close(w->consumer);
		free(w);
		return RPC_STATUS_INTERNAL;
	}
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		ev_consumer_close(w->consumer);
		free(w);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	svc->worker = w;
	return RPC_STATUS_OK;
}

void payments_stop(payments_service *svc)
{
	if (svc == NULL || svc->worker == NULL)
		return;
	struct payments_worker *w = svc->worker;
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stop, 1);
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL); /* at most one ev_wait (1 s) or one batch */
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	ev_consumer_close(w->consumer);
	free(w);
	svc->worker = NULL;
}
