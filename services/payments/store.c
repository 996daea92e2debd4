/*
 * store.c - the payments service's SQL (payments_internal.h) and its
 * events into payments.outbox. Parameters only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "payments_internal.h"

/* In the order read by read_row(); numeric(12,2) prints two places. */
#define PAYMENT_COLUMNS                                                          \
	"id, order_id, user_id, amount::text, currency, status, failure_reason," \
	" refunded_amount::text, provider, provider_ref,"                        \
	" (extract(epoch FROM created_at) * 1000000)::bigint,"                   \
	" (extract(epoch FROM updated_at) * 1000000)::bigint"

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

static void read_row(const PGresult *r, pay_record *out)
{
	copy(out->id, sizeof(out->id), PQgetvalue(r, 0, 0));
	copy(out->order_id, sizeof(out->order_id), PQgetvalue(r, 0, 1));
	copy(out->user_id, sizeof(out->user_id), PQgetvalue(r, 0, 2));
	copy(out->amount, sizeof(out->amount), PQgetvalue(r, 0, 3));
	copy(out->currency, sizeof(out->currency), PQgetvalue(r, 0, 4));
	copy(out->status, sizeof(out->status), PQgetvalue(r, 0, 5));
	copy(out->failure_reason, sizeof(out->failure_reason), PQgetvalue(r, 0, 6));
	copy(out->refunded_amount, sizeof(out->refunded_amount), PQgetvalue(r, 0, 7));
	copy(out->provider, sizeof(out->provider), PQgetvalue(r, 0, 8));
	copy(out->provider_ref, sizeof(out->provider_ref), PQgetvalue(r, 0, 9));
	out->created_us = strtoll(PQgetvalue(r, 0, 10), NULL, 10);
	out->updated_us = strtoll(PQgetvalue(r, 0, 11), NULL, 10);
}

/* Run a statement that returns PAYMENT_COLUMNS of at most one row into
 * *out; NOT_FOUND when it returns none. */
static rpc_status one_payment(db_conn *c, const char *name, const char *sql, int n,
                              const char *const *p, pay_record *out)
{
	PGresult *r;
	rpc_status st = db_exec_row(c, name, sql, n, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	read_row(r, out);
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status pay_store_lock(db_conn *c, const char *scope, const char *key)
{
	const char *p[2] = {scope, key};
	return db_exec(
	    c, "pay_lock",
	    "SELECT pg_advisory_xact_lock(hashtextextended('payments.' || $1 || ':' || $2, 0))", 2,
	    p, NULL);
}

rpc_status pay_store_by_key(db_conn *c, const char *idempotency_key, pay_record *out)
{
	const char *p[1] = {idempotency_key};
	return one_payment(c, "pay_by_key",
	                   "SELECT " PAYMENT_COLUMNS " FROM payments WHERE idempotency_key = $1", 1,
	                   p, out);
}

rpc_status pay_store_get(db_conn *c, const char *id, int lock, pay_record *out)
{
	const char *p[1] = {id};
	if (lock)
		return one_payment(
		    c, "pay_get_locked",
		    "SELECT " PAYMENT_COLUMNS " FROM payments WHERE id = $1 FOR UPDATE", 1, p, out);
	return one_payment(c, "pay_get", "SELECT " PAYMENT_COLUMNS " FROM payments WHERE id = $1",
	                   1, p, out);
}

rpc_status pay_store_insert(db_conn *c, pay_record *rec, const char *payment_method_id,
                            const char *idempotency_key)
{
	const char *p[11] = {
	    rec->id,       rec->order_id,     rec->user_id,        rec->amount,
	    rec->currency, rec->status,       rec->failure_reason, payment_method_id,
	    rec->provider, rec->provider_ref, idempotency_key};
	return one_payment(
	    c, "pay_insert",
	    "INSERT INTO payments (id, order_id, user_id, amount, currency, status, failure_reason,"
	    " payment_method_id, provider, provider_ref, idempotency_key)"
	    " VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8, $9, $10, $11)"
	    " RETURNING " PAYMENT_COLUMNS,
	    11, p, rec);
}

rpc_status pay_store_set_refunded(db_conn *c, const char *id, pay_record *rec)
{
	const char *p[1] = {id};
	return one_payment(c, "pay_set_refunded",
	                   "UPDATE payments SET status = 'REFUNDED', refunded_amount = amount,"
	                   " updated_at = now() WHERE id = $1 RETURNING " PAYMENT_COLUMNS,
	                   1, p, rec);
}

rpc_status pay_store_count_order(db_conn *c, const char *order_id, long *n)
{
	const char *p[1] = {order_id};
	int64_t v;
	rpc_status st = db_exec_int64(
	    c, "pay_count_order", "SELECT count(*) FROM payments WHERE order_id = $1", 1, p, &v);
	if (st == RPC_STATUS_OK)
		*n = (long)v;
	return st;
}

rpc_status pay_store_find_key(db_conn *c, const char *user_id, const char *key,
                              char payment_id[ID_UUID_LEN + 1])
{
	const char *p[2] = {user_id, key};
	PGresult *r;
	rpc_status st = db_exec_row(c, "pay_find_key",
	                            "SELECT payment_id FROM idempotency_keys WHERE user_id = $1"
	                            " AND key = $2 AND created_at > now() - interval '24 hours'",
	                            2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	copy(payment_id, ID_UUID_LEN + 1, PQgetvalue(r, 0, 0));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status pay_store_remember_key(db_conn *c, const char *user_id, const char *key,
                                  const char *payment_id)
{
	const char *p[3] = {user_id, key, payment_id};
	rpc_status st = db_exec(c, "pay_forget_keys",
	                        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key <> $2"
	                        " AND created_at <= now() - interval '24 hours'",
	                        2, p, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	return db_exec(c, "pay_remember_key",
	               "INSERT INTO idempotency_keys (user_id, key, payment_id) VALUES ($1, $2, $3)"
	               " ON CONFLICT (user_id, key) DO UPDATE SET payment_id = EXCLUDED.payment_id,"
	               " created_at = now()",
	               3, p, NULL);
}

rpc_status pay_store_publish(db_conn *c, const pay_record *rec)
{
	Panthera__Events__V1__PaymentSucceeded ok = PANTHERA__EVENTS__V1__PAYMENT_SUCCEEDED__INIT;
	Panthera__Events__V1__PaymentFailed failed = PANTHERA__EVENTS__V1__PAYMENT_FAILED__INIT;
	Panthera__Events__V1__PaymentRefunded refunded =
	    PANTHERA__EVENTS__V1__PAYMENT_REFUNDED__INIT;
	/* protobuf-c takes char *; nothing here is written through them */
	char *id = (char *)rec->id, *order = (char *)rec->order_id, *user = (char *)rec->user_id;
	char *amount = (char *)rec->amount, *currency = (char *)rec->currency;
	const ProtobufCMessage *msg;
	const char *type;
	if (strcmp(rec->status, "SUCCEEDED") == 0) {
		ok.payment_id = id;
		ok.order_id = order;
		ok.user_id = user;
		ok.amount = amount;
		ok.currency = currency;
		msg = &ok.base;
		type = "panthera.events.v1.PaymentSucceeded";
	} else if (strcmp(rec->status, "FAILED") == 0) {
		failed.payment_id = id;
		failed.order_id = order;
		failed.user_id = user;
		failed.amount = amount;
		failed.currency = currency;
		failed.reason = (char *)rec->failure_reason;
		msg = &failed.base;
		type = "panthera.events.v1.PaymentFailed";
	} else if (strcmp(rec->status, "REFUNDED") == 0) {
		refunded.payment_id = id;
		refunded.order_id = order;
		refunded.user_id = user;
		refunded.amount = (char *)rec->refunded_amount;
		refunded.currency = currency;
		msg = &refunded.base;
		type = "panthera.events.v1.PaymentRefunded";
	} else {
		return RPC_STATUS_INTERNAL; /* no event for this state */
	}
	/* three UUIDs, two amounts, a currency and a reason: far below this */
	uint8_t buf[512];
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (len > sizeof(buf))
		return RPC_STATUS_INTERNAL;
	protobuf_c_message_pack(msg, buf);
	return ev_publish(c, PAYMENTS_SCHEMA, type, rec->id, buf, len, NULL);
}

rpc_status payments_sweep(payments_service *svc, long *deleted)
{
	if (deleted != NULL)
		*deleted = 0;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	/* pay_store_find_key replays only keys younger than this */
	return db_purge(svc->pool,
	                "DELETE FROM idempotency_keys WHERE (user_id, key) IN"
	                " (SELECT user_id, key FROM idempotency_keys"
	                " WHERE created_at <= now() - $1::int * interval '1 second' LIMIT $2::int)",
	                PAYMENTS_KEY_KEEP_S, deleted);
}
