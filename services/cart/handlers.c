/*
 * handlers.c - CartService over RPC: find whose cart (the caller's, or the
 * request's user for the internal methods), validate the request, change
 * the cart in one transaction under the user's lock, and answer the cart
 * priced from the catalog (cart_price.h).
 *
 * The public changes ask the catalog about the cart's products before
 * their transaction, so that a catalog outage fails them before anything
 * is written; the transaction asks again only for products that appeared
 * meanwhile. CompleteCheckout applies its removal first and prices after:
 * the order exists, and its cart must lose those units even while the
 * catalog is down (a repeated call, answered once the catalog is back,
 * changes nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cart.h"
#include "cart_price.h"
#include "cart_store.h"
#include "panthera/fieldcheck.h"
#include "panthera/caller.h"
#include "panthera/ids.h"
#include "panthera/log.h"

static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

/* How long a handler may wait for a database connection: what the caller
 * has left, at most 10 s. */
static uint32_t db_wait_ms(const rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	return left < 10000 ? left : 10000;
}

static rpc_status db_failed(rpc_call *call, rpc_status st)
{
	/* The database's own message went to the log; the caller gets a
	 * status and a plain sentence. */
	return rpc_call_error(call, st, "cart storage: %s", rpc_status_name(st));
}

/* A UUID (checked) in canonical lower case, as PostgreSQL writes it. */
static void lower_id(char out[ID_UUID_LEN + 1], const char *id)
{
	for (size_t i = 0; i < ID_UUID_LEN; i++) {
		char ch = id[i];
		out[i] = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
	}
	out[ID_UUID_LEN] = '\0';
}

/* The caller's user id from the gateway's metadata, lower case; 0 when
 * there is none (or it is not a UUID). */
static int caller_id(const rpc_call *call, char out[ID_UUID_LEN + 1])
{
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return 0;
	lower_id(out, who.id);
	return 1;
}

static rpc_status no_caller(rpc_call *call)
{
	return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED,
	                      "no caller identity: a cart belongs to a signed-in user");
}

/* ---- validation ---- */

/* A UUID field into out[] (lower case); a refusal otherwise. */
static void check_id(field_checker *k, const char *field, const char *s, char out[ID_UUID_LEN + 1])
{
	out[0] = '\0';
	if (!id_is_uuid(str(s)))
		field_refuse(k, field, "must be a UUID");
	else
		lower_id(out, s);
}

static void check_quantity(field_checker *k, const char *field, int q, int min)
{
	if (q < min || q > CART_MAX_QUANTITY)
		field_refuse(k, field,
		             min == 0 ? "must be between 0 and 1000"
		                      : "must be between 1 and 1000");
}

/* ---- one change of a cart ---- */

typedef enum cart_action {
	ACT_GET,      /* nothing: read the cart */
	ACT_ADD,      /* add `quantity` units of `product_id` */
	ACT_SET,      /* set the line of `product_id` to `quantity` (0 removes) */
	ACT_REMOVE,   /* remove the line of `product_id` */
	ACT_CLEAR,    /* remove every line */
	ACT_CHECKOUT, /* take `taken` off the lines, once per `order_id` */
} cart_action;

/* Why a change was refused, beyond its status. */
typedef enum cart_fault {
	FAULT_NONE,
	FAULT_NO_LINE,    /* no line for the product */
	FAULT_NOT_SOLD,   /* the catalog does not sell the product */
	FAULT_CURRENCY,   /* the product's currency is not the cart's */
	FAULT_LINE_LIMIT, /* the line would pass CART_MAX_QUANTITY */
	FAULT_CART_FULL,  /* a new line past CART_MAX_LINES */
	FAULT_OTHER_USER, /* the order was checked out of another cart */
	FAULT_CATALOG,    /* the catalog failed (the cache holds why) */
} cart_fault;

typedef struct cart_op {
	cart_action action;
	const char *user_id;    /* lower case */
	const char *product_id; /* ADD, SET, REMOVE; lower case */
	int quantity;           /* ADD, SET */
	const char *order_id;   /* CHECKOUT; lower case */
	const cart_line *taken; /* CHECKOUT */
	size_t n_taken;
	cart_catalog *catalog;
	/* results, reset by every run of the transaction */
	cart_fault fault;
	rpc_status catalog_status; /* FAULT_CATALOG */
	int held;                  /* FAULT_LINE_LIMIT: units the line holds */
	char product_currency[4], cart_currency[4];
	cart_view view; /* the cart after the change */
} cart_op;

static const cart_line *find_line(const cart_view *v, const char *product_id)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->lines[i].product_id, product_id) == 0)
			return &v->lines[i];
	}
	return NULL;
}

/* May `op->product_id` be sold into the cart `op->view` (ADD, SET above 0)? */
static rpc_status check_product(cart_op *op)
{
	rpc_status st = cart_catalog_fetch_view(op->catalog, &op->view, op->product_id);
	if (st != RPC_STATUS_OK) {
		op->fault = FAULT_CATALOG;
		op->catalog_status = st;
		return RPC_STATUS_UNAVAILABLE;
	}
	const cart_product *p = cart_catalog_find(op->catalog, op->product_id);
	if (p == NULL || !p->sellable) {
		op->fault = FAULT_NOT_SOLD;
		return RPC_STATUS_NOT_FOUND;
	}
	const char *currency = cart_view_currency(op->catalog, &op->view);
	if (currency[0] != '\0' && strcmp(currency, p->currency) != 0) {
		op->fault = FAULT_CURRENCY;
		snprintf(op->product_currency, sizeof(op->product_currency), "%s", p->currency);
		snprintf(op->cart_currency, sizeof(op->cart_currency), "%s", currency);
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	return RPC_STATUS_OK;
}

static rpc_status change_add(db_conn *c, cart_op *op, const cart_line *line)
{
	rpc_status st = check_product(op);
	if (st != RPC_STATUS_OK)
		return st;
	op->held = line != NULL ? line->quantity : 0;
	if (op->held + op->quantity > CART_MAX_QUANTITY) {
		op->fault = FAULT_LINE_LIMIT;
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (line == NULL && op->view.n >= CART_MAX_LINES) {
		op->fault = FAULT_CART_FULL;
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	if ((st = cart_store_touch(c, op->user_id)) != RPC_STATUS_OK)
		return st;
	return cart_store_add(c, op->user_id, op->product_id, op->quantity);
}

static rpc_status change_line(db_conn *c, cart_op *op, const cart_line *line)
{
	if (line == NULL) {
		op->fault = FAULT_NO_LINE;
		return RPC_STATUS_NOT_FOUND;
	}
	rpc_status st;
	if (op->action == ACT_SET && op->quantity > 0 && (st = check_product(op)) != RPC_STATUS_OK)
		return st;
	if ((st = cart_store_touch(c, op->user_id)) != RPC_STATUS_OK)
		return st;
	if (op->action == ACT_SET && op->quantity > 0)
		return cart_store_set_quantity(c, op->user_id, op->product_id, op->quantity);
	return cart_store_remove(c, op->user_id, op->product_id);
}

static rpc_status change_checkout(db_conn *c, cart_op *op)
{
	int fresh;
	char owner[ID_UUID_LEN + 1];
	rpc_status st = cart_store_record_checkout(c, op->order_id, op->user_id, &fresh, owner);
	if (st != RPC_STATUS_OK)
		return st;
	if (!fresh) {
		if (strcmp(owner, op->user_id) != 0) {
			op->fault = FAULT_OTHER_USER;
			return RPC_STATUS_FAILED_PRECONDITION;
		}
		return RPC_STATUS_OK; /* applied before: nothing more to take */
	}
	int changed = 0;
	for (size_t i = 0; i < op->n_taken && st == RPC_STATUS_OK; i++) {
		int one;
		st = cart_store_take(c, op->user_id, op->taken[i].product_id, op->taken[i].quantity,
		                     &one);
		changed |= one;
	}
	if (st == RPC_STATUS_OK && changed)
		st = cart_store_touch(c, op->user_id);
	return st;
}

static rpc_status tx_change(db_conn *c, void *arg)
{
	cart_op *op = arg;
	op->fault = FAULT_NONE;
	op->catalog_status = RPC_STATUS_OK;
	rpc_status st = RPC_STATUS_OK;
	if (op->action != ACT_GET)
		st = cart_store_lock_user(c, op->user_id);
	if (st == RPC_STATUS_OK)
		st = cart_store_load(c, op->user_id, &op->view);
	if (st != RPC_STATUS_OK)
		return st;
	const cart_line *line =
	    op->product_id != NULL ? find_line(&op->view, op->product_id) : NULL;
	switch (op->action) {
	case ACT_GET:
		return RPC_STATUS_OK;
	case ACT_ADD:
		st = change_add(c, op, line);
		break;
	case ACT_SET:
	case ACT_REMOVE:
		st = change_line(c, op, line);
		break;
	case ACT_CLEAR: {
		int removed = 0;
		st = cart_store_clear(c, op->user_id, &removed);
		if (st == RPC_STATUS_OK && removed > 0)
			st = cart_store_touch(c, op->user_id);
		break;
	}
	case ACT_CHECKOUT:
		st = change_checkout(c, op);
		break;
	}
	if (st != RPC_STATUS_OK)
		return st;
	return cart_store_load(c, op->user_id, &op->view);
}

static rpc_status tx_load(db_conn *c, void *arg)
{
	cart_op *op = arg;
	return cart_store_load(c, op->user_id, &op->view);
}

/* A failure to price the cart, as the caller should see it. */
static rpc_status price_failed(rpc_call *call, const cart_catalog *cat, rpc_status st)
{
	if (cat->failure == RPC_STATUS_OK) {
		/* not the catalog's answer: ours */
		switch (st) {
		case RPC_STATUS_RESOURCE_EXHAUSTED:
			return rpc_call_error(call, st, "out of memory for the cart's reply");
		case RPC_STATUS_OUT_OF_RANGE:
			return rpc_call_error(call, st, "the cart's total is out of range");
		default:
			return rpc_call_error(
			    call, RPC_STATUS_INTERNAL,
			    "cannot price the cart: the catalog's answer is malformed");
		}
	}
	if (cat->failure == RPC_STATUS_DEADLINE_EXCEEDED && rpc_call_remaining_ms(call) == 0)
		return rpc_call_error(call, RPC_STATUS_DEADLINE_EXCEEDED,
		                      "the deadline passed while asking the catalog for prices");
	rpc_call_set_error_reason(call, "CATALOG_UNAVAILABLE", NULL);
	return rpc_call_error(call, RPC_STATUS_UNAVAILABLE,
	                      "the catalog is unavailable (%s): cannot price the cart",
	                      rpc_status_name(cat->failure));
}

static rpc_status change_refused(rpc_call *call, const cart_op *op, rpc_status st)
{
	switch (op->fault) {
	case FAULT_NONE:
		return db_failed(call, st);
	case FAULT_CATALOG:
		return price_failed(call, op->catalog, op->catalog_status);
	case FAULT_NO_LINE:
		rpc_call_set_error_reason(call, "CART_ITEM_NOT_FOUND", NULL);
		return rpc_call_error(call, RPC_STATUS_NOT_FOUND,
		                      "the cart has no line for product %s", op->product_id);
	case FAULT_NOT_SOLD:
		rpc_call_set_error_reason(call, "PRODUCT_NOT_FOUND", NULL);
		return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "product %s not found",
		                      op->product_id);
	case FAULT_CURRENCY:
		rpc_call_set_error_reason(call, "CURRENCY_MISMATCH", NULL);
		return rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
		                      "product %s is priced in %s but the cart is in %s",
		                      op->product_id, op->product_currency, op->cart_currency);
	case FAULT_LINE_LIMIT:
		rpc_call_add_field_violation(call, "quantity",
		                             "a line may hold at most 1000 units");
		rpc_call_set_error_reason(call, "CART_LINE_LIMIT", NULL);
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT,
		                      "the line holds %d units of product %s: adding %d would pass "
		                      "the limit of %d",
		                      op->held, op->product_id, op->quantity, CART_MAX_QUANTITY);
	case FAULT_CART_FULL:
		rpc_call_set_error_reason(call, "CART_FULL", NULL);
		return rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
		                      "the cart already holds %d lines, the most it may",
		                      CART_MAX_LINES);
	case FAULT_OTHER_USER:
		rpc_call_set_error_reason(call, "ORDER_ALREADY_CHECKED_OUT", NULL);
		return rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
		                      "order %s was checked out of another user's cart",
		                      op->order_id);
	}
	return db_failed(call, st);
}

/*
 * Run `op` on its user's cart and answer the cart after it, priced. The
 * public changes of lines ask the catalog first (see the top of the file).
 */
static rpc_status run_change(rpc_call *call, cart_service *svc, cart_op *op,
                             Panthera__Cart__V1__Cart *resp)
{
	cart_catalog catalog;
	cart_catalog_init(&catalog, call, svc);
	op->catalog = &catalog;
	rpc_status st;
	if (op->action == ACT_ADD || op->action == ACT_SET || op->action == ACT_REMOVE) {
		st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_load, op);
		if (st != RPC_STATUS_OK)
			return db_failed(call, st);
		const char *extra = op->action == ACT_ADD ? op->product_id : NULL;
		if (op->action != ACT_ADD && find_line(&op->view, op->product_id) == NULL) {
			op->fault = FAULT_NO_LINE;
			return change_refused(call, op, RPC_STATUS_NOT_FOUND);
		}
		st = cart_catalog_fetch_view(&catalog, &op->view, extra);
		if (st != RPC_STATUS_OK)
			return price_failed(call, &catalog, st);
	}
	int flags = op->action == ACT_GET ? 0 : DB_TX_RETRY;
	st = db_transaction(svc->pool, flags, db_wait_ms(call), tx_change, op);
	if (st != RPC_STATUS_OK)
		return change_refused(call, op, st);
	st = cart_price_view(&catalog, op->user_id, &op->view, resp);
	return st == RPC_STATUS_OK ? RPC_STATUS_OK : price_failed(call, &catalog, st);
}

/* ---- the methods ---- */

static rpc_status get_cart(rpc_call *call, const Panthera__Cart__V1__GetCartRequest *req,
                           Panthera__Cart__V1__Cart *resp, void *user)
{
	(void)req;
	char caller[ID_UUID_LEN + 1];
	if (!caller_id(call, caller))
		return no_caller(call);
	cart_op op = {.action = ACT_GET, .user_id = caller};
	return run_change(call, user, &op, resp);
}

static rpc_status add_cart_item(rpc_call *call, const Panthera__Cart__V1__AddCartItemRequest *req,
                                Panthera__Cart__V1__Cart *resp, void *user)
{
	char caller[ID_UUID_LEN + 1], product[ID_UUID_LEN + 1];
	if (!caller_id(call, caller))
		return no_caller(call);
	field_checker k = {.call = call};
	check_id(&k, "product_id", req->product_id, product);
	check_quantity(&k, "quantity", req->quantity, 1);
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	cart_op op = {
	    .action = ACT_ADD, .user_id = caller, .product_id = product, .quantity = req->quantity};
	return run_change(call, user, &op, resp);
}

static rpc_status update_cart_item(rpc_call *call,
                                   const Panthera__Cart__V1__UpdateCartItemRequest *req,
                                   Panthera__Cart__V1__Cart *resp, void *user)
{
	char caller[ID_UUID_LEN + 1], product[ID_UUID_LEN + 1];
	if (!caller_id(call, caller))
		return no_caller(call);
	field_checker k = {.call = call};
	check_id(&k, "product_id", req->product_id, product);
	check_quantity(&k, "quantity", req->quantity, 0);
	const Google__Protobuf__FieldMask *mask = req->update_mask;
	int names_quantity = 0;
	for (size_t i = 0; mask != NULL && i < mask->n_paths; i++) {
		if (strcmp(str(mask->paths[i]), "quantity") == 0) {
			names_quantity = 1;
		} else {
			field_refuse(&k, "update_mask", "may only name quantity");
			break;
		}
	}
	if (!names_quantity && k.refused == 0)
		field_refuse(&k, "update_mask", "must name quantity");
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	cart_op op = {
	    .action = ACT_SET, .user_id = caller, .product_id = product, .quantity = req->quantity};
	return run_change(call, user, &op, resp);
}

static rpc_status remove_cart_item(rpc_call *call,
                                   const Panthera__Cart__V1__RemoveCartItemRequest *req,
                                   Panthera__Cart__V1__Cart *resp, void *user)
{
	char caller[ID_UUID_LEN + 1], product[ID_UUID_LEN + 1];
	if (!caller_id(call, caller))
		return no_caller(call);
	field_checker k = {.call = call};
	check_id(&k, "product_id", req->product_id, product);
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	cart_op op = {.action = ACT_REMOVE, .user_id = caller, .product_id = product};
	return run_change(call, user, &op, resp);
}

static rpc_status clear_cart(rpc_call *call, const Panthera__Cart__V1__ClearCartRequest *req,
                             Panthera__Cart__V1__Cart *resp, void *user)
{
	(void)req;
	char caller[ID_UUID_LEN + 1];
	if (!caller_id(call, caller))
		return no_caller(call);
	cart_op op = {.action = ACT_CLEAR, .user_id = caller};
	return run_change(call, user, &op, resp);
}

static rpc_status get_user_cart(rpc_call *call, const Panthera__Cart__V1__GetUserCartRequest *req,
                                Panthera__Cart__V1__Cart *resp, void *user)
{
	char user_id[ID_UUID_LEN + 1];
	field_checker k = {.call = call};
	check_id(&k, "user_id", req->user_id, user_id);
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	cart_op op = {.action = ACT_GET, .user_id = user_id};
	return run_change(call, user, &op, resp);
}

static rpc_status complete_checkout(rpc_call *call,
                                    const Panthera__Cart__V1__CompleteCheckoutRequest *req,
                                    Panthera__Cart__V1__Cart *resp, void *user)
{
	char user_id[ID_UUID_LEN + 1], order_id[ID_UUID_LEN + 1];
	field_checker k = {.call = call};
	check_id(&k, "user_id", req->user_id, user_id);
	check_id(&k, "order_id", req->order_id, order_id);
	cart_line *taken = NULL;
	if (req->n_items < 1 || req->n_items > CART_MAX_LINES) {
		field_refuse(&k, "items", "must hold 1 to 100 items");
	} else {
		taken = rpc_call_alloc(call, req->n_items * sizeof(*taken));
		if (taken == NULL)
			return rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED,
			                      "out of memory for the request");
		for (size_t i = 0; i < req->n_items; i++) {
			const Panthera__Cart__V1__CheckedOutItem *it = req->items[i];
			char id[ID_UUID_LEN + 1];
			if (it == NULL || !id_is_uuid(str(it->product_id))) {
				field_refuse(&k, "items.product_id", "must be a UUID");
				break;
			}
			if (it->quantity < 1 || it->quantity > CART_MAX_QUANTITY) {
				field_refuse(&k, "items.quantity", "must be between 1 and 1000");
				break;
			}
			lower_id(id, it->product_id);
			int twice = 0;
			for (size_t j = 0; j < i && !twice; j++)
				twice = strcmp(taken[j].product_id, id) == 0;
			if (twice) {
				field_refuse(&k, "items", "must not name a product twice");
				break;
			}
			memcpy(taken[i].product_id, id, sizeof(id));
			taken[i].quantity = it->quantity;
		}
	}
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	cart_op op = {.action = ACT_CHECKOUT,
	              .user_id = user_id,
	              .order_id = order_id,
	              .taken = taken,
	              .n_taken = req->n_items};
	return run_change(call, user, &op, resp);
}

static const panthera_cart_v1_cart_service_handlers handlers = {
    .get_cart = get_cart,
    .add_cart_item = add_cart_item,
    .update_cart_item = update_cart_item,
    .remove_cart_item = remove_cart_item,
    .clear_cart = clear_cart,
    .get_user_cart = get_user_cart,
    .complete_checkout = complete_checkout,
};

rpc_status cart_service_register(rpc_server *srv, cart_service *svc)
{
	if (svc == NULL || svc->pool == NULL || svc->catalog == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	return panthera_cart_v1_cart_service_register(srv, &handlers, svc);
}
