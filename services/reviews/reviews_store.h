/*
 * reviews_store.h - the reviews service's SQL (internal). Every function
 * runs on a connection inside the caller's transaction; every value goes
 * in as a parameter.
 */
#ifndef PANTHERA_REVIEWS_STORE_H
#define PANTHERA_REVIEWS_STORE_H

#include <stdint.h>

#include "panthera/db.h"

/* The columns of a review row in the results below. */
enum {
	RV_C_ID,
	RV_C_PRODUCT_ID,
	RV_C_USER_ID,
	RV_C_AUTHOR_NAME,
	RV_C_RATING,
	RV_C_TITLE,
	RV_C_BODY,
	RV_C_CREATED_US, /* created_at as microseconds since the Unix epoch */
	RV_C_N
};

typedef struct reviews_new {
	const char *id, *product_id, *user_id, *author_name, *title, *body;
	int rating;
} reviews_new;

/* Insert a review; *row (PQclear it) is the stored row. ALREADY_EXISTS
 * when the user already reviewed the product. */
rpc_status reviews_store_insert(db_conn *c, const reviews_new *r, PGresult **row);

/* *exists: whether `user_id` has a review of `product_id`. */
rpc_status reviews_store_user_reviewed(db_conn *c, const char *product_id, const char *user_id,
                                       int *exists);

/* One page of a product's reviews, newest first: rows of RV_C_* columns
 * in *rows (PQclear it), the count over all pages in *total. An empty
 * page is one row whose RV_C_ID is NULL. */
rpc_status reviews_store_list(db_conn *c, const char *product_id, int limit, int64_t offset,
                              int64_t *total, PGresult **rows);

/* The review `review_id` of `product_id`, locked FOR UPDATE, in *row
 * (PQclear it); NOT_FOUND when there is none. */
rpc_status reviews_store_lock(db_conn *c, const char *product_id, const char *review_id,
                              PGresult **row);

/* Delete a review; NOT_FOUND when it is gone. */
rpc_status reviews_store_delete(db_conn *c, const char *review_id);

/* The number of reviews of a product and the sum of their ratings. */
rpc_status reviews_store_summary(db_conn *c, const char *product_id, int64_t *count, int64_t *sum);

/* A ReviewCreated (`created`) or ReviewDeleted event for the review row
 * `row` (RV_C_* columns) into reviews.outbox, in the caller's transaction. */
rpc_status reviews_store_publish(db_conn *c, int created, const PGresult *row);

#endif
