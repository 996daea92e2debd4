/*
 * cart_store.h - the cart service's SQL (internal). Every function runs on
 * a connection inside the caller's transaction; ids are lower-case UUIDs.
 */
#ifndef PANTHERA_CART_STORE_H
#define PANTHERA_CART_STORE_H

#include <stddef.h>

#include "cart.h"
#include "panthera/db.h"
#include "panthera/ids.h"

/* One stored line. */
typedef struct cart_line {
	char product_id[ID_UUID_LEN + 1];
	int quantity;
} cart_line;

/* A user's cart as stored. */
typedef struct cart_view {
	int exists;           /* the user has a cart row (it was changed once) */
	long long updated_us; /* its updated_at, µs since the epoch; 0 without */
	size_t n;             /* lines[0..n), in the order first added */
	cart_line lines[CART_MAX_LINES];
} cart_view;

/* Serialize the changes of one user's cart until the transaction ends. */
rpc_status cart_store_lock_user(db_conn *c, const char *user_id);

/* The user's cart into *out (an empty one, exists 0, when there is none). */
rpc_status cart_store_load(db_conn *c, const char *user_id, cart_view *out);

/* Create the user's cart row, or set its updated_at to now. */
rpc_status cart_store_touch(db_conn *c, const char *user_id);

/* Add `quantity` units to the line of `product_id`, creating it last.
 * The cart row must exist (cart_store_touch). */
rpc_status cart_store_add(db_conn *c, const char *user_id, const char *product_id, int quantity);

/* Set the units of a line (1..1000); NOT_FOUND when there is no line. */
rpc_status cart_store_set_quantity(db_conn *c, const char *user_id, const char *product_id,
                                   int quantity);

/* Delete a line; NOT_FOUND when there is none. */
rpc_status cart_store_remove(db_conn *c, const char *user_id, const char *product_id);

/* Delete every line; *removed (may be NULL) gets how many. */
rpc_status cart_store_clear(db_conn *c, const char *user_id, int *removed);

/* Take `quantity` units off a line, deleting it when none remain;
 * *changed gets 1 when the cart had a line for the product, else 0. */
rpc_status cart_store_take(db_conn *c, const char *user_id, const char *product_id, int quantity,
                           int *changed);

/*
 * Record that order `order_id` was checked out of `user_id`'s cart. *fresh
 * gets 1 when it was not recorded before; otherwise 0, and owner[] the
 * user it was recorded for.
 */
rpc_status cart_store_record_checkout(db_conn *c, const char *order_id, const char *user_id,
                                      int *fresh, char owner[ID_UUID_LEN + 1]);

#endif /* PANTHERA_CART_STORE_H */
