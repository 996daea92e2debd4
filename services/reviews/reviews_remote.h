/*
 * reviews_remote.h - the reviews service's calls to other services
 * (internal), through their generated client stubs.
 *
 * A call made while serving `call` gets what that caller has left, at
 * most REVIEWS_PEER_TIMEOUT_MS (DEADLINE_EXCEEDED without calling when
 * nothing is left), and carries its x-request-id; `call` NULL (from the
 * consumer) means REVIEWS_PEER_TIMEOUT_MS and no metadata. Every method
 * called here is idempotent, so a transport failure is retried once.
 * The statuses returned are the peer's (or the transport's).
 */
#ifndef PANTHERA_REVIEWS_REMOTE_H
#define PANTHERA_REVIEWS_REMOTE_H

#include <stdint.h>

#include "panthera/rpc.h"

#define REVIEWS_PEER_TIMEOUT_MS 3000u

/* CatalogService.GetProduct: OK when the product exists and is active,
 * NOT_FOUND when it is unknown or deleted. */
rpc_status reviews_remote_get_product(rpc_channel *ch, rpc_call *call, const char *product_id);

/* OrderService.HasPurchased into *purchased. */
rpc_status reviews_remote_has_purchased(rpc_channel *ch, rpc_call *call, const char *user_id,
                                        const char *product_id, int *purchased);

/*
 * UserService.BatchGetUsers for one account: its display name ("First
 * Last") into *name, allocated in `call`'s arena (`call` is required), and
 * whether it is ACTIVE into *active. NOT_FOUND when there is no such
 * account; RESOURCE_EXHAUSTED without memory.
 */
rpc_status reviews_remote_author(rpc_channel *ch, rpc_call *call, const char *user_id, char **name,
                                 int *active);

/* CatalogService.SetProductRating with absolute values. */
rpc_status reviews_remote_set_rating(rpc_channel *ch, const char *product_id, const char *average,
                                     int32_t count);

#endif
