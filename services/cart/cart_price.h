/*
 * cart_price.h - what the catalog says about the products of a cart, and
 * the priced cart built from it (internal).
 *
 * A cart_catalog remembers, for one call, every product it asked the
 * catalog about (BatchGetProducts), so that one call asks once per product:
 * prices are read at the moment of the call, never stored. Everything it
 * holds lives in the call's arena.
 */
#ifndef PANTHERA_CART_PRICE_H
#define PANTHERA_CART_PRICE_H

#include <stdint.h>

#include "cart.h"
#include "cart_store.h"
#include "panthera/money.h"

/* A product as the catalog described it. */
typedef struct cart_product {
	char id[ID_UUID_LEN + 1];
	int sellable;     /* known to the catalog and active */
	const char *name; /* "" when not sellable */
	int64_t price;    /* unit price, cents */
	char currency[4]; /* ISO 4217; "" when not sellable */
} cart_product;

typedef struct cart_catalog {
	rpc_call *call;
	cart_service *svc;
	cart_product *products; /* arena; grows */
	size_t n, cap;
	/* After a failed fetch: the catalog's status and message. */
	rpc_status failure;
	char failure_message[160];
} cart_catalog;

/* An empty cache for `call`. */
void cart_catalog_init(cart_catalog *cat, rpc_call *call, cart_service *svc);

/*
 * Make sure every product of ids[0..n) (lower-case UUIDs) is known, asking
 * the catalog about those that are not, in one BatchGetProducts (at most
 * CART_MAX_LINES + 1 ids). On success a product the catalog did not return
 * is known as not sellable. On error: RESOURCE_EXHAUSTED (arena) or
 * INTERNAL (a malformed price or currency in the catalog's reply), with
 * cat->failure left OK; or, when the catalog itself failed (or no time was
 * left to ask it), that status, also in cat->failure with its message.
 */
rpc_status cart_catalog_fetch(cart_catalog *cat, const char *const *ids, size_t n);

/* The same for every line of `v`, and `extra` when it is not NULL. */
rpc_status cart_catalog_fetch_view(cart_catalog *cat, const cart_view *v, const char *extra);

/* The product of `id`, or NULL when it has not been fetched. */
const cart_product *cart_catalog_find(const cart_catalog *cat, const char *id);

/*
 * The currency of the cart `v`: that of its first line whose product is
 * sellable; "" when it has none. All its products must have been fetched.
 */
const char *cart_view_currency(const cart_catalog *cat, const cart_view *v);

/*
 * Fill `out` with `v` priced from the catalog: the lines of sellable
 * products in the cart's currency, each at the current price, and their
 * subtotal. Fetches what is missing. user_id is the cart's owner.
 * Errors as cart_catalog_fetch(), and OUT_OF_RANGE when a total does not
 * fit (it cannot, within the catalog's and the cart's limits).
 */
rpc_status cart_price_view(cart_catalog *cat, const char *user_id, const cart_view *v,
                           Panthera__Cart__V1__Cart *out);

#endif /* PANTHERA_CART_PRICE_H */
