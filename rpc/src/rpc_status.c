/*
 * rpc_status.c - names and HTTP mapping of the canonical status codes,
 * generated from the single list in rpc_status.h.
 */
#include "panthera/rpc_status.h"

#include <stddef.h>
#include <string.h>

static const char *const rpc_status_names[RPC_STATUS_COUNT] = {
#define RPC_STATUS_NAME_(name, num, http) [num] = #name,
    RPC_STATUS_LIST(RPC_STATUS_NAME_)
#undef RPC_STATUS_NAME_
};

static const int rpc_status_https[RPC_STATUS_COUNT] = {
#define RPC_STATUS_HTTP_(name, num, http) [num] = http,
    RPC_STATUS_LIST(RPC_STATUS_HTTP_)
#undef RPC_STATUS_HTTP_
};

/* The enum may be unsigned or signed; compare as unsigned so both ends are checked. */
static int rpc_status_valid(rpc_status code)
{
	return (unsigned)code < RPC_STATUS_COUNT;
}

const char *rpc_status_name(rpc_status code)
{
	return rpc_status_valid(code) ? rpc_status_names[code]
	                              : rpc_status_names[RPC_STATUS_UNKNOWN];
}

int rpc_status_http(rpc_status code)
{
	return rpc_status_valid(code) ? rpc_status_https[code]
	                              : rpc_status_https[RPC_STATUS_UNKNOWN];
}

int rpc_status_from_name(const char *name, rpc_status *out)
{
	if (name == NULL)
		return 0;
	for (unsigned i = 0; i < RPC_STATUS_COUNT; i++) {
		if (strcmp(name, rpc_status_names[i]) == 0) {
			*out = (rpc_status)i;
			return 1;
		}
	}
	return 0;
}
