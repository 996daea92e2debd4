/*
 * test_catalog.c - CatalogService through its generated client stubs, over
 * the RPC runtime, on a real PostgreSQL, with a real InventoryService on
 * the same server for the stock: categories, products and their
 * validation, exact prices, full-text search, filters, sort orders, pages,
 * update masks, soft delete, the internal RPCs, ProductChanged events in
 * the outbox, a catalog that stays readable when inventory is down, and
 * the demo seed.
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
#include "catalog.h"
#include "inventory.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/rpc/v1/rpc.pb-c.h"

#define CAT(x) panthera_catalog_v1_catalog_service_##x
#define INV(x) panthera_inventory_v1_inventory_service_##x

typedef Panthera__Catalog__V1__Product product;

#define URL_MAIN    "inproc://catalog-test"
#define URL_DOWN    "inproc://catalog-test-inventory-down"
#define URL_NOINV   "inproc://catalog-test-no-inventory"
#define URL_NOWHERE "inproc://catalog-test-nowhere"

static pgtest pg;
static db_pool *inv_pool, *cat_pool;
static inventory_service inv_svc;
/* svc: with inventory; svc_down: its inventory never answers; svc_noinv:
 * no inventory channel. All three on the same database. */
static catalog_service svc, svc_down, svc_noinv;
static rpc_server *srv, *srv_down, *srv_noinv;
static rpc_channel *ch, *inv_ch, *dead_ch, *down_ch, *noinv_ch;

static rpc_status serve(rpc_server **s, const char *url, catalog_service *cs, int with_inventory)
{
	rpc_status st = svctest_server(s, 8, 0);
	if (st == RPC_STATUS_OK && with_inventory)
		st = inventory_service_register(*s, &inv_svc);
	if (st == RPC_STATUS_OK)
		st = catalog_service_register(*s, cs);
	return st == RPC_STATUS_OK ? svctest_start(*s, url, NULL) : st;
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	if (svctest_pool(&inv_pool, pg.url, "inventory", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&cat_pool, pg.url, "catalog", 8, 1) != RPC_STATUS_OK)
		return -1;
	inv_svc.pool = inv_pool;
	/* the catalog calls inventory on the server both live on */
	if (svctest_channel(&inv_ch, URL_MAIN, 0) != RPC_STATUS_OK ||
	    svctest_channel(&dead_ch, URL_NOWHERE, 100) != RPC_STATUS_OK)
		return -1;
	svc = (catalog_service){.pool = cat_pool, .inventory = inv_ch};
	svc_down = (catalog_service){.pool = cat_pool, .inventory = dead_ch};
	svc_noinv = (catalog_service){.pool = cat_pool, .inventory = NULL};
	if (catalog_service_init(&svc) != RPC_STATUS_OK ||
	    serve(&srv, URL_MAIN, &svc, 1) != RPC_STATUS_OK ||
	    serve(&srv_down, URL_DOWN, &svc_down, 0) != RPC_STATUS_OK ||
	    serve(&srv_noinv, URL_NOINV, &svc_noinv, 0) != RPC_STATUS_OK ||
	    svctest_channel(&ch, URL_MAIN, 0) != RPC_STATUS_OK ||
	    svctest_channel(&down_ch, URL_DOWN, 0) != RPC_STATUS_OK ||
	    svctest_channel(&noinv_ch, URL_NOINV, 0) != RPC_STATUS_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	rpc_channel_close(down_ch);
	rpc_channel_close(noinv_ch);
	rpc_server_destroy(srv);
	rpc_server_destroy(srv_down);
	rpc_server_destroy(srv_noinv);
	rpc_channel_close(inv_ch);
	rpc_channel_close(dead_ch);
	db_pool_close(cat_pool);
	db_pool_close(inv_pool);
	pgtest_destroy(&pg);
	return 0;
}

/* ---- helpers ---- */

/* A name no other test uses: "<prefix>-<n>". */
static const char *unique(const char *prefix)
{
	static char buf[8][96];
	static unsigned n;
	char *b = buf[n % 8];
	snprintf(b, sizeof(buf[0]), "%s-%u", prefix, ++n);
	return b;
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

static size_t n_violations(const rpc_reply *reply)
{
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	return d == NULL || d->bad_request == NULL ? 0 : d->bad_request->n_field_violations;
}

static rpc_status create_category(rpc_channel *c, const char *name, const char *parent,
                                  char id_out[37], rpc_reply **reply_out)
{
	Panthera__Catalog__V1__CreateCategoryRequest req =
	    PANTHERA__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
	req.name = (char *)name;
	req.description = "for the tests";
	req.parent_id = (char *)(parent ? parent : "");
	rpc_reply *reply;
	const Panthera__Catalog__V1__Category *cat;
	rpc_status st = CAT(create_category)(c, &req, NULL, &cat, &reply);
	if (st == RPC_STATUS_OK && id_out != NULL)
		snprintf(id_out, 37, "%s", cat->id);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static void new_category(const char *parent, char id_out[37])
{
	assert_status(create_category(ch, unique("category"), parent, id_out, NULL), RPC_STATUS_OK);
}

typedef struct spec {
	const char *sku, *name, *description, *price, *currency, *category_id, *image_url;
	int stock;
} spec;

/* A valid product of `category`, to change one field of. */
static spec valid_spec(const char *category)
{
	return (spec){.sku = unique("SKU"),
	              .name = "Test Lantern",
	              .description = "A lantern for the tests.",
	              .price = "10.00",
	              .currency = "USD",
	              .category_id = category,
	              .image_url = "https://img.example.com/lantern.jpg",
	              .stock = 5};
}

static rpc_status create_product_on(rpc_channel *c, const spec *s, rpc_reply **reply_out)
{
	Panthera__Catalog__V1__CreateProductRequest req =
	    PANTHERA__CATALOG__V1__CREATE_PRODUCT_REQUEST__INIT;
	req.sku = (char *)s->sku;
	req.name = (char *)s->name;
	req.description = (char *)s->description;
	req.price = (char *)s->price;
	req.currency = (char *)s->currency;
	req.category_id = (char *)s->category_id;
	req.image_url = (char *)s->image_url;
	req.stock = s->stock;
	rpc_reply *reply;
	rpc_status st = CAT(create_product)(c, &req, NULL, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

/* Create a product with these fields (a fresh sku); its id in id_out. */
static void make_product(const char *category, const char *name, const char *description,
                         const char *price, int stock, char id_out[37])
{
	spec s = valid_spec(category);
	s.name = name;
	s.description = description;
	s.price = price;
	s.stock = stock;
	rpc_reply *reply;
	assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_OK);
	snprintf(id_out, 37, "%s", CAT(create_product_response)(reply)->id);
	rpc_reply_free(reply);
}

static rpc_status get_product_on(rpc_channel *c, const char *id, rpc_reply **reply_out)
{
	Panthera__Catalog__V1__GetProductRequest req =
	    PANTHERA__CATALOG__V1__GET_PRODUCT_REQUEST__INIT;
	req.product_id = (char *)id;
	rpc_reply *reply;
	rpc_status st = CAT(get_product)(c, &req, NULL, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

typedef struct list_args {
	int page, page_size;
	const char *category, *search, *min_price, *max_price, *sort_by;
} list_args;

static rpc_status list_on(rpc_channel *c, const list_args *a, rpc_reply **reply)
{
	Panthera__Catalog__V1__ListProductsRequest req =
	    PANTHERA__CATALOG__V1__LIST_PRODUCTS_REQUEST__INIT;
	req.page = a->page;
	req.page_size = a->page_size;
	req.category = (char *)(a->category ? a->category : "");
	req.search = (char *)(a->search ? a->search : "");
	req.min_price = (char *)(a->min_price ? a->min_price : "");
	req.max_price = (char *)(a->max_price ? a->max_price : "");
	req.sort_by = (char *)(a->sort_by ? a->sort_by : "");
	return CAT(list_products)(c, &req, NULL, NULL, reply);
}

/* List, and check that the page holds exactly the products `want` (ids,
 * in this order, NULL-terminated) and the total. */
static void assert_list(const list_args *a, int total, const char *const *want)
{
	rpc_reply *reply;
	assert_status(list_on(ch, a, &reply), RPC_STATUS_OK);
	const Panthera__Catalog__V1__ListProductsResponse *r = CAT(list_products_response)(reply);
	size_t n = 0;
	while (want[n] != NULL)
		n++;
	if (r->n_products != n || r->total != total) {
		fail_msg("sort %s search %s: got %zu products of %d, want %zu of %d",
		         a->sort_by ? a->sort_by : "", a->search ? a->search : "", r->n_products,
		         r->total, n, total);
	}
	for (size_t i = 0; i < n; i++)
		assert_string_equal(r->products[i]->id, want[i]);
	rpc_reply_free(reply);
}

static rpc_status update_on(rpc_channel *c, Panthera__Catalog__V1__UpdateProductRequest *req,
                            const char *const *paths, size_t n_paths, rpc_reply **reply_out)
{
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	mask.paths = (char **)paths;
	mask.n_paths = n_paths;
	req->update_mask = paths != NULL ? &mask : NULL;
	rpc_reply *reply;
	rpc_status st = CAT(update_product)(c, req, NULL, NULL, &reply);
	req->update_mask = NULL;
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status delete_product(const char *id, rpc_reply **reply_out)
{
	Panthera__Catalog__V1__DeleteProductRequest req =
	    PANTHERA__CATALOG__V1__DELETE_PRODUCT_REQUEST__INIT;
	req.product_id = (char *)id;
	rpc_reply *reply;
	rpc_status st = CAT(delete_product)(ch, &req, NULL, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status set_rating(const char *id, const char *average, int count)
{
	Panthera__Catalog__V1__SetProductRatingRequest req =
	    PANTHERA__CATALOG__V1__SET_PRODUCT_RATING_REQUEST__INIT;
	req.product_id = (char *)id;
	req.rating_average = (char *)average;
	req.rating_count = count;
	rpc_reply *reply;
	rpc_status st = CAT(set_product_rating)(ch, &req, NULL, NULL, &reply);
	rpc_reply_free(reply);
	return st;
}

static int inventory_available(const char *product_id)
{
	Panthera__Inventory__V1__GetStockRequest req =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	req.product_id = (char *)product_id;
	rpc_reply *reply;
	const Panthera__Inventory__V1__Stock *s;
	rpc_status st = INV(get_stock)(ch, &req, NULL, &s, &reply);
	int available = st == RPC_STATUS_OK ? s->available : -1;
	rpc_reply_free(reply);
	return available;
}

/* A one-value query on `pool` with at most one parameter. */
static long query_long(db_pool *pool, const char *sql, const char *param)
{
	db_conn *c;
	assert_status(db_acquire(pool, 5000, &c), RPC_STATUS_OK);
	PGresult *r;
	const char *p[1] = {param};
	assert_status(db_exec(c, NULL, sql, param ? 1 : 0, param ? p : NULL, &r), RPC_STATUS_OK);
	long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	db_release(pool, c);
	return v;
}

#define PRODUCT_CHANGED "panthera.events.v1.ProductChanged"

static long product_events(const char *product_id)
{
	return query_long(cat_pool,
	                  "SELECT count(*) FROM catalog.outbox WHERE type = '" PRODUCT_CHANGED
	                  "' AND aggregate_id = $1",
	                  product_id);
}

/* The kinds of the product's ProductChanged events, in order, into kinds[];
 * returns how many. */
static size_t product_event_kinds(const char *product_id, int *kinds, size_t cap)
{
	db_conn *c;
	assert_status(db_acquire(cat_pool, 5000, &c), RPC_STATUS_OK);
	PGresult *r;
	const char *p[1] = {product_id};
	assert_status(
	    db_exec(
	        c, NULL,
	        "SELECT encode(payload, 'hex') FROM catalog.outbox WHERE type = '" PRODUCT_CHANGED
	        "' AND aggregate_id = $1 ORDER BY seq",
	        1, p, &r),
	    RPC_STATUS_OK);
	size_t n = (size_t)PQntuples(r);
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		const char *hex = PQgetvalue(r, (int)i, 0);
		uint8_t bytes[256];
		size_t len = strlen(hex) / 2;
		assert_true(len <= sizeof(bytes));
		for (size_t j = 0; j < len; j++) {
			unsigned b;
			assert_int_equal(sscanf(hex + 2 * j, "%2x", &b), 1);
			bytes[j] = (uint8_t)b;
		}
		Panthera__Events__V1__ProductChanged *ev =
		    panthera__events__v1__product_changed__unpack(NULL, len, bytes);
		assert_non_null(ev);
		assert_string_equal(ev->product_id, product_id);
		kinds[i] = ev->kind;
		panthera__events__v1__product_changed__free_unpacked(ev, NULL);
	}
	PQclear(r);
	db_release(cat_pool, c);
	return n;
}

/* ---- categories ---- */

static void test_categories_form_a_tree_with_unique_names(void **state)
{
	(void)state;
	char top[37], child[37];
	assert_status(create_category(ch, "Tree Top", NULL, top, NULL), RPC_STATUS_OK);
	assert_status(create_category(ch, "Tree Child", top, child, NULL), RPC_STATUS_OK);
	rpc_reply *reply;
	/* a name is taken once */
	assert_status(create_category(ch, "Tree Top", NULL, NULL, &reply),
	              RPC_STATUS_ALREADY_EXISTS);
	assert_string_equal(rpc_reply_error_reason(reply), "CATEGORY_EXISTS");
	rpc_reply_free(reply);
	/* a parent that does not exist, and one that is no UUID */
	char nobody[37];
	assert_status(id_uuid4(nobody), RPC_STATUS_OK);
	assert_status(create_category(ch, "Orphan", nobody, NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "parent_id"));
	assert_string_equal(rpc_reply_error_reason(reply), "CATEGORY_NOT_FOUND");
	rpc_reply_free(reply);
	assert_status(create_category(ch, "Orphan", "'; DROP TABLE categories; --", NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "parent_id"));
	rpc_reply_free(reply);
	/* names: 1..100 characters (not bytes), not blank, one line */
	assert_status(create_category(ch, "", NULL, NULL, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "name"));
	rpc_reply_free(reply);
	assert_status(create_category(ch, "   ", NULL, NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(create_category(ch, "two\nlines", NULL, NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(create_category(ch, "bad \xc3\x28 utf8", NULL, NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	char name[512] = "";
	for (int i = 0; i < 100; i++)
		strcat(name, "\xc3\xa9"); /* é: 100 characters, 200 bytes */
	assert_status(create_category(ch, name, NULL, NULL, NULL), RPC_STATUS_OK);
	strcat(name, "e");
	assert_status(create_category(ch, name, NULL, NULL, NULL), RPC_STATUS_INVALID_ARGUMENT);

	Panthera__Catalog__V1__ListCategoriesRequest lreq =
	    PANTHERA__CATALOG__V1__LIST_CATEGORIES_REQUEST__INIT;
	const Panthera__Catalog__V1__ListCategoriesResponse *list;
	assert_status(CAT(list_categories)(ch, &lreq, NULL, &list, &reply), RPC_STATUS_OK);
	int seen_top = 0, seen_child = 0;
	for (size_t i = 0; i < list->n_categories; i++) {
		const Panthera__Catalog__V1__Category *c = list->categories[i];
		if (i > 0)
			assert_true(strcmp(list->categories[i - 1]->name, c->name) <
			            0); /* by name */
		assert_true(c->created_at != NULL && c->created_at->seconds > 0);
		if (strcmp(c->id, top) == 0) {
			seen_top = 1;
			assert_string_equal(c->name, "Tree Top");
			assert_string_equal(c->parent_id, "");
			assert_string_equal(c->description, "for the tests");
		} else if (strcmp(c->id, child) == 0) {
			seen_child = 1;
			assert_string_equal(c->parent_id, top);
		}
	}
	assert_true(seen_top && seen_child);
	rpc_reply_free(reply);
}

/* ---- products ---- */

static void test_create_and_get_a_product_with_its_stock(void **state)
{
	(void)state;
	char cat[37];
	new_category(NULL, cat);
	spec s = valid_spec(cat);
	s.price = "12.5";
	s.stock = 7;
	rpc_reply *reply;
	assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_OK);
	const product *p = CAT(create_product_response)(reply);
	char id[37];
	snprintf(id, sizeof(id), "%s", p->id);
	assert_true(id_is_uuid(id));
	assert_string_equal(p->sku, s.sku);
	assert_string_equal(p->price, "12.50");
	assert_string_equal(p->currency, "USD");
	assert_string_equal(p->category_id, cat);
	assert_string_equal(p->image_url, s.image_url);
	assert_int_equal(p->stock, 7);
	assert_true(p->is_active);
	assert_string_equal(p->rating_average, "0.0");
	assert_int_equal(p->rating_count, 0);
	assert_true(p->created_at->seconds > 1600000000);
	assert_true(p->created_at->nanos >= 0 && p->created_at->nanos < 1000000000);
	assert_int_equal(p->created_at->nanos % 1000, 0);
	int64_t created_s = p->created_at->seconds;
	int32_t created_ns = p->created_at->nanos;
	rpc_reply_free(reply);
	/* inventory holds the stock */
	assert_int_equal(inventory_available(id), 7);

	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	p = CAT(get_product_response)(reply);
	assert_string_equal(p->id, id);
	assert_string_equal(p->name, "Test Lantern");
	assert_string_equal(p->description, "A lantern for the tests.");
	assert_string_equal(p->price, "12.50");
	assert_int_equal(p->stock, 7);
	assert_true(p->created_at->seconds == created_s && p->created_at->nanos == created_ns);
	assert_true(p->updated_at->seconds == created_s && p->updated_at->nanos == created_ns);
	rpc_reply_free(reply);

	/* stock changed in inventory shows in the catalog */
	Panthera__Inventory__V1__SetStockRequest sreq =
	    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
	sreq.product_id = id;
	sreq.available = 2;
	assert_status(INV(set_stock)(ch, &sreq, NULL, NULL, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	assert_int_equal(CAT(get_product_response)(reply)->stock, 2);
	rpc_reply_free(reply);

	/* unknown and malformed ids */
	char nobody[37];
	assert_status(id_uuid4(nobody), RPC_STATUS_OK);
	assert_status(get_product_on(ch, nobody, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	assert_status(get_product_on(ch, "42' OR '1'='1", &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "product_id"));
	rpc_reply_free(reply);
}

static void test_create_refuses_every_bad_field_at_once(void **state)
{
	(void)state;
	spec s = {.sku = "",
	          .name = "   ",
	          .description = "bad \xff byte",
	          .price = "12.345",
	          .currency = "usd",
	          .category_id = "not-a-uuid",
	          .image_url = "javascript:alert(1)",
	          .stock = -1};
	rpc_reply *reply;
	assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(n_violations(reply), 8);
	const char *fields[] = {"sku",      "name",        "description", "price",
	                        "currency", "category_id", "image_url",   "stock"};
	for (size_t i = 0; i < 8; i++) {
		if (!has_violation(reply, fields[i]))
			fail_msg("no violation for %s", fields[i]);
	}
	assert_non_null(strstr(rpc_reply_message(reply), "sku"));
	rpc_reply_free(reply);

	char cat[37];
	new_category(NULL, cat);
	/* one bad field at a time, each named */
	struct {
		const char *field;
		spec s;
	} cases[] = {
	    {"sku", {.sku = "has space"}},
	    {"sku", {.sku = "x\ty"}},
	    {"name", {.name = ""}},
	    {"name", {.name = "tab\tin name"}},
	    {"currency", {.currency = "US"}},
	    {"currency", {.currency = "USDX"}},
	    {"currency", {.currency = "U$D"}},
	    {"image_url", {.image_url = "ftp://img.example.com/a.jpg"}},
	    {"image_url", {.image_url = "https://"}},
	    {"image_url", {.image_url = "https://img.example.com/a b.jpg"}},
	    {"stock", {.stock = 1000000001}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		spec t = valid_spec(cat);
		if (cases[i].s.sku)
			t.sku = cases[i].s.sku;
		if (cases[i].s.name)
			t.name = cases[i].s.name;
		if (cases[i].s.currency)
			t.currency = cases[i].s.currency;
		if (cases[i].s.image_url)
			t.image_url = cases[i].s.image_url;
		if (cases[i].s.stock)
			t.stock = cases[i].s.stock;
		assert_status(create_product_on(ch, &t, &reply), RPC_STATUS_INVALID_ARGUMENT);
		if (n_violations(reply) != 1 || !has_violation(reply, cases[i].field))
			fail_msg("case %zu: want one violation of %s", i, cases[i].field);
		rpc_reply_free(reply);
	}
	/* limits are in characters: 200 two-byte characters are a valid name */
	char name[512] = "";
	for (int i = 0; i < 200; i++)
		strcat(name, "\xc3\xb8");
	spec t = valid_spec(cat);
	t.name = name;
	t.image_url = "";
	t.stock = 0;
	assert_status(create_product_on(ch, &t, NULL), RPC_STATUS_OK);
	strcat(name, "o");
	t.sku = unique("SKU");
	assert_status(create_product_on(ch, &t, NULL), RPC_STATUS_INVALID_ARGUMENT);
}

static void test_prices_are_exact_and_normalized(void **state)
{
	(void)state;
	char cat[37];
	new_category(NULL, cat);
	const char *good[][2] = {
	    {"12.5", "12.50"},   {"0", "0.00"},    {"007.1", "7.10"},
	    {"1200", "1200.00"}, {"0.05", "0.05"}, {"9999999999.99", "9999999999.99"},
	    {"19.99", "19.99"},  {"0.10", "0.10"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		spec s = valid_spec(cat);
		s.price = good[i][0];
		rpc_reply *reply;
		assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_OK);
		assert_string_equal(CAT(create_product_response)(reply)->price, good[i][1]);
		rpc_reply_free(reply);
	}
	const char *bad[] = {"",     "-1",       "1e3",          "12.",   ".5",  "12.345",
	                     "1 ",   " 1",       "12345678901",  "1,00",  "+1",  "NaN",
	                     "0x10", "Infinity", "\xef\xbc\x91", "1.2.3", "1..2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		spec s = valid_spec(cat);
		s.price = bad[i];
		rpc_reply *reply;
		assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_INVALID_ARGUMENT);
		if (!has_violation(reply, "price"))
			fail_msg("price \"%s\" not refused by field", bad[i]);
		rpc_reply_free(reply);
	}
}

static void test_duplicate_sku_and_missing_category(void **state)
{
	(void)state;
	char cat[37];
	new_category(NULL, cat);
	spec s = valid_spec(cat);
	assert_status(create_product_on(ch, &s, NULL), RPC_STATUS_OK);
	long events = query_long(cat_pool, "SELECT count(*) FROM catalog.outbox WHERE type = $1",
	                         PRODUCT_CHANGED);
	rpc_reply *reply;
	s.name = "Another Lantern";
	assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_ALREADY_EXISTS);
	assert_string_equal(rpc_reply_error_reason(reply), "SKU_EXISTS");
	rpc_reply_free(reply);
	char nobody[37];
	assert_status(id_uuid4(nobody), RPC_STATUS_OK);
	s.sku = unique("SKU");
	s.category_id = nobody;
	assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "CATEGORY_NOT_FOUND");
	rpc_reply_free(reply);
	/* neither left an event behind */
	assert_int_equal(query_long(cat_pool, "SELECT count(*) FROM catalog.outbox WHERE type = $1",
	                            PRODUCT_CHANGED),
	                 events);
}

static void test_text_is_stored_and_returned_verbatim(void **state)
{
	(void)state;
	const char *cat_name = "Zelte & \"Tarps\" \xe2\x80\x93 O'Neill's \xe2\x9b\xba";
	char cat[37];
	assert_status(create_category(ch, cat_name, NULL, cat, NULL), RPC_STATUS_OK);
	const char *name = "O'Brien \"Deluxe\" Tent'); DROP TABLE products; --";
	const char *desc =
	    "Robert'); DROP TABLE products;--\n\t<script>alert(\"x\")</script>"
	    " back\\slash 100% _under_ $1 :* & | ! \xe2\x98\x83 "
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8f\x95 Zelt f\xc3\xbcr zwei";
	spec s = valid_spec(cat);
	s.sku = "SKU-'\";--\xc3\xa9";
	s.name = name;
	s.description = desc;
	s.image_url = "https://img.example.com/a.jpg?q='1'&x=%22";
	rpc_reply *reply;
	assert_status(create_product_on(ch, &s, &reply), RPC_STATUS_OK);
	char id[37];
	snprintf(id, sizeof(id), "%s", CAT(create_product_response)(reply)->id);
	rpc_reply_free(reply);
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	const product *p = CAT(get_product_response)(reply);
	assert_string_equal(p->sku, s.sku);
	assert_string_equal(p->name, name);
	assert_string_equal(p->description, desc);
	assert_string_equal(p->image_url, s.image_url);
	rpc_reply_free(reply);
	/* the words are searchable, whatever surrounds them */
	const char *want[] = {id, NULL};
	assert_list(&(list_args){.search = "zelt"}, 1, want);
	assert_list(&(list_args){.search = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"}, 1, want);
	assert_list(&(list_args){.search = "ROBERT zwei", .category = cat}, 1, want);
	/* search text that looks like SQL or tsquery syntax is just words */
	const char *none[] = {NULL};
	assert_list(&(list_args){.search = "'; DROP TABLE products; --", .category = cat}, 1, want);
	assert_list(&(list_args){.search = "!!! & | :* ()", .category = cat}, 0, none);
	assert_list(&(list_args){.search = "nothing-like-this", .category = cat}, 0, none);
	/* the category name too */
	Panthera__Catalog__V1__ListCategoriesRequest lreq =
	    PANTHERA__CATALOG__V1__LIST_CATEGORIES_REQUEST__INIT;
	const Panthera__Catalog__V1__ListCategoriesResponse *list;
	assert_status(CAT(list_categories)(ch, &lreq, NULL, &list, &reply), RPC_STATUS_OK);
	int seen = 0;
	for (size_t i = 0; i < list->n_categories; i++)
		seen += strcmp(list->categories[i]->id, cat) == 0 &&
		        strcmp(list->categories[i]->name, cat_name) == 0;
	assert_int_equal(seen, 1);
	rpc_reply_free(reply);
	/* the tables are all still there */
	assert_int_equal(
	    query_long(cat_pool, "SELECT count(*) FROM catalog.products WHERE id = $1", id), 1);
}

/* A category A with a subcategory B, and five products created in order:
 *   p[0] Alpha Lantern 30.00 (A)   p[1] Bravo Kettle 5.50 (A)
 *   p[2] Charlie Tent 120.00 (B)   p[3] Delta Rope 15.25 (A)
 *   p[4] Echo Stove 75.00 (B) */
static void make_shop(char a[37], char b[37], char p[5][37], const char *token)
{
	new_category(NULL, a);
	new_category(a, b);
	char desc[128];
	make_product(a, "Alpha Lantern", "A bright waterproof lantern.", "30", 3, p[0]);
	make_product(a, "Bravo Kettle", "A steel kettle for the stove.", "5.5", 4, p[1]);
	make_product(b, "Charlie Tent", "A waterproof tent for two.", "120.00", 5, p[2]);
	make_product(a, "Delta Rope", "A dynamic rope, 60 m.", "15.25", 6, p[3]);
	snprintf(desc, sizeof(desc), "A compact stove; %s.", token);
	make_product(b, "Echo Stove", desc, "75", 0, p[4]);
}

static void test_search_filters_sort_orders_and_pages(void **state)
{
	(void)state;
	char a[37], b[37], p[5][37], token[32];
	char u[37];
	assert_status(id_uuid4(u), RPC_STATUS_OK);
	snprintf(token, sizeof(token), "tok%.8s", u);
	make_shop(a, b, p, token);
	/* the category filter takes the subcategories too */
	const char *by_name[] = {p[0], p[1], p[2], p[3], p[4], NULL};
	assert_list(&(list_args){.category = a}, 5, by_name);
	assert_list(&(list_args){.category = a, .sort_by = "name"}, 5, by_name);
	const char *in_b[] = {p[2], p[4], NULL};
	assert_list(&(list_args){.category = b}, 2, in_b);
	/* every sort order */
	const char *by_price[] = {p[1], p[3], p[0], p[4], p[2], NULL};
	assert_list(&(list_args){.category = a, .sort_by = "price"}, 5, by_price);
	const char *by_price_desc[] = {p[2], p[4], p[0], p[3], p[1], NULL};
	assert_list(&(list_args){.category = a, .sort_by = "-price"}, 5, by_price_desc);
	const char *by_created[] = {p[0], p[1], p[2], p[3], p[4], NULL};
	assert_list(&(list_args){.category = a, .sort_by = "createdAt"}, 5, by_created);
	const char *by_created_desc[] = {p[4], p[3], p[2], p[1], p[0], NULL};
	assert_list(&(list_args){.category = a, .sort_by = "-createdAt"}, 5, by_created_desc);
	/* full text: a word of the description, any case; all words must occur */
	const char *waterproof[] = {p[0], p[2], NULL};
	assert_list(&(list_args){.category = a, .search = "waterproof"}, 2, waterproof);
	assert_list(&(list_args){.category = a, .search = "WATERPROOF"}, 2, waterproof);
	const char *tent[] = {p[2], NULL};
	assert_list(&(list_args){.category = a, .search = "waterproof tent"}, 1, tent);
	const char *stove[] = {p[4], NULL};
	assert_list(&(list_args){.search = token}, 1, stove); /* over the whole catalog */
	const char *kettle[] = {p[1], NULL};
	assert_list(&(list_args){.category = a, .search = "kettle"}, 1, kettle); /* in the name */
	/* price bounds, both inclusive, exact to the cent */
	const char *mid[] = {p[3], p[0], p[4], NULL};
	assert_list(
	    &(list_args){
	        .category = a, .min_price = "15.25", .max_price = "75", .sort_by = "price"},
	    3, mid);
	const char *above[] = {p[0], p[4], NULL};
	assert_list(
	    &(list_args){
	        .category = a, .min_price = "15.26", .max_price = "75.00", .sort_by = "price"},
	    2, above);
	const char *cheap[] = {p[1], NULL};
	assert_list(&(list_args){.category = a, .max_price = "15.24"}, 1, cheap);
	/* filters combine */
	assert_list(&(list_args){.category = b, .search = "waterproof", .min_price = "100"}, 1,
	            tent);
	/* pages: the total counts every page */
	const char *page1[] = {p[1], p[3], NULL};
	assert_list(&(list_args){.category = a, .sort_by = "price", .page = 1, .page_size = 2}, 5,
	            page1);
	const char *page2[] = {p[0], p[4], NULL};
	assert_list(&(list_args){.category = a, .sort_by = "price", .page = 2, .page_size = 2}, 5,
	            page2);
	const char *page3[] = {p[2], NULL};
	assert_list(&(list_args){.category = a, .sort_by = "price", .page = 3, .page_size = 2}, 5,
	            page3);
	const char *none[] = {NULL};
	assert_list(&(list_args){.category = a, .sort_by = "price", .page = 4, .page_size = 2}, 5,
	            none);
	assert_list(&(list_args){.category = a, .page = 2147483647, .page_size = 100}, 5, none);
	/* the reply states the page applied, with the stock of each product */
	rpc_reply *reply;
	assert_status(list_on(ch, &(list_args){.category = a, .sort_by = "price"}, &reply),
	              RPC_STATUS_OK);
	const Panthera__Catalog__V1__ListProductsResponse *r = CAT(list_products_response)(reply);
	assert_int_equal(r->page, 1);
	assert_int_equal(r->page_size, 20);
	const int stock_by_price[] = {4, 6, 3, 0, 5};
	const char *price_by_price[] = {"5.50", "15.25", "30.00", "75.00", "120.00"};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(r->products[i]->stock, stock_by_price[i]);
		assert_string_equal(r->products[i]->price, price_by_price[i]);
	}
	rpc_reply_free(reply);
	/* an unknown category lists nothing */
	char nobody[37];
	assert_status(id_uuid4(nobody), RPC_STATUS_OK);
	assert_list(&(list_args){.category = nobody}, 0, none);
}

static void test_list_refuses_bad_parameters(void **state)
{
	(void)state;
	struct {
		const char *field;
		list_args a;
	} cases[] = {
	    {"sort_by", {.sort_by = "popularity"}},
	    {"sort_by", {.sort_by = "-name"}},
	    {"sort_by", {.sort_by = "price; DROP TABLE products"}},
	    {"sort_by", {.sort_by = "created_at"}},
	    {"page", {.page = -1}},
	    {"page_size", {.page_size = 101}},
	    {"page_size", {.page_size = -5}},
	    {"category", {.category = "tents"}},
	    {"min_price", {.min_price = "-1"}},
	    {"max_price", {.max_price = "ten"}},
	    {"max_price", {.min_price = "10", .max_price = "9.99"}},
	    {"search", {.search = "line\nbreak"}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rpc_reply *reply;
		assert_status(list_on(ch, &cases[i].a, &reply), RPC_STATUS_INVALID_ARGUMENT);
		if (!has_violation(reply, cases[i].field))
			fail_msg("case %zu: no violation of %s (%s)", i, cases[i].field,
			         rpc_reply_message(reply));
		rpc_reply_free(reply);
	}
	rpc_reply *reply;
	assert_status(list_on(ch, &(list_args){.sort_by = "bogus"}, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(rpc_reply_message(reply), "sort_by"));
	rpc_reply_free(reply);
	char search[256];
	memset(search, 'a', 201);
	search[201] = '\0';
	assert_status(list_on(ch, &(list_args){.search = search}, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	/* the defaults and the limits are accepted */
	assert_status(list_on(ch, &(list_args){.page_size = 100, .search = "   "}, &reply),
	              RPC_STATUS_OK);
	assert_int_equal(CAT(list_products_response)(reply)->page_size, 100);
	rpc_reply_free(reply);
}

static void test_update_changes_only_the_fields_of_the_mask(void **state)
{
	(void)state;
	char cat[37], cat2[37], id[37], other[37];
	new_category(NULL, cat);
	new_category(NULL, cat2);
	make_product(cat, "Mask Lantern", "Before.", "10.00", 9, id);
	make_product(cat, "Other Lantern", "Other.", "11.00", 1, other);
	rpc_reply *reply;
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	const product *before = CAT(get_product_response)(reply);
	char sku[80];
	snprintf(sku, sizeof(sku), "%s", before->sku);
	int64_t created_s = before->created_at->seconds;
	int32_t created_ns = before->created_at->nanos;
	rpc_reply_free(reply);

	Panthera__Catalog__V1__UpdateProductRequest req =
	    PANTHERA__CATALOG__V1__UPDATE_PRODUCT_REQUEST__INIT;
	req.product_id = id;
	req.price = "12.5";
	req.name = ""; /* not in the mask: neither checked nor applied */
	const char *price_only[] = {"price"};
	assert_status(update_on(ch, &req, price_only, 1, &reply), RPC_STATUS_OK);
	const product *p = CAT(update_product_response)(reply);
	assert_string_equal(p->price, "12.50");
	assert_string_equal(p->name, "Mask Lantern");
	assert_string_equal(p->description, "Before.");
	assert_string_equal(p->sku, sku);
	assert_string_equal(p->category_id, cat);
	assert_int_equal(p->stock, 9);
	assert_true(p->created_at->seconds == created_s && p->created_at->nanos == created_ns);
	assert_true(p->updated_at->seconds > created_s ||
	            (p->updated_at->seconds == created_s && p->updated_at->nanos > created_ns));
	rpc_reply_free(reply);

	/* every updatable field at once */
	char new_sku[80];
	snprintf(new_sku, sizeof(new_sku), "%s", unique("SKU"));
	req.sku = new_sku;
	req.name = "Renamed Lantern";
	req.description = "";
	req.price = "0";
	req.currency = "EUR";
	req.category_id = cat2;
	req.image_url = "";
	const char *all[] = {"sku",      "name",        "description", "price",
	                     "currency", "category_id", "image_url"};
	assert_status(update_on(ch, &req, all, 7, &reply), RPC_STATUS_OK);
	p = CAT(update_product_response)(reply);
	assert_string_equal(p->sku, new_sku);
	assert_string_equal(p->name, "Renamed Lantern");
	assert_string_equal(p->description, "");
	assert_string_equal(p->price, "0.00");
	assert_string_equal(p->currency, "EUR");
	assert_string_equal(p->category_id, cat2);
	assert_string_equal(p->image_url, "");
	rpc_reply_free(reply);
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	assert_string_equal(CAT(get_product_response)(reply)->name, "Renamed Lantern");
	rpc_reply_free(reply);

	/* the mask is required, and names only known, updatable fields */
	assert_status(update_on(ch, &req, NULL, 0, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "update_mask"));
	rpc_reply_free(reply);
	assert_status(update_on(ch, &req, all, 0, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "update_mask"));
	rpc_reply_free(reply);
	const char *colour[] = {"name", "colour"};
	assert_status(update_on(ch, &req, colour, 2, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "update_mask"));
	assert_non_null(strstr(rpc_reply_message(reply), "colour"));
	rpc_reply_free(reply);
	const char *stock[] = {"stock"};
	assert_status(update_on(ch, &req, stock, 1, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(rpc_reply_message(reply), "stock"));
	rpc_reply_free(reply);
	const char *active[] = {"is_active"};
	assert_status(update_on(ch, &req, active, 1, NULL), RPC_STATUS_INVALID_ARGUMENT);
	/* masked fields are validated like on create */
	req.name = " ";
	const char *name_only[] = {"name"};
	assert_status(update_on(ch, &req, name_only, 1, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "name"));
	rpc_reply_free(reply);
	req.price = "1.001";
	assert_status(update_on(ch, &req, price_only, 1, NULL), RPC_STATUS_INVALID_ARGUMENT);
	/* and checked against the others */
	char nobody[37];
	assert_status(id_uuid4(nobody), RPC_STATUS_OK);
	req.category_id = nobody;
	const char *category_only[] = {"category_id"};
	assert_status(update_on(ch, &req, category_only, 1, &reply),
	              RPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(rpc_reply_error_reason(reply), "CATEGORY_NOT_FOUND");
	rpc_reply_free(reply);
	assert_status(get_product_on(ch, other, &reply), RPC_STATUS_OK);
	snprintf(sku, sizeof(sku), "%s", CAT(get_product_response)(reply)->sku);
	rpc_reply_free(reply);
	req.sku = sku;
	const char *sku_only[] = {"sku"};
	assert_status(update_on(ch, &req, sku_only, 1, &reply), RPC_STATUS_ALREADY_EXISTS);
	assert_string_equal(rpc_reply_error_reason(reply), "SKU_EXISTS");
	rpc_reply_free(reply);
	/* nothing of the refused updates was applied */
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	p = CAT(get_product_response)(reply);
	assert_string_equal(p->sku, new_sku);
	assert_string_equal(p->category_id, cat2);
	assert_string_equal(p->price, "0.00");
	rpc_reply_free(reply);
	/* unknown and malformed products */
	req.product_id = nobody;
	assert_status(update_on(ch, &req, sku_only, 1, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	req.product_id = "nope";
	assert_status(update_on(ch, &req, sku_only, 1, NULL), RPC_STATUS_INVALID_ARGUMENT);
}

static void test_soft_delete_hides_the_product(void **state)
{
	(void)state;
	char cat[37], id[37];
	new_category(NULL, cat);
	make_product(cat, "Doomed Lantern", "Soon gone.", "3.00", 1, id);
	const char *one[] = {id, NULL}, *none[] = {NULL};
	assert_list(&(list_args){.category = cat}, 1, one);
	rpc_reply *reply;
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	char sku[80];
	snprintf(sku, sizeof(sku), "%s", CAT(get_product_response)(reply)->sku);
	rpc_reply_free(reply);

	assert_status(delete_product(id, NULL), RPC_STATUS_OK);
	assert_list(&(list_args){.category = cat}, 0, none);
	assert_list(&(list_args){.search = "doomed"}, 0, none);
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	assert_status(delete_product(id, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	Panthera__Catalog__V1__UpdateProductRequest req =
	    PANTHERA__CATALOG__V1__UPDATE_PRODUCT_REQUEST__INIT;
	req.product_id = id;
	req.name = "Revived";
	const char *name_only[] = {"name"};
	assert_status(update_on(ch, &req, name_only, 1, NULL), RPC_STATUS_NOT_FOUND);
	/* the row stays: internal readers see it inactive, and its sku is kept */
	Panthera__Catalog__V1__BatchGetProductsRequest breq =
	    PANTHERA__CATALOG__V1__BATCH_GET_PRODUCTS_REQUEST__INIT;
	char *ids[] = {id};
	breq.product_ids = ids;
	breq.n_product_ids = 1;
	const Panthera__Catalog__V1__BatchGetProductsResponse *b;
	assert_status(CAT(batch_get_products)(ch, &breq, NULL, &b, &reply), RPC_STATUS_OK);
	assert_int_equal(b->n_products, 1);
	assert_false(b->products[0]->is_active);
	assert_string_equal(b->products[0]->name, "Doomed Lantern");
	rpc_reply_free(reply);
	spec s = valid_spec(cat);
	s.sku = sku;
	assert_status(create_product_on(ch, &s, NULL), RPC_STATUS_ALREADY_EXISTS);
	assert_status(delete_product("'; DELETE FROM products; --", &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "product_id"));
	rpc_reply_free(reply);
}

static void test_batch_get_and_rating(void **state)
{
	(void)state;
	char cat[37], p1[37], p2[37], nobody[37];
	new_category(NULL, cat);
	make_product(cat, "Batch One", "First.", "1.00", 11, p1);
	make_product(cat, "Batch Two", "Second.", "2.00", 22, p2);
	assert_status(id_uuid4(nobody), RPC_STATUS_OK);
	char upper[37];
	snprintf(upper, sizeof(upper), "%s", p2);
	for (char *c = upper; *c; c++)
		*c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
	Panthera__Catalog__V1__BatchGetProductsRequest req =
	    PANTHERA__CATALOG__V1__BATCH_GET_PRODUCTS_REQUEST__INIT;
	char *ids[] = {p1, upper, nobody, p1};
	req.product_ids = ids;
	req.n_product_ids = 4;
	const Panthera__Catalog__V1__BatchGetProductsResponse *b;
	rpc_reply *reply;
	assert_status(CAT(batch_get_products)(ch, &req, NULL, &b, &reply), RPC_STATUS_OK);
	assert_int_equal(b->n_products, 2); /* duplicates once, unknown left out */
	for (size_t i = 0; i < 2; i++) {
		const product *p = b->products[i];
		assert_true(p->is_active);
		if (strcmp(p->id, p1) == 0)
			assert_int_equal(p->stock, 11);
		else if (strcmp(p->id, p2) == 0)
			assert_int_equal(p->stock, 22);
		else
			fail_msg("unexpected product %s", p->id);
	}
	rpc_reply_free(reply);
	req.n_product_ids = 0;
	assert_status(CAT(batch_get_products)(ch, &req, NULL, NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "product_ids"));
	rpc_reply_free(reply);
	char *bad[] = {p1, "x"};
	req.product_ids = bad;
	req.n_product_ids = 2;
	assert_status(CAT(batch_get_products)(ch, &req, NULL, NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	char **many = calloc(1001, sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i < 1001; i++)
		many[i] = p1;
	req.product_ids = many;
	req.n_product_ids = 1001;
	assert_status(CAT(batch_get_products)(ch, &req, NULL, NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	req.n_product_ids = 1000;
	assert_status(CAT(batch_get_products)(ch, &req, NULL, &b, &reply), RPC_STATUS_OK);
	assert_int_equal(b->n_products, 1);
	rpc_reply_free(reply);
	free(many);

	/* ratings: absolute values, so a repeat is harmless */
	assert_status(set_rating(p1, "4.5", 2), RPC_STATUS_OK);
	assert_status(set_rating(p1, "4.5", 2), RPC_STATUS_OK);
	assert_status(get_product_on(ch, p1, &reply), RPC_STATUS_OK);
	assert_string_equal(CAT(get_product_response)(reply)->rating_average, "4.5");
	assert_int_equal(CAT(get_product_response)(reply)->rating_count, 2);
	rpc_reply_free(reply);
	assert_status(set_rating(p1, "5.0", 3), RPC_STATUS_OK);
	assert_status(set_rating(p2, "1.0", 1), RPC_STATUS_OK);
	assert_status(set_rating(p2, "0.0", 0), RPC_STATUS_OK);
	assert_status(get_product_on(ch, p2, &reply), RPC_STATUS_OK);
	assert_string_equal(CAT(get_product_response)(reply)->rating_average, "0.0");
	assert_int_equal(CAT(get_product_response)(reply)->rating_count, 0);
	rpc_reply_free(reply);
	const char *bad_avg[] = {"4.55", "6.0", "0.9", "4", "", "4,5", " 4.5", "a.b", "-1.0"};
	for (size_t i = 0; i < sizeof(bad_avg) / sizeof(bad_avg[0]); i++) {
		if (set_rating(p1, bad_avg[i], 1) != RPC_STATUS_INVALID_ARGUMENT)
			fail_msg("rating_average \"%s\" accepted", bad_avg[i]);
	}
	assert_status(set_rating(p1, "4.5", 0), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(set_rating(p1, "0.0", 1), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(set_rating(p1, "4.5", -1), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(set_rating(nobody, "4.5", 1), RPC_STATUS_NOT_FOUND);
	assert_status(set_rating("nope", "4.5", 1), RPC_STATUS_INVALID_ARGUMENT);
	/* a deleted product keeps taking its rating (reviews may be removed later) */
	assert_status(delete_product(p2, NULL), RPC_STATUS_OK);
	assert_status(set_rating(p2, "3.0", 1), RPC_STATUS_OK);
}

static void test_every_product_change_writes_an_event(void **state)
{
	(void)state;
	char cat[37], id[37];
	new_category(NULL, cat);
	make_product(cat, "Eventful Lantern", "Watched.", "9.99", 1, id);
	assert_int_equal(product_events(id), 1);
	Panthera__Catalog__V1__UpdateProductRequest req =
	    PANTHERA__CATALOG__V1__UPDATE_PRODUCT_REQUEST__INIT;
	req.product_id = id;
	req.price = "8.99";
	const char *price_only[] = {"price"}, *bogus[] = {"bogus"};
	assert_status(update_on(ch, &req, price_only, 1, NULL), RPC_STATUS_OK);
	assert_int_equal(product_events(id), 2);
	assert_status(update_on(ch, &req, bogus, 1, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(product_events(id), 2); /* refused: no event */
	assert_status(set_rating(id, "4.0", 1), RPC_STATUS_OK);
	assert_int_equal(product_events(id), 3);
	assert_status(set_rating(id, "4.0", 1), RPC_STATUS_OK);
	assert_int_equal(product_events(id), 3); /* nothing changed */
	assert_status(delete_product(id, NULL), RPC_STATUS_OK);
	assert_int_equal(product_events(id), 4);
	assert_status(delete_product(id, NULL), RPC_STATUS_NOT_FOUND);
	assert_int_equal(product_events(id), 4);
	int kinds[8];
	assert_int_equal(product_event_kinds(id, kinds, 8), 4);
	assert_int_equal(kinds[0], PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__CREATED);
	assert_int_equal(kinds[1], PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__UPDATED);
	assert_int_equal(kinds[2], PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__UPDATED);
	assert_int_equal(kinds[3], PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__DELETED);
}

static void test_catalog_stays_readable_when_inventory_is_down(void **state)
{
	(void)state;
	char cat[37], id[37];
	new_category(NULL, cat);
	make_product(cat, "Resilient Lantern", "Still here.", "4.00", 9, id);
	rpc_reply *reply;
	assert_status(get_product_on(down_ch, id, &reply), RPC_STATUS_OK);
	const product *p = CAT(get_product_response)(reply);
	assert_string_equal(p->name, "Resilient Lantern");
	assert_int_equal(p->stock, 0);
	rpc_reply_free(reply);
	list_args a = {.category = cat};
	assert_status(list_on(down_ch, &a, &reply), RPC_STATUS_OK);
	const Panthera__Catalog__V1__ListProductsResponse *r = CAT(list_products_response)(reply);
	assert_int_equal(r->n_products, 1);
	assert_int_equal(r->products[0]->stock, 0);
	rpc_reply_free(reply);
	/* creating needs inventory: nothing is created without the stock */
	spec s = valid_spec(cat);
	assert_status(create_product_on(down_ch, &s, &reply), RPC_STATUS_UNAVAILABLE);
	rpc_reply_free(reply);
	assert_int_equal(
	    query_long(cat_pool, "SELECT count(*) FROM catalog.products WHERE sku = $1", s.sku), 0);
	assert_status(create_product_on(ch, &s, NULL), RPC_STATUS_OK); /* the sku is free */
	/* changes other than stock work without inventory's answer */
	Panthera__Catalog__V1__UpdateProductRequest req =
	    PANTHERA__CATALOG__V1__UPDATE_PRODUCT_REQUEST__INIT;
	req.product_id = id;
	req.name = "Changed While Down";
	const char *name_only[] = {"name"};
	assert_status(update_on(down_ch, &req, name_only, 1, &reply), RPC_STATUS_OK);
	assert_int_equal(CAT(update_product_response)(reply)->stock, 0);
	rpc_reply_free(reply);
}

static void test_without_inventory_stock_is_zero(void **state)
{
	(void)state;
	char cat[37];
	new_category(NULL, cat);
	spec s = valid_spec(cat);
	s.stock = 5;
	rpc_reply *reply;
	assert_status(create_product_on(noinv_ch, &s, &reply), RPC_STATUS_OK);
	const product *p = CAT(create_product_response)(reply);
	assert_int_equal(p->stock, 0);
	char id[37];
	snprintf(id, sizeof(id), "%s", p->id);
	rpc_reply_free(reply);
	/* inventory never heard of it: the catalog with inventory says 0 too */
	assert_int_equal(inventory_available(id), -1);
	assert_status(get_product_on(ch, id, &reply), RPC_STATUS_OK);
	assert_int_equal(CAT(get_product_response)(reply)->stock, 0);
	rpc_reply_free(reply);
}

/* Every reply is built in the call's arena: with a budget growing from
 * almost nothing, each call either succeeds or fails cleanly with
 * RESOURCE_EXHAUSTED (never a crash, a leak or a half-built reply). */
static void test_arena_exhaustion_is_a_clean_error(void **state)
{
	(void)state;
	/* enough products, with long enough text, to outgrow the call's
	 * inline arena many times over */
	enum { N = 12 };
	char cat[37], p[N][37], desc[700];
	new_category(NULL, cat);
	for (int i = 0; i < N; i++) {
		snprintf(desc, sizeof(desc), "Arena product %d.", i);
		while (strlen(desc) < 600)
			strcat(desc, " More words to fill the description.");
		make_product(cat, "Arena Lantern", desc, "1.00", i, p[i]);
	}
	char *ids[N];
	for (int i = 0; i < N; i++)
		ids[i] = p[i];
	int exhausted = 0, ok_at_last = 0;
	for (size_t budget = 64; budget <= (size_t)1 << 20; budget += budget / 2) {
		char url[80];
		snprintf(url, sizeof(url), "inproc://catalog-test-arena-%zu", budget);
		rpc_server *s;
		rpc_server_opts so = {.workers = 2, .max_call_memory = budget};
		assert_status(rpc_server_create(&s, &so), RPC_STATUS_OK);
		assert_status(catalog_service_register(s, &svc), RPC_STATUS_OK);
		rpc_channel *c;
		assert_status(svctest_start(s, url, &c), RPC_STATUS_OK);
		rpc_status got[4];
		rpc_reply *reply;
		got[0] = list_on(c, &(list_args){.category = cat}, &reply);
		rpc_reply_free(reply);
		got[1] = get_product_on(c, p[0], NULL);
		Panthera__Catalog__V1__BatchGetProductsRequest breq =
		    PANTHERA__CATALOG__V1__BATCH_GET_PRODUCTS_REQUEST__INIT;
		breq.product_ids = ids;
		breq.n_product_ids = N;
		got[2] = CAT(batch_get_products)(c, &breq, NULL, NULL, &reply);
		rpc_reply_free(reply);
		Panthera__Catalog__V1__ListCategoriesRequest lreq =
		    PANTHERA__CATALOG__V1__LIST_CATEGORIES_REQUEST__INIT;
		got[3] = CAT(list_categories)(c, &lreq, NULL, NULL, &reply);
		rpc_reply_free(reply);
		int all_ok = 1;
		for (int i = 0; i < 4; i++) {
			if (got[i] != RPC_STATUS_OK && got[i] != RPC_STATUS_RESOURCE_EXHAUSTED)
				fail_msg("budget %zu, call %d: %s", budget, i,
				         rpc_status_name(got[i]));
			all_ok &= got[i] == RPC_STATUS_OK;
			exhausted += got[i] == RPC_STATUS_RESOURCE_EXHAUSTED;
		}
		ok_at_last = all_ok;
		rpc_channel_close(c);
		rpc_server_destroy(s);
	}
	assert_true(exhausted > 0);
	assert_true(ok_at_last);
}

/* ---- the demo seed, in a database of its own ---- */

typedef struct seeder {
	catalog_service *svc;
	rpc_status st;
	int created;
} seeder;

static void *seed_one(void *arg)
{
	seeder *s = arg;
	s->st = catalog_seed_demo(s->svc, &s->created);
	return NULL;
}

static void test_demo_seed_loads_once(void **state)
{
	(void)state;
	db_conn *c;
	assert_status(db_acquire(cat_pool, 5000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "CREATE DATABASE catalog_seed", 0, NULL, NULL),
	              RPC_STATUS_OK);
	db_release(cat_pool, c);
	char url[600];
	snprintf(url, sizeof(url), "%s", pg.url);
	char *db = strstr(url, "///panthera?");
	assert_non_null(db);
	const char *to = "///catalog_seed";
	memmove(db + strlen(to), db + strlen("///panthera"),
	        strlen(db + strlen("///panthera")) + 1);
	memcpy(db, to, strlen(to));
	db_pool *pool;
	assert_status(svctest_pool(&pool, url, "catalog", 4, 1), RPC_STATUS_OK);
	catalog_service seed_svc = {.pool = pool, .inventory = inv_ch};
	assert_status(catalog_service_init(&seed_svc), RPC_STATUS_OK);
	assert_status(catalog_service_init(&seed_svc), RPC_STATUS_OK); /* again: harmless */

	/* two at once: one loads, the other finds products and does nothing */
	seeder s[2] = {{&seed_svc, RPC_STATUS_UNKNOWN, -1}, {&seed_svc, RPC_STATUS_UNKNOWN, -1}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, seed_one, &s[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_status(s[0].st, RPC_STATUS_OK);
	assert_status(s[1].st, RPC_STATUS_OK);
	int created = s[0].created + s[1].created;
	assert_true(s[0].created == 0 || s[1].created == 0);
	assert_true(created >= 24);
	int again = -1;
	assert_status(catalog_seed_demo(&seed_svc, &again), RPC_STATUS_OK);
	assert_int_equal(again, 0);

	assert_int_equal(query_long(pool, "SELECT count(*) FROM products", NULL), created);
	assert_true(query_long(pool, "SELECT count(*) FROM categories", NULL) >= 4);
	assert_true(query_long(pool, "SELECT count(*) FROM categories WHERE parent_id IS NOT NULL",
	                       NULL) >= 1);
	assert_int_equal(
	    query_long(pool, "SELECT count(*) FROM outbox WHERE type = $1", PRODUCT_CHANGED),
	    created);
	assert_int_equal(query_long(pool,
	                            "SELECT count(*) FROM products WHERE price > 0 AND currency = "
	                            "'USD' AND description <> '' AND image_url LIKE 'https://%'",
	                            NULL),
	                 created);
	/* every seeded product has its stock in inventory, some of it */
	assert_status(db_acquire(pool, 5000, &c), RPC_STATUS_OK);
	PGresult *r;
	assert_status(db_exec(c, NULL, "SELECT id FROM products", 0, NULL, &r), RPC_STATUS_OK);
	int n = PQntuples(r);
	char **ids = calloc((size_t)n, sizeof(*ids));
	assert_non_null(ids);
	for (int i = 0; i < n; i++)
		ids[i] = PQgetvalue(r, i, 0);
	Panthera__Inventory__V1__BatchGetStockRequest req =
	    PANTHERA__INVENTORY__V1__BATCH_GET_STOCK_REQUEST__INIT;
	req.product_ids = ids;
	req.n_product_ids = (size_t)n;
	rpc_reply *reply;
	const Panthera__Inventory__V1__BatchGetStockResponse *stocks;
	assert_status(INV(batch_get_stock)(ch, &req, NULL, &stocks, &reply), RPC_STATUS_OK);
	assert_int_equal(stocks->n_stocks, n);
	long units = 0;
	for (size_t i = 0; i < stocks->n_stocks; i++)
		units += stocks->stocks[i]->available;
	assert_true(units > 0);
	rpc_reply_free(reply);
	free(ids);
	PQclear(r);
	db_release(pool, c);
	db_pool_close(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_categories_form_a_tree_with_unique_names),
	    cmocka_unit_test(test_create_and_get_a_product_with_its_stock),
	    cmocka_unit_test(test_create_refuses_every_bad_field_at_once),
	    cmocka_unit_test(test_prices_are_exact_and_normalized),
	    cmocka_unit_test(test_duplicate_sku_and_missing_category),
	    cmocka_unit_test(test_text_is_stored_and_returned_verbatim),
	    cmocka_unit_test(test_search_filters_sort_orders_and_pages),
	    cmocka_unit_test(test_list_refuses_bad_parameters),
	    cmocka_unit_test(test_update_changes_only_the_fields_of_the_mask),
	    cmocka_unit_test(test_soft_delete_hides_the_product),
	    cmocka_unit_test(test_batch_get_and_rating),
	    cmocka_unit_test(test_every_product_change_writes_an_event),
	    cmocka_unit_test(test_catalog_stays_readable_when_inventory_is_down),
	    cmocka_unit_test(test_without_inventory_stock_is_zero),
	    cmocka_unit_test(test_arena_exhaustion_is_a_clean_error),
	    cmocka_unit_test(test_demo_seed_loads_once),
	};
	return cmocka_run_group_tests_name("catalog", tests, setup, teardown);
}
