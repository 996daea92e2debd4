/*
 * handlers.c - InventoryService over RPC: validate the request, run the
 * store's SQL in one transaction, map the outcome to a reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inventory.h"
#include "panthera/events.h"
#include "panthera/ids.h"
#include "store.h"

#define INV_MAX_ITEMS     100
#define INV_MAX_QUANTITY  1000
#define INV_MAX_STOCK     1000000000
#define INV_MAX_BATCH     1000
#define INV_DEFAULT_TTL_S 900u

/* How long a handler may wait for a database connection: what the caller
 * has left, at most 10 s. */
static uint32_t db_wait_ms(const rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	return left < 10000 ? left : 10000;
}

static rpc_status bad_field(rpc_call *call, const char *field, const char *why)
{
	rpc_call_add_field_violation(call, field, why);
	return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "%s %s", field, why);
}

static rpc_status db_failed(rpc_call *call, rpc_status st)
{
	/* The database's own message went to the log; the caller gets a
	 * status and a plain sentence. */
	return rpc_call_error(call, st, "inventory storage: %s", rpc_status_name(st));
}

/* ---- stock ---- */

typedef struct stock_op {
	const char *product_id;
	int available, reserved;
	int set;    /* set available (else only read the counts) */
	int create; /* with set: make the row when there is none */
} stock_op;

static rpc_status tx_stock(db_conn *c, void *arg)
{
	stock_op *op = arg;
	rpc_status st = RPC_STATUS_OK;
	if (op->set) {
		st = inv_store_set_stock(c, op->product_id, op->available, op->create);
		if (st == RPC_STATUS_OK)
			st = inv_store_publish_stock(c, op->product_id);
	}
	if (st == RPC_STATUS_OK)
		st = inv_store_get_stock(c, op->product_id, &op->available, &op->reserved);
	return st;
}

static rpc_status fill_stock(rpc_call *call, Panthera__Inventory__V1__Stock *out,
                             const stock_op *op)
{
	size_t n = strlen(op->product_id);
	out->product_id = rpc_call_alloc(call, n + 1);
	if (out->product_id == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	memcpy(out->product_id, op->product_id, n + 1);
	out->available = op->available;
	out->reserved = op->reserved;
	return RPC_STATUS_OK;
}

/* SetStock (create 0: NOT_FOUND for a product without a stock row, which
 * the catalog makes when it creates the product) and InitStock (create 1). */
static rpc_status write_stock(rpc_call *call, const Panthera__Inventory__V1__SetStockRequest *req,
                              Panthera__Inventory__V1__Stock *resp, inventory_service *svc,
                              int create)
{
	if (!id_is_uuid(req->product_id))
		return bad_field(call, "product_id", "must be a UUID");
	if (req->available < 0 || req->available > INV_MAX_STOCK)
		return bad_field(call, "available", "must be between 0 and 1000000000");
	stock_op op = {
	    .product_id = req->product_id, .available = req->available, .set = 1, .create = create};
	rpc_status st = db_transaction(svc->pool, DB_TX_RETRY, db_wait_ms(call), tx_stock, &op);
	if (st == RPC_STATUS_NOT_FOUND) {
		rpc_call_set_error_reason(call, "PRODUCT_NOT_FOUND", NULL);
		return rpc_call_error(call, st, "product %s not found", req->product_id);
	}
	return st == RPC_STATUS_OK ? fill_stock(call, resp, &op) : db_failed(call, st);
}

static rpc_status set_stock(rpc_call *call, const Panthera__Inventory__V1__SetStockRequest *req,
                            Panthera__Inventory__V1__Stock *resp, void *user)
{
	return write_stock(call, req, resp, user, 0);
}

static rpc_status init_stock(rpc_call *call, const Panthera__Inventory__V1__SetStockRequest *req,
                             Panthera__Inventory__V1__Stock *resp, void *user)
{
	return write_stock(call, req, resp, user, 1);
}

static rpc_status get_stock(rpc_call *call, const Panthera__Inventory__V1__GetStockRequest *req,
                            Panthera__Inventory__V1__Stock *resp, void *user)
{
	inventory_service *svc = user;
	if (!id_is_uuid(req->product_id))
		return bad_field(call, "product_id", "must be a UUID");
	stock_op op = {.product_id = req->product_id};
	rpc_status st = db_transaction(svc->pool, DB_TX_READ, db_wait_ms(call), tx_stock, &op);
	if (st == RPC_STATUS_NOT_FOUND) {
		rpc_call_set_error_reason(call, "STOCK_NOT_FOUND", NULL);
		return rpc_call_error(call, st, "no stock recorded for product %s",
		                      req->product_id);
	}
	return st == RPC_STATUS_OK ? fill_stock(call, resp, &op) : db_failed(call, st);
}

typedef struct batch_op {
	const Panthera__Inventory__V1__BatchGetStockRequest *req;
	rpc_call *call;
	Panthera__Inventory__V1__BatchGetStockResponse *resp;
} batch_op;

static rpc_status tx_batch(db_conn *c, void *arg)
{
	batch_op *op = arg;
	op->resp->n_stocks = 0;
	op->resp->stocks =
	    rpc_call_alloc(op->call, (op->req->n_product_ids + 1) * sizeof(*op->resp->stocks));
	if (op->resp->stocks == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < op->req->n_product_ids; i++) {
		stock_op s = {.product_id = op->req->product_ids[i]};
		rpc_status st = inv_store_get_stock(c, s.product_id, &s.available, &s.reserved);
		if (st == RPC_STATUS_NOT_FOUND)
			continue; /* unknown products are left out */
		if (st != RPC_STATUS_OK)
			return st;
		Panthera__Inventory__V1__Stock *out = rpc_call_alloc(op->call, sizeof(*out));
		if (out == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__inventory__v1__stock__init(out);
		if ((st = fill_stock(op->call, out, &s)) != RPC_STATUS_OK)
			return st;
		op->resp->stocks[op->resp->n_stocks++] = out;
	}
	return RPC_STATUS_OK;
}

static rpc_status batch_get_stock(rpc_call *call,
                                  const Panthera__Inventory__V1__BatchGetStockRequest *req,
                                  Panthera__Inventory__V1__BatchGetStockResponse *resp, void *user)
{
	inventory_service *svc = user;
	if (req->n_product_ids > INV_MAX_BATCH)
		return bad_field(call, "product_ids", "may hold at most 1000 ids");
	for (size_t i = 0; i < req->n_product_ids; i++) {
		if (!id_is_uuid(req->product_ids[i]))
			return bad_field(call, "product_ids", "must all be UUIDs");
	}
	batch_op op = {req, call, resp};
	rpc_status st = db_transaction(svc->pool, DB_TX_READ, db_wait_ms(call), tx_batch, &op);
	return st == RPC_STATUS_OK ? RPC_STATUS_OK : db_failed(call, st);
}

/* ---- reservations ---- */

typedef enum res_action { RES_RESERVE, RES_COMMIT, RES_RELEASE, RES_RESTOCK } res_action;

typedef struct res_op {
	res_action action;
	const char *order_id;
	inv_item *items;
	size_t n_items;
	unsigned ttl_s;
	char status[16]; /* after the transaction */
	char short_product[37];
	char refused_from[16]; /* the status that refused the transition */
	rpc_call *call;
	Panthera__Inventory__V1__Reservation *resp;
} res_op;

static int cmp_item(const void *a, const void *b)
{
	return strcasecmp(((const inv_item *)a)->product_id, ((const inv_item *)b)->product_id);
}

/* Fill the reply from the stored reservation. */
static rpc_status load_reply(db_conn *c, res_op *op)
{
	PGresult *items;
	long long expires;
	rpc_status st = inv_store_load_items(c, op->order_id, &items, &expires);
	if (st != RPC_STATUS_OK)
		return st;
	Panthera__Inventory__V1__Reservation *r = op->resp;
	size_t n = (size_t)PQntuples(items);
	r->items = rpc_call_alloc(op->call, (n + 1) * sizeof(*r->items));
	r->expires_at = rpc_call_alloc(op->call, sizeof(*r->expires_at));
	r->order_id = rpc_call_alloc(op->call, ID_UUID_LEN + 1);
	if (r->items == NULL || r->expires_at == NULL || r->order_id == NULL) {
		PQclear(items);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	snprintf(r->order_id, ID_UUID_LEN + 1, "%s", op->order_id);
	google__protobuf__timestamp__init(r->expires_at);
	r->expires_at->seconds = expires;
	for (size_t i = 0; i < n; i++) {
		Panthera__Inventory__V1__ReservationItem *it =
		    rpc_call_alloc(op->call, sizeof(*it));
		char *pid = rpc_call_alloc(op->call, ID_UUID_LEN + 1);
		if (it == NULL || pid == NULL) {
			PQclear(items);
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		}
		panthera__inventory__v1__reservation_item__init(it);
		snprintf(pid, ID_UUID_LEN + 1, "%s", PQgetvalue(items, (int)i, 0));
		it->product_id = pid;
		it->quantity = atoi(PQgetvalue(items, (int)i, 1));
		r->items[i] = it;
	}
	r->n_items = n;
	PQclear(items);
	static const struct {
		const char *name;
		Panthera__Inventory__V1__ReservationStatus value;
	} names[] = {{"HELD", PANTHERA__INVENTORY__V1__RESERVATION_STATUS__HELD},
	             {"COMMITTED", PANTHERA__INVENTORY__V1__RESERVATION_STATUS__COMMITTED},
	             {"RELEASED", PANTHERA__INVENTORY__V1__RESERVATION_STATUS__RELEASED},
	             {"RESTOCKED", PANTHERA__INVENTORY__V1__RESERVATION_STATUS__RESTOCKED}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(names[i].name, op->status) == 0)
			r->status = names[i].value;
	}
	return RPC_STATUS_OK;
}

static rpc_status tx_reservation(db_conn *c, void *arg)
{
	res_op *op = arg;
	char status[16] = "";
	op->short_product[0] = op->refused_from[0] = '\0';
	/* two first Reserves of one order: the second waits, then finds it */
	rpc_status st = inv_store_lock_order(c, op->order_id);
	if (st != RPC_STATUS_OK)
		return st;
	st = inv_store_lock_reservation(c, op->order_id, status);
	if (st != RPC_STATUS_OK && st != RPC_STATUS_NOT_FOUND)
		return st;
	int exists = st == RPC_STATUS_OK;
	const char *to = NULL;
	switch (op->action) {
	case RES_RESERVE:
		if (!exists || strcmp(status, "RELEASED") == 0) {
			st = inv_store_reserve(c, op->order_id, op->items, op->n_items, op->ttl_s,
			                       exists, op->short_product);
			to = "HELD";
		} else {
			st = RPC_STATUS_OK; /* reserved before: the same answer again */
		}
		break;
	case RES_COMMIT:
		if (!exists)
			return RPC_STATUS_NOT_FOUND;
		if (strcmp(status, "HELD") == 0) {
			st = inv_store_commit(c, op->order_id);
			to = "COMMITTED";
		} else if (strcmp(status, "RELEASED") == 0) {
			snprintf(op->refused_from, sizeof(op->refused_from), "%s", status);
			return RPC_STATUS_FAILED_PRECONDITION;
		}
		break;
	case RES_RELEASE:
		if (!exists)
			return RPC_STATUS_NOT_FOUND;
		if (strcmp(status, "HELD") == 0) {
			st = inv_store_release(c, op->order_id);
			to = "RELEASED";
		} else if (strcmp(status, "RELEASED") != 0) {
			snprintf(op->refused_from, sizeof(op->refused_from), "%s", status);
			return RPC_STATUS_FAILED_PRECONDITION;
		}
		break;
	case RES_RESTOCK:
		if (!exists)
			return RPC_STATUS_NOT_FOUND;
		if (strcmp(status, "COMMITTED") == 0) {
			st = inv_store_restock(c, op->order_id);
			to = "RESTOCKED";
		} else if (strcmp(status, "RESTOCKED") != 0) {
			snprintf(op->refused_from, sizeof(op->refused_from), "%s", status);
			return RPC_STATUS_FAILED_PRECONDITION;
		}
		break;
	}
	if (st != RPC_STATUS_OK)
		return st;
	/* the stock moved: tell whoever listens (the catalog's cache, analytics) */
	if (to != NULL && (st = inv_store_publish_order_stock(c, op->order_id)) != RPC_STATUS_OK)
		return st;
	snprintf(op->status, sizeof(op->status), "%s", to ? to : status);
	return load_reply(c, op);
}

static rpc_status run_reservation(rpc_call *call, inventory_service *svc, res_op *op)
{
	if (!id_is_uuid(op->order_id))
		return bad_field(call, "order_id", "must be a UUID");
	op->call = call;
	rpc_status st =
	    db_transaction(svc->pool, DB_TX_RETRY, db_wait_ms(call), tx_reservation, op);
	switch (st) {
	case RPC_STATUS_OK:
		return st;
	case RPC_STATUS_NOT_FOUND:
		rpc_call_set_error_reason(call, "RESERVATION_NOT_FOUND", NULL);
		return rpc_call_error(call, st, "no reservation for order %s", op->order_id);
	case RPC_STATUS_FAILED_PRECONDITION:
		if (op->short_product[0] != '\0') {
			rpc_call_set_error_reason(call, "INSUFFICIENT_STOCK", NULL);
			return rpc_call_error(call, st, "not enough stock of product %s",
			                      op->short_product);
		}
		if (op->refused_from[0] != '\0') {
			rpc_call_set_error_reason(call, "RESERVATION_STATE", NULL);
			return rpc_call_error(call, st, "reservation of order %s is %s",
			                      op->order_id, op->refused_from);
		}
		return db_failed(call, st);
	default:
		return db_failed(call, st);
	}
}

static rpc_status reserve(rpc_call *call, const Panthera__Inventory__V1__ReserveRequest *req,
                          Panthera__Inventory__V1__Reservation *resp, void *user)
{
	inventory_service *svc = user;
	if (req->n_items == 0 || req->n_items > INV_MAX_ITEMS)
		return bad_field(call, "items", "must hold 1 to 100 items");
	if (req->ttl_seconds < 0 || req->ttl_seconds > 86400)
		return bad_field(call, "ttl_seconds", "must be between 0 and 86400");
	inv_item *items = rpc_call_alloc(call, req->n_items * sizeof(*items));
	if (items == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < req->n_items; i++) {
		const Panthera__Inventory__V1__ReservationItem *it = req->items[i];
		if (!id_is_uuid(it->product_id))
			return bad_field(call, "items.product_id", "must be a UUID");
		if (it->quantity < 1 || it->quantity > INV_MAX_QUANTITY)
			return bad_field(call, "items.quantity", "must be between 1 and 1000");
		items[i] = (inv_item){it->product_id, it->quantity};
	}
	qsort(items, req->n_items, sizeof(*items), cmp_item);
	for (size_t i = 1; i < req->n_items; i++) {
		if (strcasecmp(items[i - 1].product_id, items[i].product_id) == 0)
			return bad_field(call, "items", "must not name a product twice");
	}
	res_op op = {.action = RES_RESERVE,
	             .order_id = req->order_id,
	             .items = items,
	             .n_items = req->n_items,
	             .resp = resp,
	             .ttl_s = req->ttl_seconds
	                          ? (unsigned)req->ttl_seconds
	                          : (svc->default_ttl_s ? svc->default_ttl_s : INV_DEFAULT_TTL_S)};
	return run_reservation(call, svc, &op);
}

#define TRANSITION(fn, type, act)                                                     \
	static rpc_status fn(rpc_call *call, const type *req,                         \
	                     Panthera__Inventory__V1__Reservation *resp, void *user)  \
	{                                                                             \
		res_op op = {.action = act, .order_id = req->order_id, .resp = resp}; \
		return run_reservation(call, user, &op);                              \
	}
TRANSITION(commit, Panthera__Inventory__V1__CommitRequest, RES_COMMIT)
TRANSITION(release, Panthera__Inventory__V1__ReleaseRequest, RES_RELEASE)
TRANSITION(restock, Panthera__Inventory__V1__RestockRequest, RES_RESTOCK)
#undef TRANSITION

static const panthera_inventory_v1_inventory_service_handlers handlers = {
    .set_stock = set_stock,
    .init_stock = init_stock,
    .get_stock = get_stock,
    .batch_get_stock = batch_get_stock,
    .reserve = reserve,
    .commit = commit,
    .release = release,
    .restock = restock,
};

rpc_status inventory_service_register(rpc_server *srv, inventory_service *svc)
{
	/* the outbox of StockChanged events */
	rpc_status st = ev_outbox_setup(svc->pool, "inventory");
	return st == RPC_STATUS_OK
	           ? panthera_inventory_v1_inventory_service_register(srv, &handlers, svc)
	           : st;
}

/* ---- the sweeper ---- */

typedef struct sweep_op {
	int found;
} sweep_op;

/* Release the HELD reservation that expired first, if any: one order per
 * transaction, so that a sweep holds few locks and a deadlock with a
 * Reserve costs one retry of one order. */
static rpc_status tx_sweep(db_conn *c, void *arg)
{
	sweep_op *op = arg;
	PGresult *orders;
	op->found = 0;
	rpc_status st = inv_store_expired(c, 1, &orders);
	if (st != RPC_STATUS_OK)
		return st;
	if (PQntuples(orders) == 1) {
		st = inv_store_release(c, PQgetvalue(orders, 0, 0));
		if (st == RPC_STATUS_OK)
			st = inv_store_publish_order_stock(c, PQgetvalue(orders, 0, 0));
		op->found = st == RPC_STATUS_OK;
	}
	PQclear(orders);
	return st;
}

rpc_status inventory_sweep_expired(inventory_service *svc, unsigned *released)
{
	unsigned n = 0;
	rpc_status st = RPC_STATUS_OK;
	for (sweep_op op = {1}; op.found && n < 100 && st == RPC_STATUS_OK;) {
		st = db_transaction(svc->pool, DB_TX_RETRY, 10000, tx_sweep, &op);
		n += st == RPC_STATUS_OK && op.found;
	}
	if (released != NULL)
		*released = n;
	return st;
}
