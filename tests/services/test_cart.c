/*
 * test_cart.c - CartService through its generated client stubs, over the
 * RPC runtime, on a real PostgreSQL, with the real CatalogService (and the
 * InventoryService it needs) on the same server: carts per caller, lines
 * that add up and keep their order, the limits, prices and currency from
 * the catalog at every read, deleted products, ownership, the internal
 * GetUserCart and CompleteCheckout (idempotent, lines added meanwhile
 * stay), 8 concurrent AddCartItem calls, and a catalog that does not
 * answer.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "cart.h"
#include "catalog.h"
#include "inventory.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/rpc/v1/rpc.pb-c.h"

#define CART(x) panthera_cart_v1_cart_service_##x
#define CAT(x)  panthera_catalog_v1_catalog_service_##x

typedef Panthera__Cart__V1__Cart cart;

#define URL_MAIN    "inproc://cart-test"
#define URL_DOWN    "inproc://cart-test-catalog-down"
#define URL_NOWHERE "inproc://cart-test-nowhere"

static pgtest pg;
/* cart_pool: the cart's own, under role panthera_cart as pantherad runs it;
 * owner_pool: the migrating owner's. */
static db_pool *inv_pool, *cat_pool, *owner_pool, *cart_pool;
static inventory_service inv_svc;
static catalog_service cat_svc;
/* svc: prices from the catalog of the main server; svc_down: its catalog
 * never answers. Both on the same database. */
static cart_service svc, svc_down;
static rpc_server *srv, *srv_down;
static rpc_channel *ch, *down_ch, *self_ch, *dead_ch;
static char admin_id[37], category_id[37];

/* ---- who calls ---- */

typedef struct who {
	rpc_metadata_entry md[2];
	rpc_call_opts o;
} who;

/* Options of a call made by `user` (NULL: no caller at all). */
static const rpc_call_opts *as(who *w, const char *user, const char *roles)
{
	if (user == NULL)
		return NULL;
	w->md[0] = (rpc_metadata_entry){"x-caller-id", user};
	w->md[1] = (rpc_metadata_entry){"x-caller-roles", roles};
	w->o = (rpc_call_opts){.timeout_ms = 10000, .metadata = w->md, .n_metadata = 2};
	return &w->o;
}

static const rpc_call_opts *as_user(who *w, const char *user)
{
	return as(w, user, "USER");
}

static const rpc_call_opts *as_admin(who *w)
{
	return as(w, admin_id, "USER,ADMIN");
}

/* Hand the reply to the caller, or free it. */
static rpc_status keep(rpc_status st, rpc_reply *reply, rpc_reply **out)
{
	if (out != NULL)
		*out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

/* ---- the catalog, as an admin ---- */

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	if (svctest_pool(&inv_pool, pg.url, "inventory", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&cat_pool, pg.url, "catalog", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&owner_pool, pg.url, "cart", 8, 1) != RPC_STATUS_OK ||
	    db_grant_service_role(owner_pool, "panthera_cart", "cart") != RPC_STATUS_OK)
		return -1;
	db_pool_opts co = {.url = pg.url, .size = 8, .schema = "cart", .role = "panthera_cart"};
	if (db_pool_open(&cart_pool, &co) != RPC_STATUS_OK)
		return -1;
	/* the catalog calls inventory, and the cart the catalog, on the
	 * server all three live on */
	if (svctest_channel(&self_ch, URL_MAIN, 0) != RPC_STATUS_OK ||
	    svctest_channel(&dead_ch, URL_NOWHERE, 100) != RPC_STATUS_OK)
		return -1;
	inv_svc.pool = inv_pool;
	cat_svc = (catalog_service){.pool = cat_pool, .inventory = self_ch};
	svc = (cart_service){.pool = cart_pool, .catalog = self_ch};
	svc_down = (cart_service){.pool = cart_pool, .catalog = dead_ch, .catalog_timeout_ms = 500};
	/* A cart call waits for the catalog, which waits for inventory, on
	 * the same server: enough workers for 8 concurrent carts, 3 deep. */
	if (catalog_service_init(&cat_svc) != RPC_STATUS_OK ||
	    svctest_server(&srv, 32, 0) != RPC_STATUS_OK ||
	    inventory_service_register(srv, &inv_svc) != RPC_STATUS_OK ||
	    catalog_service_register(srv, &cat_svc) != RPC_STATUS_OK ||
	    cart_service_register(srv, &svc) != RPC_STATUS_OK ||
	    svctest_start(srv, URL_MAIN, &ch) != RPC_STATUS_OK ||
	    svctest_server(&srv_down, 32, 0) != RPC_STATUS_OK ||
	    cart_service_register(srv_down, &svc_down) != RPC_STATUS_OK ||
	    svctest_start(srv_down, URL_DOWN, &down_ch) != RPC_STATUS_OK)
		return -1;
	if (id_uuid4(admin_id) != RPC_STATUS_OK)
		return -1;
	who w;
	Panthera__Catalog__V1__CreateCategoryRequest req =
	    PANTHERA__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
	req.name = "Cart Test Goods";
	req.description = "for the tests";
	rpc_reply *reply;
	const Panthera__Catalog__V1__Category *cat;
	if (CAT(create_category)(ch, &req, as_admin(&w), &cat, &reply) != RPC_STATUS_OK) {
		rpc_reply_free(reply);
		return -1;
	}
	snprintf(category_id, sizeof(category_id), "%s", cat->id);
	rpc_reply_free(reply);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	rpc_channel_close(down_ch);
	rpc_server_destroy(srv_down);
	rpc_server_destroy(srv);
	rpc_channel_close(self_ch);
	rpc_channel_close(dead_ch);
	db_pool_close(cart_pool);
	db_pool_close(owner_pool);
	db_pool_close(cat_pool);
	db_pool_close(inv_pool);
	pgtest_destroy(&pg);
	return 0;
}

/* A product for sale at `price` in `currency`, named `name`; its id in id[]. */
static void new_product(const char *name, const char *price, const char *currency, char id[37])
{
	static unsigned n;
	char sku[32];
	snprintf(sku, sizeof(sku), "CART-%u", ++n);
	Panthera__Catalog__V1__CreateProductRequest req =
	    PANTHERA__CATALOG__V1__CREATE_PRODUCT_REQUEST__INIT;
	req.sku = sku;
	req.name = (char *)name;
	req.description = "A product for the cart tests.";
	req.price = (char *)price;
	req.currency = (char *)currency;
	req.category_id = category_id;
	req.stock = 50;
	who w;
	rpc_reply *reply;
	const Panthera__Catalog__V1__Product *p;
	assert_status(CAT(create_product)(ch, &req, as_admin(&w), &p, &reply), RPC_STATUS_OK);
	snprintf(id, 37, "%s", p->id);
	rpc_reply_free(reply);
}

/* Change one field ("price" or "currency") of a product. */
static void change_product(const char *id, const char *field, const char *value)
{
	Panthera__Catalog__V1__UpdateProductRequest req =
	    PANTHERA__CATALOG__V1__UPDATE_PRODUCT_REQUEST__INIT;
	req.product_id = (char *)id;
	if (strcmp(field, "price") == 0)
		req.price = (char *)value;
	else
		req.currency = (char *)value;
	char *paths[1] = {(char *)field};
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	mask.paths = paths;
	mask.n_paths = 1;
	req.update_mask = &mask;
	who w;
	rpc_reply *reply;
	assert_status(CAT(update_product)(ch, &req, as_admin(&w), NULL, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
}

static void delete_product(const char *id)
{
	Panthera__Catalog__V1__DeleteProductRequest req =
	    PANTHERA__CATALOG__V1__DELETE_PRODUCT_REQUEST__INIT;
	req.product_id = (char *)id;
	who w;
	rpc_reply *reply;
	assert_status(CAT(delete_product)(ch, &req, as_admin(&w), NULL, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
}

/* ---- the cart's methods; `out` NULL frees the reply ---- */

static rpc_status get_cart(rpc_channel *c, const char *user, rpc_reply **out)
{
	Panthera__Cart__V1__GetCartRequest req = PANTHERA__CART__V1__GET_CART_REQUEST__INIT;
	who w;
	rpc_reply *reply;
	rpc_status st = CART(get_cart)(c, &req, as_user(&w, user), NULL, &reply);
	return keep(st, reply, out);
}

static rpc_status add_item(rpc_channel *c, const char *user, const char *product, int quantity,
                           rpc_reply **out)
{
	Panthera__Cart__V1__AddCartItemRequest req =
	    PANTHERA__CART__V1__ADD_CART_ITEM_REQUEST__INIT;
	req.product_id = (char *)product;
	req.quantity = quantity;
	who w;
	rpc_reply *reply;
	rpc_status st = CART(add_cart_item)(c, &req, as_user(&w, user), NULL, &reply);
	return keep(st, reply, out);
}

/* UpdateCartItem; `path` is the one path of the mask, NULL for no mask. */
static rpc_status update_item_mask(rpc_channel *c, const char *user, const char *product,
                                   int quantity, const char *path, rpc_reply **out)
{
	Panthera__Cart__V1__UpdateCartItemRequest req =
	    PANTHERA__CART__V1__UPDATE_CART_ITEM_REQUEST__INIT;
	req.product_id = (char *)product;
	req.quantity = quantity;
	char *paths[1] = {(char *)path};
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	mask.paths = paths;
	mask.n_paths = 1;
	req.update_mask = path != NULL ? &mask : NULL;
	who w;
	rpc_reply *reply;
	rpc_status st = CART(update_cart_item)(c, &req, as_user(&w, user), NULL, &reply);
	return keep(st, reply, out);
}

static rpc_status update_item(rpc_channel *c, const char *user, const char *product, int quantity,
                              rpc_reply **out)
{
	return update_item_mask(c, user, product, quantity, "quantity", out);
}

static rpc_status remove_item(rpc_channel *c, const char *user, const char *product,
                              rpc_reply **out)
{
	Panthera__Cart__V1__RemoveCartItemRequest req =
	    PANTHERA__CART__V1__REMOVE_CART_ITEM_REQUEST__INIT;
	req.product_id = (char *)product;
	who w;
	rpc_reply *reply;
	rpc_status st = CART(remove_cart_item)(c, &req, as_user(&w, user), NULL, &reply);
	return keep(st, reply, out);
}

static rpc_status clear_cart(rpc_channel *c, const char *user, rpc_reply **out)
{
	Panthera__Cart__V1__ClearCartRequest req = PANTHERA__CART__V1__CLEAR_CART_REQUEST__INIT;
	who w;
	rpc_reply *reply;
	rpc_status st = CART(clear_cart)(c, &req, as_user(&w, user), NULL, &reply);
	return keep(st, reply, out);
}

/* Internal: no caller metadata, the user in the request. */
static rpc_status get_user_cart(rpc_channel *c, const char *user, rpc_reply **out)
{
	Panthera__Cart__V1__GetUserCartRequest req =
	    PANTHERA__CART__V1__GET_USER_CART_REQUEST__INIT;
	req.user_id = (char *)user;
	rpc_reply *reply;
	rpc_status st = CART(get_user_cart)(c, &req, NULL, NULL, &reply);
	return keep(st, reply, out);
}

static rpc_status complete_checkout(rpc_channel *c, const char *user, const char *order,
                                    const char *const *products, const int *quantities, size_t n,
                                    rpc_reply **out)
{
	Panthera__Cart__V1__CompleteCheckoutRequest req =
	    PANTHERA__CART__V1__COMPLETE_CHECKOUT_REQUEST__INIT;
	Panthera__Cart__V1__CheckedOutItem items[8], *ptrs[8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		panthera__cart__v1__checked_out_item__init(&items[i]);
		items[i].product_id = (char *)products[i];
		items[i].quantity = quantities[i];
		ptrs[i] = &items[i];
	}
	req.user_id = (char *)user;
	req.order_id = (char *)order;
	req.items = ptrs;
	req.n_items = n;
	rpc_reply *reply;
	rpc_status st = CART(complete_checkout)(c, &req, NULL, NULL, &reply);
	return keep(st, reply, out);
}

/* ---- checks ---- */

static const cart *cart_of(const rpc_reply *reply)
{
	const cart *c = (const cart *)rpc_reply_payload(reply);
	assert_non_null(c);
	return c;
}

typedef struct want_line {
	const char *product_id;
	int quantity;
	const char *unit_price, *line_total;
} want_line;

/* The reply is the cart of `user` with exactly these lines, in order. */
static void assert_cart(const rpc_reply *reply, const char *user, const char *subtotal,
                        const char *currency, const want_line *want, size_t n)
{
	const cart *c = cart_of(reply);
	assert_string_equal(c->user_id, user);
	if (c->n_items != n)
		fail_msg("the cart has %zu lines, want %zu", c->n_items, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(c->items[i]->product_id, want[i].product_id);
		assert_int_equal(c->items[i]->quantity, want[i].quantity);
		assert_string_equal(c->items[i]->unit_price, want[i].unit_price);
		assert_string_equal(c->items[i]->line_total, want[i].line_total);
	}
	assert_string_equal(c->subtotal, subtotal);
	assert_string_equal(c->currency, currency);
}

/* The cart of `user` as GetCart answers it has exactly these lines. */
static void assert_stored(const char *user, const char *subtotal, const char *currency,
                          const want_line *want, size_t n)
{
	rpc_reply *reply;
	assert_status(get_cart(ch, user, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, subtotal, currency, want, n);
	rpc_reply_free(reply);
}

static void assert_empty(const char *user)
{
	assert_stored(user, "0.00", "", NULL, 0);
}

static int has_violation(const rpc_reply *reply, const char *field)
{
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	if (d == NULL || d->bad_request == NULL)
		return 0;
	for (size_t i = 0; i < d->bad_request->n_field_violations; i++) {
		if (strcmp(d->bad_request->field_violations[i]->field, field) == 0)
			return 1;
	}
	return 0;
}

/* The call failed with `reason` in its ErrorInfo; frees the reply. */
static void assert_reason(rpc_reply *reply, const char *reason)
{
	assert_string_equal(rpc_reply_error_reason(reply), reason);
	rpc_reply_free(reply);
}

/* The call failed INVALID_ARGUMENT naming `field`; frees the reply. */
static void assert_violation(rpc_reply *reply, const char *field)
{
	assert_int_equal(rpc_reply_status(reply), RPC_STATUS_INVALID_ARGUMENT);
	if (!has_violation(reply, field))
		fail_msg("no violation of %s in \"%s\"", field, rpc_reply_message(reply));
	rpc_reply_free(reply);
}

/* A one-value query on the cart's database with at most one parameter. */
static long query_long(const char *sql, const char *param)
{
	db_conn *c;
	assert_status(db_acquire(cart_pool, 5000, &c), RPC_STATUS_OK);
	PGresult *r;
	const char *p[1] = {param};
	assert_status(db_exec(c, NULL, sql, param ? 1 : 0, param ? p : NULL, &r), RPC_STATUS_OK);
	long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	db_release(cart_pool, c);
	return v;
}

static void upper(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'a' && *s <= 'f')
			*s = (char)(*s - 'a' + 'A');
	}
}

/* ---- tests ---- */

static void test_a_new_cart_is_empty_and_needs_a_caller(void **state)
{
	(void)state;
	char user[37], product[37];
	svctest_new_id(user);
	new_product("Empty Test", "1.00", "USD", product);
	rpc_reply *reply;
	assert_status(get_cart(ch, user, &reply), RPC_STATUS_OK);
	const cart *c = cart_of(reply);
	assert_string_equal(c->user_id, user);
	assert_int_equal(c->n_items, 0);
	assert_string_equal(c->subtotal, "0.00");
	assert_string_equal(c->currency, "");
	assert_null(c->updated_at); /* never used */
	rpc_reply_free(reply);

	/* every public method wants the caller's identity */
	assert_status(get_cart(ch, NULL, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(add_item(ch, NULL, product, 1, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(update_item(ch, NULL, product, 1, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(remove_item(ch, NULL, product, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(clear_cart(ch, NULL, NULL), RPC_STATUS_UNAUTHENTICATED);
	/* an identity that is not a user id counts as none */
	assert_status(get_cart(ch, "not-a-user", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(add_item(ch, "", product, 1, NULL), RPC_STATUS_UNAUTHENTICATED);
	/* none of that created anything */
	assert_int_equal(
	    query_long("SELECT count(*) FROM cart_lines WHERE product_id = $1", product), 0);
}

static void test_add_adds_to_a_line_and_keeps_the_order(void **state)
{
	(void)state;
	char user[37], a[37], b[37];
	svctest_new_id(user);
	new_product("Lantern", "12.50", "USD", a);
	new_product("Matches", "3.99", "USD", b);
	rpc_reply *reply;
	assert_status(add_item(ch, user, a, 2, &reply), RPC_STATUS_OK);
	want_line one[] = {{a, 2, "12.50", "25.00"}};
	assert_cart(reply, user, "25.00", "USD", one, 1);
	const cart *c = cart_of(reply);
	assert_non_null(c->updated_at);
	assert_true(c->updated_at->seconds > 1700000000);
	assert_string_equal(c->items[0]->name, "Lantern");
	rpc_reply_free(reply);

	assert_status(add_item(ch, user, b, 1, NULL), RPC_STATUS_OK);
	/* more of the first product: the same line, still first */
	assert_status(add_item(ch, user, a, 3, &reply), RPC_STATUS_OK);
	want_line two[] = {{a, 5, "12.50", "62.50"}, {b, 1, "3.99", "3.99"}};
	assert_cart(reply, user, "66.49", "USD", two, 2);
	assert_string_equal(cart_of(reply)->items[1]->name, "Matches");
	rpc_reply_free(reply);
	/* an id in upper case names the same product */
	char a_upper[37];
	memcpy(a_upper, a, sizeof(a_upper));
	upper(a_upper);
	assert_status(add_item(ch, user, a_upper, 1, &reply), RPC_STATUS_OK);
	want_line three[] = {{a, 6, "12.50", "75.00"}, {b, 1, "3.99", "3.99"}};
	assert_cart(reply, user, "78.99", "USD", three, 2);
	rpc_reply_free(reply);
	assert_stored(user, "78.99", "USD", three, 2);
	/* and the caller's id in upper case names the same cart */
	char user_upper[37];
	memcpy(user_upper, user, sizeof(user_upper));
	upper(user_upper);
	assert_status(get_cart(ch, user_upper, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, "78.99", "USD", three, 2);
	rpc_reply_free(reply);
	/* no price is stored: only products and units */
	assert_int_equal(query_long("SELECT count(*) FROM information_schema.columns WHERE "
	                            "table_schema = 'cart' AND column_name LIKE '%price%'",
	                            NULL),
	                 0);
}

static void test_add_refuses_bad_input_and_the_line_limit(void **state)
{
	(void)state;
	char user[37], a[37], unknown[37];
	svctest_new_id(user);
	svctest_new_id(unknown);
	new_product("Rope", "7.00", "USD", a);
	rpc_reply *reply;
	add_item(ch, user, "not-a-uuid", 1, &reply);
	assert_violation(reply, "product_id");
	add_item(ch, user, "'; DROP TABLE cart_lines; --", 1, &reply);
	assert_violation(reply, "product_id");
	add_item(ch, user, a, 0, &reply);
	assert_violation(reply, "quantity");
	add_item(ch, user, a, -3, &reply);
	assert_violation(reply, "quantity");
	add_item(ch, user, a, 1001, &reply);
	assert_violation(reply, "quantity");
	/* both at once */
	assert_status(add_item(ch, user, "", 0, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "product_id") && has_violation(reply, "quantity"));
	rpc_reply_free(reply);
	assert_empty(user);

	/* up to 1000 units in a line, not one more */
	assert_status(add_item(ch, user, a, 600, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, a, 400, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, a, 1, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "quantity"));
	assert_reason(reply, "CART_LINE_LIMIT");
	want_line full[] = {{a, 1000, "7.00", "7000.00"}};
	assert_stored(user, "7000.00", "USD", full, 1);

	/* a product the catalog does not know */
	assert_status(add_item(ch, user, unknown, 1, &reply), RPC_STATUS_NOT_FOUND);
	assert_non_null(strstr(rpc_reply_message(reply), unknown));
	assert_reason(reply, "PRODUCT_NOT_FOUND");
	assert_stored(user, "7000.00", "USD", full, 1);
}

static void test_a_cart_holds_one_currency(void **state)
{
	(void)state;
	char user[37], other[37], usd[37], eur[37];
	svctest_new_id(user);
	svctest_new_id(other);
	new_product("Dollar Thing", "2.00", "USD", usd);
	new_product("Euro Thing", "3.00", "EUR", eur);
	assert_status(add_item(ch, user, usd, 1, NULL), RPC_STATUS_OK);
	rpc_reply *reply;
	assert_status(add_item(ch, user, eur, 1, &reply), RPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(rpc_reply_message(reply), "EUR"));
	assert_reason(reply, "CURRENCY_MISMATCH");
	want_line usd_only[] = {{usd, 1, "2.00", "2.00"}};
	assert_stored(user, "2.00", "USD", usd_only, 1);
	/* another cart may be in euros */
	assert_status(add_item(ch, other, eur, 2, &reply), RPC_STATUS_OK);
	want_line eur_only[] = {{eur, 2, "3.00", "6.00"}};
	assert_cart(reply, other, "6.00", "EUR", eur_only, 1);
	rpc_reply_free(reply);
	/* once the cart is empty, any currency */
	assert_status(remove_item(ch, user, usd, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, eur, 1, NULL), RPC_STATUS_OK);
	want_line eur_now[] = {{eur, 1, "3.00", "3.00"}};
	assert_stored(user, "3.00", "EUR", eur_now, 1);
}

static void test_update_sets_units_and_zero_removes(void **state)
{
	(void)state;
	char user[37], a[37], b[37], c[37], absent[37];
	svctest_new_id(user);
	new_product("Tent", "150.00", "USD", a);
	new_product("Stove", "45.50", "USD", b);
	new_product("Pot", "9.95", "USD", c);
	new_product("Never Added", "1.00", "USD", absent);
	assert_status(add_item(ch, user, a, 1, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, b, 1, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, c, 1, NULL), RPC_STATUS_OK);
	rpc_reply *reply;
	/* a new quantity keeps the line's place */
	assert_status(update_item(ch, user, b, 4, &reply), RPC_STATUS_OK);
	want_line set[] = {
	    {a, 1, "150.00", "150.00"}, {b, 4, "45.50", "182.00"}, {c, 1, "9.95", "9.95"}};
	assert_cart(reply, user, "341.95", "USD", set, 3);
	rpc_reply_free(reply);
	assert_status(update_item(ch, user, b, 1000, NULL), RPC_STATUS_OK);
	/* 0 removes the line */
	assert_status(update_item(ch, user, a, 0, &reply), RPC_STATUS_OK);
	want_line removed[] = {{b, 1000, "45.50", "45500.00"}, {c, 1, "9.95", "9.95"}};
	assert_cart(reply, user, "45509.95", "USD", removed, 2);
	rpc_reply_free(reply);
	/* a line added again goes last */
	assert_status(add_item(ch, user, a, 2, NULL), RPC_STATUS_OK);
	want_line again[] = {
	    {b, 1000, "45.50", "45500.00"}, {c, 1, "9.95", "9.95"}, {a, 2, "150.00", "300.00"}};
	assert_stored(user, "45809.95", "USD", again, 3);

	/* no line for the product: NOT_FOUND, with 0 too */
	assert_status(update_item(ch, user, absent, 3, &reply), RPC_STATUS_NOT_FOUND);
	assert_reason(reply, "CART_ITEM_NOT_FOUND");
	assert_status(update_item(ch, user, absent, 0, &reply), RPC_STATUS_NOT_FOUND);
	assert_reason(reply, "CART_ITEM_NOT_FOUND");
	/* refused input */
	update_item(ch, user, b, 1001, &reply);
	assert_violation(reply, "quantity");
	update_item(ch, user, b, -1, &reply);
	assert_violation(reply, "quantity");
	update_item(ch, user, "123", 1, &reply);
	assert_violation(reply, "product_id");
	update_item_mask(ch, user, b, 2, NULL, &reply);
	assert_violation(reply, "update_mask");
	update_item_mask(ch, user, b, 2, "unit_price", &reply);
	assert_violation(reply, "update_mask");
	assert_stored(user, "45809.95", "USD", again, 3);
}

static void test_remove_and_clear(void **state)
{
	(void)state;
	char user[37], a[37], b[37], never[37];
	svctest_new_id(user);
	svctest_new_id(never);
	new_product("Map", "4.00", "USD", a);
	new_product("Compass", "19.00", "USD", b);
	assert_status(add_item(ch, user, a, 1, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, b, 2, NULL), RPC_STATUS_OK);
	rpc_reply *reply;
	assert_status(remove_item(ch, user, a, &reply), RPC_STATUS_OK);
	want_line left[] = {{b, 2, "19.00", "38.00"}};
	assert_cart(reply, user, "38.00", "USD", left, 1);
	rpc_reply_free(reply);
	assert_status(remove_item(ch, user, a, &reply), RPC_STATUS_NOT_FOUND);
	assert_reason(reply, "CART_ITEM_NOT_FOUND");
	remove_item(ch, user, "nope", &reply);
	assert_violation(reply, "product_id");

	assert_status(clear_cart(ch, user, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, "0.00", "", NULL, 0);
	assert_non_null(cart_of(reply)->updated_at); /* used, and changed just now */
	rpc_reply_free(reply);
	assert_empty(user);
	assert_status(clear_cart(ch, user, NULL), RPC_STATUS_OK); /* again: the same */
	/* clearing a cart never used leaves it never used */
	assert_status(clear_cart(ch, never, &reply), RPC_STATUS_OK);
	assert_cart(reply, never, "0.00", "", NULL, 0);
	assert_null(cart_of(reply)->updated_at);
	rpc_reply_free(reply);
}

static void test_prices_come_from_the_catalog_at_every_read(void **state)
{
	(void)state;
	char user[37], a[37];
	svctest_new_id(user);
	new_product("Headlamp", "10.00", "USD", a);
	assert_status(add_item(ch, user, a, 3, NULL), RPC_STATUS_OK);
	want_line before[] = {{a, 3, "10.00", "30.00"}};
	assert_stored(user, "30.00", "USD", before, 1);
	change_product(a, "price", "12.34");
	want_line after[] = {{a, 3, "12.34", "37.02"}};
	assert_stored(user, "37.02", "USD", after, 1);
	rpc_reply *reply;
	assert_status(get_user_cart(ch, user, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, "37.02", "USD", after, 1);
	rpc_reply_free(reply);
	/* exact cents, large amounts */
	change_product(a, "price", "9999999999.99");
	assert_status(update_item(ch, user, a, 1000, NULL), RPC_STATUS_OK);
	want_line big[] = {{a, 1000, "9999999999.99", "9999999999990.00"}};
	assert_stored(user, "9999999999990.00", "USD", big, 1);
	change_product(a, "price", "0.10");
	assert_status(update_item(ch, user, a, 3, NULL), RPC_STATUS_OK);
	want_line dime[] = {{a, 3, "0.10", "0.30"}};
	assert_stored(user, "0.30", "USD", dime, 1);
}

static void test_a_deleted_product_leaves_the_priced_cart(void **state)
{
	(void)state;
	char user[37], a[37], b[37];
	svctest_new_id(user);
	new_product("Keeps", "5.00", "USD", a);
	new_product("Goes", "8.00", "USD", b);
	assert_status(add_item(ch, user, a, 1, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, b, 2, NULL), RPC_STATUS_OK);
	delete_product(b);
	want_line only_a[] = {{a, 1, "5.00", "5.00"}};
	assert_stored(user, "5.00", "USD", only_a, 1);
	rpc_reply *reply;
	assert_status(get_user_cart(ch, user, &reply), RPC_STATUS_OK); /* checkout sees the same */
	assert_cart(reply, user, "5.00", "USD", only_a, 1);
	rpc_reply_free(reply);
	/* no more of it */
	assert_status(add_item(ch, user, b, 1, &reply), RPC_STATUS_NOT_FOUND);
	assert_reason(reply, "PRODUCT_NOT_FOUND");
	assert_status(update_item(ch, user, b, 3, &reply), RPC_STATUS_NOT_FOUND);
	assert_reason(reply, "PRODUCT_NOT_FOUND");
	/* but its line can go */
	assert_int_equal(query_long("SELECT count(*) FROM cart_lines WHERE product_id = $1", b), 1);
	assert_status(remove_item(ch, user, b, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, "5.00", "USD", only_a, 1);
	rpc_reply_free(reply);
	assert_int_equal(query_long("SELECT count(*) FROM cart_lines WHERE product_id = $1", b), 0);

	/* a product moved to another currency leaves the cart's view too */
	char c[37];
	new_product("Moves Abroad", "6.00", "USD", c);
	assert_status(add_item(ch, user, c, 1, NULL), RPC_STATUS_OK);
	change_product(c, "currency", "GBP");
	assert_stored(user, "5.00", "USD", only_a, 1);
	assert_status(add_item(ch, user, c, 1, &reply), RPC_STATUS_FAILED_PRECONDITION);
	assert_reason(reply, "CURRENCY_MISMATCH");
}

static void test_a_user_never_sees_another_users_cart(void **state)
{
	(void)state;
	char alice[37], bob[37], a[37];
	svctest_new_id(alice);
	svctest_new_id(bob);
	new_product("Alice's", "1.50", "USD", a);
	assert_status(add_item(ch, alice, a, 2, NULL), RPC_STATUS_OK);
	assert_empty(bob);
	rpc_reply *reply;
	assert_status(remove_item(ch, bob, a, &reply), RPC_STATUS_NOT_FOUND);
	assert_reason(reply, "CART_ITEM_NOT_FOUND");
	assert_status(update_item(ch, bob, a, 5, NULL), RPC_STATUS_NOT_FOUND);
	assert_status(clear_cart(ch, bob, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, bob, a, 1, NULL), RPC_STATUS_OK);
	want_line alices[] = {{a, 2, "1.50", "3.00"}};
	assert_stored(alice, "3.00", "USD", alices, 1);
	want_line bobs[] = {{a, 1, "1.50", "1.50"}};
	assert_stored(bob, "1.50", "USD", bobs, 1);
	/* roles do not open another cart: the cart is always the caller's */
	who w;
	Panthera__Cart__V1__GetCartRequest req = PANTHERA__CART__V1__GET_CART_REQUEST__INIT;
	assert_status(CART(get_cart)(ch, &req, as(&w, bob, "USER,ADMIN"), NULL, &reply),
	              RPC_STATUS_OK);
	assert_cart(reply, bob, "1.50", "USD", bobs, 1);
	rpc_reply_free(reply);
}

static void test_get_user_cart_is_the_users_cart(void **state)
{
	(void)state;
	char user[37], a[37], fresh[37];
	svctest_new_id(user);
	svctest_new_id(fresh);
	new_product("Internal", "2.25", "USD", a);
	assert_status(add_item(ch, user, a, 4, NULL), RPC_STATUS_OK);
	rpc_reply *reply;
	assert_status(get_user_cart(ch, user, &reply), RPC_STATUS_OK);
	want_line lines[] = {{a, 4, "2.25", "9.00"}};
	assert_cart(reply, user, "9.00", "USD", lines, 1);
	assert_non_null(cart_of(reply)->updated_at);
	rpc_reply_free(reply);
	assert_status(get_user_cart(ch, fresh, &reply), RPC_STATUS_OK);
	assert_cart(reply, fresh, "0.00", "", NULL, 0);
	rpc_reply_free(reply);
	get_user_cart(ch, "", &reply);
	assert_violation(reply, "user_id");
	get_user_cart(ch, "1234", &reply);
	assert_violation(reply, "user_id");
}

static void test_complete_checkout_once_per_order_keeping_new_lines(void **state)
{
	(void)state;
	char user[37], order[37], a[37], b[37], c[37], elsewhere[37];
	svctest_new_id(user);
	svctest_new_id(order);
	svctest_new_id(elsewhere);
	new_product("Boots", "80.00", "USD", a);
	new_product("Socks", "6.00", "USD", b);
	new_product("Laces", "2.00", "USD", c);
	assert_status(add_item(ch, user, a, 3, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, b, 2, NULL), RPC_STATUS_OK);
	/* checkout reads the cart, then, while the order is made, the user
	 * adds more boots and new laces */
	rpc_reply *reply;
	assert_status(get_user_cart(ch, user, &reply), RPC_STATUS_OK);
	assert_int_equal(cart_of(reply)->n_items, 2);
	rpc_reply_free(reply);
	assert_status(add_item(ch, user, a, 2, NULL), RPC_STATUS_OK);
	assert_status(add_item(ch, user, c, 1, NULL), RPC_STATUS_OK);

	const char *taken[] = {a, b, elsewhere};
	const int units[] = {3, 2, 1};
	assert_status(complete_checkout(ch, user, order, taken, units, 3, &reply), RPC_STATUS_OK);
	want_line left[] = {{a, 2, "80.00", "160.00"}, {c, 1, "2.00", "2.00"}};
	assert_cart(reply, user, "162.00", "USD", left, 2);
	rpc_reply_free(reply);
	/* the same order again: nothing more goes */
	assert_status(complete_checkout(ch, user, order, taken, units, 3, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, "162.00", "USD", left, 2);
	rpc_reply_free(reply);
	assert_stored(user, "162.00", "USD", left, 2);
	assert_int_equal(query_long("SELECT count(*) FROM checkouts WHERE order_id = $1", order),
	                 1);
	/* an order id in upper case is the same order */
	char order_upper[37];
	memcpy(order_upper, order, sizeof(order_upper));
	upper(order_upper);
	assert_status(complete_checkout(ch, user, order_upper, taken, units, 3, NULL),
	              RPC_STATUS_OK);
	assert_stored(user, "162.00", "USD", left, 2);
	/* a second order takes more than a line holds: the line goes */
	char order2[37];
	svctest_new_id(order2);
	const char *boots[] = {a};
	const int many[] = {5};
	assert_status(complete_checkout(ch, user, order2, boots, many, 1, &reply), RPC_STATUS_OK);
	want_line laces[] = {{c, 1, "2.00", "2.00"}};
	assert_cart(reply, user, "2.00", "USD", laces, 1);
	rpc_reply_free(reply);

	/* an order applied to one user's cart is not another's */
	char other[37];
	svctest_new_id(other);
	assert_status(add_item(ch, other, a, 3, NULL), RPC_STATUS_OK);
	assert_status(complete_checkout(ch, other, order, taken, units, 3, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_reason(reply, "ORDER_ALREADY_CHECKED_OUT");
	want_line others[] = {{a, 3, "80.00", "240.00"}};
	assert_stored(other, "240.00", "USD", others, 1);

	/* refused input */
	char order3[37];
	svctest_new_id(order3);
	complete_checkout(ch, "x", order3, taken, units, 1, &reply);
	assert_violation(reply, "user_id");
	complete_checkout(ch, user, "", taken, units, 1, &reply);
	assert_violation(reply, "order_id");
	complete_checkout(ch, user, order3, taken, units, 0, &reply);
	assert_violation(reply, "items");
	const char *twice[] = {c, c};
	const int ones[] = {1, 1};
	complete_checkout(ch, user, order3, twice, ones, 2, &reply);
	assert_violation(reply, "items");
	const char *bad_id[] = {"nope"};
	complete_checkout(ch, user, order3, bad_id, ones, 1, &reply);
	assert_violation(reply, "items.product_id");
	const int zero[] = {0};
	complete_checkout(ch, user, order3, boots, zero, 1, &reply);
	assert_violation(reply, "items.quantity");
	/* none of those was recorded */
	assert_int_equal(query_long("SELECT count(*) FROM checkouts WHERE order_id = $1", order3),
	                 0);
	assert_stored(user, "2.00", "USD", laces, 1);
}

typedef struct adder {
	const char *user, *product;
	int rounds;
	rpc_status st;
} adder;

static void *add_many(void *arg)
{
	adder *a = arg;
	a->st = RPC_STATUS_OK;
	for (int i = 0; i < a->rounds && a->st == RPC_STATUS_OK; i++)
		a->st = add_item(ch, a->user, a->product, 5, NULL);
	return NULL;
}

static void test_concurrent_adds_sum_exactly(void **state)
{
	(void)state;
	char user[37], a[37];
	svctest_new_id(user);
	new_product("Energy Bar", "1.25", "USD", a);
	enum { THREADS = 8, ROUNDS = 4 };
	pthread_t t[THREADS];
	adder args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i] = (adder){.user = user, .product = a, .rounds = ROUNDS};
		assert_int_equal(pthread_create(&t[i], NULL, add_many, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_status(args[i].st, RPC_STATUS_OK);
	}
	want_line all[] = {{a, THREADS * ROUNDS * 5, "1.25", "200.00"}};
	assert_stored(user, "200.00", "USD", all, 1);
}

static void test_a_cart_holds_at_most_100_lines(void **state)
{
	(void)state;
	char user[37], ids[CART_MAX_LINES + 1][37];
	svctest_new_id(user);
	for (int i = 0; i <= CART_MAX_LINES; i++) {
		char name[32];
		snprintf(name, sizeof(name), "Bulk %d", i);
		new_product(name, "1.00", "USD", ids[i]);
	}
	for (int i = 0; i < CART_MAX_LINES; i++)
		assert_status(add_item(ch, user, ids[i], 1, NULL), RPC_STATUS_OK);
	rpc_reply *reply;
	assert_status(add_item(ch, user, ids[CART_MAX_LINES], 1, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_reason(reply, "CART_FULL");
	/* more units of a line it has are fine */
	assert_status(add_item(ch, user, ids[0], 1, &reply), RPC_STATUS_OK);
	const cart *c = cart_of(reply);
	assert_int_equal(c->n_items, CART_MAX_LINES);
	assert_string_equal(c->subtotal, "101.00");
	for (int i = 0; i < CART_MAX_LINES; i++)
		assert_string_equal(c->items[i]->product_id, ids[i]);
	rpc_reply_free(reply);
}

static void test_without_the_catalog_nothing_is_priced_or_changed(void **state)
{
	(void)state;
	char user[37], empty[37], a[37], order[37];
	svctest_new_id(user);
	svctest_new_id(empty);
	svctest_new_id(order);
	new_product("Offline", "3.00", "USD", a);
	assert_status(add_item(ch, user, a, 2, NULL), RPC_STATUS_OK);
	want_line two[] = {{a, 2, "3.00", "6.00"}};
	rpc_reply *reply;
	/* the server of svc_down shares the database, not a catalog */
	assert_status(get_cart(down_ch, user, &reply), RPC_STATUS_UNAVAILABLE);
	assert_non_null(strstr(rpc_reply_message(reply), "catalog"));
	assert_reason(reply, "CATALOG_UNAVAILABLE");
	assert_status(get_user_cart(down_ch, user, NULL), RPC_STATUS_UNAVAILABLE);
	assert_status(add_item(down_ch, user, a, 1, NULL), RPC_STATUS_UNAVAILABLE);
	assert_status(update_item(down_ch, user, a, 7, NULL), RPC_STATUS_UNAVAILABLE);
	assert_status(remove_item(down_ch, user, a, NULL), RPC_STATUS_UNAVAILABLE);
	assert_stored(user, "6.00", "USD", two, 1); /* unchanged */
	/* what needs no price still answers */
	assert_status(get_cart(down_ch, empty, NULL), RPC_STATUS_OK);
	assert_status(update_item(down_ch, user, order, 1, &reply), RPC_STATUS_NOT_FOUND);
	assert_reason(reply, "CART_ITEM_NOT_FOUND");
	/* CompleteCheckout applies its removal, then fails to price... */
	const char *taken[] = {a};
	const int one[] = {1};
	assert_status(complete_checkout(down_ch, user, order, taken, one, 1, NULL),
	              RPC_STATUS_UNAVAILABLE);
	want_line left[] = {{a, 1, "3.00", "3.00"}};
	assert_stored(user, "3.00", "USD", left, 1);
	/* ...and its retry, once the catalog answers, changes nothing */
	assert_status(complete_checkout(ch, user, order, taken, one, 1, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, "3.00", "USD", left, 1);
	rpc_reply_free(reply);
	assert_status(clear_cart(down_ch, user, &reply), RPC_STATUS_OK);
	assert_cart(reply, user, "0.00", "", NULL, 0);
	rpc_reply_free(reply);
	assert_empty(user);
}

static void test_arena_exhaustion_is_a_clean_error(void **state)
{
	(void)state;
	/* a cart of a dozen lines with long names, served with ever larger
	 * call arenas: each call fails cleanly until it fits */
	enum { N = 12 };
	char user[37], p[N][37], name[220];
	svctest_new_id(user);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "Arena product %d", i);
		while (strlen(name) < 190)
			strcat(name, " and more");
		new_product(name, "1.00", "USD", p[i]);
		assert_status(add_item(ch, user, p[i], 1, NULL), RPC_STATUS_OK);
	}
	int exhausted = 0, ok_at_last = 0;
	for (size_t budget = 64; budget <= (size_t)1 << 20; budget += budget / 2) {
		char url[80];
		snprintf(url, sizeof(url), "inproc://cart-test-arena-%zu", budget);
		rpc_server *s;
		rpc_server_opts so = {.workers = 2, .max_call_memory = budget};
		assert_status(rpc_server_create(&s, &so), RPC_STATUS_OK);
		assert_status(cart_service_register(s, &svc), RPC_STATUS_OK);
		rpc_channel *c;
		assert_status(svctest_start(s, url, &c), RPC_STATUS_OK);
		rpc_status got[3];
		got[0] = get_cart(c, user, NULL);
		got[1] = update_item(c, user, p[0], 1, NULL);
		got[2] = get_user_cart(c, user, NULL);
		int all_ok = 1;
		for (int i = 0; i < 3; i++) {
			if (got[i] != RPC_STATUS_OK && got[i] != RPC_STATUS_RESOURCE_EXHAUSTED)
				fail_msg("budget %zu, call %d: %s", budget, i,
				         rpc_status_name(got[i]));
			exhausted |= got[i] == RPC_STATUS_RESOURCE_EXHAUSTED;
			all_ok &= got[i] == RPC_STATUS_OK;
		}
		ok_at_last = all_ok;
		rpc_channel_close(c);
		rpc_server_destroy(s);
		if (all_ok)
			break;
	}
	assert_true(exhausted);
	assert_true(ok_at_last);
	assert_int_equal(query_long("SELECT count(*) FROM cart_lines WHERE user_id = $1", user), N);
}

/* cart_sweep deletes the applied order ids past CART_CHECKOUT_KEEP_S and
 * keeps younger ones (and every cart). */
static void test_sweep_forgets_old_checkouts_only(void **state)
{
	(void)state;
	char user[37], old_order[37], young_order[37], p[37];
	svctest_new_id(user);
	svctest_new_id(old_order);
	svctest_new_id(young_order);
	new_product("Compass", "15.00", "USD", p);
	assert_status(add_item(ch, user, p, 5, NULL), RPC_STATUS_OK);
	const char *taken[] = {p};
	const int one[] = {1};
	assert_status(complete_checkout(ch, user, old_order, taken, one, 1, NULL), RPC_STATUS_OK);
	assert_status(complete_checkout(ch, user, young_order, taken, one, 1, NULL), RPC_STATUS_OK);
	/* one just past the retention, one just inside it */
	db_conn *c;
	assert_status(db_acquire(cart_pool, 5000, &c), RPC_STATUS_OK);
	const char *q[1] = {old_order};
	assert_status(db_exec(c, NULL,
	                      "UPDATE checkouts SET applied_at = now() - interval '7 days 1 minute'"
	                      " WHERE order_id = $1",
	                      1, q, NULL),
	              RPC_STATUS_OK);
	q[0] = young_order;
	assert_status(db_exec(c, NULL,
	                      "UPDATE checkouts SET applied_at = now() - interval '6 days 23 hours'"
	                      " WHERE order_id = $1",
	                      1, q, NULL),
	              RPC_STATUS_OK);
	db_release(cart_pool, c);
	long deleted = -1;
	assert_status(cart_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(
	    query_long("SELECT count(*) FROM checkouts WHERE order_id = $1", old_order), 0);
	assert_int_equal(
	    query_long("SELECT count(*) FROM checkouts WHERE order_id = $1", young_order), 1);
	assert_int_equal(query_long("SELECT count(*) FROM cart_lines WHERE user_id = $1", user), 1);
	/* nothing more to do: a second sweep deletes nothing */
	assert_status(cart_sweep(&svc, &deleted), RPC_STATUS_OK);
	assert_int_equal(deleted, 0);
	assert_status(cart_sweep(NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
}

static void test_register_wants_a_pool_and_a_catalog(void **state)
{
	(void)state;
	rpc_server *s;
	assert_status(rpc_server_create(&s, NULL), RPC_STATUS_OK);
	cart_service no_catalog = {.pool = cart_pool};
	cart_service no_pool = {.catalog = self_ch};
	assert_status(cart_service_register(s, &no_catalog), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(cart_service_register(s, &no_pool), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(cart_service_register(s, NULL), RPC_STATUS_INVALID_ARGUMENT);
	rpc_server_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_new_cart_is_empty_and_needs_a_caller),
	    cmocka_unit_test(test_add_adds_to_a_line_and_keeps_the_order),
	    cmocka_unit_test(test_add_refuses_bad_input_and_the_line_limit),
	    cmocka_unit_test(test_a_cart_holds_one_currency),
	    cmocka_unit_test(test_update_sets_units_and_zero_removes),
	    cmocka_unit_test(test_remove_and_clear),
	    cmocka_unit_test(test_prices_come_from_the_catalog_at_every_read),
	    cmocka_unit_test(test_a_deleted_product_leaves_the_priced_cart),
	    cmocka_unit_test(test_a_user_never_sees_another_users_cart),
	    cmocka_unit_test(test_get_user_cart_is_the_users_cart),
	    cmocka_unit_test(test_complete_checkout_once_per_order_keeping_new_lines),
	    cmocka_unit_test(test_sweep_forgets_old_checkouts_only),
	    cmocka_unit_test(test_concurrent_adds_sum_exactly),
	    cmocka_unit_test(test_a_cart_holds_at_most_100_lines),
	    cmocka_unit_test(test_without_the_catalog_nothing_is_priced_or_changed),
	    cmocka_unit_test(test_arena_exhaustion_is_a_clean_error),
	    cmocka_unit_test(test_register_wants_a_pool_and_a_catalog),
	};
	return cmocka_run_group_tests_name("cart", tests, setup, teardown);
}
