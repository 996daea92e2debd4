/*
 * store.c - the analytics service's SQL; see analytics_store.h. Parameters
 * only; unqualified names resolve in the pool's schema, "analytics".
 */
#include "analytics_store.h"

#include <stdio.h>
#include <string.h>

rpc_status analytics_store_lock_order(db_conn *c, const char *order_id, analytics_order_state *out)
{
	const char *p[1] = {order_id};
	rpc_status st = db_exec(
	    c, "an_new_order",
	    "INSERT INTO sales_orders (order_id) VALUES ($1) ON CONFLICT (order_id) DO NOTHING", 1,
	    p, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	PGresult *r;
	st = db_exec(
	    c, "an_lock_order",
	    "SELECT paid_on IS NOT NULL, refunded_on IS NOT NULL, coalesce(amount::text, '')"
	    " FROM sales_orders WHERE order_id = $1 FOR UPDATE",
	    1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	if (PQntuples(r) != 1) { /* inserted or present just above */
		PQclear(r);
		return RPC_STATUS_INTERNAL;
	}
	out->paid = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	out->refunded = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
	snprintf(out->amount, sizeof(out->amount), "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status analytics_store_record_paid(db_conn *c, const char *order_id, const char *day,
                                       const char *currency, const char *amount,
                                       const analytics_line *lines, size_t n)
{
	const char *p[4] = {order_id, day, currency, amount};
	rpc_status st = db_exec(c, "an_record_paid",
	                        "UPDATE sales_orders SET paid_on = $2::date, currency = $3,"
	                        " amount = $4::numeric, updated_at = now() WHERE order_id = $1",
	                        4, p, NULL);
	for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++) {
		char q[16];
		snprintf(q, sizeof(q), "%d", lines[i].quantity);
		const char *l[5] = {order_id, lines[i].product_id, lines[i].name, q,
		                    lines[i].revenue};
		st = db_exec(c, "an_record_line",
		             "INSERT INTO sales_order_lines AS l"
		             " (order_id, product_id, name, quantity, revenue)"
		             " VALUES ($1, $2, $3, $4::int, $5::numeric)"
		             " ON CONFLICT (order_id, product_id) DO UPDATE"
		             " SET quantity = l.quantity + EXCLUDED.quantity,"
		             " revenue = l.revenue + EXCLUDED.revenue, name = EXCLUDED.name",
		             5, l, NULL);
	}
	return st;
}

rpc_status analytics_store_record_refund(db_conn *c, const char *order_id, const char *day)
{
	const char *p[2] = {order_id, day};
	return db_exec(c, "an_record_refund",
	               "UPDATE sales_orders SET refunded_on = $2::date, updated_at = now()"
	               " WHERE order_id = $1",
	               2, p, NULL);
}

rpc_status analytics_store_apply_paid(db_conn *c, const char *order_id)
{
	const char *p[1] = {order_id};
	rpc_status st =
	    db_exec(c, "an_apply_paid_day",
	            "INSERT INTO daily_sales AS d (day, currency, order_count, revenue)"
	            " SELECT paid_on, currency, 1, amount FROM sales_orders"
	            " WHERE order_id = $1 AND paid_on IS NOT NULL"
	            " ON CONFLICT (day, currency) DO UPDATE"
	            " SET order_count = d.order_count + 1, revenue = d.revenue + EXCLUDED.revenue",
	            1, p, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	return db_exec(c, "an_apply_paid_products",
	               "INSERT INTO daily_product_sales AS d"
	               " (day, currency, product_id, name, quantity, revenue)"
	               " SELECT o.paid_on, o.currency, l.product_id, l.name, l.quantity, l.revenue"
	               " FROM sales_order_lines l JOIN sales_orders o USING (order_id)"
	               " WHERE o.order_id = $1 AND o.paid_on IS NOT NULL"
	               " ON CONFLICT (day, currency, product_id) DO UPDATE"
	               " SET quantity = d.quantity + EXCLUDED.quantity,"
	               " revenue = d.revenue + EXCLUDED.revenue, name = EXCLUDED.name",
	               1, p, NULL);
}

rpc_status analytics_store_apply_refund(db_conn *c, const char *order_id)
{
	const char *p[1] = {order_id};
	rpc_status st = db_exec(
	    c, "an_apply_refund_day",
	    "INSERT INTO daily_sales AS d (day, currency, refund_count, revenue)"
	    " SELECT refunded_on, currency, 1, -amount FROM sales_orders"
	    " WHERE order_id = $1 AND paid_on IS NOT NULL AND refunded_on IS NOT NULL"
	    " ON CONFLICT (day, currency) DO UPDATE"
	    " SET refund_count = d.refund_count + 1, revenue = d.revenue + EXCLUDED.revenue",
	    1, p, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	/* a day that sold none of the product gets a row of its own, named as
	 * the order named it */
	return db_exec(c, "an_apply_refund_products",
	               "INSERT INTO daily_product_sales AS d"
	               " (day, currency, product_id, name, quantity, revenue)"
	               " SELECT o.refunded_on, o.currency, l.product_id, l.name, -l.quantity,"
	               " -l.revenue FROM sales_order_lines l JOIN sales_orders o USING (order_id)"
	               " WHERE o.order_id = $1 AND o.paid_on IS NOT NULL"
	               " AND o.refunded_on IS NOT NULL"
	               " ON CONFLICT (day, currency, product_id) DO UPDATE"
	               " SET quantity = d.quantity + EXCLUDED.quantity,"
	               " revenue = d.revenue + EXCLUDED.revenue",
	               1, p, NULL);
}

rpc_status analytics_store_rebuild_due(db_conn *c, const char *consumer, const char *source,
                                       int *due)
{
	*due = 0;
	const char *p[2] = {consumer, source};
	PGresult *r;
	rpc_status st = db_exec(c, "an_lock_cursor",
	                        "SELECT last_txid <> '0'::xid8 OR last_seq <> 0 FROM event_cursors"
	                        " WHERE consumer = $1 AND source = $2 FOR UPDATE",
	                        2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int have_cursor = PQntuples(r) == 1;
	int moved = have_cursor && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!have_cursor)
		return RPC_STATUS_OK;
	/* read after the lock: a batch that held it has committed by now */
	st = db_exec(
	    c, "an_emptiness",
	    "SELECT EXISTS (SELECT 1 FROM daily_sales), EXISTS (SELECT 1 FROM sales_orders)", 0,
	    NULL, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int have_days = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	int have_orders = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
	PQclear(r);
	*due = !have_days && (moved || have_orders);
	return RPC_STATUS_OK;
}

rpc_status analytics_store_clear(db_conn *c)
{
	/* DELETE, not TRUNCATE: the service's role may not truncate, and the
	 * tables are empty or nearly so when this runs */
	static const char *const sql[][2] = {
	    {"an_clear_products", "DELETE FROM daily_product_sales"},
	    {"an_clear_days", "DELETE FROM daily_sales"},
	    {"an_clear_lines", "DELETE FROM sales_order_lines"},
	    {"an_clear_orders", "DELETE FROM sales_orders"},
	};
	rpc_status st = RPC_STATUS_OK;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && st == RPC_STATUS_OK; i++)
		st = db_exec(c, sql[i][0], sql[i][1], 0, NULL, NULL);
	return st;
}

rpc_status analytics_store_days(db_conn *c, const char *from, const char *to, const char *currency,
                                PGresult **rows)
{
	const char *p[3] = {from, to, currency};
	/* date + integer is a date: no time zone can shift a day */
	return db_exec(c, "an_days",
	               "SELECT to_char(g.day, 'YYYY-MM-DD'), coalesce(d.order_count, 0),"
	               " coalesce((d.revenue * 100)::bigint, 0)"
	               " FROM (SELECT $1::date + i AS day"
	               " FROM generate_series(0, $2::date - $1::date) AS i) AS g"
	               " LEFT JOIN daily_sales d ON d.day = g.day AND d.currency = $3"
	               " ORDER BY g.day",
	               3, p, rows);
}

rpc_status analytics_store_top_products(db_conn *c, const char *from, const char *to,
                                        const char *currency, int limit, PGresult **rows)
{
	char l[16];
	snprintf(l, sizeof(l), "%d", limit);
	const char *p[4] = {from, to, currency, l};
	return db_exec(c, "an_top_products",
	               "SELECT product_id::text, (array_agg(name ORDER BY day DESC))[1],"
	               " sum(quantity), (sum(revenue) * 100)::bigint"
	               " FROM daily_product_sales"
	               " WHERE day BETWEEN $1::date AND $2::date AND currency = $3"
	               " GROUP BY product_id HAVING sum(quantity) > 0 OR sum(revenue) > 0"
	               " ORDER BY sum(revenue) DESC, sum(quantity) DESC, product_id"
	               " LIMIT $4::int",
	               4, p, rows);
}
