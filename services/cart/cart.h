/*
 * cart.h - the cart service: one shopping cart per user
 * (panthera.cart.v1.CartService), on schema "cart" (services/cart/migrations).
 *
 * A cart is a list of lines (product, units 1..1000), in the order they
 * were first added, at most CART_MAX_LINES of them. No price is stored:
 * every reply is priced from CatalogService.BatchGetProducts at that
 * moment, in integer cents, so a price changed in the catalog shows in the
 * next read and a price sent by a client is never seen. A line whose
 * product the catalog no longer sells (deleted, unknown), or whose product
 * is now in another currency than the cart's (the currency of its first
 * sellable line), stays stored but is left out of every priced view, of
 * the subtotal and so of checkout; RemoveCartItem and ClearCart still take
 * it away. When the catalog does not answer, calls that need a price fail
 * UNAVAILABLE and change nothing, but for CompleteCheckout, which applies
 * its removal first (the order exists) and then fails to price.
 *
 * Caller identity: the public methods act on the cart of the user named by
 * request metadata "x-caller-id" (a UUID, set by the gateway after it
 * verified the token; see docs/wire-protocol.md §4.6); without it they
 * answer UNAUTHENTICATED. A caller only ever reaches its own cart. The
 * internal methods GetUserCart and CompleteCheckout take the user id in the
 * request and check no caller: they have no HTTP route and are meant for
 * the orders service, behind the RPC trust boundary.
 *
 * Changes of one user's cart are serialised (a transaction-scoped advisory
 * lock on the user id), so concurrent AddCartItem calls add up exactly.
 * CompleteCheckout is idempotent on the order id: applied ids are kept in
 * cart.checkouts (for CART_CHECKOUT_KEEP_S), and a repeated call removes
 * nothing more.
 *
 * The service consumes and produces no events.
 *
 * Thread-safety: the service object is shared by the RPC worker threads and
 * must not change while a server serves it.
 */
#ifndef PANTHERA_CART_H
#define PANTHERA_CART_H

#include <stdint.h>

#include "panthera/cart/v1/cart.panthera.h"
#include "panthera/db.h"

/* The schema of the cart's tables. */
#define CART_SCHEMA "cart"

/* Most lines in one cart (what one order, and one inventory reservation,
 * may hold). */
#define CART_MAX_LINES 100

/* Most units in one line, and in one AddCartItem. */
#define CART_MAX_QUANTITY 1000

/* Default limit of one call to the catalog, ms. */
#define CART_DEFAULT_CATALOG_TIMEOUT_MS 3000u

typedef struct cart_service {
	/* A pool whose search_path is CART_SCHEMA, on a database migrated
	 * with services/cart/migrations (db_migrate(pool, "cart", dir)).
	 * Required. */
	db_pool *pool;
	/* A channel to CatalogService, which prices every line. Required. */
	rpc_channel *catalog;
	/* The most one call to the catalog may take, ms (never more than the
	 * caller has left). 0: CART_DEFAULT_CATALOG_TIMEOUT_MS. */
	uint32_t catalog_timeout_ms;
} cart_service;

/* How long CompleteCheckout remembers an applied order id: orders repeats
 * a checkout only while its Idempotency-Key lives (24 h); a week is far
 * past that. */
#define CART_CHECKOUT_KEEP_S (7 * 86400)

/*
 * Delete what is past its retention: the order ids of cart.checkouts older
 * than CART_CHECKOUT_KEEP_S. In batches (db_purge); *deleted (may be NULL)
 * gets the rows removed. The service binary's sweeper calls it every few
 * minutes; safe from any thread.
 */
rpc_status cart_sweep(cart_service *svc, long *deleted);

/*
 * Serve CartService on `srv` with `svc`, which must outlive the server.
 * INVALID_ARGUMENT when `svc` has no pool or no catalog channel; otherwise
 * the status of panthera_cart_v1_cart_service_register().
 */
rpc_status cart_service_register(rpc_server *srv, cart_service *svc);

#endif /* PANTHERA_CART_H */
