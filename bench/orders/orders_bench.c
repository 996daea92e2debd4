/*
 * orders_bench.c - the RPC side of bench/orders: orders placed and settled
 * per second through the platform's RPC, the way an app's backend would
 * place them.
 *
 *   orders_bench URL stock            give every active product of the
 *                                     catalog a stock that will not run out;
 *                                     prints the number of products
 *   orders_bench URL run THREADS SECS THREADS clients place orders for SECS
 *                                     seconds (CreateOrder: one random
 *                                     product, pm_card_visa, a user of
 *                                     its own registered through
 *                                     AuthService, so that the order
 *                                     emails have someone to go to), then
 *                                     read each order back
 *                                     (GetOrder) until the saga has settled
 *                                     it. Prints one line of key=value.
 *
 * An order counts once its GetOrder says PAID; the rate is the orders
 * settled over the time from the first CreateOrder to the last settled
 * order, so a saga that lags behind the orders placed pays for it. Exit 0
 * when every order placed settled PAID, 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "panthera/auth/v1/auth.panthera.h"
#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/inventory/v1/inventory.panthera.h"
#include "panthera/orders/v1/orders.panthera.h"

#define MAX_PRODUCTS      100
#define STOCK             1000000000
#define SETTLE_TIMEOUT_MS 60000
#define ID_LEN            37

static rpc_channel *ch;
static char products[MAX_PRODUCTS][ID_LEN];
static size_t n_products;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A random (version 4) UUID, for the users the clients stand for. */
static int uuid4(char out[ID_LEN])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, ID_LEN,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
	         b[15]);
	return 0;
}

/* The active products of the catalog (one page of up to 100). */
static int load_products(void)
{
	Panthera__Catalog__V1__ListProductsRequest req =
	    PANTHERA__CATALOG__V1__LIST_PRODUCTS_REQUEST__INIT;
	req.page_size = MAX_PRODUCTS;
	const Panthera__Catalog__V1__ListProductsResponse *resp;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_catalog_v1_catalog_service_list_products(ch, &req, NULL, &resp, &reply);
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "orders_bench: ListProducts: %s %s\n", rpc_status_name(st),
		        rpc_reply_message(reply));
		rpc_reply_free(reply);
		return -1;
	}
	n_products = 0;
	for (size_t i = 0; i < resp->n_products && n_products < MAX_PRODUCTS; i++)
		snprintf(products[n_products++], ID_LEN, "%s", resp->products[i]->id);
	rpc_reply_free(reply);
	if (n_products == 0) {
		fprintf(stderr, "orders_bench: the catalog has no active product\n");
		return -1;
	}
	return 0;
}

/* A user of the platform for one client: its id into `user`. */
static int register_user(char user[ID_LEN])
{
	char tag[ID_LEN], email[80];
	if (uuid4(tag) != 0)
		return -1;
	snprintf(email, sizeof(email), "bench-%.8s@example.com", tag);
	Panthera__Auth__V1__RegisterUserRequest req =
	    PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	req.email = email;
	req.password = "bench-password-1";
	req.first_name = "Bench";
	req.last_name = "Client";
	const Panthera__Users__V1__User *u;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_auth_v1_auth_service_register_user(ch, &req, NULL, &u, &reply);
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "orders_bench: RegisterUser: %s %s\n", rpc_status_name(st),
		        rpc_reply_message(reply));
		rpc_reply_free(reply);
		return -1;
	}
	snprintf(user, ID_LEN, "%s", u->id);
	rpc_reply_free(reply);
	return 0;
}

static int set_stock(void)
{
	for (size_t i = 0; i < n_products; i++) {
		Panthera__Inventory__V1__SetStockRequest req =
		    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
		req.product_id = products[i];
		req.available = STOCK;
		const Panthera__Inventory__V1__Stock *stock;
		rpc_reply *reply = NULL;
		rpc_status st = panthera_inventory_v1_inventory_service_set_stock(ch, &req, NULL,
		                                                                  &stock, &reply);
		if (st != RPC_STATUS_OK) {
			fprintf(stderr, "orders_bench: SetStock: %s %s\n", rpc_status_name(st),
			        rpc_reply_message(reply));
			rpc_reply_free(reply);
			return -1;
		}
		rpc_reply_free(reply);
	}
	printf("%zu\n", n_products);
	return 0;
}

typedef struct client {
	pthread_t thread;
	double deadline;
	char user[ID_LEN];
	uint32_t seed;
	/* the orders placed, in order */
	char (*orders)[ID_LEN];
	size_t n_orders, cap;
	size_t paid, other, failed_calls;
	double place_s; /* time spent in CreateOrder */
	double settled_at;
	char error[160];
} client;

static int place(client *c)
{
	c->seed = c->seed * 1103515245u + 12345u;
	size_t pick = (c->seed >> 8) % n_products;
	Panthera__Orders__V1__CheckoutItem item = PANTHERA__ORDERS__V1__CHECKOUT_ITEM__INIT;
	Panthera__Orders__V1__CheckoutItem *items[1] = {&item};
	item.product_id = products[pick];
	item.quantity = 1;
	Panthera__Orders__V1__ShippingAddress addr = PANTHERA__ORDERS__V1__SHIPPING_ADDRESS__INIT;
	addr.street = "1 Bench Way";
	addr.city = "Benchville";
	addr.zip_code = "12345";
	addr.country = "US";
	Panthera__Orders__V1__CreateOrderRequest req =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	req.items = items;
	req.n_items = 1;
	req.shipping_address = &addr;
	req.payment_method_id = "pm_card_visa";
	rpc_metadata_entry md[1] = {{"x-caller-id", c->user}};
	rpc_call_opts o = {.metadata = md, .n_metadata = 1, .timeout_ms = 10000};
	const Panthera__Orders__V1__Order *order;
	rpc_reply *reply = NULL;
	double t0 = now_s();
	rpc_status st = panthera_orders_v1_order_service_create_order(ch, &req, &o, &order, &reply);
	c->place_s += now_s() - t0;
	if (st != RPC_STATUS_OK) {
		c->failed_calls++;
		snprintf(c->error, sizeof(c->error), "CreateOrder: %s %s", rpc_status_name(st),
		         rpc_reply_message(reply));
		rpc_reply_free(reply);
		return -1;
	}
	if (c->n_orders == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		void *grown = realloc(c->orders, cap * sizeof(*c->orders));
		if (grown == NULL) {
			rpc_reply_free(reply);
			snprintf(c->error, sizeof(c->error), "out of memory");
			return -1;
		}
		c->orders = grown;
		c->cap = cap;
	}
	snprintf(c->orders[c->n_orders++], ID_LEN, "%s", order->id);
	rpc_reply_free(reply);
	return 0;
}

/* Read order i back until it has left PENDING_PAYMENT. */
static int settle(client *c, size_t i, double give_up)
{
	Panthera__Orders__V1__GetOrderRequest req = PANTHERA__ORDERS__V1__GET_ORDER_REQUEST__INIT;
	req.order_id = c->orders[i];
	rpc_metadata_entry md[1] = {{"x-caller-id", c->user}};
	rpc_call_opts o = {.metadata = md, .n_metadata = 1, .timeout_ms = 10000};
	for (;;) {
		const Panthera__Orders__V1__Order *order;
		rpc_reply *reply = NULL;
		rpc_status st =
		    panthera_orders_v1_order_service_get_order(ch, &req, &o, &order, &reply);
		if (st != RPC_STATUS_OK) {
			c->failed_calls++;
			snprintf(c->error, sizeof(c->error), "GetOrder: %s %s", rpc_status_name(st),
			         rpc_reply_message(reply));
			rpc_reply_free(reply);
			return -1;
		}
		Panthera__Orders__V1__OrderStatus status = order->status;
		rpc_reply_free(reply);
		if (status == PANTHERA__ORDERS__V1__ORDER_STATUS__PAID) {
			c->paid++;
			return 0;
		}
		if (status != PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT) {
			c->other++;
			snprintf(c->error, sizeof(c->error), "order %s settled as %d, not PAID",
			         c->orders[i], (int)status);
			return 0;
		}
		if (now_s() > give_up) {
			snprintf(c->error, sizeof(c->error), "order %s still pending after %d s",
			         c->orders[i], SETTLE_TIMEOUT_MS / 1000);
			return -1;
		}
		pause_ms(5);
	}
}

static void *client_main(void *arg)
{
	client *c = arg;
	while (now_s() < c->deadline)
		if (place(c) != 0)
			break;
	double give_up = now_s() + SETTLE_TIMEOUT_MS / 1000.0;
	for (size_t i = 0; i < c->n_orders; i++)
		if (settle(c, i, give_up) != 0)
			break;
	c->settled_at = now_s();
	return NULL;
}

static int run(int threads, double seconds)
{
	client *cs = calloc((size_t)threads, sizeof(*cs));
	if (cs == NULL)
		return 1;
	for (int i = 0; i < threads; i++)
		if (register_user(cs[i].user) != 0) {
			free(cs);
			return 1;
		}
	double start = now_s();
	int started = 0, rc = 0;
	for (int i = 0; i < threads; i++) {
		cs[i].deadline = start + seconds;
		cs[i].seed = (uint32_t)(i * 2654435761u + 1u);
		if (pthread_create(&cs[i].thread, NULL, client_main, &cs[i]) != 0) {
			fprintf(stderr, "orders_bench: cannot start client %d\n", i);
			rc = 1;
			break;
		}
		started++;
	}
	size_t placed = 0, paid = 0, other = 0, failed = 0;
	double end = start, place_s = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(cs[i].thread, NULL);
		placed += cs[i].n_orders;
		paid += cs[i].paid;
		other += cs[i].other;
		failed += cs[i].failed_calls;
		place_s += cs[i].place_s;
		if (cs[i].settled_at > end)
			end = cs[i].settled_at;
		if (cs[i].error[0] != '\0') {
			fprintf(stderr, "orders_bench: client %d: %s\n", i, cs[i].error);
			rc = 1;
		}
		free(cs[i].orders);
	}
	free(cs);
	double elapsed = end - start;
	printf("placed=%zu paid=%zu not_paid=%zu failed_calls=%zu seconds=%.2f "
	       "orders_per_s=%.1f create_order_ms=%.2f\n",
	       placed, paid, other, failed, elapsed, elapsed > 0 ? (double)paid / elapsed : 0.0,
	       placed ? place_s * 1000.0 / (double)placed : 0.0);
	if (paid != placed || placed == 0)
		rc = 1;
	return rc;
}

int main(int argc, char **argv)
{
	int threads = 0;
	double seconds = 0;
	int is_run = argc == 5 && strcmp(argv[2], "run") == 0;
	if (is_run) {
		threads = atoi(argv[3]);
		seconds = atof(argv[4]);
	}
	if (!(argc == 3 && strcmp(argv[2], "stock") == 0) &&
	    !(is_run && threads > 0 && threads <= 256 && seconds > 0 && seconds <= 600)) {
		fprintf(stderr,
		        "usage: orders_bench URL stock | orders_bench URL run THREADS SECONDS\n");
		return 2;
	}
	const char *url = argv[1];
	rpc_channel_opts co = {.connect_wait_ms = 5000};
	if (rpc_channel_open(&ch, &url, 1, &co) != RPC_STATUS_OK) {
		fprintf(stderr, "orders_bench: cannot open a channel to %s\n", url);
		return 1;
	}
	int rc = load_products() != 0 ? 1 : is_run ? run(threads, seconds) : set_stock() != 0;
	rpc_channel_close(ch);
	return rc;
}
