/*
 * store.h - the catalog service's SQL (internal). Every function runs on a
 * connection inside the caller's transaction and takes values only as
 * parameters. Values arrive validated by the handlers: ids are UUIDs,
 * prices are normalized decimal strings ("12.50").
 *
 * Rows come back as PGresults (the caller PQclears them) whose columns are
 * named by the enums below, always in text form.
 */
#ifndef PANTHERA_CATALOG_STORE_H
#define PANTHERA_CATALOG_STORE_H

#include <stdint.h>

#include "panthera/db.h"

/* Columns of a category row. Times are Unix seconds and microseconds. */
enum {
	CAT_C_ID,
	CAT_C_NAME,
	CAT_C_DESCRIPTION,
	CAT_C_PARENT_ID, /* "" for a top-level category */
	CAT_C_CREATED_S,
	CAT_C_CREATED_US,
	CAT_C_UPDATED_S,
	CAT_C_UPDATED_US,
	CAT_C_NCOLS
};

/* Columns of a product row. price "12.50", rating_average "4.5",
 * is_active "t" or "f". */
enum {
	CAT_P_ID,
	CAT_P_SKU,
	CAT_P_NAME,
	CAT_P_DESCRIPTION,
	CAT_P_PRICE,
	CAT_P_CURRENCY,
	CAT_P_CATEGORY_ID,
	CAT_P_IMAGE_URL,
	CAT_P_IS_ACTIVE,
	CAT_P_RATING_AVERAGE,
	CAT_P_RATING_COUNT,
	CAT_P_CREATED_S,
	CAT_P_CREATED_US,
	CAT_P_UPDATED_S,
	CAT_P_UPDATED_US,
	CAT_P_NCOLS
};

/* ---- categories ---- */

/* Every category, by name. */
rpc_status catalog_store_list_categories(db_conn *c, PGresult **rows);

/* Insert a category; `parent_id` NULL for a top-level one. *row: the new
 * row. ALREADY_EXISTS when the name is taken. */
rpc_status catalog_store_insert_category(db_conn *c, const char *id, const char *name,
                                         const char *description, const char *parent_id,
                                         PGresult **row);

/* *exists: 1 when category `id` exists, else 0. */
rpc_status catalog_store_category_exists(db_conn *c, const char *id, int *exists);

/* The id of the category named `name` into id_out[37]; NOT_FOUND. */
rpc_status catalog_store_find_category(db_conn *c, const char *name, char id_out[37]);

/* ---- products ---- */

/* A product's fields. For an update, NULL leaves a field as it is. */
typedef struct catalog_product_fields {
	const char *sku;
	const char *name;
	const char *description;
	const char *price; /* normalized: "12.50" */
	const char *currency;
	const char *category_id;
	const char *image_url;
} catalog_product_fields;

/* Insert an active product (every field set). *row: the new row.
 * ALREADY_EXISTS when the sku is taken. */
rpc_status catalog_store_insert_product(db_conn *c, const char *id, const catalog_product_fields *f,
                                        PGresult **row);

/* One product; with `active_only`, an inactive one is NOT_FOUND too. */
rpc_status catalog_store_get_product(db_conn *c, const char *id, int active_only, PGresult **row);

/* Change the non-NULL fields of an active product. NOT_FOUND when there
 * is none; ALREADY_EXISTS when the new sku is taken. */
rpc_status catalog_store_update_product(db_conn *c, const char *id, const catalog_product_fields *f,
                                        PGresult **row);

/* Make an active product inactive; NOT_FOUND when there is none. */
rpc_status catalog_store_deactivate_product(db_conn *c, const char *id);

/* The products (active or not) among `ids` (UUIDs; duplicates and unknown
 * ids are harmless), in no particular order. */
rpc_status catalog_store_batch_get_products(db_conn *c, const char *const *ids, size_t n,
                                            PGresult **rows);

/* Store a product's rating summary ("4.5", 2); *changed: 1 when it
 * differed from the stored one. NOT_FOUND for an unknown product. */
rpc_status catalog_store_set_rating(db_conn *c, const char *id, const char *average, int count,
                                    int *changed);

/* Orders of catalog_store_list_products. */
typedef enum catalog_sort {
	CATALOG_SORT_NAME,
	CATALOG_SORT_PRICE,
	CATALOG_SORT_PRICE_DESC,
	CATALOG_SORT_CREATED,
	CATALOG_SORT_CREATED_DESC,
} catalog_sort;

/* A page of ListProducts. NULL filters do not filter. */
typedef struct catalog_product_query {
	const char *category_id; /* that category and every category under it */
	const char *search;      /* words that must all occur in name or description */
	const char *min_price;   /* normalized decimal strings */
	const char *max_price;
	catalog_sort sort;
	int limit;      /* 1..100 */
	int64_t offset; /* >= 0 */
} catalog_product_query;

/* The active products matching `q`: *total counts them over all pages,
 * *rows holds the page. */
rpc_status catalog_store_list_products(db_conn *c, const catalog_product_query *q, int64_t *total,
                                       PGresult **rows);

/* Number of products, active or not. */
rpc_status catalog_store_count_products(db_conn *c, int64_t *n);

/* ---- events and locks ---- */

/* Write a panthera.events.v1.ProductChanged of `kind` (its enum value:
 * CREATED, UPDATED, DELETED) for `product_id` to catalog.outbox. */
rpc_status catalog_store_product_changed(db_conn *c, const char *product_id, int kind);

/* Take the transaction-scoped advisory lock of the demo seed. */
rpc_status catalog_store_lock_seed(db_conn *c);

#endif /* PANTHERA_CATALOG_STORE_H */
