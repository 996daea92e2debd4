/*
 * test_reviews.c - ReviewService through its generated client stubs, over
 * the RPC runtime, on a real PostgreSQL, with the real CatalogService (and
 * the InventoryService it needs) on the same server and test doubles of
 * OrderService.HasPurchased and UserService.BatchGetUsers: listing and
 * paging, creating (buyers only, once, validated, author's name copied),
 * deleting (author or admin), the events of the outbox, the rating
 * consumer keeping the catalog's average and count, a catalog that is
 * down while it runs, redelivery, unknown events, and its thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "catalog.h"
#include "inventory.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/orders/v1/orders.panthera.h"
#include "panthera/rpc/v1/rpc.pb-c.h"
#include "panthera/users/v1/users.panthera.h"
#include "reviews.h"

#define RV(x)  panthera_reviews_v1_review_service_##x
#define CAT(x) panthera_catalog_v1_catalog_service_##x

typedef Panthera__Reviews__V1__Review review;

#define URL_MAIN    "inproc://reviews-test"
#define URL_DOWN    "inproc://reviews-test-catalog-down"
#define URL_NOWHERE "inproc://reviews-test-nowhere"

static pgtest pg;
static db_pool *inv_pool, *cat_pool, *rv_pool;
static inventory_service inv_svc;
static catalog_service cat_svc;
/* svc: every peer on the main server; svc_down: its catalog never answers.
 * Both on the same database: two replicas of one service. */
static reviews_service svc, svc_down;
static rpc_server *srv, *srv_down;
static rpc_channel *ch, *peer_ch, *dead_ch, *down_ch;
static char category[37];

/* ---- test doubles of OrderService and UserService ---- */

#define MAX_FAKES 256

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char user[37], product[37];
} purchases[MAX_FAKES];
static size_t n_purchases;
static struct {
	char id[37], first[64], last[64];
	int deactivated;
} accounts[MAX_FAKES];
static size_t n_accounts;
static int orders_down, users_down;

static rpc_status fake_has_purchased(rpc_call *call,
                                     const Panthera__Orders__V1__HasPurchasedRequest *req,
                                     Panthera__Orders__V1__HasPurchasedResponse *resp, void *user)
{
	(void)user;
	pthread_mutex_lock(&fake_lock);
	int down = orders_down;
	resp->purchased = 0;
	for (size_t i = 0; i < n_purchases; i++) {
		if (strcasecmp(purchases[i].user, req->user_id) == 0 &&
		    strcasecmp(purchases[i].product, req->product_id) == 0)
			resp->purchased = 1;
	}
	pthread_mutex_unlock(&fake_lock);
	if (down)
		return rpc_call_error(call, RPC_STATUS_UNAVAILABLE, "orders database is away");
	return RPC_STATUS_OK;
}

static rpc_status fake_batch_get_users(rpc_call *call,
                                       const Panthera__Users__V1__BatchGetUsersRequest *req,
                                       Panthera__Users__V1__BatchGetUsersResponse *resp, void *user)
{
	(void)user;
	pthread_mutex_lock(&fake_lock);
	if (users_down) {
		pthread_mutex_unlock(&fake_lock);
		return rpc_call_error(call, RPC_STATUS_UNAVAILABLE, "users database is away");
	}
	resp->users = rpc_call_alloc(call, (req->n_user_ids + 1) * sizeof(*resp->users));
	if (resp->users == NULL) {
		pthread_mutex_unlock(&fake_lock);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < req->n_user_ids; i++) {
		for (size_t j = 0; j < n_accounts; j++) {
			if (strcasecmp(accounts[j].id, req->user_ids[i]) != 0)
				continue;
			Panthera__Users__V1__User *u = rpc_call_alloc(call, sizeof(*u));
			if (u == NULL) {
				pthread_mutex_unlock(&fake_lock);
				return RPC_STATUS_RESOURCE_EXHAUSTED;
			}
			panthera__users__v1__user__init(u);
			u->id = accounts[j].id;
			u->first_name = accounts[j].first;
			u->last_name = accounts[j].last;
			u->status = accounts[j].deactivated
			                ? PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED
			                : PANTHERA__USERS__V1__USER_STATUS__ACTIVE;
			resp->users[resp->n_users++] = u;
		}
	}
	pthread_mutex_unlock(&fake_lock);
	return RPC_STATUS_OK;
}

static const panthera_orders_v1_order_service_handlers fake_orders = {.has_purchased =
                                                                          fake_has_purchased};
static const panthera_users_v1_user_service_handlers fake_users = {.batch_get_users =
                                                                       fake_batch_get_users};

/* A new account with a name; its id into id[37]. */
static void new_user(char id[37], const char *first, const char *last, int deactivated)
{
	svctest_new_id(id);
	pthread_mutex_lock(&fake_lock);
	assert_true(n_accounts < MAX_FAKES);
	snprintf(accounts[n_accounts].id, 37, "%s", id);
	snprintf(accounts[n_accounts].first, 64, "%s", first);
	snprintf(accounts[n_accounts].last, 64, "%s", last);
	accounts[n_accounts].deactivated = deactivated;
	n_accounts++;
	pthread_mutex_unlock(&fake_lock);
}

/* `user` has a PAID order with `product`. */
static void buy(const char *user, const char *product)
{
	pthread_mutex_lock(&fake_lock);
	assert_true(n_purchases < MAX_FAKES);
	snprintf(purchases[n_purchases].user, 37, "%s", user);
	snprintf(purchases[n_purchases].product, 37, "%s", product);
	n_purchases++;
	pthread_mutex_unlock(&fake_lock);
}

/* ---- set-up ---- */

static rpc_status serve(rpc_server **s, const char *url, reviews_service *rs, int everything)
{
	rpc_status st = svctest_server(s, 8, 0);
	if (st == RPC_STATUS_OK && everything)
		st = inventory_service_register(*s, &inv_svc);
	if (st == RPC_STATUS_OK && everything)
		st = catalog_service_register(*s, &cat_svc);
	if (st == RPC_STATUS_OK && everything)
		st = panthera_orders_v1_order_service_register(*s, &fake_orders, NULL);
	if (st == RPC_STATUS_OK && everything)
		st = panthera_users_v1_user_service_register(*s, &fake_users, NULL);
	if (st == RPC_STATUS_OK)
		st = reviews_service_register(*s, rs);
	return st == RPC_STATUS_OK ? svctest_start(*s, url, NULL) : st;
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	if (svctest_pool(&inv_pool, pg.url, "inventory", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&cat_pool, pg.url, "catalog", 8, 1) != RPC_STATUS_OK ||
	    svctest_pool(&rv_pool, pg.url, "reviews", 8, 1) != RPC_STATUS_OK)
		return -1;
	/* the services call their peers on the server they all live on */
	if (svctest_channel(&peer_ch, URL_MAIN, 0) != RPC_STATUS_OK ||
	    svctest_channel(&dead_ch, URL_NOWHERE, 100) != RPC_STATUS_OK)
		return -1;
	inv_svc.pool = inv_pool;
	cat_svc = (catalog_service){.pool = cat_pool, .inventory = peer_ch};
	svc = (reviews_service){.pool = rv_pool,
	                        .catalog = peer_ch,
	                        .orders = peer_ch,
	                        .users = peer_ch,
	                        .rating_backoff_ms = 50};
	svc_down = svc;
	svc_down.catalog = dead_ch;
	svc_down.rating_backoff_ms = 1500;
	if (catalog_service_init(&cat_svc) != RPC_STATUS_OK ||
	    serve(&srv, URL_MAIN, &svc, 1) != RPC_STATUS_OK ||
	    serve(&srv_down, URL_DOWN, &svc_down, 0) != RPC_STATUS_OK ||
	    svctest_channel(&ch, URL_MAIN, 0) != RPC_STATUS_OK ||
	    svctest_channel(&down_ch, URL_DOWN, 0) != RPC_STATUS_OK)
		return -1;
	Panthera__Catalog__V1__CreateCategoryRequest req =
	    PANTHERA__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
	req.name = "Reviewed things";
	const Panthera__Catalog__V1__Category *cat;
	rpc_reply *reply;
	if (CAT(create_category)(ch, &req, NULL, &cat, &reply) != RPC_STATUS_OK)
		return -1;
	snprintf(category, sizeof(category), "%s", cat->id);
	rpc_reply_free(reply);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	rpc_channel_close(down_ch);
	rpc_server_destroy(srv);
	rpc_server_destroy(srv_down);
	reviews_service_close(&svc);
	reviews_service_close(&svc_down);
	rpc_channel_close(peer_ch);
	rpc_channel_close(dead_ch);
	db_pool_close(rv_pool);
	db_pool_close(cat_pool);
	db_pool_close(inv_pool);
	pgtest_destroy(&pg);
	return 0;
}

/* ---- helpers ---- */

static int has_violation(const rpc_reply *reply, const char *field)
{
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	if (d == NULL || d->bad_request == NULL)
		return 0;
	for (size_t i = 0; i < d->bad_request->n_field_violations; i++) {
		if (strcmp(d->bad_request->field_violations[i]->field, field) == 0)
			return 1;
	}
	return 0;
}

static size_t n_violations(const rpc_reply *reply)
{
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	return d == NULL || d->bad_request == NULL ? 0 : d->bad_request->n_field_violations;
}

/* A new active product; its id into id[37]. */
static void new_product(char id[37])
{
	static unsigned n;
	char sku[32];
	snprintf(sku, sizeof(sku), "RV-%u", ++n);
	Panthera__Catalog__V1__CreateProductRequest req =
	    PANTHERA__CATALOG__V1__CREATE_PRODUCT_REQUEST__INIT;
	req.sku = sku;
	req.name = "Reviewed lantern";
	req.price = "19.90";
	req.currency = "USD";
	req.category_id = category;
	req.stock = 3;
	const Panthera__Catalog__V1__Product *p;
	rpc_reply *reply;
	assert_status(CAT(create_product)(ch, &req, NULL, &p, &reply), RPC_STATUS_OK);
	snprintf(id, 37, "%s", p->id);
	rpc_reply_free(reply);
}

static void delete_product(const char *id)
{
	Panthera__Catalog__V1__DeleteProductRequest req =
	    PANTHERA__CATALOG__V1__DELETE_PRODUCT_REQUEST__INIT;
	req.product_id = (char *)id;
	rpc_reply *reply;
	assert_status(CAT(delete_product)(ch, &req, NULL, NULL, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
}

/* The catalog's rating of a product, deleted ones included. */
static void rating_of(const char *product, char average[8], int *count)
{
	Panthera__Catalog__V1__BatchGetProductsRequest req =
	    PANTHERA__CATALOG__V1__BATCH_GET_PRODUCTS_REQUEST__INIT;
	char *ids[1] = {(char *)product};
	req.product_ids = ids;
	req.n_product_ids = 1;
	const Panthera__Catalog__V1__BatchGetProductsResponse *resp;
	rpc_reply *reply;
	assert_status(CAT(batch_get_products)(ch, &req, NULL, &resp, &reply), RPC_STATUS_OK);
	assert_int_equal(resp->n_products, 1);
	snprintf(average, 8, "%s", resp->products[0]->rating_average);
	*count = resp->products[0]->rating_count;
	rpc_reply_free(reply);
}

static void assert_rating(const char *product, const char *average, int count)
{
	char got[8];
	int n;
	rating_of(product, got, &n);
	if (strcmp(got, average) != 0 || n != count)
		fail_msg("rating of %s: got %s/%d, want %s/%d", product, got, n, average, count);
}

/* Run the rating consumer until nothing is left to do. */
static void process_all(reviews_service *s)
{
	unsigned n;
	do
		assert_status(reviews_process_events(s, &n), RPC_STATUS_OK);
	while (n > 0);
}

/* Call options naming the caller (NULL: none) and its roles (NULL: none). */
typedef struct as_caller {
	rpc_metadata_entry md[2];
	rpc_call_opts o;
} as_caller;

static const rpc_call_opts *as(as_caller *a, const char *user, const char *roles)
{
	memset(a, 0, sizeof(*a));
	size_t n = 0;
	if (user != NULL)
		a->md[n++] = (rpc_metadata_entry){"x-caller-id", user};
	if (roles != NULL)
		a->md[n++] = (rpc_metadata_entry){"x-caller-roles", roles};
	a->o.metadata = a->md;
	a->o.n_metadata = n;
	return &a->o;
}

static rpc_status create_review_on(rpc_channel *c, const char *user, const char *product,
                                   int rating, const char *title, const char *body,
                                   rpc_reply **reply_out)
{
	Panthera__Reviews__V1__CreateReviewRequest req =
	    PANTHERA__REVIEWS__V1__CREATE_REVIEW_REQUEST__INIT;
	req.product_id = (char *)product;
	req.rating = rating;
	req.title = (char *)title;
	req.body = (char *)body;
	as_caller a;
	rpc_reply *reply;
	rpc_status st = RV(create_review)(c, &req, as(&a, user, "USER"), NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status create_review(const char *user, const char *product, int rating,
                                const char *title, const char *body, rpc_reply **reply_out)
{
	return create_review_on(ch, user, product, rating, title, body, reply_out);
}

/* A review by `user` (who buys the product first); its id into id[37]. */
static void review_ok(const char *user, const char *product, int rating, char id[37])
{
	buy(user, product);
	rpc_reply *reply;
	assert_status(create_review(user, product, rating, "Sturdy", "Kept me warm.", &reply),
	              RPC_STATUS_OK);
	const review *r = RV(create_review_response)(reply);
	if (id != NULL)
		snprintf(id, 37, "%s", r->id);
	rpc_reply_free(reply);
}

static rpc_status delete_review(const char *user, const char *roles, const char *product,
                                const char *review_id, rpc_reply **reply_out)
{
	Panthera__Reviews__V1__DeleteReviewRequest req =
	    PANTHERA__REVIEWS__V1__DELETE_REVIEW_REQUEST__INIT;
	req.product_id = (char *)product;
	req.review_id = (char *)review_id;
	as_caller a;
	rpc_reply *reply;
	rpc_status st = RV(delete_review)(ch, &req, as(&a, user, roles), NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status list_on(rpc_channel *c, const char *product, int page, int page_size,
                          const Panthera__Reviews__V1__ListProductReviewsResponse **resp,
                          rpc_reply **reply)
{
	Panthera__Reviews__V1__ListProductReviewsRequest req =
	    PANTHERA__REVIEWS__V1__LIST_PRODUCT_REVIEWS_REQUEST__INIT;
	req.product_id = (char *)product;
	req.page = page;
	req.page_size = page_size;
	return RV(list_product_reviews)(c, &req, NULL, resp, reply); /* public: no caller */
}

static int total_of(const char *product)
{
	const Panthera__Reviews__V1__ListProductReviewsResponse *resp;
	rpc_reply *reply;
	assert_status(list_on(ch, product, 0, 0, &resp, &reply), RPC_STATUS_OK);
	int total = resp->total;
	rpc_reply_free(reply);
	return total;
}

static long count_sql(const char *sql, const char *param)
{
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(rv_pool, 2000, &c), RPC_STATUS_OK);
	const char *p[1] = {param};
	assert_status(db_exec(c, NULL, sql, param ? 1 : 0, param ? p : NULL, &r), RPC_STATUS_OK);
	long n = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(rv_pool, c);
	return n;
}

/* Publish an event into reviews.outbox in a transaction of its own. */
static void publish_raw(const char *type, const uint8_t *payload, size_t len)
{
	db_conn *c;
	assert_status(db_acquire(rv_pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(ev_publish(c, "reviews", type, "agg", payload, len, NULL), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(rv_pool, c);
}

static void set_rating(const char *product, const char *average, int count)
{
	Panthera__Catalog__V1__SetProductRatingRequest req =
	    PANTHERA__CATALOG__V1__SET_PRODUCT_RATING_REQUEST__INIT;
	req.product_id = (char *)product;
	req.rating_average = (char *)average;
	req.rating_count = count;
	rpc_reply *reply;
	assert_status(CAT(set_product_rating)(ch, &req, NULL, NULL, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *repeat(const char *unit, size_t times)
{
	size_t n = strlen(unit);
	char *s = malloc(n * times + 1);
	assert_non_null(s);
	for (size_t i = 0; i < times; i++)
		memcpy(s + i * n, unit, n);
	s[n * times] = '\0';
	return s;
}

/* ---- tests ---- */

static void test_create_review_and_rating_follow(void **state)
{
	(void)state;
	char product[37], ada[37], bob[37], cy[37];
	new_product(product);
	new_user(ada, "Ada", "Lovelace", 0);
	new_user(bob, "Bob", "Builder", 0);
	new_user(cy, "Cy", "Twombly", 0);
	buy(ada, product);
	rpc_reply *reply;
	assert_status(
	    create_review(ada, product, 5, "Bright and light", "Lit the whole tent.\n", &reply),
	    RPC_STATUS_OK);
	const review *r = RV(create_review_response)(reply);
	assert_true(id_is_uuid(r->id));
	assert_string_equal(r->product_id, product);
	assert_string_equal(r->user_id, ada);
	assert_string_equal(r->author_name, "Ada Lovelace");
	assert_int_equal(r->rating, 5);
	assert_string_equal(r->title, "Bright and light");
	assert_string_equal(r->body, "Lit the whole tent.\n");
	assert_non_null(r->created_at);
	assert_true(r->created_at->seconds > 1700000000);
	assert_true(llabs((long long)r->created_at->seconds - (long long)time(NULL)) < 300);
	rpc_reply_free(reply);

	/* the catalog learns it from the consumer, not before */
	assert_rating(product, "0.0", 0);
	process_all(&svc);
	assert_rating(product, "5.0", 1);
	review_ok(bob, product, 4, NULL);
	process_all(&svc);
	assert_rating(product, "4.5", 2);
	review_ok(cy, product, 4, NULL);
	process_all(&svc);
	assert_rating(product, "4.3", 3); /* 13 / 3 = 4.33 */
	process_all(&svc);                /* nothing new: nothing changes */
	assert_rating(product, "4.3", 3);
}

static void test_average_rounds_half_up(void **state)
{
	(void)state;
	char product[37], u[4][37];
	new_product(product);
	int ratings[4] = {5, 4, 4, 4}; /* 17 / 4 = 4.25 -> 4.3 */
	for (int i = 0; i < 4; i++) {
		new_user(u[i], "Rater", "Four", 0);
		review_ok(u[i], product, ratings[i], NULL);
	}
	process_all(&svc);
	assert_rating(product, "4.3", 4);
}

static void test_list_newest_first_and_pages(void **state)
{
	(void)state;
	char product[37], other[37], ids[5][37];
	new_product(product);
	new_product(other);
	for (int i = 0; i < 5; i++) {
		char u[37];
		new_user(u, "Lister", "Number", 0);
		review_ok(u, product, 1 + i, ids[i]);
	}
	char stranger[37];
	new_user(stranger, "Other", "Product", 0);
	review_ok(stranger, other, 3, NULL);

	const Panthera__Reviews__V1__ListProductReviewsResponse *resp;
	rpc_reply *reply;
	assert_status(list_on(ch, product, 0, 0, &resp, &reply), RPC_STATUS_OK);
	assert_int_equal(resp->total, 5);
	assert_int_equal(resp->page, 1);
	assert_int_equal(resp->page_size, 20);
	assert_int_equal(resp->n_reviews, 5);
	for (int i = 0; i < 5; i++) {
		assert_string_equal(resp->reviews[i]->id, ids[4 - i]); /* newest first */
		assert_string_equal(resp->reviews[i]->product_id, product);
		assert_string_equal(resp->reviews[i]->author_name, "Lister Number");
		assert_int_equal(resp->reviews[i]->rating, 5 - i);
		assert_string_equal(resp->reviews[i]->title, "Sturdy");
		assert_string_equal(resp->reviews[i]->body, "Kept me warm.");
		assert_non_null(resp->reviews[i]->created_at);
	}
	for (int i = 1; i < 5; i++) {
		const Google__Protobuf__Timestamp *a = resp->reviews[i - 1]->created_at,
		                                  *b = resp->reviews[i]->created_at;
		assert_true(a->seconds > b->seconds ||
		            (a->seconds == b->seconds && a->nanos >= b->nanos));
	}
	rpc_reply_free(reply);

	assert_status(list_on(ch, product, 2, 2, &resp, &reply), RPC_STATUS_OK);
	assert_int_equal(resp->total, 5);
	assert_int_equal(resp->page, 2);
	assert_int_equal(resp->page_size, 2);
	assert_int_equal(resp->n_reviews, 2);
	assert_string_equal(resp->reviews[0]->id, ids[2]);
	assert_string_equal(resp->reviews[1]->id, ids[1]);
	rpc_reply_free(reply);
	assert_status(list_on(ch, product, 3, 2, &resp, &reply), RPC_STATUS_OK);
	assert_int_equal(resp->n_reviews, 1);
	assert_string_equal(resp->reviews[0]->id, ids[0]);
	rpc_reply_free(reply);
	/* past the end: no reviews, the total still */
	assert_status(list_on(ch, product, 4, 2, &resp, &reply), RPC_STATUS_OK);
	assert_int_equal(resp->n_reviews, 0);
	assert_int_equal(resp->total, 5);
	rpc_reply_free(reply);
	assert_status(list_on(ch, product, 2147483647, 100, &resp, &reply), RPC_STATUS_OK);
	assert_int_equal(resp->n_reviews, 0);
	assert_int_equal(resp->total, 5);
	rpc_reply_free(reply);
	/* a product without reviews */
	char quiet[37];
	new_product(quiet);
	assert_int_equal(total_of(quiet), 0);
	/* the id in any case */
	char upper[37];
	snprintf(upper, sizeof(upper), "%s", product);
	for (char *p = upper; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
	assert_int_equal(total_of(upper), 5);
}

static void test_list_refusals(void **state)
{
	(void)state;
	const Panthera__Reviews__V1__ListProductReviewsResponse *resp;
	rpc_reply *reply;
	assert_status(list_on(ch, "not-a-uuid", 0, 0, &resp, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "product_id"));
	assert_null(resp);
	rpc_reply_free(reply);
	char product[37];
	new_product(product);
	assert_status(list_on(ch, product, -1, 101, &resp, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "page"));
	assert_true(has_violation(reply, "page_size"));
	assert_int_equal(n_violations(reply), 2);
	rpc_reply_free(reply);
	assert_status(list_on(ch, product, 1, -5, &resp, &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "page_size"));
	rpc_reply_free(reply);
	assert_status(list_on(ch, product, 1, 100, &resp, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);

	/* unknown, and deleted (its reviews are hidden with it) */
	char unknown[37];
	svctest_new_id(unknown);
	assert_status(list_on(ch, unknown, 0, 0, &resp, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	char u[37];
	new_user(u, "Gone", "Product", 0);
	review_ok(u, product, 2, NULL);
	delete_product(product);
	assert_status(list_on(ch, product, 0, 0, &resp, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
}

static void test_list_while_catalog_down(void **state)
{
	(void)state;
	char product[37], u[37];
	new_product(product);
	new_user(u, "Still", "Listed", 0);
	review_ok(u, product, 3, NULL);
	/* the replica whose catalog never answers still lists */
	const Panthera__Reviews__V1__ListProductReviewsResponse *resp;
	rpc_reply *reply;
	assert_status(list_on(down_ch, product, 0, 0, &resp, &reply), RPC_STATUS_OK);
	assert_int_equal(resp->total, 1);
	assert_string_equal(resp->reviews[0]->author_name, "Still Listed");
	rpc_reply_free(reply);
	/* but it cannot tell whether a product exists, so it creates nothing */
	char v[37];
	new_user(v, "Not", "Now", 0);
	buy(v, product);
	assert_status(create_review_on(down_ch, v, product, 4, "Later", "", &reply),
	              RPC_STATUS_UNAVAILABLE);
	rpc_reply_free(reply);
	assert_int_equal(total_of(product), 1);
}

static void test_create_validation(void **state)
{
	(void)state;
	char product[37], u[37];
	new_product(product);
	new_user(u, "Val", "Idator", 0);
	buy(u, product);
	rpc_reply *reply;
	char *long_title = repeat("a", 201), *long_body = repeat("b", 10001);

	assert_status(create_review(u, product, 0, "ok", "", &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "rating"));
	assert_int_equal(n_violations(reply), 1);
	rpc_reply_free(reply);
	assert_status(create_review(u, product, 6, "ok", "", NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(create_review(u, product, -1, "ok", "", NULL), RPC_STATUS_INVALID_ARGUMENT);

	const char *bad_titles[] = {"",
	                            "   ",
	                            "two\nlines",
	                            "bell\a",
	                            "bad \xff utf-8",
	                            "overlong \xc0\xaf",
	                            "surrogate \xed\xa0\x80",
	                            long_title};
	for (size_t i = 0; i < sizeof(bad_titles) / sizeof(bad_titles[0]); i++) {
		assert_status(create_review(u, product, 3, bad_titles[i], "", &reply),
		              RPC_STATUS_INVALID_ARGUMENT);
		if (!has_violation(reply, "title"))
			fail_msg("title %zu passed", i);
		rpc_reply_free(reply);
	}
	const char *bad_bodies[] = {"nul\x01", "del\x7f", "cut \xe2\x82", long_body};
	for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		assert_status(create_review(u, product, 3, "ok", bad_bodies[i], &reply),
		              RPC_STATUS_INVALID_ARGUMENT);
		if (!has_violation(reply, "body"))
			fail_msg("body %zu passed", i);
		rpc_reply_free(reply);
	}
	/* every problem at once */
	assert_status(create_review(u, "nope", 9, "", long_body, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "product_id"));
	assert_true(has_violation(reply, "rating"));
	assert_true(has_violation(reply, "title"));
	assert_true(has_violation(reply, "body"));
	assert_int_equal(n_violations(reply), 4);
	assert_non_null(strstr(rpc_reply_message(reply), "and 3 more"));
	rpc_reply_free(reply);
	assert_int_equal(total_of(product), 0);
	free(long_title);
	free(long_body);

	/* the limits themselves pass: 200 two-byte characters, 10000 of body */
	char *title = repeat("\xc3\xa9", 200), *body = repeat("x\n", 5000);
	assert_status(create_review(u, product, 1, title, body, &reply), RPC_STATUS_OK);
	const review *r = RV(create_review_response)(reply);
	assert_string_equal(r->title, title);
	assert_string_equal(r->body, body);
	assert_int_equal(r->rating, 1);
	rpc_reply_free(reply);
	free(title);
	free(body);
	/* an empty body is fine */
	char w[37];
	new_user(w, "Terse", "", 0);
	buy(w, product);
	assert_status(create_review(w, product, 5, "Good", "", &reply), RPC_STATUS_OK);
	assert_string_equal(RV(create_review_response)(reply)->body, "");
	assert_string_equal(RV(create_review_response)(reply)->author_name, "Terse");
	rpc_reply_free(reply);
}

static void test_create_refusals(void **state)
{
	(void)state;
	char product[37], u[37];
	new_product(product);
	new_user(u, "Re", "Fused", 0);
	rpc_reply *reply;

	/* no caller, or one that is not a UUID */
	assert_status(create_review(NULL, product, 4, "Nice", "", &reply),
	              RPC_STATUS_UNAUTHENTICATED);
	rpc_reply_free(reply);
	assert_status(create_review("admin", product, 4, "Nice", "", NULL),
	              RPC_STATUS_UNAUTHENTICATED);

	/* not a buyer */
	assert_status(create_review(u, product, 4, "Nice", "", &reply),
	              RPC_STATUS_PERMISSION_DENIED);
	assert_string_equal(rpc_reply_error_reason(reply), "NOT_A_BUYER");
	rpc_reply_free(reply);
	/* a buyer of another product is not a buyer of this one */
	char other[37];
	new_product(other);
	buy(u, other);
	assert_status(create_review(u, product, 4, "Nice", "", NULL), RPC_STATUS_PERMISSION_DENIED);

	/* unknown and deleted products */
	char unknown[37];
	svctest_new_id(unknown);
	buy(u, unknown);
	assert_status(create_review(u, unknown, 4, "Nice", "", &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);
	char gone[37];
	new_product(gone);
	buy(u, gone);
	delete_product(gone);
	assert_status(create_review(u, gone, 4, "Nice", "", &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "PRODUCT_NOT_FOUND");
	rpc_reply_free(reply);

	/* once per user and product, whatever the case of the caller's id */
	buy(u, product);
	assert_status(create_review(u, product, 4, "Nice", "", NULL), RPC_STATUS_OK);
	assert_status(create_review(u, product, 2, "Changed my mind", "", &reply),
	              RPC_STATUS_ALREADY_EXISTS);
	assert_string_equal(rpc_reply_error_reason(reply), "REVIEW_EXISTS");
	rpc_reply_free(reply);
	char upper[37];
	snprintf(upper, sizeof(upper), "%s", u);
	for (char *p = upper; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
	assert_status(create_review(upper, product, 2, "Again", "", NULL),
	              RPC_STATUS_ALREADY_EXISTS);
	assert_int_equal(total_of(product), 1);

	/* accounts: unknown, deactivated */
	char ghost[37], left[37];
	svctest_new_id(ghost);
	buy(ghost, product);
	assert_status(create_review(ghost, product, 4, "Boo", "", NULL),
	              RPC_STATUS_UNAUTHENTICATED);
	new_user(left, "Left", "Already", 1);
	buy(left, product);
	assert_status(create_review(left, product, 4, "Bye", "", NULL),
	              RPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(total_of(product), 1);
}

static void test_create_when_peers_fail(void **state)
{
	(void)state;
	char product[37], u[37];
	new_product(product);
	new_user(u, "Peer", "Less", 0);
	buy(u, product);
	rpc_reply *reply;
	pthread_mutex_lock(&fake_lock);
	orders_down = 1;
	pthread_mutex_unlock(&fake_lock);
	assert_status(create_review(u, product, 4, "Nice", "", &reply), RPC_STATUS_UNAVAILABLE);
	assert_non_null(strstr(rpc_reply_message(reply), "OrderService"));
	rpc_reply_free(reply);
	pthread_mutex_lock(&fake_lock);
	orders_down = 0;
	users_down = 1;
	pthread_mutex_unlock(&fake_lock);
	assert_status(create_review(u, product, 4, "Nice", "", &reply), RPC_STATUS_UNAVAILABLE);
	assert_non_null(strstr(rpc_reply_message(reply), "UserService"));
	rpc_reply_free(reply);
	pthread_mutex_lock(&fake_lock);
	users_down = 0;
	pthread_mutex_unlock(&fake_lock);
	assert_int_equal(total_of(product), 0);
	/* all well again */
	assert_status(create_review(u, product, 4, "Nice", "", NULL), RPC_STATUS_OK);
}

static void test_delete_review(void **state)
{
	(void)state;
	char product[37], author[37], other[37], admin[37], r1[37], r2[37];
	new_product(product);
	new_user(author, "Au", "Thor", 0);
	new_user(other, "Oth", "Er", 0);
	new_user(admin, "Mod", "Erator", 0);
	review_ok(author, product, 5, r1);
	review_ok(other, product, 1, r2);
	process_all(&svc);
	assert_rating(product, "3.0", 2);
	rpc_reply *reply;

	/* refusals */
	assert_status(delete_review(NULL, NULL, product, r1, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(delete_review(NULL, "ADMIN", product, r1, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(delete_review(author, NULL, "x", "y", &reply), RPC_STATUS_INVALID_ARGUMENT);
	assert_true(has_violation(reply, "product_id"));
	assert_true(has_violation(reply, "review_id"));
	rpc_reply_free(reply);
	/* someone else's review does not exist for the caller */
	assert_status(delete_review(other, "USER", product, r1, &reply), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(reply), "REVIEW_NOT_FOUND");
	rpc_reply_free(reply);
	/* the review under another product is not found either */
	char elsewhere[37];
	new_product(elsewhere);
	assert_status(delete_review(author, "USER", elsewhere, r1, NULL), RPC_STATUS_NOT_FOUND);
	char unknown[37];
	svctest_new_id(unknown);
	assert_status(delete_review(author, "USER", product, unknown, NULL), RPC_STATUS_NOT_FOUND);
	assert_int_equal(total_of(product), 2);

	/* the author */
	assert_status(delete_review(author, "USER", product, r1, NULL), RPC_STATUS_OK);
	assert_int_equal(total_of(product), 1);
	assert_status(delete_review(author, "USER", product, r1, NULL), RPC_STATUS_NOT_FOUND);
	process_all(&svc);
	assert_rating(product, "1.0", 1);
	/* an admin, on anyone's review */
	assert_status(delete_review(admin, "USER, ADMIN", product, r2, NULL), RPC_STATUS_OK);
	assert_int_equal(total_of(product), 0);
	process_all(&svc);
	assert_rating(product, "0.0", 0);
	/* the author may review again once the review is gone */
	review_ok(author, product, 4, NULL);
	process_all(&svc);
	assert_rating(product, "4.0", 1);
}

/* The outbox rows of one review, oldest first: type and payload. */
static PGresult *events_of(db_conn **c, const char *review_id)
{
	PGresult *r;
	assert_status(db_acquire(rv_pool, 2000, c), RPC_STATUS_OK);
	const char *p[1] = {review_id};
	assert_status(db_exec(*c, NULL,
	                      "SELECT type, encode(payload, 'hex') FROM reviews.outbox"
	                      " WHERE aggregate_id = $1 ORDER BY seq",
	                      1, p, &r),
	              RPC_STATUS_OK);
	return r;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void test_events_in_outbox(void **state)
{
	(void)state;
	char product[37], u[37], id[37];
	new_product(product);
	new_user(u, "Event", "Ful", 0);
	long before = count_sql("SELECT count(*) FROM reviews.outbox", NULL);
	/* refused calls write nothing */
	assert_status(create_review(u, product, 3, "Not yet", "", NULL),
	              RPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(count_sql("SELECT count(*) FROM reviews.outbox", NULL), before);
	review_ok(u, product, 3, id);
	assert_status(delete_review(u, NULL, product, id, NULL), RPC_STATUS_OK);
	assert_status(delete_review(u, NULL, product, id, NULL), RPC_STATUS_NOT_FOUND);
	assert_int_equal(count_sql("SELECT count(*) FROM reviews.outbox", NULL), before + 2);

	db_conn *c;
	PGresult *r = events_of(&c, id);
	assert_int_equal(PQntuples(r), 2);
	uint8_t buf[512];
	assert_string_equal(PQgetvalue(r, 0, 0), "panthera.events.v1.ReviewCreated");
	size_t n = unhex(PQgetvalue(r, 0, 1), buf, sizeof(buf));
	Panthera__Events__V1__ReviewCreated *made =
	    panthera__events__v1__review_created__unpack(NULL, n, buf);
	assert_non_null(made);
	assert_string_equal(made->review_id, id);
	assert_string_equal(made->product_id, product);
	assert_string_equal(made->user_id, u);
	assert_int_equal(made->rating, 3);
	panthera__events__v1__review_created__free_unpacked(made, NULL);
	assert_string_equal(PQgetvalue(r, 1, 0), "panthera.events.v1.ReviewDeleted");
	n = unhex(PQgetvalue(r, 1, 1), buf, sizeof(buf));
	Panthera__Events__V1__ReviewDeleted *gone =
	    panthera__events__v1__review_deleted__unpack(NULL, n, buf);
	assert_non_null(gone);
	assert_string_equal(gone->review_id, id);
	assert_string_equal(gone->product_id, product);
	assert_string_equal(gone->user_id, u);
	assert_int_equal(gone->rating, 3);
	panthera__events__v1__review_deleted__free_unpacked(gone, NULL);
	PQclear(r);
	db_release(rv_pool, c);
}

static void test_rating_sync_survives_catalog_outage(void **state)
{
	(void)state;
	char product[37], u[37];
	new_product(product);
	new_user(u, "Patient", "Rater", 0);
	process_all(&svc); /* nothing else pending */
	review_ok(u, product, 2, NULL);

	/* the replica whose catalog is down takes the event and fails */
	unsigned n;
	assert_status(reviews_process_events(&svc_down, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	assert_rating(product, "0.0", 0);
	assert_int_equal(count_sql("SELECT count(*) FROM reviews.event_attempts"
	                           " WHERE consumer = $1",
	                           REVIEWS_RATING_CONSUMER),
	                 1);
	/* its retry waits for the backoff (1.5 s from the start of the failed
	 * transaction), then the working replica applies it */
	assert_status(reviews_process_events(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 0);
	uint64_t deadline = now_ms() + 5000;
	for (n = 0; n == 0 && now_ms() < deadline;) {
		assert_status(reviews_process_events(&svc, &n), RPC_STATUS_OK);
		if (n == 0) {
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	assert_true(n > 0);
	process_all(&svc);
	assert_rating(product, "2.0", 1);
	assert_int_equal(count_sql("SELECT count(*) FROM reviews.event_attempts", NULL), 0);
	long parked;
	assert_status(ev_dead_letter_count(rv_pool, "reviews", REVIEWS_RATING_CONSUMER, &parked),
	              RPC_STATUS_OK);
	assert_int_equal(parked, 0);
}

static void test_rating_sync_redelivery_and_strangers(void **state)
{
	(void)state;
	char product[37], u[37], v[37];
	new_product(product);
	new_user(u, "Twice", "Told", 0);
	new_user(v, "Also", "Told", 0);
	review_ok(u, product, 5, NULL);
	review_ok(v, product, 2, NULL);
	process_all(&svc);
	assert_rating(product, "3.5", 2);

	/* the catalog drifted (a lost write, say); an old event delivered
	 * again sets what is true now */
	set_rating(product, "1.0", 7);
	Panthera__Events__V1__ReviewCreated ev = PANTHERA__EVENTS__V1__REVIEW_CREATED__INIT;
	char rid[37];
	svctest_new_id(rid);
	ev.review_id = rid;
	ev.product_id = product;
	ev.user_id = u;
	ev.rating = 5;
	uint8_t buf[256];
	size_t len = panthera__events__v1__review_created__pack(&ev, buf);
	publish_raw("panthera.events.v1.ReviewCreated", buf, len);
	unsigned n;
	assert_status(reviews_process_events(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 1);
	assert_rating(product, "3.5", 2);

	/* types it does not know, payloads that do not decode, products the
	 * catalog never had: taken, and nothing is parked */
	publish_raw("panthera.events.v1.SomethingNew", (const uint8_t *)"\x0a\x01x", 3);
	publish_raw("panthera.events.v1.ReviewDeleted", (const uint8_t *)"\xff\xff\xff", 3);
	ev.product_id = "not-a-product";
	len = panthera__events__v1__review_created__pack(&ev, buf);
	publish_raw("panthera.events.v1.ReviewCreated", buf, len);
	char unknown[37];
	svctest_new_id(unknown);
	ev.product_id = unknown;
	len = panthera__events__v1__review_created__pack(&ev, buf);
	publish_raw("panthera.events.v1.ReviewCreated", buf, len);
	assert_status(reviews_process_events(&svc, &n), RPC_STATUS_OK);
	assert_int_equal(n, 4);
	long parked;
	assert_status(ev_dead_letter_count(rv_pool, "reviews", REVIEWS_RATING_CONSUMER, &parked),
	              RPC_STATUS_OK);
	assert_int_equal(parked, 0);
	assert_rating(product, "3.5", 2);

	/* a deleted product keeps its rating current too */
	char w[37];
	new_user(w, "Late", "Comer", 0);
	review_ok(w, product, 5, NULL);
	delete_product(product);
	process_all(&svc);
	assert_rating(product, "4.0", 3);
}

static void test_background_thread(void **state)
{
	(void)state;
	char product[37], u[37];
	new_product(product);
	new_user(u, "Back", "Ground", 0);
	assert_status(reviews_start(&svc), RPC_STATUS_OK);
	assert_status(reviews_start(&svc), RPC_STATUS_FAILED_PRECONDITION);
	unsigned n = 99;
	assert_status(reviews_process_events(&svc, &n), RPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(n, 0);
	review_ok(u, product, 4, NULL);
	/* woken by the outbox's NOTIFY: well within the deadline */
	uint64_t deadline = now_ms() + 5000;
	char avg[8];
	int count = 0;
	while (count == 0 && now_ms() < deadline) {
		rating_of(product, avg, &count);
		if (count == 0) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	assert_rating(product, "4.0", 1);
	uint64_t t0 = now_ms();
	reviews_stop(&svc);
	assert_true(now_ms() - t0 < 1800);
	reviews_stop(&svc); /* harmless */
	process_all(&svc);  /* synchronous again */
	/* and it starts again */
	assert_status(reviews_start(&svc), RPC_STATUS_OK);
	reviews_stop(&svc);
}

static void test_set_up_refusals(void **state)
{
	(void)state;
	reviews_service bare = {0};
	unsigned n = 7;
	assert_status(reviews_process_events(&bare, &n), RPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(n, 0);
	assert_status(reviews_start(&bare), RPC_STATUS_FAILED_PRECONDITION);
	reviews_stop(&bare);
	assert_null(reviews_rating_consumer(&bare));
	assert_status(reviews_service_init(&bare), RPC_STATUS_INVALID_ARGUMENT);
	rpc_server *s;
	assert_status(rpc_server_create(&s, NULL), RPC_STATUS_OK);
	reviews_service no_orders = {.pool = rv_pool, .catalog = peer_ch, .users = peer_ch};
	assert_status(reviews_service_register(s, &no_orders), RPC_STATUS_INVALID_ARGUMENT);
	rpc_server_destroy(s);
	reviews_service_close(&bare);
	reviews_service_close(NULL);
	assert_non_null(reviews_rating_consumer(&svc));
	assert_string_equal(ev_consumer_name(reviews_rating_consumer(&svc)),
	                    REVIEWS_RATING_CONSUMER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_review_and_rating_follow),
	    cmocka_unit_test(test_average_rounds_half_up),
	    cmocka_unit_test(test_list_newest_first_and_pages),
	    cmocka_unit_test(test_list_refusals),
	    cmocka_unit_test(test_list_while_catalog_down),
	    cmocka_unit_test(test_create_validation),
	    cmocka_unit_test(test_create_refusals),
	    cmocka_unit_test(test_create_when_peers_fail),
	    cmocka_unit_test(test_delete_review),
	    cmocka_unit_test(test_events_in_outbox),
	    cmocka_unit_test(test_rating_sync_survives_catalog_outage),
	    cmocka_unit_test(test_rating_sync_redelivery_and_strangers),
	    cmocka_unit_test(test_background_thread),
	    cmocka_unit_test(test_set_up_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
