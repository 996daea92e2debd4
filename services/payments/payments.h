/*
 * payments.h - the payments service: charges and refunds through a payment
 * provider (payments_provider.h), and the checkout saga's payment step.
 *
 * A payment is one attempt to pay an order: SUCCEEDED or FAILED when the
 * provider answered (a declined card is a FAILED payment, not an error),
 * REFUNDED once its whole amount went back. Every payment is recorded with
 * its event (panthera.events.v1.PaymentSucceeded, PaymentFailed,
 * PaymentRefunded) in payments.outbox in one transaction. Money is exact:
 * integer cents in C, numeric(12,2) in SQL, "12.50" on the wire.
 *
 * Idempotency: each charge is made under a key, unique among payments and
 * handed to the provider; a charge whose key exists returns the payment
 * made first and charges nothing. Charge takes the key from its caller; the
 * saga consumer uses "OrderCreated:<order id>"; CreatePayment one per
 * attempt, "CreatePayment:<order id>:<payments of the order so far>", also
 * given to OrderService.ResumePayment, so that a retry after an attempt
 * that recorded nothing (provider down) is the same attempt
 * (docs/payments.md); its Idempotency-Key (metadata `idempotency-key`)
 * replays the first payment for 24 hours per user and key.
 *
 * The saga (proto/panthera/events/v1/events.proto): the consumer
 * "payments.on_order_created" reads the orders outbox and, for each
 * OrderCreated, charges the order and writes the payment with its event in
 * the consumer's transaction; other event types are skipped.
 *
 * Life cycle: fill the struct, payments_service_register(), then
 * payments_start() for the consumer's thread; payments_stop() before the
 * pools close. Thread-safety: the service object is shared by the RPC
 * workers and the consumer thread; its fields must not change after
 * registration.
 */
#ifndef PANTHERA_PAYMENTS_H
#define PANTHERA_PAYMENTS_H

#include "panthera/db.h"
#include "panthera/events.h"
#include "panthera/payments/v1/payments.panthera.h"
#include "payments_provider.h"

/* The schema of the payments tables, the consumer's tables and the outbox. */
#define PAYMENTS_SCHEMA "payments"
/* The name of the saga consumer (its cursor, processed ids, dead letters). */
#define PAYMENTS_CONSUMER_ORDER_CREATED "payments.on_order_created"

struct payments_worker;

typedef struct payments_service {
	/* A pool whose search_path is PAYMENTS_SCHEMA, on a database migrated
	 * with services/payments/migrations (db_migrate(pool, "payments",
	 * dir)). Required. */
	db_pool *pool;
	/* A pool on the database of the orders outbox (orders.outbox), only
	 * read by the consumer; its role must be allowed to SELECT there.
	 * NULL: no consumer (payments_process_events and payments_start do
	 * nothing). May be `pool` when both schemas share a database and role. */
	db_pool *orders_events;
	/* A channel to OrderService, for CreatePayment's ResumePayment. NULL:
	 * CreatePayment answers UNAVAILABLE. */
	rpc_channel *orders;
	/* The payment provider; NULL: the built-in test provider. Must
	 * outlive the service. */
	const payments_provider *provider;
	/* Private: the consumer thread of payments_start(); NULL otherwise. */
	struct payments_worker *worker;
} payments_service;

/*
 * Serve PaymentService on `srv` with `svc` (which must outlive the server).
 * Creates payments.outbox first (ev_outbox_setup; safe to repeat).
 * INVALID_ARGUMENT without a pool; else the status of the database or of
 * the registration.
 */
rpc_status payments_service_register(rpc_server *srv, payments_service *svc);

/*
 * Run one batch of each consumer of the service (today one:
 * payments.on_order_created, up to 64 events) on the calling thread;
 * *handled (may be NULL) gets the number of events applied or parked. OK
 * and 0 without `orders_events`. Safe while the consumer thread runs (one
 * of the two does the batch). Meant for tests and tools: the service
 * binary uses payments_start().
 */
rpc_status payments_process_events(payments_service *svc, unsigned *handled);

/*
 * Start the consumer thread: it processes what is ready and, when nothing
 * was, waits up to 1 s for a NOTIFY of the orders database. OK without
 * `orders_events` (no thread). FAILED_PRECONDITION when already started;
 * RESOURCE_EXHAUSTED or INTERNAL when the thread cannot be made; the status
 * of the database when the consumer cannot be opened.
 */
rpc_status payments_start(payments_service *svc);

/* Stop the consumer thread, within about a second, and free what
 * payments_start() made. Harmless when not started. */
void payments_stop(payments_service *svc);

/* How long CreatePayment's Idempotency-Key replays its first payment
 * (API.md: 24 h). */
#define PAYMENTS_KEY_KEEP_S 86400

/*
 * Delete what is past its retention: CreatePayment's Idempotency-Keys
 * older than PAYMENTS_KEY_KEEP_S, which replay nothing any more (payments
 * themselves are records and stay). In batches (db_purge); *deleted (may
 * be NULL) gets the rows removed. The service binary's sweeper calls it
 * every few minutes; safe from any thread and process at once.
 */
rpc_status payments_sweep(payments_service *svc, long *deleted);

/*
 * Open a consumer object of payments.on_order_created for the caller's own
 * thread: for AdminService (admin_add_consumer: backlog, dead letters and
 * their replay, which charges as the consumer would). It shares the cursor
 * with the consumer thread. Close it with ev_consumer_close() once nothing
 * uses it. FAILED_PRECONDITION without `orders_events`.
 */
rpc_status payments_consumer_open(payments_service *svc, ev_consumer **out);

#endif /* PANTHERA_PAYMENTS_H */
