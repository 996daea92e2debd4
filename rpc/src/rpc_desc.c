/*
 * rpc_desc.c - look-ups over the generated service descriptions.
 */
#include "panthera/rpc.h"

#include <string.h>

const rpc_method_desc *rpc_service_find_method(const rpc_service_desc *svc, const char *name)
{
	if (svc == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < svc->n_methods; i++) {
		if (strcmp(svc->methods[i].name, name) == 0)
			return &svc->methods[i];
	}
	return NULL;
}
