/*
 * fieldcheck.c - see panthera/fieldcheck.h.
 */
#include "panthera/fieldcheck.h"

#include <stdio.h>

void field_refuse(field_checker *k, const char *field, const char *why)
{
	if (k->refused++ == 0)
		snprintf(k->first, sizeof(k->first), "%s %s", field, why);
	rpc_call_add_field_violation(k->call, field, why);
}

rpc_status field_checked(const field_checker *k)
{
	if (k->refused == 0)
		return RPC_STATUS_OK;
	if (k->refused == 1)
		return rpc_call_error(k->call, RPC_STATUS_INVALID_ARGUMENT, "%s", k->first);
	return rpc_call_error(k->call, RPC_STATUS_INVALID_ARGUMENT, "%s (and %d more problems)",
	                      k->first, k->refused - 1);
}
