/*
 * browse.c - read the catalog through the installed Panthera SDK.
 *
 * Lists every category, then the active products page by page, then reads
 * the first product listed on its own, all through the generated typed
 * stubs of panthera.catalog.v1.CatalogService over one rpc_channel:
 *
 *     browse [URL [PAGE_SIZE [MAX_PAGES]]]
 *
 * URL is the RPC address of a running platform (default
 * tcp://127.0.0.1:7070, what `make run` serves); PAGE_SIZE 1..100 (default
 * 10); MAX_PAGES how many pages to walk at most (default 3). Exit status 0
 * on success, 1 on any failure, with the status name and message on stderr.
 *
 * Output, one record a line:
 *     category <id> <name>
 *     page <p> of <pages> (<total> products)
 *     product <id> <sku> <price> <currency> stock=<n> <name>
 *     get <id> <name>: <price> <currency>, <n> in stock
 *
 * Build: the Makefile beside this file (pkg-config panthera only).
 */
#include <stdio.h>
#include <stdlib.h>

#include "panthera/catalog/v1/catalog.panthera.h"

/* Every call gets a deadline; reads are safe to repeat, so a lost
 * connection is retried once (the channel retries only idempotent methods). */
static const rpc_call_opts read_opts = {.timeout_ms = 5000, .max_retries = 1};

/* Print why a call failed: the status name and the server's message. */
static void browse_report(const char *what, rpc_status st, const rpc_reply *reply)
{
	fprintf(stderr, "browse: %s: %s: %s\n", what, rpc_status_name(st),
	        rpc_reply_message(reply));
}

/* Parse a positive integer argument no larger than `max`; 0 when it is not one. */
static int browse_parse_count(const char *s, int max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < 1 || v > max)
		return 0;
	return (int)v;
}

static int browse_categories(rpc_channel *ch)
{
	Panthera__Catalog__V1__ListCategoriesRequest req =
	    PANTHERA__CATALOG__V1__LIST_CATEGORIES_REQUEST__INIT;
	const Panthera__Catalog__V1__ListCategoriesResponse *resp;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_catalog_v1_catalog_service_list_categories(ch, &req, &read_opts,
	                                                                    &resp, &reply);
	if (st != RPC_STATUS_OK) {
		browse_report("ListCategories", st, reply);
		rpc_reply_free(reply);
		return -1;
	}
	for (size_t i = 0; i < resp->n_categories; i++)
		printf("category %s %s\n", resp->categories[i]->id, resp->categories[i]->name);
	rpc_reply_free(reply); /* frees resp too */
	return 0;
}

/*
 * Walk the product list page by page. `first_id` (OUT, `cap` bytes) receives
 * the id of the first product listed, "" when the catalog is empty.
 */
static int browse_products(rpc_channel *ch, int page_size, int max_pages, char *first_id,
                           size_t cap)
{
	first_id[0] = '\0';
	for (int page = 1; page <= max_pages; page++) {
		Panthera__Catalog__V1__ListProductsRequest req =
		    PANTHERA__CATALOG__V1__LIST_PRODUCTS_REQUEST__INIT;
		req.page = page;
		req.page_size = page_size;
		req.sort_by = "name";
		const Panthera__Catalog__V1__ListProductsResponse *resp;
		rpc_reply *reply = NULL;
		rpc_status st = panthera_catalog_v1_catalog_service_list_products(
		    ch, &req, &read_opts, &resp, &reply);
		if (st != RPC_STATUS_OK) {
			browse_report("ListProducts", st, reply);
			rpc_reply_free(reply);
			return -1;
		}
		int pages = resp->total > 0 ? (resp->total + page_size - 1) / page_size : 0;
		printf("page %d of %d (%d products)\n", page, pages, (int)resp->total);
		for (size_t i = 0; i < resp->n_products; i++) {
			const Panthera__Catalog__V1__Product *p = resp->products[i];
			printf("product %s %s %s %s stock=%d %s\n", p->id, p->sku, p->price,
			       p->currency, (int)p->stock, p->name);
		}
		/* Copy what outlives the reply before freeing it. */
		if (first_id[0] == '\0' && resp->n_products > 0)
			snprintf(first_id, cap, "%s", resp->products[0]->id);
		int last = page >= pages;
		rpc_reply_free(reply);
		if (last)
			break;
	}
	return 0;
}

static int browse_one(rpc_channel *ch, const char *id)
{
	Panthera__Catalog__V1__GetProductRequest req =
	    PANTHERA__CATALOG__V1__GET_PRODUCT_REQUEST__INIT;
	req.product_id = (char *)id; /* the stub only reads the request */
	const Panthera__Catalog__V1__Product *p;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_catalog_v1_catalog_service_get_product(ch, &req, &read_opts, &p, &reply);
	if (st != RPC_STATUS_OK) {
		browse_report("GetProduct", st, reply);
		rpc_reply_free(reply);
		return -1;
	}
	printf("get %s %s: %s %s, %d in stock\n", p->id, p->name, p->price, p->currency,
	       (int)p->stock);
	rpc_reply_free(reply);
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7070";
	int page_size = argc > 2 ? browse_parse_count(argv[2], 100) : 10;
	int max_pages = argc > 3 ? browse_parse_count(argv[3], 1000) : 3;
	if (argc > 4 || page_size == 0 || max_pages == 0) {
		fprintf(stderr, "usage: browse [URL [PAGE_SIZE 1..100 [MAX_PAGES 1..1000]]]\n");
		return 1;
	}

	/* One channel for the whole program: thread-safe, reconnects by itself. */
	rpc_channel *ch = NULL;
	rpc_channel_opts copts = {.connect_wait_ms = 3000};
	rpc_status st = rpc_channel_open(&ch, &url, 1, &copts);
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "browse: cannot open a channel to %s: %s\n", url,
		        rpc_status_name(st));
		return 1;
	}
	char first_id[64];
	int rc = 1;
	if (browse_categories(ch) != 0)
		goto out;
	if (browse_products(ch, page_size, max_pages, first_id, sizeof(first_id)) != 0)
		goto out;
	if (first_id[0] == '\0') {
		fprintf(stderr, "browse: the catalog has no active product\n");
		goto out;
	}
	if (browse_one(ch, first_id) != 0)
		goto out;
	rc = 0;
out:
	rpc_channel_close(ch);
	return rc;
}
