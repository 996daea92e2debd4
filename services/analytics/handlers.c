/*
 * handlers.c - AnalyticsService over RPC: check the caller (an admin) and
 * the range, read the aggregates in one read-only snapshot, build the
 * report in the call's arena.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "analytics_store.h"
#include "analytics_values.h"
#include "panthera/fieldcheck.h"
#include "panthera/caller.h"

#define AN_MAX_RANGE_DAYS 366 /* both ends included */
#define AN_TOP_PRODUCTS   10

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
	return rpc_call_error(call, st, "analytics storage: %s", rpc_status_name(st));
}

static char *arena_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

/* ---- the caller ---- */

/* OK when the call comes from an admin; else the error, set on the call. */
static rpc_status require_admin(rpc_call *call)
{
	caller who;
	caller_get(call, &who);
	if (who.id == NULL) /* roles without an identity grant nothing */
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	if (!who.admin) {
		rpc_call_set_error_reason(call, "ADMIN_ONLY", NULL);
		return rpc_call_error(call, RPC_STATUS_PERMISSION_DENIED,
		                      "only an admin may read sales reports");
	}
	return RPC_STATUS_OK;
}

/* ---- the range ---- */

/* A required day field; 1 with *day set when it is one. */
static int check_day(field_checker *k, const char *field, const char *s, int64_t *day)
{
	if (s == NULL || *s == '\0') {
		field_refuse(k, field, "is required: a UTC day, YYYY-MM-DD");
		return 0;
	}
	if (analytics_day_parse(s, day) != 0) {
		field_refuse(k, field, "must be a UTC day, YYYY-MM-DD, e.g. \"2026-01-15\"");
		return 0;
	}
	return 1;
}

/* ---- the report ---- */

typedef struct report_op {
	rpc_call *call;
	const char *from, *to, *currency;
	Panthera__Analytics__V1__SalesReport *resp;
} report_op;

static int32_t clamp_int32(long long v)
{
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static char *arena_money(rpc_call *call, int64_t cents)
{
	char text[MONEY_TEXT];
	money_format(text, cents);
	return arena_strdup(call, text);
}

/* The days of the range and their totals into the reply. */
static rpc_status fill_days(report_op *op, const PGresult *r)
{
	Panthera__Analytics__V1__SalesReport *resp = op->resp;
	size_t n = (size_t)PQntuples(r);
	resp->n_days = 0;
	resp->days = rpc_call_alloc(op->call, (n + 1) * sizeof(*resp->days));
	if (resp->days == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	long long orders = 0;
	int64_t cents = 0;
	for (size_t i = 0; i < n; i++) {
		Panthera__Analytics__V1__DailySales *d = rpc_call_alloc(op->call, sizeof(*d));
		if (d == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__analytics__v1__daily_sales__init(d);
		long long day_orders = strtoll(PQgetvalue(r, (int)i, AN_D_ORDERS), NULL, 10);
		int64_t day_cents = strtoll(PQgetvalue(r, (int)i, AN_D_CENTS), NULL, 10);
		d->date = arena_strdup(op->call, PQgetvalue(r, (int)i, AN_D_DAY));
		d->order_count = clamp_int32(day_orders);
		d->revenue = arena_money(op->call, day_cents);
		if (d->date == NULL || d->revenue == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		/* a day's sum stays below 10^16 cents (numeric(16,2)): 366 of
		 * them fit an int64, and an int holds far more orders than that */
		orders += day_orders;
		cents += day_cents;
		resp->days[resp->n_days++] = d;
	}
	resp->order_count = clamp_int32(orders);
	resp->revenue = arena_money(op->call, cents);
	return resp->revenue != NULL ? RPC_STATUS_OK : RPC_STATUS_RESOURCE_EXHAUSTED;
}

static rpc_status fill_products(report_op *op, const PGresult *r)
{
	Panthera__Analytics__V1__SalesReport *resp = op->resp;
	size_t n = (size_t)PQntuples(r);
	resp->n_top_products = 0;
	resp->top_products = rpc_call_alloc(op->call, (n + 1) * sizeof(*resp->top_products));
	if (resp->top_products == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n; i++) {
		Panthera__Analytics__V1__ProductSales *p = rpc_call_alloc(op->call, sizeof(*p));
		if (p == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__analytics__v1__product_sales__init(p);
		p->product_id = arena_strdup(op->call, PQgetvalue(r, (int)i, AN_P_ID));
		p->name = arena_strdup(op->call, PQgetvalue(r, (int)i, AN_P_NAME));
		/* a numeric sum of bigints: saturate rather than wrap */
		p->quantity = clamp_int32(strtoll(PQgetvalue(r, (int)i, AN_P_QUANTITY), NULL, 10));
		p->revenue =
		    arena_money(op->call, strtoll(PQgetvalue(r, (int)i, AN_P_CENTS), NULL, 10));
		if (p->product_id == NULL || p->name == NULL || p->revenue == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		resp->top_products[resp->n_top_products++] = p;
	}
	return RPC_STATUS_OK;
}

static rpc_status tx_report(db_conn *c, void *arg)
{
	report_op *op = arg;
	/* the days and the products from one snapshot, even while the
	 * consumer commits */
	rpc_status st = db_exec(
	    c, NULL, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	PGresult *r;
	if ((st = analytics_store_days(c, op->from, op->to, op->currency, &r)) != RPC_STATUS_OK)
		return st;
	st = fill_days(op, r);
	PQclear(r);
	if (st != RPC_STATUS_OK)
		return st;
	st = analytics_store_top_products(c, op->from, op->to, op->currency, AN_TOP_PRODUCTS, &r);
	if (st != RPC_STATUS_OK)
		return st;
	st = fill_products(op, r);
	PQclear(r);
	return st;
}

static rpc_status get_sales_report(rpc_call *call,
                                   const Panthera__Analytics__V1__GetSalesReportRequest *req,
                                   Panthera__Analytics__V1__SalesReport *resp, void *user)
{
	analytics_service *svc = user;
	rpc_status st = require_admin(call);
	if (st != RPC_STATUS_OK)
		return st;
	field_checker k = {.call = call};
	int64_t from, to;
	int have_from = check_day(&k, "from", req->from, &from);
	int have_to = check_day(&k, "to", req->to, &to);
	if (have_from && have_to && to < from)
		field_refuse(&k, "to", "must not be before from");
	else if (have_from && have_to && to - from >= AN_MAX_RANGE_DAYS)
		field_refuse(&k, "to", "must be at most 365 days after from (366 days in all)");
	if ((st = field_checked(&k)) != RPC_STATUS_OK)
		return st;
	report_op op = {.call = call,
	                .from = req->from,
	                .to = req->to,
	                .currency = svc->currency ? svc->currency : ANALYTICS_DEFAULT_CURRENCY,
	                .resp = resp};
	resp->from = arena_strdup(call, req->from);
	resp->to = arena_strdup(call, req->to);
	resp->currency = arena_strdup(call, op.currency);
	if (resp->from != NULL && resp->to != NULL && resp->currency != NULL)
		st = db_transaction(svc->pool, DB_TX_RETRY, db_wait_ms(call), tx_report, &op);
	else
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	if (st == RPC_STATUS_RESOURCE_EXHAUSTED) /* the call's arena, or the database's */
		return rpc_call_error(call, st, "out of memory building the sales report");
	return st == RPC_STATUS_OK ? RPC_STATUS_OK : db_failed(call, st);
}

static const panthera_analytics_v1_analytics_service_handlers handlers = {
    .get_sales_report = get_sales_report,
};

rpc_status analytics_service_register(rpc_server *srv, analytics_service *svc)
{
	if (srv == NULL || svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	return panthera_analytics_v1_analytics_service_register(srv, &handlers, svc);
}
