/*
 * saga.c - the order service's side of the checkout saga: the consumer of
 * the payments outbox ("orders.on_payment") that settles each order, and
 * its thread.
 *
 * On PaymentSucceeded, under the order's row lock (so a cancel at the same
 * moment is either before or after, never between):
 *   PENDING_PAYMENT: InventoryService.Commit, then PAID + OrderPaid. When
 *     the reservation is gone (it expired and the sweeper released it),
 *     the payment is refunded and the order becomes PAYMENT_FAILED with
 *     reason "reservation_expired".
 *   any other status, paid by another payment or not at all (cancelled
 *     meanwhile): PaymentService.Refund of this payment.
 *   already settled by this very payment: nothing (a redelivery).
 * On PaymentFailed, for a PENDING_PAYMENT order: InventoryService.Release,
 * then PAYMENT_FAILED + OrderPaymentFailed; otherwise nothing.
 * A failing call to another service fails the event, which the event log
 * retries with backoff; each call is idempotent, so repeating is safe.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "orders_internal.h"
#include "panthera/ids.h"
#include "panthera/log.h"

Panthera__Events__V1__OrderLine **ord_event_lines(PGresult *items, size_t *n)
{
	*n = 0;
	int rows = PQntuples(items);
	if (rows == 0)
		return NULL;
	Panthera__Events__V1__OrderLine **v = calloc((size_t)rows, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (int i = 0; i < rows; i++) {
		Panthera__Events__V1__OrderLine *l = malloc(sizeof(*l));
		if (l == NULL) {
			ord_lines_free(v, *n);
			*n = 0;
			return NULL;
		}
		panthera__events__v1__order_line__init(l);
		l->product_id = PQgetvalue(items, i, ORD_I_PRODUCT_ID);
		l->sku = PQgetvalue(items, i, ORD_I_SKU);
		l->name = PQgetvalue(items, i, ORD_I_NAME);
		l->quantity = atoi(PQgetvalue(items, i, ORD_I_QUANTITY));
		l->unit_price = PQgetvalue(items, i, ORD_I_UNIT_PRICE);
		l->line_total = PQgetvalue(items, i, ORD_I_LINE_TOTAL);
		v[(*n)++] = l;
	}
	return v;
}

void ord_lines_free(Panthera__Events__V1__OrderLine **lines, size_t n)
{
	if (lines == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

static rpc_status publish_paid(db_conn *c, PGresult *row, const char *order_id,
                               const char *payment_id)
{
	char arr[48];
	snprintf(arr, sizeof(arr), "{%s}", order_id);
	PGresult *items;
	rpc_status st = ord_store_items(c, arr, &items);
	if (st != RPC_STATUS_OK)
		return st;
	size_t n = 0;
	Panthera__Events__V1__OrderLine **lines = ord_event_lines(items, &n);
	if (lines == NULL && PQntuples(items) > 0) {
		PQclear(items);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	Panthera__Events__V1__OrderPaid ev = PANTHERA__EVENTS__V1__ORDER_PAID__INIT;
	ev.order_id = (char *)order_id;
	ev.user_id = PQgetvalue(row, 0, ORD_C_USER_ID);
	ev.payment_id = (char *)payment_id;
	ev.items = lines;
	ev.n_items = n;
	ev.total_amount = PQgetvalue(row, 0, ORD_C_TOTAL);
	ev.currency = PQgetvalue(row, 0, ORD_C_CURRENCY);
	st = ord_publish(c, "panthera.events.v1.OrderPaid", order_id, &ev.base);
	ord_lines_free(lines, n);
	PQclear(items);
	return st;
}

static rpc_status publish_failed(db_conn *c, PGresult *row, const char *order_id,
                                 const char *payment_id, const char *reason)
{
	Panthera__Events__V1__OrderPaymentFailed ev =
	    PANTHERA__EVENTS__V1__ORDER_PAYMENT_FAILED__INIT;
	ev.order_id = (char *)order_id;
	ev.user_id = PQgetvalue(row, 0, ORD_C_USER_ID);
	ev.payment_id = (char *)payment_id;
	ev.reason = (char *)reason;
	return ord_publish(c, "panthera.events.v1.OrderPaymentFailed", order_id, &ev.base);
}

static rpc_status on_succeeded(orders_service *svc, db_conn *c, const char *order_id,
                               const char *payment_id)
{
	PGresult *row;
	rpc_status st = ord_store_get(c, order_id, 1, &row);
	if (st == RPC_STATUS_NOT_FOUND) {
		log_write(LOG_WARN, NULL, "orders.saga", "payment %s is for unknown order %s",
		          payment_id, order_id);
		return RPC_STATUS_OK;
	}
	if (st != RPC_STATUS_OK)
		return st;
	const char *status = PQgetvalue(row, 0, ORD_C_STATUS);
	const char *paid_by = PQgetvalue(row, 0, ORD_C_PAYMENT_ID);
	ord_opts o;
	ord_opts_init(&o, NULL, 0);
	char why[256] = "";
	if (strcmp(status, "PENDING_PAYMENT") == 0) {
		st = ord_inventory_step(svc, &o, ORD_INV_COMMIT, order_id, why, sizeof(why));
		if (st == RPC_STATUS_OK) {
			st = ord_store_set_status(c, order_id, "PENDING_PAYMENT", "PAID",
			                          payment_id);
			if (st == RPC_STATUS_OK)
				st = publish_paid(c, row, order_id, payment_id);
		} else if (st == RPC_STATUS_FAILED_PRECONDITION) {
			/* the stock is no longer held for it: give the money back */
			log_write(LOG_WARN, NULL, "orders.saga",
			          "order %s: paid after its reservation ended (%s): refunding",
			          order_id, why);
			st = ord_refund_payment(svc, &o, payment_id, why, sizeof(why));
			if (st == RPC_STATUS_OK)
				st = ord_store_set_status(c, order_id, "PENDING_PAYMENT",
				                          "PAYMENT_FAILED", payment_id);
			if (st == RPC_STATUS_OK)
				st = publish_failed(c, row, order_id, payment_id,
				                    "reservation_expired");
		}
	} else if (strcasecmp(paid_by, payment_id) != 0) {
		/* cancelled meanwhile, or paid twice: this payment goes back */
		log_write(LOG_INFO, NULL, "orders.saga", "order %s is %s: refunding payment %s",
		          order_id, status, payment_id);
		st = ord_refund_payment(svc, &o, payment_id, why, sizeof(why));
	}
	if (st != RPC_STATUS_OK)
		log_write(LOG_WARN, NULL, "orders.saga", "order %s, payment %s: %s (%s); retried",
		          order_id, payment_id, rpc_status_name(st), why);
	PQclear(row);
	return st;
}

static rpc_status on_failed(orders_service *svc, db_conn *c, const char *order_id,
                            const char *payment_id, const char *reason)
{
	PGresult *row;
	rpc_status st = ord_store_get(c, order_id, 1, &row);
	if (st == RPC_STATUS_NOT_FOUND)
		return RPC_STATUS_OK;
	if (st != RPC_STATUS_OK)
		return st;
	if (strcmp(PQgetvalue(row, 0, ORD_C_STATUS), "PENDING_PAYMENT") == 0) {
		ord_opts o;
		ord_opts_init(&o, NULL, 0);
		char why[256] = "";
		st = ord_inventory_step(svc, &o, ORD_INV_RELEASE, order_id, why, sizeof(why));
		if (st == RPC_STATUS_OK)
			st = ord_store_set_status(c, order_id, "PENDING_PAYMENT", "PAYMENT_FAILED",
			                          payment_id);
		if (st == RPC_STATUS_OK)
			st = publish_failed(c, row, order_id, payment_id, reason);
		if (st != RPC_STATUS_OK)
			log_write(LOG_WARN, NULL, "orders.saga", "order %s: %s (%s); retried",
			          order_id, rpc_status_name(st), why);
	}
	PQclear(row);
	return st;
}

static rpc_status on_payment(db_conn *c, const ev_event *ev, void *arg)
{
	orders_service *svc = arg;
	if (strcmp(ev->type, "panthera.events.v1.PaymentSucceeded") == 0) {
		Panthera__Events__V1__PaymentSucceeded *m =
		    panthera__events__v1__payment_succeeded__unpack(NULL, ev->payload_len,
		                                                    ev->payload);
		if (m == NULL)
			return RPC_STATUS_DATA_LOSS; /* parked after its attempts */
		rpc_status st = RPC_STATUS_OK;
		if (id_is_uuid(m->order_id) && id_is_uuid(m->payment_id))
			st = on_succeeded(svc, c, m->order_id, m->payment_id);
		panthera__events__v1__payment_succeeded__free_unpacked(m, NULL);
		return st;
	}
	if (strcmp(ev->type, "panthera.events.v1.PaymentFailed") == 0) {
		Panthera__Events__V1__PaymentFailed *m =
		    panthera__events__v1__payment_failed__unpack(NULL, ev->payload_len,
		                                                 ev->payload);
		if (m == NULL)
			return RPC_STATUS_DATA_LOSS;
		rpc_status st = RPC_STATUS_OK;
		if (id_is_uuid(m->order_id) && id_is_uuid(m->payment_id))
			st = on_failed(svc, c, m->order_id, m->payment_id, m->reason);
		panthera__events__v1__payment_failed__free_unpacked(m, NULL);
		return st;
	}
	return RPC_STATUS_OK; /* not ours to act on */
}

rpc_status orders_service_init(orders_service *svc)
{
	if (svc == NULL || svc->pool == NULL || svc->payments_events == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = ev_outbox_setup(svc->pool, ORD_SCHEMA);
	if (st != RPC_STATUS_OK)
		return st;
	static const char *const types[] = {"panthera.events.v1.PaymentSucceeded",
	                                    "panthera.events.v1.PaymentFailed", NULL};
	ev_consumer_opts o = {.name = "orders.on_payment",
	                      .types = types,
	                      .source = svc->payments_events,
	                      .source_schema = "payments",
	                      .own = svc->pool,
	                      .own_schema = ORD_SCHEMA,
	                      .handler = on_payment,
	                      .arg = svc,
	                      .backoff_ms = 200};
	if ((st = ev_consumer_open(&svc->on_payment, &o)) != RPC_STATUS_OK)
		return st;
	pthread_mutex_init(&svc->lock, NULL);
	pthread_cond_init(&svc->wake, NULL);
	return RPC_STATUS_OK;
}

void orders_service_fini(orders_service *svc)
{
	if (svc == NULL || svc->on_payment == NULL)
		return;
	orders_stop(svc);
	ev_consumer_close(svc->on_payment);
	svc->on_payment = NULL;
	pthread_cond_destroy(&svc->wake);
	pthread_mutex_destroy(&svc->lock);
}

rpc_status orders_process_events(orders_service *svc, unsigned *handled)
{
	return ev_consume_once(svc->on_payment, handled);
}

static int stopping(orders_service *svc)
{
	pthread_mutex_lock(&svc->lock);
	int s = svc->stop;
	pthread_mutex_unlock(&svc->lock);
	return s;
}

static void *run(void *arg)
{
	orders_service *svc = arg;
	while (!stopping(svc)) {
		unsigned n = 0;
		rpc_status st = orders_process_events(svc, &n);
		if (st != RPC_STATUS_OK) {
			log_write(LOG_WARN, NULL, "orders.saga", "consuming payment events: %s",
			          rpc_status_name(st));
			struct timespec pause = {0, 200 * 1000000L};
			nanosleep(&pause, NULL);
		} else if (n == 0) {
			ev_wait(svc->on_payment,
			        500); /* woken by NOTIFY; stop waits at most this */
		}
	}
	return NULL;
}

rpc_status orders_start(orders_service *svc)
{
	if (svc == NULL || svc->on_payment == NULL || svc->running)
		return RPC_STATUS_INVALID_ARGUMENT;
	svc->stop = 0;
	if (pthread_create(&svc->thread, NULL, run, svc) != 0)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	svc->running = 1;
	return RPC_STATUS_OK;
}

void orders_stop(orders_service *svc)
{
	if (svc == NULL || !svc->running)
		return;
	pthread_mutex_lock(&svc->lock);
	svc->stop = 1;
	pthread_mutex_unlock(&svc->lock);
	pthread_join(svc->thread, NULL);
	svc->running = 0;
}
