/*
 * store.c - the SQL of the order service. Every statement has parameters
 * only; each function runs on the connection (and transaction) given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders_internal.h"
#include "panthera/events.h"
#include "panthera/money.h"

#define US(col) "coalesce((extract(epoch FROM " col ") * 1000000)::bigint::text, '')"

#define ORD_SELECT                                                                                \
	"SELECT id, user_id, status, subtotal, total_amount, currency, ship_street, ship_city,"   \
	" ship_state, ship_zip, ship_country, payment_method_id, coalesce(payment_id::text, '')," \
	" coalesce(carrier, ''), coalesce(tracking_number, ''), " US("shipped_at") ", " US(       \
	    "delivered_at") ", " US("created_at") ", " US("updated_at") " FROM orders"

rpc_status ord_store_get(db_conn *c, const char *id, int lock, PGresult **row)
{
	const char *p[1] = {id};
	return db_exec_row(
	    c, lock ? "ord_get_lock" : "ord_get",
	    lock ? ORD_SELECT " WHERE id = $1 FOR UPDATE" : ORD_SELECT " WHERE id = $1", 1, p, row);
}

rpc_status ord_store_items(db_conn *c, const char *ids_array, PGresult **rows)
{
	const char *p[1] = {ids_array};
	return db_exec(c, "ord_items",
	               "SELECT order_id, product_id, sku, name, quantity, unit_price, line_total"
	               " FROM order_items WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line",
	               1, p, rows);
}

rpc_status ord_store_list(db_conn *c, const char *user_id, int page, int page_size, PGresult **rows,
                          long *total)
{
	char limit[16], offset[24];
	snprintf(limit, sizeof(limit), "%d", page_size);
	snprintf(offset, sizeof(offset), "%lld", (long long)(page - 1) * page_size);
	const char *p[3] = {user_id, limit, offset};
	int64_t n;
	rpc_status st = db_exec_int64(c, "ord_count",
	                              "SELECT count(*) FROM orders WHERE user_id = $1", 1, p, &n);
	if (st != RPC_STATUS_OK)
		return st;
	*total = (long)n;
	return db_exec(c, "ord_list",
	               ORD_SELECT " WHERE user_id = $1 ORDER BY created_at DESC, id"
	                          " LIMIT $2::int OFFSET $3::bigint",
	               3, p, rows);
}

rpc_status ord_store_insert(db_conn *c, const ord_new *o)
{
	char total[MONEY_TEXT];
	money_format(total, o->total_cents);
	const char *p[12] = {
	    o->id,   o->user_id, total,  total,      o->currency,         o->street,
	    o->city, o->state,   o->zip, o->country, o->payment_method_id};
	rpc_status st = db_exec(
	    c, "ord_insert",
	    "INSERT INTO orders (id, user_id, status, subtotal, total_amount, currency, ship_street,"
	    " ship_city, ship_state, ship_zip, ship_country, payment_method_id) VALUES ($1, $2,"
	    " 'PENDING_PAYMENT', $3::numeric, $4::numeric, $5, $6, $7, $8, $9, $10, $11)",
	    11, p, NULL);
	for (size_t i = 0; i < o->n_lines && st == RPC_STATUS_OK; i++) {
		const ord_line *l = &o->lines[i];
		char line[24], qty[16], unit[MONEY_TEXT], sum[MONEY_TEXT];
		snprintf(line, sizeof(line), "%zu", i + 1);
		snprintf(qty, sizeof(qty), "%d", (int)l->quantity);
		money_format(unit, l->unit_cents);
		money_format(sum, l->line_cents);
		const char *q[7] = {o->id, line, l->product_id, l->sku, l->name, qty, unit};
		const char *q8[8] = {q[0], q[1], q[2], q[3], q[4], q[5], q[6], sum};
		st = db_exec(
		    c, "ord_insert_item",
		    "INSERT INTO order_items (order_id, line, product_id, sku, name, quantity,"
		    " unit_price, line_total) VALUES ($1, $2::int, $3, $4, $5, $6::int,"
		    " $7::numeric, $8::numeric)",
		    8, q8, NULL);
	}
	return st;
}

rpc_status ord_store_set_status(db_conn *c, const char *id, const char *from, const char *to,
                                const char *payment_id)
{
	const char *p[4] = {id, from, to, payment_id};
	PGresult *r;
	rpc_status st = db_exec(c, "ord_set_status",
	                        "UPDATE orders SET status = $3, payment_id = coalesce($4::uuid,"
	                        " payment_id), updated_at = now() WHERE id = $1 AND status = $2",
	                        4, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int one = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	return one ? RPC_STATUS_OK : RPC_STATUS_FAILED_PRECONDITION;
}

rpc_status ord_store_resume_key(db_conn *c, const char *id, const char *key, int *same)
{
	const char *p[2] = {id, key};
	PGresult *r;
	rpc_status st =
	    db_exec(c, "ord_resume_key_same",
	            "SELECT coalesce(resume_key = $2, false) FROM orders WHERE id = $1", 2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	*same = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status ord_store_set_resume_key(db_conn *c, const char *id, const char *key)
{
	const char *p[2] = {id, key};
	return db_exec(c, "ord_resume_key_set", "UPDATE orders SET resume_key = $2 WHERE id = $1",
	               2, p, NULL);
}

rpc_status ord_store_ship(db_conn *c, const char *id, const char *carrier, const char *tracking)
{
	const char *p[3] = {id, carrier, tracking};
	PGresult *r;
	rpc_status st = db_exec(c, "ord_ship",
	                        "UPDATE orders SET status = 'SHIPPED', carrier = $2,"
	                        " tracking_number = $3, shipped_at = now(), updated_at = now()"
	                        " WHERE id = $1 AND status = 'PAID'",
	                        3, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int one = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	return one ? RPC_STATUS_OK : RPC_STATUS_FAILED_PRECONDITION;
}

rpc_status ord_store_deliver(db_conn *c, const char *id)
{
	const char *p[1] = {id};
	PGresult *r;
	rpc_status st = db_exec(c, "ord_deliver",
	                        "UPDATE orders SET status = 'DELIVERED', delivered_at = now(),"
	                        " updated_at = now() WHERE id = $1 AND status = 'SHIPPED'",
	                        1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int one = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	return one ? RPC_STATUS_OK : RPC_STATUS_FAILED_PRECONDITION;
}

rpc_status ord_store_has_purchased(db_conn *c, const char *user_id, const char *product_id,
                                   int *yes)
{
	const char *p[2] = {user_id, product_id};
	PGresult *r;
	rpc_status st = db_exec(c, "ord_has_purchased",
	                        "SELECT EXISTS (SELECT 1 FROM orders o JOIN order_items i"
	                        " ON i.order_id = o.id WHERE o.user_id = $1 AND i.product_id = $2"
	                        " AND o.status IN ('PAID', 'SHIPPED', 'DELIVERED'))",
	                        2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	*yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status ord_store_take_key(db_conn *c, const char *user_id, const char *key,
                              const char *order_id, char owner[40], int *replay)
{
	owner[0] = '\0';
	*replay = 0;
	/* held until this transaction ends: its commit, its rollback, or the
	 * death of its connection */
	const char *q[2] = {user_id, key};
	PGresult *r;
	rpc_status st =
	    db_exec(c, "ord_key_lock",
	            "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2))", 2, q, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int locked = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!locked)
		return RPC_STATUS_ABORTED; /* another request with the key is at work */
	/* ours when new, or when its 24 hours are over */
	const char *p[3] = {user_id, key, order_id};
	st =
	    db_exec(c, "ord_key_take",
	            "INSERT INTO idempotency_keys AS k (user_id, key, order_id) VALUES ($1, $2, $3)"
	            " ON CONFLICT (user_id, key) DO UPDATE SET order_id = EXCLUDED.order_id,"
	            " created_at = now() WHERE k.created_at < now() - interval '24 hours'"
	            " RETURNING order_id::text",
	            3, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int taken = PQntuples(r) == 1;
	PQclear(r);
	if (taken)
		return RPC_STATUS_OK;
	/* a request before: its order, committed with the key */
	st = db_exec(
	    c, "ord_key_get",
	    "SELECT k.order_id::text, EXISTS (SELECT 1 FROM orders o WHERE o.id = k.order_id)"
	    " FROM idempotency_keys k WHERE k.user_id = $1 AND k.key = $2",
	    2, q, &r);
	if (st != RPC_STATUS_OK)
		return st;
	if (PQntuples(r) != 1) { /* swept meanwhile: a retry finds it free */
		PQclear(r);
		return RPC_STATUS_ABORTED;
	}
	snprintf(owner, 40, "%s", PQgetvalue(r, 0, 0));
	*replay = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
	PQclear(r);
	if (*replay)
		return RPC_STATUS_OK;
	/* left without its order by a version before this one (which kept the
	 * key outside the order's transaction): take it over */
	owner[0] = '\0';
	return db_exec(c, "ord_key_takeover",
	               "UPDATE idempotency_keys SET order_id = $3, created_at = now()"
	               " WHERE user_id = $1 AND key = $2",
	               3, p, NULL);
}

rpc_status orders_sweep(orders_service *svc, long *deleted)
{
	if (deleted != NULL)
		*deleted = 0;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	/* ord_store_take_key treats a key this old as new */
	return db_purge(svc->pool,
	                "DELETE FROM idempotency_keys WHERE (user_id, key) IN"
	                " (SELECT user_id, key FROM idempotency_keys"
	                " WHERE created_at < now() - $1::int * interval '1 second' LIMIT $2::int)",
	                ORDERS_KEY_KEEP_S, deleted);
}

rpc_status ord_publish(db_conn *c, const char *type, const char *order_id,
                       const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	protobuf_c_message_pack(msg, buf);
	rpc_status st = ev_publish(c, ORD_SCHEMA, type, order_id, buf, len, NULL);
	free(buf);
	return st;
}
