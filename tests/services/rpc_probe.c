/*
 * rpc_probe.c - a small RPC client for the end-to-end tests of `make run`
 * and of the services as separate processes.
 *
 *   rpc_probe URL [CATALOG_URL]  checks the health of InventoryService at
 *       URL, sets the stock of a new product, and lists the demo catalog
 *       from CatalogService at CATALOG_URL (default URL), whose stock must
 *       come from inventory;
 *   rpc_probe URL --stock-only   only sets the stock of a new product;
 *   rpc_probe URL --order        the above, then places an order of one demo
 *       product through OrderService at URL and waits for it to be PAID;
 *   rpc_probe --split auth=URL catalog=URL inventory=URL orders=URL
 *       payments=URL cart=URL analytics=URL reviews=URL notifications=URL
 *       the commerce flow across nine processes, one service each (see
 *       split_main below).
 *
 * Exit 0 when all holds, 1 with a line on stderr naming the step that
 * failed, 2 for a bad command line.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.panthera.h"
#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/ids.h"
#include "panthera/inventory/v1/inventory.panthera.h"
#include "panthera/orders/v1/orders.panthera.h"
#include "panthera/analytics/v1/analytics.panthera.h"
#include "panthera/auth/v1/auth.panthera.h"
#include "panthera/cart/v1/cart.panthera.h"
#include "panthera/notifications/v1/notifications.panthera.h"
#include "panthera/payments/v1/payments.panthera.h"
#include "panthera/reviews/v1/reviews.panthera.h"
#include "panthera/users/v1/users.panthera.h"

/* ---- --split: the commerce flow across nine processes ----------------- */

/* The processes of the split deployment, as named on the command line. */
enum {
	SV_AUTH,
	SV_CATALOG,
	SV_INVENTORY,
	SV_ORDERS,
	SV_PAYMENTS,
	SV_CART,
	SV_ANALYTICS,
	SV_REVIEWS,
	SV_NOTIFICATIONS,
	SV_N
};

static const char *const split_keys[SV_N] = {"auth",      "catalog",  "inventory",
                                             "orders",    "payments", "cart",
                                             "analytics", "reviews",  "notifications"};

/* Every service a process may serve, and the process that must serve it:
 * the others must answer the health check NOT_FOUND. */
static const struct {
	const char *name;
	int owner;
} split_services[] = {
    {"panthera.auth.v1.AuthService", SV_AUTH},
    {"panthera.users.v1.UserService", SV_AUTH},
    {"panthera.catalog.v1.CatalogService", SV_CATALOG},
    {"panthera.inventory.v1.InventoryService", SV_INVENTORY},
    {"panthera.orders.v1.OrderService", SV_ORDERS},
    {"panthera.payments.v1.PaymentService", SV_PAYMENTS},
    {"panthera.cart.v1.CartService", SV_CART},
    {"panthera.analytics.v1.AnalyticsService", SV_ANALYTICS},
    {"panthera.reviews.v1.ReviewService", SV_REVIEWS},
    {"panthera.notifications.v1.NotificationService", SV_NOTIFICATIONS},
};

/* How long the flow waits for an asynchronous effect (the saga, a
 * consumer): generous, for a loaded machine and sanitizer builds. */
#define SPLIT_WAIT_MS 30000
#define SPLIT_POLL_MS 100
/* Stock the probe's product starts with, its price, and what is bought. */
#define SPLIT_STOCK    10
#define SPLIT_PRICE    "12.50"
#define SPLIT_QTY_ITEM 2 /* the order with items: 25.00 */
#define SPLIT_QTY_CART 1 /* the cart's checkout: 12.50 */

typedef struct split_flow {
	rpc_channel *ch[SV_N];
	char user[ID_UUID_LEN + 1];  /* the buyer, registered with auth */
	char admin[ID_UUID_LEN + 1]; /* an admin identity, for the report */
	char stranger[ID_UUID_LEN + 1];
	char email[96];
	char category[ID_UUID_LEN + 1];
	char product[ID_UUID_LEN + 1];
	char orders[2][ID_UUID_LEN + 1];
	rpc_metadata_entry user_md[2], admin_md[3], stranger_md[2];
	rpc_call_opts as_user, as_admin, as_stranger;
} split_flow;

static uint64_t split_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void split_pause(void)
{
	struct timespec pause = {0, SPLIT_POLL_MS * 1000000L};
	nanosleep(&pause, NULL);
}

/* Print why `step` failed; returns 1 (the flow's failure). */
static int split_failed(const char *step, rpc_status st, const rpc_reply *reply)
{
	fprintf(stderr, "rpc_probe: %s: %s %s\n", step, rpc_status_name(st),
	        reply != NULL ? rpc_reply_message(reply) : "");
	return 1;
}

/* Each process answers SERVING for its own services and NOT_FOUND for
 * every other one: nine processes, one service each. */
static int split_check_health(split_flow *f)
{
	for (int p = 0; p < SV_N; p++) {
		for (size_t i = 0; i < sizeof(split_services) / sizeof(split_services[0]); i++) {
			Grpc__Health__V1__HealthCheckRequest h =
			    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
			h.service = (char *)split_services[i].name;
			const Grpc__Health__V1__HealthCheckResponse *hr;
			rpc_reply *r = NULL;
			rpc_status st = grpc_health_v1_health_check(f->ch[p], &h, NULL, &hr, &r);
			int own = split_services[i].owner == p;
			int ok =
			    own ? st == RPC_STATUS_OK &&
			              hr->status ==
			                  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			        : st == RPC_STATUS_NOT_FOUND;
			if (!ok) {
				fprintf(
				    stderr,
				    "rpc_probe: health of %s at the %s process: %s %s (want %s)\n",
				    split_services[i].name, split_keys[p], rpc_status_name(st),
				    rpc_reply_message(r), own ? "SERVING" : "NOT_FOUND");
				rpc_reply_free(r);
				return 1;
			}
			rpc_reply_free(r);
		}
	}
	printf("rpc_probe: nine processes, each serving its own service only\n");
	return 0;
}

/* The buyer: an account of the auth process (reviews copy its name,
 * notifications look up its address). */
static int split_register(split_flow *f)
{
	char tag[ID_UUID_LEN + 1];
	if (id_uuid4(tag) != RPC_STATUS_OK)
		return split_failed("a random id", RPC_STATUS_INTERNAL, NULL);
	snprintf(f->email, sizeof(f->email), "split-%.8s@example.com", tag);
	Panthera__Auth__V1__RegisterUserRequest req =
	    PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	req.email = f->email;
	req.password = "split-probe-password";
	req.first_name = "Sam";
	req.last_name = "Split";
	const Panthera__Users__V1__User *u;
	rpc_reply *r = NULL;
	rpc_call_opts o = {.timeout_ms = 20000}; /* a memory-hard KDF, maybe under ASan */
	rpc_status st =
	    panthera_auth_v1_auth_service_register_user(f->ch[SV_AUTH], &req, &o, &u, &r);
	if (st != RPC_STATUS_OK || !id_is_uuid(u->id)) {
		split_failed("RegisterUser", st, r);
		rpc_reply_free(r);
		return 1;
	}
	snprintf(f->user, sizeof(f->user), "%s", u->id);
	rpc_reply_free(r);
	printf("rpc_probe: user %s registered as %s\n", f->user, f->email);
	return 0;
}

/* The stock inventory holds for the product: `available` and `reserved`. */
static int split_expect_stock(split_flow *f, const char *when, int available, int reserved)
{
	Panthera__Inventory__V1__GetStockRequest req =
	    PANTHERA__INVENTORY__V1__GET_STOCK_REQUEST__INIT;
	req.product_id = f->product;
	const Panthera__Inventory__V1__Stock *s;
	rpc_reply *r = NULL;
	rpc_status st = panthera_inventory_v1_inventory_service_get_stock(f->ch[SV_INVENTORY], &req,
	                                                                  NULL, &s, &r);
	if (st != RPC_STATUS_OK) {
		split_failed("GetStock", st, r);
		rpc_reply_free(r);
		return 1;
	}
	int ok = s->available == available && s->reserved == reserved;
	if (!ok)
		fprintf(stderr, "rpc_probe: stock %s: %d available, %d reserved (want %d, %d)\n",
		        when, s->available, s->reserved, available, reserved);
	rpc_reply_free(r);
	return !ok;
}

/* A category and a product of our own, its stock set through the catalog
 * (catalog → inventory) and read back from inventory. */
static int split_make_product(split_flow *f)
{
	char tag[ID_UUID_LEN + 1], name[64], sku[32];
	if (id_uuid4(tag) != RPC_STATUS_OK)
		return split_failed("a random id", RPC_STATUS_INTERNAL, NULL);
	snprintf(name, sizeof(name), "Split probe %.8s", tag);
	snprintf(sku, sizeof(sku), "SPLIT-%.8s", tag);
	Panthera__Catalog__V1__CreateCategoryRequest cc =
	    PANTHERA__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
	cc.name = name;
	cc.description = "made by rpc_probe --split";
	const Panthera__Catalog__V1__Category *cat;
	rpc_reply *r = NULL;
	rpc_status st = panthera_catalog_v1_catalog_service_create_category(f->ch[SV_CATALOG], &cc,
	                                                                    &f->as_admin, &cat, &r);
	if (st != RPC_STATUS_OK) {
		split_failed("CreateCategory", st, r);
		rpc_reply_free(r);
		return 1;
	}
	snprintf(f->category, sizeof(f->category), "%s", cat->id);
	rpc_reply_free(r);
	Panthera__Catalog__V1__CreateProductRequest cp =
	    PANTHERA__CATALOG__V1__CREATE_PRODUCT_REQUEST__INIT;
	cp.sku = sku;
	cp.name = name;
	cp.description = "A lamp sold across nine processes";
	cp.price = SPLIT_PRICE;
	cp.currency = "USD";
	cp.category_id = f->category;
	cp.stock = SPLIT_STOCK;
	const Panthera__Catalog__V1__Product *p;
	r = NULL;
	st = panthera_catalog_v1_catalog_service_create_product(f->ch[SV_CATALOG], &cp,
	                                                        &f->as_admin, &p, &r);
	if (st != RPC_STATUS_OK || p->stock != SPLIT_STOCK || strcmp(p->price, SPLIT_PRICE) != 0) {
		if (st == RPC_STATUS_OK)
			fprintf(stderr, "rpc_probe: CreateProduct: stock %d price %s\n", p->stock,
			        p->price);
		else
			split_failed("CreateProduct", st, r);
		rpc_reply_free(r);
		return 1;
	}
	snprintf(f->product, sizeof(f->product), "%s", p->id);
	rpc_reply_free(r);
	if (split_expect_stock(f, "after CreateProduct", SPLIT_STOCK, 0))
		return 1;
	printf("rpc_probe: product %s created with stock %d (catalog -> inventory)\n", f->product,
	       SPLIT_STOCK);
	return 0;
}

/* The proto name of value `v` of enum `d`, for messages. */
static const char *split_enum_name(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
	return e != NULL ? e->name : "(unknown)";
}

/* Wait for order `id` to be PAID, then check its payment with the
 * payments process: SUCCEEDED, for the order's total. */
static int split_expect_paid(split_flow *f, const char *id, const char *total)
{
	Panthera__Orders__V1__GetOrderRequest gr = PANTHERA__ORDERS__V1__GET_ORDER_REQUEST__INIT;
	gr.order_id = (char *)id;
	char payment[ID_UUID_LEN + 1] = "";
	Panthera__Orders__V1__OrderStatus last =
	    PANTHERA__ORDERS__V1__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED;
	int paid = 0;
	for (uint64_t until = split_now_ms() + SPLIT_WAIT_MS; !paid;) {
		const Panthera__Orders__V1__Order *o;
		rpc_reply *r = NULL;
		rpc_status st = panthera_orders_v1_order_service_get_order(f->ch[SV_ORDERS], &gr,
		                                                           &f->as_user, &o, &r);
		if (st != RPC_STATUS_OK) {
			split_failed("GetOrder", st, r);
			rpc_reply_free(r);
			return 1;
		}
		last = o->status;
		paid = o->status == PANTHERA__ORDERS__V1__ORDER_STATUS__PAID;
		if (paid)
			snprintf(payment, sizeof(payment), "%s", o->payment_id);
		rpc_reply_free(r);
		if (last != PANTHERA__ORDERS__V1__ORDER_STATUS__PAID &&
		    last != PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT) {
			fprintf(
			    stderr, "rpc_probe: order %s settled %s, not PAID\n", id,
			    split_enum_name(&panthera__orders__v1__order_status__descriptor, last));
			return 1;
		}
		if (!paid) {
			if (split_now_ms() > until) {
				fprintf(stderr, "rpc_probe: order %s still %s after %d s\n", id,
				        split_enum_name(
				            &panthera__orders__v1__order_status__descriptor, last),
				        SPLIT_WAIT_MS / 1000);
				return 1;
			}
			split_pause();
		}
	}
	if (!id_is_uuid(payment)) {
		fprintf(stderr, "rpc_probe: order %s is PAID without a payment id\n", id);
		return 1;
	}
	Panthera__Payments__V1__GetPaymentRequest pr =
	    PANTHERA__PAYMENTS__V1__GET_PAYMENT_REQUEST__INIT;
	pr.payment_id = payment;
	const Panthera__Payments__V1__Payment *pay;
	rpc_reply *r = NULL;
	rpc_status st = panthera_payments_v1_payment_service_get_payment(f->ch[SV_PAYMENTS], &pr,
	                                                                 &f->as_user, &pay, &r);
	if (st != RPC_STATUS_OK) {
		split_failed("GetPayment", st, r);
		rpc_reply_free(r);
		return 1;
	}
	int ok = pay->status == PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__SUCCEEDED &&
	         strcmp(pay->order_id, id) == 0 && strcmp(pay->amount, total) == 0;
	if (!ok)
		fprintf(stderr, "rpc_probe: payment %s: %s, order %s, amount %s\n", payment,
		        split_enum_name(&panthera__payments__v1__payment_status__descriptor,
		                        pay->status),
		        pay->order_id, pay->amount);
	rpc_reply_free(r);
	if (ok)
		printf("rpc_probe: order %s PAID through payment %s (%s)\n", id, payment, total);
	return !ok;
}

/* Place an order as the buyer: of `items` or, with none, of the cart. */
static int split_place(split_flow *f, Panthera__Orders__V1__CheckoutItem **items, size_t n_items,
                       const char *total, char *id_out)
{
	Panthera__Orders__V1__ShippingAddress addr = PANTHERA__ORDERS__V1__SHIPPING_ADDRESS__INIT;
	addr.street = "1 Split Street";
	addr.city = "Testville";
	addr.zip_code = "94000";
	addr.country = "US";
	Panthera__Orders__V1__CreateOrderRequest cr =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	cr.items = items;
	cr.n_items = n_items;
	cr.shipping_address = &addr;
	cr.payment_method_id = "pm_card_visa";
	const Panthera__Orders__V1__Order *o;
	rpc_reply *r = NULL;
	rpc_call_opts opts = f->as_user;
	opts.timeout_ms = 20000;
	rpc_status st =
	    panthera_orders_v1_order_service_create_order(f->ch[SV_ORDERS], &cr, &opts, &o, &r);
	if (st != RPC_STATUS_OK || strcmp(o->total_amount, total) != 0 || o->n_items != 1 ||
	    strcmp(o->items[0]->product_id, f->product) != 0) {
		if (st == RPC_STATUS_OK)
			fprintf(stderr, "rpc_probe: CreateOrder: total %s, %zu lines (want %s)\n",
			        o->total_amount, o->n_items, total);
		else
			split_failed(n_items ? "CreateOrder" : "CreateOrder of the cart", st, r);
		rpc_reply_free(r);
		return 1;
	}
	snprintf(id_out, ID_UUID_LEN + 1, "%s", o->id);
	rpc_reply_free(r);
	return 0;
}

/* An order of the product with its items: the saga across orders,
 * inventory and payments settles it PAID and commits its stock. */
static int split_order_items(split_flow *f)
{
	Panthera__Orders__V1__CheckoutItem item = PANTHERA__ORDERS__V1__CHECKOUT_ITEM__INIT;
	Panthera__Orders__V1__CheckoutItem *items[1] = {&item};
	item.product_id = f->product;
	item.quantity = SPLIT_QTY_ITEM;
	if (split_place(f, items, 1, "25.00", f->orders[0]) ||
	    split_expect_paid(f, f->orders[0], "25.00"))
		return 1;
	return split_expect_stock(f, "after the first order", SPLIT_STOCK - SPLIT_QTY_ITEM, 0);
}

/* The cart's lines: *n gets their count and *qty the product's units. */
static int split_cart_lines(split_flow *f, size_t *n, int *qty)
{
	Panthera__Cart__V1__GetCartRequest req = PANTHERA__CART__V1__GET_CART_REQUEST__INIT;
	const Panthera__Cart__V1__Cart *c;
	rpc_reply *r = NULL;
	rpc_status st =
	    panthera_cart_v1_cart_service_get_cart(f->ch[SV_CART], &req, &f->as_user, &c, &r);
	if (st != RPC_STATUS_OK) {
		split_failed("GetCart", st, r);
		rpc_reply_free(r);
		return 1;
	}
	*n = c->n_items;
	*qty = 0;
	for (size_t i = 0; i < c->n_items; i++)
		if (strcmp(c->items[i]->product_id, f->product) == 0)
			*qty += c->items[i]->quantity;
	rpc_reply_free(r);
	return 0;
}

/* Add to the cart (cart → catalog prices it), check the cart out through
 * orders (orders → cart), which empties it; that order is PAID too. */
static int split_order_cart(split_flow *f)
{
	Panthera__Cart__V1__AddCartItemRequest add =
	    PANTHERA__CART__V1__ADD_CART_ITEM_REQUEST__INIT;
	add.product_id = f->product;
	add.quantity = SPLIT_QTY_CART;
	const Panthera__Cart__V1__Cart *c;
	rpc_reply *r = NULL;
	rpc_status st =
	    panthera_cart_v1_cart_service_add_cart_item(f->ch[SV_CART], &add, &f->as_user, &c, &r);
	if (st != RPC_STATUS_OK || c->n_items != 1 || strcmp(c->subtotal, SPLIT_PRICE) != 0) {
		if (st == RPC_STATUS_OK)
			fprintf(stderr, "rpc_probe: AddCartItem: %zu lines, subtotal %s\n",
			        c->n_items, c->subtotal);
		else
			split_failed("AddCartItem", st, r);
		rpc_reply_free(r);
		return 1;
	}
	rpc_reply_free(r);
	if (split_place(f, NULL, 0, SPLIT_PRICE, f->orders[1]))
		return 1;
	size_t n;
	int qty;
	if (split_cart_lines(f, &n, &qty))
		return 1;
	if (n != 0) {
		fprintf(stderr, "rpc_probe: the cart holds %zu lines after its checkout\n", n);
		return 1;
	}
	printf("rpc_probe: cart checked out into order %s and emptied\n", f->orders[1]);
	if (split_expect_paid(f, f->orders[1], SPLIT_PRICE))
		return 1;
	return split_expect_stock(f, "after the cart's order",
	                          SPLIT_STOCK - SPLIT_QTY_ITEM - SPLIT_QTY_CART, 0);
}

/* A review: refused to a caller who bought nothing (reviews → orders
 * HasPurchased), written for the buyer with the name of the account
 * (reviews → auth), and the product's rating follows (the reviews
 * consumer → catalog SetProductRating). */
static int split_review(split_flow *f)
{
	Panthera__Reviews__V1__CreateReviewRequest req =
	    PANTHERA__REVIEWS__V1__CREATE_REVIEW_REQUEST__INIT;
	req.product_id = f->product;
	req.rating = 4;
	req.title = "Bright across processes";
	req.body = "Bought it through nine services.";
	const Panthera__Reviews__V1__Review *rv;
	rpc_reply *r = NULL;
	rpc_status st = panthera_reviews_v1_review_service_create_review(f->ch[SV_REVIEWS], &req,
	                                                                 &f->as_stranger, &rv, &r);
	if (st != RPC_STATUS_PERMISSION_DENIED ||
	    strcmp(rpc_reply_error_reason(r), "NOT_A_BUYER") != 0) {
		fprintf(stderr, "rpc_probe: a review by a non-buyer: %s %s reason \"%s\"\n",
		        rpc_status_name(st), rpc_reply_message(r), rpc_reply_error_reason(r));
		rpc_reply_free(r);
		return 1;
	}
	rpc_reply_free(r);
	r = NULL;
	st = panthera_reviews_v1_review_service_create_review(f->ch[SV_REVIEWS], &req, &f->as_user,
	                                                      &rv, &r);
	if (st != RPC_STATUS_OK || strcmp(rv->user_id, f->user) != 0 ||
	    strstr(rv->author_name, "Sam") == NULL) {
		if (st == RPC_STATUS_OK)
			fprintf(stderr, "rpc_probe: CreateReview: user %s, author \"%s\"\n",
			        rv->user_id, rv->author_name);
		else
			split_failed("CreateReview", st, r);
		rpc_reply_free(r);
		return 1;
	}
	printf("rpc_probe: review %s by \"%s\" written\n", rv->id, rv->author_name);
	rpc_reply_free(r);
	Panthera__Catalog__V1__GetProductRequest gp =
	    PANTHERA__CATALOG__V1__GET_PRODUCT_REQUEST__INIT;
	gp.product_id = f->product;
	char average[16] = "";
	int count = -1;
	for (uint64_t until = split_now_ms() + SPLIT_WAIT_MS;;) {
		const Panthera__Catalog__V1__Product *p;
		r = NULL;
		st = panthera_catalog_v1_catalog_service_get_product(f->ch[SV_CATALOG], &gp, NULL,
		                                                     &p, &r);
		if (st != RPC_STATUS_OK) {
			split_failed("GetProduct", st, r);
			rpc_reply_free(r);
			return 1;
		}
		count = p->rating_count;
		snprintf(average, sizeof(average), "%s",
		         p->rating_average ? p->rating_average : "");
		rpc_reply_free(r);
		if (count == 1 && strcmp(average, "4.0") == 0)
			break;
		if (split_now_ms() > until) {
			fprintf(stderr,
			        "rpc_probe: the product's rating is \"%s\" of %d reviews after %d s"
			        " (want \"4.0\" of 1)\n",
			        average, count, SPLIT_WAIT_MS / 1000);
			return 1;
		}
		split_pause();
	}
	printf("rpc_probe: the catalog rates the product %s of %d review\n", average, count);
	return 0;
}

/* The UTC day `offset` days from today, YYYY-MM-DD. */
static void split_day(char out[11], int offset)
{
	time_t t = time(NULL) + (time_t)offset * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* The sales report (analytics, folding the orders outbox) counts both
 * orders, their revenue and the product's units. */
static int split_report(split_flow *f)
{
	char from[11], to[11];
	split_day(from, -1); /* the orders' day, even across midnight */
	split_day(to, 1);
	Panthera__Analytics__V1__GetSalesReportRequest req =
	    PANTHERA__ANALYTICS__V1__GET_SALES_REPORT_REQUEST__INIT;
	req.from = from;
	req.to = to;
	int orders = -1, units = -1;
	char revenue[32] = "";
	for (uint64_t until = split_now_ms() + SPLIT_WAIT_MS;;) {
		const Panthera__Analytics__V1__SalesReport *rep;
		rpc_reply *r = NULL;
		rpc_status st = panthera_analytics_v1_analytics_service_get_sales_report(
		    f->ch[SV_ANALYTICS], &req, &f->as_admin, &rep, &r);
		if (st != RPC_STATUS_OK) {
			split_failed("GetSalesReport", st, r);
			rpc_reply_free(r);
			return 1;
		}
		orders = rep->order_count;
		snprintf(revenue, sizeof(revenue), "%s", rep->revenue ? rep->revenue : "");
		units = -1;
		for (size_t i = 0; i < rep->n_top_products; i++)
			if (strcmp(rep->top_products[i]->product_id, f->product) == 0)
				units = rep->top_products[i]->quantity;
		rpc_reply_free(r);
		if (orders == 2 && strcmp(revenue, "37.50") == 0 &&
		    units == SPLIT_QTY_ITEM + SPLIT_QTY_CART)
			break;
		if (split_now_ms() > until) {
			fprintf(
			    stderr,
			    "rpc_probe: the sales report counts %d orders, %s, %d units after %d s"
			    " (want 2, 37.50, %d)\n",
			    orders, revenue, units, SPLIT_WAIT_MS / 1000,
			    SPLIT_QTY_ITEM + SPLIT_QTY_CART);
			return 1;
		}
		split_pause();
	}
	printf("rpc_probe: the sales report counts %d orders for %s\n", orders, revenue);
	return 0;
}

/* The buyer's notifications (the notifications process, folding the
 * orders outbox): order_placed and order_paid for each order. */
static int split_notifications(split_flow *f)
{
	Panthera__Notifications__V1__ListUserNotificationsRequest req =
	    PANTHERA__NOTIFICATIONS__V1__LIST_USER_NOTIFICATIONS_REQUEST__INIT;
	req.user_id = f->user;
	req.page_size = 100;
	int placed = 0, paid = 0;
	for (uint64_t until = split_now_ms() + SPLIT_WAIT_MS;;) {
		const Panthera__Notifications__V1__ListUserNotificationsResponse *l;
		rpc_reply *r = NULL;
		rpc_status st =
		    panthera_notifications_v1_notification_service_list_user_notifications(
		        f->ch[SV_NOTIFICATIONS], &req, &f->as_user, &l, &r);
		if (st != RPC_STATUS_OK) {
			split_failed("ListUserNotifications", st, r);
			rpc_reply_free(r);
			return 1;
		}
		placed = paid = 0;
		for (size_t i = 0; i < l->n_notifications; i++) {
			const char *t = l->notifications[i]->template_;
			if (strcmp(l->notifications[i]->user_id, f->user) != 0)
				continue;
			placed += strcmp(t, "order_placed") == 0;
			paid += strcmp(t, "order_paid") == 0;
		}
		rpc_reply_free(r);
		if (placed == 2 && paid == 2)
			break;
		if (split_now_ms() > until) {
			fprintf(
			    stderr,
			    "rpc_probe: %d order_placed and %d order_paid notifications after %d s"
			    " (want 2 and 2)\n",
			    placed, paid, SPLIT_WAIT_MS / 1000);
			return 1;
		}
		split_pause();
	}
	printf("rpc_probe: notifications recorded for %s: %d placed, %d paid\n", f->user, placed,
	       paid);
	return 0;
}

/*
 * The commerce flow, each step in the process that owns it: a buyer
 * (auth), a product and its stock (catalog → inventory), an order that
 * settles PAID (orders → inventory, payments through the outboxes) with
 * its stock committed, a cart checked out (cart → catalog, orders → cart),
 * a review by the buyer (reviews → catalog, orders, auth) and the rating
 * it gives (reviews' consumer → catalog), the sales report (analytics on
 * the orders outbox) and the buyer's notifications (notifications on the
 * orders outbox). argv holds NAME=URL for each of the nine processes.
 */
static int split_main(int argc, char **argv)
{
	split_flow f;
	memset(&f, 0, sizeof(f));
	const char *urls[SV_N] = {NULL};
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		int k = 0;
		while (eq != NULL && k < SV_N &&
		       !(strlen(split_keys[k]) == (size_t)(eq - argv[i]) &&
		         strncmp(argv[i], split_keys[k], (size_t)(eq - argv[i])) == 0))
			k++;
		if (eq == NULL || k == SV_N || urls[k] != NULL) {
			fprintf(stderr,
			        "rpc_probe: --split: %s: want NAME=URL, NAME one of auth,"
			        " catalog, inventory, orders, payments, cart, analytics,"
			        " reviews, notifications, each once\n",
			        argv[i]);
			return 2;
		}
		urls[k] = eq + 1;
	}
	for (int k = 0; k < SV_N; k++) {
		if (urls[k] == NULL) {
			fprintf(stderr, "rpc_probe: --split: %s=URL is missing\n", split_keys[k]);
			return 2;
		}
	}
	int rc = 1;
	rpc_channel_opts co = {.connect_wait_ms = 5000, .default_timeout_ms = 10000};
	for (int k = 0; k < SV_N; k++) {
		rpc_status st = rpc_channel_open(&f.ch[k], &urls[k], 1, &co);
		if (st != RPC_STATUS_OK) {
			fprintf(stderr, "rpc_probe: cannot dial %s at %s: %s\n", split_keys[k],
			        urls[k], rpc_status_name(st));
			goto out;
		}
	}
	if (id_uuid4(f.admin) != RPC_STATUS_OK || id_uuid4(f.stranger) != RPC_STATUS_OK)
		goto out;
	/* the identity the gateway would send after checking a token */
	f.admin_md[0] = (rpc_metadata_entry){"x-caller-id", f.admin};
	f.admin_md[1] = (rpc_metadata_entry){"x-caller-roles", "USER,ADMIN"};
	f.admin_md[2] = (rpc_metadata_entry){"x-request-id", "rpc-probe-split-admin"};
	f.as_admin = (rpc_call_opts){.metadata = f.admin_md, .n_metadata = 3};
	f.stranger_md[0] = (rpc_metadata_entry){"x-caller-id", f.stranger};
	f.stranger_md[1] = (rpc_metadata_entry){"x-caller-roles", "USER"};
	f.as_stranger = (rpc_call_opts){.metadata = f.stranger_md, .n_metadata = 2};
	if (split_check_health(&f) || split_register(&f))
		goto out;
	f.user_md[0] = (rpc_metadata_entry){"x-caller-id", f.user};
	f.user_md[1] = (rpc_metadata_entry){"x-caller-roles", "USER"};
	f.as_user = (rpc_call_opts){.metadata = f.user_md, .n_metadata = 2};
	if (split_make_product(&f) || split_order_items(&f) || split_order_cart(&f) ||
	    split_review(&f) || split_report(&f) || split_notifications(&f))
		goto out;
	printf("rpc_probe: the commerce flow held across nine processes\n");
	rc = 0;
out:
	for (int k = 0; k < SV_N; k++)
		rpc_channel_close(f.ch[k]);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--split") == 0)
		return split_main(argc - 2, argv + 2);
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
	st = panthera_inventory_v1_inventory_service_init_stock(ch, &s, &so, &stock, &reply);
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
