/*
 * handlers.c - ReviewService over RPC: who calls (x-caller-id,
 * x-caller-roles), validate the request (each refusal a field violation),
 * ask the catalog, orders and users services what only they know, then
 * run the store's SQL and the review's event in one transaction and build
 * the reply in the call's arena.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "panthera/fieldcheck.h"
#include "panthera/caller.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/text.h"
#include "reviews.h"
#include "reviews_remote.h"
#include "reviews_store.h"

#define RV_MAX_TITLE         200
#define RV_MAX_BODY          10000
#define RV_MAX_PAGE_SIZE     100
#define RV_DEFAULT_PAGE_SIZE 20

/* A string field of a request: protobuf-c gives "" for an absent one, but
 * a hand-built request may hold NULL. */
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
	return rpc_call_error(call, st, "reviews storage: %s", rpc_status_name(st));
}

/* A peer that failed us: transport troubles stay what they are; any other
 * answer is our bug or the peer's, not the caller's. */
static rpc_status peer_failed(rpc_call *call, const char *peer, rpc_status st)
{
	rpc_status out = st;
	if (st != RPC_STATUS_UNAVAILABLE && st != RPC_STATUS_DEADLINE_EXCEEDED &&
	    st != RPC_STATUS_RESOURCE_EXHAUSTED && st != RPC_STATUS_CANCELLED)
		out = RPC_STATUS_INTERNAL;
	log_write(LOG_WARN, rpc_call_metadata(call, "x-request-id"), "reviews.peer",
	          "%s answered %s", peer, rpc_status_name(st));
	return rpc_call_error(call, out, "%s did not answer (%s)", peer, rpc_status_name(st));
}

static rpc_status product_not_found(rpc_call *call, const char *product_id)
{
	rpc_call_set_error_reason(call, "PRODUCT_NOT_FOUND", NULL);
	return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "product %s not found", product_id);
}

static rpc_status review_not_found(rpc_call *call, const char *review_id)
{
	rpc_call_set_error_reason(call, "REVIEW_NOT_FOUND", NULL);
	return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "review %s not found", review_id);
}

/* ---- the caller (panthera/caller.h) ---- */

static rpc_status no_caller(rpc_call *call)
{
	return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
}

/* ---- validation ---- */

static void check_uuid(field_checker *k, const char *field, const char *s)
{
	if (!id_is_uuid(s))
		field_refuse(k, field, "must be a UUID");
}

/* Page and page size of a list request: 0 means 1 and 20. */
static void check_page(field_checker *k, int32_t page_in, int32_t size_in, int32_t *page,
                       int32_t *size)
{
	*page = page_in == 0 ? 1 : page_in;
	*size = size_in == 0 ? RV_DEFAULT_PAGE_SIZE : size_in;
	if (*page < 1)
		field_refuse(k, "page", "must be 1 or more");
	if (*size < 1 || *size > RV_MAX_PAGE_SIZE)
		field_refuse(k, "page_size", "must be between 1 and 100");
}

/* ---- replies ---- */

static char *arena_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

/* Row `row` of a result with the RV_C_* columns into `out`. */
static rpc_status fill_review(rpc_call *call, const PGresult *r, int row,
                              Panthera__Reviews__V1__Review *out)
{
	out->id = arena_strdup(call, PQgetvalue(r, row, RV_C_ID));
	out->product_id = arena_strdup(call, PQgetvalue(r, row, RV_C_PRODUCT_ID));
	out->user_id = arena_strdup(call, PQgetvalue(r, row, RV_C_USER_ID));
	out->author_name = arena_strdup(call, PQgetvalue(r, row, RV_C_AUTHOR_NAME));
	out->rating = (int32_t)strtol(PQgetvalue(r, row, RV_C_RATING), NULL, 10);
	out->title = arena_strdup(call, PQgetvalue(r, row, RV_C_TITLE));
	out->body = arena_strdup(call, PQgetvalue(r, row, RV_C_BODY));
	out->created_at = rpc_call_alloc(call, sizeof(*out->created_at));
	if (out->id == NULL || out->product_id == NULL || out->user_id == NULL ||
	    out->author_name == NULL || out->title == NULL || out->body == NULL ||
	    out->created_at == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	google__protobuf__timestamp__init(out->created_at);
	long long us = strtoll(PQgetvalue(r, row, RV_C_CREATED_US), NULL, 10);
	long long s = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		s--;
		frac += 1000000;
	}
	out->created_at->seconds = s;
	out->created_at->nanos = (int32_t)(frac * 1000);
	return RPC_STATUS_OK;
}

/* ---- ListProductReviews ---- */

typedef struct list_op {
	rpc_call *call;
	const char *product_id;
	int32_t limit;
	int64_t offset, total;
	Panthera__Reviews__V1__ListProductReviewsResponse *resp;
} list_op;

static rpc_status tx_list(db_conn *c, void *arg)
{
	list_op *op = arg;
	PGresult *r;
	op->resp->n_reviews = 0;
	rpc_status st =
	    reviews_store_list(c, op->product_id, op->limit, op->offset, &op->total, &r);
	if (st != RPC_STATUS_OK)
		return st;
	size_t n = (size_t)PQntuples(r);
	if (n == 1 && PQgetisnull(r, 0, RV_C_ID))
		n = 0; /* a page past the end: only the total */
	op->resp->reviews = rpc_call_alloc(op->call, (n + 1) * sizeof(*op->resp->reviews));
	if (op->resp->reviews == NULL)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++) {
		Panthera__Reviews__V1__Review *rv = rpc_call_alloc(op->call, sizeof(*rv));
		if (rv == NULL) {
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
			break;
		}
		panthera__reviews__v1__review__init(rv);
		st = fill_review(op->call, r, (int)i, rv);
		op->resp->reviews[i] = rv;
		op->resp->n_reviews = i + 1;
	}
	PQclear(r);
	if (st != RPC_STATUS_OK)
		op->resp->n_reviews = 0;
	return st;
}

static rpc_status list_product_reviews(rpc_call *call,
                                       const Panthera__Reviews__V1__ListProductReviewsRequest *req,
                                       Panthera__Reviews__V1__ListProductReviewsResponse *resp,
                                       void *user)
{
	reviews_service *svc = user;
	field_checker k = {.call = call};
	const char *product_id = str(req->product_id);
	int32_t page, page_size;
	check_uuid(&k, "product_id", product_id);
	check_page(&k, req->page, req->page_size, &page, &page_size);
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	/* A deleted product's reviews are hidden with it. When the catalog
	 * does not answer, the reviews are listed all the same: a public read
	 * should not go down with another service. */
	st = reviews_remote_get_product(svc->catalog, call, product_id);
	if (st == RPC_STATUS_NOT_FOUND)
		return product_not_found(call, product_id);
	if (st != RPC_STATUS_OK)
		log_write(LOG_WARN, rpc_call_metadata(call, "x-request-id"), "reviews.peer",
		          "CatalogService.GetProduct answered %s: reviews listed unchecked",
		          rpc_status_name(st));
	list_op op = {.call = call,
	              .product_id = product_id,
	              .limit = page_size,
	              .offset = ((int64_t)page - 1) * page_size,
	              .resp = resp};
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_list, &op);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	resp->total = op.total > INT32_MAX ? INT32_MAX : (int32_t)op.total;
	resp->page = page;
	resp->page_size = page_size;
	return RPC_STATUS_OK;
}

/* ---- CreateReview ---- */

typedef struct create_op {
	rpc_call *call;
	reviews_new r;
	Panthera__Reviews__V1__Review *resp;
} create_op;

static rpc_status tx_create(db_conn *c, void *arg)
{
	create_op *op = arg;
	PGresult *row;
	rpc_status st = reviews_store_insert(c, &op->r, &row);
	if (st != RPC_STATUS_OK)
		return st;
	st = reviews_store_publish(c, 1, row);
	if (st == RPC_STATUS_OK)
		st = fill_review(op->call, row, 0, op->resp);
	PQclear(row);
	return st;
}

static rpc_status tx_user_reviewed(db_conn *c, void *arg)
{
	create_op *op = arg;
	int exists;
	rpc_status st = reviews_store_user_reviewed(c, op->r.product_id, op->r.user_id, &exists);
	return st == RPC_STATUS_OK && exists ? RPC_STATUS_ALREADY_EXISTS : st;
}

static rpc_status already_reviewed(rpc_call *call, const char *product_id)
{
	rpc_call_set_error_reason(call, "REVIEW_EXISTS", NULL);
	return rpc_call_error(call, RPC_STATUS_ALREADY_EXISTS,
	                      "you have already reviewed product %s", product_id);
}

static rpc_status create_review(rpc_call *call,
                                const Panthera__Reviews__V1__CreateReviewRequest *req,
                                Panthera__Reviews__V1__Review *resp, void *user)
{
	reviews_service *svc = user;
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return no_caller(call);
	field_checker k = {.call = call};
	create_op op = {.call = call,
	                .r = {.product_id = str(req->product_id),
	                      .user_id = who.id,
	                      .rating = req->rating,
	                      .title = str(req->title),
	                      .body = str(req->body)},
	                .resp = resp};
	check_uuid(&k, "product_id", op.r.product_id);
	if (req->rating < 1 || req->rating > 5)
		field_refuse(&k, "rating", "must be between 1 and 5");
	long n = text_chars(op.r.title, SIZE_MAX, 0);
	if (n < 0)
		field_refuse(&k, "title",
		             "must be valid UTF-8 on one line, without control characters");
	else if (n == 0 || n > RV_MAX_TITLE || text_blank(op.r.title))
		field_refuse(&k, "title", "must be 1 to 200 characters, not blank");
	n = text_chars(op.r.body, SIZE_MAX, TEXT_MULTILINE);
	if (n < 0)
		field_refuse(&k, "body", "must be valid UTF-8 without control characters");
	else if (n > RV_MAX_BODY)
		field_refuse(&k, "body", "must be at most 10000 characters");
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;

	/* the product, then what the caller may do with it */
	st = reviews_remote_get_product(svc->catalog, call, op.r.product_id);
	if (st == RPC_STATUS_NOT_FOUND)
		return product_not_found(call, op.r.product_id);
	if (st != RPC_STATUS_OK)
		return peer_failed(call, "CatalogService", st);
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_user_reviewed, &op);
	if (st == RPC_STATUS_ALREADY_EXISTS)
		return already_reviewed(call, op.r.product_id);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	int purchased;
	st = reviews_remote_has_purchased(svc->orders, call, who.id, op.r.product_id, &purchased);
	if (st != RPC_STATUS_OK)
		return peer_failed(call, "OrderService", st);
	if (!purchased) {
		rpc_call_set_error_reason(call, "NOT_A_BUYER", NULL);
		return rpc_call_error(call, RPC_STATUS_PERMISSION_DENIED,
		                      "only a buyer of product %s may review it", op.r.product_id);
	}
	char *author;
	int active;
	st = reviews_remote_author(svc->users, call, who.id, &author, &active);
	if (st == RPC_STATUS_NOT_FOUND)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED,
		                      "no account for the caller");
	if (st != RPC_STATUS_OK)
		return peer_failed(call, "UserService", st);
	if (!active)
		return rpc_call_error(call, RPC_STATUS_PERMISSION_DENIED,
		                      "the caller's account is deactivated");
	op.r.author_name = author;

	char id[ID_UUID_LEN + 1];
	if ((st = id_uuid4(id)) != RPC_STATUS_OK)
		return db_failed(call, st);
	op.r.id = id;
	/* the unique (product, user) key settles two creates racing past the
	 * check above */
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_create, &op);
	if (st == RPC_STATUS_ALREADY_EXISTS)
		return already_reviewed(call, op.r.product_id);
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

/* ---- DeleteReview ---- */

typedef struct delete_op {
	const char *product_id, *review_id;
	caller who;
} delete_op;

static rpc_status tx_delete(db_conn *c, void *arg)
{
	delete_op *op = arg;
	PGresult *row;
	rpc_status st = reviews_store_lock(c, op->product_id, op->review_id, &row);
	if (st != RPC_STATUS_OK)
		return st;
	/* someone else's review does not exist, as far as the caller knows */
	if (!caller_may_see(&op->who, PQgetvalue(row, 0, RV_C_USER_ID)))
		st = RPC_STATUS_NOT_FOUND;
	if (st == RPC_STATUS_OK)
		st = reviews_store_delete(c, op->review_id);
	if (st == RPC_STATUS_OK)
		st = reviews_store_publish(c, 0, row);
	PQclear(row);
	return st;
}

static rpc_status delete_review(rpc_call *call,
                                const Panthera__Reviews__V1__DeleteReviewRequest *req,
                                Panthera__Reviews__V1__DeleteReviewResponse *resp, void *user)
{
	reviews_service *svc = user;
	(void)resp;
	delete_op op = {.product_id = str(req->product_id), .review_id = str(req->review_id)};
	caller_get(call, &op.who);
	if (op.who.id == NULL)
		return no_caller(call);
	field_checker k = {.call = call};
	check_uuid(&k, "product_id", op.product_id);
	check_uuid(&k, "review_id", op.review_id);
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_delete, &op);
	if (st == RPC_STATUS_NOT_FOUND)
		return review_not_found(call, op.review_id);
	return st == RPC_STATUS_OK ? st : db_failed(call, st);
}

/* ---- the service ---- */

static const panthera_reviews_v1_review_service_handlers handlers = {
    .list_product_reviews = list_product_reviews,
    .create_review = create_review,
    .delete_review = delete_review,
};

rpc_status reviews_service_register(rpc_server *srv, reviews_service *svc)
{
	if (srv == NULL || svc == NULL || svc->pool == NULL || svc->catalog == NULL ||
	    svc->orders == NULL || svc->users == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = reviews_service_init(svc);
	return st == RPC_STATUS_OK
	           ? panthera_reviews_v1_review_service_register(srv, &handlers, svc)
	           : st;
}
