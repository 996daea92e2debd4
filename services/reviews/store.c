/*
 * store.c - the reviews service's SQL; see reviews_store.h. Parameters
 * only; the schema is the pool's search_path, except for the outbox,
 * which ev_publish() names itself.
 */
#include "reviews_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "reviews.h"

/* The RV_C_* columns, in order. */
#define RV_COLUMNS                                                                          \
	"id::text, product_id::text, user_id::text, author_name, rating::int, title, body," \
	" (extract(epoch FROM created_at) * 1000000)::bigint"

rpc_status reviews_store_insert(db_conn *c, const reviews_new *r, PGresult **row)
{
	char rating[16];
	snprintf(rating, sizeof(rating), "%d", r->rating);
	const char *p[7] = {r->id,  r->product_id, r->user_id, r->author_name,
	                    rating, r->title,      r->body};
	return db_exec(
	    c, "rv_insert",
	    "INSERT INTO reviews (id, product_id, user_id, author_name, rating, title, body)"
	    " VALUES ($1, $2, $3, $4, $5::smallint, $6, $7) RETURNING " RV_COLUMNS,
	    7, p, row);
}

rpc_status reviews_store_user_reviewed(db_conn *c, const char *product_id, const char *user_id,
                                       int *exists)
{
	const char *p[2] = {product_id, user_id};
	PGresult *r;
	*exists = 0;
	rpc_status st =
	    db_exec(c, "rv_user_reviewed",
	            "SELECT 1 FROM reviews WHERE product_id = $1 AND user_id = $2", 2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	*exists = PQntuples(r) > 0;
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status reviews_store_list(db_conn *c, const char *product_id, int limit, int64_t offset,
                              int64_t *total, PGresult **rows)
{
	char l[16], o[32];
	snprintf(l, sizeof(l), "%d", limit);
	snprintf(o, sizeof(o), "%" PRId64, offset);
	const char *p[3] = {product_id, l, o};
	PGresult *r;
	*rows = NULL;
	*total = 0;
	/* the count and the page from one statement, hence one snapshot */
	rpc_status st =
	    db_exec(c, "rv_list",
	            "WITH page AS (SELECT * FROM reviews WHERE product_id = $1"
	            " ORDER BY created_at DESC, id DESC LIMIT $2::int OFFSET $3::bigint),"
	            " total AS (SELECT count(*) AS n FROM reviews WHERE product_id = $1)"
	            " SELECT " RV_COLUMNS ", total.n FROM total LEFT JOIN page ON true"
	            " ORDER BY page.created_at DESC NULLS LAST, page.id DESC",
	            3, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	/* one row at least (the total's); no review in it when the page is empty */
	if (PQntuples(r) < 1) {
		PQclear(r);
		return RPC_STATUS_INTERNAL;
	}
	*total = strtoll(PQgetvalue(r, 0, RV_C_N), NULL, 10);
	*rows = r;
	return RPC_STATUS_OK;
}

rpc_status reviews_store_lock(db_conn *c, const char *product_id, const char *review_id,
                              PGresult **row)
{
	const char *p[2] = {review_id, product_id};
	return db_exec_row(c, "rv_lock",
	                   "SELECT " RV_COLUMNS " FROM reviews WHERE id = $1 AND product_id = $2"
	                   " FOR UPDATE",
	                   2, p, row);
}

rpc_status reviews_store_delete(db_conn *c, const char *review_id)
{
	const char *p[1] = {review_id};
	PGresult *r;
	rpc_status st = db_exec(c, "rv_delete", "DELETE FROM reviews WHERE id = $1", 1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int gone = strcmp(PQcmdTuples(r), "1") != 0;
	PQclear(r);
	return gone ? RPC_STATUS_NOT_FOUND : RPC_STATUS_OK;
}

rpc_status reviews_store_summary(db_conn *c, const char *product_id, int64_t *count, int64_t *sum)
{
	const char *p[1] = {product_id};
	PGresult *r;
	*count = *sum = 0;
	rpc_status st =
	    db_exec(c, "rv_summary",
	            "SELECT count(*), coalesce(sum(rating), 0) FROM reviews WHERE product_id = $1",
	            1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	*count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	*sum = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status reviews_store_publish(db_conn *c, int created, const PGresult *row)
{
	/* ReviewCreated and ReviewDeleted carry the same fields */
	Panthera__Events__V1__ReviewCreated made = PANTHERA__EVENTS__V1__REVIEW_CREATED__INIT;
	Panthera__Events__V1__ReviewDeleted gone = PANTHERA__EVENTS__V1__REVIEW_DELETED__INIT;
	char *review_id = PQgetvalue(row, 0, RV_C_ID);
	char *product_id = PQgetvalue(row, 0, RV_C_PRODUCT_ID);
	char *user_id = PQgetvalue(row, 0, RV_C_USER_ID);
	int rating = atoi(PQgetvalue(row, 0, RV_C_RATING));
	const ProtobufCMessage *msg;
	const char *type;
	if (created) {
		made.review_id = review_id;
		made.product_id = product_id;
		made.user_id = user_id;
		made.rating = rating;
		msg = &made.base;
		type = "panthera.events.v1.ReviewCreated";
	} else {
		gone.review_id = review_id;
		gone.product_id = product_id;
		gone.user_id = user_id;
		gone.rating = rating;
		msg = &gone.base;
		type = "panthera.events.v1.ReviewDeleted";
	}
	uint8_t buf[256]; /* three UUIDs and a varint */
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (len > sizeof(buf))
		return RPC_STATUS_INTERNAL;
	protobuf_c_message_pack(msg, buf);
	return ev_publish(c, REVIEWS_SCHEMA, type, review_id, buf, len, NULL);
}
