/*
 * catalog.h - the catalog service: categories and products.
 *
 * Categories form a tree through parent_id. Products are created, changed
 * (only the fields an update mask names) and soft-deleted: a deleted
 * product becomes inactive, leaves every list and answers NOT_FOUND, but
 * keeps its row (and its sku) so that orders and reviews still name it.
 * Prices are exact: integer minor units (cents) in C, numeric(12,2) in SQL,
 * decimal strings with two places on the wire. ListProducts searches name
 * and description with PostgreSQL's full-text search (a generated tsvector
 * under a GIN index), filters by category (its subcategories included) and
 * price, sorts, and pages with a total.
 *
 * Every product change writes a panthera.events.v1.ProductChanged event to
 * catalog.outbox in the transaction of the change (the gateway's cache and
 * the analytics read model consume it).
 *
 * Stock is inventory's: replies carry InventoryService's `available` when
 * the service has an inventory channel, 0 otherwise; when inventory fails,
 * reads still answer (stock 0, a warning in the log). CreateProduct sets the
 * initial stock through InventoryService.InitStock before it commits, so a
 * product is only created once its stock is recorded.
 *
 * Thread-safety: the service object is shared by the RPC worker threads and
 * must not change while the server runs.
 */
#ifndef PANTHERA_CATALOG_H
#define PANTHERA_CATALOG_H

#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/db.h"

/* The schema of the catalog's tables and of its outbox. */
#define CATALOG_SCHEMA "catalog"

typedef struct catalog_service {
	/* A pool whose search_path is CATALOG_SCHEMA, on a database migrated
	 * with services/catalog/migrations (db_migrate(pool, "catalog", dir)). */
	db_pool *pool;
	/* A channel to InventoryService, or NULL: stock is then reported as 0
	 * and CreateProduct's stock is ignored. */
	rpc_channel *inventory;
} catalog_service;

/*
 * Prepare the database for the service after db_migrate(): create
 * catalog.outbox (ev_outbox_setup), which every product change writes to.
 * Safe to call again. INVALID_ARGUMENT without a pool; otherwise the
 * status of the database.
 */
rpc_status catalog_service_init(catalog_service *svc);

/* Serve CatalogService on `srv` with `svc` (which must outlive it). Call
 * catalog_service_init() first. */
rpc_status catalog_service_register(rpc_server *srv, catalog_service *svc);

/*
 * Load the demo catalog ("Panthera Outfitters", an outdoor shop: a few
 * categories, some thirty products) when the catalog has no product at all,
 * and set each product's stock through the inventory channel when there is
 * one. One transaction: all or nothing, so a failed seed is simply run
 * again. Idempotent and safe from several processes at once (an advisory
 * lock serialises them): with products present it does nothing. The
 * inventory server must already answer. *created (may be NULL) gets the
 * number of products created, 0 on error.
 */
rpc_status catalog_seed_demo(catalog_service *svc, int *created);

#endif /* PANTHERA_CATALOG_H */
