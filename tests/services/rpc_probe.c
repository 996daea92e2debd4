/*
 * rpc_probe.c - a small RPC client for the end-to-end tests of `make run`
 * and of the services as separate processes: checks the health of
 * InventoryService at argv[1], sets the stock of a new product, and lists
 * the demo catalog from CatalogService at argv[2] (default argv[1]), whose
 * stock must come from inventory. Exit 0 when all holds.
 */
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.panthera.h"
#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/ids.h"
#include "panthera/inventory/v1/inventory.panthera.h"

int main(int argc, char **argv)
{
	/* --stock-only: just set the stock of a new product (no catalog) */
	int stock_only = argc == 3 && strcmp(argv[2], "--stock-only") == 0;
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: rpc_probe URL [CATALOG_URL | --stock-only]\n");
		return 2;
	}
	const char *url = argv[1], *catalog_url = argc == 3 && !stock_only ? argv[2] : argv[1];
	rpc_channel *ch, *cat;
	rpc_channel_opts co = {.connect_wait_ms = 3000};
	if (rpc_channel_open(&ch, &url, 1, &co) != RPC_STATUS_OK)
		return 1;
	if (rpc_channel_open(&cat, &catalog_url, 1, &co) != RPC_STATUS_OK) {
		rpc_channel_close(ch);
		return 1;
	}
	int rc = 1;
	rpc_reply *reply = NULL;
	Grpc__Health__V1__HealthCheckRequest h = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	h.service = "panthera.inventory.v1.InventoryService";
	const Grpc__Health__V1__HealthCheckResponse *hr;
	rpc_status st = grpc_health_v1_health_check(ch, &h, NULL, &hr, &reply);
	if (st != RPC_STATUS_OK ||
	    hr->status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
		fprintf(stderr, "rpc_probe: health: %s %s\n", rpc_status_name(st),
		        rpc_reply_message(reply));
		goto out;
	}
	rpc_reply_free(reply);
	reply = NULL;
	char product[ID_UUID_LEN + 1];
	id_uuid4(product);
	Panthera__Inventory__V1__SetStockRequest s =
	    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
	s.product_id = product;
	s.available = 42;
	const Panthera__Inventory__V1__Stock *stock;
	rpc_metadata_entry md[] = {{"x-request-id", "rpc-probe"}};
	rpc_call_opts so = {.metadata = md, .n_metadata = 1};
	st = panthera_inventory_v1_inventory_service_set_stock(ch, &s, &so, &stock, &reply);
	if (st != RPC_STATUS_OK || stock->available != 42) {
		fprintf(stderr, "rpc_probe: set stock: %s %s\n", rpc_status_name(st),
		        rpc_reply_message(reply));
		goto out;
	}
	rpc_reply_free(reply);
	reply = NULL;
	if (stock_only) {
		printf("rpc_probe: stock of %s set to 42\n", product);
		rc = 0;
		goto out;
	}
	/* the demo catalog, with stock from inventory */
	Panthera__Catalog__V1__ListProductsRequest lp =
	    PANTHERA__CATALOG__V1__LIST_PRODUCTS_REQUEST__INIT;
	lp.page_size = 100;
	const Panthera__Catalog__V1__ListProductsResponse *list;
	st = panthera_catalog_v1_catalog_service_list_products(cat, &lp, NULL, &list, &reply);
	int stocked = 0;
	for (size_t i = 0; st == RPC_STATUS_OK && i < list->n_products; i++)
		stocked += list->products[i]->stock > 0;
	if (st != RPC_STATUS_OK || list->total < 30 || stocked == 0) {
		fprintf(stderr, "rpc_probe: demo catalog: %s %s\n", rpc_status_name(st),
		        rpc_reply_message(reply));
		goto out;
	}
	printf("rpc_probe: %d products in the demo catalog\n", (int)list->total);
	printf("rpc_probe: healthy; stock of %s set to 42\n", product);
	rc = 0;
out:
	rpc_reply_free(reply);
	rpc_channel_close(cat);
	rpc_channel_close(ch);
	return rc;
}
