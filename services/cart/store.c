/*
 * store.c - the cart service's SQL; see cart_store.h. Parameters only.
 */
#include "cart_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rpc_status cart_store_lock_user(db_conn *c, const char *user_id)
{
	const char *p[1] = {user_id};
	return db_exec(
	    c, "cart_lock_user",
	    "SELECT pg_advisory_xact_lock(hashtextextended('cart.user:' || $1::uuid::text, 0))", 1,
	    p, NULL);
}

rpc_status cart_store_load(db_conn *c, const char *user_id, cart_view *out)
{
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", CART_MAX_LINES);
	const char *p[2] = {user_id, limit};
	PGresult *r;
	out->exists = 0;
	out->updated_us = 0;
	out->n = 0;
	/* one statement, so the cart and its lines come from one snapshot even
	 * outside the user's lock; a cart without lines is one row of NULLs */
	rpc_status st =
	    db_exec(c, "cart_load",
	            "SELECT (extract(epoch FROM c.updated_at) * 1000000)::bigint, l.product_id,"
	            " l.quantity FROM carts c LEFT JOIN cart_lines l ON l.user_id = c.user_id"
	            " WHERE c.user_id = $1 ORDER BY l.position LIMIT $2::int",
	            2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int rows = PQntuples(r);
	if (rows > 0) {
		out->exists = 1;
		out->updated_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	for (int i = 0; i < rows && out->n < CART_MAX_LINES; i++) {
		if (PQgetisnull(r, i, 1))
			continue;
		cart_line *l = &out->lines[out->n++];
		snprintf(l->product_id, sizeof(l->product_id), "%s", PQgetvalue(r, i, 1));
		l->quantity = (int)strtol(PQgetvalue(r, i, 2), NULL, 10);
	}
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status cart_store_touch(db_conn *c, const char *user_id)
{
	const char *p[1] = {user_id};
	return db_exec(c, "cart_touch",
	               "INSERT INTO carts (user_id) VALUES ($1)"
	               " ON CONFLICT (user_id) DO UPDATE SET updated_at = now()",
	               1, p, NULL);
}

rpc_status cart_store_add(db_conn *c, const char *user_id, const char *product_id, int quantity)
{
	char q[16];
	snprintf(q, sizeof(q), "%d", quantity);
	const char *p[3] = {user_id, product_id, q};
	return db_exec(
	    c, "cart_add",
	    "INSERT INTO cart_lines (user_id, product_id, quantity) VALUES ($1, $2, $3::int)"
	    " ON CONFLICT (user_id, product_id)"
	    " DO UPDATE SET quantity = cart_lines.quantity + EXCLUDED.quantity",
	    3, p, NULL);
}

/* Run `sql` (which RETURNs a row per line it touched); NOT_FOUND for none. */
static rpc_status exec_one_line(db_conn *c, const char *name, const char *sql, int n,
                                const char *const *params)
{
	PGresult *r;
	rpc_status st = db_exec(c, name, sql, n, params, &r);
	if (st != RPC_STATUS_OK)
		return st;
	st = PQntuples(r) > 0 ? RPC_STATUS_OK : RPC_STATUS_NOT_FOUND;
	PQclear(r);
	return st;
}

rpc_status cart_store_set_quantity(db_conn *c, const char *user_id, const char *product_id,
                                   int quantity)
{
	char q[16];
	snprintf(q, sizeof(q), "%d", quantity);
	const char *p[3] = {user_id, product_id, q};
	return exec_one_line(c, "cart_set_quantity",
	                     "UPDATE cart_lines SET quantity = $3::int"
	                     " WHERE user_id = $1 AND product_id = $2 RETURNING 1",
	                     3, p);
}

rpc_status cart_store_remove(db_conn *c, const char *user_id, const char *product_id)
{
	const char *p[2] = {user_id, product_id};
	return exec_one_line(c, "cart_remove",
	                     "DELETE FROM cart_lines WHERE user_id = $1 AND product_id = $2"
	                     " RETURNING 1",
	                     2, p);
}

rpc_status cart_store_clear(db_conn *c, const char *user_id, int *removed)
{
	const char *p[1] = {user_id};
	PGresult *r;
	rpc_status st =
	    db_exec(c, "cart_clear", "DELETE FROM cart_lines WHERE user_id = $1", 1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	if (removed != NULL)
		*removed = atoi(PQcmdTuples(r));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status cart_store_take(db_conn *c, const char *user_id, const char *product_id, int quantity,
                           int *changed)
{
	char q[16];
	snprintf(q, sizeof(q), "%d", quantity);
	const char *p[3] = {user_id, product_id, q};
	*changed = 0;
	/* units remain: fewer of them; none remain: the line goes */
	rpc_status st =
	    exec_one_line(c, "cart_take",
	                  "UPDATE cart_lines SET quantity = quantity - $3::int"
	                  " WHERE user_id = $1 AND product_id = $2 AND quantity > $3::int"
	                  " RETURNING 1",
	                  3, p);
	if (st == RPC_STATUS_NOT_FOUND)
		st = cart_store_remove(c, user_id, product_id);
	if (st == RPC_STATUS_OK)
		*changed = 1;
	return st == RPC_STATUS_NOT_FOUND ? RPC_STATUS_OK : st;
}

rpc_status cart_store_record_checkout(db_conn *c, const char *order_id, const char *user_id,
                                      int *fresh, char owner[ID_UUID_LEN + 1])
{
	const char *p[2] = {order_id, user_id};
	PGresult *r;
	*fresh = 0;
	owner[0] = '\0';
	/* a second call of the same order waits here for the first to end */
	rpc_status st = db_exec(c, "cart_record_checkout",
	                        "INSERT INTO checkouts (order_id, user_id) VALUES ($1, $2)"
	                        " ON CONFLICT (order_id) DO NOTHING RETURNING 1",
	                        2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	*fresh = PQntuples(r) == 1;
	PQclear(r);
	if (*fresh)
		return RPC_STATUS_OK;
	st = db_exec(c, "cart_checkout_owner", "SELECT user_id FROM checkouts WHERE order_id = $1",
	             1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	if (PQntuples(r) == 1)
		snprintf(owner, ID_UUID_LEN + 1, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status cart_sweep(cart_service *svc, long *deleted)
{
	if (deleted != NULL)
		*deleted = 0;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	return db_purge(svc->pool,
	                "DELETE FROM checkouts WHERE order_id IN (SELECT order_id FROM checkouts"
	                " WHERE applied_at < now() - $1::int * interval '1 second' LIMIT $2::int)",
	                CART_CHECKOUT_KEEP_S, deleted);
}
