/*
 * handlers.c - OrderService's RPCs: validation, ownership, and the order's
 * answer in proto form. The SQL is in store.c, the calls to inventory and
 * payments in remote.c, the consumer of payment events in saga.c.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "orders_internal.h"
#include "panthera/caller.h"
#include "panthera/cart/v1/cart.panthera.h"
#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/inventory/v1/inventory.panthera.h"
#include "panthera/log.h"
#include "panthera/money.h"
#include "panthera/text.h"

#define ORD_KEY_MAX 255

static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

static const char *request_id(const rpc_call *call)
{
	return rpc_call_metadata(call, "x-request-id");
}

static rpc_status bad_field(rpc_call *call, const char *field, const char *why)
{
	rpc_call_add_field_violation(call, field, why);
	return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "%s %s", field, why);
}

static rpc_status db_failed(rpc_call *call, rpc_status st)
{
	log_write(LOG_WARN, request_id(call), "orders.db", "database call failed: %s",
	          rpc_status_name(st));
	return rpc_call_error(call, st, "the orders database failed (%s)", rpc_status_name(st));
}

/* Time left for database work: the call's, at most 10 s. */
static uint32_t db_wait_ms(rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	return left == 0 ? 1 : left < 10000 ? left : 10000;
}

/* Pass a downstream failure on with its status, message and reason. */
static rpc_status pass_error(rpc_call *call, rpc_status st, rpc_reply *reply, const char *what)
{
	const char *reason = reply != NULL ? rpc_reply_error_reason(reply) : NULL;
	const char *m = reply != NULL ? rpc_reply_message(reply) : NULL;
	if (reason != NULL)
		rpc_call_set_error_reason(call, reason, NULL);
	if (st == RPC_STATUS_UNAVAILABLE || st == RPC_STATUS_DEADLINE_EXCEEDED || m == NULL)
		return rpc_call_error(call, st, "%s failed: %s", what, rpc_status_name(st));
	return rpc_call_error(call, st, "%s", m);
}

static char *arena_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

static Google__Protobuf__Timestamp *stamp(rpc_call *call, const char *us)
{
	if (us == NULL || us[0] == '\0')
		return NULL;
	long long v = atoll(us);
	Google__Protobuf__Timestamp *t = rpc_call_alloc(call, sizeof(*t));
	if (t == NULL)
		return NULL;
	google__protobuf__timestamp__init(t);
	long long s = v / 1000000, r = v % 1000000;
	if (r < 0) {
		r += 1000000;
		s--;
	}
	t->seconds = s;
	t->nanos = (int32_t)(r * 1000);
	return t;
}

static const char *const status_names[] = {
    [PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT] = "PENDING_PAYMENT",
    [PANTHERA__ORDERS__V1__ORDER_STATUS__PAID] = "PAID",
    [PANTHERA__ORDERS__V1__ORDER_STATUS__PAYMENT_FAILED] = "PAYMENT_FAILED",
    [PANTHERA__ORDERS__V1__ORDER_STATUS__CANCELLED] = "CANCELLED",
    [PANTHERA__ORDERS__V1__ORDER_STATUS__SHIPPED] = "SHIPPED",
    [PANTHERA__ORDERS__V1__ORDER_STATUS__DELIVERED] = "DELIVERED",
    [PANTHERA__ORDERS__V1__ORDER_STATUS__REFUNDED] = "REFUNDED",
};

static Panthera__Orders__V1__OrderStatus status_of(const char *s)
{
	for (size_t i = 1; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (status_names[i] != NULL && strcmp(status_names[i], s) == 0)
			return (Panthera__Orders__V1__OrderStatus)i;
	return PANTHERA__ORDERS__V1__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED;
}

/* field = a copy of row i, column col of result r, in the call's arena */
#define DUP(field, r, i, col)                                                    \
	do {                                                                     \
		if ((field = arena_strdup(call, PQgetvalue(r, i, col))) == NULL) \
			return RPC_STATUS_RESOURCE_EXHAUSTED;                    \
	} while (0)

/* Row i of r (ORD_C_*) and its lines from `items` into *out. */
static rpc_status fill_order(rpc_call *call, PGresult *r, int i, PGresult *items,
                             Panthera__Orders__V1__Order *out)
{
	DUP(out->id, r, i, ORD_C_ID);
	DUP(out->user_id, r, i, ORD_C_USER_ID);
	out->status = status_of(PQgetvalue(r, i, ORD_C_STATUS));
	DUP(out->subtotal, r, i, ORD_C_SUBTOTAL);
	DUP(out->total_amount, r, i, ORD_C_TOTAL);
	DUP(out->currency, r, i, ORD_C_CURRENCY);
	DUP(out->payment_id, r, i, ORD_C_PAYMENT_ID);
	Panthera__Orders__V1__ShippingAddress *a = rpc_call_alloc(call, sizeof(*a));
	if (a == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	panthera__orders__v1__shipping_address__init(a);
	DUP(a->street, r, i, ORD_C_STREET);
	DUP(a->city, r, i, ORD_C_CITY);
	DUP(a->state, r, i, ORD_C_STATE);
	DUP(a->zip_code, r, i, ORD_C_ZIP);
	DUP(a->country, r, i, ORD_C_COUNTRY);
	out->shipping_address = a;
	if (PQgetvalue(r, i, ORD_C_SHIPPED_US)[0] != '\0') {
		Panthera__Orders__V1__Shipment *s = rpc_call_alloc(call, sizeof(*s));
		if (s == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__orders__v1__shipment__init(s);
		DUP(s->carrier, r, i, ORD_C_CARRIER);
		DUP(s->tracking_number, r, i, ORD_C_TRACKING);
		s->shipped_at = stamp(call, PQgetvalue(r, i, ORD_C_SHIPPED_US));
		s->delivered_at = stamp(call, PQgetvalue(r, i, ORD_C_DELIVERED_US));
		out->shipment = s;
	}
	out->created_at = stamp(call, PQgetvalue(r, i, ORD_C_CREATED_US));
	out->updated_at = stamp(call, PQgetvalue(r, i, ORD_C_UPDATED_US));
	if (out->created_at == NULL || out->updated_at == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;

	const char *id = PQgetvalue(r, i, ORD_C_ID);
	size_t n = 0;
	for (int k = 0; k < PQntuples(items); k++)
		n += strcmp(PQgetvalue(items, k, ORD_I_ORDER_ID), id) == 0;
	out->items = n ? rpc_call_alloc(call, n * sizeof(*out->items)) : NULL;
	if (n && out->items == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	out->n_items = 0;
	for (int k = 0; k < PQntuples(items); k++) {
		if (strcmp(PQgetvalue(items, k, ORD_I_ORDER_ID), id) != 0)
			continue;
		Panthera__Orders__V1__OrderItem *it = rpc_call_alloc(call, sizeof(*it));
		if (it == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__orders__v1__order_item__init(it);
		DUP(it->product_id, items, k, ORD_I_PRODUCT_ID);
		DUP(it->sku, items, k, ORD_I_SKU);
		DUP(it->name, items, k, ORD_I_NAME);
		it->quantity = atoi(PQgetvalue(items, k, ORD_I_QUANTITY));
		DUP(it->unit_price, items, k, ORD_I_UNIT_PRICE);
		DUP(it->line_total, items, k, ORD_I_LINE_TOTAL);
		out->items[out->n_items++] = it;
	}
	return RPC_STATUS_OK;
}

/* Read order `id` into *out, when the caller may see it (else NOT_FOUND,
 * which also answers an order that does not exist). */
static rpc_status answer_order(rpc_call *call, orders_service *svc, const caller *who,
                               const char *id, Panthera__Orders__V1__Order *out)
{
	db_conn *c;
	rpc_status st = db_acquire(svc->pool, db_wait_ms(call), &c);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	PGresult *row = NULL, *items = NULL;
	st = ord_store_get(c, id, 0, &row);
	if (st == RPC_STATUS_OK && who != NULL &&
	    !caller_may_see(who, PQgetvalue(row, 0, ORD_C_USER_ID)))
		st = RPC_STATUS_NOT_FOUND;
	if (st == RPC_STATUS_OK) {
		char arr[48];
		snprintf(arr, sizeof(arr), "{%s}", id);
		st = ord_store_items(c, arr, &items);
	}
	db_release(svc->pool, c);
	if (st == RPC_STATUS_OK)
		st = fill_order(call, row, 0, items, out);
	PQclear(row);
	PQclear(items);
	if (st == RPC_STATUS_NOT_FOUND) {
		rpc_call_set_error_reason(call, "ORDER_NOT_FOUND", NULL);
		return rpc_call_error(call, st, "order %s not found", id);
	}
	if (st == RPC_STATUS_RESOURCE_EXHAUSTED)
		return st;
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

/* ---- CreateOrder ---- */

/* Every text field below is counted in characters (code points), as the
 * columns and API.md count them; panthera/text.h refuses what is not
 * UTF-8 before PostgreSQL would. */
static rpc_status check_address(rpc_call *call, const Panthera__Orders__V1__ShippingAddress *a)
{
	if (a == NULL)
		return bad_field(call, "shipping_address", "is required");
	if (!text_valid(a->street, 1, 200, 0))
		return bad_field(call, "shipping_address.street",
		                 "must be 1 to 200 characters of UTF-8 without control characters");
	if (!text_valid(a->city, 1, 100, 0))
		return bad_field(call, "shipping_address.city",
		                 "must be 1 to 100 characters of UTF-8 without control characters");
	if (!text_valid(a->state, 0, 100, 0))
		return bad_field(
		    call, "shipping_address.state",
		    "must be at most 100 characters of UTF-8 without control characters");
	if (!text_valid(a->zip_code, 1, 20, 0))
		return bad_field(call, "shipping_address.zip_code",
		                 "must be 1 to 20 characters of UTF-8 without control characters");
	const char *k = str(a->country);
	if (strlen(k) != 2 || !isupper((unsigned char)k[0]) || !isupper((unsigned char)k[1]))
		return bad_field(call, "shipping_address.country",
		                 "must be an ISO 3166-1 alpha-2 code, e.g. \"US\"");
	return RPC_STATUS_OK;
}

typedef struct want {
	char product_id[ID_UUID_LEN + 1]; /* lower case */
	int32_t quantity;
} want;

/* Add a product's units to the list, merging entries of one product. */
static rpc_status want_add(rpc_call *call, want *w, size_t *n, const char *product_id,
                           int32_t quantity, const char *field)
{
	if (!id_is_uuid(product_id)) {
		char f[64];
		snprintf(f, sizeof(f), "%s.product_id", field);
		return bad_field(call, f, "must be a UUID");
	}
	if (quantity < 1 || quantity > ORD_MAX_QUANTITY) {
		char f[64];
		snprintf(f, sizeof(f), "%s.quantity", field);
		return bad_field(call, f, "must be between 1 and 1000");
	}
	char id[ID_UUID_LEN + 1];
	for (int i = 0; i < ID_UUID_LEN; i++)
		id[i] = (char)tolower((unsigned char)product_id[i]);
	id[ID_UUID_LEN] = '\0';
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(w[i].product_id, id) == 0) {
			if (w[i].quantity + quantity > ORD_MAX_QUANTITY)
				return bad_field(call, field,
				                 "must order at most 1000 units of a product");
			w[i].quantity += quantity;
			return RPC_STATUS_OK;
		}
	}
	memcpy(w[*n].product_id, id, sizeof(id));
	w[*n].quantity = quantity;
	(*n)++;
	return RPC_STATUS_OK;
}

/* The caller's cart into w[]; FAILED_PRECONDITION when empty. */
static rpc_status cart_items(rpc_call *call, orders_service *svc, const char *user_id, want *w,
                             size_t *n)
{
	if (svc->cart == NULL)
		return bad_field(call, "items", "must hold 1 to 100 items (no cart service here)");
	ord_opts o;
	if (!ord_opts_init(&o, call, 0))
		return rpc_call_error(call, RPC_STATUS_DEADLINE_EXCEEDED, "no time left");
	Panthera__Cart__V1__GetUserCartRequest r = PANTHERA__CART__V1__GET_USER_CART_REQUEST__INIT;
	r.user_id = (char *)user_id;
	const Panthera__Cart__V1__Cart *cart = NULL;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_cart_v1_cart_service_get_user_cart(svc->cart, &r, &o.o, &cart, &reply);
	if (st != RPC_STATUS_OK) {
		st = pass_error(call, st, reply, "CartService.GetUserCart");
		rpc_reply_free(reply);
		return st;
	}
	if (cart->n_items == 0) {
		rpc_reply_free(reply);
		rpc_call_set_error_reason(call, "CART_EMPTY", NULL);
		return rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
		                      "the cart is empty: nothing to order");
	}
	if (cart->n_items > ORD_MAX_ITEMS) {
		rpc_reply_free(reply);
		return bad_field(call, "items", "a cart of more than 100 lines cannot be ordered");
	}
	for (size_t i = 0; i < cart->n_items && st == RPC_STATUS_OK; i++)
		st = want_add(call, w, n, cart->items[i]->product_id, cart->items[i]->quantity,
		              "cart.items");
	rpc_reply_free(reply);
	return st;
}

/* Price w[] from the catalog into lines[] (same order) and *total. */
static rpc_status price(rpc_call *call, orders_service *svc, const want *w, size_t n,
                        ord_line *lines, int64_t *total, const char **currency)
{
	ord_opts o;
	if (!ord_opts_init(&o, call, 0))
		return rpc_call_error(call, RPC_STATUS_DEADLINE_EXCEEDED, "no time left");
	Panthera__Catalog__V1__BatchGetProductsRequest r =
	    PANTHERA__CATALOG__V1__BATCH_GET_PRODUCTS_REQUEST__INIT;
	char **ids = rpc_call_alloc(call, n * sizeof(*ids));
	if (ids == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n; i++)
		ids[i] = (char *)w[i].product_id;
	r.product_ids = ids;
	r.n_product_ids = n;
	const Panthera__Catalog__V1__BatchGetProductsResponse *got = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_catalog_v1_catalog_service_batch_get_products(svc->catalog, &r,
	                                                                       &o.o, &got, &reply);
	if (st != RPC_STATUS_OK) {
		st = pass_error(call, st, reply, "CatalogService.BatchGetProducts");
		rpc_reply_free(reply);
		return st;
	}
	*total = 0;
	*currency = NULL;
	for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++) {
		const Panthera__Catalog__V1__Product *p = NULL;
		for (size_t k = 0; k < got->n_products; k++)
			if (strcasecmp(str(got->products[k]->id), w[i].product_id) == 0)
				p = got->products[k];
		int64_t unit;
		if (p == NULL || !p->is_active) {
			rpc_call_set_error_reason(call, "PRODUCT_NOT_FOUND", NULL);
			st = rpc_call_error(call, RPC_STATUS_NOT_FOUND, "product %s not found",
			                    w[i].product_id);
		} else if (money_parse(p->price, &unit) != 0) {
			st = rpc_call_error(call, RPC_STATUS_INTERNAL,
			                    "product %s has no valid price", w[i].product_id);
		} else if (*currency != NULL && strcmp(*currency, str(p->currency)) != 0) {
			rpc_call_set_error_reason(call, "CURRENCY_MISMATCH", NULL);
			st = rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
			                    "products priced in %s and %s cannot be in one order",
			                    *currency, str(p->currency));
		} else {
			*currency = arena_strdup(call, str(p->currency));
			lines[i].product_id = w[i].product_id;
			lines[i].sku = arena_strdup(call, str(p->sku));
			lines[i].name = arena_strdup(call, str(p->name));
			lines[i].quantity = w[i].quantity;
			lines[i].unit_cents = unit;
			lines[i].line_cents = unit * w[i].quantity;
			*total += lines[i].line_cents;
			if (*currency == NULL || lines[i].sku == NULL || lines[i].name == NULL)
				st = RPC_STATUS_RESOURCE_EXHAUSTED;
		}
	}
	rpc_reply_free(reply);
	if (st == RPC_STATUS_OK && *total > 999999999999LL) /* numeric(12,2) */
		st = bad_field(call, "items", "the order's total is too large");
	return st;
}

static rpc_status reserve(rpc_call *call, orders_service *svc, const char *order_id,
                          const ord_line *lines, size_t n)
{
	ord_opts o;
	if (!ord_opts_init(&o, call, 0))
		return rpc_call_error(call, RPC_STATUS_DEADLINE_EXCEEDED, "no time left");
	Panthera__Inventory__V1__ReserveRequest r = PANTHERA__INVENTORY__V1__RESERVE_REQUEST__INIT;
	r.order_id = (char *)order_id;
	r.ttl_seconds = (int32_t)svc->reservation_ttl_s;
	Panthera__Inventory__V1__ReservationItem *items = rpc_call_alloc(call, n * sizeof(*items));
	Panthera__Inventory__V1__ReservationItem **ptrs = rpc_call_alloc(call, n * sizeof(*ptrs));
	if (items == NULL || ptrs == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n; i++) {
		panthera__inventory__v1__reservation_item__init(&items[i]);
		items[i].product_id = (char *)lines[i].product_id;
		items[i].quantity = lines[i].quantity;
		ptrs[i] = &items[i];
	}
	r.items = ptrs;
	r.n_items = n;
	const Panthera__Inventory__V1__Reservation *res = NULL;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_inventory_v1_inventory_service_reserve(svc->inventory, &r, &o.o, &res, &reply);
	if (st != RPC_STATUS_OK)
		st = pass_error(call, st, reply, "InventoryService.Reserve");
	rpc_reply_free(reply);
	return st;
}

typedef struct create_op {
	ord_new o;
	const ord_line *lines;
} create_op;

static rpc_status tx_create(db_conn *c, void *arg)
{
	create_op *op = arg;
	rpc_status st = ord_store_insert(c, &op->o);
	if (st != RPC_STATUS_OK)
		return st;
	Panthera__Events__V1__OrderCreated ev = PANTHERA__EVENTS__V1__ORDER_CREATED__INIT;
	ev.order_id = (char *)op->o.id;
	ev.user_id = (char *)op->o.user_id;
	char total[MONEY_TEXT];
	money_format(total, op->o.total_cents);
	ev.total_amount = total;
	ev.currency = (char *)op->o.currency;
	ev.payment_method_id = (char *)op->o.payment_method_id;
	size_t n = op->o.n_lines;
	Panthera__Events__V1__OrderLine *l = calloc(n, sizeof(*l));
	Panthera__Events__V1__OrderLine **lp = calloc(n, sizeof(*lp));
	char(*money)[2][MONEY_TEXT] = calloc(n, sizeof(*money));
	if (l == NULL || lp == NULL || money == NULL) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		panthera__events__v1__order_line__init(&l[i]);
		l[i].product_id = (char *)op->lines[i].product_id;
		l[i].sku = (char *)op->lines[i].sku;
		l[i].name = (char *)op->lines[i].name;
		l[i].quantity = op->lines[i].quantity;
		money_format(money[i][0], op->lines[i].unit_cents);
		money_format(money[i][1], op->lines[i].line_cents);
		l[i].unit_price = money[i][0];
		l[i].line_total = money[i][1];
		lp[i] = &l[i];
	}
	ev.items = lp;
	ev.n_items = n;
	st = ord_publish(c, "panthera.events.v1.OrderCreated", op->o.id, &ev.base);
out:
	free(l);
	free(lp);
	free(money);
	return st;
}

/* Tell the cart which units the order took (idempotent on the order). */
static void complete_checkout(rpc_call *call, orders_service *svc, const char *user_id,
                              const char *order_id, const ord_line *lines, size_t n)
{
	ord_opts o;
	Panthera__Cart__V1__CheckedOutItem *items = rpc_call_alloc(call, n * sizeof(*items));
	Panthera__Cart__V1__CheckedOutItem **ptrs = rpc_call_alloc(call, n * sizeof(*ptrs));
	if (items == NULL || ptrs == NULL || !ord_opts_init(&o, call, 0))
		goto failed;
	for (size_t i = 0; i < n; i++) {
		panthera__cart__v1__checked_out_item__init(&items[i]);
		items[i].product_id = (char *)lines[i].product_id;
		items[i].quantity = lines[i].quantity;
		ptrs[i] = &items[i];
	}
	Panthera__Cart__V1__CompleteCheckoutRequest r =
	    PANTHERA__CART__V1__COMPLETE_CHECKOUT_REQUEST__INIT;
	r.user_id = (char *)user_id;
	r.order_id = (char *)order_id;
	r.items = ptrs;
	r.n_items = n;
	const Panthera__Cart__V1__Cart *cart = NULL;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_cart_v1_cart_service_complete_checkout(svc->cart, &r, &o.o, &cart, &reply);
	rpc_reply_free(reply);
	if (st == RPC_STATUS_OK)
		return;
failed:
	log_write(LOG_WARN, request_id(call), "orders.cart",
	          "order %s was placed but its cart could not be emptied", order_id);
}

/* CreateOrder's work on one order id: price, reserve, then insert. */
typedef struct place_op {
	rpc_call *call;
	orders_service *svc;
	const Panthera__Orders__V1__CreateOrderRequest *req;
	const char *user_id;
	const char *key; /* Idempotency-Key, NULL: none */
	want *w;
	size_t n;
	const char *order_id;
	create_op op;    /* what tx_create inserts, once priced */
	int reserved;    /* the stock is reserved for order_id */
	int step_failed; /* the error is a step's, already on the call */
	int key_busy;    /* ABORTED: another request holds the key */
	int replay;      /* the key's order exists: owner[] */
	char owner[40];
} place_op;

/* Price the lines from the catalog and reserve their stock for the order
 * id; x->op is then the order to insert. */
static rpc_status place_steps(place_op *x)
{
	ord_line *lines = rpc_call_alloc(x->call, x->n * sizeof(*lines));
	int64_t total = 0;
	const char *currency = NULL;
	rpc_status st = lines != NULL ? RPC_STATUS_OK : RPC_STATUS_RESOURCE_EXHAUSTED;
	if (st == RPC_STATUS_OK)
		st = price(x->call, x->svc, x->w, x->n, lines, &total, &currency);
	if (st == RPC_STATUS_OK)
		st = reserve(x->call, x->svc, x->order_id, lines, x->n);
	if (st != RPC_STATUS_OK) {
		x->step_failed = 1;
		return st;
	}
	x->reserved = 1;
	const Panthera__Orders__V1__ShippingAddress *a = x->req->shipping_address;
	x->op = (create_op){.o = {.id = x->order_id,
	                          .user_id = x->user_id,
	                          .currency = currency,
	                          .payment_method_id = x->req->payment_method_id,
	                          .street = a->street,
	                          .city = a->city,
	                          .state = str(a->state),
	                          .zip = a->zip_code,
	                          .country = a->country,
	                          .total_cents = total,
	                          .lines = lines,
	                          .n_lines = x->n},
	                    .lines = lines};
	return RPC_STATUS_OK;
}

/* A db_tx_fn: the Idempotency-Key taken (or its order found), then the
 * steps and the insert, all committed together. A process that dies on
 * the way ends the transaction with its connection: a retry with the key
 * goes on at once, and the stock it reserved returns with the sweeper.
 * Meanwhile a second request with the key is answered ABORTED at once. */
static rpc_status tx_place_keyed(db_conn *c, void *arg)
{
	place_op *x = arg;
	rpc_status st =
	    ord_store_take_key(c, x->user_id, x->key, x->order_id, x->owner, &x->replay);
	if (st == RPC_STATUS_ABORTED)
		x->key_busy = 1;
	if (st != RPC_STATUS_OK || x->replay)
		return st;
	if ((st = place_steps(x)) != RPC_STATUS_OK)
		return st;
	return tx_create(c, &x->op);
}

static rpc_status create_order(rpc_call *call, const Panthera__Orders__V1__CreateOrderRequest *req,
                               Panthera__Orders__V1__Order *resp, void *user)
{
	orders_service *svc = user;
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	rpc_status st = check_address(call, req->shipping_address);
	if (st != RPC_STATUS_OK)
		return st;
	if (!text_valid(req->payment_method_id, 1, 255, 0))
		return bad_field(call, "payment_method_id",
		                 "must be 1 to 255 characters of UTF-8 without control characters");
	if (req->n_items > ORD_MAX_ITEMS)
		return bad_field(call, "items", "must hold at most 100 items");
	const char *key = rpc_call_metadata(call, "idempotency-key");
	if (key != NULL && !text_valid(key, 1, ORD_KEY_MAX, 0))
		return bad_field(call, "idempotency-key",
		                 "must be 1 to 255 characters of UTF-8 without control characters");

	want *w = rpc_call_alloc(call, ORD_MAX_ITEMS * sizeof(*w));
	if (w == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	size_t n = 0;
	int from_cart = req->n_items == 0;
	for (size_t i = 0; i < req->n_items && st == RPC_STATUS_OK; i++)
		st = want_add(call, w, &n, req->items[i]->product_id, req->items[i]->quantity,
		              "items");
	if (st == RPC_STATUS_OK && from_cart)
		st = cart_items(call, svc, who.id, w, &n);
	if (st != RPC_STATUS_OK)
		return st;

	char order_id[ID_UUID_LEN + 1];
	if ((st = id_uuid4(order_id)) != RPC_STATUS_OK)
		return rpc_call_error(call, st, "cannot make an order id");
	place_op x = {.call = call,
	              .svc = svc,
	              .req = req,
	              .user_id = who.id,
	              .key = key,
	              .w = w,
	              .n = n,
	              .order_id = order_id};
	if (key != NULL) {
		/* the key, the stock and the order in one transaction */
		st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_place_keyed, &x);
	} else {
		st = place_steps(&x);
		if (st == RPC_STATUS_OK)
			st = db_transaction(svc->pool, DB_TX_RETRY, db_wait_ms(call), tx_create,
			                    &x.op);
	}
	if (st == RPC_STATUS_ABORTED && x.key_busy) {
		rpc_call_set_error_reason(call, "IDEMPOTENCY_KEY_IN_USE", NULL);
		return rpc_call_error(call, st,
		                      "a request with this Idempotency-Key is still in progress");
	}
	if (st == RPC_STATUS_OK && x.replay) /* the first request's order */
		return answer_order(call, svc, NULL, x.owner, resp);
	if (st != RPC_STATUS_OK) {
		/* nothing was created: give the stock back (the key went with
		 * the transaction) */
		if (x.reserved) {
			ord_opts o;
			char why[256];
			ord_opts_init(&o, NULL, 0);
			if (ord_inventory_step(svc, &o, ORD_INV_RELEASE, order_id, why,
			                       sizeof(why)) != RPC_STATUS_OK)
				log_write(
				    LOG_WARN, request_id(call), "orders.create",
				    "order %s failed; its reservation waits for the sweeper (%s)",
				    order_id, why);
		}
		return x.step_failed ? st : db_failed(call, st);
	}
	const ord_line *lines = x.op.lines;
	log_write(LOG_INFO, request_id(call), "orders.create", "order %s placed by %s", order_id,
	          who.id);
	if (from_cart)
		complete_checkout(call, svc, who.id, order_id, lines, n);
	return answer_order(call, svc, NULL, order_id, resp);
}

/* ---- reads ---- */

static rpc_status check_id(rpc_call *call, const char *field, const char *id)
{
	return id_is_uuid(id) && strlen(id) == ID_UUID_LEN
	           ? RPC_STATUS_OK
	           : bad_field(call, field, "must be a UUID");
}

static rpc_status get_order(rpc_call *call, const Panthera__Orders__V1__GetOrderRequest *req,
                            Panthera__Orders__V1__Order *resp, void *user)
{
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	rpc_status st = check_id(call, "order_id", req->order_id);
	return st != RPC_STATUS_OK ? st : answer_order(call, user, &who, req->order_id, resp);
}

static rpc_status list_user_orders(rpc_call *call,
                                   const Panthera__Orders__V1__ListUserOrdersRequest *req,
                                   Panthera__Orders__V1__ListUserOrdersResponse *resp, void *user)
{
	orders_service *svc = user;
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	rpc_status st = check_id(call, "user_id", req->user_id);
	if (st != RPC_STATUS_OK)
		return st;
	if (req->page < 0)
		return bad_field(call, "page", "must be 1 or more");
	if (req->page_size < 0 || req->page_size > 100)
		return bad_field(call, "page_size", "must be between 1 and 100");
	if (!caller_may_see(&who, req->user_id)) {
		rpc_call_set_error_reason(call, "USER_NOT_FOUND", NULL);
		return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "user %s not found",
		                      req->user_id);
	}
	int page = req->page ? req->page : 1, size = req->page_size ? req->page_size : 20;
	if ((long long)(page - 1) * size > 1000000)
		return bad_field(call, "page", "is too far");
	db_conn *c;
	if ((st = db_acquire(svc->pool, db_wait_ms(call), &c)) != RPC_STATUS_OK)
		return db_failed(call, st);
	PGresult *rows = NULL, *items = NULL;
	long total = 0;
	st = ord_store_list(c, req->user_id, page, size, &rows, &total);
	if (st == RPC_STATUS_OK) {
		/* the page's ids as an array literal: "{id,id,...}" */
		int n = PQntuples(rows);
		char *arr = rpc_call_alloc(call, (size_t)n * (ID_UUID_LEN + 1) + 3);
		if (arr == NULL) {
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
		} else {
			size_t at = 0;
			arr[at++] = '{';
			for (int i = 0; i < n; i++) {
				if (i > 0)
					arr[at++] = ',';
				memcpy(arr + at, PQgetvalue(rows, i, ORD_C_ID), ID_UUID_LEN);
				at += ID_UUID_LEN;
			}
			arr[at++] = '}';
			arr[at] = '\0';
			st = ord_store_items(c, arr, &items);
		}
	}
	db_release(svc->pool, c);
	if (st == RPC_STATUS_OK) {
		int n = PQntuples(rows);
		resp->orders = n ? rpc_call_alloc(call, (size_t)n * sizeof(*resp->orders)) : NULL;
		if (n && resp->orders == NULL)
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
		for (int i = 0; i < n && st == RPC_STATUS_OK; i++) {
			Panthera__Orders__V1__Order *o = rpc_call_alloc(call, sizeof(*o));
			if (o == NULL) {
				st = RPC_STATUS_RESOURCE_EXHAUSTED;
				break;
			}
			panthera__orders__v1__order__init(o);
			st = fill_order(call, rows, i, items, o);
			resp->orders[resp->n_orders++] = o;
		}
		resp->total = (int32_t)total;
		resp->page = page;
		resp->page_size = size;
	}
	PQclear(rows);
	PQclear(items);
	if (st == RPC_STATUS_RESOURCE_EXHAUSTED)
		return st;
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

static rpc_status has_purchased(rpc_call *call,
                                const Panthera__Orders__V1__HasPurchasedRequest *req,
                                Panthera__Orders__V1__HasPurchasedResponse *resp, void *user)
{
	orders_service *svc = user;
	rpc_status st = check_id(call, "user_id", req->user_id);
	if (st == RPC_STATUS_OK)
		st = check_id(call, "product_id", req->product_id);
	if (st != RPC_STATUS_OK)
		return st;
	db_conn *c;
	if ((st = db_acquire(svc->pool, db_wait_ms(call), &c)) != RPC_STATUS_OK)
		return db_failed(call, st);
	int yes = 0;
	st = ord_store_has_purchased(c, req->user_id, req->product_id, &yes);
	db_release(svc->pool, c);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	resp->purchased = yes;
	return RPC_STATUS_OK;
}

/* ---- changes of status ---- */

typedef enum { OP_CANCEL, OP_SHIP, OP_DELIVER, OP_REFUND, OP_RESUME } change_kind;

typedef struct change_op {
	orders_service *svc;
	rpc_call *call;
	change_kind kind;
	const char *id;
	const caller *who;      /* ownership checked (NULL: admin method) */
	const char *user_id;    /* OP_RESUME: must be the buyer */
	const char *resume_key; /* OP_RESUME: the attempt (metadata idempotency-key), or NULL */
	const char *carrier;    /* OP_SHIP */
	const char *tracking;
	/* out */
	rpc_status refusal; /* FAILED_PRECONDITION / NOT_FOUND, with message */
	char message[256];
	const char *reason;
	rpc_reply *downstream; /* a failed downstream call's reply, to pass on */
	const char *downstream_what;
} change_op;

static rpc_status refuse(change_op *op, rpc_status st, const char *reason, const char *fmt,
                         const char *status)
{
	op->refusal = st;
	op->reason = reason;
	snprintf(op->message, sizeof(op->message), fmt, op->id, status);
	return RPC_STATUS_OK; /* commit nothing: the transaction did nothing */
}

/* The event of a change, built from the locked row `r` and its items. */
static rpc_status publish_change(db_conn *c, change_op *op, PGresult *r, int restocked)
{
	const char *user_id = PQgetvalue(r, 0, ORD_C_USER_ID);
	switch (op->kind) {
	case OP_CANCEL: {
		Panthera__Events__V1__OrderCancelled ev =
		    PANTHERA__EVENTS__V1__ORDER_CANCELLED__INIT;
		ev.order_id = (char *)op->id;
		ev.user_id = (char *)user_id;
		return ord_publish(c, "panthera.events.v1.OrderCancelled", op->id, &ev.base);
	}
	case OP_SHIP: {
		Panthera__Events__V1__OrderShipped ev = PANTHERA__EVENTS__V1__ORDER_SHIPPED__INIT;
		Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		now.seconds = ts.tv_sec;
		ev.order_id = (char *)op->id;
		ev.user_id = (char *)user_id;
		ev.carrier = (char *)op->carrier;
		ev.tracking_number = (char *)op->tracking;
		ev.shipped_at = &now;
		return ord_publish(c, "panthera.events.v1.OrderShipped", op->id, &ev.base);
	}
	case OP_DELIVER: {
		Panthera__Events__V1__OrderDelivered ev =
		    PANTHERA__EVENTS__V1__ORDER_DELIVERED__INIT;
		Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		now.seconds = ts.tv_sec;
		ev.order_id = (char *)op->id;
		ev.user_id = (char *)user_id;
		ev.delivered_at = &now;
		return ord_publish(c, "panthera.events.v1.OrderDelivered", op->id, &ev.base);
	}
	case OP_REFUND: {
		char arr[48];
		snprintf(arr, sizeof(arr), "{%s}", op->id);
		PGresult *items;
		rpc_status st = ord_store_items(c, arr, &items);
		if (st != RPC_STATUS_OK)
			return st;
		size_t n = 0;
		Panthera__Events__V1__OrderLine **lines = ord_event_lines(items, &n);
		if (lines == NULL && PQntuples(items) > 0) {
			PQclear(items);
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		}
		Panthera__Events__V1__OrderRefunded ev = PANTHERA__EVENTS__V1__ORDER_REFUNDED__INIT;
		ev.order_id = (char *)op->id;
		ev.user_id = (char *)user_id;
		ev.payment_id = PQgetvalue(r, 0, ORD_C_PAYMENT_ID);
		ev.items = lines;
		ev.n_items = n;
		ev.amount = PQgetvalue(r, 0, ORD_C_TOTAL);
		ev.currency = PQgetvalue(r, 0, ORD_C_CURRENCY);
		ev.restocked = restocked;
		st = ord_publish(c, "panthera.events.v1.OrderRefunded", op->id, &ev.base);
		ord_lines_free(lines, n);
		PQclear(items);
		return st;
	}
	default:
		return RPC_STATUS_OK; /* resume: no event; the payment's events follow */
	}
}

static rpc_status tx_change(db_conn *c, void *arg)
{
	change_op *op = arg;
	op->refusal = RPC_STATUS_OK;
	rpc_reply_free(op->downstream);
	op->downstream = NULL;
	PGresult *r;
	rpc_status st = ord_store_get(c, op->id, 1, &r);
	if (st == RPC_STATUS_NOT_FOUND)
		return refuse(op, st, "ORDER_NOT_FOUND", "order %s not found", "");
	if (st != RPC_STATUS_OK)
		return st;
	const char *owner = PQgetvalue(r, 0, ORD_C_USER_ID);
	if ((op->who != NULL && !caller_may_see(op->who, owner)) ||
	    (op->user_id != NULL && strcasecmp(op->user_id, owner) != 0)) {
		PQclear(r);
		return refuse(op, RPC_STATUS_NOT_FOUND, "ORDER_NOT_FOUND", "order %s not found",
		              "");
	}
	char status[32];
	snprintf(status, sizeof(status), "%s", PQgetvalue(r, 0, ORD_C_STATUS));
	ord_opts o;
	ord_opts_init(&o, op->call, 0);
	char why[256] = "";
	int restocked = 0;
	const char *to = NULL;
	switch (op->kind) {
	case OP_CANCEL:
		if (strcmp(status, "PENDING_PAYMENT") != 0 && strcmp(status, "PAYMENT_FAILED") != 0)
			st = refuse(
			    op, RPC_STATUS_FAILED_PRECONDITION, "ORDER_NOT_CANCELLABLE",
			    "order %s is %s: only a PENDING_PAYMENT or PAYMENT_FAILED order can be"
			    " cancelled",
			    status);
		else if ((st = ord_inventory_step(op->svc, &o, ORD_INV_RELEASE, op->id, why,
		                                  sizeof(why))) == RPC_STATUS_OK)
			to = "CANCELLED";
		break;
	case OP_SHIP:
		if (strcmp(status, "PAID") != 0)
			st = refuse(op, RPC_STATUS_FAILED_PRECONDITION, "ORDER_NOT_SHIPPABLE",
			            "order %s is %s: only a PAID order can be shipped", status);
		else if ((st = ord_store_ship(c, op->id, op->carrier, op->tracking)) ==
		         RPC_STATUS_OK)
			to = "SHIPPED";
		break;
	case OP_DELIVER:
		if (strcmp(status, "SHIPPED") != 0)
			st =
			    refuse(op, RPC_STATUS_FAILED_PRECONDITION, "ORDER_NOT_DELIVERABLE",
			           "order %s is %s: only a SHIPPED order can be delivered", status);
		else if ((st = ord_store_deliver(c, op->id)) == RPC_STATUS_OK)
			to = "DELIVERED";
		break;
	case OP_REFUND:
		if (strcmp(status, "PAID") != 0 && strcmp(status, "SHIPPED") != 0 &&
		    strcmp(status, "DELIVERED") != 0) {
			st = refuse(op, RPC_STATUS_FAILED_PRECONDITION, "ORDER_NOT_REFUNDABLE",
			            "order %s is %s: only a PAID, SHIPPED or DELIVERED order can be"
			            " refunded",
			            status);
			break;
		}
		st = ord_refund_payment(op->svc, &o, PQgetvalue(r, 0, ORD_C_PAYMENT_ID), why,
		                        sizeof(why));
		restocked = strcmp(status, "PAID") == 0; /* not shipped: units go back */
		if (st == RPC_STATUS_OK && restocked)
			st = ord_inventory_step(op->svc, &o, ORD_INV_RESTOCK, op->id, why,
			                        sizeof(why));
		if (st == RPC_STATUS_OK)
			to = "REFUNDED";
		break;
	case OP_RESUME: {
		/* the same attempt again: it never reached a result (its payment
		 * was not recorded), so nothing will settle the order but a retry */
		int again = 0;
		if (strcmp(status, "PENDING_PAYMENT") == 0 && op->resume_key != NULL &&
		    (st = ord_store_resume_key(c, op->id, op->resume_key, &again)) != RPC_STATUS_OK)
			break;
		if (strcmp(status, "PAYMENT_FAILED") != 0 && !again) {
			st = refuse(op, RPC_STATUS_FAILED_PRECONDITION, "ORDER_NOT_PAYABLE",
			            "order %s is %s: only a PAYMENT_FAILED order can be paid again",
			            status);
			break;
		}
		/* the reservation, released by the failure, is held again (or
		 * still held: Reserve is idempotent on the order) */
		Panthera__Inventory__V1__ReserveRequest rr =
		    PANTHERA__INVENTORY__V1__RESERVE_REQUEST__INIT;
		rr.order_id = (char *)op->id;
		rr.ttl_seconds = (int32_t)op->svc->reservation_ttl_s;
		char arr[48];
		snprintf(arr, sizeof(arr), "{%s}", op->id);
		PGresult *items = NULL;
		if ((st = ord_store_items(c, arr, &items)) != RPC_STATUS_OK)
			break;
		int n = PQntuples(items);
		Panthera__Inventory__V1__ReservationItem *ri =
		    rpc_call_alloc(op->call, (size_t)n * sizeof(*ri) + 1);
		Panthera__Inventory__V1__ReservationItem **rp =
		    rpc_call_alloc(op->call, (size_t)n * sizeof(*rp) + 1);
		if (ri == NULL || rp == NULL) {
			PQclear(items);
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
			break;
		}
		for (int i = 0; i < n; i++) {
			panthera__inventory__v1__reservation_item__init(&ri[i]);
			ri[i].product_id = PQgetvalue(items, i, ORD_I_PRODUCT_ID);
			ri[i].quantity = atoi(PQgetvalue(items, i, ORD_I_QUANTITY));
			rp[i] = &ri[i];
		}
		rr.items = rp;
		rr.n_items = (size_t)n;
		const Panthera__Inventory__V1__Reservation *res = NULL;
		st = panthera_inventory_v1_inventory_service_reserve(op->svc->inventory, &rr, &o.o,
		                                                     &res, &op->downstream);
		PQclear(items);
		if (st != RPC_STATUS_OK) {
			op->downstream_what = "InventoryService.Reserve";
			op->refusal = st;
			st = RPC_STATUS_OK;
			break;
		}
		rpc_reply_free(op->downstream); /* kept only to pass a failure on */
		op->downstream = NULL;
		if (!again)
			to = "PENDING_PAYMENT";
		break;
	}
	}
	if (st == RPC_STATUS_OK && to != NULL) {
		if (op->kind != OP_SHIP && op->kind != OP_DELIVER)
			st = ord_store_set_status(c, op->id, status, to, NULL);
		if (st == RPC_STATUS_OK && op->kind == OP_RESUME)
			st = ord_store_set_resume_key(c, op->id, op->resume_key);
		if (st == RPC_STATUS_OK)
			st = publish_change(c, op, r, restocked);
	}
	if (st != RPC_STATUS_OK && why[0] != '\0') {
		/* another service failed: roll back, and answer with its status */
		log_write(LOG_WARN, op->call ? request_id(op->call) : NULL, "orders.change",
		          "order %s: %s", op->id, why);
		op->refusal = st;
		op->reason = NULL;
		snprintf(op->message, sizeof(op->message), "%s", why);
	}
	PQclear(r);
	return st;
}

static rpc_status run_change(rpc_call *call, orders_service *svc, change_op *op,
                             Panthera__Orders__V1__Order *resp)
{
	op->svc = svc;
	op->call = call;
	rpc_status st = db_transaction(svc->pool, DB_TX_RETRY, db_wait_ms(call), tx_change, op);
	if (op->downstream != NULL || op->downstream_what != NULL) {
		st = pass_error(call, op->refusal, op->downstream, op->downstream_what);
		rpc_reply_free(op->downstream);
		return st;
	}
	if (op->refusal != RPC_STATUS_OK) { /* refused, or another service failed */
		if (op->reason != NULL)
			rpc_call_set_error_reason(call, op->reason, NULL);
		return rpc_call_error(call, op->refusal, "%s", op->message);
	}
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	return answer_order(call, svc, NULL, op->id, resp);
}

static rpc_status cancel_order(rpc_call *call, const Panthera__Orders__V1__CancelOrderRequest *req,
                               Panthera__Orders__V1__Order *resp, void *user)
{
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	rpc_status st = check_id(call, "order_id", req->order_id);
	if (st != RPC_STATUS_OK)
		return st;
	change_op op = {.kind = OP_CANCEL, .id = req->order_id, .who = &who};
	return run_change(call, user, &op, resp);
}

static rpc_status need_admin(rpc_call *call)
{
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	if (!who.admin)
		return rpc_call_error(call, RPC_STATUS_PERMISSION_DENIED,
		                      "only an admin may do this");
	return RPC_STATUS_OK;
}

static rpc_status ship_order(rpc_call *call, const Panthera__Orders__V1__ShipOrderRequest *req,
                             Panthera__Orders__V1__Order *resp, void *user)
{
	rpc_status st = need_admin(call);
	if (st == RPC_STATUS_OK)
		st = check_id(call, "order_id", req->order_id);
	if (st != RPC_STATUS_OK)
		return st;
	if (!text_valid(req->carrier, 1, 100, 0))
		return bad_field(call, "carrier",
		                 "must be 1 to 100 characters of UTF-8 without control characters");
	if (!text_valid(req->tracking_number, 1, 100, 0))
		return bad_field(call, "tracking_number",
		                 "must be 1 to 100 characters of UTF-8 without control characters");
	change_op op = {.kind = OP_SHIP,
	                .id = req->order_id,
	                .carrier = req->carrier,
	                .tracking = req->tracking_number};
	return run_change(call, user, &op, resp);
}

static rpc_status deliver_order(rpc_call *call,
                                const Panthera__Orders__V1__DeliverOrderRequest *req,
                                Panthera__Orders__V1__Order *resp, void *user)
{
	rpc_status st = need_admin(call);
	if (st == RPC_STATUS_OK)
		st = check_id(call, "order_id", req->order_id);
	if (st != RPC_STATUS_OK)
		return st;
	change_op op = {.kind = OP_DELIVER, .id = req->order_id};
	return run_change(call, user, &op, resp);
}

static rpc_status refund_order(rpc_call *call, const Panthera__Orders__V1__RefundOrderRequest *req,
                               Panthera__Orders__V1__Order *resp, void *user)
{
	rpc_status st = need_admin(call);
	if (st == RPC_STATUS_OK)
		st = check_id(call, "order_id", req->order_id);
	if (st != RPC_STATUS_OK)
		return st;
	change_op op = {.kind = OP_REFUND, .id = req->order_id};
	return run_change(call, user, &op, resp);
}

static rpc_status resume_payment(rpc_call *call,
                                 const Panthera__Orders__V1__ResumePaymentRequest *req,
                                 Panthera__Orders__V1__Order *resp, void *user)
{
	rpc_status st = check_id(call, "order_id", req->order_id);
	if (st == RPC_STATUS_OK)
		st = check_id(call, "user_id", req->user_id);
	if (st != RPC_STATUS_OK)
		return st;
	const char *key = rpc_call_metadata(call, "idempotency-key");
	if (key != NULL && !text_valid(key, 1, ORD_KEY_MAX, 0))
		return bad_field(call, "idempotency-key",
		                 "must be 1 to 255 characters of UTF-8 without control characters");
	change_op op = {
	    .kind = OP_RESUME, .id = req->order_id, .user_id = req->user_id, .resume_key = key};
	return run_change(call, user, &op, resp);
}

static const panthera_orders_v1_order_service_handlers handlers = {
    .create_order = create_order,
    .get_order = get_order,
    .list_user_orders = list_user_orders,
    .cancel_order = cancel_order,
    .ship_order = ship_order,
    .deliver_order = deliver_order,
    .refund_order = refund_order,
    .has_purchased = has_purchased,
    .resume_payment = resume_payment,
};

rpc_status orders_service_register(rpc_server *srv, orders_service *svc)
{
	if (srv == NULL || svc == NULL || svc->pool == NULL || svc->catalog == NULL ||
	    svc->inventory == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	return panthera_orders_v1_order_service_register(srv, &handlers, svc);
}
