/*
 * store.c - the inventory service's SQL; see store.h. Parameters only.
 */
#include "store.h"

#include <stdio.h>

#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include <stdlib.h>
#include <string.h>

rpc_status inv_store_set_stock(db_conn *c, const char *product_id, int available, int create)
{
	char a[16];
	snprintf(a, sizeof(a), "%d", available);
	const char *p[2] = {product_id, a};
	if (create)
		return db_exec(
		    c, "inv_init_stock",
		    "INSERT INTO stock (product_id, available) VALUES ($1, $2::int)"
		    " ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available,"
		    " updated_at = now()",
		    2, p, NULL);
	PGresult *r;
	rpc_status st = db_exec_row(c, "inv_set_stock",
	                            "UPDATE stock SET available = $2::int, updated_at = now()"
	                            " WHERE product_id = $1 RETURNING product_id",
	                            2, p, &r);
	if (st == RPC_STATUS_OK)
		PQclear(r);
	return st;
}

rpc_status inv_store_get_stock(db_conn *c, const char *product_id, int *available, int *reserved)
{
	const char *p[1] = {product_id};
	PGresult *r;
	rpc_status st =
	    db_exec_row(c, "inv_get_stock",
	                "SELECT available, reserved FROM stock WHERE product_id = $1", 1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	*available = atoi(PQgetvalue(r, 0, 0));
	*reserved = atoi(PQgetvalue(r, 0, 1));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status inv_store_lock_order(db_conn *c, const char *order_id)
{
	const char *p[1] = {order_id};
	return db_exec(
	    c, "inv_lock_order",
	    "SELECT pg_advisory_xact_lock(hashtextextended('inventory.order:' || $1, 0))", 1, p,
	    NULL);
}

rpc_status inv_store_lock_reservation(db_conn *c, const char *order_id, char status[16])
{
	const char *p[1] = {order_id};
	PGresult *r;
	rpc_status st =
	    db_exec_row(c, "inv_lock_reservation",
	                "SELECT status FROM reservations WHERE order_id = $1 FOR UPDATE", 1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	snprintf(status, 16, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status inv_store_reserve(db_conn *c, const char *order_id, const inv_item *items, size_t n,
                             unsigned ttl_s, int renew, char short_product[37])
{
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%u", ttl_s);
	const char *h[2] = {order_id, ttl};
	rpc_status st;
	if (renew) {
		/* a released reservation taken again: same items, new hold */
		st = db_exec(
		    c, "inv_renew",
		    "UPDATE reservations SET status = 'HELD', expires_at = now() + $2::int * interval '1 second',"
		    " updated_at = now() WHERE order_id = $1",
		    2, h, NULL);
	} else {
		st = db_exec(c, "inv_insert_reservation",
		             "INSERT INTO reservations (order_id, status, expires_at)"
		             " VALUES ($1, 'HELD', now() + $2::int * interval '1 second')",
		             2, h, NULL);
		for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++) {
			char q[16];
			snprintf(q, sizeof(q), "%d", items[i].quantity);
			const char *p[3] = {order_id, items[i].product_id, q};
			st = db_exec(
			    c, "inv_insert_item",
			    "INSERT INTO reservation_items (order_id, product_id, quantity) VALUES ($1, $2, $3::int)",
			    3, p, NULL);
		}
	}
	if (st != RPC_STATUS_OK)
		return st;
	/* Take the units, in product order (the same lock order for every
	 * transaction: no deadlocks between two orders of the same products). */
	PGresult *r;
	const char *o[1] = {order_id};
	st = db_exec(
	    c, "inv_items_sorted",
	    "SELECT product_id, quantity FROM reservation_items WHERE order_id = $1 ORDER BY product_id",
	    1, o, &r);
	if (st != RPC_STATUS_OK)
		return st;
	for (int i = 0; i < PQntuples(r) && st == RPC_STATUS_OK; i++) {
		const char *p[2] = {PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)};
		PGresult *u;
		st = db_exec(
		    c, "inv_take",
		    "UPDATE stock SET available = available - $2::int, reserved = reserved + $2::int,"
		    " updated_at = now() WHERE product_id = $1 AND available >= $2::int RETURNING available",
		    2, p, &u);
		if (st == RPC_STATUS_OK && PQntuples(u) == 0) {
			snprintf(short_product, 37, "%s", PQgetvalue(r, i, 0));
			st = RPC_STATUS_FAILED_PRECONDITION;
		}
		PQclear(u);
	}
	PQclear(r);
	return st;
}

static rpc_status move(db_conn *c, const char *name, const char *stock_sql, const char *status_to,
                       const char *order_id)
{
	const char *p[1] = {order_id};
	rpc_status st = db_exec(c, name, stock_sql, 1, p, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	const char *s[2] = {order_id, status_to};
	return db_exec(
	    c, "inv_set_status",
	    "UPDATE reservations SET status = $2, updated_at = now() WHERE order_id = $1", 2, s,
	    NULL);
}

rpc_status inv_store_commit(db_conn *c, const char *order_id)
{
	return move(
	    c, "inv_commit",
	    "UPDATE stock s SET reserved = s.reserved - i.quantity, updated_at = now()"
	    " FROM reservation_items i WHERE i.order_id = $1 AND s.product_id = i.product_id",
	    "COMMITTED", order_id);
}

rpc_status inv_store_release(db_conn *c, const char *order_id)
{
	return move(
	    c, "inv_release",
	    "UPDATE stock s SET reserved = s.reserved - i.quantity, available = s.available + i.quantity,"
	    " updated_at = now() FROM reservation_items i WHERE i.order_id = $1 AND s.product_id = i.product_id",
	    "RELEASED", order_id);
}

rpc_status inv_store_restock(db_conn *c, const char *order_id)
{
	return move(
	    c, "inv_restock",
	    "UPDATE stock s SET available = s.available + i.quantity, updated_at = now()"
	    " FROM reservation_items i WHERE i.order_id = $1 AND s.product_id = i.product_id",
	    "RESTOCKED", order_id);
}

rpc_status inv_store_load_items(db_conn *c, const char *order_id, PGresult **items,
                                long long *expires_s)
{
	const char *p[1] = {order_id};
	PGresult *r;
	rpc_status st = db_exec(
	    c, "inv_expiry",
	    "SELECT extract(epoch FROM expires_at)::bigint FROM reservations WHERE order_id = $1",
	    1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	*expires_s = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return db_exec(
	    c, "inv_items",
	    "SELECT product_id, quantity FROM reservation_items WHERE order_id = $1 ORDER BY product_id",
	    1, p, items);
}

rpc_status inv_store_expired(db_conn *c, int limit, PGresult **orders)
{
	char l[16];
	snprintf(l, sizeof(l), "%d", limit);
	const char *p[1] = {l};
	return db_exec(
	    c, "inv_expired",
	    "SELECT order_id FROM reservations WHERE status = 'HELD' AND expires_at < now()"
	    " ORDER BY expires_at LIMIT $1::int FOR UPDATE SKIP LOCKED",
	    1, p, orders);
}

rpc_status inv_store_publish_stock(db_conn *c, const char *product_id)
{
	int available, reserved;
	rpc_status st = inv_store_get_stock(c, product_id, &available, &reserved);
	if (st != RPC_STATUS_OK)
		return st;
	Panthera__Events__V1__StockChanged ev = PANTHERA__EVENTS__V1__STOCK_CHANGED__INIT;
	ev.product_id = (char *)product_id;
	ev.available = available;
	ev.reserved = reserved;
	uint8_t buf[128]; /* a UUID and two varints */
	size_t len = protobuf_c_message_get_packed_size(&ev.base);
	if (len > sizeof(buf))
		return RPC_STATUS_INTERNAL;
	protobuf_c_message_pack(&ev.base, buf);
	return ev_publish(c, "inventory", "panthera.events.v1.StockChanged", product_id, buf, len,
	                  NULL);
}

rpc_status inv_store_publish_order_stock(db_conn *c, const char *order_id)
{
	PGresult *items;
	long long expires;
	rpc_status st = inv_store_load_items(c, order_id, &items, &expires);
	if (st != RPC_STATUS_OK)
		return st;
	for (int i = 0; i < PQntuples(items) && st == RPC_STATUS_OK; i++)
		st = inv_store_publish_stock(c, PQgetvalue(items, i, 0));
	PQclear(items);
	return st;
}
