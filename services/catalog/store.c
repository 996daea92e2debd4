/*
 * store.c - the catalog service's SQL; see store.h. Parameters only: every
 * SQL text below is a constant, and values travel as $n.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"

/* A timestamp as two columns: whole Unix seconds (floor, not rounding) and
 * the microseconds within that second, both from the epoch, which does not
 * depend on the session's time zone. */
#define TIME_COLUMNS(col)                              \
	"floor(extract(epoch FROM " col "))::bigint, " \
	"((extract(epoch FROM " col ") * 1000000)::bigint % 1000000)"

/* In the order of the CAT_C_* enum. */
#define CATEGORY_COLUMNS                                                               \
	"c.id, c.name, c.description, coalesce(c.parent_id::text, ''), " TIME_COLUMNS( \
	    "c.created_at") ", " TIME_COLUMNS("c.updated_at")

/* In the order of the CAT_P_* enum; numeric(12,2) prints two places. */
#define PRODUCT_COLUMNS                                                                    \
	"p.id, p.sku, p.name, p.description, p.price::text, p.currency, p.category_id, "   \
	"p.image_url, p.is_active, p.rating_average::text, p.rating_count, " TIME_COLUMNS( \
	    "p.created_at") ", " TIME_COLUMNS("p.updated_at")

/* ---- categories ---- */

rpc_status catalog_store_list_categories(db_conn *c, PGresult **rows)
{
	return db_exec(c, "cat_list_categories",
	               "SELECT " CATEGORY_COLUMNS " FROM categories c ORDER BY c.name, c.id", 0,
	               NULL, rows);
}

rpc_status catalog_store_insert_category(db_conn *c, const char *id, const char *name,
                                         const char *description, const char *parent_id,
                                         PGresult **row)
{
	const char *p[4] = {id, name, description, parent_id};
	return db_exec_row(c, "cat_insert_category",
	                   "INSERT INTO categories AS c (id, name, description, parent_id)"
	                   " VALUES ($1, $2, $3, $4::uuid) RETURNING " CATEGORY_COLUMNS,
	                   4, p, row);
}

rpc_status catalog_store_category_exists(db_conn *c, const char *id, int *exists)
{
	const char *p[1] = {id};
	PGresult *r;
	rpc_status st =
	    db_exec(c, "cat_category_exists", "SELECT 1 FROM categories WHERE id = $1", 1, p, &r);
	*exists = 0;
	if (st != RPC_STATUS_OK)
		return st;
	*exists = PQntuples(r) > 0;
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status catalog_store_find_category(db_conn *c, const char *name, char id_out[37])
{
	const char *p[1] = {name};
	PGresult *r;
	rpc_status st = db_exec_row(c, "cat_find_category",
	                            "SELECT id FROM categories WHERE name = $1", 1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	snprintf(id_out, ID_UUID_LEN + 1, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return RPC_STATUS_OK;
}

/* ---- products ---- */

rpc_status catalog_store_insert_product(db_conn *c, const char *id, const catalog_product_fields *f,
                                        PGresult **row)
{
	const char *p[8] = {id,       f->sku,      f->name,        f->description,
	                    f->price, f->currency, f->category_id, f->image_url};
	return db_exec_row(
	    c, "cat_insert_product",
	    "INSERT INTO products AS p (id, sku, name, description, price, currency,"
	    " category_id, image_url) VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8)"
	    " RETURNING " PRODUCT_COLUMNS,
	    8, p, row);
}

rpc_status catalog_store_get_product(db_conn *c, const char *id, int active_only, PGresult **row)
{
	const char *p[2] = {id, active_only ? "t" : "f"};
	return db_exec_row(c, "cat_get_product",
	                   "SELECT " PRODUCT_COLUMNS " FROM products p"
	                   " WHERE p.id = $1 AND (p.is_active OR NOT $2::boolean)",
	                   2, p, row);
}

rpc_status catalog_store_update_product(db_conn *c, const char *id, const catalog_product_fields *f,
                                        PGresult **row)
{
	/* NULL parameters keep the stored value: every field is NOT NULL. */
	const char *p[8] = {id,       f->sku,      f->name,        f->description,
	                    f->price, f->currency, f->category_id, f->image_url};
	return db_exec_row(
	    c, "cat_update_product",
	    "UPDATE products p SET sku = coalesce($2, p.sku), name = coalesce($3, p.name),"
	    " description = coalesce($4, p.description),"
	    " price = coalesce($5::numeric, p.price), currency = coalesce($6, p.currency),"
	    " category_id = coalesce($7::uuid, p.category_id),"
	    " image_url = coalesce($8, p.image_url), updated_at = now()"
	    " WHERE p.id = $1 AND p.is_active RETURNING " PRODUCT_COLUMNS,
	    8, p, row);
}

rpc_status catalog_store_deactivate_product(db_conn *c, const char *id)
{
	const char *p[1] = {id};
	PGresult *r;
	rpc_status st = db_exec_row(c, "cat_deactivate_product",
	                            "UPDATE products SET is_active = false, updated_at = now()"
	                            " WHERE id = $1 AND is_active RETURNING id",
	                            1, p, &r);
	PQclear(r);
	return st;
}

rpc_status catalog_store_batch_get_products(db_conn *c, const char *const *ids, size_t n,
                                            PGresult **rows)
{
	*rows = NULL;
	/* One parameter: a uuid[] literal "{id,id,...}" of validated UUIDs. */
	if (n > (SIZE_MAX - 3) / (ID_UUID_LEN + 1))
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	char *array = malloc(n * (ID_UUID_LEN + 1) + 3);
	if (array == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	size_t len = 0;
	array[len++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (!id_is_uuid(ids[i])) {
			free(array);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		if (i > 0)
			array[len++] = ',';
		memcpy(array + len, ids[i], ID_UUID_LEN);
		len += ID_UUID_LEN;
	}
	array[len++] = '}';
	array[len] = '\0';
	const char *p[1] = {array};
	rpc_status st = db_exec(
	    c, "cat_batch_get_products",
	    "SELECT " PRODUCT_COLUMNS " FROM products p WHERE p.id = ANY($1::uuid[])", 1, p, rows);
	free(array);
	return st;
}

rpc_status catalog_store_set_rating(db_conn *c, const char *id, const char *average, int count,
                                    int *changed)
{
	char n[16];
	snprintf(n, sizeof(n), "%d", count);
	const char *p[3] = {id, average, n};
	PGresult *r;
	/* `old` reads the row before the update (locked), so the reply can
	 * tell a change from a repeated call; a repeat keeps updated_at. */
	rpc_status st = db_exec_row(
	    c, "cat_set_rating",
	    "WITH old AS (SELECT id, rating_average, rating_count FROM products WHERE id = $1"
	    " FOR UPDATE),"
	    " new AS (SELECT $2::numeric(2, 1) AS rating_average, $3::int AS rating_count)"
	    " UPDATE products p SET rating_average = new.rating_average,"
	    " rating_count = new.rating_count, updated_at = CASE WHEN"
	    " (old.rating_average, old.rating_count) IS DISTINCT FROM"
	    " (new.rating_average, new.rating_count) THEN now() ELSE p.updated_at END"
	    " FROM old, new WHERE p.id = old.id"
	    " RETURNING (old.rating_average, old.rating_count) IS DISTINCT FROM"
	    " (new.rating_average, new.rating_count)",
	    3, p, &r);
	*changed = 0;
	if (st != RPC_STATUS_OK)
		return st;
	*changed = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return RPC_STATUS_OK;
}

/*
 * ListProducts: one constant filter, where a NULL parameter disables its
 * condition. The statements run unnamed, so PostgreSQL plans each with the
 * actual values: the disabled conditions fold away, and the search uses
 * the GIN index.
 *   $1 category (with its subcategories), $2 search, $3 min, $4 max price.
 */
#define LIST_FROM                                                                                  \
	" FROM products p WHERE p.is_active"                                                       \
	" AND ($1::uuid IS NULL OR p.category_id IN (WITH RECURSIVE tree(id) AS ("                 \
	"SELECT id FROM categories WHERE id = $1::uuid UNION"                                      \
	" SELECT k.id FROM categories k JOIN tree ON k.parent_id = tree.id) SELECT id FROM tree))" \
	" AND ($2::text IS NULL OR p.search @@ plainto_tsquery('simple', $2::text))"               \
	" AND ($3::numeric IS NULL OR p.price >= $3::numeric)"                                     \
	" AND ($4::numeric IS NULL OR p.price <= $4::numeric)"

/* $5 limit, $6 offset; ties broken by id so pages never overlap. */
#define LIST_PAGE(order) \
	"SELECT " PRODUCT_COLUMNS LIST_FROM " ORDER BY " order " LIMIT $5::int OFFSET $6::bigint"

static const char *const list_sql[] = {
    [CATALOG_SORT_NAME] = LIST_PAGE("p.name, p.id"),
    [CATALOG_SORT_PRICE] = LIST_PAGE("p.price, p.name, p.id"),
    [CATALOG_SORT_PRICE_DESC] = LIST_PAGE("p.price DESC, p.name, p.id"),
    [CATALOG_SORT_CREATED] = LIST_PAGE("p.created_at, p.id"),
    [CATALOG_SORT_CREATED_DESC] = LIST_PAGE("p.created_at DESC, p.id"),
};

rpc_status catalog_store_list_products(db_conn *c, const catalog_product_query *q, int64_t *total,
                                       PGresult **rows)
{
	*rows = NULL;
	*total = 0;
	if ((unsigned)q->sort >= sizeof(list_sql) / sizeof(list_sql[0]) || q->limit < 0 ||
	    q->offset < 0)
		return RPC_STATUS_INVALID_ARGUMENT;
	char limit[16], offset[32];
	snprintf(limit, sizeof(limit), "%d", q->limit);
	snprintf(offset, sizeof(offset), "%" PRId64, q->offset);
	const char *p[6] = {q->category_id, q->search, q->min_price, q->max_price, limit, offset};
	rpc_status st = db_exec_int64(c, NULL, "SELECT count(*)" LIST_FROM, 4, p, total);
	if (st != RPC_STATUS_OK)
		return st;
	return db_exec(c, NULL, list_sql[q->sort], 6, p, rows);
}

rpc_status catalog_store_count_products(db_conn *c, int64_t *n)
{
	*n = 0;
	return db_exec_int64(c, "cat_count_products", "SELECT count(*) FROM products", 0, NULL, n);
}

/* ---- events and locks ---- */

rpc_status catalog_store_product_changed(db_conn *c, const char *product_id, int kind)
{
	Panthera__Events__V1__ProductChanged ev = PANTHERA__EVENTS__V1__PRODUCT_CHANGED__INIT;
	ev.product_id = (char *)product_id;
	ev.kind = (Panthera__Events__V1__ProductChanged__Kind)kind;
	uint8_t buf[128];
	size_t n = panthera__events__v1__product_changed__get_packed_size(&ev);
	if (n > sizeof(buf))
		return RPC_STATUS_INTERNAL; /* a UUID and an enum: never */
	panthera__events__v1__product_changed__pack(&ev, buf);
	return ev_publish(c, CATALOG_SCHEMA, "panthera.events.v1.ProductChanged", product_id, buf,
	                  n, NULL);
}

rpc_status catalog_store_lock_seed(db_conn *c)
{
	return db_exec(c, "cat_lock_seed",
	               "SELECT pg_advisory_xact_lock(hashtext('panthera.catalog.seed'))", 0, NULL,
	               NULL);
}
