/*
 * analytics_store.h - the analytics service's SQL (internal). Every
 * function runs on a connection inside the caller's transaction (the
 * event's, for the folding ones), with the pool's search_path "analytics",
 * and takes values only as parameters. Values arrive validated: ids are
 * UUIDs, days "YYYY-MM-DD", amounts normalized ("12.50"), currencies
 * "USD"-shaped.
 */
#ifndef PANTHERA_ANALYTICS_STORE_H
#define PANTHERA_ANALYTICS_STORE_H

#include "panthera/db.h"

/* One paid line of an order. */
typedef struct analytics_line {
	const char *product_id;
	const char *name;
	int quantity;        /* 1..1000 */
	const char *revenue; /* the line total, "12.50" */
} analytics_line;

/* What the ledger knows of an order. */
typedef struct analytics_order_state {
	int paid;        /* its OrderPaid was folded */
	int refunded;    /* its OrderRefunded was seen */
	char amount[32]; /* the amount paid ("" when not paid) */
} analytics_order_state;

/* ---- folding (the consumer) ---- */

/* The ledger row of `order_id`, created empty when missing, locked until
 * the transaction ends; its state into *out. */
rpc_status analytics_store_lock_order(db_conn *c, const char *order_id, analytics_order_state *out);

/* Record the payment of an order (paid on `day`) and its lines; repeated
 * products are merged. The ledger row must be locked and not paid. */
rpc_status analytics_store_record_paid(db_conn *c, const char *order_id, const char *day,
                                       const char *currency, const char *amount,
                                       const analytics_line *lines, size_t n);

/* Record the refund of an order on `day`. The ledger row must be locked
 * and not refunded. */
rpc_status analytics_store_record_refund(db_conn *c, const char *order_id, const char *day);

/* Add what a recorded payment brings to the day it was paid: one order,
 * its amount, its lines' units and revenue. */
rpc_status analytics_store_apply_paid(db_conn *c, const char *order_id);

/* Take what a recorded payment brought back, on the day of the recorded
 * refund: its amount and its lines' units and revenue (one refund more;
 * the order count stays). The order must be both paid and refunded. */
rpc_status analytics_store_apply_refund(db_conn *c, const char *order_id);

/* ---- rebuild ---- */

/*
 * Lock the consumer's cursor row (waiting for a batch in flight) and say
 * whether a rebuild is due: *due = 1 when daily_sales has no row while the
 * cursor has moved or the ledger holds an order. 0 when the cursor row is
 * missing.
 */
rpc_status analytics_store_rebuild_due(db_conn *c, const char *consumer, const char *source,
                                       int *due);

/* Empty the aggregates and the ledger. */
rpc_status analytics_store_clear(db_conn *c);

/* ---- the report ---- */

/* Columns of analytics_store_days: one row per day of [from, to], oldest
 * first, days without sales included. */
enum { AN_D_DAY, AN_D_ORDERS, AN_D_CENTS, AN_D_NCOLS };

rpc_status analytics_store_days(db_conn *c, const char *from, const char *to, const char *currency,
                                PGresult **rows);

/* Columns of analytics_store_top_products: products whose units or revenue
 * over [from, to] is positive, by revenue then units, most first, at most
 * `limit`; the name of the latest day. */
enum { AN_P_ID, AN_P_NAME, AN_P_QUANTITY, AN_P_CENTS, AN_P_NCOLS };

rpc_status analytics_store_top_products(db_conn *c, const char *from, const char *to,
                                        const char *currency, int limit, PGresult **rows);

#endif /* PANTHERA_ANALYTICS_STORE_H */
