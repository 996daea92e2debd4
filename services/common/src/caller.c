/*
 * caller.c - the caller's identity from call metadata; see caller.h.
 */
#include "panthera/caller.h"

#include <string.h>
#include <strings.h>

#include "panthera/ids.h"

void caller_get(const rpc_call *call, caller *out)
{
	out->id = rpc_call_metadata(call, CALLER_MD_ID);
	out->admin = 0;
	if (out->id != NULL && !id_is_uuid(out->id))
		out->id = NULL;
	if (out->id == NULL)
		return;
	const char *roles = rpc_call_metadata(call, CALLER_MD_ROLES);
	for (const char *p = roles; p != NULL && *p != '\0';) {
		p += strspn(p, " ,");
		size_t n = strcspn(p, ",");
		size_t m = n;
		while (m > 0 && p[m - 1] == ' ')
			m--;
		if (m == 5 && strncmp(p, "ADMIN", 5) == 0)
			out->admin = 1;
		p += n;
	}
}

int caller_may_see(const caller *c, const char *user_id)
{
	return c->id != NULL && user_id != NULL && (c->admin || strcasecmp(c->id, user_id) == 0);
}
