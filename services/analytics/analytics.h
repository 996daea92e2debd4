/*
 * analytics.h - the analytics service: the sales report
 * (panthera.analytics.v1.AnalyticsService, GET /v1/reports/sales), served
 * from daily aggregates of its own, in schema "analytics"
 * (services/analytics/migrations).
 *
 * The aggregates are a read model of the orders outbox: the consumer
 * "analytics.sales" folds panthera.events.v1.OrderPaid (+1 order, +amount
 * paid, + units and line totals per product) and OrderRefunded (takes back
 * what the order's OrderPaid added: its amount, its lines' units and
 * revenue; the order still counts as paid) into the UTC day each event
 * happened (ev_event.occurred_at). Other event types are ignored. Each
 * effect commits with the event's processed id; an order is also folded
 * at most once per kind (paid, refunded) whatever the event ids, so
 * redelivery never counts twice, and a refund seen before its payment is
 * applied when the payment arrives. A malformed OrderPaid or OrderRefunded
 * fails and ends, after the event log's retries, in analytics.dead_letters.
 * See docs/analytics.md.
 *
 * Rebuild: when the aggregates are empty but the consumer has read past the
 * start of the outbox (an operator emptied them, or they were lost),
 * analytics_service_init rewinds the consumer (cursor, processed ids,
 * retries) so that the whole outbox is folded again. The outbox keeps
 * events for PANTHERA_EVENT_RETENTION_S only: a rebuild reaches back that
 * far.
 *
 * Amounts are int64 cents in C, numeric in SQL, "12.50" on the wire. One
 * report is in one currency (the service's `currency`); orders paid in
 * another are folded under their own currency and left out of it.
 *
 * Caller identity: GetSalesReport is for admins. The REST gateway sends
 * "x-caller-id" (a UUID) and "x-caller-roles" (comma-separated); without a
 * caller the call is UNAUTHENTICATED, without the ADMIN role
 * PERMISSION_DENIED (reason ADMIN_ONLY).
 *
 * Thread-safety: once served, the service object is shared by the RPC
 * worker threads and the consumer's thread; its configuration fields must
 * not change after analytics_service_init.
 */
#ifndef PANTHERA_ANALYTICS_H
#define PANTHERA_ANALYTICS_H

#include "panthera/analytics/v1/analytics.panthera.h"
#include "panthera/db.h"
#include "panthera/events.h"

#define ANALYTICS_SCHEMA           "analytics"
#define ANALYTICS_CONSUMER         "analytics.sales" /* its cursor, processed ids, dead letters */
#define ANALYTICS_ORDERS_SCHEMA    "orders"          /* the outbox it reads */
#define ANALYTICS_DEFAULT_CURRENCY "USD"

struct analytics_private;

typedef struct analytics_service {
	/* On a database migrated with services/analytics/migrations into
	 * schema "analytics", with search_path "analytics" (db_pool_opts.schema).
	 * Holds the aggregates and the consumer's cursor. Required. */
	db_pool *pool;
	/* On the orders service's database: the consumer reads orders.outbox
	 * and keeps its position in orders.outbox_readers through it (and
	 * LISTENs there). Only read otherwise. Required. */
	db_pool *orders_events;
	/* Currency of the reports: ISO 4217, 3 upper-case letters. NULL:
	 * ANALYTICS_DEFAULT_CURRENCY. */
	const char *currency;
	/* The consumer and its thread: set by analytics_service_init, freed
	 * by analytics_service_fini. Not for callers. */
	struct analytics_private *priv;
} analytics_service;

/*
 * Prepare `svc` (configuration fields set, pool migrated): open the
 * consumer "analytics.sales" (its tables in schema "analytics", its reader
 * row in orders.outbox_readers), then analytics_rebuild_if_empty().
 * INVALID_ARGUMENT for a missing pool or a bad currency, FAILED_PRECONDITION
 * when already initialised, RESOURCE_EXHAUSTED without memory, the
 * database's status otherwise. On error nothing is left to free. Not
 * thread-safe; once per service object (again after analytics_service_fini).
 */
rpc_status analytics_service_init(analytics_service *svc);

/* Serve AnalyticsService on `srv` with `svc` (initialised, and outliving
 * the server). FAILED_PRECONDITION before analytics_service_init. */
rpc_status analytics_service_register(rpc_server *srv, analytics_service *svc);

/*
 * When the aggregates are empty (no day in analytics.daily_sales) but the
 * consumer has read part of the outbox, or the ledger holds orders: empty
 * the ledger too and rewind the consumer to the start of the outbox
 * (ev_consumer_rewind), so that the next batches fold everything again.
 * Otherwise nothing. *rebuilt (may be NULL) gets 1 when it rewound. Safe
 * while other instances consume: the check holds the cursor's row lock, and
 * an order folded twice meanwhile is recognised by the ledger. Called by
 * analytics_service_init; thread-safe.
 */
rpc_status analytics_rebuild_if_empty(analytics_service *svc, int *rebuilt);

/*
 * Run one batch (up to 64 events) of the consumer, synchronously; *handled
 * (may be NULL) gets the number of events applied, skipped or parked (0:
 * nothing was ready, or another instance holds the cursor). The status of
 * the event log (UNAVAILABLE while a database is away). FAILED_PRECONDITION
 * before analytics_service_init. Thread-safe; may run while the background
 * thread does (the cursor's row lock lets one of them work at a time).
 */
rpc_status analytics_process_events(analytics_service *svc, unsigned *handled);

/*
 * Start the background thread: process a batch; when nothing was handled,
 * wait up to 1 s for a NOTIFY of the orders' database; on an error, log it
 * and retry after 1 s. FAILED_PRECONDITION before init or when already
 * started; INTERNAL when the thread cannot be created.
 */
rpc_status analytics_start(analytics_service *svc);

/* Stop the background thread and wait for it: within about 1 s (the wait
 * for a NOTIFY) plus the batch in flight. Harmless when not started. From
 * the thread that started it (not concurrently with itself or start). */
void analytics_stop(analytics_service *svc);

/* The consumer "analytics.sales", for admin_add_consumer(a, c, svc->pool,
 * ANALYTICS_SCHEMA) (its backlog and dead letters in the metrics, replay of
 * parked events). Owned by `svc`, valid until analytics_service_fini; NULL
 * before analytics_service_init. */
ev_consumer *analytics_consumer(const analytics_service *svc);

/* Stop the thread and free what analytics_service_init made. After the
 * server is destroyed. An object never initialised (priv NULL) is
 * harmless. */
void analytics_service_fini(analytics_service *svc);

#endif /* PANTHERA_ANALYTICS_H */
