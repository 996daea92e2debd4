/*
 * svctest.c - see svctest.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "svctest.h"

#include "panthera/ids.h"

#ifndef SRC_DIR
#error "SRC_DIR must name the source tree"
#endif

rpc_status svctest_pool(db_pool **out, const char *url, const char *schema, unsigned size,
                        int migrate)
{
	*out = NULL;
	db_pool_opts o = {.url = url, .size = size ? size : 8, .schema = schema};
	char dir[512];
	if (snprintf(dir, sizeof(dir), "%s/services/%s/migrations", SRC_DIR, schema) >=
	    (int)sizeof(dir))
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = db_pool_open(out, &o);
	if (st == RPC_STATUS_OK && migrate &&
	    (st = db_migrate(*out, schema, dir)) != RPC_STATUS_OK) {
		db_pool_close(*out);
		*out = NULL;
	}
	return st;
}

rpc_status svctest_server(rpc_server **out, uint32_t workers, uint32_t queue_len)
{
	rpc_server_opts so = {.workers = workers, .queue_len = queue_len ? queue_len : 64};
	return rpc_server_create(out, &so);
}

rpc_status svctest_start(rpc_server *srv, const char *url, rpc_channel **ch)
{
	rpc_status st = rpc_server_listen(srv, url);
	if (st == RPC_STATUS_OK)
		st = rpc_server_start(srv);
	if (st == RPC_STATUS_OK && ch != NULL)
		st = rpc_channel_open(ch, &url, 1, NULL);
	return st;
}

rpc_status svctest_channel(rpc_channel **out, const char *url, uint32_t connect_wait_ms)
{
	rpc_channel_opts o = {.connect_wait_ms = connect_wait_ms};
	return rpc_channel_open(out, &url, 1, &o);
}

void svctest_new_id(char out[37])
{
	assert_status(id_uuid4(out), RPC_STATUS_OK);
}
