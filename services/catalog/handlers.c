/*
 * handlers.c - CatalogService over RPC: validate the request (every field,
 * each refusal a field violation), run the store's SQL in one transaction
 * (with the ProductChanged event of any product change), build the reply
 * in the call's arena, and add the stock that inventory reports.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog.h"
#include "panthera/fieldcheck.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/inventory/v1/inventory.panthera.h"
#include "panthera/log.h"
#include "panthera/money.h"
#include "panthera/text.h"
#include "store.h"

#define CAT_MAX_CATEGORY_NAME 100
#define CAT_MAX_CATEGORY_DESC 2000
#define CAT_MAX_SKU           64
#define CAT_MAX_PRODUCT_NAME  200
#define CAT_MAX_PRODUCT_DESC  10000
#define CAT_MAX_IMAGE_URL     2048
#define CAT_MAX_SEARCH        200
#define CAT_MAX_STOCK         1000000000
#define CAT_MAX_BATCH         1000
#define CAT_MAX_PAGE_SIZE     100
#define CAT_DEFAULT_PAGE_SIZE 20
#define CAT_INVENTORY_TIMEOUT 3000u /* ms: the most a call to inventory may take */

/* A string field of a request: protobuf-c gives "" for an absent one, but
 * a hand-built request may hold NULL. */
static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

/* How long a handler may wait for a database connection: what the caller
 * has left, at most 10 s. */
static uint32_t db_wait_ms(const rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	return left < 10000 ? left : 10000;
}

static rpc_status db_failed(rpc_call *call, rpc_status st)
{
	/* The database's own message went to the log; the caller gets a
	 * status and a plain sentence. */
	return rpc_call_error(call, st, "catalog storage: %s", rpc_status_name(st));
}

static rpc_status not_found(rpc_call *call, const char *product_id)
{
	rpc_call_set_error_reason(call, "PRODUCT_NOT_FOUND", NULL);
	return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "product %s not found", product_id);
}

/* ---- validation ---- */

/* Text of min..max characters. `required` also refuses blank text. */
static void check_text(field_checker *k, const char *field, const char *s, long max, int required,
                       int multiline)
{
	long n = text_chars(s, SIZE_MAX, multiline ? TEXT_MULTILINE : 0);
	char why[96];
	if (n < 0) {
		field_refuse(k, field,
		             multiline
		                 ? "must be valid UTF-8 without control characters"
		                 : "must be valid UTF-8 on one line, without control characters");
	} else if (required && (n == 0 || text_blank(s))) {
		snprintf(why, sizeof(why), "must be 1 to %ld characters, not blank", max);
		field_refuse(k, field, why);
	} else if (n > max) {
		snprintf(why, sizeof(why), "must be at most %ld characters", max);
		field_refuse(k, field, why);
	}
}

static void check_sku(field_checker *k, const char *s)
{
	long n = text_chars(s, SIZE_MAX, 0);
	if (n < 1 || n > CAT_MAX_SKU || strchr(s, ' ') != NULL)
		field_refuse(k, "sku",
		             "must be 1 to 64 characters without spaces or control characters");
}

/* A price field into its normalized text; 0 when refused. */
static int check_price(field_checker *k, const char *field, const char *s, char out[MONEY_TEXT],
                       int64_t *cents)
{
	int64_t c;
	if (money_parse(s, &c) != 0) {
		field_refuse(
		    k, field,
		    "must be a decimal number of at most 10 digits and 2 decimals, e.g. \"12.50\"");
		return 0;
	}
	money_format(out, c);
	if (cents != NULL)
		*cents = c;
	return 1;
}

static void check_currency(field_checker *k, const char *s)
{
	int ok = strlen(s) == 3;
	for (size_t i = 0; ok && i < 3; i++)
		ok = s[i] >= 'A' && s[i] <= 'Z';
	if (!ok)
		field_refuse(k, "currency",
		             "must be an ISO 4217 code: 3 upper-case letters, e.g. \"USD\"");
}

static void check_uuid(field_checker *k, const char *field, const char *s)
{
	if (!id_is_uuid(s))
		field_refuse(k, field, "must be a UUID");
}

/* "" or an absolute http(s) URL of printable ASCII with a host. */
static void check_image_url(field_checker *k, const char *s)
{
	if (*s == '\0')
		return;
	size_t n = strlen(s), scheme = 0;
	if (strncasecmp(s, "https://", 8) == 0)
		scheme = 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		scheme = 7;
	int ok = scheme > 0 && n <= CAT_MAX_IMAGE_URL && s[scheme] != '\0' && s[scheme] != '/';
	for (size_t i = 0; ok && i < n; i++)
		ok = s[i] > 0x20 && s[i] < 0x7f;
	if (!ok)
		field_refuse(k, "image_url",
		             "must be empty or an absolute http(s) URL of at most 2048 characters");
}

/* ---- replies ---- */

static char *arena_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

static Google__Protobuf__Timestamp *arena_timestamp(rpc_call *call, const char *seconds,
                                                    const char *micros)
{
	Google__Protobuf__Timestamp *t = rpc_call_alloc(call, sizeof(*t));
	if (t == NULL)
		return NULL;
	google__protobuf__timestamp__init(t);
	t->seconds = strtoll(seconds, NULL, 10);
	t->nanos = (int32_t)(strtol(micros, NULL, 10) * 1000);
	return t;
}

static rpc_status fill_category(rpc_call *call, const PGresult *r, int row,
                                Panthera__Catalog__V1__Category *out)
{
	out->id = arena_strdup(call, PQgetvalue(r, row, CAT_C_ID));
	out->name = arena_strdup(call, PQgetvalue(r, row, CAT_C_NAME));
	out->description = arena_strdup(call, PQgetvalue(r, row, CAT_C_DESCRIPTION));
	out->parent_id = arena_strdup(call, PQgetvalue(r, row, CAT_C_PARENT_ID));
	out->created_at = arena_timestamp(call, PQgetvalue(r, row, CAT_C_CREATED_S),
	                                  PQgetvalue(r, row, CAT_C_CREATED_US));
	out->updated_at = arena_timestamp(call, PQgetvalue(r, row, CAT_C_UPDATED_S),
	                                  PQgetvalue(r, row, CAT_C_UPDATED_US));
	if (out->id == NULL || out->name == NULL || out->description == NULL ||
	    out->parent_id == NULL || out->created_at == NULL || out->updated_at == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	return RPC_STATUS_OK;
}

/* A product row into `out`; stock is left 0 for fill_stock_*(). */
static rpc_status fill_product(rpc_call *call, const PGresult *r, int row,
                               Panthera__Catalog__V1__Product *out)
{
	out->id = arena_strdup(call, PQgetvalue(r, row, CAT_P_ID));
	out->sku = arena_strdup(call, PQgetvalue(r, row, CAT_P_SKU));
	out->name = arena_strdup(call, PQgetvalue(r, row, CAT_P_NAME));
	out->description = arena_strdup(call, PQgetvalue(r, row, CAT_P_DESCRIPTION));
	out->price = arena_strdup(call, PQgetvalue(r, row, CAT_P_PRICE));
	out->currency = arena_strdup(call, PQgetvalue(r, row, CAT_P_CURRENCY));
	out->category_id = arena_strdup(call, PQgetvalue(r, row, CAT_P_CATEGORY_ID));
	out->image_url = arena_strdup(call, PQgetvalue(r, row, CAT_P_IMAGE_URL));
	out->is_active = strcmp(PQgetvalue(r, row, CAT_P_IS_ACTIVE), "t") == 0;
	out->rating_average = arena_strdup(call, PQgetvalue(r, row, CAT_P_RATING_AVERAGE));
	out->rating_count = (int32_t)strtol(PQgetvalue(r, row, CAT_P_RATING_COUNT), NULL, 10);
	out->created_at = arena_timestamp(call, PQgetvalue(r, row, CAT_P_CREATED_S),
	                                  PQgetvalue(r, row, CAT_P_CREATED_US));
	out->updated_at = arena_timestamp(call, PQgetvalue(r, row, CAT_P_UPDATED_S),
	                                  PQgetvalue(r, row, CAT_P_UPDATED_US));
	out->stock = 0;
	if (out->id == NULL || out->sku == NULL || out->name == NULL || out->description == NULL ||
	    out->price == NULL || out->currency == NULL || out->category_id == NULL ||
	    out->image_url == NULL || out->rating_average == NULL || out->created_at == NULL ||
	    out->updated_at == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	return RPC_STATUS_OK;
}

/* Every row of `r` as a new array of products, in order. */
static rpc_status fill_products(rpc_call *call, const PGresult *r,
                                Panthera__Catalog__V1__Product ***out, size_t *n_out)
{
	size_t n = (size_t)PQntuples(r);
	Panthera__Catalog__V1__Product **list = rpc_call_alloc(call, (n + 1) * sizeof(*list));
	if (list == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n; i++) {
		Panthera__Catalog__V1__Product *p = rpc_call_alloc(call, sizeof(*p));
		if (p == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__catalog__v1__product__init(p);
		rpc_status st = fill_product(call, r, (int)i, p);
		if (st != RPC_STATUS_OK)
			return st;
		list[i] = p;
	}
	*out = list;
	*n_out = n;
	return RPC_STATUS_OK;
}

/* ---- stock, from inventory ---- */

/*
 * Options of a call to inventory: what the caller has left, at most
 * CAT_INVENTORY_TIMEOUT (never 0, which would mean the channel's default),
 * with the caller's request id. 0 when the deadline has passed.
 */
static int inventory_opts(rpc_call *call, rpc_call_opts *o, rpc_metadata_entry *md)
{
	uint32_t left = rpc_call_remaining_ms(call);
	if (left == 0)
		return 0;
	memset(o, 0, sizeof(*o));
	o->timeout_ms = left < CAT_INVENTORY_TIMEOUT ? left : CAT_INVENTORY_TIMEOUT;
	o->max_retries = 1; /* every inventory method used here is idempotent */
	const char *request_id = rpc_call_metadata(call, "x-request-id");
	if (request_id != NULL) {
		md->key = "x-request-id";
		md->value = request_id;
		o->metadata = md;
		o->n_metadata = 1;
	}
	return 1;
}

static void stock_unknown(rpc_call *call, rpc_status st)
{
	log_write(LOG_WARN, rpc_call_metadata(call, "x-request-id"), "catalog.stock",
	          "InventoryService did not answer (%s): stock reported as 0", rpc_status_name(st));
}

/* The stock of one product into p->stock: 0 when inventory has none,
 * is down, or the catalog has no inventory channel. */
static void fill_stock_one(catalog_service *svc, rpc_call *call, Panthera__Catalog__V1__Product *p)
{
	p->stock = 0;
	if (svc->inventory == NULL)
		return;
	rpc_call_opts o;
	rpc_metadata_entry md;
	if (!inventory_opts(call, &o, &md)) {
		stock_unknown(call, RPC_STATUS_DEADLINE_EXCEEDED);
		return;
	}
	Panthera__Inventory__V1__GetStockRequest req =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	req.product_id = p->id;
	const Panthera__Inventory__V1__Stock *s = NULL;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_inventory_v1_inventory_service_get_stock(svc->inventory, &req, &o, &s, &reply);
	if (st == RPC_STATUS_OK && s != NULL)
		p->stock = s->available;
	else if (st != RPC_STATUS_NOT_FOUND)
		stock_unknown(call, st);
	rpc_reply_free(reply);
}

static int cmp_stock(const void *a, const void *b)
{
	const Panthera__Inventory__V1__Stock *x = *(const Panthera__Inventory__V1__Stock *const *)a;
	const Panthera__Inventory__V1__Stock *y = *(const Panthera__Inventory__V1__Stock *const *)b;
	return strcmp(str(x->product_id), str(y->product_id));
}

/* The stock of every product of a list, in one BatchGetStock. */
static void fill_stock_many(catalog_service *svc, rpc_call *call,
                            Panthera__Catalog__V1__Product **products, size_t n)
{
	if (svc->inventory == NULL || n == 0)
		return;
	rpc_call_opts o;
	rpc_metadata_entry md;
	if (!inventory_opts(call, &o, &md)) {
		stock_unknown(call, RPC_STATUS_DEADLINE_EXCEEDED);
		return;
	}
	char **ids = rpc_call_alloc(call, n * sizeof(*ids));
	if (ids == NULL) {
		stock_unknown(call, RPC_STATUS_RESOURCE_EXHAUSTED);
		return;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = products[i]->id;
	Panthera__Inventory__V1__BatchGetStockRequest req =
	    PANTHERA__INVENTORY__V1__BATCH_GET_STOCK_REQUEST__INIT;
	req.product_ids = ids;
	req.n_product_ids = n;
	const Panthera__Inventory__V1__BatchGetStockResponse *resp = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_inventory_v1_inventory_service_batch_get_stock(
	    svc->inventory, &req, &o, &resp, &reply);
	if (st != RPC_STATUS_OK || resp == NULL) {
		stock_unknown(call, st);
		rpc_reply_free(reply);
		return;
	}
	/* sorted copies of the reply's pointers, searched by product id */
	size_t m = resp->n_stocks;
	Panthera__Inventory__V1__Stock **sorted = rpc_call_alloc(call, (m + 1) * sizeof(*sorted));
	if (sorted == NULL) {
		stock_unknown(call, RPC_STATUS_RESOURCE_EXHAUSTED);
		rpc_reply_free(reply);
		return;
	}
	if (m > 0)
		memcpy(sorted, resp->stocks, m * sizeof(*sorted));
	qsort(sorted, m, sizeof(*sorted), cmp_stock);
	for (size_t i = 0; i < n; i++) {
		Panthera__Inventory__V1__Stock key = PANTHERA__INVENTORY__V1__STOCK__INIT;
		key.product_id = products[i]->id;
		const Panthera__Inventory__V1__Stock *k = &key;
		Panthera__Inventory__V1__Stock **hit =
		    bsearch(&k, sorted, m, sizeof(*sorted), cmp_stock);
		products[i]->stock = hit != NULL ? (*hit)->available : 0;
	}
	rpc_reply_free(reply);
}

/* ---- categories ---- */

typedef struct categories_op {
	rpc_call *call;
	Panthera__Catalog__V1__ListCategoriesResponse *resp;
} categories_op;

static rpc_status tx_list_categories(db_conn *c, void *arg)
{
	categories_op *op = arg;
	PGresult *r;
	rpc_status st = catalog_store_list_categories(c, &r);
	if (st != RPC_STATUS_OK)
		return st;
	size_t n = (size_t)PQntuples(r);
	op->resp->categories = rpc_call_alloc(op->call, (n + 1) * sizeof(*op->resp->categories));
	if (op->resp->categories == NULL)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++) {
		Panthera__Catalog__V1__Category *cat = rpc_call_alloc(op->call, sizeof(*cat));
		if (cat == NULL) {
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
			break;
		}
		panthera__catalog__v1__category__init(cat);
		st = fill_category(op->call, r, (int)i, cat);
		op->resp->categories[i] = cat;
		op->resp->n_categories = i + 1;
	}
	PQclear(r);
	if (st != RPC_STATUS_OK)
		op->resp->n_categories = 0;
	return st;
}

static rpc_status list_categories(rpc_call *call,
                                  const Panthera__Catalog__V1__ListCategoriesRequest *req,
                                  Panthera__Catalog__V1__ListCategoriesResponse *resp, void *user)
{
	catalog_service *svc = user;
	(void)req;
	categories_op op = {call, resp};
	rpc_status st =
	    db_transaction(svc->pool, DB_TX_READ, db_wait_ms(call), tx_list_categories, &op);
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

typedef struct create_category_op {
	rpc_call *call;
	const char *name, *description, *parent_id; /* parent_id NULL: top level */
	int parent_missing;
	Panthera__Catalog__V1__Category *resp;
} create_category_op;

static rpc_status tx_create_category(db_conn *c, void *arg)
{
	create_category_op *op = arg;
	rpc_status st;
	if (op->parent_id != NULL) {
		int exists;
		if ((st = catalog_store_category_exists(c, op->parent_id, &exists)) !=
		    RPC_STATUS_OK)
			return st;
		if (!exists) {
			op->parent_missing = 1;
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	}
	char id[ID_UUID_LEN + 1];
	if ((st = id_uuid4(id)) != RPC_STATUS_OK)
		return st;
	PGresult *r;
	st = catalog_store_insert_category(c, id, op->name, op->description, op->parent_id, &r);
	if (st != RPC_STATUS_OK)
		return st;
	st = fill_category(op->call, r, 0, op->resp);
	PQclear(r);
	return st;
}

static rpc_status create_category(rpc_call *call,
                                  const Panthera__Catalog__V1__CreateCategoryRequest *req,
                                  Panthera__Catalog__V1__Category *resp, void *user)
{
	catalog_service *svc = user;
	field_checker k = {.call = call};
	create_category_op op = {.call = call,
	                         .name = str(req->name),
	                         .description = str(req->description),
	                         .parent_id = *str(req->parent_id) ? req->parent_id : NULL,
	                         .resp = resp};
	check_text(&k, "name", op.name, CAT_MAX_CATEGORY_NAME, 1, 0);
	check_text(&k, "description", op.description, CAT_MAX_CATEGORY_DESC, 0, 1);
	if (op.parent_id != NULL)
		check_uuid(&k, "parent_id", op.parent_id);
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_create_category, &op);
	if (op.parent_missing) {
		rpc_call_add_field_violation(call, "parent_id", "names no category");
		rpc_call_set_error_reason(call, "CATEGORY_NOT_FOUND", NULL);
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT,
		                      "parent_id %s names no category", op.parent_id);
	}
	if (st == RPC_STATUS_ALREADY_EXISTS) {
		rpc_call_set_error_reason(call, "CATEGORY_EXISTS", NULL);
		return rpc_call_error(call, st, "a category with this name exists");
	}
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

/* ---- products: reads ---- */

typedef struct list_products_op {
	rpc_call *call;
	catalog_product_query q;
	int64_t total;
	Panthera__Catalog__V1__ListProductsResponse *resp;
} list_products_op;

static rpc_status tx_list_products(db_conn *c, void *arg)
{
	list_products_op *op = arg;
	PGresult *r;
	rpc_status st = catalog_store_list_products(c, &op->q, &op->total, &r);
	if (st != RPC_STATUS_OK)
		return st;
	st = fill_products(op->call, r, &op->resp->products, &op->resp->n_products);
	PQclear(r);
	if (st != RPC_STATUS_OK)
		op->resp->n_products = 0;
	return st;
}

static int parse_sort(const char *s, catalog_sort *out)
{
	static const struct {
		const char *name;
		catalog_sort sort;
	} sorts[] = {
	    {"", CATALOG_SORT_NAME},
	    {"name", CATALOG_SORT_NAME},
	    {"price", CATALOG_SORT_PRICE},
	    {"-price", CATALOG_SORT_PRICE_DESC},
	    {"createdAt", CATALOG_SORT_CREATED},
	    {"-createdAt", CATALOG_SORT_CREATED_DESC},
	};
	for (size_t i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++) {
		if (strcmp(s, sorts[i].name) == 0) {
			*out = sorts[i].sort;
			return 0;
		}
	}
	return -1;
}

static rpc_status list_products(rpc_call *call,
                                const Panthera__Catalog__V1__ListProductsRequest *req,
                                Panthera__Catalog__V1__ListProductsResponse *resp, void *user)
{
	catalog_service *svc = user;
	field_checker k = {.call = call};
	int32_t page = req->page == 0 ? 1 : req->page;
	int32_t page_size = req->page_size == 0 ? CAT_DEFAULT_PAGE_SIZE : req->page_size;
	if (page < 1)
		field_refuse(&k, "page", "must be 1 or more");
	if (page_size < 1 || page_size > CAT_MAX_PAGE_SIZE)
		field_refuse(&k, "page_size", "must be between 1 and 100");
	list_products_op op = {.call = call, .resp = resp};
	const char *category = str(req->category);
	if (*category != '\0') {
		check_uuid(&k, "category", category);
		op.q.category_id = category;
	}
	const char *search = str(req->search);
	check_text(&k, "search", search, CAT_MAX_SEARCH, 0, 0);
	if (!text_blank(search))
		op.q.search = search;
	char min[MONEY_TEXT], max[MONEY_TEXT];
	int64_t min_cents = -1, max_cents = -1;
	if (*str(req->min_price) != '\0' &&
	    check_price(&k, "min_price", req->min_price, min, &min_cents))
		op.q.min_price = min;
	if (*str(req->max_price) != '\0' &&
	    check_price(&k, "max_price", req->max_price, max, &max_cents))
		op.q.max_price = max;
	if (op.q.min_price != NULL && op.q.max_price != NULL && max_cents < min_cents)
		field_refuse(&k, "max_price", "must not be below min_price");
	if (parse_sort(str(req->sort_by), &op.q.sort) != 0)
		field_refuse(&k, "sort_by",
		             "must be one of name, price, -price, createdAt, -createdAt");
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	op.q.limit = page_size;
	op.q.offset = ((int64_t)page - 1) * page_size;
	st = db_transaction(svc->pool, DB_TX_READ, db_wait_ms(call), tx_list_products, &op);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	resp->total = op.total > INT32_MAX ? INT32_MAX : (int32_t)op.total;
	resp->page = page;
	resp->page_size = page_size;
	fill_stock_many(svc, call, resp->products, resp->n_products);
	return RPC_STATUS_OK;
}

typedef struct get_product_op {
	rpc_call *call;
	const char *id;
	int active_only;
	Panthera__Catalog__V1__Product *resp;
} get_product_op;

static rpc_status tx_get_product(db_conn *c, void *arg)
{
	get_product_op *op = arg;
	PGresult *r;
	rpc_status st = catalog_store_get_product(c, op->id, op->active_only, &r);
	if (st != RPC_STATUS_OK)
		return st;
	st = fill_product(op->call, r, 0, op->resp);
	PQclear(r);
	return st;
}

static rpc_status get_product(rpc_call *call, const Panthera__Catalog__V1__GetProductRequest *req,
                              Panthera__Catalog__V1__Product *resp, void *user)
{
	catalog_service *svc = user;
	field_checker k = {.call = call};
	check_uuid(&k, "product_id", str(req->product_id));
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	get_product_op op = {call, req->product_id, 1, resp};
	st = db_transaction(svc->pool, DB_TX_READ, db_wait_ms(call), tx_get_product, &op);
	if (st == RPC_STATUS_NOT_FOUND)
		return not_found(call, req->product_id);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	fill_stock_one(svc, call, resp);
	return RPC_STATUS_OK;
}

typedef struct batch_op {
	rpc_call *call;
	const char *const *ids;
	size_t n;
	Panthera__Catalog__V1__BatchGetProductsResponse *resp;
} batch_op;

static rpc_status tx_batch_get_products(db_conn *c, void *arg)
{
	batch_op *op = arg;
	PGresult *r;
	rpc_status st = catalog_store_batch_get_products(c, op->ids, op->n, &r);
	if (st != RPC_STATUS_OK)
		return st;
	st = fill_products(op->call, r, &op->resp->products, &op->resp->n_products);
	PQclear(r);
	if (st != RPC_STATUS_OK)
		op->resp->n_products = 0;
	return st;
}

static rpc_status batch_get_products(rpc_call *call,
                                     const Panthera__Catalog__V1__BatchGetProductsRequest *req,
                                     Panthera__Catalog__V1__BatchGetProductsResponse *resp,
                                     void *user)
{
	catalog_service *svc = user;
	field_checker k = {.call = call};
	if (req->n_product_ids < 1 || req->n_product_ids > CAT_MAX_BATCH) {
		field_refuse(&k, "product_ids", "must hold 1 to 1000 ids");
	} else {
		for (size_t i = 0; i < req->n_product_ids; i++) {
			if (!id_is_uuid(req->product_ids[i])) {
				field_refuse(&k, "product_ids", "must all be UUIDs");
				break;
			}
		}
	}
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	batch_op op = {call, (const char *const *)req->product_ids, req->n_product_ids, resp};
	st = db_transaction(svc->pool, DB_TX_READ, db_wait_ms(call), tx_batch_get_products, &op);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	fill_stock_many(svc, call, resp->products, resp->n_products);
	return RPC_STATUS_OK;
}

/* ---- products: changes ---- */

/* What went wrong inside a product transaction, beyond the status. */
typedef enum change_fault {
	FAULT_NONE,
	FAULT_CATEGORY_MISSING,
	FAULT_INVENTORY, /* InitStock failed with `inventory_status` */
} change_fault;

typedef struct change_op {
	rpc_call *call;
	catalog_service *svc;
	const char *id;
	catalog_product_fields f;
	int stock;
	change_fault fault;
	rpc_status inventory_status;
	Panthera__Catalog__V1__Product *resp;
} change_op;

static rpc_status check_category(db_conn *c, change_op *op)
{
	if (op->f.category_id == NULL)
		return RPC_STATUS_OK;
	int exists;
	rpc_status st = catalog_store_category_exists(c, op->f.category_id, &exists);
	if (st == RPC_STATUS_OK && !exists) {
		op->fault = FAULT_CATEGORY_MISSING;
		st = RPC_STATUS_FAILED_PRECONDITION;
	}
	return st;
}

/* InitStock for the new product, inside its transaction: the product is
 * only committed once inventory holds its stock. A commit that fails
 * after this leaves a stock row for an id nothing names, which is
 * harmless. */
static rpc_status set_initial_stock(change_op *op)
{
	op->resp->stock = 0;
	if (op->svc->inventory == NULL)
		return RPC_STATUS_OK;
	rpc_call_opts o;
	rpc_metadata_entry md;
	rpc_status st = RPC_STATUS_DEADLINE_EXCEEDED;
	if (inventory_opts(op->call, &o, &md)) {
		Panthera__Inventory__V1__SetStockRequest req =
		    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
		req.product_id = (char *)op->id;
		req.available = op->stock;
		const Panthera__Inventory__V1__Stock *s = NULL;
		rpc_reply *reply = NULL;
		st = panthera_inventory_v1_inventory_service_init_stock(op->svc->inventory, &req,
		                                                        &o, &s, &reply);
		if (st == RPC_STATUS_OK)
			op->resp->stock = s != NULL ? s->available : op->stock;
		rpc_reply_free(reply);
	}
	if (st != RPC_STATUS_OK) {
		op->fault = FAULT_INVENTORY;
		op->inventory_status = st;
	}
	return st;
}

static rpc_status tx_create_product(db_conn *c, void *arg)
{
	change_op *op = arg;
	rpc_status st = check_category(c, op);
	if (st != RPC_STATUS_OK)
		return st;
	PGresult *r;
	if ((st = catalog_store_insert_product(c, op->id, &op->f, &r)) != RPC_STATUS_OK)
		return st;
	st = fill_product(op->call, r, 0, op->resp);
	PQclear(r);
	if (st == RPC_STATUS_OK)
		st = catalog_store_product_changed(
		    c, op->id, PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__CREATED);
	if (st == RPC_STATUS_OK)
		st = set_initial_stock(op);
	return st;
}

static rpc_status tx_update_product(db_conn *c, void *arg)
{
	change_op *op = arg;
	rpc_status st = check_category(c, op);
	if (st != RPC_STATUS_OK)
		return st;
	PGresult *r;
	if ((st = catalog_store_update_product(c, op->id, &op->f, &r)) != RPC_STATUS_OK)
		return st;
	st = fill_product(op->call, r, 0, op->resp);
	PQclear(r);
	if (st == RPC_STATUS_OK)
		st = catalog_store_product_changed(
		    c, op->id, PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__UPDATED);
	return st;
}

/* The reply to a failed create or update. */
static rpc_status change_failed(rpc_call *call, const change_op *op, rpc_status st)
{
	switch (op->fault) {
	case FAULT_CATEGORY_MISSING:
		rpc_call_set_error_reason(call, "CATEGORY_NOT_FOUND", NULL);
		return rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION, "category %s not found",
		                      op->f.category_id);
	case FAULT_INVENTORY:
		/* Transport troubles stay what they are; anything else inventory
		 * answers is our bug, not the caller's. */
		st = op->inventory_status;
		if (st != RPC_STATUS_UNAVAILABLE && st != RPC_STATUS_DEADLINE_EXCEEDED &&
		    st != RPC_STATUS_RESOURCE_EXHAUSTED && st != RPC_STATUS_CANCELLED)
			st = RPC_STATUS_INTERNAL;
		return rpc_call_error(
		    call, st, "the stock could not be set in inventory (%s): nothing created",
		    rpc_status_name(op->inventory_status));
	case FAULT_NONE:
		break;
	}
	if (st == RPC_STATUS_NOT_FOUND)
		return not_found(call, op->id);
	if (st == RPC_STATUS_ALREADY_EXISTS) {
		rpc_call_set_error_reason(call, "SKU_EXISTS", NULL);
		return rpc_call_error(call, st, "sku %s is taken", op->f.sku ? op->f.sku : "");
	}
	return db_failed(call, st);
}

static rpc_status create_product(rpc_call *call,
                                 const Panthera__Catalog__V1__CreateProductRequest *req,
                                 Panthera__Catalog__V1__Product *resp, void *user)
{
	catalog_service *svc = user;
	field_checker k = {.call = call};
	char price[MONEY_TEXT];
	change_op op = {.call = call,
	                .svc = svc,
	                .f = {.sku = str(req->sku),
	                      .name = str(req->name),
	                      .description = str(req->description),
	                      .price = price,
	                      .currency = str(req->currency),
	                      .category_id = str(req->category_id),
	                      .image_url = str(req->image_url)},
	                .stock = req->stock,
	                .resp = resp};
	check_sku(&k, op.f.sku);
	check_text(&k, "name", op.f.name, CAT_MAX_PRODUCT_NAME, 1, 0);
	check_text(&k, "description", op.f.description, CAT_MAX_PRODUCT_DESC, 0, 1);
	check_price(&k, "price", str(req->price), price, NULL);
	check_currency(&k, op.f.currency);
	check_uuid(&k, "category_id", op.f.category_id);
	check_image_url(&k, op.f.image_url);
	if (req->stock < 0 || req->stock > CAT_MAX_STOCK)
		field_refuse(&k, "stock", "must be between 0 and 1000000000");
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	char id[ID_UUID_LEN + 1];
	if ((st = id_uuid4(id)) != RPC_STATUS_OK)
		return db_failed(call, st);
	op.id = id;
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_create_product, &op);
	return st == RPC_STATUS_OK ? st : change_failed(call, &op, st);
}

/* The paths UpdateProduct accepts, and where each goes. */
enum { UP_SKU, UP_NAME, UP_DESCRIPTION, UP_PRICE, UP_CURRENCY, UP_CATEGORY_ID, UP_IMAGE_URL, UP_N };
static const char *const update_paths[UP_N] = {
    [UP_SKU] = "sku",
    [UP_NAME] = "name",
    [UP_DESCRIPTION] = "description",
    [UP_PRICE] = "price",
    [UP_CURRENCY] = "currency",
    [UP_CATEGORY_ID] = "category_id",
    [UP_IMAGE_URL] = "image_url",
};

static rpc_status update_product(rpc_call *call,
                                 const Panthera__Catalog__V1__UpdateProductRequest *req,
                                 Panthera__Catalog__V1__Product *resp, void *user)
{
	catalog_service *svc = user;
	field_checker k = {.call = call};
	check_uuid(&k, "product_id", str(req->product_id));
	int set[UP_N] = {0};
	const Google__Protobuf__FieldMask *mask = req->update_mask;
	if (mask == NULL || mask->n_paths == 0)
		field_refuse(&k, "update_mask", "must name at least one field to change");
	for (size_t i = 0; mask != NULL && i < mask->n_paths; i++) {
		const char *path = str(mask->paths[i]);
		int known = 0;
		for (int j = 0; j < UP_N && !known; j++) {
			if (strcmp(path, update_paths[j]) == 0) {
				set[j] = known = 1;
			}
		}
		if (known)
			continue;
		char why[160];
		if (strcmp(path, "stock") == 0)
			snprintf(why, sizeof(why),
			         "names stock, which is changed through InventoryService.SetStock");
		else if (text_chars(path, 64, 0) >= 0)
			snprintf(why, sizeof(why), "names unknown field \"%s\"", path);
		else
			snprintf(why, sizeof(why), "names an unknown field");
		field_refuse(&k, "update_mask", why);
	}
	char price[MONEY_TEXT];
	change_op op = {.call = call, .svc = svc, .id = str(req->product_id), .resp = resp};
	if (set[UP_SKU]) {
		op.f.sku = str(req->sku);
		check_sku(&k, op.f.sku);
	}
	if (set[UP_NAME]) {
		op.f.name = str(req->name);
		check_text(&k, "name", op.f.name, CAT_MAX_PRODUCT_NAME, 1, 0);
	}
	if (set[UP_DESCRIPTION]) {
		op.f.description = str(req->description);
		check_text(&k, "description", op.f.description, CAT_MAX_PRODUCT_DESC, 0, 1);
	}
	if (set[UP_PRICE] && check_price(&k, "price", str(req->price), price, NULL))
		op.f.price = price;
	if (set[UP_CURRENCY]) {
		op.f.currency = str(req->currency);
		check_currency(&k, op.f.currency);
	}
	if (set[UP_CATEGORY_ID]) {
		op.f.category_id = str(req->category_id);
		check_uuid(&k, "category_id", op.f.category_id);
	}
	if (set[UP_IMAGE_URL]) {
		op.f.image_url = str(req->image_url);
		check_image_url(&k, op.f.image_url);
	}
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_update_product, &op);
	if (st != RPC_STATUS_OK)
		return change_failed(call, &op, st);
	fill_stock_one(svc, call, resp);
	return RPC_STATUS_OK;
}

static rpc_status tx_delete_product(db_conn *c, void *arg)
{
	const char *id = arg;
	rpc_status st = catalog_store_deactivate_product(c, id);
	if (st == RPC_STATUS_OK)
		st = catalog_store_product_changed(
		    c, id, PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__DELETED);
	return st;
}

static rpc_status delete_product(rpc_call *call,
                                 const Panthera__Catalog__V1__DeleteProductRequest *req,
                                 Panthera__Catalog__V1__DeleteProductResponse *resp, void *user)
{
	catalog_service *svc = user;
	(void)resp;
	field_checker k = {.call = call};
	check_uuid(&k, "product_id", str(req->product_id));
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_delete_product, req->product_id);
	if (st == RPC_STATUS_NOT_FOUND)
		return not_found(call, req->product_id);
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

/* "4.5": one digit, a point, one digit, as tenths; -1 otherwise. */
static int parse_rating(const char *s, int *tenths)
{
	if (s[0] < '0' || s[0] > '9' || s[1] != '.' || s[2] < '0' || s[2] > '9' || s[3] != '\0')
		return -1;
	*tenths = (s[0] - '0') * 10 + (s[2] - '0');
	return 0;
}

typedef struct rating_op {
	const char *id, *average;
	int count;
} rating_op;

static rpc_status tx_set_rating(db_conn *c, void *arg)
{
	rating_op *op = arg;
	int changed;
	rpc_status st = catalog_store_set_rating(c, op->id, op->average, op->count, &changed);
	if (st == RPC_STATUS_OK && changed)
		st = catalog_store_product_changed(
		    c, op->id, PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__UPDATED);
	return st;
}

static rpc_status set_product_rating(rpc_call *call,
                                     const Panthera__Catalog__V1__SetProductRatingRequest *req,
                                     Panthera__Catalog__V1__SetProductRatingResponse *resp,
                                     void *user)
{
	catalog_service *svc = user;
	(void)resp;
	field_checker k = {.call = call};
	check_uuid(&k, "product_id", str(req->product_id));
	if (req->rating_count < 0)
		field_refuse(&k, "rating_count", "must be 0 or more");
	int tenths;
	if (parse_rating(str(req->rating_average), &tenths) != 0)
		field_refuse(&k, "rating_average",
		             "must be a decimal with one place, e.g. \"4.5\"");
	else if (req->rating_count == 0 && tenths != 0)
		field_refuse(&k, "rating_average", "must be \"0.0\" when rating_count is 0");
	else if (req->rating_count > 0 && (tenths < 10 || tenths > 50))
		field_refuse(&k, "rating_average", "must be between \"1.0\" and \"5.0\"");
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	rating_op op = {req->product_id, req->rating_average, req->rating_count};
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_set_rating, &op);
	if (st == RPC_STATUS_NOT_FOUND)
		return not_found(call, req->product_id);
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

/* ---- the service ---- */

static const panthera_catalog_v1_catalog_service_handlers handlers = {
    .list_categories = list_categories,
    .create_category = create_category,
    .list_products = list_products,
    .get_product = get_product,
    .create_product = create_product,
    .update_product = update_product,
    .delete_product = delete_product,
    .batch_get_products = batch_get_products,
    .set_product_rating = set_product_rating,
};

rpc_status catalog_service_init(catalog_service *svc)
{
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	return ev_outbox_setup(svc->pool, CATALOG_SCHEMA);
}

rpc_status catalog_service_register(rpc_server *srv, catalog_service *svc)
{
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	return panthera_catalog_v1_catalog_service_register(srv, &handlers, svc);
}
