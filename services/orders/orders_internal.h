/*
 * orders_internal.h - what the files of the order service share: the SQL
 * of store.c, the calls to other services of remote.c, and the saga's
 * steps that both handlers.c and saga.c take.
 */
#ifndef PANTHERA_ORDERS_INTERNAL_H
#define PANTHERA_ORDERS_INTERNAL_H

#include <libpq-fe.h>
#include <stdint.h>

#include "orders.h"
#include "panthera/db.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/rpc.h"

#define ORD_MAX_ITEMS    100
#define ORD_MAX_QUANTITY 1000
#define ORD_SCHEMA       "orders"

/* Columns of an order row (ord_store_get, ord_store_list), in this order. */
enum {
	ORD_C_ID,
	ORD_C_USER_ID,
	ORD_C_STATUS,
	ORD_C_SUBTOTAL,
	ORD_C_TOTAL,
	ORD_C_CURRENCY,
	ORD_C_STREET,
	ORD_C_CITY,
	ORD_C_STATE,
	ORD_C_ZIP,
	ORD_C_COUNTRY,
	ORD_C_METHOD,
	ORD_C_PAYMENT_ID, /* '' when none */
	ORD_C_CARRIER,    /* '' until shipped */
	ORD_C_TRACKING,
	ORD_C_SHIPPED_US, /* microseconds since the epoch; '' when unset */
	ORD_C_DELIVERED_US,
	ORD_C_CREATED_US,
	ORD_C_UPDATED_US,
	ORD_C_COUNT
};

/* Columns of an item row (ord_store_items), ordered by order and line. */
enum {
	ORD_I_ORDER_ID,
	ORD_I_PRODUCT_ID,
	ORD_I_SKU,
	ORD_I_NAME,
	ORD_I_QUANTITY,
	ORD_I_UNIT_PRICE,
	ORD_I_LINE_TOTAL
};

/* One line of a new order, priced. */
typedef struct ord_line {
	const char *product_id, *sku, *name;
	int32_t quantity;
	int64_t unit_cents, line_cents;
} ord_line;

/* A new order, as CreateOrder inserts it. */
typedef struct ord_new {
	const char *id, *user_id, *currency, *payment_method_id;
	const char *street, *city, *state, *zip, *country;
	int64_t total_cents;
	const ord_line *lines;
	size_t n_lines;
} ord_new;

/* ---- store.c: SQL only; every function runs on the connection given ---- */

/* The order `id` into *row (one row, ORD_C_* columns), FOR UPDATE when
 * `lock`. NOT_FOUND when there is none. PQclear *row. */
rpc_status ord_store_get(db_conn *c, const char *id, int lock, PGresult **row);
/* The items of the orders of `ids` ("{id,id}" array text), by order, line. */
rpc_status ord_store_items(db_conn *c, const char *ids_array, PGresult **rows);
/* One page of a user's orders, newest first, and the user's total. */
rpc_status ord_store_list(db_conn *c, const char *user_id, int page, int page_size, PGresult **rows,
                          long *total);
rpc_status ord_store_insert(db_conn *c, const ord_new *o);
/* Set the status (and the payment id when not NULL); `from` the status it
 * must have, else FAILED_PRECONDITION (nothing changed). */
rpc_status ord_store_set_status(db_conn *c, const char *id, const char *from, const char *to,
                                const char *payment_id);
/* *same = 1 when the order was last resumed (ResumePayment) with `key`. */
rpc_status ord_store_resume_key(db_conn *c, const char *id, const char *key, int *same);
/* Remember the key of the ResumePayment that made the order payable (NULL:
 * none). */
rpc_status ord_store_set_resume_key(db_conn *c, const char *id, const char *key);
rpc_status ord_store_ship(db_conn *c, const char *id, const char *carrier, const char *tracking);
rpc_status ord_store_has_purchased(db_conn *c, const char *user_id, const char *product_id,
                                   int *yes);
rpc_status ord_store_deliver(db_conn *c, const char *id);
/*
 * CreateOrder's Idempotency-Key, in the caller's transaction, which then
 * creates the order: insert (user_id, key) for `order_id`, committed with
 * the order or not at all, under a transaction-scoped advisory lock on the
 * key. ABORTED at once while another request with the key holds that lock
 * (it is at work); the lock ends with that request's transaction, also
 * when its process dies, so a retry goes on at once. When a request before
 * made the order, *replay = 1 and owner[] is its id (answer it). A key
 * past its 24 hours, or left without its order by an earlier version, is
 * taken.
 */
rpc_status ord_store_take_key(db_conn *c, const char *user_id, const char *key,
                              const char *order_id, char owner[40], int *replay);

/* Publish an event of the orders outbox: `msg` packed, about `order_id`. */
rpc_status ord_publish(db_conn *c, const char *type, const char *order_id,
                       const ProtobufCMessage *msg);

/* ---- remote.c: calls to other services, each with its deadline ---- */

/* Options of a downstream call: what `call` has left (or `fallback_ms`
 * when there is no call: the saga), the request id passed on. */
typedef struct ord_opts {
	rpc_call_opts o;
	rpc_metadata_entry md[1];
} ord_opts;
int ord_opts_init(ord_opts *o, rpc_call *call, uint32_t fallback_ms);

rpc_status ord_inventory_step(orders_service *svc, ord_opts *o, int which, const char *order_id,
                              char *why, size_t why_len);
enum { ORD_INV_COMMIT, ORD_INV_RELEASE, ORD_INV_RESTOCK };

/* PaymentService.Refund of `payment_id`. */
rpc_status ord_refund_payment(orders_service *svc, ord_opts *o, const char *payment_id, char *why,
                              size_t why_len);

/* ---- saga.c ---- */

/* The OrderLine list of an order's items rows (ORD_I_*), for events,
 * pointing into `items`; NULL when out of memory (or no rows). Free with
 * ord_lines_free. */
Panthera__Events__V1__OrderLine **ord_event_lines(PGresult *items, size_t *n);
void ord_lines_free(Panthera__Events__V1__OrderLine **lines, size_t n);

#endif /* PANTHERA_ORDERS_INTERNAL_H */
