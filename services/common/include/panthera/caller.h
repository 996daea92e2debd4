/*
 * caller.h - who is calling: the identity the gateway puts in every call's
 * metadata (docs/wire-protocol.md §4.6), `x-caller-id` (a user's UUID) and
 * `x-caller-roles` (comma-separated, e.g. "USER,ADMIN"). Services trust
 * these keys because only the gateway and other services reach them; the
 * gateway strips any a client sends.
 */
#ifndef PANTHERA_CALLER_H
#define PANTHERA_CALLER_H

#include "panthera/rpc.h"

#define CALLER_MD_ID    "x-caller-id"
#define CALLER_MD_ROLES "x-caller-roles"

typedef struct caller {
	const char *id; /* the user's UUID, or NULL (no identity, or not a UUID) */
	int admin;      /* role ADMIN, and an identity */
} caller;

/* Read the caller of `call`. Roles without an identity grant nothing. The
 * strings belong to the call. */
void caller_get(const rpc_call *call, caller *out);

/* 1 when the caller may see what `user_id` owns: its owner, or an admin. */
int caller_may_see(const caller *c, const char *user_id);

#endif /* PANTHERA_CALLER_H */
