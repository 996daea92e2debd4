/*
 * orders.h - the order service: places orders, drives the checkout saga,
 * and moves orders through their life cycle (orders.proto draws it).
 *
 * CreateOrder prices the items from the catalog (or checks out the
 * caller's cart), reserves their stock with InventoryService (idempotent on
 * the order id), then writes the PENDING_PAYMENT order with OrderCreated in
 * one transaction. Payments charges on that event; the consumer here,
 * "orders.on_payment", reads the payments outbox and settles the order:
 * PaymentSucceeded commits the stock and makes it PAID (OrderPaid), or
 * refunds the payment when the order was cancelled meanwhile;
 * PaymentFailed releases the stock and makes it PAYMENT_FAILED
 * (OrderPaymentFailed). Cancel, ship, deliver and refund are a status
 * change plus its event in one transaction, under the order's row lock, so
 * a payment settling at the same moment waits for them and sees the result.
 *
 * Every RPC that the saga makes to another service is idempotent on the
 * order (or payment) id, so an event applied twice, or a transaction
 * retried, repeats them harmlessly.
 *
 * Thread-safety: the service object is shared by the RPC worker threads and
 * the consumer thread; orders_start/orders_stop from one thread.
 */
#ifndef PANTHERA_ORDERS_H
#define PANTHERA_ORDERS_H

#include <pthread.h>

#include "panthera/db.h"
#include "panthera/events.h"
#include "panthera/orders/v1/orders.panthera.h"

typedef struct orders_service {
	db_pool *pool;              /* migrated with services/orders/migrations; schema "orders" */
	db_pool *payments_events;   /* the payments service's database (its outbox) */
	rpc_channel *catalog;       /* CatalogService: prices */
	rpc_channel *inventory;     /* InventoryService: reserve, commit, release, restock */
	rpc_channel *cart;          /* CartService: checkout of the cart; NULL: items required */
	rpc_channel *payments;      /* PaymentService: refunds */
	uint32_t reservation_ttl_s; /* stock held for a payment; 0: inventory's default */

	/* private */
	ev_consumer *on_payment;
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop;
} orders_service;

/* Set up the orders outbox and the consumer of the payments outbox (its
 * cursor, in schema "orders"). Call once, before register or start. */
rpc_status orders_service_init(orders_service *svc);
void orders_service_fini(orders_service *svc);

/* Serve OrderService on `srv` with `svc` (which must outlive it). */
rpc_status orders_service_register(rpc_server *srv, orders_service *svc);

/* Settle what the payments outbox has: one batch; *handled (may be NULL)
 * gets the events applied. Tests call it; orders_start runs it in a loop. */
rpc_status orders_process_events(orders_service *svc, unsigned *handled);

/* How long CreateOrder's Idempotency-Key replays its first order (API.md:
 * 24 h). */
#define ORDERS_KEY_KEEP_S 86400

/*
 * Delete what is past its retention: CreateOrder's Idempotency-Keys older
 * than ORDERS_KEY_KEEP_S (a request with such a key makes a new order
 * anyway). Orders and their lines are records and stay. In batches
 * (db_purge); *deleted (may be NULL) gets the rows removed. The service
 * binary's sweeper calls it every few minutes; safe from any thread.
 */
rpc_status orders_sweep(orders_service *svc, long *deleted);

/* Run orders_process_events on a thread of its own, woken by NOTIFY (at
 * most 1 s apart without one), until orders_stop, which returns within
 * about a second. */
rpc_status orders_start(orders_service *svc);
void orders_stop(orders_service *svc);

#endif /* PANTHERA_ORDERS_H */
