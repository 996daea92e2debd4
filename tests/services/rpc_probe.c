/*
 * rpc_probe.c - a small RPC client for the end-to-end tests of `make run`
 * and of the services as separate processes: checks the health of
 * InventoryService at argv[1], sets the stock of a new product, and lists
 * the demo catalog from CatalogService at argv[2] (default argv[1]), whose
 * stock must come from inventory. With --order (argv[2]), it also places
 * an order of one demo product through OrderService at argv[1] and reads
 * it back. Exit 0 when all holds.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.panthera.h"
#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/ids.h"
#include "panthera/inventory/v1/inventory.panthera.h"
#include "panthera/orders/v1/orders.panthera.h"

int main(int argc, char **argv)
{
	/* --stock-only: just set the stock of a new product (no catalog) */
	int stock_only = argc == 3 && strcmp(argv[2], "--stock-only") == 0;
	int order = argc == 3 && strcmp(argv[2], "--order") == 0;
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: rpc_probe URL [CATALOG_URL | --stock-only]\n");
		return 2;
	}
	const char *url = argv[1],
	           *catalog_url = argc == 3 && !stock_only && !order ? argv[2] : argv[1];
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
	if (order) {
		const char *pid = NULL;
		for (size_t i = 0; i < list->n_products && pid == NULL; i++)
			if (list->products[i]->stock > 0)
				pid = list->products[i]->id;
		char user[37], oid[37];
		id_uuid4(user);
		Panthera__Orders__V1__CheckoutItem item = PANTHERA__ORDERS__V1__CHECKOUT_ITEM__INIT;
		Panthera__Orders__V1__CheckoutItem *items[1] = {&item};
		item.product_id = (char *)pid;
		item.quantity = 1;
		Panthera__Orders__V1__ShippingAddress addr =
		    PANTHERA__ORDERS__V1__SHIPPING_ADDRESS__INIT;
		addr.street = "1 Probe Way";
		addr.city = "Testville";
		addr.zip_code = "12345";
		addr.country = "US";
		Panthera__Orders__V1__CreateOrderRequest cr =
		    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
		cr.items = items;
		cr.n_items = 1;
		cr.shipping_address = &addr;
		cr.payment_method_id = "pm_card_visa";
		rpc_metadata_entry md[1] = {{"x-caller-id", user}};
		rpc_call_opts o = {.metadata = md, .n_metadata = 1, .timeout_ms = 10000};
		const Panthera__Orders__V1__Order *placed;
		rpc_reply *r2 = NULL;
		st = panthera_orders_v1_order_service_create_order(ch, &cr, &o, &placed, &r2);
		if (st != RPC_STATUS_OK) {
			fprintf(stderr, "rpc_probe: CreateOrder: %s %s\n", rpc_status_name(st),
			        rpc_reply_message(r2));
			rpc_reply_free(r2);
			goto out;
		}
		snprintf(oid, sizeof(oid), "%s", placed->id);
		printf("rpc_probe: order %s placed for %s, %s\n", oid, placed->total_amount,
		       placed->currency);
		rpc_reply_free(r2);
		Panthera__Orders__V1__GetOrderRequest gr =
		    PANTHERA__ORDERS__V1__GET_ORDER_REQUEST__INIT;
		gr.order_id = oid;
		/* the saga settles it: payments charges pm_card_visa, orders commits */
		int paid = 0;
		for (int tries = 0; tries < 100 && !paid; tries++) {
			const Panthera__Orders__V1__Order *got;
			st = panthera_orders_v1_order_service_get_order(ch, &gr, &o, &got, &r2);
			if (st != RPC_STATUS_OK) {
				fprintf(stderr, "rpc_probe: GetOrder: %s\n", rpc_status_name(st));
				rpc_reply_free(r2);
				goto out;
			}
			paid = got->status == PANTHERA__ORDERS__V1__ORDER_STATUS__PAID;
			rpc_reply_free(r2);
			if (!paid) {
				struct timespec pause = {0, 50 * 1000000L};
				nanosleep(&pause, NULL);
			}
		}
		if (!paid) {
			fprintf(stderr, "rpc_probe: order %s did not become PAID in 5 s\n", oid);
			goto out;
		}
		printf("rpc_probe: order %s settled PAID through the saga\n", oid);
	}
	printf("rpc_probe: healthy; stock of %s set to 42\n", product);
	rc = 0;
out:
	rpc_reply_free(reply);
	rpc_channel_close(cat);
	rpc_channel_close(ch);
	return rc;
}
