/*
 * store.h - the inventory service's SQL (internal). Every function runs on
 * a connection inside the caller's transaction.
 */
#ifndef PANTHERA_INVENTORY_STORE_H
#define PANTHERA_INVENTORY_STORE_H

#include "panthera/db.h"

typedef struct inv_item {
	const char *product_id;
	int quantity;
} inv_item;

/* Set the units on hand of a product. With `create`, make its row when it
 * has none; without, NOT_FOUND then (a product the catalog never made). */
rpc_status inv_store_set_stock(db_conn *c, const char *product_id, int available, int create);

/* NOT_FOUND when the product has no stock row. */
rpc_status inv_store_get_stock(db_conn *c, const char *product_id, int *available, int *reserved);

/* Serialize the transactions on one order until commit (an advisory lock
 * on the order id), also before its reservation row exists. */
rpc_status inv_store_lock_order(db_conn *c, const char *order_id);

/* The reservation's status ("HELD", ...), locked FOR UPDATE; NOT_FOUND. */
rpc_status inv_store_lock_reservation(db_conn *c, const char *order_id, char status[16]);

/* Create (or, after a release, renew) a HELD reservation of `items`
 * (sorted by product id) expiring in ttl_s seconds, taking the units from
 * available. FAILED_PRECONDITION, with the product in short_product[37],
 * when one lacks stock; nothing is taken then (the caller rolls back). */
rpc_status inv_store_reserve(db_conn *c, const char *order_id, const inv_item *items, size_t n,
                             unsigned ttl_s, int renew, char short_product[37]);

/* Status transitions with their stock movements. */
rpc_status inv_store_commit(db_conn *c, const char *order_id);
rpc_status inv_store_release(db_conn *c, const char *order_id);
rpc_status inv_store_restock(db_conn *c, const char *order_id);

/* The reservation's items and expiry: rows (product_id, quantity) in *items
 * and the expiry as Unix seconds; PQclear the result. */
rpc_status inv_store_load_items(db_conn *c, const char *order_id, PGresult **items,
                                long long *expires_s);

/* StockChanged events (into the inventory outbox, in the caller's
 * transaction) with a product's stock as it is now; for every product of
 * an order's reservation. */
rpc_status inv_store_publish_stock(db_conn *c, const char *product_id);
rpc_status inv_store_publish_order_stock(db_conn *c, const char *order_id);

/* Order ids of HELD reservations past their expiry, locked, at most `limit`. */
rpc_status inv_store_expired(db_conn *c, int limit, PGresult **orders);

#endif
