/*
 * remote.c - the reviews service's calls to the catalog, orders and users
 * services; see reviews_remote.h.
 */
#include "reviews_remote.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/orders/v1/orders.panthera.h"
#include "panthera/users/v1/users.panthera.h"

/* Options of one call to a peer; 0 when the caller's deadline has passed. */
static int peer_opts(rpc_call *call, rpc_call_opts *o, rpc_metadata_entry *md)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = REVIEWS_PEER_TIMEOUT_MS;
	o->max_retries = 1;
	if (call == NULL)
		return 1;
	uint32_t left = rpc_call_remaining_ms(call);
	if (left == 0)
		return 0;
	if (left < o->timeout_ms)
		o->timeout_ms = left;
	const char *request_id = rpc_call_metadata(call, "x-request-id");
	if (request_id != NULL) {
		md->key = "x-request-id";
		md->value = request_id;
		o->metadata = md;
		o->n_metadata = 1;
	}
	return 1;
}

rpc_status reviews_remote_get_product(rpc_channel *ch, rpc_call *call, const char *product_id)
{
	rpc_call_opts o;
	rpc_metadata_entry md;
	if (!peer_opts(call, &o, &md))
		return RPC_STATUS_DEADLINE_EXCEEDED;
	Panthera__Catalog__V1__GetProductRequest req =
	    PANTHERA__CATALOG__V1__GET_PRODUCT_REQUEST__INIT;
	req.product_id = (char *)product_id;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_catalog_v1_catalog_service_get_product(ch, &req, &o, NULL, &reply);
	rpc_reply_free(reply);
	return st;
}

rpc_status reviews_remote_has_purchased(rpc_channel *ch, rpc_call *call, const char *user_id,
                                        const char *product_id, int *purchased)
{
	*purchased = 0;
	rpc_call_opts o;
	rpc_metadata_entry md;
	if (!peer_opts(call, &o, &md))
		return RPC_STATUS_DEADLINE_EXCEEDED;
	Panthera__Orders__V1__HasPurchasedRequest req =
	    PANTHERA__ORDERS__V1__HAS_PURCHASED_REQUEST__INIT;
	req.user_id = (char *)user_id;
	req.product_id = (char *)product_id;
	const Panthera__Orders__V1__HasPurchasedResponse *resp = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_orders_v1_order_service_has_purchased(ch, &req, &o, &resp, &reply);
	if (st == RPC_STATUS_OK)
		*purchased = resp != NULL && resp->purchased;
	rpc_reply_free(reply);
	return st;
}

/* "First Last" into the call's arena; either part may be empty. */
static char *display_name(rpc_call *call, const char *first, const char *last)
{
	first = first != NULL ? first : "";
	last = last != NULL ? last : "";
	size_t a = strlen(first), b = strlen(last);
	char *name = rpc_call_alloc(call, a + b + 2);
	if (name == NULL)
		return NULL;
	memcpy(name, first, a);
	size_t n = a;
	if (a > 0 && b > 0)
		name[n++] = ' ';
	memcpy(name + n, last, b);
	name[n + b] = '\0';
	return name;
}

rpc_status reviews_remote_author(rpc_channel *ch, rpc_call *call, const char *user_id, char **name,
                                 int *active)
{
	*name = NULL;
	*active = 0;
	rpc_call_opts o;
	rpc_metadata_entry md;
	if (!peer_opts(call, &o, &md))
		return RPC_STATUS_DEADLINE_EXCEEDED;
	Panthera__Users__V1__BatchGetUsersRequest req =
	    PANTHERA__USERS__V1__BATCH_GET_USERS_REQUEST__INIT;
	char *ids[1] = {(char *)user_id};
	req.user_ids = ids;
	req.n_user_ids = 1;
	const Panthera__Users__V1__BatchGetUsersResponse *resp = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_users_v1_user_service_batch_get_users(ch, &req, &o, &resp, &reply);
	if (st == RPC_STATUS_OK) {
		const Panthera__Users__V1__User *u = NULL;
		for (size_t i = 0; resp != NULL && i < resp->n_users && u == NULL; i++) {
			const Panthera__Users__V1__User *x = resp->users[i];
			if (x != NULL && x->id != NULL && strcasecmp(x->id, user_id) == 0)
				u = x;
		}
		if (u == NULL) {
			st = RPC_STATUS_NOT_FOUND;
		} else {
			*active = u->status == PANTHERA__USERS__V1__USER_STATUS__ACTIVE;
			*name = display_name(call, u->first_name, u->last_name);
			if (*name == NULL)
				st = RPC_STATUS_RESOURCE_EXHAUSTED;
		}
	}
	rpc_reply_free(reply);
	return st;
}

rpc_status reviews_remote_set_rating(rpc_channel *ch, const char *product_id, const char *average,
                                     int32_t count)
{
	rpc_call_opts o;
	rpc_metadata_entry md;
	peer_opts(NULL, &o, &md);
	Panthera__Catalog__V1__SetProductRatingRequest req =
	    PANTHERA__CATALOG__V1__SET_PRODUCT_RATING_REQUEST__INIT;
	req.product_id = (char *)product_id;
	req.rating_average = (char *)average;
	req.rating_count = count;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_catalog_v1_catalog_service_set_product_rating(ch, &req, &o, NULL, &reply);
	rpc_reply_free(reply);
	return st;
}
