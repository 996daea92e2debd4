/*
 * auth_internal.h - what the auth service's files share (internal): the state
 * auth_service_init derives, the caller's identity, and helpers that map
 * outcomes to replies. handlers.c serves AuthService, users.c UserService,
 * service.c the life cycle.
 */
#ifndef PANTHERA_AUTH_INTERNAL_H
#define PANTHERA_AUTH_INTERNAL_H

#include "auth.h"
#include "panthera/caller.h"
#include "auth_crypto.h"
#include "auth_jwt.h"

struct auth_private {
	auth_keyring *keys;
	auth_pw_params pw;                    /* of new hashes */
	char dummy_hash[AUTH_PW_HASH_MAX];    /* checked when an email is unknown */
	const char *issuer;                   /* svc->issuer or the default */
	uint32_t access_ttl_s, refresh_ttl_s; /* with the defaults applied */
};

/* How long a handler may wait for a database connection: what the caller
 * has left, at most 10 s. */
static inline uint32_t auth_db_wait_ms(const rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	return left < 10000 ? left : 10000;
}

/* Add a field violation and answer INVALID_ARGUMENT "<field> <why>". */
rpc_status auth_bad_field(rpc_call *call, const char *field, const char *why);

/* A storage failure: the status and a plain sentence (the database's own
 * message went to the log). */
rpc_status auth_db_failed(rpc_call *call, rpc_status st);

/* A copy of `s` in the call's arena; NULL without memory. */
char *auth_strdup(rpc_call *call, const char *s);

/* Fill `out` from row `row` of a result with the user columns of auth_store.h,
 * copying into the call's arena. RESOURCE_EXHAUSTED without memory. */
rpc_status auth_user_fill(rpc_call *call, Panthera__Users__V1__User *out, const PGresult *r,
                          int row);

/* Append `msg` (an event of panthera.events.v1, `type` its full name) to
 * the outbox of schema "auth" in the transaction of `c`. */
rpc_status auth_publish(db_conn *c, const char *type, const char *aggregate_id,
                        const ProtobufCMessage *msg);

/* UserRegistered / UserDeactivated for the account of a user row. */
rpc_status auth_publish_registered(db_conn *c, const PGresult *user);
rpc_status auth_publish_deactivated(db_conn *c, const char *user_id);

/*
 * EnsureAdmin's work, shared with auth_bootstrap_admin: on OK, with `call`
 * and `resp` not NULL, *resp is filled. INVALID_ARGUMENT (with field
 * violations when `call` is given) for a bad email or password.
 */
rpc_status auth_ensure_admin(auth_service *svc, rpc_call *call, const char *email,
                             const char *password, Panthera__Users__V1__User *resp);

/* Handler tables, for auth_service_register. */
extern const panthera_auth_v1_auth_service_handlers auth_handlers;
extern const panthera_users_v1_user_service_handlers auth_user_handlers;

#endif /* PANTHERA_AUTH_INTERNAL_H */
