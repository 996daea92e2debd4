/*
 * service.c - the auth service's life cycle (init, register, fini, key
 * rotation, admin bootstrap) and the helpers its two handler files share:
 * caller identity, error replies, events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth_internal.h"
#include "auth_store.h"
#include "panthera/base64.h"
#include "panthera/events.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"

/* ---- shared helpers ---- */

rpc_status auth_bad_field(rpc_call *call, const char *field, const char *why)
{
	rpc_call_add_field_violation(call, field, why);
	return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "%s %s", field, why);
}

rpc_status auth_db_failed(rpc_call *call, rpc_status st)
{
	return rpc_call_error(call, st, "auth storage: %s", rpc_status_name(st));
}

char *auth_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

static rpc_status set_time(rpc_call *call, Google__Protobuf__Timestamp **out, const char *us)
{
	long long v = atoll(us);
	Google__Protobuf__Timestamp *t = rpc_call_alloc(call, sizeof(*t));
	if (t == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	google__protobuf__timestamp__init(t);
	long long s = v / 1000000, frac = v % 1000000;
	if (frac < 0) {
		s--;
		frac += 1000000;
	}
	t->seconds = s;
	t->nanos = (int32_t)(frac * 1000);
	*out = t;
	return RPC_STATUS_OK;
}

rpc_status auth_user_fill(rpc_call *call, Panthera__Users__V1__User *out, const PGresult *r,
                          int row)
{
	out->id = auth_strdup(call, PQgetvalue(r, row, AUTH_USER_ID));
	out->email = auth_strdup(call, PQgetvalue(r, row, AUTH_USER_EMAIL));
	out->first_name = auth_strdup(call, PQgetvalue(r, row, AUTH_USER_FIRST_NAME));
	out->last_name = auth_strdup(call, PQgetvalue(r, row, AUTH_USER_LAST_NAME));
	out->roles = rpc_call_alloc(call, 2 * sizeof(*out->roles));
	if (out->id == NULL || out->email == NULL || out->first_name == NULL ||
	    out->last_name == NULL || out->roles == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	unsigned roles = auth_roles_from_text(PQgetvalue(r, row, AUTH_USER_ROLES));
	out->n_roles = 0;
	if (roles & AUTH_ROLE_USER)
		out->roles[out->n_roles++] = PANTHERA__USERS__V1__ROLE__USER;
	if (roles & AUTH_ROLE_ADMIN)
		out->roles[out->n_roles++] = PANTHERA__USERS__V1__ROLE__ADMIN;
	out->status = strcmp(PQgetvalue(r, row, AUTH_USER_STATUS), "ACTIVE") == 0
	                  ? PANTHERA__USERS__V1__USER_STATUS__ACTIVE
	                  : PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED;
	rpc_status st = set_time(call, &out->created_at, PQgetvalue(r, row, AUTH_USER_CREATED_US));
	if (st == RPC_STATUS_OK)
		st = set_time(call, &out->updated_at, PQgetvalue(r, row, AUTH_USER_UPDATED_US));
	return st;
}

rpc_status auth_publish(db_conn *c, const char *type, const char *aggregate_id,
                        const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	protobuf_c_message_pack(msg, buf);
	rpc_status st = ev_publish(c, AUTH_SCHEMA, type, aggregate_id, buf, n, NULL);
	free(buf);
	return st;
}

rpc_status auth_publish_registered(db_conn *c, const PGresult *user)
{
	Panthera__Events__V1__UserRegistered ev = PANTHERA__EVENTS__V1__USER_REGISTERED__INIT;
	ev.user_id = PQgetvalue(user, 0, AUTH_USER_ID);
	ev.email = PQgetvalue(user, 0, AUTH_USER_EMAIL);
	ev.first_name = PQgetvalue(user, 0, AUTH_USER_FIRST_NAME);
	ev.last_name = PQgetvalue(user, 0, AUTH_USER_LAST_NAME);
	return auth_publish(c, "panthera.events.v1.UserRegistered", ev.user_id, &ev.base);
}

rpc_status auth_publish_deactivated(db_conn *c, const char *user_id)
{
	Panthera__Events__V1__UserDeactivated ev = PANTHERA__EVENTS__V1__USER_DEACTIVATED__INIT;
	ev.user_id = (char *)user_id;
	return auth_publish(c, "panthera.events.v1.UserDeactivated", user_id, &ev.base);
}

/* ---- life cycle ---- */

rpc_status auth_service_init(auth_service *svc)
{
	if (svc == NULL || svc->pool == NULL || svc->data_dir == NULL || svc->priv != NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if ((svc->issuer != NULL && !auth_jwt_issuer_ok(svc->issuer)) ||
	    svc->scrypt_log_n > AUTH_PW_MAX_LOG_N ||
	    ((uint64_t)128 * AUTH_PW_R << svc->scrypt_log_n) > AUTH_PW_MAX_MEM)
		return RPC_STATUS_INVALID_ARGUMENT;
	struct auth_private *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	p->issuer = svc->issuer ? svc->issuer : AUTH_DEFAULT_ISSUER;
	p->access_ttl_s = svc->access_ttl_s ? svc->access_ttl_s : AUTH_DEFAULT_ACCESS_TTL;
	p->refresh_ttl_s = svc->refresh_ttl_s ? svc->refresh_ttl_s : AUTH_DEFAULT_REFRESH_TTL;
	p->pw = (auth_pw_params){svc->scrypt_log_n ? svc->scrypt_log_n : AUTH_PW_LOG_N, AUTH_PW_R,
	                         AUTH_PW_P};
	if (p->pw.log_n < AUTH_PW_LOG_N)
		log_write(LOG_WARN, NULL, "auth.config",
		          "scrypt cost lowered to N=2^%u: for tests only", p->pw.log_n);

	rpc_status st = auth_keyring_load(&p->keys, svc->data_dir);
	if (st == RPC_STATUS_OK)
		st = ev_outbox_setup(svc->pool, AUTH_SCHEMA);
	if (st == RPC_STATUS_OK) {
		/* The dummy that unknown emails are checked against: a hash of
		 * random bytes with the current parameters, so the work is the
		 * same as for a real account. */
		unsigned char raw[24];
		char pw[33];
		if (RAND_bytes(raw, sizeof(raw)) != 1 ||
		    base64_encode(raw, sizeof(raw), BASE64_URL, pw, sizeof(pw), NULL) != 0)
			st = RPC_STATUS_INTERNAL;
		else
			st = auth_pw_hash(pw, &p->pw, p->dummy_hash, sizeof(p->dummy_hash));
		OPENSSL_cleanse(raw, sizeof(raw));
		OPENSSL_cleanse(pw, sizeof(pw));
	}
	if (st != RPC_STATUS_OK) {
		auth_keyring_free(p->keys);
		free(p);
		return st;
	}
	svc->priv = p;
	return RPC_STATUS_OK;
}

rpc_status auth_service_register(rpc_server *srv, auth_service *svc)
{
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	rpc_status st = panthera_auth_v1_auth_service_register(srv, &auth_handlers, svc);
	if (st == RPC_STATUS_OK)
		st = panthera_users_v1_user_service_register(srv, &auth_user_handlers, svc);
	return st;
}

rpc_status auth_service_rotate_key(auth_service *svc, char *kid_out)
{
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	return auth_keyring_rotate(svc->priv->keys, kid_out);
}

rpc_status auth_bootstrap_admin(auth_service *svc, const char *email, const char *password)
{
	if (svc == NULL || svc->priv == NULL)
		return RPC_STATUS_FAILED_PRECONDITION;
	return auth_ensure_admin(svc, NULL, email, password, NULL);
}

typedef struct sweep_op {
	long long removed;
} sweep_op;

static rpc_status tx_sweep(db_conn *c, void *arg)
{
	sweep_op *op = arg;
	return auth_store_sweep(c, 1000, &op->removed);
}

rpc_status auth_sweep_expired(auth_service *svc, unsigned *removed)
{
	if (removed != NULL)
		*removed = 0;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	sweep_op op = {0};
	rpc_status st = db_transaction(svc->pool, 0, 10000, tx_sweep, &op);
	if (st == RPC_STATUS_OK && removed != NULL)
		*removed = op.removed > UINT32_MAX ? UINT32_MAX : (unsigned)op.removed;
	return st;
}

void auth_service_fini(auth_service *svc)
{
	if (svc == NULL || svc->priv == NULL)
		return;
	auth_keyring_free(svc->priv->keys);
	OPENSSL_cleanse(svc->priv, sizeof(*svc->priv));
	free(svc->priv);
	svc->priv = NULL;
}
