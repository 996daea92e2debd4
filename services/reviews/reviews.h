/*
 * reviews.h - the reviews service: users' reviews of products, and the
 * products' rating summary in the catalog.
 *
 * ListProductReviews is public and pages a product's reviews, newest
 * first. CreateReview reviews a product as the caller (x-caller-id): only
 * a verified buyer (OrderService.HasPurchased) of an active product
 * (CatalogService.GetProduct), once per user and product; the author's
 * name is copied from the account (UserService.BatchGetUsers) when the
 * review is written. DeleteReview is for the author and for admins
 * (x-caller-roles holding ADMIN); anyone else gets NOT_FOUND.
 *
 * Every change writes a panthera.events.v1.ReviewCreated or ReviewDeleted
 * event to reviews.outbox in its own transaction. The consumer
 * "reviews.rating_sync" reads that outbox, recomputes the product's
 * average and count from the reviews table and stores them with
 * CatalogService.SetProductRating: absolute values, so a redelivered event
 * is harmless, and a catalog that does not answer is retried with the
 * event log's backoff. The catalog's rating therefore follows a change
 * once the consumer has run (within a second with reviews_start()).
 *
 * Thread-safety: the service object is shared by the RPC worker threads
 * and the consumer thread; its fields must not change once it serves.
 */
#ifndef PANTHERA_REVIEWS_H
#define PANTHERA_REVIEWS_H

#include <stdint.h>

#include "panthera/db.h"
#include "panthera/events.h"
#include "panthera/reviews/v1/reviews.panthera.h"

/* The schema of the reviews' tables, of their outbox, and of the rating
 * consumer's cursor, processed ids and dead letters. */
#define REVIEWS_SCHEMA "reviews"

/* The name of the consumer that keeps the catalog's ratings. */
#define REVIEWS_RATING_CONSUMER "reviews.rating_sync"

typedef struct reviews_state reviews_state;

typedef struct reviews_service {
	/* A pool whose search_path is REVIEWS_SCHEMA, on a database migrated
	 * with services/reviews/migrations (db_migrate(pool, "reviews", dir)).
	 * The consumer reads the outbox and writes its bookkeeping here too. */
	db_pool *pool;
	/* Channels to CatalogService (GetProduct, SetProductRating),
	 * OrderService (HasPurchased) and UserService (BatchGetUsers). All
	 * required. */
	rpc_channel *catalog;
	rpc_channel *orders;
	rpc_channel *users;
	/* Attempts of the rating consumer on one event before it is parked in
	 * reviews.dead_letters; 0: 20. With the backoff below (doubling, at
	 * most 60 s) the default rides out a catalog outage of some 14
	 * minutes. */
	unsigned rating_max_attempts;
	/* First retry delay of the rating consumer, ms; 0: 500. */
	uint32_t rating_backoff_ms;
	/* Private: set by reviews_service_init(), freed by
	 * reviews_service_close(). Leave NULL. */
	reviews_state *state;
} reviews_service;

/*
 * Prepare the service after db_migrate(): create reviews.outbox
 * (ev_outbox_setup) and open the rating consumer (its tables and cursor).
 * Does nothing when already done. INVALID_ARGUMENT without a pool or a
 * catalog channel; RESOURCE_EXHAUSTED without memory; otherwise the status
 * of the database. Not thread-safe: call it once, at start.
 */
rpc_status reviews_service_init(reviews_service *svc);

/*
 * Serve ReviewService on `srv` with `svc` (which must outlive the server).
 * Calls reviews_service_init() when it has not run. INVALID_ARGUMENT when
 * a pool or a channel is missing.
 */
rpc_status reviews_service_register(rpc_server *srv, reviews_service *svc);

/*
 * Run one batch of the rating consumer: up to 64 events of reviews.outbox,
 * each in the consumer's transaction. *handled (may be NULL) gets the
 * number of events applied or parked (0 on error, and when the events
 * wait for a retry). FAILED_PRECONDITION before reviews_service_init() or
 * while reviews_start()'s thread runs (one thread per consumer); otherwise
 * the status of the event log (a failing SetProductRating is not an error
 * here: the event is retried later).
 */
rpc_status reviews_process_events(reviews_service *svc, unsigned *handled);

/*
 * Start a thread that runs reviews_process_events() in a loop, waiting up
 * to 1 s for a NOTIFY of the outbox when nothing was ready (1 s after an
 * error). FAILED_PRECONDITION before reviews_service_init() or when
 * already started; INTERNAL when no thread could be created.
 */
rpc_status reviews_start(reviews_service *svc);

/* Stop the thread of reviews_start() and wait for it: returns within
 * about a second. Harmless when not started. */
void reviews_stop(reviews_service *svc);

/* The rating consumer (for admin_add_consumer and dead-letter replay), or
 * NULL before reviews_service_init(). Owned by the service. */
ev_consumer *reviews_rating_consumer(reviews_service *svc);

/* Stop the thread, close the consumer and free the private state; the
 * pool and the channels stay the caller's. Call after the server that
 * serves `svc` is destroyed. NULL and a second call are harmless. */
void reviews_service_close(reviews_service *svc);

#endif /* PANTHERA_REVIEWS_H */
