/*
 * store.c - the notifications service's SQL (see notif_internal.h):
 * recording, listing, and the delivery queue. Parameters only; every
 * function runs on the caller's connection, inside its transaction when
 * it has one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notif_internal.h"
#include "panthera/ids.h"

rpc_status notif_store_record(db_conn *c, const char *event_id, const notif_rendered *r,
                              int *inserted)
{
	char id[ID_UUID_LEN + 1];
	*inserted = 0;
	rpc_status st = id_uuid4(id);
	if (st != RPC_STATUS_OK)
		return st;
	const char *p[7] = {id,      r->user_id,  r->template, r->subject,
	                    r->body, r->order_id, event_id};
	PGresult *res;
	st = db_exec(c, "notif_record",
	             "INSERT INTO notifications (id, user_id, template, subject, body, order_id,"
	             " event_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"
	             " ON CONFLICT (event_id) DO NOTHING RETURNING id",
	             7, p, &res);
	if (st != RPC_STATUS_OK)
		return st;
	int fresh = PQntuples(res) == 1;
	PQclear(res);
	if (!fresh)
		return RPC_STATUS_OK; /* recorded before: nothing to add, nothing to send */
	const char *q[1] = {id};
	st = db_exec(c, "notif_enqueue", "INSERT INTO deliveries (notification_id) VALUES ($1)", 1,
	             q, NULL);
	if (st == RPC_STATUS_OK)
		*inserted = 1;
	return st;
}

rpc_status notif_store_count(db_conn *c, const char *user_id, long long *total)
{
	const char *p[1] = {user_id};
	int64_t v;
	rpc_status st = db_exec_int64(
	    c, "notif_count", "SELECT count(*) FROM notifications WHERE user_id = $1", 1, p, &v);
	if (st == RPC_STATUS_OK)
		*total = v;
	return st;
}

rpc_status notif_store_list(db_conn *c, const char *user_id, int limit, long long offset,
                            PGresult **rows)
{
	char l[16], o[32];
	snprintf(l, sizeof(l), "%d", limit);
	snprintf(o, sizeof(o), "%lld", offset);
	const char *p[3] = {user_id, l, o};
	return db_exec(c, "notif_list",
	               "SELECT id, user_id, template, subject, body,"
	               " (extract(epoch FROM created_at) * 1000000)::bigint"
	               " FROM notifications WHERE user_id = $1"
	               " ORDER BY seq DESC LIMIT $2::int OFFSET $3::bigint",
	               3, p, rows);
}

rpc_status notif_store_claim(db_conn *c, int limit, uint64_t lease_ms, PGresult **rows)
{
	char l[16], lease[32];
	snprintf(l, sizeof(l), "%d", limit);
	snprintf(lease, sizeof(lease), "%" PRIu64, lease_ms);
	const char *p[2] = {l, lease};
	return db_exec(
	    c, "notif_claim",
	    "WITH due AS (SELECT notification_id FROM deliveries"
	    " WHERE status = 'PENDING' AND next_attempt_at <= now()"
	    " ORDER BY next_attempt_at LIMIT $1::int FOR UPDATE SKIP LOCKED)"
	    " UPDATE deliveries d SET attempts = d.attempts + 1,"
	    " next_attempt_at = now() + $2::bigint * interval '1 millisecond', updated_at = now()"
	    " FROM due, notifications n"
	    " WHERE d.notification_id = due.notification_id AND n.id = d.notification_id"
	    " RETURNING d.notification_id, d.attempts, n.user_id, n.subject, n.body",
	    2, p, rows);
}

rpc_status notif_store_sent(db_conn *c, const char *id, int attempts)
{
	char a[16];
	snprintf(a, sizeof(a), "%d", attempts);
	const char *p[2] = {id, a};
	return db_exec(c, "notif_sent",
	               "UPDATE deliveries SET status = 'SENT', sent_at = now(), last_error = NULL,"
	               " updated_at = now()"
	               " WHERE notification_id = $1 AND attempts = $2::int AND status = 'PENDING'",
	               2, p, NULL);
}

rpc_status notif_store_retry(db_conn *c, const char *id, int attempts, uint64_t delay_ms,
                             const char *error)
{
	char a[16], d[32];
	snprintf(a, sizeof(a), "%d", attempts);
	snprintf(d, sizeof(d), "%" PRIu64, delay_ms);
	const char *p[4] = {id, a, d, error};
	return db_exec(c, "notif_retry",
	               "UPDATE deliveries SET next_attempt_at = now() + $3::bigint * interval"
	               " '1 millisecond', last_error = $4, updated_at = now()"
	               " WHERE notification_id = $1 AND attempts = $2::int AND status = 'PENDING'",
	               4, p, NULL);
}

rpc_status notif_store_give_up(db_conn *c, const char *id, int attempts, const char *error)
{
	char a[16];
	snprintf(a, sizeof(a), "%d", attempts);
	const char *p[3] = {id, a, error};
	return db_exec(
	    c, "notif_give_up",
	    "UPDATE deliveries SET status = 'FAILED', last_error = $3, updated_at = now()"
	    " WHERE notification_id = $1 AND attempts = $2::int AND status = 'PENDING'",
	    3, p, NULL);
}

rpc_status notif_store_skip(db_conn *c, const char *id, int attempts, const char *why)
{
	char a[16];
	snprintf(a, sizeof(a), "%d", attempts);
	const char *p[3] = {id, a, why};
	return db_exec(
	    c, "notif_skip",
	    "UPDATE deliveries SET status = 'SKIPPED', last_error = $3, updated_at = now()"
	    " WHERE notification_id = $1 AND attempts = $2::int AND status = 'PENDING'",
	    3, p, NULL);
}

rpc_status notif_store_put_back(db_conn *c, const char *id, int attempts)
{
	char a[16];
	snprintf(a, sizeof(a), "%d", attempts);
	const char *p[2] = {id, a};
	return db_exec(c, "notif_put_back",
	               "UPDATE deliveries SET attempts = attempts - 1, next_attempt_at = now(),"
	               " updated_at = now()"
	               " WHERE notification_id = $1 AND attempts = $2::int AND status = 'PENDING'",
	               2, p, NULL);
}

rpc_status notif_store_counts(db_conn *c, notifications_counts *out)
{
	PGresult *r;
	rpc_status st = db_exec(c, "notif_counts",
	                        "SELECT count(*) FILTER (WHERE status = 'PENDING'),"
	                        " count(*) FILTER (WHERE status = 'SENT'),"
	                        " count(*) FILTER (WHERE status = 'FAILED'),"
	                        " count(*) FILTER (WHERE status = 'SKIPPED') FROM deliveries",
	                        0, NULL, &r);
	if (st != RPC_STATUS_OK)
		return st;
	out->pending = atol(PQgetvalue(r, 0, 0));
	out->sent = atol(PQgetvalue(r, 0, 1));
	out->given_up = atol(PQgetvalue(r, 0, 2));
	out->skipped = atol(PQgetvalue(r, 0, 3));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status notifications_sweep(notifications_service *svc, long *deleted)
{
	if (deleted != NULL)
		*deleted = 0;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	long sent = 0, failed = 0;
	rpc_status st =
	    db_purge(svc->pool,
	             "DELETE FROM deliveries WHERE notification_id IN (SELECT notification_id"
	             " FROM deliveries WHERE (status = 'SENT' AND sent_at < now() - $1::int *"
	             " interval '1 second') OR (status = 'SKIPPED' AND updated_at < now() -"
	             " $1::int * interval '1 second') LIMIT $2::int)",
	             NOTIFICATIONS_SENT_KEEP_S, &sent);
	if (st == RPC_STATUS_OK)
		st = db_purge(
		    svc->pool,
		    "DELETE FROM deliveries WHERE notification_id IN (SELECT notification_id"
		    " FROM deliveries WHERE status = 'FAILED'"
		    " AND updated_at < now() - $1::int * interval '1 second' LIMIT $2::int)",
		    NOTIFICATIONS_FAILED_KEEP_S, &failed);
	if (deleted != NULL)
		*deleted = sent + failed;
	return st;
}
