/*
 * svctest.h - the set-up the services' tests share: an assertion on an
 * rpc_status that names both statuses, a pool on a migrated schema, a
 * server on an inproc URL with a channel to it, fresh UUIDs.
 *
 * Include it after <cmocka.h> (assert_status and svctest_new_id fail the
 * running cmocka test). The set-up functions return a status instead, so
 * a group's setup() can return -1 on any of them.
 */
#ifndef PANTHERA_SVCTEST_H
#define PANTHERA_SVCTEST_H

#include <stdint.h>

#include "panthera/db.h"
#include "panthera/rpc.h"

/* Fail the test unless `expr` is `want`, printing the expression and both
 * status names. */
#define assert_status(expr, want)                                                     \
	do {                                                                          \
		rpc_status got_ = (expr);                                             \
		if (got_ != (want))                                                   \
			fail_msg("%s: got %s, want %s", #expr, rpc_status_name(got_), \
			         rpc_status_name(want));                              \
	} while (0)

/*
 * A pool of `size` connections (0: 8) on `url` whose search_path is
 * `schema`; when `migrate`, the schema is migrated first from
 * SRC_DIR/services/<schema>/migrations. On error *out is NULL (the pool
 * closed) and the status says why.
 */
rpc_status svctest_pool(db_pool **out, const char *url, const char *schema, unsigned size,
                        int migrate);

/* A server of `workers` handler threads and a queue of `queue_len` calls
 * (0: 64), for the caller to register its services on before
 * svctest_start. */
rpc_status svctest_server(rpc_server **out, uint32_t workers, uint32_t queue_len);

/* Listen on `url`, start the server, and, when `ch` is not NULL, open a
 * channel to it into *ch. */
rpc_status svctest_start(rpc_server *srv, const char *url, rpc_channel **ch);

/* A channel to `url` that waits up to connect_wait_ms for a peer (0: the
 * runtime's default). */
rpc_status svctest_channel(rpc_channel **out, const char *url, uint32_t connect_wait_ms);

/* A fresh UUID into out[37]; fails the test when there is none. */
void svctest_new_id(char out[37]);

#endif /* PANTHERA_SVCTEST_H */
