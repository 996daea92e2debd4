/*
 * inventory.h - the inventory service: stock on hand and reservations.
 *
 * Stock per product is `available` (can be reserved) and `reserved` (held
 * for orders not yet paid). Reserve moves units from available to reserved
 * for every item of an order, all or nothing, and is idempotent on the
 * order id; Commit consumes them (payment succeeded); Release returns them
 * (payment failed, order cancelled, reservation expired); Restock returns
 * committed units (a refund before shipping). Each step is one transaction
 * whose UPDATEs only succeed when the stock suffices, so concurrent
 * reservations can never oversell: PostgreSQL's row locks serialise them.
 *
 * Thread-safety: the service object is shared by the RPC worker threads.
 */
#ifndef PANTHERA_INVENTORY_H
#define PANTHERA_INVENTORY_H

#include "panthera/db.h"
#include "panthera/inventory/v1/inventory.panthera.h"

typedef struct inventory_service {
	db_pool *pool;          /* on a database migrated with services/inventory/migrations */
	uint32_t default_ttl_s; /* reservations without ttl_seconds; 0: 900 */
} inventory_service;

/* Serve InventoryService on `srv` with `svc` (which must outlive it). Also
 * creates the inventory outbox: every change of stock writes a
 * panthera.events.v1.StockChanged event in its transaction. */
rpc_status inventory_service_register(rpc_server *srv, inventory_service *svc);

/*
 * Release the HELD reservations whose time has passed, the oldest first,
 * up to 100 per call, each in its own transaction; *released (may be NULL)
 * gets how many. The service binary runs it periodically.
 */
rpc_status inventory_sweep_expired(inventory_service *svc, unsigned *released);

#endif /* PANTHERA_INVENTORY_H */
